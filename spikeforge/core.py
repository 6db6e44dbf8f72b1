"""``spikeforge core build|run``: a trained model on the neuromorphic core.

* ``load_core_model(CKPT or shipped name)``: checkpoint -> integer model -> ``CoreProgram`` and the
  smallest ``CoreSpec`` that holds it (``--lanes``, ``--wta-lanes`` choose the parallelism).
* ``held_out_samples``: the model's held-out data as the core takes it -- digits (pixels 0..16)
  with labels, or text windows with their targets (next characters; masked positions for the
  masked language model, with the evaluation's fixed masks).
* ``build_core``: Verilog + memory images + a report of units, lanes, memories and the layer mapping.
* ``run_core``: Verilator co-simulation of held-out samples: every tap ``==`` the integer model,
  logits ``==``, hardware accuracy, cycles per sample (core's counter vs the formula).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from golden import data
from golden.core import CoreProgram, CoreSpec, check_against_model, compile_model, run_program, spec_for_program
from golden.core.cycles import predict_cycles, useful_ops
from golden.core.program import AttentionOp, LinearOp, SDSAOp
from golden.spec import SpecError

#: trained checkpoints that ship with the project (``sim/data/core``), by recipe name
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "sim" / "data" / "core"
SHIPPED = ("spiking-mlp", "wta-causal", "wta-mlm", "matterhorn")
#: the evaluation's mask seed (``spikeforge.training.evaluate``)
MASK_SEED = 1234


@dataclass
class CoreModel:
    name: str                 # recipe
    checkpoint: Path
    ckpt: dict
    int_model: object
    program: CoreProgram
    spec: CoreSpec


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_shipped_manifest(directory: Path = SHIPPED_DIR) -> Path:
    """(Re)write ``manifest.json`` of the shipped checkpoints: sha256, recipe, settings, metrics."""
    import torch as _torch

    entries = {}
    for name in SHIPPED:
        path = Path(directory) / f"{name}.pt"
        ckpt = _torch.load(path, map_location="cpu", weights_only=True)
        entries[name] = {"file": path.name, "sha256": _sha256(path), "recipe": ckpt["recipe"],
                         "config": ckpt["config"], "train": ckpt["train"], "seed": ckpt["seed"],
                         "metrics": ckpt["metrics"],
                         "made_by": f"spikeforge train {ckpt['recipe']} --seed {ckpt['seed']} --out {path.name}"}
    out = Path(directory) / "manifest.json"
    out.write_text(json.dumps({"format": 1, "checkpoints": entries}, indent=2) + "\n")
    return out


def resolve_checkpoint(name_or_path: str) -> Path:
    """A shipped model name (``spiking-mlp``, ``wta-causal``, ``wta-mlm``; its sha256 is checked
    against ``sim/data/core/manifest.json``) or a checkpoint path."""
    if name_or_path in SHIPPED:
        path = SHIPPED_DIR / f"{name_or_path}.pt"
        manifest = SHIPPED_DIR / "manifest.json"
        try:
            entry = json.loads(manifest.read_text())["checkpoints"][name_or_path]
        except (OSError, ValueError, KeyError):
            raise ValueError(f"{manifest} is missing or does not list {name_or_path}") from None
        if not path.is_file() or _sha256(path) != entry["sha256"]:
            raise ValueError(f"shipped checkpoint {path} is missing or corrupt (sha256 differs from {manifest})")
        return path
    path = Path(name_or_path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a checkpoint file (spikeforge train ... --out FILE) or one "
                         f"of the shipped models: {', '.join(SHIPPED)}")
    if not path.exists():
        raise ValueError(f"checkpoint {path} does not exist; give a checkpoint file or one of the shipped models: "
                         f"{', '.join(SHIPPED)}")
    return path


def load_core_model(name_or_path: str, *, lanes: int = 8, wta_lanes: int = 4, debug_taps: bool = True,
                    seq_len: int | None = None) -> CoreModel:
    from .training import load_checkpoint

    path = resolve_checkpoint(name_or_path)
    model, ckpt = load_checkpoint(path)
    if not hasattr(model, "to_integer"):
        raise SpecError(f"checkpoint {path}: model {type(model).__name__} has no integer mode")
    int_model = model.to_integer()
    if seq_len is None:
        seq_len = ckpt.get("train", {}).get("seq_len")
    program = compile_model(int_model, lanes=lanes, seq_len=seq_len)
    spec = spec_for_program(program, wta_lanes=wta_lanes, debug_taps=debug_taps)
    return CoreModel(ckpt["recipe"], path, ckpt, int_model, program, spec)


def held_out_samples(cm: CoreModel, count: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(samples, targets, target mask): ``count`` held-out samples from ``offset``.

    digits: pixels (n, 64) 0..16 and labels (n,); causal text: windows (n, L) and the next
    characters (n, L); masked text: masked windows and the true characters, scored where masked."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"--samples must be an integer >= 1, got {count!r}")
    prog = cm.program
    if prog.input_kind == "pixels":
        split = data.digits_split(seed=cm.ckpt.get("seed", 0))
        n = split.x_test.shape[0]
        if offset + count > n:
            raise ValueError(f"only {n} held-out digits; asked for {count} from {offset}")
        x = split.x_test[offset:offset + count]
        pixels = torch.round(x * 16).to(torch.int64).reshape(count, -1)
        y = split.y_test[offset:offset + count]
        return pixels, y, torch.ones_like(y, dtype=torch.bool)
    length = prog.meta["seq_len"]
    split = data.text_split(max_chars=cm.ckpt.get("train", {}).get("max_chars"))
    causal = cm.name == "wta-causal" or getattr(cm.int_model, "causal", None) is True or \
        cm.ckpt.get("recipe") == "wta-causal"
    windows = data.sequential_windows(split.val_ids, length + (1 if causal else 0))
    if offset + count > windows.shape[0]:
        raise ValueError(f"only {windows.shape[0]} held-out windows of {length}; asked for {count} from {offset}")
    windows = windows[offset:offset + count]
    if causal:
        return windows[:, :-1].contiguous(), windows[:, 1:].contiguous(), torch.ones(count, length, dtype=torch.bool)
    from .training import _mask_tokens
    inputs, mask = _mask_tokens(windows, split.vocab.mask_id, torch.Generator().manual_seed(MASK_SEED))
    return inputs, windows, mask


def accuracy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> float:
    pred = logits.argmax(dim=-1)
    hits = (pred == targets) & mask
    return float(hits.sum()) / max(1, int(mask.sum()))


# ---- build -----------------------------------------------------------------------------------------

def mapping_report(cm: CoreModel) -> str:
    """Units, lanes, memories (bits) and how each layer maps, as Markdown."""
    from rtl.core.engine import alif_spec, lif_spec, mac_spec, mtts_spec, sdsa_spec, wta_spec

    prog, spec = cm.program, cm.spec
    ms = mac_spec(spec, prog)
    ls = lif_spec(spec, prog)
    als = alif_spec(spec, prog)
    ts = mtts_spec(spec, prog)
    ws = wta_spec(spec, prog)
    ss = sdsa_spec(spec, prog)
    lines = [f"# Core for {cm.name} ({cm.checkpoint.name})", "",
             f"CoreSpec: {json.dumps(spec.to_dict())}", "", "## Units", "",
             "| unit | configuration | memory bits |", "| --- | --- | ---: |"]
    lines.append(f"| MAC engine | P = {ms.lanes}, weights {ms.weight_depth} x {ms.lanes} x {ms.weight_width} b, "
                 f"values {ms.value_width} b, accumulators {ms.max_groups} x {ms.lanes} x {ms.acc_width} b | "
                 f"{ms.weight_depth * ms.lanes * ms.weight_width + ms.bias_depth * ms.lanes * ms.bias_width + ms.max_groups * ms.lanes * ms.acc_width:,} |")
    if ls is not None:
        lines.append(f"| LIF array | P = {ls.lanes}, {ls.n_neurons} neurons, {ls.membrane_width}-bit membrane, "
                     f"addressed, run-time threshold/leak/reset | {ls.n_neurons * ls.membrane_width:,} |")
    if als is not None:
        widths = als.param_widths
        noise_bits = prog.noise_words * als.lanes * als.noise_width
        lines.append(f"| adaptive-LIF array | P = {als.lanes}, {als.n_neurons} neurons (a region per layer), "
                     f"{als.membrane_width}-bit membrane, {als.adapt_width}-bit adaptation, per-neuron theta/b in "
                     f"{als.param_depth} words (one per layer and output group, shared by its rows), addressed, "
                     f"run-time increment; noise {prog.noise_words} x {als.lanes} x {als.noise_width} b | "
                     f"{als.n_neurons * (als.membrane_width + als.adapt_width) + als.param_neurons * (widths['theta'] + widths['beta']) + noise_bits:,} |")
    if ts is not None:
        lines.append(f"| MTTS encoder | P = {ts.lanes}, T = {ts.time_steps}, codes {ts.lo} .. {ts.hi}, "
                     f"{'mask ' + str(ts.mask_value) if ts.mask else 'no mask'}, train {ts.train} | 0 |")
    if ss is not None:
        lines.append(f"| spike-driven attention | L = {ss.length}, head dim {ss.head_dim}, P_s = {ss.lanes} "
                     f"(G_s = {ss.groups}), KV {ss.head_dim} x {ss.head_dim} x {ss.kv_width} b | "
                     f"{ss.head_dim * ss.head_dim * ss.kv_width:,} |")
    if ws is not None:
        lines.append(f"| WTA attention | L = {ws.length}, head dim {ws.head_dim}, k = {ws.top_k}, "
                     f"{'causal' if ws.causal else 'non-causal'}, P_w = {ws.lanes} | "
                     f"{ws.length * (ws.head_dim + ws.value_dim):,} |")
    for b in prog.buffers.values():
        lines.append(f"| buffer {b.name} | {b.rows} rows x {b.channels} x {b.width} b"
                     f"{' signed' if b.signed else ''} | {b.bits:,} |")
    lines += ["", "## Layers", "", "| # | layer | unit | source -> destination | shape | mapping |",
              "| ---: | --- | --- | --- | --- | --- |"]
    for i, op in enumerate(prog.ops):
        if isinstance(op, LinearOp):
            how = []
            if op.lif is not None:
                how.append(f"LIF threshold {op.lif.threshold}, beta {op.lif.leak_beta}/256, reset {op.lif.reset_mode}")
            if op.alif is not None:
                how.append(f"ALIF theta {int(op.alif.theta.min())} .. {int(op.alif.theta.max())}, delta "
                           f"{op.alif.spec.adapt_increment}, {'frozen noise' if op.noise is not None else 'no noise'}, "
                           f"state @ {prog.alif_base[i] * prog.lanes}")
            if op.mtts is not None:
                how.append(f"MTTS codes clamp to {op.mtts.lo} .. {op.mtts.hi}")
            if op.row_masks is not None:
                how.append("row r reads its token's patch")
            if op.row_banks is not None:
                how.append(f"row r meets weight bank of its region ({op.banks} banks)")
            if op.accumulate:
                how.append(f"residual: adds into {op.dst}")
            if op.reduce_rows:
                how.append("sums over time and rows (bias once)")
            elif op.reduce_time:
                how.append("sums over time (bias T b)")
            if op.static_src:
                how.append("same source row every step")
            how.append(f"shift {op.shift}, weights @ {prog.weight_base[i]}, G = {prog.groups(op)}")
            unit = {"lif": "MAC + LIF", "alif": "MAC + ALIF", "mtts": "MAC + MTTS", None: "MAC"}[op.neuron]
            lines.append(f"| {i} | {op.name} | {unit} | {op.src} -> {op.dst or 'host'} | "
                         f"{op.steps} x {op.rows} x ({op.n_in} -> {op.n_out}) | {'; '.join(how)} |")
        elif isinstance(op, SDSAOp):
            lines.append(f"| {i} | {op.name} | spike-driven attention | {op.q},{op.k},{op.v} -> {op.dst} | "
                         f"{op.steps} x {op.heads} heads x {op.sdsa.length} | y = q (k^T v) |")
        else:
            lines.append(f"| {i} | {op.name} | WTA attention | {op.q},{op.k},{op.v} -> {op.dst} | "
                         f"{op.steps} x {op.heads} heads x {op.wta.length} | top-{op.wta.top_k}, "
                         f"F = {op.wta.scale_frac} |")
    return "\n".join(lines) + "\n"


def build_core(cm: CoreModel, out_dir: Path) -> list[Path]:
    """Write the core's Verilog, its memory images and the mapping report into ``out_dir``."""
    from rtl.core import NeuroCore
    from rtl.emit import to_verilog

    verilog = to_verilog(NeuroCore(cm.spec, cm.program), "spikeforge_core")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is not a directory")
    # everything is generated before anything is written: no half-written build folder
    files = {
        "spikeforge_core.v": verilog,
        "report.md": mapping_report(cm),
        "core.json": json.dumps({"model": cm.name, "checkpoint": str(cm.checkpoint),
                                 "checkpoint_sha256": hashlib.sha256(cm.checkpoint.read_bytes()).hexdigest(),
                                 "spec": cm.spec.to_dict(),
                                 "ops": [op.name for op in cm.program.ops]}, indent=2),
    }
    images = {"weights": cm.program.weight_image().numpy(), "biases": cm.program.bias_image().numpy()}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        (out_dir / name).write_text(text)
        written.append(out_dir / name)
    np.savez(out_dir / "memory_images.npz", **images)
    written.append(out_dir / "memory_images.npz")
    return written


