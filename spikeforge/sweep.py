"""``spikeforge sweep``: co-design studies -- knobs that trade accuracy against cost, on Dask.

A **point** is (model, knobs, seed). Its evaluation (``evaluate_point``, one Dask task) loads a
shipped checkpoint (``sim/data/core``: ``spiking-mlp``, ``wta-causal``, ``wta-mlm``), applies the
knobs to the golden integer model, compiles it for the core (``golden.core.compile_model``), runs
the core's golden program on the first N held-out samples (``golden.core.run_program``) and
hands the run to ``estimate.core.estimate_core``. It returns

* the **integer-mode accuracy** of the core's own logits (digits classified right; next or masked
  character predicted right) and, for text, the cross-entropy in bits per character of the
  logits divided by the program's ``logit_scale`` (and its perplexity 2^bpc);
* **cycles** per sample (the core's formula, ``golden/core/cycles.py`` through ``estimate``: equal
  to the RTL's counter), the MAC-lane **utilisation** SOPs / (P cycles) and the **energy** per
  sample (45 nm and 7 nm tables, ``estimate/energy.py``);
* **LUT / FF / BRAM / DSP** and Fmax on ECP5 and xilinx7 (``area_estimate``): the synthesis table's
  row of the same core where one exists, else a linear lane model fitted on the synthesised cores
  whose lane count differs (``AreaModel``; its leave-one-out error is in every report).

Knobs (``KNOBS``; ``None`` = the checkpoint's own value). Every knob is applied at evaluation time
to the trained checkpoint (``mode = evaluated``); ``--retrain`` (or a study with ``retrain = True``:
``time-steps-retrained``, ``wta-k-retrained``) retrains the checkpoint first for the knobs that change
training (T, k, dead_zone, memory_sigma; ``mode = retrained``, expensive): the shipped checkpoint's recipe, settings and seed
with the point's T or k, trained once into ``<cache>/checkpoints/`` (``trained_checkpoint``: named by
a hash of the settings, epochs and seed, not the code version, so a re-evaluation does not retrain):

``k``         WTA top-k of every attention layer (k_ratio set to 0); the core's WTA unit takes it
``T``         time steps of the integer model (the core walks them)
``lanes``     P, MAC/LIF lanes of the core (cost only: the arithmetic is unchanged)
``wta_lanes`` P_w, score lanes of the WTA unit (cost only)
``levels``    log quantization of every weight layer (not the embedding ROM): each integer weight
              W becomes 0 or +-2^s (``golden.logquant.log_quantize`` with ``levels`` powers of two
              and the per-layer scale that maps max|W| onto the top level, rounded back onto the
              layer's integer grid); 0 = off (the checkpoint's 8-bit linear weights)
``sigma``     analog mismatch of the weight cells (``golden.mismatch``): relative gain error sd
              (gain_sigma = round(sigma 2^16)), offset ``offset`` LSBs of the F = 4 bit effective
              grid; w_eff = (q << F) + ((q dg) >> (16 - F)) + do replaces every weight and the
              layer's input shift grows by F, so the currents are on the old grid again. Seeded per
              point (cell keys: seed, layer index)
``offset``    offset_sigma of the mismatch (LSBs of 2^-F), 0 by default
``membrane``  Wv, membrane bits of every LIF (saturating); a threshold that no longer fits is an
              error of that point
``dead_zone`` d, the MTTS encoder's dead zone (Matterhorn): codes in [M - d, M + d] (M the mask
              value, clipped to the code range) send no spike (``golden.mtts``); d = 0 is the mask
              alone; the core's encoder takes it as part of the op's MTTS spec
``memory_sigma`` the gain sd of Matterhorn's log weight memory (relative; the checkpoint's levels,
              offset sd and mismatch seed, so the same cells' draws scaled): applied to the float
              model before its integer mode, trained against when retrained (analog-aware)

Results are cached on disk (``$SPIKEFORGE_CACHE/sweep``, or ``--cache DIR``), one JSON file per
point named by the sha256 of (model, checkpoint sha256, knobs, seed, samples, retrain, code
version = the sha256 of golden/, estimate/ and this module's sources plus the package version):
an interrupted sweep resumes and computes only the points it has not got. A point that raises is
recorded with its error (``status = error``) and the sweep goes on; ``--retry-failed`` recomputes
those. The driver writes the cache, so a remote cluster (``--scheduler``) needs no shared disk.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent

#: knob -> (what it is, parse function, changes training?)
KNOBS: dict[str, tuple[str, Callable[[str], Any], bool]] = {
    "k": ("WTA top-k of every attention layer", int, True),
    "T": ("time steps", int, True),
    "lanes": ("P, MAC/LIF lanes of the core", int, False),
    "wta_lanes": ("P_w, score lanes of the WTA unit", int, False),
    "levels": ("log-quantized weights: powers of two per layer (0 = 8-bit linear weights)", int, False),
    "sigma": ("analog mismatch: relative gain sd of every weight cell", float, False),
    "offset": ("analog mismatch: offset sd in LSBs of the 2^-4 effective grid", int, False),
    "membrane": ("membrane bits of every LIF", int, False),
    "dead_zone": ("MTTS dead zone half width d: codes in [M - d, M + d] silent (Matterhorn; M its mask value)",
                  int, True),
    "memory_sigma": ("Matterhorn's log weight memory: relative gain sd of every cell (the same cells' draws scaled)",
                     float, True),
}
#: the value a knob has when a point does not set it (None: the checkpoint's own)
DEFAULTS: dict[str, Any] = {"k": None, "T": None, "lanes": 8, "wta_lanes": 4, "levels": 0, "sigma": 0.0,
                            "offset": 0, "membrane": None, "dead_zone": None, "memory_sigma": None}
#: the checkpoint config key a training knob sets
TRAIN_KEYS = {"k": "k", "T": "time_steps", "dead_zone": "dead_zone", "memory_sigma": "weight_gain_sigma"}
MODELS = ("spiking-mlp", "wta-causal", "wta-mlm", "matterhorn")
#: fraction bits of the mismatch's effective-weight grid
MISMATCH_FRAC = 4
#: cost axes of the Pareto fronts and plots: column -> label
COST_AXES = {"energy_nj": "energy / sample (nJ, 45 nm)", "cycles": "cycles / sample",
             "luts_ecp5": "ECP5 LUTs"}
CSV_COLUMNS = ("study", "model", "status", "mode", "seed", *KNOBS, "samples", "accuracy", "bpc", "perplexity",
               "cycles", "utilisation", "sops", "energy_nj", "energy_nj_7nm", "luts_ecp5", "ffs_ecp5",
               "bram_ecp5", "dsp_ecp5", "fmax_ecp5", "luts_xilinx7", "ffs_xilinx7", "bram_xilinx7",
               "dsp_xilinx7", "area_source", "train_epochs", "train_steps", "train_seconds", "seconds", "error", "key")


class SweepError(ValueError):
    """Bad sweep input (unknown study or knob, bad value, unreachable scheduler): one line."""


# ---- studies ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Study:
    """A named co-design study: models x (union of knob grids) x seeds."""

    name: str
    title: str
    models: tuple[str, ...]
    grids: tuple[dict[str, tuple], ...]
    seeds: tuple[int, ...] = (1,)
    #: retrain the checkpoint for each point's training knobs (T, k), for ``epochs`` (None: the shipped's)
    retrain: bool = False
    epochs: int | None = None
    #: held-out samples of every point (None: the sweep's ``--samples``)
    samples: int | None = None

    def points(self, models: Iterable[str] | None = None, seeds: Iterable[int] | None = None) -> list["Point"]:
        out, seen = [], set()
        for model in (tuple(models) if models else self.models):
            for grid in self.grids:
                keys = list(grid)
                for values in itertools.product(*(grid[k] for k in keys)):
                    knobs = dict(zip(keys, values))
                    for seed in (tuple(seeds) if seeds else self.seeds):
                        p = Point(self.name, model, knobs, seed, retrain=self.retrain, epochs=self.epochs)
                        if self.samples is not None:
                            p.samples = self.samples
                        if p.ident() not in seen:
                            seen.add(p.ident())
                            out.append(p)
        return out


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("wta-k", "WTA top-k against next/masked-character accuracy and cost (L = 32)",
          ("wta-causal", "wta-mlm"), ({"k": (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)},)),
    Study("time-steps", "time steps T against accuracy and cost",
          ("spiking-mlp", "wta-causal"), ({"T": (1, 2, 3, 4, 6, 8)},)),
    Study("lanes", "MAC/LIF lanes P against cycles, utilisation and area (accuracy unchanged)",
          MODELS, ({"lanes": (1, 2, 4, 8, 16, 32)},)),
    Study("mismatch", "log-quantized weights and analog mismatch sigma against accuracy",
          ("spiking-mlp", "wta-causal"),
          ({"levels": (0, 3, 4, 5, 6, 7)},
           {"levels": (7,), "sigma": (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25)}),
          seeds=(1, 2, 3)),
    Study("membrane", "LIF membrane width against accuracy and energy",
          ("spiking-mlp", "wta-causal"), ({"membrane": (8, 10, 12, 14, 16, 20, 24)},)),
    Study("dead-zone", "MTTS dead zone against Matterhorn's accuracy and energy (256 held-out digits)",
          ("matterhorn",), ({"dead_zone": (0, 1, 2, 3, 4, 6)},), samples=256),
    Study("memory-sigma", "gain mismatch of Matterhorn's log weight memory against accuracy (256 held-out digits)",
          ("matterhorn",), ({"memory_sigma": (0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25)},), samples=256),
    # retrained studies: every point trains its own checkpoint once (cached in <cache>/checkpoints)
    Study("time-steps-retrained", "time steps T, the spiking MLP retrained for each T (recipe settings, 8 epochs)",
          ("spiking-mlp",), ({"T": (1, 2, 3, 4, 6, 8)},), retrain=True),
    Study("wta-k-retrained", "WTA top-k, wta-causal retrained for each k (the shipped budget: 4 epochs x 150 steps)",
          ("wta-causal",), ({"k": (1, 2, 4, 8, 16)},), retrain=True),
    Study("dead-zone-retrained", "MTTS dead zone, Matterhorn retrained for each d (the shipped settings, 12 epochs)",
          ("matterhorn",), ({"dead_zone": (0, 1, 2, 3)},), retrain=True, samples=256),
    Study("memory-sigma-retrained", "gain mismatch of Matterhorn's log weight memory, retrained for each sigma "
          "(analog-aware, 12 epochs)", ("matterhorn",), ({"memory_sigma": (0.0, 0.05, 0.1, 0.2)},), retrain=True,
          samples=256),
)}


def study_names() -> list[str]:
    return list(STUDIES) + ["custom"]


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise SweepError(f"unknown study {name!r}; studies: {', '.join(study_names())}")
    return STUDIES[name]


def parse_knob_values(items: Iterable[str]) -> dict[str, tuple]:
    """``["k=1,2,4", "lanes=8"]`` -> {"k": (1, 2, 4), "lanes": (8,)}; unknown knobs / bad values refused."""
    grid: dict[str, tuple] = {}
    for item in items or ():
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise SweepError(f"--set {item!r}: write KNOB=V1,V2,... (knobs: {', '.join(KNOBS)})")
        if name not in KNOBS:
            raise SweepError(f"unknown knob {name!r}; knobs: {', '.join(KNOBS)}")
        parse = KNOBS[name][1]
        try:
            grid[name] = tuple(parse(v.strip()) for v in values.split(","))
        except ValueError:
            raise SweepError(f"--set {item!r}: {name} takes {parse.__name__} values") from None
    return grid


def check_models(models: Iterable[str]) -> list[str]:
    models = list(models)
    bad = [m for m in models if m not in MODELS]
    if bad:
        raise SweepError(f"unknown model {bad[0]!r}; sweep models: {', '.join(MODELS)}")
    return models


# ---- points and the cache key ----------------------------------------------------------------------

@dataclass
class Point:
    study: str
    model: str
    knobs: dict[str, Any]
    seed: int = 1
    samples: int = 64
    retrain: bool = False
    epochs: int | None = None

    def full_knobs(self) -> dict[str, Any]:
        unknown = [k for k in self.knobs if k not in KNOBS]
        if unknown:
            raise SweepError(f"unknown knob {unknown[0]!r}; knobs: {', '.join(KNOBS)}")
        return {k: self.knobs.get(k, DEFAULTS[k]) for k in KNOBS}

    def random(self) -> bool:
        """Whether the seed changes the result (mismatch on)."""
        k = self.full_knobs()
        return bool(k["sigma"]) or bool(k["offset"])

    def used_seed(self) -> int | None:
        return self.seed if self.random() else None

    def retrained(self) -> bool:
        k = self.full_knobs()
        return self.retrain and any(k[name] is not None for name in TRAIN_KEYS)

    def ident(self) -> str:
        """What the point computes, independent of the study it belongs to."""
        return json.dumps({"model": self.model, "knobs": self.full_knobs(), "seed": self.used_seed(),
                           "samples": self.samples, "retrain": self.retrained(),
                           "epochs": self.epochs if self.retrained() else None}, sort_keys=True)

    def key(self, version: str) -> str:
        return hashlib.sha256((self.ident() + version).encode()).hexdigest()[:32]


_VERSION: str | None = None


def code_version() -> str:
    """sha256 of the sources a point's result depends on, the checkpoints and the package version."""
    global _VERSION
    if _VERSION is None:
        import spikeforge

        h = hashlib.sha256(f"spikeforge {getattr(spikeforge, '__version__', '?')}".encode())
        files = sorted((ROOT / "golden").rglob("*.py")) + sorted((ROOT / "estimate").glob("*.py"))
        files += [ROOT / "spikeforge" / "sweep.py", ROOT / "spikeforge" / "core.py",
                  ROOT / "docs" / "results" / "synthesis.csv"]
        files += sorted((ROOT / "sim" / "data" / "core").glob("*.pt"))
        for path in files:
            if path.is_file():
                h.update(str(path.relative_to(ROOT)).encode())
                h.update(hashlib.sha256(path.read_bytes()).digest())
        _VERSION = h.hexdigest()[:16]
    return _VERSION


