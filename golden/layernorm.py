"""Integer layer norm: the spec and the exact golden function (LSFormer's and TEFormer's norms).

Over the D channels of one token (``u`` signed Wi-bit, gamma signed Wg-bit, beta signed
Wb-bit, ``eps`` an integer >= 1), integer only, no floats and no folding::

    S1    = sum_i u_i                          mu    = floor(S1 / D)
    dev_i = u_i - mu                           S2    = sum_i dev_i^2
    var   = floor(S2 / D)                      sigma = isqrt(var + eps)   (floor of the square root)
    y_i   = floor(dev_i gamma_i / sigma) + beta_i

``golden.models.lsformer.IntLSFormer`` normalises with exactly this function
(``layer_norm_exact``); the spec adds the widths the hardware holds it in.

Widths (``LayerNormSpec``; every one exact, nothing saturates or wraps)
-----------------------------------------------------------------------
* mu is a mean of Wi-bit values: Wi bits; |dev_i| < 2^Wi: Wi + 1 bits.
* S2 <= D 2^(2 Wi); var <= max dev^2 < 2^(2 Wi); var + eps < 2^(2 Wi + 1) (eps < 2^(2 Wi)),
  so sigma <= 2^(Wi + 1) - 1 and sigma >= 1 (eps >= 1).
* The output bound: dev_i^2 <= S2 < D (var + 1) <= D (var + eps) < D (sigma + 1)^2 <= 4 D sigma^2,
  so |dev_i / sigma| < 2 sqrt(D) and |floor(dev_i gamma_i / sigma)| <= floor(2 sqrt(D) 2^(Wg-1)) + 1
  = ``quotient_bound``; y_i = that + beta_i fits ``output_width`` bits (signed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import fixed
from .spec import SpecBase, SpecError, check_int


@dataclass(frozen=True)
class LayerNormSpec(SpecBase):
    """Parameters of the integer layer norm, shared by the golden function and ``rtl.layernorm.LayerNorm``.

    Attributes
    ----------
    dim : D, channels of a token (2 .. 4096).
    input_width : Wi, bits of each signed input u_i (2 .. 24).
    gamma_width : Wg, bits of each signed gamma_i (2 .. 18).
    beta_width : Wb, bits of each signed beta_i (2 .. 24).
    eps : the integer added to the variance, 1 .. 2^(2 Wi) - 1.
    """

    block = "layernorm"

    dim: int = 24
    input_width: int = 16
    gamma_width: int = 12
    beta_width: int = 12
    eps: int = 1

    def __post_init__(self):
        name = "LayerNormSpec"
        check_int(name, "dim", self.dim, 2, 4096)
        check_int(name, "input_width", self.input_width, 2, 24)
        check_int(name, "gamma_width", self.gamma_width, 2, 18)
        check_int(name, "beta_width", self.beta_width, 2, 24)
        check_int(name, "eps", self.eps, 1, (1 << (2 * self.input_width)) - 1)

    # ---- derived widths (module docstring) ------------------------------------------------------

    @property
    def sum_width(self) -> int:
        """Bits of the mean's numerator: |S1| <= D 2^(Wi-1), plus D - 1 when S1 < 0 (the divider
        floors a negative numerator as -floor((|S1| + D - 1) / D))."""
        return ((self.dim << (self.input_width - 1)) + self.dim - 1).bit_length()

    @property
    def square_sum_width(self) -> int:
        """Bits of S2 < D 2^(2 Wi) (unsigned): the numerator of the variance's division."""
        return (self.dim << (2 * self.input_width)).bit_length()

    @property
    def variance_width(self) -> int:
        """Bits of var + eps < 2^(2 Wi + 1)."""
        return 2 * self.input_width + 1

    @property
    def sigma_width(self) -> int:
        """Bits of sigma <= 2^(Wi + 1) - 1."""
        return self.input_width + 1

    @property
    def product_width(self) -> int:
        """Bits of the channel division's numerator: |dev_i gamma_i| <= (2^Wi - 1) 2^(Wg-1), plus
        sigma - 1 <= 2^(Wi+1) - 2 when negative (as for the mean)."""
        wi, wg = self.input_width, self.gamma_width
        return (((1 << wi) - 1) * (1 << (wg - 1)) + (1 << (wi + 1)) - 2).bit_length()

    @property
    def quotient_bound(self) -> int:
        """|floor(dev_i gamma_i / sigma)| <= floor(2 sqrt(D) 2^(Wg-1)) + 1 (module docstring)."""
        return math.isqrt(self.dim << (2 * self.gamma_width)) + 1

    @property
    def output_width(self) -> int:
        """Bits of y_i (signed): the quotient bound plus the largest |beta_i|."""
        bound = self.quotient_bound + (1 << (self.beta_width - 1))
        return fixed.signed_bits_for(-bound, bound)