# ---- run -------------------------------------------------------------------------------------------

@dataclass
class CoreRunReport:
    model: str
    samples: int
    mismatches: int
    first_mismatch: str
    integer_accuracy: float
    hardware_accuracy: float
    cycles: list[int]
    predicted: list[int]
    useful_ops: list[int]
    lanes: int
    sim_cycles_per_second: float
    checked_tensors: list[str]
    #: mean energy per sample (nJ) at each technology, from the core's own activity counters
    #: (``estimate.core.estimate_from_activity``); empty when the counters did not all arrive
    energy_nj: dict[str, float] = field(default_factory=dict)

    @property
    def cycles_match(self) -> bool:
        return self.cycles == self.predicted

    @property
    def utilisation(self) -> float:
        return sum(self.useful_ops) / max(1, self.lanes * sum(self.cycles))

    def text(self) -> str:
        mean = sum(self.cycles) / max(1, len(self.cycles))
        lines = [
            f"[core: {self.model}] {self.samples} held-out samples under Verilator, random valid/ready gaps",
            f"  layers checked   : {len(self.checked_tensors)} tensors of forward_layers, every tap ==",
            f"  mismatches       : {self.mismatches}",
            f"  accuracy         : hardware {self.hardware_accuracy:.4f}, integer model {self.integer_accuracy:.4f}"
            f" ({'equal' if self.hardware_accuracy == self.integer_accuracy else 'DIFFERENT'})",
            f"  cycles / sample  : mean {mean:,.1f} (min {min(self.cycles):,}, max {max(self.cycles):,}); "
            f"formula {'== core counter on every sample' if self.cycles_match else 'DIFFERS from the core counter'}",
            f"  utilisation      : {self.utilisation:.1%} of {self.lanes} MAC lanes"
            f" ({sum(self.useful_ops) / max(1, self.samples):,.0f} synaptic ops / sample)",
            f"  simulated speed  : {self.sim_cycles_per_second:,.0f} cycles/s",
        ]
        if self.energy_nj:
            lines.insert(-1, "  energy / sample  : " + ", ".join(f"{nj:,.1f} nJ at {tech}" for tech, nj in
                                                               self.energy_nj.items())
                         + " (the core's activity counters x per-event energies, estimate/core.py)")
        if self.first_mismatch:
            lines.append("  first differences:\n    " + self.first_mismatch.replace("\n", "\n    "))
        return "\n".join(lines)


