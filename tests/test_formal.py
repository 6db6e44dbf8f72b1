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
from sim.formal.lif import FormalLIFSpec, hazard_ignores_stage_b, hazard_stuck_at_zero, wrap_instead_of_saturate
from sim.formal.runner import pick_solver
from spikeforge.blocks import block_names
from spikeforge.cli import main

#: the datapath property of each block, and an output field whose bit 0 the mutation inverts
DATAPATH = {
    "sdsa": ("attention", ("out", 0)),
    "lif": ("saturate", ("membrane", 0)),
    "synapse": ("saturate", ("current", 0)),
    "mac": ("saturate", ("current", 0)),
    "topk": ("select", ("index", 0)),
    "wta": ("attention", ("out", 0)),
    "mtts": ("encode", ("time", 0)),
    "window": ("taps", ("taps", 0, 4)),
    "alif": ("saturate", ("membrane", 0)),
    "layernorm": ("normalise", ("y", 0)),
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


# ---- the LIF array without its interlock (the core's mode: `--config core`) ----------------------


def vcd_steps(path) -> list[dict]:
    """A counterexample trace (VCD from yosys-smtbmc) -> one {hierarchical name: int} per solver
    step (``top.dut.hazard``, ``top.env_i_valid``, ...), values carried over from earlier steps as
    VCD only lists changes; a new step starts where ``smt_step`` changes; x / z bits read as 0."""
    names, scope, steps = {}, [], []
    current: dict = {}
    header, _, body = path.read_text().partition("$enddefinitions")
    tokens = iter(header.split())
    for tok in tokens:
        if tok == "$scope":
            next(tokens)
            scope.append(next(tokens))
        elif tok == "$upscope":
            scope.pop()
        elif tok == "$var":
            next(tokens), next(tokens)                      # type, width
            ident, name = next(tokens), next(tokens)
            names.setdefault(ident, []).append(".".join([*scope, name]))
    tokens = iter(body.split()[1:])                         # past "$end"
    for tok in tokens:
        if tok[0] in "bB01xXzZ":
            bits, ident = (tok[1:], next(tokens)) if tok[0] in "bB" else (tok[0], tok[1:])
            value = int("".join("1" if c == "1" else "0" for c in bits), 2)
            for name in names.get(ident, []):
                if name == "smt_step":
                    current = dict(current)
                    steps.append(current)
                current[name] = value
    return steps


def core_spec():
    return resolve_spec(formal_block("lif"), "core")


def test_lif_core_config_builds_the_array_without_its_interlock():
    from amaranth.hdl import Fragment

    from rtl.lif import LIFArray

    fblock = formal_block("lif")
    spec = core_spec()
    assert spec.addressed and spec.runtime_params and spec.interlock is False and spec.groups == 2
    dut, default = fblock.component(spec), fblock.component(resolve_spec(fblock))
    for built in (dut, default):
        Fragment.get(built, None)              # elaborates (and marks it used)
    assert isinstance(dut, LIFArray) and dut.interlock is False and type(dut.spec).__name__ == "LIFSpec"
    assert default.interlock is True and not hasattr(default, "hazard")      # the default keeps it
    with pytest.raises(ValueError, match="LIFSpec.interlock must be true or false"):
        FormalLIFSpec(interlock=1)


def test_lif_core_mode_properties_hold(tmp_path):
    results = prove("lif", spec=core_spec(), jobs=2, use_cache=False, out_dir=tmp_path / "cex")
    assert [r.prop for r in results] == ["valid_held", "no_spurious", "bounded", "drains", "latency", "interval",
                                         "saturate", "hazard", "hazard_stall"]
    assert all(r.status == "PASS" for r in results), "\n".join(r.line() for r in results)
    assert not (tmp_path / "cex").exists()
    # the hazard properties only exist for the array without its interlock
    assert "hazard" not in [r.prop for r in prove("lif", properties=["latency"])]


def test_lif_hazard_stuck_at_zero_fails_the_hazard_properties(tmp_path):
    props = ["latency", "interval", "saturate", "hazard", "hazard_stall"]
    results = {r.prop: r for r in prove("lif", spec=core_spec(), properties=props, mutation=hazard_stuck_at_zero(),
                                        tag="stuck", out_dir=tmp_path)}
    # hazard touches no handshake: the timing still holds
    assert results["latency"].status == "PASS" and results["interval"].status == "PASS"
    # a beat of group g accepted in cycle 0 is in stage M in cycle 1, where group g is offered
    # again: hazard must be 1 there (no back-pressure yet, so the history form sees it in cycle 1,
    # the stall form one cycle later)
    assert results["hazard"].status == "FAIL" and results["hazard"].result.step == 1
    assert results["hazard_stall"].status == "FAIL" and results["hazard_stall"].result.step == 2
    steps = vcd_steps(results["hazard"].trace)
    at0, at1 = steps[0], steps[1]
    assert at0["top.h_accept"] == 1 and at1["top.env_i_valid"] == 1 and at1["top.dut.hazard"] == 0
    assert at1["top.dut.m_valid"] == 1
    assert at0["top.dut.i_stream__payload.group"] == at1["top.dut.i_stream__payload.group"]
    # and the no-hazard assumption, read from the lying output, no longer keeps stale reads out:
    # the second beat of group g (accepted in cycle 1, out in 1 + 4 = 5) reads v before the first wrote
    assert results["saturate"].status == "FAIL" and results["saturate"].result.step == 5


def test_lif_hazard_that_misses_a_stalled_stage_b_fails_hazard_stall_only(tmp_path):
    results = {r.prop: r for r in prove("lif", spec=core_spec(), properties=["hazard", "hazard_stall"],
                                        mutation=hazard_ignores_stage_b(), tag="no-b", out_dir=tmp_path)}
    # without back-pressure stage B writes on every edge: its compare never matters there
    assert results["hazard"].status == "PASS"
    # the earliest stalled B: beats accepted in cycles 0 and 1, the first in the output register
    # from cycle 4 and not read, so the second waits in B in cycle 4, where its group is offered:
    # hazard(4) must be 1, checked in cycle 5
    r = results["hazard_stall"]
    assert r.status == "FAIL" and r.result.step == 5 and r.trace == tmp_path / "lif-no-b-hazard_stall.vcd"
    at4 = vcd_steps(r.trace)[4]
    assert at4["top.dut.o_stream__valid"] == 1 and at4["top.env_o_ready"] == 0       # the output stalls
    assert at4["top.dut.b_valid"] == 1 and at4["top.env_i_valid"] == 1 and at4["top.dut.hazard"] == 0
    assert at4["top.dut.b_group"] == at4["top.dut.i_stream__payload.group"]
    assert at4["top.dut.m_valid"] == 0 and at4["top.dut.a_valid"] == 0      # only B holds a beat


def test_prove_command_runs_the_core_config(tmp_path, capsys):
    assert main(["prove", "lif", "--config", "core", "--property", "interval", "--property", "hazard",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "interlock=False" in out[0] and "addressed=True" in out[0]
    lines = [line for line in out if line.strip().startswith("lif ")]
    assert len(lines) == 2 and all(" PASS " in line for line in lines)
    assert main(["prove", "lif", "--config", "nope"]) == 2
    assert "core, core-multiply" in capsys.readouterr().err


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
    spec = resolve_spec(formal_block(block))
    claimed = {p.name for p in formal_block(block).properties() if p.induction and p.applies(spec)}
    proofs = [r for r in results if r.result.mode == "prove"]
    assert {r.prop for r in proofs} == claimed
    assert all(r.status == "PASS" for r in results), "\n".join(r.line() for r in results)


@pytest.mark.long
@pytest.mark.parametrize("config", ["core", "core-multiply"])
def test_lif_core_mode_k_induction(config, tmp_path):
    spec = resolve_spec(formal_block("lif"), config)
    results = prove("lif", spec=spec, induction=True, jobs=2, use_cache=False, out_dir=tmp_path)
    proofs = {r.prop for r in results if r.result.mode == "prove"}
    assert proofs == {"valid_held", "latency", "interval", "hazard"}
    assert all(r.status == "PASS" for r in results), "\n".join(r.line() for r in results)


@pytest.mark.long
def test_lif_core_multiply_mutations(tmp_path):
    # S = 4 (stage P): the hazard compare covers P, the stalled B is seen one cycle later, and
    # saturate reaches a neuron's second beat (accepted in cycle 4, out in 9)
    spec = resolve_spec(formal_block("lif"), "core-multiply")
    stuck = {r.prop: r for r in prove("lif", spec=spec, properties=["hazard", "hazard_stall"],
                                      mutation=hazard_stuck_at_zero(), out_dir=tmp_path)}
    assert stuck["hazard"].result.step == 1 and stuck["hazard_stall"].result.step == 2
    no_b = prove("lif", spec=spec, properties=["hazard_stall"], mutation=hazard_ignores_stage_b(), out_dir=tmp_path)
    assert no_b[0].status == "FAIL" and no_b[0].result.step == 6
    wrap = prove("lif", spec=spec, properties=["saturate"], mutation=wrap_instead_of_saturate(), out_dir=tmp_path)
    assert wrap[0].status == "FAIL" and wrap[0].result.step == 9
