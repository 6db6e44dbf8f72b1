"""``spikeforge compare``: train (or load) equal-size versions of every digits model and tabulate
held-out accuracy, firing rate, SOPs, MACs, estimated energy and energy relative to the
equal-size non-spiking transformer (``ann-vit``).

``int_accuracy`` is the held-out accuracy of the model's integer mode (``to_integer()``, 8-bit
weights) where it has one. Generic over the training registry: every recipe with task ``digits`` joins; the size keys
(``embed_dim``, ``depth``, ``heads``, ``time_steps``, or aliases such as ``dim``/``blocks``) are
applied to each recipe that has them and whose model builds with them (``fit_size``); others
keep their own sizes, which the table shows. Counting uses the models' explicit
counters (``golden.energy``); a model without them is counted by forward hooks on its
``nn.Linear`` / ``nn.Conv*`` layers and its neurons (``LIF`` or any module class named ``*LIF``)
(column ``counting`` = ``hooks``:
attention products outside linear layers are then not counted).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from golden import data, energy
from golden.energy import Meter
from golden.lif import LIF

from . import training

SIZE_KEYS = ("embed_dim", "depth", "heads", "time_steps")
DEFAULT_SIZE = {"embed_dim": 32, "depth": 1, "heads": 2, "time_steps": 4}
BASELINE = "ann-vit"
COLUMNS = ("model", "size", "params", "test_accuracy", "int_accuracy", "firing_rate", "sops", "macs", "energy_nj",
           "energy_vs_ann", "ann_over_model", "counting", "epochs", "train_seconds")


def digits_recipes() -> list[str]:
    return [name for name in training.recipe_names() if training.get_recipe(name).task == "digits"]


def _hook_meter(model: nn.Module, x: torch.Tensor) -> Meter:
    """Count any model by hooks: nn.Linear / nn.Conv* (SOPs when the input is non-negative
    integer-valued, i.e. spikes or sums of spikes, MACs otherwise) and LIF outputs (spikes)."""
    meter = Meter()
    handles = []

    def spiking(t: torch.Tensor) -> bool:
        return (not t.is_floating_point()) or bool(((t >= 0) & (t == torch.round(t))).all())

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            def hook(mod, inputs, output, name=name):
                energy.count_linear(name, inputs[0], mod.out_features, spiking_input=spiking(inputs[0]))
            handles.append(module.register_forward_hook(hook))
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
            def hook(mod, inputs, output, name=name):
                x_in = inputs[0]
                taps = mod.in_channels // mod.groups * math.prod(mod.kernel_size)
                if spiking(x_in):   # fan-out of an input element: out/groups channels x taps / stride^d
                    fan = mod.out_channels // mod.groups * math.prod(mod.kernel_size) / math.prod(mod.stride)
                    energy.count_sops(name, int(torch.count_nonzero(x_in) * fan))
                else:
                    energy.count_macs(name, output.numel() * taps)
            handles.append(module.register_forward_hook(hook))
        elif isinstance(module, LIF) or type(module).__name__.endswith("LIF"):   # LIF, AdaptiveLIF, ...
            def hook(mod, inputs, output, name=name):
                energy.count_spikes(name, output)
            handles.append(module.register_forward_hook(hook))
    try:
        with meter, torch.no_grad():
            for chunk in x.split(150):
                model(chunk)
    finally:
        for h in handles:
            h.remove()
    meter.samples = len(x)
    return meter


def measure(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, float], str]:
    """Per-sample SOPs, MACs, spikes, firing rate, energy (pJ) of ``model`` on ``x`` (eval mode)."""
    model.eval()
    with Meter() as meter, torch.no_grad():
        for chunk in x.split(150):
            model(chunk)
    method = "explicit"
    if meter.sops + meter.macs == 0:
        meter, method = _hook_meter(model, x), "hooks"
    if meter.samples == 0:
        meter.samples = len(x)
    return meter.report(), method


def integer_accuracy(model: nn.Module, split) -> float | str:
    """Held-out accuracy of ``model.to_integer()`` on the exact integer pixels, or "" if the model has
    no integer mode taking digits pixels."""
    if not hasattr(model, "to_integer"):
        return ""
    from golden.models.common import to_int_pixels

    try:
        int_model = model.to_integer()
        logits = int_model.forward(to_int_pixels(split.x_test))
    except (TypeError, ValueError, AttributeError):   # another convention of integer input
        return ""
    return float((logits.argmax(dim=1) == split.y_test).double().mean())


#: the setting names other recipes use for the same size
SIZE_ALIASES = {"embed_dim": ("embed_dim", "dim", "d_model", "hidden"), "depth": ("depth", "blocks", "layers"),
                "heads": ("heads", "num_heads"), "time_steps": ("time_steps", "T")}


def fit_size(name: str, size: dict[str, Any]) -> dict[str, Any]:
    """The size settings a recipe accepts: each size key (or its alias) it has, dropping the fewest keys
    needed for the recipe's model to build (e.g. a model whose head count is tied to another setting
    keeps its own heads). The table's ``size`` column shows what each model really ran with."""
    import itertools

    recipe = training.get_recipe(name)
    wanted = {}
    for key, value in size.items():
        for alias in SIZE_ALIASES.get(key, (key,)):
            if alias in recipe.defaults:
                wanted[alias] = value
                break
    keys = list(wanted)
    for n in range(len(keys), -1, -1):
        for kept in itertools.combinations(keys, n):
            trial = {k: wanted[k] for k in kept}
            _, config = recipe.split_config(trial)
            try:
                recipe.build(None, **config)
            except (ValueError, TypeError, AssertionError):   # inconsistent with the recipe's other settings
                continue
            return trial
    return {}


