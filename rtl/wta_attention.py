"""WTA attention unit: scores by AND-popcount (or dot products), causal mask, top-k, sum of V rows.

Hardware for ``golden.wta.wta_attention`` (one head); the equations are in
``golden/wta.py`` and ``docs/numeric-contract.md`` and are implemented here bit for bit.
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.wta import WTASpec, wta_attention

from .topk import insert_candidate, slot_layout

KIND_LOAD, KIND_QUERY = 0, 1


def qk_shape(spec: WTASpec):
    return signed(spec.qk_width) if spec.qk_signed else unsigned(1)


def v_shape(spec: WTASpec):
    return signed(spec.v_width) if spec.v_signed else unsigned(1)


def score_shape(spec: WTASpec):
    return signed(spec.score_width) if spec.score_signed else unsigned(spec.score_width)


def wta_input_layout(spec: WTASpec) -> data.StructLayout:
    """One beat: ``kind`` 0 = load a K/V row (``qk`` = K row, ``v`` = V row), 1 = a query (``qk`` = Q row)."""
    return data.StructLayout({
        "kind": unsigned(1),
        "qk": data.ArrayLayout(qk_shape(spec), spec.head_dim),
        "v": data.ArrayLayout(v_shape(spec), spec.value_dim),
    })


def wta_output_layout(spec: WTASpec) -> data.StructLayout:
    """One beat per query: ``out`` (Dv signed values), the winners' ``index`` in rank order and
    their ``valid`` bits (bit r = rank r)."""
    k = spec.top_k
    return data.StructLayout({
        "out": data.ArrayLayout(signed(spec.out_width), spec.value_dim),
        "index": data.ArrayLayout(unsigned(spec.topk_spec().index_width), k),
        "valid": unsigned(k),
    })


def tree_sum(terms):
    """A balanced adder tree (depth ceil(log2 n)); Amaranth widens each sum, so nothing wraps."""
    terms = list(terms)
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def _better(m: Module, a, b, index_width: int, score_signed: bool, name: str):
    """1 when slot ``a`` ranks before slot ``b``: valid, and ``b`` invalid or a higher score,
    or an equal score and a lower key index (one unsigned compare of ``{score, ~index}``,
    the score's sign bit flipped)."""
    def key(slot):
        score_bits = Value.cast(slot.score).as_unsigned()
        if score_signed:
            score_bits = Cat(score_bits[:-1], ~score_bits[-1])
        return Cat(~slot.index, score_bits)
    out = Signal(name=name)
    m.d.comb += out.eq(a.valid & (~b.valid | (key(a) > key(b))))
    return out


class WTAAttention(wiring.Component):
    """One head of winner-take-all attention on a single input stream.

    Protocol: a sequence is L ``load`` beats (K row j and V row j, j = 0 .. L - 1, in
    order) followed by its query beats (query i = 0, 1, ...; L of them for
    self-attention). A load beat after a query starts the next sequence (row 0, query
    counter back to 0). Each query produces one output beat.

    Datapath: K is kept in an ``amaranth.lib.memory.Memory`` of G = ceil(L / P) words
    of P rows (written one row at a time through a lane-granular write port), V in a
    memory of L rows. For a query, P lanes compute P (query, key) scores per cycle
    (AND + popcount for spikes, an exact dot product for multi-bit Q/K) and mask them
    (causal: j <= i; j < L; score >= min_score) into a score register. Lane p keeps its
    own k rank-ordered slots of the keys j = g P + p, which reach it in increasing j:
    one insertion per cycle (``rtl.topk.insert_candidate``: strict >, so a tie keeps
    the lower key index). Then k merge steps each take the best lane head (higher
    score, then lower index) as winner r, pop it from its lane and present its V
    address; the V rows are read one per cycle behind them and summed. The top k of the union of the lanes' top-k lists is the top k
    of all keys, in the golden order, so this is ``golden.wta.wta_attention`` exactly.
    The sum is multiplied by the reciprocal R (or passed through in fold mode) into the
    output register.

    Why lane lists: a single k-slot list fed P candidates per cycle puts P insertions
    in series in one cycle (42.9 MHz on ECP5-85 at the default spec); per-lane lists
    keep one insertion per cycle, and the merge runs alongside the V reads that were
    needed anyway. The half-score and score registers cost one cycle each.

    Why registered comparisons: comparing the lane heads in the merge step itself put
    a comparator's carry chain, the winner decode and the pop of k slots per lane in
    one cycle (10.6 ns on ECP5-85). Instead the merge keeps two relation matrices in
    registers, ``H[a, b]`` = head a ranks before head b and ``S[a, b]`` = lane a's
    second slot ranks before head b, computed from the finished lane lists in one
    cycle (PREP). A merge step then decodes the winner w from H alone
    (``won[a] = head_a.valid & AND_b H[a, b]``) and updates the relations from
    comparisons of registers made in parallel with it (third slots and second slots
    against heads): after popping w, ``H'[w, b] = S[w, b]``,
    ``H'[a, w] = head_a.valid & ~S[w, a]``, ``S'[w, b]`` = slot 2 of w before head b,
    ``S'[a, w]`` = slot 1 of a before slot 1 of w; all other entries keep. The keys of
    the lanes are disjoint, so ``better(x, y) = x.valid & ~better(y, x)`` for valid y.
    The winner's V address goes to the memory straight from the one-hot multiplexer
    (no address register), which pays for PREP.

    Latency and throughput
    ----------------------
    * Load beats: 1 per cycle.
    * A query accepted in cycle c has its output valid in cycle c + G + k + 5
      (``latency(spec)``): G + 2 cycles of scores (the half-score and score registers add
      one each), one cycle of PREP (the relation registers), k + 1 cycles of merge and V
      reads (the memory's read register adds one), the product and the output register
      in the last of them.
    * Throughput: one query every G + k + 5 cycles (``query_interval(spec)``), the
      next query being accepted in the cycle its predecessor's output appears. For
      L = 64, P = 4, k = 4: 16 + 4 + 5 = 25 cycles per query, and a whole head
      (64 loads + 64 queries) has its last output in cycle 64 + 64 * 25 = 1664.
    * Back-pressure: a finished query waits in the V-sum state while the output
      register is full and not taken; load beats are held in the meantime.

    Members
    -------
    i_stream : In(stream.Signature(wta_input_layout(spec)))
    o_stream : Out(stream.Signature(wta_output_layout(spec)))
    """

    def __init__(self, spec: WTASpec):
        if not isinstance(spec, WTASpec):
            self._MustUse__silence = True      # a refused object is never elaborated: no warning
            raise TypeError(f"WTAAttention needs a WTASpec, got {type(spec).__name__}")
        self.spec = spec
        super().__init__({
            "i_stream": In(stream.Signature(wta_input_layout(spec))),
            "o_stream": Out(stream.Signature(wta_output_layout(spec))),
        })

    @staticmethod
    def latency(spec: WTASpec) -> int:
        """Cycles from a query's accept to its output beat: G + k + 5."""
        return spec.groups + spec.top_k + 5

    @staticmethod
    def query_interval(spec: WTASpec) -> int:
        """Cycles between accepted queries without back-pressure: G + k + 5."""
        return spec.groups + spec.top_k + 5

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        length, lanes, groups, k = spec.length, spec.lanes, spec.groups, spec.top_k
        d, dv = spec.head_dim, spec.value_dim
        iw = spec.topk_spec().index_width
        row_layout = data.ArrayLayout(qk_shape(spec), d)

        m.submodules.kmem = kmem = memory.Memory(shape=data.ArrayLayout(row_layout, lanes), depth=groups, init=[])
        m.submodules.vmem = vmem = memory.Memory(shape=data.ArrayLayout(v_shape(spec), dv), depth=length, init=[])
        kw = kmem.write_port(granularity=1)
        kr = kmem.read_port()
        vw = vmem.write_port()
        vr = vmem.read_port()

        payload = self.i_stream.payload
        kv_row = Signal(range(length + 1), name="kv_row")
        kv_group = Signal(range(groups + 1), name="kv_group")
        kv_lane = Signal(range(lanes), name="kv_lane")
        querying = Signal(name="querying")   # the last beat was a query: the next load is row 0
        q_index = Signal(range(length), name="q_index")
        q_reg = Signal(row_layout, name="q_reg")
        step = Signal(range(groups + 2), name="step")
        rank = Signal(range(k + 1), name="rank")
        slot_lay = slot_layout(iw, score_shape(spec))
        # lane p keeps the best k of its own keys j = g P + p, in rank order
        lane_slots = [[Signal(slot_lay, name=f"lane{p}_slot{r}") for r in range(k)] for p in range(lanes)]
        # the score register between the P score lanes and the lane insertions
        cand = [Signal(slot_lay, name=f"cand{p}") for p in range(lanes)]
        # the merged winners, in rank order, for the output beat
        winners = [Signal(slot_lay, name=f"winner{r}") for r in range(k)]
        prev_valid = Signal(name="prev_valid")   # the winner whose V row vr.data holds is valid
        acc_shape = signed(spec.acc_width)
        acc = [Signal(acc_shape, name=f"acc{e}") for e in range(dv)]

        out_free = ~self.o_stream.valid | self.o_stream.ready
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)

        def emit(values):
            """Write the output register (the caller checked out_free)."""
            m.d.sync += self.o_stream.valid.eq(1)
            for e in range(dv):
                scaled = values[e] if spec.scale_mode == "fold" else values[e] * C(spec.reciprocal, unsigned(
                    max(1, spec.reciprocal.bit_length())))
                m.d.sync += self.o_stream.payload.out[e].eq(scaled)
            for r in range(k):
                ok = winners[r].valid
                m.d.sync += [self.o_stream.payload.valid[r].eq(ok),
                             self.o_stream.payload.index[r].eq(Mux(ok, winners[r].index, 0))]
            m.d.sync += q_index.eq(Mux(q_index == length - 1, 0, q_index + 1))

        # load path: comb write ports, active on an accepted load beat
        row0 = querying
        eff_row = Mux(row0, 0, kv_row)
        eff_group = Mux(row0, 0, kv_group)
        eff_lane = Mux(row0, 0, kv_lane)
        load = Signal(name="load")
        m.d.comb += [kw.addr.eq(eff_group), vw.addr.eq(eff_row), vw.data.eq(payload.v)]
        for p in range(lanes):
            m.d.comb += kw.data[p].eq(payload.qk)
            m.d.comb += kw.en[p].eq(load & (eff_lane == p))
        m.d.comb += vw.en.eq(load)

        m.d.comb += kr.en.eq(1)
        m.d.comb += vr.en.eq(1)

        # The datapath's combinational logic sits outside the FSM: a comb assignment under a
        # state is gated by the state decode (0 elsewhere), which put fsm_state in front of
        # the head comparators' carry chains (10.6 ns on ECP5-85). The states only choose
        # which registers take these values.
        # The score is split over two cycles: the two halves of the AND-popcount (dot product) of
        # group s into registers, then their sum, the mask and the candidate of group s - 1 (the
        # query row's fan-out to the P lanes and a one-cycle popcount were 10.8 ns on ECP5-85).
        scores, keys, elig, inserted = [], [], [], []
        half = (d + 1) // 2
        for p in range(lanes):
            krow = kr.data[p]
            if spec.qk_signed:
                terms = [q_reg[e] * krow[e] for e in range(d)]
            else:
                terms = [q_reg[e] & krow[e] for e in range(d)]
            parts = []
            for h, chunk in enumerate((terms[:half], terms[half:])):
                if not chunk:
                    continue
                part = Signal(score_shape(spec), name=f"part{p}_{h}")
                m.d.sync += part.eq(tree_sum(chunk))
                parts.append(part)
            score = Signal(score_shape(spec), name=f"score{p}")
            m.d.comb += score.eq(tree_sum(parts))
            j = Signal(range(groups * lanes + lanes), name=f"key{p}")
            m.d.comb += j.eq((step - 1) * lanes + p)
            ok = (score >= spec.min_score) & (step != 0)      # step 0: no group in the halves yet
            if groups * lanes > length:
                ok = ok & (j < length)
            if spec.causal:
                ok = ok & (j <= q_index)
            scores.append(score)
            keys.append(j)
            elig.append(ok)
            # keys reach lane p in increasing index: strict > keeps the lower index on a tie
            inserted.append(insert_candidate(m, lane_slots[p], cand[p].valid, cand[p].score, cand[p].index,
                                             f"lane{p}"))
        # the merge: relation registers H (head a before head b) and S (second slot of a before
        # head b), the winner decoded from H, and the comparisons that update them (see the
        # class docstring), all outside the FSM
        heads = [lane_slots[p][0] for p in range(lanes)]
        seconds = [lane_slots[p][1] if k > 1 else Signal(slot_lay, name=f"lane{p}_none1") for p in range(lanes)]
        thirds = [lane_slots[p][2] if k > 2 else Signal(slot_lay, name=f"lane{p}_none2") for p in range(lanes)]
        pairs = [(a, b) for a in range(lanes) for b in range(lanes) if a != b]
        rel_h = {ab: Signal(name=f"h{ab[0]}_{ab[1]}") for ab in pairs}
        rel_s = {ab: Signal(name=f"s{ab[0]}_{ab[1]}") for ab in pairs}
        prep_h, prep_s, third_head, second_second = {}, {}, {}, {}
        for a, b in pairs:
            if a < b:
                prep_h[a, b] = _better(m, heads[a], heads[b], iw, spec.score_signed, f"prep_h{a}_{b}")
                second_second[a, b] = _better(m, seconds[a], seconds[b], iw, spec.score_signed, f"ss{a}_{b}")
            prep_s[a, b] = _better(m, seconds[a], heads[b], iw, spec.score_signed, f"prep_s{a}_{b}")
            third_head[a, b] = _better(m, thirds[a], heads[b], iw, spec.score_signed, f"th{a}_{b}")
        for a, b in pairs:
            if a > b:
                prep_h[a, b] = heads[a].valid & ~prep_h[b, a]
                second_second[a, b] = seconds[a].valid & ~second_second[b, a]
        lane_won = Signal(lanes, name="head_won")
        for a in range(lanes):
            cond = heads[a].valid
            for b in range(lanes):
                if b != a:
                    cond = cond & rel_h[a, b]
            m.d.comb += lane_won[a].eq(cond)
        best = Signal(slot_lay, name="best_head")
        picked = 0
        for p in range(lanes):
            picked = picked | Mux(lane_won[p], heads[p].as_value(), 0)
        m.d.comb += best.eq(picked)
        # the winner's V row is read straight from the one-hot multiplexer
        m.d.comb += vr.addr.eq(best.index)
        next_h, next_s = {}, {}
        for a, b in pairs:
            next_h[a, b] = Mux(lane_won[a], rel_s[a, b],
                               Mux(lane_won[b], heads[a].valid & ~rel_s[b, a], rel_h[a, b]))
            next_s[a, b] = Mux(lane_won[a], third_head[a, b],
                               Mux(lane_won[b], second_second[a, b], rel_s[a, b]))
        total = [Signal(acc_shape, name=f"total{e}") for e in range(dv)]
        for e in range(dv):
            m.d.comb += total[e].eq(acc[e] + Mux(prev_valid, vr.data[e], 0))

        with m.FSM(name="fsm"):
            with m.State("IDLE"):
                m.d.comb += self.i_stream.ready.eq(1)
                m.d.comb += kr.addr.eq(0)
                with m.If(self.i_stream.valid):
                    with m.If(payload.kind == KIND_LOAD):
                        m.d.comb += load.eq(1)
                        last_lane = eff_lane == lanes - 1
                        m.d.sync += [kv_row.eq(eff_row + 1),
                                     kv_lane.eq(Mux(last_lane, 0, eff_lane + 1)),
                                     kv_group.eq(Mux(last_lane, eff_group + 1, eff_group)),
                                     querying.eq(0)]
                        with m.If(row0):
                            m.d.sync += q_index.eq(0)
                    with m.Else():
                        m.d.sync += [q_reg.eq(payload.qk), querying.eq(1), step.eq(0)]
                        m.d.sync += [s.eq(0) for lane in lane_slots for s in lane]
                        m.d.sync += [c.eq(0) for c in cand]
                        m.d.sync += [a.eq(0) for a in acc]
                        m.d.sync += prev_valid.eq(0)
                        m.next = "SCORE"

            with m.State("SCORE"):
                # step s (0 .. G + 1): kr.data holds group s (address presented last cycle); its
                # P half scores go into the halves' registers, the halves of group s - 1 (none at
                # s = 0) become the score register, and the score register's group s - 2 is
                # inserted into the lane lists. At s = G and G + 1 the halves and the score
                # register take words past the last group: they are never inserted, since the FSM
                # leaves SCORE and the next query clears the score register first.
                m.d.comb += kr.addr.eq(step + 1)
                for p in range(lanes):
                    m.d.sync += [cand[p].valid.eq(elig[p]), cand[p].score.eq(scores[p]),
                                 cand[p].index.eq(keys[p][:iw])]
                    m.d.sync += [lane_slots[p][r].eq(inserted[p][r]) for r in range(k)]
                with m.If(step == groups + 1):
                    m.next = "PREP"
                with m.Else():
                    m.d.sync += step.eq(step + 1)

            with m.State("PREP"):
                # the lane lists are final: their relations go into H and S
                m.d.sync += [rel_h[ab].eq(prep_h[ab]) for ab in pairs]
                m.d.sync += [rel_s[ab].eq(prep_s[ab]) for ab in pairs]
                m.d.sync += rank.eq(0)
                m.next = "ACC"

            with m.State("ACC"):
                # rank r < k: the best lane head is winner r; its V address goes to the memory
                # now, it is popped from its lane and H, S follow the pop. Rank r + 1 finds
                # winner r's V row in vr.data and adds it if the winner is valid.
                m.d.sync += prev_valid.eq(0)
                with m.If(rank == k):
                    with m.If(out_free):
                        emit(total)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [acc[e].eq(total[e]) for e in range(dv)]
                        m.next = "HOLD"
                with m.Else():
                    m.d.sync += [acc[e].eq(total[e]) for e in range(dv)]
                    m.d.sync += [rank.eq(rank + 1), prev_valid.eq(best.valid)]
                    with m.Switch(rank):
                        for r in range(k):
                            with m.Case(r):
                                m.d.sync += winners[r].eq(best)
                    for p in range(lanes):
                        with m.If(lane_won[p]):
                            m.d.sync += [lane_slots[p][r].eq(lane_slots[p][r + 1]) for r in range(k - 1)]
                            m.d.sync += lane_slots[p][k - 1].eq(0)
                    m.d.sync += [rel_h[ab].eq(next_h[ab]) for ab in pairs]
                    m.d.sync += [rel_s[ab].eq(next_s[ab]) for ab in pairs]

            with m.State("HOLD"):
                with m.If(out_free):
                    emit(acc)
                    m.next = "IDLE"
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays


