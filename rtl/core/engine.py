"""The core's engine: the sequencer that walks a ``CoreProgram`` over the shared units.

Built from ``golden.core.CoreProgram`` and ``CoreSpec``; ``rtl.core.NeuroCore`` wraps it with
the host streams and the output FIFOs. See ``NeuroCore`` for the cycle formula.
"""

from __future__ import annotations

import torch
from amaranth import Array, C, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import fixed
from golden.alif import UPDATE, ALIFSpec
from golden.core.cycles import activity_bounds
from golden.core.program import AttentionOp, CoreProgram, CoreSpec, LinearOp, SDSAOp
from golden.lif import RESET_MODES, LIFSpec
from golden.mac import EVENT, STEP, MACSpec
from golden.mtts import MTTSSpec
from golden.sdsa import SDSASpec

from ..alif import ALIFArray
from ..lif import LIFArray
from ..mac import MACEngine
from ..mtts import MTTSEncoder
from ..sdsa import SDSAttention, sdsa_output_layout
from ..wta_attention import KIND_LOAD, KIND_QUERY, WTAAttention, wta_output_layout

#: tap kinds on the output stream (golden.core.execute.TAP_KINDS)
TAP_CURRENT, TAP_SPIKES, TAP_ATTENTION, TAP_LOGITS, TAP_STATUS, TAP_ACTIVITY = 0, 1, 3, 4, 5, 6
STATUS_WIDTH = 32


def mac_spec(spec: CoreSpec, program: CoreProgram) -> MACSpec:
    groups = max([program.groups(op) for op in program.linear_ops()] or [1])
    shift = max([op.shift for op in program.linear_ops()] or [0])
    return MACSpec(lanes=spec.lanes, weight_depth=spec.weight_depth, weight_width=spec.weight_width,
                   value_width=spec.value_width, max_groups=groups, acc_width=spec.acc_width,
                   bias_depth=spec.bias_depth, bias_width=spec.bias_width, out_width=spec.current_width,
                   shift_width=max(1, fixed.bits_for(shift)))


