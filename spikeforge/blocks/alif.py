"""Registry entry of the adaptive-threshold LIF array (Matterhorn's neurons).

The generated design's parameter memory starts at zero; a vector file's stream first loads
the per-neuron thresholds and leaks through the array's WRITE beats, then sends the update
beats, so ``spikeforge check alif`` works for any parameters.
"""

from golden.alif import ALIFSpec, alif_random_inputs, alif_random_params, alif_reference
from rtl.alif import ALIFArray, alif_stream_from_vectors

from . import Block, VectorOption


def _make_vectors(spec: ALIFSpec, seed: int, sequences: int, steps: int) -> dict:
    theta, beta = alif_random_params(spec, seed)
    currents, noise = alif_random_inputs(spec, sequences, steps, seed=seed)
    return alif_reference(spec, theta, beta, currents, noise)


def _work_done(vectors):
    if "currents" in vectors.arrays:
        return int(vectors["currents"].size), "neuron updates"
    return int(vectors["spikes"].size), "neuron updates"  # a beat-level file: one row per update beat


BLOCK = Block(
    name="alif",
    summary="adaptive-threshold LIF array (per-neuron theta/beta memory, noise input, P lanes)",
    spec_cls=ALIFSpec,
    toplevel="alif_array",
    component=ALIFArray,
    make_vectors=_make_vectors,
    stream_from_vectors=alif_stream_from_vectors,
    work_done=_work_done,
    vector_options={
        "sequences": VectorOption(int, 8, "independent input sequences (each starts from v = 0, a = 0)"),
        "steps": VectorOption(int, 32, "time steps per sequence"),
    },
    demo_vector_options={"sequences": 8, "steps": 40},
    vector_size=lambda spec, sequences, steps: sequences * steps * spec.n_neurons,
    # 1024 neurons in 4 lanes: 256-deep state and parameter memories (block RAM); 16 lanes: 16x the datapath
    synth_configs=({"n_neurons": 1024, "lanes": 4}, {"n_neurons": 256, "lanes": 16}),
)
