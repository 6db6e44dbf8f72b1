"""Registry entry of the event-driven multiply-accumulate engine.

The generated design's weight and bias memories start at zero; a vector file's
stream first loads its weights and biases through the engine's write ports
(WRITE_W / WRITE_B beats), then sends the commands, so ``spikeforge check mac``
works for any memory contents.
"""

import torch

from golden.mac import MACSpec, check_biases, check_weights, commands_from_array, mac_count, mac_reference
from rtl.mac import MACEngine, mac_expected_beats, mac_input_beats

from . import Block, VectorOption


def _make_vectors(spec: MACSpec, seed: int, layers: int, events: int, writes: float) -> dict:
    return mac_reference(spec, seed, layers=layers, events=events, writes=writes)


def _stream(vectors):
    spec = MACSpec.from_dict(vectors.spec)
    weights = check_weights(spec, torch.as_tensor(vectors["weights"]))
    biases = check_biases(spec, torch.as_tensor(vectors["biases"]))
    commands = commands_from_array(spec, vectors["commands"])
    outputs = vectors["outputs"]
    if outputs.ndim != 2 or outputs.shape[1] != spec.lanes:
        raise ValueError(f"mac vectors: 'outputs' has shape {outputs.shape}, expected (n_beats, {spec.lanes})")
    beats = mac_input_beats(spec, commands, load_weights=weights, load_biases=biases)
    return spec, beats, mac_expected_beats(spec, outputs, commands)


BLOCK = Block(
    name="mac",
    summary="event-driven multiply-accumulate engine (weight/bias/accumulator memories, P MACs/cycle)",
    spec_cls=MACSpec,
    toplevel="mac_engine",
    component=MACEngine,
    make_vectors=_make_vectors,
    stream_from_vectors=_stream,
    work_done=lambda v: (mac_count(MACSpec.from_dict(v.spec), v["commands"]), "multiply-accumulates"),
    vector_options={
        "layers": VectorOption(int, 8, "layers: each a run of EVENTs of G words, then a STEP"),
        "events": VectorOption(int, 32, "EVENTs per layer"),
        "writes": VectorOption(float, 0.05, "probability of a run-time WRITE_W / WRITE_B between commands",
                               low=0.0, high=1.0),
    },
    demo_vector_options={"layers": 12, "events": 40, "writes": 0.03},
    # 16 lanes: 4x the multipliers; 4096 x 4 weights and 256 accumulator words: block RAM
    synth_configs=({"lanes": 16}, {"weight_depth": 4096, "max_groups": 256, "bias_depth": 256}),
    vector_size=lambda spec, layers, events, writes: layers * (events + spec.max_groups + 2) * (5 + spec.lanes),
)
