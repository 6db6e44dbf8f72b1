"""Recipe: SpikingResformer on 8x8 digits (golden/models/spiking_resformer.py).

Size keys: ``embed_dim``, ``depth``, ``heads``, ``time_steps``; ``patch_size`` sets the DSSA patches.
"""

from golden.models.spiking_resformer import SpikingResformer

from . import Recipe


def build(vocab_size, **config):
    return SpikingResformer(**config)


RECIPE = Recipe(
    name="spiking-resformer",
    task="digits",
    build=build,
    defaults={"epochs": 12, "lr": 0.005, "batch_size": 64, "weight_decay": 0.01,
              "embed_dim": 32, "depth": 1, "heads": 2, "time_steps": 4, "mlp_ratio": 4, "patch_size": 2,
              "tau": 2.0, "threshold": 1.0, "rate_momentum": 0.99},
    summary="SpikingResformer (CVPR 2024): dual spike self-attention with firing-rate scaling",
)
