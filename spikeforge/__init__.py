"""Spikeforge: spiking transformers from golden PyTorch models to bit-exact, Verilator-proven hardware."""

__version__ = "0.1.0"
