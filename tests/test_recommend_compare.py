"""The architecture guide (``select_architecture`` / ``spikeforge recommend``), the non-spiking
reference's MAC count, whole-model energy counts, and ``spikeforge compare``."""

import csv
import re

import pytest
import torch

from golden.energy import Meter
from golden.models.ann_vit import AnnViT
from golden.models.common import im2col
from golden.models.spikformer import Spikformer
from spikeforge.cli import main
from spikeforge.compare import build_table, markdown, svg_plot
from spikeforge.recommend import (ARCHITECTURES, GUIDE_HARDWARE, GUIDE_PRIORITIES, GUIDE_TABLE, GUIDE_TASKS, HARDWARE,
                                  PRIORITIES, TASKS, select_architecture)
from spikeforge.training import recipe_names


@pytest.mark.parametrize("task,hardware,priority,want", [
    ("language_modeling", "digital_asic", "accuracy", "WTA Spiking Transformer"),
    ("language_modeling", "analog", "energy", "Matterhorn"),
    ("classification", "analog", "accuracy", "Matterhorn"),
    ("classification", "fpga", "energy", "Matterhorn"),
    ("event_vision", "neuromorphic_chip", "accuracy", "TEFormer"),
    ("long_sequence", "gpu", "accuracy", "LSFormer"),
    ("classification", "gpu", "accuracy", "SpikingResformer"),
    ("classification", "neuromorphic_chip", "accuracy", "Spike-driven Transformer V2"),
    ("classification", "digital_asic", "area", "Spikformer"),
])
def test_decision_table(task, hardware, priority, want):
    rec = select_architecture(task, hardware, priority)
    assert rec.architecture == want
    assert len(rec.reasons) == 2 and all(rec.reasons)
    assert rec.recipe == ARCHITECTURES[want][0]


def test_every_combination_has_an_answer_with_reasons():
    for t in TASKS:
        for h in HARDWARE:
            for p in PRIORITIES:
                rec = select_architecture(t, h, p)
                assert rec.architecture in ARCHITECTURES and rec.reasons


def test_latency_first_event_vision_uses_the_causal_teformer():
    rec = select_architecture("event_vision", "fpga", "latency")
    assert rec.architecture == "TEFormer" and "backward=none" in rec.note


@pytest.mark.parametrize("args,bad", [(("speech", "fpga", "energy"), "task"), (("classification", "tpu", "energy"),
                                      "hardware"), (("classification", "fpga", "speed"), "priority")])
def test_unknown_values_raise_listing_the_allowed_ones(args, bad):
    with pytest.raises(ValueError, match=f"unknown {bad}.*allowed: "):
        select_architecture(*args)


def test_the_guides_own_example():
    rec = select_architecture("nlp", "neuromorphic", "efficiency")
    assert rec.architecture == "WTA Spiking Transformer" and rec.rule == "guide"
    assert rec.recipe == "wta-causal" and len(rec.reasons) == 2 and all(rec.reasons)


def test_every_key_of_the_guides_vocabulary_gets_the_guides_answer():
    keys = [(t, h, p) for t in GUIDE_TASKS for h in GUIDE_HARDWARE for p in GUIDE_PRIORITIES]
    assert len(keys) == 27 and set(GUIDE_TABLE) <= set(keys)
    for key in keys:
        rec = select_architecture(*key)
        if key in GUIDE_TABLE:
            assert (rec.architecture, rec.rule) == (GUIDE_TABLE[key][0], "guide"), key
        else:
            assert (rec.architecture, rec.rule) == ("LSFormer", "guide default"), key
            assert "no entry for (" + ", ".join(key) + ")" in rec.reasons[0]
        assert rec.recipe in recipe_names() and all(rec.reasons)


def test_guide_words_read_by_the_projects_rules_as_an_alternative():
    rec = select_architecture("vision", "gpu", "accuracy")
    assert rec.architecture == "LSFormer" and rec.alternatives == ("SpikingResformer",)
    assert "task=classification, hardware=gpu, priority=accuracy" in rec.note
    # no project word for multimodal or balanced: no alternative, no note
    rec = select_architecture("multimodal", "edge", "balanced")
    assert rec.alternatives == () and rec.note == ""