def _cache_base() -> Path:
    base = Path(os.environ.get("SPIKEFORGE_CACHE", Path.home() / ".cache" / "spikeforge"))
    # sim.harness uses SPIKEFORGE_CACHE as the Verilator folder itself (as synth.flow.cache_root does)
    return base.parent if base.name == "verilator" else base


def default_cache_dir() -> Path:
    return _cache_base() / "sweep"


# ---- applying knobs to the integer model -----------------------------------------------------------

def _linear_layers(int_model) -> list:
    """Every ``QuantLinear`` of the model that the core runs as a weight layer (not the embedding ROM)."""
    from golden.models.matterhorn import IntMatterhorn
    from golden.models.spiking_mlp import IntSpikingMLP

    if isinstance(int_model, IntSpikingMLP):
        return [int_model.layer1.linear, int_model.layer2.linear, int_model.readout]
    if isinstance(int_model, IntMatterhorn):
        return [getattr(blk, name)[0] for blk in int_model.blocks
                for name in ("q", "k", "v", "o", "mlp1", "mlp2")] + [int_model.head]
    out = []
    for attn, cross, fc1, fc2 in int_model.blocks:
        out += [attn.q.q.linear, attn.k.q.linear, attn.v.q.linear, attn.proj.q.linear, fc1.q.linear, fc2.q.linear]
    return out + [int_model.head]


