"""Leaky integrate-and-fire neurons: the spec, the exact integer model and the float model.

Integer mode (the hardware contract)
------------------------------------
State per neuron: membrane ``v`` (Wv-bit signed) and refractory counter ``r``
(0 .. R). One time step with input current ``i`` (Wi-bit signed)::

    leak(v) = v - (v >> s)                  leak_mode = "shift"   (beta = 1 - 2^-s)
            = (v * b) >> F                  leak_mode = "multiply" (beta = b / 2^F)
    active  = (r == 0)
    h       = fit_Wv(leak(v) + i)  if active      (saturate by default, or wrap)
            = leak(v)               otherwise     (input ignored while refractory)
    spike   = active and h >= theta
    v'      = h - theta   if spike and reset_mode == "subtract"
            = 0           if spike and reset_mode == "zero"
            = h           otherwise (also reset_mode == "none")
    r'      = R if spike else max(r - 1, 0)

``>>`` is the arithmetic shift (floor). ``leak(v)`` always fits Wv bits because
|leak(v)| <= |v|; ``h - theta`` cannot overflow because h >= theta > 0. Every
sequence starts from v = 0, r = 0.

Beat level (the hardware's stream; ``lif_run_beats``)
-----------------------------------------------------
The array keeps G = N / P state words; one beat updates one word (P neurons)
by one ``lif_step``. With ``addressed`` the beat names its word (``group``),
otherwise the words are taken in cyclic order 0, 1, ..., G - 1, 0, ...; with
``runtime_params`` the beat carries its own threshold, leak and reset mode
(``lif_params``), so one array can run several layers with different
parameters, each layer owning a range of words.

Float mode
----------
``LIF`` is an ``nn.Module`` computing ``h = beta * v + x`` with the same reset
and refractory rules and a surrogate gradient for the Heaviside step.
``quantize_lif`` maps a trained ``LIF`` onto a ``LIFSpec``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import nn

from . import alloc, fixed
from .spec import SpecBase, SpecError, check_bool, check_choice, check_int

LEAK_MODES = ("shift", "multiply")
RESET_MODES = ("subtract", "zero", "none")
SURROGATES = ("atan", "sigmoid")


@dataclass(frozen=True)
class LIFSpec(SpecBase):
    """Parameters of a LIF neuron array, shared by ``lif_run`` and ``rtl.LIFArray``.

    Attributes
    ----------
    n_neurons : N, neurons in the array (1 .. 65536).
    lanes : P, neurons updated in parallel by the hardware; N must be a multiple of P.
    membrane_width : Wv, bits of the signed membrane (2 .. 32).
    input_width : Wi, bits of the signed input current (1 .. 32).
    threshold : theta, firing threshold, 1 .. 2^(Wv-1) - 1.
    leak_mode : "shift" (v -= v >> s) or "multiply" (v = (v * b) >> F).
    leak_shift : s for the shift leak, 1 .. Wv - 1.
    leak_beta : b for the multiply leak, 0 .. 2^F (2^F means no leak).
    leak_frac_bits : F for the multiply leak, 1 .. 16.
    reset_mode : "subtract", "zero" or "none".
    overflow : "saturate" (default) or "wrap" for the membrane sum.
    refractory : R, steps a neuron ignores input after a spike (0 = none), 0 .. 255.
    emit_membrane : whether the hardware also streams out v' (golden always computes it).
    addressed : each input beat carries ``group`` (0 .. G - 1), the state word it updates,
        instead of the implicit cyclic group counter; beats may come in any group order.
    runtime_params : each input beat carries its own ``threshold``, ``leak`` (leak_shift or
        leak_beta, per leak_mode) and ``reset`` (index into RESET_MODES); the spec's threshold,
        leak_shift, leak_beta and reset_mode are then only the defaults of the beat helpers
        (``lif_params``). leak_mode, the widths, overflow and refractory stay spec constants.
    """

    block = "lif"

    n_neurons: int = 64
    lanes: int = 4
    membrane_width: int = 16
    input_width: int = 12
    threshold: int = 1024
    leak_mode: str = "shift"
    leak_shift: int = 3
    leak_beta: int = 230
    leak_frac_bits: int = 8
    reset_mode: str = "subtract"
    overflow: str = "saturate"
    refractory: int = 0
    emit_membrane: bool = True
    addressed: bool = False
    runtime_params: bool = False

    def __post_init__(self):
        name = "LIFSpec"
        check_int(name, "n_neurons", self.n_neurons, 1, 65536)
        check_int(name, "lanes", self.lanes, 1, 256)
        if self.n_neurons % self.lanes:
            raise SpecError(f"LIFSpec.n_neurons = {self.n_neurons} must be a multiple of "
                            f"LIFSpec.lanes = {self.lanes}")
        check_int(name, "membrane_width", self.membrane_width, 2, 32)
        check_int(name, "input_width", self.input_width, 1, 32)
        check_int(name, "threshold", self.threshold, 1, fixed.int_max(self.membrane_width, True))
        check_choice(name, "leak_mode", self.leak_mode, LEAK_MODES)
        check_int(name, "leak_shift", self.leak_shift, 1, self.membrane_width - 1)
        check_int(name, "leak_frac_bits", self.leak_frac_bits, 1, 16)
        check_int(name, "leak_beta", self.leak_beta, 0, 1 << self.leak_frac_bits)
        check_choice(name, "reset_mode", self.reset_mode, RESET_MODES)
        check_choice(name, "overflow", self.overflow, fixed.OVERFLOW_MODES)
        check_int(name, "refractory", self.refractory, 0, 255)
        check_bool(name, "emit_membrane", self.emit_membrane)
        check_bool(name, "addressed", self.addressed)
        check_bool(name, "runtime_params", self.runtime_params)

    @property
    def groups(self) -> int:
        """G = N / P: beats per time step, and the depth of the state memory."""
        return self.n_neurons // self.lanes

    @property
    def refractory_bits(self) -> int:
        """Bits of the refractory counter (0 when R = 0)."""
        return fixed.bits_for(self.refractory) if self.refractory else 0

    @property
    def param_widths(self) -> dict[str, int]:
        """Unsigned bits of the per-beat parameters (``runtime_params``): threshold Wv - 1,
        leak F + 1 (multiply: b in 0 .. 2^F) or bits_for(Wv - 1) (shift: s in 1 .. Wv - 1),
        reset 2 (an index into RESET_MODES)."""
        leak = self.leak_frac_bits + 1 if self.leak_mode == "multiply" else fixed.bits_for(self.membrane_width - 1)
        return {"threshold": self.membrane_width - 1, "leak": leak, "reset": 2}

    @property
    def pipeline_stages(self) -> int:
        """Compute stages of ``rtl.lif.LIFArray`` after the accept: M (state word), A (leak and
        add), B (fit, fire, reset) = 3; 4 with a run-time multiply leak (``runtime_params`` and
        ``leak_mode = "multiply"``), whose product v b gets a stage of its own (P, between A and
        B) because a multiply by a register operand is a DSP block's delay on top of the add.
        A beat of a group is accepted at least this many cycles after the group's previous beat."""
        return 4 if self.runtime_params and self.leak_mode == "multiply" else 3

    @property
    def latency(self) -> int:
        """Cycles from an input beat's accept to its output beat: ``pipeline_stages + 1``."""
        return self.pipeline_stages + 1

    @property
    def beta(self) -> float:
        """The leak factor as a real number (for documentation and float models)."""
        if self.leak_mode == "shift":
            return 1.0 - 2.0 ** -self.leak_shift
        return self.leak_beta / (1 << self.leak_frac_bits)


