"""Matterhorn on the core, golden side: the compiled program equals the model, layer for layer.

The compiler maps ``IntMatterhorn`` (MTTS stem, adaptive-threshold LIF units with the frozen
variation noise, spike-driven attention, pooled head) onto the core's operations; the golden
interpreter runs the program and every tensor it makes is compared ``==`` with the model's own
``forward_layers`` (an independent implementation: einsum stem, ``spike_pool``, the folded head).
The new program features are also checked against hand-made cases.
"""

from __future__ import annotations

import pytest
import torch

from golden import data
from golden.core import check_against_model, compile_model, run_program, spec_for_program
from golden.core.program import CoreProgram, Buffer, LinearOp, SDSAOp
from golden.models.matterhorn import Matterhorn
from golden.spec import SpecError


def tiny_matterhorn(seed: int = 0, **kw):
    torch.manual_seed(seed)
    config = dict(dim=16, heads=2, blocks=1, mlp_ratio=2, time_steps=4)
    config.update(kw)
    model = Matterhorn(**config)
    model.eval()
    with torch.no_grad():   # enough drive that every unit spikes
        for block in model.blocks:
            for unit in (block.q, block.k, block.v, block.o, block.mlp1, block.mlp2):
                unit.linear.weight.mul_(3)
    return model.to_integer()


def digits(n: int) -> torch.Tensor:
    split = data.digits_split(0)
    return torch.round(split.x_test[:n] * 16).to(torch.int64)


@pytest.mark.parametrize("blocks,lanes", [(1, 8), (2, 4)])
def test_matterhorn_program_equals_forward_layers(blocks, lanes):
    model = tiny_matterhorn(blocks=blocks)
    prog = compile_model(model, lanes=lanes)
    px = digits(24)
    run = run_program(prog, px)
    layers = model.forward_layers(px.reshape(-1, 1, 8, 8))
    checked = check_against_model(prog, run, layers)
    for i in range(blocks):
        for name in ("q", "k", "v", "attention", "att", "x1", "out"):
            assert f"block{i}_{name}" in checked
            if name != "attention":     # the test would be empty on silent layers
                assert int(layers[f"block{i}_{name}"].sum()) > 0, name
    assert {"mtts_spikes", "logits", "codes[t=0]"} <= set(checked)
    assert torch.equal(run.logits[:, 0], layers["logits"])
    assert [op.kind for op in prog.ops[:3]] == ["linear", "linear", "linear"]
    assert sum(isinstance(op, SDSAOp) for op in prog.ops) == blocks


def test_matterhorn_spec_holds_the_alif_regions_and_the_noise():
    model = tiny_matterhorn()
    prog = compile_model(model, lanes=8)
    spec = spec_for_program(prog)
    t, length = model.time_steps, 16
    alif_ops = prog.alif_ops()
    # q, k, v, att, o, mlp1, mlp2: each a region of R x G words
    assert [op.name for op in alif_ops] == [f"block0.{n}" for n in ("q", "k", "v", "att", "o", "mlp1", "mlp2")]
    words = sum(length * prog.groups(op) for op in alif_ops)
    assert spec.alif_neurons == words * 8
    assert spec.noise_depth == sum(t * length * prog.groups(op) for op in alif_ops)
    theta, beta = prog.alif_param_image()
    q = alif_ops[0]
    g = prog.groups(q)
    # one parameter word per layer and output group, shared by the layer's rows: G words a layer
    assert theta.shape[0] == prog.alif_param_words == sum(prog.groups(op) for op in alif_ops)
    for op in alif_ops:
        base = prog.alif_param_base[prog.ops.index(op)]
        gg = prog.groups(op)
        assert torch.equal(theta[base:base + gg].reshape(-1)[:op.n_out], op.alif.theta)
        assert torch.equal(beta[base:base + gg].reshape(-1)[:op.n_out], op.alif.beta)
    noise = prog.noise_image()
    base = prog.noise_base[prog.ops.index(q)]
    # noise word of (t = 1, r = 2, g = 0) is the pattern the model draws for that step and token
    want = q.alif.noise((t, 1, length, q.n_out))[1, 0, 2, :8]
    assert torch.equal(noise[base + (1 * length + 2) * g], want)


