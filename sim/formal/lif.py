"""Formal properties of the LIF array (``rtl.lif.LIFArray``).

Default formal spec: N = 2 neurons on P = 1 lane (G = 2 < S = 3: the same-group interlock
is exercised), Wv = Wi = 5, theta = 12, shift leak s = 2, subtract reset: a current of 15 on
two consecutive steps of a neuron sums to 18 > 15 (the rail), -16 twice to -28 < -16, so
saturation happens on a neuron's second beat, well inside the default depth. The ``lanes``
config (P = 2, N = 4) runs the same properties on two lanes (``--long`` tier).

Configs (``spikeforge prove lif --config NAME``): ``wide``, ``addressed``, ``runtime``,
``multiply``, ``refractory``, ``lanes``, and the core's mode ``core`` / ``core-multiply``:
``LIFArray(spec, interlock=False)`` (addressed, run-time parameters; S = 3, or S = 4 with the
multiply leak's stage P), where ``i_stream.ready`` is stage M free and the ``hazard`` output
reports an offered beat whose group is in flight. The constructor argument travels in the
formal spec (``FormalLIFSpec.interlock``, also ``--set interlock=false``). There the
environment is the core's guarantee, ``Assume(~hazard)`` (no beat offered while its group is
in flight), for every property except ``hazard`` and ``hazard_stall``, which pin ``hazard``
to an independent history of the accepted groups without that assumption (so together they
prove the guarantee the core checks is the one the datapath needs).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Mux, Signal, Value, signed, unsigned

from golden import fixed
from golden.lif import RESET_MODES, LIFSpec
from golden.spec import check_bool
from rtl.lif import lif_output_layout

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard, sat_value


@dataclass(frozen=True)
class FormalLIFSpec(LIFSpec):
    """A ``LIFSpec`` plus the LIF array's constructor argument ``interlock``, so that a formal
    config (or ``--set interlock=false``) chooses ``LIFArray(spec, interlock=...)``; the array
    itself is built from the plain ``LIFSpec`` (``lif_spec()``)."""

    interlock: bool = True

    def __post_init__(self):
        super().__post_init__()
        check_bool("LIFSpec", "interlock", self.interlock)

    def lif_spec(self) -> LIFSpec:
        fields = self.to_dict()
        fields.pop("interlock")
        return LIFSpec.from_dict(fields)


def lif_spec_of(spec) -> LIFSpec:
    """The plain ``LIFSpec`` of a formal spec (a ``LIFSpec`` passes through)."""
    return spec.lif_spec() if isinstance(spec, FormalLIFSpec) else spec


def interlocked(spec) -> bool:
    """Whether the array of this formal spec has its same-group interlock (the default)."""
    return getattr(spec, "interlock", True)


#: properties proven without the environment's no-hazard assumption (interlock = False)
UNGUARDED = ("hazard", "hazard_stall")


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
        # the core's mode: LIFArray(spec, interlock=False), addressed, per-beat parameters;
        # G = 2 < S, so the environment can offer a group in flight (the hazard properties)
        "core": {"addressed": True, "runtime_params": True, "n_neurons": 2, "lanes": 1, "interlock": False},
        # the same with the multiply leak: S = 4, the hazard compare covers stage P too
        "core-multiply": {"addressed": True, "runtime_params": True, "leak_mode": "multiply",
                          "leak_frac_bits": 2, "leak_beta": 3, "n_neurons": 2, "lanes": 1, "interlock": False},
    }

    def default_spec(self):
        return FormalLIFSpec(n_neurons=2, lanes=1, membrane_width=5, input_width=5, threshold=12, leak_shift=2)

    def component(self, spec):
        from rtl.lif import LIFArray

        if interlocked(spec):
            return super().component(lif_spec_of(spec))
        return LIFArray(lif_spec_of(spec), interlock=False)

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
        if not interlocked(spec) and ctx.harness.prop.name not in UNGUARDED:
            # the feeder's guarantee (the core's): no beat offered while its group is in flight;
            # `hazard` includes i_stream.valid. The hazard properties prove `hazard` is exactly
            # that condition, from the accepted groups, without this assumption.
            ctx.assume(~ctx.harness.dut.hazard, "no_hazard_offered")

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
                     "group was accepted in the last S - 1 cycles (1 beat/cycle for G >= S; the stall rule); "
                     "interlock = False: i_stream.ready is high whenever o_stream.ready is (1 beat/cycle)",
                     check_interval, self.depth, induction=True),
            Property("saturate", "every output beat equals the golden update (lif_step: leak, saturating add, "
                     "fire, reset, refractory) of a shadow model of all N neurons: no wrap-around",
                     check_saturate, saturate_depth,
                     applies=lambda spec: spec.emit_membrane),
            Property("hazard", "interlock = False, no assumption on the offered groups: with o_stream.ready "
                     "high (from reset or the last S + 1 cycles), hazard == i_stream.valid & a beat of the "
                     "offered group was accepted in the last S - 1 cycles", check_hazard, self.depth,
                     induction=True, applies=lambda spec: not interlocked(spec)),
            Property("hazard_stall", "interlock = False, no assumption, any back-pressure: hazard == "
                     "i_stream.valid & the offered group has an accepted beat not yet in the output "
                     "register, other than one entering it on this edge (checked a cycle later)",
                     check_hazard_stall, lambda spec: self.depth(spec) + 1,
                     applies=lambda spec: not interlocked(spec)),
        ]


def saturate_depth(spec: LIFSpec) -> int:
    """Cycles for a neuron's second (fixed parameters: third) beat to leave: the datapath check's
    BMC grows about 3x per cycle (free back-pressure, and with run-time parameters a free
    threshold, leak and reset on every beat), so it stops there. A neuron's second beat is
    accepted S cycles after its first at the earliest (the interlock, or without it the
    no-hazard assumption: the first writes on that edge) and is out in cycle S + S + 1, so the
    BMC runs to S + latency + 1 (8 for S = 3, 10 with stage P)."""
    if spec.runtime_params:
        return spec.latency + spec.pipeline_stages + 1
    return spec.latency + min(3 * spec.groups, 6)


def check_latency(ctx: Ctx) -> None:
    lat = ctx.spec.latency
    accepted = ctx.history(ctx.accept, lat, "acc")
    with ctx.m.If(ctx.held(ctx.o_ready, lat, "ready")):
        ctx.assert_(ctx.o_valid == accepted[lat], "latency")


def check_interval(ctx: Ctx) -> None:
    spec = ctx.spec
    if not interlocked(spec):
        # no interlock: ready = stage M free, and o_stream.ready high frees every stage on
        # this edge (B writes the output register, A moves to B, M to A)
        with ctx.m.If(ctx.o_ready):
            ctx.assert_(ctx.i_ready, "interval")
        return
    hazard = group_in_flight(ctx)
    with ctx.m.If(ctx.held(ctx.o_ready, spec.latency, "ready") & ctx.o_ready):
        ctx.assert_(ctx.i_ready == ~hazard, "interval")


def group_in_flight(ctx: Ctx):
    """The offered beat's group was accepted 1 .. S - 1 cycles ago (from the harness's own accept
    and group history): with o_stream.ready high, the beats of that group a read would miss."""
    stages = ctx.spec.pipeline_stages
    accepted = ctx.history(ctx.accept, stages - 1, "acc")
    groups = ctx.history(ctx.extra["group"], stages - 1, "grp")
    incoming = ctx.extra["group"]
    in_flight = 0
    for j in range(1, stages):
        in_flight = in_flight | (accepted[j] & (groups[j] == incoming))
    return in_flight


def ready_flowing(ctx: Ctx, n: int):
    """o_stream.ready is high now and was high in each of the last ``n`` cycles, or in every
    cycle since reset (the pipeline then never stalled)."""
    ever_low = Signal(name=ctx._name("ready_low"))
    ctx.m.d.sync += ever_low.eq(ever_low | ~ctx.o_ready)
    return ctx.o_ready & (ctx.held(ctx.o_ready, n, "ready") | ~ever_low)


def check_hazard(ctx: Ctx) -> None:
    """``hazard`` from the accept history, while the pipeline flows (no back-pressure).

    With o_stream.ready high a beat accepted j cycles ago is in stage j (M = 1, A = 2, (P = 3,)
    B = S) and stage B writes on every edge, so the beats of the offered group that a read
    would miss are exactly those accepted 1 .. S - 1 cycles ago (the history of ``check_interval``).
    """
    spec = ctx.spec
    in_flight = group_in_flight(ctx)
    with ctx.m.If(ready_flowing(ctx, spec.latency)):
        ctx.assert_(ctx.harness.dut.hazard == (ctx.i_valid & in_flight), "hazard")


def check_hazard_stall(ctx: Ctx) -> None:
    """``hazard`` under any back-pressure, from the stream handshakes only.

    The beats accepted and not yet in the output register are the last n accepted, n = owed -
    o_valid (the output register holds at most one owed beat); they leave it oldest first, one
    per edge, when it enters the output register. Whether it does on the edge ending cycle t is
    known in cycle t + 1: n(t+1) = n(t) + accept(t) - 1. So cycle t's ``hazard`` is compared in
    cycle t + 1 with i_stream.valid(t) & (the offered group matches one of the n(t) beats, the
    oldest only if it did not leave on that edge). A stalled stage B is covered: its beat is the
    oldest and does not leave while the output register is full and not read.
    """
    m, spec = ctx.m, ctx.spec
    stages, groups = spec.pipeline_stages, spec.groups
    incoming = ctx.extra["group"]
    # groups of the accepted beats, most recent first: at most S are outside the output register
    hist = [Signal(range(groups), name=ctx._name("acc_group")) for _ in range(stages)]
    with m.If(ctx.accept):
        m.d.sync += hist[0].eq(incoming)
        m.d.sync += [hist[k].eq(hist[k - 1]) for k in range(1, stages)]
    unwritten = Signal(range(stages + 2), name=ctx._name("unwritten"))
    m.d.comb += unwritten.eq(ctx.owed - ctx.o_valid)
    younger = 0          # a match among the n - 1 youngest unwritten beats
    oldest = 0           # the oldest unwritten beat matches
    for k in range(stages):
        match = hist[k] == incoming
        younger = younger | ((k + 1 < unwritten) & match)
        oldest = oldest | ((k + 1 == unwritten) & match)
    prev_younger = ctx.reg(ctx.i_valid & younger, "haz_younger")
    prev_oldest = ctx.reg(ctx.i_valid & oldest, "haz_oldest")
    prev_unwritten = ctx.reg(unwritten, "haz_n")
    prev_accept = ctx.reg(ctx.accept, "haz_acc")
    prev_hazard = ctx.reg(ctx.harness.dut.hazard, "haz_dut")
    left = unwritten != prev_unwritten + prev_accept        # the oldest entered the output register
    ctx.assert_(prev_hazard == (prev_younger | (prev_oldest & ~left)), "hazard_stall")


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

    return Mutation("wrap", build=lambda spec: LIFArray(lif_spec_of(spec).replace(overflow="wrap"),
                                                        interlock=interlocked(spec)),
                    note="membrane sum wraps instead of saturating")


def source_mutant(old: str, new: str, name: str, note: str):
    """A mutation of ``rtl/lif.py`` itself: its source with ``old`` (which must occur exactly once)
    replaced by ``new``, run as a module of its own; its ``LIFArray(spec, interlock=...)`` is the
    broken block. For bugs inside ``elaborate`` (a compare left out) that no wrapper can make."""
    import inspect
    import types

    import rtl.lif
    from .harness import Mutation

    source = inspect.getsource(rtl.lif)
    if source.count(old) != 1:
        raise ValueError(f"mutation {name!r}: {old!r} occurs {source.count(old)} times in rtl/lif.py, not once")
    module = types.ModuleType(f"rtl_lif_mutant_{name.replace('-', '_')}")
    module.__file__ = rtl.lif.__file__
    exec(compile(source.replace(old, new), f"<rtl/lif.py: {name}>", "exec"), module.__dict__)
    return Mutation(name, build=lambda spec: module.LIFArray(lif_spec_of(spec), interlock=interlocked(spec)),
                    note=note)


def hazard_stuck_at_zero():
    """The array without its interlock whose ``hazard`` output is tied to 0."""
    return source_mutant("self.hazard.eq(self.i_stream.valid & hazard)", "self.hazard.eq(0)", "hazard-0",
                         "hazard tied to 0")


def hazard_ignores_stage_b():
    """The array whose group compare leaves stage B out (a stalled B beat is not seen)."""
    return source_mutant("in_flight.append((b_valid, b_group, b_fire))", "pass", "hazard-no-b",
                         "the group compare leaves stage B out")


FORMAL = LIFFormal()
