"""Dilated windows: the spec, the exact integer reference and the attention masks built on them.

A ``WindowSpec`` describes a feature map -- a 1-D sequence of length L or a 2-D
grid of H x W tokens (not necessarily square) -- of C channels, each element
``element_width`` bits, and the neighbourhood every position sees: radius w
(2w + 1 taps per axis) at each dilation d of ``dilations``.

Integer mode (the hardware contract, ``rtl.window.DilatedWindowBuffer``)
-----------------------------------------------------------------------
For a 2-D map ``a[y, x, c]`` and every centre (y, x), dilation index n
(dilation ``d = dilations[n]``) and tap k::

    i = k // (2w + 1) - w,  j = k % (2w + 1) - w     (row offset outer, column offset inner)
    window[y, x, n, k, c] = a[y + d i, x + d j, c]   if 0 <= y + d i < H and 0 <= x + d j < W
                          = 0                         otherwise (zero padding)

so tap k = 0 is the top-left (-w, -w), tap (2w+1)^2 // 2 the centre and the last
one the bottom-right (+w, +w); dilations appear in spec order. A 1-D map
``a[x, c]`` has taps ``k = 0 .. 2w``, ``j = k - w``: ``window[x, n, k, c] = a[x + d j, c]``
or 0 outside. Values are copied, never changed: the reference is exact for
any element width, signed or unsigned.

Validation: the window must fit the map, ``2 d w + 1 <= W`` (and ``<= H`` in
2-D) for every dilation; a larger window is a ``SpecError`` naming the
dilation, its span and the map size, never a silent crop.

Attention masks (the model's view of the same windows)
-------------------------------------------------------
``window_mask`` gives, for a map flattened in raster order, ``M[p, q] = 1`` iff q
is one of p's in-map taps. With zero padding, attention over the gathered
window (padding taps contribute 0) equals attention over all tokens with
``M`` applied; ``tests/test_window.py`` checks this against ``dilated_windows``.
A head whose window covers the whole map (dilation 1 and ``w >= max(H, W) - 1``)
is global attention (``M`` all ones): the model allows it for baselines, the
buffer spec does not need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import fixed
from .spec import SpecBase, SpecError, check_bool, check_choice, check_int

PADDING_MODES = ("zero",)


@dataclass(frozen=True)
class WindowSpec(SpecBase):
    """A dilated-window neighbourhood over a streamed feature map.

    Attributes
    ----------
    dims : 1 (sequence of length ``width``) or 2 (grid of ``height`` x ``width``).
    height : H, rows of a 2-D map (1 .. 4096); must be 1 for a 1-D map.
    width : W, columns of a 2-D map, or the length L of a 1-D map (1 .. 4096).
    radius : w, taps -w .. w per axis (1 .. 16).
    dilations : the distinct dilations d (1 .. 256 each, at most 8), in emission order.
    channels : C, values per map position (1 .. 1024).
    element_width : bits of each value (1 .. 32); 1 for spikes.
    signed : whether values are two's complement (only their range check and the
        stream layout depend on it; windows copy bits).
    padding : edge handling; "zero" (taps outside the map read 0).
    """

    block = "window"

    dims: int = 2
    height: int = 16
    width: int = 16
    radius: int = 1
    dilations: tuple[int, ...] = (1, 2, 4)
    channels: int = 1
    element_width: int = 1
    signed: bool = False
    padding: str = "zero"

    def __post_init__(self):
        name = "WindowSpec"
        check_int(name, "dims", self.dims, 1, 2)
        check_int(name, "height", self.height, 1, 4096)
        check_int(name, "width", self.width, 1, 4096)
        if self.dims == 1 and self.height != 1:
            raise SpecError(f"WindowSpec.height = {self.height}: a 1-D map (dims = 1) has height 1; "
                            f"its length is WindowSpec.width")
        check_int(name, "radius", self.radius, 1, 16)
        if not isinstance(self.dilations, tuple) or not 1 <= len(self.dilations) <= 8:
            raise SpecError(f"WindowSpec.dilations must be a tuple of 1 .. 8 dilations, got {self.dilations!r}")
        for d in self.dilations:
            check_int(name, "dilations", d, 1, 256)
        if len(set(self.dilations)) != len(self.dilations):
            raise SpecError(f"WindowSpec.dilations = {self.dilations} repeats a dilation; each must be distinct")
        for d in self.dilations:
            span = 2 * d * self.radius + 1
            axes = [("width", self.width)] + ([("height", self.height)] if self.dims == 2 else [])
            for axis, size in axes:
                if span > size:
                    raise SpecError(
                        f"WindowSpec.dilations: dilation {d} with radius {self.radius} spans {span} elements "
                        f"per axis, larger than the map's {axis} {size}; allowed: 2 * d * radius + 1 <= {size} "
                        f"(use a smaller dilation or radius, or a larger map)")
        check_int(name, "channels", self.channels, 1, 1024)
        check_int(name, "element_width", self.element_width, 1, 32)
        check_bool(name, "signed", self.signed)
        check_choice(name, "padding", self.padding, PADDING_MODES)

    # ---- derived sizes (the hardware's widths and memory come from these) ----

    @property
    def taps_per_axis(self) -> int:
        return 2 * self.radius + 1

    @property
    def taps(self) -> int:
        """K: taps per dilation, (2w+1) in 1-D or (2w+1)^2 in 2-D."""
        return self.taps_per_axis ** self.dims

    @property
    def reach(self) -> int:
        """R = w * max(d): how far the widest window reaches from its centre along an axis."""
        return self.radius * max(self.dilations)

    @property
    def positions(self) -> int:
        """Positions (and windows) per map: H * W."""
        return self.height * self.width

    @property
    def element_bits(self) -> int:
        """E = C * element_width: bits of one map position (one input beat)."""
        return self.channels * self.element_width

    @property
    def window_bits(self) -> int:
        """Bits of one output beat: len(dilations) * K * C * element_width."""
        return len(self.dilations) * self.taps * self.element_bits

    @property
    def line_rows(self) -> int:
        """Rows of history the buffer keeps: 2R in 2-D (the largest dilation's reach above and
        below the centre), 0 in 1-D (a sequence needs no line buffer)."""
        return 2 * self.reach if self.dims == 2 else 0

    @property
    def memory_bits(self) -> int:
        """Line-buffer memory: 2R * W * C * element_width bits in 2-D, 0 in 1-D."""
        return self.line_rows * self.width * self.element_bits

    @property
    def lead(self) -> int:
        """Elements that must follow a centre in raster order before its window is complete:
        R * W + R in 2-D, R in 1-D."""
        return (self.reach * self.width if self.dims == 2 else 0) + self.reach

    def tap_offsets(self) -> list[tuple[int, int]]:
        """(row offset i, column offset j) of every tap in tap order (1-D: i = 0)."""
        w = self.radius
        if self.dims == 1:
            return [(0, j) for j in range(-w, w + 1)]
        return [(i, j) for i in range(-w, w + 1) for j in range(-w, w + 1)]

    def map_shape(self) -> tuple[int, ...]:
        """Shape of one map: (H, W, C) in 2-D, (L, C) in 1-D."""
        if self.dims == 1:
            return (self.width, self.channels)
        return (self.height, self.width, self.channels)

    def window_shape(self) -> tuple[int, ...]:
        """Shape of one map's windows: (H, W, n_dil, K, C) in 2-D, (L, n_dil, K, C) in 1-D."""
        return self.map_shape()[:-1] + (len(self.dilations), self.taps, self.channels)


