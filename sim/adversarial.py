"""Seeded random plus adversarial golden vectors of any size, for ``spikeforge check BLOCK --count N``.

``vectors(block, spec, count, seed)`` returns an in-memory ``VectorSet`` (the arrays a vector
file of the block holds, answered by the block's own golden function) whose stream has at least
``count`` input beats -- the unit of ``--count`` is one input beat, for every block, rounded up
to whole sequences / maps / layers -- and which mixes seeded random stimulus with the cases a
hand-written test would pick:

* lif: sequences of all-zero currents (silent), all-maximum (firing on every step; the membrane
  saturates at +2^(Wv-1) - 1 where the widths allow it), all-minimum (likewise at -2^(Wv-1)),
  alternating extremes,
  single steps of theta - 1 / theta / theta + 1 (the threshold compare), and +-1;
* synapse: the weight memory has columns of the largest positive code, of the largest negative
  code, of zero codes and of random codes; steps with no spike, with every input spiking (sums
  that saturate the Wa-bit accumulator both ways), and at random rates;
* mac: weight words and biases at both extremes, EVENTs of the extreme values (and 0), STEPs of
  shift 0 whose outputs saturate, the widest and narrowest layers (Gmax and 1 group), STEPs that
  drain a different number of groups, run-time writes, and, once ``count`` allows it, layers
  long enough to saturate the Wa-bit accumulator positive and negative;
* topk: rows all at the minimum, all at the maximum, all equal, ascending, descending, k + 1
  equal maxima (a tie across the k-th place), one winner among minima, and the random kinds of
  ``topk_random_scores`` (uniform, all equal, few values, a band around ``min_score``);
* wta: all-silent Q and K (every score 0: ties everywhere), all-firing Q and K, all-one and
  all-zero V, identical keys, and random rows (``wta_random_qkv``);
* mtts: every input value in turn, the edges (input min / max, lo - 1, lo, hi, hi + 1, S +- 1, the
  dead-zone edges and their neighbours, every level boundary), rows of S only, and
  ``mtts_random_values``;
* window: all-zero, all-maximum, border-only (every window reaching into the padding at the
  map's limit), single elements in the four corners, checkerboards, and random maps.

A block without a generator here (e.g. one added later) gets its own ``make_vectors`` with its
first integer vector option scaled up to the count. Everything is vectorised (torch), so
10^6 beats take seconds; the golden functions answer, never this module.
"""

from __future__ import annotations

import math
import random
from typing import Callable

import numpy as np
import torch

from golden import fixed
from golden.vectors import VectorSet

UNIT = "input beats"


def _np(arrays: dict) -> dict:
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}


# ---------------------------------------------------------------------------
# per block


