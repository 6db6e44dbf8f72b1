"""NIR import and export (issue 16, parts 1 and 2; spikeforge/nir_io.py).

The independent implementation is snnTorch: a small network is built and trained here, written
by snnTorch's own NIR exporter, imported, and compared with snnTorch on the same input. Known
answers for the node types snnTorch does not write (IF, gains, leak drive, per-neuron thresholds)
come from the NIR equations stepped by hand in float32 below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
snn = pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")

from golden import data  # noqa: E402
from golden.core.compile import compile_model  # noqa: E402
from golden.core.execute import check_against_model, run_program  # noqa: E402
from golden.models.common import to_int_pixels  # noqa: E402
from golden.models.spiking_mlp import SpikingMLP  # noqa: E402
from spikeforge.cli import main  # noqa: E402
from spikeforge.nir_io import NIRError, graph_to_model, model_to_graph, read_graph  # noqa: E402

H1, H2, T = 32, 24, 4


def snn_net(reset: str = "zero", delay: bool = False, seed: int = 0) -> torch.nn.Sequential:
    """64 -> H1 -> H2 -> 10 with snnTorch Leaky neurons (per-neuron beta and threshold: snnTorch's
    exporter needs them as vectors to write shapes NIR's type check accepts)."""
    torch.manual_seed(seed)

    def leaky(n):
        return snn.Leaky(beta=torch.full((n,), 0.875), threshold=torch.full((n,), 1.0), init_hidden=True,
                         reset_mechanism=reset, reset_delay=delay)
    return torch.nn.Sequential(torch.nn.Linear(64, H1), leaky(H1), torch.nn.Linear(H1, H2), leaky(H2),
                               torch.nn.Linear(H2, 10))


def snn_run(net, x: torch.Tensor, steps: int = T):
    """x (B, 64) as the same current at every step -> spikes1, spikes2, readout outputs, all (T, B, .)."""
    from snntorch import utils

    utils.reset(net)
    s1, s2, out = [], [], []
    with torch.no_grad():
        for _ in range(steps):
            a = net[1](net[0](x))
            b = net[3](net[2](a))
            s1.append(a), s2.append(b), out.append(net[4](b))
    return torch.stack(s1), torch.stack(s2), torch.stack(out)


def golden_run(model: SpikingMLP, x: torch.Tensor):
    with torch.no_grad():
        drive = x.unsqueeze(0).expand(model.time_steps, *x.shape)
        s1 = model.layer1(drive)
        s2 = model.layer2(s1)
        return s1, s2, model.readout(s2)


@pytest.fixture(scope="module")
def split():
    return data.digits_split(seed=0)


@pytest.fixture(scope="module")
def trained(split, tmp_path_factory):
    """A zero-reset snnTorch network trained for a few epochs (~2 s), exported by snnTorch."""
    from snntorch.export_nir import export_to_nir

    torch.set_num_threads(1)   # tiny matrices: more threads only contend on a shared machine
    net = snn_net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = split.x_train.flatten(1), split.y_train
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        for batch in torch.randperm(len(y), generator=gen).split(64):
            _, _, out = snn_run_train(net, x[batch])
            loss = torch.nn.functional.cross_entropy(out.mean(0), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    path = tmp_path_factory.mktemp("nir") / "snn.nir"
    nir.write(path, export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0]))
    return net, path


def snn_run_train(net, x):
    from snntorch import utils

    utils.reset(net)
    outs = []
    for _ in range(T):
        outs.append(net[4](net[3](net[2](net[1](net[0](x))))))
    return None, None, torch.stack(outs)


# ---- (a) float spikes == snnTorch's ------------------------------------------------------------------

