"""Multiply-accumulate engine: spec checks, hand-computed answers, an independent plain-Python
engine, bad commands, and the RTL in Amaranth's simulator on the same vectors as the Verilator
co-simulation, with its timing checked to the cycle."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from golden import fixed
from golden.mac import (EVENT, STEP, WRITE_B, WRITE_W, Event, MACSpec, Step, WriteB, WriteW, check_commands,
                        commands_from_array, commands_to_array, mac_count, mac_last, mac_reference, mac_run,
                        random_biases, random_program, random_weights)
from golden.spec import SpecError
from golden.vectors import load_vectors, save_vectors
from rtl.emit import to_verilog
from rtl.mac import MACEngine, mac_expected_beats, mac_input_beats, mac_input_layout, mac_output_layout
from rtl.pysim import run_stream
from rtl.streams import pack
from sim.test_mac import COSIM_CONFIGS, config_vectors

# ---- spec validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, message", [
    ("lanes", 0, r"MACSpec.lanes = 0 is out of range; allowed: 1 \.\. 64"),
    ("lanes", 65, r"MACSpec.lanes = 65 is out of range; allowed: 1 \.\. 64"),
    ("weight_depth", 65537, r"MACSpec.weight_depth = 65537 is out of range; allowed: 1 \.\. 65536"),
    ("weight_width", 1, r"MACSpec.weight_width = 1 is out of range; allowed: 2 \.\. 32"),
    ("weight_width", 33, r"MACSpec.weight_width = 33 is out of range"),
    ("value_width", 0, r"MACSpec.value_width = 0 is out of range; allowed: 1 \.\. 16"),
    ("value_width", 17, r"MACSpec.value_width = 17 is out of range"),
    ("max_groups", 0, r"MACSpec.max_groups = 0 is out of range; allowed: 1 \.\. 4096"),
    ("max_groups", 4097, r"MACSpec.max_groups = 4097 is out of range"),
    ("acc_width", 49, r"MACSpec.acc_width = 49 is out of range; allowed: 2 \.\. 48"),
    ("bias_depth", 0, r"MACSpec.bias_depth = 0 is out of range; allowed: 1 \.\. 65536"),
    ("bias_width", 1, r"MACSpec.bias_width = 1 is out of range; allowed: 2 \.\. 48"),
    ("out_width", 49, r"MACSpec.out_width = 49 is out of range; allowed: 2 \.\. 48"),
    ("shift_width", 0, r"MACSpec.shift_width = 0 is out of range; allowed: 1 \.\. 6"),
    ("shift_width", 7, r"MACSpec.shift_width = 7 is out of range"),
    ("lanes", 2.0, r"MACSpec.lanes must be an integer, got 2.0"),
    ("acc_width", True, r"MACSpec.acc_width must be an integer, got True"),
])
def test_spec_errors_name_the_field(field, value, message):
    with pytest.raises(SpecError, match=message):
        MACSpec(**{field: value})


def test_spec_dict_round_trip_and_derived_widths():
    spec = MACSpec()
    assert MACSpec.from_dict(spec.to_dict()) == spec
    # default: 256 weight words -> 8 address bits, 16 bias words -> 4, Gmax = 16 -> groups 1 .. 16 in 5 bits
    assert (spec.weight_address_bits, spec.bias_address_bits, spec.address_bits) == (8, 4, 8)
    assert (spec.group_bits, spec.data_width, spec.product_width, spec.max_shift) == (5, 24, 16, 31)
    # input beat: kind 2 + addr 8 + value 8 + groups 5 + shift 5 + 4 x 24 data bits; output: 4 x 24 + last
    assert mac_input_layout(spec).size == 2 + 8 + 8 + 5 + 5 + 4 * 24
    assert mac_output_layout(spec).size == 4 * 24 + 1
    tiny = MACSpec(lanes=1, weight_depth=1, bias_depth=300, max_groups=1, weight_width=30, bias_width=3)
    # depth 1 still needs a (1-bit) address; the addr field is the wider of the two memories'
    assert (tiny.weight_address_bits, tiny.bias_address_bits, tiny.address_bits, tiny.group_bits) == (1, 9, 9, 1)
    assert tiny.data_width == 30


# ---- hand-computed answers -------------------------------------------------------------------------------

HAND = MACSpec(lanes=2, weight_depth=4, weight_width=8, value_width=8, max_groups=2, acc_width=8, bias_depth=2,
               bias_width=8, out_width=6, shift_width=3)   # acc in [-128, 127], outputs in [-32, 31], shifts 0 .. 7
HAND_W = [[3, -2], [5, 7], [-1, 4], [127, -128]]
HAND_B = [[1, -1], [10, 0]]
HAND_PROGRAM = [
    Event(0, 2, 2),       # acc0 = 2 [3, -2] = [6, -4];   acc1 = 2 [5, 7] = [10, 14]
    Event(1, -3, 1),      # acc0 += -3 [5, 7] = [-15, -21]  ->  [-9, -25]
    Step(0, 1, 2),        # beat 0: [-9 >> 1, -25 >> 1] + [1, -1] = [-5, -13] + [1, -1] = [-4, -14]
                          # beat 1: [10 >> 1, 14 >> 1] + [10, 0] = [15, 7]; both words cleared
    WriteB(1, (0, 0)),    # B[1] = [0, 0]
    Event(2, 7, 1),       # acc0 = 7 [-1, 4] = [-7, 28]
    Step(1, 1, 1),        # [-7 >> 1, 28 >> 1] + [0, 0] = [-4, 14]  (floor: -7 >> 1 = -4, not -3)
    Event(3, 1, 1),       # acc0 = [127, -128]
    Event(3, 1, 1),       # [254, -256] saturates to [127, -128]
    Event(0, -1, 1),      # += [-3, 2] -> [124, -126]  (unsaturated it would be [251, -254]: the order matters)
    Step(0, 0, 1),        # [124 + 1, -126 - 1] = [125, -127] saturate to 6 bits: [31, -32]
    Event(3, -128, 1),    # products -128 * 127 = -16256 and -128 * -128 = 16384 saturate: [-128, 127]
    WriteW(0, (-128, 127)),
    Event(0, 1, 2),       # acc0 += [-128, 127] -> [-256, 254] -> [-128, 127]; acc1 = W[1] = [5, 7]
    Step(0, 7, 2),        # beat 0: [-128 >> 7, 127 >> 7] + [1, -1] = [-1, 0] + [1, -1] = [0, -1]
                          # beat 1: [5 >> 7, 7 >> 7] + B[1] = [0, 0] + [0, 0] = [0, 0]
    Event(0, 1, 2),       # acc0 = [-128, 127], acc1 = [5, 7]
    Step(0, 0, 1),        # only word 0: [-128 + 1, 127 - 1] = [-127, 126] -> [-32, 31]; acc1 keeps [5, 7]
    Event(1, 2, 1),       # acc0 = 2 [5, 7] = [10, 14]
    Step(0, 2, 2),        # beat 0: [10 >> 2, 14 >> 2] + [1, -1] = [2, 3] + [1, -1] = [3, 2]
                          # beat 1: [5 >> 2, 7 >> 2] + [0, 0] = [1, 1]   (word 1 carried over the STEP of 1 group)
]
HAND_OUT = [[-4, -14], [15, 7], [-4, 14], [31, -32], [0, -1], [0, 0], [-32, 31], [3, 2], [1, 1]]
HAND_LAST = [0, 1, 1, 1, 0, 1, 1, 0, 1]


def test_hand_computed_program():
    assert mac_run(HAND, HAND_W, HAND_B, HAND_PROGRAM).tolist() == HAND_OUT
    assert mac_last(HAND, HAND_PROGRAM).tolist() == HAND_LAST
    # the same program as a command array, as numpy, and back
    array = commands_to_array(HAND, HAND_PROGRAM)
    assert array.shape == (len(HAND_PROGRAM), 5 + HAND.lanes) and array.dtype == torch.int64
    assert commands_from_array(HAND, array) == check_commands(HAND, HAND_PROGRAM)
    assert mac_run(HAND, torch.tensor(HAND_W), np.array(HAND_B), array.numpy()).tolist() == HAND_OUT
    assert mac_count(HAND, HAND_PROGRAM) == 2 * (2 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 2 + 1)


def test_hand_computed_program_in_the_rtl():
    beats = mac_input_beats(HAND, HAND_PROGRAM)
    expected = mac_expected_beats(HAND, HAND_OUT, HAND_PROGRAM)
    assert [b["last"] for b in expected] == HAND_LAST
    want = [pack(mac_output_layout(HAND), b) for b in expected]
    for seed, valid_prob, ready_prob in ((0, 1.0, 1.0), (1, 0.5, 0.4)):
        run = run_stream(MACEngine(HAND, init_weights=HAND_W, init_biases=HAND_B), beats, len(expected),
                         seed=seed, valid_prob=valid_prob, ready_prob=ready_prob)
        assert run.outputs == want


# ---- the golden function against an independent engine ---------------------------------------------------


def loop_mac(spec: MACSpec, weights, biases, program):
    """Command by command, lane by lane, in Python ints: saturation by min/max, the shift by floor division."""
    w = [list(map(int, row)) for row in weights]
    b = [list(map(int, row)) for row in biases]
    acc = [[0] * spec.lanes for _ in range(spec.max_groups)]
    amin, amax = -2 ** (spec.acc_width - 1), 2 ** (spec.acc_width - 1) - 1
    omin, omax = -2 ** (spec.out_width - 1), 2 ** (spec.out_width - 1) - 1
    out = []
    for cmd in program:
        if isinstance(cmd, Event):
            for g in range(cmd.groups):
                for p in range(spec.lanes):
                    acc[g][p] = min(amax, max(amin, acc[g][p] + cmd.value * w[cmd.addr + g][p]))
        elif isinstance(cmd, Step):
            for g in range(cmd.groups):
                out.append([min(omax, max(omin, acc[g][p] // 2 ** cmd.shift + b[cmd.bias_addr + g][p]))
                            for p in range(spec.lanes)])
                acc[g] = [0] * spec.lanes
        elif isinstance(cmd, WriteW):
            w[cmd.addr] = list(cmd.data)
        else:
            b[cmd.addr] = list(cmd.data)
    return out


def random_spec(rng: random.Random) -> MACSpec:
    return MACSpec(lanes=rng.choice([1, 2, 3, 5]), weight_depth=rng.randint(1, 40), weight_width=rng.randint(2, 32),
                   value_width=rng.randint(1, 16), max_groups=rng.randint(1, 9), acc_width=rng.randint(2, 48),
                   bias_depth=rng.randint(1, 12), bias_width=rng.randint(2, 48), out_width=rng.randint(2, 48),
                   shift_width=rng.randint(1, 6))


@pytest.mark.parametrize("seed", range(8))
def test_mac_run_matches_a_plain_loop_on_random_specs(seed):
    spec = random_spec(random.Random(seed))
    weights, biases = random_weights(spec, seed), random_biases(spec, seed)
    program = random_program(spec, seed, layers=6, events=12, writes=0.15)
    got = mac_run(spec, weights, biases, program)
    assert got.tolist() == loop_mac(spec, weights.tolist(), biases.tolist(), program)
    assert got.shape == (sum(c.groups for c in program if isinstance(c, Step)), spec.lanes)


def test_random_program_is_seeded_valid_and_varied():
    spec = MACSpec(max_groups=6, weight_depth=20, bias_depth=9)
    a = random_program(spec, 5, layers=30, events=10, writes=0.2)
    assert a == random_program(spec, 5, layers=30, events=10, writes=0.2)
    assert a != random_program(spec, 6, layers=30, events=10, writes=0.2)
    check_commands(spec, a)  # every command valid
    kinds = {c.kind for c in a}
    assert kinds == {EVENT, STEP, WRITE_W, WRITE_B}
    events = [c for c in a if c.kind == EVENT]
    assert {c.groups for c in events} == set(range(1, 7))
    assert any(x.addr == y.addr for x, y in zip(events, events[1:]))  # back-to-back on the same words
    values = [c.value for c in events]
    assert min(values) < 0 < max(values)
    ref = mac_reference(spec, 5, layers=30, events=10, writes=0.2)
    assert ref["commands"].tolist() == commands_to_array(spec, a).tolist()
    assert ref["outputs"].tolist() == loop_mac(spec, ref["weights"].tolist(), ref["biases"].tolist(), a)


def test_vector_file_round_trip(tmp_path):
    spec = MACSpec(lanes=3, max_groups=4, weight_depth=16, bias_depth=4)
    arrays = mac_reference(spec, 2, layers=3, events=5)
    save_vectors(tmp_path, "mac", spec.to_dict(), 2, arrays)
    v = load_vectors(tmp_path, block="mac")
    again = mac_run(MACSpec.from_dict(v.spec), v["weights"], v["biases"], v["commands"])
    assert again.tolist() == v["outputs"].tolist() == arrays["outputs"].tolist()


# ---- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd, message", [
    (Event(0, 1, 0), r"command 1 \(EVENT\): groups = 0 is out of range; allowed: 1 \.\. 2 \(max_groups\)"),
    (Event(0, 1, 3), r"command 1 \(EVENT\): groups = 3 is out of range; allowed: 1 \.\. 2"),
    (Event(3, 1, 2), r"command 1 \(EVENT\): addr = 3 is out of range; allowed: 0 \.\. 2 "
                     r"\(addr \+ groups = 3 \+ 2 must be <= weight_depth = 4\)"),
    (Event(-1, 1, 1), r"command 1 \(EVENT\): addr = -1 is out of range"),
    (Event(0, 128, 1), r"command 1 \(EVENT\): value = 128 is out of range; allowed: -128 \.\. 127 \(8-bit signed\)"),
    (Event(0.5, 1, 1), r"command 1 \(EVENT\): addr must be an integer, got 0.5"),
    (Step(0, 8, 1), r"command 1 \(STEP\): shift = 8 is out of range; allowed: 0 \.\. 7 \(shift_width = 3\)"),
    (Step(1, 0, 2), r"command 1 \(STEP\): bias_addr = 1 is out of range; allowed: 0 \.\. 0 "
                    r"\(bias_addr \+ groups = 1 \+ 2 must be <= bias_depth = 2\)"),
    (Step(0, 0, 0), r"command 1 \(STEP\): groups = 0 is out of range"),
    (WriteW(4, (0, 0)), r"command 1 \(WRITE_W\): addr = 4 is out of range; allowed: 0 \.\. 3"),
    (WriteW(0, (0,)), r"command 1 \(WRITE_W\): data has 1 values; the spec has lanes = 2"),
    (WriteW(0, (128, 0)), r"command 1 \(WRITE_W\): data\[0\] = 128 is out of range; allowed: -128 \.\. 127"),
    (WriteB(2, (0, 0)), r"command 1 \(WRITE_B\): addr = 2 is out of range; allowed: 0 \.\. 1"),
    (WriteB(0, (0, -129)), r"command 1 \(WRITE_B\): data\[1\] = -129 is out of range"),
    ("EVENT", r"command 1: 'EVENT' is not an Event, Step, WriteW or WriteB"),
])
def test_bad_commands_name_the_index_and_field(cmd, message):
    with pytest.raises(ValueError, match=message):
        mac_run(HAND, HAND_W, HAND_B, [Event(0, 1, 1), cmd])
    with pytest.raises(ValueError, match=message):
        mac_input_beats(HAND, [Event(0, 1, 1), cmd])


def test_bad_memories_and_arrays_are_refused():
    with pytest.raises(ValueError, match=r"weights have shape \(3, 2\); the spec needs \(4, 2\)"):
        mac_run(HAND, HAND_W[:3], HAND_B, [])
    with pytest.raises(ValueError, match=r"biases have shape \(2, 3\); the spec needs \(2, 2\)"):
        mac_run(HAND, HAND_W, [[0, 0, 0], [0, 0, 0]], [])
    with pytest.raises(ValueError, match=r"weights holds values in \[-128, 128\], outside the 8-bit signed range"):
        mac_run(HAND, [[0, 0], [0, 0], [0, 0], [-128, 128]], HAND_B, [])
    with pytest.raises(ValueError, match=r"weights must be an integer tensor"):
        mac_run(HAND, torch.zeros(4, 2), HAND_B, [])
    bad_kind = commands_to_array(HAND, [Event(0, 1, 1)])
    bad_kind[0, 0] = 4
    with pytest.raises(ValueError, match=r"command 0: kind = 4 is not one of 0 \(EVENT\), 1 \(STEP\)"):
        mac_run(HAND, HAND_W, HAND_B, bad_kind)
    with pytest.raises(ValueError, match=r"must have shape \(n_commands, 7\) = \(n, 5 \+ lanes\); got \(1, 6\)"):
        mac_run(HAND, HAND_W, HAND_B, torch.zeros(1, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"weights have shape \(5, 2\); the spec needs \(at most 4, 2\)"):
        MACEngine(HAND, init_weights=[[0, 0]] * 5)
    with pytest.raises(ValueError, match="3 output beats, but the commands' STEPs emit 2"):
        mac_expected_beats(HAND, [[0, 0]] * 3, [Step(0, 0, 2)])
    with pytest.raises(TypeError, match="MACEngine needs a MACSpec"):
        MACEngine(HAND.to_dict())


# ---- RTL in Amaranth's simulator: the same vectors as the Verilator co-simulation --------------------------


@pytest.mark.parametrize("name", sorted(COSIM_CONFIGS))
def test_rtl_amaranth_sim_bit_exact(name, tmp_path):
    spec, make_engine, beats, expected, _ = config_vectors(tmp_path, name)
    run = run_stream(make_engine(), beats, len(expected), seed=7, valid_prob=0.7, ready_prob=0.6)
    assert run.outputs == [pack(mac_output_layout(spec), b) for b in expected]


def test_cosim_configs_cover_the_matrix(tmp_path):
    """P = 1 with Gmax = 1 (every event back to back on one word), loads through the write ports and
    golden-file init, run-time writes, accumulators and outputs that really saturate (but not so often
    that the outputs stop showing the sums), STEPs that drain fewer groups than the events filled
    (carry-over), non-zero shifts."""
    specs = {name: c[0] for name, c in COSIM_CONFIGS.items()}
    assert any(s.lanes == 1 and s.max_groups == 1 for s in specs.values())
    assert {c[2] for c in COSIM_CONFIGS.values()} == {False, True}
    acc_saturating, out_saturating = set(), set()
    for name, spec in specs.items():
        _, _, _, _, vectors = config_vectors(tmp_path / name, name)
        program = commands_from_array(spec, vectors["commands"])
        kinds = [c.kind for c in program]
        assert WRITE_W in kinds and WRITE_B in kinds, name
        assert any(c.kind == STEP and c.shift > 0 for c in program), name
        # the same program with wide accumulators and / or outputs: where did saturation decide?
        w, b = vectors["weights"], vectors["biases"]
        wide_out = mac_run(spec.replace(out_width=48), w, b, program)
        wide_all = mac_run(spec.replace(out_width=48, acc_width=48), w, b, program)
        lo, hi = fixed.int_min(spec.out_width, True), fixed.int_max(spec.out_width, True)
        saturated = float(((wide_out < lo) | (wide_out > hi)).double().mean())
        assert saturated < 0.5, f"{name}: {saturated:.0%} of the outputs saturate"
        if saturated > 0:
            out_saturating.add(name)
        if not torch.equal(wide_out, wide_all):
            acc_saturating.add(name)
        if spec.max_groups > 1:
            carried = [i for i, c in enumerate(program) if c.kind == STEP
                       and any(e.kind == EVENT and e.groups > c.groups for e in program[max(0, i - 20):i])]
            assert carried, f"{name}: no STEP drains fewer words than its events filled"
    assert len(acc_saturating) >= 2 and len(out_saturating) >= 2, (acc_saturating, out_saturating)
    assert "p1-g1-saturating" in acc_saturating & out_saturating


def expected_timing(engine: MACEngine, beats: list[dict]):
    """Accept and output cycles by the docstring's formulas, with no gaps and no back-pressure."""
    accept, out, cycle = [], [], 0
    for beat in beats:
        accept.append(cycle)
        if beat["kind"] == EVENT:
            cycle += engine.event_cycles(beat["groups"])
        elif beat["kind"] == STEP:
            out += [cycle + engine.step_latency + g for g in range(beat["groups"])]
            cycle += engine.step_cycles(beat["groups"])
        else:
            cycle += engine.write_cycles()
    return accept, out, cycle


