"""Registry entry of the synapse engine (log-quantized weight memory + mismatch + accumulators).

The generated design's weight memory starts at zero codes; a vector file's
stream first loads its codes through the engine's write port (WRITE beats),
then sends the spikes, so ``spikeforge check synapse`` works for any weights.
"""

from golden.synapse import SynapseSpec, random_codes, random_spikes, synapse_reference
from rtl.synapse import SynapseEngine, synapse_expected_beats, synapse_input_beats

from . import Block, VectorOption


def _make_vectors(spec: SynapseSpec, seed: int, sequences: int, steps: int, rate: float) -> dict:
    return synapse_reference(spec, random_codes(spec, seed), random_spikes(spec, sequences, steps, rate, seed))


def _stream(vectors):
    spec = SynapseSpec.from_dict(vectors.spec)
    spikes, codes = vectors["spikes"], vectors["codes"]
    if spikes.ndim != 3 or spikes.shape[2] != spec.n_inputs:
        raise ValueError(f"synapse vectors: 'spikes' has shape {spikes.shape}, expected "
                         f"(sequences, steps, {spec.n_inputs})")
    currents = vectors["currents"]
    if currents.shape != spikes.shape[:2] + (spec.n_outputs,):
        raise ValueError(f"synapse vectors: 'currents' has shape {currents.shape}, expected "
                         f"{spikes.shape[:2] + (spec.n_outputs,)}")
    for name in ("sops", "reads"):
        if vectors[name].shape != spikes.shape[:2]:
            raise ValueError(f"synapse vectors: {name!r} has shape {vectors[name].shape}, expected {spikes.shape[:2]}")
    beats = synapse_input_beats(spec, spikes.astype("int64"), load_codes=codes.astype("int64"))
    return spec, beats, synapse_expected_beats(spec, currents, vectors["sops"], vectors["reads"])


BLOCK = Block(
    name="synapse",
    summary="event-driven synapse engine (log-quantized weight memory, analog mismatch, P adds/cycle)",
    spec_cls=SynapseSpec,
    toplevel="synapse_engine",
    component=SynapseEngine,
    make_vectors=_make_vectors,
    stream_from_vectors=_stream,
    work_done=lambda v: (int(v["spikes"].sum()) * int(v["currents"].shape[2]), "synaptic operations"),
    vector_options={
        "sequences": VectorOption(int, 4, "independent input sequences"),
        "steps": VectorOption(int, 32, "time steps per sequence"),
        "rate": VectorOption(float, 0.1, "input spike probability per neuron and step", low=0.0, high=1.0),
    },
    demo_vector_options={"sequences": 4, "steps": 40, "rate": 0.1},
    vector_size=lambda spec, sequences, steps, rate: sequences * steps * max(spec.n_inputs, spec.n_outputs),
)