class LIFState(NamedTuple):
    v: torch.Tensor  # membrane, int64
    r: torch.Tensor  # refractory counter, int64


class LIFTrace(NamedTuple):
    spikes: torch.Tensor    # (..., T, N) int64 in {0, 1}
    membrane: torch.Tensor  # (..., T, N) int64: v' after reset, the state carried to t + 1


def lif_init_state(spec: LIFSpec, batch_shape=()) -> LIFState:
    zeros = torch.zeros(*batch_shape, spec.n_neurons, dtype=torch.int64)
    return LIFState(zeros, zeros.clone())


def lif_leak(spec: LIFSpec, v: torch.Tensor) -> torch.Tensor:
    """leak(v) = v - (v >> s)  or  (v * b) >> F (see the module docstring)."""
    if spec.leak_mode == "shift":
        return v - fixed.asr(v, spec.leak_shift)
    return fixed.mul_shift(v, spec.leak_beta, spec.leak_frac_bits)


def lif_step(spec: LIFSpec, state: LIFState, current: torch.Tensor) -> tuple[torch.Tensor, LIFState]:
    """One exact integer time step; returns (spike, new state). See the module docstring."""
    current = fixed.check_range(current, spec.input_width, True, "LIF input current")
    if current.shape[-1] != spec.n_neurons:
        raise ValueError(f"LIF input current has {current.shape[-1]} neurons in its last "
                         f"dimension; the spec has n_neurons = {spec.n_neurons}")
    v, r = state
    leaked = lif_leak(spec, v)
    active = r == 0
    integrated = fixed.fit(leaked + current, spec.membrane_width, True, spec.overflow)
    h = torch.where(active, integrated, leaked)
    spike = active & (h >= spec.threshold)
    if spec.reset_mode == "subtract":
        v_reset = h - spec.threshold
    elif spec.reset_mode == "zero":
        v_reset = torch.zeros_like(h)
    else:
        v_reset = h
    v_new = torch.where(spike, v_reset, h)
    r_new = torch.where(spike, torch.full_like(r, spec.refractory), torch.clamp(r - 1, min=0))
    return spike.to(torch.int64), LIFState(v_new, r_new)