@pytest.mark.parametrize("args, match", [
    (("nlp", "fpga", "efficiency"), "unknown hardware 'fpga' for the guide's task 'nlp'; allowed: gpu, neuromorphic, edge"),
    (("vision", "gpu", "energy"), "unknown priority 'energy' for the guide's task 'vision'; allowed: efficiency"),
    (("classification", "neuromorphic", "energy"), "unknown hardware 'neuromorphic' for the project's task"),
    (("classification", "gpu", "balanced"), "unknown priority 'balanced' for the project's task"),
])
def test_the_two_vocabularies_are_not_mixed(args, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        select_architecture(*args)


def test_recommend_cli_in_the_guides_words(capsys):
    assert main(["recommend", "--task", "nlp", "--hardware", "neuromorphic", "--priority", "efficiency"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("recommended: WTA Spiking Transformer") and "[rule guide]" in out


def test_recommend_cli(capsys):
    assert main(["recommend", "--task", "language_modeling", "--hardware", "fpga", "--priority", "energy"]) == 0
    assert "WTA Spiking Transformer" in capsys.readouterr().out
    assert main(["recommend", "--task", "x", "--hardware", "fpga", "--priority", "energy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikeforge: error: unknown task 'x'") and "classification" in err


def test_ann_macs_equal_a_hand_count():
    torch.manual_seed(0)
    model = AnnViT(embed_dim=4, depth=1, heads=2, mlp_ratio=1).eval()
    with Meter() as m, torch.no_grad():
        model(torch.rand(1, 1, 8, 8))
    # conv1 64*9*2 + conv2 64*18*4 + qkv 16*4*12 + QK^T and AV 2*16*16*4 + proj 16*4*4 + fc1, fc2 16*4*4 each
    # + head 4*10
    assert m.macs == 1152 + 4608 + 768 + 2048 + 256 + 256 + 256 + 40
    assert m.sops == 0 and m.report()["energy_pj"] == pytest.approx(m.macs * 4.6)


def test_spikformer_counts_equal_counts_recomputed_from_its_layer_tensors():
    """An independent recount from the integer model's per-layer spikes (the papers' formulas)."""
    torch.manual_seed(0)
    D, T, B = 8, 2, 3
    model = Spikformer(embed_dim=D, heads=2, time_steps=T, mlp_ratio=2)
    model.train()
    model(torch.rand(16, 1, 8, 8))            # move the BN statistics so neurons fire
    int_model = model.eval().to_integer()
    pixels = torch.randint(0, 17, (B, 1, 8, 8))
    with Meter() as m:
        t = int_model.forward_layers(pixels)
    nnz = lambda a: int(torch.count_nonzero(a))
    x_attn = t["sps.out"] + t["block0.attn.out"]
    want_sops = (nnz(im2col(t["sps.conv1"], 8, 8)) * D            # conv2
                 + nnz(im2col(t["sps.pool"], 4, 4)) * D            # rpe
                 + 3 * nnz(t["sps.out"]) * D                       # q, k, v
                 + nnz(t["block0.attn.attn"]) * D                  # proj
                 + nnz(x_attn) * 2 * D                             # fc1
                 + nnz(t["block0.mlp.fc1"]) * D)                   # fc2
    q, k, v = t["block0.attn.q"], t["block0.attn.k"], t["block0.attn.v"]
    for h in range(2):
        sl = slice(h * D // 2, (h + 1) * D // 2)
        want_sops += int(((k[..., sl] != 0).sum(-1) * (v[..., sl] != 0).sum(-1)).sum())   # K^T V
    want_sops += nnz(q) * D // 2                                                           # Q (K^T V)
    assert m.sops == want_sops
    assert m.macs == T * B * 64 * 9 * (D // 2) + T * B * D * 10   # conv1 on pixels + readout
    assert m.samples == B
    spiking = sum(c.neurons for c in m.layers.values())
    assert m.spikes == sum(nnz(t[key]) for key in ("sps.conv1", "sps.conv2", "sps.rpe", "block0.attn.q",
                                                     "block0.attn.k", "block0.attn.v", "block0.attn.attn",
                                                     "block0.attn.out", "block0.mlp.fc1", "block0.mlp.fc2"))
    assert spiking == T * B * (64 * D // 2 + 64 * D + 16 * D * 6 + 16 * 2 * D + 16 * D)


def test_build_table_relates_energy_to_the_ann():
    rows = build_table([{"model": "a", "energy_nj": 50.0, "test_accuracy": 0.9},
                        {"model": "ann-vit", "energy_nj": 200.0, "test_accuracy": 0.95}])
    assert rows[0]["energy_vs_ann"] == 0.25 and rows[0]["ann_over_model"] == 4.0
    assert rows[1]["energy_vs_ann"] == 1.0
    assert "| a |" in markdown(rows) and "4.0x" in markdown(rows)
    assert svg_plot(rows).startswith("<svg") and "ann-vit" in svg_plot(rows)
    with pytest.raises(ValueError, match="baseline 'ann-vit' is not among"):
        build_table([{"model": "a", "energy_nj": 1.0}])


def test_compare_cli_tiny(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "res"
    rc = main(["compare", "--models", "spikformer", "--epochs", "1", "--embed-dim", "8", "--time-steps", "1",
               "--out-dir", str(out), "--checkpoint-dir", str(tmp_path / "ck"), "--no-progress"])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert [r["model"] for r in rows] == ["spikformer", "ann-vit"]
    assert 0.0 <= float(rows[0]["int_accuracy"]) <= 1.0 and rows[1]["int_accuracy"] == ""
    assert float(rows[1]["energy_vs_ann"]) == 1.0 and float(rows[0]["sops"]) > 0
    assert (out / "compare.svg").exists() and (out / "compare.md").exists()
    assert main(["compare", "--models", "nope", "--out-dir", str(out)]) == 2
    assert "unknown or non-digits model(s) nope" in capsys.readouterr().err


def test_energy_cli_float_and_integer(tmp_path, capsys):
    torch.manual_seed(0)
    from spikeforge import training

    path = tmp_path / "s.pt"
    training.train("spikformer", epochs=1, progress=False, out=path,
                   overrides={"embed_dim": 8, "heads": 2, "time_steps": 1})
    assert main(["energy", "spikformer", "--checkpoint", str(path), "--samples", "5"]) == 0
    out = capsys.readouterr().out
    assert "blocks.0.attn" in out and "per sample: SOPs" in out
    assert main(["energy", "spikformer", "--checkpoint", str(path), "--samples", "5", "--integer"]) == 0
    assert "[spikformer integer]" in capsys.readouterr().out
    assert main(["energy", "spikformer", "--samples", "0"]) == 2


def test_fit_size_uses_aliases_and_drops_only_what_does_not_build():
    from spikeforge.compare import fit_size

    assert fit_size("spiking-mlp", {"embed_dim": 32, "time_steps": 4}) == {"hidden": 32, "time_steps": 4}
    # 32 is not a multiple of 3 heads: the fewest keys are dropped (heads), the rest kept
    assert fit_size("spikformer", {"embed_dim": 32, "depth": 2, "heads": 3, "time_steps": 2}) == \
        {"embed_dim": 32, "depth": 2, "time_steps": 2}
    assert fit_size("ann-vit", {"embed_dim": 16, "time_steps": 4}) == {"embed_dim": 16}


def test_hook_counting_of_a_model_without_counters_equals_a_hand_count():
    from golden.models.spiking_mlp import SpikingMLP
    from spikeforge.compare import measure

    torch.manual_seed(0)
    model = SpikingMLP(hidden=8, time_steps=2)
    with torch.no_grad():
        model.layer1.linear.weight.mul_(8.0)            # make the untrained layers fire
        model.layer2.linear.weight.mul_(8.0)
    x = torch.rand(3, 1, 8, 8)
    spikes = {}
    model.layer1.lif.register_forward_hook(lambda m, i, o: spikes.__setitem__("s1", o))
    model.layer2.lif.register_forward_hook(lambda m, i, o: spikes.__setitem__("s2", o))
    report, method = measure(model, x)
    assert method == "hooks"
    s1, s2 = spikes["s1"], spikes["s2"]
    assert int(s1.sum()) > 0 and int(s2.sum()) > 0
    # layer1 on real pixels: T B 64 8 MACs; layer2 and the readout are fed by spikes: nnz x fan-out
    assert report["macs"] * 3 == 2 * 3 * 64 * 8
    assert report["sops"] * 3 == int(s1.sum()) * 8 + int(s2.sum()) * 10
    assert report["firing_rate"] == (int(s1.sum()) + int(s2.sum())) / (2 * 3 * 8 * 2)


def test_every_recommended_architecture_is_trainable():
    from spikeforge.training import recipe_names

    for arch, (recipe, _) in ARCHITECTURES.items():
        assert recipe in recipe_names(), arch
