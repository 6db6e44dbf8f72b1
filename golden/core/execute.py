"""Golden execution of a ``CoreProgram``: what the core must put on each of its taps.

``run_program(program, samples)`` executes the program's operations in their order with
the contract's integer arithmetic (``QuantLinear`` sums, saturation to the current width,
``lif_run``, ``wta_attention``) over a batch of samples, and returns, per operation, the
tensors in the order the hardware emits them, plus the nonzero count of every source row
(the events the MAC engine processes, from which the cycle formula counts).

``check_against_model(program, run, layers)`` compares every tensor the program produced
with the model's own ``forward_layers`` output, ``==``: the compiler's mapping is the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import fixed
from ..alif import alif_run
from ..layers import lif_run_time_first
from ..mtts import mtts_encode, mtts_spikes
from ..sdsa import sdsa_attention
from ..wta import wta_attention
from .program import AttentionOp, CoreProgram, LinearOp, SDSAOp

#: tap kinds, in the order of their codes on the output stream
TAP_KINDS = ("current", "spikes", "sum", "attention", "logits", "status")


#: digits pixels are 0 .. 16
PIXEL_MAX = 16


class CoreMismatch(AssertionError):
    """The program's result differs from the model's forward_layers."""


@dataclass
class ProgramRun:
    """Per op index: named tensors in hardware order, batch first."""

    taps: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    nnz: dict[int, torch.Tensor] = field(default_factory=dict)   # (B, T, R) events per source row
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    logits: torch.Tensor | None = None                            # (B, out_rows, out_features)


def check_samples(program: CoreProgram, samples) -> torch.Tensor:
    """Validate a batch of samples: pixels (B, 1, 8, 8) / (B, 64) in 0..16, tokens (B, L) in the vocabulary."""
    x = torch.as_tensor(samples)
    if x.is_floating_point():
        raise ValueError(f"the core takes integer samples; got {x.dtype}")
    buf = program.input_buffer
    if program.input_kind == "pixels":
        x = x.reshape(x.shape[0], -1) if x.dim() >= 2 else x
        if x.dim() != 2 or x.shape[1] != buf.channels:
            raise ValueError(f"pixels must have shape (B, {buf.channels}) or (B, 1, 8, 8); got {tuple(samples.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) > PIXEL_MAX):
            raise ValueError(f"pixels must lie in 0 .. {PIXEL_MAX} (the digits' raw values); got "
                             f"{int(x.min())} .. {int(x.max())}")
    else:
        length = program.meta["seq_len"]
        if x.dim() != 2 or x.shape[1] != length:
            raise ValueError(f"tokens must have shape (B, {length}); got {tuple(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= program.meta["vocab"]):
            raise ValueError(f"token ids must lie in 0 .. {program.meta['vocab'] - 1}")
    return x.to(torch.int64)


def _pad(program: CoreProgram, x: torch.Tensor, width: int | None = None) -> torch.Tensor:
    n = x.shape[-1]
    target = width if width is not None else -(-n // program.lanes) * program.lanes
    return torch.nn.functional.pad(x, (0, target - n)) if target > n else x


def _source_rows(program: CoreProgram, op: LinearOp, bufs: dict, batch: int) -> torch.Tensor:
    """(B, T, R, n_in) the input rows op reads at each (t, r)."""
    t, r = op.steps, op.rows
    if op.src == "tokens":
        tok = bufs["tokens"]                                   # (B, L)
        x = torch.zeros(batch, r, op.n_in, dtype=torch.int64)
        vocab = program.meta["vocab"]
        x.scatter_(2, tok[:, :r, None], 1)
        x[:, torch.arange(r), vocab + torch.arange(r)] = 1
        return x.unsqueeze(1).expand(batch, t, r, op.n_in)
    src = bufs[op.src][..., :op.n_in]
    if op.row_masks is not None:
        # every row reads the whole (static) source row, masked to its own channels
        src = src.reshape(batch, 1, op.n_in).expand(batch, r, op.n_in) * op.row_masks.to(torch.int64)
    if op.static_src:
        return src.reshape(batch, 1, r, op.n_in).expand(batch, t, r, op.n_in)
    return src.reshape(batch, t, r, op.n_in)


def _neurons(op: LinearOp, currents: torch.Tensor) -> torch.Tensor:
    """(B, T, R, n) currents -> (B, T, R, n) spikes of the op's neurons."""
    time_first = currents.movedim(1, 0)
    if op.neuron == "lif":
        spikes = lif_run_time_first(op.lif, time_first).spikes
    elif op.neuron == "alif":
        noise = None if op.noise is None else op.noise.unsqueeze(1)          # (T, 1, R, n)
        spikes = alif_run(op.alif.spec, op.alif.theta, op.alif.beta, time_first, noise).spikes
    else:   # mtts: the code of each step's current (the same at every step of a static row)
        spikes = mtts_spikes(op.mtts, mtts_encode(op.mtts, time_first[0]))
    return spikes.movedim(0, 1)


