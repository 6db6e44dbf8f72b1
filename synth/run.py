"""Synthesis of registered blocks: one block, or the sweep behind ``spikeforge synth --all``.

Generic over the block registry (``spikeforge.blocks``): a block is
synthesised from ``get_block(name).component(spec)`` as module
``block.toplevel``, so a newly registered block is covered with no change here.
The sweep also covers the neuromorphic core of every shipped trained model
(``CORE_SWEEP``, ``synth.core``), tabulated in a section of its own, so a
regeneration of the table keeps the core rows.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import typing
from pathlib import Path
from typing import Callable

from golden.spec import SpecError

from .flow import TARGETS, SynthError, SynthReport, get_target, synthesize
from .tools import ToolError

#: int spec fields that set a block's size; ``synth_specs`` scales them when a block declares no sweep
SIZE_FIELDS = ("lanes", "depth", "length", "k", "top_k", "dim", "window", "channels", "heads", "tokens", "rows", "cols")
#: factors of the derived larger configurations (one: the sweep stays within minutes per block)
GENERIC_FACTORS = (4,)
#: targets the sweep covers, and whether each is placed and routed there
SWEEP_TARGETS = {"ecp5": True, "ice40": True, "xilinx7": False}
#: the cores of the sweep: every shipped trained model at the default lanes, without the debug taps
#: (they are a verification feature; ``synth.core``)
CORE_SWEEP = ("spiking-mlp", "wta-causal", "wta-mlm", "matterhorn")


def _is_size_field(name: str) -> bool:
    return name.startswith("n_") or name in SIZE_FIELDS or name.endswith("_size")


def synth_specs(block) -> list[tuple[str, object]]:
    """(label, spec) of the default configuration and at most two larger ones.

    A block lists its larger configurations in ``Block.synth_configs`` (dicts
    of field overrides). Without them, each integer size field (``n_*``,
    ``lanes``, ``depth``, ``length``, ``k``, ...) of the default spec is
    multiplied by 4 (``GENERIC_FACTORS``), all together; a scaled spec that does
    not validate is skipped.
    """
    default = block.default_spec()
    specs = [("default", default)]
    configs = list(getattr(block, "synth_configs", ()))
    if not configs:
        hints = typing.get_type_hints(block.spec_cls)
        sizes = {f.name: getattr(default, f.name) for f in dataclasses.fields(default)
                 if hints.get(f.name) is int and _is_size_field(f.name)}
        configs = [{k: v * factor for k, v in sizes.items()} for factor in GENERIC_FACTORS] if sizes else []
    for overrides in configs[:2]:
        values = {**default.to_dict(), **overrides}
        try:
            spec = block.spec_cls.from_dict(values)
        except SpecError:
            continue
        label = ", ".join(f"{k}={v}" for k, v in overrides.items())
        specs.append((label, spec))
    return specs


def block_verilog(block, spec, name: str | None = None) -> str:
    """The block's Verilog; a spec the component cannot elaborate becomes a ``SynthError``."""
    from rtl.emit import to_verilog

    try:
        return to_verilog(block.component(spec), name or block.toplevel)
    except (SpecError, SynthError):
        raise
    except Exception as exc:  # elaboration errors come in many types
        raise SynthError(f"block {block.name!r} does not elaborate with spec {spec.to_dict()}: "
                         f"{type(exc).__name__}: {exc}") from None


def synth_block(block, spec, target: str, *, pnr: bool = False, use_cache: bool = True,
                keep_dir: Path | None = None, cached_only: bool = False) -> SynthReport | None:
    """Synthesise one block at one spec for ``target`` (and place and route it with ``pnr``)."""
    from rtl.emit import to_verilog

    from .wrapper import SerialWrapper

    get_target(target)
    verilog = block_verilog(block, spec)
    return synthesize(verilog, block.toplevel, target, pnr=pnr, block=block.name, spec=spec.to_dict(),
                      use_cache=use_cache, keep_dir=keep_dir, cached_only=cached_only,
                      wrapped_verilog=lambda: to_verilog(SerialWrapper(block.component(spec)), "synth_top"))


@dataclasses.dataclass
class SweepRow:
    block: str
    config: str
    report: SynthReport