def _readout_program(weight, banks, reduce_rows, rows=3, steps=2):
    buf = Buffer("s", rows * steps, 2, 1)
    op = LinearOp("head", "s", None, rows, steps, weight, torch.tensor([5, -5]), 0, None, reduce_time=True,
                  reduce_rows=reduce_rows, row_banks=banks, out_tensor="logits")
    prog = CoreProgram(model="hand", input_kind="pixels", input_buffer=Buffer("pixels", 1, 2, 5),
                       buffers={"s": buf}, ops=[op], lanes=2, time_steps=steps, out_rows=1 if reduce_rows else rows,
                       out_features=2, logit_scale=1, lif_template=None)
    prog.layout()
    return prog, op


def test_banked_readout_by_hand():
    # 2 banks of 2 weight rows; rows 0, 2 -> bank 0, row 1 -> bank 1
    weight = torch.tensor([[1, 2], [3, 4], [10, 20], [30, 40]])
    prog, op = _readout_program(weight, (0, 1, 0), True)
    # spikes s[t, r, i] (t = 0, 1; r = 0 .. 2; i = 0, 1)
    s = torch.tensor([[[1, 0], [0, 1], [1, 1]],
                      [[0, 1], [1, 0], [0, 0]]])
    from golden.core.execute import _run_linear
    bufs = {"s": s.reshape(1, 6, 2)}
    _, taps, result = _run_linear(prog, op, bufs, 1, {}, 24)
    # by hand: bank 0 rows meet [1 2; 3 4], bank 1 rows meet [10 20; 30 40]
    # t0: r0 [1 2]; r1 [30 40]; r2 [1 2] + [3 4] = [4 6];  t1: r0 [3 4]; r1 [10 20]
    want = torch.tensor([[[1 + 30 + 4 + 3 + 10 + 5, 2 + 40 + 6 + 4 + 20 - 5]]])
    assert torch.equal(result, want)
    # without reduce_rows: one logit row per token row, summed over time only
    prog2, op2 = _readout_program(weight, (0, 1, 0), False)
    _, _, per_row = _run_linear(prog2, op2, {"s": s.reshape(1, 6, 2)}, 1, {}, 24)
    assert torch.equal(per_row, torch.tensor([[[1 + 3 + 5, 2 + 4 - 5], [30 + 10 + 5, 40 + 20 - 5], [4 + 5, 6 - 5]]]))
    # the accumulator bound sums the rows' own banks: |W| row sums 3+7 (bank 0), 30+70 (bank 1)
    assert prog.acc_bound(op, 1).tolist() == [(1 + 3) * 2 * 2 + (10 + 30) * 2, (2 + 4) * 2 * 2 + (20 + 40) * 2]


def test_row_masks_read_each_tokens_own_patch():
    model = tiny_matterhorn()
    prog = compile_model(model)
    stem = prog.ops[0]
    assert stem.row_masks.shape == (16, 64) and int(stem.row_masks.sum()) == 64
    # token 5 = grid (1, 1): pixels (2, 2), (2, 3), (3, 2), (3, 3) of the 8x8 image
    assert stem.row_masks[5].nonzero().flatten().tolist() == [18, 19, 26, 27]
    # pixel 19 = (2, 3) is place 1 of token 5's patch: its weight row is that of (token 5, place 1)
    assert torch.equal(stem.weight[19], model.stem[5, 1])


def test_matterhorn_refusals_name_the_layer():
    model = tiny_matterhorn()
    model.blocks[0].mlp2[1].spec = model.blocks[0].mlp2[1].spec.replace(adapt_shift=3)
    with pytest.raises(SpecError, match="layer block0.mlp2: ALIF adapt_shift = 3 differs from layer block0.q"):
        compile_model(model)
    model = tiny_matterhorn()
    model.stem_frac = -4
    with pytest.raises(SpecError, match="layer stem: its codes need a left shift"):
        compile_model(model)
    with pytest.raises(SpecError, match="row_banks must give each of the 3 rows"):
        _readout_program(torch.zeros(4, 2, dtype=torch.int64), (0, 1), True)
    with pytest.raises(SpecError, match="reduce_rows needs reduce_time"):
        LinearOp("x", "s", "d", 1, 1, torch.zeros(2, 2), torch.zeros(2), 0, None, reduce_rows=True)


