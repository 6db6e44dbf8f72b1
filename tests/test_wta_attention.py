"""WTA attention unit in Amaranth's simulator: the Verilator vectors, hand example, latency and
throughput to the cycle, bad input."""

from __future__ import annotations

import pytest
import torch

from golden.wta import WTASpec
from rtl.pysim import run_stream
from rtl.streams import pack, unpack
from rtl.wta_attention import (WTAAttention, wta_expected_beats, wta_input_beats, wta_output_layout,
                               wta_random_qkv, wta_reference)
from sim.test_wta_attention import COSIM_SPECS, wta_stream_from_vectors, write_wta_vectors


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_rtl_amaranth_sim_bit_exact(name, tmp_path):
    spec, sequences = COSIM_SPECS[name]
    sequences = max(3, sequences // 25)      # the fast tier: a slice of the Verilator rows
    spec, beats, expected = wta_stream_from_vectors(write_wta_vectors(tmp_path, spec, sequences, 5))
    run = run_stream(WTAAttention(spec), beats, len(expected), seed=9, valid_prob=0.8, ready_prob=0.6)
    layout = wta_output_layout(spec)
    assert [unpack(layout, w) for w in run.outputs] == [unpack(layout, pack(layout, b)) for b in expected]


def test_hand_example():
    spec = WTASpec(length=3, head_dim=4, value_dim=2, k=2, score_width=3, scale_frac=4, lanes=2, v_width=4)
    q = torch.tensor([[[1, 1, 0, 1]]])
    k = torch.tensor([[[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]]])
    v = torch.tensor([[[3, -2], [5, 7], [-1, 4]]])
    run = run_stream(WTAAttention(spec), wta_input_beats(spec, q, k, v), 1)
    # scores 2, 1, 2 -> winners 0, 2; acc = (2, 2); R = 16 / 2 = 8 -> out = (16, 16)
    assert unpack(wta_output_layout(spec), run.outputs[0]) == {"out": [16, 16], "index": [0, 2], "valid": 3}


@pytest.mark.parametrize("spec", [
    WTASpec(length=8, head_dim=4, value_dim=2, score_width=3, k=2, lanes=2),
    WTASpec(length=10, head_dim=3, value_dim=1, score_width=2, k=3, lanes=4, causal=True),
])
def test_latency_and_throughput_match_the_docstring(spec):
    q, k, v = wta_random_qkv(spec, 2, seed=2)
    ref = wta_reference(spec, q, k, v)
    beats = wta_input_beats(spec, q, k, v)
    expected = wta_expected_beats(spec, ref["out"], ref["index"], ref["valid"])
    run = run_stream(WTAAttention(spec), beats, len(expected))
    assert run.outputs == [pack(wta_output_layout(spec), b) for b in expected]
    L = spec.length
    for s in range(2):
        acc = run.accept_cycles[s * 2 * L:(s + 1) * 2 * L]
        loads, queries = acc[:L], acc[L:]
        # loads: one per cycle; queries: one every G + k + 5 cycles
        assert loads == list(range(loads[0], loads[0] + L))
        assert [b - a for a, b in zip(queries, queries[1:])] == [WTAAttention.query_interval(spec)] * (L - 1)
        outs = run.output_cycles[s * L:(s + 1) * L]
        assert [o - a for a, o in zip(queries, outs)] == [spec.groups + spec.top_k + 5] * L


def test_head_L64_k4_d32_cycle_count():
    """The closing-note configuration: L = 64, k = 4, head dim 32, P = 4 lanes."""
    spec = WTASpec(length=64, head_dim=32, value_dim=32, score_width=6, k=4, lanes=4, causal=True)
    q, k, v = wta_random_qkv(spec, 1, seed=4)
    ref = wta_reference(spec, q, k, v)
    run = run_stream(WTAAttention(spec), wta_input_beats(spec, q, k, v), 64)
    assert run.outputs == [pack(wta_output_layout(spec), b)
                           for b in wta_expected_beats(spec, ref["out"], ref["index"], ref["valid"])]
    # docstring: 64 loads + 64 queries * (G + k + 5) = 64 + 64 * 25 = 1664, output of the last query
    # appears in cycle 64 + 63 * 25 + 25 = 1664
    assert WTAAttention.query_interval(spec) == 16 + 4 + 5
    assert run.output_cycles[-1] == 64 + 64 * 25


def test_bad_input():
    spec = WTASpec(length=4, head_dim=2, value_dim=2, score_width=2, k=2, lanes=2)
    with pytest.raises(TypeError, match="WTAAttention needs a WTASpec"):
        WTAAttention(spec.topk_spec())
    with pytest.raises(ValueError, match="do not match the spec"):
        wta_input_beats(spec, torch.zeros(1, 4, 3), torch.zeros(1, 4, 2), torch.zeros(1, 4, 2))
    ones = torch.ones(1, 4, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match="WTA values V holds values in \\[1, 2\\], outside the 1-bit unsigned"):
        wta_input_beats(spec, ones, ones, ones + torch.tensor([[[0, 1]]]))


def test_trained_model_vectors_amaranth_sim():
    """The first sequences of the trained model's real Q/K/V spikes (sim/data/wta_trained)."""
    from sim.test_wta_trained import trained_stream

    spec, _, beats, expected = trained_stream(sequences=4)
    run = run_stream(WTAAttention(spec), beats, len(expected), seed=13, valid_prob=0.8, ready_prob=0.7)
    assert run.outputs == [pack(wta_output_layout(spec), b) for b in expected]


def test_cross_attention_with_fewer_queries_than_keys():
    """Cross-attention: Lq = 5 decoder queries against L = 12 encoder keys, then a new sequence."""
    spec = WTASpec(length=12, head_dim=6, value_dim=3, score_width=3, k=3, lanes=4)
    q, k, v = wta_random_qkv(spec, 3, queries=5, seed=8)
    ref = wta_reference(spec, q, k, v)
    beats = wta_input_beats(spec, q, k, v)
    assert len(beats) == 3 * (12 + 5)
    run = run_stream(WTAAttention(spec), beats, 15, seed=1, valid_prob=0.7, ready_prob=0.5)
    assert run.outputs == [pack(wta_output_layout(spec), b)
                           for b in wta_expected_beats(spec, ref["out"], ref["index"], ref["valid"])]