TIMING_PROGRAM = [
    Event(0, 3, 3), Event(2, -2, 1),  # EVENT after EVENT, different groups
    Step(1, 1, 3),                    # STEP right after an EVENT (its last add still in flight)
    Event(1, 5, 2),                   # EVENT right after a STEP
    Step(0, 0, 2), Step(2, 2, 1),     # STEP after STEP
    WriteW(4, (7, -7, 1)), Event(4, 1, 1),  # a weight written, then used at once
    WriteB(3, (100, -100, 5)), Step(3, 0, 1),  # a bias written, then drained at once
    Event(3, -1, 1), Event(3, 2, 1), Event(3, -3, 1), Step(0, 0, 1),  # groups = 1, back to back
    Step(0, 0, 4), Event(0, 1, 4), WriteW(0, (1, 1, 1)), Step(0, 0, 4),
]


@pytest.mark.parametrize("spec", [
    MACSpec(lanes=3, weight_depth=8, max_groups=4, bias_depth=4, acc_width=12, out_width=10),
    MACSpec(lanes=1, weight_depth=8, max_groups=4, bias_depth=4, weight_width=16, value_width=16, acc_width=40),
], ids=["P3", "P1-wide"])
def test_latency_and_throughput_match_the_docstring(spec):
    """No gaps: an EVENT holds the input for groups cycles, a WRITE for 1; a STEP's beat g leaves
    6 + g cycles after it and the next command is accepted groups + 3 cycles after it, whatever came
    before or follows. 6 and 3 counted by hand from the docstring's stages: D0 of word 0 in c + 2
    (the last add in flight is written in c + 2), D1, D2, D3 into the output register, valid in
    c + 2 + 4; the last word's D1 (read done, cleared) in c + 2 + (groups - 1) + 1, ready one later."""
    program = [c if not isinstance(c, (WriteW, WriteB)) else type(c)(c.addr, c.data[:spec.lanes])
               for c in TIMING_PROGRAM]
    weights, biases = random_weights(spec, 4), random_biases(spec, 4)
    engine = MACEngine(spec, init_weights=weights, init_biases=biases)
    assert (engine.step_latency, engine.step_overhead) == (6, 3)
    assert (engine.event_cycles(5), engine.step_cycles(5), engine.write_cycles()) == (5, 8, 1)
    beats = mac_input_beats(spec, program)
    expected = mac_expected_beats(spec, mac_run(spec, weights, biases, program), program)
    run = run_stream(engine, beats, len(expected))
    assert run.outputs == [pack(mac_output_layout(spec), b) for b in expected]
    accept, out, total = expected_timing(engine, beats)
    assert run.accept_cycles == accept
    assert run.output_cycles == out
    assert engine.program_cycles(program) == total
    # the last beat leaves step_latency + groups - 1 - (groups + step_overhead) = 2 cycles after the
    # program's input cycles end
    assert run.output_cycles[-1] == total + 2


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_back_to_back_events_on_one_word(groups):
    """Events of ``groups`` words with no gaps hit each accumulator word every ``groups`` cycles: 1 needs
    the forwarded sum of the add one cycle ahead, 2 the transparent read port, 3 neither. Small
    accumulators so the saturation (and hence the order) is exercised; results against the plain loop."""
    spec = MACSpec(lanes=2, weight_depth=8, max_groups=3, bias_depth=3, acc_width=9, out_width=9, weight_width=6,
                   value_width=4)
    rng = random.Random(groups)
    program = []
    for _ in range(4):
        program += [Event(rng.choice([0, 5 - groups]), rng.randint(-8, 7), groups) for _ in range(12)]
        program.append(Step(0, rng.randint(0, 2), groups))
    weights, biases = random_weights(spec, groups), random_biases(spec, groups)
    want = loop_mac(spec, weights.tolist(), biases.tolist(), program)
    assert mac_run(spec, weights, biases, program).tolist() == want
    run = run_stream(MACEngine(spec, weights, biases), mac_input_beats(spec, program), len(want))
    expected = mac_expected_beats(spec, want, program)
    assert run.outputs == [pack(mac_output_layout(spec), b) for b in expected]
    assert run.accept_cycles[:12] == [groups * k for k in range(12)]  # one word per cycle, no stall


