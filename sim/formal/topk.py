"""Formal properties of the top-k unit (``rtl.topk.TopK``), both versions.

Default formal spec: L = 4 keys, k = 2, 2-bit unsigned scores, min_score = 1 (the minimum-score
rule cuts), the streaming insertion version; configs ``parallel`` (the bitonic network, L = 3:
padded to 4, S = 3 stages, latency 5) and ``causal``.
"""

from __future__ import annotations

from amaranth import Mux, Signal, Value

from golden.wta import TopKSpec
from rtl.topk import TopK, score_shape, topk_output_layout

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard


class TopKFormal(FormalBlock):
    name = "topk"
    configs = {
        "parallel": {"version": "parallel", "length": 3},
        "causal": {"causal": True, "min_score": 0},
        "signed": {"signed": True, "min_score": -1, "version": "parallel", "length": 4, "k": 3},
    }

    def default_spec(self):
        return TopKSpec(length=4, k=2, score_width=2, min_score=1)

    def stream(self, spec) -> bool:
        return spec.version == "stream"

    def credit(self, ctx: Ctx):
        if self.stream(ctx.spec):
            return ctx.extra["col"] == ctx.spec.length - 1    # the row's last score completes it
        return Value.cast(1)

    def capacity(self, spec):
        return 1 if self.stream(spec) else TopK.latency(spec)

    def drain(self, spec):
        return 1 if self.stream(spec) else TopK.latency(spec)

    def depth(self, spec):
        # stream: three rows of L scores; parallel: the pipeline plus five rows
        return 3 * spec.length + 3 if self.stream(spec) else TopK.latency(spec) + 6

    def select_depth(self, spec):
        # the datapath check is the costly one (26 s at the stream's depth 15): two rows, or the
        # pipeline plus three rows
        return 2 * spec.length + 3 if self.stream(spec) else TopK.latency(spec) + 4

    def track(self, ctx: Ctx) -> None:
        spec, m = ctx.spec, ctx.m
        col = Signal(range(spec.length), name="h_col")
        row = Signal(range(spec.length), name="h_row")
        ctx.extra["col"], ctx.extra["row"] = col, row
        if self.stream(spec):
            last = col == spec.length - 1
            with m.If(ctx.accept):
                m.d.sync += col.eq(Mux(last, 0, col + 1))
                with m.If(last):
                    m.d.sync += row.eq(Mux(row == spec.length - 1, 0, row + 1))
        else:
            with m.If(ctx.accept):
                m.d.sync += row.eq(Mux(row == spec.length - 1, 0, row + 1))

    def block_properties(self):
        return [
            Property("latency", "with o_stream.ready high, a row's result is valid exactly latency(spec) cycles "
                     "after its completing accept (stream: its last score, 1; parallel: S + 2), nothing else is",
                     self.check_latency, self.depth),
            Property("interval", "stream: i_stream.ready falls only for a row's last score while the previous "
                     "result is held; parallel: i_stream.ready = ~o_stream.valid | o_stream.ready",
                     self.check_interval, self.depth),
            Property("select", "every result equals the top-k by rank: rank(j) = #eligible keys with a higher "
                     "score, or the same score and a lower index; winner r = the eligible key of rank r",
                     self.check_select, self.select_depth),
        ]

    def check_latency(self, ctx: Ctx) -> None:
        lat = TopK.latency(ctx.spec)
        done = ctx.history(ctx.accept & ctx.credit.bool(), lat, "done")
        with ctx.m.If(ctx.held(ctx.o_ready, lat, "ready")):
            ctx.assert_(ctx.o_valid == done[lat], "latency")

    def check_interval(self, ctx: Ctx) -> None:
        held = ctx.o_valid & ~ctx.o_ready
        if self.stream(ctx.spec):
            ctx.assert_(ctx.i_ready == ~((ctx.extra["col"] == ctx.spec.length - 1) & held), "interval")
        else:
            ctx.assert_(ctx.i_ready == ~held, "interval")

    def check_select(self, ctx: Ctx) -> None:
        m, spec = ctx.m, ctx.spec
        length, k = spec.length, spec.top_k
        shape = score_shape(spec)
        if self.stream(spec):
            # the row so far: scores 0 .. L - 2 in registers, the last one is the payload
            kept = [Signal(shape, name=f"sh_score{j}") for j in range(length - 1)]
            for j in range(length - 1):
                with m.If(ctx.accept & (ctx.extra["col"] == j)):
                    m.d.sync += kept[j].eq(ctx.i_payload.score)
            scores = [*kept, ctx.i_payload.score]
        else:
            scores = [ctx.i_payload.score[j] for j in range(length)]
        expected = expected_topk(ctx, spec, scores, ctx.extra["row"])
        board = Scoreboard(ctx, expected.shape(), self.capacity(spec) + 1)
        board.push([(ctx.credit, expected)])      # stream: only the row's last score completes it
        board.check(ctx.o_payload)


def expected_topk(ctx: Ctx, spec, scores, row, name: str = "sh"):
    """The golden top-k of one row, written as ranks (independent of the insertion and of the
    sorting network): key j is eligible iff score_j >= min_score (and j <= row when causal);
    rank(j) = #{eligible i: s_i > s_j or (s_i == s_j and i < j)}; rank r < k holds winner r,
    ranks past the eligible count are padded with index 0, score 0, valid 0."""
    m = ctx.m
    length, k = len(scores), spec.top_k
    eligible = []
    for j, s in enumerate(scores):
        cond = s >= spec.min_score
        if spec.causal:
            cond = cond & (row >= j)
        e = Signal(name=f"{name}_elig{j}")
        m.d.comb += e.eq(cond)
        eligible.append(e)
    ranks = []
    for j in range(length):
        before = [eligible[i] & ((scores[i] > scores[j]) | ((scores[i] == scores[j]) & (i < j)))
                  for i in range(length) if i != j]
        rank = Signal(range(length + 1), name=f"{name}_rank{j}")
        m.d.comb += rank.eq(sum(Value.cast(b) for b in before) if before else 0)
        ranks.append(rank)
    expected = Signal(topk_output_layout(spec), name=f"{name}_expected")
    valid_bits = []
    for r in range(k):
        hits = [eligible[j] & (ranks[j] == r) for j in range(length)]
        index, score, valid = 0, 0, 0
        for j in range(length):
            index = index | Mux(hits[j], j, 0)
            score = score | Mux(hits[j], Value.cast(scores[j]).as_unsigned(), 0)
            valid = valid | hits[j]
        m.d.comb += [expected.index[r].eq(index), Value.cast(expected.score[r]).eq(score)]
        valid_bits.append(valid)
    from amaranth import Cat

    m.d.comb += expected.valid.eq(Cat(*valid_bits))
    return expected


FORMAL = TopKFormal()
