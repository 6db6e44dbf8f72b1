"""The core on each shipped trained model: cycles, useful work, utilisation, golden speed, side by side.

    python bench/bench_core.py [--samples 64] [--rtl-samples 4] [--lanes 8]

For every shipped model (``sim/data/core``) on ``--samples`` held-out samples:

* hardware cycles per sample: the cycle formula (``golden.core.cycles``) on every sample, and the
  core's own counter under Verilator (no debug taps) on the first ``--rtl-samples`` of them, side
  by side (they must be equal: the bench says so and exits 1 otherwise);
* useful synaptic operations per sample (every nonzero input x the outputs of its layer);
* utilisation = useful ops / (lanes x cycles);
* wall time per sample of the golden integer model's ``forward_layers`` (one torch thread), of the
  golden program execution, and of the Verilator co-simulation, measured in this run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from golden.core import run_program
from golden.core.cycles import predict_cycles, useful_ops
from spikeforge.core import SHIPPED, held_out_samples, load_core_model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--rtl-samples", type=int, default=4)
    parser.add_argument("--lanes", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=list(SHIPPED), choices=list(SHIPPED))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from sim.core import cosim_core

    print(f"Core, P = {args.lanes} MAC/LIF lanes, WTA unit P_w = 4; {args.samples} held-out samples a model\n")
    head = (f"{'model':12} {'cycles/sample':>14} {'formula, first ' + str(args.rtl_samples):>17} "
            f"{'RTL, first ' + str(args.rtl_samples):>14} "
            f"{'useful ops':>11} {'utilisation':>11} {'golden ms':>10} {'program ms':>11} {'RTL sim ms':>11}")
    print(head)
    ok = True
    for name in args.models:
        cm = load_core_model(name, lanes=args.lanes, debug_taps=False)
        samples, _, _ = held_out_samples(cm, args.samples)
        model_in = samples.reshape(-1, 1, 8, 8) if cm.program.input_kind == "pixels" else samples
        start = time.perf_counter()
        for i in range(samples.shape[0]):
            cm.int_model.forward_layers(model_in[i:i + 1])
        golden_ms = (time.perf_counter() - start) * 1e3 / samples.shape[0]
        start = time.perf_counter()
        run = run_program(cm.program, samples)
        program_ms = (time.perf_counter() - start) * 1e3 / samples.shape[0]
        cycles = predict_cycles(cm.program, cm.spec, run)
        ops = useful_ops(cm.program, run)
        util = float(ops.sum()) / (args.lanes * float(cycles.sum()))
        n_rtl = min(args.rtl_samples, samples.shape[0])
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            rep = cosim_core(cm.spec, cm.program, samples[:n_rtl], Path(tmp))
            rtl_ms = rep.result.wall_seconds * 1e3 / n_rtl
        equal = rep.mismatches == 0 and rep.cycles == cycles[:n_rtl].tolist()
        ok &= equal
        rtl = f"{sum(rep.cycles) / n_rtl:,.1f}{'' if equal else ' (DIFFERS)'}"
        first = float(cycles[:n_rtl].float().mean())
        print(f"{name:12} {float(cycles.float().mean()):>14,.1f} {first:>17,.1f} {rtl:>14} {float(ops.float().mean()):>11,.0f} "
              f"{util:>11.1%} {golden_ms:>10.2f} {program_ms:>11.2f} {rtl_ms:>11.0f}")
    print("\ncycles/sample: the formula on every sample; RTL: the core's counter under Verilator, which "
          "must equal the formula" + ("" if ok else "\nMISMATCH between the formula and the RTL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
