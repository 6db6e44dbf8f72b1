"""Formal properties of every block (issue 15, part 3): ``sim/formal`` + ``spikeforge prove``.

Fast tier: every block's properties pass at their default BMC depths, and deliberately broken
blocks (a bit of the output flipped, a wrapping adder, a dropped beat, a valid glitch) fail the
property that should catch them, at the cycle a hand count gives, with a counterexample trace.
``--long``: the blocks' other formal configurations, deeper BMC, and k-induction.

Every run uses a fresh result cache (``SPIKEFORGE_FORMAL_CACHE`` in a temporary folder), so
each property is really proven here.
"""

from __future__ import annotations

import pytest

from sim.formal import formal_block, formal_names, prove, resolve_spec
from sim.formal.harness import drop_beat, flip_bit, valid_glitch
from sim.formal.lif import wrap_instead_of_saturate
from sim.formal.runner import pick_solver
from spikeforge.blocks import block_names
from spikeforge.cli import main

#: the datapath property of each block, and an output field whose bit 0 the mutation inverts
DATAPATH = {
    "lif": ("saturate", ("membrane", 0)),
    "synapse": ("saturate", ("current", 0)),
    "mac": ("saturate", ("current", 0)),
    "topk": ("select", ("index", 0)),
    "wta": ("attention", ("out", 0)),
    "mtts": ("encode", ("time", 0)),
    "window": ("taps", ("taps", 0, 4)),
    "alif": ("saturate", ("membrane", 0)),
}


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEFORGE_FORMAL_CACHE", str(tmp_path / "cache"))


def test_a_solver_is_installed():
    assert pick_solver() in ("yices", "z3")


def test_every_registered_block_has_properties():
    assert set(block_names()) <= set(formal_names())   # a new block brings its properties
    for name in formal_names():
        names = [p.name for p in formal_block(name).properties()]
        assert names[:4] == ["valid_held", "no_spurious", "bounded", "drains"]
        assert "latency" in names and DATAPATH[name][0] in names


@pytest.mark.parametrize("block", formal_names())
def test_every_property_holds(block, tmp_path):
    results = prove(block, jobs=2, use_cache=False, out_dir=tmp_path / "cex")
    assert [r.status for r in results] == ["PASS"] * len(results), "\n".join(r.line() for r in results)
    assert not (tmp_path / "cex").exists()          # no failure, no trace


@pytest.mark.parametrize("block", formal_names())
def test_a_flipped_output_bit_fails_the_datapath_property(block, tmp_path):
    prop, field = DATAPATH[block]
    results = prove(block, properties=[prop], mutation=flip_bit(field, 0), tag="flip", out_dir=tmp_path)
    assert [r.status for r in results] == ["FAIL"]
    trace = results[0].trace
    assert trace == tmp_path / f"{block}-flip-{prop}.vcd" and trace.stat().st_size > 0
    assert "$var" in trace.read_text()[:20000]


def test_lif_that_wraps_instead_of_saturating_fails_saturate_only(tmp_path):
    results = {r.prop: r for r in prove("lif", properties=["valid_held", "latency", "interval", "saturate"],
                                        mutation=wrap_instead_of_saturate(), tag="wrap", out_dir=tmp_path)}
    assert results["saturate"].status == "FAIL" and results["saturate"].trace.is_file()
    # the wrap is a datapath change only: the stream contract and the timing still hold
    assert all(r.status == "PASS" for name, r in results.items() if name != "saturate")
    # the earliest wrap: currents 15 on a neuron's first two beats (accepted in cycles 0 and 3,
    # G = 2 < S = 3) give 15 - 3 + 15 = 27 -> 15 saturated, -5 wrapped; its beat is out in 3 + 4 = 7
    assert results["saturate"].result.step == 7


def test_a_dropped_beat_fails_drains_and_latency_at_the_hand_counted_cycle(tmp_path):
    results = {r.prop: r for r in prove("lif", properties=["drains", "latency", "no_spurious"],
                                        mutation=drop_beat(1), tag="drop", out_dir=tmp_path)}
    assert results["no_spurious"].status == "PASS"         # a lost beat is not an extra one
    # beats accepted in cycles 0 and 1 (groups 0, 1) are due in cycles 4 and 5: beat 1 is missing in 5
    assert results["latency"].status == "FAIL" and results["latency"].result.step == 5
    assert results["drains"].status == "FAIL" and (tmp_path / "lif-drop-drains.vcd").is_file()


def test_valid_falling_during_a_stall_fails_valid_held(tmp_path):
    results = prove("lif", properties=["valid_held"], mutation=valid_glitch(), tag="glitch", out_dir=tmp_path)
    # accepted in cycle 0, valid in cycle 4, not taken: the glitch drops valid in cycle 5
    assert results[0].status == "FAIL" and results[0].result.step == 5
    assert (tmp_path / "lif-glitch-valid_held.vcd").is_file()


def test_prove_command_prints_one_line_per_property(tmp_path, capsys):
    assert main(["prove", "mtts", "--out", str(tmp_path), "--property", "latency", "--property", "encode"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if line.strip().startswith("mtts ")]
    assert len(lines) == 2 and all(" PASS " in line and "bmc depth 10" in line for line in lines)
    assert out[-1].startswith("PASS")


def test_prove_command_applies_set_overrides(tmp_path, capsys):
    assert main(["prove", "lif", "--set", "input_width=4", "--property", "latency", "--depth", "3",
                 "--out", str(tmp_path)]) == 0
    assert "input_width=4" in capsys.readouterr().out


def test_prove_command_reports_a_failure_and_writes_its_trace(tmp_path, capsys, monkeypatch):
    import functools

    import sim.formal

    broken = functools.partial(sim.formal.prove, mutation=flip_bit(("count",), 0))
    monkeypatch.setattr(sim.formal, "prove", broken)
    assert main(["prove", "mtts", "--property", "encode", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if " encode " in line)
    assert " FAIL " in line and str(tmp_path / "mtts-encode.vcd") in line
    assert (tmp_path / "mtts-encode.vcd").is_file() and out.splitlines()[-1].startswith("FAIL")


# ---- long tier -----------------------------------------------------------------------------------


def _configs():
    return [(b, c) for b in formal_names() for c in formal_block(b).configs]


@pytest.mark.long
@pytest.mark.parametrize("block, config", _configs(), ids=[f"{b}-{c}" for b, c in _configs()])
def test_every_formal_config_holds(block, config, tmp_path):
    spec = resolve_spec(formal_block(block), config)
    results = prove(block, spec=spec, jobs=2, use_cache=False, out_dir=tmp_path)
    assert all(r.status == "PASS" for r in results), "\n".join(r.line() for r in results)


@pytest.mark.long
@pytest.mark.parametrize("block", formal_names())
def test_k_induction_closes_where_it_is_claimed(block, tmp_path):
    results = prove(block, induction=True, jobs=2, use_cache=False, out_dir=tmp_path)
    claimed = {p.name for p in formal_block(block).properties() if p.induction}
    proofs = [r for r in results if r.result.mode == "prove"]
    assert {r.prop for r in proofs} == claimed
    assert all(r.status == "PASS" for r in results), "\n".join(r.line() for r in results)