def _lif_holders(int_model) -> list:
    """Objects with a LIF spec attribute: (object, attribute name)."""
    from golden.models.spiking_mlp import IntSpikingMLP

    if isinstance(int_model, IntSpikingMLP):
        return [(int_model.layer1, "lif"), (int_model.layer2, "lif")]
    out = [(int_model.embed_lif, "spec")]
    for attn, cross, fc1, fc2 in int_model.blocks:
        out += [(layer.q, "lif") for layer in (attn.q, attn.k, attn.v, attn.proj, fc1, fc2)]
    return out


def log_quantize_weights(weight, levels: int):
    """Integer weights W -> 0 or +-2^s on W's grid, ``levels`` powers of two per layer (module docstring)."""
    import torch

    from golden.logquant import LogQuantSpec, log_dequantize, log_quantize

    code_bits = max(3, (levels).bit_length() + 1)
    spec = LogQuantSpec(code_bits=code_bits, levels=levels)
    q = log_quantize(spec, weight.double())
    return torch.round(log_dequantize(spec, q)).to(torch.int64)


def mismatch_weights(weight, sigma: float, offset: int, seed: int, layer: int):
    """w_eff of ``golden.mismatch`` on the (in, out) cells of a (out, in) weight, F = MISMATCH_FRAC bits."""
    from golden.mismatch import MismatchSpec, effective_weights

    spec = MismatchSpec(seed=seed, layer=layer, gain_sigma=int(round(sigma * (1 << 16))), offset_sigma=offset,
                        frac_bits=MISMATCH_FRAC)
    return effective_weights(spec, weight.t().contiguous()).t().contiguous()


