"""Formal properties of the synapse engine (``rtl.synapse.SynapseEngine``).

Default formal spec: 2 inputs, 2 outputs on 1 lane (G = 2 words per row), precomputed
effective weights (the memory holds w_eff: read latency L = 2), 4-bit saturating accumulators
(a weight of the 6-bit range reaches the rails in one or two additions), 8-bit counters.
Configs: ``table`` and ``regenerate`` (codes decoded on chip, L = 3 / 15) for the stream and
timing properties; the datapath property needs precomputed weights (the shadow adds the
stored cells; the decode is the co-simulation's).
"""

from __future__ import annotations

from amaranth import Array, Mux, Signal, signed, unsigned

from golden.synapse import SynapseSpec
from rtl.logmem import cell_shape, read_latency, weight_words
from rtl.synapse import SPIKE, STEP, WRITE, synapse_output_layout

from .base import FormalBlock
from .harness import Ctx, Property, Scoreboard, check_ready_interval, sat_value


class SynapseFormal(FormalBlock):
    name = "synapse"
    configs = {
        "lanes": {"n_outputs": 4, "lanes": 2},
        "table": {"mismatch_impl": "table"},
        "regenerate": {"mismatch_impl": "regenerate"},
        "wrap": {"overflow": "wrap"},
    }

    def default_spec(self):
        return SynapseSpec(n_inputs=2, n_outputs=2, lanes=1, code_bits=3, levels=2, frac_bits=1, acc_width=4,
                           counter_width=8, mismatch_impl="precomputed")

    def credit(self, ctx: Ctx):
        return Mux(ctx.i_payload.kind == STEP, ctx.spec.groups, 0)

    def max_credit(self, spec):
        return spec.groups

    def capacity(self, spec):
        return spec.groups + 1      # a STEP's G beats, and the previous STEP's last in the output register

    def drain(self, spec):
        return read_latency(spec) + spec.groups + 1

    def depth(self, spec):
        return read_latency(spec) + 3 * spec.groups + 10

    def environment(self, ctx: Ctx) -> None:
        spec, payload = ctx.spec, ctx.i_payload
        ctx.assume(payload.kind <= WRITE, "kind")
        ctx.assume((payload.kind != SPIKE) | (payload.index < spec.n_inputs), "spike_index")
        ctx.assume((payload.kind != WRITE) | (payload.index < spec.n_inputs * spec.groups), "write_address")

    def block_properties(self):
        return [
            Property("latency", "with o_stream.ready high, a STEP accepted in cycle c has current beat g valid "
                     "in cycle c + L + 2 + g (g < G), and nothing else is", check_latency, self.depth,
                     induction=True),
            Property("interval", "with o_stream.ready high, the beat after a SPIKE is accepted G cycles later, "
                     "after a STEP G + L + 1, after a WRITE 1", check_interval, self.depth),
            Property("saturate", "every current beat equals a shadow model: WRITEs store cells, each SPIKE adds "
                     "its row with saturation (or wrap) after every addition, a STEP emits and clears; "
                     "sops = N x spikes, reads = G x spikes (mod 2^Wc)", check_saturate,
                     lambda spec: read_latency(spec) + 2 * spec.groups + 5,
                     applies=lambda spec: spec.mismatch_impl == "precomputed"),
        ]


def check_latency(ctx: Ctx) -> None:
    spec = ctx.spec
    lat, groups = read_latency(spec) + 2, spec.groups
    steps = ctx.history(ctx.accept & (ctx.i_payload.kind == STEP), lat + groups - 1, "step")
    expect = 0
    for g in range(groups):
        expect = expect | steps[lat + g]
    with ctx.m.If(ctx.held(ctx.o_ready, lat + groups, "ready")):
        ctx.assert_(ctx.o_valid == expect, "latency")


def check_interval(ctx: Ctx) -> None:
    spec = ctx.spec
    groups, lat = spec.groups, read_latency(spec)
    kind = ctx.i_payload.kind
    check_ready_interval(ctx, Mux(kind == SPIKE, groups, Mux(kind == STEP, groups + lat + 1, 1)),
                         groups + lat + 1)


def check_saturate(ctx: Ctx) -> None:
    m, spec, payload = ctx.m, ctx.spec, ctx.i_payload
    groups, lanes, wa = spec.groups, spec.lanes, spec.acc_width
    words = spec.n_inputs * groups
    # the memory starts with the cells of all-zero codes (w_eff of code 0: the offset mismatch),
    # from the golden synapse_weights
    import torch

    start = weight_words(spec, torch.zeros(spec.n_inputs, spec.n_outputs, dtype=torch.int64))
    cells = [[Signal(cell_shape(spec), init=start[k][p], name=f"sh_w{k}_{p}") for p in range(lanes)]
             for k in range(words)]
    acc = [Signal(signed(wa), name=f"sh_acc{n}") for n in range(spec.n_outputs)]
    sops = Signal(unsigned(spec.counter_width), name="sh_sops")
    reads = Signal(unsigned(spec.counter_width), name="sh_reads")
    is_spike, is_step, is_write = (ctx.accept & (payload.kind == kind) for kind in (SPIKE, STEP, WRITE))
    for k in range(words):
        with m.If(is_write & (payload.index == k)):
            m.d.sync += [cells[k][p].eq(payload.data[p]) for p in range(lanes)]
    row = payload.index
    for g in range(groups):
        for p in range(lanes):
            weight = Array(cells[r * groups + g][p] for r in range(spec.n_inputs))[row[:max(1, (spec.n_inputs - 1).bit_length())]]
            added = sat_value(m, acc[g * lanes + p] + weight, wa, spec.overflow, name=f"sh_add{g}_{p}")
            with m.If(is_spike):
                m.d.sync += acc[g * lanes + p].eq(added)
            with m.If(is_step):
                m.d.sync += acc[g * lanes + p].eq(0)
    with m.If(is_spike):
        m.d.sync += [sops.eq(sops + spec.n_outputs), reads.eq(reads + groups)]   # wrap at 2^Wc
    entries = []
    for g in range(groups):
        beat = Signal(synapse_output_layout(spec), name=f"sh_beat{g}")
        m.d.comb += [beat.current[p].eq(acc[g * lanes + p]) for p in range(lanes)]
        m.d.comb += [beat.first.eq(payload.first), beat.sops.eq(sops), beat.reads.eq(reads)]
        entries.append((payload.kind == STEP, beat))
    board = Scoreboard(ctx, entries[0][1].shape(), spec.groups + 2)
    board.push(entries)
    board.check(ctx.o_payload)


FORMAL = SynapseFormal()
