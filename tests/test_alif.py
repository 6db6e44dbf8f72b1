"""ALIF array (``rtl.alif.ALIFArray``): spec validation, a hand-computed run, a plain-Python
recurrence, the beat-level golden against ``alif_run``, the RTL in Amaranth's simulator on random
vectors under random valid/ready stalls (several specs: N = P, N > P, saturation both ways,
adaptation saturating, spread parameters, noise on and off, 40-bit widths), parameter WRITEs,
latency and throughput and the stall rule to the cycle, bad beats."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch

from golden import fixed
from golden.alif import (UPDATE, WRITE, ALIFSpec, alif_beat_reference, alif_beats_from_arrays, alif_normalize_beats,
                         alif_random_inputs, alif_random_params, alif_reference, alif_run, alif_run_beats)
from golden.spec import SpecError
from golden.vectors import VectorSet
from rtl.alif import (ALIFArray, alif_beat_stream, alif_expected_beats, alif_input_beats, alif_input_layout,
                      alif_output_layout, alif_stream_from_vectors)
from rtl.pysim import run_stream
from rtl.streams import pack, unpack
from sim.test_alif import (ADDRESSED_SPECS, COSIM_SPECS, addressed_stream, alif_stream_from_directory,
                           write_alif_beat_vectors, write_alif_vectors)


def packed(spec, beats):
    layout = alif_output_layout(spec)
    return [pack(layout, b) for b in beats]


# ---- spec validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("lanes", 0, "ALIFSpec.lanes = 0 is out of range; allowed: 1 .. 256"),
    ("lanes", 3, "ALIFSpec.n_neurons = 16 must be a multiple of ALIFSpec.lanes = 3"),
    ("noise_width", 41, "ALIFSpec.noise_width = 41 is out of range; allowed: 0 .. 40"),
    ("noise_width", -1, "ALIFSpec.noise_width = -1 is out of range; allowed: 0 .. 40"),
    ("noise_width", 2.0, "ALIFSpec.noise_width must be an integer, got 2.0"),
    ("emit_membrane", 1, "ALIFSpec.emit_membrane must be true or false, got 1"),
    ("emit_adaptation", "no", "ALIFSpec.emit_adaptation must be true or false, got 'no'"),
    ("addressed", None, "ALIFSpec.addressed must be true or false, got None"),
    ("membrane_width", 3, "ALIFSpec.membrane_width = 3 is out of range; allowed: 4 .. 40"),
    ("adapt_increment", 1 << 24, "ALIFSpec.adapt_increment = 16777216 is out of range; allowed: 0 .. 16777215"),
])
def test_spec_errors_name_the_field_and_the_range(field, value, message):
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        ALIFSpec(**{field: value})
    assert "\n" not in str(info.value)


def test_hardware_fields_default_so_earlier_specs_still_load():
    # what quantize_alif builds (no lanes: any N), and a manifest written before the fields existed
    spec = ALIFSpec(n_neurons=10, membrane_width=32, input_width=32, adapt_width=32)
    assert (spec.lanes, spec.groups, spec.addressed) == (1, 10, False)
    old = {k: v for k, v in ALIFSpec().to_dict().items()
           if k not in ("lanes", "noise_width", "emit_membrane", "emit_adaptation", "addressed")}
    assert ALIFSpec.from_dict(old) == ALIFSpec()
    spec = ALIFSpec(n_neurons=12, lanes=4, noise_width=0, addressed=True)
    assert ALIFSpec.from_dict(spec.to_dict()) == spec
    assert spec.param_widths == {"theta": 23, "beta": 9}
    assert spec.drive_width == 24 and ALIFSpec(input_width=10, noise_width=12).drive_width == 13
    assert (spec.pipeline_stages, spec.latency) == (4, 5)


def test_layouts_follow_the_spec():
    spec = ALIFSpec(n_neurons=12, lanes=3, membrane_width=10, input_width=7, noise_width=5, leak_frac_bits=6,
                    adapt_width=9)
    inp = dict(alif_input_layout(spec).members)
    assert {k: (inp[k].elem_shape.width, inp[k].length) for k in ("current", "noise", "theta", "beta")} == \
        {"current": (7, 3), "noise": (5, 3), "theta": (9, 3), "beta": (7, 3)}
    assert inp["group"] == range(4) and set(inp) == {"kind", "first", "group", "current", "noise", "theta", "beta"}
    out = dict(alif_output_layout(spec).members)
    assert set(out) == {"spikes", "membrane", "adaptation"} and out["adaptation"].elem_shape.width == 9
    bare = spec.replace(noise_width=0, emit_membrane=False, emit_adaptation=False)
    assert "noise" not in dict(alif_input_layout(bare).members)
    assert set(dict(alif_output_layout(bare).members)) == {"spikes"}


# ---- known answers worked out by hand ------------------------------------------------------------

# Two neurons, one group of two lanes: Wv = 8 (-128 .. 127), Wi = 8, We = 6 (-32 .. 31), F = 4,
# k = 1 (a - (a >> 1)), delta = 20, Wa = 5 (0 .. 31).
HAND_SPEC = ALIFSpec(n_neurons=2, lanes=2, membrane_width=8, input_width=8, noise_width=6, leak_frac_bits=4,
                     adapt_shift=1, adapt_increment=20, adapt_width=5)
HAND_THETA, HAND_BETA = [30, 120], [12, 16]          # lane 0: beta = 12/16 = 0.75; lane 1: no leak
HAND_CURRENTS = [[20, 127], [20, 127], [40, 0], [60, 0], [127, -100], [-128, -100], [-128, 127], [0, 127]]
HAND_NOISE = [[5, 0], [-3, 31], [10, 0], [12, 0], [31, 0], [-32, -32], [-32, 31], [1, 31]]
# lane 0 (theta_n 30, b 12):
#  t0 h = 0 + 20 + 5 = 25 < 30 + 0                              v 25   a 0
#  t1 (25*12)>>4 = 300>>4 = 18; h = 18 + 17 = 35 >= 30: spike   v 5    a 0 - 0 + 20 = 20
#  t2 (5*12)>>4 = 3; h = 3 + 50 = 53 >= 30 + 20: spike          v 3    a 20 - 10 + 20 = 30
#  t3 (3*12)>>4 = 2; h = 2 + 72 = 74 >= 60: spike               v 14   a 30 - 15 + 20 = 35 -> sat 31
#  t4 (14*12)>>4 = 10; 10 + 158 = 168 -> sat 127 >= 61: spike   v 66   a 31 - 15 + 20 = 36 -> 31
#  t5 (66*12)>>4 = 792>>4 = 49; h = 49 - 160 = -111 < 61        v -111 a 31 - 15 = 16
#  t6 (-111*12)>>4 = floor(-83.25) = -84; -84 - 160 -> sat -128 v -128 a 16 - 8 = 8
#  t7 (-128*12)>>4 = -96; h = -96 + 1 = -95                      v -95  a 8 - 4 = 4
# lane 1 (theta_n 120, b 16 = no leak):
#  t0 h = 127 >= 120: spike                                     v 7    a 20
#  t1 7 + 158 = 165 -> sat 127 < 120 + 20 = 140 (though 165 >= 140): no spike   v 127  a 20 - 10 = 10
#  t2 h = 127 < 130                                             v 127  a 5
#  t3 h = 127 >= 125: spike                                     v 2    a 5 - 2 + 20 = 23
#  t4 h = 2 - 100 = -98 < 143                                   v -98  a 23 - 11 = 12
#  t5 -98 - 132 = -230 -> sat -128                              v -128 a 12 - 6 = 6
#  t6 h = -128 + 158 = 30 < 126                                 v 30   a 6 - 3 = 3
#  t7 30 + 158 = 188 -> sat 127 >= 123: spike                   v 4    a 3 - 1 + 20 = 22
HAND_SPIKES = [[0, 1], [1, 0], [1, 0], [1, 1], [1, 0], [0, 0], [0, 0], [0, 1]]
HAND_MEMBRANE = [[25, 7], [5, 127], [3, 127], [14, 2], [66, -98], [-111, -128], [-128, 30], [-95, 4]]
HAND_ADAPT = [[0, 20], [20, 10], [30, 5], [31, 23], [31, 12], [16, 6], [8, 3], [4, 22]]


def test_by_hand_golden_beats_and_rtl():
    theta, beta = torch.tensor(HAND_THETA), torch.tensor(HAND_BETA)
    currents, noise = torch.tensor([HAND_CURRENTS]), torch.tensor([HAND_NOISE])   # (S = 1, T = 8, N = 2)
    trace = alif_run(HAND_SPEC, theta, beta, currents[0], noise[0])
    assert (trace.spikes.tolist(), trace.membrane.tolist(), trace.adaptation.tolist()) == \
        (HAND_SPIKES, HAND_MEMBRANE, HAND_ADAPT)
    beats = alif_input_beats(HAND_SPEC, currents, noise, theta, beta)
    assert [b["kind"] for b in beats] == [WRITE] + [UPDATE] * 8
    beat_trace = alif_run_beats(HAND_SPEC, beats)
    assert beat_trace.membrane.tolist() == HAND_MEMBRANE and beat_trace.adaptation.tolist() == HAND_ADAPT
    layout = alif_output_layout(HAND_SPEC)
    for seed in range(3):
        run = run_stream(ALIFArray(HAND_SPEC), beats, 8, seed=seed, valid_prob=0.5, ready_prob=0.5)
        assert [unpack(layout, w) for w in run.outputs] == [
            {"spikes": s[0] + 2 * s[1], "membrane": v, "adaptation": a}
            for s, v, a in zip(HAND_SPIKES, HAND_MEMBRANE, HAND_ADAPT)]


def test_drive_is_not_clipped_before_the_sum():
    # Wv = Wi = We = 8, no leak (b = 2^F), theta 127 + a, delta 0: t0 h = -100 (no spike);
    # t1 h = sat(-100 + (100 + 100)) = 100, not -100 + 127 = 27 (i + e clipped first); t2 -28 + 100 = 72
    spec = ALIFSpec(n_neurons=1, membrane_width=8, input_width=8, noise_width=8, leak_frac_bits=4,
                    adapt_increment=0)
    theta, beta = torch.tensor([127]), torch.tensor([16])
    currents, noise = torch.tensor([[[-100], [100], [-28]]]), torch.tensor([[[0], [100], [0]]])
    assert alif_run(spec, theta, beta, currents[0], noise[0]).membrane[:, 0].tolist() == [-100, 100, 72]
    run = run_stream(ALIFArray(spec), alif_input_beats(spec, currents, noise, theta, beta), 3)
    assert [unpack(alif_output_layout(spec), w)["membrane"] for w in run.outputs] == [[-100], [100], [72]]


# ---- an independent formulation: one neuron at a time in Python ints, with corner flags ---------

def textbook_alif(spec, theta, b, currents, noise, increments=None):
    """The docstring's recurrence in plain ints; also counts the corners the stimulus reached.
    ``increments``: delta of each step (a run-time increment), else ``spec.adapt_increment``."""
    lo, hi = -(2 ** (spec.membrane_width - 1)), 2 ** (spec.membrane_width - 1) - 1
    a_max = 2 ** spec.adapt_width - 1
    v = a = 0
    out, corners = [], set()
    for step, (i, e) in enumerate(zip(currents, noise)):
        delta = spec.adapt_increment if increments is None else increments[step]
        total = (v * b) // 2 ** spec.leak_frac_bits + i + e
        h = min(max(total, lo), hi)
        thr = theta + a
        fired = h >= thr
        corners |= {name for name, hit in (("positive saturation", total > hi), ("negative saturation", total < lo),
                                           ("spike after saturation", total > hi and fired),
                                           ("threshold above the range", total > hi and thr > hi),
                                           ("adaptation saturates", a - a // 2 ** spec.adapt_shift
                                            + delta > a_max and fired)) if hit}
        v = h - thr if fired else h
        a = min(a_max, a - a // 2 ** spec.adapt_shift + (delta if fired else 0))
        out.append((int(fired), v, a))
    return out, corners


ALL_CORNERS = {"positive saturation", "negative saturation", "spike after saturation", "threshold above the range",
               "adaptation saturates"}

# name -> (spec, sequences, steps, parameter spread, corners the stimulus must reach)
RTL_SPECS = {
    "N=P-G1": (ALIFSpec(n_neurons=4, lanes=4), 3, 16, 0.5, set()),
    "N>P-G8": (ALIFSpec(n_neurons=32, lanes=4), 2, 12, 0.5, set()),
    "narrow-G3": (ALIFSpec(n_neurons=6, lanes=2, membrane_width=6, input_width=6, noise_width=4, leak_frac_bits=3,
                           adapt_shift=2, adapt_increment=20, adapt_width=5), 8, 40, 0.5, ALL_CORNERS),
    "adapt-sat-G2": (ALIFSpec(n_neurons=8, lanes=4, membrane_width=10, input_width=10, noise_width=5,
                              adapt_shift=3, adapt_increment=15, adapt_width=4), 4, 30, 0.9,
                     {"adaptation saturates", "positive saturation", "negative saturation"}),
    "wide-40bit": (ALIFSpec(n_neurons=4, lanes=2, membrane_width=40, input_width=40, noise_width=40,
                            leak_frac_bits=16, adapt_shift=5, adapt_increment=(1 << 38) - 1, adapt_width=40),
                   2, 20, 0.9, {"positive saturation", "negative saturation"}),
    "no-noise-no-state-out": (ALIFSpec(n_neurons=12, lanes=3, noise_width=0, emit_membrane=False,
                                       emit_adaptation=False), 2, 12, 0.9, set()),
}


@pytest.mark.parametrize("name", sorted(RTL_SPECS))
def test_golden_equals_textbook_and_rtl_under_random_stalls(name):
    spec, sequences, steps, spread, corners = RTL_SPECS[name]
    seed = sorted(RTL_SPECS).index(name)
    theta, beta = alif_random_params(spec, seed, spread=spread)
    currents, noise = alif_random_inputs(spec, sequences, steps, seed=seed)
    ref = alif_reference(spec, theta, beta, currents, noise)
    reached = set()
    for s in range(sequences):
        for n in range(spec.n_neurons):
            want, hit = textbook_alif(spec, int(theta[n]), int(beta[n]), currents[s, :, n].tolist(),
                                      noise[s, :, n].tolist())
            reached |= hit
            got = zip(ref["spikes"][s, :, n].tolist(), ref["membrane"][s, :, n].tolist(),
                      ref["adaptation"][s, :, n].tolist())
            assert list(got) == want
    assert corners <= reached, f"stimulus missed {corners - reached}"
    assert 0 < int(ref["spikes"].sum()) < ref["spikes"].numel()
    beats = alif_input_beats(spec, currents, noise if spec.noise_width else None, theta, beta)
    expected = alif_expected_beats(spec, ref["spikes"], ref["membrane"], ref["adaptation"])
    run = run_stream(ALIFArray(spec), beats, len(expected), seed=seed, valid_prob=0.6, ready_prob=0.6)
    assert run.outputs == packed(spec, expected)


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_rtl_amaranth_sim_on_the_cosim_vector_files(name, tmp_path):
    """The Verilator test's configurations, smaller, through the same vector files and loader."""
    spec, _, steps = COSIM_SPECS[name]
    spec, beats, expected = alif_stream_from_directory(write_alif_vectors(tmp_path, spec, 2, min(steps, 12), 11))
    assert [b["kind"] for b in beats[:spec.groups + 1]] == [WRITE] * spec.groups + [UPDATE]
    run = run_stream(ALIFArray(spec), beats, len(expected), seed=5, valid_prob=0.7, ready_prob=0.7)
    assert run.outputs == packed(spec, expected)


