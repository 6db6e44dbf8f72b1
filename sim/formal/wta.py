"""Formal properties of the WTA attention unit (``rtl.wta_attention.WTAAttention``).

Default formal spec: L = 2 keys of D = 2 spike elements, V rows of Dv = 1 spike, k = 1, one
score lane (G = 2), reciprocal R = 1 (F = 0): latency G + k + 5 = 8. The environment follows
the unit's protocol: L load beats, then up to L queries; a load after a query starts the next
sequence.
"""

from __future__ import annotations

from amaranth import Array, Mux, Signal, Value, unsigned

from golden.wta import WTASpec
from rtl.wta_attention import KIND_LOAD, KIND_QUERY, WTAAttention, wta_output_layout

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard, check_ready_interval
from .topk import expected_topk


class WTAFormal(FormalBlock):
    name = "wta"
    configs = {
        "causal": {"causal": True, "length": 3, "lanes": 2, "k": 2, "scale_frac": 1},
        "multibit": {"qk_width": 2, "v_width": 2, "score_width": 4, "head_dim": 1, "min_score": -8},
    }

    def default_spec(self):
        return WTASpec(length=2, head_dim=2, value_dim=1, score_width=2, k=1, lanes=1, scale_frac=0)

    def latency(self, spec) -> int:
        return WTAAttention.latency(spec)

    def credit(self, ctx: Ctx):
        return ctx.i_payload.kind == KIND_QUERY

    def capacity(self, spec):
        return 2          # a finished result in the output register, and the next query

    def drain(self, spec):
        return self.latency(spec)

    def depth(self, spec):
        return spec.length + 2 * self.latency(spec) + 2

    def environment(self, ctx: Ctx) -> None:
        spec, m = ctx.spec, ctx.m
        loads = Signal(range(spec.length + 1), name="h_loads")
        queries = Signal(range(spec.length + 1), name="h_queries")
        querying = Signal(name="h_querying")
        is_load = ctx.i_payload.kind == KIND_LOAD
        with m.If(ctx.i_valid):
            ctx.assume(Mux(is_load, (loads < spec.length) | querying,
                           (loads == spec.length) & (queries < spec.length)), "protocol")
        with m.If(ctx.accept):
            with m.If(is_load):
                m.d.sync += [loads.eq(Mux(querying, 1, loads + 1)), querying.eq(0), queries.eq(0)]
            with m.Else():
                m.d.sync += [querying.eq(1), queries.eq(queries + 1)]
        ctx.extra.update(loads=loads, queries=queries, querying=querying)

    def block_properties(self):
        return [
            Property("latency", "with o_stream.ready high, a query accepted in cycle c has its result valid in "
                     "cycle c + G + k + 5, and nothing else is", self.check_latency, self.depth, induction=True),
            Property("interval", "with o_stream.ready high, the next beat after a query is accepted G + k + 5 "
                     "cycles later, after a load 1 cycle later", self.check_interval, self.depth),
            Property("attention", "every result equals golden WTA attention of a shadow copy of K and V: scores "
                     "(AND-popcount / dot product), eligibility, top-k by rank (ties: lower index), "
                     "out = sum of the winners' V rows x R", self.check_attention,
                     lambda spec: spec.length + self.latency(spec) + 4),
        ]

    def check_latency(self, ctx: Ctx) -> None:
        lat = self.latency(ctx.spec)
        queried = ctx.history(ctx.accept & (ctx.i_payload.kind == KIND_QUERY), lat, "query")
        with ctx.m.If(ctx.held(ctx.o_ready, lat, "ready")):
            ctx.assert_(ctx.o_valid == queried[lat], "latency")

    def check_interval(self, ctx: Ctx) -> None:
        lat = self.latency(ctx.spec)
        check_ready_interval(ctx, Mux(ctx.i_payload.kind == KIND_QUERY, lat, 1), lat)

    def check_attention(self, ctx: Ctx) -> None:
        m, spec, payload = ctx.m, ctx.spec, ctx.i_payload
        length, d, dv = spec.length, spec.head_dim, spec.value_dim
        k_rows = [[Signal(payload.qk[e].shape(), name=f"sh_k{j}_{e}") for e in range(d)] for j in range(length)]
        v_rows = [[Signal(payload.v[e].shape(), name=f"sh_v{j}_{e}") for e in range(dv)] for j in range(length)]
        row = Mux(ctx.extra["querying"], 0, ctx.extra["loads"])
        for j in range(length):
            with m.If(ctx.accept & (payload.kind == KIND_LOAD) & (row == j)):
                m.d.sync += [k_rows[j][e].eq(payload.qk[e]) for e in range(d)]
                m.d.sync += [v_rows[j][e].eq(payload.v[e]) for e in range(dv)]
        scores = []
        for j in range(length):
            if spec.qk_signed:
                terms = [payload.qk[e] * k_rows[j][e] for e in range(d)]
            else:
                terms = [payload.qk[e] & k_rows[j][e] for e in range(d)]
            s = Signal(signed_or_unsigned(spec), name=f"sh_score{j}")
            m.d.comb += s.eq(sum(terms))
            scores.append(s)
        top = expected_topk(ctx, spec.topk_spec(), scores, ctx.extra["queries"], name="sh_top")
        expected = Signal(wta_output_layout(spec), name="sh_expected")
        for e in range(dv):
            column = Array(v_rows[j][e] for j in range(length))
            acc = sum(Mux(top.valid[r], column[top.index[r]], 0) for r in range(spec.top_k))
            out = acc if spec.scale_mode == "fold" else acc * spec.reciprocal
            m.d.comb += expected.out[e].eq(out)
        m.d.comb += [expected.index.eq(top.index), expected.valid.eq(top.valid)]
        board = Scoreboard(ctx, expected.shape(), self.capacity(spec) + 1)
        board.push([(ctx.credit, expected)])
        board.check(ctx.o_payload)


def signed_or_unsigned(spec):
    from amaranth import signed

    return signed(spec.score_width) if spec.score_signed else unsigned(spec.score_width)


FORMAL = WTAFormal()
