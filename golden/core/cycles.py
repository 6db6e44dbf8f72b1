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

    WTA attention   T H (3 L + 3 + L I),  I = G_w + k + 4 (``WTAAttention.query_interval``):
                    every K/V load is a read, a hold (the beat's registers) and a send
                    cycle; so is the first Q row; every later query is accepted I cycles
                    after the previous one (its read and hold hide in that wait) and its
                    output appears I cycles later; the next head starts the cycle after
                    the last output.
"""

from __future__ import annotations

import torch

from .execute import ProgramRun
from .program import AttentionOp, CoreProgram, CoreSpec, LinearOp

#: MAC engine: cycles from a STEP's accept to its first output beat (``rtl.mac.MACEngine.step_latency``)
MAC_STEP_LATENCY = 6
#: cycles from a row's read to its first MAC command's accept: read, hold, load, the scanner's
#: token, the event's offset (i G) and value, the command
SCAN_LATENCY = 6
#: cycles of a readout step's row without events: read, hold, load, one scan cycle
EMPTY_STEP_CYCLES = 4
#: cycles of an op besides its rows: the op-start and next-op states
OP_OVERHEAD = 2


def wta_query_interval(spec) -> int:
    """I = G_w + k + 4 (``rtl.wta_attention.WTAAttention.query_interval``)."""
    return spec.groups + spec.top_k + 4


def lif_latency(program: CoreProgram) -> int:
    """A: the latency of the core's LIF array (``rtl.core.engine.lif_spec``: the program's LIF
    template with run-time parameters and addressed beats; ``LIFSpec.latency``)."""
    template = program.lif_template
    if template is None:
        return 0
    return template.replace(addressed=True, runtime_params=True).latency


def row_overhead(program: CoreProgram) -> int:
    """Cycles of a spiking row besides n G + G: the first event (6), STEP -> outputs (S), the LIF (A)."""
    return SCAN_LATENCY + MAC_STEP_LATENCY + lif_latency(program)


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
    if isinstance(op, AttentionOp):
        wta = op.wta.replace(lanes=spec.wta_lanes)
        length = wta.length
        per = op.steps * op.heads * (3 * length + 3 + length * wta_query_interval(wta))
        return torch.full((nnz.shape[0] if nnz is not None else 1,), per + OP_OVERHEAD, dtype=torch.int64)
    g = program.groups(op)
    if op.reduce_time:
        rows = [[readout_row_cycles([int(n) for n in nnz[b, :, r]], g) for r in range(op.rows)]
                for b in range(nnz.shape[0])]
        return torch.tensor([sum(x) for x in rows], dtype=torch.int64) + OP_OVERHEAD
    per_row = nnz * g + g + row_overhead(program)
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
