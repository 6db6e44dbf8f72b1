"""Spike-driven self-attention unit under Verilator, bit for bit against golden vectors.

Each configuration's golden vector file (``golden.sdsa.sdsa_reference``: q, k, v spikes, the
golden KV and y) is written, read back through the checked loader, turned into stream beats
(``rtl.sdsa.sdsa_stream_from_vectors``: per sequence L load beats, then the query beats) and
run through ``rtl.SDSAttention`` by the shared cocotb bench (``sim/stream_bench.py``) with
seeded random valid/ready gaps; every output beat (the dh elements of y = q (k^T v)) must
equal the golden one. The vectors hold every sequence kind of ``sdsa_random_qkv`` (all
firing: every count at its limit; silent keys or queries; one key row; sparse rows).
"""

from __future__ import annotations

import pytest

from golden.sdsa import SDSASpec, sdsa_random_qkv, sdsa_reference
from golden.vectors import load_vectors, save_vectors
from rtl.sdsa import SDSAttention, sdsa_stream_from_vectors

# name -> (spec, sequences, queries per sequence (None: L)); each checks at least 10,000 queries
COSIM_SPECS = {
    # Matterhorn's shipped head: L = 16 tokens, dh = 16 (dim 32 in 2 heads), P = 4 lanes: G = 4
    "matterhorn-L16-d16-P4": (SDSASpec(), 640, None),
    # L and dh not powers of two, P not dividing dh (G = 3, the last group 2 rows of 4),
    # cross-attention with Lq = 5 queries against L = 12 keys
    "cross-L12-d10-P4-Lq5": (SDSASpec(length=12, head_dim=10, lanes=4), 2000, 5),
}
# with --long only (more Verilator builds, minutes each): one query a cycle (P = dh, KV of 24 x 24
# counters, y up to 960), and one KV row a cycle (P = 1, G = dh = 16 cycles a query)
LONG_SPECS = {
    "parallel-L40-d24-P24": (SDSASpec(length=40, head_dim=24, lanes=24), 250, None),
    "serial-L16-d16-P1": (SDSASpec(lanes=1), 1250, None),
}


def write_sdsa_vectors(directory, spec: SDSASpec, sequences: int, queries: int | None, seed: int):
    q, k, v = sdsa_random_qkv(spec, sequences, queries, seed=seed)
    return save_vectors(directory, "sdsa", spec.to_dict(), seed, sdsa_reference(spec, q, k, v))


def sdsa_stream_from_directory(directory):
    """Golden vector directory -> (spec, input beats, expected output beats)."""
    return sdsa_stream_from_vectors(load_vectors(directory, block="sdsa"))


@pytest.mark.parametrize("name", [*sorted(COSIM_SPECS),
                                  *(pytest.param(n, marks=pytest.mark.long) for n in sorted(LONG_SPECS))])
def test_sdsa_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, sequences, queries = {**COSIM_SPECS, **LONG_SPECS}[name]
    lq = spec.length if queries is None else queries
    assert sequences * lq >= 10_000
    directory = write_sdsa_vectors(tmp_path / "vectors", spec, sequences, queries, seed=7)
    spec, beats, expected = sdsa_stream_from_directory(directory)
    assert len(beats) == sequences * (spec.length + lq)
    report = cosim(SDSAttention(spec), "sdsa_attention", beats, expected, tmp_path / "run",
                   seed=5, valid_prob=0.7, ready_prob=0.6)
    assert report.result.beats_checked == sequences * lq
    assert report.mismatches == 0, report.explain()