def test_back_pressure_holds_the_drain_without_loss_or_duplicates():
    """Long drains (Gmax = 12) back to back with heavy random back-pressure and input gaps; every beat
    must arrive once, in order. With ready low for ever, no beat may leave."""
    spec = MACSpec(lanes=2, weight_depth=24, max_groups=12, bias_depth=12, acc_width=16, out_width=12)
    weights, biases = random_weights(spec, 9), random_biases(spec, 9)
    program = []
    for g in (12, 7, 12, 1, 12, 3):
        program += [Event(g % 5, 3 - g, g), Step(0, 1, g), Step(12 - g, 0, g)]
    want = mac_run(spec, weights, biases, program)
    expected = [pack(mac_output_layout(spec), b) for b in mac_expected_beats(spec, want, program)]
    for seed, valid_prob, ready_prob in ((1, 1.0, 0.3), (2, 0.6, 0.5), (3, 1.0, 0.1)):
        run = run_stream(MACEngine(spec, weights, biases), mac_input_beats(spec, program), len(expected),
                         seed=seed, valid_prob=valid_prob, ready_prob=ready_prob, max_cycles=6000)
        assert run.outputs == expected
    with pytest.raises(TimeoutError, match="only 0 of 1 outputs"):
        run_stream(MACEngine(spec, weights, biases), mac_input_beats(spec, program), 1, ready_prob=0.0,
                   max_cycles=200)