def lif_vectors(spec, count: int, seed: int) -> dict:
    from golden.lif import lif_random_currents, lif_reference

    steps = 32
    sequences = max(8, math.ceil(count / (steps * spec.groups)))
    currents = lif_random_currents(spec, sequences, steps, seed=seed)
    lo, hi = fixed.int_min(spec.input_width, True), fixed.int_max(spec.input_width, True)
    theta = spec.threshold
    near = torch.tensor([theta - 1, theta, theta + 1]).clamp(lo, hi)
    # sequence s % 8: 0, 1 random; 2 silent; 3 all max; 4 all min; 5 alternating; 6 threshold; 7 +-1
    kind = torch.arange(sequences) % 8
    currents[kind == 2] = 0
    currents[kind == 3] = hi
    currents[kind == 4] = lo
    alt = torch.where(torch.arange(steps) % 2 == 0, torch.tensor(hi), torch.tensor(lo))
    currents[kind == 5] = alt.view(1, steps, 1).expand(int((kind == 5).sum()), steps, spec.n_neurons)
    # one step of theta - 1 / theta / theta + 1 from rest (neuron n gets near[n % 3]), then silence
    thr = torch.zeros(steps, spec.n_neurons, dtype=torch.int64)
    thr[0] = near[torch.arange(spec.n_neurons) % 3]
    thr[steps // 2] = near[(torch.arange(spec.n_neurons) + 1) % 3]
    currents[kind == 6] = thr
    gen = torch.Generator().manual_seed(seed + 7)
    ones = torch.randint(0, 2, (int((kind == 7).sum()), steps, spec.n_neurons), generator=gen) * 2 - 1
    currents[kind == 7] = ones.clamp(lo, hi)
    return lif_reference(spec, currents)


def synapse_vectors(spec, count: int, seed: int) -> dict:
    from golden.synapse import random_codes, random_spikes, synapse_reference

    codes = random_codes(spec, seed)
    top = (0 << (spec.code_bits - 1)) | spec.levels      # largest positive weight
    bottom = (1 << (spec.code_bits - 1)) | spec.levels   # largest negative weight
    quarter = max(1, spec.n_outputs // 4)
    codes[:, :quarter] = top
    codes[:, quarter:2 * quarter] = bottom
    codes[:, 2 * quarter:3 * quarter] = 0
    steps = 16
    rates = (0.0, 1.0, 0.05, 0.3, 0.1)   # per step: silent, all firing, sparse, dense, default
    per_step = 1 + spec.n_inputs * sum(rates) / len(rates)
    load = spec.n_inputs * spec.groups
    sequences = max(2, math.ceil(max(0, count - load) / (steps * per_step)))
    while True:
        spikes = torch.zeros(sequences, steps, spec.n_inputs, dtype=torch.int64)
        kind = torch.arange(steps).view(1, steps).expand(sequences, steps) % len(rates)
        kind = (kind + torch.arange(sequences).view(sequences, 1)) % len(rates)   # every step kind at t = 0 too
        for index, rate in enumerate(rates):
            drawn = random_spikes(spec, sequences, steps, rate, seed=seed + index) if 0 < rate < 1 else \
                torch.full((sequences, steps, spec.n_inputs), int(rate), dtype=torch.int64)
            spikes = torch.where((kind == index).unsqueeze(-1), drawn, spikes)
        beats = load + int(spikes.sum()) + sequences * steps     # WRITEs, SPIKEs, STEPs
        if beats >= count:
            return synapse_reference(spec, codes, spikes)
        sequences += math.ceil((count - beats) / (steps * per_step)) + 1   # the random rates fell short


def mac_vectors(spec, count: int, seed: int) -> dict:
    from golden.mac import (Event, Step, WriteB, WriteW, commands_to_array, mac_run, random_biases,
                            random_program, random_weights)

    rng = random.Random(seed)
    weights, biases = random_weights(spec, seed), random_biases(spec, seed)
    wlo, whi = fixed.int_min(spec.weight_width, True), fixed.int_max(spec.weight_width, True)
    vlo, vhi = fixed.int_min(spec.value_width, True), fixed.int_max(spec.value_width, True)
    blo, bhi = fixed.int_min(spec.bias_width, True), fixed.int_max(spec.bias_width, True)
    gmax = min(spec.max_groups, spec.weight_depth, spec.bias_depth)
    # word 0: every lane at the weight maximum, word 1 at the minimum; bias word 0 / 1 likewise
    weights[0], biases[0] = whi, bhi
    if spec.weight_depth > 1:
        weights[1] = wlo
    if spec.bias_depth > 1:
        biases[1] = blo
    lanes = spec.lanes
    # events of weight word 0 (every lane whi) that take the Wa-bit accumulator past either limit
    pos = -(-(1 << (spec.acc_width - 1)) // (whi * vhi)) + 1 if whi * vhi > 0 else 0
    neg = -(-(1 << (spec.acc_width - 1)) // (whi * -vlo)) + 1 if whi * -vlo > 0 else 0
    program: list = []
    budget = count - spec.weight_depth - spec.bias_depth
    if pos and neg and budget >= 3 * (pos + neg):   # (10^6 beats at the default spec: 2 x ~133k events)
        program += [Event(0, vhi, 1)] * pos + [Step(0, 0, 1)]   # + whi * vhi per event: saturates at +2^(Wa-1) - 1
        program += [Event(0, vlo, 1)] * neg + [Step(0, 0, 1)]   # whi * vlo per event: saturates at -2^(Wa-1)
    block_kind = 0
    while len(program) < budget:
        kind = block_kind % 6
        block_kind += 1
        if kind in (0, 1):   # random layers (random_program: writes, carries, shifts 0 and max)
            program += random_program(spec, rng.randrange(1 << 30), layers=4, events=32, writes=0.05)
        elif kind == 2:      # extreme products, shift 0: the output saturates (or shows the exact sum)
            g = 1
            word = rng.choice((0, 1)) if spec.weight_depth > 1 else 0
            value = rng.choice((vlo, vhi))
            program += [Event(word, value, g)] * rng.randint(1, 600) + [Step(rng.choice((0, 1)) % spec.bias_depth,
                                                                           0, g)]
        elif kind == 3:      # the widest layer, zero values mixed in, largest shift
            g = gmax
            for _ in range(40):
                program.append(Event(rng.randrange(spec.weight_depth - g + 1), rng.choice((vlo, 0, vhi, 1, -1)), g))
            program.append(Step(rng.randrange(spec.bias_depth - g + 1), spec.max_shift, g))
        elif kind == 4:      # run-time writes of extreme words, then use them at once
            addr = rng.randrange(spec.weight_depth)
            program.append(WriteW(addr, tuple(rng.choice((wlo, whi)) for _ in range(lanes))))
            baddr = rng.randrange(spec.bias_depth)
            program.append(WriteB(baddr, tuple(rng.choice((blo, bhi)) for _ in range(lanes))))
            program += [Event(addr, rng.choice((vlo, vhi)), 1) for _ in range(8)] + [Step(baddr, 0, 1)]
        else:                # STEPs that drain fewer / more groups than the events filled (carries)
            g = rng.randint(1, gmax)
            program += [Event(rng.randrange(spec.weight_depth - g + 1), rng.randint(vlo, vhi), g) for _ in range(16)]
            drain = rng.randint(1, gmax)
            program.append(Step(rng.randrange(spec.bias_depth - drain + 1), rng.randint(0, spec.max_shift), drain))
    commands = commands_to_array(spec, program)
    return {"weights": weights, "biases": biases, "commands": commands,
            "outputs": mac_run(spec, weights, biases, commands)}


def topk_vectors(spec, count: int, seed: int) -> dict:
    from rtl.topk import topk_random_scores, topk_reference

    L, k = spec.length, spec.top_k
    rows_per_beat = 1 if spec.version == "stream" else 1.0 / L
    per_sequence = L * L * rows_per_beat
    sequences = max(4, math.ceil(count / per_sequence))
    scores = topk_random_scores(spec, sequences, seed=seed).clone()
    lo, hi = fixed.int_min(spec.score_width, spec.signed), fixed.int_max(spec.score_width, spec.signed)
    gen = torch.Generator().manual_seed(seed + 3)
    # row kind (s * L + r) % 12: 0-3 keep topk_random_scores' kinds; 4.. adversarial
    kind = (torch.arange(sequences * L).reshape(sequences, L) * 5 + seed) % 12
    ar = torch.arange(L)
    patterns = {
        4: torch.full((L,), lo),
        5: torch.full((L,), hi),
        6: torch.clamp(lo + ar, lo, hi),                        # ascending: the last keys win
        7: torch.clamp(hi - ar, lo, hi),                        # descending: the first keys win
    }
    for kd, row in patterns.items():
        scores[kind == kd] = row
    # k + 1 equal maxima at random places among minima: the tie at the k-th place goes to the lower index
    for kd, n_top in ((8, min(L, k + 1)), (9, 1), (10, min(L, k))):
        mask = kind == kd
        n = int(mask.sum())
        if n:
            order = torch.argsort(torch.rand(n, L, generator=gen), dim=1)
            rows = torch.full((n, L), lo)
            rows.scatter_(1, order[:, :n_top], hi)
            scores[mask] = rows
    # min_score edges: min_score - 1, min_score, min_score + 1
    mask = kind == 11
    n = int(mask.sum())
    if n:
        edge = torch.tensor([spec.min_score - 1, spec.min_score, spec.min_score + 1]).clamp(lo, hi)
        scores[mask] = edge[torch.randint(0, 3, (n, L), generator=gen)]
    return topk_reference(spec, scores)


def wta_vectors(spec, count: int, seed: int) -> dict:
    from rtl.wta_attention import wta_random_qkv, wta_reference

    per_sequence = 2 * spec.length
    sequences = max(6, math.ceil(count / per_sequence))
    q, k, v = (x.clone() for x in wta_random_qkv(spec, sequences, seed=seed))
    qlo, qhi = fixed.int_min(spec.qk_width, spec.qk_signed), fixed.int_max(spec.qk_width, spec.qk_signed)
    vlo, vhi = fixed.int_min(spec.v_width, spec.v_signed), fixed.int_max(spec.v_width, spec.v_signed)
    kind = torch.arange(sequences) % 6   # 0 random; 1 silent; 2 all firing; 3 V extremes; 4 equal keys; 5 mixed
    q[kind == 1], k[kind == 1] = 0, 0
    q[kind == 2], k[kind == 2] = qhi, qhi
    v[kind == 2] = vhi
    v[kind == 3] = torch.where(torch.arange(spec.length) % 2 == 0, torch.tensor(vhi),
                               torch.tensor(vlo)).view(spec.length, 1)
    if spec.qk_signed:
        q[kind == 3], k[kind == 3] = qlo, qlo     # the largest positive products
    k[kind == 4] = k[kind == 4][:, :1, :]         # every key the same: a tie across all L keys
    v[kind == 5] = vlo
    return wta_reference(spec, q, k, v)


def mtts_vectors(spec, count: int, seed: int) -> dict:
    from golden.mtts import mtts_random_values, mtts_reference

    P = spec.lanes
    beats = max(16, count)
    values = mtts_random_values(spec, beats, seed=seed).clone()
    vmin, vmax, s = spec.input_min, spec.input_max, spec.silent_value
    # every input value in turn (lane-major), repeated over the first beats
    sweep = torch.arange(vmin, vmax + 1, dtype=torch.int64)
    n_sweep = min(beats // 2, math.ceil(len(sweep) / P))
    flat = sweep.repeat(math.ceil(n_sweep * P / len(sweep)) + 1)[: n_sweep * P]
    values[:n_sweep] = flat.view(n_sweep, P)
    # the edges, every beat in 4 of the rest: min/max, range, silent value, dead zone, level boundaries
    r, t = spec.value_range, spec.time_steps
    edges = [vmin, vmax, spec.lo - 1, spec.lo, spec.hi, spec.hi + 1, s - 1, s, s + 1,
             spec.dead_lo - 1, spec.dead_lo, spec.dead_lo + 1, spec.dead_hi - 1, spec.dead_hi, spec.dead_hi + 1]
    edges += [spec.lo + (kk * r + t - 1) // t + d for kk in range(1, t) for d in (-1, 0)]
    edges = torch.tensor(sorted({min(max(e, vmin), vmax) for e in edges}), dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed + 5)
    rest = torch.arange(n_sweep, beats)
    edge_rows = rest[rest % 4 == 1]
    values[edge_rows] = edges[torch.randint(0, len(edges), (len(edge_rows), P), generator=gen)]
    values[rest[rest % 16 == 2]] = s          # whole beats of silence
    return mtts_reference(spec, values)


def window_vectors(spec, count: int, seed: int) -> dict:
    from golden.window import window_random_maps, window_reference

    shape = spec.map_shape()
    per_map = spec.height * spec.width   # one beat per map position (C channels)
    n_maps = max(7, math.ceil(count / per_map))
    maps = window_random_maps(spec, n_maps, seed=seed).clone()
    lo, hi = fixed.int_min(spec.element_width, spec.signed), fixed.int_max(spec.element_width, spec.signed)
    kind = torch.arange(n_maps) % 7   # 0 random; 1 zeros; 2 all max; 3 border; 4 corners; 5 checkerboard; 6 min
    H, W = spec.height, spec.width
    rows = torch.arange(H).view(H, 1)
    cols = torch.arange(W).view(1, W)
    border = (rows == 0) | (rows == H - 1) | (cols == 0) | (cols == W - 1)
    corners = ((rows == 0) | (rows == H - 1)) & ((cols == 0) | (cols == W - 1))
    checker = (rows + cols) % 2 == 0
    grid = {3: border, 4: corners, 5: checker}

    def as_map(mask):
        m = torch.where(mask, torch.tensor(hi), torch.tensor(lo if lo != 0 else 0))
        m = m.view(*shape[:-1], 1) if spec.dims == 2 else m.view(W, 1)
        return m.expand(*shape)

    maps[kind == 1] = 0
    maps[kind == 2] = hi
    maps[kind == 6] = lo
    for kd, mask in grid.items():
        maps[kind == kd] = as_map(mask if spec.dims == 2 else mask[0])
    return window_reference(spec, maps)


GENERATORS: dict[str, Callable[..., dict]] = {
    "lif": lif_vectors, "synapse": synapse_vectors, "mac": mac_vectors, "topk": topk_vectors,
    "wta": wta_vectors, "mtts": mtts_vectors, "window": window_vectors,
}


def _scaled_make_vectors(block, spec, count: int, seed: int) -> dict:
    """A block without an adversarial generator: its own random vectors, its first integer vector
    option scaled (from a probe at the default options) until the stream has ``count`` input beats."""
    ints = [name for name, opt in block.vector_options.items() if opt.type is int]
    options = {name: opt.default for name, opt in block.vector_options.items()}
    if not ints:
        return block.make_vectors(spec, seed, **options)
    name = ints[0]

    def beats_at(value: int) -> int:
        arrays = block.make_vectors(spec, seed, **{**options, name: value})
        return len(block.stream_from_vectors(VectorSet(block.name, spec.to_dict(), seed, _np(arrays)))[1])

    # beats = fixed + per_unit * value (e.g. parameter loads + updates): two small probes fit it
    v0 = options[name]
    b0, b1 = beats_at(v0), beats_at(2 * v0)
    if b0 >= count:
        return block.make_vectors(spec, seed, **options)
    per_unit = max(1e-9, (b1 - b0) / v0)
    options[name] = max(1, math.ceil(v0 + (count - b0) / per_unit))
    return block.make_vectors(spec, seed, **options)


def vectors(block, spec, count: int, seed: int = 0) -> VectorSet:
    """Random + adversarial golden vectors for ``block`` at ``spec``: at least ``count`` input beats."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    make = GENERATORS.get(block.name)
    arrays = make(spec, count, seed) if make else _scaled_make_vectors(block, spec, count, seed)
    return VectorSet(block.name, spec.to_dict(), seed, _np(arrays),
                     meta={"count": count, "generator": "sim.adversarial" if make else "make_vectors (scaled)"})


__all__ = ["GENERATORS", "UNIT", "vectors"]
