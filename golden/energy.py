"""Energy accounting: synaptic operations, multiply-accumulates, spikes and firing rates.

Models report their work to a ``Meter`` while they run (float or integer mode, the counts
are the same for the same spikes). A model's forward calls the ``count_*`` helpers below;
they do nothing unless a meter is active (``with Meter() as m: model(x)``), so counting
costs nothing in training.

Counting rules (the convention of the spiking-transformer papers: Spikformer, Zhou et al.
ICLR 2023, Sec. 4 / App.; Spike-driven Transformer, Yao et al. NeurIPS 2023, App.;
SpikingResformer, Shi et al. CVPR 2024, Sec. 5.4)
------------------------------------------------------------------------------------------
* A weight layer fed by spikes (any 0/1 or small non-negative integer tensor produced by
  spiking neurons or sums of them) costs accumulates only::

      SOPs = sum over input elements x != 0 of fan_out           (fan_out = out_features)

  i.e. ``count_nonzero(x) * out_features``. A residual sum of spikes (values 0, 1, 2)
  is still an accumulate per nonzero input, added once.
* A weight layer fed by real values (the first encoding layer on pixels, any
  non-spiking network) costs ``MACs = rows * in_features * out_features``.
* Spike-matrix products in attention are counted per their equations, in the order the
  equation evaluates them: for ``A @ B`` with ``A`` spikes (n x d) and ``B`` (d x m) of any
  values, every nonzero a_ij adds one row of B: ``SOPs = nnz(A) * m``; if both are
  spikes only pairs of nonzeros add: ``SOPs = sum_j nnz(A[:, j]) * nnz(B[j, :])``.
  Products of two real matrices are MACs ``n * d * m``.
* Scaling constants (attention scale, 1/tau, folded batch norm) are folded into weights
  or thresholds and cost nothing; neuron updates (leak, compare) are counted separately
  (``neuron_updates``) and, as in the papers, are not part of the energy estimate.

Energy::

    E = SOPs * E_AC + MACs * E_MAC

Defaults: E_AC = 0.9 pJ (32-bit floating-point add) and E_MAC = 4.6 pJ (32-bit
floating-point multiply 3.7 pJ + add 0.9 pJ) in 45 nm CMOS, from M. Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014, Fig. 1.1.9 -- the figures every
paper above uses. Both are arguments of ``estimate_energy`` and ``Meter.report``.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

import torch

#: pJ per accumulate (32-bit float add, 45 nm; Horowitz, ISSCC 2014)
E_AC_PJ = 0.9
#: pJ per multiply-accumulate (32-bit float mult 3.7 pJ + add 0.9 pJ, 45 nm; Horowitz, ISSCC 2014)
E_MAC_PJ = 4.6

_ACTIVE: contextvars.ContextVar["Meter | None"] = contextvars.ContextVar("spikeforge_meter", default=None)


def estimate_energy(sops: float, macs: float, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ) -> float:
    """E = SOPs * E_AC + MACs * E_MAC, in pJ (see the module docstring for the constants)."""
    if e_ac_pj < 0 or e_mac_pj < 0:
        raise ValueError(f"energies per operation must be >= 0, got E_AC = {e_ac_pj}, E_MAC = {e_mac_pj}")
    return float(sops) * e_ac_pj + float(macs) * e_mac_pj


@dataclass
class LayerCount:
    sops: int = 0
    macs: int = 0
    spikes: int = 0
    neurons: int = 0   # neuron-steps: spiking neurons times time steps times samples

    @property
    def firing_rate(self) -> float:
        return self.spikes / self.neurons if self.neurons else 0.0


@dataclass
class Meter:
    """Collects per-layer counts while active (a context manager); ``samples`` divides per-sample figures."""

    layers: dict[str, LayerCount] = field(default_factory=dict)
    samples: int = 0

    def __enter__(self) -> "Meter":
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc) -> None:
        _ACTIVE.reset(self._token)

    def layer(self, name: str) -> LayerCount:
        return self.layers.setdefault(name, LayerCount())

    @property
    def sops(self) -> int:
        return sum(c.sops for c in self.layers.values())

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.layers.values())

    @property
    def spikes(self) -> int:
        return sum(c.spikes for c in self.layers.values())

    @property
    def neurons(self) -> int:
        return sum(c.neurons for c in self.layers.values())

    @property
    def firing_rate(self) -> float:
        """Spikes over neuron-steps, over every spiking layer."""
        return self.spikes / self.neurons if self.neurons else 0.0

    def report(self, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ) -> dict[str, float]:
        """Per-sample totals: SOPs, MACs, spikes, firing rate and energy (pJ)."""
        n = max(1, self.samples)
        return {"sops": self.sops / n, "macs": self.macs / n, "spikes": self.spikes / n,
                "firing_rate": self.firing_rate,
                "energy_pj": estimate_energy(self.sops / n, self.macs / n, e_ac_pj, e_mac_pj)}

    def table(self) -> str:
        rows = [f"{'layer':28s} {'SOPs':>12s} {'MACs':>12s} {'spikes':>10s} {'rate':>6s}"]
        for name, c in self.layers.items():
            rows.append(f"{name:28s} {c.sops:12d} {c.macs:12d} {c.spikes:10d} {c.firing_rate:6.3f}")
        return "\n".join(rows)


def active() -> Meter | None:
    return _ACTIVE.get()


def count_samples(n: int) -> None:
    m = _ACTIVE.get()
    if m is not None:
        m.samples += int(n)


def count_linear(name: str, x: torch.Tensor, out_features: int, *, spiking_input: bool) -> None:
    """A weight layer applied to ``x`` (..., in_features): SOPs if fed by spikes, MACs otherwise."""
    m = _ACTIVE.get()
    if m is None:
        return
    c = m.layer(name)
    if spiking_input:
        c.sops += int(torch.count_nonzero(x)) * int(out_features)
    else:
        rows = x.numel() // x.shape[-1]
        c.macs += rows * int(x.shape[-1]) * int(out_features)


def count_spikes(name: str, spikes: torch.Tensor) -> None:
    """Spiking neurons of layer ``name`` produced ``spikes`` (every element one neuron-step)."""
    m = _ACTIVE.get()
    if m is None:
        return
    c = m.layer(name)
    c.spikes += int(torch.count_nonzero(spikes))
    c.neurons += spikes.numel()


def count_spike_matmul(name: str, a: torch.Tensor, b: torch.Tensor, *, b_is_spikes: bool) -> None:
    """``a @ b`` with ``a`` spikes (..., n, d): nnz(a) * m, or only nonzero pairs if ``b`` is spikes too."""
    m = _ACTIVE.get()
    if m is None:
        return
    c = m.layer(name)
    if b_is_spikes:
        nnz_a = (a != 0).sum(dim=-2)                  # (..., d): nonzeros of column j of a
        nnz_b = (b != 0).sum(dim=-1)                  # (..., d): nonzeros of row j of b
        c.sops += int((nnz_a.to(torch.int64) * nnz_b.to(torch.int64)).sum())
    else:
        c.sops += int(torch.count_nonzero(a)) * int(b.shape[-1])


def count_macs(name: str, macs: int) -> None:
    m = _ACTIVE.get()
    if m is not None:
        m.layer(name).macs += int(macs)


def count_sops(name: str, sops: int) -> None:
    m = _ACTIVE.get()
    if m is not None:
        m.layer(name).sops += int(sops)
