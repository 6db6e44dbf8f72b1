"""WTA golden model: spec validation, hand-computed answers, an independent plain-Python top-k
and attention, the scaling rule, causal early rows, and the float mode's gradient."""

from __future__ import annotations

import random

import pytest
import torch

from golden.spec import SpecError
from golden.wta import (TopKSpec, WTASpec, k_from_ratio, topk_select, wta_attention, wta_attention_float,
                        wta_mask)


# ---- spec validation --------------------------------------------------------------------------

@pytest.mark.parametrize("cls, kwargs, message", [
    (TopKSpec, {"length": 8, "k": 9}, r"k = 9 is out of range; allowed: 1 .. length = 8"),
    (TopKSpec, {"k": 0}, r"k = 0 is out of range"),
    (TopKSpec, {"k_ratio": 1.5}, r"k_ratio = 1.5 is out of range"),
    (TopKSpec, {"k_ratio": -0.2}, r"k_ratio = -0.2 is out of range"),
    (TopKSpec, {"score_width": 4, "min_score": 16}, r"min_score = 16 is out of range"),
    (TopKSpec, {"version": "heap"}, r"choose one of stream, parallel"),
    (TopKSpec, {"length": 65, "version": "parallel"}, r"too long for version 'parallel'"),
    (WTASpec, {"head_dim": 32, "score_width": 5}, r"score_width = 5 cannot hold every score"),
    # 8 * (-8) * (-8) = 512 needs 11 signed bits
    (WTASpec, {"qk_width": 4, "head_dim": 8, "score_width": 9}, r"up to 512 .*allowed: 11 \.\. 32"),
    (WTASpec, {"k": 3, "scale_frac": 1}, r"needs 2\^F >= k"),
    (WTASpec, {"lanes": 17, "length": 16}, r"lanes = 17 is out of range"),
    (WTASpec, {"scale_mode": "divide"}, r"choose one of reciprocal, fold"),
])
def test_spec_errors_name_the_field(cls, kwargs, message):
    with pytest.raises(SpecError, match=message):
        cls(**kwargs)


def test_k_from_ratio_is_never_zero():
    assert k_from_ratio(10, 0.05) == 1          # floor(0.5) = 0 -> 1
    assert k_from_ratio(10, 0.25) == 2          # floor(2.5)
    assert k_from_ratio(64, 1 / 16) == 4
    assert TopKSpec(length=10, k_ratio=0.25).top_k == 2
    assert TopKSpec(length=10, k=7, k_ratio=1.0).top_k == 10
    assert WTASpec(length=64, head_dim=32, score_width=6, k_ratio=0.0625).top_k == 4


def test_spec_round_trip():
    spec = WTASpec(length=12, causal=True, k=3, min_score=1)
    assert WTASpec.from_dict(spec.to_dict()) == spec
    t = spec.topk_spec("parallel")
    assert (t.length, t.top_k, t.causal, t.min_score, t.version) == (12, 3, True, 1, "parallel")


# ---- top-k: hand-computed answers -------------------------------------------------------------

def test_topk_ties_go_to_the_lower_index():
    spec = TopKSpec(length=5, k=2, score_width=4)
    # scores 3 5 5 1 5: the three 5s tie; the lower indices 1 and 2 win
    r = topk_select(spec, torch.tensor([[3, 5, 5, 1, 5]]))
    assert r.index.tolist() == [[1, 2]] and r.score.tolist() == [[5, 5]] and r.valid.tolist() == [[1, 1]]
    r = topk_select(spec.replace(k=4), torch.tensor([[3, 5, 5, 1, 5]]))
    assert r.index.tolist() == [[1, 2, 4, 0]]   # then 3 at index 0
    r = topk_select(spec.replace(k=5), torch.tensor([[2, 2, 2, 2, 2]]))
    assert r.index.tolist() == [[0, 1, 2, 3, 4]]


def test_causal_early_rows_get_fewer_winners():
    spec = TopKSpec(length=4, k=2, score_width=3, causal=True)
    scores = torch.tensor([[1, 7, 7, 7], [1, 2, 7, 7], [3, 3, 3, 7], [0, 1, 2, 3]])
    r = topk_select(spec, scores)
    # row 0: only key 0 is eligible -> one winner, padded with (0, 0, invalid)
    assert r.index.tolist() == [[0, 0], [1, 0], [0, 1], [3, 2]]
    assert r.valid.tolist() == [[1, 0], [1, 1], [1, 1], [1, 1]]
    assert r.score.tolist() == [[1, 0], [2, 1], [3, 3], [3, 2]]


