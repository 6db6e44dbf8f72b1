"""WE-/WD-Spikingformer: the WTA Spiking Transformer for language modelling.

("Winner-Take-All Spiking Transformer for Language Modeling", 2026.) Time-first tensors
(T, B, L, D); every SN a LIF (tau = 2, V_th = 1, hard reset, as in ``common.paper_lif``).

Equations::

    embed:  E = Emb[tok] + Pos[l]  (real),  X0_t = SN(E)  for t = 1..T   (direct encoding)
    WSSA:   Q = SN(BN(X W_Q)),  K = SN(BN(X W_K)),  V = SN(BN(X W_V))      per head, per step
            A = WTA_k(Q, K, V) = (1/k) sum_{j in top-k(Q K^T)} V_j             (golden.wta)
            WSSA(X) = SN(BN(A W_O))
    CWSSA:  the same with the causal mask (key j <= query i)
    cross:  Q from the decoder X, K and V from the encoder output M (non-causal)
    MLP:    SN(BN(Linear(SN(BN(Linear(X))))))),  hidden = mlp_ratio D
    block:  X' = X + (C)WSSA(X);  [X'' = X' + Cross(X', M)];  X''' = X'' + MLP(X'')
    head:   logits_l = W_h mean_t X_t,l + b_h

WE-Spikingformer: encoder (WSSA blocks) + head, masked language modelling.
WD-Spikingformer: decoder (CWSSA blocks, optional cross-attention to an encoder's output)
+ head; with cross-attention off, the decoder-only causal language model.

Float attention uses ``golden.wta.wta_attention_float`` (hard top-k forward, ties to the
lower key index; softmax-relaxed straight-through backward for Q and K).

Integer mode (``to_integer``)
-----------------------------
Embedding rows are quantized to ``EMBED_FRAC`` fraction bits and fed as currents to the
encoding LIF (threshold round(V_th 2^EMBED_FRAC)). Every Linear+BN+SN is a
``QuantSpikingLinear``. The WTA attention is ``golden.wta.wta_attention`` on the 0/1
spikes with a ``WTASpec`` (reciprocal mode, F = ``ATTN_FRAC``): its output acc R is A in
F-bit fixed point, so the output projection is quantized with input_frac = F (exact for
k a power of two; R = round(2^F / k) otherwise). Residual sums of spikes are small
integers (input_frac = 0). The head returns sum_t (W_int x_t) + T b_int = T 2^f logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .. import fixed
from ..wta import WTASpec, k_from_ratio, wta_attention, wta_attention_float
from .common import (IntSpikingLinear, IntStreamLIF, SpikingLinearBN, StreamLIF, heads_merge, heads_split,
                     name_layers)
from ..layers import quantize_linear
from .spikformer import SpikingMLPBlock, int_mlp_residual

EMBED_FRAC = 6      # embedding currents: real * 2^6
ATTN_FRAC = 8       # F of the WTA reciprocal


def resolve_k(length: int, k: int, k_ratio: float) -> int:
    """k for a sequence of ``length`` keys: max(1, floor(L ratio)) if ratio > 0, else min(k, L)."""
    return k_from_ratio(length, k_ratio) if k_ratio > 0 else min(k, length)


class WTAAttentionLayer(nn.Module):
    """(C)WSSA or cross-attention: spiking Q, K, V projections, WTA attention, spiking output projection."""

    def __init__(self, dim: int, heads: int, *, k: int = 4, k_ratio: float = 0.0, causal: bool = False,
                 min_score: int = 0, tau: float = 2.0, threshold: float = 1.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"WTA attention: dim = {dim} must be a multiple of heads = {heads}")
        if k < 1 or not 0 <= k_ratio <= 1:
            raise ValueError(f"WTA attention: k must be >= 1 and 0 <= k_ratio <= 1; got k = {k}, k_ratio = {k_ratio}")
        self.heads, self.k, self.k_ratio, self.causal, self.min_score = heads, k, k_ratio, causal, min_score
        self.q = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.k_proj = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.v = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold)
        self.proj = SpikingLinearBN(dim, dim, tau=tau, threshold=threshold, spiking_input=False)
        self.meter_name = ""

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        src = x if memory is None else memory
        q = heads_split(self.q(x), self.heads)
        k = heads_split(self.k_proj(src), self.heads)
        v = heads_split(self.v(src), self.heads)
        top = resolve_k(k.shape[-2], self.k, self.k_ratio)
        a = wta_attention_float(q, k, v, top, causal=self.causal and memory is None,
                                min_score=self.min_score if self.min_score > 0 else None)
        return self.proj(heads_merge(a))

    def spec(self, length: int, queries: int) -> WTASpec:
        dh = self.q.linear.out_features // self.heads
        causal = self.causal
        return WTASpec(length=length, head_dim=dh, value_dim=dh, heads=self.heads, qk_width=1, v_width=1,
                       score_width=fixed.bits_for(dh), k=resolve_k(length, self.k, self.k_ratio), causal=causal,
                       min_score=self.min_score, scale_mode="reciprocal", scale_frac=ATTN_FRAC, lanes=1)

    def to_integer(self, weight_bits: int = 8) -> "IntWTAAttention":
        return IntWTAAttention(self.q.to_integer(weight_bits=weight_bits),
                               self.k_proj.to_integer(weight_bits=weight_bits),
                               self.v.to_integer(weight_bits=weight_bits),
                               self.proj.to_integer(input_frac=ATTN_FRAC, weight_bits=weight_bits),
                               self, self.heads)


@dataclass
class IntWTAAttention:
    q: IntSpikingLinear
    k: IntSpikingLinear
    v: IntSpikingLinear
    proj: IntSpikingLinear
    layer: WTAAttentionLayer = field(repr=False)
    heads: int

    def layers(self, x: torch.Tensor, prefix: str, out: dict, memory: torch.Tensor | None = None) -> torch.Tensor:
        src = x if memory is None else memory
        q, k, v = self.q(x), self.k(src), self.v(src)
        spec = self.layer.spec(src.shape[-2], x.shape[-2])
        if memory is not None:
            spec = spec.replace(causal=False)
        r = wta_attention(spec, heads_split(q, self.heads), heads_split(k, self.heads), heads_split(v, self.heads))
        a = heads_merge(r.out)
        y = self.proj(a)
        out.update({f"{prefix}.q": q, f"{prefix}.k": k, f"{prefix}.v": v, f"{prefix}.wta_index": r.index,
                    f"{prefix}.wta_valid": r.valid, f"{prefix}.wta_out": a, f"{prefix}.out": y})
        out.setdefault("_specs", {})[prefix] = spec
        return y


class WTABlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, *, causal: bool, cross: bool, k: int,
                 k_ratio: float, min_score: int, tau: float, threshold: float):
        super().__init__()
        att = dict(k=k, k_ratio=k_ratio, min_score=min_score, tau=tau, threshold=threshold)
        self.attn = WTAAttentionLayer(dim, heads, causal=causal, **att)
        self.cross = WTAAttentionLayer(dim, heads, causal=False, **att) if cross else None
        self.mlp = SpikingMLPBlock(dim, mlp_ratio * dim, tau=tau, threshold=threshold)

    def forward(self, x, memory=None):
        x = x + self.attn(x)
        if self.cross is not None:
            if memory is None:
                raise ValueError("this decoder has cross-attention: pass the encoder output as memory")
            x = x + self.cross(x, memory)
        return x + self.mlp(x)


class WTASpikingformer(nn.Module):
    """Shared body of WE- and WD-Spikingformer: embedding, WTA blocks, LM head.

    ``forward(tokens long (B, L), memory=None) -> logits (B, L, vocab)``; ``encode`` returns the
    last block's spikes (T, B, L, D) (the memory a decoder's cross-attention reads).
    """

    causal = False

    def __init__(self, vocab_size: int, *, embed_dim: int = 64, depth: int = 1, heads: int = 4,
                 time_steps: int = 2, mlp_ratio: int = 2, k: int = 4, k_ratio: float = 0.0, min_score: int = 0,
                 max_len: int = 256, cross_attention: bool = False, tau: float = 2.0, threshold: float = 1.0,
                 pos_std: float = 0.3):
        super().__init__()
        for key, value, lo in (("vocab_size", vocab_size, 2), ("embed_dim", embed_dim, 2), ("depth", depth, 1),
                               ("heads", heads, 1), ("time_steps", time_steps, 1), ("mlp_ratio", mlp_ratio, 1),
                               ("max_len", max_len, 1), ("k", k, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"{type(self).__name__}: {key} must be an integer >= {lo}, got {value!r}")
        if embed_dim % heads:
            raise ValueError(f"{type(self).__name__}: embed_dim = {embed_dim} must be a multiple of heads = {heads}")
        if cross_attention and not self.causal:
            raise ValueError("cross-attention belongs to the decoder (WDSpikingformer)")
        self.time_steps, self.max_len, self.embed_dim = time_steps, max_len, embed_dim
        self.tok = nn.Embedding(vocab_size, embed_dim)
        self.pos = nn.Parameter(torch.zeros(max_len, embed_dim))
        nn.init.normal_(self.tok.weight, std=1.0)
        nn.init.normal_(self.pos, std=pos_std)
        self.embed_lif = StreamLIF(tau, threshold)
        self.blocks = nn.ModuleList(
            WTABlock(embed_dim, heads, mlp_ratio, causal=self.causal, cross=cross_attention, k=k, k_ratio=k_ratio,
                     min_score=min_score, tau=tau, threshold=threshold) for _ in range(depth))
        self.head = nn.Linear(embed_dim, vocab_size)
        name_layers(self)

    def _check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"{type(self).__name__} takes token ids (B, L) as integers; got "
                             f"{tokens.dtype} {tuple(tokens.shape)}")
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len = {self.max_len}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.tok.num_embeddings):
            raise ValueError(f"token ids must lie in 0 .. {self.tok.num_embeddings - 1}")
        return tokens

    def encode(self, tokens: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self._check_tokens(tokens)
        e = self.tok(tokens) + self.pos[:tokens.shape[1]]
        x = self.embed_lif(e.unsqueeze(0).expand(self.time_steps, *e.shape))
        for block in self.blocks:
            x = block(x, memory)
        return x

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encode(tokens, memory).mean(dim=0))

    def to_integer(self, weight_bits: int = 8) -> "IntWTASpikingformer":
        self.eval()
        scale = 1 << EMBED_FRAC
        emb = torch.round(self.tok.weight.detach().double() * scale).to(torch.int64)
        pos = torch.round(self.pos.detach().double() * scale).to(torch.int64)
        threshold = round(self.embed_lif.lif.threshold * scale)
        blocks = []
        for b in self.blocks:
            blocks.append((b.attn.to_integer(weight_bits),
                           b.cross.to_integer(weight_bits) if b.cross is not None else None,
                           b.mlp.fc1.to_integer(weight_bits=weight_bits),
                           b.mlp.fc2.to_integer(weight_bits=weight_bits)))
        return IntWTASpikingformer(emb, pos, self.embed_lif.to_integer(self.embed_dim, threshold), blocks,
                                   quantize_linear(self.head, weight_bits=weight_bits), self.time_steps)


class WESpikingformer(WTASpikingformer):
    """Encoder-only WTA Spikingformer (non-causal WSSA) for masked language modelling."""

    causal = False


class WDSpikingformer(WTASpikingformer):
    """Decoder WTA Spikingformer (causal CWSSA, optional WTA cross-attention) for causal language modelling."""

    causal = True


@dataclass
class IntWTASpikingformer:
    """Integer WE/WD-Spikingformer: int64 only; ``forward_layers`` returns every layer's tensors."""

    embed: torch.Tensor          # (V, D) int64, units 2^-EMBED_FRAC
    pos: torch.Tensor            # (max_len, D)
    embed_lif: IntStreamLIF
    blocks: list
    head: object                 # QuantLinear
    time_steps: int

    def forward_layers(self, tokens: torch.Tensor, memory: torch.Tensor | None = None) -> dict:
        tokens = torch.as_tensor(tokens)
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"IntWTASpikingformer takes token ids (B, L); got {tokens.dtype} {tuple(tokens.shape)}")
        if tokens.shape[1] > self.pos.shape[0]:
            raise ValueError(f"sequence length {tokens.shape[1]} exceeds max_len = {self.pos.shape[0]}")
        out: dict = {"tokens": tokens}
        currents = self.embed[tokens] + self.pos[:tokens.shape[1]]
        x = self.embed_lif(currents.unsqueeze(0).expand(self.time_steps, *currents.shape))
        out.update({"embed.currents": currents, "embed.spikes": x})
        for i, (attn, cross, fc1, fc2) in enumerate(self.blocks):
            x = x + attn.layers(x, f"block{i}.attn", out)
            if cross is not None:
                if memory is None:
                    raise ValueError("this decoder has cross-attention: pass the encoder output as memory")
                x = x + cross.layers(x, f"block{i}.cross", out, memory=memory)
            x = int_mlp_residual(x, fc1, fc2, f"block{i}", out)
        # logits (T 2^f units) = W sum_t x_t + T b
        out["logits"] = torch.matmul(x.sum(dim=0), self.head.weight.t()) + self.time_steps * self.head.bias
        out["logit_scale"] = torch.tensor(self.time_steps * (1 << self.head.weight_frac))
        return out

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_layers(tokens, memory)["logits"]

    __call__ = forward
