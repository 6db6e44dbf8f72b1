"""Event-driven multiply-accumulate engine: commands in, P-lane output currents out.

Hardware for ``golden.mac.mac_run``; the equations are in ``golden/mac.py`` and
``docs/numeric-contract.md`` and are implemented here bit for bit.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import fixed
from golden.mac import (EVENT, STEP, WRITE_B, WRITE_W, MACSpec, check_biases, check_commands, check_weights,
                        mac_last)

__all__ = ["EVENT", "STEP", "WRITE_B", "WRITE_W", "MACEngine", "mac_expected_beats", "mac_input_beats",
           "mac_input_layout", "mac_load_beats", "mac_output_layout"]

#: cycles from a STEP handshake to its first output beat being valid (see MACEngine)
STEP_LATENCY = 6
#: input cycles a STEP costs beyond its ``groups`` drain cycles (see MACEngine)
STEP_OVERHEAD = 3


def mac_input_layout(spec: MACSpec) -> data.StructLayout:
    """Input beat: one command (``golden.mac``).

    * ``kind`` = EVENT (0): add ``value`` x weight words ``addr .. addr + groups - 1``
      into accumulator words 0 .. groups - 1.
    * ``kind`` = STEP (1): emit ``groups`` beats ``sat((acc >> shift) + bias[addr + g])``, clear them.
    * ``kind`` = WRITE_W (2) / WRITE_B (3): store ``data`` (P values) in weight / bias word ``addr``.

    Fields a kind does not use are ignored.
    """
    return data.StructLayout({
        "kind": unsigned(2),
        "addr": unsigned(spec.address_bits),
        "value": signed(spec.value_width),
        "groups": unsigned(spec.group_bits),
        "shift": unsigned(spec.shift_width),
        "data": data.ArrayLayout(signed(spec.data_width), spec.lanes),
    })


def mac_output_layout(spec: MACSpec) -> data.StructLayout:
    """Output beat: the P currents of group g of a STEP, and ``last`` = (g == groups - 1)."""
    return data.StructLayout({
        "current": data.ArrayLayout(signed(spec.out_width), spec.lanes),
        "last": unsigned(1),
    })


def saturate(total: Value, width: int) -> Value:
    """sat_W of an exact signed sum, from its bits: it fits W bits iff bits W-1 .. top are all equal,
    otherwise its sign picks the rail (a LUT level after the adder, not a second carry chain of
    comparisons against the constants)."""
    if total.shape().width <= width:
        return total
    top = total[width - 1:]
    overflow = top.any() & ~top.all()
    return Mux(overflow, Mux(total[-1], fixed.int_min(width, True), fixed.int_max(width, True)),
               total[:width].as_signed())


def _memory_init(words) -> list[list[int]]:
    return [[int(v) for v in row] for row in words.tolist()]


class MACEngine(wiring.Component):
    """Event-driven multiply-accumulate engine: P products and P saturating additions per cycle.

    Memories (``amaranth.lib.memory.Memory``)
    ------------------------------------------
    weights: ``weight_depth`` words of P signed Ww-bit weights; biases: ``bias_depth``
    words of P signed Wb-bit biases (both initialised from ``init_weights`` /
    ``init_biases``, lists of words or (depth, P) arrays, shorter ones padded with
    0, and writable through WRITE_W / WRITE_B); accumulators: Gmax words of P
    signed Wa-bit sums, 0 at reset. Every read port is synchronous.

    Event pipeline (an EVENT issues one weight word per cycle)
    ----------------------------------------------------------
    The word g issued in cycle t (address ``addr + g`` from a register that counts
    up, so no adder sits before the memory):

    * I (t): weight memory read.
    * R (t + 1): the weight word leaves the memory into a register; accumulator
      word g is read.
    * M (t + 2): ``value * weight`` per lane (the exact Wx + Ww-bit product, one
      multiplier a lane: a DSP) into the product register; the accumulator word
      leaves its memory into a register.
    * A (t + 3): ``sat_Wa(acc + product)`` written back to accumulator word g.

    Read after write: an accumulator word read in cycle t + 3 meets the write of
    cycle t + 3, which the read port (transparent to the write port) forwards; a
    word read in cycle t + 2 is one add too old when the word in stage A one
    cycle earlier was the same one, so stage A then takes that add's registered
    sum instead of the memory's. Back-to-back events on one word (groups = 1)
    therefore need no stall.

    Drain (a STEP) and its pipeline
    -------------------------------
    A STEP accepted in cycle c waits until the last add in flight (its word was
    issued in cycle c - 1 at the latest) is written at the end of cycle c + 2,
    then for g = 0 .. groups - 1:

    * D0 (c + 2 + g): accumulator word g and bias word ``addr + g`` are read (the
      read in cycle c + 2 sees the write of that cycle through the transparent port).
    * D1: both words leave their memories into registers; accumulator word g is
      written 0 (a cycle after its read, so the read is not hit by its own clear).
    * D2: ``acc >> shift`` (arithmetic, a barrel shifter) into a register.
    * D3: ``sat_Wo(shifted + bias)`` into the output register (``o_stream``).

    Back-pressure stalls D0 .. D3 together (read ports disabled, so the memory
    outputs hold): a beat is neither lost nor duplicated.

    Latency and throughput (no back-pressure: ``o_stream.ready`` high)
    ---------------------------------------------------------------------
    * EVENT(groups) accepted in cycle c: the next command is accepted in cycle
      c + groups (P multiply-accumulates per cycle): ``event_cycles(groups) = groups``.
    * STEP(groups) accepted in cycle c: output beat g is valid in cycle
      c + ``step_latency`` + g = c + 6 + g (g = 0 .. groups - 1, one per cycle);
      the next command is accepted in cycle c + groups + ``step_overhead`` =
      c + groups + 3 (when its last accumulator word has been read and cleared):
      ``step_cycles(groups) = groups + 3``.
    * WRITE_W / WRITE_B: 1 cycle (``write_cycles()``).
    * These hold whatever came before or comes after (EVENT after STEP, STEP after
      EVENT, STEP after STEP, writes between), so a program of commands takes
      ``program_cycles(commands)`` = the sum of the above input cycles, and its
      last beat leaves ``step_latency + groups - 1 - (groups + step_overhead)``
      = 2 cycles after the last STEP's input cycles end.
    * ``i_stream.ready`` and ``o_stream.valid`` come from registers only.

    Commands the golden model refuses (groups outside 1 .. Gmax, addresses past
    a memory) give unspecified results; the engine treats groups = 0 as 1 and
    never hangs. Write data wider than a cell keep their low bits.

    Members
    -------
    i_stream : In(stream.Signature(mac_input_layout(spec)))
    o_stream : Out(stream.Signature(mac_output_layout(spec)))
    """

    def __init__(self, spec: MACSpec, init_weights=None, init_biases=None):
        try:
            if not isinstance(spec, MACSpec):
                raise TypeError(f"MACEngine needs a MACSpec, got {type(spec).__name__}")
            self._init_weights = [] if init_weights is None else _memory_init(
                check_weights(spec, init_weights, exact=False))
            self._init_biases = [] if init_biases is None else _memory_init(
                check_biases(spec, init_biases, exact=False))
        except (TypeError, ValueError):
            self._MustUse__silence = True  # refused, so never elaborated: no "created but never used" warning
            raise
        self.spec = spec
        #: cycles from a STEP handshake to its first output beat being valid
        self.step_latency = STEP_LATENCY
        #: input cycles of a STEP beyond its ``groups`` drain cycles
        self.step_overhead = STEP_OVERHEAD
        super().__init__({
            "i_stream": In(stream.Signature(mac_input_layout(spec))),
            "o_stream": Out(stream.Signature(mac_output_layout(spec))),
        })

    # ---- the timing contract, for programs (the core's cycle formula builds on these)

    @staticmethod
    def event_cycles(groups: int) -> int:
        """Input cycles of an EVENT of ``groups`` words."""
        return groups

    def step_cycles(self, groups: int) -> int:
        """Input cycles of a STEP of ``groups`` words: groups + step_overhead."""
        return groups + self.step_overhead

    @staticmethod
    def write_cycles() -> int:
        """Input cycles of a WRITE_W or WRITE_B."""
        return 1

    def command_cycles(self, command) -> int:
        """Input cycles of one command object (``golden.mac.Event`` / ``Step`` / ``WriteW`` / ``WriteB``)."""
        if command.kind == EVENT:
            return self.event_cycles(command.groups)
        if command.kind == STEP:
            return self.step_cycles(command.groups)
        return self.write_cycles()

    def program_cycles(self, commands) -> int:
        """Cycles from the first command's handshake to the one after the last command's input cycles."""
        return sum(self.command_cycles(c) for c in check_commands(self.spec, commands))

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        lanes, gmax, wa, wo = spec.lanes, spec.max_groups, spec.acc_width, spec.out_width

        m.submodules.weights = wmem = memory.Memory(shape=data.ArrayLayout(signed(spec.weight_width), lanes),
                                                    depth=spec.weight_depth, init=self._init_weights)
        m.submodules.biases = bmem = memory.Memory(shape=data.ArrayLayout(signed(spec.bias_width), lanes),
                                                   depth=spec.bias_depth, init=self._init_biases)
        m.submodules.acc = amem = memory.Memory(shape=data.ArrayLayout(signed(wa), lanes), depth=gmax, init=[])
        w_wr, w_rd = wmem.write_port(), wmem.read_port()
        b_wr, b_rd = bmem.write_port(), bmem.read_port()
        a_wr = amem.write_port()
        a_rd = amem.read_port(transparent_for=(a_wr,))

        payload = self.i_stream.payload
        ev_busy = Signal()       # issuing words 1 .. groups-1 of an EVENT
        drain_active = Signal()  # from a STEP's handshake until its last accumulator word is read and cleared
        m.d.comb += self.i_stream.ready.eq(~ev_busy & ~drain_active)
        accept = self.i_stream.valid & self.i_stream.ready
        is_event = accept & (payload.kind == EVENT)
        is_step = accept & (payload.kind == STEP)
        # groups = 0 (refused by golden) acts as 1, so neither counter below can run away
        last_group = Signal(range(gmax))
        m.d.comb += last_group.eq(Mux(payload.groups == 0, 0, payload.groups - 1))

        # ---- run-time loading: one word per command, written at the end of its handshake cycle
        m.d.comb += [w_wr.addr.eq(payload.addr), w_wr.en.eq(accept & (payload.kind == WRITE_W)),
                     b_wr.addr.eq(payload.addr), b_wr.en.eq(accept & (payload.kind == WRITE_B))]
        for p in range(lanes):
            m.d.comb += [w_wr.data[p].eq(payload.data[p]), b_wr.data[p].eq(payload.data[p])]

        # ---- stage I: one weight word per cycle; the address of words 1.. comes from a counter
        ev_addr = Signal(range(spec.weight_depth))
        ev_group = Signal(range(gmax))
        ev_last = Signal(range(gmax))
        ev_value = Signal(signed(spec.value_width))
        i_valid = is_event | ev_busy
        i_group = Mux(ev_busy, ev_group, 0)
        i_value = Mux(ev_busy, ev_value, payload.value)
        m.d.comb += [w_rd.addr.eq(Mux(ev_busy, ev_addr, payload.addr)), w_rd.en.eq(1)]
        with m.If(is_event):
            m.d.sync += [ev_addr.eq(payload.addr + 1), ev_group.eq(1), ev_last.eq(last_group),
                         ev_value.eq(payload.value), ev_busy.eq(last_group != 0)]
        with m.Elif(ev_busy):
            m.d.sync += [ev_addr.eq(ev_addr + 1), ev_group.eq(ev_group + 1)]
            with m.If(ev_group == ev_last):
                m.d.sync += ev_busy.eq(0)

        # ---- stage R: weight word on w_rd.data; read accumulator word r_group
        r_valid, r_group = Signal(), Signal(range(gmax))
        r_value = Signal(signed(spec.value_width))
        m.d.sync += [r_valid.eq(i_valid), r_group.eq(i_group), r_value.eq(i_value)]

        # ---- stage M: registered weight word times value; accumulator word into a register
        m_valid, m_group = Signal(), Signal(range(gmax))
        m_value = Signal(signed(spec.value_width))
        m_weights = Signal(data.ArrayLayout(signed(spec.weight_width), lanes))
        m.d.sync += [m_valid.eq(r_valid), m_group.eq(r_group), m_value.eq(r_value), m_weights.eq(w_rd.data)]

        a_valid, a_group = Signal(), Signal(range(gmax))
        a_acc = Signal(data.ArrayLayout(signed(wa), lanes))
        a_prod = Signal(data.ArrayLayout(signed(spec.product_width), lanes))
        m.d.sync += [a_valid.eq(m_valid), a_group.eq(m_group), a_acc.eq(a_rd.data)]
        for p in range(lanes):
            m.d.sync += a_prod[p].eq(m_value * m_weights[p])  # exact: Wx + Ww bits

        # ---- stage A: saturating add, write back; forward the previous add's sum to the same word.
        # Whether to forward is decided a cycle early (stage M against stage A), so stage A's path is
        # register -> 2:1 mux -> one carry chain -> saturate (a LUT from the sum's top bits) -> memory.
        forward = Signal()
        m.d.sync += forward.eq(a_valid & (a_group == m_group))
        prev_sum = Signal(data.ArrayLayout(signed(wa), lanes))
        sums = Signal(data.ArrayLayout(signed(wa), lanes))
        for p in range(lanes):
            total = Mux(forward, prev_sum[p], a_acc[p]) + a_prod[p]  # exact: Amaranth widens the sum
            m.d.comb += sums[p].eq(saturate(total, wa))
        m.d.sync += prev_sum.eq(sums)

        # ---- drain: D0 reads, D1 registers and clears, D2 shifts, D3 adds the bias into the output register
        stall = self.o_stream.valid & ~self.o_stream.ready
        d_wait = Signal()                          # cycle c + 1: the last add in flight is not written yet
        d_reading = Signal()                       # D0 has words left to read
        d_group, d_last = Signal(range(gmax)), Signal(range(gmax))
        d_baddr = Signal(range(spec.bias_depth))
        d_shift = Signal(spec.shift_width)
        d0 = d_reading & ~d_wait & ~stall
        with m.If(is_step):
            m.d.sync += [drain_active.eq(1), d_wait.eq(1), d_reading.eq(1), d_group.eq(0), d_last.eq(last_group),
                         d_baddr.eq(payload.addr), d_shift.eq(payload.shift)]
        with m.Else():
            m.d.sync += d_wait.eq(0)
        with m.If(d0):
            m.d.sync += [d_group.eq(d_group + 1), d_baddr.eq(d_baddr + 1)]
            with m.If(d_group == d_last):
                m.d.sync += d_reading.eq(0)

        d1_valid, d1_last = Signal(), Signal()
        d1_group = Signal(range(gmax))
        d1_shift = Signal(spec.shift_width)
        d2_valid, d2_last = Signal(), Signal()
        d2_shift = Signal(spec.shift_width)
        d2_acc = Signal(data.ArrayLayout(signed(wa), lanes))
        d2_bias = Signal(data.ArrayLayout(signed(spec.bias_width), lanes))
        d3_valid, d3_last = Signal(), Signal()
        d3_shifted = Signal(data.ArrayLayout(signed(wa), lanes))
        d3_bias = Signal(data.ArrayLayout(signed(spec.bias_width), lanes))
        with m.If(~stall):
            m.d.sync += [d1_valid.eq(d0), d1_group.eq(d_group), d1_last.eq(d_group == d_last),
                         d1_shift.eq(d_shift),
                         d2_valid.eq(d1_valid), d2_last.eq(d1_last), d2_shift.eq(d1_shift),
                         d2_acc.eq(a_rd.data), d2_bias.eq(b_rd.data),
                         d3_valid.eq(d2_valid), d3_last.eq(d2_last), d3_bias.eq(d2_bias)]
            for p in range(lanes):
                m.d.sync += d3_shifted[p].eq(d2_acc[p] >> d2_shift)  # arithmetic: floor(acc / 2^shift)
            with m.If(d1_valid & d1_last):
                m.d.sync += drain_active.eq(0)
        clear = d1_valid & ~stall

        with m.If(~stall):
            m.d.sync += [self.o_stream.valid.eq(d3_valid), self.o_stream.payload.last.eq(d3_last)]
            for p in range(lanes):
                m.d.sync += self.o_stream.payload.current[p].eq(saturate(d3_shifted[p] + d3_bias[p], wo))

        # ---- accumulator ports: the drain owns the read port from c + 1 (no event reads after cycle c)
        # and the write port while it clears (no event adds after cycle c + 2)
        with m.If(drain_active):
            m.d.comb += [a_rd.addr.eq(d_group), a_rd.en.eq(d0)]
        with m.Else():
            m.d.comb += [a_rd.addr.eq(r_group), a_rd.en.eq(1)]
        with m.If(clear):
            m.d.comb += [a_wr.addr.eq(d1_group), a_wr.data.eq(0), a_wr.en.eq(1)]
        with m.Else():
            m.d.comb += [a_wr.addr.eq(a_group), a_wr.data.eq(sums), a_wr.en.eq(a_valid)]
        m.d.comb += [b_rd.addr.eq(d_baddr), b_rd.en.eq(d0)]
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays


def mac_load_beats(spec: MACSpec, weights=None, biases=None) -> list[dict]:
    """WRITE_W beats storing every word of ``weights``, then WRITE_B beats for ``biases`` (each optional)."""
    beats = []
    for kind, words, check in ((WRITE_W, weights, check_weights), (WRITE_B, biases, check_biases)):
        if words is None:
            continue
        for addr, word in enumerate(check(spec, words, exact=False).tolist()):
            beats.append({"kind": kind, "addr": addr, "value": 0, "groups": 0, "shift": 0, "data": word})
    return beats


def mac_input_beats(spec: MACSpec, commands, load_weights=None, load_biases=None) -> list[dict]:
    """Golden commands (objects or a command array) -> input beats.

    ``load_weights`` / ``load_biases``: if given, the stream first writes them into
    the memories (the design then needs no initial contents).
    """
    beats = mac_load_beats(spec, load_weights, load_biases)
    zero = [0] * spec.lanes
    for cmd in check_commands(spec, commands):
        if cmd.kind == EVENT:
            beats.append({"kind": EVENT, "addr": cmd.addr, "value": cmd.value, "groups": cmd.groups, "shift": 0,
                          "data": zero})
        elif cmd.kind == STEP:
            beats.append({"kind": STEP, "addr": cmd.bias_addr, "value": 0, "groups": cmd.groups,
                          "shift": cmd.shift, "data": zero})
        else:
            beats.append({"kind": cmd.kind, "addr": cmd.addr, "value": 0, "groups": 0, "shift": 0,
                          "data": list(cmd.data)})
    return beats


def mac_expected_beats(spec: MACSpec, outputs, commands) -> list[dict]:
    """Golden outputs (n_beats, P) of ``commands`` -> the output beats, ``last`` set on each STEP's final beat."""
    last = mac_last(spec, commands).tolist()
    rows = [[int(x) for x in row] for row in (outputs.tolist() if hasattr(outputs, "tolist") else outputs)]
    if len(rows) != len(last):
        raise ValueError(f"{len(rows)} output beats, but the commands' STEPs emit {len(last)}")
    return [{"current": row, "last": flag} for row, flag in zip(rows, last)]
