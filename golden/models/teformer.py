"""TEFormer: a spiking transformer with bidirectional temporal fusion, and the temporal alignment loss.

Block (time-first (T, B, N, D), residual sums of spikes as in Spikformer)::

    X' = X + SSA(X)                       Spikformer's spatial spiking self-attention (reused)
    X''= X' + TF(X')                      temporal fusion, below
    Y  = X'' + MLP(X'')                   Spikformer's spiking MLP (reused)

Temporal fusion TF (the seed's bidirectional fusion), per token n, over the T time steps::

    forward  (causal):   Qf, Kf, Vf = SN(BN(X Wf_{q,k,v}))
                         Sf[t] = sum_{t' <= t} (Qf[t] . Kf[t']) Vf[t']       (lower-triangular, no softmax)
                         F     = SN_a(Sf s / tau)                             LIF run in time order
    backward:            the same with its own weights on the time-reversed sequence
                         X~[t] = X[T-1-t];  B = flip_t(SN_a(S~b s / tau))      so B[t] sees only t' >= t
    gate:                G = sigmoid(BN(Linear([F; B])))
    mix:                 M = G * F + (1 - G) * B
    spiking layer norm:  TF(X) = SN(LayerNorm(M))

Options of the published TEFormer:

* ``v_fusion="decay"``: forward temporal fusion of V with a lower-triangular decay kernel and
  a learnable rate lambda = sigmoid(rho): ``V~[t] = sum_{t' <= t} lambda^(t - t') Vf[t']``,
  computed as the recurrence ``V~[t] = lambda V~[t-1] + Vf[t]``; V~ replaces Vf.
* ``backward="gru_mlp"``: the backward branch as a gated recurrent MLP over reversed time,
  ``Z[t] = sigmoid(BN(X~[t] Wz))``, ``C[t] = BN(X~[t] Wc)``, ``H[t] = Z[t] H[t-1] + (1 - Z[t]) C[t]``,
  ``B = flip_t(SN(H))``; ``backward="none"`` drops the backward branch (B = 0, G still gates F),
  which makes the whole model causal in time.

Temporal alignment loss (``temporal_alignment_loss``): the seed's comments say adjacent time
steps should be similar and distant ones different, but its code penalised *low* similarity
of distant pairs -- the opposite. We implement the stated intent::

    L = mean_{t} (1 - cos(h_t, h_{t+1}))  +  mean_{|t - t'| >= gap} relu(cos(h_t, h_t') - margin)

adjacent steps are pulled together; distant steps are pushed apart until their cosine
similarity is at most ``margin`` (no penalty below it). h_t are the token-mean features of
the last block at step t. The model adds ``align_weight * L`` to its training loss
(``aux_loss``).

LIF tau = 2, V_th = 1, attention V_th = 0.5, s = 0.125, T = 4 (the Spikformer family's defaults).

Integer mode (``to_integer``)
-----------------------------
Exact integers throughout: Sf is an integer count (V~ in units 2^-8 with
``V~[t] = ((V~[t-1] lambda_int) >> 8) + (Vf[t] << 8)``, lambda_int = round(lambda 2^8)); the
attention neurons take S with threshold round(V_th tau / s) (times 2^8 with decay); the gate
is a ``QuantLinear`` followed by ``sigmoid_int`` (a 256-entry ROM, see ``common.SIGMOID_LUT``),
G in units 2^-8, ``M = G F + (256 - G) B``; the layer norm is ``common.layer_norm_int``
(integer square root, floor division) whose output y (units 2^-16) feeds a LIF with
threshold round(V_th 2^16); the GRU-MLP runs ``H = (Z H + (256 - Z) C) >> 8`` in C's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .. import energy
from .common import (LN_FRAC, PIXEL_FRAC, SIGMOID_FRAC, IntLinear, IntReadout, IntSpikingLinear, IntStreamLIF,
                     LinearBN, Readout, SpikingLinearBN, StreamLIF, check_int_pixels, check_sizes, heads_merge,
                     heads_split, layer_norm_int, name_layers, sigmoid_int)
from .spikformer import (SpikingMLPBlock, SpikingSelfAttention, add_sps_stem, int_mlp_residual, int_sps_stem,
                         sps_stem)

V_FUSIONS = ("none", "decay")
BACKWARDS = ("attention", "gru_mlp", "none")
DECAY_FRAC = 8


def temporal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, name: str = "",
                       v_is_spikes: bool = True) -> torch.Tensor:
    """Causal spiking attention over time, per token and head: S[t] = sum_{t'<=t} (q_t . k_t') v_t'.

    q, k spikes (T, B, N, D); v spikes or real (T, B, N, D); float or int64 alike -> (T, B, N, D).
    Counts: every coincident pair of q and k spikes with t' <= t is one accumulate; then every
    nonzero score adds the spikes of v_t' (SOPs) or multiplies a real v_t' row (MACs).
    """
    T = q.shape[0]
    qh, kh, vh = (heads_split(a, heads).permute(1, 2, 3, 0, 4) for a in (q, k, v))  # (B, H, N, T, dh)
    scores = torch.matmul(qh, kh.transpose(-1, -2))                                  # (B, H, N, T, T)
    causal = torch.tril(torch.ones(T, T, dtype=torch.int64))
    scores = scores * causal.to(scores.dtype)
    energy.count_sops(name, int(scores.sum()))
    if v_is_spikes:
        energy.count_matmul_right_spikes(name, scores, vh)
    else:
        energy.count_macs(name, int(torch.count_nonzero(scores)) * vh.shape[-1])
    s = torch.matmul(scores, vh)                                                     # (B, H, N, T, dh)
    return heads_merge(s.permute(3, 0, 1, 2, 4))


def temporal_alignment_loss(features: torch.Tensor, margin: float = 0.5, gap: int = 2) -> torch.Tensor:
    """Adjacent steps together, distant steps apart (see the module docstring).

    features: (T, B, D) (or (T, D)); returns a scalar. With T < gap + 1 there are no distant
    pairs and only the adjacent term remains; with T = 1 the loss is 0.
    """
    if features.dim() == 2:
        features = features.unsqueeze(1)
    T = features.shape[0]
    if gap < 2:
        raise ValueError(f"temporal_alignment_loss: gap must be >= 2 (1 is adjacent), got {gap}")
    if T < 2:
        return features.sum() * 0.0
    h = F.normalize(features, dim=-1, eps=1e-6)
    sim = torch.einsum("tbd,sbd->bts", h, h)                                         # (B, T, T) cosines
    idx = torch.arange(T)
    adjacent = sim[:, idx[:-1], idx[1:]]
    loss = (1.0 - adjacent).mean()
    far_t, far_s = torch.nonzero((idx[None, :] - idx[:, None]) >= gap, as_tuple=True)
    if len(far_t):
        loss = loss + torch.relu(sim[:, far_t, far_s] - margin).mean()
    return loss


class TemporalFusion(nn.Module):
    def __init__(self, dim: int, heads: int, *, tau: float, threshold: float, attn_threshold: float, scale: float,
                 v_fusion: str = "none", backward: str = "attention", decay_init: float = 0.5):
        super().__init__()
        if v_fusion not in V_FUSIONS:
            raise ValueError(f"TEFormer: v_fusion = {v_fusion!r} is not allowed; choose one of {', '.join(V_FUSIONS)}")
        if backward not in BACKWARDS:
            raise ValueError(f"TEFormer: backward = {backward!r} is not allowed; choose one of {', '.join(BACKWARDS)}")
        if not 0.0 < decay_init < 1.0:
            raise ValueError(f"TEFormer: decay_init must be in (0, 1), got {decay_init}")
        self.dim, self.heads, self.tau, self.scale = dim, heads, tau, scale
        self.threshold, self.attn_threshold = threshold, attn_threshold
        self.v_fusion, self.backward = v_fusion, backward
        lif = dict(tau=tau, threshold=threshold)
        self.fq, self.fk, self.fv = (SpikingLinearBN(dim, dim, **lif) for _ in range(3))
        self.f_lif = StreamLIF(tau, attn_threshold)
        if v_fusion == "decay":
            self.decay_rho = nn.Parameter(torch.tensor(math.log(decay_init / (1 - decay_init))))
        if backward == "attention":
            self.bq, self.bk, self.bv = (SpikingLinearBN(dim, dim, **lif) for _ in range(3))
            self.b_lif = StreamLIF(tau, attn_threshold)
        elif backward == "gru_mlp":
            self.bz = LinearBN(dim, dim)
            self.bc = LinearBN(dim, dim)
            self.b_lif = StreamLIF(tau, threshold)
        self.gate = LinearBN(2 * dim, dim)
        self.ln = nn.LayerNorm(dim)
        self.ln_lif = StreamLIF(tau, threshold)
        self.meter_name = ""

    @property
    def decay(self) -> torch.Tensor:
        return torch.sigmoid(self.decay_rho)

    def forward_branch(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.fq(x), self.fk(x), self.fv(x)
        if self.v_fusion == "decay":
            energy.count_macs(self.meter_name + ".decay", v.numel())
            lam, acc, fused = self.decay, torch.zeros_like(v[0]), []
            for t in range(v.shape[0]):
                acc = lam * acc + v[t]
                fused.append(acc)
            v = torch.stack(fused)
        s = temporal_attention(q, k, v, self.heads, self.meter_name + ".forward", v_is_spikes=self.v_fusion == "none")
        return self.f_lif(s * (self.scale / self.tau))

    def backward_branch(self, x: torch.Tensor) -> torch.Tensor:
        xr = x.flip(0)
        if self.backward == "attention":
            s = temporal_attention(self.bq(xr), self.bk(xr), self.bv(xr), self.heads, self.meter_name + ".backward")
            return self.b_lif(s * (self.scale / self.tau)).flip(0)
        if self.backward == "gru_mlp":
            z, c = torch.sigmoid(self.bz(xr)), self.bc(xr)
            energy.count_macs(self.meter_name + ".gru", 2 * c.numel())
            h, hs = torch.zeros_like(c[0]), []
            for t in range(c.shape[0]):
                h = z[t] * h + (1 - z[t]) * c[t]
                hs.append(h)
            return self.b_lif(torch.stack(hs)).flip(0)
        return torch.zeros_like(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, b = self.forward_branch(x), self.backward_branch(x)
        g = torch.sigmoid(self.gate(torch.cat([f, b], dim=-1)))
        energy.count_sops(self.meter_name + ".mix", int(torch.count_nonzero(f)) + int(torch.count_nonzero(b)))
        m = g * f + (1 - g) * b
        energy.count_macs(self.meter_name + ".ln", 3 * m.numel())
        return self.ln_lif(self.ln(m))

    def to_integer(self, weight_bits: int = 8) -> "IntTemporalFusion":
        wb, d = weight_bits, self.dim
        attn_thr = self.attn_threshold * self.tau / self.scale
        lam_int = None
        if self.v_fusion == "decay":
            lam_int = int(round(float(self.decay.detach()) * (1 << DECAY_FRAC)))
            attn_thr *= 1 << DECAY_FRAC
        back = {}
        if self.backward == "attention":
            back = dict(bq=self.bq.to_integer(weight_bits=wb), bk=self.bk.to_integer(weight_bits=wb),
                        bv=self.bv.to_integer(weight_bits=wb),
                        b_lif=self.b_lif.to_integer(d, round(self.attn_threshold * self.tau / self.scale)))
        elif self.backward == "gru_mlp":
            fc = self.bc.natural_frac(wb)
            back = dict(bz=self.bz.to_integer(self.bz.natural_frac(wb), weight_bits=wb),
                        bc=self.bc.to_integer(fc, weight_bits=wb),
                        b_lif=self.b_lif.to_integer(d, round(self.threshold * (1 << fc))))
        ln_frac = SIGMOID_FRAC + LN_FRAC   # y = gamma n + beta in units 2^-16
        return IntTemporalFusion(
            fq=self.fq.to_integer(weight_bits=wb), fk=self.fk.to_integer(weight_bits=wb),
            fv=self.fv.to_integer(weight_bits=wb), f_lif=self.f_lif.to_integer(d, round(attn_thr)),
            decay_int=lam_int, gate=self.gate.to_integer(self.gate.natural_frac(wb), weight_bits=wb),
            ln_gamma=torch.round(self.ln.weight.detach().double() * (1 << LN_FRAC)).to(torch.int64),
            ln_beta=torch.round(self.ln.bias.detach().double() * (1 << ln_frac)).to(torch.int64),
            ln_eps=int(round(self.ln.eps * d * d * (1 << 2 * SIGMOID_FRAC))),
            ln_lif=self.ln_lif.to_integer(d, round(self.threshold * (1 << ln_frac))),
            heads=self.heads, backward=self.backward, meter_name=self.meter_name, **back)


@dataclass
class IntTemporalFusion:
    fq: IntSpikingLinear
    fk: IntSpikingLinear
    fv: IntSpikingLinear
    f_lif: IntStreamLIF
    decay_int: int | None
    gate: IntLinear
    ln_gamma: torch.Tensor
    ln_beta: torch.Tensor
    ln_eps: int
    ln_lif: IntStreamLIF
    heads: int
    backward: str
    meter_name: str
    bq: IntSpikingLinear | None = None
    bk: IntSpikingLinear | None = None
    bv: IntSpikingLinear | None = None
    bz: IntLinear | None = None
    bc: IntLinear | None = None
    b_lif: IntStreamLIF | None = None

    def forward_branch(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.fq(x), self.fk(x), self.fv(x)
        if self.decay_int is not None:
            energy.count_macs(self.meter_name + ".decay", v.numel())
            acc, fused = torch.zeros_like(v[0]), []
            for t in range(v.shape[0]):
                acc = ((acc * self.decay_int) >> DECAY_FRAC) + (v[t] << DECAY_FRAC)
                fused.append(acc)
            v = torch.stack(fused)
        s = temporal_attention(q, k, v, self.heads, self.meter_name + ".forward", v_is_spikes=self.decay_int is None)
        return self.f_lif(s)

    def backward_branch(self, x: torch.Tensor) -> torch.Tensor:
        xr = x.flip(0)
        if self.backward == "attention":
            s = temporal_attention(self.bq(xr), self.bk(xr), self.bv(xr), self.heads, self.meter_name + ".backward")
            return self.b_lif(s).flip(0)
        if self.backward == "gru_mlp":
            z = sigmoid_int(self.bz(xr), self.bz.q.weight_frac)
            c = self.bc(xr)
            energy.count_macs(self.meter_name + ".gru", 2 * c.numel())
            h, hs = torch.zeros_like(c[0]), []
            one = 1 << SIGMOID_FRAC
            for t in range(c.shape[0]):
                h = (z[t] * h + (one - z[t]) * c[t]) >> SIGMOID_FRAC
                hs.append(h)
            return self.b_lif(torch.stack(hs)).flip(0)
        return torch.zeros_like(x)

    def layers(self, x: torch.Tensor, prefix: str, out: dict) -> torch.Tensor:
        f, b = self.forward_branch(x), self.backward_branch(x)
        g = sigmoid_int(self.gate(torch.cat([f, b], dim=-1)), self.gate.q.weight_frac)
        energy.count_sops(self.meter_name + ".mix", int(torch.count_nonzero(f)) + int(torch.count_nonzero(b)))
        m = g * f + ((1 << SIGMOID_FRAC) - g) * b                                   # units 2^-8
        energy.count_macs(self.meter_name + ".ln", 3 * m.numel())
        y = layer_norm_int(m, self.ln_gamma, self.ln_beta, self.ln_eps)            # units 2^-16
        s = self.ln_lif(y)
        out.update({f"{prefix}.forward": f, f"{prefix}.backward": b, f"{prefix}.gate": g, f"{prefix}.mix": m,
                    f"{prefix}.ln": y, f"{prefix}.out": s})
        return s


class TEFormerBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, *, tau, threshold, attn_threshold, scale, v_fusion, backward):
        super().__init__()
        self.attn = SpikingSelfAttention(dim, heads, tau=tau, threshold=threshold, attn_threshold=attn_threshold,
                                         scale=scale)
        self.temporal = TemporalFusion(dim, heads, tau=tau, threshold=threshold, attn_threshold=attn_threshold,
                                       scale=scale, v_fusion=v_fusion, backward=backward)
        self.mlp = SpikingMLPBlock(dim, mlp_ratio * dim, tau=tau, threshold=threshold)

    def forward(self, x):
        x = x + self.attn(x)
        x = x + self.temporal(x)
        return x + self.mlp(x)


class TEFormer(nn.Module):
    """TEFormer digit classifier; ``forward(x float (B, 1, 8, 8) or (T, B, 1, 8, 8)) -> logits (B, 10)``."""

    def __init__(self, embed_dim: int = 32, depth: int = 1, heads: int = 2, time_steps: int = 4,
                 mlp_ratio: int = 4, tau: float = 2.0, threshold: float = 1.0, attn_threshold: float = 0.5,
                 scale: float = 0.125, v_fusion: str = "none", backward: str = "attention",
                 align_weight: float = 0.1, align_margin: float = 0.5, align_gap: int = 2):
        super().__init__()
        check_sizes("TEFormer", embed_dim, depth, heads, time_steps)
        if align_weight < 0:
            raise ValueError(f"TEFormer: align_weight must be >= 0, got {align_weight}")
        self.time_steps, self.embed_dim = time_steps, embed_dim
        self.align_weight, self.align_margin, self.align_gap = align_weight, align_margin, align_gap
        lif = dict(tau=tau, threshold=threshold)
        add_sps_stem(self, embed_dim, lif)
        self.blocks = nn.ModuleList(
            TEFormerBlock(embed_dim, heads, mlp_ratio, attn_threshold=attn_threshold, scale=scale,
                          v_fusion=v_fusion, backward=backward, **lif) for _ in range(depth))
        self.head = Readout(embed_dim)
        self.aux_loss = None
        name_layers(self)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        x = sps_stem(self, x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens(x)
        # the training loop adds ``aux_loss`` to the task loss (see spikeforge.training)
        self.aux_loss = None
        if self.training and self.align_weight > 0:
            self.aux_loss = self.align_weight * temporal_alignment_loss(
                tokens.mean(dim=2), self.align_margin, self.align_gap)
        return self.head.forward_steps(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_steps(x).mean(dim=0)

    def to_integer(self, weight_bits: int = 8) -> "IntTEFormer":
        self.eval()
        wb = weight_bits
        return IntTEFormer(
            conv1=self.conv1.to_integer(input_frac=PIXEL_FRAC, weight_bits=wb),
            conv2=self.conv2.to_integer(weight_bits=wb), rpe=self.rpe.to_integer(weight_bits=wb),
            blocks=[(b.attn.to_integer(wb), b.temporal.to_integer(wb), b.mlp.fc1.to_integer(weight_bits=wb),
                     b.mlp.fc2.to_integer(weight_bits=wb)) for b in self.blocks],
            head=self.head.to_integer(wb), time_steps=self.time_steps)


@dataclass
class IntTEFormer:
    conv1: IntSpikingLinear
    conv2: IntSpikingLinear
    rpe: IntSpikingLinear
    blocks: list
    head: IntReadout
    time_steps: int

    def forward_layers(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = check_int_pixels(pixels, "IntTEFormer")
        out: dict[str, torch.Tensor] = {"pixels": pixels}
        x = int_sps_stem(self, pixels, out)
        for i, (attn, temporal, fc1, fc2) in enumerate(self.blocks):
            x = x + attn.layers(x, f"block{i}.attn", out)
            x = x + temporal.layers(x, f"block{i}.temporal", out)
            x = int_mlp_residual(x, fc1, fc2, f"block{i}", out)
        self.head.record(x, out)
        return out

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(pixels)["logits"]

    __call__ = forward
