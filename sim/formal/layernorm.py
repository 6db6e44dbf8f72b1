"""Formal properties of the integer layer norm unit (``rtl.layernorm.LayerNorm``).

Default formal spec: D = 2 channels, Wi = Wg = Wb = 2, eps = 7 (Ns = 3, N2 = 6, K = 3, Nx = 4).
var + eps is 7, 8 or 9, so sigma is 2 or 3 and floor(dev gamma / sigma) really divides (with
eps = 1 every 2-bit token has sigma = 1: config ``eps1``). A token whose last DATA beat is
accepted in cycle c has its outputs valid in cycles c + F and c + F + C (F =
``first_output_latency``, C = ``channel_cycles``: 31 and 10 here), and the next beat is
accepted at the earliest in c + F + (D - 1) C + 1.

Beat relation: a token's last DATA beat owes its D output beats (credit D), every other DATA
beat and every PARAM beat owes none; nothing is accepted while a token is normalised, so at
most D beats are owed (capacity D) and they leave within F + (D - 1) C cycles of ready (drain).
The environment is free: DATA and PARAM beats in any order and with any values (a PARAM beat
between a token's DATA beats is used by that token; the parameter memories start at 0, as
the shadow table does), ``o_stream.ready`` free.

The datapath is checked on a shadow of the token and the parameter table, captured at the
token's last DATA accept (``golden.layernorm.layer_norm_exact`` written out; y compared exactly,
sign-extended). Its SAT problems are cheap when the timing is fixed and grow fast with each
freedom of alignment (when the token ends x when the outputs stall: fully free, one token
took over 10 min at depth 45), so it is three properties, each free in one dimension:
``normalise`` any mix of DATA, PARAM and idle cycles up to the first token's end (by cycle
2 D), ready high; ``normalise_bp`` a fixed schedule (D PARAM, then D DATA beats), any
back-pressure; ``normalise_next`` two tokens back to back after a fixed table, ready high (the
second from the state the first left). Values are free in all three. Not covered together:
a late token end (gaps past cycle 2 D) or stalls with a free schedule or a second token.

Depths (default spec, F + (D - 1) C = 41): 2 D + F + (D - 1) C + 6 = 51 for the stream and
timing properties and ``normalise_bp`` (6 cycles of stalls fit before the token's last output);
``normalise`` 2 D + 1 + 41 = 46 (the first token's last output); ``normalise_next`` 3 D + 2 x 41
= 88 (the second token's).
"""

from __future__ import annotations

from dataclasses import replace

from amaranth import Array, Const, Mux, Signal, signed

from golden.layernorm import LayerNormSpec
from rtl.layernorm import KIND_DATA, KIND_PARAM, LayerNorm

from .base import FormalBlock
from .harness import Ctx, Property, check_ready_interval