def apply_model_knobs(model, knobs: dict) -> None:
    """Set the knobs that act on the float model before its integer mode is made: ``memory_sigma``,
    the gain sd of Matterhorn's log weight memory (the checkpoint's levels, offset and seed)."""
    sigma = knobs.get("memory_sigma")
    if sigma is None:
        return
    lw = getattr(model, "weights", None)
    if lw is None or not getattr(lw, "active", False):
        raise SweepError("knob memory_sigma: only a Matterhorn checkpoint with log-quantized weights "
                         "(weight_levels > 0) has a log weight memory")
    import dataclasses

    try:
        model.set_log_weights(dataclasses.replace(lw, gain_sigma=float(sigma)))
    except ValueError as exc:
        raise SweepError(f"knob memory_sigma = {sigma}: {exc}") from None


def apply_knobs(int_model, knobs: dict, seed: int, seq_len: int | None = None) -> None:
    """Set the evaluation-time knobs on a golden integer model in place (module docstring)."""
    from golden.models.matterhorn import IntMatterhorn
    from golden.models.spiking_mlp import IntSpikingMLP

    matterhorn = isinstance(int_model, IntMatterhorn)
    wta = not isinstance(int_model, (IntSpikingMLP, IntMatterhorn))
    if knobs["dead_zone"] is not None:
        if not matterhorn:
            raise SweepError("knob dead_zone: only Matterhorn has an MTTS encoder")
        d = int(knobs["dead_zone"])
        if d < 0:
            raise SweepError(f"knob dead_zone = {d}: the half width must be >= 0")
        mt = int_model.mtts
        if not mt.mask:
            raise SweepError("knob dead_zone: the checkpoint's MTTS encoder has no mask value to centre it on")
        int_model.mtts = mt.with_dead_zone(d)
    if matterhorn:
        wired = [k for k in ("k", "levels", "sigma", "offset", "membrane") if knobs[k] != DEFAULTS[k]]
        if wired:
            raise SweepError(f"knob {wired[0]} is not wired for matterhorn; its knobs: T, lanes, wta_lanes, dead_zone, "
                             f"memory_sigma")
    if knobs["k"] is not None:
        if not wta:
            raise SweepError("knob k: the spiking MLP has no WTA attention")
        if seq_len is not None and not 1 <= int(knobs["k"]) <= seq_len:
            # the model's resolve_k would clip k to L silently; a sweep point must mean what it says
            raise SweepError(f"knob k = {knobs['k']} is out of range; allowed: 1 .. L = {seq_len}")
        for attn, cross, fc1, fc2 in int_model.blocks:
            for a in (attn, cross):
                if a is not None:
                    a.layer.k, a.layer.k_ratio = int(knobs["k"]), 0.0
    if knobs["T"] is not None:
        if int(knobs["T"]) < 1:
            raise SweepError(f"knob T = {knobs['T']}: time steps must be >= 1")
        int_model.time_steps = int(knobs["T"])
    if knobs["membrane"] is not None:
        for obj, attr in _lif_holders(int_model):
            setattr(obj, attr, getattr(obj, attr).replace(membrane_width=int(knobs["membrane"])))
    levels, sigma, offset = int(knobs["levels"]), float(knobs["sigma"]), int(knobs["offset"])
    if levels < 0 or sigma < 0 or offset < 0:
        raise SweepError("knobs levels, sigma and offset must be >= 0")
    for i, lin in enumerate(_linear_layers(int_model)):
        if levels:
            lin.weight = log_quantize_weights(lin.weight, levels)
        if sigma or offset:
            lin.weight = mismatch_weights(lin.weight, sigma, offset, seed, i)
            lin.input_frac += MISMATCH_FRAC


# ---- one point (a Dask task) -----------------------------------------------------------------------

def retrain_overrides(ckpt: dict, knobs: dict) -> dict:
    """The training knobs of a point as recipe settings (k also sets k_ratio = 0)."""
    overrides = {TRAIN_KEYS[k]: knobs[k] for k in TRAIN_KEYS if knobs[k] is not None}
    if "k" in overrides and "k_ratio" in ckpt["config"]:
        overrides["k_ratio"] = 0.0
    return overrides


def trained_checkpoint(recipe: str, settings: dict, epochs: int, seed: int, cache_dir: str | Path | None,
                       name: str | None = None) -> tuple[Path, dict]:
    """(path, training record) of recipe ``recipe`` trained with ``settings`` for ``epochs`` epochs, seed
    ``seed``: trained once into ``<cache>/checkpoints/`` and reused. The file name is a hash of (name,
    settings, epochs, seed), not of the code version, so a code change re-evaluates a retrained point
    but does not retrain it (delete the folder to retrain). The record (``.json`` beside the
    checkpoint): epochs and steps run, seconds of training, the recipe's held-out metrics."""
    from spikeforge.training import train

    name = name or recipe
    tag = hashlib.sha256(json.dumps([name, settings, epochs, seed], sort_keys=True).encode()).hexdigest()[:16]
    out = Path(cache_dir or default_cache_dir()) / "checkpoints" / f"{name}-{tag}.pt"
    side = out.with_suffix(".json")
    if not out.exists() or not side.exists():
        tmp = out.with_suffix(".pt.tmp")
        rep = train(recipe, epochs=epochs, seed=seed, out=tmp, progress=False, overrides=settings)
        steps = rep.config["train"].get("steps_per_epoch")
        info = {"recipe": recipe, "settings": settings, "epochs": rep.epochs_run, "seconds": round(rep.seconds, 1),
                "steps": rep.epochs_run * steps if steps else None, "metrics": rep.metrics}
        tmp.replace(out)
        side.write_text(json.dumps(info, indent=1) + "\n")
    return out, json.loads(side.read_text())


