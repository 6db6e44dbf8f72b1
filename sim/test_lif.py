"""LIF array under Verilator, bit for bit against golden vectors.

Each spec's golden vector file is written, read back through the checked
loader, turned into stream beats and run through ``rtl.LIFArray`` by the shared
cocotb bench (``sim/stream_bench.py``) with seeded random valid/ready gaps;
every output beat (spike bits and membranes) must equal the golden one.

The time-shared configurations (``addressed`` + ``runtime_params``) run several
layers, each with its own threshold, leak and reset mode and its own range of
state words, on one array: the layers' beats are interleaved at random (each
group's beats stay in order, as a core sends them), so beats of one group often
follow each other closely and the read-after-write interlock is exercised; the
golden answer is ``lif_run_beats``, itself checked against per-layer ``lif_run``
in ``tests/test_lif.py``.
"""

from __future__ import annotations

import random

import pytest

from golden.lif import (LIFSpec, lif_beat_reference, lif_beats_from_arrays, lif_random_currents,
                        lif_reference)
from golden.vectors import load_vectors, save_vectors
from rtl.lif import LIFArray, lif_beat_outputs, lif_expected_beats, lif_input_beats, lif_layer_beats

# name -> (spec, sequences, steps); each checks at least 10,000 neuron updates.
COSIM_SPECS = {
    # shift leak, subtract reset, N > P (state in memory), membranes streamed out
    "shift-subtract-N64P4": (LIFSpec(n_neurons=64, lanes=4), 8, 20),
    # multiply leak, zero reset, refractory, N = P
    "mult-zero-refr-N8P8": (LIFSpec(n_neurons=8, lanes=8, leak_mode="multiply", leak_beta=200,
                                    leak_frac_bits=8, reset_mode="zero", refractory=3), 50, 26),
    # near saturation: 10-bit membrane fed 10-bit inputs, no reset, spikes only
    "sat-none-N32P2": (LIFSpec(n_neurons=32, lanes=2, membrane_width=10, input_width=10, threshold=400,
                               reset_mode="none", leak_shift=4, emit_membrane=False), 16, 20),
    # wrapping overflow, subtract reset, multiply leak with refractory, N > P
    "wrap-subtract-N48P6": (LIFSpec(n_neurons=48, lanes=6, membrane_width=9, input_width=8,
                                    threshold=120, overflow="wrap", leak_mode="multiply",
                                    leak_beta=250, refractory=1), 10, 21),
}


# Time-shared configurations: name -> (array spec, layers, sequences, steps). A layer is a dict of
# LIFSpec overrides (n_neurons and its parameters); layers own consecutive state words. Each checks
# at least 10,000 neuron updates.
LAYER_SPECS = {
    # 16 words, shift leak, refractory: three layers with every reset mode
    "layers-shift-refr-N64P4": (
        LIFSpec(n_neurons=64, lanes=4, refractory=2, addressed=True, runtime_params=True),
        [dict(n_neurons=24, threshold=700, leak_shift=2, reset_mode="subtract"),
         dict(n_neurons=16, threshold=300, leak_shift=4, reset_mode="zero"),
         dict(n_neurons=24, threshold=1500, leak_shift=1, reset_mode="none")], 4, 40),
    # 4 words (beats of one group close together), multiply leak, wrapping overflow
    "layers-mult-wrap-N8P2": (
        LIFSpec(n_neurons=8, lanes=2, membrane_width=10, input_width=9, threshold=100, leak_mode="multiply",
                leak_frac_bits=8, overflow="wrap", addressed=True, runtime_params=True),
        [dict(n_neurons=2, threshold=100, leak_beta=200, reset_mode="subtract"),
         dict(n_neurons=2, threshold=300, leak_beta=256, reset_mode="none"),
         dict(n_neurons=4, threshold=50, leak_beta=100, reset_mode="zero")], 50, 26),
}


def interleave_keeping_group_order(beats: list, tags: list, rng: random.Random):
    """A uniformly random interleaving of the per-group subsequences of ``beats`` (each group's
    beats keep their order, so every neuron sees its own inputs in order)."""
    queues: dict[int, list] = {}
    for beat, tag in zip(beats, tags):
        queues.setdefault(beat["group"], []).append((beat, tag))
    for queue in queues.values():
        queue.reverse()
    order = [g for g, queue in queues.items() for _ in queue]
    rng.shuffle(order)
    out = [queues[g].pop() for g in order]
    return [b for b, _ in out], [t for _, t in out]


