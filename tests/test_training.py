"""The training framework: data sets, a real (short) digits run, integer mode of the trained
model, the text tasks, checkpoints, and the command line."""

import pytest
import torch
from torch import nn

from golden import data
from golden.models.spiking_mlp import SpikingMLP
from spikeforge import training
from spikeforge.cli import main


def test_digits_split_is_stratified_and_seeded():
    a, b = data.digits_split(seed=1), data.digits_split(seed=1)
    assert torch.equal(a.y_train, b.y_train) and a.x_train.shape[1:] == (1, 8, 8)
    assert len(a.y_train) + len(a.y_test) == 1797
    assert float(a.x_train.max()) == 1.0 and float(a.x_train.min()) == 0.0
    counts = torch.bincount(a.y_test, minlength=10)
    assert int(counts.min()) >= 40  # every class held out in proportion (~45 each)


def test_text_vocab_round_trip_and_unigram():
    split = data.text_split(max_chars=20000)
    text = data.text_corpus(20000)[:200]
    assert split.vocab.decode(split.vocab.encode(text)) == text
    assert split.vocab.mask_id == split.vocab.size - 1
    # the unigram entropy of English characters lies between 3 and 6 bits
    assert 3.0 < data.unigram_bits_per_char(split.train_ids, split.val_ids, split.vocab.size) < 6.0
    with pytest.raises(ValueError, match="not in the vocabulary"):
        split.vocab.encode("\u4e2d")


def test_spiking_mlp_trains_and_its_integer_mode_agrees(tmp_path):
    torch.set_num_threads(1)
    report = training.train("spiking-mlp", epochs=3, progress=False, out=tmp_path / "m.pt")
    assert report.metrics["test_accuracy"] > 0.75   # chance is 0.10; measured ~0.85 after 3 epochs
    model, ckpt = training.load_checkpoint(tmp_path / "m.pt")
    assert ckpt["recipe"] == "spiking-mlp"
    split = data.digits_split(seed=0)
    int_model = model.to_integer(weight_bits=8)
    pixels = torch.round(split.x_test * 16).to(torch.int64)
    layers = int_model.forward_layers(pixels)
    with torch.no_grad():
        float_pred = model(split.x_test).argmax(dim=1)
    int_pred = layers["logits"].argmax(dim=1)
    assert float((int_pred == float_pred).double().mean()) >= 0.9
    int_acc = float((int_pred == split.y_test).double().mean())
    assert int_acc >= report.metrics["test_accuracy"] - 0.05
    # deterministic: the same integer input gives the same bits
    assert torch.equal(int_model(pixels[:10]), int_model(pixels[:10]))
    with pytest.raises(ValueError, match="integer pixels"):
        int_model(split.x_test[:2])


class _TinyLM(nn.Module):
    def __init__(self, vocab_size, dim=16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.out = nn.Linear(dim, vocab_size)

    def forward(self, tokens):
        return self.out(self.embed(tokens))


@pytest.mark.parametrize("task", ["text-causal", "text-mlm"])
def test_text_tasks_beat_unigram(task, monkeypatch):
    torch.set_num_threads(1)
    recipe = training.Recipe("tiny-lm", task, lambda vocab_size, **c: _TinyLM(vocab_size, **c),
                             {"epochs": 2, "lr": 0.03, "batch_size": 32, "seq_len": 16, "steps_per_epoch": 60,
                              "max_chars": 60000, "eval_windows": 32, "dim": 16}, "test")
    monkeypatch.setitem(training._load(), "tiny-lm", recipe)
    report = training.train("tiny-lm", progress=False)
    m = report.metrics
    if task == "text-causal":   # a bigram model is far better than unigram (~4.4 bits)
        assert m["val_bits_per_char"] < m["unigram_bits_per_char"] - 0.5
    else:                       # a masked position sees only the mask token: about unigram
        assert m["val_bits_per_char"] < m["unigram_bits_per_char"] + 0.3


def test_bad_settings_are_reported():
    with pytest.raises(ValueError, match="has no setting 'hiden'"):
        training.train("spiking-mlp", progress=False, overrides={"hiden": 3})
    with pytest.raises(KeyError, match="unknown model"):
        training.get_recipe("gpt")
    assert training.parse_settings(["hidden=32", "beta=0.5", "x=abc"]) == {"hidden": 32, "beta": 0.5, "x": "abc"}


def test_cli_train(tmp_path, capsys):
    assert main(["train", "spiking-mlp", "--epochs", "1", "--set", "hidden=16", "time_steps=2",
                 "--out", str(tmp_path / "c.pt"), "--no-progress"]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    assert main(["train", "spiking-mlp", "--set", "hidden", "--no-progress"]) == 2
    model, _ = training.load_checkpoint(tmp_path / "c.pt")
    assert isinstance(model, SpikingMLP) and model.time_steps == 2
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot be read"):
        training.load_checkpoint(tmp_path / "bad.pt")
