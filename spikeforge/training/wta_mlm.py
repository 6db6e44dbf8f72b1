"""Recipe ``wta-mlm``: WE-Spikingformer (non-causal WTA self-attention), masked-character
prediction on Python's bundled documentation text. Settings: ``wta_common.py``."""

from . import Recipe
from .wta_common import MODEL_DEFAULTS, TRAIN_DEFAULTS, build_mlm

RECIPE = Recipe(
    name="wta-mlm", task="text-mlm", build=build_mlm, defaults={**TRAIN_DEFAULTS, **MODEL_DEFAULTS},
    summary="WE-Spikingformer (WTA Spiking Transformer, 2026): top-k WTA attention encoder, masked character LM")
