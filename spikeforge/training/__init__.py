"""Training recipes and the one training loop behind ``spikeforge train``.

A recipe module ``spikeforge/training/<name>.py`` defines ``RECIPE = Recipe(...)`` and is
listed in ``TRAIN_MODULES``. Tasks:

* ``digits``: ``model(x float (B, 1, 8, 8)) -> logits (B, 10)``; metric: held-out accuracy.
* ``text-causal``: ``model(tokens long (B, L)) -> logits (B, L, V)``, position t predicts
  token t + 1; metric: held-out bits per character against the unigram baseline.
* ``text-mlm``: 15 % of positions (at least one per row) are replaced by ``vocab.mask_id``;
  loss and metric on those positions only, against the unigram baseline.

Everything is seeded (model init, batches, masks), so a run is reproducible on one machine.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from golden import data

#: recipe modules, listed in the order `spikeforge train --help` shows them
TRAIN_MODULES = ("spiking_mlp", "spikformer", "spike_driven_v2", "spiking_resformer", "teformer", "ann_vit",
                 "wta_causal", "wta_mlm", "ann_causal", "matterhorn", "lsformer")

TASKS = ("digits", "text-causal", "text-mlm")
#: keys of a recipe's ``defaults`` that configure training, not the model
TRAIN_KEYS = ("epochs", "lr", "batch_size", "seq_len", "steps_per_epoch", "weight_decay", "max_chars",
              "eval_windows")
MASK_FRACTION = 0.15
#: model families trained by one name and a variant (``spikeforge train wta --variant mlm``): family ->
#: variant -> recipe, the first variant the default; the recipes stay names of their own (aliases)
VARIANTS = {"wta": {"causal": "wta-causal", "mlm": "wta-mlm"}}
#: other words for a variant: the WTA Spiking Transformer's decoder is the causal LM, its encoder the masked LM
VARIANT_SYNONYMS = {"wta": {"decoder": "causal", "encoder": "mlm"}}


@dataclass(frozen=True)
class Recipe:
    name: str
    task: str
    #: (vocab_size or None, **model config) -> nn.Module
    build: Callable[..., nn.Module]
    defaults: dict[str, Any]
    summary: str

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"recipe {self.name!r}: task {self.task!r} is not one of {', '.join(TASKS)}")

    def split_config(self, overrides: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """(training config, model config) from the defaults and ``overrides``."""
        merged = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in merged:
                raise ValueError(f"recipe {self.name!r} has no setting {key!r}; settings: "
                                 f"{', '.join(sorted(merged))}")
            merged[key] = check_setting(self.name, key, value, self.defaults[key])
        train_cfg = {k: v for k, v in merged.items() if k in TRAIN_KEYS}
        model_cfg = {k: v for k, v in merged.items() if k not in TRAIN_KEYS}
        return train_cfg, model_cfg


def _kind(value) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a JSON list" + (f" of {_kind(value[0]).split(' ', 1)[1]}s" if value else "")
    return type(value).__name__


def check_setting(recipe: str, key: str, value, default):
    """``value`` for setting ``key`` if it has the type of the recipe's default (an int is a float
    too); else ``ValueError`` naming the setting, the value and the type allowed."""
    def fail():
        raise ValueError(f"recipe {recipe!r}: --set {key}={json.dumps(value) if not isinstance(value, str) else value}"
                         f" is not {_kind(default) if default is not None else 'an integer or null'} "
                         f"(the default is {json.dumps(default)})")
    if default is None:                       # an optional count (e.g. max_chars)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            fail()
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail()
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail()
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            fail()
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or (default and not all(
                type(v) is type(default[0]) for v in value)):
            fail()
        return type(default)(value)
    return value


def resolve_recipe(name: str, variant: str | None = None) -> str:
    """The recipe behind ``spikeforge train NAME [--variant V]``: a family's variant, or the recipe itself."""
    if name in VARIANTS:
        variants = VARIANTS[name]
        if variant is None:
            return next(iter(variants.values()))
        variant = VARIANT_SYNONYMS.get(name, {}).get(variant, variant)
        if variant not in variants:
            words = list(variants) + list(VARIANT_SYNONYMS.get(name, {}))
            raise ValueError(f"--variant {variant!r} is not a variant of {name!r}; allowed: {', '.join(words)}")
        return variants[variant]
    if variant is not None:
        for family, variants in VARIANTS.items():
            if name in variants.values():
                wanted = VARIANT_SYNONYMS.get(family, {}).get(variant, variant)
                if variants.get(wanted) == name:
                    return name
                raise ValueError(f"--variant {variant!r} contradicts the recipe {name!r}; give "
                                 f"'{family} --variant ...' or the recipe alone")
        raise ValueError(f"--variant goes with a model family ({', '.join(VARIANTS)}), not with {name!r}")
    return name


