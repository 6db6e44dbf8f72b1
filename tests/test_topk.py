"""Top-k unit in Amaranth's simulator: the Verilator vectors, latency and throughput to the cycle."""

from __future__ import annotations

import pytest
import torch

from golden.wta import TopKSpec, topk_select
from rtl.pysim import run_stream
from rtl.streams import pack, unpack
from rtl.topk import (TopK, topk_expected_beats, topk_input_beats, topk_output_layout, topk_random_scores,
                      topk_reference)
from sim.test_topk import COSIM_SPECS, topk_stream_from_vectors, write_topk_vectors


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_rtl_amaranth_sim_bit_exact(name, tmp_path):
    spec, sequences = COSIM_SPECS[name]
    sequences = max(4, sequences // 10)      # the fast tier: a tenth of the Verilator rows
    spec, beats, expected = topk_stream_from_vectors(write_topk_vectors(tmp_path, spec, sequences, 7))
    run = run_stream(TopK(spec), beats, len(expected), seed=3, valid_prob=0.8, ready_prob=0.6)
    layout = topk_output_layout(spec)
    got = [unpack(layout, w) for w in run.outputs]
    assert got == [unpack(layout, pack(layout, b)) for b in expected]


def test_stimulus_has_equal_rows_ties_and_extremes():
    spec = TopKSpec(length=8, k=2, score_width=3, min_score=4)
    scores = topk_random_scores(spec, 8, seed=0)
    rows = scores.reshape(-1, 8)
    assert any(len(set(r.tolist())) == 1 for r in rows)           # all-equal rows
    assert any(len(set(r.tolist())) <= 3 and len(set(r.tolist())) > 1 for r in rows)
    assert int(scores.min()) == 0 and int(scores.max()) == 7
    below = (rows < 4).any(1) & (rows >= 4).any(1)
    assert bool(below.any())                                       # min_score cuts inside rows


@pytest.mark.parametrize("spec", [TopKSpec(length=6, k=2, score_width=3),
                                  TopKSpec(length=7, k=3, score_width=3, causal=True, version="parallel"),
                                  TopKSpec(length=16, k=4, score_width=4, version="parallel")])
def test_latency_and_throughput_match_the_docstring(spec):
    scores = topk_random_scores(spec, 2, seed=1)
    ref = topk_reference(spec, scores)
    beats = topk_input_beats(spec, scores)
    expected = topk_expected_beats(spec, ref["index"], ref["score"], ref["valid"])
    run = run_stream(TopK(spec), beats, len(expected))
    # no stalls: one beat accepted every cycle
    assert run.accept_cycles == list(range(len(beats)))
    per_row = spec.length if spec.version == "stream" else 1
    last_of_row = run.accept_cycles[per_row - 1::per_row]
    assert run.output_cycles == [c + TopK.latency(spec) for c in last_of_row]
    if spec.version == "stream":
        # (L - 1) cycles of scores after the first, + 1: L cycles from a row's first score to its result
        assert run.output_cycles[0] - run.accept_cycles[0] == spec.length
    else:
        n = 1 << (spec.length - 1).bit_length()
        log_n = n.bit_length() - 1
        assert TopK.latency(spec) == log_n * (log_n + 1) // 2 + 2   # 16 -> 10 stages + 2
    assert run.outputs == [pack(topk_output_layout(spec), b) for b in expected]


def test_both_versions_agree_on_hand_example():
    # scores 3 5 5 1 5 0, k = 2: ties at 5 -> keys 1 and 2
    for version in ("stream", "parallel"):
        spec = TopKSpec(length=6, k=2, score_width=3, version=version)
        scores = torch.tensor([[[3, 5, 5, 1, 5, 0]]])
        run = run_stream(TopK(spec), topk_input_beats(spec, scores), 1)
        assert unpack(topk_output_layout(spec), run.outputs[0]) == {"index": [1, 2], "score": [5, 5], "valid": 3}


def test_stalled_output_holds_the_input():
    spec = TopKSpec(length=4, k=2, score_width=3)
    scores = topk_random_scores(spec, 1, seed=0)
    with pytest.raises(TimeoutError):
        run_stream(TopK(spec), topk_input_beats(spec, scores), 1, ready_prob=0.0, max_cycles=40)


def test_bad_input():
    spec = TopKSpec(length=4, k=2, score_width=3)
    with pytest.raises(TypeError, match="TopK needs a TopKSpec"):
        TopK({"length": 4})
    with pytest.raises(ValueError, match=r"expected \(sequences, rows, 4\)"):
        topk_input_beats(spec, torch.zeros(1, 4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="outside the 3-bit unsigned range"):
        topk_select(spec, torch.tensor([[9, 0, 0, 0]]))
    with pytest.raises(ValueError, match="top-k scores holds values in \\[0, 9\\], outside the 3-bit"):
        topk_input_beats(spec, torch.tensor([[[9, 0, 0, 0]]]))