def _lif_work_dtype(spec: LIFSpec) -> torch.dtype:
    """int32 where every intermediate provably fits 32 bits, otherwise int64.

    With Wv <= 30 and Wi <= 30: |v|, |i| <= 2^29, so leak(v) + i and (for wrap)
    leak(v) + i - min_Wv stay within +-(2^30 + 2^29) < 2^31. The multiply leak also
    needs v * b to fit: v in [-2^(Wv-1), 2^(Wv-1) - 1] and b in [0, 2^F] give
    v * b in [-2^(Wv-1+F), (2^(Wv-1) - 1) 2^F], inside [-2^31, 2^31 - 1] iff
    Wv + F <= 32 (e.g. Wv = 24, F = 8). The values are the same as in int64.
    """
    wv, wi = spec.membrane_width, spec.input_width
    if wv > 30 or wi > 30:
        return torch.int64
    if spec.leak_mode == "multiply" and wv + spec.leak_frac_bits > 32:
        return torch.int64
    return torch.int32


def _lif_scan(spec: LIFSpec, currents: torch.Tensor, spikes_out: torch.Tensor,
              membrane_out: torch.Tensor) -> None:
    """The T-step loop of ``lif_run`` from the zero state, time on dim 0.

    ``currents`` (T, ..., N) is already checked (Wi-bit signed integers);
    ``spikes_out`` / ``membrane_out`` (T, ..., N) int64 (views may be strided) receive
    every step's spike and v'. Same equations as ``lif_step`` (module docstring),
    computed in place on preallocated buffers, in int32 where ``_lif_work_dtype``
    shows that nothing can overflow.
    """
    steps = currents.shape[0]
    if steps == 0 or currents.numel() == 0:
        return
    wd = _lif_work_dtype(spec)
    shape = currents.shape[1:]
    # each step's currents are converted into one reused buffer (no T-sized copy)
    cur_t = torch.empty(shape, dtype=wd) if wd != currents.dtype else None
    v = torch.zeros(shape, dtype=wd)
    tmp = torch.empty(shape, dtype=wd)
    lo, hi = fixed.int_min(spec.membrane_width, True), fixed.int_max(spec.membrane_width, True)
    mask = (1 << spec.membrane_width) - 1
    theta = spec.threshold
    shift_leak = spec.leak_mode == "shift"
    s, b, f = spec.leak_shift, spec.leak_beta, spec.leak_frac_bits
    saturate = spec.overflow == "saturate"
    reset = spec.reset_mode
    refractory = spec.refractory
    # spikes as 0/1 in the working dtype (subtract reset: v -= theta * spike in one op) or bool
    spike = torch.empty(shape, dtype=wd if reset == "subtract" else torch.bool)
    if refractory:
        r = torch.zeros(shape, dtype=wd)
        active = torch.empty(shape, dtype=torch.bool)
        spike_b = torch.empty(shape, dtype=torch.bool)

    def step_currents(t):
        if cur_t is None:
            return currents[t]
        cur_t.copy_(currents[t])
        return cur_t

    for t in range(steps):
        # leak(v): v - (v >> s)  or  (v * b) >> F  (b = 2^F: identity; b = 0: zero)
        if shift_leak:
            torch.bitwise_right_shift(v, s, out=tmp)
            v.sub_(tmp)
        elif b == 0:
            v.zero_()
        elif b != 1 << f:
            v.mul_(b)
            v.bitwise_right_shift_(f)
        if refractory:
            # inactive neurons get no input: fit(leak(v) + 0) = leak(v) since leak(v) fits Wv
            torch.eq(r, 0, out=active)
            torch.mul(step_currents(t), active, out=tmp)
            v.add_(tmp)
        else:
            v.add_(step_currents(t))
        if saturate:
            v.clamp_(lo, hi)
        else:  # wrap: ((x - min) mod 2^Wv) + min, the mod as a two's complement mask
            v.sub_(lo)
            v.bitwise_and_(mask)
            v.add_(lo)
        torch.ge(v, theta, out=spike)
        if refractory:
            if reset == "subtract":
                torch.logical_and(spike, active, out=spike_b)
                torch.mul(spike, active, out=spike)
            else:
                spike.logical_and_(active)
                spike_b = spike
        if reset == "subtract":
            v.sub_(spike, alpha=theta)
        elif reset == "zero":
            v.masked_fill_(spike, 0)
        if refractory:
            r.sub_(1)
            r.clamp_(min=0)
            r.masked_fill_(spike_b, refractory)
        spikes_out[t].copy_(spike)
        membrane_out[t].copy_(v)