def lif_spec(spec: CoreSpec, program: CoreProgram) -> LIFSpec | None:
    t = program.lif_template
    if t is None:
        return None
    n = -(-spec.lif_neurons // spec.lanes) * spec.lanes
    return t.replace(n_neurons=n, lanes=spec.lanes, emit_membrane=False, addressed=True, runtime_params=True)


def alif_spec(spec: CoreSpec, program: CoreProgram) -> ALIFSpec | None:
    """The core's adaptive-LIF array: the program's template, addressed, with the run-time
    increment, the noise input when some layer has noise, spikes only, and a parameter memory of
    its own (one word per layer and output group, shared by the layer's rows)."""
    t = program.alif_template
    if t is None:
        return None
    n = -(-spec.alif_neurons // spec.lanes) * spec.lanes
    noisy = any(op.noise is not None for op in program.alif_ops())
    program.layout()
    return t.replace(n_neurons=n, lanes=spec.lanes, noise_width=spec.noise_width if noisy else 0,
                     emit_membrane=False, emit_adaptation=False, addressed=True, runtime_increment=True,
                     param_groups=max(1, program.alif_param_words))


def mtts_spec(spec: CoreSpec, program: CoreProgram) -> MTTSSpec | None:
    """The core's MTTS encoder (P lanes, spike trains out), or None; one encoder spec per program."""
    specs = {op.mtts for op in program.linear_ops() if op.mtts is not None}
    if not specs:
        return None
    if len(specs) > 1:
        raise ValueError("the core has one MTTS encoder; the program's MTTS layers differ in their specs")
    return specs.pop().replace(lanes=spec.lanes, emit="spikes")


def attention_op(program: CoreProgram) -> AttentionOp | SDSAOp | None:
    """The program's attention ops all run on one unit: WTA or spike-driven, not both."""
    ops = [op for op in program.ops if isinstance(op, (AttentionOp, SDSAOp))]
    if len({type(op) for op in ops}) > 1:
        raise ValueError("the core has one attention unit: a program with both WTA and spike-driven "
                         "attention does not map")
    return ops[0] if ops else None


def wta_spec(spec: CoreSpec, program: CoreProgram):
    op = attention_op(program)
    return op.wta.replace(lanes=spec.wta_lanes) if isinstance(op, AttentionOp) else None


def sdsa_spec(spec: CoreSpec, program: CoreProgram) -> SDSASpec | None:
    op = attention_op(program)
    if not isinstance(op, SDSAOp):
        return None
    return op.sdsa.replace(lanes=min(spec.sdsa_lanes, op.sdsa.head_dim))


def memory_buffers(program: CoreProgram) -> list:
    """The activation buffers that live in memories (the input sample lives in registers)."""
    return list(program.buffers.values())


def scan_width(program: CoreProgram) -> int:
    """Cmax: the widest source row the event scanner holds. A token row is not scanned as its
    V + L one-hot bits: its two events (tok, V + r) are bits 0 and 1 of the mask, and the
    offset stage maps them to their weight rows, so the priority tree spans only the widest
    buffer or pixel row (a 7-level tree over the 100-odd bits of a token row was the WTA
    core's worst path, 10.6 ns on ECP5-85)."""
    widths = [op.n_in for op in program.linear_ops() if op.src != "tokens"]
    widths += [b.channels for b in program.buffers.values()]
    return max(widths + [2])


def activity_layout(spec: CoreSpec, program: CoreProgram) -> data.StructLayout:
    """The activity beat of an op (``TAP_ACTIVITY``, tap = the op index, one per op and sample, with
    or without debug taps): the op's cycles, the EVENT commands its MAC engine took and the spikes
    its neurons emitted (``golden.core.cycles.op_activity``); the counters are as wide as the
    program's largest count (``activity_bounds``), so they never wrap."""
    events, spikes = activity_bounds(program, spec)
    return data.StructLayout({"cycles": unsigned(STATUS_WIDTH), "events": unsigned(max(1, events.bit_length())),
                              "spikes": unsigned(max(1, spikes.bit_length()))})


def tap_data_width(spec: CoreSpec, program: CoreProgram) -> int:
    p = spec.lanes
    sum_width = max([b.width for b in program.buffers.values()] or [1])
    widths = [p * spec.current_width, p + p * sum_width, STATUS_WIDTH, activity_layout(spec, program).size]
    w = wta_spec(spec, program)
    if w is not None:
        widths.append(wta_output_layout(w).size)
    sd = sdsa_spec(spec, program)
    if sd is not None:
        widths.append(sdsa_output_layout(sd).size)
    return max(widths)


def _ffs(m: Module, bits, name: str):
    """(found, index of the lowest set bit) by a balanced tree: log2(n) levels of muxes."""
    n = len(bits)
    if n == 1:
        return bits[0], C(0, 1)
    half = 1 << (max(1, (n - 1).bit_length()) - 1)
    lo_found, lo_index = _ffs(m, bits[:half], name + "l")
    hi_found, hi_index = _ffs(m, bits[half:], name + "h")
    width = max(1, (n - 1).bit_length())
    index = Signal(width, name=f"{name}_index")
    m.d.comb += index.eq(Mux(lo_found, lo_index, hi_index + half))
    return lo_found | hi_found, index


class CoreEngine(wiring.Component):
    """Sequencer + units: MAC engine, LIF array (addressed, run-time parameters) or adaptive-LIF array
    (addressed, run-time increment, noise memory), MTTS encoder, WTA or spike-driven attention unit.

    Members: ``i_stream`` (one input value per beat: a pixel or a token id), and two tap
    channels without back-pressure (``a_*``: currents, logits and the status word; ``b_*``:
    spikes with residual sums, attention outputs); ``NeuroCore`` freezes the engine while a
    tap FIFO is full, so the engine itself never waits for the host.
    """

    def __init__(self, spec: CoreSpec, program: CoreProgram):
        self.spec, self.program = spec, program
        self.n_inputs = program.input_buffer.rows * program.input_buffer.channels
        self.input_width = program.input_buffer.width
        self.data_width = tap_data_width(spec, program)
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({"value": unsigned(self.input_width)}))),
            "a_valid": Out(1), "a_kind": Out(3), "a_tap": Out(8), "a_data": Out(self.data_width),
            "b_valid": Out(1), "b_kind": Out(3), "b_tap": Out(8), "b_data": Out(self.data_width),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        spec, prog = self.spec, self.program
        m = Module()
        p = spec.lanes
        ops = prog.ops
        n_ops = len(ops)
        taps = spec.debug_taps

        # ---- units
        mspec = mac_spec(spec, prog)
        m.submodules.mac = mac = MACEngine(mspec, init_weights=prog.weight_image(),
                                           init_biases=prog.bias_image())
        lspec = lif_spec(spec, prog)
        aspec = alif_spec(spec, prog)
        # the neuron array: the LIF array or the adaptive-LIF array (one per program: check_fits)
        lif = None
        if lspec is not None:
            m.submodules.lif = lif = LIFArray(lspec, interlock=False)
        elif aspec is not None:
            theta, beta = prog.alif_param_image()
            pad = aspec.param_neurons - theta.numel()
            theta = torch.cat([theta.reshape(-1), torch.ones(pad, dtype=torch.int64)])
            beta = torch.cat([beta.reshape(-1), torch.zeros(pad, dtype=torch.int64)])
            m.submodules.alif = lif = ALIFArray(aspec, theta=theta, beta=beta)
        nspec = lspec if lspec is not None else aspec
        tspec = mtts_spec(spec, prog)
        mtts = None
        if tspec is not None:
            m.submodules.mtts = mtts = MTTSEncoder(tspec)
        wspec = wta_spec(spec, prog)
        sspec = sdsa_spec(spec, prog)
        # the attention unit (WTA or spike-driven; the same load / query protocol)
        wta = None
        if wspec is not None:
            m.submodules.wta = wta = WTAAttention(wspec)
        elif sspec is not None:
            m.submodules.sdsa = wta = SDSAttention(sspec)
        att_spec = wspec if wspec is not None else sspec

        # ---- activation buffers
        bufs = memory_buffers(prog)
        buf_id = {b.name: i for i, b in enumerate(bufs)}
        row_addr = Signal(range(max([b.rows for b in bufs] or [1]) + 1), name="row")
        rd_data, wr_ports = {}, {}
        for b in bufs:
            shape = data.ArrayLayout(signed(b.width) if b.signed else unsigned(b.width), b.channels)
            mem = memory.Memory(shape=shape, depth=b.rows, init=[])
            m.submodules[f"buf_{b.name}"] = mem
            rd = mem.read_port()
            m.d.comb += rd.addr.eq(row_addr)
            wr = mem.write_port(granularity=p)
            rd_data[b.name], wr_ports[b.name] = rd.data, wr

        # ---- the input sample, in registers
        inp = prog.input_buffer
        sample = Array(Signal(unsigned(inp.width), name=f"sample{i}") for i in range(self.n_inputs))
        # a token row's token id, registered in ROW_HOLD (the L-way select), then its offset tok G in ROW_LOAD
        tok = Signal(unsigned(inp.width), name="tok")
        # and its position event's weight row V + r, registered beside it
        tok_pos = Signal(range(max(2, prog.meta.get("vocab", 0) + inp.rows)), name="tok_pos")

        # ---- the program, as constant tables indexed by the op counter
        pc = Signal(range(max(2, n_ops)), name="pc")

        def table(values, width=None, name="", registered=True):
            """An op's constant: ``values[pc]``, registered (one cycle behind pc: pc changes
            only in NEXT_OP, and only OP_START, which reads ``k_is_attention`` alone, comes
            before the op's first use), so the table's multiplexer is not in any unit's path."""
            values = [int(v) for v in values]
            w = width if width is not None else max(1, max(max(values), 0).bit_length())
            if not registered:
                return Array(C(v, w) for v in values)[pc]
            reg = Signal(w, name=f"k_{name}" if name else None)
            m.d.sync += reg.eq(Array(C(v, w) for v in values)[pc])
            return reg

        def per_op(fn, default=0):
            return [fn(op) if isinstance(op, LinearOp) else default for op in ops]

        groups_of = {i: prog.groups(op) for i, op in enumerate(ops) if isinstance(op, LinearOp)}
        k_is_attention = table([int(isinstance(op, (AttentionOp, SDSAOp))) for op in ops], registered=False)
        k_rows = table(per_op(lambda op: op.rows))
        k_steps = table([op.steps for op in ops])
        k_groups = table([groups_of.get(i, 1) for i in range(n_ops)])
        k_wbase = table([max(0, prog.weight_base[i]) for i in range(n_ops)])
        k_bbase = table([max(0, prog.bias_base[i]) for i in range(n_ops)])
        k_shift = table(per_op(lambda op: op.shift))
        # k_lif: the op's neurons are the (adaptive) LIF array; k_mtts: the MTTS encoder
        k_lif = table(per_op(lambda op: int(op.neuron in ("lif", "alif"))))
        k_mtts = table(per_op(lambda op: int(op.neuron == "mtts")))
        k_accumulate = table(per_op(lambda op: int(op.accumulate)))
        k_reduce = table(per_op(lambda op: int(op.reduce_time)))
        k_reduce_rows = table(per_op(lambda op: int(op.reduce_rows)))
        k_static = table(per_op(lambda op: int(op.static_src)))
        k_tokens = table(per_op(lambda op: int(op.src == "tokens")))
        src_names = [None] + [b.name for b in bufs]
        k_src = table(per_op(lambda op: src_names.index(op.src) if op.src in buf_id else 0))
        k_dst = table([src_names.index(op.dst) if op.dst in buf_id else 0 for op in ops])
        if aspec is not None:
            k_increment = table(per_op(lambda op: op.alif.spec.adapt_increment if op.alif else 0), aspec.adapt_width)
            k_noisy = table(per_op(lambda op: int(op.noise is not None)))
            # the first state word of the op's region (read in OP_START, where the registered
            # tables still hold the previous op's values)
            k_alif_base0 = table([max(0, b) for b in prog.alif_base], registered=False,
                                 width=max(1, aspec.groups.bit_length()))
            # the op's first parameter word (read in ROW_READ)
            k_alif_pbase = table([max(0, b) for b in prog.alif_param_base], width=max(1, aspec.param_groups.bit_length()))
        if lspec is not None:
            widths = lspec.param_widths
            k_threshold = table(per_op(lambda op: op.lif.threshold if op.lif else 1), widths["threshold"])
            k_leak = table(per_op(lambda op: op.lif.leak_beta if op.lif else 0), widths["leak"])
            k_reset = table(per_op(lambda op: RESET_MODES.index(op.lif.reset_mode) if op.lif else 0), 2)

        # ---- counters
        t = Signal(range(max(op.steps for op in ops) + 1), name="t")
        r = Signal(range(max([op.rows for op in ops if isinstance(op, LinearOp)] + [1]) + 1), name="r")
        lif_base = Signal(range(max(1, nspec.groups if nspec else 1) + 1), name="lif_base")
        # the op's first state word (its region of the adaptive-LIF array; 0 for the LIF array)
        op_lif_base = Signal.like(lif_base, name="op_lif_base")
        # the LIF group of the row's next MAC beat (lif_base + the beats so far), kept in a register
        # of its own (set in ROW_READ, stepped with each MAC beat) so that no adder sits in front
        # of the LIF array's state address
        lif_group = Signal.like(lif_base, name="lif_group")
        # the adaptive-LIF parameter word of the row's next MAC beat (the op's first word + the beats
        # so far; the same for every row of the op), kept like lif_group
        if aspec is not None:
            param_group = Signal(range(aspec.param_groups + 1), name="param_group")
        g_out = Signal(range(mspec.max_groups + 1), name="g_out")
        cycles = Signal(STATUS_WIDTH, name="cycles")
        # the activity counters of the current op (reported in its NEXT_OP cycle, cleared in OP_START)
        act_layout = activity_layout(spec, prog)
        act = Signal(act_layout, name="activity")
        in_count = Signal(range(self.n_inputs + 1), name="in_count")
        lif_overrun = Signal()

        # ---- per-row source masks (a patch-wise stem: row r reads its token's pixels) and weight
        # banks (a pooled readout: row r meets its region's weights), constants indexed by (pc, r)
        n_rows_max = max([op.rows for op in ops if isinstance(op, LinearOp)] + [1])
        row_mask = None
        if any(isinstance(op, LinearOp) and op.row_masks is not None for op in ops):
            def mask_bits(op, rr):
                if not isinstance(op, LinearOp) or op.row_masks is None or rr >= op.rows:
                    return (1 << self.n_inputs) - 1
                return sum(1 << i for i in range(op.n_in) if bool(op.row_masks[rr, i]))
            row_mask = Signal(self.n_inputs, name="row_mask")
            m.d.comb += row_mask.eq(Array(Array(C(mask_bits(op, rr), self.n_inputs) for rr in range(n_rows_max))
                                          for op in ops)[pc][r])
        banked = any(isinstance(op, LinearOp) and op.row_banks is not None for op in ops)
        row_wbase = None
        if banked:
            def bank_offset(op, rr):
                if not isinstance(op, LinearOp) or op.row_banks is None or rr >= op.rows:
                    return 0
                return op.row_banks[rr] * op.n_in * prog.groups(op)
            offsets = [[bank_offset(op, rr) for rr in range(n_rows_max)] for op in ops]
            off_width = max(1, max(max(row) for row in offsets).bit_length())
            bank_off = Array(Array(C(v, off_width) for v in row) for row in offsets)[pc][r]
            # the row's weight base, registered in ROW_READ (the events of the previous row have all
            # reached the MAC by then)
            row_wbase = Signal.like(mac.i_stream.payload.addr, name="row_wbase")

        # ---- scanner registers
        cmax = scan_width(prog)
        wx = spec.value_width
        vals = Signal(data.ArrayLayout(signed(wx), cmax), name="vals")
        mask = Signal(cmax, name="mask")
        old = {}
        for b in bufs:
            # every buffer's row as read (ROW_HOLD): the residuals of the write-back, and the
            # source row of the scan (the block RAM's output goes straight into a register)
            elem = signed(b.width) if b.signed else unsigned(b.width)
            old[b.name] = Signal(data.ArrayLayout(elem, b.channels), name=f"old_{b.name}")
        found, index = _ffs(m, mask, "scan")

        # Three registers in front of the MAC (so that the priority tree sits in one cycle, the value
        # multiplexer and the offset multiply in the next, the base add in the third): s1 holds the
        # scanner's token (an event's input index, or the STEP), s2 its offset and value, cmd the
        # MAC command made from them. `vals` only changes in ROW_LOAD, when all three are empty, so
        # the value can be selected one cycle after the index.
        s1_valid = Signal()
        s1_step = Signal()
        s1_index = Signal(len(index), name="s1_index")
        # s2: the event's weight-row offset i G and its value, registered: the multiplier (an
        # ECP5 MULT18X18D, 3.9 ns) and the value multiplexer have a cycle of their own, and the
        # command register adds only the op's weight base
        s2_valid = Signal()
        s2_step = Signal()
        s2_offset = Signal(mac.i_stream.payload.addr.shape(), name="s2_offset")
        # a token row's event offsets tok G and (V + r) G, made in ROW_LOAD, and the one of s2's event
        tok_offset = Signal.like(s2_offset, name="tok_offset")
        tok_pos_offset = Signal.like(s2_offset, name="tok_pos_offset")
        s2_tok_offset = Signal.like(s2_offset, name="s2_tok_offset")
        s2_value = Signal(signed(wx), name="s2_value")
        cmd_valid = Signal()
        cmd = Signal(mac.i_stream.payload.shape(), name="cmd")
        m.d.comb += [mac.i_stream.valid.eq(cmd_valid), mac.i_stream.payload.eq(cmd)]
        cmd_free = ~cmd_valid | mac.i_stream.ready
        s2_free = ~s2_valid | cmd_free
        s1_free = ~s1_valid | s2_free
        with m.If(s2_valid & cmd_free):
            m.d.sync += [cmd_valid.eq(1), cmd.groups.eq(k_groups)]
            with m.If(s2_step):
                m.d.sync += [cmd.kind.eq(STEP), cmd.addr.eq(k_bbase), cmd.shift.eq(k_shift), cmd.value.eq(0)]
            with m.Else():
                offset = Mux(k_tokens, s2_tok_offset, s2_offset) if prog.input_kind == "tokens" else s2_offset
                m.d.sync += [cmd.kind.eq(EVENT), cmd.addr.eq((row_wbase if banked else k_wbase) + offset),
                             cmd.shift.eq(0),
                             cmd.value.eq(s2_value)]
        with m.Elif(cmd_valid & mac.i_stream.ready):
            m.d.sync += cmd_valid.eq(0)
        with m.If(s1_valid & s2_free):
            m.d.sync += [s2_valid.eq(1), s2_step.eq(s1_step), s2_offset.eq(s1_index * k_groups),
                         s2_value.eq(vals[s1_index])]
            if prog.input_kind == "tokens":
                # a token row's events are mask bits 0 (tok) and 1 (V + r): their offsets were
                # multiplied in ROW_LOAD, so no multiplexer sits in front of the multiplier (it
                # was the worst path there, 11.2 ns); the command picks the offset behind it
                m.d.sync += s2_tok_offset.eq(Mux(s1_index[0], tok_pos_offset, tok_offset))
        with m.Elif(s2_valid & cmd_free):
            m.d.sync += s2_valid.eq(0)
        with m.If(s1_valid & s2_free):
            m.d.sync += s1_valid.eq(0)          # a new token in the same cycle overrides this
        pipe_empty = ~s1_valid & ~s2_valid & ~cmd_valid
        with m.If(cmd_valid & mac.i_stream.ready & (cmd.kind == EVENT)):
            m.d.sync += act.events.eq(act.events + 1)

        # defaults of the tap channels
        m.d.comb += [self.a_tap.eq(pc), self.b_tap.eq(pc)]

        # ---- MAC output -> LIF -> write-back (or -> logits)
        mac_o = mac.o_stream
        row_done = Signal()
        if lspec is not None:
            m.d.comb += [
                lif.i_stream.payload.current.eq(mac_o.payload.current),
                lif.i_stream.payload.first.eq(t == 0),
                lif.i_stream.payload.group.eq(lif_group),
                lif.i_stream.payload.threshold.eq(k_threshold),
                lif.i_stream.payload.leak.eq(k_leak),
                lif.i_stream.payload.reset.eq(k_reset),
                lif.o_stream.ready.eq(1),
            ]
            # The core never sends the LIF array a group that is still in its pipeline (a row's G
            # groups are distinct and the same group comes back a row, >= 16 cycles, later), so the
            # array runs without its interlock and is always ready: the MAC's output is not held by
            # it, and the group compare stays out of the accept path. The invariant is checked: a
            # beat offered while its group is in flight (`hazard`), or one the array does not take,
            # sets `lif_overrun`, reported in the status word's top bit.
            m.d.comb += [lif.i_stream.valid.eq(mac_o.valid & k_lif), mac_o.ready.eq(1)]
            with m.If(lif.hazard | (lif.i_stream.valid & ~lif.i_stream.ready)):
                m.d.sync += lif_overrun.eq(1)
        elif aspec is not None:
            m.d.comb += [
                lif.i_stream.payload.kind.eq(UPDATE),
                lif.i_stream.payload.current.eq(mac_o.payload.current),
                lif.i_stream.payload.first.eq(t == 0),
                lif.i_stream.payload.group.eq(lif_group),
                lif.i_stream.payload.param_group.eq(param_group),
                lif.i_stream.payload.increment.eq(k_increment),
                lif.o_stream.ready.eq(1),
            ]
            if aspec.noise_width:
                # the frozen noise pattern e[t, r, n], one word per beat in the order the beats come
                # (each op's T x R x G words, the ops in program order): a pointer stepped per beat,
                # read one cycle ahead (the address already counts this cycle's beat), so the word
                # is on the read port when its beat arrives; the freeze holds the port too
                image = prog.noise_image()
                noise_layout = data.ArrayLayout(signed(aspec.noise_width), p)
                m.submodules.noise = noise_mem = memory.Memory(
                    shape=noise_layout, depth=max(1, image.shape[0]),
                    init=[[int(x) for x in row] for row in image] or [[0] * p])
                noise_rd = noise_mem.read_port()
                noise_ptr = Signal(range(max(2, image.shape[0] + 1)), name="noise_ptr")
                noise_beat = mac_o.valid & k_lif & k_noisy
                m.d.comb += noise_rd.addr.eq(noise_ptr + noise_beat)
                with m.If(noise_beat):
                    m.d.sync += noise_ptr.eq(noise_ptr + 1)
                with m.If(self.i_stream.valid & self.i_stream.ready):
                    m.d.sync += noise_ptr.eq(0)          # a new sample: the pattern from its start
                m.d.comb += lif.i_stream.payload.noise.eq(Mux(k_noisy, noise_rd.data.as_value(), 0))
            # as with the LIF array: the core never offers a group in flight, so the array is
            # always ready; a beat it does not take would set `lif_overrun`
            m.d.comb += [lif.i_stream.valid.eq(mac_o.valid & k_lif), mac_o.ready.eq(1)]
            with m.If(lif.i_stream.valid & ~lif.i_stream.ready):
                m.d.sync += lif_overrun.eq(1)
        else:
            m.d.comb += mac_o.ready.eq(1)
        # the MTTS encoder: the current clamped to the encoder's range (the code: tapped as the
        # op's current), the spike train of every lane out one cycle later
        if mtts is not None:
            lo, hi = tspec.lo, tspec.hi
            codes = Signal(data.ArrayLayout(signed(spec.current_width), p), name="codes")
            for q in range(p):
                c = mac_o.payload.current[q]
                m.d.comb += codes[q].eq(Mux(c < lo, lo, Mux(c > hi, hi, c)))
                m.d.comb += mtts.i_stream.payload.value[q].eq(codes[q])
            m.d.comb += [mtts.i_stream.valid.eq(mac_o.valid & k_mtts), mtts.o_stream.ready.eq(1)]
        mac_beat = mac_o.valid & mac_o.ready
        with m.If(mac_beat):
            m.d.sync += lif_group.eq(lif_group + 1)
            if aspec is not None:
                m.d.sync += param_group.eq(param_group + 1)
        is_lif_op = k_lif if lif is not None else C(0, 1)
        is_mtts_op = k_mtts if mtts is not None else C(0, 1)
        is_spiking_op = is_lif_op | is_mtts_op
        # currents (spiking layers) or logits (readouts) on tap channel a
        current_word = mac_o.payload.current.as_value()
        if mtts is not None:
            current_word = Mux(is_mtts_op, codes.as_value(), current_word)
        with m.If(mac_beat & (~is_spiking_op | taps)):
            m.d.comb += [self.a_valid.eq(1), self.a_data.eq(current_word),
                         self.a_kind.eq(Mux(is_spiking_op, TAP_CURRENT, TAP_LOGITS))]
        last_out = g_out == k_groups - 1
        with m.If(mac_beat & ~is_spiking_op):
            m.d.sync += g_out.eq(g_out + 1)
            with m.If(last_out):
                m.d.comb += row_done.eq(1)
        if lif is not None or mtts is not None:
            # the spike beat of the op: the neuron array's output, or the MTTS encoder's trains
            # at the current step t (never both: an op has one kind of neuron)
            lif_beat = Signal(name="spike_beat")
            spikes = Signal(p, name="spikes")
            if lif is not None and mtts is not None:
                m.d.comb += lif_beat.eq(lif.o_stream.valid | mtts.o_stream.valid)
            else:
                m.d.comb += lif_beat.eq((lif or mtts).o_stream.valid)
            train_bits = 0
            if mtts is not None:
                trains = mtts.o_stream.payload.spikes
                train_bits = Cat(*(trains[q].bit_select(t, 1) for q in range(p)))
            if lif is not None and mtts is not None:
                m.d.comb += spikes.eq(Mux(mtts.o_stream.valid, train_bits, lif.o_stream.payload.spikes))
            elif lif is not None:
                m.d.comb += spikes.eq(lif.o_stream.payload.spikes)
            else:
                m.d.comb += spikes.eq(train_bits)
            sum_width = max(b.width for b in bufs)
            sums = Signal(data.ArrayLayout(unsigned(sum_width), p), name="sums")
            with m.If(lif_beat):
                m.d.sync += g_out.eq(g_out + 1)
                with m.If(last_out):
                    m.d.comb += row_done.eq(1)
            # buffers some op adds its spikes into (a residual): their old row is consumed one
            # chunk per LIF beat, in order, so instead of a multiplexer over the chunks indexed
            # by g_out (which sat between the counter and the adder in front of the block RAM's
            # write data) the row shifts down one chunk per beat and chunk 0 is always the next
            # one. The row is free to shift: the scan read it in ROW_LOAD, and the next ROW_HOLD
            # comes only after the row's last beat.
            accumulated = {op.dst for op in ops if isinstance(op, LinearOp) and op.accumulate}
            for b in bufs:
                wr = wr_ports[b.name]
                chunks = b.channels // p
                new = Signal(data.ArrayLayout(unsigned(b.width), p), name=f"new_{b.name}")
                if b.name in accumulated:
                    raw = old[b.name].as_value()
                    with m.If(lif_beat):
                        m.d.sync += raw.eq(raw >> (p * b.width))
                    for q in range(p):
                        old_q = raw[q * b.width:(q + 1) * b.width]
                        m.d.comb += new[q].eq(Mux(k_accumulate, old_q + spikes[q], spikes[q]))
                else:
                    m.d.comb += [new[q].eq(spikes[q]) for q in range(p)]
                with m.If(lif_beat & (k_dst == src_names.index(b.name)) & ~k_is_attention):
                    m.d.comb += [wr.addr.eq(row_addr), wr.data.eq(Cat(*([new.as_value()] * chunks))),
                                 wr.en.eq(C(1, chunks) << g_out)]
                    for q in range(p):
                        m.d.comb += sums[q].eq(new[q])
            with m.If(lif_beat):
                m.d.sync += act.spikes.eq(act.spikes + sum(spikes[q] for q in range(p)))
            if taps:
                with m.If(lif_beat):
                    m.d.comb += [self.b_valid.eq(1), self.b_kind.eq(TAP_SPIKES),
                                 self.b_data.eq(Cat(spikes, Mux(k_accumulate, sums.as_value(), 0)))]

        # ---- attention unit plumbing
        if wta is not None:
            aop = attention_op(prog)
            length, dh, heads = att_spec.length, att_spec.head_dim, aop.heads
            h = Signal(range(heads + 1), name="h")
            j = Signal(range(length + 1), name="j")
            o = Signal(range(length + 1), name="o")
            t_base = Signal(range(max(b.rows for b in bufs) + 1), name="t_base")
            # the beat offered to the WTA unit: valid and kind are registers set in ATT_HOLD (equal
            # to "in ATT_SEND" and "j == L" there), so no state decode or counter compare sits in
            # front of the unit's accept logic
            send = Signal()
            send_kind = Signal()
            # the Q, K and V rows read, registered in ATT_HOLD: a block RAM's clock-to-output
            # (5.8 ns on an ECP5 DP16KD), the head and kind multiplexers and the unit's LUT-RAM
            # write would not fit one cycle; the multiplexers work on the registers
            att_rows = {name: Signal(len(rd_data[name].as_value()), name=f"att_{name}")
                        for name in dict.fromkeys((aop.q, aop.k, aop.v))}
            att_width = {name: prog.buffers[name].width for name in att_rows}

            def head_slice(name):
                row, w = att_rows[name], att_width[name]
                return Array(row[(hh * dh) * w:(hh * dh + dh) * w] for hh in range(heads))[h]
            m.d.comb += [wta.i_stream.valid.eq(send), wta.i_stream.payload.kind.eq(send_kind),
                         wta.i_stream.payload.qk.eq(Mux(send_kind == KIND_QUERY, head_slice(aop.q),
                                                        head_slice(aop.k))),
                         wta.i_stream.payload.v.eq(head_slice(aop.v)),
                         wta.o_stream.ready.eq(1)]
            wta_beat = wta.o_stream.valid
            a_wr = wr_ports[aop.dst]
            a_buf = prog.buffers[aop.dst]
            out_bits = wta.o_stream.payload.out.as_value()
            with m.If(wta_beat):
                m.d.sync += o.eq(o + 1)
                chunk_per_head = dh // p
                m.d.comb += [a_wr.addr.eq(t_base + o), a_wr.data.eq(Cat(*([out_bits] * (a_buf.channels // dh)))),
                             a_wr.en.eq(C((1 << chunk_per_head) - 1, a_buf.channels // p) << (h * chunk_per_head))]
                if taps:
                    m.d.comb += [self.b_valid.eq(1), self.b_kind.eq(TAP_ATTENTION),
                                 self.b_data.eq(wta.o_stream.payload.as_value())]

        # ---- the sequencer
        m.d.comb += self.busy.eq(1)
        # the op's cycle counter steps in every state that the cycle counter counts; OP_START (below,
        # later in statement order, so its assignment wins) restarts it at 2: OP_START and NEXT_OP
        m.d.sync += act.cycles.eq(act.cycles + 1)
        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += [self.busy.eq(0), self.i_stream.ready.eq(1)]
                with m.If(self.i_stream.valid):
                    m.d.sync += [sample[in_count].eq(self.i_stream.payload.value), in_count.eq(in_count + 1)]
                    with m.If(in_count == self.n_inputs - 1):
                        m.d.sync += [in_count.eq(0), pc.eq(0), cycles.eq(0)]
                        m.next = "OP_START"
            with m.State("OP_START"):
                m.d.sync += [cycles.eq(cycles + 1), t.eq(0), r.eq(0), row_addr.eq(0), g_out.eq(0)]
                m.d.sync += [act.cycles.eq(2), act.events.eq(0), act.spikes.eq(0)]
                if aspec is not None:
                    m.d.sync += [lif_base.eq(k_alif_base0), op_lif_base.eq(k_alif_base0)]
                else:
                    m.d.sync += lif_base.eq(0)
                if wta is not None:
                    m.d.sync += [h.eq(0), j.eq(0), o.eq(0), t_base.eq(0)]
                    with m.If(k_is_attention):
                        m.next = "ATT_READ"
                    with m.Else():
                        m.next = "ROW_READ"
                else:
                    m.next = "ROW_READ"
            with m.State("ROW_READ"):
                # the buffers read row_addr this cycle; their data is valid in ROW_HOLD
                m.d.sync += [cycles.eq(cycles + 1), lif_group.eq(lif_base)]
                if aspec is not None:
                    m.d.sync += param_group.eq(k_alif_pbase)
                if banked:
                    m.d.sync += row_wbase.eq(k_wbase + bank_off)
                m.next = "ROW_HOLD"
            with m.State("ROW_HOLD"):
                # every buffer's row -> old (the residuals of the write-back, and the source row):
                # the block RAMs' outputs go straight into registers, and the source multiplexer
                # and the nonzero compares work on them in ROW_LOAD
                m.d.sync += cycles.eq(cycles + 1)
                for b in bufs:
                    m.d.sync += old[b.name].eq(rd_data[b.name])
                if prog.input_kind != "pixels":
                    m.d.sync += [tok.eq(sample[r]), tok_pos.eq(prog.meta["vocab"] + r)]
                m.next = "ROW_LOAD"
            with m.State("ROW_LOAD"):
                m.d.sync += cycles.eq(cycles + 1)
                if prog.input_kind == "tokens":
                    m.d.sync += [tok_offset.eq(tok * k_groups), tok_pos_offset.eq(tok_pos * k_groups)]
                # the source row -> (values, nonzero mask)
                for b in bufs:
                    row = old[b.name]
                    with m.If(k_src == src_names.index(b.name)):
                        m.d.sync += mask.eq(Cat(*(row[i] != 0 for i in range(b.channels))))
                        m.d.sync += [vals[i].eq(row[i]) for i in range(b.channels)]
                with m.If(k_src == 0):
                    if prog.input_kind == "pixels":
                        nonzero = Cat(*(sample[i] != 0 for i in range(self.n_inputs)))
                        if row_mask is not None:
                            nonzero = nonzero & row_mask
                        m.d.sync += mask.eq(nonzero)
                        m.d.sync += [vals[i].eq(sample[i]) for i in range(self.n_inputs)]
                    else:
                        m.d.sync += mask.eq(0b11)           # the events (tok, 1) and (V + r, 1)
                        m.d.sync += [vals[i].eq(1) for i in range(cmax)]
                m.next = "SCAN"
            with m.State("SCAN"):
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(found):
                    with m.If(s1_free):
                        m.d.sync += [s1_valid.eq(1), s1_step.eq(0), s1_index.eq(index), mask.eq(mask & (mask - 1))]
                with m.Elif(k_reduce & (t != k_steps - 1)):
                    # a readout sums over time: the next time step's row adds into the same sums, once
                    # this step's events have all reached the MAC (each step then costs a formula of
                    # its own events only)
                    with m.If(pipe_empty):
                        m.d.sync += [t.eq(t + 1), row_addr.eq(row_addr + k_rows)]
                        m.next = "ROW_READ"
                with m.Elif(k_reduce_rows & (r != k_rows - 1)):
                    # a readout that also sums over the rows: the next row's steps add in too
                    with m.If(pipe_empty):
                        m.d.sync += [t.eq(0), r.eq(r + 1), row_addr.eq(r + 1)]
                        m.next = "ROW_READ"
                with m.Elif(s1_free):
                    m.d.sync += [s1_valid.eq(1), s1_step.eq(1)]
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(row_done):
                    m.d.sync += g_out.eq(0)
                    with m.If(k_reduce):
                        m.d.sync += [t.eq(0), r.eq(r + 1), row_addr.eq(r + 1)]
                        with m.If(r == k_rows - 1):
                            m.next = "NEXT_OP"
                        with m.Else():
                            m.next = "ROW_READ"
                    with m.Else():
                        m.d.sync += row_addr.eq(row_addr + 1)
                        with m.If(r == k_rows - 1):
                            m.d.sync += [r.eq(0), lif_base.eq(op_lif_base), t.eq(t + 1)]
                            with m.If(t == k_steps - 1):
                                m.next = "NEXT_OP"
                            with m.Else():
                                m.next = "ROW_READ"
                        with m.Else():
                            m.d.sync += [r.eq(r + 1), lif_base.eq(lif_base + k_groups)]
                            m.next = "ROW_READ"
            if wta is not None:
                with m.State("ATT_READ"):
                    # K and V rows (load phase) or the Q row (query phase) of row_addr
                    m.d.sync += cycles.eq(cycles + 1)
                    m.next = "ATT_HOLD"
                with m.State("ATT_HOLD"):
                    # the rows read -> the beat's registers
                    m.d.sync += cycles.eq(cycles + 1)
                    m.d.sync += [reg.eq(rd_data[name].as_value()) for name, reg in att_rows.items()]
                    m.d.sync += [send.eq(1), send_kind.eq(j == length)]
                    m.next = "ATT_SEND"
                with m.State("ATT_SEND"):
                    m.d.sync += cycles.eq(cycles + 1)
                    with m.If(wta.i_stream.ready):
                        m.d.sync += send.eq(0)
                        with m.If(j != length):
                            # a load beat: K, V row j
                            m.d.sync += j.eq(j + 1)
                            with m.If(j == length - 1):
                                m.d.sync += [row_addr.eq(t_base), r.eq(0)]
                            with m.Else():
                                m.d.sync += row_addr.eq(row_addr + 1)
                            m.next = "ATT_READ"
                        with m.Else():
                            # a query beat: Q row r
                            m.d.sync += [r.eq(r + 1), row_addr.eq(row_addr + 1)]
                            with m.If(r == length - 1):
                                m.next = "ATT_WAIT"
                            with m.Else():
                                m.next = "ATT_READ"
                with m.State("ATT_WAIT"):
                    m.d.sync += cycles.eq(cycles + 1)
                    with m.If((o == length) | ((o == length - 1) & wta_beat)):
                        m.d.sync += [o.eq(0), j.eq(0), r.eq(0)]
                        with m.If(h == heads - 1):
                            m.d.sync += [h.eq(0), t.eq(t + 1), t_base.eq(t_base + length),
                                         row_addr.eq(t_base + length)]
                            with m.If(t == k_steps - 1):
                                m.next = "NEXT_OP"
                            with m.Else():
                                m.next = "ATT_READ"
                        with m.Else():
                            m.d.sync += [h.eq(h + 1), row_addr.eq(t_base)]
                            m.next = "ATT_READ"
            with m.State("NEXT_OP"):
                m.d.sync += cycles.eq(cycles + 1)
                # the op's activity beat (its counters hold the whole op: cycles counted NEXT_OP ahead)
                m.d.comb += [self.a_valid.eq(1), self.a_kind.eq(TAP_ACTIVITY), self.a_data.eq(act.as_value())]
                with m.If(pc == n_ops - 1):
                    m.next = "STATUS"
                with m.Else():
                    m.d.sync += pc.eq(pc + 1)
                    m.next = "OP_START"
            with m.State("STATUS"):
                m.d.comb += [self.a_valid.eq(1), self.a_kind.eq(TAP_STATUS),
                             self.a_data.eq(Cat(cycles[:STATUS_WIDTH - 1], lif_overrun))]
                m.next = "IDLE"
        return m
