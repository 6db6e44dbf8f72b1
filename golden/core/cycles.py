"""The core's cycle count per sample, to the cycle, from the model's sizes and its spike counts.

Counted: every cycle from the first op's start to the last op's end (the status beat that
reports the count, and the host's transfer of the sample, are not counted; host stalls are
not either: the engine is frozen while an output FIFO is full). With P lanes, G = ceil(n_out/P)
output words of a layer, n_{t,r} the nonzero inputs of its source row (t, r), and the unit
latencies of the MAC engine (a STEP's first output S = 6 cycles after it, ``rtl.mac``) and the
LIF array (A = 5 cycles with the run-time multiply leak, 4 with the shift leak:
``LIFSpec.latency``, ``rtl.lif``)::

    cycles = sum over ops of (2 + op cycles)                 (op start + next-op cycles)

    spiking layer   sum_{t,r} (n_{t,r} G + G + S + 6 + A)      = n G + G + 17 per row (A = 5):
                    read, hold (the source row is registered), load (its nonzero mask), the
                    scanner's token, the event's offset, the MAC command: the first event is
                    accepted in the row's seventh cycle, one every G cycles after it, the STEP G cycles after
                    the last, G currents from S cycles after it, each through the LIF array
                    (+A); the row ends after the last spike word.

    readout         per row r, over its time steps t = 0 .. T-1 (one STEP for the row), with
    (sum over t)    a_0 = 0 (the step's first read), R = -inf (when the MAC takes the next
                    command) and s_t = max(a_t + 6, R) (read, hold, load, token, offset,
                    command):
                        n_t = 0:  a_{t+1} = a_t + 4
                        n_t > 0:  last event at L = s_t + (n_t - 1) G,  R = L + G,  a_{t+1} = L + 2
                    (a step's row is read once the previous step's events have all reached the
                    MAC); the STEP is accepted at c = s_{T-1} (n = 0) or R; the row takes
                    c + S + G cycles.

    WTA attention   T H (3 L + 3 + L I),  I = G_w + k + 5 (``WTAAttention.query_interval``):
                    every K/V load is a read, a hold (the beat's registers) and a send
                    cycle; so is the first Q row; every later query is accepted I cycles
                    after the previous one (its read and hold hide in that wait) and its
                    output appears I cycles later; the next head starts the cycle after
                    the last output.

    spike-driven    T H (3 L + 3 + (L - 1) max(G_s, 3) + G_s),  G_s = ceil(dh / P_s)
    attention       (``SDSAttention``: latency and query interval G_s): the same loop, but a
                    query interval shorter than the engine's read, hold, send (3 cycles)
                    lets the engine set the pace.

A row's neuron latency A is the LIF array's (above), the adaptive-LIF array's (S + 1 = 5,
``ALIFSpec.latency``) or the MTTS encoder's (1). A readout that also sums over its rows
(``reduce_rows``) runs the readout recurrence over every (r, t), t inner, with one STEP at
the end.

Activity counters: besides the whole count, the core reports per op and sample what its
counters saw (``op_activity``): the op's cycles (``op_cycles``, its op-start and next-op
cycles included), the EVENT commands its MAC engine took (``sum n_{t,r}``, each one G weight
words) and the spikes its neurons (or the MTTS encoder) emitted; the energy of
``estimate.core`` is computed from these.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .execute import ProgramRun
from .program import AttentionOp, CoreProgram, CoreSpec, LinearOp, SDSAOp

#: MAC engine: cycles from a STEP's accept to its first output beat (``rtl.mac.MACEngine.step_latency``)
MAC_STEP_LATENCY = 6
#: cycles from a row's read to its first MAC command's accept: read, hold, load, the scanner's
#: token, the event's offset (i G) and value, the command
SCAN_LATENCY = 6
#: cycles of a readout step's row without events: read, hold, load, one scan cycle
EMPTY_STEP_CYCLES = 4
#: cycles of an op besides its rows: the op-start and next-op states
OP_OVERHEAD = 2
#: cycles of a K/V load or a Q row in the engine's attention loop: read, hold, send
ATT_BEAT_CYCLES = 3
#: the MTTS encoder's latency (``rtl.mtts.MTTSEncoder.LATENCY``)
MTTS_LATENCY = 1


def wta_query_interval(spec) -> int:
    """I = G_w + k + 5 (``rtl.wta_attention.WTAAttention.query_interval``)."""
    return spec.groups + spec.top_k + 5


def lif_latency(program: CoreProgram) -> int:
    """A: the latency of the core's LIF array (``rtl.core.engine.lif_spec``: the program's LIF
    template with run-time parameters and addressed beats; ``LIFSpec.latency``)."""
    template = program.lif_template
    if template is None:
        return 0
    return template.replace(addressed=True, runtime_params=True).latency


def neuron_latency(program: CoreProgram, op: LinearOp | None = None) -> int:
    """A of an op: the LIF array's (``lif_latency``), the adaptive-LIF array's (5) or the MTTS
    encoder's (1); without ``op``, that of the program's neuron array."""
    kind = op.neuron if op is not None else ("alif" if program.alif_template is not None else "lif")
    if kind == "mtts":
        return MTTS_LATENCY
    if kind == "alif":
        return program.alif_template.replace(n_neurons=1, lanes=1).latency
    return lif_latency(program)


def row_overhead(program: CoreProgram, op: LinearOp | None = None) -> int:
    """Cycles of a spiking row besides n G + G: the first event (6), STEP -> outputs (S), the neurons (A)."""
    return SCAN_LATENCY + MAC_STEP_LATENCY + neuron_latency(program, op)


def sdsa_head_cycles(spec) -> int:
    """One head of a spike-driven attention op: 3 L + 3 + (L - 1) max(G_s, 3) + G_s (module docstring)."""
    g = spec.groups
    return ATT_BEAT_CYCLES * spec.length + ATT_BEAT_CYCLES + (spec.length - 1) * max(g, ATT_BEAT_CYCLES) + g


def readout_row_cycles(counts: list[int], groups: int) -> int:
    """Cycles of one readout row whose time steps have ``counts`` nonzero inputs (module docstring)."""
    a, ready = 0, None
    last_step = len(counts) - 1
    for t, n in enumerate(counts):
        start = a + SCAN_LATENCY if ready is None else max(a + SCAN_LATENCY, ready)
        if n == 0:
            if t < last_step:
                a += EMPTY_STEP_CYCLES      # read, hold, load, one scan cycle
                continue
            step = start
        else:
            last = start + (n - 1) * groups
            ready = last + groups
            if t < last_step:
                a = last + 2                # the last event's accept, one cycle, the next read
                continue
            step = ready
    return step + MAC_STEP_LATENCY + groups


def op_cycles(program: CoreProgram, spec: CoreSpec, index: int, nnz: torch.Tensor | None) -> torch.Tensor:
    """Cycles of op ``index`` per sample (B,), from its source rows' nonzero counts (B, T, R)."""
    op = program.ops[index]
    batch = nnz.shape[0] if nnz is not None else 1
    if isinstance(op, SDSAOp):
        sd = op.sdsa.replace(lanes=min(spec.sdsa_lanes, op.sdsa.head_dim))
        return torch.full((batch,), op.steps * op.heads * sdsa_head_cycles(sd) + OP_OVERHEAD, dtype=torch.int64)
    if isinstance(op, AttentionOp):
        wta = op.wta.replace(lanes=spec.wta_lanes)
        length = wta.length
        per = op.steps * op.heads * (3 * length + 3 + length * wta_query_interval(wta))
        return torch.full((batch,), per + OP_OVERHEAD, dtype=torch.int64)
    g = program.groups(op)
    if op.reduce_rows:
        # one STEP after every row's steps: the recurrence runs over (r, t), t inner
        per = [readout_row_cycles([int(nnz[b, tt, r]) for r in range(op.rows) for tt in range(op.steps)], g)
               for b in range(nnz.shape[0])]
        return torch.tensor(per, dtype=torch.int64) + OP_OVERHEAD
    if op.reduce_time:
        rows = [[readout_row_cycles([int(n) for n in nnz[b, :, r]], g) for r in range(op.rows)]
                for b in range(nnz.shape[0])]
        return torch.tensor([sum(x) for x in rows], dtype=torch.int64) + OP_OVERHEAD
    per_row = nnz * g + g + row_overhead(program, op)
    return per_row.sum(dim=(1, 2)) + OP_OVERHEAD


