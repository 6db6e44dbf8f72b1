"""Dilated window buffer under Verilator, bit for bit against golden vectors.

Each configuration's golden vector file is written, read back through the checked
loader, turned into stream beats and run through ``rtl.DilatedWindowBuffer`` by the
shared cocotb bench with seeded random valid/ready gaps (random back-pressure);
every window of every map (at least 3 full maps each) must equal the golden one.
The last case streams the committed vectors taken from the trained LSFormer's
real spike activations (``sim/data/lsformer_kv``, see ``golden/models/lsformer.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from golden.vectors import load_vectors, save_vectors
from golden.window import WindowSpec, window_random_maps, window_reference

# name -> (spec, maps streamed); payload bits = len(dilations) * taps * channels * element_width
COSIM_SPECS = {
    # the closing-note configuration: 16 x 16 spikes, radius 1, dilations 1, 2, 4 (27-bit windows)
    "2d-16x16-r1-d124-w1": (WindowSpec(height=16, width=16, radius=1, dilations=(1, 2, 4)), 3),
    # non-square, radius 2, mixed dilations, signed 8-bit values (2 * 25 * 8 = 400 bits); height 9 = the d = 2 window exactly
    "2d-9x11-r2-d12-w8": (WindowSpec(height=9, width=11, radius=2, dilations=(1, 2), element_width=8,
                                     signed=True), 4),
    # a map barely larger than the window: d = 2, radius 1 spans 5; 5 x 6 map, 3 channels of spikes
    "2d-5x6-r1-d2-c3-w1": (WindowSpec(height=5, width=6, radius=1, dilations=(2,), channels=3), 5),
    # 1-D sequence, dilations 1, 2, 4, 8-bit values, 2 channels (3 * 3 * 2 * 8 = 144 bits)
    "1d-L19-r1-d124-c2-w8": (WindowSpec(dims=1, height=1, width=19, radius=1, dilations=(1, 2, 4), channels=2,
                                        element_width=8), 6),
}

TRAINED_VECTORS = Path(__file__).parent / "data" / "lsformer_kv"


def write_window_vectors(directory, spec: WindowSpec, n_maps: int, seed: int):
    maps = window_random_maps(spec, n_maps, seed=seed)
    return save_vectors(directory, "window", spec.to_dict(), seed, window_reference(spec, maps))


def check_directory(directory, workdir, seed=5):
    from sim.harness import cosim
    from rtl.window import DilatedWindowBuffer
    from spikeforge.blocks.window import window_stream_from_vectors

    vectors = load_vectors(directory, block="window")
    spec, beats, expected = window_stream_from_vectors(vectors)
    report = cosim(DilatedWindowBuffer(spec), "dilated_window_buffer", beats, expected, workdir,
                   seed=seed, valid_prob=0.7, ready_prob=0.7)
    return spec, vectors, report


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_window_verilator_bit_exact(name, tmp_path):
    spec, n_maps = COSIM_SPECS[name]
    assert n_maps >= 3
    directory = write_window_vectors(tmp_path / "vectors", spec, n_maps, seed=11)
    spec, vectors, report = check_directory(directory, tmp_path / "run")
    assert report.result.beats_checked == n_maps * spec.positions     # every window of every map
    assert report.mismatches == 0, report.explain()


def test_trained_lsformer_activations_verilator_bit_exact(tmp_path):
    """K/V spike maps of the trained LSFormer (committed, hash-checked by the manifest)."""
    spec, vectors, report = check_directory(TRAINED_VECTORS, tmp_path / "run")
    assert vectors.meta.get("source", "").startswith("lsformer checkpoint")
    assert vectors["maps"].shape[0] >= 3
    assert report.result.beats_checked == vectors["maps"].shape[0] * spec.positions
    assert report.mismatches == 0, report.explain()