def lif_layer_stream(spec: LIFSpec, layers: list[dict], sequences: int, steps: int, seed: int):
    """Several layers on one addressed array: (layer specs, layer currents, beats, tags).

    Layer l gets ``lif_random_currents`` (sequences, steps, N_l) for its own threshold; its beats
    (``lif_layer_beats``) are interleaved with the others' at random; ``tags[k]`` = (l, s, t, g)
    says which layer, sequence, step and layer-local group beat k is.
    """
    rng = random.Random(seed)
    layer_specs, layer_currents, beats, tags = [], [], [], []
    base = 0
    for index, overrides in enumerate(layers):
        layer = spec.replace(addressed=False, runtime_params=False, **overrides)
        currents = lif_random_currents(layer, sequences, steps, seed=seed + index)
        beats += lif_layer_beats(spec, layer, currents, base)
        tags += [(index, s, t, g) for s in range(sequences) for t in range(steps) for g in range(layer.groups)]
        layer_specs.append(layer)
        layer_currents.append(currents)
        base += layer.groups
    beats, tags = interleave_keeping_group_order(beats, tags, rng)
    return layer_specs, layer_currents, beats, tags


def write_lif_beat_vectors(directory, spec: LIFSpec, beats: list, seed: int):
    return save_vectors(directory, "lif", spec.to_dict(), seed, lif_beat_reference(spec, beats),
                        meta={"stream": "beats"})


def lif_beat_stream_from_vectors(directory):
    """Beat-level golden vector directory -> (spec, input beats, expected output beats)."""
    vectors = load_vectors(directory, block="lif")
    spec = LIFSpec.from_dict(vectors.spec)
    return (spec, lif_beats_from_arrays(spec, vectors.arrays),
            lif_beat_outputs(spec, vectors["spikes"], vectors["membrane"]))


def write_lif_vectors(directory, spec: LIFSpec, sequences: int, steps: int, seed: int):
    currents = lif_random_currents(spec, sequences, steps, seed=seed)
    return save_vectors(directory, "lif", spec.to_dict(), seed, lif_reference(spec, currents))


def lif_stream_from_vectors(directory):
    """Golden vector directory -> (spec, input beats, expected output beats)."""
    vectors = load_vectors(directory, block="lif")
    spec = LIFSpec.from_dict(vectors.spec)
    return (spec, lif_input_beats(spec, vectors["currents"]),
            lif_expected_beats(spec, vectors["spikes"], vectors["membrane"]))


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_lif_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, sequences, steps = COSIM_SPECS[name]
    assert spec.n_neurons * sequences * steps >= 10_000
    directory = write_lif_vectors(tmp_path / "vectors", spec, sequences, steps, seed=11)
    spec, beats, expected = lif_stream_from_vectors(directory)
    report = cosim(LIFArray(spec), "lif_array", beats, expected, tmp_path / "run",
                   seed=5, valid_prob=0.7, ready_prob=0.7)
    assert report.result.beats_checked == sequences * steps * spec.groups
    assert report.mismatches == 0, report.explain()


@pytest.mark.parametrize("name", sorted(LAYER_SPECS))
def test_lif_layers_verilator_bit_exact(name, tmp_path):
    """Several layers time-shared on one addressed array with per-beat parameters."""
    from sim.harness import cosim

    spec, layers, sequences, steps = LAYER_SPECS[name]
    _, _, beats, _ = lif_layer_stream(spec, layers, sequences, steps, seed=11)
    assert len(beats) * spec.lanes >= 10_000
    directory = write_lif_beat_vectors(tmp_path / "vectors", spec, beats, seed=11)
    spec, beats, expected = lif_beat_stream_from_vectors(directory)
    report = cosim(LIFArray(spec), "lif_array", beats, expected, tmp_path / "run",
                   seed=5, valid_prob=0.7, ready_prob=0.7)
    assert report.result.beats_checked == len(beats) == sum(
        spec.replace(**layer).groups for layer in layers) * sequences * steps
    assert report.mismatches == 0, report.explain()
