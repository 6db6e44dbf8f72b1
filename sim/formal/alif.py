"""Formal properties of the adaptive-threshold LIF array (``rtl.alif.ALIFArray``).

Default formal spec: N = 1 neuron on P = 1 lane (G = 1 < S = 4: every update waits for the
previous one, the interlock is exercised; two updates of the neuron fit the datapath's depth),
Wv = 5, Wi = 4, noise We = 2, F = 2, adaptation Wa = 3 with k = 1 and delta = 3 (a' reaches
its rail 7 after three spikes in a row). The environment writes a group's parameters (theta_n
in 1 .. 2^(Wv-1) - 1, b_n in 0 .. 2^F) before it updates the group, as ``golden.alif`` requires.
"""

from __future__ import annotations

from amaranth import Array, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data

from golden import fixed
from golden.alif import UPDATE, WRITE, ALIFSpec

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard, sat_value


class ALIFFormal(FormalBlock):
    name = "alif"
    configs = {
        "pair": {"n_neurons": 2, "lanes": 1},
        "wide": {"n_neurons": 4, "lanes": 1},
        "addressed": {"addressed": True},
        "lanes": {"n_neurons": 4, "lanes": 2},
        "no_noise": {"noise_width": 0},
    }

    def default_spec(self):
        return ALIFSpec(n_neurons=1, lanes=1, membrane_width=5, input_width=4, leak_frac_bits=2, adapt_shift=1,
                        adapt_increment=3, adapt_width=3, noise_width=2)

    def check_spec(self, spec) -> None:
        if not (spec.emit_membrane and spec.emit_adaptation):
            raise ValueError("the ALIF harness reads v' and a' from the output: give emit_membrane = true and "
                             "emit_adaptation = true")

    def credit(self, ctx: Ctx):
        return ctx.i_payload.kind == UPDATE

    def capacity(self, spec):
        return spec.latency

    def drain(self, spec):
        return spec.latency

    def depth(self, spec):
        return spec.latency + 3 * spec.groups + 6

    def environment(self, ctx: Ctx) -> None:
        spec, m, payload = ctx.spec, ctx.m, ctx.i_payload
        vmax = fixed.int_max(spec.membrane_width, True)
        with m.If(payload.kind == WRITE):
            for p in range(spec.lanes):
                ctx.assume((payload.theta[p] >= 1) & (payload.theta[p] <= vmax), "theta_in_range")
                ctx.assume(payload.beta[p] <= (1 << spec.leak_frac_bits), "beta_in_range")
        if spec.addressed:
            incoming = payload.group
        else:
            incoming = Signal(range(spec.groups), name="h_group")
            with m.If(ctx.accept & (payload.kind == UPDATE)):
                m.d.sync += incoming.eq(Mux(incoming == spec.groups - 1, 0, incoming + 1))
        loaded = Signal(spec.groups, name="h_loaded")
        for g in range(spec.groups):
            with m.If(ctx.accept & (payload.kind == WRITE) & (payload.group == g)):
                m.d.sync += loaded[g].eq(1)
        with m.If(ctx.i_valid & (payload.kind == UPDATE)):
            ctx.assume(Array(loaded)[incoming] if spec.groups > 1 else loaded[0], "parameters_loaded")
        ctx.extra["group"] = incoming

    def block_properties(self):
        return [
            Property("latency", "with o_stream.ready high, an update accepted in cycle c is valid in cycle c + 5, "
                     "and nothing else is", check_latency, self.depth, induction=True),
            Property("interval", "with o_stream.ready high, a WRITE is always taken and an update iff no update "
                     "of its group was accepted in the last S - 1 = 3 cycles (the stall rule)", check_interval,
                     self.depth, induction=True),
            Property("saturate", "every output beat equals one golden alif_step of its neurons from their "
                     "previous output (h = sat_Wv(leak + i + e), adaptive threshold, a' = sat_Wa(...)), with "
                     "the parameters written before the update", check_saturate,
                     lambda spec: spec.latency + min(2 * spec.groups, 2) + 4),
        ]


def check_latency(ctx: Ctx) -> None:
    lat = ctx.spec.latency
    updated = ctx.history(ctx.accept & (ctx.i_payload.kind == UPDATE), lat, "upd")
    with ctx.m.If(ctx.held(ctx.o_ready, lat, "ready")):
        ctx.assert_(ctx.o_valid == updated[lat], "latency")


