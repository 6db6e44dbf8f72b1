"""Formal properties of the multiply-accumulate engine (``rtl.mac.MACEngine``).

Default formal spec: 1 lane, 2 weight words of 3 bits, 2-bit event values, Gmax = 2
accumulator words of 4 bits (two products of up to 4 x 4 = 16 reach either rail), 2 bias
words of 3 bits, 3-bit outputs, 1-bit shifts. The environment sends only the commands
``golden.mac`` accepts: 1 <= groups <= Gmax, EVENT addr + groups <= weight_depth, STEP
bias_addr + groups <= bias_depth, writes inside their memory with in-range data.
"""

from __future__ import annotations

from amaranth import Array, Mux, Signal, signed

from golden import fixed
from golden.mac import EVENT, STEP, WRITE_B, WRITE_W, MACSpec
from rtl.mac import STEP_LATENCY, STEP_OVERHEAD, mac_output_layout

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard, check_ready_interval, sat_value


class MACFormal(FormalBlock):
    name = "mac"
    configs = {
        "lanes": {"lanes": 2},
        "groups": {"max_groups": 3, "weight_depth": 3, "bias_depth": 3},
    }

    def default_spec(self):
        return MACSpec(lanes=1, weight_depth=2, weight_width=3, value_width=2, max_groups=2, acc_width=4,
                       bias_depth=2, bias_width=3, out_width=3, shift_width=1)

    def credit(self, ctx: Ctx):
        return Mux(ctx.i_payload.kind == STEP, ctx.i_payload.groups, 0)

    def max_credit(self, spec):
        return spec.max_groups

    def capacity(self, spec):
        # a STEP's groups beats, and up to 3 of the previous STEP's (in D2, D3 and the output
        # register) when the next STEP is accepted as soon as the drain has read its last word
        return spec.max_groups + 3

    def drain(self, spec):
        return STEP_LATENCY - 1 + spec.max_groups

    def depth(self, spec):
        return STEP_LATENCY + 3 * spec.max_groups + 8

    def environment(self, ctx: Ctx) -> None:
        spec, payload = ctx.spec, ctx.i_payload
        kind, addr, groups = payload.kind, payload.addr, payload.groups
        in_groups = (groups >= 1) & (groups <= spec.max_groups)
        ctx.assume((kind != EVENT) | (in_groups & (addr + groups <= spec.weight_depth)), "event")
        ctx.assume((kind != STEP) | (in_groups & (addr + groups <= spec.bias_depth)), "step")
        ctx.assume((kind != WRITE_W) | (addr < spec.weight_depth), "write_w_address")
        ctx.assume((kind != WRITE_B) | (addr < spec.bias_depth), "write_b_address")
        for p in range(spec.lanes):
            x = payload.data[p]
            for k, width in ((WRITE_W, spec.weight_width), (WRITE_B, spec.bias_width)):
                ctx.assume((kind != k) | ((x >= fixed.int_min(width, True)) & (x <= fixed.int_max(width, True))),
                           "write_data")

    def block_properties(self):
        return [
            Property("latency", "with o_stream.ready high, output beat g of a STEP accepted in cycle c is valid "
                     "in cycle c + 6 + g (g < groups), and nothing else is", check_latency, self.depth),
            Property("interval", "with o_stream.ready high, the command after an EVENT is accepted groups "
                     "cycles later, after a STEP groups + 3, after a write 1", check_interval, self.depth),
            Property("saturate", "every output beat equals a shadow model of golden.mac: acc = sat_Wa(acc + "
                     "value x W) per EVENT word, current = sat_Wo((acc >> shift) + B), last flag, clear",
                     check_saturate, lambda spec: STEP_LATENCY + 4),
        ]


def check_latency(ctx: Ctx) -> None:
    spec = ctx.spec
    gmax = spec.max_groups
    window = STEP_LATENCY + gmax - 1
    steps = ctx.history(ctx.accept & (ctx.i_payload.kind == STEP), window, "step")
    groups = ctx.history(ctx.i_payload.groups, window, "groups")
    expect = 0
    for j in range(STEP_LATENCY, window + 1):
        expect = expect | (steps[j] & (groups[j] > j - STEP_LATENCY))
    with ctx.m.If(ctx.held(ctx.o_ready, window + 1, "ready")):
        ctx.assert_(ctx.o_valid == expect, "latency")


def check_interval(ctx: Ctx) -> None:
    spec = ctx.spec
    kind, groups = ctx.i_payload.kind, ctx.i_payload.groups
    interval = Mux(kind == EVENT, groups, Mux(kind == STEP, groups + STEP_OVERHEAD, 1))
    check_ready_interval(ctx, interval, spec.max_groups + STEP_OVERHEAD)


def check_saturate(ctx: Ctx) -> None:
    m, spec, payload = ctx.m, ctx.spec, ctx.i_payload
    lanes, gmax = spec.lanes, spec.max_groups
    w = [[Signal(signed(spec.weight_width), name=f"sh_w{a}_{p}") for p in range(lanes)]
         for a in range(spec.weight_depth)]
    b = [[Signal(signed(spec.bias_width), name=f"sh_b{a}_{p}") for p in range(lanes)]
         for a in range(spec.bias_depth)]
    acc = [[Signal(signed(spec.acc_width), name=f"sh_acc{g}_{p}") for p in range(lanes)] for g in range(gmax)]
    kind, addr, groups = payload.kind, payload.addr, payload.groups
    for a in range(spec.weight_depth):
        with m.If(ctx.accept & (kind == WRITE_W) & (addr == a)):
            m.d.sync += [w[a][p].eq(payload.data[p]) for p in range(lanes)]
    for a in range(spec.bias_depth):
        with m.If(ctx.accept & (kind == WRITE_B) & (addr == a)):
            m.d.sync += [b[a][p].eq(payload.data[p]) for p in range(lanes)]
    entries = []
    for g in range(gmax):
        beat = Signal(mac_output_layout(spec), name=f"sh_beat{g}")
        for p in range(lanes):
            weight = Array(w[a][p] for a in range(spec.weight_depth))[addr + g]
            bias = Array(b[a][p] for a in range(spec.bias_depth))[addr + g]
            added = sat_value(m, acc[g][p] + payload.value * weight, spec.acc_width, name=f"sh_mac{g}_{p}")
            out = sat_value(m, (acc[g][p] >> payload.shift) + bias, spec.out_width, name=f"sh_out{g}_{p}")
            m.d.comb += beat.current[p].eq(out)
            with m.If(ctx.accept & (groups > g)):
                with m.If(kind == EVENT):
                    m.d.sync += acc[g][p].eq(added)
                with m.If(kind == STEP):
                    m.d.sync += acc[g][p].eq(0)
        m.d.comb += beat.last.eq(groups == g + 1)
        entries.append(((kind == STEP) & (groups > g), beat))
    board = Scoreboard(ctx, entries[0][1].shape(), spec.max_groups + 4)
    board.push(entries)
    board.check(ctx.o_payload)


FORMAL = MACFormal()
