"""``spikeforge estimate``: a trained model's cycles, latency, event counts and energy on the core.

``estimate_model(MODEL, checkpoint=..., samples=N, ...)`` loads the model (a shipped name --
``spiking-mlp``, ``wta-causal``, ``wta-mlm`` -- or a checkpoint of ``spikeforge train``),
compiles it for the core (``spikeforge.core.load_core_model``), runs the golden program on its
first N held-out samples and hands the run to ``estimate.core.estimate_core``. No RTL is built
or simulated: the figures come from the integer run and the core's exact cycle formula.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from golden.core import run_program

from estimate.core import DEFAULT_FMAX_MHZ, CoreEstimate, check_fmax, estimate_core, synthesized_fmax
from estimate.energy import get_technology

from .core import SHIPPED, held_out_samples, load_core_model


def resolve_model(model: str, checkpoint: str | None) -> str:
    """The checkpoint to load: ``checkpoint`` if given, else the shipped model ``model`` (or a path)."""
    if checkpoint:
        return checkpoint
    if model in SHIPPED or Path(model).suffix == ".pt":
        return model
    raise ValueError(f"unknown model {model!r}: shipped models are {', '.join(SHIPPED)}; for another model "
                     f"give its checkpoint (--checkpoint FILE.pt)")


def estimate_model(model: str, *, checkpoint: str | None = None, lanes: int = 8, wta_lanes: int = 4,
                   samples: int = 64, fmax_mhz: float | None = None, tech: str = "45nm",
                   synthesis_csv: Path | None = None) -> CoreEstimate:
    """Estimate ``model`` on the core over its first ``samples`` held-out samples (module docstring).

    ``fmax_mhz`` None: the synthesized Fmax of this configuration from the synthesis table, if
    it has one, else ``DEFAULT_FMAX_MHZ`` (the report says which).
    """
    technology = get_technology(tech)                     # bad input is refused before any work
    if fmax_mhz is not None:
        check_fmax(fmax_mhz)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"--samples must be an integer >= 1, got {samples!r}")
    cm = load_core_model(resolve_model(model, checkpoint), lanes=lanes, wta_lanes=wta_lanes, debug_taps=False)
    if checkpoint and model != cm.name:
        raise ValueError(f"checkpoint {checkpoint} holds a {cm.name} model, not {model}")
    x, _, _ = held_out_samples(cm, samples)
    run = run_program(cm.program, x, current_width=cm.spec.current_width)
    if fmax_mhz is not None:
        fmax, source = float(fmax_mhz), "given by --fmax"
    else:
        sha = hashlib.sha256(Path(cm.checkpoint).read_bytes()).hexdigest()
        kwargs = {"csv_path": synthesis_csv} if synthesis_csv is not None else {}
        found = synthesized_fmax(cm.name, cm.spec, sha, **kwargs)
        if found is not None:
            fmax, source = found
        else:
            fmax, source = DEFAULT_FMAX_MHZ, ("assumed: no synthesis result for this core configuration; "
                                              "run spikeforge synth core or give --fmax")
    return estimate_core(cm.program, cm.spec, run, tech=technology, fmax_mhz=fmax, fmax_source=source,
                         model=cm.name, checkpoint=str(cm.checkpoint))
