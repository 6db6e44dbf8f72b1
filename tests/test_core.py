"""The neuromorphic core, fast tier: compiler, golden program, cycle formula, Amaranth simulation.

* The compiled program executed by the golden interpreter equals the model's own
  ``forward_layers`` on every tensor (the shipped trained checkpoints and small random models).
* Small random models run through ``NeuroCore`` in Amaranth's simulator with random stream gaps:
  every tap ``==`` golden, and the core's cycle counter ``==`` the formula on every sample.
* The formula itself against hand-worked timelines, and the freeze (host back-pressure never
  changes the cycle count).
* Bad input: unsupported models, a spec too small, corrupt or foreign checkpoints, bad options.
"""

from __future__ import annotations

import json

import pytest
import torch

from golden import data
from golden.core import (CoreMismatch, check_against_model, check_fits, compile_model, run_program,
                         spec_for_program)
from golden.core.cycles import predict_cycles, readout_row_cycles, useful_ops
from golden.models.spiking_mlp import SpikingMLP
from golden.models.wta_spikingformer import WDSpikingformer, WESpikingformer
from golden.spec import SpecError


def tiny_mlp(seed: int = 0):
    torch.manual_seed(seed)
    model = SpikingMLP(hidden=12, time_steps=2)
    model.eval()
    with torch.no_grad():  # enough drive that every layer spikes
        model.layer1.linear.weight.mul_(3)
        model.layer2.linear.weight.mul_(4)
        model.layer2.linear.bias.add_(0.3)
    return model.to_integer()


def tiny_wta(cls=WDSpikingformer, seed: int = 1, vocab: int = 20):
    torch.manual_seed(seed)
    model = cls(vocab, embed_dim=16, heads=2, time_steps=2, k=2, max_len=8, mlp_ratio=2)
    model.eval()
    with torch.no_grad():
        for block in model.blocks:
            for layer in (block.attn.proj, block.mlp.fc2):
                layer.linear.weight.mul_(3)
    return model.to_integer()


def digits(n: int) -> torch.Tensor:
    split = data.digits_split(0)
    return torch.round(split.x_test[:n] * 16).to(torch.int64)


# ---- compiler and golden program -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["spiking-mlp", "wta-causal", "wta-mlm", "matterhorn"])
def test_shipped_model_program_equals_forward_layers(name):
    from spikeforge.core import held_out_samples, load_core_model

    cm = load_core_model(name)
    samples, _, _ = held_out_samples(cm, 4)
    model_in = samples.reshape(-1, 1, 8, 8) if cm.program.input_kind == "pixels" else samples
    layers = cm.int_model.forward_layers(model_in)
    run = run_program(cm.program, samples)
    checked = check_against_model(cm.program, run, layers)
    reported = {k for k, v in layers.items() if isinstance(v, torch.Tensor) and k not in ("tokens", "pixels",
                                                                                         "logit_scale")}
    # every tensor forward_layers reports is reproduced (embedding currents once per time step), but
    # those the program names as internal to a unit (Matterhorn's MTTS code, its pooled counts)
    internal = set(cm.program.meta.get("not_tapped", {}))
    assert internal <= {"mtts_time", "mtts_silent", "counts"}
    assert reported - internal <= {c.split("[")[0] for c in checked}
    assert torch.equal(run.logits, layers["logits"] if layers["logits"].dim() == 3 else layers["logits"].unsqueeze(1))


def test_program_check_catches_a_wrong_mapping():
    model = tiny_mlp()
    prog = compile_model(model, lanes=4)
    pixels = digits(2)
    layers = model.forward_layers(pixels)
    prog.ops[1].shift += 1            # a compiler bug: the wrong input fraction
    with pytest.raises(CoreMismatch, match="currents2"):
        check_against_model(prog, run_program(prog, pixels), layers)


def test_weight_image_layout_by_hand():
    model = tiny_mlp()
    prog = compile_model(model, lanes=4)
    image = prog.weight_image()
    g = prog.groups(prog.ops[1])                              # 12 outputs / 4 lanes = 3 words a row
    assert g == 3
    base = prog.weight_base[1]
    assert base == 64 * 3                                     # layer 1: 64 rows of 3 words
    # layer 2, input row 5, outputs 4..7 are word base + 5 G + 1
    assert image[base + 5 * g + 1].tolist() == model.layer2.weight[4:8, 5].tolist()
    # the readout's 10 outputs pad to 3 words of 4; the padding is zero
    rb = prog.weight_base[2]
    assert image[rb + 2, 2:].tolist() == [0, 0]
    assert prog.bias_image()[prog.bias_base[2]].tolist() == (2 * model.readout.bias[:4]).tolist()


