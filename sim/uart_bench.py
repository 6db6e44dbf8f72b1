"""cocotb bench of the board top (``synth.boards.top.UARTBlockTop``): a host UART on the testbench side.

The launcher (``sim/test_board.py``) prepares the request frames with the host
driver's own framing code and says how many reply bytes each one must produce.
This bench plays the host: it sends each frame bit by bit on ``rx`` (8N1 at
``divisor`` clock cycles per bit), receives every byte the board sends on
``tx`` (sampled mid-bit), waits for the reply to a request before sending the
next, and writes all replies to the result JSON for the launcher to decode and
compare with golden. Like ``stream_bench`` it imports neither torch nor Amaranth.
"""

import json
import os
import time
from dataclasses import asdict, dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

CLOCK_PERIOD_NS = 10


@dataclass
class UartBenchConfig:
    stimulus: str   # JSON: {"divisor": int, "requests": [{"frame": hex, "reply_len": int}]}
    result: str

    ENV = "SPIKEFORGE_UART_BENCH"

    def to_env(self) -> dict:
        return {self.ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls) -> "UartBenchConfig":
        raw = os.environ.get(cls.ENV)
        if not raw:
            raise RuntimeError(f"{cls.ENV} is not set: run this bench through sim.harness.run_bench")
        return cls(**json.loads(raw))


@dataclass
class UartBenchResult:
    replies: list        # hex bytes the board sent after each request
    cycles: int
    wall_seconds: float
    framing_errors: int  # received bytes whose stop bit was 0


async def uart_send(dut, divisor: int, value: int):
    for bit in [0] + [(value >> k) & 1 for k in range(8)] + [1]:
        dut.rx.value = bit
        await ClockCycles(dut.clk, divisor)


async def uart_receive(dut, divisor: int, sink: bytearray, errors: list):
    while True:
        await FallingEdge(dut.tx)
        await ClockCycles(dut.clk, divisor // 2)
        await ReadOnly()
        if int(dut.tx.value) != 0:
            continue  # a glitch, not a start bit
        value = 0
        for k in range(8):
            await ClockCycles(dut.clk, divisor)
            await ReadOnly()
            value |= int(dut.tx.value) << k
        await ClockCycles(dut.clk, divisor)
        await ReadOnly()
        if int(dut.tx.value) != 1:
            errors.append(len(sink))
        sink.append(value)


@cocotb.test()
async def board_uart_round_trip(dut):
    config = UartBenchConfig.from_env()
    with open(config.stimulus) as f:
        stimulus = json.load(f)
    divisor = stimulus["divisor"]
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    received = bytearray()
    errors: list = []
    cocotb.start_soon(uart_receive(dut, divisor, received, errors))
    start = time.perf_counter()
    cycles = 0
    byte_time = 10 * divisor
    replies = []
    for request in stimulus["requests"]:
        first = len(received)
        for value in bytes.fromhex(request["frame"]):
            await uart_send(dut, divisor, value)
            cycles += byte_time
        waited = 0
        # the reply may lag the request by the block's work; allow 4 byte times per byte plus slack
        limit = (request["reply_len"] * 4 + 64) * byte_time
        while len(received) - first < request["reply_len"] and waited < limit:
            await ClockCycles(dut.clk, divisor)
            waited += divisor
        await ClockCycles(dut.clk, 3 * byte_time)  # catch any byte beyond the expected reply
        cycles += waited + 3 * byte_time
        replies.append(bytes(received[first:]).hex())
    result = UartBenchResult(replies, cycles, time.perf_counter() - start, len(errors))
    with open(config.result, "w") as f:
        json.dump(asdict(result), f)
    lengths = [len(r) // 2 for r in replies]
    wanted = [r["reply_len"] for r in stimulus["requests"]]
    assert lengths == wanted and not errors, f"reply lengths {lengths}, expected {wanted}; framing errors {errors}"
