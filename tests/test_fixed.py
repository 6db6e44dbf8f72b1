"""The fixed-point contract, checked against hand-computed values and Python's own integers."""

import random

import pytest
import torch

from golden import fixed


def t(values):
    return torch.tensor(values, dtype=torch.int64)


def test_ranges_by_hand():
    assert (fixed.int_min(8, True), fixed.int_max(8, True)) == (-128, 127)
    assert (fixed.int_min(8, False), fixed.int_max(8, False)) == (0, 255)
    assert fixed.signed_bits_for(-128, 127) == 8 and fixed.signed_bits_for(-129, 0) == 9
    assert fixed.bits_for(0) == 1 and fixed.bits_for(255) == 8 and fixed.bits_for(256) == 9


def test_saturate_and_wrap_by_hand():
    assert fixed.saturate(t([-200, -128, 0, 127, 300]), 8).tolist() == [-128, -128, 0, 127, 127]
    assert fixed.wrap(t([128, -129, 255, 256, -1]), 8).tolist() == [-128, 127, -1, 0, -1]
    assert fixed.wrap(t([256, 257, -1]), 8, signed=False).tolist() == [0, 1, 255]
    assert fixed.add_sat(t([100]), t([100]), 8).tolist() == [127]
    assert fixed.add_wrap(t([100]), t([100]), 8).tolist() == [-56]


def test_asr_rounds_toward_minus_infinity():
    assert fixed.asr(t([7, -7, -1, -8, 8]), 2).tolist() == [1, -2, -1, -2, 2]
    assert fixed.mul_shift(t([-5]), t([192]), 8).tolist() == [-4]  # floor(-3.75)
    assert fixed.mul_shift(t([80]), t([192]), 8).tolist() == [60]


def test_against_python_integers():
    rng = random.Random(0)
    for _ in range(2000):
        w = rng.randint(2, 20)
        x = rng.randint(-(1 << 24), 1 << 24)
        m, f = rng.randint(0, 1 << 12), rng.randint(0, 12)
        assert int(fixed.wrap(t([x]), w)) == ((x + (1 << (w - 1))) % (1 << w)) - (1 << (w - 1))
        assert int(fixed.saturate(t([x]), w)) == max(-(1 << (w - 1)), min((1 << (w - 1)) - 1, x))
        assert int(fixed.mul_shift(t([x]), t([m]), f)) == (x * m) // (1 << f)


def test_quantize_is_round_half_even_then_saturate():
    fmt = fixed.FixedFormat(width=8, frac=2)
    assert fmt.quantize(torch.tensor([0.125, 0.375, -0.125, 100.0, -100.0])).tolist() == [0, 2, 0, 127, -128]
    assert fmt.to_float(t([6])).item() == 1.5


def test_float_tensors_are_refused():
    with pytest.raises(TypeError, match="integer tensors only"):
        fixed.saturate(torch.tensor([1.5]), 8)
    with pytest.raises(ValueError, match="outside the 4-bit signed range"):
        fixed.check_range(t([9]), 4, True, "input")
