"""Launcher of the core's Verilator co-simulation (``sim/core_bench.py``).

``cosim_core(spec, program, samples, workdir)`` runs the golden program on the samples,
turns every tap into the data words the core must emit, builds ``NeuroCore`` under
Verilator (cached), streams the samples in with random gaps and checks every beat. The
report names the first layer where a difference appears, the cycle counts the core
reported and the ones the formula predicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from golden.core.cycles import predict_cycles
from golden.core.execute import ProgramRun, run_program
from golden.core.program import CoreProgram, CoreSpec
from rtl.core import NeuroCore
from rtl.core.beats import TAP_NAMES, core_input_beats, expected_taps
from rtl.core.engine import tap_data_width
from rtl.core.top import core_input_layout
from rtl.streams import pack

from .harness import build_component, run_bench
from .streams import BenchConfig

TOPLEVEL = "spikeforge_core"


@dataclass
class CoreBenchResult:
    beats_in: int
    beats_out: int
    beats_expected: int
    mismatches: int
    missing: int
    first: dict
    extra: dict
    status: list
    simulated_cycles: int
    wall_seconds: float
    wakeups: int
    logits: list          # the logits words the core emitted, in order (hex)
    activity: list = field(default_factory=list)   # [op, data hex] of every activity beat, in order


@dataclass
class CoreCosimReport:
    result: CoreBenchResult
    spec: CoreSpec
    program: CoreProgram
    run: ProgramRun
    predicted_cycles: list[int]
    built_cached: bool
    samples: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def mismatches(self) -> int:
        return self.result.mismatches

    @property
    def cycles(self) -> list[int]:
        return list(self.result.status)

    @property
    def cycles_match(self) -> bool:
        return self.cycles == self.predicted_cycles

    @property
    def cycles_per_second(self) -> float:
        r = self.result
        return r.simulated_cycles / r.wall_seconds if r.wall_seconds > 0 else float("inf")

    def hardware_logits(self) -> torch.Tensor:
        """The logits as the core emitted them: (samples, out_rows, out_features) int64."""
        from amaranth import signed
        from amaranth.lib import data as adata

        from rtl.streams import unpack

        prog = self.program
        p = prog.lanes
        layout = adata.ArrayLayout(signed(self.spec.current_width), p)
        values = [v for w in self.result.logits for v in unpack(layout, int(w, 16))]
        padded = -(-prog.out_features // p) * p
        want = self.samples * prog.out_rows * padded
        if len(values) != want:
            raise ValueError(f"the core emitted {len(values)} logit values; {want} expected")
        out = torch.tensor(values, dtype=torch.int64).reshape(self.samples, prog.out_rows, padded)
        return out[..., :prog.out_features]

    def hardware_activity(self) -> dict:
        """op index -> ``OpActivity`` (cycles, events, spikes per sample) as the core's counters
        reported them (``rtl.core.beats.decode_activity``)."""
        from rtl.core.beats import decode_activity
        from rtl.core.engine import TAP_ACTIVITY

        taps: dict = {}
        for op, word in self.result.activity:
            taps.setdefault((int(op), TAP_ACTIVITY), []).append(int(word, 16))
        return decode_activity(self.spec, self.program, taps, self.samples)

    def first_mismatch(self) -> str:
        """The earliest op (in program order) with a difference, decoded: empty when bit-exact."""
        lines = []
        for key, (beat, cycle, got, want) in sorted(self.result.first.items(),
                                                   key=lambda kv: int(kv[0].split(":")[0])):
            op, kind = (int(x) for x in key.split(":"))
            lines.append(f"layer {self.program.ops[op].name} ({TAP_NAMES[kind]}): beat {beat} (cycle {cycle}) "
                         f"is {got}, expected {want}")
        for key, n in self.result.extra.items():
            op, kind = (int(x) for x in key.split(":"))
            name = self.program.ops[op].name if 0 <= op < len(self.program.ops) else f"op {op}"
            lines.append(f"layer {name} ({TAP_NAMES.get(kind, kind)}): {n} unexpected beat(s)")
        if self.result.missing:
            lines.append(f"{self.result.missing} expected beat(s) never arrived")
        return "\n".join(lines)


def cosim_core(spec: CoreSpec, program: CoreProgram, samples: torch.Tensor, workdir: Path, *, seed: int = 1,
               valid_prob: float = 0.75, ready_prob: float = 0.75) -> CoreCosimReport:
    """Co-simulate ``NeuroCore(spec, program)`` on ``samples`` under Verilator (module docstring)."""
    run = run_program(program, samples, current_width=spec.current_width)
    expected = expected_taps(spec, program, run)
    predicted = predict_cycles(program, spec, run).tolist()
    core = NeuroCore(spec, program)
    in_layout = core_input_layout(program)
    words_in = [pack(in_layout, b) for b in core_input_beats(program, samples)]
    built = build_component(core, TOPLEVEL)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stimulus = (workdir / "core_stimulus.json").resolve()
    n = int(samples.shape[0])
    stimulus.write_text(json.dumps({
        "inputs": [hex(w) for w in words_in],
        "expected": {f"{op}:{kind}": [hex(w) for w in words] for (op, kind), words in expected.items()},
        "data_width": tap_data_width(spec, program), "samples": n,
        "timeout_cycles": int(sum(predicted) * 4 / max(1e-3, min(valid_prob, ready_prob))) + 100_000,
    }))
    config = BenchConfig(stimulus=str(stimulus), result=str((workdir / "core_result.json").resolve()),
                         seed=seed, valid_prob=valid_prob, ready_prob=ready_prob)
    result = run_bench(built, "sim.core_bench", config, workdir, result_type=CoreBenchResult)
    return CoreCosimReport(result, spec, program, run, predicted, built.cached, samples=n)
