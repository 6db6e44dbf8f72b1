"""Integer layer norm: spec validation, hand-computed tokens, an independent pure-Python
implementation (math.isqrt, Python's floor division), the output-width bound at its worst
case, bad input, and the RTL in Amaranth's simulator (bit for bit, random stalls; cycles
without stalls equal to the docstring's formula; a parameter reload between tokens)."""

from __future__ import annotations

import math

import pytest
import torch

from golden.layernorm import (LayerNormSpec, isqrt_exact, layer_norm, layer_norm_exact, layer_norm_random_inputs,
                              layer_norm_reference)
from golden.spec import SpecError
from rtl.layernorm import (KIND_DATA, LayerNorm, layernorm_expected_beats, layernorm_input_beats,
                           layernorm_output_layout, layernorm_param_beats)
from rtl.pysim import run_stream
from rtl.streams import unpack


def python_layer_norm(u: list[int], gamma: list[int], beta: list[int], eps: int) -> list[int]:
    """The docstring's equations in plain Python integers (no torch, math.isqrt)."""
    d = len(u)
    mu = sum(u) // d
    dev = [x - mu for x in u]
    sigma = math.isqrt(sum(v * v for v in dev) // d + eps)
    return [(v * g) // sigma + b for v, g, b in zip(dev, gamma, beta)]


# ---- spec -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"dim": 1}, "dim = 1 is out of range"),
    ({"input_width": 25}, "input_width = 25 is out of range"),
    ({"gamma_width": 19}, "gamma_width = 19 is out of range"),
    ({"beta_width": 1}, "beta_width = 1 is out of range"),
    ({"eps": 0}, "eps = 0 is out of range"),
    ({"input_width": 4, "eps": 256}, "eps = 256 is out of range"),
])
def test_spec_errors_name_the_field(changes, message):
    with pytest.raises(SpecError, match=message):
        LayerNormSpec(**changes)


def test_spec_dict_round_trip():
    spec = LayerNormSpec(dim=7, input_width=10, gamma_width=9, beta_width=11, eps=5)
    assert LayerNormSpec.from_dict(spec.to_dict()) == spec


def test_numerator_widths_at_their_edge():
    spec = LayerNormSpec(dim=3, input_width=2, gamma_width=2, beta_width=2, eps=15)
    assert (spec.sum_width, spec.product_width) == (4, 4)


def test_widths_by_hand():
    spec = LayerNormSpec(dim=24, input_width=16, gamma_width=12, beta_width=12)
    assert spec.sum_width == 20                 # 24 * 2^15 + 23 = 786,455 < 2^20
    assert spec.square_sum_width == 37          # 24 * 2^32 < 2^37
    assert spec.product_width == 28             # (2^16 - 1) 2^11 + 2^17 - 2 = 134,346,750 >= 2^27
    assert spec.quotient_bound == 20067         # floor(2 sqrt(24) 2^11) + 1 = floor(20066.2) + 1
    assert spec.output_width == 16              # 20067 + 2048 = 22,115 < 2^15


# ---- golden by hand ---------------------------------------------------------------------------------

def test_hand_token_positive_mean():
    # S1 = 10, mu = 2, dev = -1 0 1 2, S2 = 6, var = 1, sigma = isqrt(2) = 1
    y = layer_norm_exact(torch.tensor([[1, 2, 3, 4]]), torch.tensor([256] * 4), torch.tensor([0, 1, 2, 3]), 1)
    assert y.tolist() == [[-256, 1, 258, 515]]


def test_hand_token_negative_mean_and_floor():
    # S1 = -1 -> mu = floor(-1/4) = -1; dev = 0 1 1 1; S2 = 3, var = 0, sigma = isqrt(5) = 2;
    # gamma = -3: floor(-3/2) = -2 (not -1: the floor rounds toward -inf)
    y = layer_norm_exact(torch.tensor([[-1, 0, 0, 0]]), torch.tensor([-3] * 4), torch.tensor([7] * 4), 5)
    assert y.tolist() == [[7, 5, 5, 5]]


