"""Cost of the three mismatch implementations of one synapse layer, measured side by side.

For one layer (default 256 inputs x 128 outputs, 4-bit codes, P = 16 synapses per
cycle, 5 % gain and 4-LSB offset mismatch) and each ``mismatch_impl``:

* memory bits: depth x width of every ``Memory`` of the generated weight memory
  (``rtl.logmem.memory_bits``), plus the accumulator memory (G x P Wa, the same for all);
* cycles per time step at a 10 % input spike rate: the engine run in Amaranth's
  simulator on golden vectors without valid/ready gaps, checked bit for bit, and the
  docstring's k G + G + L + 1 for comparison.

    python bench/bench_synapse_costs.py [--inputs 256 --outputs 128 --lanes 16 --steps 6 --rate 0.1]
"""

from __future__ import annotations

import argparse
import time

import torch

from golden.synapse import MISMATCH_IMPLS, SynapseSpec, random_codes, random_spikes, synapse_run
from rtl.logmem import memory_bits
from rtl.pysim import run_stream
from rtl.streams import pack
from rtl.synapse import SynapseEngine, synapse_expected_beats, synapse_input_beats, synapse_output_layout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=256)
    parser.add_argument("--outputs", type=int, default=128)
    parser.add_argument("--lanes", type=int, default=16)
    parser.add_argument("--code-bits", type=int, default=4)
    parser.add_argument("--levels", type=int, default=7)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--impls", nargs="+", default=list(MISMATCH_IMPLS), choices=MISMATCH_IMPLS)
    args = parser.parse_args()

    rows = []
    for impl in args.impls:
        spec = SynapseSpec(n_inputs=args.inputs, n_outputs=args.outputs, lanes=args.lanes,
                           code_bits=args.code_bits, levels=args.levels, mismatch_impl=impl)
        bits = memory_bits(spec)
        codes = random_codes(spec, 0)
        spikes = random_spikes(spec, 1, args.steps, args.rate, seed=0)
        trace = synapse_run(spec, codes, spikes)
        beats = synapse_input_beats(spec, spikes)
        expected = synapse_expected_beats(spec, trace.currents, trace.sops, trace.reads)
        start = time.perf_counter()
        engine = SynapseEngine(spec, init_codes=codes)
        run = run_stream(engine, beats, len(expected))
        seconds = time.perf_counter() - start
        assert run.outputs == [pack(synapse_output_layout(spec), b) for b in expected], f"{impl}: mismatch"
        # the step ends when its STEP command's drain has finished: next accept = STEP accept + G + L + 1
        steps = args.steps
        measured = (run.output_cycles[-1] + 1) / steps
        k = float(spikes.sum()) / steps
        formula = k * spec.groups + spec.groups + engine.step_overhead
        rows.append((impl, bits, spec, measured, formula, k, seconds))

    spec = rows[0][2]
    acc_bits = spec.groups * spec.lanes * spec.acc_width
    print(f"synapse layer {spec.n_inputs} x {spec.n_outputs}, {spec.code_bits}-bit codes ({spec.levels} levels), "
          f"P = {spec.lanes}, G = {spec.groups}, gain sigma {spec.gain_sigma}/2^16, offset sigma "
          f"{spec.offset_sigma} LSB (F = {spec.frac_bits}); We = {spec.weight_width} bits, "
          f"dg {spec.mismatch.gain_width} + do {spec.mismatch.offset_width} bits")
    base = sum(rows[0][1].values())
    for impl, bits, s, measured, formula, k, seconds in rows:
        total = sum(bits.values())
        detail = ", ".join(f"{name} {value:,}" for name, value in bits.items())
        print(f"  {impl:12s} weight memory {total:9,} bits ({detail}; {total / base:.2f}x {rows[0][0]}) "
              f"+ accumulators {acc_bits:,} bits | {measured:.1f} cycles/step at {k:.1f} spikes/step "
              f"(k G + G + L + 1 = {formula:.1f}); bit-exact, simulated in {seconds:.1f} s")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
