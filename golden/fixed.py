"""The fixed-point contract: integer operations shared by every golden model.

All functions take and return integer torch tensors (int64 internally) and never
touch floating point, so the same input gives the same bits on every machine.
The hardware implements exactly these equations; ``docs/numeric-contract.md``
repeats them.

Notation: a *W-bit signed* value lies in [-2^(W-1), 2^(W-1) - 1]; a *W-bit
unsigned* value in [0, 2^W - 1]. ``x >> s`` is an arithmetic right shift, i.e.
``floor(x / 2^s)`` (rounds toward minus infinity, also for negative x).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

OVERFLOW_MODES = ("saturate", "wrap")


def int_min(width: int, signed: bool) -> int:
    """Smallest representable value: -2^(W-1) if signed else 0."""
    return -(1 << (width - 1)) if signed else 0


def int_max(width: int, signed: bool) -> int:
    """Largest representable value: 2^(W-1) - 1 if signed else 2^W - 1."""
    return (1 << (width - 1)) - 1 if signed else (1 << width) - 1


def bits_for(value: int) -> int:
    """Unsigned bits needed to hold 0 .. value (at least 1)."""
    return max(1, int(value).bit_length())


def signed_bits_for(lo: int, hi: int) -> int:
    """Smallest W such that [lo, hi] fits in W-bit two's complement."""
    width = 1
    while lo < int_min(width, True) or hi > int_max(width, True):
        width += 1
    return width


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format Q(width, frac): real value = integer * 2^-frac.

    ``width`` counts every bit including the sign bit when ``signed``.
    """

    width: int
    frac: int = 0
    signed: bool = True

    def __post_init__(self):
        if self.width < 1:
            raise ValueError(f"FixedFormat.width must be >= 1, got {self.width}")
        if self.frac < 0:
            raise ValueError(f"FixedFormat.frac must be >= 0, got {self.frac}")

    @property
    def min_int(self) -> int:
        return int_min(self.width, self.signed)

    @property
    def max_int(self) -> int:
        return int_max(self.width, self.signed)

    def quantize(self, x: torch.Tensor, overflow: str = "saturate") -> torch.Tensor:
        """Float -> integer code: q = fit(round_half_even(x * 2^frac)).

        This is the only place a float enters the integer world (at the model's
        input or when weights are quantized), never inside an integer forward.
        """
        q = torch.round(x.double() * (1 << self.frac)).to(torch.int64)
        return fit(q, self.width, self.signed, overflow)

    def to_float(self, q: torch.Tensor) -> torch.Tensor:
        """Integer code -> real value: x = q * 2^-frac."""
        return q.double() / (1 << self.frac)


def _as_int(x) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.is_floating_point() or t.is_complex():
        raise TypeError(f"integer golden arithmetic got a {t.dtype} tensor; integer tensors only")
    return t.to(torch.int64)


def saturate(x, width: int, signed: bool = True) -> torch.Tensor:
    """sat_W(x) = min(max(x, min_W), max_W)."""
    return torch.clamp(_as_int(x), int_min(width, signed), int_max(width, signed))


def wrap(x, width: int, signed: bool = True) -> torch.Tensor:
    """wrap_W(x) = ((x - min_W) mod 2^W) + min_W  (two's complement truncation)."""
    x = _as_int(x)
    lo = int_min(width, signed)
    return torch.remainder(x - lo, 1 << width) + lo


def fit(x, width: int, signed: bool = True, overflow: str = "saturate") -> torch.Tensor:
    """Bring x into W bits by ``saturate`` (default) or ``wrap``."""
    if overflow == "saturate":
        return saturate(x, width, signed)
    if overflow == "wrap":
        return wrap(x, width, signed)
    raise ValueError(f"overflow must be one of {OVERFLOW_MODES}, got {overflow!r}")


def add(a, b, width: int, signed: bool = True, overflow: str = "saturate") -> torch.Tensor:
    """a (+) b = fit_W(a + b), the sum computed exactly then saturated or wrapped."""
    return fit(_as_int(a) + _as_int(b), width, signed, overflow)


def add_sat(a, b, width: int, signed: bool = True) -> torch.Tensor:
    """sat_W(a + b)."""
    return add(a, b, width, signed, "saturate")


def add_wrap(a, b, width: int, signed: bool = True) -> torch.Tensor:
    """wrap_W(a + b)."""
    return add(a, b, width, signed, "wrap")


def asr(x, shift: int) -> torch.Tensor:
    """Arithmetic shift right: x >> s = floor(x / 2^s), s >= 0."""
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    return _as_int(x) >> shift


def mul_shift(x, m, frac: int) -> torch.Tensor:
    """Fixed-point product: (x * m) >> f = floor(x * m / 2^f), exact in int64."""
    return asr(_as_int(x) * _as_int(m), frac)


def check_range(x, width: int, signed: bool, what: str) -> torch.Tensor:
    """Return x as int64, or raise ValueError naming ``what`` if any element does not fit W bits.

    Used on inputs, where a value that does not fit is a caller error, never
    something to wrap silently.
    """
    t = torch.as_tensor(x)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{what} must be an integer tensor, got dtype {t.dtype}")
    t = t.to(torch.int64)
    if t.numel():
        lo, hi = (int(m) for m in torch.aminmax(t))  # one pass over the tensor
        if lo < int_min(width, signed) or hi > int_max(width, signed):
            kind = "signed" if signed else "unsigned"
            raise ValueError(
                f"{what} holds values in [{lo}, {hi}], outside the {width}-bit {kind} range "
                f"[{int_min(width, signed)}, {int_max(width, signed)}]")
    return t
