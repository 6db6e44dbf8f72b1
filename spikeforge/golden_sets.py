"""Golden-only vector sets of ``spikeforge vectors``: arithmetic with no hardware block of its own
(yet), written in the same format as a block's vectors (``golden.vectors``), so a reimplementation
can be checked against them.

* ``logquant``: the log quantizer (``golden.logquant``): real weights -> per-layer scale exponent,
  codes, decoded integer weights.
* ``mtts-decode``: the MTTS decoder (``golden.mtts.mtts_decode``): values -> code -> decoded values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from golden.logquant import LogQuantSpec, logquant_random_weights, logquant_reference
from golden.mtts import MTTSSpec, mtts_decode_reference, mtts_random_values

from .blocks import VectorOption


@dataclass(frozen=True)
class GoldenSet:
    """Duck-types the parts of ``blocks.Block`` that ``spikeforge vectors`` uses."""

    name: str
    summary: str
    spec_cls: type
    make_vectors: Callable[..., dict]
    vector_options: dict[str, VectorOption] = field(default_factory=dict)
    vector_size: Callable[..., int] | None = None

    def default_spec(self) -> Any:
        return self.spec_cls()


GOLDEN_SETS = {s.name: s for s in (
    GoldenSet("logquant", "log quantizer: real weights -> scale exponent, sign/magnitude codes, decoded weights "
              "(golden only)", LogQuantSpec,
              lambda spec, seed, count: logquant_reference(spec, logquant_random_weights(count, seed)),
              {"count": VectorOption(int, 1000, "weights of the layer")},
              lambda spec, count: count),
    GoldenSet("mtts-decode", "MTTS decoder: values -> (time, silent) code -> decoded values (golden only)",
              MTTSSpec,
              lambda spec, seed, beats: mtts_decode_reference(spec, mtts_random_values(spec, beats, seed=seed)),
              {"beats": VectorOption(int, 1000, "beats of P values")},
              lambda spec, beats: beats * spec.lanes),
)}
