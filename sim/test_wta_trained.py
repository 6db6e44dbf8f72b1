"""The WTA attention unit on a trained WD-Spikingformer's real Q/K/V spikes, under Verilator.

``sim/data/wta_trained`` was written by ``python -m spikeforge.wta_trained CHECKPOINT`` from a
``spikeforge train wta-causal`` checkpoint (its sha256, recipe and held-out metrics are in the
manifest). Loading checks every array's hash; the golden attention recomputed from the spikes
must choose the winners the trained integer model chose, and the RTL must match it bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import torch

from golden.vectors import load_vectors
from rtl.wta_attention import WTAAttention, wta_expected_beats, wta_input_beats, wta_reference
from spikeforge.wta_trained import BLOCK, unpack_trained

DATA = Path(__file__).resolve().parent / "data" / "wta_trained"


def trained_stream(sequences: int | None = None):
    vectors = load_vectors(DATA, block=BLOCK)
    spec, q, k, v = unpack_trained(vectors)
    ref = wta_reference(spec, q, k, v)
    assert torch.equal(ref["index"], torch.from_numpy(vectors["index"]).to(torch.int64))
    assert torch.equal(ref["valid"].sum(-1).to(torch.int64), torch.from_numpy(vectors["n_valid"]).to(torch.int64))
    if sequences is not None:
        q, k, v = q[:sequences], k[:sequences], v[:sequences]
        ref = {n: t[:sequences] for n, t in ref.items()}
    return (spec, vectors.meta, wta_input_beats(spec, q, k, v),
            wta_expected_beats(spec, ref["out"], ref["index"], ref["valid"]))


def test_trained_vectors_are_real_spikes():
    spec, meta, beats, expected = trained_stream()
    assert len(expected) >= 2000
    assert meta["recipe"] == "wta-causal" and spec.causal
    assert meta["metrics"]["val_bits_per_char"] < meta["metrics"]["unigram_bits_per_char"]
    assert 0 < meta["spike_rate"]["q"] < 1 and 0 < meta["spike_rate"]["k"] < 1


def test_trained_vectors_verilator_bit_exact(tmp_path):
    from sim.harness import cosim

    spec, _, beats, expected = trained_stream()
    # a query holds the stream for a query interval: the generic timeout (4 cycles a beat) is too short
    budget = 4 * (len(beats) + len(expected) * WTAAttention.query_interval(spec))
    report = cosim(WTAAttention(spec), "wta_attention", beats, expected, tmp_path, seed=13,
                   valid_prob=0.8, ready_prob=0.7, timeout_cycles=budget)
    assert report.result.beats_checked == len(expected)
    assert report.mismatches == 0, report.explain()
