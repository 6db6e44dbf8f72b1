"""The ``spikeforge`` command line.

    spikeforge blocks                                   list the hardware blocks
    spikeforge verilog BLOCK [spec options] -o FILE     write a block's Verilog
    spikeforge vectors BLOCK [spec options] -o DIR      write golden reference vectors
    spikeforge check BLOCK --vectors DIR                co-simulate a vector directory under Verilator
    spikeforge prove BLOCK [--depth N] [--induction] [--set F=V]   formal properties (SymbiYosys), one line each;
                                                        a failure writes its counterexample trace; --all: every block
    spikeforge check BLOCK --count N [--waves F.vcd]    N random + adversarial vectors, bulk path (>1M cycles/s)
    spikeforge train MODEL [--epochs N] [--set k=v]     train a model, save a checkpoint
    spikeforge train wta [--variant causal|mlm]         the WTA Spiking Transformer: decoder (causal LM, default)
                                                        or encoder (masked LM); = recipes wta-causal / wta-mlm
    spikeforge recommend --task T --hardware H --priority P   which architecture, and why (the project's
                                                        words or the guide's: nlp/vision/multimodal, ...)
    spikeforge vectors logquant|mtts-decode [...] -o DIR    golden-only vector sets (no hardware block)
    spikeforge energy MODEL [--checkpoint F] [--integer]  per-layer SOPs, MACs, spikes, energy
    spikeforge compare [--models ...] [--epochs N]      equal-size models: accuracy, SOPs, MACs, energy
    spikeforge demo                                     the main job on built-in defaults
    spikeforge synth BLOCK [spec options] --target T [--pnr]   resources and Fmax on an FPGA
    spikeforge synth core --model M --target T [--pnr] [--no-taps]   the core of a trained model on an FPGA
    spikeforge synth --all                              sweep every block and core, write docs/results/synthesis.md
    spikeforge board build --board B [--core M] -o DIR  a UART board bitstream (LIF array, or a model's core)
    spikeforge board run --port TTY --vectors DIR       run golden vectors on a board over its UART
    spikeforge board run --port TTY --core M            run held-out samples through a board's core
    spikeforge core build CKPT -o DIR                   a trained model's core: Verilog, memory images, report
    spikeforge core run CKPT [--samples N]              the core under Verilator on held-out samples, bit for bit
    spikeforge nir import GRAPH.nir -o CKPT [--dt S] [--time-steps T]   a NIR graph (snnTorch, Norse, Sinabs) as a
                                                        spiking-MLP checkpoint (float + integer mode, core-ready)
    spikeforge nir export CKPT -o GRAPH.nir [--dt S]    a spiking MLP (zero reset) as a NIR graph
    spikeforge estimate MODEL [--checkpoint F] [--samples N] [--fmax MHz] [--tech 45nm|7nm] [-o F.csv|.json]
                                                        cycles, latency, event counts and energy on the core
    spikeforge sweep run STUDY [--set KNOB=V1,V2] [--workers N | --scheduler ADDR]   a co-design sweep on Dask
    spikeforge sweep report                             every study -> docs/results/codesign.md

Spec options are generated from the block's spec dataclass (``--n-neurons 64``,
``--leak-mode multiply``, ``--no-emit-membrane``); ``--spec FILE.json`` loads a
whole spec. Every user error ends in one ``spikeforge: error: ...`` line and
exit status 2 (argparse's errors too, without the usage block); an unexpected exception
gives one ``internal error`` line and status 1 (``SPIKEFORGE_TRACEBACK=1`` shows it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from pathlib import Path

from golden.spec import SpecError
from golden.vectors import VectorFileError

from .blocks import Block, block_names, get_block
from .prove import cmd_prove


class CLIError(Exception):
    """A user error with a message for the command line."""


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``spikeforge CMD: error: argument --x: ...`` (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())}\n")


def int_range(lo: int | None = None, hi: int | None = None):
    """argparse type: an integer in [lo, hi] (either end open when None)."""
    allowed = (f"{lo} .. {hi}" if hi is not None else f">= {lo}") if lo is not None else f"<= {hi}"

    def integer(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: {allowed}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: {allowed}")
        return value
    return integer


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    """argparse type: a finite number in [lo, hi] (or (lo, hi] with ``lo_open``)."""
    left = f"> {lo}" if lo_open else f">= {lo}"
    allowed = (f"{'(' if lo_open else '['}{lo}, {hi}]" if hi is not None else left) if lo is not None \
        else f"<= {hi}"

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: {allowed}") from None
        if value != value or value in (float("inf"), float("-inf")) \
                or (lo is not None and (value <= lo if lo_open else value < lo)) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{text} is out of range; allowed: {allowed}")
        return value
    return number


#: a probability per cycle of a random stream gap: 0 would stall the stream for ever
PROBABILITY = float_range(0.0, 1.0, lo_open=True)
POSITIVE = int_range(1)
NON_NEGATIVE = int_range(0)
SEED = int_range(0, 2**63 - 1)


def check_output_file(path, option: str) -> Path:
    """Refuse, before any work, an output file that is a directory or cannot be created."""
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{option} {path} is a directory; give the file to write")
    parent = path.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise CLIError(f"{option} {path}: {folder} is a file, not a folder; give a writable file path")
            if not os.access(folder, os.W_OK):
                raise CLIError(f"{option} {path}: folder {folder} is not writable")
            break
    return path


def check_output_dir(path, option: str) -> Path:
    """Refuse, before any work, an output folder that is a file or cannot be created."""
    path = Path(path)
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == path else f"lies under {folder}, which is a file"
                raise CLIError(f"{option} {path} {what}; give a folder to write")
            if not os.access(folder, os.W_OK):
                raise CLIError(f"{option} {path}: folder {folder} is not writable")
            break
    return path


def add_spec_options(parser: argparse.ArgumentParser, spec_cls) -> None:
    group = parser.add_argument_group(f"{spec_cls.__name__} fields (defaults: the built-in spec)")
    group.add_argument("--spec", metavar="FILE.json", help="load the whole spec from a JSON file "
                       "(the 'spec' of a vector manifest works); field options override it")
    hints = typing.get_type_hints(spec_cls)
    for f in dataclasses.fields(spec_cls):
        hint = hints[f.name]
        default = f.default
        help_text = f"default: {default!r}"
        if hint is bool:
            group.add_argument(_option(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        elif typing.get_origin(hint) is tuple:
            inner = typing.get_args(hint)[0]
            group.add_argument(_option(f.name), dest=f.name, type=inner, nargs="+", default=None,
                               help=help_text)
        else:
            group.add_argument(_option(f.name), dest=f.name, type=hint, default=None, help=help_text)


def spec_from_args(block: Block, args: argparse.Namespace):
    values = {}
    if getattr(args, "spec", None):
        path = Path(args.spec)
        try:
            values = json.loads(path.read_text())
        except OSError as exc:
            raise CLIError(f"cannot read spec file {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise CLIError(f"spec file {path} is not valid JSON ({exc})") from None
        if isinstance(values, dict) and "spec" in values and "block" in values:
            if values["block"] != block.name:
                raise CLIError(f"{path} is a {values['block']!r} manifest, not {block.name!r}")
            values = values["spec"]
    for f in dataclasses.fields(block.spec_cls):
        value = getattr(args, f.name, None)
        if value is not None:
            values[f.name] = tuple(value) if isinstance(value, list) else value
    return block.spec_cls.from_dict(values)


def _add_block_subparsers(parser, help_text: str, configure, extra: dict | None = None):
    extra = extra or {}
    sub = parser.add_subparsers(dest="block", metavar="BLOCK", required=True,
                                help=f"{help_text}: {', '.join([*block_names(), *extra])}")
    for name in [*block_names(), *extra]:
        block = extra[name] if name in extra else get_block(name)
        p = sub.add_parser(name, help=block.summary, description=block.summary)
        add_spec_options(p, block.spec_cls)
        configure(p, block)


def _core_options(parser) -> None:
    # ranges: CoreSpec checks them (one line naming the field)
    parser.add_argument("--lanes", type=int, default=8, help="MAC / LIF lanes P of the core (default 8)")
    parser.add_argument("--wta-lanes", type=int, default=4,
                        help="score lanes of the core's WTA attention unit (default 4)")


def _board_core_options(parser) -> None:
    # --lanes is the LIF array's there: the core's parallelism has options of its own
    parser.add_argument("--core-lanes", type=POSITIVE, default=None, metavar="P",
                        help="with --core: MAC / LIF lanes of the core (default 8; the same for build and run)")
    parser.add_argument("--core-wta-lanes", type=POSITIVE, default=None, metavar="PW",
                        help="with --core: score lanes of the core's WTA attention unit (default 4)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="spikeforge",
        description="Spiking transformers from golden PyTorch models to bit-exact, Verilator-proven hardware.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("blocks", help="list the hardware blocks")

    p = sub.add_parser("verilog", help="write a block's Verilog")
    _add_block_subparsers(p, "block", lambda bp, block: (
        bp.add_argument("-o", "--output", required=True, metavar="FILE", help="Verilog file to write"),
        bp.add_argument("--name", help=f"module name (default: {block.toplevel})")))

    def vectors_options(bp, block):
        bp.add_argument("-o", "--output", required=True, metavar="DIR", help="vector directory to write")
        bp.add_argument("--seed", type=SEED, default=0, help="stimulus seed (default 0)")
        for opt, info in block.vector_options.items():
            kind = int_range(info.low, info.high) if info.type is int else float_range(info.low, info.high)
            bp.add_argument(_option(opt), dest=f"vec_{opt}", type=kind, default=info.default,
                            help=f"{info.help} (default {info.default})")

    p = sub.add_parser("vectors", help="write golden reference vectors (.npz + manifest.json)")
    from .golden_sets import GOLDEN_SETS

    _add_block_subparsers(p, "block (or golden-only set)", vectors_options, GOLDEN_SETS)

    p = sub.add_parser("check", help="co-simulate a block under Verilator against a vector directory, or N "
                       "generated vectors (--count, bulk path)")
    p.add_argument("block", metavar="BLOCK", choices=block_names(),
                   help=f"one of: {', '.join(block_names())}")
    p.add_argument("--vectors", metavar="DIR", help="vector directory (from 'vectors'); per-cycle bench "
                   "(the bulk path with --waves)")
    p.add_argument("--count", type=POSITIVE, metavar="N", help="generate N input beats of seeded random plus "
                   "adversarial vectors for the block's default spec (or --spec) and check them through the bulk "
                   "path; give --count or --vectors")
    p.add_argument("--spec", metavar="FILE.json", help="with --count: the spec to check (a vector manifest "
                   "works); default: the block's built-in spec")
    p.add_argument("--vector-seed", type=SEED, default=0, help="with --count: seed of the generated vectors "
                   "(default 0)")
    p.add_argument("--waves", metavar="FILE", help="write a wave file of the run (FILE.vcd; FST otherwise, which "
                   "needs the lz4 headers): a window around the first mismatch, or the first --waves-window "
                   "cycles of a passing run")
    p.add_argument("--waves-window", type=NON_NEGATIVE, default=1000, metavar="C",
                   help="cycles each side of the first mismatch in --waves (default 1000; 0: the whole run)")
    p.add_argument("--seed", type=SEED, default=1, help="seed of the random valid/ready gaps")
    p.add_argument("--valid-prob", type=PROBABILITY, default=0.75, help="input valid probability per cycle, "
                   "(0, 1] (default 0.75)")
    p.add_argument("--ready-prob", type=PROBABILITY, default=0.75, help="output ready probability per cycle, "
                   "(0, 1] (default 0.75)")

    from .prove import add_parser as add_prove_parser

    add_prove_parser(sub, block_names, int_range)      # spikeforge prove (spikeforge/prove.py)

    from .training import recipe_names

    p = sub.add_parser("train", help="train a model (seeded, progress bar, checkpoint, held-out metrics)")
    from .training import VARIANTS

    families = [f"{name} (--variant {' | '.join(v)})" for name, v in VARIANTS.items()]
    p.add_argument("model", metavar="MODEL", choices=recipe_names() + list(VARIANTS),
                   help=f"one of: {', '.join(recipe_names() + families)}")
    p.add_argument("--variant", metavar="VARIANT",
                   help="with a model family: " + "; ".join(
                       f"{name}: {', '.join(f'{v} = {r}' for v, r in vs.items())} (default "
                       f"{next(iter(vs))})" for name, vs in VARIANTS.items()))
    p.add_argument("--epochs", type=POSITIVE)
    p.add_argument("--lr", type=float_range(0.0, lo_open=True))
    p.add_argument("--batch-size", type=POSITIVE)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", metavar="FILE", help="checkpoint file (default: checkpoints/MODEL.pt)")
    p.add_argument("--max-minutes", type=float_range(0.0, lo_open=True), help="stop after this much training "
                   "time (minutes, > 0)")
    p.add_argument("--set", nargs="+", metavar="KEY=VALUE", default=[],
                   help="override a recipe setting (model size, T, seq_len, ...)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    from .recommend import HARDWARE, PRIORITIES, TASKS

    p = sub.add_parser("recommend", help="which architecture for a task, hardware and priority (with reasons)")
    p.add_argument("--task", required=True, help=f"one of: {', '.join(TASKS)}")
    p.add_argument("--hardware", required=True, help=f"one of: {', '.join(HARDWARE)}")
    p.add_argument("--priority", required=True, help=f"one of: {', '.join(PRIORITIES)}")

    p = sub.add_parser("energy", help="per-layer SOPs, MACs, spikes, firing rates and energy of a digits model")
    p.add_argument("model", metavar="MODEL", help="a digits recipe (untrained unless --checkpoint)")
    p.add_argument("--checkpoint", metavar="FILE", help="a checkpoint from 'spikeforge train'")
    p.add_argument("--samples", type=int, default=100, help="held-out digits to run (default 100, >= 1)")
    p.add_argument("--integer", action="store_true", help="count the integer model (to_integer) instead")
    p.add_argument("--e-ac", type=float_range(0.0), default=0.9, help="pJ per accumulate (default 0.9, 45 nm)")
    p.add_argument("--e-mac", type=float_range(0.0), default=4.6,
                   help="pJ per multiply-accumulate (default 4.6, 45 nm)")
    p.add_argument("--set", nargs="+", metavar="KEY=VALUE", default=[], help="model settings (no checkpoint)")

    p = sub.add_parser("compare", help="train or load equal-size digits models; table of accuracy, SOPs, "
                                       "MACs and energy vs a non-spiking transformer (CSV, markdown, SVG)")
    p.add_argument("--models", nargs="+", metavar="MODEL", help="digits models (default: every one)")
    p.add_argument("--epochs", type=POSITIVE, help="epochs per model (default: each recipe's)")
    p.add_argument("--embed-dim", type=POSITIVE, default=32)
    p.add_argument("--depth", type=POSITIVE, default=1)
    p.add_argument("--heads", type=POSITIVE, default=2)
    p.add_argument("--time-steps", type=POSITIVE, default=4)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out-dir", default="docs/results", help="where compare.csv/.md/.svg go")
    p.add_argument("--checkpoint-dir", default="checkpoints/compare")
    p.add_argument("--retrain", action="store_true", help="train even if a matching checkpoint exists")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("demo", help="generate vectors, build under Verilator, co-simulate, report")
    p.add_argument("--blocks", nargs="+", metavar="BLOCK", choices=block_names(), default=None,
                   help=f"blocks to run (default: all: {', '.join(block_names())})")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--workdir", metavar="DIR", help="keep vectors and logs here (default: a temporary folder)")
    p.add_argument("--core", default="spiking-mlp", metavar="MODEL",
                   help="shipped model to run on the core at the end (spiking-mlp, wta-causal, wta-mlm, matterhorn; "
                        "default spiking-mlp)")
    p.add_argument("--no-core", action="store_true", help="skip the core run")
    p.add_argument("--core-samples", type=POSITIVE, default=64,
                   help="held-out samples for the core run (default 64)")

    from synth.flow import TARGETS

    p = sub.add_parser("synth", help="synthesise a block (Yosys, nextpnr): LUTs, FFs, BRAM, DSP, Fmax",
                       description="Synthesise one block (spikeforge synth BLOCK --target T [--pnr]) or sweep "
                                   "every registered block (spikeforge synth --all).")
    p.add_argument("--all", action="store_true", help="sweep every block at its default and larger "
                   "configurations on every target; write a Markdown table and a CSV")
    p.add_argument("--results", default="docs/results", metavar="DIR",
                   help="with --all: folder for synthesis.md and synthesis.csv (default docs/results)")
    p.add_argument("--targets", nargs="+", choices=list(TARGETS), default=None, metavar="TARGET",
                   help=f"with --all: targets to sweep (default: all: {', '.join(TARGETS)})")
    p.add_argument("--cached-only", action="store_true",
                   help="with --all: run no tool; tabulate only the configurations already in the cache")
    from synth.run import CORE_SWEEP

    p.add_argument("--sweep-blocks", nargs="+", choices=block_names(), default=None, metavar="BLOCK",
                   help="with --all: only these blocks (default: every registered block; with --sweep-cores "
                        "alone: none)")
    p.add_argument("--sweep-cores", nargs="+", choices=list(CORE_SWEEP), default=None, metavar="MODEL",
                   help=f"with --all: only the cores of these models ({', '.join(CORE_SWEEP)}; default: all of "
                        f"them; with --sweep-blocks alone: none)")
    p.add_argument("--update", action="store_true",
                   help="with --all: replace only the rows this sweep produces in the existing synthesis.csv / "
                        ".md and keep every other row as it is")
    sub_synth = p.add_subparsers(dest="block", metavar="BLOCK", required=False,
                                 help=f"block: {', '.join(block_names())}, or core (a trained model's core)")
    for name in block_names():
        block = get_block(name)
        bp = sub_synth.add_parser(name, help=block.summary, description=block.summary)
        add_spec_options(bp, block.spec_cls)
        bp.add_argument("--target", required=True, choices=list(TARGETS),
                        help="ecp5 (LFE5U-85F speed 6), ice40 (UP5K) or xilinx7 (xc7a100t, synthesis only)")
        bp.add_argument("--pnr", action="store_true", help="also place and route (ECP5, iCE40): Fmax, utilisation")
        bp.add_argument("-o", "--output", metavar="FILE.json", help="report file (default build/synth/"
                        "BLOCK-TARGET.json)")
        bp.add_argument("--no-cache", action="store_true", help="run the tools even if a cached report exists")
        bp.add_argument("--keep", metavar="DIR", help="keep the tool logs, netlists and reports here")
    text = "synthesise the neuromorphic core of a trained model (spikeforge core build's Verilog)"
    bp = sub_synth.add_parser("core", help=text, description=text + "; MODEL is a checkpoint of spikeforge train "
                              "or a shipped model: spiking-mlp, wta-causal, wta-mlm, matterhorn (sim/data/core).")
    bp.add_argument("--model", required=True, metavar="MODEL", help="checkpoint file or shipped model name")
    _core_options(bp)
    bp.add_argument("--no-taps", action="store_true", help="only the logits leave the core (no debug taps: the "
                    "deployed core, as in the synthesis table)")
    bp.add_argument("--target", required=True, choices=list(TARGETS),
                    help="ecp5 (LFE5U-85F speed 6), ice40 (UP5K) or xilinx7 (xc7a100t, synthesis only)")
    bp.add_argument("--pnr", action="store_true", help="also place and route (ECP5, iCE40): Fmax, utilisation")
    bp.add_argument("-o", "--output", metavar="FILE.json", help="report file (default build/synth/"
                    "core-MODEL-TARGET.json)")
    bp.add_argument("--no-cache", action="store_true", help="run the tools even if a cached report exists")
    bp.add_argument("--keep", metavar="DIR", help="keep the tool logs, netlists and reports here")

    from synth.boards import BOARDS

    p = sub.add_parser("board", help="board builds: a block behind a UART (bitstream, host driver)")
    bsub = p.add_subparsers(dest="board_command", metavar="ACTION", required=True)
    bp = bsub.add_parser("build", help="build a bitstream of the UART board top (LIF array, or a model's core)")
    bp.add_argument("--board", required=True, choices=list(BOARDS), help="board")
    bp.add_argument("-o", "--output", required=True, metavar="DIR", help="build folder")
    bp.add_argument("--core", metavar="MODEL", help="put this trained model's core behind the UART instead of the "
                    "LIF array (checkpoint or shipped model: spiking-mlp, wta-causal, wta-mlm, matterhorn; no debug taps); a "
                    "core that does not fit the board's FPGA is refused with the numbers)")
    _board_core_options(bp)
    add_spec_options(bp, get_block("lif").spec_cls)
    bp.add_argument("--baud", type=POSITIVE, default=115200, help="UART bits per second (default 115200)")
    bp = bsub.add_parser("run", help="stream a LIF vector directory, or a core's held-out samples, through a "
                                     "board and check it")
    bp.add_argument("--port", required=True, metavar="TTY", help="serial port of the board, e.g. /dev/ttyUSB0")
    what = bp.add_mutually_exclusive_group(required=True)
    what.add_argument("--vectors", metavar="DIR", help="LIF vector directory (spikeforge vectors lif)")
    what.add_argument("--core", metavar="MODEL", help="the model whose core the board runs (board build --core)")
    _board_core_options(bp)
    bp.add_argument("--samples", type=POSITIVE, default=8, help="with --core: held-out samples to send (default 8)")
    bp.add_argument("--offset", type=NON_NEGATIVE, default=0, help="with --core: first held-out sample (default 0)")
    bp.add_argument("--baud", type=POSITIVE, default=115200, help="UART bits per second (default 115200; the "
                    "rates termios knows)")
    bp.add_argument("--timeout", type=float_range(0.0, lo_open=True), default=5.0,
                    help="seconds to wait for each reply (> 0)")
    p = sub.add_parser("core", help="a trained model on the neuromorphic core (build, co-simulate)",
                       description="CKPT is a checkpoint of spikeforge train or a shipped model: "
                                   "spiking-mlp, wta-causal, wta-mlm, matterhorn (sim/data/core).")
    csub = p.add_subparsers(dest="core_command", metavar="ACTION", required=True)
    for action, text in (("build", "write the core's Verilog, memory images and a mapping report"),
                         ("run", "co-simulate held-out samples under Verilator: every layer ==, logits ==, cycles")):
        cp = csub.add_parser(action, help=text, description=text)
        cp.add_argument("checkpoint", metavar="CKPT", help="checkpoint file or shipped model name")
        _core_options(cp)
        if action == "build":
            cp.add_argument("-o", "--output", required=True, metavar="DIR", help="build folder")
            cp.add_argument("--no-taps", action="store_true", help="only the logits leave the core (no debug taps)")
        else:
            cp.add_argument("--samples", type=int, default=64, help="held-out samples (default 64; run_core checks)")
            cp.add_argument("--offset", type=NON_NEGATIVE, default=0, help="first held-out sample (default 0)")
            cp.add_argument("--seed", type=SEED, default=1, help="seed of the random stream gaps")
            cp.add_argument("--valid-prob", type=float, default=0.75,
                            help="input valid probability per cycle, (0, 1] (run_core checks)")
            cp.add_argument("--ready-prob", type=float, default=0.75,
                            help="output ready probability per cycle, (0, 1] (run_core checks)")
            cp.add_argument("--workdir", metavar="DIR", help="keep the stimulus and simulator logs here")
    cp = csub.add_parser("report", help="every shipped model on the core: accuracy, cycles, cost -> core.md",
                         description="Run every shipped model on the core under Verilator (no debug taps) and "
                                     "write the results table (accuracy float / integer / hardware, cycles, "
                                     "latency, synthesis of these very cores from the synthesis cache).")
    cp.add_argument("--samples", type=POSITIVE, default=64, help="held-out samples per model (default 64)")
    cp.add_argument("-o", "--output", default="docs/results/core.md", metavar="FILE.md")
    cp.add_argument("--reuse-cosim", action="store_true",
                    help="take the co-simulation results from the .json beside the output (written by the last "
                         "report), co-simulate again only the models whose core's Verilog changed since, and "
                         "refresh the synthesis columns")
    _nir_parser(sub)
    _estimate_parser(sub)
    from .sweep_cli import add_sweep_parser
    add_sweep_parser(sub)
    return parser


def cmd_core(args) -> int:
    from .core import build_core, load_core_model, run_core

    if args.core_command == "report":
        from .core import cosim_rows, refresh_cosim_rows, results_table

        out = check_output_file(args.output, "-o")
        sidecar = out.with_suffix(".json")
        if args.reuse_cosim:
            try:
                cosim = json.loads(sidecar.read_text())
            except (OSError, ValueError) as exc:
                raise CLIError(f"--reuse-cosim: cannot read {sidecar} ({exc}); "
                               f"run spikeforge core report without --reuse-cosim first")
            try:
                cosim = refresh_cosim_rows(cosim)
            except ValueError as exc:
                raise CLIError(f"--reuse-cosim: {sidecar}: {exc}")
        else:
            cosim = cosim_rows(args.samples)
        text = results_table(cosim=cosim)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        sidecar.write_text(json.dumps(cosim, indent=2) + "\n")
        print(text)
        print(f"wrote {out} and {sidecar}")
        return 0
    cm = load_core_model(args.checkpoint, lanes=args.lanes, wta_lanes=args.wta_lanes,
                         debug_taps=not getattr(args, "no_taps", False))
    if args.core_command == "build":
        for path in build_core(cm, check_output_dir(args.output, "-o")):
            print(f"wrote {path}")
        return 0
    report = run_core(cm, args.samples, seed=args.seed, valid_prob=args.valid_prob, ready_prob=args.ready_prob,
                      workdir=Path(args.workdir) if args.workdir else None, offset=args.offset)
    print(report.text())
    ok = report.mismatches == 0 and report.cycles_match and report.hardware_accuracy == report.integer_accuracy
    return 0 if ok else 1


def cmd_synth(args) -> int:
    from synth.run import CORE_SWEEP, merge_rows, read_csv, sweep, synth_block, tools_in_markdown, write_csv, \
        write_markdown

    if args.all:
        if args.block:
            raise CLIError("give either --all or one BLOCK, not both")
        selected = args.sweep_blocks is not None or args.sweep_cores is not None
        names = args.sweep_blocks or ([] if selected else block_names())
        cores = tuple(args.sweep_cores or (() if selected else CORE_SWEEP))
        targets = args.targets or ["ecp5", "ice40", "xilinx7"]
        out = check_output_dir(args.results, "--results")
        out.mkdir(parents=True, exist_ok=True)
        previous = read_csv(out / "synthesis.csv") if args.update else []
        tools = tools_in_markdown(out / "synthesis.md") if args.update else set()

        def write(rows):  # after every run, so an interrupted sweep leaves its results so far
            table = merge_rows(previous, rows) if args.update else rows
            write_csv(table, out / "synthesis.csv")
            write_markdown(table, out / "synthesis.md", "synthesis.csv", tools=tools)
        rows = sweep(names, targets, on_row=write, cached_only=args.cached_only, cores=cores)
        if args.update and not rows:
            write([])
        print(f"wrote {out / 'synthesis.md'} and {out / 'synthesis.csv'} ({len(rows)} runs"
              + (f", {len(merge_rows(previous, rows)) - len(rows)} rows kept from the previous table)"
                 if args.update else ")"))
        return 0
    if args.update or args.sweep_cores:
        raise CLIError("--update and --sweep-cores go with --all")
    if not args.block:
        raise CLIError("name a BLOCK (spikeforge synth BLOCK --target T), core (spikeforge synth core --model M "
                       "--target T) or give --all")
    if args.output:
        check_output_file(args.output, "-o")
    if args.keep:
        check_output_dir(args.keep, "--keep")
    if args.block == "core":
        return _synth_core(args)
    block = get_block(args.block)
    spec = spec_from_args(block, args)
    report = synth_block(block, spec, args.target, pnr=args.pnr, use_cache=not args.no_cache,
                         keep_dir=Path(args.keep) if args.keep else None)
    return _print_report(report, block.name, Path(args.output or f"build/synth/{block.name}-{args.target}.json"))


def _print_report(report, name: str, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_json())
    print(report.table())
    print(f"wrote {out}")
    if not report.fits:
        print(f"spikeforge: {name} {report.message}", file=sys.stderr)
        return 1
    return 0 if report.status == "ok" else 1


def _synth_core(args) -> int:
    from synth.core import CoreConfig, load, synth_core

    config = CoreConfig(args.model, lanes=args.lanes, wta_lanes=args.wta_lanes, debug_taps=not args.no_taps)
    cm = load(config)
    report = synth_core(cm, args.target, pnr=args.pnr, use_cache=not args.no_cache,
                        keep_dir=Path(args.keep) if args.keep else None)
    print(f"core of {config.label}")
    stem = Path(args.model).stem if cm.name != args.model else args.model
    return _print_report(report, f"core of {cm.name}",
                         Path(args.output or f"build/synth/core-{stem}-{args.target}.json"))


def check_serial_port(port: str, baud: int) -> None:
    """Refuse a baud rate termios does not know and a port that is no serial device, before any I/O."""
    import termios

    rates = sorted(int(n[1:]) for n in dir(termios) if n[:1] == "B" and n[1:].isdigit() and int(n[1:]) > 0)
    if baud not in rates:
        raise CLIError(f"--baud {baud} is not a rate the serial port supports; allowed: "
                       f"{', '.join(str(r) for r in rates if r >= 1200)}")
    path = Path(port)
    if not path.exists():
        raise CLIError(f"--port {port}: no such device; give the board's serial port, e.g. /dev/ttyUSB0")
    if path.is_dir():
        raise CLIError(f"--port {port} is a directory; give the board's serial port, e.g. /dev/ttyUSB0")
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise CLIError(f"--port {port}: cannot open it ({exc.strerror})") from None
    try:
        tty = os.isatty(fd)
    finally:
        os.close(fd)
    if not tty:
        raise CLIError(f"--port {port} is not a serial port (not a terminal device); give the board's UART, "
                       f"e.g. /dev/ttyUSB0")


def _board_core(args):
    """The CoreModel behind the board's UART (``--core``), without debug taps."""
    from .core import load_core_model

    return load_core_model(args.core, lanes=args.core_lanes or 8, wta_lanes=args.core_wta_lanes or 4,
                           debug_taps=False)


