"""Registry entry of the integer layer norm unit (LSFormer's and TEFormer's norms).

A vector file holds one parameter table (gamma, beta: D each) and ``tokens`` tokens of D
values with the golden statistics and outputs (``golden.layernorm.layer_norm_reference``); its
stream is D PARAM beats, then the tokens' DATA beats.
"""

from golden.layernorm import LayerNormSpec, layer_norm_random_inputs, layer_norm_reference
from rtl.layernorm import LayerNorm, layernorm_expected_beats, layernorm_input_beats

from . import Block, VectorOption


def _make_vectors(spec: LayerNormSpec, seed: int, tokens: int) -> dict:
    return layer_norm_reference(spec, **layer_norm_random_inputs(spec, tokens, seed=seed))


def _stream(vectors):
    spec = LayerNormSpec.from_dict(vectors.spec)
    u = vectors["u"]
    if u.ndim != 2 or u.shape[1] != spec.dim:
        raise ValueError(f"layer norm vectors: 'u' has shape {u.shape}, expected (tokens, {spec.dim})")
    want = {"gamma": (spec.dim,), "beta": (spec.dim,), "y": u.shape}
    for name, shape in want.items():
        if tuple(vectors[name].shape) != tuple(shape):
            raise ValueError(f"layer norm vectors: {name!r} has shape {vectors[name].shape}, expected {shape}")
    return (spec, layernorm_input_beats(spec, u, vectors["gamma"], vectors["beta"]),
            layernorm_expected_beats(spec, vectors["y"]))


BLOCK = Block(
    name="layernorm",
    summary="integer layer norm (floor mean / variance, bitwise isqrt, one sequential divider)",
    spec_cls=LayerNormSpec,
    toplevel="layer_norm",
    component=LayerNorm,
    make_vectors=_make_vectors,
    stream_from_vectors=_stream,
    work_done=lambda v: (int(v["u"].size), "values normalised"),
    vector_options={"tokens": VectorOption(int, 200, "tokens of D values")},
    demo_vector_options={"tokens": 200},
    synth_configs=({"dim": 64, "input_width": 20, "gamma_width": 16, "beta_width": 16},),
    vector_size=lambda spec, tokens: tokens * spec.dim,
    # a token of D outputs takes token_cycles: about Nx + 8 a channel
    cycles_per_output=lambda spec: -(-LayerNorm.token_cycles(spec) // spec.dim),
)