def test_min_score_excludes_low_keys():
    spec = TopKSpec(length=4, k=3, score_width=3, min_score=2)
    r = topk_select(spec, torch.tensor([[0, 2, 1, 0], [1, 1, 1, 1]]))
    assert r.index.tolist() == [[1, 0, 0], [0, 0, 0]]
    assert r.valid.tolist() == [[1, 0, 0], [0, 0, 0]]


def test_signed_scores():
    spec = TopKSpec(length=4, k=2, score_width=4, signed=True, min_score=-8)
    r = topk_select(spec, torch.tensor([[-8, -1, -3, -1]]))
    assert r.index.tolist() == [[1, 3]] and r.score.tolist() == [[-1, -1]]


def test_topk_bad_input():
    spec = TopKSpec(length=4, k=2, score_width=3)
    with pytest.raises(ValueError, match="outside the 3-bit unsigned range"):
        topk_select(spec, torch.tensor([[0, 8, 1, 2]]))
    with pytest.raises(ValueError, match=r"last dimension = TopKSpec.length"):
        topk_select(spec, torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="integer tensor"):
        topk_select(spec, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="causal top-k needs square"):
        topk_select(spec.replace(causal=True), torch.zeros(3, 4, dtype=torch.int64))


# ---- an independent implementation: Python's sorted() on (-score, index) ------------------------

def plain_topk(scores, k, causal, min_score):
    out = []
    for i, row in enumerate(scores):
        cands = [(-s, j) for j, s in enumerate(row) if s >= min_score and (not causal or j <= i)]
        win = sorted(cands)[:k]
        idx = [j for _, j in win] + [0] * (k - len(win))
        sc = [-s for s, _ in win] + [0] * (k - len(win))
        out.append((idx, sc, [1] * len(win) + [0] * (k - len(win))))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_topk_matches_sorted(seed):
    rng = random.Random(seed)
    length = rng.randint(1, 20)
    width = rng.randint(1, 5)
    signed = rng.random() < 0.3
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    spec = TopKSpec(length=length, k=rng.randint(1, length), score_width=width, signed=signed,
                    causal=rng.random() < 0.5, min_score=rng.choice([lo, rng.randint(lo, hi)]))
    scores = [[rng.randint(lo, hi) for _ in range(length)] for _ in range(length)]
    r = topk_select(spec, torch.tensor(scores))
    for i, (idx, sc, va) in enumerate(plain_topk(scores, spec.top_k, spec.causal, spec.min_score)):
        assert r.index[i].tolist() == idx and r.score[i].tolist() == sc and r.valid[i].tolist() == va


# ---- attention ----------------------------------------------------------------------------------

def test_attention_by_hand():
    spec = WTASpec(length=3, head_dim=4, value_dim=2, k=2, score_width=3, scale_frac=4, lanes=1, v_width=4)
    q = torch.tensor([[1, 1, 0, 1]])
    k = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]])
    v = torch.tensor([[3, -2], [5, 7], [-1, 4]])
    r = wta_attention(spec, q, k, v)
    # scores: popcount(1101 & 1001) = 2, (1101 & 0110) = 1, (1101 & 1100) = 2 -> winners 0, 2 (tie: lower first)
    assert r.scores.tolist() == [[2, 1, 2]]
    assert r.index.tolist() == [[0, 2]]
    assert r.acc.tolist() == [[2, 2]]                    # (3 - 1, -2 + 4)
    assert spec.reciprocal == 8                          # 2^4 / 2
    assert r.out.tolist() == [[16, 16]]                  # 2 * 8: acc / 2 = 1.0 with 4 fraction bits


def test_reciprocal_for_k_not_a_power_of_two():
    spec = WTASpec(length=8, k=3, scale_frac=8, head_dim=2, score_width=2)
    assert spec.reciprocal == 85                         # (256 + 1) // 3
    spec = WTASpec(length=8, k=6, scale_frac=8, head_dim=2, score_width=2)
    assert spec.reciprocal == 43                         # (256 + 3) // 6 = 43 (42.67 rounded up)
    # power of two: exact shift, acc * 2^(F - 2) = acc / 4 in F fraction bits
    spec = WTASpec(length=8, k=4, scale_frac=8, head_dim=2, value_dim=2, score_width=2, v_width=5)
    assert spec.reciprocal == 64
    v = torch.randint(-16, 16, (8, 2))
    r = wta_attention(spec, torch.ones(8, 2, dtype=torch.int64), torch.ones(8, 2, dtype=torch.int64), v)
    assert torch.equal(r.out, r.acc << 6)


def test_fold_mode_returns_the_sum():
    spec = WTASpec(length=4, k=2, scale_mode="fold", head_dim=2, score_width=2, causal=True)
    q = torch.ones(4, 2, dtype=torch.int64)
    v = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 1]]).repeat(1, 4)[:, :2]
    spec = spec.replace(value_dim=2)
    r = wta_attention(spec, q, q, v)
    # all scores 2; causal row 0 -> key 0 only; row i>=1 -> keys 0, 1
    assert r.acc.tolist() == [[1, 0], [2, 1], [2, 1], [2, 1]]
    assert torch.equal(r.out, r.acc)


