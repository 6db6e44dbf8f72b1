"""MTTS encoder under Verilator, bit for bit against golden vectors.

Every configuration's golden vector file is written, read back through the
checked loader, turned into stream beats and run through ``rtl.MTTSEncoder`` by
the shared cocotb bench with seeded random valid/ready gaps. Every output beat
(first-spike times and silent flags, or the expanded spike bits, and the running
silent count) must equal the golden one, so the hardware's silent counter is
checked after every beat and its final value equals the golden total.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golden.mtts import MTTSSpec, mtts_random_values, mtts_reference
from golden.vectors import load_vectors, save_vectors
from rtl.mtts import MTTSEncoder, mtts_expected_beats, mtts_input_beats

DATA = Path(__file__).resolve().parent / "data" / "matterhorn_mtts"
TRAINED_SPEC = MTTSSpec(input_width=5, signed=True, time_steps=8, lanes=8, lo=-16, hi=15, emit="spikes",
                        train="step", mask_value=0, dead_zone=True, dead_lo=-8, dead_hi=8)

# name -> (spec, beats); each checks at least 20,000 values, T in {4, 8, 16}, both output forms,
# with and without mask and dead zone.
COSIM_SPECS = {
    # compact code, T = 4, mask only, signed 8-bit over the whole input range
    "code-T4-mask-P8": (MTTSSpec(input_width=8, signed=True, time_steps=4, lanes=8, lo=-128, hi=127,
                                 mask_value=0), 2500),
    # expanded step trains, T = 8, mask and dead zone: the trained Matterhorn's encoder (5-bit codes,
    # mask 0, dead zone [-8, 8]; the same design as the real-activation run below, one build for both)
    "step-T8-mask-dz-P8": (TRAINED_SPEC, 2500),
    # expanded single spikes, T = 16, no mask and no dead zone (plain TTFS: lo is silent)
    "single-T16-plain-P5": (MTTSSpec(input_width=6, signed=False, time_steps=16, lanes=5, lo=3, hi=60,
                                     emit="spikes", train="single", mask=False), 4000),
    # compact code, T = 16, unsigned 12-bit, R = 998 (a non-trivial reciprocal), mask + dead zone,
    # an 8-bit counter that wraps many times
    "code-T16-dz-wrap-P6": (MTTSSpec(input_width=12, signed=False, time_steps=16, lanes=6, lo=3, hi=1000,
                                     mask_value=17, dead_zone=True, dead_lo=10, dead_hi=40, counter_width=8),
                            3400),
}


def write_mtts_vectors(directory, spec: MTTSSpec, beats: int, seed: int):
    values = mtts_random_values(spec, beats, seed=seed)
    return save_vectors(directory, "mtts", spec.to_dict(), seed, mtts_reference(spec, values))


def mtts_stream_from_vectors(directory_or_vectors):
    """Golden vector directory (or loaded VectorSet) -> (spec, input beats, expected output beats, total)."""
    vectors = directory_or_vectors
    if not hasattr(vectors, "arrays"):
        vectors = load_vectors(directory_or_vectors, block="mtts")
    spec = MTTSSpec.from_dict(vectors.spec)
    return (spec, mtts_input_beats(spec, vectors["values"]), mtts_expected_beats(spec, vectors.arrays),
            int(vectors["silent"].sum()))


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_mtts_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, beats = COSIM_SPECS[name]
    assert beats * spec.lanes >= 20_000
    directory = write_mtts_vectors(tmp_path / "vectors", spec, beats, seed=7)
    spec, inputs, expected, silent_total = mtts_stream_from_vectors(directory)
    report = cosim(MTTSEncoder(spec), "mtts_encoder", inputs, expected, tmp_path / "run",
                   seed=3, valid_prob=0.7, ready_prob=0.7)
    assert report.result.beats_checked == beats
    assert report.mismatches == 0, report.explain()
    # the hardware counter in the last beat (checked bit for bit above) is the golden silent total
    assert expected[-1]["count"] == silent_total % (1 << spec.counter_width)
    assert silent_total > 0


def trained_activation_stream():
    """The committed real activations of the trained Matterhorn (hash-checked) -> beats.

    The expected beats come from the golden encoder now; the manifest's silent total (written
    with the file) must agree with it.
    """
    from golden.mtts import mtts_reference

    vectors = load_vectors(DATA, block="matterhorn-activations")
    spec = MTTSSpec.from_dict(vectors.spec)
    arrays = mtts_reference(spec, vectors["values"].astype("int64"))
    total = int(arrays["silent"].sum())
    assert total == vectors.meta["silent_total"]
    return spec, mtts_input_beats(spec, arrays["values"].numpy()), mtts_expected_beats(
        spec, {k: v.numpy() for k, v in arrays.items()}), total


def test_mtts_verilator_trained_activations(tmp_path):
    """The trained model's held-out stem codes through the encoder, bit for bit, silent count included."""
    from sim.harness import cosim

    spec, inputs, expected, total = trained_activation_stream()
    assert spec == TRAINED_SPEC  # shares the Verilator build of the step-T8 configuration
    assert len(inputs) * spec.lanes >= 20_000
    report = cosim(MTTSEncoder(spec), "mtts_encoder", inputs, expected, tmp_path, seed=9,
                   valid_prob=0.7, ready_prob=0.7)
    assert report.mismatches == 0, report.explain()
    assert expected[-1]["count"] == total
