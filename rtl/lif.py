"""LIF neuron array: P parallel lanes, N neurons time-multiplexed over them.

Hardware for ``golden.lif.lif_step``; the equations are in ``golden/lif.py`` and
``docs/numeric-contract.md`` and are implemented here bit for bit.
"""

from __future__ import annotations

from amaranth import C, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import fixed
from golden.lif import LIFSpec, lif_normalize_beats, lif_params, lif_run_beats


def lif_input_layout(spec: LIFSpec) -> data.StructLayout:
    """Input beat: P signed currents (lane p at the low end), the ``first`` flag, and by mode
    the ``group`` and the beat's neuron parameters.

    ``first`` = 1 on every beat of a sequence's time step 0: the beat's neurons
    then start from v = 0, r = 0 instead of their stored state.

    * ``addressed``: ``group`` (unsigned, range(G)), the state word the beat updates.
    * ``runtime_params``: ``threshold`` (unsigned Wv - 1 bits, defined for 1 .. 2^(Wv-1) - 1),
      ``leak`` (multiply leak: b, unsigned F + 1 bits, 0 .. 2^F; shift leak: s, unsigned
      bits_for(Wv - 1) bits, 1 .. Wv - 1) and ``reset`` (unsigned 2 bits: 0 subtract, 1 zero,
      2 none; 3 is reserved and acts as none). Widths: ``LIFSpec.param_widths``.
    """
    fields = {
        "current": data.ArrayLayout(signed(spec.input_width), spec.lanes),
        "first": unsigned(1),
    }
    if spec.addressed:
        fields["group"] = range(spec.groups)
    if spec.runtime_params:
        fields.update({name: unsigned(width) for name, width in spec.param_widths.items()})
    return data.StructLayout(fields)


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
    port). The memory starts all zero (v = 0, r = 0).

    Two optional modes let a time-shared core run several layers on one array
    (``golden.lif.lif_run_beats`` is their golden model):

    * ``addressed``: the beat carries ``group``, the word it updates, and beats may
      come in any group order (no cyclic counter).
    * ``runtime_params``: the beat carries its threshold theta, leak (s or b) and
      reset mode; they travel down the pipeline registered with their beat (stage M
      -> A, where the leak uses them, -> B, where threshold and reset do), so no
      combinational path runs from the input payload to stage B. The leak becomes a
      variable arithmetic shift (or a multiply by a register instead of a constant),
      the threshold compare and subtract a register operand.

    Pipeline (so that the default spec closes timing above 100 MHz on an ECP5-85,
    speed 6, and larger N, whose state lives in block RAM, too)::

        accept:  read the group's state word (presented on the read port's output next cycle)
        stage M: state word -> register (a block RAM's slow clock-to-output gets its own cycle)
        stage A: v = first ? 0 : v_stored;  leaked = leak(v);  total = leaked + i
        stage B: h = fit(total) or leaked;  spike;  v', r'  -> state write, output register

    With a run-time multiply leak (``runtime_params`` and ``leak_mode = "multiply"``) the
    product v b is a multiply by a register operand (two DSP blocks at Wv = 24, whose delay
    alone is most of a 100 MHz cycle), so it gets a stage of its own::

        stage M: v = first ? 0 : v_stored  -> register
        stage A: v = v_hi 2^l + v_lo (l = Wv // 2, v_lo unsigned);  v_hi b, v_lo b -> registers
        stage P: leaked = ((v_hi b) 2^l + v_lo b) >> F  (= (v b) >> F exactly);  total = leaked + i
        stage B: as above

    S = ``spec.pipeline_stages`` (3, or 4 with stage P) stages follow the accept.

    A beat's state read must see the write of its group's previous beat. The
    beats in flight at an accept are the last S accepted, so with G >= S a beat
    of the same group can only be the oldest, in stage B with the stages before
    it full; then the accept moves the whole pipeline, stage B writes on that
    very edge and the transparent read port sees it. With G < S a beat is
    accepted only when no beat of its group is in flight, or the one in stage B
    writes on that edge (the v -> v' recurrence cannot be shortened).

    With ``addressed`` (any G) the same interlock compares the incoming beat's
    ``group`` with the group of every beat in flight. **Stall rule**: in a cycle
    where ``i_stream.valid`` is high with group g, ``i_stream.ready`` is high iff

        (stage M empty or moving on)  and  no stage M, A (, P) holds group g
        and  not (B holds group g and does not leave B on this edge)

    (B leaves when ``o_stream`` is empty or read in this cycle). ``i_stream.ready``
    therefore depends combinationally on ``payload.group``; as everywhere, ``valid``
    must not wait for ``ready``.

    Latency and throughput
    ----------------------
    * Latency: S + 1 cycles (``spec.latency``: 4, or 5 with stage P). A beat accepted
      on the rising edge ending cycle c is presented on ``o_stream`` (valid) in cycle
      c + S + 1.
    * Throughput: 1 beat (P neuron updates) per cycle when ``o_stream.ready``
      stays high and G >= S; a time step of all N neurons takes G = N / P cycles.
      G < S: G beats every S cycles (S = 3: gaps 1, 2 for G = 2, 3 for G = 1;
      ``accept_gaps(spec)``).
    * Addressed throughput: with ``o_stream.ready`` high, beat k (group g_k, offered
      from cycle 0 on) is accepted in cycle t_k = max(t_(k-1) + 1, t_j + S), j the last
      earlier beat of group g_k (``accept_cycles(spec, groups)``): 1 beat per cycle while
      every beat's group differs from those of the S - 1 beats accepted just before it,
      1 beat every S cycles for back-to-back beats of one group. Under any back-pressure
      the interlock never stalls a beat whose group differs from the last S accepted
      (those are all that can be in flight).
    * Back-pressure: ``i_stream.ready`` falls only while the stages ahead are
      full and not moving (and, with G < S or ``addressed``, while a beat of the same
      group is in flight); no beat is ever dropped or duplicated.

    Members
    -------
    i_stream : In(stream.Signature(lif_input_layout(spec)))
    o_stream : Out(stream.Signature(lif_output_layout(spec)))
    hazard : Out(1), only with ``interlock=False``
        High in a cycle where ``i_stream.valid`` is high and the offered beat's group is in
        flight (the stall rule's condition), i.e. where the interlock would have stalled it.
        Driven where the array has the compare (addressed beats, or G < S). In the cyclic order
        with G >= S there is no compare and ``hazard`` is 0: a group returns only after G >= S
        accepts, so it can be in flight only while stage M is full and stalled, when ``ready``
        is low anyway (the interlocked array needs no compare there either).

    Feeders that space their groups themselves
    ------------------------------------------
    ``LIFArray(spec, interlock=False)`` leaves the group compare out of ``i_stream.ready``
    (then ``ready`` = stage M empty or moving on): for a feeder that never offers a beat whose
    group is in flight, such as the core, whose rows of G distinct groups come back >= 16
    cycles apart. The compare still runs, off the accept path, and drives ``hazard``, so the
    feeder can check its guarantee (the core keeps a sticky status bit). A beat offered while
    ``hazard`` is high is accepted and reads a stale state word: the outputs are then wrong.
    """

    def __init__(self, spec: LIFSpec, *, interlock: bool = True):
        if not isinstance(spec, LIFSpec):
            raise TypeError(f"LIFArray needs a LIFSpec, got {type(spec).__name__}")
        self.spec = spec
        self.interlock = bool(interlock)
        members = {
            "i_stream": In(stream.Signature(lif_input_layout(spec))),
            "o_stream": Out(stream.Signature(lif_output_layout(spec))),
        }
        if not self.interlock:
            members["hazard"] = Out(1)
        super().__init__(members)

    @staticmethod
    def latency(spec: LIFSpec) -> int:
        """Cycles from input handshake to output valid, as stated in the docstring (S + 1)."""
        return spec.latency

    @staticmethod
    def accept_gaps(spec: LIFSpec) -> tuple[int, ...]:
        """Cycles between accepted beats without back-pressure, a repeating pattern (the
        docstring's throughput): (1,) for G >= S, else G - 1 gaps of 1 and one of S - G + 1
        (S = 3: (1, 2) for G = 2, (3,) for G = 1). With ``addressed`` this is the pattern of the
        cyclic group order 0, 1, ..., G - 1, 0, ...; any other order: ``accept_cycles``."""
        stages, groups = spec.pipeline_stages, spec.groups
        if groups >= stages:
            return (1,)
        return (1,) * (groups - 1) + (stages - groups + 1,)

    @staticmethod
    def accept_cycles(spec: LIFSpec, groups) -> list[int]:
        """Accept cycle of each beat when every beat is offered as early as it can be and
        ``o_stream.ready`` stays high: t_0 = 0, t_k = max(t_(k-1) + 1, t_j + S) with j the last
        beat before k of the same group (the docstring's stall rule; a same-group beat is in
        stage M one cycle after its accept, in the next stage a cycle later, and writes on the
        edge ending the S-th). ``groups``: the beats' groups (the cyclic order unless addressed)."""
        groups = [int(g) for g in groups]
        if not spec.addressed and groups != [k % spec.groups for k in range(len(groups))]:
            raise ValueError("a LIF array that is not addressed takes its groups in cyclic order")
        stages = spec.pipeline_stages
        cycles, last = [], {}
        for group in groups:
            t = max(cycles[-1] + 1 if cycles else 0, last.get(group, -stages) + stages)
            cycles.append(t)
            last[group] = t
        return cycles

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        wv, groups, lanes = spec.membrane_width, spec.groups, spec.lanes

        m.submodules.state = state = memory.Memory(shape=lif_state_layout(spec), depth=groups, init=[])
        wr = state.write_port()
        rd = state.read_port(transparent_for=(wr,))

        if not spec.addressed:
            next_group = Signal(range(groups), name="next_group")
        # the per-beat parameters (runtime_params) travel with their beat, one register per stage
        param_shapes = {name: unsigned(width) for name, width in spec.param_widths.items()}

        def param_regs(stage, names):
            if not spec.runtime_params:
                return {}
            return {name: Signal(param_shapes[name], name=f"{stage}_{name}") for name in names}

        # stage P (run-time multiply leak): the product v b gets a cycle of its own
        product_stage = spec.pipeline_stages == 4
        m_params = param_regs("m", ("threshold", "leak", "reset"))
        a_params = param_regs("a", ("threshold", "leak", "reset"))
        p_params = param_regs("p", ("threshold", "reset")) if product_stage else {}
        b_params = param_regs("b", ("threshold", "reset"))  # the leak is used up in stage A (or P)
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
        if product_stage:
            # Stage P registers: the beat, its two partial products per lane and its counter.
            low_bits = wv // 2
            leak_width = param_shapes["leak"].width
            p_valid = Signal()
            p_group = Signal(range(groups))
            p_current = Signal(data.ArrayLayout(signed(spec.input_width), lanes))
            p_low = Signal(data.ArrayLayout(unsigned(low_bits + leak_width), lanes))
            p_high = Signal(data.ArrayLayout(signed(wv - low_bits + leak_width + 1), lanes))
            p_r = Signal(data.ArrayLayout(unsigned(max(spec.refractory_bits, 1)), lanes))
            # with saturation, the threshold test total >= theta is prepared a stage early:
            # margin = i - theta (stage A), excess = leaked + margin = total - theta (stage P),
            # so stage B only reads the sign of a register (no carry chain after the fit)
            early_compare = spec.overflow == "saturate"
            margin_shape = signed(max(spec.input_width, wv) + 1)
            p_margin = Signal(data.ArrayLayout(margin_shape, lanes))
            b_excess = Signal(data.ArrayLayout(signed(margin_shape.width + 1), lanes))
            p_fire = p_valid & b_free
            p_free = ~p_valid | p_fire
            a_fire = a_valid & p_free
        else:
            a_fire = a_valid & b_free
        a_free = ~a_valid | a_fire
        m_fire = m_valid & a_free
        m_free = ~m_valid | m_fire
        # the group the offered beat updates: its own field, or the cyclic counter
        incoming = self.i_stream.payload.group if spec.addressed else next_group
        if groups >= spec.pipeline_stages and not spec.addressed:
            # the beats in flight are the last S accepted; one of group `next_group` can only
            # be the oldest, in stage B with the stages before it full, so an accept means it
            # writes on this very edge, which the transparent read sees
            m.d.comb += self.i_stream.ready.eq(m_free)
        else:
            # G < S, or any group order (addressed): a beat of this group may still be in
            # flight: wait until none is, or the one in stage B writes on this edge
            in_flight = [(m_valid, m_group, C(0, 1)), (a_valid, a_group, C(0, 1))]
            if product_stage:
                in_flight.append((p_valid, p_group, C(0, 1)))
            in_flight.append((b_valid, b_group, b_fire))
            hazard = 0
            for valid, group, writes_now in in_flight:
                hazard = hazard | (valid & (group == incoming) & ~writes_now)
            if self.interlock:
                m.d.comb += self.i_stream.ready.eq(m_free & ~hazard)
            else:
                # the feeder spaces its groups: the compare only reports (see the docstring)
                m.d.comb += [self.i_stream.ready.eq(m_free), self.hazard.eq(self.i_stream.valid & hazard)]
        accept = self.i_stream.valid & self.i_stream.ready

        # the word read on the accept edge stays on rd.data until the beat leaves stage M
        m.d.comb += [rd.addr.eq(incoming), rd.en.eq(accept)]
        with m.If(accept):
            m.d.sync += [
                m_valid.eq(1),
                m_group.eq(incoming),
                m_current.eq(self.i_stream.payload.current),
                m_first.eq(self.i_stream.payload.first),
            ]
            if not spec.addressed:
                m.d.sync += next_group.eq(Mux(next_group == groups - 1, 0, next_group + 1))
            m.d.sync += [reg.eq(getattr(self.i_stream.payload, name)) for name, reg in m_params.items()]
        with m.Elif(m_fire):
            m.d.sync += m_valid.eq(0)

        # ---- stage M: register the state word
        with m.If(m_fire):
            m.d.sync += [a_valid.eq(1), a_group.eq(m_group), a_current.eq(m_current), a_first.eq(m_first)]
            if product_stage:
                # the first step's reset to v = 0, r = 0 is applied here, so that the multiply
                # in stage A starts from a register
                m.d.sync += a_stored.eq(Mux(m_first, 0, rd.data.as_value()))
            else:
                m.d.sync += a_stored.eq(rd.data)
            m.d.sync += [a_params[name].eq(reg) for name, reg in m_params.items()]
        with m.Elif(a_fire):
            m.d.sync += a_valid.eq(0)

        if product_stage:
            # ---- stage A: the two partial products of v b (one DSP block each)
            with m.If(a_fire):
                m.d.sync += [p_valid.eq(1), p_group.eq(a_group), p_current.eq(a_current)]
                m.d.sync += [p_params[name].eq(a_params[name]) for name in p_params]
            with m.Elif(p_fire):
                m.d.sync += p_valid.eq(0)
            for p in range(lanes):
                v = a_stored[p].v
                with m.If(a_fire):
                    m.d.sync += [p_low[p].eq(v[:low_bits] * a_params["leak"]),
                                 p_high[p].eq(v[low_bits:].as_signed() * a_params["leak"]),
                                 p_margin[p].eq(a_current[p] - a_params["threshold"])]
                    if spec.refractory_bits:
                        m.d.sync += p_r[p].eq(a_stored[p].r)
            # ---- stage P: the product, the leak's shift, and the add
            with m.If(p_fire):
                m.d.sync += [b_valid.eq(1), b_group.eq(p_group)]
                m.d.sync += [reg.eq(p_params[name]) for name, reg in b_params.items()]
            with m.Elif(b_fire):
                m.d.sync += b_valid.eq(0)
            for p in range(lanes):
                product = (p_high[p] << low_bits) + p_low[p]        # == v b exactly
                leaked = Signal(signed(wv), name=f"leaked{p}")
                m.d.comb += leaked.eq(product >> spec.leak_frac_bits)  # |leak(v)| <= |v|: fits Wv bits
                with m.If(p_fire):
                    m.d.sync += [b_leaked[p].eq(leaked), b_total[p].eq(leaked + p_current[p]),
                                 b_excess[p].eq(leaked + p_margin[p])]
                    if spec.refractory_bits:
                        m.d.sync += b_r[p].eq(p_r[p])
        else:
            # ---- stage A: leak and add
            with m.If(a_fire):
                m.d.sync += [b_valid.eq(1), b_group.eq(a_group)]
                m.d.sync += [reg.eq(a_params[name]) for name, reg in b_params.items()]
            with m.Elif(b_fire):
                m.d.sync += b_valid.eq(0)
            for p in range(lanes):
                stored = a_stored[p]
                v = Signal(signed(wv), name=f"v{p}")
                m.d.comb += v.eq(Mux(a_first, 0, stored.v))
                if spec.runtime_params and spec.leak_mode == "shift":
                    leaked_expr = v - (v >> a_params["leak"])  # a variable shift of a signed value: arithmetic
                elif spec.leak_mode == "shift":
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
            theta = b_params["threshold"] if spec.runtime_params else spec.threshold
            if product_stage and early_compare:
                # fit(total) >= theta  <=>  total >= theta (see the next case), and total - theta
                # is the register b_excess; the subtract reset's h - theta is then excess itself,
                # or v_max - theta = ~theta (Wv - 1 bits) after a positive overflow
                excess = b_excess[p]
                reaches = ~excess[-1]
                positive_overflow = overflow & ~total[-1]
                h_minus_theta = Mux(positive_overflow, (~theta)[:wv - 1], excess[:wv].as_signed())
            elif spec.overflow == "saturate":
                # fit(total) >= theta  <=>  total >= theta, since 0 <= theta <= v_max (a positive
                # overflow saturates to v_max >= theta, a negative one to v_min < theta): the
                # compare reads the register, in parallel with the fit, not after it
                reaches = total >= theta
                h_minus_theta = h - theta
            else:
                reaches = h >= theta
                h_minus_theta = h - theta
            if spec.runtime_params:
                reset = b_params["reset"]
                m.d.comb += spike.eq(active & reaches)
                # reset 0 subtract, 1 zero, 2 none (3, reserved, also none); h - theta fits Wv
                # bits because h >= theta > 0 whenever it is used
                after_spike = Mux(reset == 0, h_minus_theta, Mux(reset == 1, C(0, signed(wv)), h))
            else:
                m.d.comb += spike.eq(active & reaches)
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
    """Golden currents (S, T, N) -> input beats in stream order (sequence, step, group).

    With ``addressed`` each beat also names its group (the cyclic order, explicitly); with
    ``runtime_params`` it carries the spec's own parameters (``golden.lif.lif_params``), so
    ``lif_run`` of the currents stays the golden answer in every mode.
    """
    s_count, t_count, n = currents.shape
    if n != spec.n_neurons:
        raise ValueError(f"currents have {n} neurons; the spec has n_neurons = {spec.n_neurons}")
    extra = lif_params(spec) if spec.runtime_params else {}
    beats = []
    for s in range(s_count):
        for t in range(t_count):
            row = [int(x) for x in currents[s, t]]
            for g in range(spec.groups):
                beat = {"current": row[g * spec.lanes:(g + 1) * spec.lanes], "first": int(t == 0)}
                if spec.addressed:
                    beat["group"] = g
                beat.update(extra)
                beats.append(beat)
    return beats


#: fields a layer of a time-shared array must share with the array's spec
LAYER_SHARED_FIELDS = ("lanes", "membrane_width", "input_width", "leak_mode", "leak_frac_bits", "overflow",
                       "refractory")


def lif_layer_beats(spec: LIFSpec, layer: LIFSpec, currents, base_group: int = 0) -> list[dict]:
    """One layer's beats for an addressed, time-shared array (the stream a core sends).

    The layer (its own ``LIFSpec``: N_l neurons and its threshold, leak and reset mode) owns
    the state words ``base_group .. base_group + N_l / P - 1`` of the array ``spec``. Its
    currents (S, T, N_l) become beats in (sequence, step, group) order, each with
    ``group = base_group + g``, ``first = (t == 0)`` and, with ``runtime_params``, the
    layer's ``lif_params``. ``lif_run(layer, currents)`` is then the golden answer of these
    beats in ``lif_run_beats(spec, ...)``, in any interleaving with other layers' beats that
    keeps each group's beats in order.
    """
    if not spec.addressed:
        raise ValueError("lif_layer_beats needs an addressed LIFSpec (addressed = True)")
    for name in LAYER_SHARED_FIELDS:
        if getattr(layer, name) != getattr(spec, name):
            raise ValueError(f"layer {name} = {getattr(layer, name)!r} differs from the array's "
                             f"{getattr(spec, name)!r}; a layer shares {', '.join(LAYER_SHARED_FIELDS)}")
    if not spec.runtime_params and lif_params(layer) != lif_params(spec):
        raise ValueError(f"layer parameters {lif_params(layer)} differ from the array's {lif_params(spec)} "
                         f"and the array has runtime_params = False")
    if base_group < 0 or base_group + layer.groups > spec.groups:
        raise ValueError(f"layer groups {base_group} .. {base_group + layer.groups - 1} do not fit the "
                         f"array's {spec.groups} state words")
    beats = lif_input_beats(layer.replace(addressed=True, runtime_params=spec.runtime_params), currents)
    for beat in beats:
        beat["group"] += base_group
    return beats


def lif_beat_stream(spec: LIFSpec, beats) -> tuple[list[dict], list[dict]]:
    """Golden beats (any group order and parameters) -> (input payloads, expected output beats).

    The inputs are ``golden.lif.lif_normalize_beats`` (the fields of ``lif_input_layout``,
    ready to pack); the outputs come from ``golden.lif.lif_run_beats``, one per input beat.
    """
    payloads = lif_normalize_beats(spec, beats)
    trace = lif_run_beats(spec, payloads)
    return payloads, lif_beat_outputs(spec, trace.spikes, trace.membrane)


def lif_beat_outputs(spec: LIFSpec, spikes, membrane) -> list[dict]:
    """Golden per-beat spikes and membranes (B, P) -> the output beats the hardware must produce."""
    expected = []
    for row_spikes, row_membrane in zip(spikes.tolist(), membrane.tolist()):
        beat = {"spikes": sum(int(bit) << p for p, bit in enumerate(row_spikes))}
        if spec.emit_membrane:
            beat["membrane"] = [int(v) for v in row_membrane]
        expected.append(beat)
    return expected


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
