"""Registry entry of the LIF neuron array."""

from golden.lif import LIFSpec, lif_beats_from_arrays, lif_random_currents, lif_reference
from rtl.lif import LIFArray, lif_beat_outputs, lif_expected_beats, lif_input_beats

from . import Block, VectorOption


def _make_vectors(spec: LIFSpec, seed: int, sequences: int, steps: int) -> dict:
    return lif_reference(spec, lif_random_currents(spec, sequences, steps, seed=seed))


def _stream(vectors):
    spec = LIFSpec.from_dict(vectors.spec)
    if "current" in vectors.arrays:  # a beat-level file (golden.lif.lif_beat_reference), any group order
        return spec, lif_beats_from_arrays(spec, vectors.arrays), lif_beat_outputs(spec, vectors["spikes"],
                                                                                    vectors["membrane"])
    currents = vectors["currents"]
    if currents.ndim != 3 or currents.shape[2] != spec.n_neurons:
        raise ValueError(f"LIF vectors: 'currents' has shape {currents.shape}, expected "
                         f"(sequences, steps, {spec.n_neurons})")
    for name in ("spikes", "membrane"):
        if vectors[name].shape != currents.shape:
            raise ValueError(f"LIF vectors: {name!r} has shape {vectors[name].shape}, "
                             f"'currents' has {currents.shape}")
    return spec, lif_input_beats(spec, currents), lif_expected_beats(spec, vectors["spikes"], vectors["membrane"])


BLOCK = Block(
    name="lif",
    summary="LIF neuron array (P lanes, N neurons, state in block memory)",
    spec_cls=LIFSpec,
    toplevel="lif_array",
    component=LIFArray,
    make_vectors=_make_vectors,
    stream_from_vectors=_stream,
    work_done=lambda v: (int(v["currents"].size if "currents" in v.arrays else v["current"].size),
                         "neuron updates"),
    vector_options={
        "sequences": VectorOption(int, 8, "independent input sequences (each starts from v = 0)"),
        "steps": VectorOption(int, 32, "time steps per sequence"),
    },
    demo_vector_options={"sequences": 8, "steps": 40},
    vector_size=lambda spec, sequences, steps: sequences * steps * spec.n_neurons,
    # 1024 neurons: a 256-deep state memory (block RAM); 16 lanes: 4x the datapath
    synth_configs=({"n_neurons": 1024}, {"n_neurons": 1024, "lanes": 16}),
)
