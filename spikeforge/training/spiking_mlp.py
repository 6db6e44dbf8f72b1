"""Recipe: the spiking MLP digit classifier (golden/models/spiking_mlp.py)."""

from golden.models.spiking_mlp import SpikingMLP

from . import Recipe


def build(vocab_size, **config):
    return SpikingMLP(**config)


RECIPE = Recipe(
    name="spiking-mlp",
    task="digits",
    build=build,
    defaults={"epochs": 8, "lr": 0.005, "batch_size": 64, "hidden": 64, "time_steps": 4,
              "beta": 0.875, "threshold": 1.0,
              # "zero" for a model that exports to NIR (spikeforge nir export): NIR's LIF resets to v_reset
              "reset_mode": "subtract"},
    summary="two SpikingLinear layers + linear readout on 8x8 digits (the smallest whole model)",
)
