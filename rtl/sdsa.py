"""Spike-driven self-attention unit (Matterhorn): KV = k^T v accumulated per load, y = q KV per query.

Hardware for ``golden.sdsa.sdsa_attention`` / ``golden.sdsa.sdsa_run_beats`` (one head, one time
step); the equations are in ``golden/sdsa.py`` and are implemented here bit for bit.
"""

from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.sdsa import KIND_LOAD, KIND_QUERY, SDSASpec, sdsa_normalize_beats, sdsa_run_beats, sequence_beats

from .wta_attention import tree_sum

__all__ = ["KIND_LOAD", "KIND_QUERY", "SDSAttention", "sdsa_beat_outputs", "sdsa_beat_stream",
           "sdsa_expected_beats", "sdsa_input_beats", "sdsa_input_layout", "sdsa_output_layout",
           "sdsa_stream_from_vectors"]


def sdsa_input_layout(spec: SDSASpec) -> data.StructLayout:
    """One beat (the fields of ``rtl.wta_attention.wta_input_layout`` with spikes): ``kind`` 0 =
    load (``qk`` = K row, ``v`` = V row), 1 = query (``qk`` = Q row; ``v`` ignored); dh spikes each."""
    row = data.ArrayLayout(unsigned(1), spec.head_dim)
    return data.StructLayout({"kind": unsigned(1), "qk": row, "v": row})


def sdsa_output_layout(spec: SDSASpec) -> data.StructLayout:
    """One beat per query: ``out``, the dh elements y[j] (unsigned Wy = ``spec.out_width`` bits)."""
    return data.StructLayout({"out": data.ArrayLayout(unsigned(spec.out_width), spec.head_dim)})