def run_core(cm: CoreModel, count: int, *, seed: int = 1, valid_prob: float = 0.75, ready_prob: float = 0.75,
             workdir: Path | None = None, offset: int = 0) -> CoreRunReport:
    from sim.core import cosim_core

    for name, p in (("--valid-prob", valid_prob), ("--ready-prob", ready_prob)):
        if not 0.05 <= p <= 1.0:
            raise ValueError(f"{name} = {p} is out of range; allowed: 0.05 .. 1")
    samples, targets, mask = held_out_samples(cm, count, offset)
    layers = cm.int_model.forward_layers(samples if cm.program.input_kind == "tokens"
                                         else samples.reshape(-1, 1, 8, 8))
    golden_run = run_program(cm.program, samples, current_width=cm.spec.current_width)
    checked = check_against_model(cm.program, golden_run, layers)
    with tempfile.TemporaryDirectory(prefix="spikeforge-core-") as tmp:
        rep = cosim_core(cm.spec, cm.program, samples, Path(workdir) if workdir else Path(tmp), seed=seed,
                         valid_prob=valid_prob, ready_prob=ready_prob)
    # accuracy from the logits words the core emitted, and from the integer model's logits
    int_logits = layers["logits"] if layers["logits"].dim() == 3 else layers["logits"].unsqueeze(1)
    targets = targets if targets.dim() == 2 else targets.unsqueeze(1)
    mask = mask if mask.dim() == 2 else mask.unsqueeze(1)
    try:
        hw_acc = accuracy(rep.hardware_logits(), targets, mask)
    except ValueError:   # the core emitted a wrong number of logits: the mismatch count says so
        hw_acc = float("nan")
    int_acc = accuracy(int_logits, targets, mask)
    try:
        from estimate.core import estimate_from_activity

        est = estimate_from_activity(cm.program, cm.spec, rep.hardware_activity(), model=cm.name)
        energy = {tech: pj / 1000.0 for tech, pj in est.energy_by_tech.items()}
    except ValueError:   # an activity beat missing: the mismatch count says so
        energy = {}
    return CoreRunReport(cm.name, count, rep.mismatches, rep.first_mismatch(), int_acc, hw_acc, rep.cycles,
                         rep.predicted_cycles, useful_ops(cm.program, golden_run).tolist(), cm.spec.lanes,
                         rep.cycles_per_second, checked, energy)


