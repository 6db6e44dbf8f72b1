"""Verilog emission of any Spikeforge component (through Amaranth's built-in Yosys)."""

from __future__ import annotations

import re

from amaranth.back import verilog as amaranth_verilog
from amaranth.lib import wiring

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def to_verilog(component: wiring.Component, name: str) -> str:
    """Return the Verilog text of ``component`` as module ``name`` (ports from its signature)."""
    if not _IDENT.match(name):
        raise ValueError(f"module name {name!r} is not a Verilog identifier")
    return amaranth_verilog.convert(component, name=name, emit_src=False)
