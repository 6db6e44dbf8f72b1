"""Pieces shared by the spiking-transformer golden models (Spikformer, Spike-driven V2,
SpikingResformer, TEFormer) on top of ``golden/layers.py``.

Layout: every activation is time-first and channel-last, ``(T, B, N, C)`` with N tokens
(an H x W grid flattened row-major for the vision models).

* ``SpikingLinearBN``: the shared ``SpikingLinear`` with a batch norm on its currents
  (the papers' Linear/Conv -> BN -> LIF). Integer mode folds the eval-mode BN into the
  weights, ``W' = W g / sqrt(var + eps)``, ``b' = (b - mu) g / sqrt(var + eps) + beta_bn``,
  and quantizes with ``quantize_spiking_linear`` -- the foundation's contract unchanged.
* ``LinearBN``: the same without the LIF (layers that write a membrane-shortcut stream);
  integer mode is a ``QuantLinear`` with a caller-chosen fraction (the stream's).
* ``im2col`` turns a k x k convolution into a ``SpikingLinear`` over patches, for float and
  integer tensors alike (zero padding), so convolutions reuse the same layers and contract.
* LIF defaults follow the papers (spikingjelly ``LIFNode``: tau = 2, V_th = 1, hard reset
  to 0, sigmoid surrogate with alpha = 4, detached reset). spikingjelly integrates
  ``H = V + (X - V) / tau`` ("decay_input"); our LIF integrates ``H = beta V + X`` with
  beta = 1 - 1/tau, so the 1/tau on the input is folded into the preceding weights (the
  batch norm learns it) or, where the input scale is fixed (attention), into the scale.

Energy counting: every layer here reports to the active ``golden.energy.Meter`` under its
``meter_name`` (set by ``name_layers``), in float and integer mode alike.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .. import energy, fixed
from ..layers import (QuantLinear, QuantSpikingLinear, SpikingLinear, lif_run_time_first, quantize_linear,
                      quantize_spiking_linear)
from ..lif import LIF, LIFSpec

PIXEL_FRAC = 4          # digits pixels 0..16 are exactly x * 2^4
MEMBRANE_WIDTH = 24     # integer membrane and current widths of every model here
LEAK_FRAC = 8           # multiply leak b = round(beta 2^8)


def paper_lif(tau: float = 2.0, threshold: float = 1.0, reset_mode: str = "zero") -> LIF:
    """spikingjelly's MultiStepLIFNode defaults: beta = 1 - 1/tau, hard reset, sigmoid(alpha=4), detached reset."""
    if not tau > 1.0:
        raise ValueError(f"LIF time constant tau must be > 1, got {tau}")
    return LIF(beta=1.0 - 1.0 / tau, threshold=threshold, reset_mode=reset_mode, surrogate="sigmoid",
               alpha=4.0, step_mode="m", detach_reset=True)


def lif_spec(n: int, beta: float, threshold_int: int, reset_mode: str = "zero") -> LIFSpec:
    """The integer LIF of every model here: 24-bit membrane and current, multiply leak round(beta 2^8)."""
    return LIFSpec(n_neurons=n, lanes=1, membrane_width=MEMBRANE_WIDTH, input_width=MEMBRANE_WIDTH,
                   threshold=max(1, int(threshold_int)), leak_mode="multiply",
                   leak_beta=int(round(beta * (1 << LEAK_FRAC))), leak_frac_bits=LEAK_FRAC,
                   reset_mode=reset_mode)


def name_layers(model: nn.Module) -> None:
    """Give every counting layer its dotted module name as ``meter_name``."""
    for name, module in model.named_modules():
        if hasattr(module, "meter_name"):
            module.meter_name = name


