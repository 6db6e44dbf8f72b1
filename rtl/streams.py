"""Packing stream payloads to and from plain Python values.

The ``data.Layout`` of a stream is the one definition of its bit format: the
Amaranth simulator, the cocotb testbenches and the board driver all pack and
unpack through the layout, so no test repeats a field offset by hand.
"""

from __future__ import annotations

from typing import Any

from amaranth.lib import data


def pack(layout: data.Layout, value: Any) -> int:
    """Python value (dict / list / int, nested like the layout) -> the payload bits as an int."""
    return layout.const(value).as_bits()


def to_python(view: Any) -> Any:
    """A ``data.Const`` view (or a plain int) -> nested dicts, lists and ints."""
    if isinstance(view, int):
        return view
    layout = view.shape()
    if isinstance(layout, data.StructLayout):
        return {name: to_python(getattr(view, name)) for name, _ in layout}
    if isinstance(layout, data.ArrayLayout):
        return [to_python(view[i]) for i in range(layout.length)]
    raise TypeError(f"cannot convert a view of {layout!r}")


def unpack(layout: data.Layout, bits: int) -> Any:
    """Payload bits (int) -> nested dicts, lists and ints, signed fields sign-extended."""
    return to_python(layout.from_bits(bits))
