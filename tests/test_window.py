"""Dilated windows: spec validation, hand-computed and independent answers, the attention masks,
and the window buffer in Amaranth's simulator (same vectors as sim/test_window.py)."""

from __future__ import annotations

import random
import re

import pytest
import torch

from golden.spec import SpecError
from golden.window import (WindowSpec, dilated_windows, is_global_window, window_mask, window_random_maps,
                           window_reference)
from rtl.emit import to_verilog
from rtl.pysim import run_stream
from rtl.streams import pack
from rtl.window import (DilatedWindowBuffer, window_expected_beats, window_input_beats, window_output_layout,
                        window_register_bits)
from sim.test_window import COSIM_SPECS


# ---- spec validation --------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"dims": 3}, "dims = 3 is out of range"),
    ({"dims": 1}, "a 1-D map .* has height 1"),
    ({"radius": 0}, "radius = 0 is out of range"),
    ({"dilations": ()}, "tuple of 1 .. 8 dilations"),
    ({"dilations": (1, 1)}, "repeats a dilation"),
    ({"dilations": (1, 0)}, "dilations = 0 is out of range"),
    ({"height": 8}, "dilation 4 with radius 1 spans 9 elements per axis, larger than the map's height 8"),
    ({"width": 5, "dilations": (1, 2, 4)}, "spans 9 elements per axis, larger than the map's width 5"),
    ({"radius": 2, "dilations": (4,)}, "spans 17 elements"),
    ({"element_width": 0}, "element_width = 0"),
    ({"channels": 2000}, "channels = 2000 is out of range"),
    ({"signed": 1}, "must be true or false"),
    ({"padding": "reflect"}, "choose one of zero"),
])
def test_spec_errors_name_the_field(changes, message):
    with pytest.raises(SpecError, match=message):
        WindowSpec(**changes)


def test_window_exactly_as_large_as_the_map_is_allowed():
    spec = WindowSpec(height=9, width=9, radius=1, dilations=(4,))  # span 2*4*1 + 1 = 9
    assert spec.reach == 4 and spec.taps == 9


def test_spec_dict_round_trip():
    spec = WindowSpec(dims=1, height=1, width=20, dilations=(1, 3), channels=4, element_width=8, signed=True)
    assert WindowSpec.from_dict(spec.to_dict()) == spec


def test_maps_out_of_range_or_misshapen_are_refused():
    spec = WindowSpec(height=5, width=5, dilations=(1, 2), element_width=2)
    with pytest.raises(ValueError, match="outside the 2-bit unsigned range"):
        dilated_windows(spec, torch.full((1, 5, 5, 1), 4))
    with pytest.raises(ValueError, match=r"shape \(maps, 5, 5, 1\)"):
        dilated_windows(spec, torch.zeros(1, 5, 4, 1, dtype=torch.int64))


# ---- known answers by hand ---------------------------------------------------------------------

def test_2d_windows_by_hand():
    # a[y, x] = 10 y + x on a 5 x 5 map; radius 1, dilations (1, 2)
    spec = WindowSpec(height=5, width=5, radius=1, dilations=(1, 2), element_width=6)
    a = torch.tensor([[10 * y + x for x in range(5)] for y in range(5)]).reshape(1, 5, 5, 1)
    win = dilated_windows(spec, a)[0, ..., 0]                    # (H, W, n_dil, K)
    # centre (0, 0), d = 1: rows -1, 0, 1 x cols -1, 0, 1; row -1 and col -1 are padding
    assert win[0, 0, 0].tolist() == [0, 0, 0, 0, 0, 1, 0, 10, 11]
    # centre (0, 0), d = 2: rows -2, 0, 2 x cols -2, 0, 2
    assert win[0, 0, 1].tolist() == [0, 0, 0, 0, 0, 2, 0, 20, 22]
    # centre (2, 2), d = 2: rows 0, 2, 4 x cols 0, 2, 4, all inside
    assert win[2, 2, 1].tolist() == [0, 2, 4, 20, 22, 24, 40, 42, 44]
    # centre (4, 3), d = 1: rows 3, 4, 5 x cols 2, 3, 4; row 5 is padding
    assert win[4, 3, 0].tolist() == [32, 33, 34, 42, 43, 44, 0, 0, 0]


def test_1d_windows_by_hand():
    # a = 1 .. 7, radius 1, dilations (1, 3)
    spec = WindowSpec(dims=1, height=1, width=7, radius=1, dilations=(1, 3), element_width=4)
    win = dilated_windows(spec, torch.arange(1, 8).reshape(1, 7, 1))[0, ..., 0]   # (L, n_dil, K)
    assert win[0].tolist() == [[0, 1, 2], [0, 1, 4]]          # x - 1, x - 3 are padding
    assert win[3].tolist() == [[3, 4, 5], [1, 4, 7]]
    assert win[6].tolist() == [[6, 7, 0], [4, 7, 0]]