def test_memory_init_forms_agree_with_loading_through_the_ports():
    """Init from a (depth, P) tensor, from lists of words, from fewer words (zero-padded) and loading
    the same words through WRITE_W / WRITE_B give the same outputs."""
    spec = MACSpec(lanes=2, weight_depth=6, max_groups=3, bias_depth=4)
    weights, biases = random_weights(spec, 1), random_biases(spec, 1)
    weights[4:] = 0
    program = random_program(spec, 3, layers=4, events=6, writes=0.0)
    expected = [pack(mac_output_layout(spec), b)
                for b in mac_expected_beats(spec, mac_run(spec, weights, biases, program), program)]
    beats = mac_input_beats(spec, program)
    engines = [MACEngine(spec, weights, biases), MACEngine(spec, weights.tolist(), biases.numpy()),
               MACEngine(spec, weights[:4].tolist(), biases)]
    for engine in engines:
        assert run_stream(engine, beats, len(expected)).outputs == expected
    loaded = mac_input_beats(spec, program, load_weights=weights, load_biases=biases)
    assert run_stream(MACEngine(spec), loaded, len(expected), valid_prob=0.8, seed=4).outputs == expected


def test_verilog_has_one_multiplier_per_lane():
    """P products per cycle: the emitted Verilog multiplies P times (Yosys maps each to a DSP)."""
    for lanes in (1, 4):
        text = to_verilog(MACEngine(MACSpec(lanes=lanes)), "mac_engine")
        assert "module mac_engine(" in text and "i_stream__payload" in text and "o_stream__payload" in text
        assert text.count(" * ") == lanes


