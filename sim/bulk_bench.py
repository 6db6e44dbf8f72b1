"""The cocotb entry point of a bulk co-simulation (``sim.bulk.bulk_cosim``).

Python does three things here and nothing per cycle: hold reset for a few cycles, wait for
``bulk_top.done`` and read its counters into the result JSON; the verdict is one assertion on
the mismatch count. The clock runs inside the simulator (``always #5 clk = ~clk`` under
Verilator's ``--timing``): cocotb 2.1's default ``Clock`` is a Python coroutine woken on every
edge (its C++ ``impl="gpi"`` is used only with ``COCOTB_TRUST_INERTIAL_WRITES``), and even the
GPI clock costs a VPI timer callback and a ``vpi_put_value`` per edge; measured on the default
LIF array, Python clock ~30k, GPI clock ~0.4-0.8M, in-simulator clock 1-3M cycles/s
(``bench/bench_bulk_sim.py``).
"""

import json
import os
import time
from dataclasses import asdict, dataclass

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge


@dataclass
class BulkConfig:
    """Settings of one bulk run (the cocotb module reads them from an environment variable)."""

    result: str
    reset_cycles: int = 3
    #: "internal" (the wrapper's own clock), or "gpi" / "py": cocotb's Clock drives bulk_top.clk
    clock: str = "internal"
    ENV = "SPIKEFORGE_BULK"

    def to_env(self) -> dict[str, str]:
        return {self.ENV: json.dumps({"result": self.result, "reset_cycles": self.reset_cycles,
                                      "clock": self.clock})}

    @classmethod
    def from_env(cls) -> "BulkConfig":
        raw = os.environ.get(cls.ENV)
        if not raw:
            raise RuntimeError(f"{cls.ENV} is not set: run this testbench through sim.bulk.bulk_cosim")
        return cls(**json.loads(raw))


@dataclass
class BulkResult:
    """What a bulk run measured (the counters of ``bulk_top``), plus the bench's timing."""

    beats_in: int
    beats_expected: int
    beats_accepted: int
    beats_checked: int
    mismatches: int         # differing or extra beats, plus expected beats that never arrived
    missing: int
    cycles: int             # cycles from cycle 0 to the last output beat, inclusive
    simulated_cycles: int   # cycles of the run (to `done`)
    wall_seconds: float     # reset release to `done`
    first_mismatch: dict | None  # {"beat", "cycle", "got", "expected" (hex or None: extra beat)}
    timed_out: bool         # ended by the timeout or a stall with beats still to come
    stalled: bool = False   # ended after `stalled_cycles` cycles without a handshake
    stalled_cycles: int = 0

    @property
    def cycles_per_second(self) -> float:
        return self.simulated_cycles / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def _int(handle) -> int:
    return int(handle.value)


async def run_bulk(dut, config: BulkConfig) -> BulkResult:
    if config.clock != "internal":
        from cocotb.clock import Clock

        Clock(dut.clk, 10, unit="ns", impl=config.clock).start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, config.reset_cycles)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    start = time.perf_counter()
    await RisingEdge(dut.done)
    wall = time.perf_counter() - start
    n_in, n_out = _int(dut.n_in), _int(dut.n_out)
    received, simulated = _int(dut.r_received), _int(dut.r_cycles)
    missing = max(0, n_out - received)
    stalled = bool(_int(dut.r_stalled))
    first = None
    if _int(dut.r_have_bad):
        extra = bool(_int(dut.r_bad_extra))
        first = {"beat": _int(dut.r_bad_beat), "cycle": _int(dut.r_bad_cycle), "got": hex(_int(dut.r_bad_got)),
                 "expected": None if extra else hex(_int(dut.r_bad_exp))}
    result = BulkResult(
        beats_in=n_in, beats_expected=n_out, beats_accepted=_int(dut.r_sent), beats_checked=received,
        mismatches=_int(dut.r_mismatches) + missing, missing=missing,
        cycles=_int(dut.r_last_out) + 1 if _int(dut.r_any_out) else 0,
        simulated_cycles=simulated, wall_seconds=wall, first_mismatch=first,
        timed_out=(simulated >= _int(dut.timeout) or stalled) and (missing > 0 or _int(dut.r_sent) < n_in),
        stalled=stalled, stalled_cycles=_int(dut.stall) if stalled else 0)
    await FallingEdge(dut.clk)  # let the wrapper close its cycle log
    with open(config.result, "w") as f:
        json.dump(asdict(result), f)
    return result


@cocotb.test()
async def bulk_matches_golden(dut):
    result = await run_bulk(dut, BulkConfig.from_env())
    assert result.mismatches == 0, f"{result.mismatches} mismatching or missing beats; first: {result.first_mismatch}"
