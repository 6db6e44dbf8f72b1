"""Log-quantized weight memory with the analog-mismatch model, three ways.

Hardware for ``golden.logquant`` (codes, decoding) and ``golden.mismatch``
(the counter-based generator and the effective weight); the equations are in
those modules and in ``docs/numeric-contract.md``, implemented here bit for bit.

``mismatch_impl`` chooses where the mismatch comes from, so the costs can be compared:

* ``"precomputed"``: the memory stores effective weights w_eff (We bits a cell);
  nothing is computed on chip. A run-time write carries effective weights.
* ``"table"``: the memory stores codes (B bits a cell) and a second, read-only
  memory stores each cell's (dg, do) (Wg + Wo bits a cell); the decoder applies
  them with shifts and adds.
* ``"regenerate"``: the memory stores codes only; P copies of the counter-based
  hash recompute (dg, do) for the P cells being read, from (row, column).
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from golden.mismatch import (ALL, GAIN_FRAC, KIND_COL_GAIN, KIND_GAIN, KIND_OFFSET, KIND_ROW_OFFSET, Z_OFFSET,
                             deviation_table, hash_prefix)
from golden.synapse import SynapseSpec, check_weight_codes, synapse_weights


def cell_shape(spec: SynapseSpec):
    """Shape of one stored cell: an effective weight (precomputed) or a code."""
    return signed(spec.weight_width) if spec.mismatch_impl == "precomputed" else unsigned(spec.code_bits)


def word_layout(spec: SynapseSpec) -> data.ArrayLayout:
    """One weight-memory word: the P cells of columns g*P .. g*P + P - 1 of one row."""
    return data.ArrayLayout(cell_shape(spec), spec.lanes)


def table_layout(spec: SynapseSpec) -> data.ArrayLayout:
    """One correction-table word: (dg, do) for each of the P cells."""
    mm = spec.mismatch
    return data.ArrayLayout(data.StructLayout({"gain": signed(mm.gain_width), "offset": signed(mm.offset_width)}),
                            spec.lanes)


def weight_words(spec: SynapseSpec, codes) -> list[list[int]]:
    """What the weight memory holds for ``codes`` (n_inputs, n_outputs), word k = row * G + g."""
    codes = check_weight_codes(spec, codes)
    cells = synapse_weights(spec, codes) if spec.mismatch_impl == "precomputed" else codes
    rows = cells.reshape(spec.n_inputs * spec.groups, spec.lanes).tolist()
    return rows


def table_words(spec: SynapseSpec) -> list[list[dict]]:
    dg, do = deviation_table(spec.mismatch, spec.n_inputs, spec.n_outputs)
    dg = dg.reshape(-1, spec.lanes).tolist()
    do = do.reshape(-1, spec.lanes).tolist()
    return [[{"gain": g, "offset": o} for g, o in zip(gw, ow)] for gw, ow in zip(dg, do)]


def memory_bits(spec: SynapseSpec) -> dict[str, int]:
    """Bits of every memory of a weight memory, by name, from the generated ``Memory`` objects."""
    mem = LogWeightMemory(spec)
    mem._MustUse__silence = True  # measured, not built
    out = {}
    for name, m in mem.memories().items():
        m._MustUse__silence = True
        out[name] = m.depth * data.Layout.cast(m.shape).size if isinstance(m.shape, data.Layout) \
            else m.depth * m.shape.width
    return out


def hash_hw(m: Module, name: str, prefix: int, words) -> Signal:
    """The counter-based hash of ``golden.mismatch.cell_hash`` as adders, shifts and xors.

    ``prefix`` is the constant state after (seed, layer, kind); ``words`` the
    remaining key words (row, column) as Amaranth values. Every round's state is
    a named 32-bit signal (each appears twice in the next round; signals keep the
    expression tree linear for the simulators).
    """
    h = C(prefix, 32)
    for k, v in enumerate(list(words) + [0, 0]):
        a = Signal(32, name=f"{name}_a{k}")
        b = Signal(32, name=f"{name}_b{k}")
        c = Signal(32, name=f"{name}_c{k}")
        m.d.comb += [a.eq(h + v), b.eq(a + (a << 10)), c.eq(b ^ (b >> 6))]
        h = c
    a, b, c = (Signal(32, name=f"{name}_f{k}") for k in range(3))
    m.d.comb += [a.eq(h + (h << 3)), b.eq(a ^ (a >> 11)), c.eq(b + (b << 15))]
    return c


def unit_normal_hw(h):
    """z = 2 (u0 + u1 + u2) - 765 (signed)."""
    doubled = (h[0:8] + h[8:16] + h[16:24]) << 1            # 0 .. 1530, unsigned
    return Cat(doubled, C(0, 1)).as_signed() - Z_OFFSET      # a zero sign bit, then signed


class LogWeightMemory(wiring.Component):
    """Weight memory of a synapse layer: P effective weights of one row per read.

    Reading
    -------
    Present ``rd_row`` (input index r) and ``rd_group`` (g) with ``rd_en`` high in
    cycle c; ``weights[p]`` in cycle c + 1 is w_eff[r, g*P + p] for p = 0 .. P - 1
    (held while ``rd_en`` stays low). ``sign`` and ``shift`` show the decoder's
    outputs for the same cells (code modes).

    Writing
    -------
    ``wr_en`` high in cycle c writes ``wr_data`` (P cells: codes, or effective
    weights when ``mismatch_impl == "precomputed"``) to word ``wr_addr`` = r * G + g
    at the end of cycle c; a read in cycle c + 1 or later sees it.

    Latency: 1 cycle read, 1 word (P weights) per cycle.
    """

    def __init__(self, spec: SynapseSpec, init_codes=None):
        if not isinstance(spec, SynapseSpec):
            raise TypeError(f"LogWeightMemory needs a SynapseSpec, got {type(spec).__name__}")
        self.spec = spec
        if init_codes is None:
            import torch
            init_codes = torch.zeros(spec.n_inputs, spec.n_outputs, dtype=torch.int64)
        self._init = weight_words(spec, init_codes)
        super().__init__({
            "rd_row": In(range(spec.n_inputs)),
            "rd_group": In(range(spec.groups)),
            "rd_en": In(1),
            "weights": Out(data.ArrayLayout(signed(spec.weight_width), spec.lanes)),
            "sign": Out(spec.lanes),
            "shift": Out(data.ArrayLayout(unsigned(spec.logquant.shift_bits), spec.lanes)),
            "wr_addr": In(range(spec.n_inputs * spec.groups)),
            "wr_data": In(word_layout(spec)),
            "wr_en": In(1),
        })

    def memories(self) -> dict[str, memory.Memory]:
        """New ``Memory`` objects of this design, by name (what ``memory_bits`` measures)."""
        spec = self.spec
        depth = spec.n_inputs * spec.groups
        main = "weights" if spec.mismatch_impl == "precomputed" else "codes"
        out = {main: memory.Memory(shape=word_layout(spec), depth=depth, init=self._init)}
        if spec.mismatch_impl == "table":
            out["table"] = memory.Memory(shape=table_layout(spec), depth=depth, init=table_words(spec))
        return out

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        groups, lanes, frac = spec.groups, spec.lanes, spec.frac_bits
        mems = self.memories()
        main_name = next(iter(mems))
        m.submodules[main_name] = main = mems[main_name]
        wr = main.write_port()
        rd = main.read_port()
        address = Signal(range(spec.n_inputs * groups))
        m.d.comb += [
            address.eq(self.rd_row * groups + self.rd_group),
            rd.addr.eq(address), rd.en.eq(self.rd_en),
            wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
        ]
        if spec.mismatch_impl == "precomputed":
            m.d.comb += self.weights.eq(rd.data)
            return m

        if spec.mismatch_impl == "table":
            m.submodules.table = table = mems["table"]
            trd = table.read_port()
            m.d.comb += [trd.addr.eq(address), trd.en.eq(self.rd_en)]
        else:
            # the row and group of the word on rd.data, for the on-chip generator
            row = Signal(range(spec.n_inputs))
            group = Signal(range(groups))
            with m.If(self.rd_en):
                m.d.sync += [row.eq(self.rd_row), group.eq(self.rd_group)]
            mm = spec.mismatch
            pre_gain = hash_prefix(mm.seed, mm.layer, KIND_GAIN)
            pre_offset = hash_prefix(mm.seed, mm.layer, KIND_OFFSET)
            if mm.row_offset_sigma:  # one unit: every lane reads the same row
                row_offset = Signal(signed(mm.offset_width), name="row_offset")
                z = unit_normal_hw(hash_hw(m, "row_offset", hash_prefix(mm.seed, mm.layer, KIND_ROW_OFFSET),
                                           [row, ALL]))
                m.d.comb += row_offset.eq((z * mm.row_offset_sigma) >> 8)

        top = spec.code_bits - 1
        for p in range(lanes):
            code = rd.data[p]
            sign = code[top]
            mag = code[:top]
            nonzero = mag != 0
            shift = Signal(unsigned(spec.logquant.shift_bits), name=f"shift{p}")
            m.d.comb += [shift.eq(mag - 1), self.sign[p].eq(sign & nonzero), self.shift[p].eq(shift)]
            if spec.mismatch_impl == "table":
                dg, do = trd.data[p].gain, trd.data[p].offset
            else:
                col = group * lanes + p
                dg = Signal(signed(mm.gain_width), name=f"dg{p}")
                do = Signal(signed(mm.offset_width), name=f"do{p}")
                cell_gain = cell_offset = col_gain = 0
                if mm.gain_sigma:
                    cell_gain = (unit_normal_hw(hash_hw(m, f"gain{p}", pre_gain, [row, col])) * mm.gain_sigma) >> 8
                if mm.offset_sigma:
                    cell_offset = (unit_normal_hw(hash_hw(m, f"offset{p}", pre_offset, [row, col]))
                                   * mm.offset_sigma) >> 8
                if mm.col_gain_sigma:
                    pre = hash_prefix(mm.seed, mm.layer, KIND_COL_GAIN)
                    col_gain = (unit_normal_hw(hash_hw(m, f"col_gain{p}", pre, [ALL, col]))
                                * mm.col_gain_sigma) >> 8
                m.d.comb += [dg.eq(cell_gain + col_gain),
                             do.eq(cell_offset + (row_offset if mm.row_offset_sigma else 0))]
            # q = +-2^s, and q * dg = +-(dg << s): shifts, an add and a negation, no multiplier
            magnitude = Mux(nonzero, C(1, 1) << shift, 0)
            gain_mag = Mux(nonzero, dg << shift, 0)
            q = Mux(sign, -magnitude, magnitude)
            gain_term = Mux(sign, -gain_mag, gain_mag) >> (GAIN_FRAC - frac)
            m.d.comb += self.weights[p].eq((q << frac) + gain_term + do)
        return m
