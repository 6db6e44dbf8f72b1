"""Log-quantized weights: a sign and a power of two, so a multiply becomes a shift.

Code format (``LogQuantSpec``)
------------------------------
A code is B bits: the sign bit at the top, the magnitude field m (B - 1 bits)
below it::

    code = (sign << (B - 1)) | m
    m = 0                  -> the weight is 0 (the explicit zero code; the quantizer
                              writes code 0, and "negative zero" 1 << (B-1) also decodes to 0)
    m = 1 .. L             -> the weight is (-1)^sign * 2^(m - 1)   (shift s = m - 1)
    m = L + 1 .. 2^(B-1)-1 -> not a code: rejected (ValueError)

``L`` (``levels``) is the exponent range: L powers of two 2^0 .. 2^(L-1). The
decoded integer weight ``q`` is in the layer's integer grid; its real value is
``q * 2^-f`` with the layer's scale exponent ``f`` (``LogQuantized.scale_exp``,
one per layer, chosen by ``choose_scale_exp`` or given).

Rounding rule (``log_quantize``)
--------------------------------
With ``x = |w| * 2^f`` (exact in float64, since 2^f is a power of two)::

    x <  1/2                        -> code 0 (zero)
    x >= 1/2                        -> s = clamp(round_log2(x), 0, L - 1),  sign = (w < 0)
    round_log2(x) = e      where 2^(e - 1/2) <= x < 2^(e + 1/2)

i.e. the nearest power of two in the log domain, the geometric midpoint
2^(e + 1/2) rounding up (it is irrational, so no representable float lies on it).

Error bound: for 2^(-1/2) <= x <= 2^(L - 1/2) the decoded value lies within a
factor sqrt(2) of x, so ``|q - x| <= (sqrt(2) - 1) * x``; for 1/2 <= x < 2^(-1/2),
q = 1 and ``|q - x| <= x``; for x < 1/2, q = 0 and ``|q - x| < 1/2``; above
2^(L - 1/2) the value clips to 2^(L - 1). Representable values (0 and
+-2^(s - f)) round-trip exactly.

The seed's ``analog_aware_quantization`` used ``log1p(abs(w))`` and lost the
sign; here the sign is a bit of the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import fixed
from .spec import SpecBase, check_int

#: largest exponent range (2^(L-1) must leave room for the fixed-point grid in 32-bit weights)
MAX_LEVELS = 24


@dataclass(frozen=True)
class LogQuantSpec(SpecBase):
    """A log-quantized weight code: sign bit + (B - 1)-bit magnitude field with L levels.

    Attributes
    ----------
    code_bits : B, bits per code including the sign bit (3 .. 8).
    levels : L, number of powers of two 2^0 .. 2^(L-1) (1 .. min(2^(B-1) - 1, 24));
        magnitude codes above L are invalid.
    """

    block = "logquant"

    code_bits: int = 4
    levels: int = 7

    def __post_init__(self):
        check_int("LogQuantSpec", "code_bits", self.code_bits, 3, 8)
        check_int("LogQuantSpec", "levels", self.levels, 1, min((1 << (self.code_bits - 1)) - 1, MAX_LEVELS))

    @property
    def sign_bit(self) -> int:
        return 1 << (self.code_bits - 1)

    @property
    def max_code(self) -> int:
        """Largest valid code: negative sign, magnitude L."""
        return self.sign_bit | self.levels

    @property
    def shift_bits(self) -> int:
        """Bits of the shift amount s = m - 1 (0 .. L - 1)."""
        return fixed.bits_for(self.levels - 1)

    @property
    def max_weight(self) -> int:
        """Largest |q| = 2^(L - 1)."""
        return 1 << (self.levels - 1)


@dataclass
class LogQuantized:
    """Codes (int64, any shape) and the layer's scale exponent f: real weight = q * 2^-f."""

    codes: torch.Tensor
    scale_exp: int


def check_codes(spec: LogQuantSpec, codes, what: str = "weight codes") -> torch.Tensor:
    """Return codes as int64, or raise ValueError if any is not a valid code of ``spec``."""
    t = torch.as_tensor(codes)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{what} must be an integer tensor, got dtype {t.dtype}")
    t = t.to(torch.int64)
    bad = (t < 0) | (t >= (1 << spec.code_bits)) | ((t & (spec.sign_bit - 1)) > spec.levels)
    if bool(bad.any()):
        first = int(t[bad].flatten()[0])
        raise ValueError(
            f"{what} hold {int(bad.sum())} invalid code(s), e.g. {first}: a {spec.code_bits}-bit code is "
            f"sign << {spec.code_bits - 1} | m with magnitude m in 0 .. {spec.levels} (levels = {spec.levels}); "
            f"valid codes are 0 .. {spec.levels} and {spec.sign_bit} .. {spec.max_code}")
    return t