@pytest.mark.parametrize("gain", [1.0, 4.0], ids=["digits", "strong input (x4)"])
def test_float_spikes_equal_snntorch(trained, split, gain):
    """Same semantics (zero reset in the spiking step, fire on v > theta): every spike, every readout
    output equal, bit for bit (tolerance 0). The golden LIF fires on h >= theta', theta' the next float32
    above NIR's theta, which is exactly h > theta for float32 h; leak and input are the same float32
    operations as snnTorch's. The strong input makes most neurons spike and reset."""
    net, path = trained
    mapping = graph_to_model(read_graph(path), time_steps=T)
    assert [k for _, k in mapping.nodes] == ["Input", "Affine", "LIF", "Affine", "LIF", "Affine", "Output"]
    x = split.x_test.flatten(1) * gain
    want = snn_run(net, x)
    got = golden_run(mapping.model, x)
    for name, w, g in zip(("spikes1", "spikes2", "readout"), want, got):
        assert torch.equal(g, w), (name, float((g != w).double().mean()))
    rate1, rate2 = float(want[0].mean()), float(want[1].mean())
    assert 0.02 < rate1 < 0.98 and 0.02 < rate2 < 0.98, (rate1, rate2)   # not a vacuous comparison
    # neurons that spike twice in a row reset in between: the reset is exercised
    assert float((want[0][1:] * want[0][:-1]).sum()) > 0


def test_snntorch_reads_the_file_as_this_importer_does(trained):
    """snnTorch's own importer reads the LIF nodes as reset-to-zero without delay; a network with
    snnTorch's default subtract reset and reset delay writes the very same kind of file, so the file
    cannot say it -- the import follows the file (documented), and that network's spikes differ."""
    from snntorch.import_nir import import_from_nir

    net, path = trained
    graph = read_graph(path)
    for node in graph.nodes.values():
        if type(node).__name__ == "LIF":
            assert np.all(node.v_reset == 0)
    back = import_from_nir(read_graph(path))
    leaky = [m for m in back.modules() if isinstance(m, snn.Leaky)]
    assert len(leaky) == 2
    assert all(m.reset_mechanism == "zero" and not m.reset_delay for m in leaky)

    default = snn_net("subtract", True)
    for i in (0, 2, 4):
        default[i].load_state_dict(net[i].state_dict())
    x = data.digits_split(seed=0).x_test.flatten(1) * 4
    mapping = graph_to_model(graph, time_steps=T)
    s_default = snn_run(default, x)[0]
    s_file = golden_run(mapping.model, x)[0]
    agree = float((s_default == s_file).double().mean())
    assert 0.8 < agree < 1.0     # measured 0.94-0.99 (issue 16 saw 90-96 %)


# ---- (b) integer vs float on held-out digits ---------------------------------------------------------

def test_integer_mode_agrees_with_float(trained, split):
    """Bound: >= 90 % of the 450 held-out digits get the same class in both modes and the integer
    accuracy is within 5 points of the float one (the spiking-mlp recipe's own test bound; 8-bit
    weights, the threshold rounded to the weight grid). Measured: 0.96-0.99 agreement."""
    _, path = trained
    model = graph_to_model(read_graph(path), time_steps=T).model
    with torch.no_grad():
        fp = model(split.x_test).argmax(1)
    ip = model.to_integer().forward(to_int_pixels(split.x_test)).argmax(1)
    f_acc = float((fp == split.y_test).double().mean())
    i_acc = float((ip == split.y_test).double().mean())
    assert f_acc > 0.75, f_acc      # trained: chance is 0.10
    assert float((fp == ip).double().mean()) >= 0.90
    assert i_acc >= f_acc - 0.05


# ---- (c) the core program == the integer model -------------------------------------------------------

def test_imported_model_on_the_core_program(trained, split):
    _, path = trained
    int_model = graph_to_model(read_graph(path), time_steps=T).model.to_integer()
    program = compile_model(int_model, lanes=8)
    pixels = to_int_pixels(split.x_test[:64])
    run = run_program(program, pixels.flatten(1))
    layers = int_model.forward_layers(pixels)
    # raises CoreMismatch at the first tensor that differs; returns the tensors it compared with ==
    checked = check_against_model(program, run, layers)
    assert set(checked) == {"currents1", "spikes1", "currents2", "spikes2", "logits"}
    assert torch.equal(run.logits, layers["logits"].unsqueeze(1))
    assert program.ops[0].lif.reset_mode == "zero"     # the core runs the imported reset


# ---- the CLI: import, the other commands take the checkpoint, export round trip -----------------------

