"""Formal properties of the LIF array (``rtl.lif.LIFArray``).

Default formal spec: N = 2 neurons on P = 1 lane (G = 2 < S = 3: the same-group interlock
is exercised), Wv = Wi = 5, theta = 12, shift leak s = 2, subtract reset: a current of 15 on
two consecutive steps of a neuron sums to 18 > 15 (the rail), -16 twice to -28 < -16, so
saturation happens on a neuron's second beat, well inside the default depth. The ``lanes``
config (P = 2, N = 4) runs the same properties on two lanes (``--long`` tier).
"""

from __future__ import annotations

from amaranth import Array, Mux, Signal, Value, signed, unsigned

from golden import fixed
from golden.lif import RESET_MODES, LIFSpec
from rtl.lif import lif_output_layout

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard, sat_value


class LIFFormal(FormalBlock):
    name = "lif"
    configs = {
        # G >= S: one beat per cycle, no interlock
        "wide": {"n_neurons": 3, "lanes": 1},
        # any group order and per-beat parameters (the time-shared core's mode)
        "addressed": {"addressed": True, "n_neurons": 4, "lanes": 1},
        "runtime": {"addressed": True, "runtime_params": True, "n_neurons": 2, "lanes": 1},
        # the multiply leak with run-time parameters: stage P (latency 5)
        "multiply": {"leak_mode": "multiply", "leak_frac_bits": 2, "leak_beta": 3, "runtime_params": True,
                     "addressed": True, "n_neurons": 2, "lanes": 1},
        "refractory": {"refractory": 2, "reset_mode": "zero"},
        "lanes": {"n_neurons": 4, "lanes": 2},
    }

    def default_spec(self):
        return LIFSpec(n_neurons=2, lanes=1, membrane_width=5, input_width=5, threshold=12, leak_shift=2)

    def capacity(self, spec: LIFSpec) -> int:
        return spec.latency            # S stages + the output register

    def drain(self, spec: LIFSpec) -> int:
        return spec.latency

    def depth(self, spec: LIFSpec) -> int:
        return spec.latency + 3 * spec.groups + 4

    def environment(self, ctx: Ctx) -> None:
        spec, payload = ctx.spec, ctx.i_payload
        if spec.addressed:
            ctx.assume(payload.group < spec.groups, "group_in_range")
        if spec.runtime_params:
            ctx.assume((payload.threshold >= 1) & (payload.threshold <= fixed.int_max(spec.membrane_width, True)),
                       "threshold_in_range")
            if spec.leak_mode == "shift":
                ctx.assume((payload.leak >= 1) & (payload.leak <= spec.membrane_width - 1), "leak_in_range")
            else:
                ctx.assume(payload.leak <= (1 << spec.leak_frac_bits), "leak_in_range")

    def track(self, ctx: Ctx) -> None:
        spec = ctx.spec
        if spec.addressed:
            incoming = ctx.i_payload.group
        else:
            # the cyclic group order: the group of the next beat is the accept count mod G
            incoming = Signal(range(spec.groups), name="h_group")
            with ctx.m.If(ctx.accept):
                ctx.m.d.sync += incoming.eq(Mux(incoming == spec.groups - 1, 0, incoming + 1))
        ctx.extra["group"] = incoming

    # ---- properties
    def block_properties(self) -> list[Property]:
        return [
            Property("latency", "with o_stream.ready high, a beat accepted in cycle c is valid in cycle c + S + 1, "
                     "and nothing else is", check_latency, self.depth, induction=True),
            Property("interval", "with o_stream.ready high, i_stream.ready is high iff no beat of the offered "
                     "group was accepted in the last S - 1 cycles (1 beat/cycle for G >= S; the stall rule)",
                     check_interval, self.depth, induction=True),
            Property("saturate", "every output beat equals the golden update (lif_step: leak, saturating add, "
                     "fire, reset, refractory) of a shadow model of all N neurons: no wrap-around",
                     check_saturate, saturate_depth,
                     applies=lambda spec: spec.emit_membrane),
        ]


def saturate_depth(spec: LIFSpec) -> int:
    """Cycles for a neuron's second (fixed parameters: third) beat to leave: the datapath check's
    BMC grows about 3x per cycle (free back-pressure, and with run-time parameters a free
    threshold, leak and reset on every beat), so it stops there."""
    if spec.runtime_params:
        return spec.latency + 4
    return spec.latency + min(3 * spec.groups, 6)


def check_latency(ctx: Ctx) -> None:
    lat = ctx.spec.latency
    accepted = ctx.history(ctx.accept, lat, "acc")
    with ctx.m.If(ctx.held(ctx.o_ready, lat, "ready")):
        ctx.assert_(ctx.o_valid == accepted[lat], "latency")


def check_interval(ctx: Ctx) -> None:
    spec = ctx.spec
    stages = spec.pipeline_stages
    accepted = ctx.history(ctx.accept, stages - 1, "acc")
    groups = ctx.history(ctx.extra["group"], stages - 1, "grp")
    incoming = ctx.extra["group"]
    hazard = 0
    for j in range(1, stages):
        hazard = hazard | (accepted[j] & (groups[j] == incoming))
    with ctx.m.If(ctx.held(ctx.o_ready, spec.latency, "ready") & ctx.o_ready):
        ctx.assert_(ctx.i_ready == ~hazard, "interval")


