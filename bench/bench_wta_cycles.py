"""Cycle counts of one WTA attention head (L = 64, k = 4, head dim 32) against the docstring formula.

    python bench/bench_wta_cycles.py

For P = 1, 4, 16 score lanes: one head (64 K/V loads, 64 causal queries of random spikes)
through ``rtl.WTAAttention`` in Amaranth's simulator with no stalls; prints the measured query
interval, query latency and the cycle of the last output next to G + k + 5 and
L + L (G + k + 5), and the top-k unit's row latency for both versions.
"""

from __future__ import annotations

from golden.wta import TopKSpec, WTASpec
from rtl.pysim import run_stream
from rtl.topk import TopK, topk_input_beats, topk_random_scores
from rtl.wta_attention import WTAAttention, wta_input_beats, wta_random_qkv


def main():
    print("WTA attention head, L = 64, k = 4, head dim 32 (value dim 32), causal, no stalls")
    print(f"{'P':>3} {'interval':>9} {'formula':>8} {'latency':>8} {'formula':>8} {'last out':>9} {'formula':>8}")
    for lanes in (1, 4, 16):
        spec = WTASpec(length=64, head_dim=32, value_dim=32, score_width=6, k=4, lanes=lanes, causal=True)
        q, k, v = wta_random_qkv(spec, 1, seed=4)
        run = run_stream(WTAAttention(spec), wta_input_beats(spec, q, k, v), 64, max_cycles=20_000)
        queries = run.accept_cycles[64:]
        interval = queries[1] - queries[0]
        latency = run.output_cycles[0] - queries[0]
        f = spec.groups + spec.top_k + 5
        print(f"{lanes:>3} {interval:>9} {f:>8} {latency:>8} {f:>8} {run.output_cycles[-1]:>9} {64 + 64 * f:>8}")
    print("\nTop-k unit, L = 64, k = 4: cycles from a row's first input beat to its result")
    for version in ("stream", "parallel"):
        spec = TopKSpec(length=64, k=4, score_width=6, version=version)
        run = run_stream(TopK(spec), topk_input_beats(spec, topk_random_scores(spec, 1, seed=0)), 64)
        first = run.output_cycles[0] - run.accept_cycles[0]
        per_row = (run.output_cycles[-1] - run.output_cycles[0]) / 63
        print(f"  {version:8s}: {first} cycles (formula {64 if version == 'stream' else TopK.latency(spec)}), "
              f"then one row every {per_row:.0f} cycle(s)")


if __name__ == "__main__":
    main()
