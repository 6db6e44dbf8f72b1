"""Synthesis started in several processes at once on a cold YoWASP cache (issue 15, part 5).

YoWASP compiles a tool on its first run and writes the machine code to one cache file in
place; a tool that starts once the file exists maps it and reads its code pages from it
lazily. Two cold first runs both compile and both write, and the second write truncates the
file under a tool that already maps it: that tool dies of SIGBUS mid-synthesis (seen in
``synth_ice40`` at "Executing Verilog-2005 frontend: /share/ice40/brams_map.v").
``synth.tools.warm_up`` serialises the first run with a file lock, so the file is written once.

Each test runs child processes with their own fresh ``YOWASP_CACHE_DIR`` (never the user's
cache) and counts the compilations: a compile shows in a tool's output as YoWASP's "Preparing
to run" note, or in the child's log as the warm-up's "YoWASP compiled" line. Before the lock,
every child compiled (and wrote the file); now exactly one does.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth import tools

ROOT = Path(__file__).resolve().parent.parent

# a child: wait for the common start time, run the job, print one JSON line
CHILD = r"""
import json, logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
start, job, out = float(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
while time.time() < start:
    time.sleep(0.005)
if job == "nextpnr":
    from synth import tools
    proc = tools.run_tool("nextpnr-ice40", ["--version"], out, "tool.out")
    print(json.dumps({"ok": proc.returncode == 0, "message": proc.stderr[-300:]}))
else:
    from golden.lif import LIFSpec
    from spikeforge.blocks import get_block
    from synth.flow import synthesize
    from synth.run import block_verilog
    block = get_block("lif")
    verilog = block_verilog(block, LIFSpec(n_neurons=512, lanes=1))
    try:
        report = synthesize(verilog, block.toplevel, "ice40", use_cache=False, keep_dir=out)
        print(json.dumps({"ok": report.status == "ok", "message": report.message, "bram": report.bram}))
    except Exception as exc:
        print(json.dumps({"ok": False, "message": f"{type(exc).__name__}: {exc}"}))
"""


def _run_at_once(job: str, n: int, tmp_path: Path, timeout: float) -> tuple[list[dict], int]:
    """Start ``n`` children at the same instant on one fresh YoWASP cache; return their
    results and how many times the tool was compiled in all."""
    env = dict(__import__("os").environ, YOWASP_CACHE_DIR=str(tmp_path / "yowasp"),
               SPIKEFORGE_CACHE=str(tmp_path / "spikeforge"))
    start = time.time() + 3.0  # all children are up (imports done) before it
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(start), job, str(tmp_path / f"run{i}")],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    results, compiles = [], 0
    for i, proc in enumerate(procs):
        out, err = proc.communicate(timeout=timeout)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"ok": False, "message": f"rc {proc.returncode}: {err[-500:]}"}
        results.append(result)
        compiles += err.count("YoWASP compiled")
        for f in (tmp_path / f"run{i}").glob("*.out"):
            compiles += f.read_text().count(tools.COMPILE_NOTE)
    return results, compiles


def test_first_runs_of_a_tool_at_once_compile_it_once(tmp_path):
    # nextpnr-ice40 compiles in ~5 s: three cold first runs at once overlap for certain
    results, compiles = _run_at_once("nextpnr", 3, tmp_path, timeout=300)
    assert all(r["ok"] for r in results), results
    assert compiles == 1, f"nextpnr-ice40 was compiled {compiles} times (each compile rewrites YoWASP's cache file)"
    assert (tmp_path / "yowasp" / "spikeforge-nextpnr-ice40.lock").is_file()


@pytest.mark.long
def test_two_synthesis_runs_at_once_on_a_cold_cache(tmp_path):
    # the case of the issue: two ice40 syntheses (declare + synth_ice40 each), yosys cold (~40 s
    # to compile alone; both compiling at once on two shared cores, over a minute)
    results, compiles = _run_at_once("synth", 2, tmp_path, timeout=1200)
    assert all(r["ok"] for r in results), results
    assert all(r["bram"] > 0 for r in results)
    assert compiles == 1, f"yosys was compiled {compiles} times (each compile rewrites YoWASP's cache file)"


def test_a_tool_killed_by_a_signal_is_reported_by_name(tmp_path, monkeypatch):
    # what the race did to yosys: the error names the signal, not the tool's last log line
    from synth.flow import SynthError, synthesize

    fake = tmp_path / "yosys"
    fake.write_text("#!/bin/sh\necho 'Executing Verilog-2005 frontend: /share/ice40/brams_map.v'\nkill -BUS $$\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SPIKEFORGE_YOSYS", str(fake))
    monkeypatch.setenv("SPIKEFORGE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SynthError, match="yosys failed on declare: ERROR: yosys was killed by SIGBUS"):
        synthesize("module t(input a, output b); assign b = a; endmodule\n", "t", "ice40", use_cache=False)
