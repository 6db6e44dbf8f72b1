"""``spikeforge sweep``: Dask execution, cache and resume, failures, Pareto fronts, knobs, area model, bad input."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from spikeforge import cli
from spikeforge import sweep as sw


@pytest.fixture(scope="module")
def cluster():
    """A 2-worker LocalCluster (threads: fast to start); the sweep reaches it by --scheduler ADDRESS."""
    from distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    yield c
    c.close()


def _points(samples=8):
    pts = [sw.Point("tiny", "spiking-mlp", {"lanes": 4}), sw.Point("tiny", "spiking-mlp", {"lanes": 8}),
           sw.Point("tiny", "spiking-mlp", {"membrane": 4})]   # threshold 2^f does not fit 4 bits: fails
    for p in pts:
        p.samples = samples
    return pts


def test_tiny_sweep_on_two_workers_failure_and_resume(cluster, tmp_path):
    cache = tmp_path / "cache"
    first = sw.run_points(_points(), cache_dir=cache, scheduler=cluster.scheduler_address, progress=False)
    assert first.computed == 3 and first.cached == 0
    by = {json.dumps({k: r[k] for k in ("lanes", "membrane")}): r for r in first.records}
    bad = by[json.dumps({"lanes": 8, "membrane": 4})]
    assert bad["status"] == "error" and "threshold" in bad["error"] and "SpecError" in bad["error"]
    ok4, ok8 = by[json.dumps({"lanes": 4, "membrane": None})], by[json.dumps({"lanes": 8, "membrane": None})]
    for r in (ok4, ok8):
        assert r["status"] == "ok" and r["mode"] == "evaluated" and 0 <= r["accuracy"] <= 1
    # the lanes change the cost, never the arithmetic
    assert ok4["accuracy"] == ok8["accuracy"] and ok4["sops"] == ok8["sops"]
    assert ok4["cycles"] > ok8["cycles"] > 0
    files = sorted(p.name for p in cache.glob("*.json"))
    assert len(files) == 3

    # a second run computes nothing new: every point comes from the cache, no task is submitted
    second = sw.run_points(_points(), cache_dir=cache, scheduler="tcp://127.0.0.1:1", progress=False)
    assert second.computed == 0 and second.cached == 3
    assert sorted(p.name for p in cache.glob("*.json")) == files
    assert [r["status"] for r in second.records] == [r["status"] for r in first.records]

    # an interrupted sweep (one result missing) resumes with exactly that point
    (cache / f"{ok4['key']}.json").unlink()
    third = sw.run_points(_points(), cache_dir=cache, scheduler=cluster.scheduler_address, progress=False)
    assert third.computed == 1 and third.cached == 2
    assert next(r for r in third.records if r["key"] == ok4["key"])["cycles"] == ok4["cycles"]

    # the failure is in the CSV with its error; the others complete
    out = sw.write_outputs("tiny", third.records, tmp_path / "out")
    rows = list(csv.DictReader(open(tmp_path / "out" / "tiny.csv")))
    assert sorted(r["status"] for r in rows) == ["error", "ok", "ok"]
    assert "threshold" in next(r for r in rows if r["status"] == "error")["error"]
    assert {p.suffix for p in out} == {".csv", ".json", ".svg"}


def test_cache_key_changes_with_knobs_seed_and_version():
    a = sw.Point("s", "wta-causal", {"k": 4})
    assert a.key("v1") != sw.Point("s", "wta-causal", {"k": 8}).key("v1")
    assert a.key("v1") != a.key("v2")
    # the seed only matters where mismatch is on; the study name never (same computation)
    assert a.key("v1") == sw.Point("other", "wta-causal", {"k": 4}, seed=7).key("v1")
    m = sw.Point("s", "wta-causal", {"sigma": 0.1})
    assert m.key("v1") != sw.Point("s", "wta-causal", {"sigma": 0.1}, seed=2).key("v1")


def test_pareto_front_hand_made():
    rows = [{"name": n, "energy": e, "accuracy": a} for n, e, a in
            [("a", 1.0, 0.50), ("b", 2.0, 0.70), ("c", 2.0, 0.60), ("d", 3.0, 0.70), ("e", 4.0, 0.90),
             ("f", 0.5, 0.40), ("g", 5.0, 0.85)]]
    rows.append({"name": "failed", "energy": None, "accuracy": None, "status": "error"})
    front = sw.pareto_front(rows, "energy")
    # c is dominated by b (same energy, lower accuracy), d by b, g by e
    assert [r["name"] for r in front] == ["f", "a", "b", "e"]


def test_knobs_applied_at_evaluation():
    base = sw.evaluate_point(sw.Point("t", "spiking-mlp", {}, samples=16))
    from golden.core import run_program
    from spikeforge.core import accuracy, held_out_samples, load_core_model

    cm = load_core_model("spiking-mlp", debug_taps=False)
    x, y, m = held_out_samples(cm, 16)
    run = run_program(cm.program, x, current_width=cm.spec.current_width)
    assert base["accuracy"] == accuracy(run.logits, y.unsqueeze(1), m.unsqueeze(1))
    short = sw.evaluate_point(sw.Point("t", "spiking-mlp", {"T": 2}, samples=16))
    assert short["status"] == "ok" and short["cycles"] < base["cycles"] and short["energy_nj"] < base["energy_nj"]
    # top-k beyond the sequence length is refused by the WTA spec: a recorded error
    bad = sw.evaluate_point(sw.Point("t", "wta-causal", {"k": 33}, samples=2))
    assert bad["status"] == "error" and "k" in bad["error"]
    assert sw.evaluate_point(sw.Point("t", "spiking-mlp", {"k": 2}, samples=2))["status"] == "error"


def test_log_quantization_and_mismatch():
    w = torch.randint(-127, 128, (16, 24), generator=torch.Generator().manual_seed(3))
    for levels in (3, 5, 7):
        q = sw.log_quantize_weights(w, levels)
        mags = q.abs()[q != 0]
        assert bool(((mags & (mags - 1)) == 0).all())                       # powers of two
        assert len(torch.unique(mags)) <= levels
        assert torch.equal(torch.sign(q[q != 0]), torch.sign(w[q != 0]))
    # no mismatch: the effective grid is exactly W << F
    assert torch.equal(sw.mismatch_weights(w, 0.0, 0, 1, 0), w << sw.MISMATCH_FRAC)
    noisy = sw.mismatch_weights(w, 0.1, 0, 1, 0)
    rel = ((noisy - (w << sw.MISMATCH_FRAC)).double() / (w << sw.MISMATCH_FRAC).double().clamp(min=1))[w > 8]
    assert 0.05 < float(rel.std()) < 0.15                                    # about sigma
    assert not torch.equal(noisy, sw.mismatch_weights(w, 0.1, 0, 2, 0))      # the seed is the cells' key


def test_area_model_fit_and_exact_rows():
    rows = []
    for lanes, luts in ((1, 1100.0), (2, 1200.0), (4, 1400.0), (8, 1800.0)):      # 100 LUTs a lane + 1000
        rows.append({"model": "m", "lanes": lanes, "wta_lanes": 4, "target": "ice40", "status": "ok",
                     "source": "synthesis cache", "luts": luts, "ffs": 2 * luts, "bram": 4.0, "dsp": 3.0 * lanes,
                     "fmax_mhz": None})
    rows.append({"model": "m", "lanes": 8, "wta_lanes": 4, "target": "ecp5", "status": "ok",
                 "source": "synthesis.csv", "luts": 900.0, "ffs": 1800.0, "bram": 2.0, "dsp": 24.0, "fmax_mhz": 70.0})
    am = sw.AreaModel.fit(rows)
    assert am.loo_error["luts"] < 1e-9 and am.slopes[("ice40", "luts")] == pytest.approx(100.0)
    # carried to ECP5 in proportion to the P = 8 rows: 100 x 900 / 1800
    pred, source = am.predict("m", 4, 4, "ecp5")
    assert source == "area model" and pred["luts"] == pytest.approx(900.0 - 4 * 50.0)
    exact, source = am.predict("m", 8, 4, "ecp5")
    assert source == "synthesis.csv" and exact["luts"] == 900.0 and exact["fmax_mhz"] == 70.0


@pytest.mark.parametrize("argv, allowed", [
    (["sweep", "run", "nope"], "studies: wta-k"),
    (["sweep", "run", "custom", "--models", "spiking-mlp", "--set", "bogus=1"], "knobs: k, T, lanes"),
    (["sweep", "run", "custom", "--models", "nonsense", "--set", "lanes=4"], "sweep models: spiking-mlp"),
    (["sweep", "run", "custom", "--models", "spiking-mlp", "--set", "lanes=four"], "lanes takes int"),
    (["sweep", "run", "lanes", "--scheduler", "not an address"], "tcp://HOST:PORT"),
    (["sweep", "run", "lanes", "--scheduler", "tcp://127.0.0.1:1"], "cannot connect"),
])
def test_bad_input_one_line(argv, allowed, capsys, tmp_path):
    rc = cli.main(argv + ["--cache", str(tmp_path / "c"), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and allowed in err, err


def test_retrained_point_trains_once_then_reuses_its_checkpoint(tmp_path, monkeypatch):
    """A retrained point trains its checkpoint into <cache>/checkpoints (tiny budget: 1 epoch of the spiking
    MLP), is recorded as retrained with its training record, and a second evaluation trains nothing."""
    p = sw.Point("t", "spiking-mlp", {"T": 2}, samples=8, retrain=True, epochs=1)
    first = sw.evaluate_point(p, str(tmp_path))
    assert first["status"] == "ok", first.get("error")
    assert first["mode"] == "retrained" and first["train_epochs"] == 1 and first["train_seconds"] >= 0
    assert 0 <= first["train_metrics"]["test_accuracy"] <= 1 and 0 <= first["accuracy"] <= 1
    ckpts = list((tmp_path / "checkpoints").glob("spiking-mlp-*.pt"))
    assert len(ckpts) == 1
    assert torch.load(ckpts[0], weights_only=True)["config"]["time_steps"] == 2
    # the same point again: the cached checkpoint, no training
    import spikeforge.training as training

    monkeypatch.setattr(training, "train", lambda *a, **k: pytest.fail("retrained a cached checkpoint"))
    again = sw.evaluate_point(p, str(tmp_path))
    assert again["status"] == "ok" and again["accuracy"] == first["accuracy"] and again["cycles"] == first["cycles"]
    # an evaluate-only point of the same knobs is another computation (another cache key and mode)
    ev = sw.Point("t", "spiking-mlp", {"T": 2}, samples=8)
    assert ev.key("v") != p.key("v") and sw.evaluate_point(ev)["mode"] == "evaluated"


def test_retrained_studies_are_declared_and_reported():
    for name, model, knob in (("time-steps-retrained", "spiking-mlp", "T"), ("wta-k-retrained", "wta-causal", "k")):
        st = sw.get_study(name)
        pts = st.points()
        assert st.retrain and pts and all(p.retrain and p.retrained() and p.model == model for p in pts)
        assert 4 in [p.knobs[knob] for p in pts]           # the shipped value: the retrained reference
    # the report's finding from hand-made records: the smallest retrained k within 2 % of k = 16
    from spikeforge.codesign import wta_k_retrained_section

    def rec(k, acc, bpc, mode):
        return {"model": "wta-causal", "status": "ok", "k": k, "accuracy": acc, "bpc": bpc, "cycles": 100 + k,
                "energy_nj": 50.0 + k, "samples": 64, "mode": mode, "train_epochs": 4, "train_steps": 600,
                "train_seconds": 100.0, "train_metrics": {"val_bits_per_char": bpc}}
    rt = [rec(1, 0.30, 3.9, "retrained"), rec(2, 0.34, 3.66, "retrained"), rec(4, 0.35, 3.65, "retrained"),
          rec(16, 0.345, 3.64, "retrained")]
    ev = [rec(1, 0.31, 3.7, "evaluated"), rec(4, 0.35, 3.65, "evaluated"), rec(16, 0.32, 3.78, "evaluated")]
    text = "\n".join(wta_k_retrained_section(rt, ev))
    assert "is **k = 2**" in text and "600 steps" in text
    assert "k = 16 -0.140 / +0.0250" in text and "k = 4 +0.000 / +0.0000" in text
    assert "does not reproduce" in text           # made-up training metrics are not the shipped checkpoint's


def test_dead_zone_knob_silences_the_codes_around_the_mask_value():
    """d = 2 on Matterhorn: every code within 2 of the mask value M sends no spike, every other code
    exactly one (counted on the encoder's golden output for every code, by hand from the rule)."""
    from golden.mtts import mtts_encode, mtts_spikes
    from spikeforge.core import load_core_model

    cm = load_core_model("matterhorn", debug_taps=False)
    im = cm.int_model
    mt = im.mtts
    assert mt.mask and not mt.dead_zone
    m = mt.mask_value
    sw.apply_knobs(im, {**sw.DEFAULTS, "dead_zone": 2}, seed=1)
    assert im.mtts.dead_zone and (im.mtts.dead_lo, im.mtts.dead_hi) == (max(mt.lo, m - 2), min(mt.hi, m + 2))
    codes = torch.arange(mt.lo, mt.hi + 1).reshape(1, -1)
    # the single-spike train form: one spike at the code's time, none when silent
    spikes = mtts_spikes(im.mtts, mtts_encode(im.mtts, codes), train="single").sum(dim=0).reshape(-1)
    assert spikes.tolist() == [0 if abs(c - m) <= 2 else 1 for c in codes.reshape(-1).tolist()]
    # fewer spikes out of the encoder: fewer events, less energy; d = 0 is the shipped checkpoint
    d0 = sw.evaluate_point(sw.Point("t", "matterhorn", {"dead_zone": 0}, samples=8))
    d3 = sw.evaluate_point(sw.Point("t", "matterhorn", {"dead_zone": 3}, samples=8))
    assert d0["status"] == d3["status"] == "ok"
    assert d3["events"]["sops"] < d0["events"]["sops"] and d3["energy_nj"] < d0["energy_nj"]
    # bad input: one line naming what is wrong
    mlp = sw.evaluate_point(sw.Point("t", "spiking-mlp", {"dead_zone": 1}, samples=2))
    assert mlp["status"] == "error" and "only Matterhorn has an MTTS encoder" in mlp["error"]
    neg = sw.evaluate_point(sw.Point("t", "matterhorn", {"dead_zone": -1}, samples=2))
    assert neg["status"] == "error" and "must be >= 0" in neg["error"]
    other = sw.evaluate_point(sw.Point("t", "matterhorn", {"levels": 3}, samples=2))
    assert other["status"] == "error" and "not wired for matterhorn" in other["error"]


def test_dead_zone_section_finds_the_cheapest_zone_within_one_point():
    from spikeforge.codesign import dead_zone_section

    def rec(d, acc, energy, mode):
        return {"model": "matterhorn", "status": "ok", "dead_zone": d, "accuracy": acc, "energy_nj": energy,
                "cycles": 1000.0 - d, "samples": 256, "mode": mode, "train_epochs": 12,
                "train_metrics": {"test_accuracy": 0.5}}
    ev = [rec(0, 0.94, 100.0, "evaluated"), rec(1, 0.88, 96.0, "evaluated"), rec(2, 0.80, 93.0, "evaluated")]
    rt = [rec(0, 0.93, 100.0, "retrained"), rec(1, 0.925, 97.0, "retrained"), rec(2, 0.90, 94.0, "retrained")]
    text = "\n".join(dead_zone_section(ev, rt))
    assert "**evaluated**: no dead zone keeps" in text and "is **d = 0**" in text
    assert "**retrained**: the dead zone that minimises energy at <= 1 point of accuracy loss is **d = 1**" in text
    assert "3.0 % less energy" in text


def test_memory_sigma_knob_scales_the_log_memorys_gain_deviations():
    """memory_sigma on Matterhorn rebuilds the block linears' effective weights from the same codes with
    the gain sd changed: at 0 the gain term vanishes, w_eff = (q << 4) + do (the offset alone: the
    checkpoint's offset sd and seed), by the documented cell formula; other models refuse it."""
    from golden.logquant import log_decode, log_quantize
    from golden.mismatch import cell_deviation
    from spikeforge.core import resolve_checkpoint
    from spikeforge.training import load_checkpoint

    model, _ = load_checkpoint(resolve_checkpoint("matterhorn"))
    lw = model.weights
    assert lw.active and lw.gain_sigma > 0 and lw.offset_sigma > 0
    sw.apply_model_knobs(model, {"memory_sigma": 0.0})
    unit = model.blocks[0].q
    w = unit.quantize(8).weight.t()                                 # (in, out) cells
    q = log_decode(lw.quant_spec, log_quantize(lw.quant_spec, unit.linear.weight.detach().double()).codes).t()
    rows = torch.arange(q.shape[0]).reshape(-1, 1)
    cols = torch.arange(q.shape[1]).reshape(1, -1)
    _, do = cell_deviation(model.weights.mismatch_spec(unit.layer), rows, cols)
    assert torch.equal(w, (q << 4) + do)
    # one evaluated point, and the refusals: a model without a log memory, a sigma out of range
    lo = sw.evaluate_point(sw.Point("t", "matterhorn", {"memory_sigma": 0.05}, samples=8))
    assert lo["status"] == "ok" and lo["memory_sigma"] == 0.05
    bad = sw.evaluate_point(sw.Point("t", "spiking-mlp", {"memory_sigma": 0.05}, samples=2))
    assert bad["status"] == "error" and "only a Matterhorn checkpoint with log-quantized weights" in bad["error"]
    big = sw.evaluate_point(sw.Point("t", "matterhorn", {"memory_sigma": 0.5}, samples=2))
    assert big["status"] == "error" and "weight_gain_sigma must be in 0 .. 0.25" in big["error"]
    assert "memory-sigma" in sw.STUDIES and sw.STUDIES["memory-sigma-retrained"].retrain


def test_memory_sigma_section_finds_the_largest_sigma_within_one_point():
    from spikeforge.codesign import memory_sigma_section

    def rec(sg, acc, mode):
        return {"model": "matterhorn", "status": "ok", "memory_sigma": sg, "accuracy": acc, "samples": 256,
                "mode": mode, "train_metrics": {"test_accuracy": 0.9}, "energy_nj": 100.0, "cycles": 1000.0}
    ev = [rec(0.0, 0.93, "evaluated"), rec(0.05, 0.94, "evaluated"), rec(0.1, 0.935, "evaluated"),
          rec(0.2, 0.80, "evaluated")]
    rt = [rec(0.0, 0.95, "retrained"), rec(0.1, 0.945, "retrained"), rec(0.2, 0.90, "retrained")]
    text = "\n".join(memory_sigma_section(ev, rt))
    # the shipped checkpoint was trained against 0.05: within 1 point of its 0.94 up to 0.1
    assert "up to sigma = **0.1** (0.9350)" in text and "at 0.2: 0.8000" in text
    assert "best retrained point up to sigma = **0.1** (0.9450)" in text
    assert "| 0.2 | 0.8000 | 100.0 | 1,000 | 0.9000 | 0.9000 |" in text


def test_matterhorn_equal_size_vit_counts_by_hand():
    """The ANN Study 6 compares Matterhorn with: d = 32, 16 tokens, 1 block, MLP 2d, 2 heads, 10 classes.
    Weight MACs = stem 16 x 4 x 32 + 16 x (4 x 32^2 + 2 x 32 x 64) + head (4 x 32) x 10 = 2,048 + 131,072 +
    1,280; attention MACs = 2 x 16^2 x 32 = 16,384; parameters = 2,048 + 8,192 + 1,280."""
    from types import SimpleNamespace

    from spikeforge.codesign import ann_counts

    cm = SimpleNamespace(ckpt={"config": {"dim": 32, "blocks": 1, "heads": 2, "mlp_ratio": 2}},
                         spec=SimpleNamespace(lanes=8), program=SimpleNamespace(input_kind="pixels"))
    c = ann_counts(cm)
    assert c["weight_macs"] == 2048 + 131072 + 1280 and c["attn_macs"] == 16384
    assert c["params"] == 2048 + 8192 + 1280 and c["softmax_exps"] == 16 * 16 * 2


def test_lanes_section_without_any_area_says_so():
    from spikeforge.codesign import lanes_section

    rows = [{"model": "matterhorn", "status": "ok", "lanes": p, "cycles": 1000.0 / p, "utilisation": 0.5,
             "energy_nj": 10.0, "luts_ecp5": None, "ffs_ecp5": None, "bram_ecp5": None, "dsp_ecp5": None,
             "area_source": "no synthesis row and no area model"} for p in (1, 8)]
    text = "\n".join(lanes_section(rows, sw.AreaModel.fit([])))
    assert "no ECP5 area for it" in text and "cuts the cycles 8.0x" in text
