"""Analog mismatch of a weight memory: a deterministic gain and offset error for every cell.

Counter-based generator
-----------------------
Every cell (row r, column c) of layer ``layer`` gets its deviation from a hash
of the key (seed, layer, kind, r, c), kind 0 for the gain and 1 for the offset.
No state, no table shared between golden and hardware: any cell can be
recomputed on its own, by Python, by torch, or on chip. All arithmetic is
modulo 2^32 on unsigned values and uses only add, shift and xor (Jenkins'
one-at-a-time mix applied to 32-bit words)::

    h = 0
    for v in (seed, layer, kind, r, c, 0, 0):    # each v < 2^32; the two zero
                                                 # rounds mix c into every bit
        h = (h + v)          mod 2^32
        h = (h + (h << 10))  mod 2^32
        h =  h ^ (h >> 6)
    h = (h + (h << 3))  mod 2^32
    h =  h ^ (h >> 11)
    h = (h + (h << 15)) mod 2^32

A Gaussian-like value from three 8-bit fields (Irwin-Hall, n = 3)::

    u_k = (h >> 8k) & 255,  k = 0, 1, 2
    z   = 2 (u_0 + u_1 + u_2) - 765          # odd integers in [-765, 765], mean 0
                                             # sd = sqrt(65535) = 255.998 ~ 256

so z / 256 is a unit normal to within 0.001 % in sd, truncated at +-2.99 sd.

Per-cell deviations (``MismatchSpec``)::

    dg = (z_gain   * gain_sigma)   >> 8      gain error, units of 2^-16 (gain = 1 + dg / 2^16)
    do = (z_offset * offset_sigma) >> 8      offset, units of the effective-weight LSB 2^-F

``>>`` is the arithmetic shift (floor). ``gain_sigma`` is the gain's standard
deviation in units of 2^-16, ``offset_sigma`` the offset's in LSBs of the
effective grid.

Optional shared components (a column's sense amplifier, a row's driver) add to
every cell of that column or row, keyed with the index ``ALL = 2^32 - 1`` (no
cell has it) in place of the other coordinate::

    dg += (z(seed, layer, 2, ALL, c) * col_gain_sigma)  >> 8
    do += (z(seed, layer, 3, r, ALL) * row_offset_sigma) >> 8

``gain_sigma + col_gain_sigma <= 2^14``, so the gain 1 + dg / 2^16 stays positive.

Effective weight
----------------
For a decoded log weight ``q`` (0 or +-2^s, ``golden.logquant.log_decode``),
on the fixed-point grid with F fractional bits (``frac_bits``)::

    w_eff = (q << F) + ((q * dg) >> (16 - F)) + do

``q * dg = +-(dg << s)``, so the hardware needs shifts and adds only. With
``gain_sigma = offset_sigma = 0``, dg = do = 0 and w_eff = q 2^F exactly.
The offset applies to every cell, zero codes included (an analog cell leaks
whatever it stores).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import fixed
from .spec import SpecBase, check_int

MASK32 = 0xFFFFFFFF
#: the centre and half-range of z = 2 (u0 + u1 + u2) - 765
Z_OFFSET = 765
Z_MAX = 765
#: dg is in units of 2^-GAIN_FRAC
GAIN_FRAC = 16
KIND_GAIN, KIND_OFFSET, KIND_COL_GAIN, KIND_ROW_OFFSET = 0, 1, 2, 3
#: the row / column index that keys a component shared by a whole column / row
ALL = MASK32


@dataclass(frozen=True)
class MismatchSpec(SpecBase):
    """Device mismatch of one layer's weight cells.

    Attributes
    ----------
    seed : generator seed, 0 .. 2^32 - 1.
    layer : layer number (part of every cell's key), 0 .. 2^32 - 1.
    gain_sigma : sd of the multiplicative gain error in units of 2^-16 (0 .. 16384).
    offset_sigma : sd of the additive offset in effective-weight LSBs 2^-F (0 .. 65536).
    frac_bits : F, fractional bits of the effective-weight grid (0 .. 16).
    col_gain_sigma : sd of a gain error shared by each column, units 2^-16 (0 .. 2^14 - gain_sigma).
    row_offset_sigma : sd of an offset shared by each row, in LSBs 2^-F (0 .. 65536).
    """

    block = "mismatch"

    seed: int = 1
    layer: int = 0
    gain_sigma: int = 0
    offset_sigma: int = 0
    frac_bits: int = 4
    col_gain_sigma: int = 0
    row_offset_sigma: int = 0

    def __post_init__(self):
        name = "MismatchSpec"
        check_int(name, "seed", self.seed, 0, MASK32)
        check_int(name, "layer", self.layer, 0, MASK32)
        check_int(name, "gain_sigma", self.gain_sigma, 0, 1 << 14)
        check_int(name, "offset_sigma", self.offset_sigma, 0, 1 << 16)
        check_int(name, "frac_bits", self.frac_bits, 0, GAIN_FRAC)
        check_int(name, "col_gain_sigma", self.col_gain_sigma, 0, (1 << 14) - self.gain_sigma)
        check_int(name, "row_offset_sigma", self.row_offset_sigma, 0, 1 << 16)

    @property
    def ideal(self) -> bool:
        return not (self.gain_sigma or self.offset_sigma or self.col_gain_sigma or self.row_offset_sigma)

    @property
    def gain_range(self) -> tuple[int, int]:
        """(min, max) of dg over every possible z (cell plus column component)."""
        return (((-Z_MAX * self.gain_sigma) >> 8) + ((-Z_MAX * self.col_gain_sigma) >> 8),
                ((Z_MAX * self.gain_sigma) >> 8) + ((Z_MAX * self.col_gain_sigma) >> 8))

    @property
    def offset_range(self) -> tuple[int, int]:
        return (((-Z_MAX * self.offset_sigma) >> 8) + ((-Z_MAX * self.row_offset_sigma) >> 8),
                ((Z_MAX * self.offset_sigma) >> 8) + ((Z_MAX * self.row_offset_sigma) >> 8))

    @property
    def gain_width(self) -> int:
        """Signed bits of a stored dg (correction table)."""
        return fixed.signed_bits_for(*self.gain_range)

    @property
    def offset_width(self) -> int:
        return fixed.signed_bits_for(*self.offset_range)

    def weight_range(self, max_weight: int) -> tuple[int, int]:
        """(min, max) of w_eff over |q| <= max_weight and every possible dg, do."""
        lo, hi = None, None
        for q in (-max_weight, 0, max_weight):
            for dg in self.gain_range:
                for do in self.offset_range:
                    w = (q << self.frac_bits) + ((q * dg) >> (GAIN_FRAC - self.frac_bits)) + do
                    lo = w if lo is None else min(lo, w)
                    hi = w if hi is None else max(hi, w)
        return lo, hi

    def weight_width(self, max_weight: int) -> int:
        """Signed bits of an effective weight (precomputed memory cell)."""
        return fixed.signed_bits_for(*self.weight_range(max_weight))


def _mix(h, v):
    h = (h + v) & MASK32
    h = (h + (h << 10)) & MASK32
    return h ^ (h >> 6)


def cell_hash(seed, layer, row, col, kind):
    """The 32-bit counter-based hash of the module docstring.

    Works on Python ints and on int64 torch tensors alike (every intermediate
    value stays below 2^47, so int64 is exact).
    """
    h = hash_prefix(seed, layer, kind)
    for v in (row, col, 0, 0):
        h = _mix(h, v)
    h = (h + (h << 3)) & MASK32
    h = h ^ (h >> 11)
    return (h + (h << 15)) & MASK32


def hash_prefix(seed, layer, kind):
    """The hash state after mixing (seed, layer, kind): a constant of the layer (hardware folds it)."""
    return _mix(_mix(_mix(0, seed), layer), kind)


def unit_normal(h):
    """z = 2 (u0 + u1 + u2) - 765 from the three low bytes of h (sd ~ 256)."""
    return 2 * ((h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255)) - Z_OFFSET


def cell_deviation(spec: MismatchSpec, rows, cols) -> tuple[torch.Tensor, torch.Tensor]:
    """(dg, do) for cells at ``rows`` x ``cols`` (broadcast int64 tensors)."""
    rows = torch.as_tensor(rows, dtype=torch.int64)
    cols = torch.as_tensor(cols, dtype=torch.int64)
    zg = unit_normal(cell_hash(spec.seed, spec.layer, rows, cols, KIND_GAIN))
    zo = unit_normal(cell_hash(spec.seed, spec.layer, rows, cols, KIND_OFFSET))
    dg = (zg * spec.gain_sigma) >> 8
    do = (zo * spec.offset_sigma) >> 8
    if spec.col_gain_sigma:
        dg = dg + ((unit_normal(cell_hash(spec.seed, spec.layer, ALL, cols, KIND_COL_GAIN))
                    * spec.col_gain_sigma) >> 8)
    if spec.row_offset_sigma:
        do = do + ((unit_normal(cell_hash(spec.seed, spec.layer, rows, ALL, KIND_ROW_OFFSET))
                    * spec.row_offset_sigma) >> 8)
    return dg, do


def deviation_table(spec: MismatchSpec, n_rows: int, n_cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(dg, do), each (n_rows, n_cols) int64, for every cell of a layer."""
    rows = torch.arange(n_rows, dtype=torch.int64)[:, None]
    cols = torch.arange(n_cols, dtype=torch.int64)[None, :]
    return cell_deviation(spec, rows.expand(n_rows, n_cols), cols.expand(n_rows, n_cols))


def apply_mismatch(spec: MismatchSpec, q, dg, do) -> torch.Tensor:
    """w_eff = (q << F) + ((q * dg) >> (16 - F)) + do, exact int64."""
    q = fixed._as_int(q)
    return (q << spec.frac_bits) + fixed.asr(q * fixed._as_int(dg), GAIN_FRAC - spec.frac_bits) + fixed._as_int(do)


def effective_weights(spec: MismatchSpec, q: torch.Tensor) -> torch.Tensor:
    """Effective weights of a whole layer (rows x cols) of decoded log weights q."""
    q = fixed._as_int(q)
    if q.dim() != 2:
        raise ValueError(f"effective_weights takes a (rows, cols) weight matrix, got shape {tuple(q.shape)}")
    dg, do = deviation_table(spec, *q.shape)
    return apply_mismatch(spec, q, dg, do)
