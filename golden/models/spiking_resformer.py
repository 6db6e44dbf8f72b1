"""SpikingResformer (Shi, Hao and Yu, CVPR 2024): dual spike self-attention (DSSA).

Equations (paper Sec. 4, Eqs. 9-14, and the released ``DSSA``), membrane-shortcut stream U::

    prologue (real pixels):   U = BN(Conv3x3(I))                                    (8x8, D/2)
    downsampling:             U = BN(Conv3x3_stride2(SN(U)))                        (4x4, D)
    DSSA:                     X = SN(U)                                              (N tokens)
                              Y = BN(Conv_p(X)) = [Y1, Y2]   p x p patches, stride p  (M = N / p^2 tokens)
                              A = SN( Y1 X^T  * c1 ),   c1 = 1 / sqrt(r_X d_h)        (M x N per head)
                              O = SN( A^T Y2  * c2 ),   c2 = 1 / sqrt(r_A M)          (N x d_h per head)
                              U = U + BN(Linear(O))
    GWFFN:                    U = U + BN(Linear(SN(BN(Linear(SN(U))))))              ratio 4
    head:                     logits = Linear(mean_t mean_n U)

The "dual spike matrix products" ``Y1 X^T`` and ``A^T Y2`` each have one spike operand, so
they are accumulates. The scaling factors c1, c2 come from the firing rates r_X and r_A:
running means (momentum ``rate_momentum``) of the spike rates per head, updated in
training and frozen in eval -- the paper's firing-rate-based scaling, which keeps the
product's variance independent of the rates. LIF tau = 2, V_th = 1, T = 4 (paper).
Simplifications for 8x8 digits, stated: one stage (after the prologue and one downsampling)
of ``depth`` DSSA + GWFFN pairs, and the GWFFN's grouped 3x3 convolution is left out (it
becomes the two pointwise layers around it).

Integer mode (``to_integer``)
-----------------------------
U is an int64 stream in units 2^-F (``stream_frac``); Y = ``QuantLinear`` in units 2^-Fy
(its own fraction). The products are exact integers; the scales c1/tau and c2/tau are
folded into the attention neurons' thresholds, per head::

    theta_A[h] = round(V_th tau / c1[h] 2^Fy),   theta_O[h] = round(V_th tau / c2[h] 2^Fy)

(H = beta V + P c / tau >= V_th  <=>  H' = beta V' + P >= V_th tau / c), so no multiplier
is needed on the products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import energy
from .common import (PIXEL_FRAC, IntLinear, IntReadout, IntSpikingLinear, IntStreamLIF, LinearBN, Readout,
                     SpikingLinearBN, StreamLIF, batch_size_of, check_int_pixels, check_sizes, heads_merge,
                     heads_split, im2col, lif_spec, name_layers, pixels_to_time, stream_frac)

MIN_RATE = 1e-3   # a rate floor, so c = 1/sqrt(r d) stays finite for a silent head


class DSSA(nn.Module):
    def __init__(self, dim: int, heads: int, grid: int, patch: int, *, tau: float, threshold: float,
                 rate_momentum: float):
        super().__init__()
        if grid % patch:
            raise ValueError(f"DSSA: patch_size = {patch} must divide the {grid} x {grid} token grid")
        self.dim, self.heads, self.grid, self.patch, self.tau = dim, heads, grid, patch, tau
        self.threshold, self.momentum = threshold, rate_momentum
        self.tokens_m = (grid // patch) ** 2
        self.x_in = StreamLIF(tau, threshold)
        self.w = LinearBN(patch * patch * dim, 2 * dim)
        self.attn_lif = StreamLIF(tau, threshold)
        self.out_lif = StreamLIF(tau, threshold)
        self.proj = LinearBN(dim, dim)
        self.register_buffer("rate_x", torch.zeros(heads))
        self.register_buffer("rate_attn", torch.zeros(heads))
        self.meter_name = ""

    def _update(self, name: str, spikes: torch.Tensor) -> None:
        rate = spikes.detach().transpose(0, 2).reshape(self.heads, -1).mean(dim=1)  # (T, B, H, ...) -> per head
        buf = getattr(self, name)
        new = rate if bool((buf == 0).all()) else buf * self.momentum + rate * (1 - self.momentum)
        buf.copy_(new)

    def scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """c1 = 1 / sqrt(r_X d_h),  c2 = 1 / sqrt(r_A M), per head."""
        dh = self.dim // self.heads
        c1 = 1.0 / torch.sqrt(self.rate_x.clamp(min=MIN_RATE) * dh)
        c2 = 1.0 / torch.sqrt(self.rate_attn.clamp(min=MIN_RATE) * self.tokens_m)
        return c1, c2

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = self.x_in(u)
        y = self.w(im2col(x, self.grid, self.grid, self.patch, stride=self.patch, padding=0))
        y1, y2 = heads_split(y[..., :self.dim], self.heads), heads_split(y[..., self.dim:], self.heads)
        xh = heads_split(x, self.heads)                                     # (T, B, H, N, dh)
        if self.training:
            self._update("rate_x", xh)
        c1, _ = self.scales()
        p1 = torch.matmul(y1, xh.transpose(-1, -2))                         # (T, B, H, M, N)
        energy.count_spike_matmul(self.meter_name + ".y1x", xh, y1.transpose(-1, -2), b_is_spikes=False)
        a = self.attn_lif(p1 * (c1 / self.tau)[:, None, None])
        if self.training:
            self._update("rate_attn", a)
        _, c2 = self.scales()
        at = a.transpose(-1, -2)                                            # (T, B, H, N, M)
        p2 = torch.matmul(at, y2)                                           # (T, B, H, N, dh)
        energy.count_spike_matmul(self.meter_name + ".ay2", at, y2, b_is_spikes=False)
        o = self.out_lif(p2 * (c2 / self.tau)[:, None, None])
        return u + self.proj(heads_merge(o))

    def to_integer(self, frac: int, weight_bits: int = 8) -> "IntDSSA":
        wy = self.w.natural_frac(weight_bits)
        c1, c2 = self.scales()
        scale = self.threshold * self.tau * (1 << wy)
        th_a = [round(scale / float(c)) for c in c1]
        th_o = [round(scale / float(c)) for c in c2]
        beta = self.attn_lif.beta
        return IntDSSA(
            x_in=self.x_in.to_integer(self.dim, round(self.threshold * (1 << frac))),
            w=self.w.to_integer(wy, weight_bits=weight_bits),
            attn_lif=[IntStreamLIF(lif_spec(self.grid * self.grid, beta, t), self.attn_lif.meter_name) for t in th_a],
            out_lif=[IntStreamLIF(lif_spec(self.dim // self.heads, beta, t), self.out_lif.meter_name) for t in th_o],
            proj=self.proj.to_integer(frac, weight_bits=weight_bits), heads=self.heads, dim=self.dim,
            grid=self.grid, patch=self.patch, meter_name=self.meter_name)


@dataclass
class IntDSSA:
    x_in: IntStreamLIF
    w: IntLinear
    attn_lif: list      # one IntStreamLIF per head (the threshold carries that head's c1)
    out_lif: list
    proj: IntLinear
    heads: int
    dim: int
    grid: int
    patch: int
    meter_name: str

    def layers(self, u: torch.Tensor, prefix: str, out: dict) -> torch.Tensor:
        x = self.x_in(u)
        y = self.w(im2col(x, self.grid, self.grid, self.patch, stride=self.patch, padding=0))
        y1, y2 = heads_split(y[..., :self.dim], self.heads), heads_split(y[..., self.dim:], self.heads)
        xh = heads_split(x, self.heads)
        p1 = torch.matmul(y1, xh.transpose(-1, -2))
        energy.count_spike_matmul(self.meter_name + ".y1x", xh, y1.transpose(-1, -2), b_is_spikes=False)
        a = torch.stack([self.attn_lif[h](p1[:, :, h]) for h in range(self.heads)], dim=2)
        at = a.transpose(-1, -2)
        p2 = torch.matmul(at, y2)
        energy.count_spike_matmul(self.meter_name + ".ay2", at, y2, b_is_spikes=False)
        o = torch.stack([self.out_lif[h](p2[:, :, h]) for h in range(self.heads)], dim=2)
        u2 = u + self.proj(heads_merge(o))
        out.update({f"{prefix}.x": x, f"{prefix}.y": y, f"{prefix}.p1": p1, f"{prefix}.attn": a,
                    f"{prefix}.p2": p2, f"{prefix}.o": o, f"{prefix}.out": u2})
        return u2


class GWFFN(nn.Module):
    def __init__(self, dim: int, ratio: int, *, tau: float, threshold: float):
        super().__init__()
        self.threshold = threshold
        self.x_in = StreamLIF(tau, threshold)
        self.up = SpikingLinearBN(dim, ratio * dim, tau=tau, threshold=threshold)
        self.down = LinearBN(ratio * dim, dim)

    def forward(self, u):
        return u + self.down(self.up(self.x_in(u)))

    def to_integer(self, frac: int, weight_bits: int = 8) -> "IntGWFFN":
        dim = self.down.linear.out_features
        return IntGWFFN(self.x_in.to_integer(dim, round(self.threshold * (1 << frac))),
                        self.up.to_integer(weight_bits=weight_bits), self.down.to_integer(frac, weight_bits=weight_bits))


@dataclass
class IntGWFFN:
    x_in: IntStreamLIF
    up: IntSpikingLinear
    down: IntLinear

    def layers(self, u, prefix, out):
        x = self.x_in(u)
        h = self.up(x)
        u2 = u + self.down(h)
        out.update({f"{prefix}.x": x, f"{prefix}.up": h, f"{prefix}.out": u2})
        return u2


class SpikingResformer(nn.Module):
    """SpikingResformer digit classifier; ``forward(x float (B, 1, 8, 8)) -> logits (B, 10)``."""

    def __init__(self, embed_dim: int = 32, depth: int = 1, heads: int = 2, time_steps: int = 4,
                 mlp_ratio: int = 4, patch_size: int = 2, tau: float = 2.0, threshold: float = 1.0,
                 rate_momentum: float = 0.99):
        super().__init__()
        check_sizes("SpikingResformer", embed_dim, depth, heads, time_steps)
        if not 0.0 <= rate_momentum < 1.0:
            raise ValueError(f"SpikingResformer: rate_momentum must be in [0, 1), got {rate_momentum}")
        self.time_steps, self.embed_dim = time_steps, embed_dim
        half = embed_dim // 2
        self.prologue = LinearBN(9, half, spiking_input=False)
        self.down_in = StreamLIF(tau, threshold)
        self.down = LinearBN(9 * half, embed_dim)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(DSSA(embed_dim, heads, 4, patch_size, tau=tau, threshold=threshold,
                                    rate_momentum=rate_momentum))
            self.blocks.append(GWFFN(embed_dim, mlp_ratio, tau=tau, threshold=threshold))
        self.head = Readout(embed_dim)
        name_layers(self)

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        energy.count_samples(batch_size_of(x))
        u = self.prologue(im2col(pixels_to_time(x, self.time_steps), 8, 8))
        u = self.down(im2col(self.down_in(u), 8, 8, 3, stride=2))
        for block in self.blocks:
            u = block(u)
        return self.head.forward_steps(u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_steps(x).mean(dim=0)

    def to_integer(self, weight_bits: int = 8) -> "IntSpikingResformer":
        self.eval()
        writers = [self.prologue, self.down] + [b.proj if isinstance(b, DSSA) else b.down for b in self.blocks]
        frac = stream_frac(writers, weight_bits)
        half = self.embed_dim // 2
        return IntSpikingResformer(
            prologue=self.prologue.to_integer(frac, input_frac=PIXEL_FRAC, weight_bits=weight_bits),
            down_in=self.down_in.to_integer(half, round(self.down_in.lif.threshold * (1 << frac))),
            down=self.down.to_integer(frac, weight_bits=weight_bits),
            blocks=[b.to_integer(frac, weight_bits) for b in self.blocks],
            head=self.head.to_integer(weight_bits), time_steps=self.time_steps, frac=frac)


@dataclass
class IntSpikingResformer:
    prologue: IntLinear
    down_in: IntStreamLIF
    down: IntLinear
    blocks: list
    head: IntReadout
    time_steps: int
    frac: int

    def forward_layers(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = check_int_pixels(pixels, "IntSpikingResformer")
        energy.count_samples(batch_size_of(pixels))
        out: dict[str, torch.Tensor] = {"pixels": pixels}
        u0 = self.prologue(im2col(pixels_to_time(pixels, self.time_steps), 8, 8))
        s0 = self.down_in(u0)
        u = self.down(im2col(s0, 8, 8, 3, stride=2))
        out.update({"prologue": u0, "down.in": s0, "down.out": u})
        for i, block in enumerate(self.blocks):
            u = block.layers(u, f"block{i}", out)
        self.head.record(u, out)
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(pixels)["logits"]

    __call__ = forward


def dssa_scale_reference(rate: float, d: int) -> float:
    """1 / sqrt(r d): the paper's scaling for a product of d-long spike vectors at firing rate r."""
    return 1.0 / math.sqrt(max(rate, MIN_RATE) * d)