# ---- results table ---------------------------------------------------------------------------------

def float_accuracy(cm: CoreModel, samples: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> float:
    """The float model's accuracy on the same samples (digits: pixels / 16)."""
    from .training import load_checkpoint

    model, _ = load_checkpoint(cm.checkpoint)
    with torch.no_grad():
        if cm.program.input_kind == "pixels":
            logits = model(samples.reshape(-1, 1, 8, 8).float() / 16.0).unsqueeze(1)
        else:
            logits = model(samples)
    return accuracy(logits, targets if targets.dim() == 2 else targets.unsqueeze(1),
                    mask if mask.dim() == 2 else mask.unsqueeze(1))


def _synth_report(cm: CoreModel, target: str):
    """The cached synthesis report of this very core (its Verilog, no debug taps), or None if never run
    (``spikeforge synth core --model M --target T --no-taps [--pnr]`` makes it)."""
    from synth.core import synth_core

    nt = load_core_model(str(cm.checkpoint) if cm.name not in SHIPPED else cm.name, lanes=cm.spec.lanes,
                         wta_lanes=cm.spec.wta_lanes, debug_taps=False)
    return synth_core(nt, target, pnr=target == "ecp5", cached_only=True)


def not_on_core() -> list[tuple[str, str]]:
    """(recipe, why) for every trained architecture the compiler refuses today."""
    from .training import get_recipe, recipe_names

    out = []
    for name in recipe_names():
        if name in SHIPPED:
            continue
        recipe = get_recipe(name)
        try:
            model = recipe.build(None if recipe.task == "digits" else 40, **recipe.split_config()[1])
            compile_model(model.to_integer() if hasattr(model, "to_integer") else model)
        except SpecError as exc:
            out.append((name, str(exc)))
        except Exception as exc:  # a model without an integer mode, etc.
            out.append((name, f"{type(exc).__name__}: {exc}"))
    return out


def core_verilog_sha256(cm: CoreModel) -> str:
    """sha256 of the Verilog of ``cm``'s core without debug taps (what synthesis and the report run)."""
    import hashlib

    from rtl.core import NeuroCore
    from rtl.emit import to_verilog
    from synth.core import CORE_TOP

    nt = load_core_model(str(cm.checkpoint) if cm.name not in SHIPPED else cm.name, lanes=cm.spec.lanes,
                         wta_lanes=cm.spec.wta_lanes, debug_taps=False)
    return hashlib.sha256(to_verilog(NeuroCore(nt.spec, nt.program), CORE_TOP).encode()).hexdigest()


def _cosim_row(name: str, count: int, seed: int) -> dict:
    cm = load_core_model(name, debug_taps=False)
    samples, targets, mask = held_out_samples(cm, count)
    rep = run_core(cm, count, seed=seed)
    if rep.mismatches or not rep.cycles_match:
        raise RuntimeError(f"{name} on the core is not bit-exact: {rep.first_mismatch}")
    return {"model": name, "float_accuracy": float_accuracy(cm, samples, targets, mask),
            "integer_accuracy": rep.integer_accuracy, "hardware_accuracy": rep.hardware_accuracy,
            "mean_cycles": sum(rep.cycles) / len(rep.cycles),
            "energy_nj": rep.energy_nj, "verilog_sha256": core_verilog_sha256(cm)}


def cosim_rows(count: int = 64, *, seed: int = 1, models=SHIPPED, progress=print) -> dict:
    """The co-simulation half of ``docs/results/core.md``: every model under Verilator (no debug taps), its
    accuracies and mean cycles, with the sha256 of the core's Verilog (a JSON-able dict)."""
    rows = []
    for name in models:
        progress(f"core report: {name}")
        rows.append(_cosim_row(name, count, seed))
    return {"format": 1, "samples": count, "seed": seed, "rows": rows}


def refresh_cosim_rows(cosim: dict, *, models=SHIPPED, progress=print) -> dict:
    """Co-simulation results of today's cores from an earlier report's ``cosim``: a model whose core's
    Verilog is unchanged keeps its row; a changed or missing one is co-simulated again (the earlier
    report's sample count and seed), so the table never shows a stale row."""
    if not isinstance(cosim, dict) or cosim.get("format") != 1 or not isinstance(cosim.get("rows"), list):
        raise ValueError("the co-simulation results file is not a spikeforge core report (format 1)")
    count, seed = int(cosim["samples"]), int(cosim.get("seed", 1))
    old = {row.get("model"): row for row in cosim["rows"]}
    rows = []
    for name in models:
        row = old.get(name)
        if row is not None and row.get("verilog_sha256") == core_verilog_sha256(load_core_model(name, debug_taps=False)):
            rows.append(row)
            continue
        progress(f"core report: {name} ({'its core changed' if row is not None else 'not in the results'}: "
                 f"co-simulated again)")
        rows.append(_cosim_row(name, count, seed))
    return {"format": 1, "samples": count, "seed": seed, "rows": rows}


def results_table(count: int = 64, *, seed: int = 1, models=SHIPPED, progress=print, cosim: dict | None = None) -> str:
    """``docs/results/core.md``: every shipped model on the core under Verilator (no debug taps), or the
    co-simulation results ``cosim`` of ``cosim_rows``; the synthesis columns from the cached reports of
    exactly these cores (never a stale row)."""
    if cosim is None:
        cosim = cosim_rows(count, seed=seed, models=models, progress=progress)
    count = cosim["samples"]
    lines = ["# Trained models on the neuromorphic core", "",
             f"Generated by `spikeforge core report --samples {count}`: each shipped checkpoint "
             "(`sim/data/core`) compiled onto the core (P = 8 MAC/LIF lanes, P_w = 4 WTA lanes), its "
             f"{count} first held-out samples (digits; text windows of 32 characters) co-simulated under "
             "Verilator with random stream gaps, the logits the core emitted decoded. Accuracy: digits "
             "classified right; next character (causal) or masked character (masked LM) predicted right, "
             "over every scored position. Cycles: the core's own counter, equal to the formula on every "
             "sample (`golden/core/cycles.py`). Synthesis: `spikeforge synth core --model M --no-taps` "
             "(Yosys 0.70, nextpnr 0.11.1; ECP5 = LFE5U-85F speed 6 with place and route, xilinx7 = "
             "synthesis only); latency = mean cycles / Fmax (ECP5). Energy: the mean per sample of the "
             "core's own activity counters (per op: its cycles, the EVENT commands its MAC engine took, the "
             "spikes its neurons emitted; `==` the golden run on every sample) with the program's static "
             "counts, each event x its energy at 45 nm (Horowitz, ISSCC 2014; `estimate/core.py`, "
             "`spikeforge estimate M` for the breakdown). The co-simulation results are also in "
             "`core.json` beside this file (`--reuse-cosim` refreshes the synthesis columns from it and "
             "co-simulates again only the models whose core changed).", "",
             "| model | float acc | integer acc | hardware acc | cycles / sample | latency at Fmax | "
             "energy / sample (45 nm) | ECP5 LUT / FF / BRAM / DSP | ECP5 Fmax MHz | xilinx7 LUT / FF / BRAM / DSP |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in cosim["rows"]:
        name = row["model"]
        cm = load_core_model(name, debug_taps=False)
        mean = row["mean_cycles"]
        e, x = _synth_report(cm, "ecp5"), _synth_report(cm, "xilinx7")
        def res(r):
            if r is None:
                return "not synthesised"
            return f"{r.luts:,} / {r.ffs:,} / {r.bram:g} / {r.dsp}"
        fmax = e.fmax_mhz if e is not None and e.fmax_mhz else None
        latency = f"{mean / fmax:,.1f} us" if fmax else "-"
        nj = row.get("energy_nj", {}).get("45nm")
        energy = f"{nj:,.1f} nJ" if nj is not None else "-"
        lines.append(f"| {name} | {row['float_accuracy']:.4f} | {row['integer_accuracy']:.4f} | "
                     f"{row['hardware_accuracy']:.4f} | {mean:,.1f} | {latency} | {energy} | {res(e)} | "
                     f"{f'{fmax:.1f}' if fmax else '-'} | {res(x)} |")
    lines += ["", "Architectures not yet on the core (the compiler's refusal):", ""]
    lines += [f"* `{name}`: not yet on the core: {why}" for name, why in not_on_core()]
    return "\n".join(lines) + "\n"
