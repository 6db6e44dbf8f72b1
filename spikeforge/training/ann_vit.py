"""Recipe: the equal-size non-spiking ViT reference on 8x8 digits (golden/models/ann_vit.py)."""

from golden.models.ann_vit import AnnViT

from . import Recipe


def build(vocab_size, **config):
    return AnnViT(**config)


RECIPE = Recipe(
    name="ann-vit",
    task="digits",
    build=build,
    defaults={"epochs": 12, "lr": 0.003, "batch_size": 64, "weight_decay": 0.01,
              "embed_dim": 32, "depth": 1, "heads": 2, "mlp_ratio": 4},
    summary="non-spiking ViT of the same embed dim / depth / heads: the energy and accuracy reference",
)