def isqrt_exact(v: torch.Tensor) -> torch.Tensor:
    """floor(sqrt(v)) for int64 0 <= v < 2^62, bit by bit (integer only)."""
    v = fixed.check_range(v, 63, True, "isqrt argument")
    if v.numel() and (int(v.min()) < 0 or int(v.max()) >= 1 << 62):
        raise ValueError("isqrt takes 0 <= v < 2^62")
    s = torch.zeros_like(v)
    for b in range(30, -1, -1):
        c = s | (1 << b)
        s = torch.where(c * c <= v, c, s)
    return s


def layer_norm_stats(u: torch.Tensor, eps: int) -> dict[str, torch.Tensor]:
    """mu, dev, var, sigma over the last dim of int64 ``u`` (module docstring), any widths."""
    d = u.shape[-1]
    mu = torch.div(u.sum(-1, keepdim=True), d, rounding_mode="floor")
    dev = u - mu
    var = torch.div((dev * dev).sum(-1, keepdim=True), d, rounding_mode="floor")
    return {"mu": mu, "dev": dev, "var": var, "sigma": isqrt_exact(var + eps)}


def layer_norm_exact(u: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: int) -> torch.Tensor:
    """y = floor((u - mu) gamma / sigma) + beta over the last dim; int64 in and out, no widths."""
    stats = layer_norm_stats(u, eps)
    return torch.div(stats["dev"] * gamma, stats["sigma"], rounding_mode="floor") + beta


def check_params(spec: LayerNormSpec, gamma, beta) -> tuple[torch.Tensor, torch.Tensor]:
    """gamma, beta as int64 (D,) inside their widths, or a SpecError naming what is wrong."""
    out = []
    for name, value, width in (("gamma", gamma, spec.gamma_width), ("beta", beta, spec.beta_width)):
        t = torch.as_tensor(value)
        if t.is_floating_point() or t.dtype == torch.bool:
            raise SpecError(f"layer norm {name} must be integers, got {t.dtype}")
        if tuple(t.shape) != (spec.dim,):
            raise SpecError(f"layer norm {name} has shape {tuple(t.shape)}; expected ({spec.dim},) (one per channel)")
        t = t.to(torch.int64)
        lo, hi = fixed.int_min(width, True), fixed.int_max(width, True)
        if t.numel() and (int(t.min()) < lo or int(t.max()) > hi):
            raise SpecError(f"layer norm {name} outside its {width}-bit signed range {lo} .. {hi}: "
                            f"{int(t.min())} .. {int(t.max())}")
        out.append(t)
    return out[0], out[1]


