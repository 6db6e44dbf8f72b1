"""Spiking layers shared by every model, in float (trainable) and exact integer form.

Float
-----
``SpikingLinear``: currents ``c_t = W x_t + b`` then multi-step ``LIF`` -> spikes, time on dim 0.

Integer (after ``quantize_spiking_linear``)
--------------------------------------------
Weights use one power-of-two scale per layer, f = ``weight_frac``::

    W_int = sat_wb(round(W 2^f)),   b_int = round(b 2^f),   theta_int = round(theta 2^f)

so the membrane is in units of 2^-f. Inputs carry ``input_frac`` = fi fraction bits
(fi = 0 for spikes, which are 0/1). The input current of output neuron j is::

    c_j = sat_Wi( ((sum_i x_int_i * W_int_ji) >> fi) + b_int_j )

with the sum exact in int64 and ``>>`` the arithmetic (floor) shift, then the LIF
of ``golden/lif.py`` runs over time. ``QuantLinear`` is the same without the LIF
(classifier heads): ``y = ((x_int W_int^T) >> fi) + b_int``, exact, in units of 2^-f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from . import fixed
from .lif import LIF, LIFSpec, LIFTrace, lif_run, lif_run_time_first  # noqa: F401 (re-exported)


class SpikingLinear(nn.Module):
    """Linear projection followed by LIF neurons; input (T, ..., in), output spikes (T, ..., out)."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, beta: float = 0.875,
                 threshold: float = 1.0, surrogate: str = "atan", reset_mode: str = "subtract"):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.lif = LIF(beta=beta, threshold=threshold, surrogate=surrogate, reset_mode=reset_mode,
                       step_mode="m")

    def forward_currents(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (currents, spikes)."""
        currents = self.linear(x)
        return currents, self.lif(currents)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(self.linear(x))


def weight_frac_for(weight: torch.Tensor, weight_bits: int, max_frac: int = 24) -> int:
    """Largest f in [0, max_frac] with max|w| 2^f <= 2^(weight_bits-1) - 1 (0 if even f = 0 overflows:
    the weights then saturate)."""
    top = float(weight.detach().abs().max())
    if top == 0.0:
        return max_frac
    f = math.floor(math.log2(fixed.int_max(weight_bits, True) / top))
    return max(0, min(max_frac, f))


def int_matmul(x: torch.Tensor, weight: torch.Tensor, *, min_columns: int = 65) -> torch.Tensor:
    """Exact ``x @ weight^T`` of int64 tensors, x (..., K), weight (N, K) -> (..., N) int64.

    The same integers as ``torch.matmul(x, weight.t())`` (which never overflows here, see
    below), computed with m output columns packed into each int64 word where that is provably
    exact (a SIMD-within-a-register product; torch's integer matmul takes the same time per
    column whatever the values, so m columns per word is ~m times fewer multiply-adds).

    Bound: L = max_row(sum_i |x_i|) * max(1, max|W|) >= |any partial sum of any column's dot
    product| (any subset of the K terms, in any order). Field width b = bits(L) + 1 (so
    |S| <= L < 2^(b-1)), m = floor(63 / b) fields. Column blocks of g = ceil(N / m) are packed::

        P_i,c = sum_{k<m} W_{kg+c, i} 2^(k b)            (rows past N are zero)
        R_r,c = sum_i x_r,i P_i,c = sum_{k<m} S_k,r,c 2^(k b),   S_k = (x W^T)[:, kg + c]

    Every partial sum of R (and P itself) is a sum of terms S'_k 2^(kb) with |S'_k| <= L
    < 2^(b-1), so its magnitude is < 2^(b-1) (2^(mb) - 1) / (2^b - 1) < 2^(mb) <= 2^63: no
    int64 overflow anywhere. Unpacking is exact: S_0 is the b-bit signed field
    ((R + 2^(b-1)) & (2^b - 1)) - 2^(b-1) (R = S_0 mod 2^b and |S_0| < 2^(b-1)), then
    R <- (R - S_0) >> b (an exact division) gives the next field. With m < 2 (L >= 2^30)
    it is the plain int64 matmul, and so it is below ``min_columns`` output columns (a speed
    choice only: torch's integer kernel takes about as long for 1 column as for 64).
    """
    n, k_in = weight.shape
    if x.numel() == 0 or n < max(2, min_columns) or k_in == 0:
        return torch.matmul(x, weight.t())
    w_lo, w_hi = (int(v) for v in torch.aminmax(weight))
    x_lo, x_hi = (int(v) for v in torch.aminmax(x))
    row_l1 = x.sum(-1) if x_lo >= 0 else x.abs().sum(-1)  # |x_i| summed (exact: the product would fit)
    bound = int(row_l1.max()) * max(1, -w_lo, w_hi)
    b = bound.bit_length() + 1
    m = min(63 // b, n)
    if m < 2 or max(-x_lo, x_hi) * k_in * max(1, -w_lo, w_hi) >= 1 << 62:
        return torch.matmul(x, weight.t())
    g = -(-n // m)
    blocks = torch.zeros(m * g, k_in, dtype=torch.int64)
    blocks[:n] = weight
    blocks = blocks.view(m, g, k_in)
    packed = blocks[m - 1].clone()
    for k in range(m - 2, -1, -1):  # Horner: sum_k W_k 2^(kb)
        packed.mul_(1 << b).add_(blocks[k])
    r = torch.matmul(x, packed.t())                     # (..., g)
    out = torch.empty(*x.shape[:-1], n, dtype=torch.int64)
    field = torch.empty_like(r)
    half, mask = 1 << (b - 1), (1 << b) - 1
    for k in range(m):
        lo, hi = k * g, min(n, (k + 1) * g)
        if lo >= n:
            break
        torch.add(r, half, out=field).bitwise_and_(mask).sub_(half)
        out[..., lo:hi] = field[..., :hi - lo]
        if hi < n:
            r.sub_(field).bitwise_right_shift_(b)
    return out


@dataclass
class QuantLinear:
    """Integer linear layer: y = ((x_int W^T) >> input_frac) + bias, exact int64, units 2^-weight_frac."""

    weight: torch.Tensor  # int64 (out, in)
    bias: torch.Tensor    # int64 (out,)
    weight_frac: int
    input_frac: int

    def forward(self, x_int: torch.Tensor) -> torch.Tensor:
        x_int = torch.as_tensor(x_int)
        if x_int.is_floating_point():
            raise TypeError("QuantLinear takes integer inputs; quantize them first")
        if x_int.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"input has {x_int.shape[-1]} features; the layer takes {self.weight.shape[1]}")
        acc = int_matmul(x_int.to(torch.int64), self.weight.to(torch.int64))
        # in place on the fresh product: the same values as fixed.asr(acc, fi) + bias
        if self.input_frac < 0:
            raise ValueError(f"shift must be >= 0, got {self.input_frac}")
        if self.input_frac:
            acc.bitwise_right_shift_(self.input_frac)
        return acc.add_(self.bias)

    __call__ = forward


@dataclass
class QuantSpikingLinear:
    """Integer ``SpikingLinear``: ``QuantLinear`` currents saturated to the LIF input width, then LIF."""

    linear: QuantLinear
    lif: LIFSpec

    @property
    def weight(self) -> torch.Tensor:
        return self.linear.weight

    @property
    def bias(self) -> torch.Tensor:
        return self.linear.bias

    @property
    def weight_frac(self) -> int:
        return self.linear.weight_frac

    @property
    def input_frac(self) -> int:
        return self.linear.input_frac

    def currents(self, x_int: torch.Tensor) -> torch.Tensor:
        # fixed.saturate(linear(x), Wi), in place on the fresh int64 result
        return self.linear(x_int).clamp_(fixed.int_min(self.lif.input_width, True),
                                        fixed.int_max(self.lif.input_width, True))

    def forward_trace(self, x_int: torch.Tensor) -> tuple[torch.Tensor, LIFTrace]:
        """x_int (T, ..., in) -> (currents, LIFTrace), all (T, ..., out) int64."""
        currents = self.currents(x_int)
        return currents, lif_run_time_first(self.lif, currents)

    def forward(self, x_int: torch.Tensor) -> torch.Tensor:
        return self.forward_trace(x_int)[1].spikes

    __call__ = forward


def quantize_linear(linear: nn.Linear, *, weight_bits: int = 8, input_frac: int = 0,
                    weight_frac: int | None = None) -> QuantLinear:
    """Quantize an ``nn.Linear`` with one power-of-two scale (see the module docstring)."""
    if not 2 <= weight_bits <= 32:
        raise ValueError(f"weight_bits must be in 2 .. 32, got {weight_bits}")
    f = weight_frac_for(linear.weight, weight_bits) if weight_frac is None else weight_frac
    scale = float(1 << f)
    w = fixed.saturate(torch.round(linear.weight.detach().double() * scale).to(torch.int64), weight_bits, True)
    if linear.bias is not None:
        b = torch.round(linear.bias.detach().double() * scale).to(torch.int64)
    else:
        b = torch.zeros(linear.out_features, dtype=torch.int64)
    return QuantLinear(w, b, f, input_frac)


def quantize_spiking_linear(layer: SpikingLinear, *, weight_bits: int = 8, input_frac: int = 0,
                            membrane_width: int = 24, input_width: int = 24, leak_mode: str = "multiply",
                            leak_frac_bits: int = 8, weight_frac: int | None = None) -> QuantSpikingLinear:
    """Quantize a trained ``SpikingLinear``: weights, bias and threshold share the scale 2^f."""
    q = quantize_linear(layer.linear, weight_bits=weight_bits, input_frac=input_frac, weight_frac=weight_frac)
    lif = layer.lif
    beta = float(lif.beta.detach())
    threshold = int(round(lif.threshold * (1 << q.weight_frac)))
    spec = LIFSpec(n_neurons=layer.linear.out_features, lanes=1, membrane_width=membrane_width,
                   input_width=input_width, threshold=max(1, threshold), leak_mode=leak_mode,
                   leak_shift=max(1, min(membrane_width - 1, round(-math.log2(max(1e-9, 1 - beta))))),
                   leak_beta=int(round(beta * (1 << leak_frac_bits))), leak_frac_bits=leak_frac_bits,
                   reset_mode=lif.reset_mode, refractory=lif.refractory)
    return QuantSpikingLinear(q, spec)