def test_init_values_from_the_constructor_equal_loading_by_write_beats():
    spec = ALIFSpec(n_neurons=8, lanes=2, membrane_width=12, input_width=10, noise_width=6)
    theta, beta = alif_random_params(spec, 4)
    currents, noise = alif_random_inputs(spec, 2, 10, seed=4)
    ref = alif_reference(spec, theta, beta, currents, noise)
    expected = packed(spec, alif_expected_beats(spec, ref["spikes"], ref["membrane"], ref["adaptation"]))
    updates = alif_input_beats(spec, currents, noise)                   # no WRITE beats
    run = run_stream(ALIFArray(spec, theta, beta), updates, len(expected), seed=1, valid_prob=0.7, ready_prob=0.7)
    assert run.outputs == expected
    with pytest.raises(ValueError, match=re.escape("ALIF theta must be an integer tensor of shape (8,)")):
        ALIFArray(spec, theta[:4], beta)                # refused before the component exists


# ---- the beat level: cyclic order is alif_run; any order, WRITEs anywhere -----------------------

def test_beats_in_cyclic_order_are_alif_run():
    for spec in (RTL_SPECS["narrow-G3"][0], RTL_SPECS["N>P-G8"][0]):
        theta, beta = alif_random_params(spec, 2)
        currents, noise = alif_random_inputs(spec, 3, 9, seed=2)
        ref = alif_reference(spec, theta, beta, currents, noise)
        _, expected = alif_beat_stream(spec, alif_input_beats(spec, currents, noise, theta, beta))
        assert expected == alif_expected_beats(spec, ref["spikes"], ref["membrane"], ref["adaptation"])
        # group-major order on an addressed array: each group's steps in order, the same answers
        addressed = spec.replace(addressed=True)
        beats = alif_input_beats(addressed, currents, noise, theta, beta)
        order = sorted(range(len(beats)), key=lambda k: (beats[k]["kind"] == UPDATE, beats[k]["group"]))
        trace = alif_run_beats(addressed, [beats[k] for k in order])
        by_group = [k for k in order if beats[k]["kind"] == UPDATE]
        cyclic = alif_run_beats(addressed, beats)
        first_update = spec.groups
        for row, k in enumerate(by_group):
            assert trace.membrane[row].tolist() == cyclic.membrane[k - first_update].tolist()
            assert trace.adaptation[row].tolist() == cyclic.adaptation[k - first_update].tolist()


