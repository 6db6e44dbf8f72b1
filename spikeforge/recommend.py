"""The architecture guide: ``select_architecture(task, hardware, priority)``.

A documented decision table over the architectures of this project. The rules, first match wins:

=====  ===================================================  ==========================================
rule   when                                                 recommendation
=====  ===================================================  ==========================================
1      hardware = analog                                    Matterhorn (any task)
2      task = language_modeling                             WTA Spiking Transformer
3      task = event_vision, priority = latency              TEFormer, causal (``backward=none``)
4      task = event_vision                                  TEFormer (bidirectional temporal fusion)
5      task = long_sequence                                 LSFormer
6      task = classification, priority = energy             Matterhorn
7      task = classification, priority = accuracy,          Spike-driven Transformer V2
       hardware = neuromorphic_chip
8      task = classification, priority = accuracy           SpikingResformer
9      task = classification, priority = latency            LSFormer
10     task = classification, priority = area               Spikformer
=====  ===================================================  ==========================================

Why (the reasons returned with each answer):

* WTA Spiking Transformer: attention by top-k winner-take-all selection instead of softmax:
  no exponentials or divisions, only integer compares -- natural on digital logic, and the
  selection keeps causal language modelling exact.
* LSFormer: local (dilated window) spiking attention keeps cost linear in the number of
  tokens and exploits local structure, so long inputs and low latency are affordable.
* Matterhorn: masked time-to-first-spike (MTTS) coding makes activity sparse and log-quantized
  weights turn multiplications into shifts and tolerate analog device mismatch: energy first.
* TEFormer: bidirectional temporal fusion (causal + time-reversed spiking attention, gated,
  spiking layer norm) and the temporal alignment loss use the time axis of event data; the
  backward branch needs the whole window, so latency-first streaming uses the causal variant.
* SpikingResformer: dual spike self-attention with firing-rate scaling and a ResNet-style
  stem: the accuracy-first vision baseline on conventional digital hardware.
* Spike-driven Transformer V2: membrane shortcuts make every layer after the first purely
  spike-driven (accumulates only), which neuromorphic chips execute natively, at
  accuracy close to SpikingResformer.
* Spikformer: the simplest spiking transformer (one attention form, Q K^T V * s, no
  softmax, no conv blocks): fewest distinct hardware units, the smallest area.

The guide's own vocabulary
--------------------------

The architecture guide this project implements speaks other words: task ``nlp`` / ``vision`` /
``multimodal``, hardware ``gpu`` / ``neuromorphic`` / ``edge``, priority ``efficiency`` /
``accuracy`` / ``balanced``. A query whose *task* is one of the guide's words is answered as
the guide answers it: the entry of the guide's table ``GUIDE_TABLE`` for the key
(task, hardware, priority), and the guide's default ``GUIDE_DEFAULT`` (LSFormer) for every
other key of its vocabulary, each with its reasons (and, where every word has a counterpart in
the project's vocabulary, the answer of the rules above as an alternative). With a guide task,
hardware and priority must be guide words too (``gpu`` and ``accuracy`` are words of both);
a project task takes the project's words. The guide's table, as far as the project has it:

==============================  ==========================
(task, hardware, priority)      recommendation
==============================  ==========================
(nlp, neuromorphic, efficiency)  WTA Spiking Transformer (the guide's "WTA Spikingformer")
anything else                    LSFormer (the guide's default)
==============================  ==========================

Unknown values raise ``ValueError`` listing the allowed ones; nothing defaults silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("classification", "event_vision", "language_modeling", "long_sequence")
HARDWARE = ("digital_asic", "fpga", "analog", "neuromorphic_chip", "gpu")
PRIORITIES = ("accuracy", "energy", "latency", "area")

#: the guide's vocabulary (``select_architecture`` accepts it beside the project's own)
GUIDE_TASKS = ("nlp", "vision", "multimodal")
GUIDE_HARDWARE = ("gpu", "neuromorphic", "edge")
GUIDE_PRIORITIES = ("efficiency", "accuracy", "balanced")
#: the guide's table: (task, hardware, priority) -> (architecture, the guide's reason)
GUIDE_TABLE = {
    ("nlp", "neuromorphic", "efficiency"): (
        "WTA Spiking Transformer", "the guide's answer for language on neuromorphic hardware, efficiency first "
        "(its 'WTA Spikingformer'): top-k selection replaces softmax, spikes stay binary and sparse"),
}
#: the guide's answer for every key of its vocabulary that its table does not list
GUIDE_DEFAULT = "LSFormer"
#: the project's word for each guide word, where there is one (for the alternative the rules give)
_GUIDE_TO_PROJECT = {"nlp": "language_modeling", "vision": "classification", "gpu": "gpu",
                     "neuromorphic": "neuromorphic_chip", "edge": "fpga", "efficiency": "energy",
                     "accuracy": "accuracy"}

#: architecture -> (training recipe name, one-line reason)
ARCHITECTURES = {
    "WTA Spiking Transformer": ("wta-causal", "softmax-free top-k winner-take-all attention: integer compares only, "
                                       "no exponentials or divisions, maps directly onto digital logic"),
    "LSFormer": ("lsformer", "local dilated-window spiking attention: cost linear in tokens, exploits local "
                             "structure, suits long inputs and low latency"),
    "Matterhorn": ("matterhorn", "MTTS coding makes activity sparse and log-quantized weights replace "
                                 "multiplies by shifts and tolerate analog mismatch: energy first"),
    "TEFormer": ("teformer", "bidirectional temporal fusion (causal + time-reversed spiking attention, sigmoid "
                             "gate, spiking layer norm) and the temporal alignment loss use the time axis"),
    "SpikingResformer": ("spiking-resformer", "dual spike self-attention with firing-rate scaling: the "
                                              "accuracy-first vision baseline"),
    "Spike-driven Transformer V2": ("spike-driven-v2", "membrane shortcuts keep every layer after the first "
                                                       "spike-driven (accumulates only)"),
    "Spikformer": ("spikformer", "the simplest spiking transformer (Q K^T V * s, no softmax, no conv blocks): "
                                 "fewest distinct hardware units"),
}


@dataclass(frozen=True)
class Recommendation:
    architecture: str
    recipe: str
    #: the number of the project's rule, or "guide" / "guide default" for an answer of the guide's table
    rule: int | str
    reasons: tuple[str, ...]
    alternatives: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""

    def text(self) -> str:
        lines = [f"recommended: {self.architecture} (spikeforge train {self.recipe}) [rule {self.rule}]"]
        lines += [f"  - {r}" for r in self.reasons]
        if self.note:
            lines.append(f"  note: {self.note}")
        if self.alternatives:
            lines.append(f"  alternatives: {', '.join(self.alternatives)}")
        return "\n".join(lines)


def _check(kind: str, value, allowed: tuple[str, ...], guide: tuple[str, ...] = ()) -> str:
    if not isinstance(value, str) or value not in allowed:
        also = f" (the project's words), or the guide's {', '.join(guide)}" if guide else ""
        raise ValueError(f"unknown {kind} {value!r}; allowed: {', '.join(allowed)}{also}")
    return value


def _check_guide_word(kind: str, value, task: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"unknown {kind} {value!r} for the guide's task {task!r}; allowed: {', '.join(allowed)} "
                         f"(a guide task takes the guide's words)")
    return value


def guide_answer(task: str, hardware: str, priority: str) -> Recommendation:
    """The guide's answer for a key of its vocabulary: its table's entry, else its default (LSFormer)."""
    task = _check("task", task, GUIDE_TASKS)
    hardware = _check_guide_word("hardware", hardware, task, GUIDE_HARDWARE)
    priority = _check_guide_word("priority", priority, task, GUIDE_PRIORITIES)
    key = (task, hardware, priority)
    alternatives, note = [], ""
    if all(word in _GUIDE_TO_PROJECT for word in key):
        words = tuple(_GUIDE_TO_PROJECT[w] for w in key)
        rules = select_architecture(*words)
        note = (f"the project's rules read these words as task={words[0]}, hardware={words[1]}, "
                f"priority={words[2]}: {rules.architecture} [rule {rules.rule}]")
        alternatives = [rules.architecture]
    if key in GUIDE_TABLE:
        arch, why = GUIDE_TABLE[key]
        rec = _make(arch, "guide", why, note=note)
    else:
        rec = _make(GUIDE_DEFAULT, "guide default",
                    f"the guide's table has no entry for ({task}, {hardware}, {priority}); the guide answers "
                    f"every such key with its default, {GUIDE_DEFAULT}", note=note)
    alternatives = [a for a in alternatives if a != rec.architecture]
    return Recommendation(rec.architecture, rec.recipe, rec.rule, rec.reasons, tuple(alternatives), rec.note)


def _make(arch: str, rule: int, why: str, alternatives=(), note: str = "") -> Recommendation:
    recipe, reason = ARCHITECTURES[arch]
    return Recommendation(arch, recipe, rule, (why, reason), tuple(alternatives), note)


def select_architecture(task: str, hardware: str, priority: str) -> Recommendation:
    """The seed's guide as a decision table (see the module docstring for the rules and reasons).

    A task in the guide's own vocabulary (``GUIDE_TASKS``) is answered by ``guide_answer``.
    """
    if isinstance(task, str) and task in GUIDE_TASKS:
        return guide_answer(task, hardware, priority)
    task = _check("task", task, TASKS, GUIDE_TASKS)
    for kind, value, allowed, guide in (("hardware", hardware, HARDWARE, GUIDE_HARDWARE),
                                        ("priority", priority, PRIORITIES, GUIDE_PRIORITIES)):
        if isinstance(value, str) and value in guide and value not in allowed:
            raise ValueError(f"unknown {kind} {value!r} for the project's task {task!r}; allowed: "
                             f"{', '.join(allowed)} ({value!r} is a guide word: it goes with a guide task, "
                             f"{', '.join(GUIDE_TASKS)})")
    hardware = _check("hardware", hardware, HARDWARE)
    priority = _check("priority", priority, PRIORITIES)
    if hardware == "analog":
        return _make("Matterhorn", 1, "analog hardware: log weights and sparse MTTS spikes tolerate device "
                     "mismatch and minimise energy per inference", ["Spike-driven Transformer V2"])
    if task == "language_modeling":
        alt = ["Matterhorn"] if priority == "energy" else ["LSFormer"]
        return _make("WTA Spiking Transformer", 2, f"language modelling on {hardware}: causal attention by "
                     "top-k selection needs no softmax", alt)
    if task == "event_vision":
        if priority == "latency":
            return _make("TEFormer", 3, "event data, latency first: the causal forward temporal attention "
                         "streams step by step", ["Spike-driven Transformer V2"],
                         note="train with --set backward=none (the backward branch waits for the whole window)")
        return _make("TEFormer", 4, "event data: fuses information across time steps in both directions",
                     ["SpikingResformer"])
    if task == "long_sequence":
        return _make("LSFormer", 5, "long inputs: windowed attention keeps cost linear in length",
                     ["WTA Spiking Transformer"])
    # classification
    if priority == "energy":
        return _make("Matterhorn", 6, "classification, energy first", ["Spike-driven Transformer V2"])
    if priority == "accuracy":
        if hardware == "neuromorphic_chip":
            return _make("Spike-driven Transformer V2", 7, "accuracy on a neuromorphic chip: every layer "
                         "after the stem accumulates spikes only", ["SpikingResformer"])
        return _make("SpikingResformer", 8, f"classification, accuracy first on {hardware}",
                     ["Spike-driven Transformer V2"])
    if priority == "latency":
        return _make("LSFormer", 9, "classification, latency first: local attention, linear cost",
                     ["Spikformer"])
    return _make("Spikformer", 10, "classification, area first", ["Spike-driven Transformer V2"])
