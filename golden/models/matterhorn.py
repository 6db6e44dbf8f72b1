"""Matterhorn: MTTS-encoded spiking transformer with adaptive-threshold LIF neurons (digits).

Pipeline (float and exact integer modes)::

    pixels (B, 1, 8, 8) -> 16 tokens of 2x2 patches
    stem:    a[b, l, :] = W_l patch[b, l]          one weight per token position, no bias, so an
                                                   all-zero patch gives exactly 0 (the frequent code)
    codes:   c = clamp(floor(a 2^fa), -2^(B-1), 2^(B-1) - 1)     B = act_bits signed integers
    MTTS:    spikes s (T, B, L, D) = mtts_spikes(spec, mtts_encode(spec, c))   (golden/mtts.py)
    blocks:  spike-driven self-attention + MLP (below), ``blocks`` times
    pool:    counts = sum over time and over 2x2 windows of the 4x4 token grid (B, 4 D)
    head:    logits = W_h BN(counts / T) + b_h

Spike-driven self-attention block (no softmax), heads of width dh, every neuron an
``AdaptiveLIF`` (golden/alif.py) driven through a ``golden.layers.SpikingLinear``'s linear::

    q, k, v = ALIF(W_q x + b_q), ALIF(W_k x + b_k), ALIF(W_v x + b_v)     spikes 0/1
    y       = q (k^T v)                       per head: integer spike products, exact
    att     = ALIF(y 2^-attn_shift)           a power-of-two scale instead of a softmax
    x1      = x + ALIF(W_o att + b_o)         SEW-style residual: integer spike counts
    x2      = x1 + ALIF(W_2 ALIF(W_1 x1 + b_1) + b_2)

Integer mode (``IntMatterhorn``): pixels enter as the raw 0..16 (= x 2^4); the stem weights use
one power-of-two scale 2^fs (``golden.layers.weight_frac_for``), so
``c = clamp((pixels . W_int) >> (4 + fs - fa))``; every linear is a ``golden.layers.QuantLinear``
(currents in units 2^-f of that layer, saturated to the ALIF input width), the attention current
is ``y << (ATT_FRAC - attn_shift)`` in units 2^-ATT_FRAC, and the head is the float head with
the batch norm and 1/T folded in (``Matterhorn.folded_head``), quantized:
``logits_int = W'_int counts + b'_int`` (2^f times the float logits up to quantization). The variation model's thresholds, leaks and evaluation noise are the
same draws in both modes.

Weights of the six units of a block (q, k, v, o, mlp1, mlp2): plain power-of-two integer
quantization (``golden/layers.py``) by default, or, with ``weight_levels = L > 0``, **log-quantized
with the analog mismatch of their memory** (``LogWeights``: ``golden/logquant.py``,
``golden/mismatch.py``), in float and integer modes alike::

    codes, f = log_quantize(W)              L powers of two, the layer's scale 2^-f (its peak -> 2^(L-1))
    q        = log_decode(codes)            0 or +-2^s, integers on the grid 2^-f
    w_eff    = (q << F) + ((q dg) >> (16 - F)) + do      F = 4; (dg, do) of cell (r, c) of layer id
                                            10 i + u (block i, unit u = 0 q, 1 k, 2 v, 4 o, 5 mlp1,
                                            6 mlp2) under the checkpoint's mismatch seed and sigmas
    integer: QuantLinear(w_eff, round(b 2^f), weight_frac = f, input_frac = F)
    float:   w_eff 2^-(f + F) + (W - W.detach())   (straight-through: training sees the weights the
                                            memory will hold, this chip's deviations included)

so the float model trains against the same effective weights the integer model and the core use
(``weight_gain_sigma = weight_offset_sigma = 0``: w_eff = q 2^F, the ideal log memory). The stem
and the folded head (its batch-norm scale is not a power of two) keep the plain quantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import fixed
from ..alif import AdaptiveLIF, QuantALIF, VariationSpec, quantize_alif
from ..layers import QuantLinear, SpikingLinear, quantize_linear, weight_frac_for
from ..logquant import MAX_LEVELS, LogQuantSpec, log_decode, log_quantize
from ..mismatch import MismatchSpec, effective_weights
from ..mtts import MTTSSpec, mtts_encode, mtts_spikes

PIXEL_FRAC = 4   # digits pixels are 0..16 = x * 2^4 exactly
ATT_FRAC = 8     # units of the attention neurons' currents in integer mode
PATCH = 2
TOKENS = (8 // PATCH) ** 2
PATCH_DIM = PATCH * PATCH
ALIF_WIDTH = 32
POOLED = 4       # spike pooling: the 4x4 token grid summed in 2x2 windows -> 4 regions


def spike_pool(s: torch.Tensor) -> torch.Tensor:
    """(T, B, 16, D) -> (B, 4 D): sums over time and over each 2x2 window of the 4x4 token grid
    (region-major, channel-minor); exact for integer tensors."""
    t, b, _, d = s.shape
    return s.reshape(t, b, 2, 2, 2, 2, d).sum(dim=(0, 3, 5)).reshape(b, POOLED * d)


def patches(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 8, 8) -> (B, 16, 4): 2x2 patches in row-major token order, pixels row-major inside."""
    b = x.shape[0]
    g = 8 // PATCH
    return x.reshape(b, g, PATCH, g, PATCH).permute(0, 1, 3, 2, 4).reshape(b, g * g, PATCH_DIM)


