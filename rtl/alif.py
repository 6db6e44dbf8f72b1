"""Adaptive-threshold LIF array (Matterhorn's neurons): P lanes, N neurons time-multiplexed over them.

Hardware for ``golden.alif.alif_run`` / ``golden.alif.alif_run_beats``; the equations are in
``golden/alif.py`` and ``docs/numeric-contract.md`` and are implemented here bit for bit.
"""

from __future__ import annotations

from amaranth import C, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import fixed
from golden.alif import UPDATE, WRITE, ALIFSpec, _check_params, alif_normalize_beats, alif_run_beats

__all__ = ["UPDATE", "WRITE", "ALIFArray", "alif_beat_outputs", "alif_beat_stream", "alif_expected_beats",
           "alif_input_beats", "alif_input_layout", "alif_load_beats", "alif_output_layout", "alif_param_layout",
           "alif_state_layout", "alif_stream_from_vectors"]


def alif_input_layout(spec: ALIFSpec) -> data.StructLayout:
    """Input beat: an update (``kind`` = UPDATE 0) or a parameter write (``kind`` = WRITE 1).

    * ``kind`` (1 bit), ``first`` (1 bit: the update's neurons start from v = 0, a = 0, time
      step 0 of a new sequence), ``group`` (range(max(G, param_depth)): the parameter word a WRITE
      writes; the state word an update updates when ``addressed``, ignored by updates otherwise),
      ``param_group`` (range(Gp), only with ``param_groups``: the parameter word an update reads).
    * ``current``: P signed Wi-bit currents i (lane p at the low end); ``noise``: P signed
      We-bit noise values e (only when We = ``noise_width`` > 0). The array adds i + e exactly.
    * ``increment`` (unsigned Wa bits, only with ``runtime_increment``): the update's delta,
      in place of ``adapt_increment``.
    * ``theta`` (P x unsigned Wv - 1 bits, 1 .. 2^(Wv-1) - 1) and ``beta`` (P x unsigned F + 1
      bits, 0 .. 2^F): a WRITE's parameter word (``ALIFSpec.param_widths``).

    Fields a kind does not use are ignored (the beat helpers send zeros).
    """
    fields = {
        "kind": unsigned(1),
        "first": unsigned(1),
        "group": range(max(spec.groups, spec.param_depth)),
        "current": data.ArrayLayout(signed(spec.input_width), spec.lanes),
    }
    if spec.param_groups:
        fields["param_group"] = range(spec.param_groups)
    if spec.noise_width:
        fields["noise"] = data.ArrayLayout(signed(spec.noise_width), spec.lanes)
    if spec.runtime_increment:
        fields["increment"] = unsigned(spec.adapt_width)
    widths = spec.param_widths
    fields["theta"] = data.ArrayLayout(unsigned(widths["theta"]), spec.lanes)
    fields["beta"] = data.ArrayLayout(unsigned(widths["beta"]), spec.lanes)
    return data.StructLayout(fields)


def alif_output_layout(spec: ALIFSpec) -> data.StructLayout:
    """Output beat (one per update): P spike bits and, by spec, the P membranes v' (signed Wv)
    and the P adaptations a' (unsigned Wa), the state after the step."""
    fields = {"spikes": unsigned(spec.lanes)}
    if spec.emit_membrane:
        fields["membrane"] = data.ArrayLayout(signed(spec.membrane_width), spec.lanes)
    if spec.emit_adaptation:
        fields["adaptation"] = data.ArrayLayout(unsigned(spec.adapt_width), spec.lanes)
    return data.StructLayout(fields)


def alif_state_layout(spec: ALIFSpec) -> data.ArrayLayout:
    """One state-memory word: (v, a) for each of the P lanes of a group."""
    lane = data.StructLayout({"v": signed(spec.membrane_width), "a": unsigned(spec.adapt_width)})
    return data.ArrayLayout(lane, spec.lanes)