def retrained_checkpoint(model: str, overrides: dict, epochs: int | None, cache_dir: str | Path | None,
                         ckpt: dict | None = None) -> tuple[Path, dict]:
    """``trained_checkpoint`` of the shipped checkpoint of ``model`` retrained with ``overrides``: the same
    recipe, model config, training settings and seed as the shipped one, ``epochs`` epochs (None: the
    shipped checkpoint's)."""
    from spikeforge.core import resolve_checkpoint
    from spikeforge.training import load_checkpoint

    if ckpt is None:
        _, ckpt = load_checkpoint(resolve_checkpoint(model))
    settings = {**ckpt["config"], **{k: v for k, v in ckpt["train"].items() if k != "epochs"}, **overrides}
    return trained_checkpoint(model, settings, epochs or ckpt["train"].get("epochs"), ckpt["seed"], cache_dir)


def _load(point: Point, knobs: dict, cache_dir: str | None):
    """(model, ckpt, checkpoint path, mode, training record or None): the shipped checkpoint, or a retrained
    one for the training knobs (``retrained_checkpoint``)."""
    from spikeforge.core import resolve_checkpoint
    from spikeforge.training import load_checkpoint

    path = resolve_checkpoint(point.model)
    if not point.retrained():
        model, ckpt = load_checkpoint(path)
        return model, ckpt, path, "evaluated", None
    _, ckpt = load_checkpoint(path)
    out, info = retrained_checkpoint(point.model, retrain_overrides(ckpt, knobs), point.epochs, cache_dir, ckpt)
    model, ckpt = load_checkpoint(out)
    return model, ckpt, out, "retrained", info


def evaluate_point(point: Point, cache_dir: str | None = None) -> dict:
    """Evaluate one point; never raises: a failure is a record with ``status = error`` and the error."""
    start = time.perf_counter()
    record = {"study": point.study, "model": point.model, "seed": point.used_seed(), "samples": point.samples}
    try:
        import torch

        torch.set_num_threads(1)
        knobs = point.full_knobs()
        record.update(knobs)
        record.update(_evaluate(point, knobs, cache_dir))
        record["status"] = "ok"
    except Exception as exc:   # recorded, and the sweep goes on
        record["status"] = "error"
        record["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        record["traceback"] = traceback.format_exc(limit=6)
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


def _evaluate(point: Point, knobs: dict, cache_dir: str | None) -> dict:
    import torch

    from estimate.core import estimate_core
    from golden.core import compile_model, run_program, spec_for_program
    from spikeforge.core import CoreModel, held_out_samples

    model, ckpt, path, mode, trained = _load(point, knobs, cache_dir)
    apply_model_knobs(model, knobs)
    int_model = model.to_integer()
    seq_len = ckpt.get("train", {}).get("seq_len")
    apply_knobs(int_model, knobs, point.seed, seq_len)
    program = compile_model(int_model, lanes=int(knobs["lanes"]), seq_len=seq_len)
    spec = spec_for_program(program, wta_lanes=int(knobs["wta_lanes"]), debug_taps=False)
    cm = CoreModel(ckpt["recipe"], Path(path), ckpt, int_model, program, spec)
    x, targets, mask = held_out_samples(cm, point.samples)
    run = run_program(program, x, current_width=spec.current_width)
    logits = run.logits                                            # (B, rows, classes)
    targets = targets if targets.dim() == 2 else targets.unsqueeze(1)
    mask = mask if mask.dim() == 2 else mask.unsqueeze(1)
    hits = (logits.argmax(dim=-1) == targets) & mask
    out: dict[str, Any] = {"mode": mode, "accuracy": float(hits.sum()) / max(1, int(mask.sum()))}
    if trained is not None:
        out.update({"train_epochs": trained["epochs"], "train_steps": trained["steps"],
                    "train_seconds": trained["seconds"], "train_metrics": trained["metrics"]})
    if program.input_kind == "tokens":
        logp = torch.log_softmax(logits.double() / program.logit_scale, dim=-1)
        nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)[mask]
        out["bpc"] = float(nll.mean()) / math.log(2)
        out["perplexity"] = 2.0 ** out["bpc"]
    est = estimate_core(program, spec, run, tech="45nm", model=cm.name)
    sops = float(est.count("sops").double().mean())
    out.update({"cycles": est.mean_cycles, "sops": sops, "utilisation": sops / (spec.lanes * est.mean_cycles),
                "energy_nj": est.energy_by_tech["45nm"] / 1000.0, "energy_nj_7nm": est.energy_by_tech["7nm"] / 1000.0,
                "events": {k: float(est.count(k).double().mean()) for k in est.kinds()}})
    out.update(area_estimate(cm.name, spec, knobs))
    return out


# ---- area: the synthesis table, or a lane model fitted on synthesised cores -------------------------

AREA_TARGETS = ("ecp5", "xilinx7")
AREA_RESOURCES = ("luts", "ffs", "bram", "dsp")
SYNTHESIS_CSV = ROOT / "docs" / "results" / "synthesis.csv"


def _synth_cache_dir() -> Path:
    return _cache_base() / "synth"


def core_rows(csv_path: Path = SYNTHESIS_CSV, cache_dir: Path | None = None) -> list[dict]:
    """Synthesised cores: the table's core rows and every core report in the synthesis cache (older RTL
    revisions included; each distinct Verilog once). {model, lanes, wta_lanes, target, luts, ..., source}."""
    rows, seen = [], set()

    def add(spec: dict, rep: dict, source: str, tag):
        if spec.get("debug_taps") or not spec.get("model") or tag in seen:
            return
        if rep.get("status") not in ("ok", "does-not-fit") or not float(rep.get("luts") or 0):
            return
        seen.add(tag)
        rows.append({"model": spec["model"], "lanes": int(spec["lanes"]), "wta_lanes": int(spec["wta_lanes"]),
                     "target": rep["target"], "status": rep["status"], "source": source,
                     **{r: float(rep.get(r) or 0) for r in AREA_RESOURCES},
                     "fmax_mhz": float(rep["fmax_mhz"]) if rep.get("fmax_mhz") not in (None, "") else None})
    if Path(csv_path).is_file():
        with open(csv_path, newline="") as f:
            for r in csv.DictReader(f):
                if r.get("block") == "core":
                    add(json.loads(r.get("spec") or "{}"), r, "synthesis.csv",
                        (r["target"], r.get("luts"), r.get("ffs"), r.get("spec")))
    cache = Path(cache_dir) if cache_dir is not None else _synth_cache_dir()
    for path in sorted(cache.glob("spikeforge_core-*.json")) if cache.is_dir() else []:
        try:
            rep = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        spec = rep.get("spec") or {}
        add(spec, rep, "synthesis cache", (rep.get("target"), str(rep.get("luts")), str(rep.get("ffs")),
                                           json.dumps(spec, sort_keys=True)))
    return rows