def _shift(x: torch.Tensor, s: int) -> torch.Tensor:
    """x >> s (floor) for s >= 0, x << -s otherwise; exact on int64."""
    return fixed.asr(x, s) if s >= 0 else x * (1 << -s)


#: fraction bits F of the effective-weight grid of a log weight memory with mismatch
LOG_WEIGHT_FRAC = 4


@dataclass(frozen=True)
class LogWeights:
    """The weight memory of the block units: ``levels`` = 0 plain weights, else L powers of two with
    the analog mismatch of ``golden.mismatch`` (gain sd ``gain_sigma`` relative, offset sd
    ``offset_sigma`` LSBs of 2^-(f + F), cells keyed by ``seed`` and the unit's layer id)."""

    levels: int = 0
    gain_sigma: float = 0.0
    offset_sigma: int = 0
    seed: int = 1

    def __post_init__(self):
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or not 0 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"weight_levels must be an integer in 0 .. {MAX_LEVELS} (0: plain weights), "
                             f"got {self.levels!r}")
        if not 0.0 <= float(self.gain_sigma) <= 0.25:
            raise ValueError(f"weight_gain_sigma must be in 0 .. 0.25 (a relative sd), got {self.gain_sigma!r}")
        if isinstance(self.offset_sigma, bool) or not isinstance(self.offset_sigma, int) or self.offset_sigma < 0:
            raise ValueError(f"weight_offset_sigma must be an integer >= 0, got {self.offset_sigma!r}")
        if self.levels == 0 and (self.gain_sigma or self.offset_sigma):
            raise ValueError("weight_gain_sigma / weight_offset_sigma need log-quantized weights (weight_levels > 0)")

    @property
    def active(self) -> bool:
        return self.levels > 0

    @property
    def mismatched(self) -> bool:
        return bool(self.gain_sigma or self.offset_sigma)

    @property
    def quant_spec(self) -> LogQuantSpec:
        return LogQuantSpec(code_bits=fixed.bits_for(self.levels) + 1, levels=self.levels)

    def mismatch_spec(self, layer: int) -> MismatchSpec:
        return MismatchSpec(seed=self.seed, layer=layer, gain_sigma=int(round(self.gain_sigma * (1 << 16))),
                            offset_sigma=self.offset_sigma, frac_bits=LOG_WEIGHT_FRAC)

    def synapse_spec(self, layer: int, n_inputs: int, n_outputs: int, lanes: int, mismatch_impl: str):
        """The ``golden.synapse.SynapseSpec`` of a log weight memory holding this layer's codes (cells
        r = input, c = output), for ``rtl.logmem.LogWeightMemory``: its effective weights are
        ``integer``'s."""
        from ..synapse import SynapseSpec

        ms = self.mismatch_spec(layer)
        return SynapseSpec(n_inputs=n_inputs, n_outputs=n_outputs, lanes=lanes, code_bits=self.quant_spec.code_bits,
                           levels=self.levels, frac_bits=ms.frac_bits, mismatch_seed=ms.seed, layer=layer,
                           gain_sigma=ms.gain_sigma, offset_sigma=ms.offset_sigma, mismatch_impl=mismatch_impl)

    def integer(self, weight: torch.Tensor, layer: int) -> tuple[torch.Tensor, int, int]:
        """Float weight (out, in) -> (integer weights on the grid 2^-(f + extra), f, extra): the decoded
        codes q (extra = 0) or, with mismatch, w_eff (extra = F) of the cells (r = in, c = out)."""
        spec = self.quant_spec
        lq = log_quantize(spec, weight.detach().double())
        if lq.scale_exp < 0:
            raise ValueError(f"layer {layer}: weights up to {float(weight.detach().abs().max()):.3g} need a negative "
                             f"scale exponent for {self.levels} levels; use fewer levels")
        q = log_decode(spec, lq.codes)
        if not self.mismatched:
            return q, lq.scale_exp, 0
        w = effective_weights(self.mismatch_spec(layer), q.t().contiguous()).t().contiguous()
        return w, lq.scale_exp, LOG_WEIGHT_FRAC

    def float_weight(self, weight: torch.Tensor, layer: int) -> torch.Tensor:
        """The weight the memory holds, in float, with a straight-through gradient to ``weight``."""
        w, f, extra = self.integer(weight, layer)
        held = (w.double() * 2.0 ** -(f + extra)).to(weight.dtype)
        return held + (weight - weight.detach())      # the held values exactly, the gradient of weight


