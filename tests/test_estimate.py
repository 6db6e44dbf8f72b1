"""Estimation (``estimate/``, ``spikeforge estimate``), fast tier.

* Every registry block at >= 3 specs, on random vectors and on trained ones (``sim/data/`` and
  the shipped checkpoints' own traffic): the estimate's accept and output cycles ``==`` the RTL's
  in Amaranth's simulator (``rtl.pysim.run_stream``, no stalls), hence its cycle count too.
* The synapse engine's hardware counters (``sops``, ``reads`` on every output beat) ``==`` the
  estimate's event counts.
* The core: the estimate ``==`` the core's own cycle counter in Amaranth's simulator on small
  models, ``==`` ``predict_cycles`` on 64 held-out samples of every shipped model; event counts
  against independent counts; the energy by hand; the Fmax from the synthesis table.
* The command line: CSV, JSON, the table, and one-line errors on bad input.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from estimate import blocks as eb
from estimate.core import estimate_core, synthesized_fmax
from estimate.energy import HOROWITZ_45NM, JOUPPI_7NM, TECHNOLOGIES, Technology, get_technology
from golden import data
from golden.core import compile_model, run_program, spec_for_program
from golden.core.cycles import op_cycles, predict_cycles, useful_ops
from golden.core.program import LinearOp
from golden.alif import ALIFSpec
from golden.layernorm import LayerNormSpec
from golden.sdsa import SDSASpec
from golden.lif import LIFSpec, lif_beat_reference, lif_reference
from golden.mac import EVENT, STEP, Event, MACSpec, Step, mac_run
from golden.mtts import MTTSSpec
from golden.synapse import SynapseSpec, random_codes, synapse_reference
from golden.vectors import VectorSet
from golden.window import WindowSpec
from golden.wta import TopKSpec, WTASpec, topk_select
from rtl.pysim import run_stream
from rtl.streams import pack, unpack
from spikeforge.blocks import block_names, get_block

SIM_DATA = Path(__file__).resolve().parents[1] / "sim" / "data"

# ---- blocks: >= 3 specs each, chosen to cover every timing regime of its docstring ---------------

BLOCK_CASES = {
    "sdsa": [(SDSASpec(), {"sequences": 2}), (SDSASpec(length=12, head_dim=10, lanes=4), {"sequences": 2}),
             (SDSASpec(lanes=1), {"sequences": 1}), (SDSASpec(lanes=16), {"sequences": 2})],
    "alif": [  # G = 1, 3 (the interlock), 16 (the default spec: one lane), 8 with 4 lanes and no noise
        (ALIFSpec(n_neurons=4, lanes=4), {"sequences": 2, "steps": 4}),
        (ALIFSpec(n_neurons=6, lanes=2, membrane_width=10, input_width=8, noise_width=4), {"sequences": 2, "steps": 4}),
        (ALIFSpec(), {"sequences": 1, "steps": 3}),
        (ALIFSpec(n_neurons=32, lanes=4, noise_width=0), {"sequences": 2, "steps": 3}),
    ],
    "lif": [  # G = 1 and G = 2 (the interlock), G = 16, an addressed array with run-time parameters
        (LIFSpec(n_neurons=4, lanes=4), {"sequences": 2, "steps": 4}),
        (LIFSpec(n_neurons=8, lanes=4), {"sequences": 2, "steps": 4}),
        (LIFSpec(), {"sequences": 1, "steps": 3}),
        (LIFSpec(n_neurons=24, lanes=8, leak_mode="multiply", addressed=True, runtime_params=True),
         {"sequences": 2, "steps": 3}),
    ],
    "synapse": [  # the three read latencies L = 2, 3, 15; G = 1, 4, 8
        (SynapseSpec(n_inputs=16, n_outputs=8, lanes=8, mismatch_impl="precomputed"),
         {"sequences": 2, "steps": 4, "rate": 0.4}),
        (SynapseSpec(n_inputs=16, n_outputs=16, lanes=4, mismatch_impl="table"),
         {"sequences": 2, "steps": 3, "rate": 0.2}),
        (SynapseSpec(), {"sequences": 1, "steps": 4, "rate": 0.1}),
    ],
    "mac": [  # one lane and one group (back-to-back events on one word), the default, 8 lanes
        (MACSpec(lanes=1, max_groups=1, weight_depth=16, bias_depth=4), {"layers": 4, "events": 6, "writes": 0.2}),
        (MACSpec(), {"layers": 3, "events": 8, "writes": 0.1}),
        (MACSpec(lanes=8, max_groups=4, weight_depth=64, bias_depth=8, value_width=4),
         {"layers": 4, "events": 5, "writes": 0.1}),
    ],
    "topk": [  # both versions; causal, signed; a network padded from L = 5 to N = 8
        (TopKSpec(), {"sequences": 1}),
        (TopKSpec(length=8, k=3, causal=True, signed=True, score_width=5), {"sequences": 2}),
        (TopKSpec(version="parallel"), {"sequences": 2}),
        (TopKSpec(length=5, k=2, version="parallel"), {"sequences": 3}),
    ],
    "wta": [  # P | L, padded lanes (L = 10, P = 4), multi-bit signed Q/K/V with one lane, P = L
        (WTASpec(), {"sequences": 2}),
        (WTASpec(length=10, lanes=4, causal=True, k=3), {"sequences": 2}),
        (WTASpec(length=8, lanes=1, head_dim=4, value_dim=3, qk_width=3, v_width=4, score_width=8, k=2,
                 scale_mode="fold"), {"sequences": 1}),
        (WTASpec(length=12, lanes=12, k=4), {"sequences": 2}),
    ],
    "mtts": [
        (MTTSSpec(), {"beats": 40}),
        (MTTSSpec(lanes=1, emit="spikes"), {"beats": 25}),
        (MTTSSpec(lanes=8, input_width=5, signed=False, lo=0, hi=31, dead_zone=True, dead_lo=3, dead_hi=6),
         {"beats": 30}),
    ],
    "window": [  # 2-D with two dilations, 1-D signed multi-channel, 2-D non-square multi-bit
        (WindowSpec(height=8, width=8, radius=1, dilations=(1, 2)), {"maps": 2}),
        (WindowSpec(dims=1, height=1, width=20, radius=2, dilations=(1, 3), channels=2, element_width=4,
                    signed=True), {"maps": 3}),
        (WindowSpec(height=6, width=10, radius=2, dilations=(1,), channels=3, element_width=2), {"maps": 2}),
    ],
    "layernorm": [
        (LayerNormSpec(), {"tokens": 3}),
        (LayerNormSpec(dim=5, input_width=8, gamma_width=6, beta_width=6, eps=3), {"tokens": 6}),
        (LayerNormSpec(dim=2, input_width=4, gamma_width=3, beta_width=2), {"tokens": 10}),
    ],
}


def _vector_set(name: str, spec, arrays: dict, seed: int = 0) -> VectorSet:
    return VectorSet(name, spec.to_dict(), seed,
                     {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in arrays.items()})


def _simulate_block(name: str, vectors: VectorSet):
    """RTL run with no stalls (valid = ready = 1) of a vector set through the registry's stream."""
    block = get_block(name)
    spec, beats, expected = block.stream_from_vectors(vectors)
    dut = block.component(spec)
    run = run_stream(dut, beats, len(expected), in_name=block.in_name, out_name=block.out_name)
    layout = getattr(dut, block.out_name).payload.shape()
    assert run.outputs == [pack(layout, beat) for beat in expected]       # the run is the golden one
    return spec, run


