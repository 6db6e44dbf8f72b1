"""Board builds: a block behind a UART, for real ECP5 and iCE40 boards.

* ``top.UARTBlockTop``: the core (block + UART + framing), simulated in cocotb.
* ``BOARDS``: the boards (``amaranth-boards`` platforms) and ``board_build``,
  which wraps the core for a board's clock and UART pins and builds a
  bitstream with the YoWASP tools.
* ``driver`` / ``protocol``: the host side (``spikeforge board run``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from amaranth import Elaboratable, Module
from amaranth.lib import io

from .protocol import nbytes

#: board name -> (amaranth-boards module, platform class, toolchain tools, bitstream suffix)
BOARDS = {
    "ulx3s-85f": ("amaranth_boards.ulx3s", "ULX3S_85F_Platform", ("yosys", "nextpnr-ecp5", "ecppack"), "bit"),
    "icebreaker": ("amaranth_boards.icebreaker", "ICEBreakerPlatform", ("yosys", "nextpnr-ice40", "icepack"), "bin"),
}


def get_platform(board: str):
    import importlib

    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r}; known boards: {', '.join(BOARDS)}")
    module, cls, _, _ = BOARDS[board]
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError:
        raise ValueError("board builds need the 'amaranth-boards' package (pip install amaranth-boards)") from None


def uart_divisor(clock_hz: float, baud: int) -> int:
    divisor = int(round(clock_hz / baud))
    if divisor < 4:
        raise ValueError(f"baud rate {baud} is too fast for a {clock_hz / 1e6:g} MHz clock "
                         f"(needs at least 4 clock cycles per bit)")
    return divisor


class BoardTop(Elaboratable):
    """The core wired to a platform's default clock and its ``uart`` resource."""

    def __init__(self, core):
        self.core = core

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_pin = rx_pin = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_pin = tx_pin = io.Buffer("o", uart.tx)
        m.d.comb += [self.core.rx.eq(rx_pin.i), tx_pin.o.eq(self.core.tx)]
        return m


@dataclass
class BoardBuild:
    board: str
    bitstream: Path
    bytes: int
    fmax_mhz: float | None
    clock_mhz: float
    log: Path

    def __str__(self):
        fmax = "n/a" if self.fmax_mhz is None else f"{self.fmax_mhz:.1f} MHz"
        return (f"built {self.bitstream} ({self.board}, {self.bytes} bytes); clock {self.clock_mhz:g} MHz, "
                f"achieved Fmax {fmax}")


def board_plan(board: str, spec=None, baud: int = 115200):
    """The Amaranth build plan (Verilog/RTLIL, pin constraints, build script) of the LIF UART top."""
    from golden.lif import LIFSpec
    from rtl.lif import LIFArray

    from .top import UARTBlockTop

    platform = get_platform(board)
    core = UARTBlockTop(LIFArray(spec or LIFSpec()), uart_divisor(platform.default_clk_frequency, baud))
    # do_build=False returns the plan without requiring the board's programmer tool
    return platform, platform.build(BoardTop(core), name="spikeforge_lif", do_build=False)


def board_build(board: str, out_dir: Path, spec=None, baud: int = 115200) -> BoardBuild:
    """Build the LIF-array UART top for ``board`` into ``out_dir``; return where the bitstream is."""
    from ..tools import find_tool

    get_platform(board)
    _, _, needed, suffix = BOARDS[board]
    env = {}
    for tool in needed:  # Amaranth's build script finds each tool through an environment variable
        env[tool.upper().replace("-", "_")] = find_tool(tool)
    platform, plan = board_plan(board, spec, baud)
    out_dir = Path(out_dir)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        plan.execute_local(str(out_dir))
    except Exception as exc:  # the build script's failure is a subprocess error
        logs = sorted(out_dir.glob("*.tim")) + sorted(out_dir.glob("*.rpt"))
        raise ValueError(f"{board} bitstream build failed ({type(exc).__name__}: {exc}); see {out_dir}"
                         + (f" ({logs[0]})" if logs else "")) from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bitstream = out_dir / f"spikeforge_lif.{suffix}"
    if not bitstream.is_file():
        raise ValueError(f"{board} build finished without {bitstream}")
    log = out_dir / "spikeforge_lif.tim"
    fmax = None
    if log.is_file():
        found = re.findall(r"Max frequency for clock [^:]*: ([0-9.]+) MHz", log.read_text())
        fmax = float(found[-1]) if found else None
    return BoardBuild(board, bitstream, bitstream.stat().st_size, fmax, platform.default_clk_frequency / 1e6, log)


@dataclass
class BoardRun:
    beats: int
    mismatches: int
    first: list

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def __str__(self):
        head = f"board run: {self.beats} output beats, {self.mismatches} mismatches"
        return head + "".join(f"\n  beat {i}: got {g:#x}, expected {w:#x}" for i, g, w in self.first)


def compare(outputs: list[int], expected: list[int]) -> BoardRun:
    bad = [(i, g, w) for i, (g, w) in enumerate(zip(outputs, expected)) if g != w]
    missing = abs(len(expected) - len(outputs))
    return BoardRun(len(outputs), len(bad) + missing, bad[:5])


def board_run(port: str, vectors_dir: Path, baud: int = 115200, timeout: float = 5.0) -> BoardRun:
    """Stream a LIF vector directory through a board running the UART top; compare with golden."""
    from golden.vectors import load_vectors
    from rtl.lif import lif_input_layout, lif_output_layout
    from rtl.streams import pack
    from spikeforge.blocks import get_block

    from .driver import BoardClient, SerialPort

    vectors = load_vectors(vectors_dir)
    if vectors.block != "lif":
        raise ValueError(f"{vectors_dir} holds {vectors.block!r} vectors; the board runs the LIF array ('lif')")
    spec, beats, expected = get_block("lif").stream_from_vectors(vectors)
    in_layout, out_layout = lif_input_layout(spec), lif_output_layout(spec)
    words = [pack(in_layout, b) for b in beats]
    want = [pack(out_layout, b) for b in expected]
    link = SerialPort(port, baud)
    try:
        outputs = BoardClient(link, in_layout.size, out_layout.size, timeout=timeout).run(words)
    finally:
        link.close()
    return compare(outputs, want)


__all__ = ["BOARDS", "BoardBuild", "BoardRun", "BoardTop", "board_build", "board_plan", "board_run", "compare", "get_platform",
           "nbytes", "uart_divisor"]
