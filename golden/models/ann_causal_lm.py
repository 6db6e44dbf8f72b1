"""The equal-size non-spiking reference of the WD-Spikingformer: a float softmax causal character LM.

Same sizes as ``wta_spikingformer.WDSpikingformer`` (embed dim D, heads, depth, MLP ratio, max_len,
vocabulary) and the same interface (``model(tokens long (B, L)) -> logits (B, L, V)``, position t
predicts token t + 1), so the ``text-causal`` training loop trains both alike. Pieces of
``ann_vit``: pre-norm blocks (softmax multi-head attention with the causal mask, GELU MLP of
ratio ``mlp_ratio``), a final layer norm and a linear head::

    E = Emb[tok] + Pos[l];  X' = X + Proj(softmax_causal(Q K^T / sqrt(dh)) V);  X'' = X' + FC2(GELU(FC1(X')))
    logits_l = W_h LN(X_l) + b_h

One pass, no time steps. MACs per window of L tokens (counted by ``golden.energy``; the embedding is a
lookup, softmax, layer norms and GELU are not counted)::

    L (depth (4 D^2 + 2 r D^2) + D V)  +  depth 2 D L (L + 1) / 2   (Q K^T and A V over the causal pairs)
"""

from __future__ import annotations

import torch
from torch import nn

from .. import energy
from .ann_vit import AnnBlock, _Linear
from .common import check_sizes, name_layers


class AnnCausalLM(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int = 64, depth: int = 1, heads: int = 4, mlp_ratio: int = 2,
                 max_len: int = 64, pos_std: float = 0.02):
        super().__init__()
        check_sizes("AnnCausalLM", embed_dim, depth, heads, 1)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
            raise ValueError(f"AnnCausalLM: vocab_size must be an integer >= 2, got {vocab_size!r}")
        self.vocab_size, self.max_len = vocab_size, max_len
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.pos = nn.Parameter(torch.randn(max_len, embed_dim) * pos_std)
        self.blocks = nn.ModuleList(AnnBlock(embed_dim, heads, mlp_ratio, causal=True) for _ in range(depth))
        self.ln = nn.LayerNorm(embed_dim)
        self.head = _Linear(embed_dim, vocab_size)
        name_layers(self)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.dtype != torch.int64:
            raise ValueError(f"AnnCausalLM takes token ids, long (B, L); got {tuple(tokens.shape)} {tokens.dtype}")
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len = {self.max_len}")
        energy.count_samples(tokens.shape[0])
        h = self.embed(tokens) + self.pos[:tokens.shape[1]]
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h))