def _check_currents(spec: LIFSpec, currents: torch.Tensor) -> torch.Tensor:
    currents = fixed.check_range(currents, spec.input_width, True, "LIF input current")
    if currents.dim() < 2 or currents.shape[-1] != spec.n_neurons:
        raise ValueError(f"LIF input currents must have shape (..., T, {spec.n_neurons}); "
                         f"got {tuple(currents.shape)}")
    return currents


def lif_run(spec: LIFSpec, currents: torch.Tensor) -> LIFTrace:
    """Run ``lif_step`` over T steps from the zero state.

    Parameters
    ----------
    currents : integer tensor (..., T, N), every value a Wi-bit signed integer.

    Returns
    -------
    LIFTrace with ``spikes`` and ``membrane`` (v' after reset), both (..., T, N) int64.

    The whole tensor is checked once; the steps then run on preallocated buffers
    (``_lif_scan``), with the same results as calling ``lif_step`` T times.
    """
    currents = _check_currents(spec, currents)
    # huge-page backed: faulting in the fresh outputs was most of the run time (golden/alloc.py)
    spikes = alloc.empty(currents.shape, torch.int64)
    membrane = alloc.empty(currents.shape, torch.int64)
    _lif_scan(spec, currents.movedim(-2, 0), spikes.movedim(-2, 0), membrane.movedim(-2, 0))
    return LIFTrace(spikes, membrane)


def lif_run_time_first(spec: LIFSpec, currents: torch.Tensor) -> LIFTrace:
    """``lif_run`` with time on dim 0: currents (T, ..., N) -> spikes, membrane (T, ..., N)."""
    currents = torch.as_tensor(currents)
    if currents.dim() < 2:
        raise ValueError(f"currents must have shape (T, ..., {spec.n_neurons}); got {tuple(currents.shape)}")
    currents = _check_currents(spec, currents)
    # huge-page backed: faulting in the fresh outputs was most of the run time (golden/alloc.py)
    spikes = alloc.empty(currents.shape, torch.int64)
    membrane = alloc.empty(currents.shape, torch.int64)
    _lif_scan(spec, currents, spikes, membrane)
    return LIFTrace(spikes, membrane)


# ---------------------------------------------------------------------------
# Beat level: the array's state memory, one beat at a time

#: keys of a beat, in the order of ``LIFBeat`` (``group`` and the parameters are mode-dependent)
BEAT_PARAMS = ("threshold", "leak", "reset")


class LIFBeat(NamedTuple):
    """One input beat of the array: ``group`` (None = the cyclic counter's), ``first``, P
    ``current`` values and, with ``runtime_params``, ``threshold``, ``leak``, ``reset``."""

    group: int | None
    first: int
    current: Sequence[int]
    threshold: int | None = None
    leak: int | None = None
    reset: int | None = None


