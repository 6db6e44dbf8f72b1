"""Recipe ``ann-causal``: the equal-size float softmax transformer on the wta-causal recipe's text
(golden/models/ann_causal_lm.py): the same sizes, training settings, data and held-out windows as
``wta-causal`` (``wta_common.py``), no spikes. The accuracy reference of the WTA Spikingformer."""

from golden.models.ann_causal_lm import AnnCausalLM

from . import Recipe
from .wta_common import MODEL_DEFAULTS, TRAIN_DEFAULTS

SIZE_KEYS = ("embed_dim", "depth", "heads", "mlp_ratio")


def build(vocab_size, **config):
    return AnnCausalLM(vocab_size, max_len=64, **config)


RECIPE = Recipe(
    name="ann-causal", task="text-causal", build=build,
    defaults={**TRAIN_DEFAULTS, **{k: MODEL_DEFAULTS[k] for k in SIZE_KEYS}},
    summary="non-spiking softmax causal transformer of wta-causal's sizes: its accuracy and energy reference")