def decode_codes(spec: LogQuantSpec, codes) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes -> (sign 0/1, magnitude field m, shift s = max(m - 1, 0)), all int64."""
    t = check_codes(spec, codes)
    sign = t >> (spec.code_bits - 1)
    mag = t & (spec.sign_bit - 1)
    return sign, mag, torch.clamp(mag - 1, min=0)


def log_decode(spec: LogQuantSpec, codes) -> torch.Tensor:
    """Codes -> integer weights q = (-1)^sign 2^(m - 1), or 0 for m = 0 (int64)."""
    sign, mag, shift = decode_codes(spec, codes)
    q = torch.where(mag > 0, torch.ones_like(mag) << shift, torch.zeros_like(mag))
    return torch.where(sign == 1, -q, q)


def encode(spec: LogQuantSpec, sign, mag) -> torch.Tensor:
    """(sign, m) -> code = sign << (B - 1) | m."""
    return (torch.as_tensor(sign, dtype=torch.int64) << (spec.code_bits - 1)) | torch.as_tensor(mag, dtype=torch.int64)


def round_log2(x: torch.Tensor) -> torch.Tensor:
    """e with 2^(e - 1/2) <= x < 2^(e + 1/2), for x > 0 (float64, exact via frexp)."""
    mant, exp = torch.frexp(x.double())          # x = mant * 2^exp, 0.5 <= mant < 1
    up = (mant * 2.0) >= math.sqrt(2.0)          # 2 * mant in [1, 2): round up past sqrt(2)
    return (exp.to(torch.int64) - 1) + up.to(torch.int64)


def choose_scale_exp(spec: LogQuantSpec, weights: torch.Tensor) -> int:
    """The per-layer f that maps the largest |w| onto the top level: f = (L - 1) - round_log2(max|w|).

    ``max|w|`` is taken in float64 over the whole layer; ``round_log2(x)`` is the e with
    2^(e - 1/2) <= x < 2^(e + 1/2) (exact: frexp gives x = m 2^p, 1/2 <= m < 1, and
    e = p - 1 + [2m > sqrt(2)]). So round_log2(max|w| 2^f) = L - 1: the peak gets the top
    magnitude code L. f may be negative (a peak above 2^(L - 1/2)). An all-zero layer gets
    f = 0; a non-finite weight is a ValueError.
    """
    w = torch.as_tensor(weights).double()
    peak = float(w.abs().max()) if w.numel() else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        if not math.isfinite(peak):
            raise ValueError("weights must be finite to be log-quantized")
        return 0
    return (spec.levels - 1) - int(round_log2(torch.tensor(peak)))


def log_quantize(spec: LogQuantSpec, weights: torch.Tensor, scale_exp: int | None = None) -> LogQuantized:
    """Float weights -> codes by the rounding rule of the module docstring (per-layer scale 2^f)."""
    w = torch.as_tensor(weights)
    if not w.is_floating_point():
        raise ValueError(f"log_quantize takes float weights, got dtype {w.dtype}")
    w = w.double()
    if not bool(torch.isfinite(w).all()):
        raise ValueError("weights must be finite to be log-quantized")
    f = choose_scale_exp(spec, w) if scale_exp is None else int(scale_exp)
    x = w.abs() * (2.0 ** f)
    nonzero = x >= 0.5
    safe = torch.where(nonzero, x, torch.ones_like(x))
    s = torch.clamp(round_log2(safe), 0, spec.levels - 1)
    mag = torch.where(nonzero, s + 1, torch.zeros_like(s))
    sign = ((w < 0) & nonzero).to(torch.int64)
    return LogQuantized(encode(spec, sign, mag), f)


def log_dequantize(spec: LogQuantSpec, quantized: LogQuantized) -> torch.Tensor:
    """Codes -> real weights q * 2^-f (float64)."""
    return log_decode(spec, quantized.codes).double() * (2.0 ** -quantized.scale_exp)


# ---- reference vectors ------------------------------------------------------------------------------

#: fraction bits of the real weights in a log-quantizer vector file: w = weights / 2^INPUT_FRAC, exact in float64
INPUT_FRAC = 16


def logquant_random_weights(n: int, seed: int = 0) -> torch.Tensor:
    """Seeded weights (n,) int64 in units 2^-INPUT_FRAC that exercise the rounding rule: log-uniform
    magnitudes 1 .. 2^22, every power of two, the integers on either side of every geometric midpoint
    2^(e + 1/2), zeros, both signs."""
    if n < 1:
        raise ValueError(f"need n >= 1 weights, got {n}")
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=gen, dtype=torch.float64) * 22
    mags = torch.floor(torch.exp2(u)).to(torch.int64)
    edges = [0]
    for e in range(23):
        mid = math.isqrt(1 << (2 * e + 1))             # floor(2^(e + 1/2))
        edges += [1 << e, mid, mid + 1, (1 << e) - 1]
    edges_t = torch.tensor(sorted(set(edges)), dtype=torch.int64)
    pick = torch.rand(n, generator=gen) < 0.4
    mags = torch.where(pick, edges_t[torch.randint(0, len(edges_t), (n,), generator=gen)], mags)
    signs = torch.where(torch.rand(n, generator=gen) < 0.5, -1, 1)
    out = mags * signs
    out[0] = 1 << 22                                   # the peak: fixes the layer's scale exponent
    return out


def logquant_reference(spec: LogQuantSpec, weights) -> dict[str, torch.Tensor]:
    """Arrays of a log-quantizer vector file: ``weights`` (n,) int64, the real weights in units
    2^-INPUT_FRAC; ``scale_exp`` (1,) int64, f = ``choose_scale_exp`` of the layer; ``codes`` (n,)
    int64 = ``log_quantize`` at that f; ``decoded`` (n,) int64, q = ``log_decode`` (real value q 2^-f)."""
    w = torch.as_tensor(weights)
    if w.is_floating_point() or w.dim() != 1:
        raise ValueError(f"logquant weights must be a 1-D integer tensor (units 2^-{INPUT_FRAC}); got "
                         f"{w.dtype}{tuple(w.shape)}")
    if w.numel() and int(w.abs().max()) >= 1 << 53:
        raise ValueError("logquant weights must be below 2^53 in magnitude (exact in float64)")
    real = w.to(torch.float64) * 2.0 ** -INPUT_FRAC
    quantized = log_quantize(spec, real)
    return {"weights": w.to(torch.int64), "scale_exp": torch.tensor([quantized.scale_exp], dtype=torch.int64),
            "codes": quantized.codes, "decoded": log_decode(spec, quantized.codes)}
