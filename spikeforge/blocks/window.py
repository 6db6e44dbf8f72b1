"""Registry entry of the dilated window buffer."""

import math

from golden.window import WindowSpec, window_random_maps, window_reference
from rtl.window import DilatedWindowBuffer, window_expected_beats, window_input_beats

from . import Block, VectorOption


def _make_vectors(spec: WindowSpec, seed: int, maps: int) -> dict:
    return window_reference(spec, window_random_maps(spec, maps, seed=seed))


def window_stream_from_vectors(vectors):
    """VectorSet -> (spec, input beats, expected output beats), shapes checked against the spec."""
    spec = WindowSpec.from_dict(vectors.spec)
    maps, windows = vectors["maps"], vectors["windows"]
    if maps.ndim != len(spec.map_shape()) + 1 or tuple(maps.shape[1:]) != spec.map_shape():
        raise ValueError(f"window vectors: 'maps' has shape {maps.shape}, expected (maps, "
                         f"{', '.join(map(str, spec.map_shape()))})")
    if tuple(windows.shape) != (maps.shape[0], *spec.window_shape()):
        raise ValueError(f"window vectors: 'windows' has shape {windows.shape}, expected "
                         f"{(maps.shape[0], *spec.window_shape())}")
    return spec, window_input_beats(spec, maps), window_expected_beats(spec, windows)


BLOCK = Block(
    name="window",
    summary="dilated window buffer (1-D/2-D maps, line buffers in block memory, one window per cycle)",
    spec_cls=WindowSpec,
    toplevel="dilated_window_buffer",
    component=DilatedWindowBuffer,
    make_vectors=_make_vectors,
    stream_from_vectors=window_stream_from_vectors,
    work_done=lambda v: (math.prod(v["windows"].shape[:-3]), "windows"),
    vector_options={"maps": VectorOption(int, 3, "maps streamed back to back")},
    demo_vector_options={"maps": 3},
    vector_size=lambda spec, maps: maps * spec.height * spec.width * len(spec.dilations) * (2 * spec.radius + 1) ** 2 * spec.channels,
)
