"""MTTS encoder: spec validation, hand-computed codes, an independent rational-arithmetic
implementation, the decoder round trip, the mask picker and the silence report, and the RTL
in Amaranth's simulator on the same vectors as the Verilator co-simulation."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
import torch

from golden.mtts import (MTTSCode, MTTSSpec, calibrate_mtts, mtts_code_from_spikes, mtts_decode, mtts_encode,
                         mtts_quantize, mtts_random_values, mtts_reference, mtts_spikes, pick_mask_value,
                         silence_report)
from golden.spec import SpecError


# ---- spec validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"input_width": 0}, "input_width = 0 is out of range"),
    ({"time_steps": 65}, "time_steps = 65 is out of range"),
    ({"lo": -200}, "lo = -200 is out of range"),
    ({"lo": 5, "hi": 4, "mask_value": 5}, "hi = 4 is out of range"),
    ({"mask_value": 300}, "mask_value = 300 is out of range"),
    ({"dead_zone": True, "dead_lo": 3, "dead_hi": 2}, "dead_hi = 2 is out of range"),
    ({"train": "burst"}, "choose one of step, single"),
    ({"emit": "bits"}, "choose one of code, spikes"),
    ({"signed": 1}, "must be true or false"),
    ({"signed": False, "lo": -1}, "lo = -1 is out of range"),
])
def test_spec_errors_name_the_field(changes, message):
    with pytest.raises(SpecError, match=message):
        MTTSSpec(**changes)


def test_spec_dict_round_trip():
    spec = MTTSSpec(time_steps=16, dead_zone=True, dead_lo=-3, dead_hi=2, train="single")
    assert MTTSSpec.from_dict(spec.to_dict()) == spec


def test_inputs_outside_the_width_are_refused():
    with pytest.raises(ValueError, match="outside the 8-bit signed range"):
        mtts_encode(MTTSSpec(), torch.tensor([128]))
    with pytest.raises(ValueError, match="integer tensor"):
        mtts_encode(MTTSSpec(), torch.tensor([0.5]))


# ---- known answers by hand ------------------------------------------------------------------------

def test_codes_by_hand():
    # W = 8 signed, T = 4, range [-8, 7] (R = 16): level = floor((xc + 8) * 4 / 16) = floor((xc + 8) / 4),
    # t = 3 - level; mask 0 -> silent.
    spec = MTTSSpec(time_steps=4, lo=-8, hi=7, mask_value=0)
    x = torch.tensor([7, 4, 3, 1, 0, -1, -4, -5, -8, 100, -100])
    # 7: 15/4=3 -> t0; 4: 12/4=3 -> t0; 3: 11/4=2 -> t1; 1: 9/4=2 -> t1; 0: silent; -1: 7/4=1 -> t2;
    # -4: 4/4=1 -> t2; -5: 3/4=0 -> t3; -8: 0 -> t3; 100 clamps to 7 -> t0; -100 clamps to -8 -> t3
    code = mtts_encode(spec, x)
    assert code.time.tolist() == [0, 0, 1, 1, 0, 2, 2, 3, 3, 0, 3]
    assert code.silent.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    # without the mask the silent code goes to lo = -8 (and -100, which clamps to it)
    plain = mtts_encode(spec.replace(mask=False), x)
    assert plain.silent.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    assert plain.time.tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 0, 0, 0]
    # dead zone [-1, 1] on top of the mask: -1 and 1 are silent as well
    dz = mtts_encode(spec.replace(dead_zone=True, dead_lo=-1, dead_hi=1), x)
    assert dz.silent.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    # decode: silent -> 0; level k -> -8 + ceil(16 k / 4) = -8 + 4 k: t0 -> 4, t1 -> 0, t2 -> -4, t3 -> -8
    assert mtts_decode(spec, code).tolist() == [4, 4, 0, 0, 0, -4, -4, -8, -8, 4, -8]


def test_spike_trains_by_hand():
    spec = MTTSSpec(time_steps=4, lo=-8, hi=7, mask_value=0)
    code = MTTSCode(torch.tensor([0, 2, 3, 0]), torch.tensor([0, 0, 0, 1]))
    step = mtts_spikes(spec, code, "step")      # (T, 4): 1 from t_first on, silence all zero
    assert step.t().tolist() == [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    single = mtts_spikes(spec, code, "single")  # one spike at t_first
    assert single.t().tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    for train in (step, single):
        back = mtts_code_from_spikes(spec, train)
        assert back.time.tolist() == code.time.tolist() and back.silent.tolist() == code.silent.tolist()


def test_unsigned_range_and_t_equal_one():
    spec = MTTSSpec(input_width=4, signed=False, time_steps=1, lo=0, hi=15, mask_value=5)
    code = mtts_encode(spec, torch.arange(16))
    assert code.time.tolist() == [0] * 16                       # T = 1: the only time is 0
    assert code.silent.tolist() == [int(v == 5) for v in range(16)]


# ---- an independent formulation: the seed's rule in exact rationals ---------------------------------

def seed_rule(spec: MTTSSpec, x: int) -> tuple[int, int]:
    """t_first = ceil((1 - x_norm) T) - 1 with x_norm = (xc - lo) / R, in Fractions; (time, silent)."""
    xc = min(max(x, spec.lo), spec.hi)
    silent_value = spec.mask_value if spec.mask else spec.lo
    silent = xc == silent_value or (spec.dead_zone and spec.dead_lo <= xc <= spec.dead_hi)
    if silent:
        return 0, 1
    x_norm = Fraction(xc - spec.lo, spec.hi - spec.lo + 1)
    return math.ceil((1 - x_norm) * spec.time_steps) - 1, 0


def random_spec(rng: random.Random) -> MTTSSpec:
    width = rng.randint(2, 12)
    signed = rng.random() < 0.5
    vmin, vmax = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    lo = rng.randint(vmin, vmax)
    hi = rng.randint(lo, vmax)
    dlo = rng.randint(lo, hi)
    return MTTSSpec(input_width=width, signed=signed, time_steps=rng.choice([1, 2, 3, 4, 7, 8, 16, 64]),
                    lo=lo, hi=hi, mask=rng.random() < 0.7, mask_value=rng.randint(lo, hi),
                    dead_zone=rng.random() < 0.5, dead_lo=dlo, dead_hi=rng.randint(dlo, hi))


@pytest.mark.parametrize("seed", range(12))
def test_encoder_matches_the_seed_rule_exhaustively(seed):
    spec = random_spec(random.Random(seed))
    x = torch.arange(spec.input_min, spec.input_max + 1)
    code = mtts_encode(spec, x)
    want = [seed_rule(spec, int(v)) for v in x]
    assert list(zip(code.time.tolist(), code.silent.tolist())) == want


@pytest.mark.parametrize("t", [1, 2, 3, 4, 5, 8, 13, 16, 64])
@pytest.mark.parametrize("r", [1, 2, 3, 7, 16, 100, 255, 256, 1000, 4096, 65536])
def test_reciprocal_replaces_the_divider(t, r):
    width = max(1, (r - 1).bit_length())
    spec = MTTSSpec(input_width=min(16, width + 1), signed=False, time_steps=t, lo=0, hi=r - 1, mask_value=0)
    m, f = spec.reciprocal
    for u in list(range(min(r, 3000))) + list(range(max(0, r - 3000), r)):  # python ints, both ends
        assert (u * m) >> f == (u * t) // r


# ---- decoder: masking alone loses nothing; the dead zone's loss is bounded --------------------------

def test_round_trip_is_exact_when_the_values_are_codes():
    # R = T = 16: each value is its own level, so the time code carries it exactly; the mask moves
    # the silent code to the most frequent value and nothing is lost.
    spec = MTTSSpec(input_width=5, signed=True, time_steps=16, lo=-8, hi=7, mask_value=3)
    x = torch.arange(-8, 8)
    assert mtts_decode(spec, mtts_encode(spec, x)).tolist() == x.tolist()
    assert mtts_decode(spec.replace(mask=False), mtts_encode(spec.replace(mask=False), x)).tolist() == x.tolist()


@pytest.mark.parametrize("seed", range(8))
def test_masking_alone_loses_no_information(seed):
    spec = random_spec(random.Random(100 + seed)).replace(dead_zone=False)
    x = torch.arange(spec.input_min, spec.input_max + 1)
    decoded = mtts_decode(spec, mtts_encode(spec, x))
    xc = torch.clamp(x, spec.lo, spec.hi)
    # the mask value comes back exactly, everything else as the time code alone represents it
    assert torch.equal(decoded, torch.where(xc == spec.mask_value if spec.mask else xc == spec.lo,
                                            xc, mtts_quantize(spec, x)))
    # and the code is a function of the spike train: decoding from spikes gives the same values
    for train in ("step", "single"):
        spikes = mtts_spikes(spec, mtts_encode(spec, x), train)
        assert torch.equal(mtts_decode(spec, mtts_code_from_spikes(spec, spikes)), decoded)


def test_dead_zone_loss_is_bounded_and_measured():
    spec = MTTSSpec(time_steps=16, lo=-128, hi=127, mask_value=2, dead_zone=True, dead_lo=-5, dead_hi=4)
    x = torch.arange(-128, 128)
    report = silence_report(spec, x)
    # by hand: dead zone values decode to 2; without the dead zone they decode to their level's low
    # end (R/T = 16 per level): -5..-1 -> -16, 0..4 -> 0 (2 itself -> 2), so the largest difference
    # is |2 - (-16)| = 18 and the bound max(|-5 - 2|, |4 - 2|) = 7 holds against the *true* values
    assert report["dead_zone_max_error"] == 18
    assert report["dead_zone_error_bound"] == 7
    dz = (x >= -5) & (x <= 4)
    true_err = (mtts_decode(spec, mtts_encode(spec, x)) - x).abs()
    assert int(true_err[dz].max()) <= 7
    assert report["silent_mask_dead_zone"] == 10 / 256 and report["silent_mask"] == 1 / 256
    assert report["silent_plain"] == 1 / 256


# ---- mask picker and silence report ----------------------------------------------------------------

def test_pick_mask_value_is_the_most_frequent_code():
    assert pick_mask_value(torch.tensor([5, 3, 3, -2, 5, 3, 9])) == 3
    assert pick_mask_value(torch.tensor([4, 1, 4, 1])) == 1  # tie: the smaller value
    with pytest.raises(ValueError, match="integer codes"):
        pick_mask_value(torch.tensor([0.5]))


def test_silence_report_by_hand():
    # 10 values: 0 occurs 5 times, -8 (the minimum) once; dead zone [-1, 1] adds 1 and -1 (3 values)
    x = torch.tensor([0, 0, 0, 0, 0, -8, 1, -1, 1, 7])
    spec = calibrate_mtts(x, input_width=8, time_steps=4, dead_zone_width=1)
    assert (spec.lo, spec.hi, spec.mask_value, spec.dead_lo, spec.dead_hi) == (-8, 7, 0, -1, 1)
    report = silence_report(spec, x)
    assert report["silent_plain"] == 0.1          # only -8 (the seed's TTFS silences the minimum)
    assert report["silent_mask"] == 0.5           # the five zeros
    assert report["silent_mask_dead_zone"] == 0.8  # plus 1, -1, 1
    assert report["mask_value"] == 0 and report["dead_zone"] == [-1, 1]


# ---- reference arrays -------------------------------------------------------------------------------

def test_reference_counter_and_shapes():
    spec = MTTSSpec(lanes=3, counter_width=3)
    values = mtts_random_values(spec, 50, seed=1)
    ref = mtts_reference(spec, values)
    assert ref["spikes"].shape == (50, 3, spec.time_steps)
    total = 0
    for i in range(50):  # a plain running count, wrapped at 2^3
        total += int(ref["silent"][i].sum())
        assert int(ref["count"][i]) == total % 8
    # the stimulus hits the extremes and the mask value
    flat = values.flatten().tolist()
    assert {-128, 127, 0} <= set(flat)
    assert 0.2 < flat.count(0) / len(flat) < 0.45


# ---- RTL in Amaranth's simulator: the same vectors as the Verilator co-simulation -------------------

from rtl.mtts import MTTSEncoder, mtts_expected_beats, mtts_input_beats, mtts_output_layout  # noqa: E402
from rtl.pysim import run_stream  # noqa: E402
from rtl.streams import pack  # noqa: E402
from sim.test_mtts import COSIM_SPECS, mtts_stream_from_vectors, write_mtts_vectors  # noqa: E402


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_rtl_amaranth_sim_bit_exact(name, tmp_path):
    spec, beats = COSIM_SPECS[name]
    spec, inputs, expected, total = mtts_stream_from_vectors(write_mtts_vectors(tmp_path, spec, beats, 7))
    run = run_stream(MTTSEncoder(spec), inputs, len(expected), seed=3, valid_prob=0.7, ready_prob=0.7)
    assert run.outputs == [pack(mtts_output_layout(spec), b) for b in expected]
    assert expected[-1]["count"] == total % (1 << spec.counter_width)


@pytest.mark.parametrize("spec", [MTTSSpec(lanes=4), MTTSSpec(lanes=1, emit="spikes", time_steps=16)])
def test_latency_and_throughput_match_the_docstring(spec):
    """Under no back-pressure: one beat accepted per cycle, each out LATENCY = 1 cycle later."""
    values = mtts_random_values(spec, 40, seed=0)
    expected = mtts_expected_beats(spec, mtts_reference(spec, values))
    run = run_stream(MTTSEncoder(spec), mtts_input_beats(spec, values), len(expected))
    assert run.accept_cycles == list(range(len(expected)))
    assert run.output_cycles == [c + MTTSEncoder.LATENCY for c in run.accept_cycles]
    assert run.outputs == [pack(mtts_output_layout(spec), b) for b in expected]


def test_silent_counter_port_holds_the_golden_total():
    """The counter output itself (not only the beat field) equals the golden count at the end."""
    from amaranth.sim import Simulator

    spec = MTTSSpec(lanes=3, counter_width=5, dead_zone=True, dead_lo=-4, dead_hi=4)
    values = mtts_random_values(spec, 30, seed=2)
    ref = mtts_reference(spec, values)
    dut = MTTSEncoder(spec)
    layout = dut.i_stream.payload.shape()
    seen = []

    async def bench(ctx):
        ctx.set(dut.o_stream.ready, 1)
        for row in values.tolist():
            ctx.set(dut.i_stream.payload.as_value(), pack(layout, {"value": row}))
            ctx.set(dut.i_stream.valid, 1)
            await ctx.tick()
        ctx.set(dut.i_stream.valid, 0)
        await ctx.tick()
        seen.append(ctx.get(dut.silent_count))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [int(ref["silent"].sum()) % 32]


def test_no_divider_in_the_verilog():
    from rtl.emit import to_verilog

    text = to_verilog(MTTSEncoder(COSIM_SPECS["code-T16-dz-wrap-P6"][0]), "mtts_encoder")
    assert " / " not in text and " % " not in text
    assert "module mtts_encoder(" in text and "silent_count" in text


# ---- command line ------------------------------------------------------------------------------------

def test_cli_writes_the_encoder_verilog_and_vectors(tmp_path):
    from golden.vectors import load_vectors
    from spikeforge.cli import main

    out = tmp_path / "mtts.v"
    assert main(["verilog", "mtts", "--time-steps", "16", "--emit", "spikes", "--dead-zone", "--dead-lo", "-3",
                 "--dead-hi", "3", "-o", str(out)]) == 0
    assert "module mtts_encoder(" in out.read_text()
    assert main(["vectors", "mtts", "--lanes", "2", "--beats", "10", "-o", str(tmp_path / "v")]) == 0
    assert load_vectors(tmp_path / "v", block="mtts")["spikes"].shape == (10, 2, 8)


def test_cli_bad_spec_is_one_line(capsys):
    from spikeforge.cli import main

    assert main(["verilog", "mtts", "--lo", "5", "-o", "x.v"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["spikeforge: error: MTTSSpec.mask_value = 0 is out of range; allowed: 5 .. 127"]


def test_rtl_amaranth_sim_trained_activations():
    """The trained Matterhorn's committed real activations, fast tier (same vectors as sim/)."""
    from sim.test_mtts import trained_activation_stream

    spec, inputs, expected, total = trained_activation_stream()
    run = run_stream(MTTSEncoder(spec), inputs, len(expected), seed=9, valid_prob=0.7, ready_prob=0.7)
    assert run.outputs == [pack(mtts_output_layout(spec), b) for b in expected]
    assert expected[-1]["count"] == total > 0


def test_with_dead_zone_centres_on_the_mask_value_and_clips_to_the_range():
    spec = MTTSSpec(input_width=4, signed=True, time_steps=4, lanes=2, lo=-8, hi=7, mask=True, mask_value=-7)
    # d = 3 around M = -7: [-10, -4] clipped to the code range -> [-8, -4]
    wide = spec.with_dead_zone(3)
    assert (wide.dead_zone, wide.dead_lo, wide.dead_hi, wide.mask_value) == (True, -8, -4, -7)
    # d = 0 is the mask alone
    assert spec.with_dead_zone(0).dead_zone is False
    # the codes it silences, by the rule: every code in [-8, -4] sends no spike
    codes = torch.arange(-8, 8).reshape(1, -1)
    silent = mtts_encode(wide, codes).silent.reshape(-1).tolist()
    assert silent == [int(c <= -4) for c in range(-8, 8)]
    with pytest.raises(SpecError, match="dead zone half width = -1 is out of range"):
        spec.with_dead_zone(-1)
