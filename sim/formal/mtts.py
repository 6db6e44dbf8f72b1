"""Formal properties of the MTTS encoder (``rtl.mtts.MTTSEncoder``).

Default formal spec: W = 3 unsigned, T = 3, P = 2 lanes, calibrated range [1, 6] (0 and 7 are
clamped), mask value 3, dead zone [5, 5], a 3-bit silent counter (it wraps within a few beats).
"""

from __future__ import annotations

from amaranth import Cat, Mux, Signal, Value, unsigned

from golden.mtts import MTTSSpec
from rtl.mtts import mtts_output_layout

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard


class MTTSFormal(FormalBlock):
    name = "mtts"
    configs = {
        "spikes": {"emit": "spikes", "train": "single", "signed": True, "lo": -3, "hi": 2, "mask_value": 0,
                   "dead_zone": False},
        "step": {"emit": "spikes", "train": "step"},
    }

    def default_spec(self):
        return MTTSSpec(input_width=3, signed=False, time_steps=3, lanes=2, lo=1, hi=6, mask_value=3,
                        dead_zone=True, dead_lo=5, dead_hi=5, counter_width=3)

    def capacity(self, spec):
        return 1

    def drain(self, spec):
        return 1

    def depth(self, spec):
        return 10

    def block_properties(self):
        return [
            Property("latency", "with o_stream.ready high, a beat accepted in cycle c is valid in cycle c + 1 "
                     "and nothing else is", check_latency, self.depth, induction=True),
            Property("interval", "i_stream.ready = ~o_stream.valid | o_stream.ready (1 beat per cycle)",
                     check_interval, self.depth, induction=True),
            Property("encode", "every output beat equals the golden code (clamp, level = floor((xc - lo) T / R) "
                     "by a division, silence, dead zone, spike train) and count = silent outputs mod 2^Wc",
                     check_encode, self.depth),
        ]


def check_latency(ctx: Ctx) -> None:
    accepted = ctx.reg(ctx.accept, "acc")
    with ctx.m.If(ctx.held(ctx.o_ready, 1, "ready")):
        ctx.assert_(ctx.o_valid == accepted, "latency")


def check_interval(ctx: Ctx) -> None:
    ctx.assert_(ctx.i_ready == (~ctx.o_valid | ctx.o_ready), "interval")


def check_encode(ctx: Ctx) -> None:
    m, spec = ctx.m, ctx.spec
    t_steps, r_range = spec.time_steps, spec.value_range
    expected = Signal(mtts_output_layout(spec), name="sh_expected")
    silent_bits = []
    for p in range(spec.lanes):
        x = ctx.i_payload.value[p]
        xc = Signal(x.shape(), name=f"sh_xc{p}")
        m.d.comb += xc.eq(Mux(x < spec.lo, spec.lo, Mux(x > spec.hi, spec.hi, x)))
        offset = Signal(unsigned(max(1, (r_range - 1).bit_length())), name=f"sh_off{p}")
        m.d.comb += offset.eq(xc - spec.lo)
        # the golden definition: a real division (the hardware multiplies by a reciprocal)
        level = Signal(unsigned(max(1, (t_steps - 1).bit_length())), name=f"sh_level{p}")
        m.d.comb += level.eq((offset * t_steps) // r_range)
        t_first = Signal(unsigned(max(1, (t_steps - 1).bit_length())), name=f"sh_t{p}")
        m.d.comb += t_first.eq(t_steps - 1 - level)
        silent = xc == spec.silent_value
        if spec.dead_zone:
            silent = silent | ((xc >= spec.dead_lo) & (xc <= spec.dead_hi))
        s = Signal(name=f"sh_silent{p}")
        m.d.comb += s.eq(silent)
        silent_bits.append(s)
        if spec.emit == "code":
            m.d.comb += expected.time[p].eq(Mux(s, 0, t_first))
        else:
            bits = [(~s & ((j >= t_first) if spec.train == "step" else (j == t_first))) for j in range(t_steps)]
            m.d.comb += expected.spikes[p].eq(Cat(*bits))
    if spec.emit == "code":
        m.d.comb += expected.silent.eq(Cat(*silent_bits))
    count = Signal(unsigned(spec.counter_width), name="sh_count")
    total = count + sum(Value.cast(b) for b in silent_bits)
    m.d.comb += expected.count.eq(total)             # modulo 2^Wc: the spec's counter wraps
    with m.If(ctx.accept):
        m.d.sync += count.eq(total)
    board = Scoreboard(ctx, expected.shape(), 2)
    board.push([(1, expected)])
    board.check(ctx.o_payload)


FORMAL = MTTSFormal()
