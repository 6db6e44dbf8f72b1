"""Spike-driven self-attention (Matterhorn): ``y = q (k^T v)`` for one head and one time step.

Matterhorn's attention has no softmax and no scores: the key-value product of a head is
formed first and every query reads it (``golden.models.matterhorn.IntBlock.forward``, per
head and time step). This module is the contract of the hardware unit
``rtl.sdsa.SDSAttention``.

Integer mode (exact, int64; the hardware contract)
--------------------------------------------------
q (Lq x dh), k (L x dh) and v (L x dh) are 0/1 spike matrices (L keys, Lq queries, head
width dh)::

    KV[i, j] = sum_{n < L}  k[n, i] v[n, j]          i, j = 0 .. dh - 1;   0 .. L
    y[n, j]  = sum_{i < dh} q[n, i] KV[i, j]         n = 0 .. Lq - 1;      0 .. L dh

Both sums are exact (no rounding, no saturation, no wrap): KV fits ``Wkv = bits_for(L)``
unsigned bits and y fits ``Wy = bits_for(L dh)`` unsigned bits (``SDSASpec.kv_width``,
``SDSASpec.out_width``). Integer sums are associative, so the order of reduction cannot
change a bit, and ``y = q (k^T v) = (q k^T) v`` exactly. Query row n reads the KV of the
sequence's L keys (no causal mask: Matterhorn's attention sees every token).

The stream (``rtl.sdsa.SDSAttention``, the protocol of ``rtl.wta_attention.WTAAttention``)
------------------------------------------------------------------------------------------
One input stream of beats, ``kind`` LOAD (0: K row n and V row n) or QUERY (1: Q row n).
A sequence is L load beats (n = 0 .. L - 1, in order) and then its query beats; a load
beat after a query starts the next sequence. ``sdsa_run_beats`` is that stream's meaning,
beat by beat::

    LOAD (k, v):   KV = 0 first if the previous beat was a QUERY;   KV[i, j] += k[i] v[j]
    QUERY (q):     output beat  y[j] = sum_i q[i] KV[i, j]

KV is all zero at reset (a query before any load reads 0). A sequence may hold at most L
load beats (the counters are Wkv bits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from . import fixed
from .spec import SpecBase, SpecError, check_int

#: input beat kinds: a K row and a V row (accumulated into KV), or a Q row (answered by one output beat)
KIND_LOAD, KIND_QUERY = 0, 1
BEAT_KINDS = ("load", "query")


@dataclass(frozen=True)
class SDSASpec(SpecBase):
    """One head of spike-driven self-attention, shared by ``sdsa_attention`` and ``rtl.sdsa.SDSAttention``.

    Attributes
    ----------
    length : L, keys (K and V rows) per sequence, 1 .. 4096; for self-attention also the queries.
    head_dim : dh, width of a Q / K / V row (spikes), 1 .. 256. KV is dh x dh counters.
    lanes : P, KV rows the hardware adds per cycle for a query, 1 .. dh; a query takes
        G = ceil(dh / P) cycles (``groups``).

    The defaults are Matterhorn's shipped size: 16 tokens, dim 32 in 2 heads (dh = 16).
    """

    block = "sdsa"

    length: int = 16
    head_dim: int = 16
    lanes: int = 4

    def __post_init__(self):
        name = "SDSASpec"
        check_int(name, "length", self.length, 1, 4096)
        check_int(name, "head_dim", self.head_dim, 1, 256)
        check_int(name, "lanes", self.lanes, 1, None)
        if self.lanes > self.head_dim:
            raise SpecError(f"SDSASpec.lanes = {self.lanes} is out of range; allowed: 1 .. head_dim = "
                            f"{self.head_dim} (KV rows summed per cycle)")

    # ---- derived quantities (every width comes from here) ----
    @property
    def kv_width(self) -> int:
        """Wkv: unsigned bits of a KV count, 0 .. L."""
        return fixed.bits_for(self.length)

    @property
    def out_width(self) -> int:
        """Wy: unsigned bits of an output element, 0 .. L dh."""
        return fixed.bits_for(self.length * self.head_dim)

    @property
    def max_out(self) -> int:
        """The largest output element, L dh (every spike of q, k and v set)."""
        return self.length * self.head_dim

    @property
    def groups(self) -> int:
        """G = ceil(dh / P): cycles a query spends on the KV rows (the last group may be partial)."""
        return -(-self.head_dim // self.lanes)


class SDSAResult(NamedTuple):
    kv: torch.Tensor   # (..., dh, dh) int64: KV = k^T v
    y: torch.Tensor    # (..., Lq, dh) int64: y = q KV


def _check_qkv(spec: SDSASpec, q, k, v) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q = fixed.check_range(q, 1, False, "SDSA queries q")
    k = fixed.check_range(k, 1, False, "SDSA keys k")
    v = fixed.check_range(v, 1, False, "SDSA values v")
    d, length = spec.head_dim, spec.length
    if q.dim() < 2 or q.shape[-1] != d:
        raise ValueError(f"SDSA queries q must have shape (..., Lq, {d}) (head_dim); got {tuple(q.shape)}")
    for name, x in (("keys k", k), ("values v", v)):
        if x.dim() < 2 or tuple(x.shape[-2:]) != (length, d):
            raise ValueError(f"SDSA {name} must have shape (..., {length}, {d}) (length, head_dim); "
                             f"got {tuple(x.shape)}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(f"SDSA q, k, v batch dimensions differ: {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    return q, k, v


def sdsa_attention(spec: SDSASpec, q, k, v) -> SDSAResult:
    """Exact integer spike-driven attention (module docstring): KV = k^T v, y = q KV.

    q (..., Lq, dh), k and v (..., L, dh), 0/1 integer tensors with equal batch dimensions.
    Returns int64 ``kv`` (..., dh, dh) and ``y`` (..., Lq, dh).
    """
    q, k, v = _check_qkv(spec, q, k, v)
    kv = torch.matmul(k.transpose(-1, -2), v)
    return SDSAResult(kv, torch.matmul(q, kv))


# ---------------------------------------------------------------------------
# The beat stream of ``rtl.sdsa.SDSAttention``


def _bits(values, what: str, n: int) -> list[int]:
    if isinstance(values, (int, bool)) or not hasattr(values, "__len__"):
        raise ValueError(f"{what} must be a list of {n} spikes (0 / 1), got {values!r}")
    out = []
    for x in values:
        if isinstance(x, bool) or not isinstance(x, int):
            try:
                as_int = int(x)
            except (TypeError, ValueError):
                as_int = None
            if as_int is None or as_int != x:
                raise ValueError(f"{what} must hold integers, got {x!r}")
            x = as_int
        if x not in (0, 1):
            raise ValueError(f"{what} = {x} is out of range; allowed: 0 .. 1 (spikes)")
        out.append(x)
    if len(out) != n:
        raise ValueError(f"{what} has {len(out)} values; the spec has head_dim = {n}")
    return out


def sdsa_normalize_beats(spec: SDSASpec, beats) -> list[dict]:
    """Check input beats and return them with every field of the unit's input beat.

    A beat is a mapping with ``kind`` (KIND_LOAD 0 / KIND_QUERY 1), ``qk`` (dh spikes: the K row
    of a load, the Q row of a query) and, for a load, ``v`` (dh spikes: the V row). A query's
    ``v`` may be left out (it comes back as zeros; the hardware ignores it) or must be zeros.
    A sequence (the loads after a query, or from the start) may hold at most L loads. Anything
    else is a ``ValueError`` that names the beat and the field.
    """
    d = spec.head_dim
    zeros = [0] * d
    out, loads, after_query = [], 0, False
    for n, beat in enumerate(beats):
        if not isinstance(beat, dict):
            raise ValueError(f"SDSA beat {n} must be a mapping of its fields, got {type(beat).__name__}")
        unknown = sorted(set(beat) - {"kind", "qk", "v"})
        if unknown:
            raise ValueError(f"SDSA beat {n} has unknown field(s) {', '.join(unknown)}; allowed: kind, qk, v")
        kind = beat.get("kind")
        if kind not in (KIND_LOAD, KIND_QUERY) or isinstance(kind, bool):
            raise ValueError(f"SDSA beat {n} kind = {kind!r} is out of range; allowed: 0 (load), 1 (query)")
        if "qk" not in beat:
            raise ValueError(f"SDSA beat {n} ({BEAT_KINDS[kind]}) needs 'qk'")
        qk = _bits(beat["qk"], f"SDSA beat {n} qk", d)
        if kind == KIND_LOAD:
            if "v" not in beat:
                raise ValueError(f"SDSA beat {n} (load) needs 'v'")
            v = _bits(beat["v"], f"SDSA beat {n} v", d)
            loads = 1 if after_query else loads + 1
            after_query = False
            if loads > spec.length:
                raise ValueError(f"SDSA beat {n} is load {loads} of its sequence; a sequence holds at most "
                                 f"length = {spec.length} loads (a query ends it)")
        else:
            v = _bits(beat.get("v", zeros), f"SDSA beat {n} v", d)
            if any(v):
                raise ValueError(f"SDSA beat {n} (query) carries a nonzero 'v', which a query does not use")
            after_query = True
        out.append({"kind": kind, "qk": qk, "v": v})
    return out


def sdsa_run_beats(spec: SDSASpec, beats) -> torch.Tensor:
    """The unit's stream semantics, beat by beat (golden model of ``rtl.sdsa.SDSAttention``).

    KV starts at zero; a LOAD after a QUERY clears it first, every LOAD adds outer(k, v), every
    QUERY gives one output row y = q KV. Returns int64 (queries, dh), one row per query beat
    in order. On the stream of ``sequence_beats`` it equals ``sdsa_attention`` row for row.
    """
    beats = sdsa_normalize_beats(spec, beats)
    d = spec.head_dim
    kv = torch.zeros(d, d, dtype=torch.int64)
    rows, after_query = [], False
    for beat in beats:
        x = torch.tensor(beat["qk"], dtype=torch.int64)
        if beat["kind"] == KIND_LOAD:
            if after_query:
                kv = torch.zeros_like(kv)
            kv = kv + torch.outer(x, torch.tensor(beat["v"], dtype=torch.int64))
            after_query = False
        else:
            rows.append(x @ kv)
            after_query = True
    return torch.stack(rows) if rows else torch.zeros(0, d, dtype=torch.int64)


def sequence_beats(spec: SDSASpec, q, k, v) -> list[dict]:
    """q (S, Lq, dh), k and v (S, L, dh) -> the input beats: per sequence L loads, then Lq queries."""
    q, k, v = (torch.as_tensor(x) for x in (q, k, v))
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(f"SDSA vectors: q, k, v must be 3-D (sequences, rows, head_dim); got shapes "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    q, k, v = _check_qkv(spec, q, k, v)
    zeros = [0] * spec.head_dim
    beats = []
    for s in range(q.shape[0]):
        beats += [{"kind": KIND_LOAD, "qk": kr, "v": vr} for kr, vr in zip(k[s].tolist(), v[s].tolist())]
        beats += [{"kind": KIND_QUERY, "qk": qr, "v": zeros} for qr in q[s].tolist()]
    return beats


# ---------------------------------------------------------------------------
# Reference vectors

#: firing densities of random spike rows: silent and all-firing rows occur in every set
DENSITIES = (0.0, 0.1, 0.3, 0.6, 1.0)
#: sequence kinds of ``sdsa_random_qkv``, by sequence index mod 8
SEQUENCE_KINDS = ("random", "random", "random", "all firing", "silent keys", "silent queries",
                  "one key row", "sparse")


def sdsa_random_qkv(spec: SDSASpec, sequences: int, queries: int | None = None, seed: int = 0):
    """Seeded 0/1 q (S, Lq, dh), k and v (S, L, dh), int64, Lq = L unless ``queries`` is given.

    Sequence s is of kind ``SEQUENCE_KINDS[s % 8]``: random rows, each of a firing density drawn
    from ``DENSITIES`` (separately for q, k and v); all firing (every KV count L, every output
    L dh: the widths' limits); all-zero K (KV = 0); all-zero Q; a single key row firing (KV
    counts 0 / 1); and a density of 0.05 everywhere (Matterhorn's sparse spikes).
    """
    check_int("sdsa_random_qkv", "sequences", sequences, 1, None)
    lq = spec.length if queries is None else queries
    check_int("sdsa_random_qkv", "queries", lq, 1, None)
    gen = torch.Generator().manual_seed(seed)
    d = spec.head_dim

    def rows(n):
        density = torch.tensor(DENSITIES)[torch.randint(0, len(DENSITIES), (sequences, n, 1), generator=gen)]
        return (torch.rand(sequences, n, d, generator=gen) < density).to(torch.int64)

    q, k, v = rows(lq), rows(spec.length), rows(spec.length)
    kind = torch.arange(sequences) % len(SEQUENCE_KINDS)
    for x in (q, k, v):
        x[kind == 3] = 1
    k[kind == 4] = 0
    q[kind == 5] = 0
    one = kind == 6
    if bool(one.any()):
        pick = torch.randint(0, spec.length, (int(one.sum()),), generator=gen)
        mask = (torch.arange(spec.length).view(1, -1) == pick.view(-1, 1)).to(torch.int64).unsqueeze(-1)
        k[one] = mask.expand(-1, -1, d).clone()
    sparse = kind == 7
    for x in (q, k, v):
        x[sparse] = (torch.rand(int(sparse.sum()), x.shape[1], d, generator=gen) < 0.05).to(torch.int64)
    return q, k, v


def sdsa_reference(spec: SDSASpec, q, k, v) -> dict[str, torch.Tensor]:
    """Arrays of an SDSA vector file: ``q`` (S, Lq, dh), ``k``, ``v`` (S, L, dh) uint8 spikes, and the
    golden ``kv`` (S, dh, dh) and ``y`` (S, Lq, dh) int64 of ``sdsa_attention`` per sequence."""
    q, k, v = (torch.as_tensor(x) for x in (q, k, v))
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(f"SDSA vectors: q, k, v must be 3-D (sequences, rows, head_dim); got shapes "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    r = sdsa_attention(spec, q, k, v)
    spikes = {name: x.to(torch.uint8) for name, x in (("q", q), ("k", k), ("v", v))}
    return {**spikes, "kv": r.kv, "y": r.y}


__all__ = ["BEAT_KINDS", "DENSITIES", "KIND_LOAD", "KIND_QUERY", "SDSAResult", "SDSASpec", "SEQUENCE_KINDS",
           "sdsa_attention", "sdsa_normalize_beats", "sdsa_random_qkv", "sdsa_reference", "sdsa_run_beats",
           "sequence_beats"]
