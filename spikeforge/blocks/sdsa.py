"""Registry entry of the spike-driven self-attention unit (Matterhorn: y = q (k^T v), one head).

A vector file holds S sequences of L K / V rows and L Q rows (spikes) with the golden KV and y
(``golden.sdsa.sdsa_reference``); its stream is, per sequence, L load beats then L query beats.
"""

from golden.sdsa import SDSASpec, sdsa_random_qkv, sdsa_reference
from rtl.sdsa import SDSAttention, sdsa_stream_from_vectors

from . import Block, VectorOption


def _make_vectors(spec: SDSASpec, seed: int, sequences: int) -> dict:
    q, k, v = sdsa_random_qkv(spec, sequences, seed=seed)
    return sdsa_reference(spec, q, k, v)


BLOCK = Block(
    name="sdsa",
    summary="spike-driven self-attention unit (Matterhorn): KV = k^T v per load beat, y = q KV, P KV rows a cycle",
    spec_cls=SDSASpec,
    toplevel="sdsa_attention",
    component=SDSAttention,
    make_vectors=_make_vectors,
    stream_from_vectors=sdsa_stream_from_vectors,
    work_done=lambda v: (int(v["q"].shape[0] * v["q"].shape[1]), "attention rows"),
    vector_options={"sequences": VectorOption(int, 128, "sequences of L K/V rows and L Q rows")},
    demo_vector_options={"sequences": 128},
    # the unit is one head: the larger configurations widen the head (dh^2 counters) and the lanes
    synth_configs=({"head_dim": 32, "lanes": 8}, {"length": 64, "head_dim": 16, "lanes": 16}),
    vector_size=lambda spec, sequences: sequences * max(spec.length, spec.head_dim) * spec.head_dim,
)
