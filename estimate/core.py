"""Cycles, latency, event counts and energy of a whole model on the neuromorphic core.

``estimate_core(program, spec, run, tech=..., fmax_mhz=...)`` turns a compiled model
(``golden.core.CoreProgram``), the hardware (``CoreSpec``) and the golden run of some samples
(``golden.core.run_program``: every layer's tensors and the nonzero count of every source row)
into a ``CoreEstimate``: per layer and in total, per sample, the cycles, the counts of every
event the hardware performs, and the energy ``E = sum over event kinds of count x E_event``.

Cycles are the core's own: ``golden.core.cycles.op_cycles`` per layer (the op-start and
next-op cycles included), whose sum is ``predict_cycles``, the formula that equals the RTL's
cycle counter on every sample (``sim/test_core.py``). Every data-dependent count comes from the
three activity counters the core reports per op (``golden.core.cycles.OpActivity``: cycles, EVENT
commands, spikes), so ``estimate_from_activity`` on the core's own counters (a co-simulation or
a board run) gives the energy from the hardware's activity, and ``estimate_core`` the same from
the golden run (equal, ``sim/test_core.py``): every cycle from the first op's start to
the last op's end, without the host's transfer of the sample and the status beat, and without
the cycles the core is frozen by a full output FIFO. Latency = cycles / Fmax; throughput =
Fmax / cycles samples per second (the core runs one sample at a time, layer after layer).

Event counts per sample (P lanes, G = ceil(n_out / P) output words of a layer, n_{t,r} the
nonzero inputs of source row (t, r), T time steps, R rows, S the layer's STEPs: T R for a
spiking layer, R for a readout, which sums over time before its one STEP a row)
--------------------------------------------------------------------------------------------
MAC + LIF layer (``LinearOp``)::

    sops            = sum n_{t,r} n_out          synaptic operations (== cycles.useful_ops)
    mac_words       = sum n_{t,r} G              one EVENT word a MAC cycle: P multiplies + P adds
    weight_reads    = sum n_{t,r} G              one weight word (P x Ww bits) per MAC cycle of an EVENT
    acc_reads       = (sum n_{t,r} + S) G        each event word reads its accumulator word; a STEP reads G
    acc_writes      = (sum n_{t,r} + S) G        each event word writes it back; a STEP clears G
    bias_reads      = S G                        one bias word per output word of a STEP
    mac_outputs     = S G                        the bias add of each output word (P adds)
    lif_beats       = T R G                      one P-lane word per LIF beat (spiking layers)
    neuron_updates  = T R G P                    leak multiply, add, threshold compare per neuron
    lif_state_reads = lif_state_writes = T R G   one state word (P x Wv bits) read and written a beat
    spikes          = sum of the layer's output spikes (a subtract-reset costs one add each)
    act_reads       = T R                        the source row, when it lives in an activation
                                                 buffer (pixels and token ids are input registers)
    residual_reads  = T R                        the destination row, when the layer adds into it
    act_writes      = T R G                      P-lane spike words into the destination row

MAC + ALIF layer (``LinearOp`` with ``alif``; Matterhorn's adaptive neurons): the MAC counts as
above, and per beat of P lanes::

    lif_beats         = T R G                    one P-lane word per beat
    neuron_updates    = T R G P                  v b_n (two partial products, one multiply), the
                                                 sums i + e, theta_n + a, the leak's sum, the
                                                 excess, a's decay and rise: 1 multiply + 6 adds
    alif_state_reads  = alif_state_writes = T R G   (v, a) of P lanes
    alif_param_reads  = T R G                    (theta_n, b_n) of P lanes
    noise_reads       = T R G                    the frozen noise word (layers with noise)
    spikes            = the layer's output spikes (a subtract reset: one add each)

MAC + MTTS layer (the stem): per beat the clamp and the encoder: ``mtts_encodes = T R G P``
(the reciprocal multiply (offset bits x m bits) and a compare each).

Spike-driven attention (``SDSAOp``; per (t, head): L loads, L queries, dh-wide rows)::

    qkv_reads       = 3 T H L                    the K and V rows of each load, the Q row of each query
    kv_updates      = T H L dh^2                 each load adds k_i AND v_j into every counter
    y_adds          = T H L dh^2                 each query adds the rows of KV its spikes select
    act_writes      = T H L                      the output row slice of the head

WTA attention (``AttentionOp``; per (t, head): L key loads, L queries; G_w = ceil(L / P_w))::

    qkv_reads       = 3 T H L                    the K and V rows of each load, the Q row of each query
    kv_writes       = T H L                      a K row and a V row into the unit's memories
    k_reads         = T H L G_w                  K memory words (P_w rows) of a query's score steps
    scores          = T H L G_w P_w              AND-popcount (dot product) scores (= T H L^2 for P_w | L)
    topk_inserts    = T H L G_w P_w k            each candidate against the k slots of its lane
    topk_merges     = T H L (k + 1) 3 P_w (P_w - 1) / 2   the relation registers: the first cycle
                                                 compares heads with heads and second slots with
                                                 heads, each of the k merge steps third slots with
                                                 heads and second slots with second slots
    v_reads         = T H L k                    the winners' V rows
    v_adds          = T H L k Dv                 their sum
    scale_mults     = T H L Dv                   the reciprocal 1/k (reciprocal scale mode)
    act_writes      = T H L                      the output row slice of the head

The per-event energies (``pj_each``) follow from the technology (``estimate.energy``) and the
widths of the spec and the program, e.g. ``mac_words``: ``P (E_mult(Wx, Ww) + E_add(Wa))``,
``weight_reads``: ``E_sram(P Ww, weight_depth P Ww)``, ``neuron_updates``:
``E_mult(Wv, F + 1) + 2 E_add(Wv)``, ``scores``: ``(D - 1) E_add(Ws)`` (spikes: the AND is not
charged). ``sops`` and ``lif_beats`` are counts only: their work is charged as ``mac_words``
and ``neuron_updates``. Not counted: the host transfers, the output FIFOs, the sequencer, the
clock tree and leakage.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from golden.core.cycles import OpActivity, op_activity
from golden.core.execute import ProgramRun
from golden.core.program import AttentionOp, CoreProgram, CoreSpec, LinearOp, SDSAOp

from .energy import TECHNOLOGIES, Technology, get_technology

#: event kinds in report order: name -> what one event is
EVENT_KINDS = {
    "sops": "synaptic operation (a nonzero input x one output; count only, charged as mac_words)",
    "mac_words": "MAC cycle of an EVENT: P multiplies and P accumulator adds",
    "weight_reads": "weight-memory word read (P weights)",
    "acc_reads": "accumulator word read",
    "acc_writes": "accumulator word write (add or clear)",
    "bias_reads": "bias word read",
    "mac_outputs": "output word of a STEP: P bias adds",
    "lif_beats": "LIF beat (P neurons; count only, charged as neuron_updates)",
    "neuron_updates": "LIF neuron update: leak multiply, add, threshold compare",
    "lif_state_reads": "LIF state word read",
    "lif_state_writes": "LIF state word write",
    "spikes": "output spike (subtract reset: one add)",
    "act_reads": "activation-buffer row read (the layer's source)",
    "residual_reads": "activation-buffer row read (the residual destination)",
    "act_writes": "activation-buffer write (P spikes, or a head's outputs)",
    "qkv_reads": "Q, K or V buffer row read by the attention op",
    "kv_writes": "K and V row written into the WTA unit",
    "k_reads": "WTA unit K-memory word read (P_w keys)",
    "scores": "WTA score (AND-popcount or dot product of a query and a key)",
    "topk_inserts": "top-k insertion comparison (a candidate against a slot)",
    "topk_merges": "top-k merge comparison (lane heads and second and third slots)",
    "v_reads": "WTA unit V row read (a winner)",
    "v_adds": "add of a winner's V element",
    "scale_mults": "multiply by the reciprocal 1/k",
}

#: the default clock when no synthesis result exists for the configuration
DEFAULT_FMAX_MHZ = 100.0
#: the synthesis table (``spikeforge synth --all``) the default Fmax comes from
SYNTHESIS_CSV = Path(__file__).resolve().parent.parent / "docs" / "results" / "synthesis.csv"



def _memory_energy(tech, small: set):
    """``mem(kind, word_bits, capacity_bits)`` -> pJ of one access; records in ``small`` the kinds
    whose memory is below the table's smallest size (charged by extrapolation)."""
    def mem(kind, word_bits, capacity_bits):
        if tech.extrapolated(capacity_bits):
            small.add(kind)
        return tech.sram(word_bits, capacity_bits)
    return mem