class _Unit(nn.Module):
    """A ``SpikingLinear`` whose LIF is replaced by an ``AdaptiveLIF`` (same .linear / .lif members);
    its weights are the memory's (``LogWeights``) when log-quantized."""

    def __init__(self, d_in: int, d_out: int, layer: int, neuron: dict, weights: LogWeights = LogWeights()):
        super().__init__()
        base = SpikingLinear(d_in, d_out)
        self.linear = base.linear
        self.lif = AdaptiveLIF(d_out, layer=layer, **neuron)
        self.layer, self.weights = layer, weights

    def forward(self, x):
        if not self.weights.active:
            return self.lif(self.linear(x))
        w = self.weights.float_weight(self.linear.weight, self.layer)
        return self.lif(nn.functional.linear(x, w, self.linear.bias))

    def quantize(self, weight_bits: int) -> QuantLinear:
        """The unit's integer linear: plain (``quantize_linear``) or the log memory's (``LogWeights``)."""
        if not self.weights.active:
            return quantize_linear(self.linear, weight_bits=weight_bits, input_frac=0)
        w, f, extra = self.weights.integer(self.linear.weight, self.layer)
        b = torch.round(self.linear.bias.detach().double() * (1 << f)).to(torch.int64)
        return QuantLinear(w, b, f, extra)


class SpikeDrivenBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, attn_shift: int, index: int, neuron: dict,
                 weights: LogWeights = LogWeights()):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim = {dim} must be a multiple of heads = {heads}")
        self.heads, self.attn_shift = heads, attn_shift
        base = 10 * index
        self.q = _Unit(dim, dim, base + 0, neuron, weights)
        self.k = _Unit(dim, dim, base + 1, neuron, weights)
        self.v = _Unit(dim, dim, base + 2, neuron, weights)
        self.att = AdaptiveLIF(dim, layer=base + 3, **neuron)
        self.o = _Unit(dim, dim, base + 4, neuron, weights)
        self.mlp1 = _Unit(dim, dim * mlp_ratio, base + 5, neuron, weights)
        self.mlp2 = _Unit(dim * mlp_ratio, dim, base + 6, neuron, weights)

    def attention(self, q, k, v):
        """q (k^T v) per head; (T, B, L, D) each -> (T, B, L, D)."""
        t, b, n, d = q.shape
        h = self.heads
        split = lambda z: z.reshape(t, b, n, h, d // h).transpose(2, 3)   # (T, B, H, L, dh)
        y = split(q) @ (split(k).transpose(-1, -2) @ split(v))
        return y.transpose(2, 3).reshape(t, b, n, d)

    def forward(self, x):
        att = self.att(self.attention(self.q(x), self.k(x), self.v(x)) * 2.0 ** -self.attn_shift)
        x1 = x + self.o(att)
        return x1 + self.mlp2(self.mlp1(x1))


class Matterhorn(nn.Module):
    """Float (trainable) Matterhorn digit classifier; ``to_integer()`` gives the exact integer model."""

    def __init__(self, dim: int = 32, heads: int = 2, blocks: int = 1, mlp_ratio: int = 2, time_steps: int = 8,
                 act_bits: int = 5, act_frac: int = 2, train_form: str = "step", mask: bool = True,
                 mask_value: int = 0, dead_zone: int = 0, attn_shift: int = 2, threshold: float = 0.5,
                 beta: float = 0.875, adapt_increment: float = 0.5, adapt_shift: int = 2,
                 variation_seed: int = 0, threshold_spread: float = 0.1, leak_spread: float = 0.05,
                 noise: float = 0.05, stem_scale: float = 2.0, weight_levels: int = 0,
                 weight_gain_sigma: float = 0.0, weight_offset_sigma: int = 0, mismatch_seed: int = 1):
        super().__init__()
        self.weights = LogWeights(weight_levels, weight_gain_sigma, weight_offset_sigma, mismatch_seed)
        if not 0 <= attn_shift <= ATT_FRAC:
            raise ValueError(f"attn_shift must be in 0 .. {ATT_FRAC}, got {attn_shift}")
        if dead_zone < 0:
            raise ValueError(f"dead_zone (half width) must be >= 0, got {dead_zone}")
        lo, hi = fixed.int_min(act_bits, True), fixed.int_max(act_bits, True)
        self.mtts = MTTSSpec(input_width=act_bits, signed=True, time_steps=time_steps, lanes=4, lo=lo, hi=hi,
                             train=train_form, mask=mask, mask_value=mask_value)
        if dead_zone:
            self.mtts = self.mtts.with_dead_zone(dead_zone)
        self.time_steps, self.act_frac, self.attn_shift = time_steps, act_frac, attn_shift
        self.variation = VariationSpec(variation_seed, threshold_spread, leak_spread, noise)
        neuron = dict(threshold=threshold, beta=beta, adapt_increment=adapt_increment, adapt_shift=adapt_shift,
                      variation=self.variation)
        self.stem = nn.Parameter(torch.randn(TOKENS, PATCH_DIM, dim) * stem_scale)
        self.blocks = nn.ModuleList(SpikeDrivenBlock(dim, heads, mlp_ratio, attn_shift, i, neuron, self.weights)
                                    for i in range(blocks))
        self.norm = nn.BatchNorm1d(POOLED * dim)
        self.head = nn.Linear(POOLED * dim, 10)

    def set_log_weights(self, weights: LogWeights) -> None:
        """Hold the block linears in another log weight memory (levels, mismatch sigmas, seed): the
        float and integer modes of every unit follow (the trained weights stay as they are)."""
        if not isinstance(weights, LogWeights):
            raise TypeError(f"set_log_weights takes a LogWeights, got {type(weights).__name__}")
        self.weights = weights
        for block in self.blocks:
            for name in ("q", "k", "v", "o", "mlp1", "mlp2"):
                getattr(block, name).weights = weights

    def stem_activations(self, x: torch.Tensor) -> torch.Tensor:
        """Real stem outputs a (B, L, D) = W_l patch_l."""
        return torch.einsum("blp,lpd->bld", patches(x), self.stem)

    def codes(self, a: torch.Tensor) -> torch.Tensor:
        """clamp(floor(a 2^fa)) as int64 (the values the MTTS encoder sees)."""
        scaled = torch.floor(a.detach().double() * (1 << self.act_frac))
        return torch.clamp(scaled, self.mtts.lo, self.mtts.hi).to(torch.int64)

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        """MTTS spikes (T, B, L, D) of the stem activations, with a straight-through gradient."""
        spikes = mtts_spikes(self.mtts, mtts_encode(self.mtts, self.codes(a))).to(a.dtype)
        soft = torch.clamp((a * (1 << self.act_frac) - self.mtts.lo) / self.mtts.value_range, 0, 1)
        return spikes + (soft - soft.detach()).unsqueeze(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.encode(self.stem_activations(x))
        for block in self.blocks:
            s = block(s)
        return self.head(self.norm(spike_pool(s) / self.time_steps))

    def folded_head(self) -> nn.Linear:
        """BatchNorm (eval statistics) and 1/T folded into one linear map of the pooled counts c:
        logits = W (g (c / T - mu) / sigma + beta) + b = W' c + b'."""
        bn = self.norm
        g = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()
        w = self.head.weight.detach().double()
        folded = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            folded.weight.copy_(w * g / self.time_steps)
            folded.bias.copy_(self.head.bias.detach().double()
                              + w @ (bn.bias.detach().double() - g * bn.running_mean.detach().double()))
        return folded

    def to_integer(self, weight_bits: int = 8) -> "IntMatterhorn":
        fs = weight_frac_for(self.stem, weight_bits)
        stem = fixed.saturate(torch.round(self.stem.detach().double() * (1 << fs)).to(torch.int64),
                              weight_bits, True)
        blocks = []
        for blk in self.blocks:
            units = {}
            for name in ("q", "k", "v", "o", "mlp1", "mlp2"):
                unit = getattr(blk, name)
                lin = unit.quantize(weight_bits)
                units[name] = (lin, quantize_alif(unit.lif, lin.weight_frac, membrane_width=ALIF_WIDTH,
                                                  input_width=ALIF_WIDTH, adapt_width=ALIF_WIDTH))
            units["att"] = quantize_alif(blk.att, ATT_FRAC, membrane_width=ALIF_WIDTH, input_width=ALIF_WIDTH,
                                         adapt_width=ALIF_WIDTH)
            blocks.append(IntBlock(heads=blk.heads, attn_shift=blk.attn_shift, **units))
        return IntMatterhorn(stem=stem, stem_frac=fs, act_frac=self.act_frac, mtts=self.mtts, blocks=blocks,
                             head=quantize_linear(self.folded_head(), weight_bits=weight_bits, input_frac=0),
                             time_steps=self.time_steps)


@dataclass
class IntBlock:
    heads: int
    attn_shift: int
    q: tuple[QuantLinear, QuantALIF]
    k: tuple[QuantLinear, QuantALIF]
    v: tuple[QuantLinear, QuantALIF]
    att: QuantALIF
    o: tuple[QuantLinear, QuantALIF]
    mlp1: tuple[QuantLinear, QuantALIF]
    mlp2: tuple[QuantLinear, QuantALIF]

    @staticmethod
    def unit(pair, x):
        lin, neuron = pair
        return neuron(fixed.saturate(lin(x), neuron.spec.input_width, True))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        q, k, v = self.unit(self.q, x), self.unit(self.k, x), self.unit(self.v, x)
        t, b, n, d = q.shape
        h = self.heads
        split = lambda z: z.reshape(t, b, n, h, d // h).transpose(2, 3)
        y = (split(q) @ (split(k).transpose(-1, -2) @ split(v))).transpose(2, 3).reshape(t, b, n, d)
        att = self.att(fixed.saturate(y << (ATT_FRAC - self.attn_shift), self.att.spec.input_width, True))
        x1 = x + self.unit(self.o, att)
        x2 = x1 + self.unit(self.mlp2, self.unit(self.mlp1, x1))
        return {"q": q, "k": k, "v": v, "attention": y, "att": att, "x1": x1, "out": x2}


@dataclass
class IntMatterhorn:
    stem: torch.Tensor   # int64 (L, 4, D)
    stem_frac: int
    act_frac: int
    mtts: MTTSSpec
    blocks: list[IntBlock]
    head: QuantLinear
    time_steps: int

    def codes(self, pixels: torch.Tensor) -> torch.Tensor:
        """Integer pixels (B, 1, 8, 8), 0..16 -> stem codes (B, L, D), the MTTS encoder's input."""
        pixels = torch.as_tensor(pixels)
        if pixels.is_floating_point() or pixels.dim() != 4 or tuple(pixels.shape[1:]) != (1, 8, 8):
            raise ValueError(f"IntMatterhorn takes integer pixels (B, 1, 8, 8); got {pixels.dtype} "
                             f"{tuple(pixels.shape)}")
        fixed.check_range(pixels, 5, False, "pixels")
        acc = torch.einsum("blp,lpd->bld", patches(pixels.to(torch.int64)), self.stem)
        scaled = _shift(acc, PIXEL_FRAC + self.stem_frac - self.act_frac)
        return torch.clamp(scaled, self.mtts.lo, self.mtts.hi)

    def forward_layers(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        codes = self.codes(pixels)
        code = mtts_encode(self.mtts, codes)
        s = mtts_spikes(self.mtts, code)
        out = {"codes": codes, "mtts_time": code.time, "mtts_silent": code.silent, "mtts_spikes": s}
        for i, block in enumerate(self.blocks):
            layers = block.forward(s)
            out.update({f"block{i}_{k}": v for k, v in layers.items()})
            s = layers["out"]
        counts = spike_pool(s)
        out["counts"] = counts
        out["logits"] = self.head(counts)
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(pixels)["logits"]

    __call__ = forward


def digits_pixels(x: torch.Tensor) -> torch.Tensor:
    """Float digits in [0, 1] (multiples of 1/16) -> the exact integer pixels 0..16."""
    return torch.round(x.double() * 16).to(torch.int64)