def cmd_board(args) -> int:
    from synth.boards import board_build, board_run, board_run_core

    if not args.core and (args.core_lanes is not None or args.core_wta_lanes is not None):
        raise CLIError("--core-lanes and --core-wta-lanes go with --core MODEL")

    if args.board_command == "build":
        check_output_dir(args.output, "-o")
        if args.core:
            given = [f.name for f in dataclasses.fields(get_block("lif").spec_cls) if getattr(args, f.name) is not None]
            if given or args.spec:
                raise CLIError(f"--core puts a model's core behind the UART; the LIF options "
                               f"({', '.join(_option(n) for n in given) or '--spec'}) do not apply to it")
            result = board_build(args.board, Path(args.output), baud=args.baud, core=_board_core(args), progress=print)
        else:
            spec = spec_from_args(get_block("lif"), args)
            result = board_build(args.board, Path(args.output), spec=spec, baud=args.baud)
        print(result)
        return 0
    check_serial_port(args.port, args.baud)
    if args.core:
        check = board_run_core(args.port, _board_core(args), args.samples, args.offset, baud=args.baud,
                               timeout=args.timeout)
        print(check)
        return 0 if check.ok else 1
    report = board_run(args.port, Path(args.vectors), baud=args.baud, timeout=args.timeout)
    print(report)
    return 0 if report.mismatches == 0 else 1