def mixed_stream(spec: ALIFSpec, rng: random.Random, n: int, write_prob: float = 0.1) -> list[dict]:
    """Random updates (addressed: random groups, often repeated) and WRITEs of any group."""
    lanes, wv = spec.lanes, spec.membrane_width
    theta_max = fixed.int_max(wv, True)
    i_lo, i_hi = fixed.int_min(spec.input_width, True), fixed.int_max(spec.input_width, True)
    beats, updates = [], 0
    for g in range(spec.groups):   # every group loaded before its first update
        beats.append({"kind": WRITE, "group": g, "theta": [rng.randint(1, theta_max // 3) for _ in range(lanes)],
                      "beta": [rng.randint(0, 1 << spec.leak_frac_bits) for _ in range(lanes)]})
    while updates < n:
        if rng.random() < write_prob:
            beats.append({"kind": WRITE, "group": rng.randrange(spec.groups),
                          "theta": [rng.choice([1, theta_max, rng.randint(1, theta_max // 3)]) for _ in range(lanes)],
                          "beta": [rng.choice([0, 1 << spec.leak_frac_bits, rng.randint(0, 1 << spec.leak_frac_bits)])
                                   for _ in range(lanes)]})
            continue
        g = rng.choice([rng.randrange(spec.groups), beats[-1]["group"]]) if spec.addressed else updates % spec.groups
        beat = {"kind": UPDATE, "group": g, "first": int(rng.random() < 0.05),
                "current": [rng.choice([i_lo, i_hi, rng.randint(i_lo // 4, i_hi // 2)]) for _ in range(lanes)]}
        if spec.noise_width:
            n_lo, n_hi = fixed.int_min(spec.noise_width, True), fixed.int_max(spec.noise_width, True)
            beat["noise"] = [rng.randint(n_lo, n_hi) for _ in range(lanes)]
        beats.append(beat)
        updates += 1
    return beats


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_neurons, lanes, addressed", [(4, 4, False), (8, 4, True), (12, 4, True), (24, 4, True),
                                                        (24, 4, False)])
def test_writes_anywhere_and_any_group_order_under_random_stalls(n_neurons, lanes, addressed, seed):
    """G = 1, 2, 3, 6: parameter WRITEs between updates (often right before an update of the same
    group, which must see them), random group orders, random valid and ready gaps."""
    rng = random.Random(seed)
    spec = ALIFSpec(n_neurons=n_neurons, lanes=lanes, membrane_width=10, input_width=9, noise_width=rng.choice([0, 6]),
                    leak_frac_bits=5, adapt_shift=2, adapt_increment=60, adapt_width=8, addressed=addressed)
    beats = mixed_stream(spec, rng, 120)
    inputs, expected = alif_beat_stream(spec, beats)
    assert len(expected) == 120
    run = run_stream(ALIFArray(spec), inputs, len(expected), seed=seed, valid_prob=rng.choice([0.5, 0.9]),
                     ready_prob=rng.choice([0.5, 0.9]))
    assert run.outputs == packed(spec, expected)
    # the WRITEs matter: the same updates with only the first parameters give other answers
    first_only = [b for k, b in enumerate(beats) if b["kind"] == UPDATE or k < spec.groups]
    assert alif_beat_stream(spec, first_only)[1] != expected


@pytest.mark.parametrize("seed", range(2))
def test_runtime_increment_per_beat_under_random_stalls(seed):
    """runtime_increment: each update's own delta (as the core sends each layer's), checked against the
    textbook recurrence per neuron and in the RTL under random stalls, in any group order."""
    rng = random.Random(seed)
    spec = ALIFSpec(n_neurons=8, lanes=4, membrane_width=10, input_width=9, noise_width=6, leak_frac_bits=5,
                    adapt_shift=2, adapt_increment=0, adapt_width=8, addressed=True, runtime_increment=True)
    assert "increment" in alif_input_layout(spec).members
    beats = mixed_stream(spec, rng, 100, write_prob=0)
    for b in beats:
        if b["kind"] == UPDATE:
            b["increment"] = rng.choice([0, 1, 60, 255])
    inputs, expected = alif_beat_stream(spec, beats)
    run = run_stream(ALIFArray(spec), inputs, len(expected), seed=seed, valid_prob=0.6, ready_prob=0.6)
    assert run.outputs == packed(spec, expected)
    # independent: neuron (group g, lane q) in plain ints, over its own updates, with their deltas
    theta = {b["group"]: b["theta"] for b in beats if b["kind"] == WRITE}
    beta = {b["group"]: b["beta"] for b in beats if b["kind"] == WRITE}
    updates = [b for b in beats if b["kind"] == UPDATE]
    for g in range(spec.groups):
        mine = [(u, b) for u, b in enumerate(updates) if b["group"] == g]
        start = max([k for k, (_, b) in enumerate(mine) if b["first"]] or [0])   # the last restart
        tail = mine[start:]
        for q in range(spec.lanes):
            want, _ = textbook_alif(spec, theta[g][q], beta[g][q], [b["current"][q] for _, b in tail],
                                    [b["noise"][q] for _, b in tail], [b["increment"] for _, b in tail])
            got = [(expected[u]["spikes"] >> q & 1, expected[u]["membrane"][q], expected[u]["adaptation"][q])
                   for u, _ in tail]
            assert got == want
    # the increments matter: the same stream with every delta 60 gives other adaptations
    same = [dict(b, increment=60) if b["kind"] == UPDATE else b for b in beats]
    assert alif_beat_stream(spec, same)[1] != expected
    with pytest.raises(ValueError, match="needs 'increment'"):
        alif_normalize_beats(spec, [{"group": 0, "first": 1, "current": [0] * 4, "noise": [0] * 4}])
    with pytest.raises(ValueError, match="increment = 256 is out of range; allowed: 0 .. 255"):
        alif_normalize_beats(spec, [{"group": 0, "first": 1, "current": [0] * 4, "noise": [0] * 4,
                                     "increment": 256}])
    with pytest.raises(ValueError, match="no runtime_increment"):
        alif_normalize_beats(spec.replace(runtime_increment=False),
                             [{"group": 0, "first": 1, "current": [0] * 4, "noise": [0] * 4, "increment": 3}])


# ---- latency, throughput, the stall rule ---------------------------------------------------------

@pytest.mark.parametrize("n_neurons, gaps", [(2, (4,)), (4, (1, 3)), (6, (1, 1, 2)), (8, (1,)), (16, (1,))])
def test_latency_and_throughput_match_the_docstring(n_neurons, gaps):
    """No back-pressure: the G WRITEs take a cycle each, then updates with the docstring's gaps
    (G = 1, 2, 3: G beats every 4 cycles; G >= 4: one a cycle), each out 5 cycles later."""
    spec = ALIFSpec(n_neurons=n_neurons, lanes=2, membrane_width=12, input_width=10, noise_width=4)
    theta, beta = alif_random_params(spec, 0)
    currents, noise = alif_random_inputs(spec, 2, 6, seed=0)
    ref = alif_reference(spec, theta, beta, currents, noise)
    beats = alif_input_beats(spec, currents, noise, theta, beta)
    expected = alif_expected_beats(spec, ref["spikes"], ref["membrane"], ref["adaptation"])
    run = run_stream(ALIFArray(spec), beats, len(expected))
    assert ALIFArray.accept_gaps(spec) == gaps and ALIFArray.latency(spec) == 5
    want = list(range(spec.groups + 1))                 # G WRITEs, then the first update
    while len(want) < len(beats):
        k = len(want) - spec.groups - 1                 # updates accepted so far, minus one
        want.append(want[-1] + gaps[k % len(gaps)])
    assert run.accept_cycles == want == ALIFArray.accept_cycles(spec, beats)
    assert run.output_cycles == [c + 5 for c in want[spec.groups:]]
    assert run.outputs == packed(spec, expected)


@pytest.mark.parametrize("seed", range(4))
def test_addressed_stall_rule_to_the_cycle(seed):
    """Input always valid, output always ready: beat k is accepted in cycle t_(k-1) + 1 (WRITE) or
    max(t_(k-1) + 1, t_j + 4) (update, j its group's previous update), presented 5 cycles later."""
    rng = random.Random(seed)
    spec = ALIFSpec(n_neurons=rng.choice([4, 8, 16, 32]), lanes=4, membrane_width=10, input_width=9, noise_width=5,
                    addressed=True)
    beats = alif_beat_stream(spec, mixed_stream(spec, rng, 150, write_prob=0.15))[0]
    inputs, expected = alif_beat_stream(spec, beats)
    run = run_stream(ALIFArray(spec), inputs, len(expected))
    want = ALIFArray.accept_cycles(spec, beats)
    assert run.accept_cycles == want
    assert run.output_cycles == [c + 5 for c, b in zip(want, beats) if b["kind"] == UPDATE]
    assert run.outputs == packed(spec, expected)
    gaps = {b - a for a, b in zip(want, want[1:])}
    assert 1 in gaps and (spec.groups > 1 or 4 in gaps) and gaps <= {1, 2, 3, 4}


@pytest.mark.parametrize("groups, accepted", [
    ([0, 0, 0], [0, 4, 8]),                # one group: a beat every 4 cycles
    ([0, 1, 0, 1], [0, 1, 4, 5]),
    ([0, 1, 2, 0], [0, 1, 2, 4]),
    ([0, 1, 2, 3, 0], [0, 1, 2, 3, 4]),    # 3 other groups between: full rate
    ([0, None, 0], [0, 1, 4]),             # a WRITE (None) takes a cycle, the update still waits for its group
])
def test_stall_rule_examples(groups, accepted):
    beats = [{"kind": WRITE, "group": 0} if g is None else {"kind": UPDATE, "group": g} for g in groups]
    assert ALIFArray.accept_cycles(ALIFSpec(n_neurons=16, lanes=4, addressed=True), beats) == accepted


def test_stalled_output_holds_updates_but_takes_writes():
    """With the output never ready exactly five updates enter (stages M, A, P, B and the output
    register), then ready stays low for updates, while a WRITE is still taken at once."""
    from amaranth.sim import Simulator

    spec = ALIFSpec(n_neurons=16, lanes=4)
    dut = ALIFArray(spec)
    layout = dut.i_stream.payload.shape()
    update = pack(layout, {"kind": UPDATE, "first": 1})
    write = pack(layout, {"kind": WRITE, "group": 3, "theta": [5] * 4, "beta": [7] * 4})
    accepted = []

    async def bench(ctx):
        ctx.set(dut.o_stream.ready, 0)
        ctx.set(dut.i_stream.valid, 1)
        for cycle in range(40):
            ctx.set(dut.i_stream.payload.as_value(), write if cycle in (20, 30) else update)
            _, _, ready = await ctx.tick().sample(dut.i_stream.ready)
            if ready:
                accepted.append(cycle)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert accepted == [0, 1, 2, 3, 4, 20, 30]


def test_memories_are_g_words_of_p_lanes():
    from amaranth.hdl import Fragment
    from amaranth.lib.memory import Memory

    spec = ALIFSpec(n_neurons=64, lanes=4, membrane_width=20, adapt_width=12, leak_frac_bits=6)
    theta, beta = alif_random_params(spec, 1)
    array = ALIFArray(spec, theta, beta)
    module = array.elaborate(None)
    Fragment.get(array, None)  # marks the component used, as a build would
    Fragment.get(module, None)
    state, params = module.submodules.state, module.submodules.params
    assert isinstance(state, Memory) and isinstance(params, Memory)
    assert state.depth == params.depth == 16
    assert state.shape.size == 4 * (20 + 12)           # P lanes x (Wv + Wa)
    assert params.shape.size == 4 * (19 + 7)           # P lanes x (Wv - 1 + F + 1)
    word = params.shape.const(params.init[5])          # group 5: neurons 20 .. 23
    assert [word[p].theta for p in range(4)] == theta[20:24].tolist()
    assert [word[p].beta for p in range(4)] == beta[20:24].tolist()


# ---- bad input -----------------------------------------------------------------------------------

BAD_SPEC = ALIFSpec(n_neurons=4, lanes=2, membrane_width=8, input_width=6, noise_width=4, leak_frac_bits=4)
GOOD_WRITE = {"kind": WRITE, "group": 1, "theta": [5, 6], "beta": [16, 0]}
GOOD_UPDATE = {"kind": UPDATE, "first": 1, "current": [3, -4], "noise": [1, -8]}


@pytest.mark.parametrize("beat, message", [
    ({**GOOD_UPDATE, "kind": 2}, "ALIF beat 2 kind = 2 is out of range; allowed: 0 (update), 1 (write)"),
    ({**GOOD_UPDATE, "first": 2}, "ALIF beat 2 first = 2 is out of range; allowed: 0 .. 1"),
    ({**GOOD_UPDATE, "current": [32, 0]}, "ALIF beat 2 current = 32 is out of range; allowed: -32 .. 31"),
    ({**GOOD_UPDATE, "current": [1]}, "ALIF beat 2 current has 1 values; the spec has lanes = 2"),
    ({**GOOD_UPDATE, "noise": [0, -9]}, "ALIF beat 2 noise = -9 is out of range; allowed: -8 .. 7"),
    ({k: v for k, v in GOOD_UPDATE.items() if k != "noise"}, "ALIF beat 2 (update) needs 'noise'"),
    ({k: v for k, v in GOOD_UPDATE.items() if k != "current"}, "ALIF beat 2 (update) needs 'current'"),
    ({**GOOD_UPDATE, "group": 0}, "names group 0, but the spec is not addressed: it is update beat 1, "
                                  "which updates group 1"),
    ({**GOOD_WRITE, "group": 2}, "ALIF beat 2 group = 2 is out of range; allowed: 0 .. 1"),
    ({**GOOD_WRITE, "theta": [0, 5]}, "ALIF beat 2 theta = 0 is out of range; allowed: 1 .. 127"),
    ({**GOOD_WRITE, "beta": [17, 0]}, "ALIF beat 2 beta = 17 is out of range; allowed: 0 .. 16"),
    ({k: v for k, v in GOOD_WRITE.items() if k != "beta"}, "ALIF beat 2 (write) needs 'beta'"),
    ({**GOOD_UPDATE, "weight": 3}, "ALIF beat 2 has unknown field(s) weight"),
    ({**GOOD_UPDATE, "current": [1.5, 0]}, "ALIF beat 2 current must be an integer, got 1.5"),
])
def test_bad_beats_are_refused_in_one_line(beat, message):
    beats = [{**GOOD_WRITE, "group": 0}, GOOD_UPDATE, beat]
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        alif_run_beats(BAD_SPEC, beats, torch.tensor([1, 1, 1, 1]), torch.tensor([0, 0, 0, 0]))
    assert "\n" not in str(info.value)


def test_other_refusals():
    with pytest.raises(ValueError, match="ALIF beat 0 updates group 0, whose thresholds are not loaded"):
        alif_run_beats(BAD_SPEC, [GOOD_UPDATE])          # parameter memory all zero, no WRITE
    no_noise = BAD_SPEC.replace(noise_width=0)
    with pytest.raises(ValueError, match="ALIF beat 0 carries noise, but the spec has noise_width = 0"):
        alif_run_beats(no_noise, [GOOD_UPDATE], torch.tensor([1] * 4), torch.tensor([0] * 4))
    with pytest.raises(ValueError, match="ALIF beat 1 has no 'group' \\(the spec is addressed\\)"):
        alif_run_beats(BAD_SPEC.replace(addressed=True), [GOOD_WRITE, GOOD_UPDATE])
    with pytest.raises(ValueError, match=re.escape("ALIF theta holds values in [0, 5]; allowed: 1 .. 127")):
        alif_reference(BAD_SPEC, torch.tensor([0, 5, 5, 5]), torch.tensor([1] * 4), torch.zeros(1, 2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="ALIF noise holds values in \\[-9, 0\\], outside the 4-bit signed range"):
        alif_reference(BAD_SPEC, torch.tensor([5] * 4), torch.tensor([1] * 4), torch.zeros(1, 2, 4, dtype=torch.int64),
                       torch.tensor([[[-9, 0, 0, 0], [0, 0, 0, 0]]]))


def test_beat_vector_files_round_trip_and_refuse_bad_shapes():
    spec = BAD_SPEC.replace(addressed=True)
    beats = [GOOD_WRITE, {**GOOD_UPDATE, "group": 1}, {**GOOD_UPDATE, "group": 0, "first": 0}]
    init = torch.tensor([3, 4, 0, 0]), torch.tensor([8, 8, 0, 0])   # group 1 not loaded until the WRITE
    arrays = {k: v.numpy() for k, v in alif_beat_reference(spec, beats, *init).items()}
    assert alif_beats_from_arrays(spec, arrays) == alif_normalize_beats(spec, beats)
    vectors = VectorSet("alif", spec.to_dict(), 0, arrays)
    _, inputs, expected = alif_stream_from_vectors(vectors)
    assert inputs[0] == {"kind": WRITE, "first": 0, "group": 0, "current": [0, 0], "noise": [0, 0], "theta": [3, 4],
                         "beta": [8, 8]}                             # init of group 0 only: group 1 is unloaded
    run = run_stream(ALIFArray(spec), inputs, len(expected), seed=2, valid_prob=0.5, ready_prob=0.5)
    assert run.outputs == packed(spec, expected)
    bad = dict(arrays, adaptation=arrays["adaptation"][:1])
    with pytest.raises(ValueError, match=re.escape("'adaptation' has shape (1, 2), expected (2, 2)")):
        alif_stream_from_vectors(VectorSet("alif", spec.to_dict(), 0, bad))
    bad = dict(arrays, theta=np.array(arrays["theta"]))
    bad["theta"][1, 0] = 9                                           # an update carrying a threshold
    with pytest.raises(ValueError, match="beat 1, an update beat, carries a nonzero 'theta', which that kind does not use"):
        alif_beats_from_arrays(spec, bad)


@pytest.mark.parametrize("name", sorted(ADDRESSED_SPECS))
def test_addressed_streams_in_amaranth_sim(name, tmp_path):
    """Both addressed configurations (the parameters at the state's word, or in a memory of their own
    named by each update) against the golden stream semantics, with random gaps."""
    spec, _, seed = ADDRESSED_SPECS[name]
    beats, theta, beta = addressed_stream(spec, 400, seed)
    spec, inputs, expected = alif_stream_from_directory(write_alif_beat_vectors(tmp_path, spec, beats, theta, beta, seed))
    run = run_stream(ALIFArray(spec), inputs, len(expected), seed=3, valid_prob=0.7, ready_prob=0.7)
    assert len(expected) == 400 and run.outputs == packed(spec, expected)


def test_shared_parameter_words_equal_replicated_parameters():
    """State word g reading parameter word g mod 2 (param_groups = 2) computes what an array with
    the parameters replicated at every state word computes (the layout the core used before):
    the golden semantics and the hardware, the second as an independent implementation."""
    shared = ADDRESSED_SPECS["addressed-N8P2-Gp3"][0].replace(param_groups=2)
    plain = shared.replace(param_groups=0)
    theta_p, beta_p = alif_random_params(shared.replace(n_neurons=shared.param_neurons), 4)
    lanes = shared.lanes
    words = [g % 2 for g in range(shared.groups)]
    theta = torch.cat([theta_p[w * lanes:(w + 1) * lanes] for w in words])
    beta = torch.cat([beta_p[w * lanes:(w + 1) * lanes] for w in words])
    rng = random.Random(2)
    beats = []
    for k in range(120):
        g = rng.randrange(shared.groups)
        beats.append({"kind": UPDATE, "group": g, "first": int(k < shared.groups),
                      "current": [rng.randrange(-300, 500) for _ in range(lanes)]})
    shared_beats = [{**b, "param_group": words[b["group"]]} for b in beats]
    want = alif_run_beats(plain, beats, theta, beta)
    got = alif_run_beats(shared, shared_beats, theta_p, beta_p)
    assert torch.equal(want.spikes, got.spikes) and torch.equal(want.membrane, got.membrane)
    assert int(want.spikes.sum()) > 0
    hw = run_stream(ALIFArray(shared, theta=theta_p, beta=beta_p), alif_normalize_beats(shared, shared_beats), 120,
                    seed=1, valid_prob=0.8, ready_prob=0.8)
    ref = run_stream(ALIFArray(plain, theta=theta, beta=beta), alif_normalize_beats(plain, beats), 120,
                     seed=1, valid_prob=0.8, ready_prob=0.8)
    assert hw.outputs == ref.outputs
    # the parameter memory is Gp words deep
    assert shared.param_depth == 2 and plain.param_depth == shared.groups


def test_param_groups_bad_input():
    spec = ADDRESSED_SPECS["addressed-N8P2-Gp3"][0]
    with pytest.raises(SpecError, match="param_groups needs addressed = True"):
        spec.replace(addressed=False)
    update = {"kind": UPDATE, "group": 0, "first": 1, "current": [0, 0]}
    with pytest.raises(ValueError, match="has no 'param_group'"):
        alif_normalize_beats(spec, [update])
    with pytest.raises(ValueError, match="param_group = 3 is out of range; allowed: 0 .. 2"):
        alif_normalize_beats(spec, [{**update, "param_group": 3}])
    with pytest.raises(ValueError, match="beat 0 group = 3 is out of range; allowed: 0 .. 2 .the parameter memory"):
        alif_normalize_beats(spec, [{"kind": WRITE, "group": 3, "theta": [1, 1], "beta": [0, 0]}])
    with pytest.raises(ValueError, match="param_groups = 0"):
        alif_normalize_beats(spec.replace(param_groups=0), [{**update, "param_group": 0}])