def plain_attention(spec, q, k, v):
    q, k, v = q.tolist(), k.tolist(), v.tolist()
    scores = [[sum(a * b for a, b in zip(qi, kj)) for kj in k] for qi in q]
    out = []
    for idx, _, va in plain_topk(scores, spec.top_k, spec.causal, spec.min_score):
        acc = [sum(v[j][d] for j, ok in zip(idx, va) if ok) for d in range(spec.value_dim)]
        out.append(acc if spec.scale_mode == "fold" else [a * spec.reciprocal for a in acc])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_attention_matches_plain_python(seed):
    rng = random.Random(seed)
    length, d = rng.randint(2, 12), rng.randint(1, 9)
    qk_width, v_width = rng.choice([1, 1, 3]), rng.choice([1, 4])
    spec = WTASpec(length=length, head_dim=d, value_dim=rng.randint(1, 5), qk_width=qk_width, v_width=v_width,
                   score_width=WTASpec(head_dim=d, qk_width=qk_width, score_width=32).score_bits_needed,
                   k=rng.randint(1, length), causal=rng.random() < 0.5, min_score=rng.choice([0, 1]),
                   scale_mode=rng.choice(["reciprocal", "fold"]), lanes=1)
    gen = torch.Generator().manual_seed(seed)
    if qk_width == 1:
        q, k = torch.randint(0, 2, (length, d), generator=gen), torch.randint(0, 2, (length, d), generator=gen)
    else:
        q, k = torch.randint(-4, 4, (length, d), generator=gen), torch.randint(-4, 4, (length, d), generator=gen)
    lo, hi = (0, 2) if v_width == 1 else (-8, 8)
    v = torch.randint(lo, hi, (length, spec.value_dim), generator=gen)
    assert wta_attention(spec, q, k, v).out.tolist() == plain_attention(spec, q, k, v)


def test_attention_bad_shapes_and_values():
    spec = WTASpec(length=4, head_dim=3, value_dim=2, k=2, score_width=2, lanes=1)
    q = torch.zeros(4, 3, dtype=torch.int64)
    v = torch.zeros(4, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"keys K must have shape \(\.\.\., 4, 3\)"):
        wta_attention(spec, q, torch.zeros(5, 3, dtype=torch.int64), v)
    with pytest.raises(ValueError, match=r"values V must have shape"):
        wta_attention(spec, q, q, torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="outside the 1-bit unsigned range"):
        wta_attention(spec, q + 2, q, v)
    with pytest.raises(ValueError, match="H = 2"):
        wta_attention(spec.replace(heads=2), q, q, v)


# ---- float mode ---------------------------------------------------------------------------------

def test_float_forward_equals_the_integer_mode():
    spec = WTASpec(length=10, head_dim=6, value_dim=3, k=3, score_width=3, causal=True, scale_mode="fold", lanes=1)
    gen = torch.Generator().manual_seed(3)
    q, k = torch.randint(0, 2, (2, 10, 6), generator=gen), torch.randint(0, 2, (2, 10, 6), generator=gen)
    v = torch.randint(0, 2, (2, 10, 3), generator=gen)
    ref = wta_attention(spec, q, k, v).acc.double() / 3
    got = wta_attention_float(q.double(), k.double(), v.double(), 3, causal=True)
    assert torch.allclose(got, ref, atol=1e-12)
    mask = wta_mask((q @ k.transpose(-1, -2)).double(), 3, causal=True)
    assert mask.sum(-1).tolist() == [[1, 2, 3, 3, 3, 3, 3, 3, 3, 3]] * 2


def test_float_gradient_trains_q_and_k():
    """Learn a query projection so that each query's winners are the keys holding a target value."""
    torch.manual_seed(0)
    x = torch.randn(64, 8, 6)
    v = torch.zeros(64, 8, 1)
    v[:, :2] = 1.0                                        # keys 0 and 1 carry the value 1
    wq = torch.nn.Linear(6, 6)
    key_embed = torch.nn.Parameter(torch.randn(8, 6))
    opt = torch.optim.Adam(list(wq.parameters()) + [key_embed], lr=0.05)

    def loss_fn():
        out = wta_attention_float(wq(x), key_embed.expand(64, 8, 6), v, 2)
        return ((out - 1.0) ** 2).mean()

    initial = loss_fn().item()
    for _ in range(100):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert key_embed.grad is not None and wq.weight.grad.abs().sum() > 0
    assert loss_fn().item() < 0.2 * initial
