"""LIF array under Verilator, bit for bit against golden vectors.

Each spec's golden vector file is written, read back through the checked
loader, turned into stream beats and run through ``rtl.LIFArray`` by the shared
cocotb bench (``sim/stream_bench.py``) with seeded random valid/ready gaps;
every output beat (spike bits and membranes) must equal the golden one.
"""

from __future__ import annotations

import pytest

from golden.lif import LIFSpec, lif_random_currents, lif_reference
from golden.vectors import load_vectors, save_vectors
from rtl.lif import LIFArray, lif_expected_beats, lif_input_beats

# name -> (spec, sequences, steps); each checks at least 10,000 neuron updates.
COSIM_SPECS = {
    # shift leak, subtract reset, N > P (state in memory), membranes streamed out
    "shift-subtract-N64P4": (LIFSpec(n_neurons=64, lanes=4), 8, 20),
    # multiply leak, zero reset, refractory, N = P
    "mult-zero-refr-N8P8": (LIFSpec(n_neurons=8, lanes=8, leak_mode="multiply", leak_beta=200,
                                    leak_frac_bits=8, reset_mode="zero", refractory=3), 50, 26),
    # near saturation: 10-bit membrane fed 10-bit inputs, no reset, spikes only
    "sat-none-N32P2": (LIFSpec(n_neurons=32, lanes=2, membrane_width=10, input_width=10, threshold=400,
                               reset_mode="none", leak_shift=4, emit_membrane=False), 16, 20),
    # wrapping overflow, subtract reset, multiply leak with refractory, N > P
    "wrap-subtract-N48P6": (LIFSpec(n_neurons=48, lanes=6, membrane_width=9, input_width=8,
                                    threshold=120, overflow="wrap", leak_mode="multiply",
                                    leak_beta=250, refractory=1), 10, 21),
}


def write_lif_vectors(directory, spec: LIFSpec, sequences: int, steps: int, seed: int):
    currents = lif_random_currents(spec, sequences, steps, seed=seed)
    return save_vectors(directory, "lif", spec.to_dict(), seed, lif_reference(spec, currents))


def lif_stream_from_vectors(directory):
    """Golden vector directory -> (spec, input beats, expected output beats)."""
    vectors = load_vectors(directory, block="lif")
    spec = LIFSpec.from_dict(vectors.spec)
    return (spec, lif_input_beats(spec, vectors["currents"]),
            lif_expected_beats(spec, vectors["spikes"], vectors["membrane"]))


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_lif_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, sequences, steps = COSIM_SPECS[name]
    assert spec.n_neurons * sequences * steps >= 10_000
    directory = write_lif_vectors(tmp_path / "vectors", spec, sequences, steps, seed=11)
    spec, beats, expected = lif_stream_from_vectors(directory)
    report = cosim(LIFArray(spec), "lif_array", beats, expected, tmp_path / "run",
                   seed=5, valid_prob=0.7, ready_prob=0.7)
    assert report.result.beats_checked == sequences * steps * spec.groups
    assert report.mismatches == 0, report.explain()
