"""Formal properties of the spike-driven self-attention unit (``rtl.sdsa.SDSAttention``).

Default formal spec: L = 2 keys, dh = 2, one lane (G = 2 steps a query: the row multiplexer
and the SUM state are exercised), so KV is 2 x 2 two-bit counters and y reaches L dh = 4.
The environment follows the unit's protocol: at most L loads per sequence (a load after a
query starts the next one); queries may come at any point (before all L loads too: the
golden stream model ``sdsa_run_beats`` answers them from the KV so far).
"""

from __future__ import annotations

from amaranth import Mux, Signal, unsigned

from golden.sdsa import SDSASpec
from rtl.sdsa import KIND_LOAD, KIND_QUERY, SDSAttention, sdsa_output_layout

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard, check_ready_interval


class SDSAFormal(FormalBlock):
    name = "sdsa"
    configs = {
        "one-step": {"lanes": 2},                               # G = 1: the query sums in its accept cycle
        "padded": {"head_dim": 3, "lanes": 2},                # G = 2, the last group one row short
    }

    def default_spec(self):
        return SDSASpec(length=2, head_dim=2, lanes=1)

    def latency(self, spec) -> int:
        return SDSAttention.latency(spec)

    def credit(self, ctx: Ctx):
        return ctx.i_payload.kind == KIND_QUERY

    def capacity(self, spec):
        return 2          # a result in the output register, the next one waiting in the accumulator

    def drain(self, spec):
        return max(self.latency(spec), 2)

    def depth(self, spec):
        return spec.length + 2 * self.latency(spec) + 6

    def environment(self, ctx: Ctx) -> None:
        spec, m = ctx.spec, ctx.m
        loads = Signal(range(spec.length + 1), name="h_loads")
        querying = Signal(name="h_querying")
        is_load = ctx.i_payload.kind == KIND_LOAD
        with m.If(ctx.i_valid & is_load):
            ctx.assume((loads < spec.length) | querying, "protocol")
        with m.If(ctx.accept):
            with m.If(is_load):
                m.d.sync += [loads.eq(Mux(querying, 1, loads + 1)), querying.eq(0)]
            with m.Else():
                m.d.sync += querying.eq(1)
        ctx.extra.update(loads=loads, querying=querying)

    def block_properties(self):
        return [
            Property("latency", "with o_stream.ready high for the last max(G, 2) cycles, o_stream.valid is high "
                     "exactly G cycles after a query's accept", self.check_latency, self.depth, induction=True),
            Property("interval", "with o_stream.ready high, the next beat after a query is accepted G cycles "
                     "later, after a load 1 cycle later", self.check_interval, self.depth),
            Property("attention", "every result equals y = q KV of a shadow KV (cleared by a load after a query, "
                     "+= outer(k, v) on every load)", self.check_attention,
                     lambda spec: spec.length + 2 * self.latency(spec) + 4),
        ]

    def check_latency(self, ctx: Ctx) -> None:
        lat = self.latency(ctx.spec)
        queried = ctx.history(ctx.accept & (ctx.i_payload.kind == KIND_QUERY), lat, "query")
        # one cycle of ready more when G = 1: a result parked in the accumulator leaves the cycle
        # after its predecessor is taken
        with ctx.m.If(ctx.held(ctx.o_ready, max(lat, 2), "ready")):
            ctx.assert_(ctx.o_valid == queried[lat], "latency")

    def check_interval(self, ctx: Ctx) -> None:
        lat = self.latency(ctx.spec)
        check_ready_interval(ctx, Mux(ctx.i_payload.kind == KIND_QUERY, lat, 1), max(lat, 1))

    def check_attention(self, ctx: Ctx) -> None:
        m, spec, payload = ctx.m, ctx.spec, ctx.i_payload
        d = spec.head_dim
        kv = [[Signal(unsigned(spec.kv_width), name=f"sh_kv{i}_{j}") for j in range(d)] for i in range(d)]
        with m.If(ctx.accept & (payload.kind == KIND_LOAD)):
            for i in range(d):
                for j in range(d):
                    m.d.sync += kv[i][j].eq(Mux(ctx.extra["querying"], 0, kv[i][j]) + (payload.qk[i] & payload.v[j]))
        expected = Signal(sdsa_output_layout(spec), name="sh_expected")
        for j in range(d):
            m.d.comb += expected.out[j].eq(sum(Mux(payload.qk[i], kv[i][j], 0) for i in range(d)))
        board = Scoreboard(ctx, expected.shape(), self.capacity(spec) + 1)
        board.push([(ctx.credit, expected)])
        board.check(ctx.o_payload)


FORMAL = SDSAFormal()
