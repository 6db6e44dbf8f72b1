"""Golden models: what is computed, defined by exact integer arithmetic.

``golden`` never imports ``rtl``: the hardware is checked against these models,
not the other way round.
"""

from .spec import SpecError

__all__ = ["SpecError"]
