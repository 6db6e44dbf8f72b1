"""Adaptive-threshold LIF neurons with a seeded analog-variation model (Matterhorn's neurons).

After a spike the threshold rises by ``delta`` and decays back geometrically; the
analog hardware's mismatch is modelled by drawing each neuron's base threshold
and leak within a range and injecting noise into its input, all from one seed,
so that a given seed always yields the same perturbed network.

Integer mode (exact, int64; units 2^-f of the layer that drives the neurons)
--------------------------------------------------------------------------
State per neuron: membrane ``v`` (Wv-bit signed), adaptation ``a`` (Wa-bit unsigned),
both 0 at t = 0. Per-neuron base threshold ``theta_n`` and leak ``b_n`` (beta_n = b_n / 2^F).
One step with input current ``i`` and noise ``e`` (integers)::

    h      = fit_Wv(((v * b_n) >> F) + i + e)        (saturate)
    theta  = theta_n + a                              threshold of this step (a from the previous step)
    spike  = h >= theta
    v'     = h - theta   if spike  else h             (subtract reset; h - theta >= 0 fits)
    a'     = sat_Wa(a - (a >> k) + delta * spike)     (rises by delta, decays by 1 - 2^-k)

Float mode (``AdaptiveLIF``)::

    h = beta_n v + i + e;  theta = theta_n + a;  s = H(h - theta)  (surrogate gradient)
    v' = h - s theta;      a' = (1 - 2^-k) a + delta s

``a - (a >> k) = ceil((1 - 2^-k) a)`` for a >= 0, so the integer adaptation decays at most
one LSB per step slower than the float one.

Variation model (``VariationSpec``)
-----------------------------------
For layer index l, a ``torch.Generator`` seeded with ``seed * 1_000_003 + l`` draws, in
float64 and in this order, u_n ~ U(-1, 1) then w_n ~ U(-1, 1) for the N neurons::

    theta_n = theta (1 + threshold_spread u_n)
    beta_n  = min(1, beta (1 + leak_spread w_n))

and the injected noise of a forward pass is ``e = noise * theta * g`` with g ~ N(0, 1).
In evaluation and integer mode g is the chip's frozen noise pattern: drawn for shape
(T, ..., N) *without* the batch dimension (dim 1 of a (T, B, ..., N) input; inputs of
two dimensions (T, N) have none) from a generator seeded with ``seed * 1_000_003 + l +
500_009`` and shared by every sample of the batch, so a sample's result does not depend on
the batch it is in, and both modes see the same draws. While training, g comes fresh from
the global RNG for every element. Integer mode
uses ``theta_n_int = round(theta_n 2^f)``, ``b_n = round(beta_n 2^F)``,
``e_int = round(noise theta 2^f g)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from . import fixed
from .lif import spike_fn
from .spec import SpecBase, SpecError, check_bool, check_int

NOISE_STREAM = 500_009
SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class VariationSpec:
    """Seeded analog-variation model: per-neuron threshold and leak spread, injected noise.

    Attributes
    ----------
    seed : the variation seed (>= 0); the same seed gives the same perturbed network.
    threshold_spread : theta_n = theta (1 + threshold_spread u), u ~ U(-1, 1); 0 .. 0.9.
    leak_spread : beta_n = min(1, beta (1 + leak_spread w)), w ~ U(-1, 1); 0 .. 0.9.
    noise : input noise std as a fraction of the base threshold; 0 .. 2.
    """

    seed: int = 0
    threshold_spread: float = 0.0
    leak_spread: float = 0.0
    noise: float = 0.0

    def __post_init__(self):
        check_int("VariationSpec", "seed", self.seed, 0, 2 ** 31)
        for name, hi in (("threshold_spread", 0.9), ("leak_spread", 0.9), ("noise", 2.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= hi:
                raise SpecError(f"VariationSpec.{name} = {value!r} is out of range; allowed: 0 .. {hi}")

    def draw(self, layer: int, n: int, theta: float, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-neuron (theta_n, beta_n), float64 (n,), for layer index ``layer``."""
        gen = torch.Generator().manual_seed(self.seed * SEED_STRIDE + layer)
        u = torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1
        w = torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1
        theta_n = theta * (1 + self.threshold_spread * u)
        beta_n = torch.clamp(beta * (1 + self.leak_spread * w), max=1.0)
        return theta_n, beta_n

    def noise_draw(self, layer: int, shape) -> torch.Tensor:
        """The standard-normal draws g of an evaluation-mode input of ``shape`` (float64, broadcastable
        to ``shape``): one pattern of shape (T, ..., N) shared over the batch dimension 1."""
        shape = tuple(shape)
        gen = torch.Generator().manual_seed(self.seed * SEED_STRIDE + layer + NOISE_STREAM)
        if len(shape) <= 2:
            return torch.randn(shape, generator=gen, dtype=torch.float64)
        pattern = torch.randn((shape[0], *shape[2:]), generator=gen, dtype=torch.float64)
        return pattern.unsqueeze(1)


