"""Speed of the golden integer models vs snnTorch float, side by side on one torch thread.

1. LIF: ``golden.lif.lif_run`` (exact int64 results; shift leak, saturate, subtract reset,
   R = 0) against ``snntorch.Leaky`` in float32 (beta = 0.875, threshold 1, subtract reset),
   both recording spikes and membrane for every step, at (batch, T, N) = (64, 100, 1024) and
   (256, 100, 1024), in M neuron-updates/s (batch x T x N / seconds). Also the multiply leak
   and ``lif_run_time_first``.
2. Whole model: the spiking MLP's integer forward ``model.to_integer().forward_layers(pixels)``
   against its float forward ``model(x)`` (no grad), same batch.

Repetitions of every case are interleaved and the median is reported (the machine is shared).
Ratio = integer speed / float speed (> 1: the integer model is faster).

    python bench/bench_golden_speed.py [--reps 7] [--quick] [--thp] [--no-baseline]

At these sizes the integer LIF's two int64 (..., T, N) outputs (16 bytes per neuron-step;
snnTorch's float32 results are 8) cost more to fault in than the loop costs to fill them, so
``lif_run`` asks for huge pages on them (``golden/alloc.py``: ``madvise(MADV_HUGEPAGE)``, what
torch does with ``THP_MEM_ALLOC_ENABLE=1``, but only on the golden outputs; snnTorch runs as
installed). The row "... 4 KiB pages" is the same call with that advice off
(``golden.alloc.HUGEPAGES = False``), to show what it is worth on this machine (the kernel's THP
mode is printed; with ``never`` both rows are the same). ``--thp`` gives both sides huge pages.

The whole model's integer forward computes its int64 products with ``golden.layers.int_matmul``
(several output columns packed per int64 word where provably exact).

snnTorch is a bench-only dependency: ``pip install 'spikeforge[bench]'`` (or ``pip install
snntorch``); without it the bench says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch


def _median_times(cases: dict, reps: int) -> dict[str, float]:
    times = {name: [] for name in cases}
    for fn in cases.values():  # warm-up
        fn()
    for _ in range(reps):
        for name, fn in cases.items():  # interleaved
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--neurons", type=int, default=1024)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--hidden", type=int, default=256, help="spiking MLP hidden width")
    parser.add_argument("--time-steps", type=int, default=16, help="spiking MLP time steps")
    parser.add_argument("--quick", action="store_true", help="3 repetitions, batch 64 only")
    parser.add_argument("--thp", action="store_true",
                        help="set THP_MEM_ALLOC_ENABLE=1 (torch's transparent-huge-page allocations, both sides); "
                             "fresh output pages are then faulted in 2 MiB at a time")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the plain lif_step-per-step loop (lif_run before issue 14)")
    args = parser.parse_args(argv)
    if args.thp:  # read by torch at its first large allocation, so set before any
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
    try:
        import snntorch
    except ImportError:
        print("bench_golden_speed: snntorch is not installed; it is a bench-only dependency: "
              "pip install 'spikeforge[bench]'  (or: pip install snntorch)", file=sys.stderr)
        return 2
    if args.quick:
        args.reps, args.batches = 3, args.batches[:1]

    from golden.layers import lif_run_time_first
    from golden.lif import LIFSpec, lif_init_state, lif_random_currents, lif_run, lif_step
    from golden.models.spiking_mlp import SpikingMLP

    torch.set_num_threads(1)
    torch.manual_seed(0)
    n, steps = args.neurons, args.steps
    spec_shift = LIFSpec(n_neurons=n, lanes=1, membrane_width=16, input_width=12, threshold=1024,
                         leak_mode="shift", leak_shift=3)
    spec_mul = spec_shift.replace(membrane_width=24, input_width=24, leak_mode="multiply",
                                  leak_beta=224, leak_frac_bits=8)
    from golden import alloc
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp_mode = f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        thp_mode = "unknown"

    def four_k(fn):  # the same call with the huge-page advice off
        def run():
            alloc.HUGEPAGES = False
            try:
                return fn()
            finally:
                alloc.HUGEPAGES = True
        return run

    print(f"torch {torch.__version__}, snntorch {snntorch.__version__}, threads {torch.get_num_threads()}, "
          f"median of {args.reps} interleaved repetitions, kernel THP mode {thp_mode}, "
          f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}")
    print(f"{'case':42s} {'shape (B, T, N)':>18s} {'ms':>9s} {'M neurons/s':>12s} {'int/snnTorch':>13s}")
    for batch in args.batches:
        currents = lif_random_currents(spec_shift, batch, steps, seed=batch)       # (B, T, N) int64
        currents_tf = currents.movedim(1, 0).contiguous()                           # (T, B, N)
        x = (currents_tf.to(torch.float32) / spec_shift.threshold).contiguous()    # float, same scale
        leaky = snntorch.Leaky(beta=0.875, threshold=1.0, reset_mechanism="subtract")

        def snn_run():
            with torch.no_grad():
                mem = leaky.init_leaky()
                spk_rec, mem_rec = [], []
                for t in range(steps):
                    spk, mem = leaky(x[t], mem)
                    spk_rec.append(spk)
                    mem_rec.append(mem)
                return torch.stack(spk_rec), torch.stack(mem_rec)

        cases = {"snntorch.Leaky float32": snn_run,
                 "lif_run int (shift leak)": lambda: lif_run(spec_shift, currents),
                 "lif_run int (multiply leak, Wv 24)": lambda: lif_run(spec_mul, currents),
                 "lif_run_time_first int (shift leak)": lambda: lif_run_time_first(spec_shift, currents_tf),
                 "lif_run int (shift leak), 4 KiB pages": four_k(lambda: lif_run(spec_shift, currents))}
        if not args.no_baseline:
            def per_step_loop():  # lif_run as it was before issue 14: lif_step per step, then stack
                state, spk_rec, mem_rec = lif_init_state(spec_shift, (batch,)), [], []
                for t in range(steps):
                    spike, state = lif_step(spec_shift, state, currents[:, t])
                    spk_rec.append(spike)
                    mem_rec.append(state.v)
                return torch.stack(spk_rec, dim=1), torch.stack(mem_rec, dim=1)
            cases["lif_step loop int (shift; old lif_run)"] = per_step_loop
        med = _median_times(cases, args.reps)
        updates = batch * steps * n
        base = updates / med["snntorch.Leaky float32"]
        for name, sec in med.items():
            rate = updates / sec
            print(f"{name:42s} {str((batch, steps, n)):>18s} {sec * 1e3:9.1f} {rate / 1e6:12.1f} "
                  f"{rate / base:13.2f}")

    # whole model: spiking MLP, integer forward vs float forward
    model = SpikingMLP(hidden=args.hidden, time_steps=args.time_steps).eval()
    int_model = model.to_integer()
    for batch in args.batches:
        pixels = torch.randint(0, 17, (batch, 1, 8, 8), dtype=torch.int64)
        xf = pixels.to(torch.float32) / 16

        def float_fwd():
            with torch.no_grad():
                return model(xf)

        med = _median_times({"float": float_fwd, "int": lambda: int_model.forward_layers(pixels)}, args.reps)
        print(f"spiking MLP (hidden {args.hidden}, T {args.time_steps}, batch {batch}): float "
              f"{med['float'] * 1e3:.1f} ms, integer forward_layers {med['int'] * 1e3:.1f} ms, "
              f"ratio int/float speed {med['float'] / med['int']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