def check_interval(ctx: Ctx) -> None:
    spec = ctx.spec
    stages = spec.pipeline_stages
    updated = ctx.history(ctx.accept & (ctx.i_payload.kind == UPDATE), stages - 1, "upd")
    groups = ctx.history(ctx.extra["group"], stages - 1, "grp")
    hazard = 0
    for j in range(1, stages):
        hazard = hazard | (updated[j] & (groups[j] == ctx.extra["group"]))
    with ctx.m.If(ctx.held(ctx.o_ready, spec.latency, "ready") & ctx.o_ready):
        ctx.assert_(ctx.i_ready == ((ctx.i_payload.kind == WRITE) | ~hazard), "interval")


def check_saturate(ctx: Ctx) -> None:
    """One golden step per output beat from the neuron's previous output (as the LIF's)."""
    m, spec, payload = ctx.m, ctx.spec, ctx.i_payload
    lanes, groups, wv, wa = spec.lanes, spec.groups, spec.membrane_width, spec.adapt_width
    widths = spec.param_widths
    theta_mem = [Signal(unsigned(widths["theta"]), name=f"sh_theta{n}") for n in range(spec.n_neurons)]
    beta_mem = [Signal(unsigned(widths["beta"]), name=f"sh_beta{n}") for n in range(spec.n_neurons)]
    for g in range(groups):
        with m.If(ctx.accept & (payload.kind == WRITE) & (payload.group == g)):
            for p in range(lanes):
                m.d.sync += [theta_mem[g * lanes + p].eq(payload.theta[p]), beta_mem[g * lanes + p].eq(payload.beta[p])]
    group = ctx.extra["group"]
    fields = {"first": unsigned(1), "group": range(groups),
              "drive": data.ArrayLayout(signed(spec.drive_width), lanes),
              "theta": data.ArrayLayout(unsigned(widths["theta"]), lanes),
              "beta": data.ArrayLayout(unsigned(widths["beta"]), lanes)}
    entry = Signal(data.StructLayout(fields), name="sh_entry")
    m.d.comb += [entry.first.eq(payload.first), entry.group.eq(group)]
    for p in range(lanes):
        drive = payload.current[p] + (payload.noise[p] if spec.noise_width else 0)   # exact
        m.d.comb += [entry.drive[p].eq(drive),
                     entry.theta[p].eq(Array(theta_mem[g * lanes + p] for g in range(groups))[group]),
                     entry.beta[p].eq(Array(beta_mem[g * lanes + p] for g in range(groups))[group])]
    queue = Scoreboard(ctx, entry.shape(), spec.latency + 1, name="q")
    queue.push([(payload.kind == UPDATE, entry)])
    head = queue.head
    last_v = [Signal(signed(wv), name=f"sh_v{n}") for n in range(spec.n_neurons)]
    last_a = [Signal(unsigned(wa), name=f"sh_a{n}") for n in range(spec.n_neurons)]
    out = ctx.o_payload
    for p in range(lanes):
        v = Mux(head.first, 0, Array(last_v[g * lanes + p] for g in range(groups))[head.group])
        a = Signal(unsigned(wa), name=f"sh_a_in{p}")
        m.d.comb += a.eq(Mux(head.first, 0, Array(last_a[g * lanes + p] for g in range(groups))[head.group]))
        v0 = Signal(signed(wv), name=f"sh_v_in{p}")
        m.d.comb += v0.eq(v)
        leaked = (v0 * Value.cast(head.beta[p]).as_unsigned()) >> spec.leak_frac_bits     # floor
        h = sat_value(m, leaked + head.drive[p], wv, "saturate", name=f"sh_h{p}")
        th = Signal(unsigned(max(widths["theta"], wa) + 1), name=f"sh_th{p}")
        m.d.comb += th.eq(head.theta[p] + a)
        spike = Signal(name=f"sh_spike{p}")
        m.d.comb += spike.eq(h >= th)
        v_new = Signal(signed(wv), name=f"sh_vnew{p}")
        m.d.comb += v_new.eq(Mux(spike, h - th, h))
        raised = (a - (a >> spec.adapt_shift)) + Mux(spike, spec.adapt_increment, 0)
        a_max = fixed.int_max(wa, False)
        a_new = Signal(unsigned(wa), name=f"sh_anew{p}")
        m.d.comb += a_new.eq(Mux(raised > a_max, a_max, raised))
        with m.If(ctx.emit):
            ctx.assert_(out.spikes[p] == spike, f"spike{p}")
            ctx.assert_(out.membrane[p] == v_new, f"membrane{p}")
            ctx.assert_(out.adaptation[p] == a_new, f"adaptation{p}")
        for g in range(groups):
            with m.If(ctx.emit & (head.group == g)):
                m.d.sync += [last_v[g * lanes + p].eq(v_new), last_a[g * lanes + p].eq(a_new)]


FORMAL = ALIFFormal()
