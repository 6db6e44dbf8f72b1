"""Simulated cycles per second: the bulk co-simulation path vs the per-cycle cocotb bench, side by side.

For each block (default spec) the same random + adversarial vectors (``sim.adversarial``) and
the same xorshift valid/ready gaps run through

* the per-cycle bench (``sim.streams``: Python drives and samples every cycle -- today's path),
* the bulk path (``sim.bulk``: stimulus, gaps and checker in the simulator),

both bit-exact; the per-cycle run takes the first ``--per-cycle-beats`` beats (at ~30k cycles/s a
million beats would take a minute per block), the bulk run all ``--count``. Rates are simulated
cycles over the wall time from reset release to the end of the run; the bulk column "with start"
also counts simulator start-up and ``$readmemh``. Builds happen before the timed runs.

``--ablation`` adds, on the LIF array, the steps between the two: the bulk wrapper with cocotb's
Python clock (cocotb 2.1's default ``Clock``), with its GPI (C++) clock, and with the internal
clock but every signal public (``--public-flat-rw``, as the per-cycle builds have it).

    python bench/bench_bulk_sim.py [--blocks lif mac ...] [--count 1000000] [--ablation]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sim import adversarial
from sim.bulk import bulk_cosim, ints_from_limbs
from sim.bulk_streams import stream_words
from sim.harness import build_component, cosim
from spikeforge.blocks import block_names, get_block


def measure(name: str, count: int, per_cycle_beats: int, root: Path, ablation: bool) -> list[str]:
    block = get_block(name)
    spec = block.default_spec()
    vectors = adversarial.vectors(block, spec, count, seed=0)
    component = block.component(spec)
    spec, words_in, words_out, _ = stream_words(block, vectors, component)
    kw = dict(in_name=block.in_name, out_name=block.out_name, seed=1, valid_prob=0.75, ready_prob=0.75)

    # the per-cycle bench on a prefix of the stream (whole output beats: the inputs that make them)
    n_in = min(len(words_in), per_cycle_beats)
    small = adversarial.vectors(block, spec, n_in, seed=0)
    _, small_in, small_out, _ = stream_words(block, small, component)
    build_component(component, block.toplevel)
    pc = cosim(component, block.toplevel, ints_from_limbs(small_in), ints_from_limbs(small_out), root / name / "pc",
               gaps="xorshift", timeout_cycles=64 * (len(small_in) + len(small_out)) + 1000, **kw)
    assert pc.mismatches == 0, pc.explain()
    bulk_cosim(component, block.toplevel, small_in, small_out, root / name / "warm", **kw)   # build outside
    start = time.perf_counter()
    bk = bulk_cosim(component, block.toplevel, words_in, words_out, root / name / "bulk", **kw)
    total = time.perf_counter() - start
    assert bk.mismatches == 0, bk.explain()
    p, b = pc.result, bk.result
    rows = [f"{name:8s} {p.simulated_cycles:>10,d} {p.cycles_per_second:>12,.0f}   {b.simulated_cycles:>11,d} "
            f"{b.cycles_per_second:>12,.0f} {b.simulated_cycles / total:>12,.0f}   "
            f"{b.cycles_per_second / p.cycles_per_second:>7.1f}x"]
    if ablation:
        for label, extra in (("  bulk, cocotb Python clock", {"clock": "py"}),
                             ("  bulk, cocotb GPI clock", {"clock": "gpi"}),
                             ("  bulk, --public-flat-rw", {"public_flat_rw": True})):
            n = len(words_in) if extra.get("clock") != "py" else min(len(words_in), 20 * per_cycle_beats)
            part_in = words_in[:n]
            part_out = words_out[:n] if len(words_out) == len(words_in) else words_out   # lif: 1 out per in
            bulk_cosim(component, block.toplevel, small_in, small_out, root / name / f"warm-{label}", **kw, **extra)
            r = bulk_cosim(component, block.toplevel, part_in, part_out, root / name / label.strip(), **kw,
                           **extra).result
            assert r.mismatches == 0
            rows.append(f"{label:28s} {r.simulated_cycles:>11,d} cycles {r.cycles_per_second:>12,.0f} cycles/s "
                        f"({r.cycles_per_second / p.cycles_per_second:.1f}x per-cycle)")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", nargs="+", default=block_names(), choices=block_names())
    parser.add_argument("--count", type=int, default=1_000_000, help="input beats of the bulk runs")
    parser.add_argument("--per-cycle-beats", type=int, default=20_000, help="input beats of the per-cycle runs")
    parser.add_argument("--ablation", action="store_true", help="also the clock / public variants on lif")
    args = parser.parse_args()
    print(f"{'block':8s} {'per-cycle':>10s} {'cycles/s':>12s}   {'bulk':>11s} {'cycles/s':>12s} "
          f"{'with start':>12s}   {'ratio':>7s}")
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        for name in args.blocks:
            for row in measure(name, args.count, args.per_cycle_beats, Path(tmp),
                               args.ablation and name == "lif"):
                print(row, flush=True)


if __name__ == "__main__":
    main()