def train_or_load(name: str, size: dict[str, Any], epochs: int | None, seed: int, directory: Path,
                  retrain: bool, progress: bool) -> tuple[nn.Module, dict, float]:
    recipe = training.get_recipe(name)
    overrides = fit_size(name, size)
    path = directory / f"{name}.pt"
    want_epochs = epochs if epochs is not None else recipe.defaults["epochs"]
    if path.exists() and not retrain:
        model, ckpt = training.load_checkpoint(path)
        same = all(ckpt["config"].get(k) == v for k, v in overrides.items())
        if same and ckpt.get("train", {}).get("epochs") == want_epochs and ckpt.get("seed") == seed:
            return model, ckpt, float(ckpt.get("seconds", float("nan")))
    report = training.train(name, epochs=epochs, seed=seed, out=path, progress=progress, overrides=overrides)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["seconds"] = report.seconds
    torch.save(ckpt, path)
    model, ckpt = training.load_checkpoint(path)
    return model, ckpt, report.seconds


def build_table(rows: list[dict[str, Any]], baseline: str = BASELINE) -> list[dict[str, Any]]:
    """Add ``energy_vs_ann`` (model / baseline energy) and ``ann_over_model`` (baseline / model) to
    rows holding ``model`` and ``energy_nj``; raises ValueError if the baseline row is missing."""
    base = [r for r in rows if r["model"] == baseline]
    if not base:
        raise ValueError(f"compare: the baseline {baseline!r} is not among the models "
                         f"({', '.join(r['model'] for r in rows)})")
    e0 = base[0]["energy_nj"]
    out = []
    for r in rows:
        r = dict(r)
        r["energy_vs_ann"] = r["energy_nj"] / e0 if e0 else float("nan")
        r["ann_over_model"] = e0 / r["energy_nj"] if r["energy_nj"] else float("inf")
        out.append(r)
    return out


def _fmt(key: str, value) -> str:
    if isinstance(value, float):
        if key in ("sops", "macs"):
            return f"{value:,.0f}"
        if key in ("test_accuracy", "int_accuracy", "firing_rate", "energy_vs_ann"):
            return f"{value:.3f}"
        if key in ("ann_over_model",):
            return f"{value:.1f}x"
        return f"{value:.1f}"
    return str(value)


