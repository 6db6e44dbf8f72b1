"""NIR graphs in and out of the golden spiking MLP (issue 16, parts 1 and 2).

NIR (the Neuromorphic Intermediate Representation, ``nir`` on PyPI) is how snnTorch, Norse,
Sinabs and Lava exchange models. This module maps a NIR graph onto the golden float
``SpikingMLP`` (``golden/models/spiking_mlp.py``) and back; the integer mode is then the model's
own ``to_integer()`` under the numeric contract, and the core compiler takes it like any trained
spiking MLP. No command line here: ``spikeforge nir import|export`` (``spikeforge/cli.py``) calls
``import_nir`` / ``export_nir``.

Supported graphs
----------------
A chain ``Input [-> Flatten] -> W1 -> N1 -> W2 -> N2 -> W3 -> Output`` with W an ``Affine`` or
``Linear`` node and N a ``LIF``, ``IF`` or ``CubaLIF`` node: 64 inputs (the 8x8 digits, pixels / 16
in [0, 1], the same current at every step), H1 and H2 hidden neurons, 10 outputs whose mean over
the T steps are the logits. Every other node type (Conv, pooling, LI, I, CubaLI, Scale, Threshold,
Delay, nested graphs such as snnTorch's RLeaky/RSynaptic) is refused with its name and type;
so are a chain of another length, a fan-out, a join, a recurrent edge, a spiking output layer and
wrong shapes -- each in one line (``NIRError``, a ``ValueError``).

Neurons (time step dt; NIR's equations are continuous, discretised by forward Euler, the
convention of snnTorch's and Norse's NIR import and export)
----------------------------------------------------------------------------------------
* ``LIF`` (tau, r, v_leak, v_threshold, v_reset): ``v_t = beta v_{t-1} + g I_t + (dt/tau) v_leak``
  with ``beta = 1 - dt/tau`` and input gain ``g = r dt / tau``.
* ``IF`` (r, v_threshold, v_reset): ``v_t = v_{t-1} + r I_t`` (beta = 1; no dt, as snnTorch's and
  Sinabs' importers read it).
* ``CubaLIF`` (adds tau_syn, w_in): the synaptic current ``I_t = alpha I_{t-1} + (dt/tau_syn) w_in S_t``
  has state of its own, which the golden LIF lacks: only ``alpha = 1 - dt/tau_syn = 0``
  (tau_syn = dt) maps, with gain ``(dt/tau_syn) w_in r dt/tau_mem``; any other tau_syn is refused.
* dt: ``--dt``, else the graph's metadata ``dt`` (written by ``export``), else 1e-4, the value
  snnTorch's exporter uses (``tau = dt / (1 - beta)``, ``r = tau / dt``, so ``g = 1``).
* The gain and the constant leak drive fold into the preceding Affine:
  ``W' = g W``, ``b' = g b + (dt/tau) v_leak`` (row by row). A gain within 1e-6 of 1 (the float32
  rounding of snnTorch's tau and r) is taken as 1 and the weights are copied bit for bit.
* One leak per layer: beta must agree across the layer's neurons (within 1e-6), else refused;
  0 < beta <= 1 (tau > dt), else refused.
* Reset: NIR's LIF/IF/CubaLIF reset to ``v_reset`` in the step they spike, and fire on
  ``v > v_threshold``. Only ``v_reset = 0`` maps (golden ``reset_mode = "zero"``); any other
  reset potential is refused. A per-neuron threshold folds into the weights (zero reset is scale
  invariant: row j of W, b divided by theta_j, threshold 1).
* Strict ``>``: the golden LIF fires on ``h >= theta``; the imported threshold is the next float32
  above NIR's (``h > theta <=> h >= nextafter(theta)`` for float32 h), so the float model fires
  exactly when the NIR neuron does. ``to_integer`` rounds it like any threshold
  (``round(theta 2^f)``); the > / >= difference then lies inside the integer mode's stated bound.
* snnTorch's exporter writes every ``Leaky`` as a LIF with ``v_reset = 0`` whatever its
  ``reset_mechanism``, and without its ``reset_delay``: a file from a ``Leaky(reset_mechanism=
  "subtract")`` describes a zero-reset neuron (snnTorch's own ``import_from_nir`` reads it as
  ``reset_mechanism="zero", reset_delay=False``, as this importer does). The file carries no trace
  of the original reset, so the import follows the file; export ``reset_mechanism="zero",
  reset_delay=False`` networks for the file to mean the network.

T (time steps) is not part of a NIR graph: ``--time-steps``, else the metadata ``time_steps``,
else 4 (the spiking-mlp recipe's).

Export
------
A spiking MLP with ``reset_mode = "zero"`` (an imported one, or ``train spiking-mlp --set
reset_mode=zero``) becomes ``Input(64) -> Affine -> LIF -> Affine -> LIF -> Affine -> Output(10)``
(IF where beta = 1) with ``tau = dt / (1 - beta)``, ``r = tau / dt``, ``v_leak = 0``, ``v_reset = 0``,
``v_threshold`` = the next float32 below the golden threshold, and metadata ``time_steps``, ``dt``;
importing it gives back the same float model and so the same integer model. Subtract and no reset
are refused: NIR's LIF has neither, and the file would describe a different model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

#: the NIR node types the importer reads
SUPPORTED_NODES = ("Input", "Output", "Affine", "Linear", "LIF", "IF", "CubaLIF", "Flatten")
WEIGHT_NODES = ("Affine", "Linear")
NEURON_NODES = ("LIF", "IF", "CubaLIF")
#: snnTorch's exporter's time step (snntorch/export_nir.py: dt = 1e-4)
DEFAULT_DT = 1e-4
DEFAULT_TIME_STEPS = 4
#: gains within this of 1, and betas within this of each other, are the float32 rounding of one value
RTOL = 1e-6
N_INPUTS, N_CLASSES = 64, 10
CHAIN = "Input -> Affine -> neuron -> Affine -> neuron -> Affine (readout) -> Output, neuron = LIF, IF or CubaLIF"


class NIRError(ValueError):
    """A graph (or a model) that does not map, with a one-line reason."""


def _up32(x: float) -> float:
    return float(np.nextafter(np.float32(x), np.float32(np.inf)))


def _down32(x: float) -> float:
    return float(np.nextafter(np.float32(x), np.float32(-np.inf)))


def read_graph(path: str | Path):
    """Read a ``.nir`` file (HDF5) without nir's own type check (our checks give clearer errors)."""
    import nir

    path = Path(path)
    if path.is_dir():
        raise NIRError(f"NIR graph {path} is a directory; give the .nir file")
    if not path.exists():
        raise NIRError(f"NIR graph {path} does not exist")
    try:
        graph = nir.read(path, type_check=False)
    except Exception as exc:  # h5py and nir raise many types for a damaged file
        first = str(exc).strip().splitlines()[0].strip("'\"") if str(exc).strip() else ""
        raise NIRError(f"NIR graph {path} cannot be read ({type(exc).__name__}: {first}); give a .nir file "
                       f"(HDF5, nir.write)") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"{path} holds a single {type(graph).__name__} node, not a NIR graph")
    return graph