def sweep(block_names: list[str], targets: list[str], progress: Callable[[str], None] = print,
          on_row: Callable[[list], None] | None = None, cached_only: bool = False,
          cores: tuple[str, ...] = ()) -> list[SweepRow]:
    """Every block at each of its ``synth_specs``, then the core of every model in ``cores``
    (``synth.core.CoreConfig``, no debug taps), on every target (``on_row(rows)`` after each run)."""
    from spikeforge.blocks import get_block

    from .core import CORE_BLOCK, CoreConfig

    for t in targets:
        get_target(t)
    # every block's default configuration first, then the larger ones, then the cores (the
    # longest runs): an interrupted sweep still covers every block; the rows are kept in
    # (block, configuration, target) order
    jobs = []
    for b_index, name in enumerate(block_names):
        block = get_block(name)
        for c_index, (label, spec) in enumerate(synth_specs(block)):
            for t_index, target in enumerate(targets):
                jobs.append(((int(c_index > 0), b_index, c_index, t_index), block, label, spec, target))
    for m_index, model in enumerate(cores):
        config = CoreConfig(model)
        for t_index, target in enumerate(targets):
            jobs.append(((2, len(block_names) + m_index, 0, t_index), None, config.label, config, target))
    jobs.sort(key=lambda job: job[0])
    done = []
    loaded: dict = {}
    for key, block, label, spec, target in jobs:
        name = block.name if block is not None else CORE_BLOCK
        try:
            if block is None:
                report = _sweep_core(spec, target, loaded, cached_only)
            else:
                report = synth_block(block, spec, target, pnr=SWEEP_TARGETS.get(target, False),
                                     cached_only=cached_only)
            if report is None:  # cached_only and never run: left out of the table
                continue
        except (SynthError, SpecError, ValueError, ToolError) as exc:
            # one bad configuration (or a tool run past its time limit) must not stop the sweep
            report = SynthReport.failed(name, spec.to_dict() if block is not None else {"model": spec.model},
                                        target, str(exc))
        fmax = "" if report.fmax_mhz is None else f", {report.fmax_mhz:.1f} MHz"
        progress(f"{name:12s} {label:28s} {target:8s} {report.status:12s} {report.luts} LUT, "
                 f"{report.ffs} FF, {report.bram:g} BRAM, {report.dsp} DSP{fmax}"
                 f"{' (cached)' if report.cached else f' ({report.seconds:.0f} s)'}")
        done.append((key[1:], SweepRow(name, label, report)))
        done.sort(key=lambda item: item[0])
        if on_row is not None:
            on_row([row for _, row in done])
    return [row for _, row in done]


def _sweep_core(config, target: str, loaded: dict, cached_only: bool) -> SynthReport | None:
    from .core import load, synth_core

    if config not in loaded:  # a checkpoint is loaded and compiled once for all targets
        loaded[config] = load(config)
    return synth_core(loaded[config], target, pnr=SWEEP_TARGETS.get(target, False), cached_only=cached_only)


CSV_FIELDS = ("block", "config", "target", "device", "status", "luts", "ffs", "bram", "bram_unit", "dsp", "dsp_unit",
              "carry", "lutram", "memories", "fmax_mhz", "fmax_constraint_mhz", "meets_constraint", "spec", "message", "notes")


def _row_values(row: SweepRow) -> dict:
    r = row.report
    return {"block": row.block, "config": row.config, "target": r.target, "device": r.device, "status": r.status,
            "luts": r.luts, "ffs": r.ffs, "bram": f"{r.bram:g}", "bram_unit": r.bram_unit, "dsp": r.dsp,
            "dsp_unit": r.dsp_unit, "carry": r.carry, "lutram": r.lutram, "memories": r.memory_summary(),
            "fmax_mhz": "" if r.fmax_mhz is None else f"{r.fmax_mhz:.1f}",
            "fmax_constraint_mhz": "" if r.fmax_constraint_mhz is None else f"{r.fmax_constraint_mhz:g}",
            "meets_constraint": "" if r.meets_constraint is None else str(r.meets_constraint).lower(),
            "spec": json.dumps(r.spec, sort_keys=True), "message": r.message,
            "notes": "; ".join(f"{k}: {v}" for k, v in sorted(r.extra.items()))}


def _values(row) -> dict:
    """A table row as the CSV's fields: from a ``SweepRow``, or as read back from a CSV (``read_csv``)."""
    return _row_values(row) if isinstance(row, SweepRow) else {k: row.get(k, "") for k in CSV_FIELDS}


def read_csv(path: Path) -> list[dict]:
    """The rows of an earlier ``synthesis.csv`` (for ``merge_rows``); a missing file has none."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    if rows and set(CSV_FIELDS) - set(rows[0]):
        raise SynthError(f"{path} is not a synthesis table (missing columns: "
                         f"{', '.join(sorted(set(CSV_FIELDS) - set(rows[0])))})")
    return rows


def merge_rows(previous: list[dict], rows: list[SweepRow]) -> list:
    """``previous`` rows with each one this sweep ran again replaced in place (same block, config
    and target), then the sweep's new rows: a partial sweep updates the table, the rest is kept."""
    fresh = {(r.block, r.config, r.report.target): r for r in rows}
    merged = [fresh.pop((p["block"], p["config"], p["target"]), p) for p in previous]
    order = list(TARGETS)
    for r in rows:  # a new row goes among the rows of its configuration, in target order (else at the end)
        if (r.block, r.config, r.report.target) not in fresh:
            continue
        same = [i for i, m in enumerate(merged) if (_values(m)["block"], _values(m)["config"]) == (r.block, r.config)]
        later = [i for i in same if order.index(_values(merged[i])["target"]) > order.index(r.report.target)]
        merged.insert(later[0] if later else same[-1] + 1 if same else len(merged), r)
    return merged