class SDSAttention(wiring.Component):
    """One head of spike-driven self-attention, ``y = q (k^T v)``, on a single input stream.

    Equations (``golden.sdsa``; q, k, v spikes, dh = ``head_dim``)::

        load  (k, v):  KV[i, j] = (after a query ? 0 : KV[i, j]) + (k[i] AND v[j])   Wkv bits, 0 .. L
        query (q):     y[j]     = sum_i q[i] KV[i, j]                                Wy bits, 0 .. L dh

    Protocol (that of ``rtl.wta_attention.WTAAttention``): a sequence is L ``load`` beats (K row
    n and V row n, n = 0 .. L - 1, in order) followed by its query beats (Q row n; L of them
    for self-attention). A load beat after a query starts the next sequence: that load clears
    KV as it adds its own outer product. Each query produces one output beat. KV is zero after
    reset. A sequence must not hold more than L loads (the counters would wrap).

    Datapath: KV is dh x dh registers of Wkv = ``spec.kv_width`` bits (not a memory: a load
    beat updates all of them in its own cycle, one incrementer each). A query sums the KV
    rows its set bits select, lane-parallel: in step g = 0 .. G - 1 (G = ceil(dh / P)) lanes
    p = 0 .. P - 1 take row i = g P + p (masked by q[i]; rows past dh are zeros), an adder
    tree of P terms per column j adds them to the accumulator, dh columns in parallel. Step 0
    uses the beat's own Q row in the accept cycle; steps 1 .. G - 1 use the registered row and
    a G-way row multiplexer. The last step writes acc + partial into the output register.

    Why lane-parallel rather than event-driven (one set bit of q after the other): a query's
    cycle count is G whatever its spikes, so a whole head's cycles follow from the sizes
    alone, and no priority encoder sits in the accept-to-sum path; P sets the trade between
    adders and cycles (P = dh: one query a cycle).

    Latency and throughput
    ----------------------
    * Load beats: one per cycle (``i_stream.ready`` is high whenever no query is in flight).
    * A query accepted in cycle c has its output valid in cycle c + G (``latency(spec)``):
      steps 0 .. G - 1 in cycles c .. c + G - 1, the output register written at the end of
      the last.
    * The next beat (query or load) is accepted in cycle c + G at the earliest
      (``query_interval(spec)`` = G): one query every G cycles, the cycle its predecessor's
      output appears. A head of L loads and Lq queries with no stalls: its last output is in
      cycle L + Lq G (the first load in cycle 0); at Matterhorn's size (L = Lq = 16,
      dh = 16, P = 4: G = 4) that is cycle 16 + 64 = 80.
    * Back-pressure: ``i_stream.ready`` is a function of registers only (the state). If the
      output register is full and not taken at a query's last step, the result waits in the
      accumulator (state HOLD, ``i_stream.ready`` low) until it is; nothing is lost, and at
      most two results are in the unit (the output register and the accumulator).

    Members
    -------
    i_stream : In(stream.Signature(sdsa_input_layout(spec)))
    o_stream : Out(stream.Signature(sdsa_output_layout(spec)))
    """

    def __init__(self, spec: SDSASpec):
        if not isinstance(spec, SDSASpec):
            self._MustUse__silence = True      # a refused object is never elaborated: no warning
            raise TypeError(f"SDSAttention needs an SDSASpec, got {type(spec).__name__}")
        self.spec = spec
        super().__init__({
            "i_stream": In(stream.Signature(sdsa_input_layout(spec))),
            "o_stream": Out(stream.Signature(sdsa_output_layout(spec))),
        })

    @staticmethod
    def latency(spec: SDSASpec) -> int:
        """Cycles from a query's accept to its output beat: G = ceil(dh / P)."""
        return spec.groups

    @staticmethod
    def query_interval(spec: SDSASpec) -> int:
        """Cycles from a query's accept to the next accept, without back-pressure: G."""
        return spec.groups

    @staticmethod
    def load_interval(spec: SDSASpec) -> int:
        """Cycles from a load's accept to the next accept: 1."""
        return 1

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        d, lanes, groups = spec.head_dim, spec.lanes, spec.groups
        wkv, wy = spec.kv_width, spec.out_width
        payload = self.i_stream.payload

        kv = [[Signal(unsigned(wkv), name=f"kv{i}_{j}") for j in range(d)] for i in range(d)]
        querying = Signal(name="querying")       # the last beat accepted was a query: a load clears KV
        q_reg = Signal(d, name="q_reg")          # the Q row of the query in flight (steps 1 .. G - 1)
        step = Signal(range(max(groups, 2)), name="step")   # 0 while idle
        acc = [Signal(unsigned(wy), name=f"acc{j}") for j in range(d)]

        idle = Signal(name="idle")
        m.d.comb += self.i_stream.ready.eq(idle)
        accept = self.i_stream.valid & idle
        out_free = ~self.o_stream.valid | self.o_stream.ready
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)

        # ---- load: every counter adds k[i] AND v[j] in the accept cycle
        with m.If(accept & (payload.kind == KIND_LOAD)):
            m.d.sync += querying.eq(0)
            for i in range(d):
                for j in range(d):
                    m.d.sync += kv[i][j].eq(Mux(querying, 0, kv[i][j]) + (payload.qk[i] & payload.v[j]))

        # ---- query: step g sums the KV rows g P + p selected by q (P lanes, one adder tree per column)
        q_bits = Mux(idle, payload.qk.as_value(), q_reg)
        lane_rows, lane_bits = [], []
        for p in range(lanes):
            rows = [Cat(*kv[g * lanes + p]) if g * lanes + p < d else 0 for g in range(groups)]
            bits = [q_bits[g * lanes + p] if g * lanes + p < d else 0 for g in range(groups)]
            row = Signal(d * wkv, name=f"lane{p}_row")
            bit = Signal(name=f"lane{p}_q")
            if groups > 1:
                m.d.comb += [row.eq(Array(rows)[step]), bit.eq(Array(bits)[step])]
            else:
                m.d.comb += [row.eq(rows[0]), bit.eq(bits[0])]
            lane_rows.append(row)
            lane_bits.append(bit)
        total = [Signal(unsigned(wy), name=f"total{j}") for j in range(d)]
        for j in range(d):
            terms = [Mux(lane_bits[p], lane_rows[p][j * wkv:(j + 1) * wkv], 0) for p in range(lanes)]
            col = Signal(unsigned(wy), name=f"partial{j}")
            m.d.comb += [col.eq(tree_sum(terms)), total[j].eq(Mux(idle, 0, acc[j]) + col)]

        def finish(values):
            """The query's last step: the output register if it is free, else the accumulator (HOLD)."""
            m.d.sync += step.eq(0)
            with m.If(out_free):
                m.d.sync += self.o_stream.valid.eq(1)
                m.d.sync += [self.o_stream.payload.out[j].eq(values[j]) for j in range(d)]
                m.next = "IDLE"
            with m.Else():
                m.d.sync += [acc[j].eq(values[j]) for j in range(d)]
                m.next = "HOLD"

        with m.FSM(name="fsm"):
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(accept & (payload.kind == KIND_QUERY)):
                    m.d.sync += [querying.eq(1), q_reg.eq(payload.qk.as_value())]
                    if groups == 1:
                        finish(total)
                    else:
                        m.d.sync += [acc[j].eq(total[j]) for j in range(d)]
                        m.d.sync += step.eq(1)
                        m.next = "SUM"
            if groups > 1:
                with m.State("SUM"):
                    with m.If(step == groups - 1):
                        finish(total)
                    with m.Else():
                        m.d.sync += [acc[j].eq(total[j]) for j in range(d)]
                        m.d.sync += step.eq(step + 1)
            with m.State("HOLD"):
                with m.If(out_free):
                    m.d.sync += self.o_stream.valid.eq(1)
                    m.d.sync += [self.o_stream.payload.out[j].eq(acc[j]) for j in range(d)]
                    m.next = "IDLE"
        return m