def predict_cycles(program: CoreProgram, spec: CoreSpec, run: ProgramRun) -> torch.Tensor:
    """Cycles per sample (B,) of ``NeuroCore(spec, program)`` on the samples of ``run``."""
    batch = run.logits.shape[0]
    total = torch.zeros(batch, dtype=torch.int64)
    for i, op in enumerate(program.ops):
        total += op_cycles(program, spec, i, run.nnz.get(i) if isinstance(op, LinearOp) else
                           torch.zeros(batch, 1, 1, dtype=torch.int64))
    return total


def useful_ops(program: CoreProgram, run: ProgramRun) -> torch.Tensor:
    """Synaptic operations per sample (B,): every nonzero input x every output of its layer."""
    batch = run.logits.shape[0]
    total = torch.zeros(batch, dtype=torch.int64)
    for i, op in enumerate(program.ops):
        if isinstance(op, LinearOp):
            total += run.nnz[i].sum(dim=(1, 2)) * op.n_out
    return total


@dataclass
class OpActivity:
    """What the core's activity counters read after one op, per sample: (B,) int64 each."""

    cycles: torch.Tensor      # the op's cycles (== op_cycles)
    events: torch.Tensor      # EVENT commands into the MAC engine (the nonzero inputs, sum n_{t,r})
    spikes: torch.Tensor      # spikes out of the op's neurons (0 for readouts and attention)


def activity_bounds(program: CoreProgram, spec: CoreSpec) -> tuple[int, int]:
    """The largest (events, spikes) count any op of ``program`` can reach on one sample: the widths of
    the core's counters (they never wrap)."""
    events = spikes = 0
    for op in program.linear_ops():
        n_in = 2 if op.src == "tokens" else op.n_in      # a token row is two events
        events = max(events, op.steps * op.rows * n_in)
        if op.neuron is not None:
            spikes = max(spikes, op.steps * op.rows * program.groups(op) * spec.lanes)
    return events, spikes


def op_activity(program: CoreProgram, spec: CoreSpec, run: ProgramRun) -> dict[int, OpActivity]:
    """op index -> the activity counters the core must report for the samples of ``run``."""
    batch = run.logits.shape[0]
    zeros = torch.zeros(batch, dtype=torch.int64)
    out = {}
    for i, op in enumerate(program.ops):
        if isinstance(op, LinearOp):
            nnz = run.nnz[i]
            events = nnz.sum(dim=(1, 2)).to(torch.int64)
            spikes = zeros.clone()
            if op.neuron is not None:
                spikes = run.taps[i]["spikes"].reshape(batch, -1).sum(dim=1).to(torch.int64)
            out[i] = OpActivity(op_cycles(program, spec, i, nnz), events, spikes)
        else:
            out[i] = OpActivity(op_cycles(program, spec, i, torch.zeros(batch, 1, 1, dtype=torch.int64)),
                                zeros.clone(), zeros.clone())
    return out