def _int_params(model):
    m = model.to_integer()
    out = {}
    for name in ("layer1", "layer2"):
        layer = getattr(m, name)
        out[name] = (layer.weight, layer.bias, layer.lif.threshold, layer.lif.leak_beta, layer.lif.reset_mode,
                     layer.weight_frac)
    out["readout"] = (m.readout.weight, m.readout.bias, m.readout.weight_frac)
    return m, out


def test_cli_import_export_round_trip(trained, split, tmp_path, capsys):
    from spikeforge.core import load_core_model
    from spikeforge.training import load_checkpoint

    _, path = trained
    ckpt = tmp_path / "imported.pt"
    assert main(["nir", "import", str(path), "-o", str(ckpt), "--time-steps", str(T)]) == 0
    out = capsys.readouterr().out
    assert "Affine" in out and "agreement" in out and str(ckpt) in out
    model, meta = load_checkpoint(ckpt)
    assert meta["recipe"] == "spiking-mlp" and meta["config"]["reset_mode"] == "zero"
    # the other commands take it: the core loader (compiler) and energy
    cm = load_core_model(str(ckpt))
    assert cm.program.time_steps == T
    assert main(["energy", "spiking-mlp", "--checkpoint", str(ckpt), "--integer", "--samples", "8"]) == 0
    capsys.readouterr()

    graph = tmp_path / "out.nir"
    assert main(["nir", "export", str(ckpt), "-o", str(graph)]) == 0
    again = tmp_path / "again.pt"
    assert main(["nir", "import", str(graph), "-o", str(again)]) == 0   # T and dt from the metadata
    model2, meta2 = load_checkpoint(again)
    assert meta2["config"] == meta["config"]
    for key, value in model.state_dict().items():
        assert torch.equal(model2.state_dict()[key], value), key
    m1, p1 = _int_params(model)
    m2, p2 = _int_params(model2)
    for name in p1:
        for a, b in zip(p1[name], p2[name]):
            assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, name
    pixels = to_int_pixels(split.x_test)
    assert torch.equal(m1(pixels), m2(pixels))


def test_a_golden_zero_reset_model_round_trips_incl_if():
    """A spikeforge model (random weights) -> NIR -> back: the same float parameters; beta = 1 goes out
    as an IF node."""
    torch.manual_seed(3)
    model = SpikingMLP(hidden=16, hidden2=8, time_steps=3, beta=0.75, beta2=1.0, threshold=0.5, threshold2=1.25,
                       reset_mode="zero")
    graph = model_to_graph(model)
    assert [type(n).__name__ for n in graph.nodes.values()] == ["Input", "Affine", "LIF", "Affine", "IF",
                                                                 "Affine", "Output"]
    back = graph_to_model(graph).model
    assert back.time_steps == 3
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert back.layer1.lif.threshold == 0.5 and back.layer2.lif.threshold == 1.25
    x = torch.rand(20, 64)
    for a, b in zip(golden_run(model, x), golden_run(back, x)):
        assert torch.equal(a, b)


def test_export_refuses_subtract_reset():
    with pytest.raises(NIRError, match="'subtract'.*reset_mode=zero"):
        model_to_graph(SpikingMLP(hidden=8))


# ---- known answers: the NIR equations stepped by hand --------------------------------------------------

def _hand_graph(kind: str, rng) -> tuple:
    """A graph whose mapping must fold a gain, a leak drive and per-neuron thresholds, and its
    parameters. Powers of two keep every fold exact in float32."""
    w1 = rng.normal(0, 0.3, (8, 64)).astype(np.float32)
    w2 = rng.normal(0, 0.5, (6, 8)).astype(np.float32)
    w3 = rng.normal(0, 0.5, (10, 6)).astype(np.float32)
    dt, tau = 1e-3, 4e-3                                   # beta = 0.75
    theta1 = np.array([0.5, 1, 2, 4, 0.5, 1, 2, 4], dtype=np.float32)
    n1 = {"LIF": lambda: nir.LIF(tau=np.full(8, tau), r=np.full(8, 8.0), v_leak=np.full(8, 0.25),
                                  v_threshold=theta1, v_reset=np.zeros(8)),
          "IF": lambda: nir.IF(r=np.full(8, 2.0), v_threshold=theta1, v_reset=np.zeros(8)),
          "CubaLIF": lambda: nir.CubaLIF(tau_syn=np.full(8, dt), tau_mem=np.full(8, tau), r=np.full(8, 8.0),
                                         v_leak=np.full(8, 0.25), v_threshold=theta1, v_reset=np.zeros(8),
                                         w_in=np.ones(8))}[kind]()
    nodes = {"in": nir.Input(input_type={"input": np.array([64])}),
             "w1": nir.Linear(weight=w1), "n1": n1,
             "w2": nir.Affine(weight=w2, bias=np.zeros(6, np.float32)),
             "n2": nir.LIF(tau=np.full(6, tau), r=np.full(6, tau / dt), v_leak=np.zeros(6),
                           v_threshold=np.ones(6, np.float32), v_reset=np.zeros(6)),
             "w3": nir.Affine(weight=w3, bias=np.zeros(10, np.float32)),
             "out": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)
    return graph, dict(w1=w1, w2=w2, theta1=theta1, dt=dt, tau=tau)