def check_maps(spec: WindowSpec, maps) -> torch.Tensor:
    """Return ``maps`` as int64 (S, *map_shape), or raise ValueError naming the problem."""
    t = fixed.check_range(maps, spec.element_width, spec.signed, "window map values")
    shape = spec.map_shape()
    if t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != shape:
        raise ValueError(f"window maps must have shape (maps, {', '.join(map(str, shape))}) for this spec; "
                         f"got {tuple(t.shape)}")
    return t


def dilated_windows(spec: WindowSpec, maps) -> torch.Tensor:
    """The exact window of every position (see the module docstring for the tap order).

    Parameters
    ----------
    maps : integer tensor (S, H, W, C) in 2-D or (S, L, C) in 1-D, every value an
        ``element_width``-bit (un)signed integer.

    Returns
    -------
    int64 tensor (S, H, W, n_dil, K, C) or (S, L, n_dil, K, C).
    """
    maps = check_maps(spec, maps)
    s_count = maps.shape[0]
    R = spec.reach
    if spec.dims == 1:
        padded = torch.zeros(s_count, spec.width + 2 * R, spec.channels, dtype=torch.int64)
        padded[:, R:R + spec.width] = maps
        per_dil = []
        for d in spec.dilations:
            taps = [padded[:, R + d * j:R + d * j + spec.width] for _, j in spec.tap_offsets()]
            per_dil.append(torch.stack(taps, dim=2))          # (S, L, K, C)
        return torch.stack(per_dil, dim=2)                    # (S, L, n_dil, K, C)
    H, W = spec.height, spec.width
    padded = torch.zeros(s_count, H + 2 * R, W + 2 * R, spec.channels, dtype=torch.int64)
    padded[:, R:R + H, R:R + W] = maps
    per_dil = []
    for d in spec.dilations:
        taps = [padded[:, R + d * i:R + d * i + H, R + d * j:R + d * j + W] for i, j in spec.tap_offsets()]
        per_dil.append(torch.stack(taps, dim=3))              # (S, H, W, K, C)
    return torch.stack(per_dil, dim=3)                        # (S, H, W, n_dil, K, C)