def test_unsupported_models_are_refused_naming_the_operation():
    from golden.models.spikformer import Spikformer

    int_model = Spikformer(embed_dim=16, depth=1, heads=2, time_steps=2).to_integer()
    with pytest.raises(SpecError, match="IntSpikformer: layer conv1: not on the core yet: needs 3x3 convolutions"):
        compile_model(int_model)
    torch.manual_seed(0)
    cross = WDSpikingformer(20, embed_dim=16, heads=2, time_steps=2, k=2, max_len=8, cross_attention=True)
    with pytest.raises(SpecError, match="block0.cross: WTA cross-attention"):
        compile_model(cross.to_integer(), seq_len=8)
    with pytest.raises(SpecError, match="sequence length 9"):
        compile_model(tiny_wta(), seq_len=9)
    with pytest.raises(SpecError, match="lanes"):
        compile_model(tiny_mlp(), lanes=0)


def test_a_spec_too_small_is_refused_naming_the_memory():
    from rtl.core import NeuroCore

    prog = compile_model(tiny_mlp(), lanes=4)
    spec = spec_for_program(prog)
    # 64 pixel rows x 3 words + 12 spike rows x 3 words (layer 2) + 12 x 3 (readout, 10 -> 12 outputs)
    with pytest.raises(SpecError, match=r"CoreSpec.weight_depth >= 264; the spec has 100"):
        check_fits(spec.replace(weight_depth=100), prog)
    with pytest.raises(SpecError, match="CoreSpec.acc_width"):
        NeuroCore(spec.replace(acc_width=8), prog)
    with pytest.raises(SpecError, match="lanes"):
        check_fits(spec.replace(lanes=8), prog)
    # the readout is exact in the model: its logits must fit the current width
    with pytest.raises(SpecError, match=r"layer readout: its logits reach \+-\d+, more than CoreSpec.current_width = 8"):
        check_fits(spec.replace(current_width=8), prog)


def test_bad_samples_are_refused():
    prog = compile_model(tiny_mlp(), lanes=4)
    with pytest.raises(ValueError, match="pixels must lie"):
        run_program(prog, torch.full((1, 64), 17))
    with pytest.raises(ValueError, match="integer samples"):
        run_program(prog, torch.zeros(1, 64))
    wprog = compile_model(tiny_wta(), lanes=4, seq_len=8)
    with pytest.raises(ValueError, match="token ids must lie in 0 .. 19"):
        run_program(wprog, torch.full((1, 8), 20))
    with pytest.raises(ValueError, match=r"tokens must have shape \(B, 8\)"):
        run_program(wprog, torch.zeros(1, 7, dtype=torch.int64))


# ---- the cycle formula ----------------------------------------------------------------------------

def test_readout_row_cycles_by_hand():
    # G = 2, one step without events: read 0, hold 1, load 2, scan 3 (STEP token), offset 4,
    # command 5, accepted 6, outputs 12 and 13
    assert readout_row_cycles([0], 2) == 14
    # two steps of one event each: E0 token 3, offset 4, command 5, accepted 6 (the MAC is ready
    # again at 8); step 1 is read at 8 (cycle 7 saw the pipe empty), E1 accepted at 14; the STEP
    # at 14 + G = 16; outputs 22, 23
    assert readout_row_cycles([1, 1], 2) == 24
    # G = 13 (a wide readout): the MAC, not the scanner, sets the pace after a silent step.
    # step 0: events at 6 and 19 (ready 32), read of step 1 at 21; step 1 silent: read of step 2
    # at 25; its event at max(31, 32) = 32; STEP at 45; 45 + 6 + 13
    assert readout_row_cycles([2, 0, 1], 13) == 64


def test_spiking_row_cycles_are_n_g_plus_g_plus_17():
    """A spiking row: its first event accepted in cycle 6 (read, hold, load, token, offset,
    command), the events and the STEP G cycles apart, the first current 6 cycles after the STEP,
    the last G - 1 later, through the LIF array (5 cycles with its run-time multiply leak):
    n G + G + 17."""
    prog = compile_model(tiny_mlp(), lanes=4)
    spec = spec_for_program(prog)
    run = run_program(prog, digits(3))
    from golden.core.cycles import op_cycles
    assert prog.lif_template.leak_mode == "multiply"
    g = prog.groups(prog.ops[1])
    nnz = run.nnz[1]
    want = (nnz * g + g + 17).sum(dim=(1, 2)) + 2
    assert torch.equal(op_cycles(prog, spec, 1, nnz), want)


# ---- Amaranth simulation --------------------------------------------------------------------------

