"""Board builds: a block behind a UART, for real ECP5 and iCE40 boards.

* ``top.UARTBlockTop``: block + UART + framing, simulated in cocotb.
* ``BOARDS``: the boards (``amaranth-boards`` platforms) and ``board_build``,
  which wraps the UART top for a board's clock and UART pins and builds a
  bitstream with the YoWASP tools: the LIF array, or (``core=MODEL``) the
  neuromorphic core of a trained model (``core.py``). A core is first
  synthesised for the board's device (``synth.core``, cached); one that does
  not fit is refused with the numbers before the board build starts.
* ``driver`` / ``protocol``: the host side (``spikeforge board run``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from amaranth import Elaboratable, Module
from amaranth.lib import io

from .protocol import nbytes

#: board name -> (amaranth-boards module, platform class, toolchain tools, bitstream suffix)
BOARDS = {
    "ulx3s-85f": ("amaranth_boards.ulx3s", "ULX3S_85F_Platform", ("yosys", "nextpnr-ecp5", "ecppack"), "bit"),
    "icebreaker": ("amaranth_boards.icebreaker", "ICEBreakerPlatform", ("yosys", "nextpnr-ice40", "icepack"), "bin"),
}
#: board -> the synthesis target of its FPGA (``synth.flow.TARGETS``: LFE5U-85F CABGA381, iCE40UP5K SG48)
BOARD_TARGETS = {"ulx3s-85f": "ecp5", "icebreaker": "ice40"}
#: board -> Amaranth build overrides that make the board's synthesis the flow's (``synth.flow.TARGETS``):
#: on iCE40 the multipliers go into the SB_MAC16 DSPs (``synth_ice40 -dsp``), as the fit check counted them
BOARD_OVERRIDES = {"ulx3s-85f": {}, "icebreaker": {"synth_opts": "-dsp"}}


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
    notes: list = field(default_factory=list)

    def __str__(self):
        fmax = "n/a" if self.fmax_mhz is None else f"{self.fmax_mhz:.1f} MHz"
        return (f"built {self.bitstream} ({self.board}, {self.bytes} bytes); clock {self.clock_mhz:g} MHz, "
                f"achieved Fmax {fmax}" + "".join(f"\n  note: {n}" for n in self.notes))


def _build_name(core) -> str:
    return "spikeforge_lif" if core is None else "spikeforge_core"


def board_plan(board: str, spec=None, baud: int = 115200, core=None):
    """The Amaranth build plan (Verilog/RTLIL, pin constraints, build script) of the UART top.

    ``core``: a ``spikeforge.core.CoreModel`` to put behind the UART instead of the LIF array.
    """
    from .top import UARTBlockTop

    platform = get_platform(board)
    divisor = uart_divisor(platform.default_clk_frequency, baud)
    if core is None:
        from golden.lif import LIFSpec
        from rtl.lif import LIFArray

        top = UARTBlockTop(LIFArray(spec or LIFSpec()), divisor)
    else:
        from .core import core_board_top

        top = core_board_top(core, divisor)
    # do_build=False returns the plan without requiring the board's programmer tool
    return platform, platform.build(BoardTop(top), name=_build_name(core), do_build=False, **BOARD_OVERRIDES[board])


def check_core_fits(board: str, core, progress=None):
    """Synthesise ``core`` for the board's FPGA (cached) and refuse it when it does not fit.

    Returns the synthesis report; a core that does not fit is a one-line ``ValueError``
    naming the model, the board, the device and the numbers (the does-not-fit report).
    """
    from ..core import synth_core

    get_platform(board)
    target = BOARD_TARGETS[board]
    # a report in the cache (spikeforge synth core [--pnr], an earlier board build) answers at no cost
    report = synth_core(core, target, pnr=True, cached_only=True) or synth_core(core, target, cached_only=True)
    if report is None:
        if progress is not None:
            progress(f"synthesising the {core.name} core for {target} (fit check; cached afterwards) ...")
        report = synth_core(core, target, pnr=False)
    if report.status == "does-not-fit":
        raise ValueError(f"the {core.name} core does not fit the {board} board: {report.message}")
    return report


def board_build(board: str, out_dir: Path, spec=None, baud: int = 115200, core=None, progress=None) -> BoardBuild:
    """Build the UART top for ``board`` into ``out_dir``; return where the bitstream is.

    The LIF array (``spec``) by default; ``core`` (a ``CoreModel``) puts that model's core
    behind the UART, after ``check_core_fits``.
    """
    from ..tools import error_lines, find_tool

    get_platform(board)
    _, _, needed, suffix = BOARDS[board]
    env = {}
    for tool in needed:  # Amaranth's build script finds each tool through an environment variable
        env[tool.upper().replace("-", "_")] = find_tool(tool)
    if core is not None:
        check_core_fits(board, core, progress)
    platform, plan = board_plan(board, spec, baud, core)
    name = _build_name(core)
    out_dir = Path(out_dir)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    notes = []
    try:
        try:
            plan.execute_local(str(out_dir))
        except Exception:
            fallback = _abc_lut_fallback(plan, name, out_dir)
            if fallback is None:
                raise
            # the same workaround as synth.flow: Yosys 0.70's synth_ecp5 always maps LUTs with
            # ABC9, which can trip an internal assertion; map them with the classic ABC instead
            notes.append(f"LUTs mapped with abc -lut 4 (ABC9 failed: {fallback})")
            plan.execute_local(str(out_dir))
    except Exception as exc:  # the build script's failure is a subprocess error
        logs = [p for p in (out_dir / f"{name}.tim", out_dir / f"{name}.rpt") if p.is_file()]
        errors = "; ".join(error_lines(p.read_text()) for p in logs if "ERROR" in p.read_text())
        if re.search(r"[Uu]nable to (find legal )?place|not enough|too many", errors):
            # counts within the device, but nextpnr found no placement: the does-not-fit report
            used = placed_utilisation(out_dir / f"{name}.tim")
            what = "the LIF array" if core is None else f"the {core.name} core (P = {core.spec.lanes})"
            raise ValueError(f"{what} does not fit the {board} board: nextpnr found no legal placement"
                             + (f" ({used})" if used else "") + f"; see {out_dir / (name + '.tim')}") from None
        raise ValueError(f"{board} bitstream build failed ({type(exc).__name__}: {exc})"
                         + (f": {errors}" if errors else "") + f"; see {out_dir}"
                         + (f" ({logs[0]})" if logs else "")) from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    bitstream = out_dir / f"{name}.{suffix}"
    if not bitstream.is_file():
        raise ValueError(f"{board} build finished without {bitstream}")
    log = out_dir / f"{name}.tim"
    fmax = None
    if log.is_file():
        found = re.findall(r"Max frequency for clock [^:]*: ([0-9.]+) MHz", log.read_text())
        fmax = float(found[-1]) if found else None
    return BoardBuild(board, bitstream, bitstream.stat().st_size, fmax, platform.default_clk_frequency / 1e6, log,
                      notes)


def placed_utilisation(tim: Path) -> str:
    """nextpnr's "Device utilisation" lines of a board build log, as 'LC 4514/5280, RAM 30/30, ...'."""
    text = Path(tim).read_text() if Path(tim).is_file() else ""
    used = re.findall(r"^Info:\s+(?:ICESTORM_|TRELLIS_)?(\w+):\s+(\d+)/\s*(\d+)", text, re.M)
    skip = ("IO", "SB_IO", "SB_GB", "DCCA", "GSR")  # pins and clock buffers: not what fills a device
    return ", ".join(f"{kind} {n}/{total}" for kind, n, total in used if int(n) and kind not in skip)


