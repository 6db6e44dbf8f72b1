"""Golden arrays -> stream words in bulk, field by field (numpy), for the bulk co-simulation.

Each block's own beat functions (``rtl/<block>.py``: ``*_input_beats`` / ``*_expected_beats``,
called through the registry's ``stream_from_vectors``) define its stream; they build one Python
dict per beat, a few microseconds each, which is seconds at 10^6 beats. The converters here
compute the same payloads as numpy columns (``sim.bulk.pack_columns`` takes them), so a million
beats take a fraction of a second. ``sim/test_bulk.py`` checks, block by block, that both give
the same words on adversarial vector sets; a block (or a variant such as a beat-level LIF file)
without a converter goes through its beat functions (``stream_words``), so nothing is ever
guessed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from golden.vectors import VectorSet


def _bits(flags: np.ndarray) -> np.ndarray:
    """(n, k) 0/1 -> (n,) ints with bit i = flags[:, i] (the layouts' packed flag fields)."""
    flags = np.asarray(flags, dtype=np.int64)
    return (flags << np.arange(flags.shape[1], dtype=np.int64)).sum(axis=1)


def _first_flags(s: int, t: int, per_step: int) -> np.ndarray:
    """first = (step == 0) for beats in (sequence, step, beat of the step) order."""
    first = np.zeros((s, t, per_step), dtype=np.int64)
    first[:, 0, :] = 1
    return first.reshape(-1)


def lif_columns(spec, vs: VectorSet):
    if "currents" not in vs.arrays:
        return None   # a beat-level file: any group order and per-beat parameters
    from golden.lif import lif_params

    cur = np.asarray(vs["currents"], dtype=np.int64)
    s, t, n = cur.shape
    G, P = spec.groups, spec.lanes
    inputs = {"current": cur.reshape(s * t * G, P), "first": _first_flags(s, t, G)}
    if spec.addressed:
        inputs["group"] = np.tile(np.arange(G, dtype=np.int64), s * t)
    if spec.runtime_params:
        inputs.update(lif_params(spec))
    outputs = {"spikes": _bits(np.asarray(vs["spikes"]).reshape(s * t * G, P))}
    if spec.emit_membrane:
        outputs["membrane"] = np.asarray(vs["membrane"], dtype=np.int64).reshape(s * t * G, P)
    return inputs, s * t * G, outputs, s * t * G


def synapse_columns(spec, vs: VectorSet):
    from rtl.logmem import weight_words
    from rtl.synapse import SPIKE, STEP, WRITE

    spikes = np.asarray(vs["spikes"], dtype=np.int64)
    s, t, n_in = spikes.shape
    words = np.asarray(weight_words(spec, np.asarray(vs["codes"], dtype=np.int64)), dtype=np.int64)
    n_load = len(words)
    flat = spikes.reshape(s * t, n_in) != 0
    counts = flat.sum(axis=1)                        # spikes per step
    rows, idx = np.nonzero(flat)                     # row-major: ascending index within a step
    starts = n_load + np.concatenate([[0], np.cumsum(counts + 1)[:-1]])   # first beat of each step
    n = n_load + int(counts.sum()) + s * t
    kind = np.full(n, SPIKE, dtype=np.int64)
    first = np.zeros(n, dtype=np.int64)
    index = np.zeros(n, dtype=np.int64)
    data = np.zeros((n, spec.lanes), dtype=np.int64)
    kind[:n_load], index[:n_load], data[:n_load] = WRITE, np.arange(n_load), words
    rank = np.arange(len(rows)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[rows]
    index[starts[rows] + rank] = idx
    step_at = starts + counts
    kind[step_at] = STEP
    first[step_at] = np.tile((np.arange(t) == 0).astype(np.int64), s)
    G, P = spec.groups, spec.lanes
    cur = np.asarray(vs["currents"], dtype=np.int64)
    outputs = {"current": cur.reshape(s * t * G, P), "first": _first_flags(s, t, G),
               "sops": np.repeat(np.asarray(vs["sops"], dtype=np.int64).reshape(-1), G),
               "reads": np.repeat(np.asarray(vs["reads"], dtype=np.int64).reshape(-1), G)}
    return ({"kind": kind, "first": first, "index": index, "data": data}, n, outputs, s * t * G)


def mac_columns(spec, vs: VectorSet):
    import torch

    from golden.mac import EVENT, STEP, WRITE_B, WRITE_W, check_biases, check_weights

    weights = check_weights(spec, torch.as_tensor(vs["weights"]), exact=False).numpy()
    biases = check_biases(spec, torch.as_tensor(vs["biases"]), exact=False).numpy()
    cmd = np.asarray(vs["commands"], dtype=np.int64)
    kind, addr, value, groups, shift = (cmd[:, i] for i in range(5))
    data = cmd[:, 5:]
    if data.shape[1] != spec.lanes or not np.isin(kind, (EVENT, STEP, WRITE_W, WRITE_B)).all():
        return None   # let the beat functions name what is wrong
    event, step, write = kind == EVENT, kind == STEP, (kind == WRITE_W) | (kind == WRITE_B)
    n_w, n_b = len(weights), len(biases)
    z = np.zeros
    inputs = {
        "kind": np.concatenate([np.full(n_w, WRITE_W), np.full(n_b, WRITE_B), kind]),
        "addr": np.concatenate([np.arange(n_w), np.arange(n_b), addr]),
        "value": np.concatenate([z(n_w + n_b, np.int64), np.where(event, value, 0)]),
        "groups": np.concatenate([z(n_w + n_b, np.int64), np.where(event | step, groups, 0)]),
        "shift": np.concatenate([z(n_w + n_b, np.int64), np.where(step, shift, 0)]),
        "data": np.concatenate([weights, biases, np.where(write[:, None], data, 0)]),
    }
    outputs = np.asarray(vs["outputs"], dtype=np.int64)
    step_groups = groups[step]
    last = np.zeros(int(step_groups.sum()), dtype=np.int64)
    last[np.cumsum(step_groups) - 1] = 1
    if len(last) != len(outputs):
        return None
    return inputs, len(inputs["kind"]), {"current": outputs, "last": last}, len(outputs)


def topk_columns(spec, vs: VectorSet):
    scores = np.asarray(vs["scores"], dtype=np.int64)
    s, r, L = scores.shape
    inputs = {"score": scores.reshape(-1) if spec.version == "stream" else scores.reshape(s * r, L)}
    k = spec.top_k
    outputs = {"index": np.asarray(vs["index"], dtype=np.int64).reshape(s * r, k),
               "score": np.asarray(vs["score"], dtype=np.int64).reshape(s * r, k),
               "valid": _bits(np.asarray(vs["valid"]).reshape(s * r, k))}
    return inputs, len(inputs["score"]), outputs, s * r


def wta_columns(spec, vs: VectorSet):
    from rtl.wta_attention import KIND_LOAD, KIND_QUERY

    q, k, v = (np.asarray(vs[name], dtype=np.int64) for name in ("q", "k", "v"))
    s, lq, _ = q.shape
    L = spec.length
    qk = np.concatenate([k, q], axis=1).reshape(s * (L + lq), -1)
    vv = np.concatenate([v, np.zeros((s, lq, v.shape[2]), dtype=np.int64)], axis=1).reshape(s * (L + lq), -1)
    kind = np.tile(np.concatenate([np.full(L, KIND_LOAD), np.full(lq, KIND_QUERY)]), s)
    kk = spec.top_k
    outputs = {"out": np.asarray(vs["out"], dtype=np.int64).reshape(s * lq, -1),
               "index": np.asarray(vs["index"], dtype=np.int64).reshape(s * lq, kk),
               "valid": _bits(np.asarray(vs["valid"]).reshape(s * lq, kk))}
    return {"kind": kind, "qk": qk, "v": vv}, len(kind), outputs, s * lq


def mtts_columns(spec, vs: VectorSet):
    values = np.asarray(vs["values"], dtype=np.int64)
    n = len(values)
    outputs = {"count": np.asarray(vs["count"], dtype=np.int64)}
    if spec.emit == "code":
        outputs["time"] = np.asarray(vs["time"], dtype=np.int64)
        outputs["silent"] = _bits(vs["silent"])
    else:
        spikes = np.asarray(vs["spikes"], dtype=np.int64)          # (n, P, T)
        outputs["spikes"] = (spikes << np.arange(spikes.shape[2], dtype=np.int64)).sum(axis=2)
    return {"value": values}, n, outputs, n


def window_columns(spec, vs: VectorSet):
    maps = np.asarray(vs["maps"], dtype=np.int64).reshape(-1, spec.channels)
    windows = np.asarray(vs["windows"], dtype=np.int64).reshape(-1, len(spec.dilations), spec.taps, spec.channels)
    return {"element": maps}, len(maps), {"taps": windows}, len(windows)


CONVERTERS: dict[str, Callable] = {
    "lif": lif_columns, "synapse": synapse_columns, "mac": mac_columns, "topk": topk_columns,
    "wta": wta_columns, "mtts": mtts_columns, "window": window_columns,
}


def stream_words(block, vs: VectorSet, component=None):
    """(spec, input limbs, expected limbs, how) of a vector set: the converter if the block has one
    (``how`` = "columns"), else the block's beat functions (``how`` = "beats")."""
    from .bulk import pack_beats, pack_columns, stream_ports

    spec = block.spec_cls.from_dict(vs.spec)
    if component is None:
        component = block.component(spec)
        component._MustUse__silence = True   # only its stream layouts are used (as rtl/logmem.py does)
    in_layout, out_layout = stream_ports(component, block.in_name, block.out_name)
    convert = CONVERTERS.get(block.name)
    columns = convert(spec, vs) if convert else None
    if columns is not None:
        inputs, n_in, outputs, n_out = columns
        return spec, pack_columns(in_layout, inputs, n_in), pack_columns(out_layout, outputs, n_out), "columns"
    spec, beats, expected = block.stream_from_vectors(vs)
    return spec, pack_beats(in_layout, beats), pack_beats(out_layout, expected), "beats"


__all__ = ["CONVERTERS", "stream_words"]