def python_windows(spec: WindowSpec, maps) -> list:
    """Independent reference: nested Python loops over plain lists."""
    out = []
    H = spec.height if spec.dims == 2 else 1
    for one in maps.tolist():
        grid = one if spec.dims == 2 else [one]
        rows = []
        for y in range(H):
            cols = []
            for x in range(spec.width):
                per_d = []
                for d in spec.dilations:
                    taps = []
                    rng = range(-spec.radius, spec.radius + 1)
                    offsets = [(i, j) for i in rng for j in rng] if spec.dims == 2 else [(0, j) for j in rng]
                    for i, j in offsets:
                        yy, xx = y + d * i, x + d * j
                        inside = 0 <= yy < H and 0 <= xx < spec.width
                        taps.append(grid[yy][xx] if inside else [0] * spec.channels)
                    per_d.append(taps)
                cols.append(per_d)
            rows.append(cols)
        out.append(rows if spec.dims == 2 else rows[0])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_matches_plain_python_loops(seed):
    rng = random.Random(seed)
    radius = rng.choice([1, 2])
    dilations = tuple(sorted(rng.sample([1, 2, 3, 4], rng.randint(1, 3))))
    span = 2 * radius * max(dilations) + 1
    dims = rng.choice([1, 2])
    spec = WindowSpec(dims=dims, height=rng.randint(span, span + 3) if dims == 2 else 1,
                      width=rng.randint(span, span + 4), radius=radius, dilations=dilations,
                      channels=rng.randint(1, 3), element_width=rng.choice([1, 4, 8]),
                      signed=rng.choice([False, True]))
    maps = window_random_maps(spec, 2, seed=seed)
    assert dilated_windows(spec, maps).tolist() == python_windows(spec, maps)


# ---- the model's masks agree with the windows ---------------------------------------------------

@pytest.mark.parametrize("dims, height, width, radius, d", [(2, 7, 9, 1, 3), (2, 6, 6, 2, 1), (1, 1, 11, 2, 2)])
def test_window_mask_marks_exactly_the_in_map_taps(dims, height, width, radius, d):
    spec = WindowSpec(dims=dims, height=height, width=width, radius=radius, dilations=(d,),
                      element_width=8)
    n = height * width
    ids = torch.arange(1, n + 1).reshape(1, *spec.map_shape())       # token q carries the value q + 1
    win = dilated_windows(spec, ids).reshape(n, spec.taps)
    from_windows = torch.zeros(n, n, dtype=torch.bool)
    for p in range(n):
        for v in win[p].tolist():
            if v:
                from_windows[p, v - 1] = True
    assert torch.equal(window_mask(height, width, radius, d), from_windows)


def test_global_window_covers_everything():
    assert is_global_window(4, 6, 5, 1) and not is_global_window(4, 6, 4, 1) and not is_global_window(4, 6, 9, 2)
    assert bool(window_mask(4, 6, 5, 1).all())
    assert not bool(window_mask(4, 6, 4, 1).all())   # from column 0, column 5 is out of reach


# ---- hardware in Amaranth's simulator -----------------------------------------------------------

def stream_case(spec, n_maps, seed):
    ref = window_reference(spec, window_random_maps(spec, n_maps, seed=seed))
    layout = window_output_layout(spec)
    expected = [pack(layout, b) for b in window_expected_beats(spec, ref["windows"])]
    return window_input_beats(spec, ref["maps"]), expected


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_rtl_amaranth_sim_bit_exact(name):
    spec, n_maps = COSIM_SPECS[name]
    beats, expected = stream_case(spec, 1 if spec.positions > 100 else n_maps, seed=11)
    run = run_stream(DilatedWindowBuffer(spec), beats, len(expected), seed=5, valid_prob=0.6, ready_prob=0.6)
    assert run.outputs == expected


@pytest.mark.parametrize("spec", [
    WindowSpec(height=7, width=9, radius=1, dilations=(1, 3), channels=2),
    WindowSpec(dims=1, height=1, width=10, radius=2, dilations=(1, 2), element_width=8, signed=True),
])
def test_latency_and_throughput_match_the_docstring(spec):
    """No gaps: one element accepted per cycle across 3 back-to-back maps; the window of global
    position n is valid in cycle n + lead + 1 (lead = R W + R in 2-D, R in 1-D)."""
    beats, expected = stream_case(spec, 3, seed=0)
    dut = DilatedWindowBuffer(spec)
    run = run_stream(dut, beats, len(expected))
    lead = spec.reach * (spec.width if spec.dims == 2 else 0) + spec.reach   # R W + R, from the docstring
    assert run.accept_cycles == list(range(len(beats)))
    assert run.output_cycles == [n + lead + 1 for n in range(len(expected))]
    assert dut.fill_latency == lead + 1
    assert run.outputs == expected


def test_late_input_between_maps_costs_a_realignment_but_stays_exact():
    """With gaps only at map boundaries the 2-D buffer flushes, realigns and resumes."""
    spec = WindowSpec(height=5, width=6, radius=1, dilations=(1, 2), channels=1, element_width=2)
    beats, expected = stream_case(spec, 4, seed=3)
    run = run_stream(DilatedWindowBuffer(spec), beats, len(expected), seed=9, valid_prob=0.3, ready_prob=0.9)
    assert run.outputs == expected