def cmd_blocks(args) -> int:
    for name in block_names():
        block = get_block(name)
        print(f"{name:10s} {block.summary}")
    return 0


def cmd_verilog(args) -> int:
    from rtl.emit import to_verilog

    block = get_block(args.block)
    out = check_output_file(args.output, "-o")
    spec = spec_from_args(block, args)
    text = to_verilog(block.component(spec), args.name or block.toplevel)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} ({block.name}, module {args.name or block.toplevel}, {len(text.splitlines())} lines)")
    return 0


def cmd_vectors(args) -> int:
    from golden.vectors import save_vectors

    from .blocks import MAX_VECTOR_ELEMENTS
    from .golden_sets import GOLDEN_SETS

    block = GOLDEN_SETS[args.block] if args.block in GOLDEN_SETS else get_block(args.block)
    check_output_dir(args.output, "-o")
    spec = spec_from_args(block, args)
    options = {opt: getattr(args, f"vec_{opt}") for opt in block.vector_options}
    if block.vector_size is not None and block.vector_size(spec, **options) > MAX_VECTOR_ELEMENTS:
        given = " ".join(f"{_option(k)} {v}" for k, v in options.items())
        raise CLIError(f"vectors {block.name}: {given} would make an array of {block.vector_size(spec, **options):,} "
                       f"values; the limit is {MAX_VECTOR_ELEMENTS:,} per array (write several smaller sets)")
    arrays = block.make_vectors(spec, args.seed, **options)
    directory = save_vectors(args.output, block.name, spec.to_dict(), args.seed, arrays, meta=options)
    shapes = ", ".join(f"{k}{list(v.shape)}" for k, v in arrays.items())
    print(f"wrote {directory} ({block.name}: {shapes})")
    return 0


