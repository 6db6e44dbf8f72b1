"""cocotb stream verification components: driver, monitor, in-order checker.

Signals follow Amaranth's flattening of a ``lib.stream`` member called NAME:
``NAME__valid``, ``NAME__ready`` and ``NAME__payload`` (the packed layout).

Timing discipline (simulator independent): once per cycle, at the *falling*
edge, the driver and the monitor write their outputs (valid/payload, ready);
then, after ``ReadOnly`` (every combinational path, such as a ready that
depends on a downstream ready, has settled), each decides whether a handshake
happens on the next rising edge. No value is read in a delta in which it may
still change. One loop serves both, so a cycle costs two trigger waits.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

CLOCK_PERIOD_NS = 10

#: the gap sources a bench can draw valid/ready from: Python's ``random.Random`` (the default)
#: or the xorshift32 generator the bulk wrapper (``sim/bulk.py``) implements in hardware
GAP_SOURCES = ("random", "xorshift")


def _mix32(x: int) -> int:
    """A 32-bit finaliser (MurmurHash3 fmix32): spreads consecutive seeds over the state space."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def xorshift_seed(seed: int, stream: int) -> int:
    """Initial state of gap generator ``stream`` (0: input valid, 1: output ready) for ``seed``.

    ``s0 = fmix32(seed * 2 + stream)``, with 0 (the one state xorshift never leaves) replaced by 1.
    Mixing keeps the valid and ready sequences of one seed (and of seeds 1, 2, ...) unrelated,
    which a raw xorshift of consecutive seeds would not be.
    """
    if seed < 0:
        raise ValueError(f"a gap seed must be >= 0, got {seed}")
    return _mix32(seed * 2 + stream) or 1


