"""The equal-size non-spiking reference: a small float ViT-style digit classifier.

Same stem shape and sizes as the spiking models (3x3 conv 1 -> D/2 on 8x8, 3x3 conv D/2 -> D,
2x2 max-pool to 16 tokens), a learned position embedding, ``depth`` pre-norm transformer
blocks (softmax multi-head attention, GELU MLP of ratio 4), token mean and a linear head.
One pass, no time steps. Every product is a multiply-accumulate::

    MACs = convs + N D 3D (QKV) + 2 N^2 D (Q K^T and A V) + N D^2 (proj) + 2 N D rD (MLP) + D 10 (head)

(softmax, layer norm, GELU and the position add are not counted, as in the papers' ANN
baselines), so its energy is MACs x E_MAC.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .. import energy
from .common import check_sizes, im2col, maxpool2, name_layers


class _Linear(nn.Linear):
    """nn.Linear that reports its MACs."""

    meter_name = ""

    def forward(self, x):
        energy.count_linear(self.meter_name, x, self.out_features, spiking_input=False)
        return super().forward(x)


class AnnBlock(nn.Module):
    """Pre-norm softmax transformer block; ``causal``: query i attends to keys j <= i only, and only those
    L (L + 1) / 2 pairs are counted as MACs."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, causal: bool = False):
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = _Linear(dim, 3 * dim)
        self.proj = _Linear(dim, dim)
        self.fc1 = _Linear(dim, mlp_ratio * dim)
        self.fc2 = _Linear(mlp_ratio * dim, dim)
        self.meter_name = ""

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(B, N, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        pairs = N * (N + 1) // 2 if self.causal else N * N
        energy.count_macs(self.meter_name + ".attn", 2 * B * pairs * D)
        scores = q @ k.transpose(-1, -2) / (D // self.heads) ** 0.5
        if self.causal:
            scores = scores.masked_fill(torch.ones(N, N, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        att = torch.softmax(scores, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, N, D))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class AnnViT(nn.Module):
    def __init__(self, embed_dim: int = 32, depth: int = 1, heads: int = 2, mlp_ratio: int = 4):
        super().__init__()
        check_sizes("AnnViT", embed_dim, depth, heads, 1)
        half = embed_dim // 2
        self.conv1 = _Linear(9, half)
        self.conv2 = _Linear(9 * half, embed_dim)
        self.pos = nn.Parameter(torch.zeros(16, embed_dim))
        self.blocks = nn.ModuleList(AnnBlock(embed_dim, heads, mlp_ratio) for _ in range(depth))
        self.ln = nn.LayerNorm(embed_dim)
        self.head = _Linear(embed_dim, 10)
        name_layers(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 8, 8):
            raise ValueError(f"AnnViT takes images (B, 1, 8, 8); got {tuple(x.shape)}")
        energy.count_samples(x.shape[0])
        h = F.relu(self.conv1(im2col(x.flatten(1).unsqueeze(-1), 8, 8)))
        h = maxpool2(F.relu(self.conv2(im2col(h, 8, 8))), 8, 8) + self.pos
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h).mean(dim=1))