class LinearBN(nn.Module):
    """c = BN(W x + b) over the last dim, any leading dims; no spiking neuron."""

    def __init__(self, in_features: int, out_features: int, *, spiking_input: bool = True, bn: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features) if bn else None
        self.spiking_input = spiking_input
        self.meter_name = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy.count_linear(self.meter_name, x, self.linear.out_features, spiking_input=self.spiking_input)
        c = self.linear(x)
        if self.bn is not None:
            c = self.bn(c.reshape(-1, c.shape[-1])).reshape(c.shape)
        return c

    def folded(self) -> nn.Linear:
        """An ``nn.Linear`` equal to this layer in eval mode (BN folded in)."""
        return fold_bn(self.linear, self.bn)

    def to_integer(self, weight_frac: int, input_frac: int = 0, weight_bits: int = 8) -> "IntLinear":
        q = quantize_linear(self.folded(), weight_bits=weight_bits, input_frac=input_frac, weight_frac=weight_frac)
        return IntLinear(q, self.meter_name, self.spiking_input)

    def natural_frac(self, weight_bits: int = 8) -> int:
        from ..layers import weight_frac_for
        return weight_frac_for(self.folded().weight, weight_bits)


def fold_bn(linear: nn.Linear, bn: nn.BatchNorm1d | None) -> nn.Linear:
    out = nn.Linear(linear.in_features, linear.out_features)
    with torch.no_grad():
        w = linear.weight.detach().double()
        b = linear.bias.detach().double() if linear.bias is not None else torch.zeros(linear.out_features,
                                                                                      dtype=torch.float64)
        if bn is not None:
            g = (bn.weight.detach().double() if bn.affine else torch.ones_like(b))
            beta = (bn.bias.detach().double() if bn.affine else torch.zeros_like(b))
            inv = g / torch.sqrt(bn.running_var.double() + bn.eps)
            w = w * inv[:, None]
            b = (b - bn.running_mean.double()) * inv + beta
        out.weight.copy_(w.float())
        out.bias.copy_(b.float())
    return out


