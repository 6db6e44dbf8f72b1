"""Multiply-accumulate engine under Verilator, bit for bit against golden vectors.

Every configuration's golden vector file is written, read back through the
checked loader, turned into command beats and run by the shared cocotb bench
with seeded random valid/ready gaps. Each output beat carries P currents and
the ``last`` flag of its STEP, both compared with ``==``.
"""

from __future__ import annotations

import pytest
import torch

from golden.mac import MACSpec, mac_count, mac_reference
from golden.vectors import load_vectors, save_vectors
from rtl.mac import MACEngine, mac_expected_beats, mac_input_beats

# name -> (spec, random_program options, load the memories through the write ports?)
# each performs at least 10,000 multiply-accumulates (tests/test_mac.py checks the matrix)
COSIM_CONFIGS = {
    # the default spec (P = 4, Gmax = 16, 8-bit weights and values, 32-bit accumulators), memories
    # initialised from the golden file, run-time writes between the events
    "default-init": (MACSpec(), dict(layers=12, events=40, writes=0.03), False),
    # P = 1 and Gmax = 1: every event is groups = 1 on the same accumulator word, back to back;
    # 9-bit accumulators and 7-bit outputs that saturate; memories loaded through the write ports
    "p1-g1-saturating": (MACSpec(lanes=1, weight_depth=64, weight_width=5, value_width=4, max_groups=1,
                                 acc_width=9, bias_depth=4, bias_width=8, out_width=7, shift_width=3),
                         dict(layers=400, events=26, writes=0.05), True),
    # wide: P = 8, 16-bit values and weights (32-bit products), 40-bit accumulators, 6-bit shifts,
    # depths that are not powers of two; loaded through the write ports
    "p8-wide": (MACSpec(lanes=8, weight_depth=200, weight_width=16, value_width=16, max_groups=24, acc_width=40,
                        bias_depth=40, bias_width=32, out_width=20, shift_width=6),
                dict(layers=12, events=10, writes=0.05), True),
    # spike-like 2-bit values, 4-bit weights, 10-bit accumulators that saturate, P = 3, Gmax = 5
    "p3-narrow": (MACSpec(lanes=3, weight_depth=30, weight_width=4, value_width=2, max_groups=5, acc_width=7,
                          bias_depth=8, bias_width=6, out_width=8, shift_width=3),
                  dict(layers=40, events=30, writes=0.05), False),
}


def write_mac_vectors(directory, spec: MACSpec, seed: int, **options):
    return save_vectors(directory, "mac", spec.to_dict(), seed, mac_reference(spec, seed, **options), meta=options)


def mac_stream_from_vectors(directory, load: bool):
    """Golden vector directory -> (spec, vectors, input beats, expected output beats).

    ``load``: the stream first writes the weights and biases through the write ports (the
    design then starts from zero memories); otherwise the design's memories hold them.
    """
    vectors = load_vectors(directory, block="mac")
    spec = MACSpec.from_dict(vectors.spec)
    commands = torch.as_tensor(vectors["commands"])
    beats = mac_input_beats(spec, commands, *((vectors["weights"], vectors["biases"]) if load else ()))
    expected = mac_expected_beats(spec, vectors["outputs"], commands)
    return spec, vectors, beats, expected


def config_vectors(tmp_path, name, seed: int = 13):
    """(spec, engine factory, input beats, expected beats, vectors) of configuration ``name``."""
    spec, options, load = COSIM_CONFIGS[name]
    directory = write_mac_vectors(tmp_path / "vectors", spec, seed, **options)
    spec, vectors, beats, expected = mac_stream_from_vectors(directory, load)

    def make_engine():
        if load:
            return MACEngine(spec)
        return MACEngine(spec, init_weights=vectors["weights"], init_biases=vectors["biases"])
    return spec, make_engine, beats, expected, vectors


@pytest.mark.parametrize("name", sorted(COSIM_CONFIGS))
def test_mac_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, make_engine, beats, expected, vectors = config_vectors(tmp_path, name)
    assert mac_count(spec, vectors["commands"]) >= 10_000
    # module name of the registry: a configuration loaded through the ports builds the same
    # Verilog as `spikeforge check mac` and shares its cached build
    report = cosim(make_engine(), "mac_engine", beats, expected, tmp_path / "run",
                   seed=7, valid_prob=0.7, ready_prob=0.6)
    assert report.result.beats_checked == len(expected)
    assert report.mismatches == 0, report.explain()


def test_check_command_path_for_mac_vectors(tmp_path):
    """`spikeforge check mac` (registry: zero memories, the stream loads weights and biases first)."""
    from spikeforge.blocks import get_block
    from spikeforge.demo import check_vectors

    spec, options, _ = COSIM_CONFIGS["p8-wide"]
    directory = write_mac_vectors(tmp_path / "vectors", spec, 21, **options)
    report = check_vectors(get_block("mac"), directory, seed=2, workdir=tmp_path / "run")
    assert report.mismatches == 0, report.details
    vectors = load_vectors(directory)
    assert report.work == mac_count(spec, vectors["commands"])
    assert report.beats == len(vectors["outputs"])