def markdown(rows: list[dict[str, Any]], columns=COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(c, r.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: Path, columns=COLUMNS) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def svg_plot(rows: list[dict[str, Any]]) -> str:
    """Two bar panels by hand (no plotting dependency): energy per sample (nJ) and test accuracy."""
    n = len(rows)
    bar, gap, left, width = 22, 10, 150, 300
    height = 60 + n * (bar + gap)
    emax = max(r["energy_nj"] for r in rows) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + 2 * width + 120}" height="{height}" '
             'font-family="sans-serif" font-size="12">',
             f'<text x="{left}" y="20" font-weight="bold">energy per sample (nJ, 45 nm)</text>',
             f'<text x="{left + width + 60}" y="20" font-weight="bold">held-out accuracy</text>']
    for i, r in enumerate(rows):
        y = 40 + i * (bar + gap)
        colour = "#888888" if r["model"] == BASELINE else "#3b6fb6"
        w_e = width * r["energy_nj"] / emax
        w_a = width * max(0.0, r["test_accuracy"])
        parts += [f'<text x="{left - 8}" y="{y + bar * 0.7}" text-anchor="end">{r["model"]}</text>',
                  f'<rect x="{left}" y="{y}" width="{w_e:.1f}" height="{bar}" fill="{colour}"/>',
                  f'<text x="{left + w_e + 4:.1f}" y="{y + bar * 0.7}">{r["energy_nj"]:.1f}</text>',
                  f'<rect x="{left + width + 60}" y="{y}" width="{w_a:.1f}" height="{bar}" fill="#4f9a52"/>',
                  f'<text x="{left + width + 64 + w_a:.1f}" y="{y + bar * 0.7}">{r["test_accuracy"]:.3f}</text>']
    parts.append("</svg>")
    return "\n".join(parts)


def compare(models: list[str] | None = None, *, size: dict[str, Any] | None = None, epochs: int | None = None,
            seed: int = 0, out_dir: str | Path = "docs/results", checkpoint_dir: str | Path = "checkpoints/compare",
            retrain: bool = False, progress: bool = True, baseline: str = BASELINE) -> list[dict[str, Any]]:
    """Train or load every model, measure it on the held-out digits, write CSV, markdown and SVG."""
    available = digits_recipes()
    models = list(models) if models else available
    unknown = [m for m in models if m not in available]
    if unknown:
        raise ValueError(f"compare: unknown or non-digits model(s) {', '.join(unknown)}; "
                         f"digits models: {', '.join(available)}")
    models = [m for m in models if m != baseline] + [baseline]     # the reference row last
    size = {**DEFAULT_SIZE, **(size or {})}
    bad = [k for k in size if k not in SIZE_KEYS]
    if bad:
        raise ValueError(f"compare: size keys must be among {', '.join(SIZE_KEYS)}; got {', '.join(bad)}")
    torch.set_num_threads(1)
    checkpoint_dir, out_dir = Path(checkpoint_dir), Path(out_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    split = data.digits_split(seed=seed)
    x_test = split.x_test
    rows = []
    for name in models:
        model, ckpt, seconds = train_or_load(name, size, epochs, seed, checkpoint_dir, retrain, progress)
        metrics, method = measure(model, x_test)
        cfg = ckpt["config"]
        aliases = [a for k in SIZE_KEYS for a in SIZE_ALIASES[k]]
        rows.append({"model": name, "size": " ".join(f"{k}={cfg[k]}" for k in aliases if k in cfg) or "own",
                     "params": sum(p.numel() for p in model.parameters()),
                     "test_accuracy": float(ckpt["metrics"]["test_accuracy"]),
                     "int_accuracy": integer_accuracy(model, split),
                     "firing_rate": metrics["firing_rate"], "sops": metrics["sops"], "macs": metrics["macs"],
                     "energy_nj": metrics["energy_pj"] / 1000.0, "counting": method,
                     "epochs": ckpt.get("train", {}).get("epochs"), "train_seconds": seconds})
    rows = build_table(rows, baseline)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out_dir / "compare.csv")
    (out_dir / "compare.md").write_text(markdown(rows) + "\n")
    (out_dir / "compare.svg").write_text(svg_plot(rows) + "\n")
    return rows
