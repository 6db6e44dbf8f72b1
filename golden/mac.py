"""Event-driven multiply-accumulate engine ("mac"): the time-shared synaptic unit, in exact integers.

The engine holds three memories of P-lane words and obeys a stream of commands.
It is the arithmetic of one layer of a model run event by event: a layer with
N_in inputs and N_out = G P outputs keeps word ``base + i G + g`` =
``W[i, g P .. g P + P - 1]``; an input i with a non-zero value x is one
``EVENT(base + i G, x, G)``, the end of the layer's time step one
``STEP(bias_base, shift, G)``.

Memories
--------
* weights ``W``: ``weight_depth`` words of P signed Ww-bit weights, ``W[a][p]``;
* biases ``B``: ``bias_depth`` words of P signed Wb-bit biases, ``B[a][p]``;
* accumulators ``acc``: Gmax = ``max_groups`` words of P signed Wa-bit sums,
  all 0 at reset.

Integer mode (the hardware contract)
------------------------------------
Commands are executed in stream order; for every lane p = 0 .. P-1::

    EVENT(addr, value, groups):     for g = 0 .. groups-1:
        acc[g][p] = sat_Wa(acc[g][p] + value * W[addr + g][p])

    STEP(bias_addr, shift, groups):  for g = 0 .. groups-1, one output beat:
        current[p] = sat_Wo((acc[g][p] >> shift) + B[bias_addr + g][p])
        last       = (g == groups - 1)
    then acc[g][p] = 0 for g = 0 .. groups-1 (words g >= groups keep their sums)

    WRITE_W(addr, data):  W[addr][p] = data[p]
    WRITE_B(addr, data):  B[addr][p] = data[p]

* ``value`` is a signed Wx-bit integer; the product ``value * W`` is exact
  (Wx + Ww bits) and the sum is saturated to Wa bits after every addition,
  so the order of the events is part of the contract.
* ``>>`` is the arithmetic shift, ``floor(x / 2^shift)`` (``-7 >> 1 = -4``);
  the sum with the bias is exact, then saturated to Wo bits.

Valid commands (anything else is a ``ValueError`` naming the command index,
its kind and the field): ``1 <= groups <= Gmax``; ``addr + groups <=
weight_depth`` (EVENT), ``bias_addr + groups <= bias_depth`` (STEP);
``0 <= shift < 2^shift_width``; value, weights and biases within their signed
widths; write addresses inside their memory and P data values.

Command arrays (vector files)
-----------------------------
A program is stored as an int64 array of shape (n_commands, 5 + P), one row a
command: ``kind, addr, value, groups, shift, data[0] .. data[P-1]`` (the
fields of the hardware's input beat; ``addr`` is the bias address of a STEP
and a WRITE_B; fields a kind does not use are 0).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch

from . import fixed
from .spec import SpecBase, SpecError, check_int

#: command kinds (the ``kind`` field of the hardware's input beat)
EVENT, STEP, WRITE_W, WRITE_B = 0, 1, 2, 3
KIND_NAMES = {EVENT: "EVENT", STEP: "STEP", WRITE_W: "WRITE_W", WRITE_B: "WRITE_B"}
#: the columns of a command array before the P data columns
COMMAND_COLUMNS = ("kind", "addr", "value", "groups", "shift")


@dataclass(frozen=True)
class MACSpec(SpecBase):
    """An event-driven multiply-accumulate engine: weight, bias and accumulator memories of P lanes.

    Attributes
    ----------
    lanes : P, products (and accumulators) per cycle, 1 .. 64.
    weight_depth : words of the weight memory (one word = P signed weights), 1 .. 65536.
    weight_width : Ww, bits of a signed weight, 2 .. 32.
    value_width : Wx, bits of an event's signed value, 1 .. 16.
    max_groups : Gmax, accumulator words (the most output groups of one layer), 1 .. 4096.
    acc_width : Wa, bits of a signed accumulator, 2 .. 48 (saturating).
    bias_depth : words of the bias memory (one word = P signed biases), 1 .. 65536.
    bias_width : Wb, bits of a signed bias, 2 .. 48.
    out_width : Wo, bits of a signed output current, 2 .. 48 (saturating).
    shift_width : bits of a STEP's ``shift`` field, 1 .. 6 (shifts 0 .. 2^shift_width - 1).
    """

    block = "mac"

    lanes: int = 4
    weight_depth: int = 256
    weight_width: int = 8
    value_width: int = 8
    max_groups: int = 16
    acc_width: int = 32
    bias_depth: int = 16
    bias_width: int = 24
    out_width: int = 24
    shift_width: int = 5

    def __post_init__(self):
        name = "MACSpec"
        check_int(name, "lanes", self.lanes, 1, 64)
        check_int(name, "weight_depth", self.weight_depth, 1, 65536)
        check_int(name, "weight_width", self.weight_width, 2, 32)
        check_int(name, "value_width", self.value_width, 1, 16)
        check_int(name, "max_groups", self.max_groups, 1, 4096)
        check_int(name, "acc_width", self.acc_width, 2, 48)
        check_int(name, "bias_depth", self.bias_depth, 1, 65536)
        check_int(name, "bias_width", self.bias_width, 2, 48)
        check_int(name, "out_width", self.out_width, 2, 48)
        check_int(name, "shift_width", self.shift_width, 1, 6)

    @property
    def weight_address_bits(self) -> int:
        """Bits of a weight-memory address (0 .. weight_depth - 1)."""
        return fixed.bits_for(self.weight_depth - 1)

    @property
    def bias_address_bits(self) -> int:
        """Bits of a bias-memory address (0 .. bias_depth - 1)."""
        return fixed.bits_for(self.bias_depth - 1)

    @property
    def address_bits(self) -> int:
        """Bits of the input beat's ``addr`` field: a weight or a bias address."""
        return max(self.weight_address_bits, self.bias_address_bits)

    @property
    def group_bits(self) -> int:
        """Bits of the input beat's ``groups`` field (1 .. Gmax)."""
        return fixed.bits_for(self.max_groups)

    @property
    def data_width(self) -> int:
        """Bits of one lane of the input beat's ``data`` field: a weight or a bias, max(Ww, Wb)."""
        return max(self.weight_width, self.bias_width)

    @property
    def product_width(self) -> int:
        """Bits of an exact product value * weight: Wx + Ww."""
        return self.value_width + self.weight_width

    @property
    def max_shift(self) -> int:
        return (1 << self.shift_width) - 1