@dataclass
class AreaModel:
    """resource(model, P, target) = resource of the model's P0 = 8 row + s_target (P - P0).

    The slope s (resource per lane) is fitted by least squares on the synthesised cores of one model
    and target whose lane counts differ (the spiking MLP on iCE40 today), then carried to the other
    targets in proportion to their P0 rows (s_t = s_fit x R_t(mlp, 8) / R_fit(mlp, 8)). Validation:
    leave-one-out over the lane rows (each predicted from the fit without it)."""

    slopes: dict[tuple[str, str], float] = field(default_factory=dict)       # (target, resource) -> per lane
    loo_error: dict[str, float] = field(default_factory=dict)                # resource -> mean |rel. error|
    loo_rows: list[dict] = field(default_factory=list)
    fitted_on: str = ""
    anchors: dict[tuple[str, str, int], dict] = field(default_factory=dict)  # (model, target, P_w) -> P0 row
    rows: list[dict] = field(default_factory=list)

    P0 = 8

    @classmethod
    def fit(cls, rows: list[dict]) -> "AreaModel":
        m = cls(rows=rows)
        for r in rows:
            if r["lanes"] == cls.P0:
                key = (r["model"], r["target"], r["wta_lanes"])
                # the current table's row wins over older cache entries
                if key not in m.anchors or r["source"] == "synthesis.csv":
                    m.anchors[key] = r
        groups: dict[tuple[str, str], list[dict]] = {}
        for r in rows:
            groups.setdefault((r["model"], r["target"]), []).append(r)
        best = max((g for g in groups.items() if len({r["lanes"] for r in g[1]}) >= 3),
                   key=lambda g: len(g[1]), default=None)
        if best is None:
            return m
        (fmodel, ftarget), grp = best
        m.fitted_on = f"{fmodel} on {ftarget}: P = {', '.join(str(r['lanes']) for r in grp)}"
        for res in AREA_RESOURCES:
            slope = _slope([(r["lanes"], r[res]) for r in grp])
            errors = []
            for i, r in enumerate(grp):
                rest = grp[:i] + grp[i + 1:]
                if len({x["lanes"] for x in rest}) < 2:
                    continue
                s = _slope([(x["lanes"], x[res]) for x in rest])
                icept = sum(x[res] - s * x["lanes"] for x in rest) / len(rest)
                pred = icept + s * r["lanes"]
                if r[res]:
                    errors.append(abs(pred - r[res]) / r[res])
                    m.loo_rows.append({"resource": res, "lanes": r["lanes"], "measured": r[res],
                                       "predicted": round(pred, 1)})
            m.loo_error[res] = sum(errors) / len(errors) if errors else float("nan")
            ref = [r for r in grp if r["lanes"] == cls.P0]
            ref_value = sum(r[res] for r in ref) / len(ref) if ref else None
            for target in AREA_TARGETS + (ftarget,):
                anchor = m.anchors.get((fmodel, target, 4))
                if target == ftarget or not ref_value or anchor is None:
                    m.slopes[(target, res)] = slope
                else:
                    m.slopes[(target, res)] = slope * anchor[res] / ref_value
        return m

    def predict(self, model: str, lanes: int, wta_lanes: int, target: str) -> tuple[dict | None, str]:
        exact = [r for r in self.rows if (r["model"], r["lanes"], r["wta_lanes"], r["target"]) ==
                 (model, lanes, wta_lanes, target)]
        exact.sort(key=lambda r: r["source"] != "synthesis.csv")
        if exact:
            return {res: exact[0][res] for res in AREA_RESOURCES} | {"fmax_mhz": exact[0]["fmax_mhz"]}, \
                exact[0]["source"]
        anchor = self.anchors.get((model, target, wta_lanes))
        if anchor is None or (target, "luts") not in self.slopes:
            return None, "no synthesis row and no area model"
        out = {res: max(0.0, anchor[res] + self.slopes[(target, res)] * (lanes - self.P0)) for res in AREA_RESOURCES}
        out["fmax_mhz"] = None
        return out, "area model"


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    den = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / den if den else 0.0


_AREA: AreaModel | None = None


def area_model() -> AreaModel:
    global _AREA
    if _AREA is None:
        _AREA = AreaModel.fit(core_rows())
    return _AREA


def area_estimate(model: str, spec, knobs: dict) -> dict:
    """ECP5 and xilinx7 resources of the point's core (``AreaModel.predict``) and where they come from.

    Only lanes enter the model; k, T, levels, sigma and membrane change units the table has no
    core row for, so the area of such a point is its lane configuration's (``area_source`` says)."""
    am = area_model()
    out: dict[str, Any] = {}
    sources = set()
    for target in AREA_TARGETS:
        pred, source = am.predict(model, spec.lanes, spec.wta_lanes, target)
        sources.add(source)
        for res in AREA_RESOURCES:
            out[f"{res}_{target}"] = None if pred is None else round(pred[res], 1)
        if target == "ecp5":
            out["fmax_ecp5"] = None if pred is None else pred.get("fmax_mhz")
    other = [k for k in ("k", "T", "levels", "sigma", "offset", "membrane") if knobs.get(k) != DEFAULTS[k]]
    src = " / ".join(sorted(sources))
    out["area_source"] = src + (f" (of the trained core; {', '.join(other)} not modelled)" if other else "")
    return out


