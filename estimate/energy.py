"""Energy per event: cited figures per technology, and how a width or a memory size maps onto them.

Two technologies, each a table of published figures (``TECHNOLOGIES``):

``45nm`` -- M. Horowitz, "Computing's energy problem (and what we can do about it)", IEEE ISSCC
2014, Fig. 1.1.9 (45 nm, 0.9 V): integer add 8 bit 0.03 pJ, 32 bit 0.1 pJ; integer multiply
8 bit 0.2 pJ, 32 bit 3.1 pJ; float add 32 bit 0.9 pJ, multiply 32 bit 3.7 pJ (the figures of
``golden/energy.py``); a 64-bit SRAM/cache read of 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ; DRAM
1.3-2.6 nJ per 64-bit access.

``7nm`` -- N. P. Jouppi et al., "Ten Lessons From Three Generations Shaped Google's TPUv4i",
ACM/IEEE ISCA 2021, Table 2 (the same operations in a 7 nm process): integer add 8 bit
0.007 pJ, 32 bit 0.03 pJ; integer multiply 8 bit 0.07 pJ, 32 bit 1.48 pJ; float add 32 bit
0.38 pJ, multiply 32 bit 1.31 pJ; 64-bit SRAM read 8 KB 7.5 pJ, 32 KB 8.5 pJ, 1 MB 14 pJ;
DDR3/4 DRAM 1.3 nJ, HBM2 250-450 pJ, GDDR6 350-480 pJ per 64-bit access.

The tables give a few widths and sizes; the core's operands and memories have others. Each is
mapped onto the table by a stated rule -- these are estimates of ours, not figures of the papers:

* integer add of w bits: piecewise linear in w through (0, 0) and the table's (8, E_add8),
  (32, E_add32), continued along the last segment above 32 bits (a ripple/prefix adder's
  switched capacitance grows about linearly with its width)::

      E_add(w) = E_add8 w / 8                                      w <= 8
               = E_add8 + (E_add32 - E_add8) (w - 8) / 24          w >= 8

* integer multiply of a x b bits: piecewise linear in the partial-product count a b through
  (0, 0), (64, E_mult8), (1024, E_mult32) (an array multiplier has a b partial-product cells;
  the two cited points give 3.1e-3 and 3.0e-3 pJ per cell at 45 nm, so the rule fits both).
* SRAM access of a word of n bits in a memory of C bytes, scaled by n / 64 (the tables are
  per 64-bit access)::

      E_sram(n, C) = E_64(C) n / 64
      E_64(C)      = the table's figures interpolated as a power law (log E piecewise linear
                     in log C) between its sizes, continued along the last segment above 1 MB
                   = E_64(C_min) sqrt(C / C_min)  below the smallest size (C_min = 8 KB)

  At 45 nm the three sizes follow the square root closely (10, 20, 100 pJ against 10, 20, 113
  for E ~ sqrt(C), the bit-line energy of an array of sqrt(C) rows); at 7 nm they grow far more
  slowly (the periphery dominates). Below 8 KB -- the core's accumulators, biases, LIF state
  and activation buffers, about 100 B .. 8 KB -- neither paper gives a figure: there both
  technologies take the square root from their own 8 KB figure, an extrapolation of ours
  (``Technology.extrapolated`` says when a memory is that small; the estimate reports the share
  of the energy that rests on it). Writes are charged as reads (the tables give reads only).
* Not charged (no figure in either table): single-bit logic (AND, OR, multiplexers, the
  priority tree), barrel shifts, saturation, registers, the clock tree, control, leakage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Technology:
    """Cited energies of one process; ``add``, ``mult``, ``sram`` apply the module's rules."""

    name: str
    source: str
    #: (bits, pJ) of integer adds, ascending
    int_add: tuple[tuple[int, float], ...]
    #: (bits of each operand, pJ) of integer multiplies, ascending
    int_mult: tuple[tuple[int, float], ...]
    #: (capacity in bytes, pJ per 64-bit read), ascending
    sram_64b: tuple[tuple[int, float], ...]
    float_add32: float
    float_mult32: float
    #: DRAM per 64-bit access, as printed (no model here uses DRAM: every memory is on chip)
    dram: str

    def add(self, bits: int) -> float:
        """E_add(w), pJ (module docstring)."""
        return _piecewise([(0, 0.0)] + [(b, e) for b, e in self.int_add], float(bits))

    def mult(self, a_bits: int, b_bits: int) -> float:
        """E_mult(a, b), pJ: linear in the a b partial products (module docstring)."""
        return _piecewise([(0, 0.0)] + [(b * b, e) for b, e in self.int_mult], float(a_bits * b_bits))

    def sram(self, word_bits: int, capacity_bits: int) -> float:
        """E_sram(n, C), pJ: one access of ``word_bits`` in a memory of ``capacity_bits`` (module docstring)."""
        size = max(capacity_bits / 8.0, 1.0)
        c_min, e_min = self.sram_64b[0]
        if size < c_min:
            e64 = e_min * math.sqrt(size / c_min)
        else:
            points = [(math.log2(c), math.log2(e)) for c, e in self.sram_64b]
            e64 = 2.0 ** _piecewise(points, math.log2(size))
        return e64 * word_bits / 64.0

    def extrapolated(self, capacity_bits: int) -> bool:
        """Whether a memory of ``capacity_bits`` is smaller than the table's smallest size."""
        return capacity_bits / 8.0 < self.sram_64b[0][0]

    def table(self) -> list[tuple[str, str]]:
        """(operation, figure) rows of the cited table, for reports."""
        rows = [(f"integer add {b} bit", f"{e:g} pJ") for b, e in self.int_add]
        rows += [(f"integer multiply {b} bit", f"{e:g} pJ") for b, e in self.int_mult]
        rows += [(f"float add / multiply 32 bit", f"{self.float_add32:g} / {self.float_mult32:g} pJ")]
        rows += [(f"SRAM read 64 bit, {_size(c)}", f"{e:g} pJ") for c, e in self.sram_64b]
        rows += [("DRAM 64-bit access", self.dram)]
        return rows