_SYNTH_ECP5 = re.compile(r"^[ \t]*(synth_ecp5\b[^\n]*-top[ \t]+\S+[^\n]*)$", re.M)


def _abc_lut_fallback(plan, name: str, out_dir: Path) -> str | None:
    """When ABC9 failed in the board's ECP5 synthesis: rewrite the plan's Yosys script to map the
    LUTs with ``abc -lut 4`` (``synth.flow._yosys`` does the same) and return the error line;
    otherwise None (the failure is something else)."""
    from ..tools import error_lines

    script_name = f"{name}.ys"
    rpt = out_dir / f"{name}.rpt"
    log = rpt.read_text() if rpt.is_file() else ""
    found = _SYNTH_ECP5.search(plan.files.get(script_name, ""))
    if "ABC9" not in log or "ERROR" not in log or found is None or "abc -lut" in plan.files[script_name]:
        return None
    command = found.group(1).strip()
    steps = f"{command} -run :map_luts\nabc -lut 4 -dress\nclean\n{command} -run map_cells:"
    plan.files[script_name] = plan.files[script_name].replace(found.group(0), steps)
    return error_lines(log)


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


def board_run_core(port: str, core, samples: int = 8, offset: int = 0, baud: int = 115200,
                   timeout: float = 5.0):
    """Send ``samples`` held-out samples of ``core`` (a ``CoreModel``) through a board running its
    UART top; compare the logits and cycle counts with golden (``core.CoreCheck``)."""
    from spikeforge.core import held_out_samples

    from .core import check_core_outputs, core_client, core_input_words
    from .driver import SerialPort

    x, _, _ = held_out_samples(core, samples, offset)
    link = SerialPort(port, baud)
    try:
        words = core_client(core, link, timeout=timeout).run(core_input_words(core, x))
    finally:
        link.close()
    return check_core_outputs(core, x, words)


__all__ = ["BOARDS", "BOARD_TARGETS", "BoardBuild", "BoardRun", "BoardTop", "board_build", "board_plan", "board_run",
           "board_run_core", "check_core_fits", "compare", "get_platform", "nbytes", "uart_divisor"]
