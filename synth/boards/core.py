"""The neuromorphic core behind the UART: the board top, the host's framing and decoding.

``UARTBlockTop(NeuroCore(spec, program))`` is the same board top as for the LIF array: a
request's beats are the samples' input beats (one pixel or token id each), and the board
sends one output frame per output beat of the core. Only the counts differ: a sample of
``n_inputs`` beats (64 pixels of a digit) makes ``outputs_per_sample`` output beats -- with
``debug_taps=False`` exactly ``out_rows x ceil(out_features / P)`` logits beats, one activity
beat per op and one status beat (6 for the spiking MLP: 10 logits in 2 words of P = 8, the
activity counters of its 3 ops, then the cycle count), a number fixed by the program, never by
the data. Requests therefore carry whole samples
(``protocol.plan_requests``), and each reply holds exactly their outputs.

``core_client`` sets up the host driver for a core; ``decode_core_outputs`` splits the output
words into logits, activity counters and cycle counts; ``check_core_outputs`` compares them
``==`` with the golden program, the integer model and the cycle formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def core_outputs_per_sample(spec, program) -> int:
    """Output beats per sample: every word ``rtl.core.beats.expected_taps`` names, plus the status beat.

    Counted on one all-zero sample: the count depends on the program's shapes (and on
    ``spec.debug_taps``), not on the data; without taps it is ``out_rows x G + 1``.
    """
    from golden.core import run_program
    from rtl.core.beats import expected_taps

    zero = torch.zeros(1, program.input_buffer.rows * program.input_buffer.channels, dtype=torch.int64)
    run = run_program(program, zero, current_width=spec.current_width)
    return sum(len(words) for words in expected_taps(spec, program, run).values()) + 1


def core_board_top(cm, divisor: int):
    """The core of a ``CoreModel`` behind an 8N1 UART at ``divisor`` clock cycles per bit."""
    from rtl.core import NeuroCore

    from .top import UARTBlockTop

    return UARTBlockTop(NeuroCore(cm.spec, cm.program), divisor)


def core_stream_bits(cm) -> tuple[int, int]:
    """(input payload bits, output payload bits) of the core's host streams."""
    from rtl.core.top import core_input_layout, core_output_layout

    return core_input_layout(cm.program).size, core_output_layout(cm.spec, cm.program).size


def core_input_words(cm, samples: torch.Tensor) -> list[int]:
    """The packed input beats of ``samples``, sample after sample."""
    from golden.core.execute import check_samples
    from rtl.core.beats import core_input_beats
    from rtl.core.top import core_input_layout
    from rtl.streams import pack

    layout = core_input_layout(cm.program)
    return [pack(layout, b) for b in core_input_beats(cm.program, check_samples(cm.program, samples))]


def core_client(cm, transport, *, timeout: float = 5.0, beats_per_request: int = 255):
    """A ``BoardClient`` for the core of ``cm``: whole samples per request, their outputs per reply."""
    from .driver import BoardClient

    in_bits, out_bits = core_stream_bits(cm)
    prog = cm.program
    return BoardClient(transport, in_bits, out_bits, beats_per_request=beats_per_request, timeout=timeout,
                       beats_per_sample=prog.input_buffer.rows * prog.input_buffer.channels,
                       outputs_per_sample=core_outputs_per_sample(cm.spec, prog))


@dataclass
class CoreOutputs:
    """The core's output words of ``samples`` samples, split by the tap they came from."""

    logits: torch.Tensor            # (samples, out_rows, out_features) int64
    cycles: list[int]               # the status beat of each sample
    taps: dict = field(default_factory=dict)   # (op index, kind) -> data words (rtl.core.beats.split_outputs)
    activity: dict = field(default_factory=dict)   # op index -> OpActivity (rtl.core.beats.decode_activity)