def _run_linear(program: CoreProgram, op: LinearOp, bufs: dict, batch: int, out: dict, wo: int) -> torch.Tensor:
    x = _source_rows(program, op, bufs, batch)
    out_nnz = (x != 0).sum(dim=-1)                             # (B, T, R)
    if op.row_banks is None:
        acc = torch.matmul(x, op.weight.to(torch.int64))      # exact, int64
    else:
        acc = torch.einsum("btri,rio->btro", x, op.bank_weights())
    taps: dict[str, torch.Tensor] = {}
    if op.reduce_time:
        total = acc.sum(dim=(1, 2), keepdim=True)[:, 0] if op.reduce_rows else acc.sum(dim=1)
        result = fixed.saturate(fixed.asr(total, op.shift) + op.bias, wo, True)   # (B, R or 1, n_out)
        taps["logits"] = _pad(program, result)
        return out_nnz, taps, result
    currents = fixed.saturate(fixed.asr(acc, op.shift) + op.bias, wo, True)                # (B, T, R, n_out)
    if op.neuron == "mtts":
        # the encoder's clamp: its input code, the current this op taps
        currents = torch.clamp(currents, op.mtts.lo, op.mtts.hi)
    taps["current"] = _pad(program, currents)
    spikes = _neurons(op, currents)
    taps["spikes"] = _pad(program, spikes)
    rows = spikes.reshape(batch, op.steps * op.rows, op.n_out)
    dst = bufs[op.dst]
    rows = _pad(program, rows, dst.shape[-1])
    if op.accumulate:
        rows = dst + rows
        taps["sum"] = rows.reshape(batch, op.steps, op.rows, -1)
    bufs[op.dst] = rows
    return out_nnz, taps, spikes


