"""The neuromorphic core: ``NeuroCore(spec, program)`` runs a compiled model (``golden.core``)."""

from .engine import CoreEngine
from .top import NeuroCore, core_input_layout, core_output_layout

__all__ = ["CoreEngine", "NeuroCore", "core_input_layout", "core_output_layout"]
