"""Recipe ``wta-causal``: WD-Spikingformer (causal WTA self-attention, no cross-attention),
next-character prediction on Python's bundled documentation text. Settings: ``wta_common.py``."""

from . import Recipe
from .wta_common import MODEL_DEFAULTS, TRAIN_DEFAULTS, build_causal

RECIPE = Recipe(
    name="wta-causal", task="text-causal", build=build_causal, defaults={**TRAIN_DEFAULTS, **MODEL_DEFAULTS},
    summary="WD-Spikingformer (WTA Spiking Transformer, 2026): causal top-k WTA attention, character LM")
