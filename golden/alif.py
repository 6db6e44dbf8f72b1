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
from .spec import SpecBase, SpecError, check_int

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
    """

    block = "alif"

    n_neurons: int = 16
    membrane_width: int = 24
    input_width: int = 24
    leak_frac_bits: int = 8
    adapt_shift: int = 2
    adapt_increment: int = 128
    adapt_width: int = 24

    def __post_init__(self):
        name = "ALIFSpec"
        check_int(name, "n_neurons", self.n_neurons, 1, 1 << 20)
        check_int(name, "membrane_width", self.membrane_width, 4, 40)
        check_int(name, "input_width", self.input_width, 2, 40)
        check_int(name, "leak_frac_bits", self.leak_frac_bits, 1, 16)
        check_int(name, "adapt_shift", self.adapt_shift, 1, 16)
        check_int(name, "adapt_width", self.adapt_width, 1, 40)
        check_int(name, "adapt_increment", self.adapt_increment, 0, fixed.int_max(self.adapt_width, False))


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
        h = fixed.saturate(fixed.mul_shift(v, beta, spec.leak_frac_bits) + drive, spec.membrane_width, True)
        th = theta + a
        s = h >= th
        v = torch.where(s, h - th, h)
        a = fixed.saturate(a - fixed.asr(a, spec.adapt_shift) + spec.adapt_increment * s.to(torch.int64),
                           spec.adapt_width, False)
        spikes.append(s.to(torch.int64))
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
