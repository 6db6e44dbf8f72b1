"""Integer layer norm unit under Verilator, bit for bit against golden vectors.

Each configuration's golden vector file (seeded random tokens that reach the corners:
full-range, constant (var = 0), one extreme channel among zeros (the output bound's worst
case), narrow spread; gamma and beta at their extremes) is written, read back through the
checked loader and streamed through ``rtl.LayerNorm`` (D PARAM beats, then the tokens)
with seeded random valid/ready gaps; every output beat (y and the token's last flag) must
equal the golden one. The trained LSFormer's real head-norm inputs (``sim/data/lsformer_ln``,
hash-checked) run the same way, their outputs recomputed by the golden function now and
equal to the ones the model wrote with the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from golden.layernorm import LayerNormSpec, layer_norm_reference
from golden.vectors import load_vectors, save_vectors
from spikeforge.blocks import get_block

DATA = Path(__file__).resolve().parent / "data" / "lsformer_ln"

# name -> (spec, tokens); each checks >= 1,500 values and >= 60 tokens
COSIM_SPECS = {
    "D5-W8-eps3": (LayerNormSpec(dim=5, input_width=8, gamma_width=6, beta_width=6, eps=3), 600),
    "D24-W16": (LayerNormSpec(dim=24, input_width=16, gamma_width=12, beta_width=12), 120),
    "D64-W20-eps1000": (LayerNormSpec(dim=64, input_width=20, gamma_width=16, beta_width=16, eps=1000), 30),
}


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_layernorm_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, tokens = COSIM_SPECS[name]
    block = get_block("layernorm")
    arrays = block.make_vectors(spec, 7, tokens=tokens)
    assert tokens * spec.dim >= 1500
    vectors = load_vectors(save_vectors(tmp_path / "vectors", "layernorm", spec.to_dict(), 7, arrays), block="layernorm")
    spec, inputs, expected = block.stream_from_vectors(vectors)
    report = cosim(block.component(spec), block.toplevel, inputs, expected, tmp_path / "run",
                   seed=3, valid_prob=0.7, ready_prob=0.6,
                   timeout_cycles=block.cosim_timeout(spec, len(inputs), len(expected), 0.7, 0.6))
    assert report.result.beats_checked == tokens * spec.dim
    assert report.mismatches == 0, report.explain()


def test_layernorm_verilator_trained_head_norm(tmp_path):
    """The trained LSFormer's held-out head-norm tokens through the unit, bit for bit."""
    from sim.harness import cosim

    vectors = load_vectors(DATA, block="layernorm")
    spec = LayerNormSpec.from_dict(vectors.spec)
    fresh = layer_norm_reference(spec, torch.as_tensor(vectors["u"]), torch.as_tensor(vectors["gamma"]),
                                 torch.as_tensor(vectors["beta"]))
    assert torch.equal(fresh["y"], torch.as_tensor(vectors["y"]).to(torch.int64))   # golden today == the file
    assert vectors["u"].shape[0] >= 64 and int((fresh["var"] > 0).sum()) == vectors["u"].shape[0]
    block = get_block("layernorm")
    spec, inputs, expected = block.stream_from_vectors(vectors)
    report = cosim(block.component(spec), block.toplevel, inputs, expected, tmp_path, seed=5,
                   valid_prob=0.7, ready_prob=0.7,
                   timeout_cycles=block.cosim_timeout(spec, len(inputs), len(expected), 0.7, 0.7))
    assert report.mismatches == 0, report.explain()
    assert report.result.beats_checked == vectors["y"].size
