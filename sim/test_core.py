"""The neuromorphic core under Verilator: shipped trained models, held-out samples, bit for bit.

For each model: the samples stream in with random valid gaps and the output is taken with
random back-pressure; every tap (every layer's currents, spikes with their residual sums,
the attention outputs with the winners' indices, the logits) must equal the golden integer
model's tensors, the accuracy computed from the logits the core emitted must equal the
integer model's, and the core's cycle counter must equal the formula on every sample. Every
op's activity counters (cycles, MAC events, spikes) are taps too, and the energy computed from
the counters the core reported equals the estimate from the golden run.

CI runs 64 digits through the MLP core, 16 text windows through each WTA core (the WTA
cores take ~120,000 cycles a sample, ~40,000 simulated cycles/s through cocotb) and 16 digits
through the Matterhorn core (~81,000 cycles a sample); ``--long`` runs 64 of each.
"""

from __future__ import annotations

import pytest

from estimate.core import estimate_core
from golden.core import run_program
from spikeforge.core import held_out_samples, load_core_model, run_core

CASES = [
    pytest.param("spiking-mlp", 64, id="spiking-mlp-64"),
    pytest.param("wta-causal", 16, id="wta-causal-16"),
    pytest.param("wta-mlm", 16, id="wta-mlm-16"),
    pytest.param("matterhorn", 16, id="matterhorn-16"),
    pytest.param("matterhorn", 64, id="matterhorn-64", marks=pytest.mark.long),
    pytest.param("wta-causal", 64, id="wta-causal-64", marks=pytest.mark.long),
    pytest.param("wta-mlm", 64, id="wta-mlm-64", marks=pytest.mark.long),
]


@pytest.mark.parametrize("name, samples", CASES)
def test_core_runs_trained_model_bit_exact(name, samples, tmp_path):
    cm = load_core_model(name)
    report = run_core(cm, samples, seed=7, workdir=tmp_path)
    assert report.mismatches == 0, report.first_mismatch
    assert report.cycles == report.predicted, "the cycle formula differs from the core's counter"
    assert len(report.cycles) == samples
    assert report.hardware_accuracy == report.integer_accuracy
    # forward_layers' every tensor was checked (the MLP reports 5, the WTA models 13 besides their
    # inputs; Matterhorn 10 of its 13: its MTTS code and pooled counts stay inside their units)
    want = {"spiking-mlp": 5, "matterhorn": 10}.get(name, 13)
    assert len({c.split("[")[0] for c in report.checked_tensors}) == want
    # the energy from the core's own counters == the estimate from the golden run of the same samples
    x, _, _ = held_out_samples(cm, samples)
    est = estimate_core(cm.program, cm.spec, run_program(cm.program, x, current_width=cm.spec.current_width))
    assert report.energy_nj == {tech: pj / 1000.0 for tech, pj in est.energy_by_tech.items()}
    assert report.energy_nj["45nm"] > 0
