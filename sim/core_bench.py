"""The cocotb test of the neuromorphic core under Verilator: samples in, every tap checked.

Driver + monitor from ``sim.streams`` (seeded random valid gaps on the input, random
back-pressure on the output) + a checker that splits the output beats by (op, tap kind)
and compares each substream with the golden words in order (the core's two output FIFOs
interleave the substreams in an order that depends on the back-pressure; within one
substream the order is fixed). Status beats carry the core's cycle count of each sample; activity
beats (one per op and sample) its activity counters, checked like any tap and kept for the energy.

Speed: while the core computes and neither stream can hand over a beat (no output valid,
no input ready), the bench sleeps on the value change of those signals instead of waking
every cycle; every cycle in which a handshake is possible is still decided at its falling
edge + ReadOnly, as in the block benches. Like them it imports neither torch nor Amaranth.
"""

from __future__ import annotations

import json
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from sim.streams import CLOCK_PERIOD_NS, BenchConfig, StreamDriver, StreamMonitor

LOGITS, STATUS, ACTIVITY = 4, 5, 6


class TapChecker:
    """Per-substream in-order comparison; keeps the first difference of every substream."""

    def __init__(self, expected: dict[str, list[int]], data_width: int):
        self.expected = expected
        self.data_width, self.mask = data_width, (1 << data_width) - 1
        self.position = {key: 0 for key in expected}
        self.errors = 0
        self.first = {}
        self.status: list[int] = []
        self.extra: dict[str, int] = {}
        self.beats = 0
        self.logits: list[str] = []
        self.activity: list[list] = []      # [op, data hex] of every activity beat, in order

    def check(self, word: int, cycle: int):
        self.beats += 1
        data = word & self.mask
        kind = (word >> self.data_width) & 7
        tap = word >> (self.data_width + 3)
        if kind == STATUS:
            self.status.append(data)
            return
        key = f"{tap}:{kind}"
        if kind == LOGITS:
            self.logits.append(hex(data))
        elif kind == ACTIVITY:
            self.activity.append([tap, hex(data)])
        want = self.expected.get(key)
        n = self.position.get(key, 0)
        if want is None or n >= len(want):
            self.errors += 1
            self.extra[key] = self.extra.get(key, 0) + 1
        elif want[n] != data:
            self.errors += 1
            self.first.setdefault(key, [n, cycle, hex(data), hex(want[n])])
        self.position[key] = n + 1

    def missing(self) -> int:
        return sum(max(0, len(w) - self.position.get(k, 0)) for k, w in self.expected.items())


@cocotb.test()
async def core_matches_golden(dut):
    config = BenchConfig.from_env()
    with open(config.stimulus) as f:
        stim = json.load(f)
    words_in = [int(w, 16) for w in stim["inputs"]]
    expected = {k: [int(w, 16) for w in v] for k, v in stim["expected"].items()}
    samples = stim["samples"]

    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.i_stream__valid.value = 0
    dut.o_stream__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    checker = TapChecker(expected, stim["data_width"])
    driver = StreamDriver(dut, "i_stream", words_in, seed=config.seed, valid_prob=config.valid_prob)
    cycle_now = lambda: int(get_sim_time(unit="ns") // CLOCK_PERIOD_NS)  # noqa: E731
    monitor = StreamMonitor(dut, "o_stream", seed=config.seed + 1, ready_prob=config.ready_prob,
                            on_beat=lambda w: checker.check(w, cycle_now()))
    limit = int(stim.get("timeout_cycles", 10_000_000))
    start = time.perf_counter()
    start_cycle = cycle_now()
    drain = 8
    woken = 0
    while drain > 0 and cycle_now() - start_cycle < limit:
        await FallingEdge(dut.clk)
        driver.present()
        monitor.present()
        await ReadOnly()
        cycle = cycle_now()
        driver.observe(cycle)
        monitor.observe(cycle)
        if driver.done and len(checker.status) >= samples:
            drain -= 1
            continue
        out_valid = int(dut.o_stream__valid.value)
        in_ready = int(dut.i_stream__ready.value)
        if not out_valid and (driver.done or not in_ready):
            # nothing can be handed over until one of these rises: let the simulator run
            triggers = [RisingEdge(dut.o_stream__valid)]
            if not driver.done:
                triggers.append(RisingEdge(dut.i_stream__ready))
            # (a Timer, not ClockCycles: that would wake Python on every edge it counts)
            await First(*triggers, Timer(limit * CLOCK_PERIOD_NS, unit="ns"))
            woken += 1
    wall = time.perf_counter() - start
    await FallingEdge(dut.clk)
    dut.i_stream__valid.value = 0
    missing = checker.missing()
    result = {
        "beats_in": len(words_in), "beats_out": checker.beats, "beats_expected": sum(len(v) for v in expected.values()),
        "mismatches": checker.errors + missing, "missing": missing, "first": checker.first, "extra": checker.extra,
        "status": checker.status, "simulated_cycles": cycle_now() - start_cycle, "wall_seconds": wall,
        "wakeups": woken, "logits": checker.logits, "activity": checker.activity,
    }
    with open(config.result, "w") as f:
        json.dump(result, f)
    assert result["mismatches"] == 0 and len(checker.status) == samples, (
        f"{result['mismatches']} mismatching or missing beats, {len(checker.status)} of {samples} samples: "
        f"{checker.first}")