def check_inputs(spec: LayerNormSpec, u) -> torch.Tensor:
    """u as int64 (tokens, D) inside Wi bits signed, or a SpecError naming what is wrong."""
    t = torch.as_tensor(u)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise SpecError(f"layer norm inputs must be integers, got {t.dtype}")
    if t.dim() != 2 or t.shape[1] != spec.dim:
        raise SpecError(f"layer norm inputs have shape {tuple(t.shape)}; expected (tokens, {spec.dim})")
    t = t.to(torch.int64)
    lo, hi = fixed.int_min(spec.input_width, True), fixed.int_max(spec.input_width, True)
    if t.numel() and (int(t.min()) < lo or int(t.max()) > hi):
        raise SpecError(f"layer norm inputs outside the {spec.input_width}-bit signed range {lo} .. {hi}: "
                        f"{int(t.min())} .. {int(t.max())}")
    return t


def layer_norm(spec: LayerNormSpec, u, gamma, beta) -> torch.Tensor:
    """The hardware's function: ``layer_norm_exact`` on checked inputs; every output inside
    ``output_width`` (the docstring's bound; checked, never saturated)."""
    gamma, beta = check_params(spec, gamma, beta)
    y = layer_norm_exact(check_inputs(spec, u), gamma, beta, spec.eps)
    return fixed.check_range(y, spec.output_width, True, "layer norm output")


def layer_norm_reference(spec: LayerNormSpec, u, gamma, beta) -> dict[str, torch.Tensor]:
    """Vector arrays: inputs, parameters, per-token statistics and outputs."""
    gamma, beta = check_params(spec, gamma, beta)
    u = check_inputs(spec, u)
    stats = layer_norm_stats(u, spec.eps)
    y = layer_norm(spec, u, gamma, beta)
    return {"u": u, "gamma": gamma, "beta": beta, "mu": stats["mu"][:, 0], "var": stats["var"][:, 0],
            "sigma": stats["sigma"][:, 0], "y": y}


def layer_norm_random_inputs(spec: LayerNormSpec, tokens: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded tokens and parameters that reach the corners: full-range tokens, tokens of one
    value (var = 0: sigma = isqrt(eps)), one large channel among small ones (the output bound's
    worst case), narrow-spread tokens, and gamma / beta at their extremes."""
    check_int("layer_norm_random_inputs", "tokens", tokens, 1, None)
    g = torch.Generator().manual_seed(seed)
    wi = spec.input_width
    lo, hi = fixed.int_min(wi, True), fixed.int_max(wi, True)
    u = torch.randint(lo, hi + 1, (tokens, spec.dim), generator=g)
    kind = torch.randint(0, 4, (tokens,), generator=g)
    constant = torch.randint(lo, hi + 1, (tokens, 1), generator=g).expand(tokens, spec.dim)
    spike = torch.full((tokens, spec.dim), 0, dtype=torch.int64)
    spike[:, 0] = torch.where(torch.rand(tokens, generator=g) < 0.5, lo, hi)
    centre = torch.randint(lo // 2, hi // 2 + 1, (tokens, 1), generator=g)
    narrow = (centre + torch.randint(-3, 4, (tokens, spec.dim), generator=g)).clamp(lo, hi)
    u = torch.where((kind == 1)[:, None], constant, u)
    u = torch.where((kind == 2)[:, None], spike, u)
    u = torch.where((kind == 3)[:, None], narrow, u)
    glo, ghi = fixed.int_min(spec.gamma_width, True), fixed.int_max(spec.gamma_width, True)
    gamma = torch.randint(glo, ghi + 1, (spec.dim,), generator=g)
    gamma[0] = glo                                   # the bound's worst case: the spike channel at -2^(Wg-1)
    blo, bhi = fixed.int_min(spec.beta_width, True), fixed.int_max(spec.beta_width, True)
    beta = torch.randint(blo, bhi + 1, (spec.dim,), generator=g)
    beta[0] = blo
    return {"u": u, "gamma": gamma, "beta": beta}


__all__ = ["LayerNormSpec", "isqrt_exact", "layer_norm_stats", "layer_norm_exact", "layer_norm",
           "layer_norm_reference", "layer_norm_random_inputs", "check_params", "check_inputs"]
