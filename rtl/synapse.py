"""Event-driven synapse engine: spike indices in, input currents of a LIF array out.

Hardware for ``golden.synapse.synapse_run``; the equations are in
``golden/synapse.py`` and ``docs/numeric-contract.md`` and are implemented here
bit for bit. ``SynapseLIF`` joins the engine to the foundation's ``LIFArray``.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import fixed
from golden.lif import LIFSpec
from golden.synapse import SynapseSpec, check_pair, check_spikes

from .lif import LIFArray, lif_output_layout
from .logmem import LogWeightMemory, cell_shape, read_latency, weight_words

#: input beat kinds
SPIKE, STEP, WRITE = 0, 1, 2


def synapse_input_layout(spec: SynapseSpec) -> data.StructLayout:
    """Input beat: a command.

    * ``kind = SPIKE`` (0): input neuron ``index`` spiked in the current time step
      (indices of one step in ascending order: the order of the additions).
    * ``kind = STEP`` (1): the time step is over: stream out its G current beats
      (tagged with ``first``) and clear the accumulators.
    * ``kind = WRITE`` (2): write ``data`` (P cells: codes, or effective weights when
      ``mismatch_impl == "precomputed"``) to weight-memory word ``index`` = row * G + g.
    """
    return data.StructLayout({
        "kind": unsigned(2),
        "first": unsigned(1),
        "index": unsigned(spec.address_bits),
        "data": data.ArrayLayout(cell_shape(spec), spec.lanes),
    })


def synapse_output_layout(spec: SynapseSpec) -> data.StructLayout:
    """Output beat: P currents of group g, the step's ``first`` flag, and both counters."""
    return data.StructLayout({
        "current": data.ArrayLayout(signed(spec.acc_width), spec.lanes),
        "first": unsigned(1),
        "sops": unsigned(spec.counter_width),
        "reads": unsigned(spec.counter_width),
    })