@dataclass(frozen=True)
class ALIFSpec(SpecBase):
    """Integer adaptive-LIF layer (the per-neuron theta_n and b_n are arrays beside it).

    Attributes
    ----------
    n_neurons : N.
    membrane_width : Wv, signed membrane bits (4 .. 40).
    input_width : Wi, signed input-current bits (2 .. 40).
    leak_frac_bits : F of the multiply leak b_n / 2^F (1 .. 16).
    adapt_shift : k, the adaptation decays by 1 - 2^-k per step (1 .. 16).
    adapt_increment : delta, added to the adaptation by a spike (0 .. 2^(Wa) - 1).
    adapt_width : Wa, unsigned adaptation bits (1 .. 40).

    Hardware fields (``rtl.alif.ALIFArray``; ``alif_run`` ignores them, and their defaults keep
    every earlier caller valid):

    lanes : P, neurons updated in parallel; N must be a multiple of P (1 .. 256).
    noise_width : We, signed bits of the noise e carried by an input beat beside the current
        (0 .. 40; 0: the beat has no noise field and e = 0). The hardware adds i + e exactly
        (max(Wi, We) + 1 bits) before the leak's sum is saturated, as ``alif_run`` does.
    emit_membrane : the output beat also carries v' (after the reset).
    emit_adaptation : the output beat also carries a'.
    addressed : each update beat names its state word (``group``, 0 .. G - 1) instead of the
        implicit cyclic counter, so beats may come in any group order (several layers on one array).
    runtime_increment : each update beat carries delta (``increment``, 0 .. 2^Wa - 1) and
        ``adapt_increment`` is not used: layers of different current scales (delta = round(0.5 2^f))
        share one array.
    param_groups : Gp, 0 (default): the parameter memory has G words, read at the update's state
        address; Gp >= 1 (``addressed`` only): it has Gp words of its own and each update beat
        names its parameter word (``param_group``, 0 .. Gp - 1), so neurons at different state
        words (the positions of one layer) share one parameter word. WRITE beats address the
        parameter memory (0 .. ``param_depth`` - 1) either way.
    """

    block = "alif"

    n_neurons: int = 16
    membrane_width: int = 24
    input_width: int = 24
    leak_frac_bits: int = 8
    adapt_shift: int = 2
    adapt_increment: int = 128
    adapt_width: int = 24
    lanes: int = 1
    noise_width: int = 16
    emit_membrane: bool = True
    emit_adaptation: bool = True
    addressed: bool = False
    runtime_increment: bool = False
    param_groups: int = 0

    def __post_init__(self):
        name = "ALIFSpec"
        check_int(name, "n_neurons", self.n_neurons, 1, 1 << 20)
        check_int(name, "membrane_width", self.membrane_width, 4, 40)
        check_int(name, "input_width", self.input_width, 2, 40)
        check_int(name, "leak_frac_bits", self.leak_frac_bits, 1, 16)
        check_int(name, "adapt_shift", self.adapt_shift, 1, 16)
        check_int(name, "adapt_width", self.adapt_width, 1, 40)
        check_int(name, "adapt_increment", self.adapt_increment, 0, fixed.int_max(self.adapt_width, False))
        check_int(name, "lanes", self.lanes, 1, 256)
        if self.n_neurons % self.lanes:
            raise SpecError(f"ALIFSpec.n_neurons = {self.n_neurons} must be a multiple of "
                            f"ALIFSpec.lanes = {self.lanes}")
        check_int(name, "noise_width", self.noise_width, 0, 40)
        check_bool(name, "emit_membrane", self.emit_membrane)
        check_bool(name, "emit_adaptation", self.emit_adaptation)
        check_bool(name, "addressed", self.addressed)
        check_bool(name, "runtime_increment", self.runtime_increment)
        check_int(name, "param_groups", self.param_groups, 0, 1 << 20)
        if self.param_groups and not self.addressed:
            raise SpecError("ALIFSpec.param_groups needs addressed = True (each update names its words)")

    @property
    def groups(self) -> int:
        """G = N / P: update beats per time step, and the depth of the state and parameter memories."""
        return self.n_neurons // self.lanes

    @property
    def param_depth(self) -> int:
        """Words of the parameter memory: Gp (``param_groups``) or G."""
        return self.param_groups or self.groups

    @property
    def param_neurons(self) -> int:
        """Per-neuron parameters the memory holds: ``param_depth`` x P (= N without ``param_groups``)."""
        return self.param_depth * self.lanes

    @property
    def param_widths(self) -> dict[str, int]:
        """Unsigned bits of the per-neuron parameters in the parameter memory and a WRITE beat:
        theta_n Wv - 1 (1 .. 2^(Wv-1) - 1), b_n F + 1 (0 .. 2^F)."""
        return {"theta": self.membrane_width - 1, "beta": self.leak_frac_bits + 1}

    @property
    def drive_width(self) -> int:
        """Signed bits of the exact drive i + e: max(Wi, We) + 1 (Wi without noise)."""
        return max(self.input_width, self.noise_width) + 1 if self.noise_width else self.input_width

    @property
    def pipeline_stages(self) -> int:
        """Compute stages of ``rtl.alif.ALIFArray`` after the accept: M (state and parameter
        words), A (partial products of v b_n, i + e, theta_n + a), P (leak, sums), B (fit, fire,
        reset, adaptation) = 4. An update beat of a group is accepted at least this many cycles
        after the group's previous update beat."""
        return 4

    @property
    def latency(self) -> int:
        """Cycles from an update beat's accept to its output beat: ``pipeline_stages + 1`` = 5."""
        return self.pipeline_stages + 1


