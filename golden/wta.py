"""Winner-take-all (top-k) attention: the specs, the exact integer model and the float model.

The softmax-free attention of the WTA Spiking Transformer keeps, for every query,
only the k keys with the highest scores, each with weight 1/k.

Integer mode (the hardware contract)
------------------------------------
Q (Lq x D), K (L x D), V (L x Dv) are integer matrices. With ``qk_width = 1``
Q and K are spikes (0/1) and a score is the popcount of their AND; otherwise Q
and K are ``qk_width``-bit signed and a score is their exact dot product::

    s[i, j]   = sum_d Q[i, d] K[j, d]                       (exact, fits score_width)
    elig[i,j] = (s[i, j] >= min_score) and (j <= i  if causal)
    key(i, j) = (elig[i, j], s[i, j], -j)                    compared lexicographically
    W(i)      = the min(k, #eligible) eligible keys with the largest key(i, j)
              = the k highest scores, **ties going to the lower key index**
    acc[i]    = sum_{j in W(i)} V[j]                          (exact)
    out[i]    = acc[i] * R,  R = (2^F + floor(k/2)) // k      scale_mode = "reciprocal"
              = acc[i]                                        scale_mode = "fold"

In "reciprocal" mode ``out`` is a fixed-point number with F fraction bits:
out / 2^F ~= acc / k (R is 2^F / k rounded half up; 2^F >= k is required). When
k is a power of two, R = 2^(F - log2 k) exactly and the product is the shift
``acc << (F - log2 k)``: out / 2^F = acc / k with no error. ``fold`` leaves the
1/k to the consumer (a LIF threshold multiplied by k, or the next layer's input
fraction log2 k). No rounding happens anywhere after R.

A row with fewer than k eligible keys (early rows under causal masking, or keys
below ``min_score``) gets only its eligible winners, **still scaled by 1/k**: the
missing winners count as zero rows of V. Winner lists are in rank order (highest
key first) and padded with index 0, score 0, valid 0.

The default ``min_score`` is 0 for every spec. For unsigned scores (spike
popcounts) 0 is the smallest score, so the rule is off; for signed scores it is
**on**: a key with a negative score is never eligible, so a row whose scores are
all negative has no winners (acc = 0). Set ``min_score`` to the smallest Ws-bit
score, -2^(Ws-1), to turn it off for signed scores.

Causal rows: the scores of one query form one row; row i is query i, counted
0 .. L - 1 within its sequence (tensors: index i of the last-but-one dimension;
the stream hardware counts rows 0 .. L - 1 and starts again with the next
sequence), so under causal masking row i sees keys 0 .. i.

Float mode
----------
``wta_attention_float`` has the same hard top-k forward (same tie rule); its
backward is a softmax-relaxed straight-through estimator: the weights are
``M/k + (P - stop_grad(P))`` with P = softmax(s / tau) over the eligible keys,
so V gets the gradient of the hard weights M/k and Q, K get the gradient of
the softmax relaxation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from . import fixed
from .spec import SpecBase, SpecError, check_bool, check_choice, check_int

SCALE_MODES = ("reciprocal", "fold")
TOPK_VERSIONS = ("stream", "parallel")


def k_from_ratio(length: int, ratio: float) -> int:
    """k = max(1, floor(L * ratio)), never 0."""
    return max(1, int(math.floor(length * ratio + 1e-9)))


def _resolve_k(name: str, length: int, k: int, k_ratio: float) -> int:
    if isinstance(k_ratio, bool) or not isinstance(k_ratio, (int, float)):
        raise SpecError(f"{name}.k_ratio must be a number, got {k_ratio!r}")
    if k_ratio != 0:
        if not 0 < k_ratio <= 1:
            raise SpecError(f"{name}.k_ratio = {k_ratio} is out of range; allowed: 0 (use k) or "
                            f"0 < k_ratio <= 1 (k = max(1, floor(length * k_ratio)))")
        return k_from_ratio(length, k_ratio)
    check_int(name, "k", k, 1, None)
    if k > length:
        raise SpecError(f"{name}.k = {k} is out of range; allowed: 1 .. length = {length}")
    return k


@dataclass(frozen=True)
class TopKSpec(SpecBase):
    """Parameters of a top-k winner-take-all selection, shared by ``topk_select`` and ``rtl.TopK``.

    Attributes
    ----------
    length : L, keys per row (scores per query), 1 .. 4096.
    k : winners per row, 1 .. L (used when ``k_ratio`` is 0).
    k_ratio : if non-zero, k = max(1, floor(L * k_ratio)); 0 < k_ratio <= 1.
    score_width : Ws, bits of a score, 1 .. 32.
    signed : scores are Ws-bit two's complement (else unsigned).
    causal : key j is eligible for query row i only if j <= i (row i = the i-th row,
        0-based, of a sequence of L rows; the row counter restarts with every sequence).
    min_score : a key whose score is below it never wins. Default 0; with unsigned
        scores this is the smallest score, i.e. the rule is off; with signed scores
        negative scores never win (-2^(Ws-1) turns the rule off).
    version : hardware only: "stream" (insertion, one score per cycle) or "parallel"
        (pipelined bitonic sorting network, one row per cycle).
    """

    block = "topk"

    length: int = 16
    k: int = 4
    k_ratio: float = 0.0
    score_width: int = 6
    signed: bool = False
    causal: bool = False
    min_score: int = 0
    version: str = "stream"

    def __post_init__(self):
        name = "TopKSpec"
        check_int(name, "length", self.length, 1, 4096)
        _resolve_k(name, self.length, self.k, self.k_ratio)
        check_int(name, "score_width", self.score_width, 1, 32)
        check_bool(name, "signed", self.signed)
        check_bool(name, "causal", self.causal)
        check_int(name, "min_score", self.min_score, fixed.int_min(self.score_width, self.signed),
                  fixed.int_max(self.score_width, self.signed))
        check_choice(name, "version", self.version, TOPK_VERSIONS)
        if self.version == "parallel" and self.length > 64:
            raise SpecError(f"TopKSpec.length = {self.length} is too long for version 'parallel' "
                            f"(a sorting network per row); allowed: 1 .. 64, or use version 'stream'")

    @property
    def top_k(self) -> int:
        """The effective k (from ``k`` or ``k_ratio``)."""
        return _resolve_k("TopKSpec", self.length, self.k, self.k_ratio)

    @property
    def index_width(self) -> int:
        return fixed.bits_for(self.length - 1)


@dataclass(frozen=True)
class WTASpec(SpecBase):
    """Parameters of WTA attention, shared by ``wta_attention`` and ``rtl.WTAAttention``.

    Attributes
    ----------
    length : L, keys (and, for self-attention, queries) per sequence, 1 .. 4096.
    head_dim : D, width of a Q / K row, 1 .. 1024.
    value_dim : Dv, width of a V row, 1 .. 1024.
    heads : H, attention heads (the golden function takes (..., H, L, D); the hardware
        unit handles one head and is reused per head).
    qk_width : bits of a Q / K element: 1 = spikes (0/1, AND-popcount scores), else signed.
    v_width : bits of a V element: 1 = spikes (0/1), else signed.
    score_width : Ws, signed-if-qk_width>1 bits of a score; must hold every possible score.
    k, k_ratio : winners per query, as in ``TopKSpec``.
    causal : key j is eligible for query i only if j <= i (needs Lq = L).
    min_score : keys scoring below it never win (default 0: off for spike scores).
    scale_mode : "reciprocal" (out = acc * R, F fraction bits) or "fold" (out = acc).
    scale_frac : F, fraction bits of the reciprocal R = (2^F + k // 2) // k, 0 .. 16.
    lanes : P, (query, key) scores computed in parallel by the hardware, 1 .. L.
    """

    block = "wta"

    length: int = 16
    head_dim: int = 8
    value_dim: int = 8
    heads: int = 1
    qk_width: int = 1
    v_width: int = 1
    score_width: int = 5
    k: int = 4
    k_ratio: float = 0.0
    causal: bool = False
    min_score: int = 0
    scale_mode: str = "reciprocal"
    scale_frac: int = 8
    lanes: int = 4

    def __post_init__(self):
        name = "WTASpec"
        check_int(name, "length", self.length, 1, 4096)
        check_int(name, "head_dim", self.head_dim, 1, 1024)
        check_int(name, "value_dim", self.value_dim, 1, 1024)
        check_int(name, "heads", self.heads, 1, 256)
        check_int(name, "qk_width", self.qk_width, 1, 16)
        check_int(name, "v_width", self.v_width, 1, 16)
        check_int(name, "score_width", self.score_width, 1, 32)
        need = self.score_bits_needed
        if self.score_width < need:
            raise SpecError(f"WTASpec.score_width = {self.score_width} cannot hold every score "
                            f"(|score| up to {self.max_abs_score} for head_dim {self.head_dim} and "
                            f"qk_width {self.qk_width}); allowed: {need} .. 32")
        _resolve_k(name, self.length, self.k, self.k_ratio)
        check_bool(name, "causal", self.causal)
        check_int(name, "min_score", self.min_score, fixed.int_min(self.score_width, self.score_signed),
                  fixed.int_max(self.score_width, self.score_signed))
        check_choice(name, "scale_mode", self.scale_mode, SCALE_MODES)
        check_int(name, "scale_frac", self.scale_frac, 0, 16)
        if self.scale_mode == "reciprocal" and (1 << self.scale_frac) < self.top_k:
            raise SpecError(f"WTASpec.scale_frac = {self.scale_frac} is too small for k = {self.top_k}: "
                            f"the reciprocal needs 2^F >= k; allowed: "
                            f"{max(0, (self.top_k - 1).bit_length())} .. 16")
        check_int(name, "lanes", self.lanes, 1, self.length)

    # ---- derived quantities (every width comes from here) ----
    @property
    def top_k(self) -> int:
        return _resolve_k("WTASpec", self.length, self.k, self.k_ratio)

    @property
    def qk_signed(self) -> bool:
        return self.qk_width > 1

    @property
    def v_signed(self) -> bool:
        return self.v_width > 1

    @property
    def score_signed(self) -> bool:
        return self.qk_signed

    @property
    def max_abs_score(self) -> int:
        if not self.qk_signed:
            return self.head_dim
        m = 1 << (self.qk_width - 1)  # |-2^(w-1) * -2^(w-1)|
        return self.head_dim * m * m

    @property
    def score_bits_needed(self) -> int:
        if not self.score_signed:
            return fixed.bits_for(self.max_abs_score)
        return fixed.signed_bits_for(-self.max_abs_score, self.max_abs_score)

    @property
    def acc_width(self) -> int:
        """Signed bits of acc (the sum of at most k V elements)."""
        lo = fixed.int_min(self.v_width, self.v_signed) * self.top_k
        hi = fixed.int_max(self.v_width, self.v_signed) * self.top_k
        return fixed.signed_bits_for(lo, hi)

    @property
    def reciprocal(self) -> int:
        """R = (2^F + floor(k/2)) // k, i.e. 2^F / k rounded half up."""
        k = self.top_k
        return ((1 << self.scale_frac) + k // 2) // k

    @property
    def out_width(self) -> int:
        """Signed bits of the output, from the extreme values of acc * R."""
        if self.scale_mode == "fold":
            return self.acc_width
        k = self.top_k
        lo = fixed.int_min(self.v_width, self.v_signed) * k * self.reciprocal
        hi = fixed.int_max(self.v_width, self.v_signed) * k * self.reciprocal
        return fixed.signed_bits_for(lo, hi)

    @property
    def groups(self) -> int:
        """G = ceil(L / P): cycles of score computation per query."""
        return -(-self.length // self.lanes)

    def topk_spec(self, version: str = "stream") -> TopKSpec:
        return TopKSpec(length=self.length, k=self.k, k_ratio=self.k_ratio, score_width=self.score_width,
                        signed=self.score_signed, causal=self.causal, min_score=self.min_score,
                        version=version)


# ---------------------------------------------------------------------------
# Integer mode


class TopKResult(NamedTuple):
    index: torch.Tensor  # (..., R, k) int64 winner key indices in rank order, 0 where invalid
    score: torch.Tensor  # (..., R, k) int64 winner scores, 0 where invalid
    valid: torch.Tensor  # (..., R, k) int64 1 for a real winner, 0 for padding


def _check_topk_scores(spec: TopKSpec, scores) -> torch.Tensor:
    scores = fixed.check_range(scores, spec.score_width, spec.signed, "top-k scores")
    if scores.dim() < 2 or scores.shape[-1] != spec.length:
        raise ValueError(f"top-k scores must have shape (..., rows, {spec.length}) with the last "
                         f"dimension = TopKSpec.length; got {tuple(scores.shape)}")
    if spec.causal and scores.shape[-2] != spec.length:
        raise ValueError(f"causal top-k needs square score matrices (..., {spec.length}, {spec.length}) "
                         f"(row i is query i); got {tuple(scores.shape)}")
    return scores


def eligible_mask(scores: torch.Tensor, causal: bool, min_score: int) -> torch.Tensor:
    """elig[i, j] = s[i, j] >= min_score and (j <= i if causal); bool, same shape as scores."""
    elig = scores >= min_score
    if causal:
        rows, cols = scores.shape[-2], scores.shape[-1]
        i = torch.arange(rows).unsqueeze(1)
        j = torch.arange(cols).unsqueeze(0)
        elig = elig & (j <= i)
    return elig


def _topk_core(scores: torch.Tensor, elig: torch.Tensor, k: int, score_width: int, signed: bool) -> TopKResult:
    length = scores.shape[-1]
    # One unique int64 key per (row, j): eligible first, then score, then the lower index.
    # Unique keys make torch.topk's result (set and order) fully determined.
    biased = scores - fixed.int_min(score_width, signed)           # 0 .. 2^Ws - 1
    j = torch.arange(length, dtype=torch.int64)
    key = (elig.to(torch.int64) << (score_width + 13)) + (biased << 13) + (length - 1 - j)
    top = torch.topk(key, k, dim=-1, largest=True, sorted=True).indices
    valid = torch.gather(elig, -1, top).to(torch.int64)
    score = torch.gather(scores, -1, top) * valid
    return TopKResult(top * valid, score, valid)


def topk_select(spec: TopKSpec, scores) -> TopKResult:
    """The k winners of every row of ``scores`` (..., R, L); see the module docstring.

    Row i of the last-but-one dimension is query i (only used when causal).
    """
    scores = _check_topk_scores(spec, scores)
    elig = eligible_mask(scores, spec.causal, spec.min_score)
    return _topk_core(scores, elig, spec.top_k, spec.score_width, spec.signed)


class WTAResult(NamedTuple):
    scores: torch.Tensor   # (..., Lq, L)
    index: torch.Tensor    # (..., Lq, k)
    valid: torch.Tensor    # (..., Lq, k)
    acc: torch.Tensor      # (..., Lq, Dv) sum of the winners' V rows
    out: torch.Tensor      # (..., Lq, Dv) scaled by 1/k as scale_mode says


def wta_scores(spec: WTASpec, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """s = Q K^T exactly (popcount(q AND k) for spikes), int64."""
    return torch.matmul(q, k.transpose(-1, -2))


def _check_qkv(spec: WTASpec, q, k, v):
    q = fixed.check_range(q, spec.qk_width, spec.qk_signed, "WTA queries Q")
    k = fixed.check_range(k, spec.qk_width, spec.qk_signed, "WTA keys K")
    v = fixed.check_range(v, spec.v_width, spec.v_signed, "WTA values V")
    if q.dim() < 2 or q.shape[-1] != spec.head_dim:
        raise ValueError(f"WTA queries Q must have shape (..., Lq, {spec.head_dim}) (head_dim); "
                         f"got {tuple(q.shape)}")
    if k.dim() < 2 or tuple(k.shape[-2:]) != (spec.length, spec.head_dim):
        raise ValueError(f"WTA keys K must have shape (..., {spec.length}, {spec.head_dim}) (length, "
                         f"head_dim); got {tuple(k.shape)}")
    if v.dim() < 2 or tuple(v.shape[-2:]) != (spec.length, spec.value_dim):
        raise ValueError(f"WTA values V must have shape (..., {spec.length}, {spec.value_dim}) (length, "
                         f"value_dim); got {tuple(v.shape)}")
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(f"WTA Q, K, V batch dimensions differ: {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    if spec.heads > 1 and (q.dim() < 3 or q.shape[-3] != spec.heads):
        raise ValueError(f"WTA Q, K, V must have shape (..., H = {spec.heads}, L, D); got {tuple(q.shape)}")
    if spec.causal and q.shape[-2] != spec.length:
        raise ValueError(f"causal WTA attention needs Lq = L = {spec.length} queries; got {q.shape[-2]}")
    return q, k, v


def wta_scale(spec: WTASpec, acc: torch.Tensor) -> torch.Tensor:
    """out = acc * R (reciprocal: F fraction bits) or acc (fold)."""
    if spec.scale_mode == "fold":
        return acc
    return acc * spec.reciprocal


def wta_attention(spec: WTASpec, q, k, v) -> WTAResult:
    """Exact integer WTA attention (module docstring); Q (..., Lq, D), K (..., L, D), V (..., L, Dv)."""
    q, k, v = _check_qkv(spec, q, k, v)
    scores = wta_scores(spec, q, k)
    elig = eligible_mask(scores, spec.causal, spec.min_score)
    top = _topk_core(scores, elig, spec.top_k, spec.score_width, spec.score_signed)
    # acc[i] = sum over rank r of valid[i, r] * V[index[i, r]]
    gathered = torch.gather(v.unsqueeze(-3).expand(*top.index.shape[:-1], *v.shape[-2:]), -2,
                            top.index.unsqueeze(-1).expand(*top.index.shape, v.shape[-1]))
    acc = (gathered * top.valid.unsqueeze(-1)).sum(dim=-2)
    return WTAResult(scores, top.index, top.valid, acc, wta_scale(spec, acc))


# ---------------------------------------------------------------------------
# Float mode


def wta_mask(scores: torch.Tensor, k: int, causal: bool = False, min_score: float | None = None) -> torch.Tensor:
    """Hard 0/1 winner mask (..., Lq, L), same tie rule (lower index wins) as the integer mode."""
    s = scores.detach().double()
    elig = torch.ones_like(s, dtype=torch.bool)
    if min_score is not None:
        elig = s >= min_score
    if causal:
        elig = elig & eligible_mask(torch.zeros(s.shape[-2:]), True, 0)
    kk = min(k, s.shape[-1])
    # a stable descending sort keeps lower indices first among equal scores (the tie rule)
    key = torch.where(elig, s, torch.full_like(s, -math.inf))
    idx = torch.sort(key, dim=-1, descending=True, stable=True).indices[..., :kk]
    mask = torch.zeros_like(s)
    mask.scatter_(-1, idx, 1.0)
    return (mask * elig).to(scores.dtype)


def wta_attention_float(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, top_k: int, *,
                        causal: bool = False, min_score: float | None = None, tau: float = 1.0,
                        backward: str = "softmax") -> torch.Tensor:
    """Float WTA attention: forward (M / k) V with the hard top-k mask M.

    ``backward = "softmax"``: Q, K receive the gradient of softmax(s / tau) (masked to the
    eligible keys) through a straight-through term; ``"none"``: Q, K get no gradient.
    """
    check_choice("wta_attention_float", "backward", backward, ("softmax", "none"))
    scores = torch.matmul(q, k.transpose(-1, -2))
    mask = wta_mask(scores, top_k, causal, min_score)
    weights = mask / top_k
    if backward == "softmax":
        logits = scores / tau
        if causal:
            allowed = eligible_mask(torch.zeros(scores.shape[-2:]), True, 0).to(scores.device)
            logits = logits.masked_fill(~allowed, -1e9)
        soft = torch.softmax(logits, dim=-1)
        weights = weights + (soft - soft.detach())
    return torch.matmul(weights, v)
