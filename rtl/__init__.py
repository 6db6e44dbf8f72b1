"""Amaranth 0.5 generators of the Spikeforge neuromorphic core: one component per block."""

from .emit import to_verilog
from .lif import LIFArray

__all__ = ["LIFArray", "to_verilog"]