def _assert_timing_equal(est: eb.BlockTiming, run) -> None:
    assert est.accept_cycles == run.accept_cycles
    assert est.output_cycles == run.output_cycles
    assert est.cycles == run.output_cycles[-1] - run.accept_cycles[0] + 1


def test_every_registry_block_has_an_estimator_and_three_specs():
    assert set(BLOCK_CASES) == set(block_names())
    assert all(len({repr(spec) for spec, _ in cases}) >= 3 for cases in BLOCK_CASES.values())


@pytest.mark.parametrize("name, spec, options", [(n, s, o) for n, cases in BLOCK_CASES.items() for s, o in cases],
                         ids=[f"{n}-{i}" for n, cases in BLOCK_CASES.items() for i in range(len(cases))])
def test_block_estimate_equals_rtl_cycles_on_random_vectors(name, spec, options):
    vectors = _vector_set(name, spec, get_block(name).make_vectors(spec, 3, **options), seed=3)
    spec, run = _simulate_block(name, vectors)
    _assert_timing_equal(eb.block_timing(name, spec, vectors.arrays), run)


def test_addressed_lif_in_any_group_order_equals_rtl():
    """Back-to-back beats of one group (1 per 3 cycles), a group two beats back, then full rate."""
    spec = LIFSpec(n_neurons=16, lanes=4, addressed=True)
    rng = random.Random(5)
    groups = [0, 0, 1, 0, 2, 3, 3, 1, 2, 0] + [rng.randrange(4) for _ in range(30)]
    beats = [{"current": [rng.randint(-300, 900) for _ in range(4)], "first": int(k < 4), "group": g}
             for k, g in enumerate(groups)]
    vectors = _vector_set("lif", spec, lif_beat_reference(spec, beats))
    spec, run = _simulate_block("lif", vectors)
    est = eb.block_timing("lif", spec, vectors.arrays)
    _assert_timing_equal(est, run)
    assert est.accept_cycles[:4] == [0, 3, 4, 6]                  # the stall rule by hand


def test_addressed_alif_beats_with_writes_equal_rtl():
    """An addressed ALIF beat file: its init loads, WRITEs between updates, any group order."""
    from golden.alif import UPDATE, WRITE, alif_beat_reference

    spec = ALIFSpec(n_neurons=16, lanes=4, membrane_width=12, input_width=10, noise_width=0, addressed=True)
    rng = random.Random(3)
    groups = [0, 0, None, 1, 0, 2, 3, 3, None, 1] + [rng.choice([None, 0, 1, 2, 3, 3]) for _ in range(30)]
    beats = [{"kind": WRITE, "group": rng.randrange(4), "theta": [rng.randint(1, 400) for _ in range(4)],
              "beta": [rng.randint(0, 256) for _ in range(4)]} if g is None else
             {"kind": UPDATE, "group": g, "first": 0, "current": [rng.randint(-300, 500) for _ in range(4)]}
             for g in groups]
    init = torch.tensor([100] * 12 + [0] * 4), torch.tensor([200] * 16)   # group 3 unloaded: not written at start
    beats = beats[:5] + [{"kind": WRITE, "group": 3, "theta": [50] * 4, "beta": [256] * 4}] + beats[5:]
    vectors = _vector_set("alif", spec, alif_beat_reference(spec, beats, *init))
    spec, run = _simulate_block("alif", vectors)
    est = eb.block_timing("alif", spec, vectors.arrays)
    _assert_timing_equal(est, run)
    # 3 loads (0 1 2), then updates 0, 0 (4 after), WRITE, update 1, 0, WRITE 3, update 2, 3: by hand
    assert est.accept_cycles[:10] == [0, 1, 2, 3, 7, 8, 9, 11, 12, 13]


