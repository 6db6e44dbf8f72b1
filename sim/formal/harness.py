"""The formal harness: a block between a free environment and the property checkers.

``Harness(fblock, spec, prop)`` instantiates the block's Amaranth component (built from the
same spec object as the golden model) and surrounds it with:

* **free inputs**: ``i_stream.valid``, ``i_stream.payload`` and ``o_stream.ready`` are
  top-level ports of the emitted RTLIL, so the solver picks any value on every cycle;
* **environment assumptions** (``Assume``): the input stream keeps ``valid`` high and its
  payload stable until ``ready`` (the stream rule of ``amaranth.lib.stream``), plus the
  block's own input constraints (the commands the golden model accepts, value ranges);
* **shadow state** shared by the properties: ``owed``, the output beats the accepted input
  beats still owe (``owed(t+1) = owed(t) + credit(t) [accept] - 1 [emit]``), history
  registers of the handshakes, run counters ("o_stream.ready was high for the last n
  cycles"), and block-specific trackers (a group counter, a scoreboard of expected beats);
* **one property** (``Assert``): each property is proven in its own solver run, so a report
  line says which one passed or failed, and a counterexample trace shows only its failure.

Time: every register here starts at its ``init`` value (the design's reset state: the
``sync`` domain has no reset signal, the solver starts from the initial values), ``past``
values of "before cycle 0" read 0, so a property that looks back never fires on cycles
that did not happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from amaranth import Array, ClockDomain, Elaboratable, Module, Mux, Signal, Value, signed
from amaranth.hdl import Assert, Assume
from amaranth.lib import data

from golden import fixed


@dataclass(frozen=True)
class Property:
    """One formal property of a block.

    ``check(ctx)`` adds the property's ``Assert`` statements to ``ctx.m``; ``depth(spec)`` is
    the BMC depth (cycles from reset) of the default run: past the pipeline plus a few beats;
    ``induction``: whether k-induction closes for it (then ``spikeforge prove --induction``
    proves it for every depth).
    """

    name: str
    summary: str
    check: Callable[["Ctx"], None]
    depth: Callable[[Any], int]
    induction: bool = False
    #: whether the property applies to a spec (e.g. the synapse's datapath: precomputed weights only)
    applies: Callable[[Any], bool] = lambda spec: True


class Ctx:
    """What a property sees: the module, the spec, the handshakes and the shadow state."""

    def __init__(self, m: Module, spec, i_valid, i_ready, i_payload, o_valid, o_ready, o_payload):
        self.m, self.spec = m, spec
        self.i_valid, self.i_ready, self.i_payload = i_valid, i_ready, i_payload
        self.o_valid, self.o_ready, self.o_payload = o_valid, o_ready, o_payload
        self.accept = Signal(name="h_accept")
        self.emit = Signal(name="h_emit")
        m.d.comb += [self.accept.eq(i_valid & i_ready), self.emit.eq(o_valid & o_ready)]
        #: block trackers put their shadow signals here (group counter, scoreboard, ...)
        self.extra: dict[str, Any] = {}
        self._n = 0

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"h_{stem}_{self._n}"

    def assert_(self, test, name: str = "") -> None:
        self.m.d.comb += Assert(test, name or None)

    def assume(self, test, name: str = "") -> None:
        self.m.d.comb += Assume(test, name or None)

    def reg(self, value, name: str = "past"):
        """``value`` one cycle ago (0 in cycle 0)."""
        value = Value.cast(value)
        r = Signal(value.shape(), name=self._name(name))
        self.m.d.sync += r.eq(value)
        return r

    def history(self, value, n: int, name: str = "hist") -> list:
        """``[value, value 1 cycle ago, ..., value n cycles ago]`` (0 before cycle 0)."""
        out = [Value.cast(value)]
        for _ in range(n):
            out.append(self.reg(out[-1], name))
        return out

    def held(self, value, n: int, name: str = "run"):
        """1 iff ``value`` was high in each of the last ``n`` cycles (the current one not counted)."""
        if n <= 0:
            return Value.cast(1)
        run = Signal(range(n + 1), name=self._name(name))
        self.m.d.sync += run.eq(Mux(value, Mux(run == n, n, run + 1), 0))
        return run == n

    def since(self, event, limit: int, name: str = "since"):
        """Cycles since ``event`` was last high (1 in the cycle after it), saturating at ``limit``;
        ``limit`` before the first event."""
        count = Signal(range(limit + 1), init=limit, name=self._name(name))
        self.m.d.sync += count.eq(Mux(event, 1, Mux(count == limit, limit, count + 1)))
        return count

    def cycle(self, limit: int):
        """The cycle number, saturating at ``limit``."""
        count = Signal(range(limit + 1), name=self._name("cycle"))
        self.m.d.sync += count.eq(Mux(count == limit, limit, count + 1))
        return count

    def held_since_accept(self, value, name: str = "clean"):
        """1 iff ``value`` was high in every cycle from the last accept (included) to the last
        cycle; 1 before the first accept only if it was high in every cycle so far."""
        bad = Signal(name=self._name(name))
        self.m.d.sync += bad.eq(Mux(self.accept, ~value, bad | ~value))
        return ~bad


class Scoreboard:
    """In-order expected output beats: pushed when the input beat that owes them is accepted,
    compared with the payload of every emitted beat.

    ``push(entries)``: a list of ``(enable, value)``; the enables form a prefix (entry e is
    pushed iff e < n), all pushed on the accept edge in order. ``head`` is the oldest entry.
    """

    def __init__(self, ctx: Ctx, shape, depth: int, name: str = "sb"):
        size = 1
        while size < depth:
            size *= 2
        self.ctx, self.size = ctx, size
        self.shape = shape
        self.slots = [Signal(shape, name=ctx._name(f"{name}_slot")) for _ in range(size)]
        bits = max(1, (size - 1).bit_length())
        self.wr = Signal(bits, name=ctx._name(f"{name}_wr"))
        self.rd = Signal(bits, name=ctx._name(f"{name}_rd"))
        self.head = Array(self.slots)[self.rd] if size > 1 else self.slots[0]
        self._pushed = False

    def push(self, entries) -> None:
        assert not self._pushed, "one push per scoreboard"
        self._pushed = True
        m, ctx, size = self.ctx.m, self.ctx, self.size
        count = 0
        for e, (enable, value) in enumerate(entries):
            count = count + Value.cast(enable)
            for s in range(size):
                with m.If(ctx.accept & enable & (((self.wr + e) % size) == s)):
                    m.d.sync += self.slots[s].eq(value)
        with m.If(ctx.accept):
            m.d.sync += self.wr.eq(self.wr + count)
        with m.If(ctx.emit):
            m.d.sync += self.rd.eq(self.rd + 1)

    def check(self, got) -> None:
        """On every emitted beat: ``got`` == the oldest expected beat."""
        head = self.head.as_value() if hasattr(self.head, "as_value") else Value.cast(self.head)
        got = got.as_value() if hasattr(got, "as_value") else Value.cast(got)
        with self.ctx.m.If(self.ctx.emit):
            self.ctx.assert_(got == head, "scoreboard")


def sat_value(m: Module, total, width: int, overflow: str = "saturate", name: str = "sat"):
    """sat_W / wrap_W of an exact signed value (golden ``fixed.fit``), as a W-bit signed signal:
    written as comparisons with the rails (not the hardware's top-bit test)."""
    out = Signal(signed(width), name=name)
    lo, hi = fixed.int_min(width, True), fixed.int_max(width, True)
    if overflow == "saturate":
        m.d.comb += out.eq(Mux(total > hi, hi, Mux(total < lo, lo, total)))
    else:
        m.d.comb += out.eq(total[:width])
    return out


@dataclass
class Mutation:
    """A deliberately broken block, for the tests that show a property catches a bug.

    ``build(spec)`` may return a different component (e.g. built from a spec with ``overflow
    = "wrap"``); ``connect(ctx_m, dut_o, o_ready)`` returns the (valid, payload) the properties
    see, and drives the block's ``o_stream.ready`` (the default passes the stream through).
    """

    name: str
    build: Callable[[Any], Any] | None = None
    connect: Callable[..., tuple] | None = None
    note: str = ""
    params: dict = field(default_factory=dict)


def flip_bit(field_path: tuple, bit: int, when: Callable[[Any], Any] | None = None, name: str = "flip-bit"):
    """Invert bit ``bit`` of the output payload field ``field_path`` (e.g. ("membrane", 0)) on
    every beat where ``when(payload)`` holds (default: always)."""

    def connect(m, dut_o, o_ready):
        payload = Signal(dut_o.payload.shape(), name="mut_payload")
        target = dut_o.payload
        for part in field_path:
            target = target[part] if isinstance(part, int) else getattr(target, part)
        mine = payload
        for part in field_path:
            mine = mine[part] if isinstance(part, int) else getattr(mine, part)
        cond = 1 if when is None else when(dut_o.payload)
        m.d.comb += payload.eq(dut_o.payload)
        bits = Value.cast(target)
        flipped = bits ^ (Mux(cond, 1, 0) << bit)
        m.d.comb += Value.cast(mine).eq(flipped)
        m.d.comb += dut_o.ready.eq(o_ready)
        return dut_o.valid, payload

    return Mutation(name, connect=connect, note=f"bit {bit} of {'.'.join(map(str, field_path))} inverted")


def drop_beat(index: int = 1, name: str = "drop-beat"):
    """Swallow output beat number ``index`` (0-based): the block sees it taken, nobody sees it."""

    def connect(m, dut_o, o_ready):
        count = Signal(range(index + 2), name="mut_count")
        drop = count == index
        with m.If(dut_o.valid & (dut_o.ready) & (count <= index)):
            m.d.sync += count.eq(count + 1)
        m.d.comb += dut_o.ready.eq(o_ready | drop)
        return dut_o.valid & ~drop, dut_o.payload

    return Mutation(name, connect=connect, note=f"output beat {index} dropped")


def valid_glitch(name: str = "valid-glitch"):
    """Drop ``o_stream.valid`` in the second cycle of every stall (valid high, ready low)."""

    def connect(m, dut_o, o_ready):
        stalled = Signal(name="mut_stalled")
        m.d.sync += stalled.eq(dut_o.valid & ~o_ready & ~stalled)
        m.d.comb += dut_o.ready.eq(o_ready & ~stalled)
        return dut_o.valid & ~stalled, dut_o.payload

    return Mutation(name, connect=connect, note="valid falls for a cycle during a stall")


class Harness(Elaboratable):
    """A block, its free environment and one property (module docstring)."""

    def __init__(self, fblock, spec, prop: Property, mutation: Mutation | None = None):
        self.fblock, self.spec, self.prop, self.mutation = fblock, spec, prop, mutation
        build = mutation.build if mutation is not None and mutation.build is not None else fblock.component
        self.dut = build(spec)
        i = self.dut.i_stream
        self.free_valid = Signal(name="env_i_valid")
        self.free_payload = Signal(len(i.payload.as_value()), name="env_i_payload")
        self.free_ready = Signal(name="env_o_ready")

    def ports(self) -> list:
        return [self.free_valid, self.free_payload, self.free_ready]

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync", reset_less=True)
        m.submodules.dut = dut = self.dut
        i, o = dut.i_stream, dut.o_stream
        m.d.comb += [i.valid.eq(self.free_valid), i.payload.eq(self.free_payload)]
        if self.mutation is not None and self.mutation.connect is not None:
            o_valid, o_payload = self.mutation.connect(m, o, self.free_ready)
        else:
            m.d.comb += o.ready.eq(self.free_ready)
            o_valid, o_payload = o.valid, o.payload
        ctx = Ctx(m, self.spec, i.valid, i.ready, i.payload, o_valid, self.free_ready, o_payload)
        ctx.harness = self

        # the stream rule on the input: valid held and payload stable until the handshake
        waiting = ctx.reg(i.valid & ~i.ready, "in_wait")
        held_payload = ctx.reg(i.payload.as_value(), "in_payload")
        ctx.assume(~waiting | (i.valid & (i.payload.as_value() == held_payload)), "input_stream_rule")

        self.fblock.environment(ctx)
        self.fblock.track(ctx)
        credit = Value.cast(self.fblock.credit(ctx))
        cap = self.fblock.capacity(self.spec)
        top = cap + self.fblock.max_credit(self.spec) + 1
        owed = Signal(range(top + 1), name="h_owed")
        # emitted beyond what was owed wraps below 0 to a large value: `no_spurious` fires first
        m.d.sync += owed.eq(owed + Mux(ctx.accept, credit, 0) - ctx.emit)
        ctx.owed, ctx.credit = owed, credit

        self.prop.check(ctx)
        return m


# ---------------------------------------------------------------------------
# The stream-contract properties every block has


def check_valid_held(ctx: Ctx) -> None:
    """o_stream: once valid, valid stays high and the payload stable until ready."""
    stalled = ctx.reg(ctx.o_valid & ~ctx.o_ready, "out_stall")
    payload = ctx.o_payload.as_value() if hasattr(ctx.o_payload, "as_value") else ctx.o_payload
    before = ctx.reg(payload, "out_payload")
    with ctx.m.If(stalled):
        ctx.assert_(ctx.o_valid, "valid_held")
        ctx.assert_(payload == before, "payload_stable")


def check_no_spurious(ctx: Ctx) -> None:
    """Every output beat is owed by an accepted input beat (emitted <= accepted x beats per input)."""
    with ctx.m.If(ctx.emit):
        ctx.assert_(ctx.owed != 0, "no_spurious")


def check_bounded(fblock):
    def check(ctx: Ctx) -> None:
        ctx.assert_(ctx.owed <= fblock.capacity(ctx.spec), "bounded")
    return check


def check_drains(fblock):
    def check(ctx: Ctx) -> None:
        quiet = ctx.held(ctx.o_ready & ~ctx.accept, fblock.drain(ctx.spec), "quiet")
        with ctx.m.If(quiet & fblock.drain_condition(ctx)):
            ctx.assert_(ctx.owed == 0, "drains")
    return check


def stream_properties(fblock, depth: Callable[[Any], int]) -> list[Property]:
    """valid_held, no_spurious, bounded, drains (see ``docs/architecture.md``, formal section)."""
    return [
        Property("valid_held", "o_stream valid held and payload stable until ready", check_valid_held, depth,
                 induction=True),
        Property("no_spurious", "no output beat that no accepted input owes", check_no_spurious, depth),
        Property("bounded", "beats owed never exceed the block's buffering (back-pressure holds the input)",
                 check_bounded(fblock), depth),
        Property("drains", "with ready held high and no input, every owed beat leaves within the drain "
                 "bound (none lost)", check_drains(fblock), depth),
    ]


def as_bits(value):
    return value.as_value() if isinstance(value, data.View) else Value.cast(value)


def check_ready_interval(ctx: Ctx, interval, limit: int) -> None:
    """The input side of a block whose ``i_stream.ready`` is a register: with ``o_stream.ready``
    high from the last accept on, ``i_stream.ready`` is low for ``interval - 1`` cycles after
    an accept and high from ``interval`` cycles after it until the next accept (``interval``:
    a value of the accepted payload, captured at the accept; high before the first accept)."""
    last = Signal(range(limit + 1), name=ctx._name("interval"))
    with ctx.m.If(ctx.accept):
        ctx.m.d.sync += last.eq(interval)
    since = ctx.since(ctx.accept, limit, "since")
    with ctx.m.If(ctx.held_since_accept(ctx.o_ready)):
        ctx.assert_(ctx.i_ready == (since >= last), "interval")