_RECIPES: dict[str, Recipe] = {}


def _load() -> dict[str, Recipe]:
    if not _RECIPES:
        for module in TRAIN_MODULES:
            recipe = importlib.import_module(f"{__name__}.{module}").RECIPE
            _RECIPES[recipe.name] = recipe
    return _RECIPES


def recipe_names() -> list[str]:
    return list(_load())


def get_recipe(name: str) -> Recipe:
    recipes = _load()
    if name not in recipes:
        raise KeyError(f"unknown model {name!r}; trainable models: {', '.join(recipes)}")
    return recipes[name]


@dataclass
class TrainReport:
    name: str
    task: str
    metrics: dict[str, float]
    epochs_run: int
    seconds: float
    checkpoint: str | None
    config: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        metrics = ", ".join(f"{k} = {v:.4f}" if isinstance(v, float) else f"{k} = {v}"
                            for k, v in self.metrics.items())
        saved = f"; checkpoint {self.checkpoint}" if self.checkpoint else ""
        return f"[{self.name}] {self.epochs_run} epoch(s) in {self.seconds:.1f} s: {metrics}{saved}"


# ---- data per task --------------------------------------------------------------------------------

def _mask_tokens(tokens: torch.Tensor, mask_id: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace MASK_FRACTION of positions (at least one per row) by mask_id; return (inputs, mask)."""
    mask = torch.rand(tokens.shape, generator=gen) < MASK_FRACTION
    forced = torch.randint(0, tokens.shape[1], (tokens.shape[0],), generator=gen)
    mask[torch.arange(tokens.shape[0]), forced] = True
    return torch.where(mask, torch.full_like(tokens, mask_id), tokens), mask


def text_loss(task: str, model: nn.Module, windows: torch.Tensor, mask_id: int,
              gen: torch.Generator) -> torch.Tensor:
    """Mean cross-entropy (nats) of a batch of windows for the causal or masked task."""
    if task == "text-causal":
        logits = model(windows[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))
    inputs, mask = _mask_tokens(windows, mask_id, gen)
    logits = model(inputs)
    return F.cross_entropy(logits[mask], windows[mask])


@torch.no_grad()
def evaluate(recipe: Recipe, model: nn.Module, train_cfg: dict, dataset) -> dict[str, float]:
    model.eval()
    try:
        if recipe.task == "digits":
            logits = torch.cat([model(x) for x in dataset.x_test.split(256)])
            accuracy = float((logits.argmax(dim=1) == dataset.y_test).float().mean())
            return {"test_accuracy": accuracy}
        length = train_cfg["seq_len"] + (1 if recipe.task == "text-causal" else 0)
        windows = data.sequential_windows(dataset.val_ids, length, train_cfg.get("eval_windows", 64))
        gen = torch.Generator().manual_seed(1234)  # the same masks for every evaluation
        losses = [text_loss(recipe.task, model, w, dataset.vocab.mask_id, gen) for w in windows.split(32)]
        bits = float(torch.stack(losses).mean()) * data.BITS_PER_NAT
        unigram = data.unigram_bits_per_char(dataset.train_ids, dataset.val_ids, dataset.vocab.size)
        return {"val_bits_per_char": bits, "unigram_bits_per_char": unigram}
    finally:
        model.train()


def load_dataset(recipe: Recipe, train_cfg: dict, seed: int):
    if recipe.task == "digits":
        return data.digits_split(seed=seed)
    return data.text_split(max_chars=train_cfg.get("max_chars"))


# ---- the loop -----------------------------------------------------------------------------------

def train(name: str, *, epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
          seed: int = 0, out: str | Path | None = None, max_minutes: float | None = None,
          progress: bool = True, overrides: dict[str, Any] | None = None) -> TrainReport:
    """Train recipe ``name`` (seeded), evaluate on held-out data each epoch, save a checkpoint."""
    from tqdm import tqdm

    recipe = get_recipe(name)
    overrides = dict(overrides or {})
    for key, value in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size)):
        if value is not None:
            overrides[key] = value
    train_cfg, model_cfg = recipe.split_config(overrides)
    for key in ("epochs", "lr", "batch_size"):
        if key not in train_cfg:
            raise ValueError(f"recipe {name!r} defines no {key!r}")
    if train_cfg["epochs"] < 1 or train_cfg["batch_size"] < 1 or not train_cfg["lr"] > 0:
        raise ValueError(f"epochs and batch size must be >= 1 and the learning rate > 0; got epochs "
                         f"{train_cfg['epochs']}, batch_size {train_cfg['batch_size']}, lr {train_cfg['lr']}")
    for key in ("seq_len", "steps_per_epoch", "eval_windows", "max_chars"):
        value = train_cfg.get(key)
        if value is not None and value < 1:
            raise ValueError(f"recipe {name!r}: {key} must be >= 1, got {value}")
    if train_cfg.get("weight_decay", 0.0) < 0:
        raise ValueError(f"recipe {name!r}: weight_decay must be >= 0, got {train_cfg['weight_decay']}")
    if max_minutes is not None and not (isinstance(max_minutes, (int, float)) and math.isfinite(max_minutes)
                                        and max_minutes > 0):
        raise ValueError(f"--max-minutes must be a number > 0, got {max_minutes!r}")
    torch.manual_seed(seed)
    dataset = load_dataset(recipe, train_cfg, seed)
    vocab_size = None if recipe.task == "digits" else dataset.vocab.size
    model = recipe.build(vocab_size, **model_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg["lr"],
                                  weight_decay=train_cfg.get("weight_decay", 0.0))
    gen = torch.Generator().manual_seed(seed)
    if recipe.task == "digits":
        steps_per_epoch = math.ceil(len(dataset.y_train) / train_cfg["batch_size"])
    else:
        steps_per_epoch = train_cfg.get("steps_per_epoch", 100)
    total_steps = steps_per_epoch * train_cfg["epochs"]
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=train_cfg["lr"], total_steps=total_steps,
                                                    pct_start=0.1)
    start = time.perf_counter()
    deadline = start + max_minutes * 60 if max_minutes else None
    metrics: dict[str, float] = {}
    epochs_run = 0
    bar = tqdm(total=total_steps, desc=f"train {name}", disable=not progress, unit="step")
    model.train()
    for epoch in range(train_cfg["epochs"]):
        if recipe.task == "digits":
            order = torch.randperm(len(dataset.y_train), generator=gen)
            batches = order.split(train_cfg["batch_size"])
        else:
            batches = range(steps_per_epoch)
        running = 0.0
        for step, batch in enumerate(batches):
            if recipe.task == "digits":
                loss = F.cross_entropy(model(dataset.x_train[batch]), dataset.y_train[batch])
            else:
                length = train_cfg["seq_len"] + (1 if recipe.task == "text-causal" else 0)
                windows = data.random_windows(dataset.train_ids, length, train_cfg["batch_size"], gen)
                loss = text_loss(recipe.task, model, windows, dataset.vocab.mask_id, gen)
            aux = getattr(model, "aux_loss", None)   # a model's own extra loss term (e.g. TEFormer's alignment)
            if aux is not None:
                loss = loss + aux
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += float(loss.detach())
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{running / (step + 1):.3f}")
            if deadline and time.perf_counter() > deadline:
                break
        epochs_run += 1
        metrics = evaluate(recipe, model, train_cfg, dataset)
        metrics["train_loss"] = running / max(1, step + 1)
        bar.set_postfix(epoch=epoch + 1, **{k: f"{v:.3f}" for k, v in metrics.items()})
        if deadline and time.perf_counter() > deadline:
            break
    bar.close()
    seconds = time.perf_counter() - start
    checkpoint = None
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"recipe": name, "config": model_cfg, "train": train_cfg, "seed": seed,
                   "state_dict": model.state_dict(), "metrics": metrics,
                   "vocab": None if recipe.task == "digits" else dataset.vocab.chars}
        torch.save(payload, out)
        checkpoint = str(out)
    return TrainReport(name, recipe.task, metrics, epochs_run, seconds, checkpoint,
                       {"train": train_cfg, "model": model_cfg, "seed": seed})


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint written by ``train``; returns (model in eval mode, checkpoint)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a directory; give the .pt file that spikeforge train wrote")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # torch raises many types for a damaged file
        # torch's messages run over many lines: the first says what went wrong
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {first}); give a .pt file "
                         f"that spikeforge train wrote") from None
    if not isinstance(ckpt, dict) or "recipe" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path} is not a Spikeforge checkpoint")
    recipe = get_recipe(ckpt["recipe"])
    vocab_size = None if ckpt.get("vocab") is None else len(ckpt["vocab"]) + 1
    model = recipe.build(vocab_size, **ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt


def parse_settings(items: list[str] | None) -> dict[str, Any]:
    """``["hidden=128", "beta=0.9", "name=x"]`` -> dict, values parsed as JSON where they can be."""
    settings = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set takes key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            settings[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key.strip()] = raw
    return settings
