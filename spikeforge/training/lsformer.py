"""Recipe: the LSFormer digit classifier (golden/models/lsformer.py).

``--set attn_radius=7 head_dilations=[1,1,1]`` gives the same model with global attention
(every head's window covers the whole 8 x 8 map), the baseline configuration.
"""

from golden.models.lsformer import LSFormer

from . import Recipe


def build(vocab_size, **config):
    return LSFormer(**config)


RECIPE = Recipe(
    name="lsformer",
    task="digits",
    build=build,
    defaults={"epochs": 12, "lr": 0.01, "batch_size": 64, "weight_decay": 0.0,
              "embed_dim": 24, "depth": 1, "heads": 3, "head_dilations": [1, 2, 3],
              "conv_dilations": [1, 2, 3], "attn_radius": 1, "attn_shift": 3, "time_steps": 4,
              "mlp_ratio": 2, "beta": 0.875, "srp_kernel": 2, "srp_tau": 10.0, "srp_threshold": 2.0},
    summary="LSFormer: local dilated window attention + spiking response pooling on 8x8 digits",
)
