"""Energy accounting: counts equal hand counts on tiny networks, and the energy formula."""

import pytest
import torch

from golden import energy
from golden.energy import Meter, estimate_energy
from golden.models.common import LinearBN, SpikingLinearBN
from golden.models.spikformer import spike_qktv
from golden.models.teformer import temporal_attention


def test_linear_layers_count_sops_for_spikes_and_macs_for_reals():
    torch.manual_seed(0)
    spiking = SpikingLinearBN(3, 2)
    spiking.meter_name = "s"
    real = LinearBN(3, 2, spiking_input=False)
    real.meter_name = "r"
    x = torch.tensor([[[1.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])     # (T=2, B=1, 3): 3 input spikes
    with Meter() as m:
        out = spiking(x)
        real(x)
    assert m.layers["s"].sops == 3 * 2          # 3 spikes x fan-out 2
    assert m.layers["s"].macs == 0
    assert m.layers["r"].macs == 2 * 3 * 2      # 2 rows x 3 inputs x 2 outputs
    assert m.layers["s"].neurons == 4 and m.layers["s"].spikes == int(out.sum())
    # outside a meter nothing is counted and nothing fails
    spiking(x)


def test_attention_products_count_per_their_equations():
    # one head, N = 3 tokens, d = 2
    q = torch.tensor([[[[1, 0], [1, 1], [0, 0]]]])          # (T=1, B=1, N=3, d=2): 3 spikes
    k = torch.tensor([[[[1, 1], [0, 1], [1, 0]]]])
    v = torch.tensor([[[[0, 1], [1, 1], [1, 0]]]])
    with Meter() as m:
        spike_qktv(q, k, v, heads=1, name="a")
    # K^T V: per token n, nnz(k_n) * nnz(v_n) = 2*1 + 1*2 + 1*1 = 5
    # Q (K^T V): nnz(Q) * d = 3 * 2 = 6
    assert m.layers["a"].sops == 5 + 6


def test_temporal_attention_counts():
    # T = 3, one token, one head of d = 1: q = k = [1, 1, 0], v = [1, 0, 1]
    q = torch.tensor([1, 1, 0]).view(3, 1, 1, 1)
    v = torch.tensor([1, 0, 1]).view(3, 1, 1, 1)
    with Meter() as m:
        s = temporal_attention(q, q, v, heads=1, name="t")
    # scores (t' <= t): t=0: q0k0 = 1; t=1: q1k0 = 1, q1k1 = 1; t=2: 0 -> 3 coincidences (3 SOPs);
    # then every nonzero score adds v_t' if it spiked: (0,0) v0 = 1, (1,0) v0 = 1, (1,1) v1 = 0 -> 2 SOPs
    assert m.layers["t"].sops == 3 + 2
    assert s.flatten().tolist() == [1, 1, 0]


def test_energy_formula_and_constants():
    assert energy.E_AC_PJ == 0.9 and energy.E_MAC_PJ == 4.6
    assert estimate_energy(6, 12) == pytest.approx(6 * 0.9 + 12 * 4.6)      # 60.6 pJ
    assert estimate_energy(6, 12, e_ac_pj=0.03, e_mac_pj=0.2) == pytest.approx(0.18 + 2.4)
    with pytest.raises(ValueError, match=">= 0"):
        estimate_energy(1, 1, e_ac_pj=-1)


def test_meter_report_is_per_sample():
    with Meter() as m:
        energy.count_samples(2)
        energy.count_sops("a", 10)
        energy.count_macs("b", 4)
        energy.count_spikes("a", torch.tensor([1, 0, 0, 1]))
    r = m.report()
    assert r["sops"] == 5 and r["macs"] == 2 and r["firing_rate"] == 0.5
    assert r["energy_pj"] == pytest.approx(5 * 0.9 + 2 * 4.6)