def lif_params(spec: LIFSpec) -> dict[str, int]:
    """A spec's neuron parameters as a beat carries them with ``runtime_params``.

    ``threshold = theta``; ``leak = s`` (shift leak) or ``b`` (multiply leak);
    ``reset = RESET_MODES.index(reset_mode)`` (0 subtract, 1 zero, 2 none).
    """
    leak = spec.leak_shift if spec.leak_mode == "shift" else spec.leak_beta
    return {"threshold": spec.threshold, "leak": leak, "reset": RESET_MODES.index(spec.reset_mode)}


def lif_beat_spec(spec: LIFSpec, threshold: int, leak: int, reset: int) -> LIFSpec:
    """The P-neuron spec one beat runs: ``spec`` with the beat's parameters (validated by
    ``LIFSpec``, so an out-of-range parameter is a ``SpecError`` naming the field)."""
    if isinstance(reset, bool) or not isinstance(reset, int) or not 0 <= reset < len(RESET_MODES):
        raise SpecError(f"LIF beat reset = {reset!r} is out of range; allowed: 0 .. {len(RESET_MODES) - 1} "
                        f"({', '.join(f'{i} {m}' for i, m in enumerate(RESET_MODES))})")
    leak_field = "leak_shift" if spec.leak_mode == "shift" else "leak_beta"
    return spec.replace(n_neurons=spec.lanes, threshold=threshold, reset_mode=RESET_MODES[reset],
                        **{leak_field: leak})


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            as_int = None
        if as_int is None or as_int != value:
            raise ValueError(f"{what} must be an integer, got {value!r}")
        value = as_int
    return value


def lif_normalize_beats(spec: LIFSpec, beats: Iterable) -> list[dict[str, Any]]:
    """Check beats and return them as dicts with exactly the fields of the array's input beat.

    A beat is a mapping or a ``LIFBeat`` (or a tuple in its order). Keys: ``current`` (P
    Wi-bit signed ints), ``first`` (0 / 1), ``group`` (0 .. G - 1; required iff ``addressed``,
    and when not addressed it may only repeat the cyclic counter's value) and ``threshold``,
    ``leak``, ``reset`` (required iff ``runtime_params``). Anything else is a ``ValueError``
    naming the beat; a parameter out of range is a ``SpecError``.
    """
    allowed = {"current", "first", "group", *BEAT_PARAMS}
    out = []
    for k, beat in enumerate(beats):
        if isinstance(beat, Mapping):
            fields = dict(beat)
        else:
            fields = LIFBeat(*beat)._asdict()
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise ValueError(f"LIF beat {k} has unknown field(s) {', '.join(unknown)}")
        fields = {key: value for key, value in fields.items() if value is not None}
        if "current" not in fields or "first" not in fields:
            raise ValueError(f"LIF beat {k} needs 'current' and 'first'")
        current = [_int(x, f"LIF beat {k} current") for x in fields["current"]]
        if len(current) != spec.lanes:
            raise ValueError(f"LIF beat {k} has {len(current)} currents; the spec has lanes = {spec.lanes}")
        lo, hi = fixed.int_min(spec.input_width, True), fixed.int_max(spec.input_width, True)
        if any(not lo <= x <= hi for x in current):
            raise ValueError(f"LIF beat {k} current {current} is outside the {spec.input_width}-bit signed "
                             f"range [{lo}, {hi}]")
        first = _int(fields["first"], f"LIF beat {k} first")
        if first not in (0, 1):
            raise ValueError(f"LIF beat {k} first = {first} must be 0 or 1")
        beat_out = {"current": current, "first": first}
        cyclic = k % spec.groups
        if spec.addressed:
            if "group" not in fields:
                raise ValueError(f"LIF beat {k} has no 'group' (the spec is addressed)")
            group = _int(fields["group"], f"LIF beat {k} group")
            if not 0 <= group < spec.groups:
                raise ValueError(f"LIF beat {k} group = {group} is out of range; allowed: 0 .. {spec.groups - 1}")
            beat_out["group"] = group
        elif fields.get("group", cyclic) != cyclic:
            raise ValueError(f"LIF beat {k} names group {fields['group']}, but the spec is not addressed: "
                             f"beat {k} updates group {cyclic} (k mod G)")
        given = [name for name in BEAT_PARAMS if name in fields]
        if spec.runtime_params:
            missing = [name for name in BEAT_PARAMS if name not in fields]
            if missing:
                raise ValueError(f"LIF beat {k} lacks {', '.join(missing)} (the spec has runtime_params)")
            for name in BEAT_PARAMS:
                beat_out[name] = _int(fields[name], f"LIF beat {k} {name}")
        elif given:
            raise ValueError(f"LIF beat {k} carries {', '.join(given)}, but the spec has "
                             f"runtime_params = False")
        out.append(beat_out)
    return out


