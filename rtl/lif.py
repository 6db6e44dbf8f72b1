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
    leaves the last compute stage (the read port is transparent to the write
    port).

    Pipeline (so that the default spec closes timing above 100 MHz on an ECP5-85,
    speed 6, and larger N, whose state lives in block RAM, too)::

        accept:  read the group's state word (presented on the read port's output next cycle)
        stage M: state word -> register (a block RAM's slow clock-to-output gets its own cycle)
        stage A: v = first ? 0 : v_stored;  leaked = leak(v);  total = leaked + i
        stage B: h = fit(total) or leaked;  spike;  v', r'  -> state write, output register

    A beat's state read must see the write of its group's previous beat. The
    beats in flight at an accept are the last three accepted (stages M, A, B),
    so with G >= 3 a beat of the same group can only be the oldest, in stage B
    with M and A full; then the accept moves the whole pipeline, stage B writes
    on that very edge and the transparent read port sees it. With G <= 2 a
    beat is accepted only when no beat of its group is in flight, or the one in
    stage B writes on that edge (the v -> v' recurrence cannot be shortened).

    Latency and throughput
    ----------------------
    * Latency: 4 cycles. A beat accepted on the rising edge ending cycle c is
      presented on ``o_stream`` (valid) in cycle c + 4.
    * Throughput: 1 beat (P neuron updates) per cycle when ``o_stream.ready``
      stays high and G >= 3; a time step of all N neurons takes G = N / P cycles.
      G = 2: 2 beats every 3 cycles (gaps 1, 2); G = 1: 1 beat every 3 cycles
      (``accept_gaps(spec)``).
    * Back-pressure: ``i_stream.ready`` falls only while the stages ahead are
      full and not moving (and, with G <= 2, while a beat of the same group is
      in flight); no beat is ever dropped or duplicated.

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
    LATENCY = 4

    @staticmethod
    def accept_gaps(spec: LIFSpec) -> tuple[int, ...]:
        """Cycles between accepted beats without back-pressure, a repeating pattern (the
        docstring's throughput): (1,) for G >= 3, (1, 2) for G = 2, (3,) for G = 1."""
        return {1: (3,), 2: (1, 2)}.get(spec.groups, (1,))

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        wv, groups, lanes = spec.membrane_width, spec.groups, spec.lanes

        m.submodules.state = state = memory.Memory(shape=lif_state_layout(spec), depth=groups, init=[])
        wr = state.write_port()
        rd = state.read_port(transparent_for=(wr,))

        next_group = Signal(range(groups), name="next_group")
        # Stage M registers: the accepted beat while its state word comes out of the memory.
        m_valid = Signal()
        m_group = Signal(range(groups))
        m_current = Signal(data.ArrayLayout(signed(spec.input_width), lanes))
        m_first = Signal()
        # Stage A registers: the beat and its state word (a plain register after the memory:
        # a block RAM's clock-to-output delay then has a cycle of its own).
        a_valid = Signal()
        a_group = Signal(range(groups))
        a_current = Signal(data.ArrayLayout(signed(spec.input_width), lanes))
        a_first = Signal()
        a_stored = Signal(lif_state_layout(spec))
        # Stage B registers: per lane the sum before fitting, the leaked membrane, the counter.
        total_shape = signed(max(wv, spec.input_width) + 1)  # leaked + i is exact in this width
        b_valid = Signal()
        b_group = Signal(range(groups))
        b_total = Signal(data.ArrayLayout(total_shape, lanes))
        b_leaked = Signal(data.ArrayLayout(signed(wv), lanes))
        b_r = Signal(data.ArrayLayout(unsigned(max(spec.refractory_bits, 1)), lanes))

        out_free = ~self.o_stream.valid | self.o_stream.ready
        b_fire = b_valid & out_free
        b_free = ~b_valid | b_fire
        a_fire = a_valid & b_free
        a_free = ~a_valid | a_fire
        m_fire = m_valid & a_free
        m_free = ~m_valid | m_fire
        if groups >= 3:
            # the beats in flight are the last three accepted; one of group `next_group` can only
            # be the oldest, in stage B with M and A full, so an accept means it writes on this
            # very edge, which the transparent read sees
            m.d.comb += self.i_stream.ready.eq(m_free)
        else:
            # G <= 2: a beat of this group may still be in flight: wait until none is, or the
            # one in stage B writes on this edge
            in_flight = [(m_valid, m_group, C(0, 1)), (a_valid, a_group, C(0, 1)), (b_valid, b_group, b_fire)]
            hazard = 0
            for valid, group, writes_now in in_flight:
                hazard = hazard | (valid & (group == next_group) & ~writes_now)
            m.d.comb += self.i_stream.ready.eq(m_free & ~hazard)
        accept = self.i_stream.valid & self.i_stream.ready

        # the word read on the accept edge stays on rd.data until the beat leaves stage M
        m.d.comb += [rd.addr.eq(next_group), rd.en.eq(accept)]
        with m.If(accept):
            m.d.sync += [
                m_valid.eq(1),
                m_group.eq(next_group),
                m_current.eq(self.i_stream.payload.current),
                m_first.eq(self.i_stream.payload.first),
                next_group.eq(Mux(next_group == groups - 1, 0, next_group + 1)),
            ]
        with m.Elif(m_fire):
            m.d.sync += m_valid.eq(0)

        # ---- stage M: register the state word
        with m.If(m_fire):
            m.d.sync += [a_valid.eq(1), a_group.eq(m_group), a_current.eq(m_current), a_first.eq(m_first),
                         a_stored.eq(rd.data)]
        with m.Elif(a_fire):
            m.d.sync += a_valid.eq(0)

        # ---- stage A: leak and add
        with m.If(a_fire):
            m.d.sync += [b_valid.eq(1), b_group.eq(a_group)]
        with m.Elif(b_fire):
            m.d.sync += b_valid.eq(0)
        for p in range(lanes):
            stored = a_stored[p]
            v = Signal(signed(wv), name=f"v{p}")
            m.d.comb += v.eq(Mux(a_first, 0, stored.v))
            if spec.leak_mode == "shift":
                leaked_expr = v - (v >> spec.leak_shift)
            else:
                leaked_expr = (v * C(spec.leak_beta, unsigned(spec.leak_frac_bits + 1))) >> spec.leak_frac_bits
            leaked = Signal(signed(wv), name=f"leaked{p}")
            m.d.comb += leaked.eq(leaked_expr)  # |leak(v)| <= |v|: fits Wv bits exactly
            with m.If(a_fire):
                m.d.sync += [b_leaked[p].eq(leaked), b_total[p].eq(leaked + a_current[p])]
                if spec.refractory_bits:
                    m.d.sync += b_r[p].eq(Mux(a_first, 0, stored.r))

        # ---- stage B: fit, fire, reset
        v_max, v_min = C(fixed.int_max(wv, True), signed(wv)), C(fixed.int_min(wv, True), signed(wv))
        spikes = Signal(lanes)
        new_state = Signal(lif_state_layout(spec))
        for p in range(lanes):
            total = b_total[p]
            if spec.overflow == "saturate":
                # total overflows Wv bits iff its bits Wv-1 .. top are not all equal (a few LUTs,
                # where comparing with v_max / v_min would cost two carry chains)
                top = total[wv - 1:]
                overflow = ~((top == 0) | (top == (1 << len(top)) - 1))
                fitted = Mux(overflow, Mux(total[-1], v_min, v_max), total[:wv].as_signed())
            else:
                fitted = total[:wv].as_signed()
            if spec.refractory_bits:
                r = b_r[p]
                active = r == 0
            else:
                active = C(1, 1)
            h = Signal(signed(wv), name=f"h{p}")
            m.d.comb += h.eq(Mux(active, fitted, b_leaked[p]))
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

        m.d.comb += [wr.addr.eq(b_group), wr.data.eq(new_state), wr.en.eq(b_fire)]

        with m.If(b_fire):
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
