"""Simulated cycles per second of the LIF array: Verilator (through cocotb) vs Amaranth's simulator.

Both simulators run the same golden vectors through the same ``LIFArray`` at full
rate (no valid/ready gaps) in one process run, so the ratio is measured side by
side on the same machine at the same moment:

    python bench/bench_lif_sim.py [--neurons 64 --lanes 4 --sequences 16 --steps 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from golden.lif import LIFSpec, lif_random_currents, lif_reference
from rtl.lif import LIFArray, lif_expected_beats, lif_input_beats, lif_output_layout
from rtl.pysim import run_stream
from rtl.streams import pack
from sim.harness import build_component, cosim


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=64)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--sequences", type=int, default=16)
    parser.add_argument("--steps", type=int, default=64)
    args = parser.parse_args()

    spec = LIFSpec(n_neurons=args.neurons, lanes=args.lanes)
    currents = lif_random_currents(spec, args.sequences, args.steps, seed=0)
    ref = lif_reference(spec, currents)
    beats = lif_input_beats(spec, currents)
    expected = lif_expected_beats(spec, ref["spikes"], ref["membrane"])
    build_component(LIFArray(spec), "lif_array")  # compile outside the timed region

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = cosim(LIFArray(spec), "lif_array", beats, expected, Path(tmp), valid_prob=1.0, ready_prob=1.0)
        verilator_total = time.perf_counter() - start
    assert report.mismatches == 0, report.explain()
    vr = report.result

    start = time.perf_counter()
    run = run_stream(LIFArray(spec), beats, len(expected))
    pysim_seconds = time.perf_counter() - start
    assert run.outputs == [pack(lif_output_layout(spec), b) for b in expected]

    v_rate = vr.simulated_cycles / vr.wall_seconds
    v_rate_total = vr.simulated_cycles / verilator_total
    p_rate = run.cycles / pysim_seconds
    print(f"LIF array N={spec.n_neurons} P={spec.lanes}: {len(beats)} beats, "
          f"{spec.n_neurons * args.sequences * args.steps} neuron updates, both bit-exact")
    print(f"  Verilator + cocotb : {vr.simulated_cycles:8d} cycles in {vr.wall_seconds:6.2f} s "
          f"= {v_rate:10,.0f} cycles/s  ({v_rate_total:,.0f} cycles/s counting simulator start-up)")
    print(f"  Amaranth simulator : {run.cycles:8d} cycles in {pysim_seconds:6.2f} s = {p_rate:10,.0f} cycles/s")
    print(f"  ratio Verilator / Amaranth: {v_rate / p_rate:.1f}x "
          f"({v_rate_total / p_rate:.1f}x with start-up)")


if __name__ == "__main__":
    main()