def test_synapse_counters_equal_the_hardware_counters():
    """The engine's own ``sops`` / ``reads`` on every output beat == the estimate's event counts
    (8-bit counters, so they wrap within the run)."""
    from rtl.synapse import synapse_output_layout

    spec = SynapseSpec(n_inputs=24, n_outputs=16, lanes=4, counter_width=8, mismatch_impl="precomputed")
    spikes = (torch.rand(2, 5, 24, generator=torch.Generator().manual_seed(2)) < 0.35).to(torch.int64)
    vectors = _vector_set("synapse", spec, synapse_reference(spec, random_codes(spec, 4), spikes))
    spec, run = _simulate_block("synapse", vectors)
    est = eb.block_timing("synapse", spec, vectors.arrays)
    _assert_timing_equal(est, run)
    layout = synapse_output_layout(spec)
    beats = [unpack(layout, word) for word in run.outputs]
    assert [b["sops"] for b in beats] == est.counters["sops"]
    assert [b["reads"] for b in beats] == est.counters["reads"]
    # the counts themselves, by hand: spikes so far x n_outputs (x G for reads), mod 2^8
    per_step = spikes.sum(-1).reshape(-1).tolist()
    totals = np.cumsum(per_step)
    assert est.counters["sops"][::spec.groups] == [int(x * 16) % 256 for x in totals]
    assert est.counters["reads"][::spec.groups] == [int(x * 4) % 256 for x in totals]
    assert max(int(x * 16) for x in totals) > 255                 # the counter did wrap


def test_constants_and_recurrences_match_the_rtl():
    """The estimator's constants are the components' own; the LIF recurrence is LIFArray.accept_cycles."""
    from rtl import mac as rmac
    from rtl.lif import LIFArray
    from rtl.logmem import read_latency
    from rtl.topk import TopK
    from rtl.window import DilatedWindowBuffer
    from rtl.wta_attention import WTAAttention

    for spec in (LIFSpec(), LIFSpec(leak_mode="multiply", runtime_params=True, addressed=True)):
        assert eb.lif_timing(spec, 1).output_cycles == [LIFArray.latency(spec)]
    assert (eb.MAC_STEP_LATENCY, eb.MAC_STEP_OVERHEAD) == (rmac.STEP_LATENCY, rmac.STEP_OVERHEAD)
    for impl, latency in eb.SYNAPSE_READ_LATENCY.items():
        assert read_latency(SynapseSpec(mismatch_impl=impl)) == latency
    for length in range(1, 65):
        spec = TopKSpec(length=length, k=1, version="parallel")
        assert eb.topk_network_stages(spec) == TopK.network_stages(spec)
        assert eb.topk_timing(spec, 1).output_cycles == [TopK.latency(spec)]
    assert eb.TOPK_STREAM_LATENCY == TopK.LATENCY_STREAM
    for spec in (WTASpec(), WTASpec(length=10, lanes=3, k=5)):
        assert eb.wta_query_interval(spec) == WTAAttention.latency(spec) == WTAAttention.query_interval(spec)
    for spec, _ in BLOCK_CASES["window"]:
        buffer = DilatedWindowBuffer(spec)
        buffer._MustUse__silence = True                           # only its fill_latency is asked for
        assert eb.window_timing(spec, 1).output_cycles[0] == buffer.fill_latency
    rng = random.Random(1)
    for spec in (LIFSpec(n_neurons=20, lanes=4, addressed=True),
                 LIFSpec(n_neurons=20, lanes=4, addressed=True, runtime_params=True, leak_mode="multiply")):
        groups = [rng.randrange(5) for _ in range(60)]
        assert eb.lif_timing(spec, groups=groups).accept_cycles == LIFArray.accept_cycles(spec, groups)


def test_block_formulas_by_hand():
    # synapse, default spec (regenerate L = 15, G = 8): a step of k spikes is 8 k + 24 cycles
    spec = SynapseSpec()
    t = eb.synapse_timing(spec, [0, 3, 1])
    assert [b - a for a, b in zip(t.accept_cycles, t.accept_cycles[1:])] == [24, 8, 8, 8, 24, 8]
    assert t.accept_cycles[5] - t.accept_cycles[1] == 8 * 3 + 24
    assert t.output_cycles[:2] == [17, 18]                        # STEP at 0: beat g at 0 + 15 + 2 + g
    # LIF, G = 1: one beat every 3 cycles; G = 2: gaps 1, 2
    assert eb.lif_timing(LIFSpec(n_neurons=4, lanes=4), 3).accept_cycles == [0, 3, 6]
    assert eb.lif_timing(LIFSpec(n_neurons=8, lanes=4), 5).accept_cycles == [0, 1, 3, 4, 6]
    # WTA head L = 64, k = 4, D = 32, P = 4: 25 cycles a query, last output in cycle 1664
    assert eb.wta_timing(WTASpec(length=64, k=4, head_dim=32, value_dim=32, score_width=6), [64]).output_cycles[-1] \
        == 64 + 64 * 25
    # window 16 x 16, w = 1, d = 1, 2, 4: fill 69 cycles; one map: 256 + 69 cycles
    t = eb.window_timing(WindowSpec(), 1)
    assert t.output_cycles[0] == 69 and t.cycles == 256 + 69
    # MAC: EVENT(3) 3 cycles, STEP(3) 6 cycles, beats at c + 6 + g
    t = eb.mac_timing(MACSpec(), [Event(0, 1, 3), Step(0, 0, 3), Event(0, 1, 2)])
    assert t.accept_cycles == [0, 3, 9] and t.output_cycles == [9, 10, 11] and t.cycles == 12
    # top-k stream L = 16: a row every 16 cycles, its beat 1 cycle after its last score
    assert eb.topk_timing(TopKSpec(), 2).output_cycles == [16, 32]