def window_random_maps(spec: WindowSpec, n_maps: int, seed: int = 0) -> torch.Tensor:
    """Seeded stimulus (n_maps, *map_shape): uniform values over the whole element range,
    with about 5 % forced to each extreme so that every bit of the payload toggles."""
    if n_maps < 1:
        raise ValueError(f"need n_maps >= 1, got {n_maps}")
    gen = torch.Generator().manual_seed(seed)
    lo, hi = fixed.int_min(spec.element_width, spec.signed), fixed.int_max(spec.element_width, spec.signed)
    shape = (n_maps, *spec.map_shape())
    values = torch.randint(lo, hi + 1, shape, generator=gen, dtype=torch.int64)
    pick = torch.rand(shape, generator=gen)
    values = torch.where(pick < 0.05, torch.tensor(lo), values)
    return torch.where(pick > 0.95, torch.tensor(hi), values)


def window_reference(spec: WindowSpec, maps) -> dict[str, torch.Tensor]:
    """Arrays of a window vector file: ``maps`` and ``windows``."""
    maps = check_maps(spec, maps)
    return {"maps": maps, "windows": dilated_windows(spec, maps)}


# ---------------------------------------------------------------------------
# The model's view: masks over tokens in raster order


def is_global_window(height: int, width: int, radius: int, dilation: int) -> bool:
    """True when a dilation-``dilation`` window of radius w covers every token of an H x W map
    from every centre: dilation 1 and w >= max(H, W) - 1."""
    return dilation == 1 and radius >= max(height, width) - 1


def window_mask(height: int, width: int, radius: int, dilation: int) -> torch.Tensor:
    """Bool (N, N), N = H W in raster order: ``M[p, q]`` iff token q is an in-map tap of p's
    window (|dy|, |dx| <= d w and both multiples of d). 1-D maps use height = 1.

    Unlike ``WindowSpec`` this does not refuse windows larger than the map: the model uses it
    for global attention (``is_global_window``) as well as for windows that fit.
    """
    for name, value in (("height", height), ("width", width), ("radius", radius), ("dilation", dilation)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"window_mask: {name} must be a positive integer, got {value!r}")
    ys = torch.arange(height).repeat_interleave(width)
    xs = torch.arange(width).repeat(height)
    dy = ys[None, :] - ys[:, None]
    dx = xs[None, :] - xs[:, None]
    reach = dilation * radius
    return ((dy % dilation == 0) & (dx % dilation == 0) & (dy.abs() <= reach) & (dx.abs() <= reach))
