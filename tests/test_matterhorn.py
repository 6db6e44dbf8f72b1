"""Matterhorn: adaptive-threshold LIF (hand-computed and independent recurrence), the seeded
variation model, float vs integer modes of the whole model, the training recipe, and the
committed vectors of the trained model's real activations."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from golden import fixed
from golden.alif import ALIFSpec, AdaptiveLIF, VariationSpec, alif_run, quantize_alif
from golden.models.matterhorn import Matterhorn, digits_pixels, patches
from golden.mtts import mtts_encode, mtts_spikes
from golden.spec import SpecError


def alif1(spec, theta, beta, currents, noise=None):
    tr = alif_run(spec, torch.tensor([theta]), torch.tensor([beta]), torch.tensor([[c] for c in currents]),
                  None if noise is None else torch.tensor([[e] for e in noise]))
    return tr.spikes[:, 0].tolist(), tr.membrane[:, 0].tolist(), tr.adaptation[:, 0].tolist()


# ---- adaptive-threshold LIF by hand ------------------------------------------------------------------

def test_alif_threshold_rises_and_decays_by_hand():
    spec = ALIFSpec(n_neurons=1, leak_frac_bits=8, adapt_shift=1, adapt_increment=4)
    # theta_n = 10, no leak (b = 256), k = 1 (a halves, a - (a >> 1)), delta = 4:
    # t0 h=6  th=10 -> 0, v 6,  a 0
    # t1 h=12 th=10 -> 1, v 2,  a 0 + 4 = 4
    # t2 h=8  th=14 -> 0, v 8,  a 4 - 2 = 2
    # t3 h=8  th=12 -> 0, v 8,  a 2 - 1 = 1
    # t4 h=20 th=11 -> 1, v 9,  a 1 - 0 + 4 = 5
    # t5 h=21 th=15 -> 1, v 6,  a 5 - 2 + 4 = 7
    assert alif1(spec, 10, 256, [6, 6, 6, 0, 12, 12]) == (
        [0, 1, 0, 0, 1, 1], [6, 2, 8, 8, 9, 6], [0, 4, 2, 1, 5, 7])


def test_alif_leak_noise_and_saturation_by_hand():
    spec = ALIFSpec(n_neurons=1, membrane_width=8, input_width=8, leak_frac_bits=8, adapt_shift=2,
                    adapt_increment=0)
    # b = 192 (beta 0.75): v -5 -> (-5 * 192) >> 8 = floor(-3.75) = -4; noise adds to the input;
    # t0 -5; t1 -4 + 0 + (-1) = -5; t2 (-5*192)>>8 = -4, + 127 + 127 = 250 -> saturates at 127 >= 100: spike, 27
    assert alif1(spec, 100, 192, [-5, 0, 127], noise=[0, -1, 127]) == ([0, 0, 1], [-5, -5, 27], [0, 0, 0])


def textbook_alif(theta, b, frac, k, delta, wv, wa, currents):
    """The recurrence in plain Python ints, written from the docstring's prose, not the code."""
    v = a = 0
    out = []
    for i in currents:
        h = (v * b) // 2 ** frac + i
        h = max(-(2 ** (wv - 1)), min(2 ** (wv - 1) - 1, h))
        thr = theta + a
        fired = h >= thr
        v = h - thr if fired else h
        a = min(2 ** wa - 1, a - a // 2 ** k + (delta if fired else 0))
        out.append((int(fired), v, a))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_alif_matches_textbook_recurrence(seed):
    rng = random.Random(seed)
    n = 6
    spec = ALIFSpec(n_neurons=n, membrane_width=rng.randint(8, 16), input_width=8, leak_frac_bits=8,
                    adapt_shift=rng.randint(1, 4), adapt_increment=rng.randint(0, 15), adapt_width=rng.randint(4, 10))
    theta = [rng.randint(1, 100) for _ in range(n)]
    beta = [rng.randint(0, 256) for _ in range(n)]
    currents = torch.tensor([[rng.randint(-128, 127) for _ in range(n)] for _ in range(30)])
    tr = alif_run(spec, torch.tensor(theta), torch.tensor(beta), currents)
    for j in range(n):
        want = textbook_alif(theta[j], beta[j], 8, spec.adapt_shift, spec.adapt_increment, spec.membrane_width,
                             spec.adapt_width, currents[:, j].tolist())
        got = list(zip(tr.spikes[:, j].tolist(), tr.membrane[:, j].tolist(), tr.adaptation[:, j].tolist()))
        assert got == want


def test_alif_bad_input():
    spec = ALIFSpec(n_neurons=2, input_width=4)
    with pytest.raises(ValueError, match="outside the 4-bit signed range"):
        alif_run(spec, torch.tensor([5, 5]), torch.tensor([200, 200]), torch.tensor([[9, 0]]))
    with pytest.raises(ValueError, match="thresholds must be >= 1"):
        alif_run(spec, torch.tensor([0, 5]), torch.tensor([200, 200]), torch.tensor([[1, 0]]))
    with pytest.raises(SpecError, match="adapt_shift = 0"):
        ALIFSpec(adapt_shift=0)
    with pytest.raises(SpecError, match="noise = 3"):
        VariationSpec(noise=3)


def test_float_and_integer_alif_agree():
    """beta = 0.875 = 224/256 and thresholds on the grid 2^-8, no noise: the integer leak floors at
    most one LSB per step, so the spike trains agree except where a membrane lands within a few LSB
    of the threshold, after which that neuron's trajectories may part (measured 94.8 % agreement)."""
    frac = 8
    neuron = AdaptiveLIF(64, layer=0, threshold=0.5, beta=0.875, adapt_increment=0.25, adapt_shift=2,
                         variation=VariationSpec(seed=3, threshold_spread=0.0))
    neuron.eval()
    q = quantize_alif(neuron, frac)
    gen = torch.Generator().manual_seed(0)
    x_int = torch.randint(-40, 120, (40, 64), generator=gen)
    float_spikes = neuron(x_int.float() / 2 ** frac)
    int_spikes = q(x_int)
    assert (float_spikes == int_spikes).float().mean() >= 0.93


# ---- the seeded variation model ----------------------------------------------------------------------

def test_variation_is_reproducible_and_within_range():
    a = Matterhorn(dim=8, heads=2, time_steps=4, variation_seed=5, threshold_spread=0.2, leak_spread=0.1, noise=0.1)
    b = Matterhorn(dim=8, heads=2, time_steps=4, variation_seed=5, threshold_spread=0.2, leak_spread=0.1, noise=0.1)
    c = Matterhorn(dim=8, heads=2, time_steps=4, variation_seed=6, threshold_spread=0.2, leak_spread=0.1, noise=0.1)
    na, nb, nc = a.blocks[0].q.lif, b.blocks[0].q.lif, c.blocks[0].q.lif
    assert torch.equal(na.theta_n, nb.theta_n) and torch.equal(na.beta_n, nb.beta_n)
    assert not torch.equal(na.theta_n, nc.theta_n)
    assert float((na.theta_n / 0.5 - 1).abs().max()) <= 0.2 + 1e-6 and float(na.beta_n.max()) <= 1.0
    # different layers draw differently from the same seed
    assert not torch.equal(a.blocks[0].q.lif.theta_n, a.blocks[0].k.lif.theta_n)
    # evaluation noise is seeded: the same input gives the same integer output, twice and across copies
    b.load_state_dict(a.state_dict())
    x = torch.rand(6, 1, 8, 8)
    pixels = digits_pixels(torch.round(x * 16) / 16)
    ia, ib = a.to_integer(), b.to_integer()
    assert torch.equal(ia(pixels), ib(pixels)) and torch.equal(ia(pixels), ia(pixels))
    q = ia.blocks[0].q[1]
    assert q.noise((4, 6, 16, 8)) is not None and torch.equal(q.noise((4, 6, 16, 8)), q.noise((4, 6, 16, 8)))
    # the frozen noise pattern is shared over the batch: a digit's result does not depend on its batch
    assert torch.equal(ia(pixels[:2]), ia(pixels)[:2])
    a.eval()
    assert torch.equal(a(x), a(x))
    assert torch.allclose(a(x[:2]), a(x)[:2])


# ---- the whole model: float vs integer ----------------------------------------------------------------

def test_patches_order():
    x = torch.arange(64).reshape(1, 1, 8, 8)
    p = patches(x)
    # token 0 = rows 0-1, cols 0-1; token 1 = rows 0-1, cols 2-3; token 4 = rows 2-3, cols 0-1
    assert p[0, 0].tolist() == [0, 1, 8, 9] and p[0, 1].tolist() == [2, 3, 10, 11]
    assert p[0, 4].tolist() == [16, 17, 24, 25]


def test_integer_model_tracks_the_float_model():
    """Untrained, with the default variation model. The stem's 8-bit weights (scale 2^-4 here) move a
    code by at most one step: measured 92.6 % of codes equal, 100 % within one, 89 % equal predictions."""
    from golden.data import digits_split

    torch.manual_seed(0)
    split = digits_split()
    model = Matterhorn(dim=16, heads=2, time_steps=4)
    model.eval()
    x = split.x_test[:120]
    imodel = model.to_integer()
    codes_f = model.codes(model.stem_activations(x))
    codes_i = imodel.codes(digits_pixels(x))
    assert (codes_f == codes_i).float().mean() >= 0.9
    assert bool(((codes_f - codes_i).abs() <= 1).all())
    out = imodel.forward_layers(digits_pixels(x))
    # the integer model's encoder is exactly the golden MTTS encoder of its codes
    assert torch.equal(out["mtts_spikes"], mtts_spikes(imodel.mtts, mtts_encode(imodel.mtts, out["codes"])))
    for name, value in out.items():
        assert not value.is_floating_point(), name
    agree = (model(x).argmax(1) == out["logits"].argmax(1)).float().mean()
    assert agree >= 0.8


def test_integer_model_refuses_float_pixels():
    with pytest.raises(ValueError, match="integer pixels"):
        Matterhorn(dim=8, heads=2, time_steps=4).to_integer()(torch.rand(2, 1, 8, 8))


def test_training_recipe_learns_quickly(tmp_path):
    """One short epoch of a tiny Matterhorn through the shared trainer beats chance clearly, and the
    checkpoint reloads into the same integer model (measured 54 % held-out after the one epoch)."""
    from spikeforge.training import load_checkpoint, train

    torch.set_num_threads(1)
    report = train("matterhorn", epochs=1, seed=0, out=tmp_path / "m.pt", progress=False,
                   overrides={"dim": 8, "heads": 2, "time_steps": 4, "batch_size": 32, "lr": 0.01})
    assert report.metrics["test_accuracy"] > 0.3
    model, ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt["recipe"] == "matterhorn" and model.mtts.time_steps == 4

    # the checkpoint tools: the report's silent fractions grow with mask and dead zone, and the
    # vector writer produces a hash-checked set whose silent total the golden encoder reproduces
    from golden.mtts import MTTSSpec, mtts_silent
    from golden.vectors import load_vectors
    from spikeforge.training.matterhorn import activation_vectors, held_out_report

    rep = held_out_report(str(tmp_path / "m.pt"), dead_zones=(0, 2))
    assert rep["integer_accuracy"] > 0.3 and rep["values"] == 450 * 16 * 8
    no_dz, dz = rep["rows"]
    assert no_dz["silent_plain"] <= no_dz["silent_mask"] == no_dz["silent_mask_dead_zone"]
    assert dz["silent_mask_dead_zone"] >= dz["silent_mask"] == no_dz["silent_mask"]
    # |S - x_hat| <= |S - x| + |x - x_hat| <= bound + (R / T - 1), R = 32 codes, T = 4
    assert dz["dead_zone_max_error"] <= dz["dead_zone_error_bound"] + 32 // 4 - 1
    activation_vectors(str(tmp_path / "m.pt"), tmp_path / "vec", images=2, lanes=4)
    vec = load_vectors(tmp_path / "vec", block="matterhorn-activations")
    spec = MTTSSpec.from_dict(vec.spec)
    assert vec["values"].shape == (2 * 16 * 8 // 4, 4) and spec.emit == "spikes"
    assert int(mtts_silent(spec, torch.as_tensor(vec["values"]).long()).sum()) == vec.meta["silent_total"]


# ---- the committed vectors from the trained model -----------------------------------------------------

DATA = Path(__file__).resolve().parents[1] / "sim" / "data" / "matterhorn_mtts"


def test_committed_activation_vectors_verify_and_match_their_manifest():
    from golden.mtts import MTTSSpec, mtts_silent
    from golden.vectors import load_vectors

    vectors = load_vectors(DATA, block="matterhorn-activations")  # checks every sha256
    spec = MTTSSpec.from_dict(vectors.spec)
    values = torch.as_tensor(vectors["values"]).to(torch.int64)
    assert values.numel() >= 20_000 and values.shape[1] == spec.lanes
    assert int(mtts_silent(spec, values).sum()) == vectors.meta["silent_total"]
    fixed.check_range(values, spec.input_width, spec.signed, "committed values")


# ---- log-quantized weights with the memory's mismatch ---------------------------------------------------

def _hand_log_model(**kw):
    model = Matterhorn(dim=8, heads=2, time_steps=2, weight_levels=3, **kw)
    with torch.no_grad():
        w = model.blocks[0].q.linear.weight
        w.zero_()
        w[0, :5] = torch.tensor([0.5, 0.26, 0.12, 0.01, -0.35])
        model.blocks[0].q.linear.bias.fill_(0.3)
    return model.eval()


def test_log_weights_by_hand():
    """L = 3 levels, peak 0.5 -> f = (L - 1) - round_log2(0.5) = 3; x = |w| 2^3 = 4, 2.08, 0.96, 0.08, 2.8
    -> q = 4, 2, 1 (2^-1/2 <= 0.96 < 2^1/2), 0 (x < 1/2), -2 (2.8 < 2^1.5): by the rounding rule."""
    model = _hand_log_model()
    lin = model.to_integer().blocks[0].q[0]
    assert (lin.weight_frac, lin.input_frac) == (3, 0)
    assert lin.weight[0, :5].tolist() == [4, 2, 1, 0, -2] and int(lin.weight[1:].abs().sum()) == 0
    assert lin.bias.tolist() == [round(0.3 * 8)] * 8
    # the float model runs on exactly the held weights q 2^-f, the gradient reaches the trained weight
    unit = model.blocks[0].q
    held = model.weights.float_weight(unit.linear.weight, unit.layer)
    assert held[0, :5].tolist() == [0.5, 0.25, 0.125, 0.0, -0.25]
    held.sum().backward()
    assert torch.equal(unit.linear.weight.grad, torch.ones(8, 8))


def test_log_weights_mismatch_is_the_documented_cell_formula():
    """With gain and offset sd: w_eff = (q << 4) + ((q dg) >> 12) + do for every cell (r = input,
    c = output) of layer id 0 (block 0's q), dg and do from an independent formulation of the hash."""
    from tests.test_synapse import reference_hash

    def z(h):
        return 2 * ((h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255)) - 765

    model = _hand_log_model(weight_gain_sigma=0.05, weight_offset_sigma=4, mismatch_seed=7)
    lin = model.to_integer().blocks[0].q[0]
    assert (lin.weight_frac, lin.input_frac) == (3, 4)
    q = [4, 2, 1, 0, -2] + [0] * 3
    sigma = round(0.05 * 65536)
    for c in range(8):               # output
        for r in range(8):           # input
            qq = q[r] if c == 0 else 0
            dg = (z(reference_hash(7, 0, 0, r, c)) * sigma) >> 8
            do = (z(reference_hash(7, 0, 1, r, c)) * 4) >> 8
            assert int(lin.weight[c, r]) == (qq << 4) + ((qq * dg) >> 12) + do, (r, c)
    # the offset reaches the zero cells too (an analog cell leaks whatever it stores)
    assert int(lin.weight[1:].abs().sum()) > 0
    # the float weights are the same cells / 2^(f + F)
    unit = model.blocks[0].q
    held = model.weights.float_weight(unit.linear.weight, unit.layer).detach().double()
    assert torch.equal(held * 2 ** 7, lin.weight.double())


def test_log_weight_model_integer_tracks_float_and_bad_settings_are_refused():
    from golden.data import digits_split

    torch.manual_seed(0)
    model = Matterhorn(dim=16, heads=2, time_steps=4, weight_levels=7, weight_gain_sigma=0.05,
                       weight_offset_sigma=4).eval()
    x = digits_split().x_test[:120]
    agree = (model(x).argmax(1) == model.to_integer()(digits_pixels(x)).argmax(1)).float().mean()
    assert agree >= 0.8
    with pytest.raises(ValueError, match="weight_levels must be an integer in 0 .. 24"):
        Matterhorn(dim=8, heads=2, weight_levels=-1)
    with pytest.raises(ValueError, match="need log-quantized weights"):
        Matterhorn(dim=8, heads=2, weight_gain_sigma=0.05)
    with pytest.raises(ValueError, match="weight_gain_sigma must be in 0 .. 0.25"):
        Matterhorn(dim=8, heads=2, weight_levels=7, weight_gain_sigma=0.5)


@pytest.mark.parametrize("impl", ["precomputed", "table", "regenerate"])
def test_the_three_log_memories_hold_the_integer_models_weights(impl):
    """Every cell of a log-weight unit read out of ``LogWeightMemory`` (Amaranth simulation, one read a
    cycle) in each mismatch implementation == the integer model's weight (the core's memory image):
    the memory that stores codes and corrects them on chip feeds the MAC the same numbers."""
    from golden.logquant import log_quantize
    from rtl.logmem import LogWeightMemory
    from rtl.pysim import read_weight_memory

    torch.manual_seed(2)
    model = Matterhorn(dim=8, heads=2, time_steps=2, weight_levels=7, weight_gain_sigma=0.05,
                       weight_offset_sigma=4, mismatch_seed=3)
    unit = model.blocks[0].mlp1                       # 8 inputs -> 16 outputs, layer id 5
    lin = unit.quantize(8)
    spec = model.weights.synapse_spec(unit.layer, 8, 16, 4, impl)
    codes = log_quantize(model.weights.quant_spec, unit.linear.weight.detach().double()).codes.t()
    words = read_weight_memory(LogWeightMemory(spec, init_codes=codes), 8, spec.groups)
    got = torch.tensor([[w for g in range(spec.groups) for w in words[r][g]] for r in range(8)])
    assert torch.equal(got, lin.weight.t())