# ---- blocks on trained vectors ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlp():
    """The shipped trained spiking MLP on the core: model, its program and the golden run of 2 digits."""
    from spikeforge.core import held_out_samples, load_core_model

    cm = load_core_model("spiking-mlp", debug_taps=False)
    x, _, _ = held_out_samples(cm, 2)
    return cm, x, run_program(cm.program, x, current_width=cm.spec.current_width)


def core_mac_commands(program, run, sample: int) -> list:
    """The MAC commands the core issues for one sample, written out from the layer program's
    definition (``golden/core/program.py``): per (t, r) row one EVENT(w_base + i G, x_i, G) per
    nonzero input i in ascending order, then STEP(b_base, shift, G) (a readout: one STEP per row
    after all its time steps). Independent of the cycle formula and of the estimator."""
    program.layout()
    cmds = []
    for index, op in enumerate(program.ops):
        if not isinstance(op, LinearOp):
            continue
        g, wb, bb = program.groups(op), program.weight_base[index], program.bias_base[index]
        if op.src == "pixels":
            src = run.buffers["pixels"][sample, 0]
            rows = {(t, r): src for t in range(op.steps) for r in range(op.rows)}
        else:
            buf = run.buffers[op.src][sample]                     # final contents: the MLP has no residuals
            rows = {(t, r): buf[t * op.rows + r, :op.n_in] for t in range(op.steps) for r in range(op.rows)}
        order = ([(t, r) for r in range(op.rows) for t in range(op.steps)] if op.reduce_time
                 else [(t, r) for t in range(op.steps) for r in range(op.rows)])
        for t, r in order:
            x = rows[(t, r)]
            cmds += [Event(wb + i * g, int(x[i]), g) for i in x.nonzero().flatten().tolist()]
            if not op.reduce_time or t == op.steps - 1:
                cmds.append(Step(bb, op.shift, g))
    return cmds


def test_trained_lif_currents_equal_rtl(mlp):
    """The LIF array on layer 1's currents of the trained MLP (the spikes are the model's own)."""
    cm, _, run = mlp
    op = cm.program.ops[0]
    currents = run.taps[0]["current"][:, :, 0, :op.n_out]        # (B, T, 64)
    spec = op.lif.replace(n_neurons=op.n_out, lanes=8)
    arrays = lif_reference(spec, currents)
    assert torch.equal(arrays["spikes"].to(torch.int64), run.taps[0]["spikes"][:, :, 0, :op.n_out])
    vectors = _vector_set("lif", spec, arrays)
    spec, rtl_run = _simulate_block("lif", vectors)
    _assert_timing_equal(eb.block_timing("lif", spec, vectors.arrays), rtl_run)


def test_trained_mac_traffic_equals_rtl(mlp):
    """The MAC engine on the core's own command stream for a trained-MLP digit (memories loaded first):
    its outputs are the program's currents and logits, and the estimate == the RTL's cycles."""
    from golden.mac import commands_to_array
    from rtl.core.engine import mac_spec

    cm, _, run = mlp
    spec = mac_spec(cm.spec, cm.program)
    weights, biases = cm.program.weight_image(), cm.program.bias_image()
    cmds = core_mac_commands(cm.program, run, 0)
    outputs = mac_run(spec, weights, biases, cmds)
    p = spec.lanes
    g1 = cm.program.groups(cm.program.ops[0])
    want_l1 = run.taps[0]["current"][0].reshape(-1, p)            # layer 1: T rows of G words
    assert torch.equal(outputs[:want_l1.shape[0]], want_l1)
    assert torch.equal(outputs[-2:].reshape(-1)[:10], run.logits[0, 0])
    arrays = {"weights": weights, "biases": biases, "commands": commands_to_array(spec, cmds), "outputs": outputs}
    vectors = _vector_set("mac", spec, arrays)
    spec, rtl_run = _simulate_block("mac", vectors)
    _assert_timing_equal(eb.block_timing("mac", spec, vectors.arrays), rtl_run)
    assert g1 == 8


def test_trained_spike_trains_through_the_synapse_engine_equal_rtl(mlp):
    """The synapse engine fed the trained MLP's layer-1 spikes (its cycles depend on them only)."""
    cm, _, run = mlp
    spikes = run.taps[0]["spikes"][:, :, 0, :64]                  # (B, T, 64)
    spec = SynapseSpec(n_inputs=64, n_outputs=16, lanes=8, mismatch_impl="table")
    vectors = _vector_set("synapse", spec, synapse_reference(spec, random_codes(spec, 1), spikes))
    spec, rtl_run = _simulate_block("synapse", vectors)
    est = eb.block_timing("synapse", spec, vectors.arrays)
    _assert_timing_equal(est, rtl_run)
    assert est.counters["sops"][-1] == int(spikes.sum()) * 16