def _simulate(model, samples, *, lanes=4, wta_lanes=2, seq_len=None, seed=0, valid_prob=0.7, ready_prob=0.6,
              **spec_overrides):
    from rtl.core import NeuroCore
    from rtl.core.beats import compare_taps, core_input_beats, expected_taps, split_outputs
    from rtl.pysim import run_stream

    prog = compile_model(model, lanes=lanes, seq_len=seq_len)
    spec = spec_for_program(prog, wta_lanes=wta_lanes, **spec_overrides)
    run = run_program(prog, samples)
    expected = expected_taps(spec, prog, run)
    n_out = sum(len(v) for v in expected.values()) + samples.shape[0]
    result = run_stream(NeuroCore(spec, prog), core_input_beats(prog, samples), n_out, seed=seed,
                        valid_prob=valid_prob, ready_prob=ready_prob, max_cycles=400_000)
    got = split_outputs(spec, prog, result.outputs)
    return prog, spec, run, expected, got, compare_taps(prog, expected, got)


def test_mlp_core_bit_exact_and_cycle_exact_in_amaranth():
    samples = digits(3)
    prog, spec, run, expected, got, problems = _simulate(tiny_mlp(), samples)
    assert problems == []
    assert got[(-1, 5)] == predict_cycles(prog, spec, run).tolist()
    # every layer left the core: currents and spikes of both layers, the logits, and every op's
    # activity counters
    assert set(expected) == {(0, 0), (0, 1), (1, 0), (1, 1), (2, 4), (0, 6), (1, 6), (2, 6)}
    assert int(run.nnz[2].sum()) > 0 and int(run.nnz[1].sum()) > 0   # spikes reached every layer


def test_mlp_core_activity_counters_agree_with_the_sample_and_each_other():
    """The activity beats, checked against what they must be without the golden program: the ops'
    cycles add up to the status word, layer 1 takes one event per nonzero pixel and time step,
    layer 2 one per spike of layer 1, the readout one per spike of layer 2."""
    from rtl.core.beats import decode_activity

    samples = digits(3)
    prog, spec, run, expected, got, problems = _simulate(tiny_mlp(), samples, seed=4)
    assert problems == []
    act = decode_activity(spec, prog, got, 3)
    t = prog.ops[0].steps
    assert sum(a.cycles for a in act.values()).tolist() == got[(-1, 5)]
    assert act[0].events.tolist() == ((samples.reshape(3, -1) != 0).sum(dim=1) * t).tolist()
    assert act[1].events.tolist() == act[0].spikes.tolist() and act[2].events.tolist() == act[1].spikes.tolist()
    assert act[2].spikes.tolist() == [0, 0, 0] and int(act[1].spikes.sum()) > 0


@pytest.mark.parametrize("cls", [WDSpikingformer, WESpikingformer])
def test_wta_core_bit_exact_and_cycle_exact_in_amaranth(cls):
    model = tiny_wta(cls)
    tokens = torch.randint(0, 20, (1, 8), generator=torch.Generator().manual_seed(3))
    prog, spec, run, expected, got, problems = _simulate(model, tokens, seq_len=8, seed=2)
    assert problems == []
    assert got[(-1, 5)] == predict_cycles(prog, spec, run).tolist()
    kinds = {kind for _, kind in expected}
    assert kinds == {0, 1, 3, 4, 6}           # currents, spikes (+ residual sums), attention, logits, activity
    assert len(expected[(4, 3)]) == 2 * 2 * 8  # T x heads x L attention beats


def test_host_back_pressure_never_changes_the_cycle_count():
    samples = digits(2)
    model = tiny_mlp()
    fast = _simulate(model, samples, valid_prob=1.0, ready_prob=1.0)
    slow = _simulate(model, samples, valid_prob=0.3, ready_prob=0.15, seed=5)
    assert fast[-1] == [] and slow[-1] == []
    assert fast[4][(-1, 5)] == slow[4][(-1, 5)]


def test_a_corrupted_weight_image_is_caught_at_its_layer():
    """A bit flipped in layer 2's weights shows up first at layer2's currents, not only at the logits."""
    from rtl.core import NeuroCore
    from rtl.core.beats import compare_taps, core_input_beats, expected_taps, split_outputs
    from rtl.pysim import run_stream

    model = tiny_mlp()
    prog = compile_model(model, lanes=4)
    spec = spec_for_program(prog)
    samples = digits(1)
    expected = expected_taps(spec, prog, run_program(prog, samples))
    broken = compile_model(model, lanes=4)
    broken.ops[1].weight = broken.ops[1].weight.clone()
    broken.ops[1].weight[:, 0] += 1
    n_out = sum(len(v) for v in expected.values()) + 1
    result = run_stream(NeuroCore(spec, broken), core_input_beats(prog, samples), n_out, max_cycles=100_000)
    problems = compare_taps(prog, expected, split_outputs(spec, prog, result.outputs))
    assert problems and problems[0].startswith("layer2/current")
    assert not any(p.startswith("layer1") for p in problems)