# ---------------------------------------------------------------------------
# Commands


class Event(NamedTuple):
    """EVENT: add ``value`` times weight words ``addr .. addr + groups - 1`` into accumulators 0 .. groups-1."""

    addr: int
    value: int
    groups: int = 1
    kind = EVENT


class Step(NamedTuple):
    """STEP: emit ``groups`` output beats ``sat((acc >> shift) + bias)`` and clear those accumulators."""

    bias_addr: int
    shift: int
    groups: int
    kind = STEP


class WriteW(NamedTuple):
    """WRITE_W: store P weights ``data`` in weight word ``addr``."""

    addr: int
    data: tuple
    kind = WRITE_W


class WriteB(NamedTuple):
    """WRITE_B: store P biases ``data`` in bias word ``addr``."""

    addr: int
    data: tuple
    kind = WRITE_B


Command = Event | Step | WriteW | WriteB


def _is_int(x) -> bool:
    return hasattr(x, "__index__") and not isinstance(x, bool)


def _field(index: int, kind: int, name: str, value, lo: int, hi: int, why: str = "") -> None:
    if not _is_int(value):
        raise ValueError(f"command {index} ({KIND_NAMES[kind]}): {name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        extra = f" ({why})" if why else ""
        raise ValueError(f"command {index} ({KIND_NAMES[kind]}): {name} = {value} is out of range; "
                         f"allowed: {lo} .. {hi}{extra}")


def _data(spec: MACSpec, index: int, kind: int, data, width: int) -> tuple:
    values = tuple(int(v) if hasattr(v, "__index__") else v for v in data)
    if len(values) != spec.lanes:
        raise ValueError(f"command {index} ({KIND_NAMES[kind]}): data has {len(values)} values; "
                         f"the spec has lanes = {spec.lanes}")
    lo, hi = fixed.int_min(width, True), fixed.int_max(width, True)
    for p, v in enumerate(values):
        _field(index, kind, f"data[{p}]", v, lo, hi, f"{width}-bit signed")
    return values


def check_command(spec: MACSpec, index: int, cmd) -> Command:
    """One command, validated against the spec (``ValueError`` naming index, kind and field)."""
    kind = getattr(cmd, "kind", None)
    if not isinstance(cmd, (Event, Step, WriteW, WriteB)):
        raise ValueError(f"command {index}: {cmd!r} is not an Event, Step, WriteW or WriteB")
    gmax = spec.max_groups
    if kind == EVENT:
        _field(index, kind, "groups", cmd.groups, 1, gmax, "max_groups")
        _field(index, kind, "addr", cmd.addr, 0, spec.weight_depth - cmd.groups,
               f"addr + groups = {cmd.addr} + {cmd.groups} must be <= weight_depth = {spec.weight_depth}")
        _field(index, kind, "value", cmd.value, fixed.int_min(spec.value_width, True),
               fixed.int_max(spec.value_width, True), f"{spec.value_width}-bit signed")
        return Event(int(cmd.addr), int(cmd.value), int(cmd.groups))
    if kind == STEP:
        _field(index, kind, "groups", cmd.groups, 1, gmax, "max_groups")
        _field(index, kind, "bias_addr", cmd.bias_addr, 0, spec.bias_depth - cmd.groups,
               f"bias_addr + groups = {cmd.bias_addr} + {cmd.groups} must be <= bias_depth = {spec.bias_depth}")
        _field(index, kind, "shift", cmd.shift, 0, spec.max_shift, f"shift_width = {spec.shift_width}")
        return Step(int(cmd.bias_addr), int(cmd.shift), int(cmd.groups))
    if kind == WRITE_W:
        _field(index, kind, "addr", cmd.addr, 0, spec.weight_depth - 1, "weight_depth")
        return WriteW(int(cmd.addr), _data(spec, index, kind, cmd.data, spec.weight_width))
    _field(index, kind, "addr", cmd.addr, 0, spec.bias_depth - 1, "bias_depth")
    return WriteB(int(cmd.addr), _data(spec, index, kind, cmd.data, spec.bias_width))


def commands_from_array(spec: MACSpec, array) -> list[Command]:
    """Rows ``kind, addr, value, groups, shift, data[P]`` (module docstring) -> command objects (unchecked)."""
    t = torch.as_tensor(array)
    width = len(COMMAND_COLUMNS) + spec.lanes
    if t.dim() != 2 or t.shape[1] != width:
        raise ValueError(f"a command array must have shape (n_commands, {width}) = (n, 5 + lanes); "
                         f"got {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"a command array must hold integers, got dtype {t.dtype}")
    out = []
    for index, row in enumerate(t.to(torch.int64).tolist()):
        kind, addr, value, groups, shift, *data = row
        if kind == EVENT:
            out.append(Event(addr, value, groups))
        elif kind == STEP:
            out.append(Step(addr, shift, groups))
        elif kind == WRITE_W:
            out.append(WriteW(addr, tuple(data)))
        elif kind == WRITE_B:
            out.append(WriteB(addr, tuple(data)))
        else:
            raise ValueError(f"command {index}: kind = {kind} is not one of "
                             f"{', '.join(f'{k} ({n})' for k, n in KIND_NAMES.items())}")
    return out


def commands_to_array(spec: MACSpec, commands) -> torch.Tensor:
    """Command objects -> the int64 (n_commands, 5 + P) array of the module docstring."""
    rows = []
    zero = [0] * spec.lanes
    for cmd in check_commands(spec, commands):
        if cmd.kind == EVENT:
            rows.append([EVENT, cmd.addr, cmd.value, cmd.groups, 0, *zero])
        elif cmd.kind == STEP:
            rows.append([STEP, cmd.bias_addr, 0, cmd.groups, cmd.shift, *zero])
        else:
            rows.append([cmd.kind, cmd.addr, 0, 0, 0, *cmd.data])
    return torch.tensor(rows, dtype=torch.int64).reshape(len(rows), len(COMMAND_COLUMNS) + spec.lanes)


def check_commands(spec: MACSpec, commands) -> list[Command]:
    """A command list (objects) or array (rows), validated: a list of command objects."""
    if isinstance(commands, torch.Tensor) or hasattr(commands, "__array__"):
        commands = commands_from_array(spec, commands)
    return [check_command(spec, i, c) for i, c in enumerate(commands)]


def _check_memory(spec: MACSpec, words, depth: int, width: int, what: str, *, exact: bool = True) -> torch.Tensor:
    t = torch.as_tensor(words) if not isinstance(words, torch.Tensor) else words
    if t.numel() == 0 and not exact:
        return torch.zeros(depth, spec.lanes, dtype=torch.int64)
    if t.dim() != 2 or t.shape[1] != spec.lanes or (t.shape[0] != depth if exact else t.shape[0] > depth):
        need = f"({depth}, {spec.lanes})" if exact else f"(at most {depth}, {spec.lanes})"
        raise ValueError(f"{what} have shape {tuple(t.shape)}; the spec needs {need}")
    t = fixed.check_range(t, width, True, what)
    if t.shape[0] < depth:
        t = torch.cat([t, torch.zeros(depth - t.shape[0], spec.lanes, dtype=torch.int64)])
    return t


def check_weights(spec: MACSpec, weights, *, exact: bool = True) -> torch.Tensor:
    """Weights as an int64 (weight_depth, P) tensor (``exact=False``: fewer words, padded with 0)."""
    return _check_memory(spec, weights, spec.weight_depth, spec.weight_width, "weights", exact=exact)


def check_biases(spec: MACSpec, biases, *, exact: bool = True) -> torch.Tensor:
    """Biases as an int64 (bias_depth, P) tensor (``exact=False``: fewer words, padded with 0)."""
    return _check_memory(spec, biases, spec.bias_depth, spec.bias_width, "biases", exact=exact)


# ---------------------------------------------------------------------------
# The golden function


def mac_run(spec: MACSpec, weights, biases, commands) -> torch.Tensor:
    """Exact integer engine (module docstring): the output beats, an int64 (n_beats, P) tensor.

    Parameters
    ----------
    weights : (weight_depth, P) integers, the weight memory at the start.
    biases : (bias_depth, P) integers, the bias memory at the start.
    commands : command objects (``Event``, ``Step``, ``WriteW``, ``WriteB``) or a command array.

    Returns
    -------
    One row per output beat, in order: STEP k contributes ``groups_k`` rows
    ``sat_Wo((acc[g] >> shift) + B[bias_addr + g])``, g = 0 .. groups_k - 1.
    """
    w = check_weights(spec, weights).clone()
    b = check_biases(spec, biases).clone()
    program = check_commands(spec, commands)
    acc = torch.zeros(spec.max_groups, spec.lanes, dtype=torch.int64)  # 0 at reset
    beats = []
    for cmd in program:
        if cmd.kind == EVENT:
            g = cmd.groups
            # every word g is its own accumulator, so the words of one event are independent
            acc[:g] = fixed.add_sat(acc[:g], cmd.value * w[cmd.addr:cmd.addr + g], spec.acc_width)
        elif cmd.kind == STEP:
            g = cmd.groups
            shifted = fixed.asr(acc[:g], cmd.shift)
            beats.append(fixed.add_sat(shifted, b[cmd.bias_addr:cmd.bias_addr + g], spec.out_width))
            acc[:g] = 0
        elif cmd.kind == WRITE_W:
            w[cmd.addr] = torch.tensor(cmd.data, dtype=torch.int64)
        else:
            b[cmd.addr] = torch.tensor(cmd.data, dtype=torch.int64)
    if not beats:
        return torch.zeros(0, spec.lanes, dtype=torch.int64)
    return torch.cat(beats)


def mac_last(spec: MACSpec, commands) -> torch.Tensor:
    """The ``last`` flag of every output beat (1 on beat g = groups - 1 of each STEP), int64 (n_beats,)."""
    flags = []
    for cmd in check_commands(spec, commands):
        if cmd.kind == STEP:
            flags += [0] * (cmd.groups - 1) + [1]
    return torch.tensor(flags, dtype=torch.int64)


def mac_count(spec: MACSpec, commands) -> int:
    """Multiply-accumulates a program performs: P per weight word of every EVENT."""
    return spec.lanes * sum(c.groups for c in check_commands(spec, commands) if c.kind == EVENT)


# ---------------------------------------------------------------------------
# Reference vectors


def random_weights(spec: MACSpec, seed: int = 0) -> torch.Tensor:
    """Seeded (weight_depth, P) weights over the whole Ww-bit range (both extremes included)."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = fixed.int_min(spec.weight_width, True), fixed.int_max(spec.weight_width, True)
    w = torch.randint(lo, hi + 1, (spec.weight_depth, spec.lanes), generator=gen)
    w.view(-1)[:2] = torch.tensor([lo, hi])[: w.numel()]
    return w


def _bias_range(spec: MACSpec) -> tuple[int, int]:
    width = min(spec.bias_width, spec.out_width) - 1
    return fixed.int_min(width, True), fixed.int_max(width, True)


def random_biases(spec: MACSpec, seed: int = 0) -> torch.Tensor:
    """Seeded (bias_depth, P) biases of up to half the output range (min(Wb, Wo) - 1 bits), so that
    ``(acc >> shift) + bias`` usually shows the accumulator; with at least 8 values, the first two
    (word 0, lanes 0 and 1 when P > 1) are the Wb-bit extremes, whose outputs saturate."""
    gen = torch.Generator().manual_seed(seed + 1)
    lo, hi = _bias_range(spec)
    b = torch.randint(lo, hi + 1, (spec.bias_depth, spec.lanes), generator=gen)
    extremes = torch.tensor([fixed.int_min(spec.bias_width, True), fixed.int_max(spec.bias_width, True)])
    if b.numel() >= 8:
        b.view(-1)[:2] = extremes
    return b


def random_program(spec: MACSpec, seed: int = 0, *, layers: int = 8, events: int = 32, writes: float = 0.05,
                   groups: int | None = None) -> list[Command]:
    """Seeded valid commands, layer by layer (Python's ``random.Random(seed)``, so any machine agrees).

    Each layer picks G (``groups``, or uniform in 1 .. Gmax), sends ``events``
    EVENTs of G words (random addresses, values over the whole Wx range, about
    one in eight repeating the previous address: back-to-back events on the same
    words), then a STEP of G groups; one STEP in five drains a different number
    of groups, so some accumulator words carry into the next layer. Between
    commands, with probability ``writes`` each, a WRITE_W or WRITE_B stores a
    random word (weights over the whole range, biases as ``random_biases``), often
    at an address the layer uses next (run-time loading).
    A STEP's shift brings the layer's typical sum (about sqrt(events) products
    of Wx + Ww - 2 bits) to a quarter of the Wo-bit output range, +- 2, clamped to
    the field; one STEP in ten uses the largest shift the field holds, one in ten
    shift 0 (outputs that saturate when Wa > Wo).
    """
    if layers < 1 or events < 0:
        raise ValueError(f"need layers >= 1 and events >= 0, got {layers}, {events}")
    if not 0.0 <= writes <= 1.0:
        raise ValueError(f"writes must be a probability in [0, 1], got {writes}")
    if groups is not None and not 1 <= groups <= spec.max_groups:
        raise ValueError(f"groups = {groups} is out of range; allowed: 1 .. {spec.max_groups}")
    rng = random.Random(seed)
    vlo, vhi = fixed.int_min(spec.value_width, True), fixed.int_max(spec.value_width, True)
    wlo, whi = fixed.int_min(spec.weight_width, True), fixed.int_max(spec.weight_width, True)
    blo, bhi = _bias_range(spec)
    gcap = min(spec.max_groups, spec.weight_depth, spec.bias_depth)
    typical_bits = min(spec.acc_width - 1, spec.product_width - 2 + (max(events, 1).bit_length() + 1) // 2)
    base_shift = typical_bits - (spec.out_width - 3)
    out: list[Command] = []

    def maybe_write(addr: int, bias_addr: int):
        if rng.random() < writes:
            if rng.random() < 0.5:
                out.append(WriteW(addr if rng.random() < 0.7 else rng.randrange(spec.weight_depth),
                                  tuple(rng.randint(wlo, whi) for _ in range(spec.lanes))))
            else:
                out.append(WriteB(bias_addr if rng.random() < 0.7 else rng.randrange(spec.bias_depth),
                                  tuple(rng.randint(blo, bhi) for _ in range(spec.lanes))))

    for _ in range(layers):
        g = min(groups, gcap) if groups is not None else rng.randint(1, gcap)
        bias_addr = rng.randrange(spec.bias_depth - g + 1)
        addr = rng.randrange(spec.weight_depth - g + 1)
        for _ in range(events):
            if rng.random() >= 0.125:  # else: the same words again, back to back
                addr = rng.randrange(spec.weight_depth - g + 1)
            maybe_write(addr, bias_addr)
            out.append(Event(addr, rng.randint(vlo, vhi), g))
        maybe_write(addr, bias_addr)
        step_groups = g if rng.random() >= 0.2 else rng.randint(1, gcap)
        bias_addr = min(bias_addr, spec.bias_depth - step_groups)
        toss = rng.random()
        if toss < 0.1:
            shift = spec.max_shift
        elif toss < 0.2:
            shift = 0
        else:
            shift = min(max(base_shift + rng.randint(-2, 2), 0), spec.max_shift)
        out.append(Step(bias_addr, shift, step_groups))
    return out


def mac_reference(spec: MACSpec, seed: int = 0, *, layers: int = 8, events: int = 32, writes: float = 0.05,
                  groups: int | None = None) -> dict[str, torch.Tensor]:
    """Arrays of a mac vector file: ``weights`` (weight_depth, P), ``biases`` (bias_depth, P), ``commands``
    (n_commands, 5 + P) and ``outputs`` (n_beats, P), all int64; the program from ``random_program``."""
    weights, biases = random_weights(spec, seed), random_biases(spec, seed)
    commands = commands_to_array(spec, random_program(spec, seed, layers=layers, events=events, writes=writes,
                                                      groups=groups))
    return {"weights": weights, "biases": biases, "commands": commands,
            "outputs": mac_run(spec, weights, biases, commands)}


__all__ = ["COMMAND_COLUMNS", "EVENT", "STEP", "WRITE_B", "WRITE_W", "Event", "MACSpec", "SpecError", "Step",
           "WriteB", "WriteW", "check_biases", "check_commands", "check_weights", "commands_from_array",
           "commands_to_array", "mac_count", "mac_last", "mac_reference", "mac_run", "random_biases",
           "random_program", "random_weights"]
