"""The equal-size softmax causal LM (``golden/models/ann_causal_lm.py``, recipe ``ann-causal``): causality,
its MAC count against the co-design report's formula, bad input, and a few training steps."""

from __future__ import annotations

import math

import pytest
import torch

from golden import energy
from golden.models.ann_causal_lm import AnnCausalLM
from spikeforge.codesign import transformer_counts
from spikeforge.training import get_recipe, train


def test_causal_and_shapes():
    torch.manual_seed(0)
    net = AnnCausalLM(40, embed_dim=16, depth=2, heads=2, mlp_ratio=2).eval()
    x = torch.randint(0, 40, (3, 12))
    y = net(x)
    assert y.shape == (3, 12, 40)
    x2 = x.clone()
    x2[:, 7] = (x2[:, 7] + 1) % 40
    y2 = net(x2)
    # positions before 7 see only keys <= themselves: unchanged; position 7 itself changes
    assert torch.allclose(y[:, :7], y2[:, :7], atol=1e-6)
    assert not torch.allclose(y[:, 7], y2[:, 7])


def test_macs_match_the_report_formula():
    """The doc's ANN energy counts MACs by formula (codesign.transformer_counts); the model's meter agrees."""
    cfg = get_recipe("ann-causal").split_config()[1]
    wta = get_recipe("wta-causal").split_config()[1]
    assert all(cfg[k] == wta[k] for k in ("embed_dim", "depth", "heads", "mlp_ratio"))   # equal size
    net = AnnCausalLM(104, **cfg)
    with energy.Meter() as m:
        net(torch.randint(0, 104, (2, 32)))
    c = transformer_counts(cfg["embed_dim"], cfg["depth"], cfg["heads"], cfg["mlp_ratio"], 32, 104, True, 8)
    assert m.macs / m.samples == c["weight_macs"] + c["attn_macs"] == 1_329_152


@pytest.mark.parametrize("bad, match", [(torch.zeros(2, 8), "token ids"), (torch.zeros(2, 65, dtype=torch.long),
                                                                           "max_len")])
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        AnnCausalLM(10, embed_dim=8, heads=2)(bad)
    with pytest.raises(ValueError, match="multiple of heads"):
        AnnCausalLM(10, embed_dim=10, heads=4)


def test_a_few_training_steps_learn():
    rep = train("ann-causal", epochs=1, seed=0, progress=False,
                overrides={"steps_per_epoch": 30, "eval_windows": 8, "max_chars": 30000, "embed_dim": 16,
                           "heads": 2})
    vocab = len(set(__import__("golden.data", fromlist=["text_corpus"]).text_corpus(30000))) + 1
    assert rep.metrics["train_loss"] < math.log(vocab)               # better than uniform (nats)
    assert rep.metrics["val_bits_per_char"] < math.log2(vocab)
