"""Adaptive-threshold LIF array under Verilator, bit for bit against golden vectors.

Each configuration's golden vector file is written, read back through the checked loader,
turned into stream beats (``rtl.alif.alif_stream_from_vectors``: the per-neuron thresholds
and leaks loaded by WRITE beats, then the updates) and run through ``rtl.ALIFArray`` by the
shared cocotb bench (``sim/stream_bench.py``) with seeded random valid/ready gaps; every
output beat (spike bits, membranes, adaptations) must equal the golden one (``alif_run``).

The addressed configuration runs beats of random groups in a random order (each group's
updates in order, as a core sends them), with WRITE beats that change a group's parameters
between its updates; its golden answer is ``alif_run_beats``, itself checked against
``alif_run`` in ``tests/test_alif.py``.
"""

from __future__ import annotations

import random

import pytest

from golden.alif import (UPDATE, WRITE, ALIFSpec, alif_beat_reference, alif_random_inputs, alif_random_params,
                         alif_reference)
from golden.vectors import load_vectors, save_vectors
from rtl.alif import ALIFArray, alif_stream_from_vectors

# name -> (spec, sequences, steps); each checks at least 10,000 neuron updates.
COSIM_SPECS = {
    # the default widths (Wv = Wi = Wa = 24, F = 8), 16-bit noise, N > P: state and parameters in memory
    "noise-N64P4": (ALIFSpec(n_neurons=64, lanes=4), 8, 20),
    # N = P, narrow widths: the membrane saturates both ways, the adaptation saturates at 2^6 - 1
    "sat-N8P8": (ALIFSpec(n_neurons=8, lanes=8, membrane_width=8, input_width=8, noise_width=6,
                          leak_frac_bits=4, adapt_shift=2, adapt_increment=40, adapt_width=6), 50, 26),
}
# with --long only (one more Verilator build): G = 2 in cyclic order (two beats every four
# cycles), no noise input, adaptation not streamed out; tests/test_alif.py runs G = 1, 2, 3 fast
LONG_SPECS = {
    "interlock-N4P2": (ALIFSpec(n_neurons=4, lanes=2, membrane_width=12, input_width=10, noise_width=0,
                                leak_frac_bits=6, adapt_shift=3, adapt_increment=300, adapt_width=10,
                                emit_adaptation=False), 50, 50),
}

# name -> (spec, updates, seed): an addressed array, beats from ``addressed_stream``
ADDRESSED_SPECS = {
    # G = 4 words of 2 lanes in random order (the interlock at every distance), no noise input,
    # membranes not streamed out, mid-stream parameter writes; 10,000 neuron updates
    "addressed-N8P2": (ALIFSpec(n_neurons=8, lanes=2, membrane_width=12, input_width=10, noise_width=0,
                                leak_frac_bits=8, adapt_shift=2, adapt_increment=200, adapt_width=10,
                                emit_membrane=False, addressed=True), 5000, 11),
    # the same with a parameter memory of its own: Gp = 3 words, every update naming one at random
    # (neurons of different state words sharing parameters, as a layer's positions do in the core)
    "addressed-N8P2-Gp3": (ALIFSpec(n_neurons=8, lanes=2, membrane_width=12, input_width=10, noise_width=0,
                                    leak_frac_bits=8, adapt_shift=2, adapt_increment=200, adapt_width=10,
                                    emit_membrane=False, addressed=True, param_groups=3), 5000, 12),
}


def write_alif_vectors(directory, spec: ALIFSpec, sequences: int, steps: int, seed: int):
    theta, beta = alif_random_params(spec, seed)
    currents, noise = alif_random_inputs(spec, sequences, steps, seed=seed)
    return save_vectors(directory, "alif", spec.to_dict(), seed, alif_reference(spec, theta, beta, currents, noise))


def addressed_stream(spec: ALIFSpec, n_updates: int, seed: int) -> tuple[list[dict], object, object]:
    """Random update beats of an addressed array, each group's own sequence in order but the
    groups interleaved at random (often back to back), with a WRITE of new parameters for a
    random group about every 50 beats; with ``param_groups`` every update names a random parameter
    word and the WRITEs go to random parameter words. Returns (beats, initial theta, initial beta)."""
    rng = random.Random(seed)
    theta, beta = alif_random_params(spec.replace(n_neurons=spec.param_neurons), seed)
    currents, noise = alif_random_inputs(spec, 1, n_updates, seed=seed)
    lanes = spec.lanes
    beats, step = [], [0] * spec.groups
    for k in range(n_updates):
        g = rng.choice([rng.randrange(spec.groups), beats[-1]["group"] if beats else 0])
        if rng.random() < 0.02:
            new_theta, new_beta = alif_random_params(spec, rng.randrange(1 << 20))
            word = rng.randrange(spec.param_groups) if spec.param_groups else g
            beats.append({"kind": WRITE, "group": word, "theta": new_theta[:lanes].tolist(),
                          "beta": new_beta[:lanes].tolist()})
        row = slice(g * lanes, (g + 1) * lanes)
        beats.append({"kind": UPDATE, "group": g, "first": int(step[g] % 40 == 0),
                      "current": currents[0, k, row].tolist(), "noise": noise[0, k, row].tolist()})
        if spec.param_groups:
            beats[-1]["param_group"] = rng.randrange(spec.param_groups)
        if not spec.noise_width:
            del beats[-1]["noise"]
        step[g] += 1
    return beats, theta, beta


def write_alif_beat_vectors(directory, spec: ALIFSpec, beats, theta, beta, seed: int):
    return save_vectors(directory, "alif", spec.to_dict(), seed, alif_beat_reference(spec, beats, theta, beta),
                        meta={"stream": "beats"})


def alif_stream_from_directory(directory):
    """Golden vector directory -> (spec, input beats, expected output beats)."""
    return alif_stream_from_vectors(load_vectors(directory, block="alif"))


@pytest.mark.parametrize("name", [*sorted(COSIM_SPECS),
                                  *(pytest.param(n, marks=pytest.mark.long) for n in sorted(LONG_SPECS))])
def test_alif_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, sequences, steps = {**COSIM_SPECS, **LONG_SPECS}[name]
    assert spec.n_neurons * sequences * steps >= 10_000
    directory = write_alif_vectors(tmp_path / "vectors", spec, sequences, steps, seed=11)
    spec, beats, expected = alif_stream_from_directory(directory)
    report = cosim(ALIFArray(spec), "alif_array", beats, expected, tmp_path / "run",
                   seed=5, valid_prob=0.7, ready_prob=0.7)
    assert report.result.beats_checked == sequences * steps * spec.groups
    assert report.mismatches == 0, report.explain()


@pytest.mark.parametrize("name", sorted(ADDRESSED_SPECS))
def test_alif_addressed_verilator_bit_exact(name, tmp_path):
    """Random group order, back-to-back beats of one group, parameter writes between updates."""
    from sim.harness import cosim

    spec, n_updates, seed = ADDRESSED_SPECS[name]
    beats, theta, beta = addressed_stream(spec, n_updates, seed)
    assert n_updates * spec.lanes >= 10_000
    assert sum(b["kind"] == WRITE for b in beats) >= 20
    directory = write_alif_beat_vectors(tmp_path / "vectors", spec, beats, theta, beta, seed)
    spec, beats, expected = alif_stream_from_directory(directory)
    report = cosim(ALIFArray(spec), "alif_array", beats, expected, tmp_path / "run",
                   seed=5, valid_prob=0.7, ready_prob=0.7)
    assert report.result.beats_checked == n_updates
    assert report.mismatches == 0, report.explain()
