"""Registry entry of the WTA attention unit (one head: AND-popcount scores, top-k, sum of V rows)."""

from golden.wta import WTASpec
from rtl.wta_attention import WTAAttention, wta_expected_beats, wta_input_beats, wta_random_qkv, wta_reference

from . import Block, VectorOption


def _make_vectors(spec: WTASpec, seed: int, sequences: int) -> dict:
    q, k, v = wta_random_qkv(spec, sequences, seed=seed)
    return wta_reference(spec, q, k, v)


def _stream(vectors):
    spec = WTASpec.from_dict(vectors.spec)
    q = vectors["q"]
    for name, width in (("out", spec.value_dim), ("index", spec.top_k), ("valid", spec.top_k)):
        if vectors[name].shape != (*q.shape[:2], width):
            raise ValueError(f"WTA vectors: {name!r} has shape {vectors[name].shape}, expected "
                             f"{(*q.shape[:2], width)}")
    return (spec, wta_input_beats(spec, q, vectors["k"], vectors["v"]),
            wta_expected_beats(spec, vectors["out"], vectors["index"], vectors["valid"]))


BLOCK = Block(
    name="wta",
    summary="WTA attention unit: P-lane AND-popcount scores, causal mask, top-k, sum of winners' V, 1/k",
    spec_cls=WTASpec,
    toplevel="wta_attention",
    component=WTAAttention,
    make_vectors=_make_vectors,
    stream_from_vectors=_stream,
    work_done=lambda v: (int(v["q"].shape[0] * v["q"].shape[1]), "attention rows"),
    vector_options={"sequences": VectorOption(int, 128, "sequences of L keys and L queries")},
    demo_vector_options={"sequences": 128},
    # the unit is one head: a larger configuration grows L, k and the lanes (not `heads`)
    synth_configs=({"length": 64, "k": 16, "lanes": 16},),
    vector_size=lambda spec, sequences: sequences * spec.heads * spec.length * max(spec.length, spec.head_dim, spec.value_dim),
)