def lif_run_beats(spec: LIFSpec, beats: Iterable) -> LIFTrace:
    """The array's stream semantics: run beats against a state memory of G words.

    Every word starts at v = 0, r = 0 (the hardware's memory after reset). Beat k names
    the word ``g_k`` = ``group`` (``addressed``) or ``k mod G`` (the cyclic counter), and
    carries ``first``, the P currents ``i_k`` and, with ``runtime_params``, its parameters
    (spec values otherwise)::

        (v, r)              = (0, 0)      if first_k     else  word[g_k]
        spike_k, (v', r')   = lif_step(spec_k, (v, r), i_k)
        word[g_k]           = (v', r')
        spec_k              = spec with n_neurons = P, threshold = theta_k,
                              leak_shift (shift) or leak_beta (multiply) = leak_k,
                              reset_mode = RESET_MODES[reset_k]

    so each update is exactly ``lif_step`` (the module docstring's equations) with the
    beat's parameters; beats of one group are applied in stream order, beats of different
    groups never interact. Beats are checked by ``lif_normalize_beats``; a parameter out of
    its range (threshold 1 .. 2^(Wv-1) - 1, s 1 .. Wv - 1, b 0 .. 2^F, reset 0 .. 2) is a
    ``SpecError``.

    Returns
    -------
    LIFTrace with ``spikes`` and ``membrane`` (v'), both (n_beats, P) int64, row k for beat k.
    """
    beats = lif_normalize_beats(spec, beats)
    lanes = spec.lanes
    zeros = torch.zeros(lanes, dtype=torch.int64)
    words = [LIFState(zeros, zeros) for _ in range(spec.groups)]
    default = lif_params(spec)
    specs: dict[tuple[int, int, int], LIFSpec] = {}
    spikes, membrane = [], []
    for k, beat in enumerate(beats):
        group = beat.get("group", k % spec.groups)
        params = tuple(beat.get(name, default[name]) for name in BEAT_PARAMS)
        if params not in specs:
            specs[params] = lif_beat_spec(spec, *params)
        state = LIFState(zeros, zeros) if beat["first"] else words[group]
        spike, words[group] = lif_step(specs[params], state, torch.tensor(beat["current"], dtype=torch.int64))
        spikes.append(spike)
        membrane.append(words[group].v)
    if not beats:
        empty = torch.zeros(0, lanes, dtype=torch.int64)
        return LIFTrace(empty, empty.clone())
    return LIFTrace(torch.stack(spikes), torch.stack(membrane))


def _mode_fields(spec: LIFSpec) -> list[str]:
    """The beat fields that the spec's modes add: ``group`` and the parameters."""
    return (["group"] if spec.addressed else []) + (list(BEAT_PARAMS) if spec.runtime_params else [])


def lif_beat_reference(spec: LIFSpec, beats: Iterable) -> dict[str, torch.Tensor]:
    """Arrays of a beat-level LIF vector file, one row per beat (B beats, P lanes).

    ``first`` (B,) uint8, ``current`` (B, P) int64, ``group`` (B,) int64 if ``addressed``,
    ``threshold`` / ``leak`` / ``reset`` (B,) int64 if ``runtime_params``, and the golden
    ``spikes`` (B, P) uint8 and ``membrane`` (B, P) int64 of ``lif_run_beats``.
    """
    beats = lif_normalize_beats(spec, beats)
    trace = lif_run_beats(spec, beats)
    arrays = {"first": torch.tensor([b["first"] for b in beats], dtype=torch.uint8),
              "current": torch.tensor([b["current"] for b in beats], dtype=torch.int64).reshape(-1, spec.lanes)}
    for name in _mode_fields(spec):
        arrays[name] = torch.tensor([b[name] for b in beats], dtype=torch.int64)
    arrays["spikes"] = trace.spikes.to(torch.uint8)
    arrays["membrane"] = trace.membrane
    return arrays


