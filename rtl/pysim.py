"""Run a one-input, one-output stream component in Amaranth's own simulator.

This is the fast tier of every block's proof (``tests/``): the same golden
vectors as the Verilator co-simulation, driven with seeded random valid and
ready gaps, every output beat collected in order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.lib import wiring
from amaranth.sim import Simulator

from .streams import pack


@dataclass
class StreamRun:
    outputs: list[int]                # output payload bits, in order
    cycles: int                       # clock cycles simulated until the last output
    accept_cycles: list[int] = field(default_factory=list)  # cycle of each input handshake
    output_cycles: list[int] = field(default_factory=list)  # cycle of each output handshake


def run_stream(dut: wiring.Component, beats: list, n_outputs: int, *, in_name: str = "i_stream",
               out_name: str = "o_stream", seed: int = 0, valid_prob: float = 1.0,
               ready_prob: float = 1.0, max_cycles: int | None = None) -> StreamRun:
    """Drive ``beats`` (payload dicts or ints) into ``dut.<in_name>``, collect ``n_outputs`` beats.

    Cycle numbers count rising clock edges from 0; a handshake "in cycle c" is
    one where valid and ready are both high during cycle c, taking effect at
    the edge that ends it. ``valid_prob`` / ``ready_prob`` < 1 insert seeded
    random gaps on the input and back-pressure on the output.
    """
    i_stream, o_stream = getattr(dut, in_name), getattr(dut, out_name)
    in_layout = i_stream.payload.shape()
    words = [b if isinstance(b, int) else pack(in_layout, b) for b in beats]
    rng_in, rng_out = random.Random(seed), random.Random(seed + 1)
    limit = max_cycles if max_cycles is not None else 20 * (len(words) + n_outputs) + 100
    run = StreamRun(outputs=[], cycles=0)

    # Each testbench awaits exactly one tick per cycle, so its own tick count is the cycle number.
    async def driver(ctx):
        cycle = 0
        for word in words:
            while rng_in.random() >= valid_prob:
                await ctx.tick()
                cycle += 1
            ctx.set(i_stream.payload.as_value(), word)
            ctx.set(i_stream.valid, 1)
            while True:
                # sampled at the clock edge, after every testbench has set its inputs
                _, _, ready = await ctx.tick().sample(i_stream.ready)
                cycle += 1
                if ready:
                    run.accept_cycles.append(cycle - 1)
                    break
            ctx.set(i_stream.valid, 0)

    async def monitor(ctx):
        cycle = 0
        while len(run.outputs) < n_outputs:
            want = rng_out.random() < ready_prob
            ctx.set(o_stream.ready, int(want))
            _, _, valid, payload = await ctx.tick().sample(o_stream.valid, o_stream.payload.as_value())
            if valid and want:
                run.outputs.append(int(payload))
                run.output_cycles.append(cycle)
            cycle += 1
            if cycle > limit:
                raise TimeoutError(f"{type(dut).__name__}: only {len(run.outputs)} of {n_outputs} "
                                   f"outputs after {limit} cycles")
        ctx.set(o_stream.ready, 0)
        run.cycles = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(monitor)
    sim.run()
    return run


def read_weight_memory(memory, rows: int, groups: int) -> list[list[list[int]]]:
    """Read every word of a ``rtl.logmem.LogWeightMemory`` in Amaranth's simulator, one read a
    cycle (its full throughput): ``out[r][g]`` = the P effective weights of row r, group g, taken
    ``memory.latency`` cycles after the read was issued."""
    sim = Simulator(memory)
    sim.add_clock(1e-6)
    out = [[None] * groups for _ in range(rows)]
    order = [(r, g) for r in range(rows) for g in range(groups)]

    async def bench(ctx):
        for cycle in range(len(order) + memory.latency):
            if cycle < len(order):
                r, g = order[cycle]
                ctx.set(memory.rd_row, r)
                ctx.set(memory.rd_group, g)
            ctx.set(memory.rd_en, int(cycle < len(order)))
            done = cycle - memory.latency          # the read issued L cycles ago is on the output now
            if done >= 0:
                r, g = order[done]
                out[r][g] = [int(v) for v in ctx.get(memory.weights)]
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    return out
