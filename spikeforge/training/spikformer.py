"""Recipe: Spikformer on 8x8 digits (golden/models/spikformer.py).

Size keys for equal-size comparisons: ``embed_dim``, ``depth``, ``heads``, ``time_steps``
(``--set embed_dim=64 depth=2 heads=4 time_steps=4``); LIF keys ``tau``, ``threshold``,
``attn_threshold`` and the attention ``scale`` default to the paper's values.
"""

from golden.models.spikformer import Spikformer

from . import Recipe


def build(vocab_size, **config):
    return Spikformer(**config)


RECIPE = Recipe(
    name="spikformer",
    task="digits",
    build=build,
    defaults={"epochs": 12, "lr": 0.005, "batch_size": 64, "weight_decay": 0.01,
              "embed_dim": 32, "depth": 1, "heads": 2, "time_steps": 4, "mlp_ratio": 4,
              "tau": 2.0, "threshold": 1.0, "attn_threshold": 0.5, "scale": 0.125},
    summary="Spikformer (ICLR 2023): SPS conv stem + spiking self-attention Q K^T V * s, no softmax",
)