class LayerNormFormal(FormalBlock):
    name = "layernorm"
    configs = {"eps1": {"eps": 1}}

    def default_spec(self):
        return LayerNormSpec(dim=2, input_width=2, gamma_width=2, beta_width=2, eps=7)

    # ---- timing (rtl.layernorm.LayerNorm's docstring)
    def first(self, spec) -> int:
        return LayerNorm.first_output_latency(spec)

    def span(self, spec) -> int:
        """Cycles from a token's last DATA accept to its last output beat."""
        return self.first(spec) + (spec.dim - 1) * LayerNorm.channel_cycles(spec)

    # ---- beat relation
    def credit(self, ctx: Ctx):
        return Mux(ctx.extra["last"], ctx.spec.dim, 0)

    def max_credit(self, spec) -> int:
        return spec.dim

    def capacity(self, spec):
        return spec.dim       # one token's D beats: nothing is accepted until its last beat is taken

    def drain(self, spec):
        return self.span(spec)

    def depth(self, spec):
        # D PARAM beats, a token's D DATA beats, its D outputs, and a few cycles more
        return 2 * spec.dim + self.span(spec) + 6

    def track(self, ctx: Ctx) -> None:
        spec, m, payload = ctx.spec, ctx.m, ctx.i_payload
        chan = Signal(range(spec.dim), name="h_chan")         # channel of the next DATA beat
        pchan = Signal(range(spec.dim), name="h_pchan")       # channel of the next PARAM beat
        is_data = payload.kind == KIND_DATA
        with m.If(ctx.accept & is_data):
            m.d.sync += chan.eq(Mux(chan == spec.dim - 1, 0, chan + 1))
        with m.If(ctx.accept & ~is_data):
            m.d.sync += pchan.eq(Mux(pchan == spec.dim - 1, 0, pchan + 1))
        last = Signal(name="h_last_data")                     # offered: a token's last DATA beat
        m.d.comb += last.eq(is_data & (chan == spec.dim - 1))
        ctx.extra.update(chan=chan, pchan=pchan, last=last)

    def properties(self):
        # k-induction does not close for valid_held here (OPEN at k = 51): from a state the
        # ports cannot rule out (o_stream.valid high while loading) a token started in it
        # rewrites the payload under a stall F cycles later, and loading can idle any number
        # of cycles, so no k suffices. It is proven by BMC only.
        return [replace(p, induction=False) if p.name == "valid_held" else p for p in super().properties()]

    def block_properties(self):
        return [
            Property("latency", "with o_stream.ready high for the last F + (D - 1) C cycles, o_stream.valid is "
                     "high exactly in cycles c + F + i C (i < D) after a token's last DATA accept in c",
                     self.check_latency, self.depth),
            Property("interval", "with o_stream.ready high, the next beat after a token's last DATA beat is "
                     "accepted F + (D - 1) C + 1 cycles later, after any other beat 1 cycle later",
                     self.check_interval, self.depth),
            Property("normalise", "every output beat equals the golden layer norm of its token (floor mean, floor "
                     "variance, isqrt(var + eps) by comparisons, floor(dev gamma / sigma) by a division, + beta; "
                     "exact, no width) and last = channel D - 1: any values, any mix of DATA, PARAM and idle "
                     "cycles up to the first token's last DATA beat (accepted by cycle 2 D: a reload of the "
                     "table fits), o_stream.ready high", self.check_normalise,
                     lambda spec: 2 * spec.dim + 1 + self.span(spec)),
            Property("normalise_bp", "the same for a token after a full table (D PARAM beats, then D DATA "
                     "beats, back to back from cycle 0), any values, under any back-pressure",
                     self.check_normalise_bp, self.depth),
            Property("normalise_next", "the same for two tokens back to back after a full table (the second "
                     "normalised from the state the first left), any values, o_stream.ready high",
                     self.check_normalise_next, lambda spec: 3 * spec.dim + 2 * self.span(spec)),
        ]

    def check_latency(self, ctx: Ctx) -> None:
        spec = ctx.spec
        span, first, step = self.span(spec), self.first(spec), LayerNorm.channel_cycles(spec)
        ended = ctx.history(ctx.accept & ctx.extra["last"], span, "token")
        due = 0
        for i in range(spec.dim):
            due = due | ended[first + i * step]
        with ctx.m.If(ctx.held(ctx.o_ready, span, "ready")):
            ctx.assert_(ctx.o_valid == due, "latency")

    def check_interval(self, ctx: Ctx) -> None:
        span = self.span(ctx.spec)
        check_ready_interval(ctx, Mux(ctx.extra["last"], span + 1, 1), span + 1)

    # ---- the datapath: one shadow, three environments (module docstring: why three)
    def check_normalise(self, ctx: Ctx) -> None:
        spec = ctx.spec
        ended = Signal(name="h_token_ended")
        ctx.m.d.sync += ended.eq(ended | (ctx.accept & ctx.extra["last"]))
        with ctx.m.If(ctx.cycle(2 * spec.dim + 1) == 2 * spec.dim + 1):
            ctx.assume(ended, "first_token_by_cycle_2D")
        ctx.assume(ctx.o_ready, "ready_high")
        self.datapath(ctx)

    def check_normalise_bp(self, ctx: Ctx) -> None:
        self.schedule(ctx, then_data=False)
        self.datapath(ctx)

    def check_normalise_next(self, ctx: Ctx) -> None:
        self.schedule(ctx, then_data=True)
        ctx.assume(ctx.o_ready, "ready_high")
        self.datapath(ctx)

    def schedule(self, ctx: Ctx, then_data: bool) -> None:
        """Input valid with D PARAM beats in cycles 0 .. D - 1, D DATA beats in D .. 2 D - 1 (the
        unit is loading: all accepted), then none or DATA beats held valid (accepted when loading)."""
        d, payload = ctx.spec.dim, ctx.i_payload
        cycle = ctx.cycle(2 * d)
        data_beat = ctx.i_valid & (payload.kind == KIND_DATA)
        with ctx.m.If(cycle < d):
            ctx.assume(ctx.i_valid & (payload.kind == KIND_PARAM), "schedule")
        with ctx.m.Elif(cycle < 2 * d):
            ctx.assume(data_beat, "schedule")
        with ctx.m.Else():
            ctx.assume(data_beat if then_data else ~ctx.i_valid, "schedule")

    def datapath(self, ctx: Ctx) -> None:
        m, spec, payload = ctx.m, ctx.spec, ctx.i_payload
        d, wi = spec.dim, spec.input_width
        is_data, is_param = payload.kind == KIND_DATA, payload.kind == KIND_PARAM
        # shadow of the token being loaded and of the parameter table (the memories start at 0)
        u_sh = [Signal(signed(wi), name=f"sh_u{i}") for i in range(d - 1)]
        g_sh = [Signal(signed(spec.gamma_width), name=f"sh_gamma{j}") for j in range(d)]
        b_sh = [Signal(signed(spec.beta_width), name=f"sh_beta{j}") for j in range(d)]
        for i in range(d - 1):
            with m.If(ctx.accept & is_data & (ctx.extra["chan"] == i)):
                m.d.sync += u_sh[i].eq(payload.u)
        for j in range(d):
            with m.If(ctx.accept & is_param & (ctx.extra["pchan"] == j)):
                m.d.sync += [g_sh[j].eq(payload.gamma), b_sh[j].eq(payload.beta)]
        # the token and its parameters, captured at its last DATA accept (the next token's last
        # DATA beat comes after this token's D outputs: ``bounded``); the golden function is
        # evaluated on these registers, not on the free payload (a much smaller SAT problem)
        tok_u = [Signal(signed(wi), name=f"tk_u{i}") for i in range(d)]
        tok_g = [Signal(signed(spec.gamma_width), name=f"tk_gamma{i}") for i in range(d)]
        tok_b = [Signal(signed(spec.beta_width), name=f"tk_beta{i}") for i in range(d)]
        with m.If(ctx.accept & ctx.extra["last"]):
            m.d.sync += [a.eq(b) for a, b in zip(tok_u, [*u_sh, payload.u])]
            m.d.sync += [a.eq(b) for a, b in zip(tok_g, g_sh)] + [a.eq(b) for a, b in zip(tok_b, b_sh)]
        out_chan = Signal(range(d), name="h_out_chan")           # channel of the next output beat
        with m.If(ctx.emit):
            m.d.sync += out_chan.eq(Mux(out_chan == d - 1, 0, out_chan + 1))
        # golden.layernorm.layer_norm_exact, written out
        dbits = signed(d.bit_length() + 1)
        s1 = Signal(signed(wi + d.bit_length() + 1), name="sh_s1")
        m.d.comb += s1.eq(sum(tok_u))
        mu = Signal(signed(wi + 1), name="sh_mu")
        m.d.comb += mu.eq(s1 // Const(d, dbits))                 # floor division (Amaranth's //)
        devs = []
        for i in range(d):
            dev = Signal(signed(wi + 2), name=f"sh_dev{i}")
            m.d.comb += dev.eq(tok_u[i] - mu)
            devs.append(dev)
        s2 = Signal(signed(2 * wi + d.bit_length() + 3), name="sh_s2")
        m.d.comb += s2.eq(sum(dev * dev for dev in devs))
        radicand = Signal(signed(2 * wi + d.bit_length() + 3), name="sh_var_eps")
        m.d.comb += radicand.eq(s2 // Const(d, dbits) + spec.eps)
        # sigma = floor(sqrt(var + eps)) by its definition: the count of s >= 1 with s^2 <= var + eps
        sigma = Signal(signed(wi + 3), name="sh_sigma")
        m.d.comb += sigma.eq(sum((radicand >= s * s).as_unsigned() for s in range(1, 1 << (wi + 1))))
        expected = Signal(signed(wi + spec.gamma_width + spec.beta_width + 4), name="sh_expected")
        m.d.comb += expected.eq((Array(devs)[out_chan] * Array(tok_g)[out_chan]) // sigma + Array(tok_b)[out_chan])
        # y compared exactly (sign-extended), so a y outside output_width fails too
        with m.If(ctx.emit):
            ctx.assert_(ctx.o_payload.y == expected, "normalise")
            ctx.assert_(ctx.o_payload.last == (out_chan == d - 1), "last")


FORMAL = LayerNormFormal()