@pytest.fixture(scope="module")
def wta_trained():
    from golden.vectors import load_vectors
    from sim.test_wta_trained import DATA
    from spikeforge.wta_trained import BLOCK, unpack_trained

    return unpack_trained(load_vectors(DATA, block=BLOCK))


def test_trained_wta_vectors_equal_rtl(wta_trained):
    from rtl.wta_attention import wta_reference

    spec, q, k, v = wta_trained
    q, k, v = q[:3], k[:3], v[:3]
    vectors = _vector_set("wta", spec, wta_reference(spec, q, k, v))
    spec, run = _simulate_block("wta", vectors)
    _assert_timing_equal(eb.block_timing("wta", spec, vectors.arrays), run)


@pytest.mark.parametrize("version", ["stream", "parallel"])
def test_trained_attention_scores_through_the_topk_unit_equal_rtl(wta_trained, version):
    """Scores Q K^T of the trained model's spikes: the unit picks the model's winners."""
    from rtl.topk import topk_reference

    spec, q, k, _ = wta_trained
    scores = (q[:2] @ k[:2].transpose(1, 2))                       # (S, L, L)
    tspec = spec.topk_spec(version)
    assert torch.equal(topk_select(tspec, scores).index, _model_winners(spec, q[:2], k[:2]))
    vectors = _vector_set("topk", tspec, topk_reference(tspec, scores))
    tspec, run = _simulate_block("topk", vectors)
    _assert_timing_equal(eb.block_timing("topk", tspec, vectors.arrays), run)


def _model_winners(spec, q, k):
    from golden.wta import wta_attention

    return wta_attention(spec, q, k, torch.zeros(*k.shape[:2], spec.value_dim, dtype=torch.int64)).index


def test_trained_matterhorn_activations_through_mtts_equal_rtl():
    from rtl.mtts import MTTSEncoder, mtts_output_layout
    from sim.test_mtts import trained_activation_stream

    spec, inputs, expected, _ = trained_activation_stream()
    run = run_stream(MTTSEncoder(spec), inputs, len(expected))
    assert run.outputs == [pack(mtts_output_layout(spec), b) for b in expected]
    _assert_timing_equal(eb.mtts_timing(spec, len(inputs)), run)


def test_trained_lsformer_spikes_through_the_window_buffer_equal_rtl():
    from golden.vectors import load_vectors

    vectors = load_vectors(SIM_DATA / "lsformer_kv", block="window")
    spec, run = _simulate_block("window", vectors)
    _assert_timing_equal(eb.block_timing("window", spec, vectors.arrays), run)


def test_trained_lsformer_head_norm_tokens_through_the_layer_norm_equal_rtl():
    """The first 8 of the trained LSFormer's head-norm tokens (``sim/data/lsformer_ln``; the
    Verilator test runs all 256) in Amaranth's simulator: estimate == RTL to the cycle."""
    from golden.vectors import VectorSet, load_vectors

    full = load_vectors(SIM_DATA / "lsformer_ln", block="layernorm")
    arrays = {k: (v[:8] if k in ("u", "y", "mu", "var", "sigma") else v) for k, v in full.arrays.items()}
    vectors = VectorSet("layernorm", full.spec, full.seed, arrays)
    spec, run = _simulate_block("layernorm", vectors)
    _assert_timing_equal(eb.block_timing("layernorm", spec, vectors.arrays), run)


# ---- the core: cycles ------------------------------------------------------------------------------

def _tiny_mlp():
    from golden.models.spiking_mlp import SpikingMLP

    torch.manual_seed(7)
    model = SpikingMLP(hidden=10, time_steps=3)
    model.eval()
    with torch.no_grad():  # enough drive that every layer spikes
        model.layer1.linear.weight.mul_(3)
        model.layer2.linear.weight.mul_(4)
        model.layer2.linear.bias.add_(0.3)
    return model.to_integer()


def _tiny_wta(cls_name: str):
    from golden.models import wta_spikingformer

    torch.manual_seed(6)                                      # a seed whose every layer gets events
    model = getattr(wta_spikingformer, cls_name)(16, embed_dim=16, heads=2, time_steps=2, k=2, max_len=6,
                                                 mlp_ratio=2)
    model.eval()
    with torch.no_grad():
        for block in model.blocks:
            for layer in (block.attn.proj, block.mlp.fc2):
                layer.linear.weight.mul_(3)
    return model.to_integer()


def _digits(n: int) -> torch.Tensor:
    return torch.round(data.digits_split(0).x_test[:n] * 16).to(torch.int64)


@pytest.mark.parametrize("which", ["mlp", "WDSpikingformer", "WESpikingformer"])
def test_core_estimate_equals_the_cores_cycle_counter_in_amaranth(which):
    """The status word of NeuroCore (no debug taps, as ``spikeforge estimate`` models it) == the estimate."""
    from rtl.core import NeuroCore
    from rtl.core.beats import compare_taps, core_input_beats, expected_taps, split_outputs

    if which == "mlp":
        model, samples, seq_len = _tiny_mlp(), _digits(2), None
    else:
        model, seq_len = _tiny_wta(which), 6
        samples = torch.randint(0, 16, (1, 6), generator=torch.Generator().manual_seed(8))
    prog = compile_model(model, lanes=4, seq_len=seq_len)
    spec = spec_for_program(prog, wta_lanes=2, debug_taps=False)
    run = run_program(prog, samples)
    expected = expected_taps(spec, prog, run)
    n_out = sum(len(v) for v in expected.values()) + samples.shape[0]
    result = run_stream(NeuroCore(spec, prog), core_input_beats(prog, samples), n_out, max_cycles=400_000)
    got = split_outputs(spec, prog, result.outputs)
    assert compare_taps(prog, expected, got) == []
    est = estimate_core(prog, spec, run)
    assert got[(-1, 5)] == est.cycles.tolist()                    # the core's own counter
    assert all(int(run.nnz[i].sum()) > 0 for i in run.nnz)         # every layer had events


