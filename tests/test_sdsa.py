"""Spike-driven self-attention unit (``rtl.sdsa.SDSAttention``): spec validation, a hand-computed
head, an independent plain-Python formulation ((q k^T) v, loop by loop) against the golden
k^T v-first one, the golden against Matterhorn's own integer block, the beat-level stream model,
the RTL in Amaranth's simulator on random vectors under random valid/ready gaps (several specs:
P | dh, P not dividing dh, P = 1, P = dh, L = 1, cross-attention, irregular streams), latency and
interval to the cycle (and the estimate), back-pressure that loses nothing, bad input."""

from __future__ import annotations

import random
import re

import pytest
import torch

from golden.sdsa import (KIND_LOAD, KIND_QUERY, SEQUENCE_KINDS, SDSASpec, sdsa_attention, sdsa_normalize_beats,
                         sdsa_random_qkv, sdsa_reference, sdsa_run_beats)
from golden.spec import SpecError
from golden.vectors import VectorSet, load_vectors
from rtl.pysim import run_stream
from rtl.sdsa import (SDSAttention, sdsa_beat_stream, sdsa_expected_beats, sdsa_input_beats, sdsa_input_layout,
                      sdsa_output_layout, sdsa_stream_from_vectors)
from rtl.streams import pack, unpack
from sim.test_sdsa import COSIM_SPECS, sdsa_stream_from_directory, write_sdsa_vectors


def packed(spec, beats):
    layout = sdsa_output_layout(spec)
    return [pack(layout, b) for b in beats]


def expected_of(spec, q, k, v):
    return sdsa_expected_beats(spec, sdsa_reference(spec, q, k, v)["y"].numpy())


# ---- spec validation -----------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, message", [
    ("length", 0, "SDSASpec.length = 0 is out of range; allowed: 1 .. 4096"),
    ("length", 4097, "SDSASpec.length = 4097 is out of range; allowed: 1 .. 4096"),
    ("length", 16.0, "SDSASpec.length must be an integer, got 16.0"),
    ("head_dim", 0, "SDSASpec.head_dim = 0 is out of range; allowed: 1 .. 256"),
    ("head_dim", 257, "SDSASpec.head_dim = 257 is out of range; allowed: 1 .. 256"),
    ("head_dim", True, "SDSASpec.head_dim must be an integer, got True"),
    ("lanes", 0, "SDSASpec.lanes = 0 is out of range; allowed: 1 .. +inf"),
    ("lanes", 17, "SDSASpec.lanes = 17 is out of range; allowed: 1 .. head_dim = 16"),
    ("lanes", "4", "SDSASpec.lanes must be an integer, got '4'"),
])
def test_spec_errors_name_the_field_and_the_range(field, value, message):
    with pytest.raises(SpecError, match=re.escape(message)) as info:
        SDSASpec(**{field: value})
    assert "\n" not in str(info.value)


def test_spec_round_trip_and_unknown_fields():
    spec = SDSASpec(length=12, head_dim=10, lanes=4)
    assert SDSASpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="SDSASpec has no field\\(s\\) heads; known fields: head_dim, lanes, length"):
        SDSASpec.from_dict({"heads": 2})


@pytest.mark.parametrize("spec, kv_width, out_width, groups", [
    (SDSASpec(), 5, 9, 4),                                   # KV 0 .. 16, y 0 .. 256, 16 / 4
    (SDSASpec(length=12, head_dim=10, lanes=4), 4, 7, 3),    # 0 .. 12, 0 .. 120, ceil(10 / 4)
    (SDSASpec(length=15, head_dim=17, lanes=17), 4, 8, 1),   # 0 .. 15, 0 .. 255, one step
    (SDSASpec(length=1, head_dim=1, lanes=1), 1, 1, 1),
    (SDSASpec(length=64, head_dim=32, lanes=1), 7, 12, 32),  # 0 .. 64, 0 .. 2048
])
def test_derived_widths_by_hand(spec, kv_width, out_width, groups):
    assert (spec.kv_width, spec.out_width, spec.groups) == (kv_width, out_width, groups)
    assert spec.max_out == spec.length * spec.head_dim < 2 ** spec.out_width
    assert SDSAttention.latency(spec) == SDSAttention.query_interval(spec) == groups
    assert SDSAttention.load_interval(spec) == 1