# ---- the Dask driver -------------------------------------------------------------------------------

ADDRESS = re.compile(r"^(((tcp|tls|ucx|ws|wss)://)?[\w.\-\[\]:]+:\d+|inproc://\S+)$")


def connect(scheduler: str | None = None, workers: int = 2, processes: bool = True, timeout: float = 5.0):
    """(client, cluster): a ``distributed.Client`` to ``scheduler``, else to a new ``LocalCluster``."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not ADDRESS.match(scheduler):
            raise SweepError(f"--scheduler {scheduler!r} is not a Dask scheduler address; give "
                             f"tcp://HOST:PORT (what `dask scheduler` prints) or leave it out for a LocalCluster")
        try:
            return Client(scheduler, timeout=f"{timeout}s"), None
        except (OSError, TimeoutError) as exc:
            raise SweepError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler there "
                             f"({type(exc).__name__}); give the address of a running scheduler "
                             f"(tcp://HOST:PORT) or leave out --scheduler for a LocalCluster") from None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"--workers must be an integer >= 1, got {workers!r}")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None,
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster


@dataclass
class SweepResult:
    records: list[dict]
    computed: int          # points evaluated by this run (tasks submitted)
    cached: int            # points taken from the cache
    seconds: float

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r.get("status") != "ok"]


def run_points(points: list[Point], *, cache_dir: str | Path | None = None, workers: int = 2,
               scheduler: str | None = None, processes: bool = True, progress: bool = True,
               retry_failed: bool = False, client=None) -> SweepResult:
    """Evaluate ``points`` on Dask (one task each), taking what the cache has; writes each result as it comes."""
    from tqdm import tqdm

    start = time.perf_counter()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    version = code_version()
    records: dict[str, dict] = {}
    todo: list[tuple[str, Point]] = []
    for p in points:
        key = p.key(version)
        path = cache / f"{key}.json"
        if key in records or any(k == key for k, _ in todo):
            continue
        if path.is_file():
            try:
                rec = json.loads(path.read_text())
                if rec.get("status") == "ok" or not retry_failed:
                    records[key] = rec
                    continue
            except ValueError:
                pass   # a torn file: compute again
        todo.append((key, p))
    cached = len(records)
    if todo:
        own = client is None
        cluster = None
        if own:
            client, cluster = connect(scheduler, workers, processes)
        try:
            from distributed import as_completed

            futures = {client.submit(evaluate_point, p, str(cache), key=f"sweep-point-{key}", pure=False): key
                       for key, p in todo}
            bar = tqdm(total=len(futures), desc="sweep", unit="point", disable=not progress)
            for fut in as_completed(futures):
                key = futures[fut]
                try:
                    rec = fut.result()
                except Exception as exc:   # the task itself died (a worker lost, not a point's error)
                    p = dict(todo)[key]
                    rec = {"study": p.study, "model": p.model, **p.full_knobs(), "seed": p.used_seed(),
                           "samples": p.samples, "status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
                rec["key"] = key
                tmp = cache / f".{key}.json.tmp"
                tmp.write_text(json.dumps(rec))
                tmp.replace(cache / f"{key}.json")
                records[key] = rec
                bar.update(1)
                bar.set_postfix(failed=sum(r.get("status") != "ok" for r in records.values()))
            bar.close()
        finally:
            if own:
                client.close()
                if cluster is not None:
                    cluster.close()
    out = []
    for p in points:
        rec = dict(records[p.key(version)])
        rec["study"] = p.study
        rec["key"] = p.key(version)
        out.append(rec)
    return SweepResult(out, len(todo), cached, time.perf_counter() - start)


# ---- Pareto fronts, CSV, plots ---------------------------------------------------------------------

def pareto_front(rows: list[dict], cost: str, quality: str = "accuracy") -> list[dict]:
    """The rows no other row dominates: lower-or-equal ``cost`` and higher-or-equal ``quality``, one of
    them strictly. Rows missing either value are left out. Sorted by cost (then quality, descending)."""
    pts = [r for r in rows if r.get(cost) is not None and r.get(quality) is not None
           and r.get("status", "ok") == "ok"]
    front = []
    for r in pts:
        dominated = any(o[cost] <= r[cost] and o[quality] >= r[quality] and
                        (o[cost] < r[cost] or o[quality] > r[quality]) for o in pts)
        if not dominated:
            front.append(r)
    front.sort(key=lambda r: (r[cost], -r[quality]))
    return front


def write_csv(records: list[dict], path: Path, columns=CSV_COLUMNS) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({c: _csv_value(r.get(c)) for c in columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue())
    return path


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def svg_scatter(series: dict[str, list[dict]], x: str, y: str, fronts: dict[str, list[dict]], *,
                title: str, xlabel: str, ylabel: str, label: Callable[[dict], str] | None = None) -> str:
    """A scatter plot by hand (no plotting dependency): one colour per series, its Pareto front joined,
    a log x axis when x spans more than 20x."""
    colours = ["#3b6fb6", "#d1603d", "#4f9a52", "#8a5bb0", "#b5892d"]
    pts = [(r[x], r[y]) for rows in series.values() for r in rows if r.get(x) is not None and r.get(y) is not None]
    width, height, left, right, top, bottom = 640, 400, 70, 170, 40, 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11">', f'<text x="{left}" y="20" font-size="13" font-weight="bold">{_esc(title)}</text>']
    if not pts:
        parts.append(f'<text x="{left}" y="{height / 2}">no points</text></svg>')
        return "\n".join(parts)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    logx = min(xs) > 0 and max(xs) / min(xs) > 20
    fx = (lambda v: math.log10(v)) if logx else (lambda v: v)
    x0, x1 = fx(min(xs)), fx(max(xs))
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.05, y1 + 0.05
    pad_y = (y1 - y0) * 0.08
    y0, y1 = y0 - pad_y, y1 + pad_y
    pw, ph = width - left - right, height - top - bottom
    sx = lambda v: left + (fx(v) - x0) / (x1 - x0) * pw          # noqa: E731
    sy = lambda v: top + ph - (v - y0) / (y1 - y0) * ph           # noqa: E731
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        xv = x0 + (x1 - x0) * i / 4
        xr = 10 ** xv if logx else xv
        parts.append(f'<text x="{left - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
        parts.append(f'<text x="{left + (xv - x0) / (x1 - x0) * pw:.1f}" y="{top + ph + 15}" '
                     f'text-anchor="middle">{_tick(xr)}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">{_esc(xlabel)}'
                 f'{" (log scale)" if logx else ""}</text>')
    parts.append(f'<text x="16" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 {top + ph / 2})">'
                 f'{_esc(ylabel)}</text>')
    for i, (name, rows) in enumerate(series.items()):
        c = colours[i % len(colours)]
        front = [r for r in fronts.get(name, []) if r.get(x) is not None]
        if len(front) > 1:
            path = " ".join(f"{sx(r[x]):.1f},{sy(r[y]):.1f}" for r in front)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="1.5" '
                         f'stroke-dasharray="4 3"/>')
        for r in rows:
            if r.get(x) is None or r.get(y) is None:
                continue
            on = any(r is f for f in front)
            parts.append(f'<circle cx="{sx(r[x]):.1f}" cy="{sy(r[y]):.1f}" r="{4 if on else 3}" fill="{c}" '
                         f'fill-opacity="{1 if on else 0.45}"><title>{_esc(label(r) if label else "")}</title>'
                         f'</circle>')
            if label:
                parts.append(f'<text x="{sx(r[x]) + 5:.1f}" y="{sy(r[y]) - 4:.1f}" font-size="9" fill="{c}">'
                             f'{_esc(label(r))}</text>')
        ly = top + 14 + 16 * i
        parts.append(f'<circle cx="{width - right + 16}" cy="{ly - 4}" r="4" fill="{c}"/>'
                     f'<text x="{width - right + 26}" y="{ly}">{_esc(name)}</text>')
    parts.append(f'<text x="{width - right + 10}" y="{top + 14 + 16 * len(series) + 8}" font-size="9">'
                 f'dashed: Pareto front</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _tick(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _esc(s: str) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def knob_label(study: Study | None, r: dict) -> str:
    keys = list(dict.fromkeys(k for g in study.grids for k in g)) if study else \
        [k for k in KNOBS if r.get(k) != DEFAULTS[k]]
    return " ".join(f"{k}={r.get(k) if r.get(k) is not None else 'ckpt'}" for k in keys)


def write_outputs(name: str, records: list[dict], out_dir: Path, study: Study | None = None) -> list[Path]:
    """``<name>.csv`` (every point), ``<name>.json``, ``<name>-pareto.csv`` (the fronts per model and cost
    axis) and one SVG per cost axis (accuracy against energy, cycles, ECP5 LUTs)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_csv(records, out_dir / f"{name}.csv")]
    js = out_dir / f"{name}.json"
    js.write_text(json.dumps([{k: v for k, v in r.items() if k != "traceback"} for r in records], indent=1) + "\n")
    written.append(js)
    by_model: dict[str, list[dict]] = {}
    for r in records:
        by_model.setdefault(r["model"], []).append(r)
    front_rows = []
    for axis, axis_label in COST_AXES.items():
        fronts = {m: pareto_front(rows, axis) for m, rows in by_model.items()}
        for m, front in fronts.items():
            front_rows += [{**r, "front": f"accuracy vs {axis}"} for r in front]
        svg = svg_scatter({m: [r for r in rows if r.get("status") == "ok"] for m, rows in by_model.items()},
                          axis, "accuracy", fronts, title=f"{name}: accuracy vs {axis_label}", xlabel=axis_label,
                          ylabel="integer-mode accuracy", label=lambda r: knob_label(study, r))
        path = out_dir / f"{name}-accuracy-vs-{axis.split('_')[0]}.svg"
        path.write_text(svg + "\n")
        written.append(path)
    written.append(write_csv(front_rows, out_dir / f"{name}-pareto.csv", ("front",) + CSV_COLUMNS))
    return written


