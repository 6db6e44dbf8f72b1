"""Host beats of the core <-> golden tensors: what goes in, what each tap must carry."""

from __future__ import annotations

import torch
from amaranth import signed, unsigned
from amaranth.lib import data

from golden.core.cycles import OpActivity, op_activity
from golden.core.execute import ProgramRun
from golden.core.program import AttentionOp, CoreProgram, CoreSpec, LinearOp, SDSAOp

from .engine import (TAP_ACTIVITY, TAP_ATTENTION, TAP_CURRENT, TAP_LOGITS, TAP_SPIKES, TAP_STATUS, activity_layout,
                     sdsa_spec, wta_spec)
from ..sdsa import sdsa_output_layout
from ..streams import pack, unpack
from ..wta_attention import wta_output_layout

TAP_NAMES = {TAP_CURRENT: "current", TAP_SPIKES: "spikes", TAP_ATTENTION: "attention", TAP_LOGITS: "logits",
             TAP_STATUS: "status", TAP_ACTIVITY: "activity"}


def core_input_beats(program: CoreProgram, samples: torch.Tensor) -> list[dict]:
    """Samples (B, n) int -> B x n input beats, one value each (pixels in raster order, token ids)."""
    flat = torch.as_tensor(samples).reshape(samples.shape[0], -1)
    return [{"value": int(v)} for row in flat for v in row]


def _lanes(values, width: int, is_signed: bool, p: int) -> int:
    return pack(data.ArrayLayout(signed(width) if is_signed else unsigned(width), p), [int(v) for v in values])


def expected_taps(spec: CoreSpec, program: CoreProgram, run: ProgramRun,
                  debug_taps: bool | None = None) -> dict[tuple[int, int], list[int]]:
    """(op index, tap kind) -> the data words the core must emit there, in order, over all samples."""
    taps = spec.debug_taps if debug_taps is None else debug_taps
    p, wo = spec.lanes, spec.current_width
    sum_width = max([b.width for b in program.buffers.values()] or [1])
    out: dict[tuple[int, int], list[int]] = {}
    batch = run.logits.shape[0]
    act_layout = activity_layout(spec, program)
    for i, a in op_activity(program, spec, run).items():
        out[(i, TAP_ACTIVITY)] = [pack(act_layout, {"cycles": int(a.cycles[b]), "events": int(a.events[b]),
                                                    "spikes": int(a.spikes[b])}) for b in range(batch)]
    for i, op in enumerate(program.ops):
        tp = run.taps[i]
        if isinstance(op, LinearOp) and op.reduce_time:
            words = []
            for b in range(batch):
                for r in range(tp["logits"].shape[1]):        # R rows, or 1 when the rows are summed
                    row = tp["logits"][b, r]
                    words += [_lanes(row[g * p:(g + 1) * p], wo, True, p) for g in range(len(row) // p)]
            out[(i, TAP_LOGITS)] = words
        elif isinstance(op, LinearOp):
            if not taps:
                continue
            cur, spk = tp["current"], tp["spikes"]
            sums = tp.get("sum")
            cw, sw = [], []
            for b in range(batch):
                for t in range(op.steps):
                    for r in range(op.rows):
                        for g in range(cur.shape[-1] // p):
                            sl = slice(g * p, (g + 1) * p)
                            cw.append(_lanes(cur[b, t, r, sl], wo, True, p))
                            word = sum(int(s) << q for q, s in enumerate(spk[b, t, r, sl]))
                            if sums is not None:
                                word |= _lanes(sums[b, t, r, sl], sum_width, False, p) << p
                            sw.append(word)
            out[(i, TAP_CURRENT)], out[(i, TAP_SPIKES)] = cw, sw
        elif isinstance(op, AttentionOp):
            if not taps:
                continue
            layout = wta_output_layout(wta_spec(spec, program))
            o, idx, val = tp["attention_out"], tp["attention_index"], tp["attention_valid"]
            words = []
            for b in range(batch):
                for t in range(op.steps):
                    for h in range(op.heads):
                        for q in range(o.shape[3]):
                            words.append(pack(layout, {"out": [int(x) for x in o[b, t, h, q]],
                                                       "index": [int(x) for x in idx[b, t, h, q]],
                                                       "valid": sum(int(v) << k for k, v in enumerate(val[b, t, h, q]))}))
            out[(i, TAP_ATTENTION)] = words
        elif isinstance(op, SDSAOp):
            if not taps:
                continue
            layout = sdsa_output_layout(sdsa_spec(spec, program))
            y = tp["attention_out"]
            out[(i, TAP_ATTENTION)] = [pack(layout, {"out": [int(x) for x in y[b, t, h, q]]})
                                       for b in range(batch) for t in range(op.steps) for h in range(op.heads)
                                       for q in range(y.shape[3])]
    return out


def split_outputs(spec: CoreSpec, program: CoreProgram, words: list[int]) -> dict[tuple[int, int], list[int]]:
    """Output payload words (as the stream carries them) -> (op index, kind) -> data words, in order;
    status words under (-1, TAP_STATUS)."""
    from .top import core_output_layout
    layout = core_output_layout(spec, program)
    got: dict[tuple[int, int], list[int]] = {}
    for w in words:
        beat = unpack(layout, w)
        key = (-1, TAP_STATUS) if beat["kind"] == TAP_STATUS else (beat["tap"], beat["kind"])
        got.setdefault(key, []).append(beat["data"])
    return got


def compare_taps(program: CoreProgram, expected: dict, got: dict) -> list[str]:
    """Every substream ``==``; returns one line per difference (empty: bit-exact)."""
    problems = []
    for key, want in expected.items():
        have = got.get(key, [])
        name = f"{program.ops[key[0]].name}/{TAP_NAMES[key[1]]}"
        if len(have) != len(want):
            problems.append(f"{name}: {len(have)} beats, expected {len(want)}")
        for n, (a, b) in enumerate(zip(have, want)):
            if a != b:
                problems.append(f"{name}: beat {n} is {a:#x}, expected {b:#x}")
                break
    for key in got:
        if key not in expected and key[1] != TAP_STATUS:
            problems.append(f"unexpected tap {key}: {len(got[key])} beats")
    return problems


def decode_activity(spec: CoreSpec, program: CoreProgram, taps: dict[tuple[int, int], list[int]],
                    samples: int) -> dict[int, OpActivity]:
    """The activity beats the core emitted (``split_outputs``' dict) -> op index -> ``OpActivity``
    of ``samples`` samples; a missing or extra beat is a ``ValueError`` naming the op."""
    layout = activity_layout(spec, program)
    out = {}
    for i, op in enumerate(program.ops):
        words = taps.get((i, TAP_ACTIVITY), [])
        if len(words) != samples:
            raise ValueError(f"the core sent {len(words)} activity beats of op {op.name} for {samples} samples")
        beats = [unpack(layout, w) for w in words]
        out[i] = OpActivity(*(torch.tensor([b[f] for b in beats], dtype=torch.int64)
                              for f in ("cycles", "events", "spikes")))
    return out
