"""Shared machinery for block specs.

Every hardware block has one frozen dataclass spec (``LIFSpec``, ``TopKSpec``, ...).
A spec validates itself in ``__post_init__`` with the helpers below, so that a bad
value is reported as one ``SpecError`` naming the field, the value and what is
allowed, never as a failure deep inside torch or Amaranth.

Specs serialise to plain dicts (``to_dict``) for vector manifests and the command
line, and come back with ``from_dict``, which rejects unknown or missing fields.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Iterable


class SpecError(ValueError):
    """A spec field holds a value outside what the block supports."""


def check_int(spec_name: str, field: str, value: Any, lo: int | None = None,
              hi: int | None = None) -> None:
    """Raise ``SpecError`` unless ``value`` is an int (not bool) with lo <= value <= hi."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{spec_name}.{field} must be an integer, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "+inf" if hi is None else str(hi)
        raise SpecError(f"{spec_name}.{field} = {value} is out of range; allowed: {lo_s} .. {hi_s}")


def check_choice(spec_name: str, field: str, value: Any, choices: Iterable[str]) -> None:
    """Raise ``SpecError`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise SpecError(f"{spec_name}.{field} = {value!r} is not allowed; choose one of {', '.join(choices)}")


def check_bool(spec_name: str, field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{spec_name}.{field} must be true or false, got {value!r}")


class SpecBase:
    """Mixin for frozen dataclass specs: dict round trip with strict field checks."""

    #: short block name used in manifests and on the command line (set by subclasses)
    block: typing.ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if not isinstance(data, dict):
            raise SpecError(f"{cls.__name__} must be given as a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpecError(f"{cls.__name__} has no field(s) {', '.join(unknown)}; "
                            f"known fields: {', '.join(sorted(names))}")
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, value in data.items():
            if isinstance(value, list) and "tuple" in str(hints.get(key, "")).lower():
                value = tuple(value)
            kwargs[key] = value
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a missing required field
            raise SpecError(f"{cls.__name__}: {exc}") from None

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