def _bits(value: int) -> int:
    return max(1, int(value).bit_length())


@dataclass
class LayerEstimate:
    """One op of the program: its cycles and event counts per sample, and the energy of one event."""

    index: int
    name: str
    unit: str
    cycles: torch.Tensor                                  # (B,) int64
    counts: dict[str, torch.Tensor] = field(default_factory=dict)   # kind -> (B,) int64
    pj_each: dict[str, float] = field(default_factory=dict)         # kind -> pJ per event
    #: kinds whose memory is smaller than the technology table's smallest size (extrapolated energy)
    extrapolated: set[str] = field(default_factory=set)

    def energy_pj(self) -> torch.Tensor:
        """(B,) float64: sum over kinds of count x pJ per event."""
        total = torch.zeros_like(self.cycles, dtype=torch.float64)
        for kind, count in self.counts.items():
            total += count.to(torch.float64) * self.pj_each.get(kind, 0.0)
        return total

    def energy_by_kind(self) -> dict[str, float]:
        """kind -> mean pJ per sample."""
        return {k: float(c.double().mean()) * self.pj_each.get(k, 0.0) for k, c in self.counts.items()}


@dataclass
class CoreEstimate:
    """Per-layer and total estimates of a model on the core; see the module docstring."""

    model: str
    spec: CoreSpec
    tech: Technology
    fmax_mhz: float
    fmax_source: str
    layers: list[LayerEstimate]
    checkpoint: str = ""
    #: total energy per sample at every known technology (same counts), for the report
    energy_by_tech: dict[str, float] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return int(self.layers[0].cycles.shape[0]) if self.layers else 0

    @property
    def cycles(self) -> torch.Tensor:
        """(B,) cycles per sample: the sum of the layers' (== ``predict_cycles``)."""
        return sum((layer.cycles for layer in self.layers), torch.zeros(self.samples, dtype=torch.int64))

    @property
    def energy_pj(self) -> torch.Tensor:
        return sum((layer.energy_pj() for layer in self.layers), torch.zeros(self.samples, dtype=torch.float64))

    @property
    def extrapolated_share(self) -> float:
        """Fraction of the mean energy charged to memories below the table's smallest size."""
        total = float(self.energy_pj.mean())
        part = sum(pj for layer in self.layers for k, pj in layer.energy_by_kind().items()
                   if k in layer.extrapolated)
        return part / total if total else 0.0

    def count(self, kind: str) -> torch.Tensor:
        """(B,) total of one event kind over the layers."""
        out = torch.zeros(self.samples, dtype=torch.int64)
        for layer in self.layers:
            if kind in layer.counts:
                out += layer.counts[kind]
        return out

    @property
    def mean_cycles(self) -> float:
        return float(self.cycles.double().mean())

    @property
    def latency_us(self) -> float:
        """Mean cycles / Fmax, microseconds."""
        return self.mean_cycles / self.fmax_mhz

    @property
    def throughput(self) -> float:
        """Samples per second at Fmax (one sample at a time)."""
        return self.fmax_mhz * 1e6 / self.mean_cycles

    # ---- output ---------------------------------------------------------------------------------
    def kinds(self) -> list[str]:
        present = {k for layer in self.layers for k in layer.counts}
        return [k for k in EVENT_KINDS if k in present]

    def rows(self) -> list[dict]:
        """One dict per layer and a total: means per sample (the CSV's rows)."""
        kinds = self.kinds()
        out = []
        for layer in self.layers + [None]:
            cyc = self.cycles if layer is None else layer.cycles
            energy = self.energy_pj if layer is None else layer.energy_pj()
            mean = float(cyc.double().mean())
            row = {"model": self.model, "layer_index": "" if layer is None else layer.index,
                   "layer": "total" if layer is None else layer.name, "unit": "" if layer is None else layer.unit,
                   "cycles": round(mean, 3), "cycles_min": int(cyc.min()), "cycles_max": int(cyc.max()),
                   "latency_us": round(mean / self.fmax_mhz, 6)}
            for kind in kinds:
                c = self.count(kind) if layer is None else layer.counts.get(kind)
                row[kind] = "" if c is None else round(float(c.double().mean()), 3)
            row["energy_pj"] = round(float(energy.mean()), 3)
            row.update({"tech": self.tech.name, "fmax_mhz": self.fmax_mhz, "samples": self.samples})
            out.append(row)
        return out

    def to_json(self) -> dict:
        layers = []
        for layer in self.layers:
            layers.append({
                "index": layer.index, "name": layer.name, "unit": layer.unit,
                "cycles": {"mean": float(layer.cycles.double().mean()), "min": int(layer.cycles.min()),
                           "max": int(layer.cycles.max())},
                "events": {k: {"per_sample": float(c.double().mean()), "pj_each": layer.pj_each.get(k, 0.0),
                               "pj_per_sample": float(c.double().mean()) * layer.pj_each.get(k, 0.0)}
                           for k, c in layer.counts.items()},
                "energy_pj_per_sample": float(layer.energy_pj().mean()),
                "extrapolated_memory_events": sorted(layer.extrapolated),
            })
        return {
            "model": self.model, "checkpoint": self.checkpoint, "samples": self.samples,
            "spec": self.spec.to_dict(),
            "technology": {"name": self.tech.name, "source": self.tech.source,
                           "table": dict(self.tech.table())},
            "fmax_mhz": self.fmax_mhz, "fmax_source": self.fmax_source,
            "cycles_per_sample": self.cycles.tolist(),
            "mean_cycles": self.mean_cycles, "latency_us": self.latency_us,
            "throughput_samples_per_s": self.throughput,
            "energy_pj_per_sample": self.energy_pj.tolist(),
            "mean_energy_pj": float(self.energy_pj.mean()),
            "energy_share_extrapolated_memories": self.extrapolated_share,
            "energy_pj_by_technology": self.energy_by_tech,
            "event_kinds": {k: EVENT_KINDS[k] for k in self.kinds()},
            "layers": layers,
        }

    def to_csv(self) -> str:
        rows = self.rows()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def write(self, path: Path) -> Path:
        """Write the CSV (``.csv``) or the JSON (``.json``) form."""
        path = Path(path)
        if path.suffix not in (".csv", ".json"):
            raise ValueError(f"-o {path}: give a .csv or .json file")
        if path.is_dir():
            raise ValueError(f"-o {path} is a directory; give a .csv or .json file")
        text = self.to_csv() if path.suffix == ".csv" else json.dumps(self.to_json(), indent=2) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def table(self) -> str:
        """A readable report: per layer, the total, latency, throughput and the energy breakdown."""
        total_e = float(self.energy_pj.mean())
        total_c = self.mean_cycles
        lines = [f"[estimate: {self.model}] {self.samples} held-out samples; CoreSpec P = {self.spec.lanes}, "
                 f"P_w = {self.spec.wta_lanes}; {self.tech.name}: {self.tech.source}",
                 f"  Fmax {self.fmax_mhz:g} MHz ({self.fmax_source})", ""]
        head = (f"  {'#':>2}  {'layer':<18} {'unit':<14} {'cycles':>11} {'%':>5} {'SOPs':>10} {'weight rd':>10} "
                f"{'neuron upd':>10} {'act rd/wr':>11} {'top-k cmp':>10} {'energy nJ':>10} {'%':>5}")
        lines += [head, "  " + "-" * (len(head) - 2)]

        def fmt(v):
            return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"

        def mean(layer, *kinds):
            return sum(float(layer.counts[k].double().mean()) for k in kinds if k in layer.counts)

        for layer in self.layers:
            c = float(layer.cycles.double().mean())
            e = float(layer.energy_pj().mean())
            act = f"{fmt(mean(layer, 'act_reads', 'residual_reads', 'qkv_reads'))}/{fmt(mean(layer, 'act_writes'))}"
            lines.append(f"  {layer.index:>2}  {layer.name:<18} {layer.unit:<14} {fmt(c):>11} "
                         f"{100 * c / total_c:>4.1f} {fmt(mean(layer, 'sops')):>10} "
                         f"{fmt(mean(layer, 'weight_reads')):>10} {fmt(mean(layer, 'neuron_updates')):>10} "
                         f"{act:>11} {fmt(mean(layer, 'topk_inserts', 'topk_merges')):>10} "
                         f"{e / 1000:>10.2f} {100 * e / total_e if total_e else 0:>4.1f}")
        cyc = self.cycles
        lines += ["  " + "-" * (len(head) - 2),
                  f"      {'total':<18} {'':<14} {fmt(total_c):>11} {100.0:>4.1f} "
                  f"{fmt(float(self.count('sops').double().mean())):>10} "
                  f"{fmt(float(self.count('weight_reads').double().mean())):>10} "
                  f"{fmt(float(self.count('neuron_updates').double().mean())):>10} {'':>11} "
                  f"{fmt(float((self.count('topk_inserts') + self.count('topk_merges')).double().mean())):>10} "
                  f"{total_e / 1000:>10.2f} {100.0:>4.1f}", ""]
        lines.append(f"  cycles / sample : mean {total_c:,.1f} (min {int(cyc.min()):,}, max {int(cyc.max()):,}); "
                     f"the core's cycle formula (golden/core/cycles.py), == its RTL counter")
        lines.append(f"  latency         : {self.latency_us:,.2f} us a sample at {self.fmax_mhz:g} MHz; "
                     f"throughput {self.throughput:,.0f} samples/s (one sample at a time)")
        others = ", ".join(f"{name} {pj / 1000:,.2f} nJ" for name, pj in self.energy_by_tech.items())
        lines.append(f"  energy / sample : {total_e / 1000:,.2f} nJ at {self.tech.name}"
                     + (f" (every technology: {others})" if others else "")
                     + f"; {total_e / max(1.0, float(self.count('sops').double().mean())):.2f} pJ per SOP")
        by_kind: dict[str, float] = {}
        for layer in self.layers:
            for k, pj in layer.energy_by_kind().items():
                by_kind[k] = by_kind.get(k, 0.0) + pj
        top = sorted(((pj, k) for k, pj in by_kind.items() if pj > 0), reverse=True)
        lines.append("  energy by event : " + ", ".join(f"{k} {100 * pj / total_e:.1f} %" for pj, k in top[:8]))
        lines.append(f"  small memories  : {100 * self.extrapolated_share:.1f} % of the energy is in memories under "
                     f"the table's smallest size, charged by an extrapolation (estimate/energy.py)")
        lines.append(f"  power at Fmax   : {total_e * 1e-12 * self.throughput * 1e3:,.2f} mW (dynamic, the "
                     f"counted events only)")
        return "\n".join(lines)