def _hand_reference(kind, p, x, steps):
    """NIR's equations, forward Euler, reset to 0 in the spiking step, fire on v > theta (float32)."""
    k = np.float32(p["dt"] / p["tau"])
    beta, gain, drive = {"LIF": (1 - k, 8 * k, k * 0.25), "CubaLIF": (1 - k, 8 * k, k * 0.25),
                         "IF": (1.0, 2.0, 0.0)}[kind]
    w1, w2, theta1 = (torch.from_numpy(p[n]) for n in ("w1", "w2", "theta1"))
    v1, v2 = torch.zeros(len(x), 8), torch.zeros(len(x), 6)
    s1s, s2s = [], []
    for _ in range(steps):
        v1 = beta * v1 + (x @ w1.t()) * gain + drive
        s1 = (v1 > theta1).float()
        v1 = v1 * (1 - s1)
        v2 = (1 - k) * v2 + s1 @ w2.t()
        s2 = (v2 > 1.0).float()
        v2 = v2 * (1 - s2)
        s1s.append(s1), s2s.append(s2)
    return torch.stack(s1s), torch.stack(s2s)


@pytest.mark.parametrize("kind", ["LIF", "IF", "CubaLIF"])
def test_gain_leak_drive_and_thresholds_fold_exactly(kind):
    rng = np.random.default_rng(7)
    graph, p = _hand_graph(kind, rng)
    mapping = graph_to_model(graph, dt=p["dt"], time_steps=6)
    x = torch.from_numpy(rng.uniform(0, 1, (200, 64)).astype(np.float32))
    want = _hand_reference(kind, p, x, 6)
    got = golden_run(mapping.model, x)[:2]
    for w, g in zip(want, got):
        agree = float((w == g).double().mean())
        # the folds are exact (powers of two): measured 1.0; the bias add's rounding order is BLAS-dependent
        assert agree >= 0.999, agree
    assert 0.05 < float(want[0].mean()) < 0.95
    assert mapping.model.layer2.lif.beta.item() == 0.75


# ---- refusals: one line naming the node -----------------------------------------------------------------

def _chain(*nodes):
    return nir.NIRGraph.from_list(*nodes, type_check=False)