# ---- command line ---------------------------------------------------------------------------------

def test_core_build_writes_verilog_images_and_report(tmp_path):
    from spikeforge.cli import main

    out = tmp_path / "build"
    assert main(["core", "build", "spiking-mlp", "-o", str(out), "--no-taps"]) == 0
    verilog = (out / "spikeforge_core.v").read_text()
    assert "module spikeforge_core" in verilog
    report = (out / "report.md").read_text()
    assert "| 0 | layer1 | MAC + LIF | pixels -> spikes1 |" in report
    assert "sums over time" in report
    core = json.loads((out / "core.json").read_text())
    assert core["spec"]["debug_taps"] is False and core["ops"] == ["layer1", "layer2", "readout"]


@pytest.mark.parametrize("argv, message", [
    (["core", "run", "no-such-model"], "does not exist; give a checkpoint file or one of the shipped models"),
    (["core", "run", "spiking-mlp", "--samples", "0"], "--samples must be an integer >= 1"),
    (["core", "run", "spiking-mlp", "--valid-prob", "0"], "--valid-prob = 0.0 is out of range"),
    (["core", "run", "spiking-mlp", "--ready-prob", "2"], "--ready-prob = 2.0 is out of range"),
    (["core", "run", "spiking-mlp", "--samples", "100000"], "only 450 held-out digits"),
    (["core", "build", "spiking-mlp", "--lanes", "0", "-o", "x"], "CoreSpec.lanes = 0 is out of range"),
])
def test_core_cli_bad_input_is_one_line(argv, message, capsys):
    from spikeforge.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spikeforge: error:") and message in err[0], err


def test_core_cli_refuses_corrupt_foreign_and_directory_checkpoints(tmp_path, capsys):
    from spikeforge.cli import main

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    out = tmp_path / "out"
    for ckpt, message in ((junk, "cannot be read"), (foreign, "is not a Spikeforge checkpoint"),
                          (tmp_path, "is a directory")):
        assert main(["core", "build", str(ckpt), "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not out.exists()                    # nothing written half-way
    # an architecture the core lacks
    from spikeforge.training import get_recipe
    config = {"embed_dim": 8, "heads": 2, "depth": 1, "time_steps": 1}
    model = get_recipe("spikformer").build(None, **config)
    torch.save({"recipe": "spikformer", "config": config, "train": {}, "seed": 0, "metrics": {},
                "state_dict": model.state_dict()}, tmp_path / "sf.pt")
    assert main(["core", "build", str(tmp_path / "sf.pt"), "-o", str(out)]) == 2
    assert "not on the core yet" in capsys.readouterr().err
    assert not out.exists()


def test_useful_ops_count_by_hand():
    model = tiny_mlp()
    prog = compile_model(model, lanes=4)
    pixels = digits(1)
    run = run_program(prog, pixels)
    layers = model.forward_layers(pixels)
    # layer 1: nonzero pixels x 12 outputs x T; layer 2: input spikes x 12; readout: spikes x 10
    want = int((pixels != 0).sum()) * 12 * 2 + int(layers["spikes1"].sum()) * 12 + int(layers["spikes2"].sum()) * 10
    assert useful_ops(prog, run).tolist() == [want]


def test_reuse_cosim_reruns_only_the_models_whose_core_changed(monkeypatch):
    """--reuse-cosim: a row whose Verilog hash is today's stays as it is; a stale or missing one is
    co-simulated again (here a recording stand-in for the Verilator run), with the old samples and seed."""
    import spikeforge.core as core

    calls = []
    monkeypatch.setattr(core, "_cosim_row", lambda name, count, seed: calls.append((name, count, seed)) or
                        {"model": name, "fresh": True})
    today = core.core_verilog_sha256(core.load_core_model("spiking-mlp", debug_taps=False))
    kept = {"model": "spiking-mlp", "verilog_sha256": today, "mean_cycles": 1.0}
    out = core.refresh_cosim_rows({"format": 1, "samples": 16, "seed": 3, "rows": [kept]}, models=("spiking-mlp",))
    assert out["rows"] == [kept] and calls == [] and (out["samples"], out["seed"]) == (16, 3)
    stale = {**kept, "verilog_sha256": "0" * 64}
    out = core.refresh_cosim_rows({"format": 1, "samples": 16, "seed": 3, "rows": [stale]}, models=("spiking-mlp",))
    assert out["rows"] == [{"model": "spiking-mlp", "fresh": True}] and calls == [("spiking-mlp", 16, 3)]
    with pytest.raises(ValueError, match="not a spikeforge core report"):
        core.refresh_cosim_rows({"rows": []})