def lif_golden_step(ctx: Ctx, v, r, current, first, theta, leak, reset, name: str):
    """``golden.lif.lif_step`` of one neuron in Amaranth: (spike, v', r') from the state (v, r)
    (0 when ``first``) and the input current, with saturation (or wrap) as the spec says."""
    m, spec = ctx.m, ctx.spec
    wv = spec.membrane_width
    v0 = Signal(signed(wv), name=f"{name}_v")
    m.d.comb += v0.eq(Mux(first, 0, v))
    r0 = Mux(first, 0, r)
    leaked = Signal(signed(wv), name=f"{name}_leaked")
    if spec.leak_mode == "shift":
        m.d.comb += leaked.eq(v0 - (v0 >> leak))                       # arithmetic shift: floor
    else:
        m.d.comb += leaked.eq((v0 * Value.cast(leak).as_unsigned()) >> spec.leak_frac_bits)  # floor
    active = (r0 == 0) if spec.refractory else Value.cast(1)
    integrated = sat_value(m, leaked + current, wv, spec.overflow, name=f"{name}_fit")
    h = Signal(signed(wv), name=f"{name}_h")
    m.d.comb += h.eq(Mux(active, integrated, leaked))
    spike = Signal(name=f"{name}_spike")
    m.d.comb += spike.eq(active & (h >= theta))
    v_new = Signal(signed(wv), name=f"{name}_vnew")
    m.d.comb += v_new.eq(Mux(spike, Mux(reset == 0, h - theta, Mux(reset == 1, 0, h)), h))
    r_new = Signal(unsigned(max(spec.refractory_bits, 1)), name=f"{name}_rnew")
    m.d.comb += r_new.eq(Mux(spike, spec.refractory, Mux(r0 == 0, 0, r0 - 1)))
    return spike, v_new, r_new


def check_saturate(ctx: Ctx) -> None:
    """Every output beat == one golden step of its neurons from their previous output beat.

    The input beats in flight wait in a queue (current, first, group, parameters); when a beat
    leaves, the expected (spike, v') of each lane is ``lif_golden_step`` of the v' (and the
    refractory count, followed from the emitted spikes) that the same neuron's previous output
    beat carried, or of 0 on a ``first`` beat. By induction over a neuron's beats this is the
    golden model exactly; checked one step at a time, the solver never has to equate two long
    chains of saturating additions (a BMC of the whole chain grew 3x per cycle past depth 10).
    """
    m, spec, payload = ctx.m, ctx.spec, ctx.i_payload
    wv, lanes, groups = spec.membrane_width, spec.lanes, spec.groups
    fields = {"current": payload.current.shape(), "first": unsigned(1), "group": range(groups)}
    if spec.runtime_params:
        fields.update({name: unsigned(width) for name, width in spec.param_widths.items()})
    from amaranth.lib import data

    entry = Signal(data.StructLayout(fields), name="sh_entry")
    m.d.comb += [entry.current.eq(payload.current), entry.first.eq(payload.first),
                 entry.group.eq(ctx.extra["group"])]
    if spec.runtime_params:
        m.d.comb += [getattr(entry, name).eq(getattr(payload, name)) for name in spec.param_widths]
    queue = Scoreboard(ctx, entry.shape(), spec.latency + 1, name="q")
    queue.push([(1, entry)])
    head = queue.head
    # the previous output of every neuron: v' and the refractory count after it
    last_v = [Signal(signed(wv), name=f"sh_v{n}") for n in range(spec.n_neurons)]
    last_r = [Signal(unsigned(max(spec.refractory_bits, 1)), name=f"sh_r{n}") for n in range(spec.n_neurons)]
    if spec.runtime_params:
        theta, leak, reset = head.threshold, head.leak, head.reset
    else:
        theta = spec.threshold
        leak = spec.leak_shift if spec.leak_mode == "shift" else spec.leak_beta
        reset = RESET_MODES.index(spec.reset_mode)
    out = ctx.o_payload
    for p in range(lanes):
        v = Array(last_v[g * lanes + p] for g in range(groups))[head.group]
        r = Array(last_r[g * lanes + p] for g in range(groups))[head.group]
        spike, v_new, r_new = lif_golden_step(ctx, v, r, head.current[p], head.first, theta, leak, reset,
                                              f"sh{p}")
        with m.If(ctx.emit):
            ctx.assert_(out.spikes[p] == spike, f"spike{p}")
            ctx.assert_(out.membrane[p] == v_new, f"membrane{p}")
        for g in range(groups):
            with m.If(ctx.emit & (head.group == g)):
                m.d.sync += [last_v[g * lanes + p].eq(v_new), last_r[g * lanes + p].eq(r_new)]


def wrap_instead_of_saturate():
    """The mutation of the tests: a LIF array whose membrane sum wraps where the spec saturates."""
    from rtl.lif import LIFArray

    from .harness import Mutation

    return Mutation("wrap", build=lambda spec: LIFArray(spec.replace(overflow="wrap")),
                    note="membrane sum wraps instead of saturating")


FORMAL = LIFFormal()
