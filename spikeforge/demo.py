"""``spikeforge demo`` and ``spikeforge check``: golden vectors -> Verilator -> bit-exact report."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from golden.vectors import load_vectors, save_vectors

from .blocks import Block, get_block


@dataclass
class CheckReport:
    block: str
    spec: dict
    work: int
    unit: str
    beats: int
    mismatches: int
    cycles: int
    simulated_cycles: int
    sim_seconds: float
    build_cached: bool
    details: str

    @property
    def cycles_per_second(self) -> float:
        return self.simulated_cycles / self.sim_seconds if self.sim_seconds > 0 else float("inf")

    def text(self) -> str:
        config = ", ".join(f"{k}={v}" for k, v in self.spec.items())
        lines = [
            f"[{self.block}] {config}",
            f"  vectors checked : {self.work} {self.unit} in {self.beats} output beats",
            f"  mismatches      : {self.mismatches}",
            f"  cycles          : {self.cycles} (random valid/ready gaps on both streams)",
            f"  simulated speed : {self.cycles_per_second:,.0f} cycles/s under Verilator + cocotb"
            f" (build {'reused from cache' if self.build_cached else 'compiled'})",
        ]
        if self.details:
            lines.append("  first differences:\n    " + self.details.replace("\n", "\n    "))
        return "\n".join(lines)


@dataclass
class BulkCheckReport:
    """``spikeforge check`` through the bulk path (``sim.bulk``): counts, speed, the first failure."""

    block: str
    spec: dict
    source: str          # where the vectors came from
    beats_in: int        # input beats streamed ("vectors" for --count)
    work: int
    unit: str
    beats: int           # output beats checked
    mismatches: int
    cycles: int
    simulated_cycles: int
    sim_seconds: float
    build_cached: bool
    gaps: str
    prepare_seconds: float   # vectors -> golden -> stream words
    run_seconds: float       # build (or cache) + simulator, as the launcher saw it
    details: str = ""
    waves: str | None = None

    @property
    def cycles_per_second(self) -> float:
        return self.simulated_cycles / self.sim_seconds if self.sim_seconds > 0 else float("inf")

    def text(self) -> str:
        config = ", ".join(f"{k}={v}" for k, v in self.spec.items())
        lines = [
            f"[{self.block}] {config}",
            f"  vectors         : {self.beats_in} input beats ({self.source}); {self.work} {self.unit}",
            f"  beats checked   : {self.beats} output beats",
            f"  mismatches      : {self.mismatches}",
            f"  cycles          : {self.cycles} ({self.gaps})",
            f"  simulated speed : {self.cycles_per_second:,.0f} cycles/s under Verilator, bulk path (stimulus, "
            f"gaps and checker in the simulator; build {'reused from cache' if self.build_cached else 'compiled'})",
            f"  wall time       : {self.prepare_seconds:.1f} s vectors + golden, {self.run_seconds:.1f} s build + "
            f"simulation",
        ]
        if self.details:
            lines.append("  " + self.details.replace("\n", "\n  "))
        elif self.waves:
            lines.append(f"  waves: {self.waves}")
        return "\n".join(lines)


def bulk_check(block: Block, vectors, *, source: str, seed: int = 1, valid_prob: float = 0.75,
               ready_prob: float = 0.75, waves: str | Path | None = None, waves_window: int | None = 1000,
               workdir: Path | None = None, prepare_seconds: float = 0.0) -> BulkCheckReport:
    """Co-simulate ``block`` on an in-memory ``VectorSet`` through the bulk path (``sim.bulk``).

    The stream words come from ``sim.bulk_streams`` (the block's beat functions where it has no
    converter); gaps are the wrapper's xorshift32 generators seeded with ``seed``. ``waves`` also
    writes a VCD / FST file (a window of +- ``waves_window`` cycles around the first mismatch, the
    first ``waves_window`` cycles of a passing run, or the whole run with None).
    """
    from sim.bulk import bulk_cosim
    from sim.bulk_streams import stream_words

    start = time.perf_counter()
    spec = block.spec_cls.from_dict(vectors.spec)
    component = block.component(spec)
    spec, words_in, words_out, _ = stream_words(block, vectors, component)
    work, unit = block.work_done(vectors)
    prepare_seconds += time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="spikeforge-bulk-") as tmp:
        run_dir = Path(workdir) if workdir else Path(tmp)
        report = bulk_cosim(component, block.toplevel, words_in, words_out, run_dir, in_name=block.in_name,
                            out_name=block.out_name, seed=seed, valid_prob=valid_prob, ready_prob=ready_prob,
                            waves=waves, waves_window=waves_window)
    r = report.result
    return BulkCheckReport(block.name, spec.to_dict(), source, r.beats_in, work, unit, r.beats_checked,
                           r.mismatches, r.cycles, r.simulated_cycles, r.wall_seconds, report.build.cached,
                           f"xorshift32 valid/ready gaps, p = {valid_prob} / {ready_prob}, seed {seed}",
                           prepare_seconds, report.total_seconds, report.explain() if r.mismatches else "",
                           str(report.waves) if report.waves else None)


def check_count(block: Block, count: int, *, spec=None, vector_seed: int = 0, **options) -> BulkCheckReport:
    """``spikeforge check BLOCK --count N``: N input beats of seeded random plus adversarial vectors
    (``sim.adversarial``) for ``spec`` (default: the block's), answered by the golden model and
    checked through the bulk path. ``options`` go to ``bulk_check``."""
    from sim import adversarial

    start = time.perf_counter()
    spec = spec if spec is not None else block.default_spec()
    vectors = adversarial.vectors(block, spec, count, seed=vector_seed)
    source = f"--count {count}: seeded random + adversarial, vector seed {vector_seed}"
    return bulk_check(block, vectors, source=source, prepare_seconds=time.perf_counter() - start, **options)


def check_vectors(block: Block, directory: Path, *, seed: int = 1, valid_prob: float = 0.75,
                  ready_prob: float = 0.75, workdir: Path | None = None, waves: str | Path | None = None,
                  waves_window: int | None = 1000):
    """Co-simulate ``block`` against the vector directory; every output beat must match.

    The per-cycle bench (``sim.streams``) runs it; with ``waves`` the bulk path does (its tracing
    build writes the wave file) and a ``BulkCheckReport`` comes back.
    """
    from sim.harness import cosim

    if waves is not None:
        start = time.perf_counter()
        vectors = load_vectors(directory, block=block.name)
        return bulk_check(block, vectors, source=f"--vectors {directory}", seed=seed, valid_prob=valid_prob,
                          ready_prob=ready_prob, waves=waves, waves_window=waves_window, workdir=workdir,
                          prepare_seconds=time.perf_counter() - start)
    vectors = load_vectors(directory, block=block.name)
    spec, inputs, expected = block.stream_from_vectors(vectors)
    work, unit = block.work_done(vectors)
    with tempfile.TemporaryDirectory(prefix="spikeforge-") as tmp:
        run_dir = Path(workdir) if workdir else Path(tmp)
        report = cosim(block.component(spec), block.toplevel, inputs, expected, run_dir,
                       in_name=block.in_name, out_name=block.out_name, seed=seed,
                       valid_prob=valid_prob, ready_prob=ready_prob,
                       timeout_cycles=block.cosim_timeout(spec, len(inputs), len(expected), valid_prob, ready_prob))
    r = report.result
    return CheckReport(block.name, spec.to_dict(), work, unit, r.beats_checked, r.mismatches, r.cycles,
                       r.simulated_cycles, r.wall_seconds, report.build.cached,
                       report.explain() if r.mismatches else "")


def run_demo(names: list[str], *, seed: int = 0, workdir: str | None = None, core: str | None = "spiking-mlp",
             core_samples: int = 64) -> int:
    """For each block: default spec -> golden vectors -> Verilator build -> co-simulation -> report;
    then a shipped trained model on the core (``core``; None skips it)."""
    print("Spikeforge demo: golden integer model vs generated RTL under Verilator, bit for bit\n")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="spikeforge-demo-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        for name in names:
            block = get_block(name)
            spec = block.default_spec()
            start = time.perf_counter()
            arrays = block.make_vectors(spec, seed, **block.demo_vector_options)
            vec_dir = save_vectors(root / name / "vectors", block.name, spec.to_dict(), seed, arrays,
                                   meta=block.demo_vector_options)
            report = check_vectors(block, vec_dir, seed=seed + 1, workdir=root / name / "run")
            print(report.text())
            print(f"  wall time       : {time.perf_counter() - start:.1f} s (vectors, build, simulation)\n")
            failures += report.mismatches != 0
    core_ok = True
    if core is not None:
        from .core import load_core_model, run_core

        start = time.perf_counter()
        print(f"Trained model on the neuromorphic core: {core} (sim/data/core), {core_samples} held-out samples")
        report = run_core(load_core_model(core), core_samples, seed=seed + 1)
        print(report.text())
        print(f"  wall time        : {time.perf_counter() - start:.1f} s (compile, build, simulation)\n")
        core_ok = (report.mismatches == 0 and report.cycles_match
                   and report.hardware_accuracy == report.integer_accuracy)
    print("RESULT: all blocks bit-exact" if failures == 0 else f"RESULT: {failures} block(s) MISMATCH")
    if core is not None:
        print(f"RESULT: {core} on the core " + ("bit-exact, cycles as predicted" if core_ok else "MISMATCH"))
    return 0 if failures == 0 and core_ok else 1
