"""Top-k winner-take-all unit: a streaming insertion version and a pipelined sorting network.

Hardware for ``golden.wta.topk_select``: for every row of L scores, the k keys with the
highest scores, **ties going to the lower key index**, only eligible keys
(score >= min_score, and key j <= row i when causal), in rank order, padded with
index 0 / score 0 / valid 0 when fewer than k keys are eligible.
"""

from __future__ import annotations

from amaranth import C, Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.wta import TopKSpec, topk_select


def score_shape(spec: TopKSpec):
    return signed(spec.score_width) if spec.signed else unsigned(spec.score_width)


def topk_input_layout(spec: TopKSpec) -> data.StructLayout:
    """"stream": one score per beat (key index = position in the row);
    "parallel": the whole row of L scores per beat (key j at element j)."""
    if spec.version == "stream":
        return data.StructLayout({"score": score_shape(spec)})
    return data.StructLayout({"score": data.ArrayLayout(score_shape(spec), spec.length)})


def topk_output_layout(spec: TopKSpec) -> data.StructLayout:
    """One beat per row: winners in rank order (index, score) and a valid bit each (bit r = rank r)."""
    k = spec.top_k
    return data.StructLayout({
        "index": data.ArrayLayout(unsigned(spec.index_width), k),
        "score": data.ArrayLayout(score_shape(spec), k),
        "valid": unsigned(k),
    })


def slot_layout(spec_index_width: int, shape) -> data.StructLayout:
    return data.StructLayout({"valid": unsigned(1), "score": shape, "index": unsigned(spec_index_width)})


def insert_candidate(m: Module, slots: list, valid, score, index, name: str) -> list:
    """Combinational insertion of one candidate into k rank-ordered slots; returns the new slots.

    ``beats[r] = valid & (~slots[r].valid | score > slots[r].score)``: strict ``>``, so a
    candidate that ties a held score goes *after* it. Candidates arrive in increasing
    key index, so this is the lower-index-wins rule. ``beats`` is monotone over r
    (slots are sorted, invalid ones last), so slot r takes slot r - 1 where
    ``beats[r - 1]`` holds, the candidate where ``beats[r]`` first holds, and keeps its
    value otherwise.
    """
    k = len(slots)
    beats = []
    for r in range(k):
        b = Signal(name=f"{name}_beats{r}")
        m.d.comb += b.eq(valid & (~slots[r].valid | (score > slots[r].score)))
        beats.append(b)
    new = []
    for r in range(k):
        slot = Signal(slots[r].shape(), name=f"{name}_slot{r}")
        cand = Cat(valid, score, index)  # same bit order as slot_layout
        if r == 0:
            m.d.comb += slot.eq(Mux(beats[0], cand, slots[0].as_value()))
        else:
            m.d.comb += slot.eq(Mux(beats[r - 1], slots[r - 1].as_value(),
                                    Mux(beats[r], cand, slots[r].as_value())))
        new.append(slot)
    return new


