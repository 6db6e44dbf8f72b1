"""A spiking MLP digit classifier: the smallest whole model, and the pattern the others follow.

Float: the 64 pixels (in [0, 1]) drive ``SpikingLinear(64, H)`` directly at every one of T
steps, a second ``SpikingLinear(H, H)`` follows, and a linear readout of the spikes is
averaged over time: ``logits = mean_t(W_o s_t + b_o)``.

Integer (``IntSpikingMLP``): pixels enter as the raw 0..16 values (exactly x * 2^4, so
``input_frac = 4``), the layers are ``QuantSpikingLinear`` and the readout sums over time:
``logits_int = sum_t (W_o_int s_t) + T b_o_int`` — a positive multiple (T 2^f) of the float
logits up to quantization, so the arg-max is the prediction in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import (QuantLinear, QuantSpikingLinear, SpikingLinear, lif_run_time_first, quantize_linear,
                      quantize_spiking_linear)

PIXEL_FRAC = 4  # digits pixels are 0..16 = x * 2^4 exactly


class SpikingMLP(nn.Module):
    """``hidden2``, ``beta2`` and ``threshold2`` (layer 2's width, leak and threshold; default: layer 1's)
    and ``reset_mode`` (both layers) let a NIR graph (``spikeforge/nir_io.py``) map onto the model."""

    def __init__(self, hidden: int = 64, time_steps: int = 4, beta: float = 0.875, threshold: float = 1.0, *,
                 hidden2: int | None = None, beta2: float | None = None, threshold2: float | None = None,
                 reset_mode: str = "subtract"):
        super().__init__()
        hidden2 = hidden if hidden2 is None else hidden2
        if time_steps < 1 or hidden < 1 or hidden2 < 1:
            raise ValueError(f"time_steps, hidden and hidden2 must be >= 1, got {time_steps}, {hidden}, {hidden2}")
        self.time_steps = time_steps
        self.layer1 = SpikingLinear(64, hidden, beta=beta, threshold=threshold, reset_mode=reset_mode)
        self.layer2 = SpikingLinear(hidden, hidden2, beta=beta if beta2 is None else beta2,
                                    threshold=threshold if threshold2 is None else threshold2, reset_mode=reset_mode)
        self.readout = nn.Linear(hidden2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)                                        # (B, 64)
        drive = flat.unsqueeze(0).expand(self.time_steps, *flat.shape)  # (T, B, 64)
        s2 = self.layer2(self.layer1(drive))
        return self.readout(s2).mean(dim=0)

    def to_integer(self, weight_bits: int = 8) -> "IntSpikingMLP":
        return IntSpikingMLP(
            layer1=quantize_spiking_linear(self.layer1, weight_bits=weight_bits, input_frac=PIXEL_FRAC),
            layer2=quantize_spiking_linear(self.layer2, weight_bits=weight_bits, input_frac=0),
            readout=quantize_linear(self.readout, weight_bits=weight_bits, input_frac=0),
            time_steps=self.time_steps)


@dataclass
class IntSpikingMLP:
    layer1: QuantSpikingLinear
    layer2: QuantSpikingLinear
    readout: QuantLinear
    time_steps: int

    def forward_layers(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """pixels: int (B, 1, 8, 8) in 0..16 -> every layer's integer tensors (reference vectors)."""
        pixels = torch.as_tensor(pixels)
        if pixels.is_floating_point() or pixels.dim() != 4 or tuple(pixels.shape[1:]) != (1, 8, 8):
            raise ValueError(f"IntSpikingMLP takes integer pixels (B, 1, 8, 8); got {pixels.dtype} "
                             f"{tuple(pixels.shape)}")
        flat = pixels.flatten(1).to(torch.int64)
        # the drive is the same at every step, so layer 1's currents are computed once
        # (the same values as layer1.forward_trace on the (T, B, 64) expanded drive)
        c1 = self.layer1.currents(flat).unsqueeze(0).expand(self.time_steps, flat.shape[0], -1).contiguous()
        t1 = lif_run_time_first(self.layer1.lif, c1)
        c2, t2 = self.layer2.forward_trace(t1.spikes)
        logits = self.readout(t2.spikes).sum(dim=0)
        return {"pixels": flat, "currents1": c1, "spikes1": t1.spikes, "currents2": c2,
                "spikes2": t2.spikes, "logits": logits}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.forward_layers(pixels)["logits"]

    __call__ = forward
