"""WTA attention unit under Verilator, bit for bit against golden vectors.

Configurations cover spike (AND-popcount) and multi-bit (dot product) scores, causal
and not, minimum score on and off, k = 1, k = L, k not a power of two (reciprocal),
fold mode, L not a power of two, P not dividing L; random valid/ready gaps on both
streams; each checks at least 2,000 attention rows (queries). The trained model's
real Q/K/V spikes are checked in ``sim/test_wta_trained.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golden.vectors import load_vectors, save_vectors
from golden.wta import WTASpec
from rtl.wta_attention import WTAAttention, wta_expected_beats, wta_input_beats, wta_random_qkv, wta_reference

# name -> (spec, sequences); attention rows checked = sequences * L >= 2000
def _trained_spec() -> WTASpec:
    """The spec of the trained model's vectors (sim/data/wta_trained): L = 32, head dim 16, k = 4,
    causal, P = 4. Random vectors on the same spec reuse its Verilator build."""
    manifest = json.loads((Path(__file__).resolve().parent / "data" / "wta_trained" / "manifest.json").read_text())
    return WTASpec.from_dict(manifest["spec"])


COSIM_SPECS = {
    # the trained model's attention: spikes, causal, k = 4 (R = 64: a shift), P = 4
    "spike-trained-spec-L32-P4-k4-causal": (_trained_spec(), 63),
    # L not a power of two, k = 3 (reciprocal 85), minimum score on, P = 4
    "spike-L12-P4-k3-min": (WTASpec(length=12, head_dim=6, value_dim=3, score_width=3, k=3, min_score=2,
                                    lanes=4), 167),
    # multi-bit signed Q/K (dot products) and V, k = L, fold mode
    "multibit-L8-P2-kL-fold": (WTASpec(length=8, head_dim=4, value_dim=2, qk_width=3, v_width=4,
                                       score_width=8, k=8, scale_mode="fold", lanes=2), 250),
    # k = 1 from a ratio (floor(16 * 0.05) = 0 -> 1), causal, minimum score on, all keys in one cycle
    "spike-L16-P16-k1-causal-min": (WTASpec(length=16, head_dim=4, value_dim=2, score_width=3, k_ratio=0.05,
                                            causal=True, min_score=1, lanes=16), 125),
}


def write_wta_vectors(directory, spec: WTASpec, sequences: int, seed: int):
    q, k, v = wta_random_qkv(spec, sequences, seed=seed)
    return save_vectors(directory, "wta", spec.to_dict(), seed, wta_reference(spec, q, k, v))


def wta_stream_from_vectors(directory):
    vectors = load_vectors(directory, block="wta")
    spec = WTASpec.from_dict(vectors.spec)
    return (spec, wta_input_beats(spec, vectors["q"], vectors["k"], vectors["v"]),
            wta_expected_beats(spec, vectors["out"], vectors["index"], vectors["valid"]))


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_wta_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, sequences = COSIM_SPECS[name]
    assert sequences * spec.length >= 2000
    spec, beats, expected = wta_stream_from_vectors(write_wta_vectors(tmp_path / "vectors", spec, sequences, 5))
    report = cosim(WTAAttention(spec), "wta_attention", beats, expected, tmp_path / "run", seed=9,
                   valid_prob=0.8, ready_prob=0.6)
    assert report.result.beats_checked == sequences * spec.length
    assert report.mismatches == 0, report.explain()
