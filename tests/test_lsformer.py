"""LSFormer: integer layer norm, SRP, LDWA attention through the window buffer's windows, float and
integer modes, the training recipe, and the committed vectors from the trained model."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from golden import data
from golden.lif import LIF
from golden.models.lsformer import (LSFormer, SpikingResponsePooling, int_layer_norm, isqrt, lif_spec_for,
                                    pixels_from_float, run_lif, srp_beta)
from golden.spec import SpecError
from golden.vectors import load_vectors
from golden.window import WindowSpec, dilated_windows, window_mask

TINY = dict(embed_dim=6, heads=2, head_dilations=(1, 2), conv_dilations=(1, 2), time_steps=2, mlp_ratio=1)
TRAINED_VECTORS = Path(__file__).parent.parent / "sim" / "data" / "lsformer_kv"


# ---- integer building blocks, by hand and against independent implementations -----------------------

def test_isqrt_matches_math_isqrt():
    rng = random.Random(0)
    values = [0, 1, 2, 3, 4, 15, 16, 17, (1 << 40) - 1, 1 << 40, (1 << 62) - 1]
    values += [rng.randrange(1 << rng.randint(1, 62)) for _ in range(300)]
    values += [k * k for k in range(50)] + [k * k - 1 for k in range(1, 50)]
    assert isqrt(torch.tensor(values)).tolist() == [math.isqrt(v) for v in values]
    with pytest.raises(ValueError, match="0 <= v < 2\\^62"):
        isqrt(torch.tensor([-1]))


def test_integer_layer_norm_by_hand():
    # u = 0, 2, 4, 6: mu = 12 // 4 = 3, dev = -3 -1 1 3, var = (9+1+1+9) // 4 = 5,
    # sigma = isqrt(5 + 1) = 2, y = floor(dev * 256 / 2) + beta = -384 -128 128 384 (+ 10)
    y = int_layer_norm(torch.tensor([[0, 2, 4, 6]]), torch.full((4,), 256), torch.full((4,), 10), eps=1)
    assert y.tolist() == [[-374, -118, 138, 394]]
    # negative dev with a non-exact quotient rounds down: u = 0, 0, 0, 1: mu = 0, var = 1 // 4 = 0,
    # sigma = isqrt(0 + 1) = 1, y = dev * 3 = 0 0 0 3
    assert int_layer_norm(torch.tensor([[0, 0, 0, 1]]), torch.full((4,), 3), torch.zeros(4, dtype=torch.long), 1).tolist() \
        == [[0, 0, 0, 3]]
    # u = 5, 0, 0, 0: mu = 5 // 4 = 1, dev = 4 -1 -1 -1, var = (16+1+1+1) // 4 = 4, sigma = isqrt(5) = 2,
    # gamma 3: floor(12 / 2) = 6, floor(-3 / 2) = -2
    assert int_layer_norm(torch.tensor([[5, 0, 0, 0]]), torch.full((4,), 3), torch.zeros(4, dtype=torch.long), 1).tolist() \
        == [[6, -2, -2, -2]]


def test_integer_layer_norm_tracks_float_layer_norm():
    """With the inputs at 2^-10 resolution the integer LN is within 2 LSB (2^-8) of nn.LayerNorm."""
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(200, 16, generator=gen, dtype=torch.float64) * 3
    ln = torch.nn.LayerNorm(16, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5, generator=gen)
        ln.bias.uniform_(-0.5, 0.5, generator=gen)
    u = torch.round(real * 2 ** 10).to(torch.int64)
    gamma = torch.round(ln.weight.detach() * 256).to(torch.int64)
    beta = torch.round(ln.bias.detach() * 256).to(torch.int64)
    y = int_layer_norm(u, gamma, beta, eps=1)
    expected = ln(u.double() / 2 ** 10).detach() * 256
    assert float((y.double() - expected).abs().max()) < 2.5


def test_srp_beta_is_on_the_8_bit_grid():
    assert srp_beta(10.0) == 230 / 256     # round(0.9 * 256) = round(230.4) = 230
    with pytest.raises(ValueError, match="tau must be > 1"):
        srp_beta(1.0)


def test_srp_by_hand_float_and_integer():
    """One 2x2 region, tau = 10 (beta = 230/256), theta = 2; region counts 1, 1, 1, 0, 4.
    Float: a = 1, 1.898, 2.705 -> spike (0.705), 0.633, 4.569 -> spike.
    Integer (x 2^8): 256; (256*230)>>8 = 230, +256 = 486; (486*230)>>8 = 436, +256 = 692 >= 512
    -> spike, 180; (180*230)>>8 = 161; 144 + 1024 = 1168 -> spike."""
    srp = SpikingResponsePooling(kernel=2, tau=10.0, threshold=2.0)
    counts = [1, 1, 1, 0, 4]
    s = torch.zeros(5, 1, 4, 1)                      # (T, B, 2x2 map, C = 1)
    for t, c in enumerate(counts):
        s[t, 0, :c, 0] = 1
    assert srp.region_counts(s, 2, 2)[:, 0, 0, 0].tolist() == counts
    assert srp(s, 2, 2)[:, 0, 0, 0].tolist() == [0, 0, 1, 0, 1]
    spec = lif_spec_for(srp.lif, 1, 8)
    assert spec.threshold == 512 and spec.leak_beta == 230
    integer = run_lif(spec, torch.tensor(counts).reshape(5, 1) << 8)
    assert integer[:, 0].tolist() == [0, 0, 1, 0, 1]


# ---- LDWA ----------------------------------------------------------------------------------------------

def plain_window_attention(q, k, v, height, width, radius, dilation):
    """Independent loop: A[p][c] = sum over in-map taps q of (Q_p . K_q) V_qc."""
    n, d = q.shape
    out = [[0] * d for _ in range(n)]
    for p in range(n):
        y, x = divmod(p, width)
        for i in range(-radius, radius + 1):
            for j in range(-radius, radius + 1):
                yy, xx = y + dilation * i, x + dilation * j
                if 0 <= yy < height and 0 <= xx < width:
                    qq = yy * width + xx
                    score = sum(int(q[p, c]) & int(k[qq, c]) for c in range(d))
                    for c in range(d):
                        out[p][c] += score * int(v[qq, c])
    return out


def test_integer_attention_through_windows_equals_plain_loops_and_dense_mask():
    torch.manual_seed(0)
    model = LSFormer(embed_dim=8, heads=2, head_dilations=(1, 3), conv_dilations=(1,), time_steps=1, attn_radius=1)
    ldwa = model.to_integer().blocks[0].attn
    gen = torch.Generator().manual_seed(1)
    q, k, v = ((torch.rand(1, 2, 64, 8, generator=gen) < 0.4).long() for _ in range(3))
    counts, kv_maps = ldwa.attention_counts(q, k, v)
    assert all(m is not None for m in kv_maps)
    for h, dil in enumerate((1, 3)):
        sl = slice(4 * h, 4 * h + 4)
        for b in range(2):
            expected = plain_window_attention(q[0, b, :, sl], k[0, b, :, sl], v[0, b, :, sl], 8, 8, 1, dil)
            assert counts[0, b, :, sl].tolist() == expected
        mask = window_mask(8, 8, 1, dil).long()
        dense = ((q[..., sl] @ k[..., sl].transpose(-1, -2)) * mask) @ v[..., sl]
        assert torch.equal(counts[..., sl], dense)
    # the float module computes the same counts from the same spikes
    assert torch.equal(model.blocks[0].attn.attention_counts(q.float(), k.float(), v.float()).long(), counts)


def test_global_attention_is_a_supported_configuration():
    model = LSFormer(**dict(TINY, head_dilations=(1, 1)), attn_radius=7)
    assert model.is_global and bool(model.blocks[0].attn.masks.bool().all())
    ldwa = model.to_integer().blocks[0].attn
    assert ldwa.head_specs == [None, None]
    assert not LSFormer(**TINY).is_global


@pytest.mark.parametrize("changes, error, message", [
    ({"head_dilations": (1, 4)}, SpecError, "dilation 4 with radius 1 spans 9 elements per axis, larger than the map's"),
    ({"conv_dilations": (1, 5)}, SpecError, "dilation 5 with radius 1 spans 11"),
    ({"head_dilations": (1, 2, 3)}, ValueError, "one per head"),
    ({"embed_dim": 7}, ValueError, "multiple of heads"),
    ({"attn_radius": 4, "head_dilations": (1, 2)}, SpecError, "spans 9"),   # radius 4 d 1 is neither local nor global
    ({"time_steps": 0}, ValueError, "time_steps must be an integer >= 1"),
])
def test_bad_configurations_are_refused_clearly(changes, error, message):
    with pytest.raises(error, match=message):
        LSFormer(**dict(TINY, **changes))


# ---- float and integer modes of the whole model -------------------------------------------------------

@pytest.fixture(scope="module")
def briefly_trained():
    """A tiny LSFormer after 50 Adam steps on the digits (about 3 s of CPU time)."""
    torch.manual_seed(0)
    split = data.digits_split(seed=0)
    model = LSFormer(embed_dim=8, heads=2, head_dilations=(1, 2), conv_dilations=(1, 2), time_steps=2, mlp_ratio=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        idx = torch.randint(0, len(split.y_train), (32,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(split.x_train[idx]), split.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model, split


def test_float_model_learns(briefly_trained):
    model, split = briefly_trained
    with torch.no_grad():
        accuracy = float((model(split.x_test).argmax(1) == split.y_test).float().mean())
    assert accuracy > 0.7      # chance is 0.1; measured 0.898


def test_integer_mode_agrees_with_float_mode(briefly_trained):
    """Integer logits are int64 only; their arg-max agrees with the float model's on >= 90 % of
    300 held-out digits (measured 96 %; differences come from 8-bit weight rounding and the
    integer layer norm)."""
    model, split = briefly_trained
    int_model = model.to_integer()
    pixels = pixels_from_float(split.x_test[:300])
    layers = int_model.forward_layers(pixels)
    assert layers["logits"].dtype == torch.int64
    for name in ("u0", "head_spikes", "srp_counts", "srp_spikes"):
        assert layers[name].dtype == torch.int64, name
    with torch.no_grad():
        float_pred = model(split.x_test[:300]).argmax(1)
    agree = float((layers["logits"].argmax(1) == float_pred).float().mean())
    assert agree >= 0.90, agree
    with pytest.raises(ValueError, match="integer pixels"):
        int_model(split.x_test[:2])


def test_spikeforge_train_lsformer_writes_a_checkpoint(tmp_path):
    from spikeforge.training import load_checkpoint, train

    report = train("lsformer", epochs=1, batch_size=128, out=tmp_path / "ls.pt", progress=False,
                   overrides={"embed_dim": 6, "heads": 2, "head_dilations": [1, 2], "conv_dilations": [1, 2],
                              "time_steps": 2, "mlp_ratio": 1})
    assert 0.0 <= report.metrics["test_accuracy"] <= 1.0
    model, ckpt = load_checkpoint(tmp_path / "ls.pt")
    assert ckpt["recipe"] == "lsformer" and model.config["head_dilations"] == (1, 2)
    # the documented command that made sim/data/lsformer_kv works on any lsformer checkpoint
    from spikeforge.lsformer_vectors import main as vectors_main

    assert vectors_main([str(tmp_path / "ls.pt"), "-o", str(tmp_path / "kv"), "--images", "1"]) == 0
    vec = load_vectors(tmp_path / "kv", block="window")
    assert vec["maps"].shape == (2, 8, 8, 6) and vec.spec["dilations"] == [2]   # T B maps, K|V of head 1
    assert vectors_main([str(tmp_path / "ls.pt"), "-o", str(tmp_path / "kv2"), "--head", "5"]) == 2
    with pytest.raises(ValueError, match="no setting 'radius'"):
        train("lsformer", epochs=1, overrides={"radius": 3}, progress=False)


# ---- the committed vectors from the trained model ------------------------------------------------------

def test_committed_trained_vectors_are_consistent():
    """Hashes checked by the loader; windows = dilated_windows(maps); and the buffer's windows with the
    head's Q spikes reproduce the trained model's integer attention counts (popcount, no softmax)."""
    vectors = load_vectors(TRAINED_VECTORS, block="window")
    spec = WindowSpec.from_dict(vectors.spec)
    maps = torch.from_numpy(vectors["maps"].astype("int64"))
    windows = dilated_windows(spec, maps)
    assert torch.equal(windows, torch.from_numpy(vectors["windows"].astype("int64")))
    assert 0 < float(maps.float().mean()) < 1           # real spikes, neither silent nor saturated
    dh = spec.channels // 2
    q = torch.from_numpy(vectors["q"].astype("int64"))                       # (maps, H, W, Dh)
    kw, vw = windows[:, :, :, 0, :, :dh], windows[:, :, :, 0, :, dh:]       # (maps, H, W, K, Dh)
    scores = (q.unsqueeze(3) * kw).sum(-1, keepdim=True)
    assert torch.equal((scores * vw).sum(3), torch.from_numpy(vectors["counts"].astype("int64")))
    assert vectors.meta["checkpoint_metrics"]["test_accuracy"] > 0.9