class SpikingLinearBN(SpikingLinear):
    """``SpikingLinear`` with BN on the currents: s = LIF(BN(W x + b)); input (T, ..., in)."""

    def __init__(self, in_features: int, out_features: int, *, tau: float = 2.0, threshold: float = 1.0,
                 spiking_input: bool = True, bn: bool = True):
        super().__init__(in_features, out_features, beta=1.0 - 1.0 / tau, threshold=threshold)
        self.lif = paper_lif(tau, threshold)
        self.bn = nn.BatchNorm1d(out_features) if bn else None
        self.spiking_input = spiking_input
        self.meter_name = ""

    def forward_currents(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        energy.count_linear(self.meter_name, x, self.linear.out_features, spiking_input=self.spiking_input)
        c = self.linear(x)
        if self.bn is not None:
            c = self.bn(c.reshape(-1, c.shape[-1])).reshape(c.shape)
        s = self.lif(c)
        energy.count_spikes(self.meter_name, s)
        return c, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_currents(x)[1]

    def to_integer(self, input_frac: int = 0, weight_bits: int = 8) -> "IntSpikingLinear":
        plain = SpikingLinear(self.linear.in_features, self.linear.out_features)
        plain.linear = fold_bn(self.linear, self.bn)
        plain.lif = copy.deepcopy(self.lif)
        q = quantize_spiking_linear(plain, weight_bits=weight_bits, input_frac=input_frac,
                                    membrane_width=MEMBRANE_WIDTH, input_width=MEMBRANE_WIDTH,
                                    leak_frac_bits=LEAK_FRAC)
        return IntSpikingLinear(q, self.meter_name, self.spiking_input)


@dataclass
class IntLinear:
    """Integer ``LinearBN`` that also counts its operations."""

    q: QuantLinear
    meter_name: str
    spiking_input: bool

    def __call__(self, x_int: torch.Tensor) -> torch.Tensor:
        energy.count_linear(self.meter_name, x_int, self.q.weight.shape[0], spiking_input=self.spiking_input)
        return self.q(x_int)


@dataclass
class IntSpikingLinear:
    """Integer ``SpikingLinearBN`` (a ``QuantSpikingLinear``) that also counts its operations."""

    q: QuantSpikingLinear
    meter_name: str
    spiking_input: bool

    def trace(self, x_int: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_int (T, ..., in) -> (currents, spikes), both int64 (T, ..., out)."""
        energy.count_linear(self.meter_name, x_int, self.q.weight.shape[0], spiking_input=self.spiking_input)
        currents, tr = self.q.forward_trace(x_int)
        energy.count_spikes(self.meter_name, tr.spikes)
        return currents, tr.spikes

    def __call__(self, x_int: torch.Tensor) -> torch.Tensor:
        return self.trace(x_int)[1]


class StreamLIF(nn.Module):
    """A LIF on a real-valued stream (membrane shortcut models, attention products), counted."""

    def __init__(self, tau: float = 2.0, threshold: float = 1.0):
        super().__init__()
        self.lif = paper_lif(tau, threshold)
        self.meter_name = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lif(x)
        energy.count_spikes(self.meter_name, s)
        return s

    @property
    def beta(self) -> float:
        return float(self.lif.beta)

    def to_integer(self, n: int, threshold_int: int) -> "IntStreamLIF":
        return IntStreamLIF(lif_spec(n, self.beta, threshold_int, self.lif.reset_mode), self.meter_name)


@dataclass
class IntStreamLIF:
    spec: LIFSpec
    meter_name: str

    def __call__(self, currents: torch.Tensor) -> torch.Tensor:
        currents = fixed.saturate(currents, self.spec.input_width, True)
        s = lif_run_time_first(self.spec, currents).spikes
        energy.count_spikes(self.meter_name, s)
        return s


# ---- convolution as patches -----------------------------------------------------------------------

def im2col(x: torch.Tensor, height: int, width: int, kernel: int = 3, stride: int = 1,
           padding: int | None = None) -> torch.Tensor:
    """Patches of a channel-last grid: x (..., H*W, C) -> (..., H'*W', k*k*C), zero padding k // 2
    (or ``padding``).

    Works on float and integer tensors (no arithmetic, only copies), so a convolution is a
    ``SpikingLinear`` on the patches in both modes. Patch element order: (di, dj, c).
    """
    *lead, n, c = x.shape
    if n != height * width:
        raise ValueError(f"im2col: {n} tokens is not a {height} x {width} grid")
    pad = kernel // 2 if padding is None else padding
    grid = x.reshape(*lead, height, width, c)
    grid = F.pad(grid, (0, 0, pad, pad, pad, pad))
    h_out = (height + 2 * pad - kernel) // stride + 1
    w_out = (width + 2 * pad - kernel) // stride + 1
    cols = [grid[..., di:di + stride * (h_out - 1) + 1:stride, dj:dj + stride * (w_out - 1) + 1:stride, :]
            for di in range(kernel) for dj in range(kernel)]
    return torch.cat(cols, dim=-1).reshape(*lead, h_out * w_out, kernel * kernel * c)


def maxpool2(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """2 x 2 max pooling, stride 2, of a channel-last grid (..., H*W, C) -> (..., H*W/4, C).

    On spikes this is an OR of four neighbours: exact in both modes, no arithmetic.
    """
    *lead, n, c = x.shape
    grid = x.reshape(*lead, height // 2, 2, width // 2, 2, c)
    return grid.amax(dim=(-4, -2)).reshape(*lead, (height // 2) * (width // 2), c)


def pixels_to_time(x: torch.Tensor, time_steps: int) -> torch.Tensor:
    """(B, 1, 8, 8) image -> (T, B, 64, 1) tokens, the same at every step (direct encoding).

    A (T, B, 1, 8, 8) input gives each step its own frame (event-style input; also how the
    tests show that no output looks ahead in time).
    """
    if x.dim() == 5 and tuple(x.shape[2:]) == (1, 8, 8):
        if x.shape[0] != time_steps:
            raise ValueError(f"per-step input has {x.shape[0]} steps; the model runs T = {time_steps}")
        return x.flatten(2).unsqueeze(-1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 8, 8):
        raise ValueError(f"digits models take images (B, 1, 8, 8) or per-step frames (T, B, 1, 8, 8); "
                         f"got {tuple(x.shape)}")
    tokens = x.flatten(1).unsqueeze(-1)
    return tokens.unsqueeze(0).expand(time_steps, *tokens.shape)


def check_int_pixels(pixels: torch.Tensor, what: str) -> torch.Tensor:
    pixels = torch.as_tensor(pixels)
    if pixels.is_floating_point() or pixels.dim() not in (4, 5) or tuple(pixels.shape[-3:]) != (1, 8, 8):
        raise ValueError(f"{what} takes integer pixels (B, 1, 8, 8) or (T, B, 1, 8, 8) in 0..16; got "
                         f"{pixels.dtype} {tuple(pixels.shape)}")
    pixels = pixels.to(torch.int64)
    if pixels.numel() and (int(pixels.min()) < 0 or int(pixels.max()) > 16):
        raise ValueError(f"{what}: pixels must lie in 0..16, got {int(pixels.min())}..{int(pixels.max())}")
    return pixels


def batch_size_of(x: torch.Tensor) -> int:
    return x.shape[1] if x.dim() == 5 else x.shape[0]


def to_int_pixels(x: torch.Tensor) -> torch.Tensor:
    """Float digits images in [0, 1] -> the exact integer pixels 0..16 (x * 2^4)."""
    return torch.round(x * (1 << PIXEL_FRAC)).to(torch.int64)


class Readout(nn.Module):
    """Class head: logits = mean_t (W mean_n x_t + b). Integer: sum_t (W sum_n x_t + N b) = T N 2^f logits."""

    def __init__(self, dim: int, classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(dim, classes)
        self.meter_name = ""

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=-2)                               # (T, B, D)
        energy.count_linear(self.meter_name, pooled, self.linear.out_features, spiking_input=False)
        return self.linear(pooled)                            # (T, B, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_steps(x).mean(dim=0)

    def to_integer(self, weight_bits: int = 8) -> "IntReadout":
        return IntReadout(quantize_linear(self.linear, weight_bits=weight_bits), self.meter_name)


@dataclass
class IntReadout:
    q: QuantLinear
    meter_name: str

    def steps(self, x_int: torch.Tensor) -> torch.Tensor:
        """x_int (T, B, N, D) -> per-step logits (T, B, classes) = W sum_n x_t + N b (exact int64)."""
        pooled = x_int.sum(dim=-2)
        energy.count_linear(self.meter_name, pooled, self.q.weight.shape[0], spiking_input=False)
        return torch.matmul(pooled, self.q.weight.t()) + x_int.shape[-2] * self.q.bias

    def record(self, x_int: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
        """Write the per-step logits ``logits_t`` and their sum over time ``logits`` into ``out``."""
        out["logits_t"] = self.steps(x_int)
        out["logits"] = out["logits_t"].sum(dim=0)


def heads_split(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., N, D) -> (..., H, N, D/H)."""
    *lead, n, d = x.shape
    return x.reshape(*lead, n, heads, d // heads).transpose(-3, -2)


def heads_merge(x: torch.Tensor) -> torch.Tensor:
    """(..., H, N, dh) -> (..., N, H*dh)."""
    *lead, h, n, dh = x.shape
    return x.transpose(-3, -2).reshape(*lead, n, h * dh)


def check_sizes(name: str, embed_dim: int, depth: int, heads: int, time_steps: int) -> None:
    for key, value, lo in (("embed_dim", embed_dim, 2), ("depth", depth, 1), ("heads", heads, 1),
                           ("time_steps", time_steps, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{name}: {key} must be an integer >= {lo}, got {value!r}")
    if embed_dim % heads or embed_dim % 2:
        raise ValueError(f"{name}: embed_dim = {embed_dim} must be even and a multiple of heads = {heads}")


def power_of_two_exponent(value: float) -> int | None:
    """e with value == 2^e exactly, else None."""
    m, e = math.frexp(value)
    return e - 1 if m == 0.5 else None


def stream_frac(layers, weight_bits: int = 8) -> int:
    """The fraction F of a membrane-shortcut stream: the smallest natural weight fraction of the
    ``LinearBN`` layers that write into it, so none of them saturates its weights."""
    return min(layer.natural_frac(weight_bits) for layer in layers)


# ---- integer nonlinearities (TEFormer's gate and layer norm) ---------------------------------------

#: sigmoid as a 256-entry ROM: index i = clamp(floor(16 z), -128, 127) + 128 and
#: SIGMOID_LUT[i] = round(2^8 sigmoid((i - 128 + 1/2) / 16)), i.e. the sigmoid at the middle of
#: each 1/16-wide bin of z in [-8, 8), in units 2^-8. A constant table (computed once here,
#: stored as integers), so the integer forward itself never touches floats.
SIGMOID_LUT = torch.tensor([int(round(256.0 / (1.0 + math.exp(-((i - 128 + 0.5) / 16.0))))) for i in range(256)],
                           dtype=torch.int64)
SIGMOID_FRAC = 8


def sigmoid_int(z: torch.Tensor, frac: int) -> torch.Tensor:
    """g = SIGMOID_LUT[clamp(floor(z 2^4), -128, 127) + 128] for z in units 2^-frac; g in 0..256 (units 2^-8)."""
    z = torch.as_tensor(z).to(torch.int64)
    idx = fixed.asr(z, frac - 4) if frac >= 4 else z << (4 - frac)
    return SIGMOID_LUT[torch.clamp(idx, -128, 127) + 128]


def isqrt_int(v: torch.Tensor) -> torch.Tensor:
    """floor(sqrt(v)) elementwise for 0 <= v < 2^62, by a 31-step binary search on integers."""
    v = torch.as_tensor(v).to(torch.int64)
    if v.numel() and int(v.min()) < 0:
        raise ValueError("isqrt_int of a negative value")
    lo = torch.zeros_like(v)
    for bit in range(30, -1, -1):
        trial = lo + (1 << bit)
        lo = torch.where(trial * trial <= v, trial, lo)
    return lo


LN_FRAC = 8   # normalized values n carry 8 fraction bits; gamma 8, so y = gamma n + beta carries 16


def layer_norm_int(m: torch.Tensor, gamma_int: torch.Tensor, beta_int: torch.Tensor, eps_int: int) -> torch.Tensor:
    """Integer layer norm over the last dim (D) of m (any fixed-point units u)::

        d_i  = D m_i - sum_j m_j                    = D (m_i - mean)            (exact)
        den  = isqrt( (sum_i d_i^2) // D + eps_int ) ~ D sqrt(var + eps)        (eps_int = eps D^2 / u^2)
        n_i  = floor(d_i 2^8 / max(den, 1))          ~ (m_i - mean) / sqrt(var + eps)   in units 2^-8
        y_i  = gamma_int_i n_i + beta_int_i          gamma in units 2^-8, beta in 2^-16: y in 2^-16
    """
    D = m.shape[-1]
    d = D * m - m.sum(dim=-1, keepdim=True)
    den = isqrt_int(torch.div(torch.sum(d * d, dim=-1, keepdim=True), D, rounding_mode="floor") + eps_int)
    n = torch.div(d << LN_FRAC, torch.clamp(den, min=1), rounding_mode="floor")
    return gamma_int * n + beta_int


def save_model_vectors(directory, model_name: str, config: dict, int_model, pixels: torch.Tensor, seed: int = 0):
    """Reference vectors of every layer of an integer model: ``forward_layers(pixels)`` written as
    .npz arrays + manifest.json (``golden.vectors``; the manifest's spec is the model config)."""
    from ..vectors import save_vectors

    layers = int_model.forward_layers(pixels)
    return save_vectors(directory, model_name, dict(config), seed, {k: v.numpy() for k, v in layers.items()})
