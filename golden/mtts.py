"""Masked time-to-first-spike (MTTS) encoding: the spec, the exact integer encoder and decoder.

Matterhorn (2026) sends each value as *when* it first spikes in a window of T
steps; the "masked" part gives the silent code (no spike at all, which costs no
data movement) to the value that occurs most often, and optionally to a whole
dead zone of values, instead of to the smallest value as plain TTFS does.

Integer encoder (the hardware contract)
---------------------------------------
For an input value ``x`` (W-bit, signed or unsigned) and the spec's range
``[lo, hi]`` (R = hi - lo + 1 values) and T time steps::

    xc      = min(max(x, lo), hi)                         clamp to the range
    level   = floor((xc - lo) * T / R)                    0 .. T-1, larger x -> higher level
    t_first = T - 1 - level                               larger x spikes earlier
    S       = mask_value if mask else lo                  the value that is sent as silence
    silent  = (xc == S) or (dead_zone and dead_lo <= xc <= dead_hi)
    time    = 0 if silent else t_first                    (the code: time plus the silent flag)

This is the seed's rule ``t_first = (1 - x_norm) T`` with ``x_norm = (xc - lo) / R``
and the time index rounded down to 0 .. T - 1: ``t_first = ceil((1 - x_norm) T) - 1``.
Without a mask the silent code goes to the smallest value ``lo`` (the seed's
``x_norm = 0 -> t_first = T``, i.e. no spike in the window).

The hardware has no divider: ``MTTSSpec.reciprocal`` gives constants (m, f),
found when the hardware is generated, with ``((xc - lo) * m) >> f == level`` for
every xc in the range (checked exhaustively by the spec itself).

Spike trains (``mtts_spikes`` returns them with time on dim 0, (T, *X); a vector
file stores ``spikes`` as (beats, lanes, T), spikes[i, p, t] = s_t of lane p of beat i,
and the hardware's ``emit = "spikes"`` beat carries lane p as a T-bit word, bit t = s_t)::

    step:   s_t = [t >= t_first] and not silent     (the seed's train: 1 from t_first on)
    single: s_t = [t == t_first] and not silent     (one spike at t_first)

Decoder::

    x_hat = S                                        if silent
          = lo + ceil(level * R / T)                 otherwise (the smallest value of the level)

so the mask value itself always comes back exactly, and every other value comes
back as it would without the mask: masking alone loses no information. When
R == T (the values are already T-level codes) the round trip is the identity.
Dead-zone values come back as S; their error is at most
``max(|dead_lo - S|, |dead_hi - S|)`` (``silence_report`` measures it).

Silent counter: the hardware counts the silent outputs since reset, modulo
2^counter_width; ``mtts_reference`` gives the count after every beat.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import torch

from . import fixed
from .spec import SpecBase, SpecError, check_bool, check_choice, check_int

TRAINS = ("step", "single")
OUTPUTS = ("code", "spikes")


@dataclass(frozen=True)
class MTTSSpec(SpecBase):
    """Parameters of an MTTS encoder, shared by the golden functions and ``rtl.mtts.MTTSEncoder``.

    Attributes
    ----------
    input_width : W, bits of each input value (1 .. 16).
    signed : whether inputs are W-bit signed (else unsigned).
    time_steps : T, length of the spike window (1 .. 64).
    lanes : P, values encoded in parallel (one stream beat carries P values), 1 .. 64.
    lo, hi : the calibrated value range (lo <= hi, both W-bit): lo spikes last, hi first.
    train : "step" (1 from t_first on, the seed's form) or "single" (one spike at t_first).
    emit : hardware output form: "code" (time + silent flag per lane) or "spikes"
        (T spike bits per lane).
    mask : whether ``mask_value`` gets the silent code (else ``lo`` does, as in plain TTFS).
    mask_value : the value sent as silence, lo .. hi (checked when ``mask``).
    dead_zone : whether the values in [dead_lo, dead_hi] are also sent as silence.
    dead_lo, dead_hi : the dead zone, lo <= dead_lo <= dead_hi <= hi (checked when ``dead_zone``).
    counter_width : bits of the hardware's silent-output counter (wraps), 1 .. 48.
    """

    block = "mtts"

    input_width: int = 8
    signed: bool = True
    time_steps: int = 8
    lanes: int = 4
    lo: int = -128
    hi: int = 127
    train: str = "step"
    emit: str = "code"
    mask: bool = True
    mask_value: int = 0
    dead_zone: bool = False
    dead_lo: int = 0
    dead_hi: int = 0
    counter_width: int = 32

    def __post_init__(self):
        name = "MTTSSpec"
        check_int(name, "input_width", self.input_width, 1, 16)
        check_bool(name, "signed", self.signed)
        check_int(name, "time_steps", self.time_steps, 1, 64)
        check_int(name, "lanes", self.lanes, 1, 64)
        vmin, vmax = fixed.int_min(self.input_width, self.signed), fixed.int_max(self.input_width, self.signed)
        check_int(name, "lo", self.lo, vmin, vmax)
        check_int(name, "hi", self.hi, self.lo, vmax)
        check_choice(name, "train", self.train, TRAINS)
        check_choice(name, "emit", self.emit, OUTPUTS)
        check_bool(name, "mask", self.mask)
        check_bool(name, "dead_zone", self.dead_zone)
        # checked against [lo, hi] only when in use, so a spec without a mask or dead zone
        # needs no dummy values inside its range
        check_int(name, "mask_value", self.mask_value, *((self.lo, self.hi) if self.mask else (None, None)))
        check_int(name, "dead_lo", self.dead_lo, *((self.lo, self.hi) if self.dead_zone else (None, None)))
        check_int(name, "dead_hi", self.dead_hi, *((self.dead_lo, self.hi) if self.dead_zone else (None, None)))
        check_int(name, "counter_width", self.counter_width, 1, 48)

    def with_dead_zone(self, half_width: int) -> "MTTSSpec":
        """The spec with the mask on and a dead zone of half width d around the mask value M:
        [max(lo, M - d), min(hi, M + d)] silent; d = 0 is the mask alone."""
        check_int("MTTSSpec", "dead zone half width", half_width, 0, None)
        m, d = self.mask_value, half_width
        return self.replace(mask=True, dead_zone=d > 0, dead_lo=max(self.lo, m - d), dead_hi=min(self.hi, m + d))

    # ---- derived quantities ---------------------------------------------------------------------

    @property
    def value_range(self) -> int:
        """R = hi - lo + 1, the number of values in the calibrated range."""
        return self.hi - self.lo + 1

    @property
    def time_bits(self) -> int:
        """Bits of the first-spike time field (0 .. T - 1)."""
        return fixed.bits_for(self.time_steps - 1)

    @property
    def offset_bits(self) -> int:
        """Bits of the unsigned offset xc - lo (0 .. R - 1)."""
        return fixed.bits_for(self.value_range - 1)

    @property
    def silent_value(self) -> int:
        """S: the value sent as silence and decoded from it (mask_value, or lo without a mask)."""
        return self.mask_value if self.mask else self.lo

    @property
    def input_min(self) -> int:
        return fixed.int_min(self.input_width, self.signed)

    @property
    def input_max(self) -> int:
        return fixed.int_max(self.input_width, self.signed)

    @property
    def reciprocal(self) -> tuple[int, int]:
        """(m, f): the smallest f, with m = ceil(T 2^f / R), such that ((u m) >> f) = floor(u T / R)
        for every u in 0 .. R - 1. The hardware's level is a multiply and a shift, no divider."""
        return _reciprocal(self.time_steps, self.value_range)


@functools.lru_cache(maxsize=None)
def _reciprocal(t: int, r: int) -> tuple[int, int]:
    u = torch.arange(r, dtype=torch.int64)
    want = (u * t) // r
    for f in range(0, 64):
        m = -(-(t << f) // r)  # ceil(T 2^f / R)
        if torch.equal((u * m) >> f, want):
            return m, f
    raise SpecError(f"no multiply-shift reciprocal for T = {t}, R = {r}")  # unreachable for R <= 2^16


class MTTSCode(NamedTuple):
    """The compact code of each value: first-spike time (0 when silent) and the silent flag."""

    time: torch.Tensor    # int64, 0 .. T - 1
    silent: torch.Tensor  # int64, 0 / 1


def _check_values(spec: MTTSSpec, values) -> torch.Tensor:
    return fixed.check_range(values, spec.input_width, spec.signed, "MTTS input value")


def mtts_level(spec: MTTSSpec, values) -> torch.Tensor:
    """level = floor((clamp(x, lo, hi) - lo) T / R), exact int64 (see the module docstring)."""
    x = _check_values(spec, values)
    xc = torch.clamp(x, spec.lo, spec.hi)
    return ((xc - spec.lo) * spec.time_steps) // spec.value_range


def mtts_silent(spec: MTTSSpec, values) -> torch.Tensor:
    """silent = (xc == S) or (dead_zone and dead_lo <= xc <= dead_hi), as int64 0 / 1."""
    x = _check_values(spec, values)
    xc = torch.clamp(x, spec.lo, spec.hi)
    silent = xc == spec.silent_value
    if spec.dead_zone:
        silent = silent | ((xc >= spec.dead_lo) & (xc <= spec.dead_hi))
    return silent.to(torch.int64)


def mtts_encode(spec: MTTSSpec, values) -> MTTSCode:
    """Integer values (any shape) -> MTTSCode of the same shape (exact, integer tensors only)."""
    level = mtts_level(spec, values)
    silent = mtts_silent(spec, values)
    time = torch.where(silent.bool(), torch.zeros_like(level), spec.time_steps - 1 - level)
    return MTTSCode(time, silent)


def mtts_spikes(spec: MTTSSpec, code: MTTSCode, train: str | None = None) -> torch.Tensor:
    """Code (shape X) -> spike train (T, *X) int64 in the spec's train form (or ``train``)."""
    train = spec.train if train is None else train
    check_choice("mtts_spikes", "train", train, TRAINS)
    t = torch.arange(spec.time_steps, dtype=torch.int64).reshape(-1, *([1] * code.time.dim()))
    fire = (t >= code.time) if train == "step" else (t == code.time)
    return (fire & (code.silent == 0)).to(torch.int64)


def mtts_code_from_spikes(spec: MTTSSpec, spikes: torch.Tensor) -> MTTSCode:
    """Spike train (T, *X) in either form -> the code: the first spike's time, or silent."""
    spikes = torch.as_tensor(spikes)
    if spikes.dim() < 1 or spikes.shape[0] != spec.time_steps:
        raise ValueError(f"spike train must have T = {spec.time_steps} steps on dim 0; got "
                         f"{tuple(spikes.shape)}")
    fired = spikes.to(torch.int64) != 0
    silent = ~fired.any(dim=0)
    t = torch.arange(spec.time_steps, dtype=torch.int64).reshape(-1, *([1] * (spikes.dim() - 1)))
    first = torch.where(fired, t, torch.full_like(t, spec.time_steps)).min(dim=0).values
    return MTTSCode(torch.where(silent, torch.zeros_like(first), first), silent.to(torch.int64))


def mtts_decode(spec: MTTSSpec, code: MTTSCode) -> torch.Tensor:
    """Code -> values: S when silent, else lo + ceil(level R / T) with level = T - 1 - time."""
    time = torch.as_tensor(code.time).to(torch.int64)
    silent = torch.as_tensor(code.silent).to(torch.int64)
    if time.numel() and (int(time.min()) < 0 or int(time.max()) >= spec.time_steps):
        raise ValueError(f"MTTS code times must lie in 0 .. {spec.time_steps - 1}")
    level = spec.time_steps - 1 - time
    value = spec.lo + (level * spec.value_range + spec.time_steps - 1) // spec.time_steps
    return torch.where(silent.bool(), torch.full_like(value, spec.silent_value), value)


def mtts_quantize(spec: MTTSSpec, values) -> torch.Tensor:
    """What the time code alone can represent: the decode of each value's level, ignoring silence."""
    level = mtts_level(spec, values)
    return spec.lo + (level * spec.value_range + spec.time_steps - 1) // spec.time_steps


# ---- calibration and the silence report -------------------------------------------------------------

def pick_mask_value(values) -> int:
    """The most frequent value (code) in ``values``; ties go to the smallest value."""
    v = torch.as_tensor(values)
    if v.is_floating_point():
        raise ValueError("pick_mask_value takes integer codes; quantize first")
    if v.numel() == 0:
        raise ValueError("pick_mask_value needs at least one value")
    uniq, counts = torch.unique(v.to(torch.int64).flatten(), return_counts=True)  # uniq is sorted
    return int(uniq[int(torch.argmax(counts))])  # argmax returns the first maximum: the smallest value


def calibrate_mtts(values, *, input_width: int, signed: bool = True, time_steps: int = 8, lanes: int = 4,
                   train: str = "step", emit: str = "code", dead_zone_width: int | None = None,
                   counter_width: int = 32) -> MTTSSpec:
    """Build an MTTSSpec from data once: lo/hi = the data's min/max, mask = the most frequent code.

    ``dead_zone_width`` d > 0 adds the dead zone [S - d, S + d] (clipped to [lo, hi]).
    Everything is integer; the result is a plain spec, fixed from then on.
    """
    v = fixed.check_range(values, input_width, signed, "MTTS calibration data")
    if v.numel() == 0:
        raise ValueError("calibrate_mtts needs at least one value")
    lo, hi = int(v.min()), int(v.max())
    mask_value = pick_mask_value(v)
    extra = {}
    if dead_zone_width:
        if dead_zone_width < 0:
            raise ValueError(f"dead_zone_width must be >= 0, got {dead_zone_width}")
        extra = {"dead_zone": True, "dead_lo": max(lo, mask_value - dead_zone_width),
                 "dead_hi": min(hi, mask_value + dead_zone_width)}
    return MTTSSpec(input_width=input_width, signed=signed, time_steps=time_steps, lanes=lanes, lo=lo, hi=hi,
                    train=train, emit=emit, mask=True, mask_value=mask_value, counter_width=counter_width,
                    **extra)


def silence_report(spec: MTTSSpec, values) -> dict:
    """Silent fractions of ``values`` under plain TTFS, the mask, and the mask plus dead zone.

    Returns a dict:

    * ``silent_plain``: no mask, no dead zone (silence for xc == lo, the seed's TTFS);
    * ``silent_mask``: the spec's mask, no dead zone;
    * ``silent_mask_dead_zone``: the spec as given (mask and dead zone if enabled);
    * ``mask_value``, ``dead_zone`` ([lo, hi] or None), ``count``;
    * ``dead_zone_max_error`` / ``dead_zone_mean_error``: over all values, |decode - decode
      without the dead zone| (the extra loss the dead zone causes; 0 without one), and
      ``dead_zone_error_bound`` = max(|dead_lo - S|, |dead_hi - S|).
    """
    v = _check_values(spec, values)
    plain = spec.replace(mask=False, dead_zone=False)
    masked = spec.replace(dead_zone=False)
    n = max(1, v.numel())
    out = {
        "count": int(v.numel()),
        "mask_value": spec.silent_value,
        "dead_zone": [spec.dead_lo, spec.dead_hi] if spec.dead_zone else None,
        "silent_plain": int(mtts_silent(plain, v).sum()) / n,
        "silent_mask": int(mtts_silent(masked, v).sum()) / n,
        "silent_mask_dead_zone": int(mtts_silent(spec, v).sum()) / n,
    }
    err = (mtts_decode(spec, mtts_encode(spec, v)) - mtts_decode(masked, mtts_encode(masked, v))).abs()
    out["dead_zone_max_error"] = int(err.max()) if err.numel() else 0
    out["dead_zone_mean_error"] = float(err.double().mean()) if err.numel() else 0.0
    s = spec.silent_value
    out["dead_zone_error_bound"] = max(abs(spec.dead_lo - s), abs(spec.dead_hi - s)) if spec.dead_zone else 0
    return out


# ---- reference vectors ------------------------------------------------------------------------------

def mtts_random_values(spec: MTTSSpec, n_beats: int, seed: int = 0) -> torch.Tensor:
    """Seeded stimulus (n_beats, P) that exercises every rule.

    About 30 % are the silent value S (Matterhorn's premise: one value dominates),
    15 % are the edge cases (input min/max, lo, hi, lo - 1, hi + 1, S +- 1, the
    dead-zone edges and their neighbours, level boundaries), the rest uniform
    over the whole input range.
    """
    if n_beats < 1:
        raise ValueError(f"need n_beats >= 1, got {n_beats}")
    gen = torch.Generator().manual_seed(seed)
    shape = (n_beats, spec.lanes)
    vmin, vmax = spec.input_min, spec.input_max
    uniform = torch.randint(vmin, vmax + 1, shape, generator=gen, dtype=torch.int64)
    s = spec.silent_value
    edges = [vmin, vmax, spec.lo, spec.hi, spec.lo - 1, spec.hi + 1, s - 1, s, s + 1,
             spec.dead_lo - 1, spec.dead_lo, spec.dead_hi, spec.dead_hi + 1]
    r, t = spec.value_range, spec.time_steps
    edges += [spec.lo + (k * r + t - 1) // t + d for k in range(1, t) for d in (-1, 0)]  # level boundaries
    edges = torch.tensor(sorted({min(max(e, vmin), vmax) for e in edges}), dtype=torch.int64)
    pick = torch.randint(0, len(edges), shape, generator=gen)
    u = torch.rand(shape, generator=gen)
    out = torch.where(u < 0.30, torch.full(shape, s, dtype=torch.int64),
                      torch.where(u < 0.45, edges[pick], uniform))
    out[0, :] = torch.tensor([vmin, vmax, s, spec.lo] * spec.lanes)[: spec.lanes]
    return out


def mtts_reference(spec: MTTSSpec, values) -> dict[str, torch.Tensor]:
    """Arrays of an MTTS vector file for beats of P values: ``values`` (n, P) int64, ``time``
    (n, P) int64, ``silent`` (n, P) uint8, ``spikes`` (n, P, T) uint8 (the spec's train form),
    ``count`` (n,) int64 = silent outputs up to and including beat i, modulo 2^counter_width."""
    v = _check_values(spec, values)
    if v.dim() != 2 or v.shape[1] != spec.lanes:
        raise ValueError(f"MTTS values must have shape (beats, {spec.lanes}); got {tuple(v.shape)}")
    code = mtts_encode(spec, v)
    spikes = mtts_spikes(spec, code).permute(1, 2, 0)  # (n, P, T)
    count = torch.remainder(torch.cumsum(code.silent.sum(dim=1), dim=0), 1 << spec.counter_width)
    return {"values": v, "time": code.time, "silent": code.silent.to(torch.uint8),
            "spikes": spikes.to(torch.uint8), "count": count}


def mtts_decode_reference(spec: MTTSSpec, values) -> dict[str, torch.Tensor]:
    """Arrays of an MTTS *decoder* vector file for beats of P values: ``values`` (n, P) int64 (the
    encoder's input), the code ``time`` (n, P) int64 and ``silent`` (n, P) uint8 (``mtts_encode``), and
    ``decoded`` (n, P) int64 = ``mtts_decode`` of that code: S if silent, else lo + ceil(level R / T)."""
    v = _check_values(spec, values)
    if v.dim() != 2 or v.shape[1] != spec.lanes:
        raise ValueError(f"MTTS values must have shape (beats, {spec.lanes}); got {tuple(v.shape)}")
    code = mtts_encode(spec, v)
    return {"values": v, "time": code.time, "silent": code.silent.to(torch.uint8), "decoded": mtts_decode(spec, code)}