# ---- command line ---------------------------------------------------------------------------------------


def test_cli_verilog_and_vectors_for_mac(tmp_path):
    from spikeforge.cli import main

    out = tmp_path / "mac.v"
    assert main(["verilog", "mac", "--lanes", "2", "--max-groups", "4", "-o", str(out)]) == 0
    assert "module mac_engine(" in out.read_text()
    assert main(["vectors", "mac", "--lanes", "3", "--weight-depth", "32", "--layers", "3", "--events", "4",
                 "-o", str(tmp_path / "v")]) == 0
    v = load_vectors(tmp_path / "v", block="mac")
    spec = MACSpec.from_dict(v.spec)
    assert spec.lanes == 3 and spec.weight_depth == 32 and v.meta["layers"] == 3
    assert v["outputs"].tolist() == mac_run(spec, v["weights"], v["biases"], v["commands"]).tolist()


def test_cli_bad_mac_input_gives_one_clear_error(tmp_path, capsys):
    from spikeforge.cli import main

    assert main(["verilog", "mac", "--shift-width", "7", "-o", str(tmp_path / "x.v")]) == 2
    assert "spikeforge: error: MACSpec.shift_width = 7 is out of range" in capsys.readouterr().err
    spec = MACSpec(lanes=2, weight_depth=4, bias_depth=2, max_groups=2)
    arrays = mac_reference(spec, 0, layers=2, events=3)
    arrays["commands"][1, 3] = 3  # groups = 3 > max_groups
    save_vectors(tmp_path / "bad", "mac", spec.to_dict(), 0, arrays)
    assert main(["check", "mac", "--vectors", str(tmp_path / "bad")]) == 2
    assert "groups = 3 is out of range; allowed: 1 .. 2" in capsys.readouterr().err


def test_groups_zero_acts_as_one_and_never_hangs():
    """groups = 0 is refused by the golden model; the hardware, given it anyway, treats it as 1
    (a 1-word event, a 1-beat drain tagged last) with the timing of groups = 1."""
    spec = MACSpec(lanes=2, weight_depth=4, max_groups=4, bias_depth=2)
    weights, biases = random_weights(spec, 2), random_biases(spec, 2)
    as_one = [Event(1, 3, 1), Step(0, 0, 1), Event(2, -2, 1), Step(1, 1, 1)]
    expected = [pack(mac_output_layout(spec), b)
                for b in mac_expected_beats(spec, mac_run(spec, weights, biases, as_one), as_one)]
    beats = mac_input_beats(spec, as_one)
    for beat in beats:
        beat["groups"] = 0
    run = run_stream(MACEngine(spec, weights, biases), beats, len(expected))
    assert run.outputs == expected
    assert run.accept_cycles == [0, 1, 1 + 4, 1 + 4 + 1]