_TOOLS_LINE = re.compile(r"^\* Tools: (.*)$", re.M)


def tools_in_markdown(path: Path) -> set[str]:
    """The tool versions an earlier ``synthesis.md`` names (kept when ``merge_rows`` keeps its rows)."""
    path = Path(path)
    found = _TOOLS_LINE.search(path.read_text()) if path.is_file() else None
    return set(re.findall(r"`([^`]+)`", found.group(1))) if found else set()


def write_csv(rows: list, path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_values(row))
    Path(path).write_text(buf.getvalue())


_TABLE_HEAD = ["| block | config | target | status | LUT | FF | BRAM | DSP | carry | LUT RAM | memories | Fmax (MHz) |",
               "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|"]


def write_markdown(rows: list, path: Path, csv_name: str, tools: set[str] = frozenset()) -> None:
    """The table of ``rows`` (``SweepRow``s or rows read back by ``read_csv``): the blocks, then the cores.

    ``tools``: tool versions of rows that carry none (rows read back from a CSV)."""
    from .core import CORE_BLOCK

    versions = set(tools)
    for row in rows:
        if isinstance(row, SweepRow):
            versions.update(row.report.tools.values())
    lines = [
        "# Synthesis results",
        "",
        "Generated by `spikeforge synth --all`; do not edit by hand (every number below is produced by the",
        f"command). Machine-readable copy: [{csv_name}]({csv_name}).",
        "",
        "* Resource counts: Yosys post-synthesis cells of the bare block (out of context).",
        "  LUT = logic LUTs (LUT4 on ECP5 / iCE40, LUT1-6 on 7-series); carry = CCU2C (ECP5, 2 bits each),",
        "  SB_CARRY (iCE40, 1 bit), CARRY4 (7-series, 4 bits); LUT RAM = distributed RAM / SRL cells.",
        "* Fmax: nextpnr after place and route of the block inside `synth.wrapper.SerialWrapper`",
        "  (all ports registered), seed 1. Constraint 100 MHz on ECP5, 24 MHz on iCE40.",
        "  7-series has no open place and route: post-synthesis counts only.",
        "* Targets: " + "; ".join(f"`{t.name}` = {t.device}" for t in TARGETS.values()) + ".",
        "* Tools: " + ", ".join(f"`{v}`" for v in sorted(versions)) + ".",
        "",
        *_TABLE_HEAD,
    ]
    notes: list[str] = []
    values = [_values(row) for row in rows]
    blocks = [v for v in values if v["block"] != CORE_BLOCK]
    cores = [v for v in values if v["block"] == CORE_BLOCK]
    lines += [_markdown_row(v, notes) for v in blocks]
    if cores:
        lines += ["", "## Neuromorphic core of the trained models", "",
                  "`spikeforge synth core --model MODEL --target T --no-taps [--pnr]`: the whole `rtl.core.NeuroCore`",
                  "built from a shipped checkpoint (`sim/data/core`; sequencer, MAC engine, LIF array, WTA attention",
                  "unit, activation buffers, output FIFOs), the model's weights and biases as the initial contents of",
                  "the MAC engine's memories. Without the debug taps (`no taps`): only the logits and the status beat",
                  "leave the core; the taps (every layer's outputs on the host stream) are a verification feature.",
                  "The row's spec (CSV) holds the CoreSpec, the model and the checkpoint's sha256.", "",
                  *_TABLE_HEAD]
        lines += [_markdown_row(v, notes) for v in cores]
    lines += [""] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)] + ([""] if notes else [])
    lines += ["Units: BRAM on ECP5 = DP16KD / PDPW16KD (18 kbit EBR), on iCE40 = SB_RAM40_4K (4 kbit), on 7-series =",
              "RAMB36E1 (RAMB18E1 counts 0.5); DSP = MULT18X18D / SB_MAC16 / DSP48E1.", ""]
    Path(path).write_text("\n".join(lines))


def _markdown_row(v: dict, notes: list[str]) -> str:
    status = v["status"] if v["status"] == "ok" else f"{v['status']}: {v['message']}"
    if v["notes"]:
        notes.append(v["notes"])
        status += f" [{len(notes)}]"
    fmax = v["fmax_mhz"] or "-"
    if v["meets_constraint"] == "false":
        fmax += " (below constraint)"
    return (f"| {v['block']} | {v['config']} | {v['target']} | {status} | {v['luts']} | {v['ffs']} | "
            f"{v['bram']} | {v['dsp']} | {v['carry']} | {v['lutram']} | {v['memories']} | {fmax} |")