@pytest.fixture(scope="module", params=["spiking-mlp", "wta-causal", "wta-mlm"])
def shipped64(request):
    """A shipped model, its first 64 held-out samples and their golden run."""
    from spikeforge.core import held_out_samples, load_core_model

    cm = load_core_model(request.param, debug_taps=False)
    x, _, _ = held_out_samples(cm, 64)
    return cm, x, run_program(cm.program, x, current_width=cm.spec.current_width)


def test_shipped_model_estimate_equals_predict_cycles_on_64_samples(shipped64):
    """The formula is proven == the RTL counter on these models (sim/test_core.py); the estimate's
    layers add up to it on every one of 64 samples, and each layer is its op_cycles."""
    cm, x, run = shipped64
    est = estimate_core(cm.program, cm.spec, run)
    assert est.samples == 64
    assert torch.equal(est.cycles, predict_cycles(cm.program, cm.spec, run))
    for layer, op in zip(est.layers, cm.program.ops):
        nnz = run.nnz[layer.index] if isinstance(op, LinearOp) else torch.zeros(64, 1, 1, dtype=torch.int64)
        assert torch.equal(layer.cycles, op_cycles(cm.program, cm.spec, layer.index, nnz))
    assert len(set(est.cycles.tolist())) > 1                       # data-dependent: the samples differ
    assert est.latency_us == pytest.approx(est.mean_cycles / est.fmax_mhz)


# ---- the core: event counts against independent counts ---------------------------------------------

def test_event_counts_by_hand_on_the_trained_mlp(mlp):
    """SOPs == useful_ops == the count from forward_layers; weight reads == the events' G summed over
    the core's MAC command stream; LIF beats == T R G per spiking layer."""
    cm, x, run = mlp
    est = estimate_core(cm.program, cm.spec, run)
    layers = cm.int_model.forward_layers(x.reshape(-1, 1, 8, 8))
    t = cm.int_model.time_steps
    hand = ((x != 0).sum(1) * 64 * t + layers["spikes1"].sum((0, 2)) * 64 + layers["spikes2"].sum((0, 2)) * 10)
    assert torch.equal(est.count("sops"), useful_ops(cm.program, run))
    assert est.count("sops").tolist() == hand.tolist()
    for b in range(x.shape[0]):
        cmds = core_mac_commands(cm.program, run, b)
        events = sum(c.groups for c in cmds if c.kind == EVENT)
        steps = sum(c.groups for c in cmds if c.kind == STEP)
        assert int(est.count("weight_reads")[b]) == int(est.count("mac_words")[b]) == events
        assert int(est.count("bias_reads")[b]) == steps
        assert int(est.count("acc_reads")[b]) == int(est.count("acc_writes")[b]) == events + steps
    g = cm.program.groups(cm.program.ops[0])
    for layer, op in zip(est.layers, cm.program.ops):
        if op.lif is not None:
            assert layer.counts["lif_beats"].tolist() == [op.steps * op.rows * g] * 2
            assert layer.counts["neuron_updates"].tolist() == [op.steps * op.rows * g * 8] * 2
            assert torch.equal(layer.counts["spikes"], run.taps[layer.index]["spikes"].sum((1, 2, 3)))
    assert "lif_beats" not in est.layers[2].counts                 # the readout has no LIF
    # pixels live in registers: layer 1 reads no activation buffer; layer 2 reads its T source rows
    assert "act_reads" not in est.layers[0].counts and est.layers[1].counts["act_reads"].tolist() == [t, t]