def test_layouts_follow_the_spec():
    spec = SDSASpec(length=12, head_dim=10, lanes=4)
    inp = dict(sdsa_input_layout(spec).members)
    assert set(inp) == {"kind", "qk", "v"} and inp["kind"].width == 1
    assert (inp["qk"].length, inp["qk"].elem_shape.width, inp["v"].length) == (10, 1, 10)
    out = dict(sdsa_output_layout(spec).members)
    assert set(out) == {"out"} and out["out"].length == 10
    assert out["out"].elem_shape.width == 7 and not out["out"].elem_shape.signed      # 0 .. 120


# ---- known answers worked out by hand ------------------------------------------------------------

# L = 3 keys, dh = 4, P = 2 (G = 2): Wkv = 2 bits (0 .. 3), Wy = 4 bits (0 .. 12)
HAND_SPEC = SDSASpec(length=3, head_dim=4, lanes=2)
HAND_K = [[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 1]]
HAND_V = [[1, 1, 0, 0], [1, 0, 0, 1], [0, 1, 1, 1]]
HAND_Q = [[1, 0, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1]]
# KV row i = the sum of the V rows of the keys with k[n, i] = 1:
#   i = 0: keys 0, 1 -> v0 + v1 = 2 1 0 1      i = 1: keys 1, 2 -> v1 + v2 = 1 1 1 2
#   i = 2: keys 0, 2 -> v0 + v2 = 1 2 1 1      i = 3: key 2     -> v2      = 0 1 1 1
HAND_KV = [[2, 1, 0, 1], [1, 1, 1, 2], [1, 2, 1, 1], [0, 1, 1, 1]]
# y = the sum of the KV rows q selects: q0 -> row 0; q1 -> rows 1 + 2 + 3; q2 -> every row.
# (check q1 the other way round: scores q1 . k_n = 1, 1, 3 -> v0 + v1 + 3 v2 = 2 4 3 4)
HAND_Y = [[2, 1, 0, 1], [2, 4, 3, 4], [4, 5, 3, 5]]


def test_by_hand_golden_and_rtl():
    q, k, v = torch.tensor([HAND_Q]), torch.tensor([HAND_K]), torch.tensor([HAND_V])
    r = sdsa_attention(HAND_SPEC, q, k, v)
    assert r.kv.tolist() == [HAND_KV] and r.y.tolist() == [HAND_Y]
    # three sequences back to back: the hand head; everything firing (KV = 3 = L, y = 12 = L dh, the
    # widths' limits); silent keys. Each load after a query starts from KV = 0: carried over, the
    # second sequence's counts would pass 3 and the third would not be 0.
    ones, zeros = torch.ones(1, 3, 4, dtype=torch.int64), torch.zeros(1, 3, 4, dtype=torch.int64)
    qs, ks, vs = torch.cat([q, ones, ones]), torch.cat([k, ones, zeros]), torch.cat([v, ones, ones])
    want = [{"out": row} for row in HAND_Y] + [{"out": [12] * 4}] * 3 + [{"out": [0] * 4}] * 3
    assert expected_of(HAND_SPEC, qs, ks, vs) == want
    beats = sdsa_input_beats(HAND_SPEC, qs, ks, vs)
    assert [b["kind"] for b in beats] == ([KIND_LOAD] * 3 + [KIND_QUERY] * 3) * 3
    layout = sdsa_output_layout(HAND_SPEC)
    for seed in range(3):
        run = run_stream(SDSAttention(HAND_SPEC), beats, len(want), seed=seed, valid_prob=0.5, ready_prob=0.5)
        assert [unpack(layout, w) for w in run.outputs] == want


# ---- an independent formulation: (q k^T) v in plain Python ints ---------------------------------

def textbook_sdsa(q, k, v):
    """Scores first, loop by loop: s[n, m] = sum_i q[n, i] k[m, i]; y[n, j] = sum_m s[n, m] v[m, j].
    Also KV[i, j] = sum_m k[m, i] v[m, j] by loops."""
    lq, length, d = len(q), len(k), len(k[0])
    scores = [[sum(q[n][i] * k[m][i] for i in range(d)) for m in range(length)] for n in range(lq)]
    y = [[sum(scores[n][m] * v[m][j] for m in range(length)) for j in range(d)] for n in range(lq)]
    kv = [[sum(k[m][i] * v[m][j] for m in range(length)) for j in range(d)] for i in range(d)]
    return kv, y