# ---------------------------------------------------------------------------
# Beats <-> golden arrays (used by the Amaranth tests, the cocotb bench and the registry)


def sdsa_input_beats(spec: SDSASpec, q, k, v) -> list[dict]:
    """Golden q (S, Lq, dh), k and v (S, L, dh) -> per sequence L load beats, then Lq query beats."""
    return sequence_beats(spec, q, k, v)


def sdsa_expected_beats(spec: SDSASpec, y) -> list[dict]:
    """Golden y (S, Lq, dh) -> one output beat per query, in stream order."""
    if y.ndim != 3 or y.shape[2] != spec.head_dim:
        raise ValueError(f"SDSA vectors: 'y' has shape {tuple(y.shape)}, expected (sequences, queries, "
                         f"{spec.head_dim})")
    return sdsa_beat_outputs(spec, y.reshape(-1, spec.head_dim))


def sdsa_beat_outputs(spec: SDSASpec, rows) -> list[dict]:
    """Output rows (Q, dh) -> output beats."""
    return [{"out": [int(x) for x in row]} for row in rows.tolist()]


def sdsa_beat_stream(spec: SDSASpec, beats) -> tuple[list[dict], list[dict]]:
    """Beats in any order the protocol allows -> (input payloads, expected output beats), from
    ``golden.sdsa.sdsa_run_beats``."""
    payloads = sdsa_normalize_beats(spec, beats)
    return payloads, sdsa_beat_outputs(spec, sdsa_run_beats(spec, payloads))


def sdsa_stream_from_vectors(vectors) -> tuple[SDSASpec, list[dict], list[dict]]:
    """An SDSA vector set (``golden.sdsa.sdsa_reference``: q, k, v, kv, y) -> (spec, input beats,
    expected output beats) for a component built with ``SDSAttention(spec)``."""
    spec = SDSASpec.from_dict(vectors.spec)
    arrays = vectors.arrays
    for name in ("q", "k", "v", "y"):
        if name not in arrays:
            raise ValueError(f"SDSA vectors have no {name!r} array; they have {', '.join(sorted(arrays))}")
    q, y = arrays["q"], arrays["y"]
    if q.ndim != 3 or tuple(y.shape) != tuple(q.shape):
        raise ValueError(f"SDSA vectors: 'y' has shape {tuple(y.shape)}, 'q' has {tuple(q.shape)} "
                         f"(one output row per query row)")
    return spec, sdsa_input_beats(spec, q, arrays["k"], arrays["v"]), sdsa_expected_beats(spec, y)