# ---- Amaranth simulation of the core ------------------------------------------------------------

@pytest.mark.parametrize("sdsa_lanes,log_weights", [(4, False), (1, False), (4, True)])
def test_matterhorn_core_bit_exact_and_cycle_exact_in_amaranth(sdsa_lanes, log_weights):
    """dh = 4: with 4 attention lanes a query takes G_s = 1 cycle (the engine's 3-cycle query loop
    sets the pace), with 1 lane G_s = 4 (the unit does). With log-quantized weights and mismatch the
    MAC's memory holds the effective weights w_eff (the "precomputed" implementation) and every
    unit's shift is F = 4 bits larger."""
    from golden.core.cycles import predict_cycles
    from tests.test_core import _simulate

    log = dict(weight_levels=5, weight_gain_sigma=0.05, weight_offset_sigma=4) if log_weights else {}
    model = tiny_matterhorn(dim=8, time_steps=2, **log)
    if log_weights:
        assert model.blocks[0].q[0].input_frac == 4
    samples = digits(2)
    prog, spec, run, expected, got, problems = _simulate(model, samples, lanes=4, seed=3, sdsa_lanes=sdsa_lanes)
    assert problems == []
    assert got[(-1, 5)] == predict_cycles(prog, spec, run).tolist()
    kinds = {kind for _, kind in expected}
    assert kinds == {0, 1, 3, 4, 6}           # codes / currents, spikes (+ residual sums), attention, logits, activity
    # the stem's codes, the MTTS spikes, every ALIF layer and the pooled logits all left the core
    assert len(expected[(0, 0)]) == 2 * 2 * 16 * 2     # B x T x L x G words of codes
    assert int(run.nnz[len(prog.ops) - 1].sum()) > 0   # the head saw spikes


def test_matterhorn_estimate_counts_by_hand():
    from estimate.core import estimate_core
    from golden.core.cycles import predict_cycles

    model = tiny_matterhorn()
    prog = compile_model(model, lanes=8)
    spec = spec_for_program(prog)
    px = digits(4)
    run = run_program(prog, px)
    est = estimate_core(prog, spec, run)
    assert torch.equal(est.cycles, predict_cycles(prog, spec, run))
    t, length, dim, heads = model.time_steps, 16, 16, 2
    by_name = {layer.name: layer for layer in est.layers}
    q = by_name["block0.q"]
    g = -(-dim // 8)
    assert q.unit == "MAC + ALIF"
    for kind in ("lif_beats", "alif_state_reads", "alif_state_writes", "alif_param_reads", "noise_reads"):
        assert q.counts[kind].tolist() == [t * length * g] * 4
    assert torch.equal(q.counts["spikes"], model.forward_layers(px.reshape(-1, 1, 8, 8))["block0_q"].sum((0, 2, 3)))
    att = by_name["block0.attention"]
    dh = dim // heads
    assert att.unit == "spike-driven attention"
    assert att.counts["kv_updates"].tolist() == [t * heads * length * dh * dh] * 4
    assert att.counts["qkv_reads"].tolist() == [3 * t * heads * length] * 4
    stem = by_name["stem"]
    assert stem.unit == "MAC + MTTS" and stem.counts["mtts_encodes"].tolist() == [t * length * g * 8] * 4
    # the stem's events: each token reads only its own patch's nonzero pixels
    patches = px.reshape(4, 4, 2, 4, 2).permute(0, 1, 3, 2, 4).reshape(4, 16, 4)
    assert stem.counts["sops"].tolist() == ((patches != 0).sum((1, 2)) * dim * t).tolist()
    assert all(float(layer.energy_pj().min()) > 0 for layer in est.layers)
