"""Formal properties of every block, proven with SymbiYosys (issue 15, part 3).

For each block (``spikeforge.blocks``) a ``FormalBlock`` (``sim/formal/<block>.py``) names a
small spec and the block's properties; ``Harness`` (``harness.py``) wraps the component in a
free environment with one property; ``runner.run_sby`` proves it (BMC to a depth past the
pipeline plus a few beats, or k-induction). ``prove(block)`` runs all of a block's properties
and returns one ``PropertyResult`` each; a failing property's counterexample trace (VCD) is
copied to ``out_dir``. ``spikeforge prove BLOCK`` is the command-line front end.

What is proven per block, and what is not: ``docs/architecture.md``, "Formal properties".
"""

from __future__ import annotations

import importlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .base import FormalBlock, describe
from .harness import Harness, Mutation, Property
from .runner import FormalToolError, RunResult, harness_rtlil, run_sby

#: block name -> module under sim/formal defining FORMAL (a FormalBlock)
FORMAL_MODULES = {"lif": "lif", "synapse": "synapse", "mac": "mac", "topk": "topk", "wta": "wta",
                  "mtts": "mtts", "window": "window", "alif": "alif", "sdsa": "sdsa",
                  "layernorm": "layernorm"}


def formal_block(name: str) -> FormalBlock:
    if name not in FORMAL_MODULES:
        raise KeyError(f"no formal properties for block {name!r}; blocks with properties: "
                       f"{', '.join(formal_names())}")
    return importlib.import_module(f"{__name__}.{FORMAL_MODULES[name]}").FORMAL


def formal_names() -> list[str]:
    """Blocks of the registry that have formal properties, in registry order."""
    from spikeforge.blocks import block_names

    names = []
    for name in block_names():
        if name in FORMAL_MODULES:
            try:
                importlib.import_module(f"{__name__}.{FORMAL_MODULES[name]}")
            except ModuleNotFoundError:
                continue
            names.append(name)
    return names


@dataclass
class PropertyResult:
    block: str
    prop: str
    summary: str
    result: RunResult
    trace: Path | None = None      # where the counterexample was copied (FAIL)

    @property
    def status(self) -> str:
        return self.result.status

    def mode_text(self) -> str:
        r = self.result
        return f"bmc depth {r.depth}" if r.mode == "bmc" else f"k-induction k={r.depth}"

    def line(self) -> str:
        r = self.result
        text = f"{self.block:8s} {self.prop:14s} {self.mode_text():20s} {r.status:7s} {r.seconds:7.1f} s"
        if r.cached:
            text += " (cached)"
        if r.status == "FAIL":
            where = f" at cycle {r.step}" if r.step is not None else ""
            text += f"  counterexample{where}: {self.trace or 'no trace written'}"
        if r.status in ("ERROR", "TIMEOUT"):
            last = [line for line in r.log.splitlines() if line.strip()][-1:] or [""]
            text += f"  {last[0].strip()[:200]}"
        return text


def resolve_spec(fblock: FormalBlock, config: str | None = None, overrides: dict | None = None):
    """The formal spec: the block's small default, a named config's overrides, then ``overrides``."""
    values = fblock.default_spec().to_dict()
    if config:
        if config not in fblock.configs:
            raise KeyError(f"block {fblock.name!r} has no formal config {config!r}; configs: "
                           f"{', '.join(fblock.configs) or 'none'}")
        values.update(fblock.configs[config])
    values.update(overrides or {})
    spec = type(fblock.default_spec()).from_dict(values)
    fblock.check_spec(spec)
    return spec


def prove(block: str, *, spec=None, properties: list[str] | None = None, depth: int | None = None,
          induction: bool = False, out_dir: Path | str | None = None, jobs: int = 2, use_cache: bool = True,
          solver: str | None = None, mutation: Mutation | None = None, tag: str = "",
          timeout: int = 600) -> list[PropertyResult]:
    """Prove a block's properties; one ``PropertyResult`` per property (and mode), in order.

    ``depth``: the BMC depth (default: each property's own, past the pipeline plus a few beats);
    ``induction``: also run k-induction (k = the BMC depth) for the properties where it closes;
    ``out_dir``: where counterexample traces are copied (``<block>[-tag]-<property>.vcd``).
    """
    fblock = formal_block(block)
    spec = spec if spec is not None else resolve_spec(fblock)
    props = fblock.properties()
    if properties:
        unknown = [p for p in properties if p not in {q.name for q in props}]
        if unknown:
            raise KeyError(f"block {block!r} has no property {unknown[0]!r}; its properties: "
                           f"{', '.join(p.name for p in props)}")
        props = [p for p in props if p.name in properties]
    props = [p for p in props if p.applies(spec)]
    runs = []
    for prop in props:
        d = depth if depth is not None else prop.depth(spec)
        il = harness_rtlil(Harness(fblock, spec, prop, mutation))
        runs.append((prop, il, "bmc", d))
        if induction and prop.induction:
            runs.append((prop, il, "prove", d))

    def one(job):
        prop, il, mode, d = job
        return run_sby(il, mode, d, solver=solver, use_cache=use_cache, timeout=timeout)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = list(pool.map(one, runs))
    results = []
    for (prop, _, _, _), outcome in zip(runs, outcomes):
        copied = None
        if outcome.status == "FAIL" and outcome.trace is not None and out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            stem = "-".join(x for x in (block, tag, prop.name) if x)
            copied = out / f"{stem}{'-induction' if outcome.mode == 'prove' else ''}.vcd"
            shutil.copyfile(outcome.trace, copied)
        results.append(PropertyResult(block, prop.name, prop.summary, outcome, copied))
    return results


__all__ = ["FORMAL_MODULES", "FormalBlock", "FormalToolError", "Harness", "Mutation", "Property",
           "PropertyResult", "describe", "formal_block", "formal_names", "prove", "resolve_spec"]