def decode_core_outputs(cm, words: list[int], samples: int) -> CoreOutputs:
    """Output payload words -> logits and cycle counts; a wrong number of words is a ``ValueError``."""
    from amaranth import signed
    from amaranth.lib import data

    from rtl.core.beats import decode_activity, split_outputs
    from rtl.core.engine import TAP_LOGITS, TAP_STATUS
    from rtl.streams import unpack

    spec, prog = cm.spec, cm.program
    want = samples * core_outputs_per_sample(spec, prog)
    if len(words) != want:
        raise ValueError(f"the core sent {len(words)} output beats for {samples} samples; {want} expected")
    taps = split_outputs(spec, prog, words)
    readout = [i for i, op in enumerate(prog.ops) if getattr(op, "reduce_time", False)]
    logit_words = taps.get((readout[-1], TAP_LOGITS), []) if readout else []
    layout = data.ArrayLayout(signed(spec.current_width), spec.lanes)
    values = [v for w in logit_words for v in unpack(layout, w)]
    padded = -(-prog.out_features // spec.lanes) * spec.lanes
    if len(values) != samples * prog.out_rows * padded:
        raise ValueError(f"the core sent {len(values)} logit values for {samples} samples; "
                         f"{samples * prog.out_rows * padded} expected")
    logits = torch.tensor(values, dtype=torch.int64).reshape(samples, prog.out_rows, padded)[..., :prog.out_features]
    cycles = list(taps.get((-1, TAP_STATUS), []))
    if len(cycles) != samples:
        raise ValueError(f"the core sent {len(cycles)} status beats for {samples} samples")
    return CoreOutputs(logits, cycles, taps, decode_activity(spec, prog, taps, samples))


@dataclass
class CoreCheck:
    """The board's answers against golden: logits ``==`` and cycles ``==`` per sample."""

    samples: int
    logits: torch.Tensor            # what the board sent
    golden_logits: torch.Tensor     # golden.core.run_program
    model_logits: torch.Tensor      # the integer model's forward_layers
    cycles: list[int]
    predicted_cycles: list[int]     # golden.core.cycles.predict_cycles
    activity: dict = field(default_factory=dict)          # op -> OpActivity, as the board counted
    golden_activity: dict = field(default_factory=dict)   # golden.core.cycles.op_activity

    @property
    def activity_match(self) -> bool:
        return self.activity.keys() == self.golden_activity.keys() and all(
            torch.equal(getattr(a, f), getattr(self.golden_activity[i], f))
            for i, a in self.activity.items() for f in ("cycles", "events", "spikes"))

    @property
    def logits_match(self) -> bool:
        return torch.equal(self.logits, self.golden_logits) and torch.equal(self.logits, self.model_logits)

    @property
    def cycles_match(self) -> bool:
        return self.cycles == self.predicted_cycles

    @property
    def ok(self) -> bool:
        return self.logits_match and self.cycles_match and self.activity_match

    def __str__(self):
        bad = [i for i in range(self.samples) if not torch.equal(self.logits[i], self.golden_logits[i])]
        lines = [f"core board run: {self.samples} samples; logits "
                 + ("== golden program and integer model" if self.logits_match else
                    f"DIFFER (samples {bad[:5]})")
                 + "; cycles " + ("== formula" if self.cycles_match else
                                  f"DIFFER: board {self.cycles[:5]}, formula {self.predicted_cycles[:5]}")
                 + "; activity counters " + ("== golden" if self.activity_match else "DIFFER")]
        for i in bad[:3]:
            lines.append(f"  sample {i}: board {self.logits[i].tolist()}, golden {self.golden_logits[i].tolist()}")
        return "\n".join(lines)


def check_core_outputs(cm, samples: torch.Tensor, words: list[int]) -> CoreCheck:
    """Decode the board's output words of ``samples`` and compare them with golden (``CoreCheck``)."""
    from golden.core import run_program
    from golden.core.cycles import op_activity, predict_cycles

    n = int(samples.shape[0])
    got = decode_core_outputs(cm, words, n)
    run = run_program(cm.program, samples, current_width=cm.spec.current_width)
    layers = cm.int_model.forward_layers(samples if cm.program.input_kind == "tokens"
                                         else samples.reshape(-1, 1, 8, 8))
    model = layers["logits"]
    model = model if model.dim() == 3 else model.unsqueeze(1)
    return CoreCheck(n, got.logits, run.logits.to(torch.int64), model.to(torch.int64), got.cycles,
                     predict_cycles(cm.program, cm.spec, run).tolist(), got.activity,
                     op_activity(cm.program, cm.spec, run))