#: the most vectors one ``check --count`` run generates (its memories and golden arrays: ~1 GB)
MAX_CHECK_COUNT = 1 << 22


def cmd_check(args) -> int:
    from .demo import check_count, check_vectors

    if (args.count is None) == (args.vectors is None):
        raise CLIError("give either --vectors DIR (a vector directory) or --count N (N >= 1 generated vectors)"
                       + (", not both" if args.count is not None else ""))
    if args.count is not None and args.count > MAX_CHECK_COUNT:
        raise CLIError(f"--count {args.count:,} is over the limit of {MAX_CHECK_COUNT:,} vectors per run (the "
                       f"bulk wrapper's memories hold them all); run several --vector-seed values instead")
    if args.vectors is not None and args.spec:
        raise CLIError("--spec goes with --count; with --vectors the spec comes from the vector directory")
    if args.waves:
        check_output_file(args.waves, "--waves")
    window = args.waves_window or None
    block = get_block(args.block)
    if args.count is not None:
        spec = spec_from_args(block, args) if args.spec else block.default_spec()
        report = check_count(block, args.count, spec=spec, vector_seed=args.vector_seed, seed=args.seed,
                             valid_prob=args.valid_prob, ready_prob=args.ready_prob, waves=args.waves,
                             waves_window=window)
    else:
        report = check_vectors(block, Path(args.vectors), seed=args.seed, valid_prob=args.valid_prob,
                               ready_prob=args.ready_prob, waves=args.waves, waves_window=window)
    print(report.text())
    return 0 if report.mismatches == 0 else 1


