"""LIF neuron array: P parallel lanes, N neurons time-multiplexed over them.

Hardware for ``golden.lif.lif_step``; the equations are in ``golden/lif.py`` and
``docs/numeric-contract.md`` and are implemented here bit for bit.
"""

from __future__ import annotations

from amaranth import C, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import fixed
from golden.lif import LIFSpec


def lif_input_layout(spec: LIFSpec) -> data.StructLayout:
    """Input beat: P signed currents (lane p at the low end) and the ``first`` flag.

    ``first`` = 1 on every beat of a sequence's time step 0: the beat's neurons
    then start from v = 0, r = 0 instead of their stored state.
    """
    return data.StructLayout({
        "current": data.ArrayLayout(signed(spec.input_width), spec.lanes),
        "first": unsigned(1),
    })


def lif_output_layout(spec: LIFSpec) -> data.StructLayout:
    """Output beat: P spike bits and, if ``emit_membrane``, the P membranes v' after reset."""
    fields = {"spikes": unsigned(spec.lanes)}
    if spec.emit_membrane:
        fields["membrane"] = data.ArrayLayout(signed(spec.membrane_width), spec.lanes)
    return data.StructLayout(fields)


def lif_state_layout(spec: LIFSpec) -> data.ArrayLayout:
    """One state-memory word: (v, r) for each of the P lanes of a group."""
    lane = {"v": signed(spec.membrane_width)}
    if spec.refractory_bits:
        lane["r"] = unsigned(spec.refractory_bits)
    return data.ArrayLayout(data.StructLayout(lane), spec.lanes)


