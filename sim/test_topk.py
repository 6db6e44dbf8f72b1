"""Top-k unit under Verilator, bit for bit against golden vectors.

Both versions (streaming insertion and bitonic sorting network) on configurations
covering random scores, all-equal rows, many ties, k = 1, k = L, L not a power of
two, causal and not, signed scores, minimum score on and off; random valid/ready
gaps on both streams. Each configuration checks at least 2,000 rows.
"""

from __future__ import annotations

import pytest

from golden.vectors import load_vectors, save_vectors
from golden.wta import TopKSpec
from rtl.topk import TopK, topk_expected_beats, topk_input_beats, topk_random_scores, topk_reference

# name -> (spec, sequences); rows checked = sequences * L >= 2000
COSIM_SPECS = {
    # insertion version: causal with the minimum score on, L not a power of two
    "stream-L12-k3-causal-min": (TopKSpec(length=12, k=3, score_width=4, causal=True, min_score=3), 167),
    # insertion version: k = L, signed scores, minimum score off (the most negative score)
    "stream-L9-k9-signed": (TopKSpec(length=9, k=9, score_width=5, signed=True, min_score=-16), 223),
    # sorting network: causal, N = 16 padded from L = 10
    "parallel-L10-k4-causal": (TopKSpec(length=10, k=4, score_width=4, causal=True, version="parallel"), 200),
    # sorting network: k = 1 from a ratio (floor(5 * 0.1) = 0 -> 1), signed, minimum score on
    "parallel-L5-k1-signed-min": (TopKSpec(length=5, k_ratio=0.1, score_width=3, signed=True, min_score=-1,
                                           version="parallel"), 400),
}


def write_topk_vectors(directory, spec: TopKSpec, sequences: int, seed: int):
    scores = topk_random_scores(spec, sequences, seed=seed)
    return save_vectors(directory, "topk", spec.to_dict(), seed, topk_reference(spec, scores))


def topk_stream_from_vectors(directory):
    vectors = load_vectors(directory, block="topk")
    spec = TopKSpec.from_dict(vectors.spec)
    return (spec, topk_input_beats(spec, vectors["scores"]),
            topk_expected_beats(spec, vectors["index"], vectors["score"], vectors["valid"]))


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_topk_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, sequences = COSIM_SPECS[name]
    assert sequences * spec.length >= 2000
    spec, beats, expected = topk_stream_from_vectors(write_topk_vectors(tmp_path / "vectors", spec, sequences, 7))
    report = cosim(TopK(spec), "topk", beats, expected, tmp_path / "run", seed=3, valid_prob=0.8, ready_prob=0.6)
    assert report.result.beats_checked == sequences * spec.length
    assert report.mismatches == 0, report.explain()