class ALIFTrace(NamedTuple):
    spikes: torch.Tensor      # (T, ..., N) int64
    membrane: torch.Tensor    # v' after reset
    adaptation: torch.Tensor  # a'


def alif_run(spec: ALIFSpec, theta: torch.Tensor, beta: torch.Tensor, currents: torch.Tensor,
             noise: torch.Tensor | None = None) -> ALIFTrace:
    """Exact integer adaptive LIF over time (dim 0) from the zero state; see the module docstring.

    theta, beta : int64 (N,): per-neuron base threshold (>= 1) and leak numerator (0 .. 2^F).
    currents : int64 (T, ..., N), Wi-bit signed.  noise : int64 broadcastable to currents, or None.
    """
    currents = fixed.check_range(currents, spec.input_width, True, "ALIF input current")
    theta = fixed.check_range(theta, spec.membrane_width, True, "ALIF threshold")
    beta = fixed.check_range(beta, spec.leak_frac_bits + 2, False, "ALIF leak")
    if currents.dim() < 2 or currents.shape[-1] != spec.n_neurons:
        raise ValueError(f"ALIF currents must have shape (T, ..., {spec.n_neurons}); got {tuple(currents.shape)}")
    if theta.shape != (spec.n_neurons,) or beta.shape != (spec.n_neurons,):
        raise ValueError(f"ALIF theta and beta must have shape ({spec.n_neurons},)")
    if int(theta.min()) < 1 or int(beta.max()) > (1 << spec.leak_frac_bits):
        raise ValueError("ALIF thresholds must be >= 1 and leaks <= 2^F")
    if noise is not None:
        noise = torch.as_tensor(noise)
        if noise.is_floating_point() or torch.broadcast_shapes(noise.shape, currents.shape) != currents.shape:
            raise ValueError("ALIF noise must be an integer tensor broadcastable to the currents' shape")
    v = torch.zeros(currents.shape[1:], dtype=torch.int64)
    a = torch.zeros_like(v)
    spikes, membrane, adaptation = [], [], []
    for t in range(currents.shape[0]):
        drive = currents[t] if noise is None else currents[t] + noise[t].to(torch.int64)
        s, v, a = alif_step(spec, theta, beta, v, a, drive)
        spikes.append(s)
        membrane.append(v)
        adaptation.append(a)
    return ALIFTrace(torch.stack(spikes), torch.stack(membrane), torch.stack(adaptation))


class AdaptiveLIF(nn.Module):
    """Float adaptive-threshold LIF, multi-step (time on dim 0), with the seeded variation model.

    ``theta_n`` and ``beta_n`` are buffers drawn once from ``variation`` for layer index
    ``layer`` (saved with the model); see the module docstring for the equations.
    """

    def __init__(self, n: int, *, layer: int, threshold: float = 1.0, beta: float = 0.875,
                 adapt_increment: float = 0.5, adapt_shift: int = 2, variation: VariationSpec | None = None,
                 surrogate: str = "atan", alpha: float = 2.0):
        super().__init__()
        if threshold <= 0 or not 0 < beta <= 1 or adapt_increment < 0 or adapt_shift < 1:
            raise ValueError(f"AdaptiveLIF: need threshold > 0, 0 < beta <= 1, adapt_increment >= 0, "
                             f"adapt_shift >= 1; got {threshold}, {beta}, {adapt_increment}, {adapt_shift}")
        self.variation = variation or VariationSpec()
        self.layer, self.n = layer, n
        self.base_threshold, self.adapt_increment, self.adapt_shift = threshold, adapt_increment, adapt_shift
        self.surrogate, self.alpha = surrogate, alpha
        theta_n, beta_n = self.variation.draw(layer, n, threshold, beta)
        self.register_buffer("theta_n", theta_n.float())
        self.register_buffer("beta_n", beta_n.float())

    @property
    def noise_std(self) -> float:
        return self.variation.noise * self.base_threshold

    def noise_for(self, shape, dtype) -> torch.Tensor | None:
        if self.noise_std == 0:
            return None
        if self.training:
            return torch.randn(shape, dtype=dtype) * self.noise_std
        return (self.variation.noise_draw(self.layer, shape) * self.noise_std).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = self.noise_for(x.shape, x.dtype)
        decay = 1.0 - 2.0 ** -self.adapt_shift
        v = torch.zeros_like(x[0])
        a = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            h = self.beta_n * v + x[t] + (0 if noise is None else noise[t])
            th = self.theta_n + a
            s = spike_fn(h - th, self.surrogate, self.alpha)
            v = h - s * th
            a = decay * a + self.adapt_increment * s
            out.append(s)
        return torch.stack(out)