class LIFArray(wiring.Component):
    """An array of N LIF neurons updated P at a time.

    The N neurons form G = N / P groups; group g holds neurons g*P .. g*P + P - 1.
    Input beats arrive in group order 0, 1, ..., G - 1, then again 0 for the next
    time step; one beat is one time step of one group. The state (v, r) of
    every group lives in an ``amaranth.lib.memory.Memory`` of depth G and width
    P * (Wv + Wr) bits, read when a beat is accepted and written back when it
    leaves the compute stage (the read port is transparent to the write port,
    so G = 1 needs no special case).

    Latency and throughput
    ----------------------
    * Latency: 2 cycles. A beat accepted on the rising edge ending cycle c is
      presented on ``o_stream`` (valid) in cycle c + 2.
    * Throughput: 1 beat (P neuron updates) per cycle when ``o_stream.ready``
      stays high; a time step of all N neurons takes G = N / P cycles.
    * Back-pressure: ``i_stream.ready`` falls only while the output register is
      full and not being taken; no beat is ever dropped or duplicated.

    Members
    -------
    i_stream : In(stream.Signature(lif_input_layout(spec)))
    o_stream : Out(stream.Signature(lif_output_layout(spec)))
    """

    def __init__(self, spec: LIFSpec):
        if not isinstance(spec, LIFSpec):
            raise TypeError(f"LIFArray needs a LIFSpec, got {type(spec).__name__}")
        self.spec = spec
        super().__init__({
            "i_stream": In(stream.Signature(lif_input_layout(spec))),
            "o_stream": Out(stream.Signature(lif_output_layout(spec))),
        })

    #: cycles from input handshake to output valid, as stated in the docstring
    LATENCY = 2

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        wv, groups, lanes = spec.membrane_width, spec.groups, spec.lanes

        m.submodules.state = state = memory.Memory(shape=lif_state_layout(spec), depth=groups, init=[])
        wr = state.write_port()
        rd = state.read_port(transparent_for=(wr,))

        next_group = Signal(range(groups), name="next_group")
        # Compute stage registers (stage A): the accepted beat, its memory word is on rd.data.
        a_valid = Signal()
        a_group = Signal(range(groups))
        a_current = Signal(data.ArrayLayout(signed(spec.input_width), lanes))
        a_first = Signal()

        out_free = ~self.o_stream.valid | self.o_stream.ready
        a_fire = a_valid & out_free
        m.d.comb += self.i_stream.ready.eq(~a_valid | a_fire)
        accept = self.i_stream.valid & self.i_stream.ready

        m.d.comb += [rd.addr.eq(next_group), rd.en.eq(self.i_stream.ready)]
        with m.If(accept):
            m.d.sync += [
                a_valid.eq(1),
                a_group.eq(next_group),
                a_current.eq(self.i_stream.payload.current),
                a_first.eq(self.i_stream.payload.first),
                next_group.eq(Mux(next_group == groups - 1, 0, next_group + 1)),
            ]
        with m.Elif(a_fire):
            m.d.sync += a_valid.eq(0)

        v_max, v_min = fixed.int_max(wv, True), fixed.int_min(wv, True)
        spikes = Signal(lanes)
        new_state = Signal(lif_state_layout(spec))
        for p in range(lanes):
            stored = rd.data[p]
            v = Signal(signed(wv), name=f"v{p}")
            m.d.comb += v.eq(Mux(a_first, 0, stored.v))
            if spec.leak_mode == "shift":
                leaked_expr = v - (v >> spec.leak_shift)
            else:
                leaked_expr = (v * C(spec.leak_beta, unsigned(spec.leak_frac_bits + 1))) >> spec.leak_frac_bits
            leaked = Signal(signed(wv), name=f"leaked{p}")
            m.d.comb += leaked.eq(leaked_expr)  # |leak(v)| <= |v|: fits Wv bits exactly
            total = leaked + a_current[p]       # exact: Amaranth widens the sum
            if spec.overflow == "saturate":
                fitted = Mux(total > v_max, v_max, Mux(total < v_min, v_min, total))
            else:
                fitted = total[:wv].as_signed()
            if spec.refractory_bits:
                r = Signal(unsigned(spec.refractory_bits), name=f"r{p}")
                m.d.comb += r.eq(Mux(a_first, 0, stored.r))
                active = r == 0
            else:
                active = C(1, 1)
            h = Signal(signed(wv), name=f"h{p}")
            m.d.comb += h.eq(Mux(active, fitted, leaked))
            spike = Signal(name=f"spike{p}")
            m.d.comb += spike.eq(active & (h >= spec.threshold))
            if spec.reset_mode == "subtract":
                after_spike = h - spec.threshold
            elif spec.reset_mode == "zero":
                after_spike = C(0, signed(wv))
            else:
                after_spike = h
            m.d.comb += [spikes[p].eq(spike), new_state[p].v.eq(Mux(spike, after_spike, h))]
            if spec.refractory_bits:
                m.d.comb += new_state[p].r.eq(Mux(spike, spec.refractory, Mux(r == 0, 0, r - 1)))

        m.d.comb += [wr.addr.eq(a_group), wr.data.eq(new_state), wr.en.eq(a_fire)]

        with m.If(a_fire):
            m.d.sync += [self.o_stream.valid.eq(1), self.o_stream.payload.spikes.eq(spikes)]
            if spec.emit_membrane:
                m.d.sync += [self.o_stream.payload.membrane[p].eq(new_state[p].v) for p in range(lanes)]
        with m.Elif(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays (used by the Amaranth tests, the cocotb bench and the board driver)


def lif_input_beats(spec: LIFSpec, currents) -> list[dict]:
    """Golden currents (S, T, N) -> input beats in stream order (sequence, step, group)."""
    s_count, t_count, n = currents.shape
    if n != spec.n_neurons:
        raise ValueError(f"currents have {n} neurons; the spec has n_neurons = {spec.n_neurons}")
    beats = []
    for s in range(s_count):
        for t in range(t_count):
            row = [int(x) for x in currents[s, t]]
            for g in range(spec.groups):
                beats.append({"current": row[g * spec.lanes:(g + 1) * spec.lanes], "first": int(t == 0)})
    return beats


def lif_expected_beats(spec: LIFSpec, spikes, membrane) -> list[dict]:
    """Golden spikes and membranes (S, T, N) -> the output beats the hardware must produce."""
    s_count, t_count, _ = spikes.shape
    beats = []
    for s in range(s_count):
        for t in range(t_count):
            sp = [int(x) for x in spikes[s, t]]
            mv = [int(x) for x in membrane[s, t]]
            for g in range(spec.groups):
                lo, hi = g * spec.lanes, (g + 1) * spec.lanes
                beat = {"spikes": sum(bit << p for p, bit in enumerate(sp[lo:hi]))}
                if spec.emit_membrane:
                    beat["membrane"] = mv[lo:hi]
                beats.append(beat)
    return beats