def sweep(study: str, *, models: list[str] | None = None, grid: dict[str, tuple] | None = None,
          seeds: list[int] | None = None, samples: int | None = None, out_dir: str | Path = "docs/results/codesign",
          retrain: bool = False, epochs: int | None = None, **run_kwargs) -> tuple[SweepResult, list[Path]]:
    """Run a named study (or ``custom`` with ``models`` and ``grid``) and write its outputs; ``samples``
    None: the study's own (``Study.samples``), else 64."""
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int) or samples < 1):
        raise SweepError(f"--samples must be an integer >= 1, got {samples!r}")
    if models:
        check_models(models)
    if study == "custom":
        if not grid or not models:
            raise SweepError("study custom needs --models and at least one --set KNOB=V1,V2,...")
        st = Study("custom", "custom sweep", tuple(models), (grid,))
    else:
        st = get_study(study)
        if grid:
            st = Study(st.name, st.title, st.models, (grid,), st.seeds, st.retrain, st.epochs, st.samples)
    if samples is None:
        samples = st.samples or 64
    points = st.points(models, seeds)
    for p in points:
        p.samples, p.retrain = samples, retrain or st.retrain
        p.epochs = epochs if epochs is not None else st.epochs
        p.full_knobs()
    result = run_points(points, **run_kwargs)
    return result, write_outputs(st.name, result.records, Path(out_dir), st)