def test_stalled_output_takes_only_the_fill():
    """Output never ready: exactly lead + 1 elements enter (fill, then the first window waits)."""
    from amaranth.sim import Simulator

    spec = WindowSpec(height=5, width=6, radius=1, dilations=(1, 2))
    dut = DilatedWindowBuffer(spec)
    accepted = []

    async def bench(ctx):
        ctx.set(dut.i_stream.valid, 1)
        for _ in range(3 * spec.positions):
            _, _, ready = await ctx.tick().sample(dut.i_stream.ready)
            accepted.append(ready)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert sum(accepted) == spec.reach * spec.width + spec.reach + 1   # R W + R + 1 = 2*6 + 2 + 1 = 15


# ---- memory: the docstring formula, in the generated design, independent of the maps streamed ---

def memories_in_verilog(text: str) -> list[tuple[int, int]]:
    """(word width, depth) of every memory array the Verilog declares."""
    return [(int(hi) - int(lo) + 1, int(dhi) - int(dlo) + 1)
            for hi, lo, dhi, dlo in re.findall(r"reg \[(\d+):(\d+)\] \w+ \[(\d+):(\d+)\];", text)]


@pytest.mark.parametrize("spec", [
    WindowSpec(height=16, width=16, radius=1, dilations=(1, 2, 4)),
    WindowSpec(height=9, width=13, radius=2, dilations=(1, 2), channels=3, element_width=8),
    WindowSpec(dims=1, height=1, width=64, radius=1, dilations=(1, 2, 4), channels=4),
])
def test_memory_equals_the_docstring_formula(spec):
    R, E = spec.radius * max(spec.dilations), spec.channels * spec.element_width
    formula = (2 * R * spec.width * E) if spec.dims == 2 else 0        # 2 R W C width bits; 1-D: none
    assert spec.memory_bits == formula
    mems = memories_in_verilog(to_verilog(DilatedWindowBuffer(spec), "dut"))
    assert sum(w * d for w, d in mems) == formula
    if spec.dims == 2:
        assert mems == [(2 * R * E, spec.width)]                        # one word per column


def test_memory_is_independent_of_the_number_of_maps():
    """The design has no parameter for the number of maps: one elaborated buffer streams 1 map and
    then 5 maps exactly, and its memories are the same as a fresh buffer's."""
    spec = WindowSpec(height=5, width=7, radius=1, dilations=(1, 2), channels=2)
    dut = DilatedWindowBuffer(spec)
    text = to_verilog(dut, "dut")
    for n_maps in (1, 5):
        beats, expected = stream_case(spec, n_maps, seed=n_maps)
        assert run_stream(dut, beats, len(expected), seed=2, valid_prob=0.8, ready_prob=0.8).outputs == expected
    assert memories_in_verilog(text) == memories_in_verilog(to_verilog(DilatedWindowBuffer(spec), "dut"))
    assert sum(w * d for w, d in memories_in_verilog(text)) == spec.memory_bits


def test_closing_note_numbers_16x16_radius1_dilations_124():
    """Measured, not computed: the first window's cycle and the memory in the generated Verilog."""
    spec = WindowSpec(height=16, width=16, radius=1, dilations=(1, 2, 4))
    beats, expected = stream_case(spec, 1, seed=0)
    run = run_stream(DilatedWindowBuffer(spec), beats, len(expected))
    assert run.output_cycles[0] - run.accept_cycles[0] == 69          # R W + R + 1 = 4*16 + 4 + 1
    assert run.output_cycles[-1] - run.output_cycles[0] == 255         # then one window per cycle
    mems = memories_in_verilog(to_verilog(DilatedWindowBuffer(spec), "dut"))
    assert mems == [(8, 16)]                                           # 2R = 8 rows x 16 columns x 1 bit
    # registers, tap-carrying lanes only: lane k = R - d i, length max(R - d j) + 1 (R = 4):
    # lane 4 (i = 0): 4 + 4 + 1 = 9; lanes 3, 5 (d 1): 6 each; lanes 2, 6 (d 2): 7 each; lanes 0, 8 (d 4): 9 each
    assert window_register_bits(spec) == 9 + 2 * 6 + 2 * 7 + 2 * 9    # = 53 of the 81 a full 9 x 9 would need


# ---- command line ------------------------------------------------------------------------------

def test_cli_writes_window_verilog_and_refuses_oversized_windows(tmp_path):
    import subprocess
    import sys

    from spikeforge.cli import main

    out = tmp_path / "w.v"
    assert main(["verilog", "window", "--height", "8", "--width", "10", "--dilations", "1", "2",
                 "--channels", "2", "-o", str(out)]) == 0
    text = out.read_text()
    assert "module dilated_window_buffer(" in text and "o_stream__payload" in text
    # 2R = 4 rows x 2 channels = 8-bit words, one per column (10)
    assert memories_in_verilog(text) == [(8, 10)]
    bad = subprocess.run([sys.executable, "-m", "spikeforge", "verilog", "window", "--height", "8", "-o",
                          str(tmp_path / "x.v")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "dilation 4 with radius 1 spans 9 elements per axis, larger than the map's height 8" in bad.stderr
