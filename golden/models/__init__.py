"""Whole-model golden definitions: float (trainable) and integer (after quantization) forwards."""
