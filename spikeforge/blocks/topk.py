"""Registry entry of the top-k winner-take-all unit (streaming insertion or sorting network)."""

from golden.wta import TopKSpec
from rtl.topk import TopK, topk_expected_beats, topk_input_beats, topk_random_scores, topk_reference

from . import Block, VectorOption


def _make_vectors(spec: TopKSpec, seed: int, sequences: int) -> dict:
    return topk_reference(spec, topk_random_scores(spec, sequences, seed=seed))


def _stream(vectors):
    spec = TopKSpec.from_dict(vectors.spec)
    scores = vectors["scores"]
    if scores.ndim != 3 or scores.shape[2] != spec.length:
        raise ValueError(f"top-k vectors: 'scores' has shape {scores.shape}, expected (sequences, rows, "
                         f"{spec.length})")
    for name in ("index", "score", "valid"):
        if vectors[name].shape != (*scores.shape[:2], spec.top_k):
            raise ValueError(f"top-k vectors: {name!r} has shape {vectors[name].shape}, expected "
                             f"{(*scores.shape[:2], spec.top_k)}")
    return (spec, topk_input_beats(spec, scores),
            topk_expected_beats(spec, vectors["index"], vectors["score"], vectors["valid"]))


BLOCK = Block(
    name="topk",
    summary="top-k winner-take-all unit (streaming insertion or pipelined bitonic network; ties -> lower index)",
    spec_cls=TopKSpec,
    toplevel="topk",
    component=TopK,
    make_vectors=_make_vectors,
    stream_from_vectors=_stream,
    work_done=lambda v: (int(v["scores"].shape[0] * v["scores"].shape[1]), "rows"),
    vector_options={"sequences": VectorOption(int, 128, "sequences of L rows of L scores")},
    demo_vector_options={"sequences": 128},
    vector_size=lambda spec, sequences: sequences * spec.length * spec.length,
)
