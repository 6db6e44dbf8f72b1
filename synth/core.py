"""Synthesis of the neuromorphic core built from a trained model (``spikeforge synth core``).

The core is not a registry block: its hardware is derived from a checkpoint
(``spikeforge.core.load_core_model``: compiled ``CoreProgram`` + the smallest
``CoreSpec`` that holds it), and the model's weights and biases are the
initial contents of the MAC engine's memories. Otherwise it goes through the
same flow as a block (``synth.flow.synthesize``): the bare ``NeuroCore`` is
counted out of context, place and route wraps it in
``synth.wrapper.SerialWrapper``, and reports are cached by the Verilog.

The cost rows of ``docs/results/synthesis.md`` use ``debug_taps=False``: the
debug taps (every layer's currents, spikes and attention outputs on the host
stream) are a verification feature; a deployed core emits only the logits and
the status beat. A row names which one it measured (``no taps`` / ``taps``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .flow import SynthReport, get_target, synthesize

#: the module name of the core in its Verilog (as ``spikeforge core build`` writes it)
CORE_TOP = "spikeforge_core"
#: the ``block`` column of the core's rows
CORE_BLOCK = "core"


@dataclass(frozen=True)
class CoreConfig:
    """Which core to synthesise: a model (shipped name or checkpoint) and the core's parallelism."""

    model: str
    lanes: int = 8
    wta_lanes: int = 4
    debug_taps: bool = False

    @property
    def label(self) -> str:
        """The ``config`` column: model, lanes, and whether the debug taps are in."""
        return f"{self.model} (P={self.lanes}, P_w={self.wta_lanes}, {'taps' if self.debug_taps else 'no taps'})"


def load(config: CoreConfig):
    """The ``CoreModel`` of ``config`` (a bad model name is a one-line ``ValueError``)."""
    from spikeforge.core import load_core_model

    return load_core_model(config.model, lanes=config.lanes, wta_lanes=config.wta_lanes,
                           debug_taps=config.debug_taps)


def core_spec_dict(cm) -> dict:
    """The row's ``spec``: the CoreSpec fields plus the model and its checkpoint's sha256."""
    return {**cm.spec.to_dict(), "model": cm.name,
            "checkpoint_sha256": hashlib.sha256(Path(cm.checkpoint).read_bytes()).hexdigest()}


def synth_core(cm, target: str, *, pnr: bool = False, use_cache: bool = True, keep_dir: Path | None = None,
               cached_only: bool = False) -> SynthReport | None:
    """Synthesise the core of ``cm`` (a ``spikeforge.core.CoreModel``, e.g. ``load(config)``) for
    ``target``, and place and route it with ``pnr``.

    A core larger than the device is a ``does-not-fit`` report, as for a block; with
    ``cached_only`` a configuration never run is ``None``.
    """
    from rtl.core import NeuroCore
    from rtl.emit import to_verilog

    from .wrapper import SerialWrapper

    get_target(target)
    verilog = to_verilog(NeuroCore(cm.spec, cm.program), CORE_TOP)
    return synthesize(verilog, CORE_TOP, target, pnr=pnr, block=CORE_BLOCK, spec=core_spec_dict(cm),
                      use_cache=use_cache, keep_dir=keep_dir, cached_only=cached_only,
                      wrapped_verilog=lambda: to_verilog(SerialWrapper(NeuroCore(cm.spec, cm.program)), "synth_top"))