def wta_input_beats(spec: WTASpec, q, k, v) -> list[dict]:
    """Golden Q (S, Lq, D), K (S, L, D), V (S, L, Dv) -> per sequence L load beats then Lq query beats."""
    if q.ndim != 3 or k.ndim != 3 or v.ndim != 3:
        raise ValueError(f"WTA vectors: q, k, v must be 3-D (sequences, rows, dim); got shapes "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if tuple(k.shape[1:]) != (spec.length, spec.head_dim) or tuple(v.shape[1:]) != (spec.length, spec.value_dim) \
            or q.shape[2] != spec.head_dim or not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError(f"WTA vectors: shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do "
                         f"not match the spec (L = {spec.length}, D = {spec.head_dim}, Dv = {spec.value_dim})")
    from golden import fixed

    fixed.check_range(q, spec.qk_width, spec.qk_signed, "WTA queries Q")
    fixed.check_range(k, spec.qk_width, spec.qk_signed, "WTA keys K")
    fixed.check_range(v, spec.v_width, spec.v_signed, "WTA values V")
    beats = []
    zeros_v = [0] * spec.value_dim
    for s in range(q.shape[0]):
        for j in range(spec.length):
            beats.append({"kind": KIND_LOAD, "qk": [int(x) for x in k[s, j]], "v": [int(x) for x in v[s, j]]})
        for i in range(q.shape[1]):
            beats.append({"kind": KIND_QUERY, "qk": [int(x) for x in q[s, i]], "v": zeros_v})
    return beats


def wta_expected_beats(spec: WTASpec, out, index, valid) -> list[dict]:
    """Golden out (S, Lq, Dv), index and valid (S, Lq, k) -> one output beat per query."""
    beats = []
    for s in range(out.shape[0]):
        for i in range(out.shape[1]):
            beats.append({"out": [int(x) for x in out[s, i]], "index": [int(x) for x in index[s, i]],
                          "valid": sum(int(b) << r for r, b in enumerate(valid[s, i]))})
    return beats


def wta_random_qkv(spec: WTASpec, sequences: int, queries: int | None = None, seed: int = 0):
    """Seeded Q (S, Lq, D), K (S, L, D), V (S, L, Dv).

    Spike Q/K rows have a firing density drawn per row from {0, 0.1, 0.3, 0.6, 1}
    so that all-equal scores (all-zero or all-one rows) and many ties occur; multi-bit
    Q/K are uniform over their range with some rows of a constant. V is uniform over
    its range.
    """
    import torch

    from golden import fixed

    if sequences < 1:
        raise ValueError(f"need sequences >= 1, got {sequences}")
    lq = spec.length if queries is None else queries
    gen = torch.Generator().manual_seed(seed)

    def qk(rows):
        if not spec.qk_signed:
            density = torch.tensor([0.0, 0.1, 0.3, 0.6, 1.0])[torch.randint(0, 5, (sequences, rows, 1), generator=gen)]
            return (torch.rand(sequences, rows, spec.head_dim, generator=gen) < density).to(torch.int64)
        lo, hi = fixed.int_min(spec.qk_width, True), fixed.int_max(spec.qk_width, True)
        x = torch.randint(lo, hi + 1, (sequences, rows, spec.head_dim), generator=gen)
        const = torch.rand(sequences, rows, 1, generator=gen) < 0.2
        return torch.where(const, x[..., :1].expand_as(x), x)

    lo, hi = fixed.int_min(spec.v_width, spec.v_signed), fixed.int_max(spec.v_width, spec.v_signed)
    v = torch.randint(lo, hi + 1, (sequences, spec.length, spec.value_dim), generator=gen)
    return qk(lq), qk(spec.length), v


def wta_reference(spec: WTASpec, q, k, v) -> dict:
    import torch

    q, k, v = (torch.as_tensor(x).to(torch.int64) for x in (q, k, v))
    r = wta_attention(spec, q, k, v)
    return {"q": q, "k": k, "v": v, "scores": r.scores, "index": r.index, "valid": r.valid.to(torch.uint8),
            "acc": r.acc, "out": r.out}