def cmd_demo(args) -> int:
    from .demo import run_demo

    from .core import SHIPPED

    if not args.no_core and args.core not in SHIPPED:
        raise CLIError(f"--core {args.core!r} is not a shipped model; choose one of {', '.join(SHIPPED)}")
    if args.workdir:
        check_output_dir(args.workdir, "--workdir")
    return run_demo(args.blocks or block_names(), seed=args.seed, workdir=args.workdir,
                    core=None if args.no_core else args.core, core_samples=args.core_samples)


def cmd_train(args) -> int:
    from .training import parse_settings, resolve_recipe, train

    name = resolve_recipe(args.model, args.variant)
    out = check_output_file(args.out or f"checkpoints/{name}.pt", "--out")
    report = train(name, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                   out=out, max_minutes=args.max_minutes, progress=not args.no_progress,
                   overrides=parse_settings(args.set))
    print(report.text())
    return 0


def cmd_recommend(args) -> int:
    from .recommend import select_architecture

    print(select_architecture(args.task, args.hardware, args.priority).text())
    return 0


def cmd_energy(args) -> int:
    import torch

    from golden import data
    from golden.energy import Meter
    from golden.models.common import to_int_pixels

    from .training import get_recipe, load_checkpoint, parse_settings

    if args.samples < 1:
        raise CLIError(f"--samples must be >= 1, got {args.samples}")
    if args.checkpoint:
        model, ckpt = load_checkpoint(args.checkpoint)
        name = ckpt["recipe"]
    else:
        recipe = get_recipe(args.model)
        if recipe.task != "digits":
            raise CLIError(f"energy: {args.model!r} is a {recipe.task} model; digits models only")
        _, config = recipe.split_config(parse_settings(args.set))
        torch.manual_seed(0)
        model, name = recipe.build(None, **config), args.model
    x = data.digits_split(seed=0).x_test[:args.samples]
    model.eval()
    with Meter() as meter, torch.no_grad():
        if args.integer:
            if not hasattr(model, "to_integer"):
                raise CLIError(f"{name} has no integer mode")
            model.to_integer().forward(to_int_pixels(x))
        else:
            model(x)
    meter.samples = meter.samples or len(x)
    print(meter.table())
    r = meter.report(args.e_ac, args.e_mac)
    print(f"[{name}{' integer' if args.integer else ''}] per sample: SOPs {r['sops']:,.0f}, MACs {r['macs']:,.0f}, "
          f"spikes {r['spikes']:,.0f}, firing rate {r['firing_rate']:.3f}, energy {r['energy_pj'] / 1000:.2f} nJ "
          f"(E_AC {args.e_ac} pJ, E_MAC {args.e_mac} pJ)")
    return 0