def lif_beats_from_arrays(spec: LIFSpec, arrays) -> list[dict[str, Any]]:
    """The beats of a beat-level vector file (``lif_beat_reference``'s arrays), checked."""
    current = arrays["current"]
    if current.ndim != 2 or current.shape[1] != spec.lanes:
        raise ValueError(f"LIF beat vectors: 'current' has shape {tuple(current.shape)}, expected "
                         f"(beats, {spec.lanes})")
    names = ["first", *_mode_fields(spec)]
    for name in names + ["spikes", "membrane"]:
        want = current.shape if name in ("spikes", "membrane") else current.shape[:1]
        if tuple(arrays[name].shape) != tuple(want):
            raise ValueError(f"LIF beat vectors: {name!r} has shape {tuple(arrays[name].shape)}, "
                             f"expected {tuple(want)}")
    beats = [{"current": [int(x) for x in row]} for row in current]
    for name in names:
        for beat, value in zip(beats, arrays[name]):
            beat[name] = int(value)
    return lif_normalize_beats(spec, beats)


# ---------------------------------------------------------------------------
# Float mode


class _SpikeATan(torch.autograd.Function):
    """Heaviside forward; backward d/dx = alpha / 2 / (1 + (pi/2 * alpha * x)^2)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        return grad * (a / 2) / (1 + (math.pi / 2 * a * x) ** 2), None


class _SpikeSigmoid(torch.autograd.Function):
    """Heaviside forward; backward d/dx = alpha * sigmoid(alpha x) * (1 - sigmoid(alpha x))."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        sg = torch.sigmoid(ctx.alpha * x)
        return grad * ctx.alpha * sg * (1 - sg), None


def spike_fn(x: torch.Tensor, surrogate: str = "atan", alpha: float = 2.0) -> torch.Tensor:
    """Heaviside step H(x) = [x >= 0] with a surrogate gradient ("atan" or "sigmoid")."""
    if surrogate == "atan":
        return _SpikeATan.apply(x, alpha)
    if surrogate == "sigmoid":
        return _SpikeSigmoid.apply(x, alpha)
    raise ValueError(f"surrogate must be one of {', '.join(SURROGATES)}, got {surrogate!r}")


class LIF(nn.Module):
    """Float LIF neurons with a surrogate gradient.

    ``h = beta * v + x``; spike = H(h - threshold); reset as in the integer model
    (subtract / zero / none) and the same refractory rule. ``beta`` may be
    learnable (stored as a logit so it stays in (0, 1)).

    step_mode "s": ``forward(x)`` is one time step and the membrane persists
    between calls until ``reset_state()``. step_mode "m": ``forward(x)`` takes a
    (T, ...) tensor and returns (T, ...) spikes, starting from the zero state.
    """

    def __init__(self, beta: float = 0.875, threshold: float = 1.0, reset_mode: str = "subtract",
                 surrogate: str = "atan", alpha: float = 2.0, step_mode: str = "m",
                 refractory: int = 0, learn_beta: bool = False, detach_reset: bool = False):
        super().__init__()
        if not 0.0 < beta < 1.0 and not (beta == 1.0 and not learn_beta):
            raise ValueError(f"LIF beta must be in (0, 1], got {beta}")
        if threshold <= 0:
            raise ValueError(f"LIF threshold must be > 0, got {threshold}")
        check_choice("LIF", "reset_mode", reset_mode, RESET_MODES)
        check_choice("LIF", "surrogate", surrogate, SURROGATES)
        check_choice("LIF", "step_mode", step_mode, ("s", "m"))
        if refractory < 0:
            raise ValueError(f"LIF refractory must be >= 0, got {refractory}")
        self.reset_mode, self.surrogate, self.alpha = reset_mode, surrogate, alpha
        self.step_mode, self.refractory, self.detach_reset = step_mode, refractory, detach_reset
        self.threshold = threshold
        if learn_beta:
            self.beta_logit = nn.Parameter(torch.tensor(math.log(beta / (1 - beta))))
        else:
            self.register_buffer("beta_fixed", torch.tensor(float(beta)))
        self.v = None
        self.r = None

    @property
    def beta(self) -> torch.Tensor:
        if hasattr(self, "beta_logit"):
            return torch.sigmoid(self.beta_logit)
        return self.beta_fixed

    def reset_state(self):
        self.v = None
        self.r = None

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        if self.v is None or self.v.shape != x.shape:
            self.v = torch.zeros_like(x)
            self.r = torch.zeros_like(x)
        leaked = self.beta * self.v
        active = self.r <= 0
        h = torch.where(active, leaked + x, leaked)
        spike = spike_fn(h - self.threshold, self.surrogate, self.alpha) * active
        s_reset = spike.detach() if self.detach_reset else spike
        if self.reset_mode == "subtract":
            self.v = h - s_reset * self.threshold
        elif self.reset_mode == "zero":
            self.v = h * (1 - s_reset)
        else:
            self.v = h
        self.r = torch.where(spike.detach() > 0, torch.full_like(self.r, self.refractory),
                             torch.clamp(self.r - 1, min=0))
        return spike

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "s":
            return self.single_step(x)
        self.reset_state()
        out = torch.stack([self.single_step(x[t]) for t in range(x.shape[0])])
        self.reset_state()
        return out


