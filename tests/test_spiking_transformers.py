"""The spiking-transformer golden models (Spikformer, Spike-driven V2, SpikingResformer, TEFormer):
shapes, integer determinism, float/integer agreement after real (short) training, and that no
output looks ahead in time. Model-specific equations are checked in the tests further down."""

import pytest
import torch

from golden import data
from golden.models.common import im2col, maxpool2, to_int_pixels
from golden.models.spikformer import Spikformer, spike_qktv
from spikeforge import training

#: recipe name -> tiny equal-size settings used by these tests
TINY = {"embed_dim": 16, "depth": 1, "heads": 2, "time_steps": 2}
MODELS = ["spikformer"]
EPOCHS = 3


@pytest.fixture(scope="module")
def split():
    return data.digits_split(seed=0)


@pytest.fixture(scope="module", params=MODELS)
def trained(request, tmp_path_factory):
    """One short real training run per model (3 epochs, tiny size), reloaded from its checkpoint."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp(request.param) / "m.pt"
    report = training.train(request.param, epochs=EPOCHS, progress=False, out=path, overrides=dict(TINY))
    model, ckpt = training.load_checkpoint(path)
    return request.param, model, report


def test_shapes_and_integer_tensors(trained, split):
    name, model, _ = trained
    x = split.x_test[:5]
    with torch.no_grad():
        assert model(x).shape == (5, 10)
        assert model.forward_steps(x).shape == (TINY["time_steps"], 5, 10)
    layers = model.to_integer().forward_layers(to_int_pixels(x))
    assert layers["logits"].shape == (5, 10) and layers["logits_t"].shape == (TINY["time_steps"], 5, 10)
    for key, tensor in layers.items():
        assert tensor.dtype == torch.int64, key   # integer mode never touches floats


def test_integer_mode_is_deterministic(trained, split):
    _, model, _ = trained
    pixels = to_int_pixels(split.x_test[:20])
    a = model.to_integer().forward_layers(pixels)
    b = model.to_integer().forward_layers(pixels.clone())
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_float_and_integer_modes_agree(trained, split):
    """Stated bound: after 3 epochs, the integer model (8-bit weights) predicts the float model's
    class for >= 85 % of the 450 held-out digits, and its accuracy is within 5 points."""
    name, model, report = trained
    assert report.metrics["test_accuracy"] > 0.5, name   # it learned (chance = 0.1)
    with torch.no_grad():
        float_pred = model(split.x_test).argmax(dim=1)
    int_pred = model.to_integer().forward(to_int_pixels(split.x_test)).argmax(dim=1)
    agree = float((float_pred == int_pred).double().mean())
    assert agree >= 0.85, (name, agree)
    int_acc = float((int_pred == split.y_test).double().mean())
    assert int_acc >= report.metrics["test_accuracy"] - 0.05, (name, int_acc)


def test_no_output_looks_ahead_in_time(trained, split):
    """Per-step frames: changing only the last step's frame leaves every earlier step's
    logits (and every layer's earlier steps) unchanged, bit for bit; the last step changes."""
    _, model, _ = trained
    T = TINY["time_steps"]
    frames = to_int_pixels(split.x_test[:8]).unsqueeze(0).repeat(T, 1, 1, 1, 1)
    changed = frames.clone()
    changed[-1] = 16 - changed[-1]          # invert the last frame
    int_model = model.to_integer()
    a, b = int_model.forward_layers(frames), int_model.forward_layers(changed)
    for key in a:
        if key in ("pixels", "logits"):
            continue
        assert torch.equal(a[key][:-1], b[key][:-1]), key
    assert not torch.equal(a["logits_t"][-1], b["logits_t"][-1])


def test_bad_sizes_and_inputs_are_refused():
    with pytest.raises(ValueError, match="multiple of heads"):
        Spikformer(embed_dim=18, heads=4)
    with pytest.raises(ValueError, match="depth"):
        Spikformer(depth=0)
    with pytest.raises(ValueError, match="has no setting"):
        training.train("spikformer", epochs=1, progress=False, overrides={"width": 3})
    int_model = Spikformer(embed_dim=8, heads=2, time_steps=2).to_integer()
    with pytest.raises(ValueError, match="integer pixels"):
        int_model(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="0..16"):
        int_model(torch.full((1, 1, 8, 8), 17))


# ---- Spikformer's equations ------------------------------------------------------------------------

def test_spike_qktv_equals_a_plain_loop():
    gen = torch.Generator().manual_seed(3)
    T, B, N, D, H = 2, 1, 5, 4, 2
    q, k, v = (torch.randint(0, 2, (T, B, N, D), generator=gen) for _ in range(3))
    s = spike_qktv(q, k, v, H)
    dh = D // H
    for t in range(T):
        for h in range(H):
            for n in range(N):
                for j in range(dh):
                    # S[n, j] = sum_m (q_n . k_m) v_m[j], within head h
                    want = sum(int((q[t, 0, n, h * dh:(h + 1) * dh] * k[t, 0, m, h * dh:(h + 1) * dh]).sum())
                               * int(v[t, 0, m, h * dh + j]) for m in range(N))
                    assert int(s[t, 0, n, h * dh + j]) == want


def test_attention_threshold_is_the_scaled_paper_threshold():
    # V_th = 0.5, tau = 2, s = 0.125: H = V/2 + S s / 2 >= 0.5  <=>  H' = V'/2 + S >= 0.5 * 2 / 0.125 = 8
    model = Spikformer(embed_dim=8, heads=2, time_steps=2)
    int_attn = model.to_integer().blocks[0][0]
    assert int_attn.attn_lif.spec.threshold == 8
    assert int_attn.attn_lif.spec.leak_beta == 128        # beta = 1 - 1/2 = 128 / 2^8


def test_im2col_and_maxpool_match_torch():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 3, generator=gen)                  # (B, 4x4, C)
    w = torch.randn(5, 3, 3, 3, generator=gen)                # conv weight (out, C, kh, kw)
    ref = torch.nn.functional.conv2d(x.reshape(2, 4, 4, 3).permute(0, 3, 1, 2), w, padding=1)
    cols = im2col(x, 4, 4)                                    # patch order (di, dj, c)
    ours = cols @ w.permute(2, 3, 1, 0).reshape(27, 5)
    assert torch.allclose(ours, ref.permute(0, 2, 3, 1).reshape(2, 16, 5), atol=1e-5)
    s = torch.randint(0, 2, (2, 16, 3), generator=gen)
    ref_pool = torch.nn.functional.max_pool2d(s.reshape(2, 4, 4, 3).permute(0, 3, 1, 2).double(), 2)
    assert torch.equal(maxpool2(s, 4, 4), ref_pool.permute(0, 2, 3, 1).reshape(2, 4, 3).long())
