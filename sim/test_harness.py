"""The co-simulation harness itself: it must catch a wrong beat, a missing beat, and cache builds."""

from __future__ import annotations

from golden.lif import LIFSpec, lif_random_currents, lif_reference
from rtl.lif import LIFArray, lif_expected_beats, lif_input_beats
from sim.harness import build_component, cosim

SPEC = LIFSpec(n_neurons=8, lanes=4)


def _beats():
    currents = lif_random_currents(SPEC, 2, 5, seed=3)
    ref = lif_reference(SPEC, currents)
    return lif_input_beats(SPEC, currents), lif_expected_beats(SPEC, ref["spikes"], ref["membrane"])


def test_a_corrupted_expectation_is_reported(tmp_path):
    beats, expected = _beats()
    expected[7] = dict(expected[7], spikes=expected[7]["spikes"] ^ 1)
    report = cosim(LIFArray(SPEC), "lif_array", beats, expected, tmp_path, seed=2)
    assert report.mismatches == 1
    assert report.result.first_errors[0][0] == 7
    assert "beat 7" in report.explain()


def test_a_missing_beat_is_reported(tmp_path):
    beats, expected = _beats()
    report = cosim(LIFArray(SPEC), "lif_array", beats[:-1], expected, tmp_path, seed=2)
    assert report.result.missing == 1 and report.mismatches == 1


def test_an_unchanged_design_is_not_rebuilt():
    first = build_component(LIFArray(SPEC), "lif_array")
    second = build_component(LIFArray(SPEC), "lif_array")
    assert second.cached and second.directory == first.directory
    other = build_component(LIFArray(SPEC.replace(threshold=SPEC.threshold + 1)), "lif_array")
    assert other.directory != first.directory
