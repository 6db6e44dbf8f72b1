"""Exact cycle counts of every hardware block on a given input, from the golden side only.

One estimator per block of the registry (``spikeforge blocks``), named after it:
``lif_timing`` (``rtl/lif.py``), ``synapse_timing`` (``rtl/synapse.py``), ``mac_timing``
(``rtl/mac.py``), ``topk_timing`` (``rtl/topk.py``), ``wta_timing`` (``rtl/wta_attention.py``),
``mtts_timing`` (``rtl/mtts.py``), ``window_timing`` (``rtl/window.py``), ``alif_timing``
(``rtl/alif.py``), ``sdsa_timing`` (``rtl/sdsa.py``). Each takes the block's
spec and its golden input (or, for the data-dependent units, the event counts of the golden run)
and returns a ``BlockTiming``: the cycle of every input handshake and of every output handshake.
Nothing here imports Amaranth; ``tests/test_estimate.py`` checks every estimate ``==`` the RTL in
Amaranth's simulator (``rtl.pysim.run_stream``), handshake by handshake.

What "cycles" means
-------------------
The conditions are those of the component docstrings' "no back-pressure" figures: the input
stream offers its next beat in every cycle (valid always high) and the output stream takes a
beat in every cycle (ready always high). Cycles are numbered from the first input handshake
(cycle 0; ``run_stream`` numbers the same way, and every block is ready at reset). Then::

    cycles = c_out_last - c_in_first + 1

the clock cycles from the one in which the first input beat is taken to the one in which the
last output beat is taken, both counted. A beat "taken in cycle c" has valid and ready high
during cycle c, the transfer happening on the edge that ends it.

Per block (k the beat index, all counts from the golden input)
--------------------------------------------------------------
* LIF array (latency 4): beat k of group g_k is taken at
  ``a_k = max(a_(k-1) + 1, a_j + 3)`` (j the previous beat of g_k; cyclic order unless
  addressed), its output at ``a_k + 4``: 1 beat a cycle for G >= 3, (1, 2) gaps for G = 2,
  3 cycles a beat for G = 1.
* Synapse engine (L = read latency: 2 precomputed, 3 table, 15 regenerate): WRITE 1 cycle,
  SPIKE G cycles, STEP ``G + L + 1`` cycles with current beat g at ``c + L + 2 + g``:
  a step of k spikes takes ``k G + G + L + 1`` cycles.
* MAC engine: WRITE_W / WRITE_B 1 cycle, EVENT(groups) ``groups`` cycles, STEP(groups)
  ``groups + 3`` cycles with output beat g at ``c + 6 + g``.
* Top-k, ``stream``: score j of row r taken at ``r L + j``, the row's beat at ``(r + 1) L``;
  ``parallel``: row r taken at r, its beat at ``r + S + 2`` (S = log2 N (log2 N + 1) / 2,
  N = 2^ceil(log2 L)).
* WTA attention (I = G_w + k + 5, G_w = ceil(L / P)): a load beat takes 1 cycle; a query taken
  at c has its output at ``c + I``, and the next beat is taken in that same cycle.
* MTTS encoder (latency 1): beat k at k, its output at ``k + 1``.
* Dilated window buffer: position n (maps back to back) taken at n, its window at
  ``n + lead + 1`` (lead = R W + R in 2-D, R in 1-D, R = w max(d)).
* ALIF array (latency 5, ``alif_timing``): the G WRITEs that load theta_n / b_n take a cycle
  each; update k of group g_k at ``a_k = max(a_(k-1) + 1, a_j + 4)``, its output at ``a_k + 5``:
  1 update a cycle for G >= 4, G every 4 cycles for G < 4.
* Spike-driven self-attention unit (``sdsa_timing``; I = G = ceil(dh / P)): a load beat takes
  1 cycle; a query taken at c has its output at ``c + I``, and the next beat is taken in that
  same cycle (the WTA unit's pattern with its own I).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from golden.alif import ALIFSpec
from golden.layernorm import LayerNormSpec
from golden.lif import LIFSpec
from golden.mac import EVENT, STEP, MACSpec, check_commands
from golden.sdsa import SDSASpec
from golden.mtts import MTTSSpec
from golden.synapse import SynapseSpec
from golden.window import WindowSpec
from golden.wta import TopKSpec, WTASpec

# LIF array: a beat's output comes ``spec.latency`` cycles after its accept (4, or 5 with the
# run-time multiply leak); a beat of the same group may be accepted ``spec.pipeline_stages``
# cycles after the previous one (it passes the stages M, A (, P), then writes on the edge that
# ends the last) -- ``golden.lif.LIFSpec``, ``rtl.lif.LIFArray``
#: MAC engine: STEP accept -> first output beat (``rtl.mac.STEP_LATENCY``)
MAC_STEP_LATENCY = 6
#: MAC engine: input cycles of a STEP beyond its groups (``rtl.mac.STEP_OVERHEAD``)
MAC_STEP_OVERHEAD = 3
#: synapse engine: the weight memory's read latency L per mismatch implementation
#: (``rtl.logmem.read_latency``: the memory and an output register; the memories and two apply
#: stages; the memory, eight hash adder stages, four normal stages and two apply stages)
SYNAPSE_READ_LATENCY = {"precomputed": 2, "table": 1 + 2, "regenerate": 1 + 8 + 4 + 2}
#: top-k stream version: the row's last score -> its output beat (``rtl.topk.TopK.LATENCY_STREAM``)
TOPK_STREAM_LATENCY = 1
#: MTTS encoder: one register stage (``rtl.mtts``)
MTTS_LATENCY = 1


@dataclass
class BlockTiming:
    """When each beat crosses a block's streams, with no stalls (module docstring).

    Attributes
    ----------
    accept_cycles : cycle of every input handshake, in stream order (the first is 0).
    output_cycles : cycle of every output handshake, in stream order.
    counters : per output beat, the values of hardware counters the beat carries (the
        synapse engine's ``sops`` and ``reads``); empty for blocks without counters.
    """

    accept_cycles: list[int]
    output_cycles: list[int]
    counters: dict[str, list[int]] = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        """``c_out_last - c_in_first + 1`` (0 for an empty stream)."""
        if not self.output_cycles:
            return 0
        return self.output_cycles[-1] - self.accept_cycles[0] + 1


# ---- LIF array ------------------------------------------------------------------------------------

def lif_timing(spec: LIFSpec, n_beats: int | None = None, groups: Sequence[int] | None = None) -> BlockTiming:
    """LIF array: ``n_beats`` beats in cyclic group order, or the beats' ``groups`` (addressed).

    ``a_0 = 0``, ``a_k = max(a_(k-1) + 1, a_j + S)`` with j the last beat before k of the same
    group and S = ``spec.pipeline_stages`` (3, or 4 with the run-time multiply leak: the stall rule
    of ``rtl.lif.LIFArray``), output ``o_k = a_k + S + 1``.
    """
    if groups is None:
        if n_beats is None:
            raise ValueError("lif_timing needs n_beats or groups")
        groups = [k % spec.groups for k in range(n_beats)]
    else:
        groups = [int(g) for g in groups]
        if not spec.addressed and groups != [k % spec.groups for k in range(len(groups))]:
            raise ValueError("a LIF array that is not addressed takes its groups in cyclic order")
        if any(not 0 <= g < spec.groups for g in groups):
            raise ValueError(f"LIF groups must lie in 0 .. {spec.groups - 1}")
    accepts: list[int] = []
    last: dict[int, int] = {}
    for g in groups:
        a = accepts[-1] + 1 if accepts else 0
        if g in last:
            a = max(a, last[g] + spec.pipeline_stages)
        accepts.append(a)
        last[g] = a
    return BlockTiming(accepts, [a + spec.latency for a in accepts])


# ---- ALIF array ------------------------------------------------------------------------------------

def alif_timing(spec: ALIFSpec, kinds: Sequence[int], groups: Sequence[int]) -> BlockTiming:
    """ALIF array (``rtl.alif.ALIFArray``): beat k of kind ``kinds[k]`` (0 update, 1 WRITE) and group
    ``groups[k]`` (for updates: the cyclic order unless addressed). ``a_0 = 0``; a WRITE at
    ``a_(k-1) + 1``; an update at ``max(a_(k-1) + 1, a_j + 4)`` (j the previous update of its group),
    its output at ``a_k + 5``."""
    accepts: list[int] = []
    outputs: list[int] = []
    last: dict[int, int] = {}
    for kind, g in zip(kinds, groups):
        a = accepts[-1] + 1 if accepts else 0
        if int(kind) == 0:
            if int(g) in last:
                a = max(a, last[int(g)] + spec.pipeline_stages)
            last[int(g)] = a
            outputs.append(a + spec.latency)
        accepts.append(a)
    return BlockTiming(accepts, outputs)


# ---- synapse engine -------------------------------------------------------------------------------

def synapse_read_latency(spec: SynapseSpec) -> int:
    """L of the weight memory (``SYNAPSE_READ_LATENCY``)."""
    return SYNAPSE_READ_LATENCY[spec.mismatch_impl]


def synapse_timing(spec: SynapseSpec, spike_counts: Iterable[int], load_words: int = 0) -> BlockTiming:
    """Synapse engine: ``load_words`` WRITE beats, then per time step its k spikes and a STEP.

    ``spike_counts``: k of every step in stream order (the golden input's nonzero count per
    step). Counters on each output beat (``sops`` += P per word added, ``reads`` += 1 per word
    read, modulo 2^Wc) are the totals up to and including the beat's step::

        sops = P G sum k = n_outputs sum k,   reads = G sum k
    """
    g, lat, lanes = spec.groups, synapse_read_latency(spec), spec.lanes
    modulus = 1 << spec.counter_width
    accepts = list(range(load_words))
    c = load_words
    outputs: list[int] = []
    sops: list[int] = []
    reads: list[int] = []
    spikes_so_far = 0
    for k in spike_counts:
        k = int(k)
        if k < 0:
            raise ValueError(f"spike counts must be >= 0, got {k}")
        for _ in range(k):
            accepts.append(c)
            c += g
        spikes_so_far += k
        accepts.append(c)                                     # the STEP
        outputs += [c + lat + 2 + j for j in range(g)]
        sops += [(spikes_so_far * g * lanes) % modulus] * g
        reads += [(spikes_so_far * g) % modulus] * g
        c += g + lat + 1
    return BlockTiming(accepts, outputs, {"sops": sops, "reads": reads})


def synapse_step_counts(spikes) -> list[int]:
    """Golden spikes (S, T, n_inputs) -> the spike count of every step, in stream order."""
    return [int(x) for x in (spikes != 0).sum(-1).reshape(-1).tolist()]


# ---- MAC engine -----------------------------------------------------------------------------------

def mac_timing(spec: MACSpec, commands, load_words: int = 0) -> BlockTiming:
    """MAC engine: ``load_words`` WRITE_W / WRITE_B beats, then the golden ``commands``.

    Input cycles: WRITE 1, EVENT(G) G, STEP(G) G + 3; a STEP taken at c has beat g at c + 6 + g.
    """
    accepts = list(range(load_words))
    c = load_words
    outputs: list[int] = []
    for cmd in check_commands(spec, commands):
        accepts.append(c)
        if cmd.kind == EVENT:
            c += cmd.groups
        elif cmd.kind == STEP:
            outputs += [c + MAC_STEP_LATENCY + j for j in range(cmd.groups)]
            c += cmd.groups + MAC_STEP_OVERHEAD
        else:
            c += 1
    return BlockTiming(accepts, outputs)


# ---- top-k unit -----------------------------------------------------------------------------------

def topk_network_stages(spec: TopKSpec) -> int:
    """S = log2 N (log2 N + 1) / 2 comparator columns of the bitonic network, N = 2^ceil(log2 L)."""
    log_n = max(0, (spec.length - 1).bit_length())
    return log_n * (log_n + 1) // 2


def topk_timing(spec: TopKSpec, rows: int) -> BlockTiming:
    """Top-k unit on ``rows`` rows of L scores (stream: L beats a row; parallel: one beat a row)."""
    length = spec.length
    if spec.version == "stream":
        accepts = list(range(rows * length))
        outputs = [(r + 1) * length - 1 + TOPK_STREAM_LATENCY for r in range(rows)]
    else:
        accepts = list(range(rows))
        outputs = [r + topk_network_stages(spec) + 2 for r in range(rows)]
    return BlockTiming(accepts, outputs)


# ---- WTA attention unit ---------------------------------------------------------------------------

def wta_query_interval(spec: WTASpec) -> int:
    """I = G_w + k + 5: a query's latency and the interval to the next beat."""
    return spec.groups + spec.top_k + 5


def load_query_timing(length: int, interval: int, queries: Sequence[int]) -> BlockTiming:
    """An attention unit's stream: per sequence ``length`` load beats (one a cycle), then
    ``queries[s]`` query beats, each ``interval`` cycles (its latency and the interval to the next
    beat)."""
    accepts: list[int] = []
    outputs: list[int] = []
    c = 0
    for lq in queries:
        for _ in range(length):
            accepts.append(c)
            c += 1
        for _ in range(int(lq)):
            accepts.append(c)
            c += interval
            outputs.append(c)
    return BlockTiming(accepts, outputs)


def wta_timing(spec: WTASpec, queries: Sequence[int]) -> BlockTiming:
    """WTA attention unit: per sequence L load beats, then ``queries[s]`` query beats."""
    return load_query_timing(spec.length, wta_query_interval(spec), queries)


# ---- spike-driven self-attention unit -------------------------------------------------------------

def sdsa_timing(spec: SDSASpec, queries: Sequence[int]) -> BlockTiming:
    """Spike-driven self-attention unit (``rtl.sdsa.SDSAttention``): per sequence L load beats (one a
    cycle), then ``queries[s]`` query beats, each G = ceil(dh / P) cycles (its latency and the
    interval to the next beat)."""
    return load_query_timing(spec.length, spec.groups, queries)


# ---- MTTS encoder and window buffer ---------------------------------------------------------------

def mtts_timing(spec: MTTSSpec, beats: int) -> BlockTiming:
    """MTTS encoder: one beat of P values a cycle, latency 1."""
    return BlockTiming(list(range(beats)), [k + MTTS_LATENCY for k in range(beats)])


def window_timing(spec: WindowSpec, maps: int) -> BlockTiming:
    """Dilated window buffer: ``maps`` maps back to back, one position a cycle, fill lead + 1."""
    n = maps * spec.positions if spec.dims == 2 else maps * spec.width
    return BlockTiming(list(range(n)), [k + spec.lead + 1 for k in range(n)])


def layernorm_timing(spec: LayerNormSpec, tokens: int) -> BlockTiming:
    """Layer norm unit (``rtl.layernorm.LayerNorm``): D PARAM beats (one a cycle), then per token D
    DATA beats back to back, D (Nx + 8) + Ns + N2 + K + 7 cycles apart; channel i of a token
    leaves Ns + D + N2 + K + Nx + 13 + i (Nx + 6) cycles after its last DATA beat
    (Ns, N2, Nx: the divider's numerator widths, K = Wi + 1 root bits)."""
    d, k = spec.dim, spec.input_width + 1
    ns, n2, nx = spec.sum_width, spec.square_sum_width, spec.product_width
    period, lead, step = d * (nx + 8) + ns + n2 + k + 7, ns + d + n2 + k + nx + 13, nx + 6
    accepts = list(range(d))
    outputs = []
    for t in range(tokens):
        first = d + t * period
        accepts.extend(first + i for i in range(d))
        outputs.extend(first + d - 1 + lead + i * step for i in range(d))
    return BlockTiming(accepts, outputs)


# ---- from a block's golden vector arrays ----------------------------------------------------------

def block_timing(name: str, spec, arrays) -> BlockTiming:
    """The estimate for a registry block from the golden arrays of its vector file.

    ``arrays``: name -> array, as ``spikeforge vectors BLOCK`` writes them (and the registry's
    ``make_vectors`` returns them). The stream is the one the registry's ``stream_from_vectors``
    builds: the synapse and MAC streams first load their memories through their write ports.
    """
    import numpy as np

    def arr(key):
        value = arrays[key]
        return value.numpy() if hasattr(value, "numpy") else np.asarray(value)

    if name == "lif":
        if "current" in arrays:                   # a beat-level file, any group order when addressed
            n = arr("current").shape[0]
            return lif_timing(spec, groups=arr("group").tolist()) if spec.addressed else lif_timing(spec, n)
        s, t, _ = arr("currents").shape
        return lif_timing(spec, s * t * spec.groups)
    if name == "synapse":
        return synapse_timing(spec, synapse_step_counts(arr("spikes")), load_words=spec.n_inputs * spec.groups)
    if name == "mac":
        from golden.mac import commands_from_array

        return mac_timing(spec, commands_from_array(spec, arr("commands")),
                          load_words=arr("weights").shape[0] + arr("biases").shape[0])
    if name == "topk":
        s, r, _ = arr("scores").shape
        return topk_timing(spec, s * r)
    if name == "wta":
        q = arr("q")
        return wta_timing(spec, [q.shape[1]] * q.shape[0])
    if name == "mtts":
        return mtts_timing(spec, arr("values").shape[0])
    if name == "window":
        return window_timing(spec, arr("maps").shape[0])
    if name == "layernorm":
        return layernorm_timing(spec, arr("u").shape[0])
    if name == "alif":
        if "current" in arrays:                   # a beat-level file: its beats after the loads of its init
            lanes = spec.lanes
            init = arr("init_theta").reshape(-1, lanes)
            loads = int((init.min(axis=1) >= 1).sum())
            return alif_timing(spec, [1] * loads + arr("kind").tolist(), [0] * loads + arr("group").tolist())
        s, t, _ = arr("currents").shape
        n = s * t * spec.groups
        return alif_timing(spec, [1] * spec.groups + [0] * n,
                           list(range(spec.groups)) + [k % spec.groups for k in range(n)])
    if name == "sdsa":
        q = arr("q")
        return sdsa_timing(spec, [q.shape[1]] * q.shape[0])
    raise KeyError(f"no cycle estimator for block {name!r}; known: lif, synapse, mac, topk, wta, mtts, window, alif, "
                   f"sdsa")