def alif_param_layout(spec: ALIFSpec) -> data.ArrayLayout:
    """One parameter-memory word: (theta_n, b_n) for each of the P lanes of a group."""
    widths = spec.param_widths
    lane = data.StructLayout({"theta": unsigned(widths["theta"]), "beta": unsigned(widths["beta"])})
    return data.ArrayLayout(lane, spec.lanes)


class ALIFArray(wiring.Component):
    """An array of N adaptive-threshold LIF neurons updated P at a time, per-neuron theta_n and b_n.

    Equations (``golden.alif``; v Wv-bit signed, a Wa-bit unsigned, i Wi-bit, e We-bit)::

        h      = sat_Wv(((v b_n) >> F) + i + e)         i + e exact, then one saturation
        theta  = theta_n + a                            exact (max(Wv - 1, Wa) + 1 bits)
        spike  = h >= theta
        v'     = h - theta   if spike  else h
        a'     = sat_Wa(a - (a >> k) + delta spike)

    The N neurons form G = N / P groups; group g holds neurons g P .. g P + P - 1. Two
    ``amaranth.lib.memory.Memory`` of depth G hold, per group, the state word (v, a) of its P
    lanes (zero after reset; the read port transparent to the write port) and the parameter
    word (theta_n, b_n) (init: the constructor's ``theta`` / ``beta``, zeros without them).

    Beats
    -----
    * UPDATE (``kind`` = 0): one time step of one group: P currents, P noise values (We > 0)
      and ``first``. Update beats come in group order 0, 1, ..., G - 1, 0, ... (a cyclic
      counter of update beats), or, with ``addressed``, name their group in any order.
      Each gives one output beat: P spike bits and, by spec, v' and a'.
    * WRITE (``kind`` = 1): store ``theta`` / ``beta`` (P values each) as the parameter word of
      ``group``, on the edge that accepts it; an update accepted later reads it. No output.

    Pipeline (so that the default spec can close timing at 100 MHz on an ECP5-85, speed 6;
    every stage ends in registers)::

        accept:  read the group's state and parameter words (on the read ports' outputs next cycle)
        stage M: v, a = first ? 0 : stored;  theta_n, b_n          -> registers (block RAM's
                 clock-to-output gets a cycle of its own)
        stage A: v = v_hi 2^l + v_lo (l = Wv // 2, v_lo unsigned): v_hi b_n, v_lo b_n (a DSP block
                 each);  drive = i + e;  th = theta_n + a;  margin = drive - th;
                 a_dec = a - (a >> k)                              -> registers
        stage P: leaked = ((v_hi b_n) 2^l + v_lo b_n) >> F (= (v b_n) >> F exactly);
                 total = leaked + drive;  excess = leaked + margin (= total - th);
                 th <= v_max;  v_max - th (= ~th, Wv - 1 bits);
                 a_inc = sat_Wa(a_dec + delta)                     -> registers
        stage B: h = fit(total) (overflow: the bits Wv - 1 .. top of total differ);
                 spike = overflow ? (positive and th <= v_max) : excess >= 0;
                 v' = spike ? (positive overflow ? v_max - th : excess) : h;
                 a' = spike ? a_inc : a_dec        -> state write, output register

    Stage B's spike needs no compare after the fit: without overflow h = total and
    h >= th iff excess >= 0; a positive overflow gives h = v_max, which reaches th iff
    th <= v_max (th = theta_n + a may exceed the membrane range; then the neuron cannot
    fire); a negative overflow gives v_min < 0 < th. The subtract reset's h - th is excess,
    or v_max - th after a positive overflow.

    S = ``spec.pipeline_stages`` = 4 stages follow the accept. An update's state read must
    see the write of its group's previous update. The updates in flight at an accept are the
    last S accepted, so with G >= S (not addressed) a beat of the same group can only be the
    oldest, in stage B with the stages before it full; the accept then moves the whole
    pipeline, B writes on that very edge and the transparent read sees it. Otherwise
    (G < S, or ``addressed``) an interlock compares the incoming group with every update in
    flight. **Stall rule**: in a cycle where ``i_stream.valid`` is high,
    ``i_stream.ready`` is high iff

        kind = WRITE,   or
        (stage M empty or moving on)  and  no stage M, A, P holds group g
        and  not (B holds group g and does not leave B on this edge)

    (g the incoming update's group; the interlock clauses only with G < S or ``addressed``;
    B leaves when ``o_stream`` is empty or read in this cycle). ``i_stream.ready`` therefore
    depends combinationally on ``payload.kind`` (and, addressed, ``payload.group``); as
    everywhere, ``valid`` must not wait for ``ready``. A WRITE is always taken: the updates
    in flight have read their parameters already, as their place in the stream says.

    Latency and throughput
    ----------------------
    * Latency: S + 1 = 5 cycles (``spec.latency``): an update accepted on the edge ending
      cycle c is presented on ``o_stream`` (valid) in cycle c + 5.
    * Throughput: 1 update beat (P neuron updates) per cycle when ``o_stream.ready`` stays
      high and G >= 4; a time step of all N neurons takes G = N / P cycles. G < 4: G beats
      every 4 cycles (gaps (1, 1, 2) for G = 3, (1, 3) for G = 2, (4,) for G = 1;
      ``accept_gaps``). A WRITE takes 1 cycle.
    * In general, with ``o_stream.ready`` high and every beat offered as early as it can be,
      beat k is accepted in cycle t_k = t_(k-1) + 1 (WRITE) or max(t_(k-1) + 1, t_j + S)
      (UPDATE, j the previous update of its group; ``accept_cycles``).
    * Back-pressure: ``i_stream.ready`` falls for updates only while the stages ahead are
      full and not moving (and while the interlock waits); no beat is dropped or duplicated.

    Members
    -------
    i_stream : In(stream.Signature(alif_input_layout(spec)))
    o_stream : Out(stream.Signature(alif_output_layout(spec)))
    """

    def __init__(self, spec: ALIFSpec, theta=None, beta=None):
        if not isinstance(spec, ALIFSpec):
            raise TypeError(f"ALIFArray needs an ALIFSpec, got {type(spec).__name__}")
        self.spec = spec
        # the parameter memory's initial contents (zeros: to be written by WRITE beats)
        try:
            theta, beta = _check_params(spec, theta, beta, allow_unloaded=True)
        except ValueError:
            self._MustUse__silence = True  # Amaranth's "created but never used": it was refused
            raise
        self.init_theta, self.init_beta = theta, beta
        super().__init__({
            "i_stream": In(stream.Signature(alif_input_layout(spec))),
            "o_stream": Out(stream.Signature(alif_output_layout(spec))),
        })

    @staticmethod
    def latency(spec: ALIFSpec) -> int:
        """Cycles from an update's input handshake to its output valid (S + 1 = 5)."""
        return spec.latency

    @staticmethod
    def accept_gaps(spec: ALIFSpec) -> tuple[int, ...]:
        """Cycles between accepted update beats in cyclic group order without back-pressure, a
        repeating pattern: (1,) for G >= S, else G - 1 gaps of 1 and one of S - G + 1."""
        stages, groups = spec.pipeline_stages, spec.groups
        if groups >= stages:
            return (1,)
        return (1,) * (groups - 1) + (stages - groups + 1,)

    @staticmethod
    def accept_cycles(spec: ALIFSpec, beats) -> list[int]:
        """Accept cycle of each beat (normalized input beats: ``kind`` and ``group``) when every
        beat is offered as early as it can be and ``o_stream.ready`` stays high: t_0 = 0,
        t_k = t_(k-1) + 1 for a WRITE, max(t_(k-1) + 1, t_j + S) for an update, j the previous
        update of the same group (the docstring's stall rule)."""
        stages = spec.pipeline_stages
        cycles, last = [], {}
        for beat in beats:
            t = cycles[-1] + 1 if cycles else 0
            if beat["kind"] == UPDATE:
                t = max(t, last.get(beat["group"], -stages) + stages)
                last[beat["group"]] = t
            cycles.append(t)
        return cycles

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        wv, wa, groups, lanes = spec.membrane_width, spec.adapt_width, spec.groups, spec.lanes
        frac = spec.leak_frac_bits
        widths = spec.param_widths
        stages = spec.pipeline_stages

        m.submodules.state = state = memory.Memory(shape=alif_state_layout(spec), depth=groups, init=[])
        st_wr = state.write_port()
        st_rd = state.read_port(transparent_for=(st_wr,))
        init = [[{"theta": int(self.init_theta[g * lanes + p]), "beta": int(self.init_beta[g * lanes + p])}
                 for p in range(lanes)] for g in range(spec.param_depth)]
        m.submodules.params = params = memory.Memory(shape=alif_param_layout(spec), depth=spec.param_depth,
                                                     init=init)
        pr_wr = params.write_port()
        # a WRITE and an update are never accepted on the same edge, so the read needs no bypass
        pr_rd = params.read_port()

        payload = self.i_stream.payload
        drive_shape = signed(spec.drive_width)
        th_shape = unsigned(max(wv - 1, wa) + 1)                   # theta_n + a, exact
        margin_shape = signed(max(drive_shape.width, th_shape.width + 1) + 1)
        total_shape = signed(max(wv, drive_shape.width) + 1)       # leaked + drive, exact
        excess_shape = signed(max(wv, margin_shape.width) + 1)     # leaked + margin, exact
        low_bits = wv // 2
        beta_width = widths["beta"]

        def lanes_of(shape, name):
            return Signal(data.ArrayLayout(shape, lanes), name=name)

        # Stage M registers: the accepted update while its words come out of the memories.
        m_valid, m_first = Signal(), Signal()
        m_group = Signal(range(groups))
        m_current = lanes_of(signed(spec.input_width), "m_current")
        m_noise = lanes_of(signed(spec.noise_width), "m_noise") if spec.noise_width else None
        # the update's delta (run-time increment), carried along to stage P
        runtime_inc = spec.runtime_increment
        m_inc = Signal(unsigned(wa), name="m_inc") if runtime_inc else None
        a_inc = Signal(unsigned(wa), name="a_inc") if runtime_inc else None
        p_inc = Signal(unsigned(wa), name="p_inc") if runtime_inc else None
        # Stage A registers: the beat, its state word (first applied) and its parameter word.
        a_valid = Signal()
        a_group = Signal(range(groups))
        a_current = lanes_of(signed(spec.input_width), "a_current")
        a_noise = lanes_of(signed(spec.noise_width), "a_noise") if spec.noise_width else None
        a_state = Signal(alif_state_layout(spec))
        a_param = Signal(alif_param_layout(spec))
        # Stage P registers: partial products, drive, threshold, margin, decayed adaptation.
        p_valid = Signal()
        p_group = Signal(range(groups))
        p_low = lanes_of(unsigned(low_bits + beta_width), "p_low")
        p_high = lanes_of(signed(wv - low_bits + beta_width + 1), "p_high")
        p_drive = lanes_of(drive_shape, "p_drive")
        p_th = lanes_of(th_shape, "p_th")
        p_margin = lanes_of(margin_shape, "p_margin")
        p_adec = lanes_of(unsigned(wa), "p_adec")
        # Stage B registers: the unfitted sum, total - th, the threshold's range flag and v_max - th,
        # both candidate adaptations.
        b_valid = Signal()
        b_group = Signal(range(groups))
        b_total = lanes_of(total_shape, "b_total")
        b_excess = lanes_of(excess_shape, "b_excess")
        b_th_fits = Signal(lanes, name="b_th_fits")
        b_room = lanes_of(unsigned(wv - 1), "b_room")              # v_max - th when th <= v_max
        b_adec = lanes_of(unsigned(wa), "b_adec")
        b_ainc = lanes_of(unsigned(wa), "b_ainc")

        out_free = ~self.o_stream.valid | self.o_stream.ready
        b_fire = b_valid & out_free
        b_free = ~b_valid | b_fire
        p_fire = p_valid & b_free
        p_free = ~p_valid | p_fire
        a_fire = a_valid & p_free
        a_free = ~a_valid | a_fire
        m_fire = m_valid & a_free
        m_free = ~m_valid | m_fire

        is_write = payload.kind == WRITE
        if spec.addressed:
            incoming = payload.group
        else:
            next_group = Signal(range(groups), name="next_group")
            incoming = next_group
        if groups >= stages and not spec.addressed:
            # the updates in flight are the last S accepted; one of group `next_group` can only be
            # the oldest, in stage B with the stages before it full, so an accept means it writes
            # on this very edge, which the transparent read sees
            update_ready = m_free
        else:
            # G < S, or any group order: wait while an update of this group is in flight, unless
            # it is the one in stage B that writes on this edge
            hazard = 0
            for valid, group, writes_now in ((m_valid, m_group, C(0, 1)), (a_valid, a_group, C(0, 1)),
                                             (p_valid, p_group, C(0, 1)), (b_valid, b_group, b_fire)):
                hazard = hazard | (valid & (group == incoming) & ~writes_now)
            update_ready = m_free & ~hazard
        m.d.comb += self.i_stream.ready.eq(is_write | update_ready)
        accept = self.i_stream.valid & self.i_stream.ready
        accept_update = accept & ~is_write
        accept_write = accept & is_write

        m.d.comb += [pr_wr.addr.eq(payload.group), pr_wr.en.eq(accept_write)]
        m.d.comb += [pr_wr.data[p].theta.eq(payload.theta[p]) for p in range(lanes)]
        m.d.comb += [pr_wr.data[p].beta.eq(payload.beta[p]) for p in range(lanes)]
        # the words read on the accept edge stay on the read ports until the beat leaves stage M
        m.d.comb += [st_rd.addr.eq(incoming), st_rd.en.eq(accept_update),
                     pr_rd.addr.eq(payload.param_group if spec.param_groups else incoming),
                     pr_rd.en.eq(accept_update)]

        with m.If(accept_update):
            m.d.sync += [m_valid.eq(1), m_group.eq(incoming), m_first.eq(payload.first),
                         m_current.eq(payload.current)]
            if spec.noise_width:
                m.d.sync += m_noise.eq(payload.noise)
            if runtime_inc:
                m.d.sync += m_inc.eq(payload.increment)
            if not spec.addressed:
                m.d.sync += next_group.eq(Mux(next_group == groups - 1, 0, next_group + 1))
        with m.Elif(m_fire):
            m.d.sync += m_valid.eq(0)

        # ---- stage M: the words into registers, time step 0 starting from v = 0, a = 0
        with m.If(m_fire):
            m.d.sync += [a_valid.eq(1), a_group.eq(m_group), a_current.eq(m_current),
                         a_state.eq(Mux(m_first, 0, st_rd.data.as_value())), a_param.eq(pr_rd.data)]
            if spec.noise_width:
                m.d.sync += a_noise.eq(m_noise)
            if runtime_inc:
                m.d.sync += a_inc.eq(m_inc)
        with m.Elif(a_fire):
            m.d.sync += a_valid.eq(0)

        # ---- stage A: the two partial products of v b_n (one DSP block each), and the sums that
        # do not need the product, so stage P has one add after joining the products
        with m.If(a_fire):
            m.d.sync += [p_valid.eq(1), p_group.eq(a_group)]
            if runtime_inc:
                m.d.sync += p_inc.eq(a_inc)
        with m.Elif(p_fire):
            m.d.sync += p_valid.eq(0)
        for p in range(lanes):
            v, a = a_state[p].v, a_state[p].a
            theta_n, beta = a_param[p].theta, a_param[p].beta
            drive = Signal(drive_shape, name=f"drive{p}")
            m.d.comb += drive.eq(a_current[p] + a_noise[p] if spec.noise_width else a_current[p])
            th = Signal(th_shape, name=f"th{p}")
            m.d.comb += th.eq(theta_n + a)
            with m.If(a_fire):
                m.d.sync += [p_low[p].eq(v[:low_bits] * beta),
                             p_high[p].eq(v[low_bits:].as_signed() * beta),
                             p_drive[p].eq(drive),
                             p_th[p].eq(th),
                             p_margin[p].eq(drive - th),
                             p_adec[p].eq(a - (a >> spec.adapt_shift))]  # a >= 0: floor, <= a

        # ---- stage P: the product, the leak's shift, the sums; the spiking adaptation
        with m.If(p_fire):
            m.d.sync += [b_valid.eq(1), b_group.eq(p_group)]
        with m.Elif(b_fire):
            m.d.sync += b_valid.eq(0)
        a_max = fixed.int_max(wa, False)
        for p in range(lanes):
            product = (p_high[p] << low_bits) + p_low[p]                 # == v b_n exactly
            leaked = Signal(signed(wv), name=f"leaked{p}")
            m.d.comb += leaked.eq(product >> frac)                     # b_n <= 2^F: |leak| <= |v| fits Wv
            raised = Signal(unsigned(wa + 1), name=f"raised{p}")
            delta = p_inc if runtime_inc else C(spec.adapt_increment, unsigned(wa))
            m.d.comb += raised.eq(p_adec[p] + delta)
            with m.If(p_fire):
                m.d.sync += [b_total[p].eq(leaked + p_drive[p]),
                             b_excess[p].eq(leaked + p_margin[p]),
                             b_th_fits[p].eq(p_th[p][wv - 1:] == 0),
                             b_room[p].eq(~p_th[p][:wv - 1]),
                             b_adec[p].eq(p_adec[p]),
                             # both terms < 2^Wa: the sum saturates iff its bit Wa is set
                             b_ainc[p].eq(Mux(raised[wa], a_max, raised[:wa]))]

        # ---- stage B: fit, fire, reset, adaptation
        v_max, v_min = C(fixed.int_max(wv, True), signed(wv)), C(fixed.int_min(wv, True), signed(wv))
        spikes = Signal(lanes)
        new_state = Signal(alif_state_layout(spec))
        for p in range(lanes):
            total = b_total[p]
            # total overflows Wv bits iff its bits Wv-1 .. top are not all equal (a few LUTs)
            top = total[wv - 1:]
            overflow = Signal(name=f"overflow{p}")
            m.d.comb += overflow.eq(~((top == 0) | (top == (1 << len(top)) - 1)))
            negative = total[-1]
            positive_overflow = overflow & ~negative
            h = Signal(signed(wv), name=f"h{p}")
            m.d.comb += h.eq(Mux(overflow, Mux(negative, v_min, v_max), total[:wv].as_signed()))
            spike = Signal(name=f"spike{p}")
            m.d.comb += spike.eq(Mux(overflow, positive_overflow & b_th_fits[p], ~b_excess[p][-1]))
            # h - th >= 0 fits Wv bits whenever it is used (h >= th)
            h_minus_th = Mux(positive_overflow, b_room[p], b_excess[p][:wv].as_signed())
            m.d.comb += [spikes[p].eq(spike),
                         new_state[p].v.eq(Mux(spike, h_minus_th, h)),
                         new_state[p].a.eq(Mux(spike, b_ainc[p], b_adec[p]))]

        m.d.comb += [st_wr.addr.eq(b_group), st_wr.data.eq(new_state), st_wr.en.eq(b_fire)]

        with m.If(b_fire):
            m.d.sync += [self.o_stream.valid.eq(1), self.o_stream.payload.spikes.eq(spikes)]
            if spec.emit_membrane:
                m.d.sync += [self.o_stream.payload.membrane[p].eq(new_state[p].v) for p in range(lanes)]
            if spec.emit_adaptation:
                m.d.sync += [self.o_stream.payload.adaptation[p].eq(new_state[p].a) for p in range(lanes)]
        with m.Elif(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays (used by the Amaranth tests, the cocotb bench and the registry)


def alif_load_beats(spec: ALIFSpec, theta, beta) -> list[dict]:
    """WRITE beats that load per-neuron ``theta`` / ``beta`` (N,) into the parameter memory, group
    by group (G beats)."""
    theta, beta = _check_params(spec, theta, beta, allow_unloaded=False)
    lanes = spec.lanes
    return alif_normalize_beats(spec, [
        {"kind": WRITE, "group": g, "theta": [int(x) for x in theta[g * lanes:(g + 1) * lanes]],
         "beta": [int(x) for x in beta[g * lanes:(g + 1) * lanes]]} for g in range(spec.param_depth)])


def alif_input_beats(spec: ALIFSpec, currents, noise=None, theta=None, beta=None) -> list[dict]:
    """Golden currents and noise (S, T, N) -> input beats in stream order (sequence, step, group).

    With ``theta`` and ``beta`` the stream starts with the G WRITE beats that load them
    (``alif_load_beats``); every update beat names its group (the cyclic order, explicitly),
    has ``first = (t == 0)`` and, with We > 0, the noise. ``alif_run`` of the same arrays
    (``golden.alif.alif_reference``) is then the golden answer.
    """
    s_count, t_count, n = currents.shape
    if n != spec.n_neurons:
        raise ValueError(f"currents have {n} neurons; the spec has n_neurons = {spec.n_neurons}")
    if noise is not None and tuple(noise.shape) != tuple(currents.shape):
        raise ValueError(f"noise has shape {tuple(noise.shape)}; the currents have {tuple(currents.shape)}")
    beats = [] if theta is None and beta is None else alif_load_beats(spec, theta, beta)
    lanes = spec.lanes
    for s in range(s_count):
        for t in range(t_count):
            row = [int(x) for x in currents[s, t]]
            noise_row = [int(x) for x in noise[s, t]] if noise is not None else [0] * n
            for g in range(spec.groups):
                beat = {"kind": UPDATE, "first": int(t == 0), "group": g, "current": row[g * lanes:(g + 1) * lanes]}
                if spec.runtime_increment:
                    beat["increment"] = spec.adapt_increment
                if spec.noise_width:
                    beat["noise"] = noise_row[g * lanes:(g + 1) * lanes]
                elif any(noise_row):
                    raise ValueError("noise must be zero: the spec has noise_width = 0 (no noise input)")
                beats.append(beat)
    return alif_normalize_beats(spec, beats)


def _output_beat(spec: ALIFSpec, spikes, membrane, adaptation) -> dict:
    beat = {"spikes": sum(int(bit) << p for p, bit in enumerate(spikes))}
    if spec.emit_membrane:
        beat["membrane"] = [int(v) for v in membrane]
    if spec.emit_adaptation:
        beat["adaptation"] = [int(a) for a in adaptation]
    return beat


def alif_beat_outputs(spec: ALIFSpec, spikes, membrane, adaptation) -> list[dict]:
    """Golden per-update spikes, membranes and adaptations (U, P) -> the output beats."""
    return [_output_beat(spec, s, v, a) for s, v, a in zip(spikes.tolist(), membrane.tolist(), adaptation.tolist())]


def alif_expected_beats(spec: ALIFSpec, spikes, membrane, adaptation) -> list[dict]:
    """Golden spikes, membranes and adaptations (S, T, N) -> the output beats, (sequence, step,
    group) order (one per update beat of ``alif_input_beats``)."""
    s_count, t_count, _ = spikes.shape
    lanes = spec.lanes
    beats = []
    for s in range(s_count):
        for t in range(t_count):
            sp, mv, ad = spikes[s, t].tolist(), membrane[s, t].tolist(), adaptation[s, t].tolist()
            for g in range(spec.groups):
                lo, hi = g * lanes, (g + 1) * lanes
                beats.append(_output_beat(spec, sp[lo:hi], mv[lo:hi], ad[lo:hi]))
    return beats


def alif_beat_stream(spec: ALIFSpec, beats, theta=None, beta=None) -> tuple[list[dict], list[dict]]:
    """Golden beats (updates in any allowed order, WRITEs anywhere) -> (input payloads, expected
    output beats), from ``golden.alif.alif_run_beats`` with the parameter memory's initial
    ``theta`` / ``beta`` (those the component was built with; None: zeros)."""
    payloads = alif_normalize_beats(spec, beats)
    trace = alif_run_beats(spec, payloads, theta, beta)
    return payloads, alif_beat_outputs(spec, trace.spikes, trace.membrane, trace.adaptation)


def alif_stream_from_vectors(vectors) -> tuple[ALIFSpec, list[dict], list[dict]]:
    """An ALIF vector set (``golden.vectors.VectorSet``) -> (spec, input beats, expected output beats)
    for a component built with ``ALIFArray(spec)`` (parameter memory all zero).

    * A sequence file (``golden.alif.alif_reference``: ``currents`` (S, T, N), ...): the stream
      loads ``theta`` / ``beta`` by G WRITE beats, then sends the updates (``alif_input_beats``).
    * A beat-level file (``golden.alif.alif_beat_reference``: ``kind``, ``current``, ...): its
      beats, after WRITE beats that load ``init_theta`` / ``init_beta`` into every group whose
      thresholds are all loaded (>= 1) (the other groups may not be updated before a WRITE).
    """
    import torch

    from golden.alif import alif_beats_from_arrays

    spec = ALIFSpec.from_dict(vectors.spec)
    arrays = vectors.arrays

    def need(name):
        if name not in arrays:
            raise ValueError(f"ALIF vectors have no {name!r} array; they have {', '.join(sorted(arrays))}")
        return arrays[name]

    outputs = ("spikes", "membrane", "adaptation")
    if "current" in arrays:
        beats = alif_beats_from_arrays(spec, arrays)
        theta, beta = _check_params(spec, torch.as_tensor(need("init_theta")), torch.as_tensor(need("init_beta")),
                                    allow_unloaded=True)
        lanes = spec.lanes
        loads = [{"kind": WRITE, "group": g, "theta": theta[g * lanes:(g + 1) * lanes].tolist(),
                  "beta": beta[g * lanes:(g + 1) * lanes].tolist()}
                 for g in range(spec.param_depth) if int(theta[g * lanes:(g + 1) * lanes].min()) >= 1]
        updates = sum(b["kind"] == UPDATE for b in beats)
        for name in outputs:
            if tuple(need(name).shape) != (updates, lanes):
                raise ValueError(f"ALIF beat vectors: {name!r} has shape {tuple(arrays[name].shape)}, expected "
                                 f"({updates}, {lanes}) (one row per update beat)")
        return (spec, alif_normalize_beats(spec, loads) + beats,
                alif_beat_outputs(spec, *(arrays[name] for name in outputs)))
    currents = need("currents")
    if currents.ndim != 3 or currents.shape[2] != spec.n_neurons:
        raise ValueError(f"ALIF vectors: 'currents' has shape {tuple(currents.shape)}, expected "
                         f"(sequences, steps, {spec.n_neurons})")
    for name in ("noise", *outputs):
        if tuple(need(name).shape) != tuple(currents.shape):
            raise ValueError(f"ALIF vectors: {name!r} has shape {tuple(arrays[name].shape)}, "
                             f"'currents' has {tuple(currents.shape)}")
    for name in ("theta", "beta"):
        if tuple(need(name).shape) != (spec.n_neurons,):
            raise ValueError(f"ALIF vectors: {name!r} has shape {tuple(arrays[name].shape)}, "
                             f"expected ({spec.n_neurons},)")
    beats = alif_input_beats(spec, currents, arrays["noise"], torch.as_tensor(arrays["theta"]),
                             torch.as_tensor(arrays["beta"]))
    return spec, beats, alif_expected_beats(spec, *(arrays[name] for name in outputs))
