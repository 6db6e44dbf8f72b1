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

from amaranth import C, Cat, Module, Mux, Signal, Value, signed, unsigned
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


def delay(m: Module, value, cycles: int, name: str):
    """``value`` delayed by ``cycles`` free-running registers (``cycles`` = 0: the value itself)."""
    for k in range(cycles):
        reg = Signal(Value.cast(value).shape(), name=f"{name}_d{k}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def stage(m: Module, value, name: str) -> Signal:
    """One pipeline register holding ``value`` exactly (its own shape)."""
    return delay(m, value, 1, name)


def align(m: Module, piped, depth: int, name: str):
    """``piped`` = (value, its depth) delayed to ``depth``; a Python int is a constant, needing no delay."""
    value, have = piped
    if isinstance(value, int):
        return value
    if have > depth:
        raise AssertionError(f"{name}: depth {have} already past {depth}")
    return delay(m, value, depth - have, name)


def hash_hw(m: Module, name: str, prefix: int, words) -> tuple[Signal, int]:
    """The counter-based hash of ``golden.mismatch.cell_hash``, pipelined one 32-bit adder per stage.

    ``prefix`` is the constant state after (seed, layer, kind); ``words`` the
    remaining key words (row, column) as (value, depth) pairs or Python ints.
    Every 32-bit addition ends in a register (the xors ride in front of the
    next adder), so a stage is one LUT level and one carry chain. Returns the
    hash and its depth (for two variable words of depth d: d + 8).
    """
    h, depth = (prefix, 0)
    for k, word in enumerate(list(words) + [0, 0]):
        if isinstance(word, tuple):
            depth = max(depth, word[1])
            h = stage(m, (align(m, (h, hdepth if not isinstance(h, int) else 0), depth, f"{name}_h{k}")
                          + align(m, word, depth, f"{name}_v{k}"))[:32], f"{name}_a{k}")
            depth += 1
        elif isinstance(h, int):
            h = (h + word) & 0xFFFF_FFFF      # constant folding, as the golden prefix does
        elif word:
            h = stage(m, (h + word)[:32], f"{name}_a{k}")
            depth += 1
        if isinstance(h, int):
            h = (h + (h << 10)) & 0xFFFF_FFFF
            h ^= h >> 6
        else:
            b = stage(m, (h + (h << 10))[:32], f"{name}_b{k}")
            depth += 1
            h = b ^ (b >> 6)
        hdepth = depth
    a = stage(m, (h + (h << 3))[:32], f"{name}_f0")
    b = a ^ (a >> 11)
    c = stage(m, (b + (b << 15))[:32], f"{name}_f1")
    return c, depth + 2


def unit_normal_hw(h):
    """z = 2 (u0 + u1 + u2) - 765 (signed)."""
    doubled = (h[0:8] + h[8:16] + h[16:24]) << 1            # 0 .. 1530, unsigned
    return Cat(doubled, C(0, 1)).as_signed() - Z_OFFSET      # a zero sign bit, then signed


#: register stages of the regenerate datapath after the hashes: byte sum, z, z * sigma, (dg, do)
_NORMAL_STAGES = 4
#: register stages that apply (dg, do) to a code: (q << F) + do and the gain term, then their sum
_APPLY_STAGES = 2


def read_latency(spec: SynapseSpec) -> int:
    """Cycles from a read request (``rd_en``) to its ``weights``: L of ``LogWeightMemory``.

    * precomputed: 2 (the memory, then an output register);
    * table: 1 + 2 (the memories, then the two apply stages);
    * regenerate: 1 + 8 + 4 + 2 = 15 (the memory and the registered (row, column),
      the eight adder stages of the hash, byte sum / z / z * sigma / (dg, do), the two apply stages).
    """
    if spec.mismatch_impl == "precomputed":
        return 2
    if spec.mismatch_impl == "table":
        return 1 + _APPLY_STAGES
    return 1 + 8 + _NORMAL_STAGES + _APPLY_STAGES


class LogWeightMemory(wiring.Component):
    """Weight memory of a synapse layer: P effective weights of one row per read, fully pipelined.

    Reading
    -------
    Present ``rd_row`` (input index r) and ``rd_group`` (g) with ``rd_en`` high in
    cycle c; ``weights[p]`` in cycle c + L is w_eff[r, g*P + p] for p = 0 .. P - 1,
    with L = ``read_latency(spec)`` (``self.latency``): 2 (precomputed), 3 (table),
    15 (regenerate). A new read can start every cycle; the pipeline runs freely
    (``weights`` in cycles other than c + L of some read are don't-care values).
    ``sign`` and ``shift`` show the decoder's outputs for the same cells (code
    modes), in the same cycle as ``weights``.

    Pipeline (why): every register stage holds at most one carry chain, so the
    path between two registers is one adder plus a LUT level or two. regenerate:
    the memory read and the registered (row, column) [1], the hash's eight 32-bit
    additions, one per stage [2 .. 9], the byte sum [10], z = 2 sum - 765 [11],
    z * sigma [12], dg and do [13], (q << F) + do and the gain term [14], their sum
    [15]. The codes wait in registers beside the hash.

    Writing
    -------
    ``wr_en`` high in cycle c writes ``wr_data`` (P cells: codes, or effective
    weights when ``mismatch_impl == "precomputed"``) to word ``wr_addr`` = r * G + g
    at the end of cycle c; a read issued in cycle c + 1 or later sees it.

    Latency: L cycles; throughput: 1 word (P weights) per cycle.
    """

    def __init__(self, spec: SynapseSpec, init_codes=None):
        if not isinstance(spec, SynapseSpec):
            raise TypeError(f"LogWeightMemory needs a SynapseSpec, got {type(spec).__name__}")
        self.spec = spec
        self.latency = read_latency(spec)
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
        big_l = self.latency
        mems = self.memories()
        main_name = next(iter(mems))
        m.submodules[main_name] = main = mems[main_name]
        wr = main.write_port()
        rd = main.read_port()
        address = Signal(range(spec.n_inputs * groups))
        m.d.comb += [
            address.eq(self.rd_row * groups + self.rd_group),
            rd.addr.eq(address), rd.en.eq(1),  # free-running: the stage registers downstream follow it
            wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
        ]
        if spec.mismatch_impl == "precomputed":
            m.d.sync += self.weights.eq(rd.data)  # depth 2: the adder after it starts at a register
            return m

        apply_depth = big_l - _APPLY_STAGES       # depth of dg, do and the codes entering the apply stages
        if spec.mismatch_impl == "table":
            m.submodules.table = table = mems["table"]
            trd = table.read_port()
            m.d.comb += [trd.addr.eq(address), trd.en.eq(1)]
        else:
            # the row and group of the word on rd.data (depth 1), for the on-chip generator
            row = Signal(range(spec.n_inputs))
            group = Signal(range(groups))
            m.d.sync += [row.eq(self.rd_row), group.eq(self.rd_group)]
            mm = spec.mismatch
            pre_gain = hash_prefix(mm.seed, mm.layer, KIND_GAIN)
            pre_offset = hash_prefix(mm.seed, mm.layer, KIND_OFFSET)
            hash_depth = 1 + 8
            normal_depth = hash_depth + _NORMAL_STAGES - 1   # depth of z * sigma

            def deviation(name, prefix, words, sigma):
                """((z * sigma) >> 8 at depth normal_depth) of one hash: byte sum, z, product stages."""
                h, depth = hash_hw(m, name, prefix, words)
                h = align(m, (h, depth), hash_depth, name)
                total = stage(m, h[0:8] + h[8:16] + h[16:24], f"{name}_sum")              # 0 .. 765
                z = stage(m, Cat(total << 1, C(0, 1)).as_signed() - Z_OFFSET, f"{name}_z")  # signed
                return stage(m, (z * sigma) >> 8, f"{name}_dev")

            row_offset = 0
            if mm.row_offset_sigma:  # one unit: every lane reads the same row
                row_offset = deviation("row_offset", hash_prefix(mm.seed, mm.layer, KIND_ROW_OFFSET),
                                       [(row, 1), ALL], mm.row_offset_sigma)

        top = spec.code_bits - 1
        for p in range(lanes):
            if spec.mismatch_impl == "table":
                dg = align(m, (trd.data[p].gain, 1), apply_depth, f"dg{p}")
                do = align(m, (trd.data[p].offset, 1), apply_depth, f"do{p}")
            else:
                col = Signal(range(spec.n_outputs), name=f"col{p}")
                m.d.comb += col.eq(group * lanes + p)
                cell_gain = cell_offset = col_gain = 0
                if mm.gain_sigma:
                    cell_gain = deviation(f"gain{p}", pre_gain, [(row, 1), (col, 1)], mm.gain_sigma)
                if mm.offset_sigma:
                    cell_offset = deviation(f"offset{p}", pre_offset, [(row, 1), (col, 1)], mm.offset_sigma)
                if mm.col_gain_sigma:
                    col_gain = deviation(f"col_gain{p}", hash_prefix(mm.seed, mm.layer, KIND_COL_GAIN),
                                         [ALL, (col, 1)], mm.col_gain_sigma)
                dg = Signal(signed(mm.gain_width), name=f"dg{p}")
                do = Signal(signed(mm.offset_width), name=f"do{p}")
                m.d.sync += [dg.eq(cell_gain + col_gain), do.eq(cell_offset + row_offset)]  # depth 13
            code = align(m, (rd.data[p], 1), apply_depth, f"code{p}")
            sign = code[top]
            mag = code[:top]
            nonzero = mag != 0
            shift = Signal(unsigned(spec.logquant.shift_bits), name=f"shift{p}")
            m.d.comb += shift.eq(mag - 1)
            m.d.sync += [self.sign[p].eq(delay(m, sign & nonzero, _APPLY_STAGES - 1, f"sign{p}")),
                         self.shift[p].eq(delay(m, shift, _APPLY_STAGES - 1, f"shift{p}"))]
            # q = +-2^s, and q * dg = +-(dg << s): shifts, an add and a negation, no multiplier
            magnitude = Mux(nonzero, C(1, 1) << shift, 0)
            gain_mag = Mux(nonzero, dg << shift, 0)
            q = Mux(sign, -magnitude, magnitude)
            gain_term = stage(m, Mux(sign, -gain_mag, gain_mag) >> (GAIN_FRAC - frac), f"gain_term{p}")
            base = stage(m, (q << frac) + do, f"base{p}")
            m.d.sync += self.weights[p].eq(base + gain_term)
        return m