def test_isqrt_by_hand_and_against_math():
    v = torch.tensor([0, 1, 2, 3, 4, 15, 16, 17, (1 << 61) - 1, (1 << 62) - 1])
    assert isqrt_exact(v).tolist() == [math.isqrt(int(x)) for x in v]
    assert isqrt_exact(torch.tensor([99])).tolist() == [9]
    with pytest.raises(ValueError, match="0 <= v < 2\\^62"):
        isqrt_exact(torch.tensor([-1]))


@pytest.mark.parametrize("spec", [LayerNormSpec(), LayerNormSpec(dim=3, input_width=5, gamma_width=4, beta_width=3,
                                                                   eps=7),
                                  LayerNormSpec(dim=64, input_width=20, gamma_width=16, beta_width=16, eps=1000)])
def test_golden_equals_independent_python(spec):
    inputs = layer_norm_random_inputs(spec, 200, seed=3)
    y = layer_norm(spec, **inputs)
    gamma, beta = inputs["gamma"].tolist(), inputs["beta"].tolist()
    for row, out in zip(inputs["u"].tolist(), y.tolist()):
        assert out == python_layer_norm(row, gamma, beta, spec.eps)


def test_output_bound_holds_and_is_nearly_reached():
    """The bound |floor(dev gamma / sigma)| <= quotient_bound at its worst case: one channel at
    an extreme among zeros, gamma = -2^(Wg-1), eps = 1 (|dev / sigma| -> 2 sqrt(D) (D - 1) / D)."""
    for d in (2, 5, 24, 100):
        spec = LayerNormSpec(dim=d, input_width=16, gamma_width=12, beta_width=2)
        u = torch.zeros(2, d, dtype=torch.int64)
        u[0, 0], u[1, 0] = -(1 << 15), (1 << 15) - 1
        gamma = torch.full((d,), -(1 << 11), dtype=torch.int64)
        y = layer_norm(spec, u, gamma, torch.zeros(d, dtype=torch.int64))   # raises if past output_width
        worst = int(y.abs().max())
        assert worst <= spec.quotient_bound
        assert worst >= spec.quotient_bound * (d - 1) / d * 0.45      # the bound is not loose by more than ~2x


def test_reference_statistics_by_independent_python():
    spec = LayerNormSpec(dim=6, input_width=8, gamma_width=6, beta_width=6, eps=2)
    inputs = layer_norm_random_inputs(spec, 40, seed=9)
    ref = layer_norm_reference(spec, **inputs)
    for row, mu, var, sigma in zip(inputs["u"].tolist(), ref["mu"].tolist(), ref["var"].tolist(),
                                   ref["sigma"].tolist()):
        assert mu == sum(row) // 6
        assert var == sum((x - mu) ** 2 for x in row) // 6
        assert sigma == math.isqrt(var + 2)


def test_random_inputs_reach_the_corners():
    spec = LayerNormSpec(dim=8, input_width=8)
    inputs = layer_norm_random_inputs(spec, 400, seed=1)
    ref = layer_norm_reference(spec, **inputs)
    assert int((ref["var"] == 0).sum()) > 50                    # constant tokens: sigma = isqrt(eps)
    assert int(inputs["u"].min()) == -128 and int(inputs["u"].max()) == 127
    assert int(inputs["gamma"].min()) == -(1 << 11) and int(inputs["beta"].min()) == -(1 << 11)


# ---- bad input ------------------------------------------------------------------------------------

def test_bad_inputs_are_named():
    spec = LayerNormSpec(dim=4, input_width=6, gamma_width=5, beta_width=5)
    g, b = torch.zeros(4, dtype=torch.int64), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(SpecError, match=r"inputs have shape \(2, 3\); expected \(tokens, 4\)"):
        layer_norm(spec, torch.zeros(2, 3, dtype=torch.int64), g, b)
    with pytest.raises(SpecError, match="inputs must be integers"):
        layer_norm(spec, torch.zeros(2, 4), g, b)
    with pytest.raises(SpecError, match="outside the 6-bit signed range -32 .. 31: 0 .. 32"):
        layer_norm(spec, torch.tensor([[0, 0, 0, 32]]), g, b)
    with pytest.raises(SpecError, match=r"gamma has shape \(3,\); expected \(4,\)"):
        layer_norm(spec, torch.zeros(1, 4, dtype=torch.int64), g[:3], b)
    with pytest.raises(SpecError, match="beta outside its 5-bit signed range -16 .. 15"):
        layer_norm(spec, torch.zeros(1, 4, dtype=torch.int64), g, torch.tensor([0, 0, 16, 0]))
    with pytest.raises(TypeError, match="LayerNorm needs a LayerNormSpec"):
        LayerNorm({"dim": 4})