def _split_heads(bufs: dict, op, spec, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Q, K, V buffer rows (B, T L, >= H dh) of an attention op -> (B, T, H, L, dh) each: the rows
    the attention unit sees, head by head."""
    def heads(name):
        x = bufs[name][..., :op.heads * spec.head_dim].reshape(batch, op.steps, spec.length, op.heads, spec.head_dim)
        return x.permute(0, 1, 3, 2, 4)
    return heads(op.q), heads(op.k), heads(op.v)


def _merge_heads(y: torch.Tensor) -> torch.Tensor:
    """(B, T, H, L, dh) -> (B, T, L, H dh): each head's outputs in its slice of the row."""
    b, t, h, length, dh = y.shape
    return y.permute(0, 1, 3, 2, 4).reshape(b, t, length, h * dh)


def _write_heads(program: CoreProgram, bufs: dict, op, y: torch.Tensor) -> None:
    """An attention op's outputs (B, T, H, L, dh) into its destination buffer's rows."""
    b, t, _, length, _ = y.shape
    bufs[op.dst] = _pad(program, _merge_heads(y).reshape(b, t * length, -1), bufs[op.dst].shape[-1])


def _run_attention(program: CoreProgram, op: AttentionOp, bufs: dict, batch: int) -> dict:
    r = wta_attention(op.wta, *_split_heads(bufs, op, op.wta, batch))
    _write_heads(program, bufs, op, r.out)
    return {"attention_out": r.out, "attention_index": r.index, "attention_valid": r.valid.to(torch.int64)}


def _run_sdsa(program: CoreProgram, op: SDSAOp, bufs: dict, batch: int) -> dict:
    y = sdsa_attention(op.sdsa, *_split_heads(bufs, op, op.sdsa, batch)).y
    _write_heads(program, bufs, op, y)
    return {"attention_out": y}


def run_program(program: CoreProgram, samples, *, current_width: int | None = None) -> ProgramRun:
    """Execute ``program`` on a batch of samples (see the module docstring)."""
    x = check_samples(program, samples)
    batch = x.shape[0]
    template = program.lif_template or program.alif_template
    wo = current_width if current_width is not None else (template.input_width if template is not None else 24)
    bufs: dict[str, torch.Tensor] = {}
    if program.input_kind == "pixels":
        bufs[program.input_buffer.name] = x.reshape(batch, 1, -1)
    else:
        bufs["tokens"] = x
    for name, buf in program.buffers.items():
        bufs[name] = torch.zeros(batch, buf.rows, buf.channels, dtype=torch.int64)
    run = ProgramRun()
    for i, op in enumerate(program.ops):
        if isinstance(op, LinearOp):
            nnz, taps, result = _run_linear(program, op, bufs, batch, {}, wo)
            run.nnz[i] = nnz
            run.taps[i] = taps
            if op.dst is None:
                run.logits = result[..., :program.out_features]
        elif isinstance(op, AttentionOp):
            run.taps[i] = _run_attention(program, op, bufs, batch)
        elif isinstance(op, SDSAOp):
            run.taps[i] = _run_sdsa(program, op, bufs, batch)
        else:  # pragma: no cover - the compiler makes only these
            raise TypeError(f"unknown op {op!r}")
    for name, buf in program.buffers.items():
        buf.check(bufs[name], f"the values written to {name}")
    run.buffers = bufs
    return run


def _model_view(program: CoreProgram, op, tensor: torch.Tensor, static: bool = False) -> torch.Tensor:
    """A forward_layers tensor in the run's layout: (B, T, R, n) (static: (B, R, n))."""
    if not program.meta.get("positions", program.input_kind == "tokens"):   # the MLP: no position dim
        if tensor.dim() == 2:                     # logits (B, n)
            return tensor.unsqueeze(1)
        return tensor.movedim(0, 1).unsqueeze(2)  # (T, B, n) -> (B, T, 1, n)
    if static:
        return tensor                              # (B, L, n)
    if tensor.dim() == 2:                          # logits of the whole sample (B, n)
        return tensor.unsqueeze(1)
    if tensor.dim() == 3:                          # logits (B, L, V)
        return tensor
    return tensor.movedim(0, 1)                    # (T, B, L, n) -> (B, T, L, n)


def check_against_model(program: CoreProgram, run: ProgramRun, layers: dict) -> list[str]:
    """Compare the run with ``forward_layers``; returns the names checked, raises ``CoreMismatch``."""
    checked = []

    def same(name, got, want):
        if got.shape != want.shape or not torch.equal(got, want):
            raise CoreMismatch(f"program tensor for {name} differs from the model's forward_layers "
                               f"({tuple(got.shape)} vs {tuple(want.shape)})")
        checked.append(name)

    for i, op in enumerate(program.ops):
        taps = run.taps[i]
        if isinstance(op, LinearOp):
            n = op.n_out
            if op.currents_tensor and op.currents_tensor in layers:
                static = op.src == "tokens" or op.neuron == "mtts"    # the model has no T dimension
                want = _model_view(program, op, layers[op.currents_tensor], static=static)
                got = taps["current"][..., :n]
                if static:
                    for t in range(op.steps):
                        same(f"{op.currents_tensor}[t={t}]", got[:, t], want)
                else:
                    same(op.currents_tensor, got, want)
            if op.out_tensor and op.out_tensor in layers:
                key = "logits" if op.reduce_time else "spikes"
                same(op.out_tensor, taps[key][..., :n], _model_view(program, op, layers[op.out_tensor]))
            if op.sum_tensor and op.sum_tensor in layers:
                same(op.sum_tensor, taps["sum"][..., :n], _model_view(program, op, layers[op.sum_tensor]))
        else:
            if isinstance(op, AttentionOp):
                for key, name in (("attention_index", op.index_tensor), ("attention_valid", op.valid_tensor)):
                    if name and name in layers:
                        # forward_layers: (T, B, H, L, k)
                        same(name, taps[key], layers[name].movedim(0, 1).to(torch.int64))
            if op.out_tensor and op.out_tensor in layers:
                same(op.out_tensor, _merge_heads(taps["attention_out"]), layers[op.out_tensor].movedim(0, 1))
    return checked
