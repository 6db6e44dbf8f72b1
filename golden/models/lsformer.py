"""LSFormer: local dilated window attention (LDWA) and spiking response pooling (SRP).

After "Breaking Global Self-Attention Bottlenecks in Transformer-based Spiking Neural
Networks with Local Structure-Aware Self-Attention" (LSFormer, 2026), sized for the 8x8
digits. Time is dim 0 everywhere: activations are (T, B, N, D) with N = H W tokens in
raster order.

Float model (trainable, surrogate gradients)
--------------------------------------------
* Stem (patch embedding): ``u_0 = conv3x3(x)`` on the pixels, one token per pixel
  (H = W = 8, D channels), the same drive at every time step (direct encoding).
* Block (membrane shortcut: the residual stream ``u`` holds currents, every
  sub-block starts with a layer norm and a LIF)::

      s = LIF(LN_1(u));   u = u + LDWA(s)
      s = LIF(LN_2(u));   u = u + MLP(s)

* LDWA(s): multi-scale dilated depthwise convolutions (kernel 3 at each of
  ``conv_dilations``, averaged: ``c = (1/n) sum_d conv_d(s) + b``) -> LIF -> spikes
  ``s_c``; ``Q, K, V = SpikingLinear(s_c)`` (LIF spikes); head h (dilation
  ``head_dilations[h]``, D/heads channels) attends only inside each token's dilated
  window (``golden.window.window_mask``), spike-driven, no softmax::

      score(p, q) = popcount(Q_p AND K_q) = sum_c Q_pc K_qc     for q in window(p)
      A_pc        = sum_q score(p, q) V_qc                       (an integer count)
      a           = LIF(A * 2^-attn_shift)                       (the scaling: a power of two)
      LDWA(s)     = W_o a + b_o                                  (currents into the residual)

  With zero padding, padded taps have K = V = 0 and add nothing, so attention over
  the gathered window equals this masked form. ``attn_radius >= max(H, W) - 1`` with
  every head at dilation 1 is global attention (the baseline configuration).
* MLP(s) = W_2 SpikingLinear(s) + b_2 (hidden ``mlp_ratio * D``).
* Head: ``s = LIF(LN_h(u))``, SRP over 2x2 regions, a linear readout of the pooled
  spikes averaged over time.
* SRP (spiking response pooling, replaces max pooling): the spikes of a k x k region
  are counted, ``r_t = sum_region s_t``, and leakily accumulated with time constant
  tau then thresholded -- a LIF over the region counts::

      a_t = beta a_{t-1} + r_t,  beta = round((1 - 1/tau) 2^8) / 2^8   (tau = 10: 230/256)
      o_t = [a_t >= theta];  a_t -= theta o_t

* Spiking layer norm: ``nn.LayerNorm`` over channels (gamma, beta learnable).

Integer model (``LSFormer.to_integer()`` -> ``IntLSFormer``), int64 only
-------------------------------------------------------------------------
* Pixels enter as 0 .. 16 (x * 2^4). Every LIF is ``golden.lif`` with a multiply leak
  ``b = round(beta 2^8)`` (0.875 -> 224, exact) and threshold ``round(theta 2^f)`` where f is
  its input's fraction bits.
* The residual stream is in units of 2^-f_res, where f_res is the largest power-of-two
  scale at which every layer writing into it (stem, W_o, W_2) fits ``weight_bits``.
* Layer norm, integer-only (no folding, no floats): over the D channels of a token::

      mu    = floor(sum(u) / D)
      var   = floor(sum((u - mu)^2) / D)
      sigma = isqrt(var + eps_int)       (floor of the square root, by bits; eps_int = max(1, round(eps 2^(2 f_res))))
      y     = floor((u - mu) * gamma_int / sigma) + beta_int      (gamma_int, beta_int = round(. 2^8))

  y is in units of 2^-8, the fraction of the LIF that follows (threshold 2^8).
* Dilated convolution: the spike maps go through ``golden.window.dilated_windows``
  (the buffer's exact output) and ``c = sum_{d,tap} window * W_int + b_int``, with
  ``W_int = round(W / n 2^f_c)`` (the average folded into the weights).
* Attention: the counts A are exact integers in both modes (K and V windows from
  ``dilated_windows``; a global head uses the dense product); the attention LIF takes
  ``A << 8`` with threshold ``2^(attn_shift + 8)``, i.e. exactly ``A 2^-attn_shift``.
* SRP: region counts ``r << 8`` into a LIF with threshold ``round(theta 2^8)``.
* Readout: ``logits = sum_t W_int p_t + T b_int``, a positive multiple of the float
  logits up to quantization, so the arg-max is the prediction in both modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .. import fixed
from ..layers import QuantLinear, QuantSpikingLinear, SpikingLinear, lif_run_time_first, quantize_linear, \
    quantize_spiking_linear, weight_frac_for
from ..layernorm import isqrt_exact, layer_norm_exact
from ..lif import LIF, LIFSpec
from ..spec import SpecError
from ..window import WindowSpec, dilated_windows, is_global_window, window_mask

PIXEL_FRAC = 4     # digits pixels 0 .. 16 = x * 2^4 exactly
LIF_FRAC = 8       # fraction bits of the LIFs after layer norms, attention and SRP
LEAK_FRAC = 8
GRID = 8           # the digits' token grid (8 x 8)


def srp_beta(tau: float) -> float:
    """The SRP leak: (1 - 1/tau) rounded to 8 fraction bits, identical in float and integer."""
    if not tau > 1.0:
        raise ValueError(f"SRP tau must be > 1, got {tau}")
    return round((1.0 - 1.0 / tau) * (1 << LEAK_FRAC)) / (1 << LEAK_FRAC)


#: floor(sqrt(v)) and the integer layer norm of the module docstring: the functions
#: ``rtl.layernorm.LayerNorm`` computes (``golden.layernorm``), under this model's names
isqrt = isqrt_exact
int_layer_norm = layer_norm_exact


def lif_spec_for(lif: LIF, n: int, frac: int) -> LIFSpec:
    """The integer LIF of a float ``LIF`` whose inputs carry ``frac`` fraction bits."""
    beta = float(lif.beta.detach())
    return LIFSpec(n_neurons=n, lanes=1, membrane_width=32, input_width=32,
                   threshold=max(1, int(round(lif.threshold * (1 << frac)))), leak_mode="multiply",
                   leak_beta=int(round(beta * (1 << LEAK_FRAC))), leak_frac_bits=LEAK_FRAC,
                   reset_mode=lif.reset_mode)


def run_lif(spec: LIFSpec, currents: torch.Tensor) -> torch.Tensor:
    """Saturate currents to the LIF input width, run it over time (dim 0); return spikes."""
    return lif_run_time_first(spec, fixed.saturate(currents, spec.input_width, True)).spikes


# ---------------------------------------------------------------------------
# Float modules


class MultiDilatedConv(nn.Module):
    """Depthwise kernel-3 convolutions at several dilations, averaged (zero padding)."""

    def __init__(self, dim: int, dilations: tuple[int, ...]):
        super().__init__()
        self.dilations = tuple(dilations)
        self.weight = nn.Parameter(torch.randn(len(self.dilations), dim, 3, 3) * (1.0 / 3))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, s: torch.Tensor, height: int, width: int) -> torch.Tensor:
        t, b, n, d = s.shape
        grid = s.reshape(t * b, height, width, d).permute(0, 3, 1, 2)
        out = sum(F.conv2d(grid, self.weight[i].unsqueeze(1), dilation=dil, padding=dil, groups=d)
                  for i, dil in enumerate(self.dilations)) / len(self.dilations)
        out = out + self.bias[None, :, None, None]
        return out.permute(0, 2, 3, 1).reshape(t, b, n, d)


class LDWA(nn.Module):
    """Local dilated window attention (see the module docstring)."""

    def __init__(self, dim: int, heads: int, head_dilations: tuple[int, ...], conv_dilations: tuple[int, ...],
                 attn_radius: int, attn_shift: int, beta: float, height: int = GRID, width: int = GRID):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed_dim = {dim} must be a multiple of heads = {heads}")
        if len(head_dilations) != heads:
            raise ValueError(f"head_dilations has {len(head_dilations)} entries; one per head ({heads}) is needed")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.height, self.width = height, width
        self.head_dilations, self.conv_dilations = tuple(head_dilations), tuple(conv_dilations)
        self.attn_radius, self.attn_shift = attn_radius, attn_shift
        # every window the hardware would buffer must fit the map (WindowSpec says why not)
        WindowSpec(height=height, width=width, radius=1, dilations=tuple(sorted(set(self.conv_dilations))))
        self.global_heads = [is_global_window(height, width, attn_radius, d) for d in self.head_dilations]
        for d, is_global in zip(self.head_dilations, self.global_heads):
            if not is_global:
                self.head_spec(d)  # raises SpecError for a window larger than the map
        self.conv = MultiDilatedConv(dim, self.conv_dilations)
        self.conv_lif = LIF(beta=beta, step_mode="m")
        self.q = SpikingLinear(dim, dim, beta=beta)
        self.k = SpikingLinear(dim, dim, beta=beta)
        self.v = SpikingLinear(dim, dim, beta=beta)
        self.attn_lif = LIF(beta=beta, step_mode="m")
        self.proj = nn.Linear(dim, dim)
        masks = torch.stack([window_mask(height, width, attn_radius, d) for d in self.head_dilations])
        self.register_buffer("masks", masks.float(), persistent=False)

    def head_spec(self, dilation: int) -> WindowSpec:
        """The window buffer that feeds one head: K and V spikes (2 D/heads channels)."""
        return WindowSpec(height=self.height, width=self.width, radius=self.attn_radius, dilations=(dilation,),
                          channels=2 * self.head_dim, element_width=1)

    def attention_counts(self, q, k, v):
        t, b, n, _ = q.shape
        split = lambda x: x.reshape(t, b, n, self.heads, self.head_dim).transpose(2, 3)  # (T, B, h, N, Dh)
        scores = split(q) @ split(k).transpose(-1, -2) * self.masks                    # AND-popcount in window
        return (scores @ split(v)).transpose(2, 3).reshape(t, b, n, self.dim)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        sc = self.conv_lif(self.conv(s, self.height, self.width))
        counts = self.attention_counts(self.q(sc), self.k(sc), self.v(sc))
        return self.proj(self.attn_lif(counts * 2.0 ** -self.attn_shift))


class SpikingMLPBlock(nn.Module):
    def __init__(self, dim: int, hidden: int, beta: float):
        super().__init__()
        self.fc1 = SpikingLinear(dim, hidden, beta=beta)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, s):
        return self.fc2(self.fc1(s))


class SpikingResponsePooling(nn.Module):
    """SRP: k x k region spike counts, leakily accumulated (tau) and thresholded (see module docstring)."""

    def __init__(self, kernel: int = 2, tau: float = 10.0, threshold: float = 2.0):
        super().__init__()
        self.kernel = kernel
        self.lif = LIF(beta=srp_beta(tau), threshold=threshold, step_mode="m")

    def region_counts(self, s: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(T, B, H W, C) -> (T, B, (H/k)(W/k), C) counts; exact for integer tensors too."""
        t, b, _, c = s.shape
        k = self.kernel
        if height % k or width % k:
            raise ValueError(f"SRP regions of {k} x {k} must tile the {height} x {width} map")
        g = s.reshape(t, b, height // k, k, width // k, k, c)
        return g.sum(dim=(3, 5)).reshape(t, b, (height // k) * (width // k), c)

    def forward(self, s, height: int, width: int):
        return self.lif(self.region_counts(s, height, width))


class LSFormerBlock(nn.Module):
    def __init__(self, dim, heads, head_dilations, conv_dilations, attn_radius, attn_shift, mlp_ratio, beta):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.lif1 = LIF(beta=beta, step_mode="m")
        self.attn = LDWA(dim, heads, head_dilations, conv_dilations, attn_radius, attn_shift, beta)
        self.norm2 = nn.LayerNorm(dim)
        self.lif2 = LIF(beta=beta, step_mode="m")
        self.mlp = SpikingMLPBlock(dim, mlp_ratio * dim, beta)

    def forward(self, u):
        u = u + self.attn(self.lif1(self.norm1(u)))
        return u + self.mlp(self.lif2(self.norm2(u)))


def _tuple(value, name):
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of integers, got {value!r}") from None
    return out


class LSFormer(nn.Module):
    """A small LSFormer digit classifier: stem, ``depth`` blocks, LN-LIF, SRP, linear readout."""

    def __init__(self, embed_dim: int = 24, depth: int = 1, heads: int = 3, head_dilations=(1, 2, 3),
                 conv_dilations=(1, 2, 3), attn_radius: int = 1, attn_shift: int = 3, time_steps: int = 4,
                 mlp_ratio: int = 2, beta: float = 0.875, srp_kernel: int = 2, srp_tau: float = 10.0,
                 srp_threshold: float = 2.0):
        super().__init__()
        for name, value, lo in (("embed_dim", embed_dim, 1), ("depth", depth, 1), ("heads", heads, 1),
                                ("time_steps", time_steps, 1), ("mlp_ratio", mlp_ratio, 1),
                                ("attn_radius", attn_radius, 1), ("attn_shift", attn_shift, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise ValueError(f"LSFormer {name} must be an integer >= {lo}, got {value!r}")
        head_dilations = _tuple(head_dilations, "head_dilations")
        conv_dilations = _tuple(conv_dilations, "conv_dilations")
        self.config = dict(embed_dim=embed_dim, depth=depth, heads=heads, head_dilations=head_dilations,
                           conv_dilations=conv_dilations, attn_radius=attn_radius, attn_shift=attn_shift,
                           time_steps=time_steps, mlp_ratio=mlp_ratio, beta=beta, srp_kernel=srp_kernel,
                           srp_tau=srp_tau, srp_threshold=srp_threshold)
        self.time_steps, self.dim = time_steps, embed_dim
        self.stem = nn.Conv2d(1, embed_dim, 3, padding=1)
        self.blocks = nn.ModuleList(LSFormerBlock(embed_dim, heads, head_dilations, conv_dilations, attn_radius,
                                                  attn_shift, mlp_ratio, beta) for _ in range(depth))
        self.head_norm = nn.LayerNorm(embed_dim)
        self.head_lif = LIF(beta=beta, step_mode="m")
        self.srp = SpikingResponsePooling(srp_kernel, srp_tau, srp_threshold)
        pooled = (GRID // srp_kernel) ** 2
        self.readout = nn.Linear(pooled * embed_dim, 10)

    @property
    def is_global(self) -> bool:
        return all(all(blk.attn.global_heads) for blk in self.blocks)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, GRID, GRID):
            raise ValueError(f"LSFormer takes images (B, 1, {GRID}, {GRID}); got {tuple(x.shape)}")
        u0 = self.stem(x).flatten(2).transpose(1, 2)             # (B, N, D)
        return u0.unsqueeze(0).expand(self.time_steps, *u0.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.embed(x)
        for blk in self.blocks:
            u = blk(u)
        s = self.head_lif(self.head_norm(u))
        p = self.srp(s, GRID, GRID)
        return self.readout(p.flatten(2)).mean(dim=0)

    def to_integer(self, weight_bits: int = 8) -> "IntLSFormer":
        return IntLSFormer.from_float(self, weight_bits)


# ---------------------------------------------------------------------------
# Integer model


@dataclass
class IntLayerNorm:
    gamma: torch.Tensor
    beta: torch.Tensor
    eps: int

    @classmethod
    def from_float(cls, ln: nn.LayerNorm, f_in: int) -> "IntLayerNorm":
        gamma = torch.round(ln.weight.detach().double() * (1 << LIF_FRAC)).to(torch.int64)
        beta = torch.round(ln.bias.detach().double() * (1 << LIF_FRAC)).to(torch.int64)
        return cls(gamma, beta, max(1, int(round(ln.eps * 2.0 ** (2 * f_in)))))

    def __call__(self, u):
        return int_layer_norm(u, self.gamma, self.beta, self.eps)


@dataclass
class IntLDWA:
    conv_weight: torch.Tensor      # (n_dil, 9, D) int64, units 2^-conv_frac, the 1/n average folded in
    conv_bias: torch.Tensor        # (D,)
    conv_frac: int
    conv_lif: LIFSpec
    q: QuantSpikingLinear
    k: QuantSpikingLinear
    v: QuantSpikingLinear
    attn_lif: LIFSpec
    proj: QuantLinear
    conv_spec: WindowSpec
    head_specs: list                # WindowSpec per head, or None for a global head
    heads: int
    head_dim: int
    height: int
    width: int

    def attention_counts(self, q, k, v) -> tuple[torch.Tensor, list]:
        """Exact counts A (T, B, N, D); also the K|V maps each windowed head streamed."""
        t, b, n, d = q.shape
        out, kv_maps = [], []
        for h in range(self.heads):
            sl = slice(h * self.head_dim, (h + 1) * self.head_dim)
            qh, kh, vh = q[..., sl], k[..., sl], v[..., sl]
            spec = self.head_specs[h]
            if spec is None:            # global: the window is the whole map
                out.append(torch.matmul(torch.matmul(qh, kh.transpose(-1, -2)), vh))
                kv_maps.append(None)
                continue
            kv = torch.cat([kh, vh], dim=-1).reshape(t * b, self.height, self.width, 2 * self.head_dim)
            win = dilated_windows(spec, kv)[:, :, :, 0]                  # (TB, H, W, K, 2 Dh)
            kw, vw = win[..., :self.head_dim], win[..., self.head_dim:]
            qg = qh.reshape(t * b, self.height, self.width, 1, self.head_dim)
            scores = (qg * kw).sum(-1, keepdim=True)                     # AND-popcount per tap
            out.append((scores * vw).sum(-2).reshape(t, b, n, self.head_dim))
            kv_maps.append(kv)
        return torch.cat(out, dim=-1), kv_maps

    def forward_layers(self, s: torch.Tensor) -> dict:
        t, b, n, d = s.shape
        win = dilated_windows(self.conv_spec, s.reshape(t * b, self.height, self.width, d))  # (TB,H,W,n,9,D)
        conv = (win * self.conv_weight).sum(dim=(3, 4)).reshape(t, b, n, d) + self.conv_bias
        sc = run_lif(self.conv_lif, conv)
        q, k, v = self.q(sc), self.k(sc), self.v(sc)
        counts, kv_maps = self.attention_counts(q, k, v)
        a = run_lif(self.attn_lif, counts << LIF_FRAC)
        return {"conv": conv, "conv_spikes": sc, "q": q, "k": k, "v": v, "counts": counts, "attn_spikes": a,
                "out": self.proj(a), "kv_maps": kv_maps}


@dataclass
class IntLSFormerBlock:
    norm1: IntLayerNorm
    lif1: LIFSpec
    attn: IntLDWA
    norm2: IntLayerNorm
    lif2: LIFSpec
    fc1: QuantSpikingLinear
    fc2: QuantLinear


@dataclass
class IntLSFormer:
    stem_weight: torch.Tensor      # (D, 9) int64, units 2^-f_res (pixel fraction 4 shifted out)
    stem_bias: torch.Tensor
    f_res: int
    blocks: list
    head_norm: IntLayerNorm
    head_lif: LIFSpec
    srp_kernel: int
    srp_lif: LIFSpec
    readout: QuantLinear
    time_steps: int
    config: dict = field(default_factory=dict)

    @classmethod
    def from_float(cls, model: LSFormer, weight_bits: int = 8) -> "IntLSFormer":
        d = model.dim
        writers = [model.stem.weight] + [w for blk in model.blocks for w in (blk.attn.proj.weight, blk.mlp.fc2.weight)]
        f_res = min(weight_frac_for(w, weight_bits) for w in writers)
        scale = float(1 << f_res)
        q = lambda w, f: fixed.saturate(torch.round(w.detach().double() * (1 << f)).to(torch.int64), weight_bits, True)
        stem_w = q(model.stem.weight.reshape(d, 9), f_res)
        stem_b = torch.round(model.stem.bias.detach().double() * scale).to(torch.int64)
        blocks = []
        for blk in model.blocks:
            at = blk.attn
            n_dil = len(at.conv_dilations)
            cw = (at.conv.weight.detach() / n_dil).reshape(n_dil, d, 9).permute(0, 2, 1)   # (n, 9, D)
            f_c = weight_frac_for(cw, weight_bits)
            conv_spec = WindowSpec(height=at.height, width=at.width, radius=1, dilations=at.conv_dilations,
                                   channels=d, element_width=1)
            ldwa = IntLDWA(
                conv_weight=q(cw, f_c), conv_bias=torch.round(at.conv.bias.detach().double() * (1 << f_c)).to(torch.int64),
                conv_frac=f_c, conv_lif=lif_spec_for(at.conv_lif, d, f_c),
                q=quantize_spiking_linear(at.q, weight_bits=weight_bits, membrane_width=32, input_width=32),
                k=quantize_spiking_linear(at.k, weight_bits=weight_bits, membrane_width=32, input_width=32),
                v=quantize_spiking_linear(at.v, weight_bits=weight_bits, membrane_width=32, input_width=32),
                attn_lif=lif_spec_for(at.attn_lif, d, at.attn_shift + LIF_FRAC),
                proj=quantize_linear(at.proj, weight_bits=weight_bits, weight_frac=f_res),
                conv_spec=conv_spec,
                head_specs=[None if g else at.head_spec(dil) for g, dil in zip(at.global_heads, at.head_dilations)],
                heads=at.heads, head_dim=at.head_dim, height=at.height, width=at.width)
            blocks.append(IntLSFormerBlock(
                norm1=IntLayerNorm.from_float(blk.norm1, f_res), lif1=lif_spec_for(blk.lif1, d, LIF_FRAC),
                attn=ldwa,
                norm2=IntLayerNorm.from_float(blk.norm2, f_res), lif2=lif_spec_for(blk.lif2, d, LIF_FRAC),
                fc1=quantize_spiking_linear(blk.mlp.fc1, weight_bits=weight_bits, membrane_width=32, input_width=32),
                fc2=quantize_linear(blk.mlp.fc2, weight_bits=weight_bits, weight_frac=f_res)))
        pooled = (GRID // model.srp.kernel) ** 2
        return cls(stem_weight=stem_w, stem_bias=stem_b, f_res=f_res, blocks=blocks,
                   head_norm=IntLayerNorm.from_float(model.head_norm, f_res),
                   head_lif=lif_spec_for(model.head_lif, d, LIF_FRAC), srp_kernel=model.srp.kernel,
                   srp_lif=lif_spec_for(model.srp.lif, d, LIF_FRAC),
                   readout=quantize_linear(model.readout, weight_bits=weight_bits),
                   time_steps=model.time_steps, config=dict(model.config, weight_bits=weight_bits, pooled=pooled))

    def forward_layers(self, pixels: torch.Tensor) -> dict:
        """pixels: int (B, 1, 8, 8) in 0 .. 16 -> every layer's integer tensors."""
        pixels = torch.as_tensor(pixels)
        if pixels.is_floating_point() or pixels.dim() != 4 or tuple(pixels.shape[1:]) != (1, GRID, GRID):
            raise ValueError(f"IntLSFormer takes integer pixels (B, 1, {GRID}, {GRID}); got {pixels.dtype} "
                             f"{tuple(pixels.shape)}")
        fixed.check_range(pixels, 5, False, "digit pixels")
        b = pixels.shape[0]
        stem_spec = WindowSpec(height=GRID, width=GRID, radius=1, dilations=(1,), channels=1, element_width=5)
        win = dilated_windows(stem_spec, pixels.reshape(b, GRID, GRID, 1).to(torch.int64))[:, :, :, 0, :, 0]
        u0 = fixed.asr(win.reshape(b, GRID * GRID, 9) @ self.stem_weight.t(), PIXEL_FRAC) + self.stem_bias
        u = u0.unsqueeze(0).expand(self.time_steps, *u0.shape)
        out = {"pixels": pixels.to(torch.int64), "u0": u0, "blocks": []}
        for blk in self.blocks:
            s1 = run_lif(blk.lif1, blk.norm1(u))
            ldwa = blk.attn.forward_layers(s1)
            u = u + ldwa["out"]
            s2 = run_lif(blk.lif2, blk.norm2(u))
            u = u + blk.fc2(blk.fc1(s2))
            out["blocks"].append({"s1": s1, "s2": s2, "u": u, **ldwa})
        s = run_lif(self.head_lif, self.head_norm(u))
        t, bb, n, d = s.shape
        k = self.srp_kernel
        counts = s.reshape(t, bb, GRID // k, k, GRID // k, k, d).sum(dim=(3, 5)).reshape(t, bb, -1, d)
        pooled = run_lif(self.srp_lif, counts << LIF_FRAC)
        out.update(head_spikes=s, srp_counts=counts, srp_spikes=pooled,
                   logits=self.readout(pooled.flatten(2)).sum(dim=0))
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(pixels)["logits"]

    __call__ = forward


def pixels_from_float(x: torch.Tensor) -> torch.Tensor:
    """Digits in [0, 1] (exactly k/16) -> integer pixels 0 .. 16."""
    return torch.round(x.double() * (1 << PIXEL_FRAC)).to(torch.int64)


__all__ = ["LSFormer", "IntLSFormer", "LDWA", "SpikingResponsePooling", "MultiDilatedConv", "int_layer_norm",
           "isqrt", "srp_beta", "pixels_from_float", "SpecError"]