@pytest.mark.parametrize("spec, queries", [(SDSASpec(), None), (SDSASpec(length=12, head_dim=10, lanes=4), 5),
                                           (SDSASpec(length=1, head_dim=3, lanes=1), 4),
                                           (SDSASpec(length=33, head_dim=7, lanes=7), None)])
def test_golden_equals_the_textbook_order(spec, queries):
    q, k, v = sdsa_random_qkv(spec, 16, queries, seed=spec.length)
    ref = sdsa_reference(spec, q, k, v)
    for s in range(16):
        kv, y = textbook_sdsa(q[s].tolist(), k[s].tolist(), v[s].tolist())
        assert ref["kv"][s].tolist() == kv and ref["y"][s].tolist() == y
    # the stimulus reaches the limits and the zeros: every count L in the all-firing sequences
    assert int(ref["kv"].max()) == spec.length and int(ref["y"].max()) == spec.max_out
    assert (ref["y"].reshape(16, -1).sum(1) == 0).any() and (ref["kv"].reshape(16, -1).sum(1) == 0).any()
    assert ref["q"].dtype == torch.uint8 and ref["y"].dtype == torch.int64


def test_golden_is_matterhorns_integer_attention():
    """Matterhorn at its shipped size (L = 16, dim 32, 2 heads of dh = 16, T = 8), integer mode: its
    block's attention (``IntBlock.forward``) equals sdsa_attention head by head, step by step."""
    from golden.models.matterhorn import Matterhorn

    torch.manual_seed(3)
    model = Matterhorn(dim=32, heads=2, time_steps=8).to_integer()
    layers = model.forward_layers(torch.randint(0, 17, (3, 1, 8, 8)))
    q, k, v, y = (layers[f"block0_{name}"] for name in ("q", "k", "v", "attention"))
    t, b, length, dim = q.shape
    heads = 2
    spec = SDSASpec(length=length, head_dim=dim // heads)
    assert spec == SDSASpec()                                  # the defaults are that size
    split = lambda z: z.reshape(t, b, length, heads, dim // heads).transpose(2, 3)   # (T, B, H, L, dh)
    got = sdsa_attention(spec, split(q), split(k), split(v)).y
    assert torch.equal(got, split(y))
    assert 0 < int(y.sum()) and int(q.sum()) < q.numel()


def test_matterhorn_spikes_through_the_rtl():
    """A few (time step, sample, head) slices of the integer model's real spikes through the unit."""
    from golden.models.matterhorn import Matterhorn

    torch.manual_seed(4)
    layers = Matterhorn(dim=32, heads=2, time_steps=8).to_integer().forward_layers(torch.randint(0, 17, (2, 1, 8, 8)))
    q, k, v, y = (layers[f"block0_{name}"] for name in ("q", "k", "v", "attention"))
    spec = SDSASpec()
    picks = [(0, 0, 0), (3, 1, 1), (7, 0, 1), (5, 1, 0)]
    cut = lambda z: torch.stack([z[t, s, :, h * 16:(h + 1) * 16] for t, s, h in picks])   # (4, 16, 16)
    beats = sdsa_input_beats(spec, cut(q), cut(k), cut(v))
    expected = sdsa_expected_beats(spec, cut(y).numpy())
    run = run_stream(SDSAttention(spec), beats, len(expected), seed=8, valid_prob=0.8, ready_prob=0.7)
    assert run.outputs == packed(spec, expected)


# ---- the beat-level model ------------------------------------------------------------------------

def irregular_stream(spec: SDSASpec, rng: random.Random, n_sequences: int) -> list[dict]:
    """Sequences of 1 .. L loads and 0 .. 3 queries (0: the next loads continue the same KV, within
    L loads), queries before the first load (KV = 0), rows of every density."""
    d = spec.head_dim

    def row():
        p = rng.choice((0.0, 0.2, 0.5, 1.0))
        return [int(rng.random() < p) for _ in range(d)]

    beats = [{"kind": KIND_QUERY, "qk": row()} for _ in range(rng.randint(0, 2))]
    loads = 0
    for _ in range(n_sequences):
        n_loads = rng.randint(1, spec.length - loads) if loads < spec.length else 0
        beats += [{"kind": KIND_LOAD, "qk": row(), "v": row()} for _ in range(n_loads)]
        n_queries = rng.choice((0, 1, 2, 3)) if loads + n_loads < spec.length else rng.choice((1, 2, 3))
        beats += [{"kind": KIND_QUERY, "qk": row()} for _ in range(n_queries)]
        loads = 0 if n_queries else loads + n_loads
    return beats


def test_beat_model_equals_sdsa_attention_on_sequence_streams():
    for spec in (SDSASpec(), SDSASpec(length=5, head_dim=3, lanes=2)):
        q, k, v = sdsa_random_qkv(spec, 12, seed=1)
        rows = sdsa_run_beats(spec, sdsa_input_beats(spec, q, k, v))
        assert torch.equal(rows, sdsa_attention(spec, q, k, v).y.reshape(-1, spec.head_dim))


def test_beat_model_on_irregular_streams_by_hand():
    spec = SDSASpec(length=3, head_dim=2, lanes=1)
    beats = [{"kind": KIND_QUERY, "qk": [1, 1]},                         # before any load: 0 0
             {"kind": KIND_LOAD, "qk": [1, 0], "v": [1, 1]},
             {"kind": KIND_LOAD, "qk": [1, 1], "v": [0, 1]},             # KV = [[1, 2], [0, 1]]
             {"kind": KIND_QUERY, "qk": [1, 0]}, {"kind": KIND_QUERY, "qk": [1, 1]},   # 1 2; 1 3
             {"kind": KIND_LOAD, "qk": [0, 1], "v": [1, 0]},             # a new sequence: KV = [[0, 0], [1, 0]]
             {"kind": KIND_QUERY, "qk": [1, 1], "v": [0, 0]}]            # 1 0
    assert sdsa_run_beats(spec, beats).tolist() == [[0, 0], [1, 2], [1, 3], [1, 0]]
    assert sdsa_run_beats(spec, []).shape == (0, 2)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("spec", [SDSASpec(length=4, head_dim=5, lanes=2), SDSASpec(length=6, head_dim=3, lanes=3),
                                  SDSASpec(length=2, head_dim=4, lanes=1)], ids=["G3", "G1", "G4"])
def test_rtl_on_irregular_streams_under_random_stalls(spec, seed):
    rng = random.Random(seed)
    inputs, expected = sdsa_beat_stream(spec, irregular_stream(spec, rng, 40))
    assert len(expected) >= 40
    run = run_stream(SDSAttention(spec), inputs, len(expected), seed=seed, valid_prob=rng.choice([0.5, 0.9]),
                     ready_prob=rng.choice([0.4, 0.9]))
    assert run.outputs == packed(spec, expected)


# ---- the RTL on random vectors under random stalls -----------------------------------------------

# name -> (spec, sequences, queries per sequence (None: L))
RTL_SPECS = {
    "matterhorn-P4": (SDSASpec(), 9, None),
    "padded-G3-cross": (SDSASpec(length=12, head_dim=10, lanes=4), 9, 5),
    "serial-P1": (SDSASpec(length=6, head_dim=5, lanes=1), 9, None),
    "parallel-P=dh": (SDSASpec(length=9, head_dim=8, lanes=8), 10, None),
    "one-key-L1": (SDSASpec(length=1, head_dim=3, lanes=2), 16, 3),
    "one-element-dh1": (SDSASpec(length=5, head_dim=1, lanes=1), 12, None),
}


@pytest.mark.parametrize("name", sorted(RTL_SPECS))
def test_rtl_equals_golden_under_random_stalls(name):
    spec, sequences, queries = RTL_SPECS[name]
    seed = sorted(RTL_SPECS).index(name)
    q, k, v = sdsa_random_qkv(spec, sequences, queries, seed=seed)
    beats, expected = sdsa_input_beats(spec, q, k, v), expected_of(spec, q, k, v)
    run = run_stream(SDSAttention(spec), beats, len(expected), seed=seed, valid_prob=0.6, ready_prob=0.6)
    assert run.outputs == packed(spec, expected)


@pytest.mark.parametrize("name", sorted(COSIM_SPECS))
def test_rtl_amaranth_sim_on_the_cosim_vector_files(name, tmp_path):
    """The Verilator test's configurations, a slice of their sequences, through the same files and loader."""
    spec, sequences, queries = COSIM_SPECS[name]
    spec, beats, expected = sdsa_stream_from_directory(write_sdsa_vectors(tmp_path, spec, 8, queries, 7))
    run = run_stream(SDSAttention(spec), beats, len(expected), seed=5, valid_prob=0.7, ready_prob=0.6)
    assert run.outputs == packed(spec, expected)


# ---- latency, interval, back-pressure ------------------------------------------------------------

@pytest.mark.parametrize("spec", [SDSASpec(length=5, head_dim=4, lanes=4), SDSASpec(length=5, head_dim=4, lanes=2),
                                  SDSASpec(length=4, head_dim=7, lanes=3), SDSASpec(length=3, head_dim=4, lanes=1)],
                         ids=["G1", "G2", "G3", "G4"])
def test_latency_and_interval_to_the_cycle(spec):
    """No stalls: loads one a cycle; a query accepted in cycle c is out in c + G and the next beat is
    accepted in c + G; two sequences of L loads and L queries: the last output in cycle 2 L (1 + G)."""
    from estimate.blocks import block_timing, sdsa_timing

    q, k, v = sdsa_random_qkv(spec, 2, seed=2)
    beats, expected = sdsa_input_beats(spec, q, k, v), expected_of(spec, q, k, v)
    run = run_stream(SDSAttention(spec), beats, len(expected))
    assert run.outputs == packed(spec, expected)
    g, length = spec.groups, spec.length
    want, c = [], 0
    for kind in (b["kind"] for b in beats):
        want.append(c)
        c += g if kind == KIND_QUERY else 1
    assert run.accept_cycles == want
    queries = [c for c, b in zip(want, beats) if b["kind"] == KIND_QUERY]
    assert run.output_cycles == [c + g for c in queries]
    assert run.output_cycles[-1] == 2 * length * (1 + g)
    assert [b - a for a, b in zip(queries, queries[1:length])] == [SDSAttention.query_interval(spec)] * (length - 1)
    # the estimate (no Amaranth) gives the same handshakes, from the sizes alone
    est = sdsa_timing(spec, [length, length])
    assert (est.accept_cycles, est.output_cycles) == (run.accept_cycles, run.output_cycles)
    arrays = sdsa_reference(spec, q, k, v)
    est = block_timing("sdsa", spec, {name: a.numpy() for name, a in arrays.items()})
    assert (est.accept_cycles, est.output_cycles) == (run.accept_cycles, run.output_cycles)


def test_matterhorn_head_cycle_count():
    """The docstring's figure: L = Lq = 16, dh = 16, P = 4: the last output in cycle 16 + 16 x 4 = 80."""
    spec = SDSASpec()
    q, k, v = sdsa_random_qkv(spec, 1, seed=9)
    run = run_stream(SDSAttention(spec), sdsa_input_beats(spec, q, k, v), 16)
    assert run.outputs == packed(spec, expected_of(spec, q, k, v))
    assert run.output_cycles[-1] == 16 + 16 * 4 == 80


def test_stalled_output_holds_two_results_and_the_input_then_loses_nothing():
    """Output not ready until cycle 30 (G = 4): query A (accepted in cycle 1, out in 5) fills the output
    register, query B (cycle 5) waits in the accumulator from cycle 9, then i_stream.ready stays low
    (the load is held). From cycle 30 on: A is taken in 30, B in 31, the load is accepted in 31,
    query C in 32 and out in 36."""
    from amaranth.sim import Simulator

    spec = SDSASpec(length=3, head_dim=4, lanes=1)                       # G = 4
    ones = [1] * 4
    beats = [{"kind": KIND_LOAD, "qk": ones, "v": ones},                 # KV all 1
             {"kind": KIND_QUERY, "qk": [1, 0, 0, 0]}, {"kind": KIND_QUERY, "qk": [1, 1, 0, 0]},
             {"kind": KIND_LOAD, "qk": [1, 1, 1, 1], "v": [0, 1, 0, 1]},
             {"kind": KIND_QUERY, "qk": [0, 1, 1, 1]}]
    inputs, expected = sdsa_beat_stream(spec, beats)
    assert [e["out"] for e in expected] == [[1, 1, 1, 1], [2, 2, 2, 2], [0, 3, 0, 3]]
    dut = SDSAttention(spec)
    in_layout, out_layout = sdsa_input_layout(spec), sdsa_output_layout(spec)
    accepted, outputs = [], []

    async def driver(ctx):
        for cycle in range(60):
            k = len(accepted)
            ctx.set(dut.i_stream.valid, int(k < len(inputs)))
            if k < len(inputs):
                ctx.set(dut.i_stream.payload.as_value(), pack(in_layout, inputs[k]))
            ctx.set(dut.o_stream.ready, int(cycle >= 30))
            _, _, ready, valid, payload = await ctx.tick().sample(dut.i_stream.ready, dut.o_stream.valid,
                                                                  dut.o_stream.payload.as_value())
            if ready and k < len(inputs):
                accepted.append(cycle)
            if valid and cycle >= 30:
                outputs.append((cycle, unpack(out_layout, payload)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.run()
    assert accepted == [0, 1, 5, 31, 32]
    assert outputs == [(30, expected[0]), (31, expected[1]), (36, expected[2])]


def test_kv_is_registers_and_nothing_is_a_memory():
    """KV is dh x dh counters of Wkv bits (a load updates all of them in one cycle): no Memory."""
    from amaranth.hdl import Fragment

    from rtl.emit import to_verilog

    spec = SDSASpec(length=12, head_dim=6, lanes=4)
    dut = SDSAttention(spec)
    module = dut.elaborate(None)
    Fragment.get(dut, None)
    Fragment.get(module, None)
    assert not module._named_submodules and not module._anon_submodules
    text = to_verilog(SDSAttention(spec), "sdsa_attention")
    assert all(f"kv{i}_{j}" in text for i in range(6) for j in range(6))
    assert re.search(r"reg \[3:0\] kv5_5", text)


# ---- bad input -----------------------------------------------------------------------------------

BAD_SPEC = SDSASpec(length=2, head_dim=3, lanes=1)
LOAD = {"kind": KIND_LOAD, "qk": [1, 0, 1], "v": [0, 1, 1]}
QUERY = {"kind": KIND_QUERY, "qk": [1, 1, 0]}


@pytest.mark.parametrize("beats, message", [
    ([LOAD, {**LOAD, "kind": 2}], "SDSA beat 1 kind = 2 is out of range; allowed: 0 (load), 1 (query)"),
    ([{"qk": [0, 0, 0]}], "SDSA beat 0 kind = None is out of range; allowed: 0 (load), 1 (query)"),
    ([LOAD, {**LOAD, "qk": [1, 2, 0]}], "SDSA beat 1 qk = 2 is out of range; allowed: 0 .. 1 (spikes)"),
    ([LOAD, {**LOAD, "v": [1, 0]}], "SDSA beat 1 v has 2 values; the spec has head_dim = 3"),
    ([{"kind": KIND_LOAD, "qk": [1, 0, 1]}], "SDSA beat 0 (load) needs 'v'"),
    ([{"kind": KIND_QUERY}], "SDSA beat 0 (query) needs 'qk'"),
    ([{**QUERY, "v": [0, 1, 0]}], "SDSA beat 0 (query) carries a nonzero 'v', which a query does not use"),
    ([{**QUERY, "q": [0, 1, 0]}], "SDSA beat 0 has unknown field(s) q; allowed: kind, qk, v"),
    ([LOAD, LOAD, LOAD], "SDSA beat 2 is load 3 of its sequence; a sequence holds at most length = 2 loads"),
    ([{**QUERY, "qk": [0.5, 0, 0]}], "SDSA beat 0 qk must hold integers, got 0.5"),
    (["load"], "SDSA beat 0 must be a mapping of its fields, got str"),
])
def test_bad_beats_are_refused_in_one_line(beats, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        sdsa_run_beats(BAD_SPEC, beats)
    assert "\n" not in str(info.value)
    # within L loads per sequence, queries in between restart the count
    assert len(sdsa_normalize_beats(BAD_SPEC, [LOAD, LOAD, QUERY, LOAD, LOAD, QUERY])) == 6


def test_bad_tensors_and_vector_files_are_refused():
    spec = BAD_SPEC
    zeros = torch.zeros(1, 2, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match=re.escape("SDSA keys k holds values in [0, 2], outside the 1-bit unsigned "
                                                   "range [0, 1]")):
        sdsa_attention(spec, zeros, zeros + torch.tensor([0, 0, 2]), zeros)
    with pytest.raises(ValueError, match=re.escape("SDSA values v must have shape (..., 2, 3) (length, head_dim); "
                                                   "got (1, 3, 3)")):
        sdsa_attention(spec, zeros, zeros, torch.zeros(1, 3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=re.escape("SDSA queries q must have shape (..., Lq, 3) (head_dim); "
                                                   "got (2, 4)")):
        sdsa_attention(spec, torch.zeros(2, 4, dtype=torch.int64), zeros, zeros)
    with pytest.raises(ValueError, match="SDSA q, k, v batch dimensions differ"):
        sdsa_attention(spec, torch.zeros(2, 2, 3, dtype=torch.int64), zeros, zeros)
    with pytest.raises(ValueError, match="SDSA queries q must be an integer tensor, got dtype torch.float32"):
        sdsa_attention(spec, zeros.float(), zeros, zeros)
    with pytest.raises(ValueError, match="q, k, v must be 3-D"):
        sdsa_input_beats(spec, zeros[0], zeros[0], zeros[0])
    with pytest.raises(TypeError, match="SDSAttention needs an SDSASpec, got WTASpec"):
        from golden.wta import WTASpec
        SDSAttention(WTASpec())
    arrays = {k: v.numpy() for k, v in sdsa_reference(spec, *sdsa_random_qkv(spec, 2, seed=0)).items()}
    good = VectorSet("sdsa", spec.to_dict(), 0, arrays)
    _, beats, expected = sdsa_stream_from_vectors(good)
    assert len(beats) == 8 and len(expected) == 4
    with pytest.raises(ValueError, match=re.escape("SDSA vectors: 'y' has shape (2, 1, 3), 'q' has (2, 2, 3)")):
        sdsa_stream_from_vectors(VectorSet("sdsa", spec.to_dict(), 0, {**arrays, "y": arrays["y"][:, :1]}))
    with pytest.raises(ValueError, match="SDSA vectors have no 'v' array; they have k, kv, q, y"):
        sdsa_stream_from_vectors(VectorSet("sdsa", spec.to_dict(), 0, {k: a for k, a in arrays.items() if k != "v"}))
    with pytest.raises(SpecError, match="sdsa_random_qkv.sequences = 0 is out of range"):
        sdsa_random_qkv(spec, 0)


# ---- the registry entry and the command line ----------------------------------------------------

def test_registry_entry_and_cli_round_trip(tmp_path, capsys):
    from spikeforge.blocks import get_block
    from spikeforge.cli import main

    block = get_block("sdsa")
    assert block.spec_cls is SDSASpec and block.component is SDSAttention and block.toplevel == "sdsa_attention"
    arrays = block.make_vectors(SDSASpec(), 3, sequences=len(SEQUENCE_KINDS))
    assert block.vector_size(SDSASpec(), sequences=8) == max(arrays[name].numel() for name in arrays)
    assert main(["vectors", "sdsa", "--sequences", "3", "--length", "5", "--head-dim", "6", "--lanes", "4",
                 "-o", str(tmp_path / "vec")]) == 0
    spec, beats, expected = sdsa_stream_from_directory(tmp_path / "vec")
    assert spec == SDSASpec(length=5, head_dim=6, lanes=4) and len(expected) == 15
    assert block.work_done(load_vectors(tmp_path / "vec")) == (15, "attention rows")
    run = run_stream(SDSAttention(spec), beats, len(expected), seed=1, valid_prob=0.7, ready_prob=0.7)
    assert run.outputs == packed(spec, expected)
    assert main(["verilog", "sdsa", "-o", str(tmp_path / "sdsa.v")]) == 0
    assert "module sdsa_attention" in (tmp_path / "sdsa.v").read_text()
    capsys.readouterr()
    assert main(["vectors", "sdsa", "--lanes", "17", "-o", str(tmp_path / "bad")]) != 0
    assert "lanes = 17" in capsys.readouterr().err
    assert torch.equal(arrays["y"], sdsa_attention(SDSASpec(), arrays["q"], arrays["k"], arrays["v"]).y)