class TopK(wiring.Component):
    """Top-k selection of each row of L scores, version chosen by ``spec.version``.

    "stream" — insertion top-k
        Input: one score per beat, L beats per row (the key index is the position in
        the row; rows count 0 .. L - 1 for causal masking, then start again). k slot
        registers hold the best eligible keys so far in rank order; each accepted
        score is inserted combinationally (k comparators). The row's last score
        writes the updated slots straight into the output register.

        * Latency: ``LATENCY_STREAM`` = 1 cycle: the output beat of a row is valid in
          cycle c + 1 when the row's last score is accepted in cycle c, i.e. L
          cycles after its first score when no beat stalls.
        * Throughput: 1 score per cycle, a row every L cycles. Back-pressure holds
          only the last score of a row while the previous result is not taken.

    "parallel" — pipelined bitonic sorting network (L <= 64)
        Input: a whole row of L scores per beat. Each element becomes a unique sort
        key (eligible, score, L - 1 - j) (unsigned, sign bit of a signed score
        flipped); the keys, padded to N = 2^ceil(log2 L) with zeros, pass through a
        bitonic network sorting descending, one register stage per network stage
        (S = log2 N (log2 N + 1) / 2 stages); the first k keys are decoded.

        * Latency: ``latency(spec)`` = S + 2 cycles from the row's accept (cycle c)
          to its output beat (valid in cycle c + S + 2).
        * Throughput: 1 row per cycle; the whole pipeline holds while the output
          register is full and not taken.

    Members
    -------
    i_stream : In(stream.Signature(topk_input_layout(spec)))
    o_stream : Out(stream.Signature(topk_output_layout(spec)))
    """

    LATENCY_STREAM = 1

    def __init__(self, spec: TopKSpec):
        if not isinstance(spec, TopKSpec):
            self._MustUse__silence = True      # a refused object is never elaborated: no warning
            raise TypeError(f"TopK needs a TopKSpec, got {type(spec).__name__}")
        self.spec = spec
        super().__init__({
            "i_stream": In(stream.Signature(topk_input_layout(spec))),
            "o_stream": Out(stream.Signature(topk_output_layout(spec))),
        })

    @staticmethod
    def network_size(spec: TopKSpec) -> int:
        n = 1
        while n < spec.length:
            n *= 2
        return n

    @classmethod
    def network_stages(cls, spec: TopKSpec) -> int:
        log_n = cls.network_size(spec).bit_length() - 1
        return log_n * (log_n + 1) // 2

    @classmethod
    def latency(cls, spec: TopKSpec) -> int:
        """Cycles from an accept to its output beat: the row's last score (stream) or the row (parallel)."""
        if spec.version == "stream":
            return cls.LATENCY_STREAM
        return cls.network_stages(spec) + 2

    def elaborate(self, platform):
        if self.spec.version == "stream":
            return self._elaborate_stream()
        return self._elaborate_parallel()

    # ---- insertion version -------------------------------------------------------------------
    def _elaborate_stream(self):
        spec = self.spec
        m = Module()
        k, length = spec.top_k, spec.length
        layout = slot_layout(spec.index_width, score_shape(spec))
        slots = [Signal(layout, name=f"slot{r}") for r in range(k)]
        col = Signal(range(length), name="col")
        row = Signal(range(length), name="row")
        last = col == length - 1

        out_free = ~self.o_stream.valid | self.o_stream.ready
        m.d.comb += self.i_stream.ready.eq(~last | out_free)
        accept = self.i_stream.valid & self.i_stream.ready

        score = self.i_stream.payload.score
        elig = Signal()
        cond = score >= spec.min_score
        if spec.causal:
            cond = cond & (col <= row)
        m.d.comb += elig.eq(cond)
        new = insert_candidate(m, slots, elig, score, col, "ins")

        with m.If(accept):
            with m.If(last):
                m.d.sync += [col.eq(0), row.eq(Mux(row == length - 1, 0, row + 1))]
                m.d.sync += [s.eq(0) for s in slots]
                m.d.sync += self.o_stream.valid.eq(1)
                for r in range(k):
                    v = new[r].valid
                    m.d.sync += [self.o_stream.payload.valid[r].eq(v),
                                 self.o_stream.payload.index[r].eq(Mux(v, new[r].index, 0)),
                                 self.o_stream.payload.score[r].eq(Mux(v, new[r].score, 0))]
            with m.Else():
                m.d.sync += col.eq(col + 1)
                m.d.sync += [slots[r].eq(new[r]) for r in range(k)]
        with m.If(~(accept & last) & self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        return m

    # ---- sorting-network version ---------------------------------------------------------------
    def _elaborate_parallel(self):
        spec = self.spec
        m = Module()
        k, length, ws, iw = spec.top_k, spec.length, spec.score_width, spec.index_width
        n = self.network_size(spec)
        key_width = 1 + ws + iw
        n_stages = self.network_stages(spec)

        advance = ~self.o_stream.valid | self.o_stream.ready
        m.d.comb += self.i_stream.ready.eq(advance)
        accept = self.i_stream.valid & advance

        row = Signal(range(length), name="row")
        with m.If(accept):
            m.d.sync += row.eq(Mux(row == length - 1, 0, row + 1))

        # stage 0: keys of the accepted row
        stage = [Signal(key_width, name=f"s0_{e}") for e in range(n)]
        valid = Signal(name="s0_valid")
        with m.If(advance):
            m.d.sync += valid.eq(self.i_stream.valid)
        for e in range(length):
            score = self.i_stream.payload.score[e]
            cond = score >= spec.min_score
            if spec.causal:
                cond = cond & (row >= e)
            biased = Value.cast(score)[:ws]
            if spec.signed:
                biased = Cat(biased[:ws - 1], ~biased[ws - 1])
            with m.If(advance):
                m.d.sync += stage[e].eq(Cat(C(length - 1 - e, iw), biased, cond))
        # padding elements stay 0 (never eligible)

        # the bitonic network, descending, one register stage per comparator column
        t = 0
        size = 2
        while size <= n:
            stride = size // 2
            while stride >= 1:
                t += 1
                nxt = [Signal(key_width, name=f"s{t}_{e}") for e in range(n)]
                nvalid = Signal(name=f"s{t}_valid")
                with m.If(advance):
                    m.d.sync += nvalid.eq(valid)
                    for i in range(n):
                        partner = i ^ stride
                        lo, hi = min(i, partner), max(i, partner)
                        descending = (lo & size) == 0
                        a, b = stage[lo], stage[hi]
                        swap = (a < b) if descending else (a > b)
                        m.d.sync += nxt[i].eq(Mux(swap, stage[partner], stage[i]))
                stage, valid = nxt, nvalid
                stride //= 2
            size *= 2
        assert t == n_stages

        with m.If(advance):
            m.d.sync += self.o_stream.valid.eq(valid)
            for r in range(k):
                key = stage[r]
                ok = key[key_width - 1]
                sc = key[iw:iw + ws]
                if spec.signed:
                    sc = Cat(sc[:ws - 1], ~sc[ws - 1])
                m.d.sync += [self.o_stream.payload.valid[r].eq(ok),
                             self.o_stream.payload.index[r].eq(Mux(ok, (length - 1) - key[:iw], 0)),
                             self.o_stream.payload.score[r].eq(Mux(ok, sc, 0))]
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays


def topk_input_beats(spec: TopKSpec, scores) -> list[dict]:
    """Golden scores (S, R, L) -> input beats (stream: S*R*L one-score beats; parallel: S*R rows)."""
    if scores.ndim != 3 or scores.shape[2] != spec.length:
        raise ValueError(f"top-k scores have shape {tuple(scores.shape)}; expected (sequences, rows, "
                         f"{spec.length})")
    if spec.causal and scores.shape[1] != spec.length:
        raise ValueError(f"causal top-k vectors need {spec.length} rows per sequence; got {scores.shape[1]}")
    from golden import fixed

    fixed.check_range(scores, spec.score_width, spec.signed, "top-k scores")   # wider than the spec: refused
    beats = []
    for seq in scores:
        for row in seq:
            values = [int(x) for x in row]
            if spec.version == "stream":
                beats.extend({"score": x} for x in values)
            else:
                beats.append({"score": values})
    return beats


def topk_expected_beats(spec: TopKSpec, index, score, valid) -> list[dict]:
    """Golden winners (S, R, k) each -> one output beat per row."""
    beats = []
    for s in range(index.shape[0]):
        for r in range(index.shape[1]):
            beats.append({"index": [int(x) for x in index[s, r]], "score": [int(x) for x in score[s, r]],
                          "valid": sum(int(b) << i for i, b in enumerate(valid[s, r]))})
    return beats


def topk_random_scores(spec: TopKSpec, sequences: int, seed: int = 0):
    """Seeded scores (sequences, L, L) that exercise every rule.

    Rows cycle through four kinds: uniform over the whole score range (extremes
    included), all equal, many ties (two or three distinct values), and a narrow band
    around ``min_score`` (so that the minimum-score rule cuts inside the row).
    """
    import torch

    if sequences < 1:
        raise ValueError(f"need sequences >= 1, got {sequences}")
    from golden import fixed

    gen = torch.Generator().manual_seed(seed)
    lo, hi = fixed.int_min(spec.score_width, spec.signed), fixed.int_max(spec.score_width, spec.signed)
    shape = (sequences, spec.length, spec.length)
    uniform = torch.randint(lo, hi + 1, shape, generator=gen)
    equal = torch.randint(lo, hi + 1, (sequences, spec.length, 1), generator=gen).expand(shape)
    few = torch.randint(lo, hi + 1, (sequences, spec.length, 3), generator=gen)
    ties = torch.gather(few, 2, torch.randint(0, 3, shape, generator=gen))
    band = torch.clamp(spec.min_score + torch.randint(-2, 3, shape, generator=gen), lo, hi)
    kind = (torch.arange(sequences * spec.length).reshape(sequences, spec.length, 1) + seed) % 4
    return torch.where(kind == 0, uniform, torch.where(kind == 1, equal, torch.where(kind == 2, ties, band)))


def topk_reference(spec: TopKSpec, scores) -> dict:
    import torch

    result = topk_select(spec, torch.as_tensor(scores))
    return {"scores": torch.as_tensor(scores).to(torch.int64), "index": result.index,
            "score": result.score, "valid": result.valid.to(torch.uint8)}