def xorshift_threshold(prob: float) -> int:
    """``round(p * 2^16)``, 0 .. 65536: a cycle is a hit when the state's top 16 bits are below it."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"a gap probability must be in [0, 1], got {prob}")
    return int(round(prob * 65536))


class XorshiftGaps:
    """Marsaglia's xorshift32 as a per-cycle coin, exactly as the bulk wrapper computes it in Verilog.

    Cycle c is a hit when ``(s_c >> 16) < T`` with ``T = xorshift_threshold(p)``, and
    ``s_{c+1} = xs(s_c)`` with ``x ^= x << 13; x ^= x >> 17; x ^= x << 5`` (32 bits), ``s_0 =
    xorshift_seed(seed, stream)``. The state advances on every cycle whether or not the coin
    is used, so the sequence depends on the cycle number only (the hardware has no other clock).
    """

    def __init__(self, seed: int, stream: int, prob: float):
        self.state = xorshift_seed(seed, stream)
        self.threshold = xorshift_threshold(prob)

    @staticmethod
    def step(x: int) -> int:
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        return x

    def __call__(self) -> bool:
        hit = (self.state >> 16) < self.threshold
        self.state = self.step(self.state)
        return hit


class StreamDriver:
    """Presents ``words`` on stream ``name`` in order, with seeded random valid gaps.

    ``present()`` runs after the falling edge (writes valid/payload), ``observe(cycle)``
    in ReadOnly (a beat is taken when valid and ready are both high).
    """

    def __init__(self, dut, name: str, words: list[int], *, seed: int, valid_prob: float,
                 gaps: Callable[[], bool] | None = None):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.words, self.rng, self.valid_prob = words, random.Random(seed), valid_prob
        # gaps: a per-cycle coin (e.g. XorshiftGaps) drawn on every cycle instead of rng
        self.gaps = gaps
        self.sent = 0
        self.showing = False
        self.accept_cycles: list[int] = []

    @property
    def done(self) -> bool:
        return self.sent >= len(self.words)

    def present(self):
        if self.gaps is not None:
            hit = self.gaps()  # drawn every cycle, as the hardware generator advances
            self.showing = hit and not self.done
        else:
            self.showing = not self.done and self.rng.random() < self.valid_prob
        self.valid.value = int(self.showing)
        if self.showing:
            self.payload.value = self.words[self.sent]

    def observe(self, cycle: int):
        if self.showing and int(self.ready.value):
            self.accept_cycles.append(cycle)
            self.sent += 1


class StreamMonitor:
    """Takes beats from stream ``name`` with seeded random back-pressure; calls ``on_beat(bits)``."""

    def __init__(self, dut, name: str, *, seed: int, ready_prob: float, on_beat: Callable[[int], None],
                 gaps: Callable[[], bool] | None = None):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.rng, self.ready_prob, self.on_beat = random.Random(seed), ready_prob, on_beat
        self.gaps = gaps
        self.taking = False
        self.output_cycles: list[int] = []  # always kept: the result reports the last one

    def present(self):
        self.taking = self.gaps() if self.gaps is not None else self.rng.random() < self.ready_prob
        self.ready.value = int(self.taking)

    def observe(self, cycle: int):
        if self.taking and int(self.valid.value):
            self.output_cycles.append(cycle)
            self.on_beat(self.payload.value.to_unsigned())


@dataclass
class InOrderChecker:
    """Compares each observed beat with the next expected one; counts every differing beat.

    The first few differences are kept as (beat index, got bits, expected bits or
    None for an extra beat) so the launcher can decode them with the layout.
    """

    expected: list[int]
    received: int = 0
    errors: int = 0
    first_errors: list = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.received >= len(self.expected)

    def check(self, bits: int):
        if self.received >= len(self.expected):
            self.errors += 1
            if len(self.first_errors) < 5:
                self.first_errors.append([self.received, hex(bits), None])
        elif bits != self.expected[self.received]:
            self.errors += 1
            if len(self.first_errors) < 5:
                self.first_errors.append([self.received, hex(bits), hex(self.expected[self.received])])
        self.received += 1


@dataclass
class BenchResult:
    """What a stream co-simulation measured; written as JSON for the pytest side."""

    beats_in: int
    beats_expected: int
    beats_checked: int
    mismatches: int
    cycles: int             # cycles from reset release to the last output beat, inclusive
    simulated_cycles: int   # every cycle simulated during the wall-clock interval
    wall_seconds: float
    first_errors: list      # [beat index, got (hex), expected (hex) or None], at most 5
    missing: int            # expected beats that never arrived
    accept_cycles: list[int]
    output_cycles: list[int]
    first_error_cycles: list[int] = field(default_factory=list)  # the cycle of each first_errors entry

    @property
    def cycles_per_second(self) -> float:
        return self.simulated_cycles / self.wall_seconds if self.wall_seconds > 0 else float("inf")


@dataclass
class BenchConfig:
    """Per-run settings passed from the pytest / CLI side in an environment variable.

    ``stimulus`` is a JSON file {"inputs": [hex words], "expected": [hex words]}
    that the launcher derived from a golden vector file through the block's
    stream layouts; the bench itself imports neither torch nor Amaranth, so the
    simulator starts in well under a second.
    """

    stimulus: str
    result: str
    seed: int = 1
    valid_prob: float = 0.75
    ready_prob: float = 0.75
    keep_cycles: bool = False
    #: "random" (Python's random.Random(seed), seed + 1) or "xorshift" (XorshiftGaps(seed, 0 / 1):
    #: the sequence the bulk wrapper draws in hardware, for the cross-check of the two paths)
    gaps: str = "random"
    #: the run's cycle limit (None: 4 mean gaps per beat + 1000, see run_stream_bench); a block that
    #: spends several cycles per beat (a synapse spike: G) needs more on long runs
    timeout_cycles: int | None = None

    ENV = "SPIKEFORGE_BENCH"

    def to_env(self) -> dict[str, str]:
        return {self.ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls) -> "BenchConfig":
        raw = os.environ.get(cls.ENV)
        if not raw:
            raise RuntimeError(f"{cls.ENV} is not set: run this testbench through sim.harness")
        return cls(**json.loads(raw))


def load_stimulus(path: str) -> tuple[list[int], list[int]]:
    with open(path) as f:
        data = json.load(f)
    return [int(w, 16) for w in data["inputs"]], [int(w, 16) for w in data["expected"]]


def save_stimulus(path, words_in: list[int], expected: list[int]) -> None:
    with open(path, "w") as f:
        json.dump({"inputs": [hex(w) for w in words_in], "expected": [hex(w) for w in expected]}, f)


async def run_stream_bench(dut, config: BenchConfig, words_in: list[int], expected: list[int], *,
                           in_name: str = "i_stream", out_name: str = "o_stream",
                           timeout_cycles: int | None = None) -> BenchResult:
    """Reset the DUT, stream ``words_in`` through it and check every output beat in order.

    Writes the ``BenchResult`` JSON to ``config.result`` and returns it; the
    caller ends the cocotb test with one assertion on ``mismatches``.
    """
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    getattr(dut, f"{in_name}__valid").value = 0
    getattr(dut, f"{out_name}__ready").value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    checker = InOrderChecker(expected)
    if config.gaps not in GAP_SOURCES:
        raise ValueError(f"BenchConfig.gaps = {config.gaps!r}; allowed: {', '.join(GAP_SOURCES)}")
    xorshift = config.gaps == "xorshift"
    driver = StreamDriver(dut, in_name, words_in, seed=config.seed, valid_prob=config.valid_prob,
                          gaps=XorshiftGaps(config.seed, 0, config.valid_prob) if xorshift else None)
    monitor = StreamMonitor(dut, out_name, seed=config.seed + 1, ready_prob=config.ready_prob,
                            on_beat=checker.check,
                            gaps=XorshiftGaps(config.seed, 1, config.ready_prob) if xorshift else None)
    if timeout_cycles is None:
        timeout_cycles = config.timeout_cycles
    if timeout_cycles is None:
        gaps = 1.0 / max(1e-3, min(config.valid_prob, config.ready_prob))
        timeout_cycles = int(4 * gaps * (len(words_in) + len(expected))) + 1000
    # One loop acts for driver, monitor and cycle counter: two trigger waits per cycle in all.
    # A few cycles after the last expected beat catch beats the design must not produce.
    start = time.perf_counter()
    cycle, drain = 0, 8
    while cycle < timeout_cycles and drain > 0:
        await FallingEdge(dut.clk)
        driver.present()
        monitor.present()
        await ReadOnly()
        driver.observe(cycle)
        monitor.observe(cycle)
        cycle += 1
        if checker.done and driver.done:
            drain -= 1
    wall = time.perf_counter() - start
    await FallingEdge(dut.clk)
    getattr(dut, f"{in_name}__valid").value = 0
    missing = max(0, len(expected) - checker.received)
    checker.errors += missing
    result = BenchResult(
        beats_in=len(words_in), beats_expected=len(expected), beats_checked=checker.received,
        mismatches=checker.errors,
        cycles=monitor.output_cycles[-1] + 1 if monitor.output_cycles else 0,
        simulated_cycles=cycle, wall_seconds=wall,
        first_errors=checker.first_errors, missing=missing,
        first_error_cycles=[monitor.output_cycles[i] for i, _, _ in checker.first_errors],
        accept_cycles=driver.accept_cycles if config.keep_cycles else [],
        output_cycles=monitor.output_cycles if config.keep_cycles else [])
    with open(config.result, "w") as f:
        json.dump(asdict(result), f)
    return result
