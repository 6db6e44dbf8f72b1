"""Recipe: TEFormer on 8x8 digits (golden/models/teformer.py), with the temporal alignment loss.

Size keys: ``embed_dim``, ``depth``, ``heads``, ``time_steps``. Options: ``v_fusion`` (none | decay),
``backward`` (attention | gru_mlp | none), ``align_weight`` (0 turns the alignment loss off),
``align_margin``, ``align_gap``.
"""

from golden.models.teformer import TEFormer

from . import Recipe


def build(vocab_size, **config):
    return TEFormer(**config)


RECIPE = Recipe(
    name="teformer",
    task="digits",
    build=build,
    defaults={"epochs": 12, "lr": 0.005, "batch_size": 64, "weight_decay": 0.01,
              "embed_dim": 32, "depth": 1, "heads": 2, "time_steps": 4, "mlp_ratio": 4,
              "tau": 2.0, "threshold": 1.0, "attn_threshold": 0.5, "scale": 0.125,
              "v_fusion": "none", "backward": "attention",
              "align_weight": 0.1, "align_margin": 0.5, "align_gap": 2},
    summary="TEFormer: bidirectional temporal fusion (causal + reversed spiking attention, gate, spiking LN)",
)