@dataclass
class QuantALIF:
    """An ``AdaptiveLIF`` in integer form at the scale 2^f of the currents that drive it."""

    spec: ALIFSpec
    theta: torch.Tensor      # int64 (N,)
    beta: torch.Tensor       # int64 (N,)
    frac: int
    noise_std: float         # real std; integer noise = round(noise_std 2^f g)
    variation: VariationSpec
    layer: int

    def noise(self, shape) -> torch.Tensor | None:
        """The integer noise of an evaluation pass: round(noise_std 2^f g), g the seeded draws."""
        if self.noise_std == 0:
            return None
        g = self.variation.noise_draw(self.layer, shape)
        return torch.round(g * (self.noise_std * (1 << self.frac))).to(torch.int64)

    def run(self, currents: torch.Tensor) -> ALIFTrace:
        return alif_run(self.spec, self.theta, self.beta, currents, self.noise(currents.shape))

    def __call__(self, currents: torch.Tensor) -> torch.Tensor:
        return self.run(currents).spikes


def quantize_alif(neuron: AdaptiveLIF, frac: int, *, membrane_width: int = 32, input_width: int = 32,
                  leak_frac_bits: int = 8, adapt_width: int = 32) -> QuantALIF:
    """theta_int = round(theta_n 2^f) (at least 1), b = round(beta_n 2^F), delta = round(delta 2^f)."""
    scale = float(1 << frac)
    theta = torch.clamp(torch.round(neuron.theta_n.double() * scale).to(torch.int64), min=1)
    beta = torch.round(neuron.beta_n.double() * (1 << leak_frac_bits)).to(torch.int64)
    spec = ALIFSpec(n_neurons=neuron.n, membrane_width=membrane_width, input_width=input_width,
                    leak_frac_bits=leak_frac_bits, adapt_shift=neuron.adapt_shift,
                    adapt_increment=int(round(neuron.adapt_increment * scale)), adapt_width=adapt_width)
    return QuantALIF(spec, theta, beta, frac, neuron.noise_std, neuron.variation, neuron.layer)


# ---------------------------------------------------------------------------
# One step, the hardware's beat stream, and reference vectors (``rtl.alif.ALIFArray``)

#: input beat kinds of the array's stream: a time step of one group, or a parameter write
UPDATE, WRITE = 0, 1
BEAT_KINDS = ("update", "write")


