"""Spike-driven Transformer V2 / Meta-SpikeFormer (Yao et al., ICLR 2024).

Equations (paper Sec. 3, Eqs. 1-12, and the released ``MS_Attention_RepConv_qkv_id``), with
the *membrane shortcut*: the residual stream U is real-valued (membrane potentials) and every
block starts with a spiking neuron, so every weight layer is fed by spikes (spike-driven)::

    stem (first layer, real pixels):   U = BN(Conv3x3(I))                               (8x8, D/2)
    conv block:                        U = U + BN(Conv3x3(SN(U)))                        (8x8, D/2)
    downsampling:                      U = BN(Conv3x3_stride2(SN(U)))                    (4x4, D)
    SDSA (SDSA-3 of the paper):        X = SN(U);  Q, K, V = SN(BN(X W_{Q,K,V}))
                                       U = U + BN(Linear( SN_s( Q (K^T V) * s ) ))      s = 0.125, V_th(SN_s) = 0.5
    channel MLP:                       U = U + BN(Linear(SN(BN(Linear(SN(U))))))
    head:                              logits = mean_t Linear(mean_n SN(U))

LIF tau = 2, V_th = 1, T = 4 (the paper's settings); the attention neuron has V_th = 0.5
and integrates Q (K^T V) s / tau (spikingjelly's decay_input). Simplifications for 8x8
digits, stated: one conv block whose SepConv (pointwise-depthwise-pointwise) is replaced by
its 3x3 channel convolution, RepConv Q/K/V as their inference-time re-parameterized form
(one linear map per token), and a 3x3 stride-1 stem instead of 7x7 stride 2.

Integer mode (``to_integer``)
-----------------------------
The stream U is an exact int64 in units 2^-F, F = ``stream_frac`` of the layers that write
into it (each quantized with ``weight_frac = F``); its neurons are LIFs with threshold
round(V_th 2^F) whose currents saturate to 24 bits. Q/K/V/MLP-hidden are
``QuantSpikingLinear``. The attention neuron takes the exact count S = Q (K^T V) with
threshold round(0.5 tau / s) = 8 (as in Spikformer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import energy
from .common import (PIXEL_FRAC, IntLinear, IntReadout, IntSpikingLinear, IntStreamLIF, LinearBN, Readout,
                     SpikingLinearBN, StreamLIF, batch_size_of, check_int_pixels, check_sizes, im2col,
                     name_layers, pixels_to_time, stream_frac)
from .spikformer import spike_qktv


class SDSABlock(nn.Module):
    """One Meta-SpikeFormer transformer block: SDSA then channel MLP, both with membrane shortcuts."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, *, tau: float, threshold: float,
                 attn_threshold: float, scale: float):
        super().__init__()
        self.heads, self.tau, self.scale, self.attn_threshold = heads, tau, scale, attn_threshold
        self.attn_in = StreamLIF(tau, threshold)
        self.q = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.k = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.v = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.attn_lif = StreamLIF(tau, attn_threshold)
        self.proj = LinearBN(dim, dim)
        self.mlp_in = StreamLIF(tau, threshold)
        self.fc1 = SpikingLinearBN(dim, mlp_ratio * dim, tau=tau, threshold=threshold)
        self.fc2 = LinearBN(mlp_ratio * dim, dim)
        self.meter_name = ""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        x = self.attn_in(u)
        s = spike_qktv(self.q(x), self.k(x), self.v(x), self.heads, self.meter_name + ".qktv")
        u = u + self.proj(self.attn_lif(s * (self.scale / self.tau)))
        return u + self.fc2(self.fc1(self.mlp_in(u)))

    def stream_writers(self):
        return [self.proj, self.fc2]

    def to_integer(self, frac: int, weight_bits: int = 8) -> "IntSDSABlock":
        dim, wb = self.q.linear.out_features, weight_bits
        thr = round(self.attn_in.lif.threshold * (1 << frac))
        return IntSDSABlock(
            self.attn_in.to_integer(dim, thr), self.q.to_integer(weight_bits=wb), self.k.to_integer(weight_bits=wb),
            self.v.to_integer(weight_bits=wb),
            self.attn_lif.to_integer(dim, round(self.attn_threshold * self.tau / self.scale)),
            self.proj.to_integer(frac, weight_bits=wb), self.mlp_in.to_integer(dim, thr),
            self.fc1.to_integer(weight_bits=wb), self.fc2.to_integer(frac, weight_bits=wb), self.heads,
            self.meter_name)