def cmd_compare(args) -> int:
    from .compare import compare, markdown

    check_output_dir(args.out_dir, "--out-dir")
    check_output_dir(args.checkpoint_dir, "--checkpoint-dir")
    size = {"embed_dim": args.embed_dim, "depth": args.depth, "heads": args.heads, "time_steps": args.time_steps}
    rows = compare(args.models, size=size, epochs=args.epochs, seed=args.seed, out_dir=args.out_dir,
                   checkpoint_dir=args.checkpoint_dir, retrain=args.retrain, progress=not args.no_progress)
    print(markdown(rows))
    print(f"wrote {args.out_dir}/compare.csv, compare.md, compare.svg")
    return 0



def _nir_parser(sub) -> None:
    p = sub.add_parser("nir", help="NIR graphs in and out: import a snnTorch / Norse / Sinabs model, export a "
                                   "spiking MLP", description="NIR (Neuromorphic Intermediate Representation) "
                                   "graphs <-> the golden spiking MLP; the mapping: docs/numeric-contract.md")
    nsub = p.add_subparsers(dest="nir_command", metavar="ACTION", required=True)
    dt = float_range(0.0, lo_open=True)
    ip = nsub.add_parser("import", help="a NIR graph -> a spiking-MLP checkpoint (energy, estimate, core take it)",
                         description="Input -> Affine -> LIF|IF|CubaLIF -> Affine -> LIF|IF|CubaLIF -> Affine -> "
                                     "Output on the 8x8 digits; any other node or shape is refused")
    ip.add_argument("graph", metavar="GRAPH.nir", help="NIR file (HDF5, nir.write)")
    ip.add_argument("-o", "--output", required=True, metavar="CKPT", help="checkpoint file to write")
    ip.add_argument("--dt", type=dt, help="time step of the Euler discretisation, > 0 (default: the graph's "
                    "metadata, else 1e-4, snnTorch's)")
    ip.add_argument("--time-steps", type=POSITIVE, help="time steps T (default: the graph's metadata, else 4)")
    ep = nsub.add_parser("export", help="a spiking-MLP checkpoint (zero reset) -> a NIR graph",
                         description="CKPT: a checkpoint of spikeforge train / nir import, or a shipped model")
    ep.add_argument("checkpoint", metavar="CKPT", help="checkpoint file or shipped model name")
    ep.add_argument("-o", "--output", required=True, metavar="GRAPH.nir", help="NIR file to write")
    ep.add_argument("--dt", type=dt, help="time step, > 0 (default: the checkpoint's, else 1e-4)")