class SynapseEngine(wiring.Component):
    """Event-driven accumulator: for every input spike, add one weight row into N accumulators.

    Datapath
    --------
    A SPIKE beat for input r reads the G words of row r from the weight memory
    (``LogWeightMemory``: codes decoded to shifts and signs, mismatch applied)
    on G consecutive cycles, and adds each word's P effective weights into
    accumulators g*P .. g*P + P - 1 (P synapses per cycle), saturating or
    wrapping to Wa bits after every addition. The accumulators are an
    ``amaranth.lib.memory.Memory`` of depth G and width P * Wa (read transparent
    to the write, so G = 1 needs no special case). A STEP beat streams the G
    accumulator words out as current beats and clears them. A WRITE beat stores
    one weight-memory word. Counters ``sops`` (+P per word added) and ``reads``
    (+1 per weight word read) wrap at 2^Wc and ride on every output beat.

    Pipeline
    --------
    The weight memory is a pipeline of L = ``read_latency(spec)`` register stages
    (2 precomputed, 3 table, 15 regenerate; see ``LogWeightMemory``), one carry
    chain per stage. The word issued in cycle c reaches the adders in cycle
    c + L; its accumulator word is read in cycle c + L - 1 and the saturated sum
    written at the end of cycle c + L. Consecutive spikes hit the same
    accumulator word one cycle apart when G = 1 (G cycles apart otherwise): the
    read in cycle c + L then meets the write of the same cycle, and the read port,
    transparent to the write port, forwards the new sum (no stall).

    Latency and throughput (no back-pressure)
    -----------------------------------------
    * SPIKE: accepted in cycle c, the next input beat can be accepted in cycle
      c + G (G = N / P cycles per spike, P synaptic operations per cycle).
    * STEP: accepted in cycle c, current beat g is valid in cycle c + L + 2 + g
      (g = 0 .. G - 1, one per cycle; the drain waits L - 1 cycles for the adds
      still in the pipeline, reads in cycle c + L, registers the output); the
      next input beat can be accepted in cycle c + G + L + 1.
      ``step_latency`` = L + 2, ``step_overhead`` = L + 1.
    * WRITE: 1 cycle.
    * A time step with k input spikes takes k * G + G + L + 1 cycles
      (default spec, regenerate, G = 8: 8 k + 24).
    * Back-pressure on ``o_stream`` holds the drain; no beat is dropped or duplicated.

    Members
    -------
    i_stream : In(stream.Signature(synapse_input_layout(spec)))
    o_stream : Out(stream.Signature(synapse_output_layout(spec)))
    """

    def __init__(self, spec: SynapseSpec, init_codes=None):
        if not isinstance(spec, SynapseSpec):
            raise TypeError(f"SynapseEngine needs a SynapseSpec, got {type(spec).__name__}")
        self.spec = spec
        self.init_codes = init_codes
        self.latency = read_latency(spec)
        #: cycles from a STEP handshake to its first current beat being valid
        self.step_latency = self.latency + 2
        #: extra input cycles of a STEP beyond its G output beats
        self.step_overhead = self.latency + 1
        super().__init__({
            "i_stream": In(stream.Signature(synapse_input_layout(spec))),
            "o_stream": Out(stream.Signature(synapse_output_layout(spec))),
        })

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        groups, lanes, wa = spec.groups, spec.lanes, spec.acc_width

        m.submodules.weight_memory = wmem = LogWeightMemory(spec, self.init_codes)
        m.submodules.acc = acc = memory.Memory(shape=data.ArrayLayout(signed(wa), lanes), depth=groups, init=[])
        acc_wr = acc.write_port()
        acc_rd = acc.read_port(transparent_for=(acc_wr,))

        payload = self.i_stream.payload
        draining = Signal()
        busy = Signal()                   # issuing groups 1 .. G-1 of a spike's row
        issue_group = Signal(range(groups))
        issue_row = Signal(range(spec.n_inputs))
        m.d.comb += self.i_stream.ready.eq(~draining & ~busy)
        accept = self.i_stream.valid & self.i_stream.ready
        is_spike = accept & (payload.kind == SPIKE)
        is_step = accept & (payload.kind == STEP)
        is_write = accept & (payload.kind == WRITE)

        # ---- issue stage: one weight word (and its accumulator word) per cycle
        issue = busy | is_spike
        row = Mux(busy, issue_row, payload.index)
        group = Mux(busy, issue_group, 0)
        m.d.comb += [wmem.rd_row.eq(row), wmem.rd_group.eq(group), wmem.rd_en.eq(issue),
                     wmem.wr_addr.eq(payload.index), wmem.wr_data.eq(payload.data), wmem.wr_en.eq(is_write)]
        if groups > 1:
            with m.If(is_spike):
                m.d.sync += [busy.eq(1), issue_group.eq(1), issue_row.eq(payload.index)]
            with m.Elif(busy):
                m.d.sync += issue_group.eq(issue_group + 1)
                with m.If(issue_group == groups - 1):
                    m.d.sync += busy.eq(0)

        # ---- weight pipeline: the word issued in cycle c is on wmem.weights in cycle c + L. Its
        # accumulator word is read in cycle c + L - 1 and written back (sum) at the end of c + L.
        # Read-after-write: the next word for the same accumulator word can be issued at the
        # earliest in cycle c + 1 (G = 1, consecutive spikes), so its read in cycle c + L meets the
        # write of cycle c + L; the read port is transparent to the write port (forwarding).
        latency = wmem.latency
        pipe_valid = [issue]
        pipe_group = [group]
        for k in range(1, latency + 1):
            v = Signal(name=f"pipe_valid{k}")
            g = Signal(range(groups), name=f"pipe_group{k}")
            m.d.sync += [v.eq(pipe_valid[-1]), g.eq(pipe_group[-1])]
            pipe_valid.append(v)
            pipe_group.append(g)
        read_group = pipe_group[latency - 1]      # accumulator word to read this cycle
        add_valid, add_group = pipe_valid[latency], pipe_group[latency]
        lo, hi = fixed.int_min(wa, True), fixed.int_max(wa, True)
        sums = Signal(data.ArrayLayout(signed(wa), lanes))
        for p in range(lanes):
            total = acc_rd.data[p] + wmem.weights[p]  # exact: Amaranth widens the sum
            if spec.overflow == "saturate":
                m.d.comb += sums[p].eq(Mux(total > hi, hi, Mux(total < lo, lo, total)))
            else:
                m.d.comb += sums[p].eq(total[:wa].as_signed())
        sops = Signal(spec.counter_width)
        reads = Signal(spec.counter_width)
        with m.If(add_valid):
            m.d.sync += [sops.eq(sops + lanes), reads.eq(reads + 1)]  # wrap at 2^Wc

        # ---- drain: read accumulator word d_next, hold it until the output register takes it
        first = Signal()
        d_next = Signal(range(groups))
        d_reading = Signal()              # words left to read
        d_have = Signal()                 # acc_rd.data holds word d_cur
        d_cur = Signal(range(groups))
        # the last word of the last spike before a STEP accepted in cycle c was issued in cycle
        # c - 1 and is written at the end of cycle c - 1 + L: the drain owns the ports from c + L
        wait = Signal(range(latency + 1))
        drain_on = draining & (wait == 0)
        out_free = ~self.o_stream.valid | self.o_stream.ready
        advance = ~d_have | out_free
        read_now = drain_on & advance & d_reading
        emit = drain_on & d_have & out_free
        with m.If(is_step):
            m.d.sync += [draining.eq(1), d_next.eq(0), d_reading.eq(1), d_have.eq(0), first.eq(payload.first),
                         wait.eq(latency - 1)]
        with m.Elif(draining & (wait != 0)):
            m.d.sync += wait.eq(wait - 1)
        with m.Elif(drain_on & advance):
            m.d.sync += [d_have.eq(read_now), d_cur.eq(d_next)]
            with m.If(read_now):
                m.d.sync += d_next.eq(d_next + 1)
                with m.If(d_next == groups - 1):
                    m.d.sync += d_reading.eq(0)
        with m.If(emit & (d_cur == groups - 1)):
            m.d.sync += draining.eq(0)

        with m.If(drain_on):
            m.d.comb += [acc_rd.addr.eq(d_next), acc_rd.en.eq(advance),
                         acc_wr.addr.eq(d_cur), acc_wr.data.eq(0), acc_wr.en.eq(emit)]
        with m.Else():
            m.d.comb += [acc_rd.addr.eq(read_group), acc_rd.en.eq(1),
                         acc_wr.addr.eq(add_group), acc_wr.data.eq(sums), acc_wr.en.eq(add_valid)]

        with m.If(emit):
            m.d.sync += [self.o_stream.valid.eq(1), self.o_stream.payload.current.eq(acc_rd.data),
                         self.o_stream.payload.first.eq(first), self.o_stream.payload.sops.eq(sops),
                         self.o_stream.payload.reads.eq(reads)]
        with m.Elif(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        return m


class SynapseLIF(wiring.Component):
    """A ``SynapseEngine`` feeding a ``LIFArray``: spike commands in, output spikes (and membranes) out.

    The engine's current beats (P currents of group g, ``first``) are exactly the
    LIF array's input beats; the counters stay inside. Latency: a STEP accepted
    in cycle c gives LIF output beat g in cycle c + (L + 2) + 4 + g (the engine's
    L + 2, the LIF array's 4) when G >= 3, where the LIF array takes one beat per
    cycle; throughput as the engine's.

    Members
    -------
    i_stream : In(stream.Signature(synapse_input_layout(spec)))
    o_stream : Out(stream.Signature(lif_output_layout(lif_spec)))
    """

    def __init__(self, spec: SynapseSpec, lif_spec: LIFSpec, init_codes=None):
        check_pair(spec, lif_spec)
        self.spec, self.lif_spec, self.init_codes = spec, lif_spec, init_codes
        self._lif = LIFArray(lif_spec)
        super().__init__({
            "i_stream": In(stream.Signature(synapse_input_layout(spec))),
            "o_stream": Out(stream.Signature(lif_output_layout(lif_spec))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.synapse = syn = SynapseEngine(self.spec, self.init_codes)
        m.submodules.lif = lif = self._lif
        wiring.connect(m, wiring.flipped(self.i_stream), syn.i_stream)
        m.d.comb += [lif.i_stream.valid.eq(syn.o_stream.valid), syn.o_stream.ready.eq(lif.i_stream.ready),
                     lif.i_stream.payload.current.eq(syn.o_stream.payload.current),
                     lif.i_stream.payload.first.eq(syn.o_stream.payload.first)]
        wiring.connect(m, lif.o_stream, wiring.flipped(self.o_stream))
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays


def synapse_load_beats(spec: SynapseSpec, codes) -> list[dict]:
    """WRITE beats that load ``codes`` (n_inputs, n_outputs) into the weight memory, word by word."""
    cells = weight_words(spec, codes)
    return [{"kind": WRITE, "first": 0, "index": k, "data": word} for k, word in enumerate(cells)]


def synapse_input_beats(spec: SynapseSpec, spikes, load_codes=None) -> list[dict]:
    """Golden spikes (S, T, n_inputs) -> commands: per step the spiking indices ascending, then STEP.

    ``load_codes``: if given, the stream starts by writing them into the weight memory.
    """
    spikes = check_spikes(spec, spikes)
    beats = synapse_load_beats(spec, load_codes) if load_codes is not None else []
    zero = [0] * spec.lanes
    s_count, t_count, _ = spikes.shape
    for s in range(s_count):
        for t in range(t_count):
            for i in spikes[s, t].nonzero().flatten().tolist():
                beats.append({"kind": SPIKE, "first": 0, "index": i, "data": zero})
            beats.append({"kind": STEP, "first": int(t == 0), "index": 0, "data": zero})
    return beats


def synapse_expected_beats(spec: SynapseSpec, currents, sops, reads) -> list[dict]:
    """Golden currents (S, T, N) and counters (S, T) -> the output beats, G per step."""
    s_count, t_count, _ = currents.shape
    beats = []
    for s in range(s_count):
        for t in range(t_count):
            row = [int(x) for x in currents[s, t]]
            for g in range(spec.groups):
                beats.append({"current": row[g * spec.lanes:(g + 1) * spec.lanes], "first": int(t == 0),
                              "sops": int(sops[s, t]), "reads": int(reads[s, t])})
    return beats