@dataclass
class IntSDSABlock:
    attn_in: IntStreamLIF
    q: IntSpikingLinear
    k: IntSpikingLinear
    v: IntSpikingLinear
    attn_lif: IntStreamLIF
    proj: IntLinear
    mlp_in: IntStreamLIF
    fc1: IntSpikingLinear
    fc2: IntLinear
    heads: int
    meter_name: str

    def layers(self, u: torch.Tensor, prefix: str, out: dict) -> torch.Tensor:
        x = self.attn_in(u)
        q, k, v = self.q(x), self.k(x), self.v(x)
        s = spike_qktv(q, k, v, self.heads, self.meter_name + ".qktv")
        a = self.attn_lif(s)
        u = u + self.proj(a)
        m = self.mlp_in(u)
        h = self.fc1(m)
        u2 = u + self.fc2(h)
        out.update({f"{prefix}.attn_in": x, f"{prefix}.q": q, f"{prefix}.k": k, f"{prefix}.v": v,
                    f"{prefix}.qktv": s, f"{prefix}.attn": a, f"{prefix}.u_attn": u, f"{prefix}.mlp_in": m,
                    f"{prefix}.mlp.fc1": h, f"{prefix}.out": u2})
        return u2


class SpikeDrivenV2(nn.Module):
    """Meta-SpikeFormer digit classifier; ``forward(x float (B, 1, 8, 8)) -> logits (B, 10)``."""

    def __init__(self, embed_dim: int = 32, depth: int = 1, heads: int = 2, time_steps: int = 4,
                 mlp_ratio: int = 4, tau: float = 2.0, threshold: float = 1.0, attn_threshold: float = 0.5,
                 scale: float = 0.125):
        super().__init__()
        check_sizes("SpikeDrivenV2", embed_dim, depth, heads, time_steps)
        self.time_steps, self.embed_dim = time_steps, embed_dim
        half = embed_dim // 2
        self.stem = LinearBN(9, half, spiking_input=False)            # real pixels: MACs
        self.conv_in = StreamLIF(tau, threshold)
        self.conv = LinearBN(9 * half, half)
        self.down_in = StreamLIF(tau, threshold)
        self.down = LinearBN(9 * half, embed_dim)
        self.blocks = nn.ModuleList(SDSABlock(embed_dim, heads, mlp_ratio, tau=tau, threshold=threshold,
                                              attn_threshold=attn_threshold, scale=scale) for _ in range(depth))
        self.head_in = StreamLIF(tau, threshold)
        self.head = Readout(embed_dim)
        name_layers(self)

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        energy.count_samples(batch_size_of(x))
        u = self.stem(im2col(pixels_to_time(x, self.time_steps), 8, 8))
        u = u + self.conv(im2col(self.conv_in(u), 8, 8))
        u = self.down(im2col(self.down_in(u), 8, 8, 3, stride=2))
        for block in self.blocks:
            u = block(u)
        return self.head.forward_steps(self.head_in(u))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_steps(x).mean(dim=0)

    def to_integer(self, weight_bits: int = 8) -> "IntSpikeDrivenV2":
        self.eval()
        wb = weight_bits
        writers = [self.stem, self.conv, self.down] + [w for b in self.blocks for w in b.stream_writers()]
        frac = stream_frac(writers, wb)
        half, dim = self.embed_dim // 2, self.embed_dim
        thr = round(self.conv_in.lif.threshold * (1 << frac))
        return IntSpikeDrivenV2(
            stem=self.stem.to_integer(frac, input_frac=PIXEL_FRAC, weight_bits=wb),
            conv_in=self.conv_in.to_integer(half, thr), conv=self.conv.to_integer(frac, weight_bits=wb),
            down_in=self.down_in.to_integer(half, thr), down=self.down.to_integer(frac, weight_bits=wb),
            blocks=[b.to_integer(frac, wb) for b in self.blocks], head_in=self.head_in.to_integer(dim, thr),
            head=self.head.to_integer(wb), time_steps=self.time_steps, frac=frac)


@dataclass
class IntSpikeDrivenV2:
    """Integer Meta-SpikeFormer: int64 only; the stream U in units 2^-frac."""

    stem: IntLinear
    conv_in: IntStreamLIF
    conv: IntLinear
    down_in: IntStreamLIF
    down: IntLinear
    blocks: list
    head_in: IntStreamLIF
    head: IntReadout
    time_steps: int
    frac: int

    def forward_layers(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = check_int_pixels(pixels, "IntSpikeDrivenV2")
        energy.count_samples(batch_size_of(pixels))
        out: dict[str, torch.Tensor] = {"pixels": pixels}
        u0 = self.stem(im2col(pixels_to_time(pixels, self.time_steps), 8, 8))
        s0 = self.conv_in(u0)
        u1 = u0 + self.conv(im2col(s0, 8, 8))
        s1 = self.down_in(u1)
        u = self.down(im2col(s1, 8, 8, 3, stride=2))
        out.update({"stem": u0, "conv.in": s0, "conv.out": u1, "down.in": s1, "down.out": u})
        for i, block in enumerate(self.blocks):
            u = block.layers(u, f"block{i}", out)
        s = self.head_in(u)
        out["head.in"] = s
        self.head.record(s, out)
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(pixels)["logits"]

    __call__ = forward