def quantize_lif(neuron: LIF, *, n_neurons: int, frac_bits: int, membrane_width: int = 16,
                 input_width: int = 12, leak_mode: str = "shift", leak_frac_bits: int = 8,
                 lanes: int = 1, overflow: str = "saturate") -> LIFSpec:
    """Map a float ``LIF`` onto a ``LIFSpec`` whose integers are reals * 2^frac_bits.

    threshold = round(theta * 2^f); shift leak: s = round(-log2(1 - beta));
    multiply leak: b = round(beta * 2^F). Inputs must be quantized with the same
    f (``fixed.FixedFormat(input_width, frac_bits).quantize``).
    Raises ``SpecError`` when the result does not fit the widths asked for.
    """
    beta = float(neuron.beta.detach())
    threshold = int(round(neuron.threshold * (1 << frac_bits)))
    shift = 1
    if leak_mode == "shift":
        shift = 1 if beta >= 1.0 else max(1, int(round(-math.log2(1.0 - beta))))
    beta_int = int(round(beta * (1 << leak_frac_bits)))
    return LIFSpec(n_neurons=n_neurons, lanes=lanes, membrane_width=membrane_width,
                   input_width=input_width, threshold=threshold, leak_mode=leak_mode,
                   leak_shift=min(shift, membrane_width - 1), leak_beta=beta_int,
                   leak_frac_bits=leak_frac_bits, reset_mode=neuron.reset_mode,
                   overflow=overflow, refractory=neuron.refractory)


# ---------------------------------------------------------------------------
# Reference vectors


def lif_random_currents(spec: LIFSpec, n_sequences: int, n_steps: int, seed: int = 0) -> torch.Tensor:
    """Seeded test stimulus (n_sequences, n_steps, N) that exercises every rule.

    Most currents are drawn around the threshold scale, so neurons fire at a
    useful rate; about 2 % are the extreme input values, and one sequence in
    four drives a few neurons hard positive or negative, so the membrane reaches
    both saturation limits whenever the widths allow it.
    """
    if n_sequences < 1 or n_steps < 1:
        raise ValueError(f"need n_sequences >= 1 and n_steps >= 1, got {n_sequences}, {n_steps}")
    gen = torch.Generator().manual_seed(seed)
    lo, hi = fixed.int_min(spec.input_width, True), fixed.int_max(spec.input_width, True)
    scale = max(1, min(spec.threshold, hi))
    shape = (n_sequences, n_steps, spec.n_neurons)
    base = torch.randint(-scale // 2, scale + 1, shape, generator=gen, dtype=torch.int64)
    extreme = torch.rand(shape, generator=gen) < 0.02
    sign = torch.rand(shape, generator=gen) < 0.5
    base = torch.where(extreme, torch.where(sign, torch.tensor(hi), torch.tensor(lo)), base)
    hard = torch.zeros(shape, dtype=torch.bool)
    hard[::4, :, : max(1, spec.n_neurons // 8)] = True
    pos = torch.rand(shape, generator=gen) < 0.5
    drive = torch.where(pos, torch.tensor(hi), torch.tensor(lo))
    base = torch.where(hard & (torch.rand(shape, generator=gen) < 0.8), drive, base)
    return torch.clamp(base, lo, hi)


def lif_reference(spec: LIFSpec, currents: torch.Tensor) -> dict[str, torch.Tensor]:
    """Arrays of a LIF vector file: ``currents``, ``spikes`` and ``membrane``, (S, T, N)."""
    trace = lif_run(spec, currents)
    return {"currents": currents.to(torch.int64), "spikes": trace.spikes.to(torch.uint8),
            "membrane": trace.membrane.to(torch.int64)}
