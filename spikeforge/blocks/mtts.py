"""Registry entry of the masked time-to-first-spike encoder."""

from golden.mtts import MTTSSpec, mtts_random_values, mtts_reference
from rtl.mtts import MTTSEncoder, mtts_expected_beats, mtts_input_beats

from . import Block, VectorOption


def _make_vectors(spec: MTTSSpec, seed: int, beats: int) -> dict:
    return mtts_reference(spec, mtts_random_values(spec, beats, seed=seed))


def _stream(vectors):
    spec = MTTSSpec.from_dict(vectors.spec)
    values = vectors["values"]
    if values.ndim != 2 or values.shape[1] != spec.lanes:
        raise ValueError(f"MTTS vectors: 'values' has shape {values.shape}, expected (beats, {spec.lanes})")
    want = {"time": values.shape, "silent": values.shape, "spikes": (*values.shape, spec.time_steps),
            "count": values.shape[:1]}
    for name, shape in want.items():
        if tuple(vectors[name].shape) != tuple(shape):
            raise ValueError(f"MTTS vectors: {name!r} has shape {vectors[name].shape}, expected {shape}")
    return spec, mtts_input_beats(spec, values), mtts_expected_beats(spec, vectors.arrays)


BLOCK = Block(
    name="mtts",
    summary="masked time-to-first-spike encoder (P lanes, mask + dead zone, silent counter)",
    spec_cls=MTTSSpec,
    toplevel="mtts_encoder",
    component=MTTSEncoder,
    make_vectors=_make_vectors,
    stream_from_vectors=_stream,
    work_done=lambda v: (int(v["values"].size), "values encoded"),
    vector_options={"beats": VectorOption(int, 1000, "input beats of P values")},
    demo_vector_options={"beats": 5000},
    vector_size=lambda spec, beats: beats * spec.lanes * spec.time_steps,
)