# ---- RTL in Amaranth's simulator ----------------------------------------------------------------

RTL_SPECS = {
    "D5-W8": LayerNormSpec(dim=5, input_width=8, gamma_width=6, beta_width=6, eps=3),
    "D2-W4": LayerNormSpec(dim=2, input_width=4, gamma_width=3, beta_width=2, eps=1),
    "D24-W16": LayerNormSpec(dim=24, input_width=16, gamma_width=12, beta_width=12, eps=1),
    # the numerators' widths at their edge: |S1| + D - 1 = 3 * 2 + 2 = 8 needs 4 bits (|S1| alone 3),
    # |x| + sigma - 1 = 3 * 2 + 6 = 12 needs 4 bits (|x| alone 3)
    "D3-W2": LayerNormSpec(dim=3, input_width=2, gamma_width=2, beta_width=2, eps=15),
}


def _run(spec, beats, n, **kw):
    run = run_stream(LayerNorm(spec), beats, n, max_cycles=200 * n * (spec.product_width + 8) + 1000, **kw)
    layout = layernorm_output_layout(spec)
    return run, [unpack(layout, w) for w in run.outputs]


@pytest.mark.parametrize("name", sorted(RTL_SPECS))
def test_rtl_bit_exact_with_stalls(name):
    spec = RTL_SPECS[name]
    tokens = 6 if spec.dim > 8 else 30
    inputs = layer_norm_random_inputs(spec, tokens, seed=5)
    ref = layer_norm_reference(spec, **inputs)
    expected = layernorm_expected_beats(spec, ref["y"])
    beats = layernorm_input_beats(spec, inputs["u"], inputs["gamma"], inputs["beta"])
    _, got = _run(spec, beats, len(expected), seed=11, valid_prob=0.6, ready_prob=0.5)
    assert got == expected


@pytest.mark.parametrize("name", ["D5-W8", "D24-W16"])
def test_rtl_cycles_equal_the_formula(name):
    spec = RTL_SPECS[name]
    d, tokens = spec.dim, 3
    inputs = layer_norm_random_inputs(spec, tokens, seed=2)
    beats = layernorm_input_beats(spec, inputs["u"], inputs["gamma"], inputs["beta"])
    run, _ = _run(spec, beats, tokens * d)
    # D PARAM beats in cycles 0 .. D-1, then token t's first DATA beat every token_cycles
    first = [run.accept_cycles[d + t * d] for t in range(tokens)]
    assert first == [d + t * LayerNorm.token_cycles(spec) for t in range(tokens)]
    assert run.accept_cycles[:d] == list(range(d))
    for t in range(tokens):
        last_data = run.accept_cycles[d + t * d + d - 1]
        assert last_data == first[t] + d - 1                     # back to back
        outs = run.output_cycles[t * d:(t + 1) * d]
        assert outs == [last_data + LayerNorm.first_output_latency(spec) + i * LayerNorm.channel_cycles(spec)
                        for i in range(d)]


def test_rtl_parameter_reload_between_tokens():
    """Tokens 0-1 with one table, then D PARAM beats reload it; tokens 2-3 use the new one."""
    spec = RTL_SPECS["D5-W8"]
    a = layer_norm_random_inputs(spec, 4, seed=21)
    b = layer_norm_random_inputs(spec, 4, seed=22)
    beats = (layernorm_input_beats(spec, a["u"][:2], a["gamma"], a["beta"])
             + layernorm_input_beats(spec, a["u"][2:], b["gamma"], b["beta"]))
    want = torch.cat([layer_norm(spec, a["u"][:2], a["gamma"], a["beta"]),
                      layer_norm(spec, a["u"][2:], b["gamma"], b["beta"])])
    _, got = _run(spec, beats, 4 * spec.dim, seed=4, valid_prob=0.7, ready_prob=0.7)
    assert got == layernorm_expected_beats(spec, want)
    assert layernorm_param_beats(spec, b["gamma"], b["beta"])[0]["kind"] != KIND_DATA