def _shape(types, key: str):
    try:
        value = (types or {}).get(key)
        return None if value is None else tuple(int(v) for v in np.asarray(value).reshape(-1))
    except (TypeError, ValueError):
        return None


def _reachable(edges: list[tuple[str, str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo += [b for a, b in edges if a == node]
    return False


def graph_chain(graph) -> list[tuple[str, object]]:
    """The graph's nodes from Input to Output, or ``NIRError`` (unsupported node, not a chain)."""
    nodes = dict(graph.nodes)
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind not in SUPPORTED_NODES:
            extra = " (a nested graph: snnTorch writes RLeaky / RSynaptic, recurrent layers, this way)" \
                if kind == "NIRGraph" else ""
            raise NIRError(f"node {name!r} ({kind}) is not supported{extra}; supported: "
                           f"{', '.join(SUPPORTED_NODES)}")
    edges = []
    for edge in graph.edges:
        a, b = (str(e) for e in edge)
        for end in (a, b):
            if end not in nodes:
                raise NIRError(f"edge {a} -> {b} names node {end!r}, which the graph does not have")
        if (a, b) not in edges:
            edges.append((a, b))
    inputs = [n for n, node in nodes.items() if type(node).__name__ == "Input"]
    outputs = [n for n, node in nodes.items() if type(node).__name__ == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRError(f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes; the spiking MLP "
                       f"has one of each ({CHAIN})")
    chain, current = [], inputs[0]
    while True:
        chain.append(current)
        if current == outputs[0]:
            break
        succ = [b for a, b in edges if a == current]
        if len(succ) != 1:
            what = "feeds nothing" if not succ else f"feeds {len(succ)} nodes ({', '.join(succ)})"
            raise NIRError(f"node {current!r} ({type(nodes[current]).__name__}) {what}; only a chain {CHAIN} "
                           f"maps onto the spiking MLP")
        nxt = succ[0]
        if nxt in chain:
            raise NIRError(f"recurrent edge {current} -> {nxt}: the spiking MLP is feed-forward")
        preds = [a for a, b in edges if b == nxt]
        if len(preds) > 1:
            others = [p for p in preds if p != current]
            back = [p for p in others if _reachable(edges, nxt, p)]
            if back:
                raise NIRError(f"recurrent edge {back[0]} -> {nxt}: the spiking MLP is feed-forward")
            raise NIRError(f"node {nxt!r} joins {len(preds)} inputs ({', '.join(preds)}); only a chain {CHAIN} "
                           f"maps onto the spiking MLP")
        current = nxt
    left = [n for n in nodes if n not in chain]
    if left:
        raise NIRError(f"node {left[0]!r} ({type(nodes[left[0]]).__name__}) is not on the chain from Input to "
                       f"Output; only a chain {CHAIN} maps onto the spiking MLP")
    return [(n, nodes[n]) for n in chain]


def _array(name: str, node, key: str, n: int) -> np.ndarray:
    """A neuron parameter as float64 (n,): a scalar or a (1,) array is broadcast."""
    value = getattr(node, key, None)
    if value is None:
        raise NIRError(f"node {name!r} ({type(node).__name__}) has no {key}")
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 1:
        arr = np.full(n, float(arr.reshape(-1)[0]))
    if arr.shape != (n,):
        raise NIRError(f"node {name!r} ({type(node).__name__}): {key} has shape {tuple(np.shape(value))}; the "
                       f"layer has {n} neurons")
    if not np.all(np.isfinite(arr)):
        raise NIRError(f"node {name!r} ({type(node).__name__}): {key} is not finite")
    return arr


@dataclass
class _Layer:
    weight: np.ndarray   # float32 (out, in)
    bias: np.ndarray     # float32 (out,)
    beta: float = 1.0
    threshold: float = 1.0
    notes: list[str] = field(default_factory=list)


def _weights(name: str, node, n_in: int, prev: str) -> tuple[np.ndarray, np.ndarray]:
    kind = type(node).__name__
    w = np.asarray(node.weight)
    if w.ndim != 2:
        raise NIRError(f"node {name!r} ({kind}): weight has shape {w.shape}; a 2-D (out, in) matrix is needed")
    if w.shape[1] != n_in:
        raise NIRError(f"node {name!r} ({kind}) takes {w.shape[1]} inputs but {prev} gives {n_in}")
    b = np.zeros(w.shape[0], dtype=np.float32) if kind == "Linear" else np.asarray(node.bias)
    if b.shape != (w.shape[0],):
        raise NIRError(f"node {name!r} ({kind}): bias has shape {b.shape}; the weight has {w.shape[0]} outputs")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise NIRError(f"node {name!r} ({kind}): weight or bias is not finite")
    return w.astype(np.float32), b.astype(np.float32)


def _neuron(name: str, node, layer: _Layer, dt: float) -> None:
    """Fold the neuron's gain, leak drive and threshold into ``layer`` (see the module docstring)."""
    kind = type(node).__name__
    n = layer.weight.shape[0]
    p = {key: _array(name, node, key, n) for key in ("v_threshold", "v_reset", "r")}
    if np.any(p["v_reset"] != 0):
        raise NIRError(f"node {name!r} ({kind}): v_reset = {p['v_reset'][p['v_reset'] != 0][0]:g}; the golden LIF "
                       f"resets to 0 (or subtracts the threshold), a non-zero reset potential does not map")
    if np.any(p["v_threshold"] <= 0):
        raise NIRError(f"node {name!r} ({kind}): v_threshold must be > 0, got {p['v_threshold'].min():g}")
    if kind == "IF":
        beta, gain, drive = np.ones(n), p["r"], np.zeros(n)
    else:
        tau = _array(name, node, "tau" if kind == "LIF" else "tau_mem", n)
        if np.any(tau <= dt):
            raise NIRError(f"node {name!r} ({kind}): tau = {tau.min():g} <= dt = {dt:g} gives beta = 1 - dt/tau "
                           f"<= 0; the golden LIF needs 0 < beta <= 1 (tau > dt; give --dt)")
        k = dt / tau
        beta = 1.0 - k
        gain = p["r"] * k
        drive = k * _array(name, node, "v_leak", n)
        if kind == "CubaLIF":
            tau_syn = _array(name, node, "tau_syn", n)
            alpha = 1.0 - dt / tau_syn
            if np.any(np.abs(alpha) > RTOL):
                raise NIRError(f"node {name!r} (CubaLIF): tau_syn = {tau_syn[0]:g} gives a synaptic current with "
                               f"alpha = 1 - dt/tau_syn = {alpha[np.argmax(np.abs(alpha))]:g} at dt = {dt:g}; the "
                               f"golden LIF has no synaptic state (only tau_syn = dt, alpha = 0, maps)")
            gain = gain * _array(name, node, "w_in", n) * (dt / tau_syn)
    if np.ptp(beta) > RTOL:
        raise NIRError(f"node {name!r} ({kind}): the neurons' leaks differ (beta {beta.min():.6g} .. "
                       f"{beta.max():.6g}); the golden LIF has one leak per layer")
    layer.beta = 1.0 if kind == "IF" else float(np.float32(beta.mean()))
    w, b = layer.weight.astype(np.float64), layer.bias.astype(np.float64)
    folded = False
    if np.any(np.abs(gain - 1.0) > RTOL) or np.any(drive != 0):
        w, b = w * gain[:, None], b * gain + drive
        folded = True
        layer.notes.append(f"{name}: input gain and leak drive folded into the weights")
    theta = p["v_threshold"].astype(np.float32)
    if np.all(theta == theta[0]):
        layer.threshold = _up32(theta[0])
    else:
        w, b = w / theta[:, None].astype(np.float64), b / theta.astype(np.float64)
        folded = True
        layer.threshold = _up32(1.0)
        layer.notes.append(f"{name}: per-neuron thresholds folded into the weights (threshold 1)")
    if folded:
        layer.weight, layer.bias = w.astype(np.float32), b.astype(np.float32)


@dataclass
class Mapping:
    """A graph mapped onto the spiking MLP: the float model and how each node was read."""

    model: object                     # golden SpikingMLP, reset_mode "zero"
    nodes: list[tuple[str, str]]      # (name, type) along the chain
    dt: float
    time_steps: int
    notes: list[str]


def graph_to_model(graph, *, dt: float | None = None, time_steps: int | None = None) -> Mapping:
    """A NIR graph -> the equivalent golden float ``SpikingMLP`` (or ``NIRError``)."""
    from golden.models.spiking_mlp import SpikingMLP

    meta = graph.metadata if isinstance(getattr(graph, "metadata", None), dict) else {}
    notes = []
    if dt is None:
        dt = float(meta["dt"]) if "dt" in meta else DEFAULT_DT
        notes.append(f"dt = {dt:g} ({'the graph metadata' if 'dt' in meta else 'snnTorch exporter default'})")
    if not (math.isfinite(dt) and dt > 0):
        raise NIRError(f"dt must be a number > 0, got {dt}")
    if time_steps is None:
        time_steps = int(meta["time_steps"]) if "time_steps" in meta else DEFAULT_TIME_STEPS
        notes.append(f"T = {time_steps} ({'the graph metadata' if 'time_steps' in meta else 'default'})")
    if time_steps < 1:
        raise NIRError(f"time steps must be >= 1, got {time_steps}")
    chain = graph_chain(graph)
    (in_name, in_node), (out_name, out_node) = chain[0], chain[-1]
    n_in = _shape(in_node.input_type, "input")
    if n_in is None:
        raise NIRError(f"Input node {in_name!r} has no shape")
    body = chain[1:-1]
    while body and type(body[0][1]).__name__ == "Flatten":
        body = body[1:]        # Flatten right after Input: the 8x8 image as 64 features
    kinds = [type(node).__name__ for _, node in body]
    if "Flatten" in kinds:
        name = body[kinds.index("Flatten")][0]
        raise NIRError(f"node {name!r} (Flatten) is not right after the Input; only a chain {CHAIN} maps")
    pattern = ["W", "N", "W", "N", "W"]
    got = ["W" if k in WEIGHT_NODES else "N" for k in kinds]
    if got != pattern:
        spiking = kinds.count("LIF") + kinds.count("IF") + kinds.count("CubaLIF")
        hint = ""
        if got and got[-1] == "N":
            hint = "; a spiking output layer does not map (the readout is a non-spiking Affine averaged over time)"
        elif spiking != 2:
            hint = f"; the graph has {spiking} spiking layers, the spiking MLP 2"
        raise NIRError(f"the chain is {' -> '.join(['Input', *kinds, 'Output'])}; the spiking MLP is {CHAIN}{hint}")
    if int(np.prod(n_in)) != N_INPUTS:
        raise NIRError(f"Input node {in_name!r} has shape {list(n_in)} ({int(np.prod(n_in))} values); the spiking "
                       f"MLP runs on the 8x8 digits: {N_INPUTS} inputs")
    layers, width, prev = [], N_INPUTS, f"node {in_name!r}"
    for i in range(0, 5, 2):
        name, node = body[i]
        w, b = _weights(name, node, width, prev)
        layer = _Layer(w, b)
        if i < 4:
            _neuron(*body[i + 1], layer, dt)
            notes += layer.notes
        layers.append(layer)
        width, prev = w.shape[0], f"node {name!r}"
    if width != N_CLASSES:
        raise NIRError(f"the readout {body[4][0]!r} has {width} outputs; the spiking MLP classifies {N_CLASSES} digits")
    n_out = _shape(out_node.output_type, "output") or _shape(out_node.input_type, "input")
    if n_out is not None and int(np.prod(n_out)) != width:
        raise NIRError(f"Output node {out_name!r} has shape {list(n_out)} but {prev} gives {width}")
    l1, l2, l3 = layers
    model = SpikingMLP(hidden=l1.weight.shape[0], hidden2=l2.weight.shape[0], time_steps=time_steps,
                       beta=l1.beta, threshold=l1.threshold, beta2=l2.beta, threshold2=l2.threshold,
                       reset_mode="zero")
    with torch.no_grad():
        for lin, layer in ((model.layer1.linear, l1), (model.layer2.linear, l2), (model.readout, l3)):
            lin.weight.copy_(torch.from_numpy(layer.weight))
            lin.bias.copy_(torch.from_numpy(layer.bias))
    model.eval()
    return Mapping(model, [(n, type(node).__name__) for n, node in chain], dt, time_steps, notes)


def model_config(model) -> dict:
    """The ``SpikingMLP`` constructor settings of a model (what a checkpoint's ``config`` holds)."""
    return {"hidden": int(model.layer1.linear.out_features), "hidden2": int(model.layer2.linear.out_features),
            "time_steps": int(model.time_steps), "beta": float(model.layer1.lif.beta),
            "threshold": float(model.layer1.lif.threshold), "beta2": float(model.layer2.lif.beta),
            "threshold2": float(model.layer2.lif.threshold), "reset_mode": model.layer1.lif.reset_mode}


def model_to_graph(model, *, dt: float = DEFAULT_DT):
    """A golden float ``SpikingMLP`` with zero reset -> a NIR graph (or ``NIRError``)."""
    import nir

    from golden.models.spiking_mlp import SpikingMLP

    if not isinstance(model, SpikingMLP):
        raise NIRError(f"{type(model).__name__} does not map to NIR nodes; export takes the spiking MLP "
                       f"(Affine + LIF)")
    if not (math.isfinite(dt) and dt > 0):
        raise NIRError(f"dt must be a number > 0, got {dt}")
    nodes = {"input": nir.Input(input_type={"input": np.array([N_INPUTS])})}
    for i, layer in enumerate((model.layer1, model.layer2), start=1):
        lif = layer.lif
        if lif.reset_mode != "zero":
            raise NIRError(f"layer{i} resets by {lif.reset_mode!r}; NIR's LIF resets to v_reset (zero reset) and "
                           f"has no {lif.reset_mode!r} reset, so the graph would describe another model (train with "
                           f"--set reset_mode=zero)")
        if lif.refractory:
            raise NIRError(f"layer{i} has a refractory period of {lif.refractory} steps; NIR's LIF has none")
        n = layer.linear.out_features
        nodes[f"layer{i}"] = nir.Affine(weight=layer.linear.weight.detach().numpy().astype(np.float32).copy(),
                                        bias=layer.linear.bias.detach().numpy().astype(np.float32).copy())
        beta = float(lif.beta.detach())
        theta = np.full(n, _down32(lif.threshold), dtype=np.float32)
        if beta >= 1.0:
            nodes[f"lif{i}"] = nir.IF(r=np.ones(n), v_threshold=theta, v_reset=np.zeros(n))
        else:
            tau = dt / (1.0 - beta)
            nodes[f"lif{i}"] = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n),
                                       v_threshold=theta, v_reset=np.zeros(n))
    nodes["readout"] = nir.Affine(weight=model.readout.weight.detach().numpy().astype(np.float32).copy(),
                                  bias=model.readout.bias.detach().numpy().astype(np.float32).copy())
    nodes["output"] = nir.Output(output_type={"output": np.array([N_CLASSES])})
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=True)
    graph.metadata = {"producer": "spikeforge", "time_steps": int(model.time_steps), "dt": float(dt),
                      "input": "8x8 digits, pixels / 16 in [0, 1], the same current at every step",
                      "readout": "logits = mean over the time steps of the readout's outputs"}
    return graph


def agreement(model, samples: int | None = None) -> dict[str, float]:
    """Float and integer accuracy on the held-out digits and how often their predictions agree."""
    from golden import data
    from golden.models.common import to_int_pixels

    split = data.digits_split(seed=0)
    x, y = split.x_test[:samples], split.y_test[:samples]
    with torch.no_grad():
        fp = model(x).argmax(dim=1)
    ip = model.to_integer().forward(to_int_pixels(x)).argmax(dim=1)
    return {"test_accuracy": float((fp == y).double().mean()), "integer_accuracy": float((ip == y).double().mean()),
            "agreement": float((fp == ip).double().mean()), "samples": int(len(y))}


@dataclass
class ImportReport:
    mapping: Mapping
    metrics: dict
    program_ops: int
    checkpoint: Path

    def text(self) -> str:
        m = self.mapping
        chain = " -> ".join(f"{n} ({k})" for n, k in m.nodes)
        cfg = model_config(m.model)
        lines = [f"NIR graph: {chain}",
                 f"spiking MLP: 64 -> {cfg['hidden']} -> {cfg['hidden2']} -> 10, T = {m.time_steps}, dt = {m.dt:g}, "
                 f"beta {cfg['beta']:.6g} / {cfg['beta2']:.6g}, threshold {cfg['threshold']:.7g} / "
                 f"{cfg['threshold2']:.7g}, reset zero",
                 *(f"  {note}" for note in m.notes),
                 f"held-out digits ({self.metrics['samples']}): float accuracy {self.metrics['test_accuracy']:.3f}, "
                 f"integer accuracy {self.metrics['integer_accuracy']:.3f}, float/integer agreement "
                 f"{self.metrics['agreement']:.3f}",
                 f"core: the integer model compiles ({self.program_ops} ops)",
                 f"wrote {self.checkpoint}"]
        return "\n".join(lines)


def import_nir(path: str | Path, out: str | Path, *, dt: float | None = None,
               time_steps: int | None = None) -> ImportReport:
    """Read a NIR graph, map it, quantize it, check the core compiler takes it, write a checkpoint
    that ``energy``, ``estimate`` and ``core build|run`` load (``recipe = "spiking-mlp"``)."""
    from golden.core.compile import compile_model

    mapping = graph_to_model(read_graph(path), dt=dt, time_steps=time_steps)
    model = mapping.model
    program = compile_model(model.to_integer())        # SpecError if the integer model does not map
    metrics = agreement(model)
    payload = {"recipe": "spiking-mlp", "config": model_config(model), "train": {}, "seed": 0,
               "state_dict": model.state_dict(), "metrics": metrics, "vocab": None,
               "nir": {"source": str(path), "dt": mapping.dt, "time_steps": mapping.time_steps,
                       "nodes": [f"{n}:{k}" for n, k in mapping.nodes]}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    return ImportReport(mapping, metrics, len(program.ops), out)


def export_nir(checkpoint: str | Path, out: str | Path, *, dt: float | None = None) -> str:
    """Write a checkpoint's spiking MLP as a NIR graph; returns a one-paragraph report."""
    import nir

    from spikeforge.core import resolve_checkpoint
    from spikeforge.training import load_checkpoint

    path = resolve_checkpoint(str(checkpoint))
    model, ckpt = load_checkpoint(path)
    if dt is None:
        dt = float(ckpt.get("nir", {}).get("dt", DEFAULT_DT))
    graph = model_to_graph(model, dt=dt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nir.write(out, graph)
    chain = " -> ".join(f"{n} ({type(node).__name__})" for n, node in graph.nodes.items())
    return f"NIR graph: {chain}, T = {model.time_steps}, dt = {dt:g}\nwrote {out}"