def cmd_nir(args) -> int:
    from .nir_io import export_nir, import_nir

    out = check_output_file(args.output, "-o")
    if args.nir_command == "import":
        print(import_nir(args.graph, out, dt=args.dt, time_steps=args.time_steps).text())
    else:
        print(export_nir(args.checkpoint, out, dt=args.dt))
    return 0


def _estimate_parser(sub) -> None:
    from estimate.energy import TECHNOLOGIES

    text = "cycles, latency, throughput, event counts and energy of a model on the core (no RTL is run)"
    p = sub.add_parser("estimate", help=text, description=text + "; MODEL is a shipped model (spiking-mlp, "
                       "wta-causal, wta-mlm, matterhorn) or the recipe of the checkpoint given by --checkpoint")
    p.add_argument("model", metavar="MODEL", help="shipped model name, or the recipe of --checkpoint")
    p.add_argument("--checkpoint", metavar="CKPT", help="checkpoint file (default: the shipped model MODEL)")
    _core_options(p)
    # ranges: estimate_model checks --samples and --fmax before any work
    p.add_argument("--samples", type=int, default=64, help="held-out samples to average over (default 64)")
    p.add_argument("--fmax", type=float, metavar="MHz",
                   help="clock for latency and throughput (default: the core's synthesized ECP5 Fmax from "
                        "docs/results/synthesis.csv, else 100 MHz; the report says which)")
    p.add_argument("--tech", default="45nm", metavar="TECH",
                   help=f"energy table: {', '.join(TECHNOLOGIES)} (default 45nm)")
    p.add_argument("-o", "--output", metavar="FILE", help="also write the estimate as FILE.csv or FILE.json")