def _lif(n, **kw):
    args = dict(tau=np.full(n, 8e-4), r=np.full(n, 8.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
                v_reset=np.zeros(n))
    args.update(kw)
    return nir.LIF(**args)


def _aff(o, i):
    return nir.Affine(weight=np.zeros((o, i), np.float32), bias=np.zeros(o, np.float32))


@pytest.mark.parametrize("nodes, needle", [
    (lambda: [_aff(8, 64), _lif(8), _aff(8, 8), _lif(8), _aff(10, 8), _lif(10)], "spiking output layer"),
    (lambda: [_aff(8, 64), _lif(8), _aff(8, 8), _lif(8), _aff(8, 8), _lif(8), _aff(10, 8)], "3 spiking layers"),
    (lambda: [_aff(8, 64), nir.LI(tau=np.ones(8), r=np.ones(8), v_leak=np.zeros(8)), _aff(8, 8), _lif(8),
              _aff(10, 8)], "(LI) is not supported"),
    (lambda: [_aff(8, 64), _lif(8, v_reset=np.full(8, 0.5)), _aff(8, 8), _lif(8), _aff(10, 8)], "v_reset = 0.5"),
    (lambda: [_aff(8, 64), _lif(8, tau=np.linspace(2e-4, 1e-3, 8)), _aff(8, 8), _lif(8), _aff(10, 8)],
     "one leak per layer"),
    (lambda: [_aff(8, 64), _lif(8, tau=np.full(8, 1e-4)), _aff(8, 8), _lif(8), _aff(10, 8)], "beta"),
    (lambda: [_aff(8, 32), _lif(8), _aff(8, 8), _lif(8), _aff(10, 8)], "64 inputs"),
    (lambda: [_aff(8, 64), _lif(8), _aff(8, 4), _lif(8), _aff(10, 8)], "takes 4 inputs"),
    (lambda: [_aff(8, 64), _lif(5), _aff(8, 8), _lif(8), _aff(10, 8)], "8 neurons"),
    (lambda: [_aff(8, 64), _lif(8), _aff(8, 8), _lif(8), _aff(7, 8)], "10 digits"),
    (lambda: [_aff(8, 64), nir.CubaLIF(tau_syn=np.full(8, 5e-4), tau_mem=np.full(8, 8e-4), r=np.full(8, 8.0),
                                       v_leak=np.zeros(8), v_threshold=np.ones(8)), _aff(8, 8), _lif(8),
              _aff(10, 8)], "synaptic"),
])
def test_graphs_that_do_not_map_are_refused(nodes, needle):
    with pytest.raises(NIRError) as info:
        graph_to_model(_chain(*nodes()))
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_recurrent_and_branching_graphs_are_refused():
    nodes = {"in": nir.Input(input_type={"input": np.array([64])}), "a": _aff(8, 64), "l": _lif(8),
             "rec": _aff(8, 8), "b": _aff(8, 8), "l2": _lif(8), "c": _aff(10, 8),
             "out": nir.Output(output_type={"output": np.array([10])})}
    chain = [("in", "a"), ("a", "l"), ("l", "b"), ("b", "l2"), ("l2", "c"), ("c", "out")]
    rec = nir.NIRGraph(nodes=dict(nodes), edges=chain + [("l", "rec"), ("rec", "l")], type_check=False)
    with pytest.raises(NIRError, match="feeds 2 nodes|recurrent"):
        graph_to_model(rec)
    back = nir.NIRGraph(nodes={k: v for k, v in nodes.items() if k != "rec"},
                        edges=chain + [("l2", "b")], type_check=False)
    with pytest.raises(NIRError, match="feeds 2 nodes|recurrent"):
        graph_to_model(back)
    selfloop = nir.NIRGraph(nodes={k: v for k, v in nodes.items() if k != "rec"},
                            edges=[("in", "a"), ("a", "l"), ("l", "l"), ("l", "b"), ("b", "l2"), ("l2", "c"),
                                   ("c", "out")], type_check=False)
    with pytest.raises(NIRError, match="feeds 2 nodes|recurrent"):
        graph_to_model(selfloop)


# ---- the command line refuses bad files in one line and writes nothing -----------------------------------

def test_cli_refusals_write_nothing(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.nir"
    corrupt.write_bytes(b"\x89HDF garbage" * 20)
    unsupported = tmp_path / "conv.nir"
    nir.write(unsupported, _chain(nir.Conv2d(input_shape=(8, 8), weight=np.zeros((2, 1, 3, 3), np.float32),
                                              stride=1, padding=0, dilation=1, groups=1,
                                              bias=np.zeros(2, np.float32)), _aff(10, 72)))
    shapes = tmp_path / "shapes.nir"
    nir.write(shapes, _chain(_aff(8, 64), _lif(8), _aff(8, 6), _lif(8), _aff(10, 8)))
    for graph, needle in ((corrupt, "cannot be read"), (unsupported, "(Conv2d) is not supported"),
                          (shapes, "takes 6 inputs")):
        out = tmp_path / f"{graph.stem}.pt"
        code = main(["nir", "import", str(graph), "-o", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert needle in err, err
        assert not out.exists()