def _size(nbytes: int) -> str:
    return f"{nbytes >> 20} MB" if nbytes >= 1 << 20 else f"{nbytes >> 10} KB"


def _piecewise(points: list[tuple[float, float]], x: float) -> float:
    """Linear interpolation through ``points`` (ascending x), continued along the last segment."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    (x0, y0), (x1, y1) = points[-2], points[-1]
    return y1 + (y1 - y0) * (x - x1) / (x1 - x0)


HOROWITZ_45NM = Technology(
    name="45nm",
    source="M. Horowitz, \"Computing's energy problem (and what we can do about it)\", IEEE ISSCC 2014, "
           "Fig. 1.1.9 (45 nm, 0.9 V)",
    int_add=((8, 0.03), (32, 0.1)),
    int_mult=((8, 0.2), (32, 3.1)),
    sram_64b=((8 << 10, 10.0), (32 << 10, 20.0), (1 << 20, 100.0)),
    float_add32=0.9,
    float_mult32=3.7,
    dram="1.3-2.6 nJ",
)

JOUPPI_7NM = Technology(
    name="7nm",
    source="N. P. Jouppi et al., \"Ten Lessons From Three Generations Shaped Google's TPUv4i\", ACM/IEEE "
           "ISCA 2021, Table 2 (7 nm)",
    int_add=((8, 0.007), (32, 0.03)),
    int_mult=((8, 0.07), (32, 1.48)),
    sram_64b=((8 << 10, 7.5), (32 << 10, 8.5), (1 << 20, 14.0)),
    float_add32=0.38,
    float_mult32=1.31,
    dram="DDR3/4 1.3 nJ, HBM2 250-450 pJ, GDDR6 350-480 pJ",
)

#: the technologies ``spikeforge estimate --tech`` knows
TECHNOLOGIES = {t.name: t for t in (HOROWITZ_45NM, JOUPPI_7NM)}


def get_technology(name: str) -> Technology:
    """The named technology, or a ``ValueError`` listing the known ones."""
    if name not in TECHNOLOGIES:
        raise ValueError(f"unknown technology {name!r}; known: {', '.join(TECHNOLOGIES)}")
    return TECHNOLOGIES[name]
