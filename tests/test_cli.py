"""The command line: happy paths and one clear message for every kind of bad input."""

import json
import subprocess
import sys

import pytest

from golden.vectors import load_vectors
from spikeforge.cli import main


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "spikeforge", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("verilog", "vectors", "check", "demo", "blocks"):
        assert command in out.stdout


def test_verilog_writes_a_module(tmp_path, capsys):
    out = tmp_path / "lif.v"
    assert main(["verilog", "lif", "--n-neurons", "16", "--lanes", "4", "-o", str(out)]) == 0
    text = out.read_text()
    assert "module lif_array(" in text and "i_stream__payload" in text and "endmodule" in text


def test_vectors_round_trip_through_spec_file(tmp_path):
    vec = tmp_path / "vec"
    assert main(["vectors", "lif", "--n-neurons", "8", "--lanes", "2", "--leak-mode", "multiply",
                 "--no-emit-membrane", "--sequences", "2", "--steps", "5", "-o", str(vec)]) == 0
    v = load_vectors(vec, block="lif")
    assert v.spec["leak_mode"] == "multiply" and v.spec["emit_membrane"] is False
    assert v["currents"].shape == (2, 5, 8)
    # the manifest itself is accepted as --spec, with a field overridden
    out = tmp_path / "x.v"
    assert main(["verilog", "lif", "--spec", str(vec / "manifest.json"), "--lanes", "4", "-o", str(out)]) == 0


def run_cli(args):
    return subprocess.run([sys.executable, "-m", "spikeforge", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["verilog", "lif", "--lanes", "3", "-o", "x.v"], "must be a multiple of"),
    (["verilog", "lif", "--leak-mode", "cubic", "-o", "x.v"], "choose one of shift, multiply"),
    (["vectors", "lif", "--threshold", "0", "-o", "d"], "threshold = 0 is out of range"),
    (["check", "lif", "--vectors", "no/such/dir"], "no such vector directory"),
])
def test_bad_input_gives_one_clear_line(args, message, tmp_path):
    out = subprocess.run([sys.executable, "-m", "spikeforge", *args], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unknown_block_names_the_choices(tmp_path):
    out = run_cli(["verilog", "softmax", "-o", str(tmp_path / "x.v")])
    assert out.returncode == 2 and "invalid choice: 'softmax'" in out.stderr and "lif" in out.stderr
    assert "Traceback" not in out.stderr


def test_corrupt_vector_file_is_reported(tmp_path):
    vec = tmp_path / "vec"
    assert main(["vectors", "lif", "--sequences", "1", "--steps", "2", "-o", str(vec)]) == 0
    (vec / "vectors.npz").write_bytes(b"\x00" * 100)
    out = run_cli(["check", "lif", "--vectors", str(vec)])
    assert out.returncode == 2 and "corrupt or truncated" in out.stderr


def test_mismatched_vector_shapes_are_reported(tmp_path):
    import numpy as np
    from golden.vectors import save_vectors

    vec = tmp_path / "vec"
    assert main(["vectors", "lif", "--n-neurons", "8", "--lanes", "2", "--sequences", "1", "--steps", "3",
                 "-o", str(vec)]) == 0
    v = load_vectors(vec)
    arrays = dict(v.arrays, spikes=np.zeros((1, 2, 8), dtype=np.uint8))
    save_vectors(vec, "lif", v.spec, v.seed, arrays)
    out = run_cli(["check", "lif", "--vectors", str(vec)])
    assert out.returncode == 2 and "'spikes' has shape" in out.stderr


def test_check_command_cosimulates_a_vector_dir(tmp_path, capsys):
    vec = tmp_path / "vec"
    assert main(["vectors", "lif", "--n-neurons", "8", "--lanes", "4", "--sequences", "2", "--steps", "8",
                 "-o", str(vec)]) == 0
    assert main(["check", "lif", "--vectors", str(vec)]) == 0
    out = capsys.readouterr().out
    assert "mismatches      : 0" in out and "128 neuron updates" in out
    assert json.loads((vec / "manifest.json").read_text())["block"] == "lif"


@pytest.mark.parametrize("argv, recipe", [
    (["train", "wta"], "wta-causal"),
    (["train", "wta", "--variant", "causal"], "wta-causal"),
    (["train", "wta", "--variant", "mlm"], "wta-mlm"),
    (["train", "wta", "--variant", "encoder"], "wta-mlm"),
    (["train", "wta", "--variant", "decoder"], "wta-causal"),
    (["train", "wta-mlm"], "wta-mlm"),                    # the recipes stay as aliases
    (["train", "wta-causal", "--variant", "causal"], "wta-causal"),
])
def test_train_wta_variant_chooses_the_recipe(argv, recipe, monkeypatch, tmp_path, capsys):
    import spikeforge.training as training

    seen = {}

    class Report:
        def text(self):
            return "ok"

    def fake_train(name, **kwargs):
        seen["name"], seen["out"] = name, kwargs["out"]
        return Report()
    monkeypatch.setattr(training, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--no-progress"]) == 0
    assert seen["name"] == recipe and str(seen["out"]) == f"checkpoints/{recipe}.pt"


def test_train_wta_builds_the_encoder_or_the_decoder():
    from golden.models.wta_spikingformer import WDSpikingformer, WESpikingformer
    from spikeforge.training import get_recipe, resolve_recipe

    for variant, cls, task in (("causal", WDSpikingformer, "text-causal"), ("mlm", WESpikingformer, "text-mlm")):
        recipe = get_recipe(resolve_recipe("wta", variant))
        _, config = recipe.split_config({"embed_dim": 16, "heads": 2})
        assert recipe.task == task and type(recipe.build(40, **config)) is cls