# ---- event counts and energies ---------------------------------------------------------------------

def _linear_layer(program: CoreProgram, spec: CoreSpec, index: int, op: LinearOp, act: OpActivity,
                  tech: Technology) -> LayerEstimate:
    p = spec.lanes
    g = program.groups(op)
    events = act.events                                        # sum n_{t,r}
    batch = events.shape[0]
    steps = op.rows if op.reduce_time else op.steps * op.rows  # S: STEPs per sample
    rows = torch.full((batch,), op.steps * op.rows, dtype=torch.int64)
    full = lambda v: torch.full((batch,), int(v), dtype=torch.int64)   # noqa: E731
    gmax = max(program.groups(o) for o in program.linear_ops())
    ww, wx, wa, wb, wo, wv = (spec.weight_width, spec.value_width, spec.acc_width, spec.bias_width,
                              spec.current_width, spec.membrane_width)
    counts = {
        "sops": events * op.n_out,
        "mac_words": events * g,
        "weight_reads": events * g,
        "acc_reads": (events + steps) * g,
        "acc_writes": (events + steps) * g,
        "bias_reads": full(steps * g),
        "mac_outputs": full(steps * g),
    }
    small: set[str] = set()
    mem = _memory_energy(tech, small)

    pj = {
        "mac_words": p * (tech.mult(wx, ww) + tech.add(wa)),
        "weight_reads": mem("weight_reads", p * ww, spec.weight_depth * p * ww),
        "acc_reads": mem("acc_reads", p * wa, gmax * p * wa),
        "acc_writes": mem("acc_writes", p * wa, gmax * p * wa),
        "bias_reads": mem("bias_reads", p * wb, spec.bias_depth * p * wb),
        "mac_outputs": p * tech.add(wo),
    }
    if op.lif is not None:
        beats = op.steps * op.rows * g
        neurons = -(-spec.lif_neurons // p) * p                 # the array's state memory (whole words)
        spikes = act.spikes
        counts.update({"lif_beats": full(beats), "neuron_updates": full(beats * p),
                       "lif_state_reads": full(beats), "lif_state_writes": full(beats), "spikes": spikes})
        frac = op.lif.leak_frac_bits
        pj.update({"neuron_updates": tech.mult(wv, frac + 1) + 2 * tech.add(wv),
                   "lif_state_reads": mem("lif_state_reads", p * wv, neurons * wv),
                   "lif_state_writes": mem("lif_state_writes", p * wv, neurons * wv),
                   "spikes": tech.add(wv) if op.lif.reset_mode == "subtract" else 0.0})
    if op.alif is not None:
        beats = op.steps * op.rows * g
        a_spec = op.alif.spec
        neurons = -(-spec.alif_neurons // p) * p
        widths = a_spec.param_widths
        state_bits, param_bits = wv + a_spec.adapt_width, widths["theta"] + widths["beta"]
        spikes = act.spikes
        counts.update({"lif_beats": full(beats), "neuron_updates": full(beats * p), "alif_state_reads": full(beats),
                       "alif_state_writes": full(beats), "alif_param_reads": full(beats), "spikes": spikes})
        pj.update({"neuron_updates": tech.mult(wv, a_spec.leak_frac_bits + 1) + 6 * tech.add(wv),
                   "alif_state_reads": mem("alif_state_reads", p * state_bits, neurons * state_bits),
                   "alif_state_writes": mem("alif_state_writes", p * state_bits, neurons * state_bits),
                   # the parameter memory: one word per layer and output group (shared by the rows)
                   "alif_param_reads": mem("alif_param_reads", p * param_bits,
                                           max(1, program.alif_param_words) * p * param_bits),
                   "spikes": tech.add(wv)})
        if op.noise is not None:
            counts["noise_reads"] = full(beats)
            pj["noise_reads"] = mem("noise_reads", p * spec.noise_width, spec.noise_depth * p * spec.noise_width)
    if op.mtts is not None:
        beats = op.steps * op.rows * g
        mult, _ = op.mtts.reciprocal
        counts["mtts_encodes"] = full(beats * p)
        pj["mtts_encodes"] = tech.mult(op.mtts.offset_bits, max(1, mult.bit_length())) + tech.add(op.mtts.time_bits)
    if op.src != "tokens" and op.src in program.buffers:
        src = program.buffers[op.src]
        counts["act_reads"] = rows.clone()
        pj["act_reads"] = mem("act_reads", src.channels * src.width, src.bits)
    if op.dst is not None:
        dst = program.buffers[op.dst]
        if op.accumulate:
            counts["residual_reads"] = rows.clone()
            pj["residual_reads"] = mem("residual_reads", dst.channels * dst.width, dst.bits)
        counts["act_writes"] = full(op.steps * op.rows * g)
        pj["act_writes"] = mem("act_writes", p * dst.width, dst.bits)
    unit = {"lif": "MAC + LIF", "alif": "MAC + ALIF", "mtts": "MAC + MTTS", None: "MAC readout"}[op.neuron]
    return LayerEstimate(index, op.name, unit, act.cycles, counts, pj, small)


def _attention_layer(program: CoreProgram, spec: CoreSpec, index: int, op: AttentionOp, act: OpActivity,
                     tech: Technology) -> LayerEstimate:
    w = op.wta.replace(lanes=spec.wta_lanes)
    length, k, pw, gw = w.length, w.top_k, w.lanes, w.groups
    d, dv = w.head_dim, w.value_dim
    queries = op.steps * op.heads * length
    batch = act.cycles.shape[0]
    full = lambda v: torch.full((batch,), int(v), dtype=torch.int64)   # noqa: E731
    counts = {
        "qkv_reads": full(3 * queries),
        "kv_writes": full(queries),
        "k_reads": full(queries * gw),
        "scores": full(queries * gw * pw),
        "topk_inserts": full(queries * gw * pw * k),
        "topk_merges": full(queries * (k + 1) * 3 * pw * (pw - 1) // 2),
        "v_reads": full(queries * k),
        "v_adds": full(queries * k * dv),
        "act_writes": full(queries),
    }
    bufs = [program.buffers[name] for name in (op.q, op.k, op.v)]
    k_bits = gw * pw * d * w.qk_width                          # the unit's K memory: G_w words of P_w rows
    v_bits = length * dv * w.v_width
    score_bits = w.score_width
    per_score = (d - 1) * tech.add(score_bits)
    if w.qk_width > 1:                                         # a dot product: D multiplies too
        per_score += d * tech.mult(w.qk_width, w.qk_width)
    index_bits = _bits(length - 1)
    dst = program.buffers[op.dst]
    small: set[str] = set()
    mem = _memory_energy(tech, small)

    pj = {
        # each of Q, K, V is read T H L times: the mean of the three energies is exact
        "qkv_reads": sum(mem("qkv_reads", b.channels * b.width, b.bits) for b in bufs) / 3,
        "kv_writes": mem("kv_writes", d * w.qk_width, k_bits) + mem("kv_writes", dv * w.v_width, v_bits),
        "k_reads": mem("k_reads", pw * d * w.qk_width, k_bits),
        "scores": per_score,
        "topk_inserts": tech.add(score_bits),
        "topk_merges": tech.add(score_bits + index_bits),    # keys {score, ~index}
        "v_reads": mem("v_reads", dv * w.v_width, v_bits),
        "v_adds": tech.add(w.acc_width),
        "act_writes": mem("act_writes", dv * dst.width, dst.bits),
    }
    if w.scale_mode == "reciprocal":
        counts["scale_mults"] = full(queries * dv)
        pj["scale_mults"] = tech.mult(w.acc_width, _bits(w.reciprocal))
    return LayerEstimate(index, op.name, "WTA attention", act.cycles, counts, pj, small)


def _sdsa_layer(program: CoreProgram, spec: CoreSpec, index: int, op: SDSAOp, act: OpActivity,
                tech: Technology) -> LayerEstimate:
    sd = op.sdsa
    length, d = sd.length, sd.head_dim
    queries = op.steps * op.heads * length
    batch = act.cycles.shape[0]
    full = lambda v: torch.full((batch,), int(v), dtype=torch.int64)   # noqa: E731
    counts = {"qkv_reads": full(3 * queries), "kv_updates": full(queries * d * d), "y_adds": full(queries * d * d),
              "act_writes": full(queries)}
    bufs = [program.buffers[name] for name in (op.q, op.k, op.v)]
    dst = program.buffers[op.dst]
    small: set[str] = set()
    mem = _memory_energy(tech, small)
    pj = {"qkv_reads": sum(mem("qkv_reads", b.channels * b.width, b.bits) for b in bufs) / 3,
          "kv_updates": tech.add(sd.kv_width),           # KV is registers: the increment only
          "y_adds": tech.add(sd.out_width),
          "act_writes": mem("act_writes", d * dst.width, dst.bits)}
    return LayerEstimate(index, op.name, "spike-driven attention", act.cycles, counts, pj, small)


def estimate_core(program: CoreProgram, spec: CoreSpec, run: ProgramRun, *, tech: str | Technology = "45nm",
                  fmax_mhz: float = DEFAULT_FMAX_MHZ, fmax_source: str = "given", model: str | None = None,
                  checkpoint: str = "") -> CoreEstimate:
    """Per-layer cycles, event counts and energy of ``program`` on ``spec`` for the samples of ``run``
    (the activity the core's counters will report: ``golden.core.cycles.op_activity``)."""
    return estimate_from_activity(program, spec, op_activity(program, spec, run), tech=tech, fmax_mhz=fmax_mhz,
                                  fmax_source=fmax_source, model=model, checkpoint=checkpoint)


def estimate_from_activity(program: CoreProgram, spec: CoreSpec, activity: dict[int, OpActivity], *,
                           tech: str | Technology = "45nm", fmax_mhz: float = DEFAULT_FMAX_MHZ,
                           fmax_source: str = "given", model: str | None = None,
                           checkpoint: str = "") -> CoreEstimate:
    """The estimate from activity counters: the core's own (``sim.core.CoreCosimReport.hardware_activity``,
    the board's activity beats) or the golden run's (``estimate_core``). Every data-dependent count is
    one of the counters (cycles, EVENT commands, spikes); the others follow from the program."""
    tech = get_technology(tech) if isinstance(tech, str) else tech
    check_fmax(fmax_mhz)
    missing = [op.name for i, op in enumerate(program.ops) if i not in activity]
    if missing:
        raise ValueError(f"no activity counters for op(s) {', '.join(missing)} of {program.model}")

    def layers_at(t: Technology) -> list[LayerEstimate]:
        out = []
        for i, op in enumerate(program.ops):
            if isinstance(op, LinearOp):
                out.append(_linear_layer(program, spec, i, op, activity[i], t))
            elif isinstance(op, SDSAOp):
                out.append(_sdsa_layer(program, spec, i, op, activity[i], t))
            else:
                out.append(_attention_layer(program, spec, i, op, activity[i], t))
        return out

    est = CoreEstimate(model or program.model, spec, tech, float(fmax_mhz), fmax_source, layers_at(tech),
                       checkpoint=checkpoint)
    for name, other in TECHNOLOGIES.items():
        layers = est.layers if other is tech else layers_at(other)
        est.energy_by_tech[name] = float(sum(layer.energy_pj() for layer in layers).mean())
    return est


def check_fmax(fmax_mhz) -> float:
    """A clock in MHz: a finite number > 0 (else ``ValueError``)."""
    try:
        value = float(fmax_mhz)
    except (TypeError, ValueError):
        raise ValueError(f"--fmax must be a clock in MHz, got {fmax_mhz!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"--fmax = {fmax_mhz} is out of range; give the clock in MHz, > 0")
    return value


def synthesized_fmax(model: str, spec: CoreSpec, checkpoint_sha256: str | None = None,
                     csv_path: Path = SYNTHESIS_CSV) -> tuple[float, str] | None:
    """(Fmax MHz, where from) of this model's core on the ECP5 after place and route, or None.

    Taken from the synthesis table (``spikeforge synth --all`` / ``synth core``): the core row
    of the same model, lanes and WTA lanes without debug taps (and, when both record it, the
    same checkpoint), target ``ecp5`` -- the only target with a timing report after routing.
    """
    path = Path(csv_path)
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("block") != "core" or row.get("target") != "ecp5" or row.get("status") != "ok":
                continue
            try:
                s = json.loads(row.get("spec") or "{}")
                fmax = float(row.get("fmax_mhz") or "")
            except ValueError:
                continue
            if s.get("model") != model or s.get("lanes") != spec.lanes or s.get("wta_lanes") != spec.wta_lanes:
                continue
            if s.get("debug_taps", False) != spec.debug_taps:
                continue
            if checkpoint_sha256 and s.get("checkpoint_sha256") not in (None, checkpoint_sha256):
                continue
            return fmax, f"{row.get('device', 'ECP5')} after place and route, {path.name}"
    return None

