"""Estimate vs RTL co-simulation: wall time per sample of each shipped model, side by side in one run.

    python bench/bench_estimate.py [--rtl-samples 2] [--samples 64] [--models ...]

For every shipped model (``sim/data/core``, P = 8, P_w = 4, no debug taps):

* ``estimate``: the golden program run plus ``estimate.core.estimate_core`` (cycles, event counts,
  energy) on the first ``--rtl-samples`` held-out samples, and again on ``--samples`` (the
  per-sample cost once the fixed cost is shared);
* ``RTL``: ``sim.core.cosim_core`` on the same first ``--rtl-samples`` samples under Verilator
  with no stream gaps, whose cycle counter must equal the estimate's cycles (the bench exits 1
  otherwise). Its wall time counts the Verilog emission, the (cached) Verilator build lookup and
  the simulation of every cycle; the Verilator build itself, when the cache lacks it, is made
  first and timed apart (``build s``);
* the ratio RTL / estimate of the wall time per sample, measured in this run on one torch thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from estimate.core import estimate_core
from golden.core import run_program
from spikeforge.core import SHIPPED, held_out_samples, load_core_model


def _estimate(cm, samples) -> tuple[float, object]:
    start = time.perf_counter()
    run = run_program(cm.program, samples, current_width=cm.spec.current_width)
    est = estimate_core(cm.program, cm.spec, run, fmax_mhz=100.0)
    return time.perf_counter() - start, est


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtl-samples", type=int, default=2, help="samples co-simulated (default 2)")
    parser.add_argument("--samples", type=int, default=64, help="samples for the estimate alone (default 64)")
    parser.add_argument("--models", nargs="+", default=list(SHIPPED), choices=list(SHIPPED))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from sim.core import cosim_core

    from rtl.core import NeuroCore
    from sim.core import TOPLEVEL
    from sim.harness import build_component

    print(f"{'model':<12} {'samples':>7} {'cycles/sample':>14} {'estimate s/sample':>18} {'RTL s/sample':>13} "
          f"{'RTL / estimate':>15} {'estimate s/sample (N)':>22} {'build s':>8}  cycles ==")
    ok = True
    for name in args.models:
        cm = load_core_model(name, debug_taps=False)
        x, _, _ = held_out_samples(cm, max(args.rtl_samples, args.samples))
        few = x[:args.rtl_samples]
        _estimate(cm, few)                                     # warm-up: imports and first-call costs
        t_est, est = _estimate(cm, few)
        t_many, _ = _estimate(cm, x[:args.samples])
        start = time.perf_counter()
        built = build_component(NeuroCore(cm.spec, cm.program), TOPLEVEL)   # the cache, or a build now
        t_build = 0.0 if built.cached else time.perf_counter() - start
        with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
            start = time.perf_counter()
            rep = cosim_core(cm.spec, cm.program, few, Path(tmp), valid_prob=1.0, ready_prob=1.0)
            t_rtl = time.perf_counter() - start
        same = rep.cycles == est.cycles.tolist() and rep.mismatches == 0
        ok &= same
        n = args.rtl_samples
        print(f"{name:<12} {n:>7} {est.mean_cycles:>14,.0f} {t_est / n:>18.4f} {t_rtl / n:>13.2f} "
              f"{t_rtl / t_est:>14,.0f}x {t_many / args.samples:>17.4f} (N={args.samples}) {t_build:>8.0f}  "
              f"{'yes' if same else 'NO: ' + str(rep.cycles)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