def alif_step(spec: ALIFSpec, theta: torch.Tensor, beta: torch.Tensor, v: torch.Tensor, a: torch.Tensor,
              drive: torch.Tensor, increment: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One exact step of the module docstring's equations: (spike, v', a') from (v, a), drive = i + e;
    delta is ``increment`` when given (a run-time increment), else ``spec.adapt_increment``.

    The one place the equations are written: ``alif_run`` loops it over time and the beat-level
    model (``alif_run_beats``) applies it per beat; ``tests/test_alif.py`` checks both against a
    plain-Python recurrence and a hand calculation. All int64, any matching shapes.
    """
    h = fixed.saturate(fixed.mul_shift(v, beta, spec.leak_frac_bits) + drive, spec.membrane_width, True)
    th = theta + a
    spike = h >= th
    v_new = torch.where(spike, h - th, h)
    delta = spec.adapt_increment if increment is None else increment
    a_new = fixed.saturate(a - fixed.asr(a, spec.adapt_shift) + delta * spike.to(torch.int64),
                           spec.adapt_width, False)
    return spike.to(torch.int64), v_new, a_new


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            as_int = None
        if as_int is None or as_int != value:
            raise ValueError(f"{what} must be an integer, got {value!r}")
        value = as_int
    return value


def _lane_values(spec: ALIFSpec, beat: dict, name: str, lo: int, hi: int, what: str) -> list[int]:
    values = beat[name]
    if isinstance(values, (int, bool)) or not hasattr(values, "__len__"):
        raise ValueError(f"{what} must be a list of {spec.lanes} integers, got {values!r}")
    values = [_int(x, what) for x in values]
    if len(values) != spec.lanes:
        raise ValueError(f"{what} has {len(values)} values; the spec has lanes = {spec.lanes}")
    bad = [x for x in values if not lo <= x <= hi]
    if bad:
        raise ValueError(f"{what} = {bad[0]} is out of range; allowed: {lo} .. {hi}")
    return values


def alif_normalize_beats(spec: ALIFSpec, beats) -> list[dict]:
    """Check input beats and return them as dicts with every field of the array's input beat.

    A beat is a mapping with ``kind`` (UPDATE 0 / WRITE 1; default UPDATE) and:

    * UPDATE: ``first`` (0 / 1: the group starts from v = 0, a = 0), ``current`` (P Wi-bit
      signed), ``noise`` (P We-bit signed; required iff We > 0, forbidden otherwise), ``group``
      (0 .. G - 1; required iff ``addressed``; otherwise it may only repeat the cyclic counter's
      value, which counts update beats only).
      With ``param_groups``: ``param_group`` (0 .. Gp - 1), the parameter word it reads.
    * WRITE: ``group`` (the parameter word, 0 .. ``param_depth`` - 1) and that word's parameters
      ``theta`` (P values, 1 .. 2^(Wv-1) - 1) and ``beta`` (P values, 0 .. 2^F).

    Fields a kind does not use come back as zeros (the hardware ignores them). Anything else is
    a ``ValueError`` that names the beat and the field.
    """
    lanes, groups = spec.lanes, spec.groups
    allowed = {"kind", "first", "group", "param_group", "current", "noise", "theta", "beta", "increment"}
    depth = spec.param_depth
    i_lo, i_hi = fixed.int_min(spec.input_width, True), fixed.int_max(spec.input_width, True)
    zeros = [0] * lanes
    out, updates = [], 0
    for k, beat in enumerate(beats):
        if not isinstance(beat, dict):
            raise ValueError(f"ALIF beat {k} must be a mapping of its fields, got {type(beat).__name__}")
        unknown = sorted(set(beat) - allowed)
        if unknown:
            raise ValueError(f"ALIF beat {k} has unknown field(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(allowed))}")
        kind = _int(beat.get("kind", UPDATE), f"ALIF beat {k} kind")
        if kind not in (UPDATE, WRITE):
            raise ValueError(f"ALIF beat {k} kind = {kind} is out of range; allowed: 0 (update), 1 (write)")
        norm = {"kind": kind, "first": 0, "group": 0, "current": zeros, "theta": zeros, "beta": zeros}
        if spec.param_groups:
            norm["param_group"] = 0
        elif "param_group" in beat:
            raise ValueError(f"ALIF beat {k} names a param_group, but the spec has param_groups = 0 (the "
                             f"parameters are read at the state's address)")
        if spec.noise_width:
            norm["noise"] = zeros
        if spec.runtime_increment:
            norm["increment"] = 0
        if kind == WRITE:
            for name in ("group", "theta", "beta"):
                if name not in beat:
                    raise ValueError(f"ALIF beat {k} (write) needs {name!r}")
            theta_max = fixed.int_max(spec.membrane_width, True)
            norm["theta"] = _lane_values(spec, beat, "theta", 1, theta_max, f"ALIF beat {k} theta")
            norm["beta"] = _lane_values(spec, beat, "beta", 0, 1 << spec.leak_frac_bits, f"ALIF beat {k} beta")
            group = _int(beat["group"], f"ALIF beat {k} group")
            if not 0 <= group < depth:
                raise ValueError(f"ALIF beat {k} group = {group} is out of range; allowed: 0 .. {depth - 1} "
                                 f"(the parameter memory's words)")
            norm["group"] = group
            out.append(norm)
            continue
        for name in ("first", "current"):
            if name not in beat:
                raise ValueError(f"ALIF beat {k} (update) needs {name!r}")
        first = _int(beat["first"], f"ALIF beat {k} first")
        if first not in (0, 1):
            raise ValueError(f"ALIF beat {k} first = {first} is out of range; allowed: 0 .. 1")
        norm["first"] = first
        norm["current"] = _lane_values(spec, beat, "current", i_lo, i_hi, f"ALIF beat {k} current")
        if spec.noise_width:
            if "noise" not in beat:
                raise ValueError(f"ALIF beat {k} (update) needs 'noise' (the spec has noise_width = "
                                 f"{spec.noise_width})")
            n_lo, n_hi = fixed.int_min(spec.noise_width, True), fixed.int_max(spec.noise_width, True)
            norm["noise"] = _lane_values(spec, beat, "noise", n_lo, n_hi, f"ALIF beat {k} noise")
        elif "noise" in beat and any(_int(x, f"ALIF beat {k} noise") for x in beat["noise"]):
            raise ValueError(f"ALIF beat {k} carries noise, but the spec has noise_width = 0 (no noise input)")
        if spec.runtime_increment:
            if "increment" not in beat:
                raise ValueError(f"ALIF beat {k} (update) needs 'increment' (the spec has runtime_increment)")
            inc = _int(beat["increment"], f"ALIF beat {k} increment")
            if not 0 <= inc <= fixed.int_max(spec.adapt_width, False):
                raise ValueError(f"ALIF beat {k} increment = {inc} is out of range; allowed: 0 .. "
                                 f"{fixed.int_max(spec.adapt_width, False)}")
            norm["increment"] = inc
        elif "increment" in beat:
            raise ValueError(f"ALIF beat {k} carries 'increment', but the spec has no runtime_increment "
                             f"(delta = adapt_increment = {spec.adapt_increment})")
        cyclic = updates % groups
        if spec.addressed:
            if "group" not in beat:
                raise ValueError(f"ALIF beat {k} has no 'group' (the spec is addressed)")
            group = _int(beat["group"], f"ALIF beat {k} group")
            if not 0 <= group < groups:
                raise ValueError(f"ALIF beat {k} group = {group} is out of range; allowed: 0 .. {groups - 1}")
        else:
            group = _int(beat.get("group", cyclic), f"ALIF beat {k} group")
            if group != cyclic:
                raise ValueError(f"ALIF beat {k} names group {group}, but the spec is not addressed: it is "
                                 f"update beat {updates}, which updates group {cyclic} (its index mod G)")
        norm["group"] = group
        if spec.param_groups:
            if "param_group" not in beat:
                raise ValueError(f"ALIF beat {k} has no 'param_group' (the spec has param_groups = {spec.param_groups})")
            pg = _int(beat["param_group"], f"ALIF beat {k} param_group")
            if not 0 <= pg < spec.param_groups:
                raise ValueError(f"ALIF beat {k} param_group = {pg} is out of range; allowed: 0 .. "
                                 f"{spec.param_groups - 1}")
            norm["param_group"] = pg
        updates += 1
        out.append(norm)
    return out


def _check_params(spec: ALIFSpec, theta, beta, allow_unloaded: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-neuron (theta, beta) as int64 (``param_neurons``,); None -> zeros (memory after reset: not
    loaded)."""
    n = spec.param_neurons
    theta = torch.zeros(n, dtype=torch.int64) if theta is None else torch.as_tensor(theta)
    beta = torch.zeros(n, dtype=torch.int64) if beta is None else torch.as_tensor(beta)
    for name, values, lo, hi in (("theta", theta, 0 if allow_unloaded else 1, fixed.int_max(spec.membrane_width, True)),
                                 ("beta", beta, 0, 1 << spec.leak_frac_bits)):
        if values.is_floating_point() or values.dtype == torch.bool or tuple(values.shape) != (n,):
            raise ValueError(f"ALIF {name} must be an integer tensor of shape ({n},), got {values.dtype} "
                             f"{tuple(values.shape)}")
        if n and (int(values.min()) < lo or int(values.max()) > hi):
            raise ValueError(f"ALIF {name} holds values in [{int(values.min())}, {int(values.max())}]; "
                             f"allowed: {lo} .. {hi}")
    return theta.to(torch.int64), beta.to(torch.int64)


def alif_run_beats(spec: ALIFSpec, beats, theta=None, beta=None) -> ALIFTrace:
    """The array's stream semantics, beat by beat (golden model of ``rtl.alif.ALIFArray``).

    The array holds G state words (v, a) of P lanes, all zero after reset, and ``param_depth``
    parameter words (theta_n, b_n), initially ``theta`` / ``beta`` (``param_neurons``,) (the
    component's init values; None: zeros, i.e. not loaded). Beats (``alif_normalize_beats``) in
    stream order::

        WRITE(g, theta, beta):   params[g] = (theta, beta)
        UPDATE k of group g_k:   (v, a) = (0, 0) if first else state[g_k]
                                 spike, v', a' = alif_step(params[p_k], v, a, i + e)
                                 state[g_k] = (v', a');  output beat (spike, v', a')

    with g_k = ``group`` (``addressed``) or k mod G (k counts update beats), and p_k = the
    beat's ``param_group`` (``param_groups``) or g_k. An update whose parameter word's thresholds
    are not loaded (theta_n = 0 in some lane) is a ``ValueError``.

    Returns
    -------
    ALIFTrace of (U, P) int64 arrays, row u for the u-th update beat.
    """
    beats = alif_normalize_beats(spec, beats)
    theta, beta = _check_params(spec, theta, beta, allow_unloaded=True)
    lanes = spec.lanes
    params = [[theta[g * lanes:(g + 1) * lanes].clone(), beta[g * lanes:(g + 1) * lanes].clone()]
              for g in range(spec.param_depth)]
    zeros = torch.zeros(lanes, dtype=torch.int64)
    state = [(zeros, zeros) for _ in range(spec.groups)]
    spikes, membrane, adaptation = [], [], []
    for k, beat in enumerate(beats):
        g = beat["group"]
        if beat["kind"] == WRITE:
            params[g] = [torch.tensor(beat["theta"], dtype=torch.int64), torch.tensor(beat["beta"], dtype=torch.int64)]
            continue
        pg = beat["param_group"] if spec.param_groups else g
        th, b = params[pg]
        if int(th.min()) < 1:
            word = f" (parameter word {pg})" if spec.param_groups else ""
            raise ValueError(f"ALIF beat {k} updates group {g}, whose thresholds are not loaded{word} (theta_n = 0): "
                             f"send a WRITE beat for it first or give the initial theta")
        v, a = (zeros, zeros) if beat["first"] else state[g]
        drive = torch.tensor(beat["current"], dtype=torch.int64)
        if spec.noise_width:
            drive = drive + torch.tensor(beat["noise"], dtype=torch.int64)
        s, v, a = alif_step(spec, th, b, v, a, drive, beat["increment"] if spec.runtime_increment else None)
        state[g] = (v, a)
        spikes.append(s)
        membrane.append(v)
        adaptation.append(a)
    if not spikes:
        empty = torch.zeros(0, lanes, dtype=torch.int64)
        return ALIFTrace(empty, empty.clone(), empty.clone())
    return ALIFTrace(torch.stack(spikes), torch.stack(membrane), torch.stack(adaptation))


def alif_threshold_scale(spec: ALIFSpec) -> int:
    """A base threshold for test stimulus: a quarter of the membrane range, at most the input range."""
    return max(1, min(fixed.int_max(spec.membrane_width, True) // 4, fixed.int_max(spec.input_width, True)))


def alif_random_params(spec: ALIFSpec, seed: int = 0, threshold: int | None = None,
                       spread: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded per-neuron (theta_n, b_n), int64 (N,), spread as the variation model spreads them.

    theta_n = round(threshold (1 + spread u)), b_n = round(2^F min(1, 0.85 (1 + spread w))),
    u, w ~ U(-1, 1) (``VariationSpec.draw``), clamped to their ranges; about one neuron in 16
    takes an extreme instead (theta_n = 1 or 2^(Wv-1) - 1, b_n = 0 or 2^F), so the
    hardware's corner cases are in every random vector set.
    """
    threshold = alif_threshold_scale(spec) if threshold is None else threshold
    variation = VariationSpec(seed=seed, threshold_spread=min(spread, 0.9), leak_spread=min(spread, 0.9))
    theta_f, beta_f = variation.draw(0, spec.n_neurons, float(threshold), 0.85)
    theta_max = fixed.int_max(spec.membrane_width, True)
    one = 1 << spec.leak_frac_bits
    theta = torch.clamp(torch.round(theta_f).to(torch.int64), 1, theta_max)
    beta = torch.clamp(torch.round(beta_f * one).to(torch.int64), 0, one)
    gen = torch.Generator().manual_seed(seed * SEED_STRIDE + 7)
    pick = torch.rand(spec.n_neurons, generator=gen)
    theta = torch.where(pick < 1 / 32, torch.tensor(1), torch.where(pick > 31 / 32, torch.tensor(theta_max), theta))
    pick = torch.rand(spec.n_neurons, generator=gen)
    beta = torch.where(pick < 1 / 32, torch.tensor(0), torch.where(pick > 31 / 32, torch.tensor(one), beta))
    return theta, beta


def alif_random_inputs(spec: ALIFSpec, n_sequences: int, n_steps: int, seed: int = 0,
                       threshold: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded stimulus (currents, noise), both int64 (S, T, N), that exercises every rule.

    Currents are drawn around the threshold scale (neurons fire at a useful rate and the
    adaptation builds up), about 2 % are the extreme input values, and one sequence in four
    drives a few neurons hard positive or negative (saturation both ways). The noise is drawn
    within +-threshold / 2 with about 2 % at its extremes (all zero when We = 0).
    """
    if n_sequences < 1 or n_steps < 1:
        raise ValueError(f"need n_sequences >= 1 and n_steps >= 1, got {n_sequences}, {n_steps}")
    threshold = alif_threshold_scale(spec) if threshold is None else threshold
    gen = torch.Generator().manual_seed(seed)
    shape = (n_sequences, n_steps, spec.n_neurons)
    lo, hi = fixed.int_min(spec.input_width, True), fixed.int_max(spec.input_width, True)
    scale = max(1, min(threshold, hi))
    base = torch.randint(-scale // 2, scale + 1, shape, generator=gen, dtype=torch.int64)
    extreme = torch.rand(shape, generator=gen) < 0.02
    sign = torch.rand(shape, generator=gen) < 0.5
    base = torch.where(extreme, torch.where(sign, torch.tensor(hi), torch.tensor(lo)), base)
    hard = torch.zeros(shape, dtype=torch.bool)
    hard[::4, :, : max(1, spec.n_neurons // 8)] = True
    drive = torch.where(torch.rand(shape, generator=gen) < 0.5, torch.tensor(hi), torch.tensor(lo))
    currents = torch.clamp(torch.where(hard & (torch.rand(shape, generator=gen) < 0.8), drive, base), lo, hi)
    if not spec.noise_width:
        return currents, torch.zeros(shape, dtype=torch.int64)
    n_lo, n_hi = fixed.int_min(spec.noise_width, True), fixed.int_max(spec.noise_width, True)
    amp = max(1, min(scale // 2, n_hi))
    noise = torch.randint(-amp, amp + 1, shape, generator=gen, dtype=torch.int64)
    extreme = torch.rand(shape, generator=gen) < 0.02
    sign = torch.rand(shape, generator=gen) < 0.5
    noise = torch.where(extreme, torch.where(sign, torch.tensor(n_hi), torch.tensor(n_lo)), noise)
    return currents, torch.clamp(noise, n_lo, n_hi)


def alif_reference(spec: ALIFSpec, theta, beta, currents, noise=None) -> dict[str, torch.Tensor]:
    """Arrays of an ALIF vector file: S independent sequences through ``alif_run``.

    ``theta``, ``beta`` (N,); ``currents`` (S, T, N); ``noise`` (S, T, N) or None (zeros). Returns
    ``theta``, ``beta`` (N,) int64, ``currents``, ``noise``, ``membrane``, ``adaptation`` (S, T, N)
    int64 and ``spikes`` (S, T, N) uint8; each sequence starts from v = 0, a = 0.
    """
    theta, beta = _check_params(spec, theta, beta, allow_unloaded=False)
    currents = torch.as_tensor(currents)
    if currents.dim() != 3 or currents.shape[2] != spec.n_neurons:
        raise ValueError(f"ALIF currents must have shape (sequences, steps, {spec.n_neurons}); "
                         f"got {tuple(currents.shape)}")
    noise = torch.zeros_like(currents, dtype=torch.int64) if noise is None else torch.as_tensor(noise)
    if tuple(noise.shape) != tuple(currents.shape):
        raise ValueError(f"ALIF noise has shape {tuple(noise.shape)}; the currents have {tuple(currents.shape)}")
    if spec.noise_width:
        noise = fixed.check_range(noise, spec.noise_width, True, "ALIF noise")
    elif bool((noise != 0).any()):
        raise ValueError("ALIF noise must be zero: the spec has noise_width = 0 (no noise input)")
    trace = alif_run(spec, theta, beta, currents.movedim(1, 0), noise.movedim(1, 0).to(torch.int64))
    return {"theta": theta, "beta": beta, "currents": currents.to(torch.int64), "noise": noise.to(torch.int64),
            "spikes": trace.spikes.movedim(0, 1).contiguous().to(torch.uint8),
            "membrane": trace.membrane.movedim(0, 1).contiguous(),
            "adaptation": trace.adaptation.movedim(0, 1).contiguous()}


def alif_beat_reference(spec: ALIFSpec, beats, theta=None, beta=None) -> dict[str, torch.Tensor]:
    """Arrays of a beat-level ALIF vector file (any group order, WRITEs anywhere): B beats, U updates.

    ``kind``, ``first`` (B,) uint8; ``group`` (B,) int64; ``param_group`` (B,) int64 with
    ``param_groups``; ``current``, ``theta``, ``beta`` (B, P) int64 (a WRITE's parameters; zeros in
    updates), ``noise`` (B, P) if We > 0; ``init_theta``, ``init_beta`` (``param_neurons``,), the
    parameter memory's initial contents; and the golden ``spikes``
    (U, P) uint8, ``membrane``, ``adaptation`` (U, P) int64 of ``alif_run_beats``.
    """
    beats = alif_normalize_beats(spec, beats)
    init_theta, init_beta = _check_params(spec, theta, beta, allow_unloaded=True)
    trace = alif_run_beats(spec, beats, init_theta, init_beta)
    lanes = spec.lanes

    def rows(name):
        return torch.tensor([b[name] for b in beats], dtype=torch.int64).reshape(-1, lanes)

    arrays = {"kind": torch.tensor([b["kind"] for b in beats], dtype=torch.uint8),
              "first": torch.tensor([b["first"] for b in beats], dtype=torch.uint8),
              "group": torch.tensor([b["group"] for b in beats], dtype=torch.int64),
              "current": rows("current")}
    if spec.param_groups:
        arrays["param_group"] = torch.tensor([b["param_group"] for b in beats], dtype=torch.int64)
    if spec.noise_width:
        arrays["noise"] = rows("noise")
    arrays.update({"theta": rows("theta"), "beta": rows("beta"), "init_theta": init_theta, "init_beta": init_beta,
                   "spikes": trace.spikes.to(torch.uint8), "membrane": trace.membrane,
                   "adaptation": trace.adaptation})
    return arrays


def alif_beats_from_arrays(spec: ALIFSpec, arrays) -> list[dict]:
    """The input beats of a beat-level vector file (``alif_beat_reference``'s arrays), checked."""
    current = arrays["current"]
    if current.ndim != 2 or current.shape[1] != spec.lanes:
        raise ValueError(f"ALIF beat vectors: 'current' has shape {tuple(current.shape)}, expected "
                         f"(beats, {spec.lanes})")
    lane_fields = ["current", "theta", "beta"] + (["noise"] if spec.noise_width else [])
    word_fields = ["kind", "first", "group"] + (["param_group"] if spec.param_groups else [])
    for name in word_fields + lane_fields:
        if name not in arrays:
            raise ValueError(f"ALIF beat vectors have no {name!r} array")
        want = current.shape if name in lane_fields else current.shape[:1]
        if tuple(arrays[name].shape) != tuple(want):
            raise ValueError(f"ALIF beat vectors: {name!r} has shape {tuple(arrays[name].shape)}, "
                             f"expected {tuple(want)}")
    beats = [{**{name: int(arrays[name][k]) for name in word_fields},
              **{name: [int(x) for x in arrays[name][k]] for name in lane_fields}}
             for k in range(current.shape[0])]
    for k, beat in enumerate(beats):  # a field the beat's kind does not use is only checked to be zero
        if beat["kind"] not in (UPDATE, WRITE):
            continue  # alif_normalize_beats names the bad kind
        unused = ("theta", "beta") if beat["kind"] == UPDATE else ("first", "current", "noise", "param_group")
        for name in unused:
            if name in beat and (any(beat[name]) if isinstance(beat[name], list) else beat[name]):
                kind = ("an update", "a write")[beat["kind"]]
                raise ValueError(f"ALIF beat vectors: beat {k}, {kind} beat, carries a nonzero {name!r}, "
                                 f"which that kind does not use")
            beat.pop(name, None)
    return alif_normalize_beats(spec, beats)