def cmd_estimate(args) -> int:
    from .estimate_model import estimate_model

    if args.output and Path(args.output).suffix not in (".csv", ".json"):
        raise CLIError(f"-o {args.output}: give a .csv or .json file")
    if args.output:
        check_output_file(args.output, "-o")
    est = estimate_model(args.model, checkpoint=args.checkpoint, lanes=args.lanes, wta_lanes=args.wta_lanes,
                         samples=args.samples, fmax_mhz=args.fmax, tech=args.tech)
    print(est.table())
    if args.output:
        print(f"wrote {est.write(Path(args.output))}")
    return 0

def cmd_sweep(args) -> int:
    from .sweep_cli import cmd_sweep as run

    return run(args)


COMMANDS = {"blocks": cmd_blocks, "verilog": cmd_verilog, "vectors": cmd_vectors, "check": cmd_check,
            "train": cmd_train, "demo": cmd_demo, "synth": cmd_synth, "board": cmd_board,
            "recommend": cmd_recommend, "energy": cmd_energy, "compare": cmd_compare,
            "core": cmd_core, "estimate": cmd_estimate, "sweep": cmd_sweep, "nir": cmd_nir,
            "prove": cmd_prove}


def main(argv: list[str] | None = None) -> int:
    from sim.harness import CosimError
    from synth.tools import ToolError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CLIError, SpecError, VectorFileError, CosimError, ToolError, KeyError, ValueError, OSError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"spikeforge: error: {_one_line(message)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("spikeforge: error: out of memory; give smaller sizes", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not a user error: still one line, the traceback on request
        if os.environ.get("SPIKEFORGE_TRACEBACK"):
            raise
        print(f"spikeforge: error: internal error ({type(exc).__name__}: {_one_line(exc)}); rerun with "
              f"SPIKEFORGE_TRACEBACK=1 for the traceback", file=sys.stderr)
        return 1


def _one_line(message) -> str:
    """A message as one line: multi-line texts (torch's, OS errors) joined with '; '."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(message).__name__


if __name__ == "__main__":
    sys.exit(main())
