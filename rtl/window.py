"""Dilated window buffer: every position's dilated neighbourhood, streamed, one window per cycle.

Hardware for ``golden.window.dilated_windows``; the tap order and zero padding are
defined there and in ``docs/numeric-contract.md`` and implemented here bit for bit.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.window import WindowSpec


def _element_shape(spec: WindowSpec):
    return signed(spec.element_width) if spec.signed else unsigned(spec.element_width)


def window_input_layout(spec: WindowSpec) -> data.StructLayout:
    """Input beat: one map position, its C values (channel 0 at the low end)."""
    return data.StructLayout({"element": data.ArrayLayout(_element_shape(spec), spec.channels)})


def window_output_layout(spec: WindowSpec) -> data.StructLayout:
    """Output beat: ``taps[n][k][c]`` = window value of dilation n, tap k, channel c
    (the order of ``golden.window.dilated_windows``)."""
    per_tap = data.ArrayLayout(_element_shape(spec), spec.channels)
    return data.StructLayout({
        "taps": data.ArrayLayout(data.ArrayLayout(per_tap, spec.taps), len(spec.dilations)),
    })


def window_register_lanes(spec: WindowSpec) -> dict[int, int]:
    """Window shift registers: row lane k (k rows above the newest element) -> its length.

    Only lanes holding a tap row get a register; lane k = R - d i is read at
    positions t = R - d j, so its register is max(t) + 1 elements long.
    """
    R = spec.reach
    lanes: dict[int, int] = {}
    for d in spec.dilations:
        for i, j in spec.tap_offsets():
            k = R - d * i if spec.dims == 2 else 0
            lanes[k] = max(lanes.get(k, 0), R - d * j + 1)
    return dict(sorted(lanes.items()))


def window_register_bits(spec: WindowSpec) -> int:
    """Flip-flops of the window shift registers: sum of lane lengths * C * element_width."""
    return sum(window_register_lanes(spec).values()) * spec.element_bits


class DilatedWindowBuffer(wiring.Component):
    """Streams a map in raster order and emits, for every position, its full dilated window.

    Maps (``spec.map_shape()``) arrive back to back, one position (C values) per
    input beat, in raster order. For every position, in the same order, one output
    beat carries the windows of all dilations (``window_output_layout``), zero
    padding included.

    Structure
    ---------
    The buffer *advances* once per cycle through an extended raster: an advance
    shifts one element (an accepted input, or a zero "virtual" element) into the
    window. With R = w * max(d) (``spec.reach``):

    * 2-D line buffer: an ``amaranth.lib.memory.Memory`` of depth W whose word at
      column x holds the 2R elements of column x in the 2R rows above the newest
      (``line_rows`` = 2R). An advance at column x reads that word, forms the
      column vector (new element, word) and writes back its top 2R entries:
      **memory = 2R * W * C * element_width bits** (``WindowSpec.memory_bits``);
      a 1-D map needs no line buffer (0 bits). The memory does not depend on the
      number of maps streamed.
    * Window registers: for each row lane used by a tap, a shift register of the
      last columns (``window_register_lanes``); tap (i, j) of dilation d is
      lane R - d i, position R - d j. Taps outside the map (from the centre's
      coordinates) are forced to zero, which also hides the previous map's
      rows and the wrap-around from the previous row.
    * A centre's window is complete ``lead`` = R W + R (1-D: R) advances after the
      centre was shifted in; after a map's last element, zero advances flush the
      remaining windows without waiting for more input. The next map may start
      during that flush (its elements then serve as the flush) but, in 2-D, only at
      column 0 of the line buffer so that columns stay aligned; a realignment runs
      zero advances up to the next row start if input was late.

    Latency and throughput
    ----------------------
    * The window of raster position p of a map is valid in the cycle after the
      advance of position p + ``lead``. With input always valid and output
      always ready, map positions are accepted one per cycle (also across maps),
      and the window of global position n (maps back to back) is valid in cycle
      n + lead + 1 after the first handshake in cycle 0: **fill latency
      lead + 1 = R W + R + 1 cycles in 2-D (R + 1 in 1-D), then one window per
      cycle**, with no bubble between back-to-back maps.
    * Back-pressure: an advance needs the output register free (empty or taken
      this cycle); ``i_stream.ready`` is low otherwise, and also while a 2-D
      buffer realigns to column 0 between maps. Nothing is dropped or duplicated.

    Members
    -------
    i_stream : In(stream.Signature(window_input_layout(spec)))
    o_stream : Out(stream.Signature(window_output_layout(spec)))
    """

    def __init__(self, spec: WindowSpec):
        if not isinstance(spec, WindowSpec):
            raise TypeError(f"DilatedWindowBuffer needs a WindowSpec, got {type(spec).__name__}")
        self.spec = spec
        super().__init__({
            "i_stream": In(stream.Signature(window_input_layout(spec))),
            "o_stream": Out(stream.Signature(window_output_layout(spec))),
        })

    @property
    def fill_latency(self) -> int:
        """Cycles from a map's first input handshake to its first window, without gaps."""
        return self.spec.lead + 1

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        R, H, W, E = spec.reach, spec.height, spec.width, spec.element_bits
        two_d = spec.dims == 2
        lead = spec.lead
        positions = spec.positions

        # ---- control: input position, advance column, lead countdown, emission position ----
        in_pos = Signal(range(positions), name="in_pos")      # next input element's index in its map
        col = Signal(range(W), name="col")                    # column of the next advance (2-D alignment)
        lead_on = Signal(name="lead_on")                      # a map started, its first window not yet out
        lead_left = Signal(range(lead + 1), name="lead_left")
        em_on = Signal(name="em_on")                          # windows of a map are being emitted
        em_y = Signal(range(H), name="em_y")                  # centre of the next emission
        em_x = Signal(range(W), name="em_x")
        cy = Signal(range(H), name="cy")                      # centre of the window on o_stream
        cx = Signal(range(W), name="cx")

        out_free = ~self.o_stream.valid | self.o_stream.ready
        between_maps = in_pos == 0
        aligned = (col == 0) if two_d else Const(1, 1)
        pending = lead_on | em_on
        m.d.comb += self.i_stream.ready.eq(out_free & (~between_maps | aligned))
        take = Signal()
        virt = Signal()
        adv = Signal()
        m.d.comb += [
            take.eq(self.i_stream.valid & self.i_stream.ready),
            virt.eq(out_free & between_maps & ~take & (~aligned | pending)),
            adv.eq(take | virt),
        ]
        new_element = Signal(E)
        m.d.comb += new_element.eq(Mux(take, self.i_stream.payload.element.as_value(), 0))

        # ---- line buffer: word at column x = the 2R elements above the newest, nearest first ----
        column = [new_element]
        if two_d:
            word_layout = data.ArrayLayout(unsigned(E), spec.line_rows)
            m.submodules.lines = lines = memory.Memory(shape=word_layout, depth=W, init=[])
            wr = lines.write_port()
            rd = lines.read_port(transparent_for=(wr,))
            col_next = Mux(col == W - 1, 0, col + 1)
            # prefetch the word of the next advance's column (col + 1 after an advance, else col)
            m.d.comb += [rd.en.eq(1), rd.addr.eq(Mux(adv, col_next, col))]
            column += [rd.data[k] for k in range(spec.line_rows)]
            m.d.comb += [wr.en.eq(adv), wr.addr.eq(col)]
            m.d.comb += [wr.data[k].eq(column[k]) for k in range(spec.line_rows)]
            with m.If(adv):
                m.d.sync += col.eq(col_next)

        # ---- window shift registers ----
        regs = {}
        for k, length in window_register_lanes(spec).items():
            regs[k] = [Signal(E, name=f"win_{k}_{t}") for t in range(length)]
            with m.If(adv):
                m.d.sync += regs[k][0].eq(column[k])
                m.d.sync += [regs[k][t].eq(regs[k][t - 1]) for t in range(1, length)]

        # ---- sequencing ----
        with m.If(take):
            m.d.sync += in_pos.eq(Mux(in_pos == positions - 1, 0, in_pos + 1))
        emit_first = lead_on & (lead_left == 1)
        emit = em_on | emit_first
        cur_y = Mux(emit_first, 0, em_y)
        cur_x = Mux(emit_first, 0, em_x)
        last_x = cur_x == W - 1
        last = last_x & (cur_y == H - 1)
        with m.If(adv):
            with m.If(take & between_maps):
                m.d.sync += [lead_on.eq(1), lead_left.eq(lead)]
            with m.Elif(lead_on):
                m.d.sync += lead_left.eq(lead_left - 1)
                with m.If(lead_left == 1):
                    m.d.sync += lead_on.eq(0)
            m.d.sync += [self.o_stream.valid.eq(emit), cy.eq(cur_y), cx.eq(cur_x)]
            with m.If(emit):
                m.d.sync += [em_on.eq(~last), em_x.eq(Mux(last_x, 0, cur_x + 1)),
                             em_y.eq(Mux(last_x, cur_y + 1, cur_y))]
        with m.Elif(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)

        # ---- output taps, masked to zero outside the map ----
        def row_ok(offset):
            if offset < 0:
                return cy >= -offset
            if offset > 0:
                return cy <= H - 1 - offset
            return Const(1, 1)

        def col_ok(offset):
            if offset < 0:
                return cx >= -offset
            if offset > 0:
                return cx <= W - 1 - offset
            return Const(1, 1)

        taps = self.o_stream.payload.taps
        for n, d in enumerate(spec.dilations):
            for k, (i, j) in enumerate(spec.tap_offsets()):
                lane = R - d * i if two_d else 0
                reg = regs[lane][R - d * j]
                ok = col_ok(d * j) & (row_ok(d * i) if two_d else 1)
                m.d.comb += taps[n][k].as_value().eq(Mux(ok, reg, 0))
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays


def window_input_beats(spec: WindowSpec, maps) -> list[dict]:
    """Golden maps (S, *map_shape) -> input beats in stream order (maps, then raster order)."""
    import numpy as np

    a = np.asarray(maps, dtype=np.int64).reshape(-1, spec.channels)
    return [{"element": row} for row in a.tolist()]


def window_expected_beats(spec: WindowSpec, windows) -> list[dict]:
    """Golden windows (S, *window_shape) -> the output beats the buffer must produce."""
    import numpy as np

    a = np.asarray(windows, dtype=np.int64).reshape(-1, len(spec.dilations), spec.taps, spec.channels)
    return [{"taps": beat} for beat in a.tolist()]
