"""Formal properties of the dilated window buffer (``rtl.window.DilatedWindowBuffer``).

Default formal spec: a 2-D 3 x 3 map of 1-bit values, radius 1, dilation 1 (lead = R W + R = 4,
the line buffer is a 3-word memory); config ``1d``: a 1-D map of 5 values with dilations 1 and
2 (lead = 2). Maps follow each other back to back in the input stream.
"""

from __future__ import annotations

from amaranth import Mux, Signal

from golden.window import WindowSpec
from rtl.window import window_output_layout

from .base import FormalBlock
from .harness import Ctx, Property


class WindowFormal(FormalBlock):
    name = "window"
    configs = {
        "1d": {"dims": 1, "height": 1, "width": 5, "dilations": (1, 2)},
        "wide": {"height": 3, "width": 4, "channels": 2},
    }

    def default_spec(self):
        return WindowSpec(dims=2, height=3, width=3, radius=1, dilations=(1,), channels=1, element_width=1)

    def check_spec(self, spec) -> None:
        if spec.lead >= spec.positions:
            raise ValueError(f"the window harness keeps two maps: lead {spec.lead} must be below the "
                             f"{spec.positions} positions of a map (a larger map, or a smaller radius or dilation)")

    def capacity(self, spec):
        return spec.lead + 1      # lead elements after a centre, and the window in the output register

    def drain(self, spec):
        return spec.lead + 1

    def drain_condition(self, ctx: Ctx):
        # a map's last windows wait for nothing once the whole map was accepted; before that,
        # the windows of the last `lead` elements legitimately wait for more input
        return ctx.extra["in_pos"] == 0

    def depth(self, spec):
        return spec.positions + spec.lead + 6

    def track(self, ctx: Ctx) -> None:
        spec, m = ctx.spec, ctx.m
        in_pos = Signal(range(spec.positions), name="h_in_pos")
        parity = Signal(name="h_in_map")
        with m.If(ctx.accept):
            m.d.sync += in_pos.eq(Mux(in_pos == spec.positions - 1, 0, in_pos + 1))
            with m.If(in_pos == spec.positions - 1):
                m.d.sync += parity.eq(~parity)
        ctx.extra["in_pos"], ctx.extra["in_map"] = in_pos, parity

    def block_properties(self):
        return [
            Property("latency", "with input always valid and output always ready from reset: i_stream.ready "
                     "stays high and o_stream.valid is high from cycle lead + 1 on, one window per cycle, no "
                     "bubble between maps", check_fill, self.depth),
            Property("taps", "every window equals the golden dilated window of its centre (raster order, "
                     "taps outside the map 0) computed from a shadow copy of the map", check_taps,
                     lambda spec: spec.lead + 8),
        ]


def check_fill(ctx: Ctx) -> None:
    spec = ctx.spec
    bad = Signal(name="h_not_ideal")
    ctx.m.d.sync += bad.eq(bad | ~(ctx.i_valid & ctx.o_ready))
    cycle = ctx.cycle(spec.lead + 1)
    with ctx.m.If(~bad):
        ctx.assert_(ctx.o_valid == (cycle >= spec.lead + 1), "fill")
        with ctx.m.If(ctx.o_ready):
            ctx.assert_(ctx.i_ready, "ready")


def check_taps(ctx: Ctx) -> None:
    m, spec = ctx.m, ctx.spec
    H, W, P = spec.height, spec.width, spec.positions
    element = ctx.i_payload.element.as_value()
    banks = [[Signal(len(element), name=f"sh_map{b}_{p}") for p in range(P)] for b in range(2)]
    for b in range(2):
        for p in range(P):
            with m.If(ctx.accept & (ctx.extra["in_map"] == b) & (ctx.extra["in_pos"] == p)):
                m.d.sync += banks[b][p].eq(element)
    # the centre of the next window to leave, and its map
    ey = Signal(range(H), name="h_em_y")
    ex = Signal(range(W), name="h_em_x")
    em_map = Signal(name="h_em_map")
    with m.If(ctx.emit):
        m.d.sync += ex.eq(Mux(ex == W - 1, 0, ex + 1))
        with m.If(ex == W - 1):
            m.d.sync += ey.eq(Mux(ey == H - 1, 0, ey + 1))
            with m.If(ey == H - 1):
                m.d.sync += em_map.eq(~em_map)
    # per centre, each tap is a fixed element of the map (or a padding zero): a multiplexer over
    # the P centres of constant selections, the golden geometry written out cycle-free
    centre = Signal(range(P), name="h_em_pos")
    m.d.comb += centre.eq(ey * W + ex)
    expected = Signal(window_output_layout(spec), name="sh_window")
    for n, d in enumerate(spec.dilations):
        for k, (i, j) in enumerate(spec.tap_offsets()):
            value = 0
            for q in range(P):
                cy, cx = divmod(q, W)
                y, x = cy + d * i, cx + d * j
                if 0 <= y < H and 0 <= x < W:
                    element = Mux(em_map, banks[1][y * W + x], banks[0][y * W + x])
                    value = value | Mux(centre == q, element, 0)
            m.d.comb += expected.taps[n][k].as_value().eq(value)
    with m.If(ctx.emit):
        ctx.assert_(ctx.o_payload.as_value() == expected.as_value(), "taps")


FORMAL = WindowFormal()
