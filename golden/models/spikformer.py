"""Spikformer (Zhou et al., "Spikformer: When Spiking Neural Network Meets Transformer", ICLR 2023).

Equations (paper Sec. 3, Eqs. 7-16), time-first (T, B, N, D), every SN a LIF with tau = 2,
V_th = 1, T = 4 by default::

    SPS:   x0  = MP(SN(BN(Conv(SN(BN(Conv(I)))))))            conv-BN-SN stages, max-pool
           x   = x0 + SN(BN(RPE_Conv(x0)))                      relative position embedding
    SSA:   Q = SN_Q(BN(X W_Q)),  K = SN_K(BN(X W_K)),  V = SN_V(BN(X W_V))
           SSA'(Q, K, V) = SN( Q K^T V * s )                    no softmax, s = 0.125, SN V_th = 0.5
           SSA(Q, K, V)  = SN(BN(Linear(SSA')))
    block: X' = X + SSA(X);  X'' = X' + MLP(X'),  MLP = SN(BN(Linear(SN(BN(Linear(.))))))
    head:  logits = mean_t Linear(mean_n X_L)

The product is evaluated as ``Q (K^T V)`` (linear in N; equal to ``(Q K^T) V`` exactly
because all entries are integers). On 8x8 digits the SPS is two 3x3 convolutions (1 -> D/2
on the 8x8 grid, D/2 -> D then a 2x2 max-pool to 4x4 = 16 tokens) and the 3x3 RPE
convolution; every convolution is a ``SpikingLinearBN`` on ``im2col`` patches.

Integer mode (``to_integer``)
-----------------------------
Every Linear+BN+SN is a ``QuantSpikingLinear`` (BN folded, one power-of-two scale per
layer, see ``golden/layers.py``); pixels enter as 0..16 (input_frac = 4); residual sums of
spikes are small integers fed with input_frac = 0. The attention SN takes the exact
integer count S = Q (K^T V) as its current: spikingjelly integrates ``H = V + (S s - V)/tau``,
i.e. ``H = beta V + S s / tau`` with beta = 1 - 1/tau; dividing by s / tau gives the same
neuron with current S and threshold ``round(V_th tau / s)`` (= 0.5 * 2 / 0.125 = 8 by
default, exact). The head returns ``sum_t (W_int sum_n x_t + N b_int)`` = T N 2^f times
the float logits up to quantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import energy
from .common import (PIXEL_FRAC, batch_size_of, IntReadout, IntSpikingLinear, IntStreamLIF, Readout, SpikingLinearBN, StreamLIF,
                     check_int_pixels, check_sizes, heads_merge, heads_split, im2col, maxpool2, name_layers,
                     pixels_to_time)


def spike_qktv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, name: str = "") -> torch.Tensor:
    """S = Q (K^T V) per head, (T, B, N, D) spikes -> (T, B, N, D); float or int64 alike.

    Counts (energy): K^T V adds only where k and v are both 1 (SOPs = sum_n nnz(k_n) nnz(v_n));
    Q (K^T V) adds a row of the integer K^T V for every q = 1 (SOPs = nnz(Q) d_h).
    """
    qh, kh, vh = heads_split(q, heads), heads_split(k, heads), heads_split(v, heads)
    kt = kh.transpose(-1, -2)
    kv = torch.matmul(kt, vh)                       # (T, B, H, dh, dh)
    energy.count_spike_matmul(name, kt, vh, b_is_spikes=True)
    s = torch.matmul(qh, kv)                        # (T, B, H, N, dh)
    energy.count_spike_matmul(name, qh, kv, b_is_spikes=False)
    return heads_merge(s)


class SpikingSelfAttention(nn.Module):
    """SSA: Q, K, V = SN(BN(X W)); SN(Q K^T V s) with V_th = 0.5; then SN(BN(Linear(.)))."""

    def __init__(self, dim: int, heads: int, *, tau: float = 2.0, threshold: float = 1.0,
                 attn_threshold: float = 0.5, scale: float = 0.125):
        super().__init__()
        if not scale > 0:
            raise ValueError(f"attention scale must be > 0, got {scale}")
        self.heads, self.tau, self.scale, self.attn_threshold = heads, tau, scale, attn_threshold
        self.q = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.k = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.v = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.attn_lif = StreamLIF(tau, attn_threshold)
        self.proj = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.meter_name = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = spike_qktv(self.q(x), self.k(x), self.v(x), self.heads, self.meter_name)
        return self.proj(self.attn_lif(s * (self.scale / self.tau)))

    def to_integer(self, weight_bits: int = 8) -> "IntSSA":
        dim = self.q.linear.out_features
        return IntSSA(self.q.to_integer(weight_bits=weight_bits), self.k.to_integer(weight_bits=weight_bits),
                      self.v.to_integer(weight_bits=weight_bits),
                      self.attn_lif.to_integer(dim, round(self.attn_threshold * self.tau / self.scale)),
                      self.proj.to_integer(weight_bits=weight_bits), self.heads, self.meter_name)


@dataclass
class IntSSA:
    q: IntSpikingLinear
    k: IntSpikingLinear
    v: IntSpikingLinear
    attn_lif: IntStreamLIF
    proj: IntSpikingLinear
    heads: int
    meter_name: str

    def layers(self, x: torch.Tensor, prefix: str, out: dict) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        s = spike_qktv(q, k, v, self.heads, self.meter_name)
        a = self.attn_lif(s)
        y = self.proj(a)
        out.update({f"{prefix}.q": q, f"{prefix}.k": k, f"{prefix}.v": v, f"{prefix}.qktv": s,
                    f"{prefix}.attn": a, f"{prefix}.out": y})
        return y


class SpikingMLPBlock(nn.Module):
    """MLP = SN(BN(Linear(SN(BN(Linear(x)))))), hidden = ratio * D."""

    def __init__(self, dim: int, hidden: int, *, tau: float = 2.0, threshold: float = 1.0):
        super().__init__()
        self.fc1 = SpikingLinearBN(dim, hidden, tau=tau, threshold=threshold)
        self.fc2 = SpikingLinearBN(hidden, dim, tau=tau, threshold=threshold)

    def forward(self, x):
        return self.fc2(self.fc1(x))


class SpikformerBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, **lif):
        super().__init__()
        self.attn = SpikingSelfAttention(dim, heads, **lif)
        self.mlp = SpikingMLPBlock(dim, mlp_ratio * dim, tau=lif["tau"], threshold=lif["threshold"])

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


def add_sps_stem(model: nn.Module, embed_dim: int, lif: dict) -> None:
    """Give ``model`` the SPS stem layers ``conv1``, ``conv2``, ``rpe`` (shared with TEFormer).

    The layers stay attributes of the model itself, so checkpoints keep their keys.
    """
    half = embed_dim // 2
    model.conv1 = SpikingLinearBN(9, half, spiking_input=False, **lif)     # pixels: MACs
    model.conv2 = SpikingLinearBN(9 * half, embed_dim, **lif)
    model.rpe = SpikingLinearBN(9 * embed_dim, embed_dim, **lif)


def sps_stem(model: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """(B, 1, 8, 8) pixels -> the stem's tokens (T, B, 16, D): conv, conv + max-pool, + relative
    position embedding; float twin of ``int_sps_stem``."""
    energy.count_samples(batch_size_of(pixels))
    s = model.conv1(im2col(pixels_to_time(pixels, model.time_steps), 8, 8))
    s = maxpool2(model.conv2(im2col(s, 8, 8)), 8, 8)
    return s + model.rpe(im2col(s, 4, 4))


class Spikformer(nn.Module):
    """Spikformer digit classifier; ``forward(x float (B, 1, 8, 8)) -> logits (B, 10)``."""

    def __init__(self, embed_dim: int = 32, depth: int = 1, heads: int = 2, time_steps: int = 4,
                 mlp_ratio: int = 4, tau: float = 2.0, threshold: float = 1.0, attn_threshold: float = 0.5,
                 scale: float = 0.125):
        super().__init__()
        check_sizes("Spikformer", embed_dim, depth, heads, time_steps)
        if not isinstance(mlp_ratio, int) or mlp_ratio < 1:
            raise ValueError(f"Spikformer: mlp_ratio must be an integer >= 1, got {mlp_ratio!r}")
        self.time_steps, self.embed_dim = time_steps, embed_dim
        lif = dict(tau=tau, threshold=threshold)
        add_sps_stem(self, embed_dim, lif)
        self.blocks = nn.ModuleList(
            SpikformerBlock(embed_dim, heads, mlp_ratio, attn_threshold=attn_threshold, scale=scale, **lif)
            for _ in range(depth))
        self.head = Readout(embed_dim)
        name_layers(self)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 8, 8) -> the last block's output (T, B, 16, D)."""
        x = sps_stem(self, x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        """Per-time-step logits (T, B, 10); ``forward`` is their mean."""
        return self.head.forward_steps(self.tokens(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_steps(x).mean(dim=0)

    def to_integer(self, weight_bits: int = 8) -> "IntSpikformer":
        self.eval()
        wb = weight_bits
        return IntSpikformer(
            conv1=self.conv1.to_integer(input_frac=PIXEL_FRAC, weight_bits=wb),
            conv2=self.conv2.to_integer(weight_bits=wb), rpe=self.rpe.to_integer(weight_bits=wb),
            blocks=[(b.attn.to_integer(wb), b.mlp.fc1.to_integer(weight_bits=wb),
                     b.mlp.fc2.to_integer(weight_bits=wb)) for b in self.blocks],
            head=self.head.to_integer(wb), time_steps=self.time_steps)


def int_sps_stem(model, pixels: torch.Tensor, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """Integer spiking patch splitting (conv1 -> conv2 -> 2x2 max pool -> + relative position conv),
    shared by every model with Spikformer's stem (``model.conv1``, ``conv2``, ``rpe``, ``time_steps``).
    Records each stage in ``out`` and returns the stem's output spikes (T, B, 16, C)."""
    energy.count_samples(batch_size_of(pixels))
    s1 = model.conv1(im2col(pixels_to_time(pixels, model.time_steps), 8, 8))
    s2 = model.conv2(im2col(s1, 8, 8))
    pooled = maxpool2(s2, 8, 8)
    r = model.rpe(im2col(pooled, 4, 4))
    x = pooled + r
    out.update({"sps.conv1": s1, "sps.conv2": s2, "sps.pool": pooled, "sps.rpe": r, "sps.out": x})
    return x


def int_mlp_residual(x: torch.Tensor, fc1, fc2, prefix: str, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """Integer MLP sub-block with its residual: x + fc2(fc1(x)); records fc1, fc2 and the block's
    output under ``prefix`` (shared by Spikformer, TEFormer and the WTA Spikingformers)."""
    h = fc1(x)
    y = fc2(h)
    x = x + y
    out.update({f"{prefix}.mlp.fc1": h, f"{prefix}.mlp.fc2": y, f"{prefix}.out": x})
    return x


@dataclass
class IntSpikformer:
    """Integer Spikformer: int64 only; ``forward_layers`` returns every layer's tensors."""

    conv1: IntSpikingLinear
    conv2: IntSpikingLinear
    rpe: IntSpikingLinear
    blocks: list
    head: IntReadout
    time_steps: int

    def forward_layers(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = check_int_pixels(pixels, "IntSpikformer")
        out: dict[str, torch.Tensor] = {"pixels": pixels}
        x = int_sps_stem(self, pixels, out)
        for i, (attn, fc1, fc2) in enumerate(self.blocks):
            x = x + attn.layers(x, f"block{i}.attn", out)
            x = int_mlp_residual(x, fc1, fc2, f"block{i}", out)
        self.head.record(x, out)
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(pixels)["logits"]

    __call__ = forward
