"""Recipe: Spike-driven Transformer V2 (Meta-SpikeFormer) on 8x8 digits (golden/models/spike_driven_v2.py).

Size keys: ``embed_dim``, ``depth``, ``heads``, ``time_steps``; LIF and attention keys default to the paper.
"""

from golden.models.spike_driven_v2 import SpikeDrivenV2

from . import Recipe


def build(vocab_size, **config):
    return SpikeDrivenV2(**config)


RECIPE = Recipe(
    name="spike-driven-v2",
    task="digits",
    build=build,
    defaults={"epochs": 12, "lr": 0.01, "batch_size": 64, "weight_decay": 0.01,
              "embed_dim": 32, "depth": 1, "heads": 2, "time_steps": 4, "mlp_ratio": 4,
              "tau": 2.0, "threshold": 1.0, "attn_threshold": 0.5, "scale": 0.125},
    summary="Spike-driven Transformer V2 (ICLR 2024): conv stem, membrane shortcuts, SN(Q K^T V s)",
)