def test_attention_counts_by_hand(shipped64):
    cm, _, run = shipped64
    est = estimate_core(cm.program, cm.spec, run)
    for layer, op in zip(est.layers, cm.program.ops):
        if isinstance(op, LinearOp):
            continue
        w = op.wta.replace(lanes=cm.spec.wta_lanes)
        length, k, p = w.length, w.top_k, w.lanes                  # 32, 4 (causal) / 16 (mlm), 4
        assert length % p == 0
        queries = op.steps * op.heads * length
        c = {name: int(v[0]) for name, v in layer.counts.items()}
        assert c["scores"] == op.steps * op.heads * length * length          # L scores a query
        assert c["topk_inserts"] == c["scores"] * k
        # the relation registers: the first cycle compares P (P - 1) / 2 head pairs and P (P - 1) second
        # slots against heads; each of the k merge steps P (P - 1) third slots against heads and
        # P (P - 1) / 2 pairs of second slots: 18 + 18 k comparisons a query at P = 4
        assert c["topk_merges"] == queries * (18 + 18 * k)
        assert c["v_reads"] == queries * k and c["qkv_reads"] == 3 * queries
        assert c["k_reads"] == queries * (length // p)
    if cm.name == "spiking-mlp":
        assert all(isinstance(op, LinearOp) for op in cm.program.ops)


# ---- energy ----------------------------------------------------------------------------------------

def test_cited_figures_and_the_scaling_rules_by_hand():
    t = HOROWITZ_45NM
    assert (t.add(8), t.add(32), t.mult(8, 8), t.mult(32, 32)) == pytest.approx((0.03, 0.1, 0.2, 3.1))
    assert t.add(20) == pytest.approx(0.03 + 0.07 * 12 / 24)        # linear between the cited widths
    assert t.add(4) == pytest.approx(0.015)
    assert t.mult(4, 8) == pytest.approx(0.1)                      # 32 partial products: half of 8 x 8
    assert t.mult(16, 16) == pytest.approx(0.2 + 2.9 * (256 - 64) / 960)
    assert t.sram(64, 8 * 8192) == pytest.approx(10.0)
    assert t.sram(128, 8 * 32768) == pytest.approx(40.0)           # two 64-bit words' worth
    assert t.sram(64, 8 * (1 << 20)) == pytest.approx(100.0)
    assert t.sram(64, 8 * 2048) == pytest.approx(5.0)              # sqrt below 8 KB: 10 sqrt(1/4)
    assert t.sram(64, 8 * (4 << 20)) == pytest.approx(100 * 4 ** (math.log(5) / math.log(32)))
    assert t.extrapolated(8 * 2048) and not t.extrapolated(8 * 8192)
    s = JOUPPI_7NM
    assert (s.add(8), s.add(32), s.mult(8, 8), s.mult(32, 32)) == pytest.approx((0.007, 0.03, 0.07, 1.48))
    assert (s.sram(64, 8 * 8192), s.sram(64, 8 * 32768), s.sram(64, 8 * (1 << 20))) == pytest.approx((7.5, 8.5, 14))
    assert (t.float_add32, t.float_mult32, s.float_add32, s.float_mult32) == (0.9, 3.7, 0.38, 1.31)
    from golden.energy import E_AC_PJ, E_MAC_PJ
    assert (E_AC_PJ, E_MAC_PJ) == pytest.approx((t.float_add32, t.float_add32 + t.float_mult32))  # golden/energy.py
    assert set(TECHNOLOGIES) == {"45nm", "7nm"}
    with pytest.raises(ValueError, match="unknown technology '3nm'; known: 45nm, 7nm"):
        get_technology("3nm")


#: 1 pJ per adder bit, per partial product and per memory bit: the energy becomes a count of bits
UNIT = Technology(name="unit", source="test", int_add=((8, 8.0), (32, 32.0)), int_mult=((8, 64.0), (32, 1024.0)),
                  sram_64b=((1, 64.0), (1 << 40, 64.0)), float_add32=0.0, float_mult32=0.0, dram="-")


def test_energy_by_hand_on_a_tiny_mlp():
    """With 1 pJ a bit (UNIT), every term of E = sum count x E_event is a product of widths, by hand."""
    model = _tiny_mlp()
    prog = compile_model(model, lanes=4)
    spec = spec_for_program(prog, debug_taps=False)
    x = _digits(1)
    run = run_program(prog, x)
    layers = model.forward_layers(x.reshape(-1, 1, 8, 8))
    est = estimate_core(prog, spec, run, tech=UNIT)
    p, t = 4, 3
    wx, ww, wa, wb, wo, wv = (spec.value_width, spec.weight_width, spec.acc_width, spec.bias_width,
                              spec.current_width, spec.membrane_width)
    frac = prog.lif_template.leak_frac_bits
    n1 = int((x != 0).sum()) * t                                  # layer 1: the pixels, every step
    n2, n3 = int(layers["spikes1"].sum()), int(layers["spikes2"].sum())
    s1, s2 = n2, n3                                                # layer outputs = next layer's inputs
    g = 3                                                          # 10 outputs / 4 lanes
    per_event_word = p * (wx * ww + wa) + p * ww + 2 * p * wa      # MAC lanes, weight read, acc read + write
    per_step = p * wb + p * wo + 2 * p * wa                        # bias read, bias adds, acc read + clear
    per_beat = p * (wv * (frac + 1) + 2 * wv) + 2 * p * wv          # neuron updates, state read + write
    buf = 12 * 1                                                   # a spike row: 12 channels (3 words) x 1 bit
    spiking = lambda n, spikes, src_reads: (n * g * per_event_word + t * g * per_step + t * g * per_beat  # noqa
                                            + spikes * wv + src_reads * buf + t * g * p * 1)
    want = (spiking(n1, s1, 0) + spiking(n2, s2, t)
            + n3 * g * per_event_word + 1 * g * per_step + t * buf)
    assert prog.ops[0].lif.reset_mode == "subtract"
    assert float(est.energy_pj[0]) == pytest.approx(want)
    assert est.energy_pj[0] > 0 and est.extrapolated_share == 0.0


def test_energy_scales_with_the_technology_and_the_report_says_which(shipped64):
    cm, _, run = shipped64
    e45 = estimate_core(cm.program, cm.spec, run, tech="45nm")
    e7 = estimate_core(cm.program, cm.spec, run, tech="7nm")
    assert float(e7.energy_pj.mean()) < float(e45.energy_pj.mean())
    assert e45.energy_by_tech == pytest.approx(e7.energy_by_tech)
    assert e45.energy_by_tech["7nm"] == pytest.approx(float(e7.energy_pj.mean()))
    assert 0 < e45.extrapolated_share < 1                          # the small memories are flagged
    text = e45.table()
    assert "Horowitz" in text and "small memories" in text and "pJ per SOP" in text


# ---- Fmax from the synthesis table ---------------------------------------------------------------------

def _synth_csv(path, **spec):
    row = {"block": "core", "config": "x", "target": "ecp5", "device": "LFE5U-85F (test)", "status": "ok",
           "fmax_mhz": "81.5", "spec": json.dumps(spec)}
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
        w.writerow({**row, "target": "xilinx7", "fmax_mhz": ""})
    return path


def test_fmax_comes_from_the_synthesis_table_when_it_has_the_configuration(tmp_path):
    from golden.core import CoreSpec
    from spikeforge.estimate_model import estimate_model

    spec = CoreSpec(lanes=8, wta_lanes=4, debug_taps=False)
    path = _synth_csv(tmp_path / "s.csv", model="spiking-mlp", lanes=8, wta_lanes=4, debug_taps=False)
    assert synthesized_fmax("spiking-mlp", spec, csv_path=path) == (81.5, "LFE5U-85F (test) after place and "
                                                                           "route, s.csv")
    assert synthesized_fmax("spiking-mlp", spec.replace(lanes=4), csv_path=path) is None
    assert synthesized_fmax("wta-causal", spec, csv_path=path) is None
    assert synthesized_fmax("spiking-mlp", spec, "f" * 64, csv_path=_synth_csv(
        tmp_path / "t.csv", model="spiking-mlp", lanes=8, wta_lanes=4, checkpoint_sha256="0" * 64)) is None
    assert synthesized_fmax("spiking-mlp", spec, csv_path=tmp_path / "missing.csv") is None
    est = estimate_model("spiking-mlp", samples=2, synthesis_csv=path)
    assert est.fmax_mhz == 81.5 and "place and route" in est.fmax_source
    est = estimate_model("spiking-mlp", samples=2, synthesis_csv=tmp_path / "missing.csv")
    assert est.fmax_mhz == 100.0 and est.fmax_source.startswith("assumed")
    est = estimate_model("spiking-mlp", samples=2, fmax_mhz=50, synthesis_csv=path)
    assert (est.fmax_mhz, est.fmax_source) == (50.0, "given by --fmax")


# ---- command line -------------------------------------------------------------------------------------

def test_cli_writes_csv_and_json_and_prints_the_table(tmp_path, capsys):
    from spikeforge.cli import main

    out = tmp_path / "mlp.csv"
    assert main(["estimate", "spiking-mlp", "--samples", "3", "--fmax", "50", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[estimate: spiking-mlp] 3 held-out samples" in text and "Fmax 50 MHz (given by --fmax)" in text
    rows = list(csv.DictReader(out.open()))
    assert [r["layer"] for r in rows] == ["layer1", "layer2", "readout", "total"]
    total = rows[-1]
    assert float(total["cycles"]) == pytest.approx(sum(float(r["cycles"]) for r in rows[:-1]))
    assert float(total["latency_us"]) == pytest.approx(float(total["cycles"]) / 50)
    assert float(total["energy_pj"]) == pytest.approx(sum(float(r["energy_pj"]) for r in rows[:-1]), rel=1e-6)
    out_json = tmp_path / "mlp.json"
    assert main(["estimate", "spiking-mlp", "--checkpoint", "spiking-mlp", "--samples", "3", "--tech", "7nm",
                 "--fmax", "50", "-o", str(out_json)]) == 0
    doc = json.loads(out_json.read_text())
    assert doc["technology"]["name"] == "7nm" and "Jouppi" in doc["technology"]["source"]
    assert doc["mean_cycles"] == pytest.approx(float(total["cycles"]))
    assert [layer["name"] for layer in doc["layers"]] == ["layer1", "layer2", "readout"]
    assert doc["layers"][0]["events"]["sops"]["pj_each"] == 0.0
    assert doc["energy_pj_by_technology"]["45nm"] == pytest.approx(float(total["energy_pj"]), rel=1e-6)


@pytest.mark.parametrize("argv, message", [
    (["estimate", "no-such-model"], "unknown model 'no-such-model': shipped models are spiking-mlp, wta-causal"),
    (["estimate", "spiking-mlp", "--samples", "0"], "--samples must be an integer >= 1, got 0"),
    (["estimate", "spiking-mlp", "--fmax", "0"], "--fmax = 0.0 is out of range; give the clock in MHz, > 0"),
    (["estimate", "spiking-mlp", "--fmax", "-5"], "--fmax = -5.0 is out of range"),
    (["estimate", "spiking-mlp", "--fmax", "nan"], "--fmax = nan is out of range"),
    (["estimate", "spiking-mlp", "--tech", "3nm"], "unknown technology '3nm'; known: 45nm, 7nm"),
    (["estimate", "spiking-mlp", "-o", "x.txt"], "-o x.txt: give a .csv or .json file"),
    (["estimate", "spiking-mlp", "--checkpoint", "wta-mlm"], "holds a wta-mlm model, not spiking-mlp"),
    (["estimate", "spiking-mlp", "--checkpoint", "missing.pt"], "checkpoint missing.pt does not exist"),
    (["estimate", "spiking-mlp", "--lanes", "0"], "CoreSpec.lanes = 0 is out of range"),
    (["estimate", "spiking-mlp", "--samples", "100000"], "only 450 held-out digits"),
])
def test_cli_bad_input_is_one_line(argv, message, capsys):
    from spikeforge.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spikeforge: error:") and message in err[0], err
