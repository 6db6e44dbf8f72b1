"""The core's hardware spec and the layer program a compiled model runs on it.

A model reaches the core as a ``CoreProgram``: a list of layer operations over named
activation buffers, the weight and bias memory images, and the names of the golden
tensors each operation must reproduce. ``CoreSpec`` is the hardware the program runs
on (lanes, memory depths, widths, which units exist); ``CoreSpec.for_program`` derives
the smallest one that holds a program, and ``check_fits`` refuses a program that a given
spec cannot hold, naming the memory and both sizes. Nothing here imports Amaranth:
``estimate/`` and the command line use it without the RTL.

Operations (executed in order, each over all its rows and time steps before the next)
-------------------------------------------------------------------------------------
``LinearOp`` -- the time-shared multiply-accumulate engine (``golden/mac.py``), optionally
followed by the LIF array (``golden/lif.py``, addressed beats with run-time parameters)::

    for t in 0 .. T-1:                        (reduce_time: for r outer, t inner, one STEP per r)
      for r in 0 .. R-1:
        x      = src[t R + r]   (src[r] when the source is static, e.g. pixels or tokens)
        acc    = sum over i with x_i != 0 of x_i W[i, :]       (ascending i; exact)
        c      = sat_Wo((acc >> shift) + b)
        s      = LIF(c) with state (r, :), first = (t == 0)        if lif
        dst[t R + r] = s  or  dst[t R + r] + s  (accumulate: residual sums)

A token source (``src = "tokens"``) makes the two events (tok_r, 1) and (V + r, 1): the
weight rows are the embedding table followed by the position table, so the MAC's row
read *is* the embedding ROM lookup ``E[tok] + Pos[r]``.

The neurons of a linear op are one of (``LinearOp.neuron``):

* ``"lif"``: the LIF array (``op.lif``, run-time threshold / leak / reset);
* ``"alif"``: the adaptive-threshold LIF array (``op.alif``, a ``golden.alif.QuantALIF``:
  per-neuron theta_n and b_n, and the frozen noise pattern e[t, r, n] of the variation
  model, ``op.noise``), ``s = ALIF(c + e)``;
* ``"mtts"``: the MTTS encoder (``op.mtts``), stateless: ``c`` is clamped to the encoder's
  range [lo, hi] (that code is the op's current tap) and ``s_t = mtts_spikes(code)[t]``;
* ``None``: a readout, no neurons.

Two source options serve the patch-wise vision layers:

* ``row_masks`` (R, n_in) bool: row r reads only the channels its mask selects (a stem with
  one weight per token position reads token r's patch out of the whole image: weight row i
  of pixel i is that of its token and place in the patch);
* ``row_banks`` (R,) ints: row r's input i uses weight row ``bank_r n_in + i`` (a pooled
  readout: token r's spikes meet the weights of its pooling region), with
  ``reduce_rows`` (one STEP after the last row: the sum over time *and* rows).

``SDSAOp`` -- the spike-driven attention unit (``golden/sdsa.py``), one head at a time, the
same sequence of loads and queries as below: ``dst[t L + i, h] = q_i (K^T V)`` (integers).

``AttentionOp`` -- the WTA attention unit (``golden/wta.py``), one head at a time::

    for t in 0 .. T-1:  for h in 0 .. H-1:
        load (K[t L + j, h], V[t L + j, h]) for j = 0 .. L-1;  query Q[t L + i, h] for i = 0 .. L-1
        dst[t L + i, h] = out_i         (F-bit fixed point; the index/valid of the winners are tapped)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import fixed
from ..alif import ALIFSpec, QuantALIF
from ..lif import LIFSpec
from ..mtts import MTTSSpec
from ..sdsa import SDSASpec
from ..spec import SpecBase, SpecError, check_bool, check_int
from ..wta import WTASpec

#: the only operation kinds the core has
OP_KINDS = ("linear", "attention", "sdsa")
#: the neurons a linear op can end in (None: a readout)
NEURON_KINDS = ("lif", "alif", "mtts")


@dataclass(frozen=True)
class Buffer:
    """An activation memory: ``rows`` words of ``channels`` values, each ``width`` bits."""

    name: str
    rows: int
    channels: int
    width: int
    signed: bool = False

    @property
    def bits(self) -> int:
        return self.rows * self.channels * self.width

    def check(self, values: torch.Tensor, what: str) -> torch.Tensor:
        return fixed.check_range(values, self.width, self.signed, f"{what} (buffer {self.name})")


@dataclass
class LinearOp:
    """One linear layer (+ LIF) on the MAC engine; see the module docstring."""

    name: str
    src: str                   # buffer name, or "tokens"
    dst: str | None            # buffer name; None: the results leave on the host stream (logits)
    rows: int                  # R positions
    steps: int                 # T time steps
    weight: torch.Tensor       # (n_rows, n_out) int64: input row i is weight[i]
    bias: torch.Tensor         # (n_out,) int64 (T b for a readout that sums over time)
    shift: int                 # input fraction bits: c = (acc >> shift) + b
    lif: LIFSpec | None        # the layer's neurons (None: a readout)
    static_src: bool = False   # the same source row at every time step
    accumulate: bool = False   # dst += spikes (a residual sum)
    reduce_time: bool = False  # sum over t before the STEP (readouts)
    #: golden tensors (names in forward_layers) this op must reproduce
    currents_tensor: str | None = None
    out_tensor: str | None = None
    sum_tensor: str | None = None
    kind: str = "linear"
    alif: QuantALIF | None = None          # adaptive-threshold neurons (instead of lif)
    noise: torch.Tensor | None = None      # (T, R, n_out) int64: the ALIF's frozen noise e
    mtts: MTTSSpec | None = None           # MTTS encoder neurons (instead of lif)
    row_masks: torch.Tensor | None = None  # (R, n_in) bool: the channels row r reads
    row_banks: tuple | None = None         # (R,) weight bank of each row
    reduce_rows: bool = False              # with reduce_time: also sum over the rows (one STEP)

    def __post_init__(self):
        kinds = [k for k in NEURON_KINDS if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise SpecError(f"layer {self.name}: one kind of neuron per op; got {', '.join(kinds)}")
        if self.reduce_rows and not self.reduce_time:
            raise SpecError(f"layer {self.name}: reduce_rows needs reduce_time (a readout)")
        if self.row_banks is not None:
            banks = max(self.row_banks) + 1
            if len(self.row_banks) != self.rows or min(self.row_banks) < 0 or self.weight.shape[0] % banks:
                raise SpecError(f"layer {self.name}: row_banks must give each of the {self.rows} rows a bank "
                                f"0 .. {banks - 1} of weight rows {tuple(self.weight.shape)}")
        if self.row_masks is not None and tuple(self.row_masks.shape) != (self.rows, self.n_in):
            raise SpecError(f"layer {self.name}: row_masks must have shape ({self.rows}, {self.n_in}); got "
                            f"{tuple(self.row_masks.shape)}")

    @property
    def neuron(self) -> str | None:
        return next((k for k in NEURON_KINDS if getattr(self, k) is not None), None)

    @property
    def banks(self) -> int:
        return 1 if self.row_banks is None else max(self.row_banks) + 1

    @property
    def n_in(self) -> int:
        """Inputs of a source row (a bank's weight rows)."""
        return int(self.weight.shape[0]) // self.banks

    @property
    def weight_rows(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[1])

    def bank_weights(self) -> torch.Tensor:
        """(R, n_in, n_out): the weight rows each source row meets."""
        w = self.weight.to(torch.int64).reshape(self.banks, self.n_in, self.n_out)
        banks = torch.tensor(self.row_banks if self.row_banks is not None else [0] * self.rows)
        return w[banks]


@dataclass
class AttentionOp:
    """WTA self-attention over the heads of Q, K, V buffers; see the module docstring."""

    name: str
    q: str
    k: str
    v: str
    dst: str
    heads: int
    steps: int
    wta: WTASpec               # one head (heads = 1), the unit's spec
    index_tensor: str | None = None
    valid_tensor: str | None = None
    out_tensor: str | None = None
    kind: str = "attention"


@dataclass
class SDSAOp:
    """Spike-driven attention q (K^T V) over the heads of Q, K, V spike buffers (module docstring)."""

    name: str
    q: str
    k: str
    v: str
    dst: str
    heads: int
    steps: int
    sdsa: SDSASpec             # one head, the unit's spec
    out_tensor: str | None = None
    kind: str = "sdsa"


@dataclass(frozen=True)
class CoreSpec(SpecBase):
    """The hardware of the neuromorphic core (``rtl.core.NeuroCore(spec, program)``).

    Attributes
    ----------
    lanes : P, multiply-accumulate lanes = LIF lanes (outputs updated per cycle), 1 .. 64.
    wta_lanes : P_w, score lanes of the WTA attention unit, 1 .. 64.
    sdsa_lanes : P_s, KV rows the spike-driven attention unit adds per cycle, 1 .. 64 (at
        most a head's width).
    weight_depth : words of P weights in the weight memory.
    bias_depth : words of P biases.
    lif_neurons : neurons of the LIF state memory (one layer's R x n_out at a time).
    alif_neurons : neurons of the adaptive-LIF state and parameter memories (every ALIF
        layer has a region of R x n_out of its own: its theta_n and b_n are in the image).
    noise_depth : words of P noise values in the ALIF noise memory (T x R x G per layer).
    noise_width : signed bits of a noise value e.
    weight_width, value_width, acc_width, bias_width : bits of a weight, an event value,
        the exact accumulator and a bias (all signed).
    current_width : Wo, bits of the saturated current (= the LIF input width).
    membrane_width : Wv of the LIF array.
    debug_taps : every layer's output also leaves on the host stream (for the proof).
    fifo_depth : depth of each output FIFO (the core freezes while one is full).
    """

    block = "core"

    lanes: int = 8
    wta_lanes: int = 4
    sdsa_lanes: int = 4
    weight_depth: int = 4096
    bias_depth: int = 256
    lif_neurons: int = 4096
    alif_neurons: int = 1
    noise_depth: int = 1
    noise_width: int = 2
    weight_width: int = 8
    value_width: int = 8
    acc_width: int = 32
    bias_width: int = 24
    current_width: int = 24
    membrane_width: int = 24
    debug_taps: bool = True
    fifo_depth: int = 16

    def __post_init__(self):
        name = "CoreSpec"
        check_int(name, "lanes", self.lanes, 1, 64)
        check_int(name, "wta_lanes", self.wta_lanes, 1, 64)
        check_int(name, "sdsa_lanes", self.sdsa_lanes, 1, 64)
        check_int(name, "weight_depth", self.weight_depth, 1, 1 << 20)
        check_int(name, "bias_depth", self.bias_depth, 1, 1 << 16)
        check_int(name, "lif_neurons", self.lif_neurons, 1, 1 << 20)
        check_int(name, "alif_neurons", self.alif_neurons, 1, 1 << 20)
        check_int(name, "noise_depth", self.noise_depth, 1, 1 << 20)
        check_int(name, "noise_width", self.noise_width, 2, 40)
        check_int(name, "weight_width", self.weight_width, 2, 32)
        check_int(name, "value_width", self.value_width, 2, 16)
        check_int(name, "acc_width", self.acc_width, 2, 48)
        check_int(name, "bias_width", self.bias_width, 2, 48)
        check_int(name, "current_width", self.current_width, 2, 32)
        check_int(name, "membrane_width", self.membrane_width, 2, 32)
        check_bool(name, "debug_taps", self.debug_taps)
        check_int(name, "fifo_depth", self.fifo_depth, 2, 1024)


@dataclass
class CoreProgram:
    """A compiled model: buffers, operations, memory images, the input and output formats."""

    model: str                          # recipe / class name
    input_kind: str                     # "pixels" or "tokens"
    input_buffer: Buffer                # where the host's sample goes (tokens: 1 channel of ids)
    buffers: dict[str, Buffer]
    ops: list                           # LinearOp | AttentionOp | SDSAOp
    lanes: int
    time_steps: int
    out_rows: int                       # logits: rows x out_features
    out_features: int
    logit_scale: int                    # logits = logit_scale x float logits (up to quantization)
    lif_template: LIFSpec | None        # the constant part of every layer's LIF
    meta: dict = field(default_factory=dict)
    alif_template: ALIFSpec | None = None   # the constant part of every ALIF layer (n_neurons 1)

    # ---- layout of the memory images (filled by ``layout``)
    weight_base: list[int] = field(default_factory=list)
    bias_base: list[int] = field(default_factory=list)
    alif_base: list[int] = field(default_factory=list)    # first ALIF state word (groups of P) per op
    alif_param_base: list[int] = field(default_factory=list)   # first ALIF parameter word per op
    noise_base: list[int] = field(default_factory=list)   # first noise word per op

    def groups(self, op: LinearOp) -> int:
        """G = ceil(n_out / P): output words of a layer (outputs padded to whole words)."""
        return -(-op.n_out // self.lanes)

    def linear_ops(self) -> list[LinearOp]:
        return [op for op in self.ops if op.kind == "linear"]

    def layout(self) -> None:
        """Place every linear op's weight rows, bias words, ALIF region and noise words in the images."""
        self.weight_base, self.bias_base, self.alif_base, self.noise_base = [], [], [], []
        self.alif_param_base = []
        w = b = a = e = pa = 0
        for op in self.ops:
            if op.kind != "linear":
                for bases in (self.weight_base, self.bias_base, self.alif_base, self.noise_base, self.alif_param_base):
                    bases.append(-1)
                continue
            self.weight_base.append(w)
            self.bias_base.append(b)
            g = self.groups(op)
            w += op.weight_rows * g
            b += g
            if op.neuron == "alif":
                self.alif_base.append(a)
                a += op.rows * g
                self.alif_param_base.append(pa)
                pa += g
            else:
                self.alif_base.append(-1)
                self.alif_param_base.append(-1)
            if op.neuron == "alif" and op.noise is not None:
                self.noise_base.append(e)
                e += op.steps * op.rows * g
            else:
                self.noise_base.append(-1)
        self.weight_words, self.bias_words, self.alif_words, self.noise_words = w, b, a, e
        self.alif_param_words = pa

    def _padded(self, values: torch.Tensor) -> torch.Tensor:
        """(..., n) -> (..., G P) with zeros."""
        n = values.shape[-1]
        pad = -(-n // self.lanes) * self.lanes - n
        return torch.nn.functional.pad(values, (0, pad)) if pad else values

    def weight_image(self) -> torch.Tensor:
        """(weight_words, P) int64: layer l's input row i, word g at weight_base[l] + i G + g."""
        words = []
        for op in self.linear_ops():
            w = self._padded(op.weight.to(torch.int64))
            words.append(w.reshape(op.weight_rows * self.groups(op), self.lanes))
        return torch.cat(words) if words else torch.zeros(0, self.lanes, dtype=torch.int64)

    def bias_image(self) -> torch.Tensor:
        """(bias_words, P) int64: layer l's word g at bias_base[l] + g."""
        words = [self._padded(op.bias.to(torch.int64)).reshape(self.groups(op), self.lanes)
                 for op in self.linear_ops()]
        return torch.cat(words) if words else torch.zeros(0, self.lanes, dtype=torch.int64)

    def alif_ops(self) -> list[LinearOp]:
        return [op for op in self.linear_ops() if op.neuron == "alif"]

    def alif_param_image(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(theta, beta), each (alif_param_words, P) int64: op l's word g at alif_param_base[l] + g,
        shared by all the op's rows (each update names its parameter word beside its state word,
        ``ALIFSpec.param_groups``). Padding lanes get theta 1, b 0 (they never reach a buffer)."""
        thetas, betas = [], []
        for op in self.alif_ops():
            g = self.groups(op)
            th = self._padded(op.alif.theta.to(torch.int64)).clone()
            th[op.n_out:] = 1
            be = self._padded(op.alif.beta.to(torch.int64))
            thetas.append(th.reshape(g, self.lanes))
            betas.append(be.reshape(g, self.lanes))
        if not thetas:
            empty = torch.zeros(0, self.lanes, dtype=torch.int64)
            return empty, empty
        return torch.cat(thetas), torch.cat(betas)

    def noise_image(self) -> torch.Tensor:
        """(noise_words, P) int64: op l's (t, r, word g) at noise_base[l] + (t R + r) G + g."""
        words = [self._padded(op.noise.to(torch.int64)).reshape(-1, self.lanes)
                 for op in self.alif_ops() if op.noise is not None]
        return torch.cat(words) if words else torch.zeros(0, self.lanes, dtype=torch.int64)

    # ---- sizes the hardware needs
    def needs(self) -> dict[str, int]:
        """The smallest value of every CoreSpec capacity and width that holds this program."""
        self.layout()
        wimg, bimg = self.weight_image(), self.bias_image()
        value_lo = value_hi = 0
        acc_bound = 0
        lif_neurons = 1
        for op in self.linear_ops():
            src = self.source_buffer(op)
            lo, hi = fixed.int_min(src.width, src.signed), fixed.int_max(src.width, src.signed)
            if op.src == "tokens":
                lo, hi = 0, 1
            value_lo, value_hi = min(value_lo, lo), max(value_hi, hi)
            # |acc| <= sum_i max|x| |W_i| (summed over T for a readout): the accumulator is exact
            per_col = self.acc_bound(op, max(abs(lo), abs(hi)))
            acc_bound = max(acc_bound, int(per_col.max()) if per_col.numel() else 0)
            if op.lif is not None:
                lif_neurons = max(lif_neurons, op.rows * self.groups(op) * self.lanes)
        noise = self.noise_image()
        extra = {}
        if self.alif_ops():
            extra["alif_neurons"] = self.alif_words * self.lanes
        if noise.numel():
            extra["noise_depth"] = int(noise.shape[0])
            extra["noise_width"] = max(2, _signed_bits(noise))
        return {
            "weight_depth": max(1, int(wimg.shape[0])),
            "bias_depth": max(1, int(bimg.shape[0])),
            "lif_neurons": lif_neurons,
            **extra,
            "weight_width": max(2, _signed_bits(wimg)),
            "bias_width": max(2, _signed_bits(bimg)),
            "value_width": max(2, fixed.signed_bits_for(value_lo, value_hi)),
            "acc_width": max(2, fixed.signed_bits_for(-acc_bound, acc_bound)),
        }

    @staticmethod
    def acc_bound(op: LinearOp, top: int) -> torch.Tensor:
        """(n_out,) bound on |acc| with inputs of magnitude <= top: each row's sum of |W| over its
        bank, times T for a readout, summed over the rows when it reduces them."""
        if op.row_banks is None:
            per_col = op.weight.abs().sum(dim=0) * top
            if op.reduce_time:
                per_col = per_col * op.steps
            if op.reduce_rows:
                per_col = per_col * op.rows
            return per_col
        per_row = op.bank_weights().abs().sum(dim=1) * top          # (R, n_out)
        if op.reduce_time:
            per_row = per_row * op.steps
        return per_row.sum(dim=0) if op.reduce_rows else per_row.max(dim=0).values

    def source_buffer(self, op: LinearOp) -> Buffer:
        if op.src == "tokens":
            return self.input_buffer
        return self.input_buffer if op.src == self.input_buffer.name else self.buffers[op.src]

    def buffer(self, name: str) -> Buffer:
        if name == self.input_buffer.name:
            return self.input_buffer
        return self.buffers[name]


def _signed_bits(x: torch.Tensor) -> int:
    if x.numel() == 0:
        return 2
    return fixed.signed_bits_for(int(x.min()), int(x.max()))


def spec_for_program(program: CoreProgram, **overrides) -> CoreSpec:
    """The smallest ``CoreSpec`` that holds ``program`` (``overrides``: lanes, wta_lanes, debug_taps, ...).

    Capacities given in ``overrides`` are checked by ``check_fits``, not enlarged."""
    needs = program.needs()
    base = CoreSpec(lanes=program.lanes)
    fields = {k: v for k, v in needs.items()}
    for template in (program.lif_template, program.alif_template):
        if template is not None:
            fields["current_width"] = template.input_width
            fields["membrane_width"] = template.membrane_width
    fields.update(overrides)
    fields["lanes"] = program.lanes
    spec = base.replace(**fields)
    check_fits(spec, program)
    return spec


def check_fits(spec: CoreSpec, program: CoreProgram) -> None:
    """Raise ``SpecError`` naming the first capacity or width of ``spec`` too small for ``program``."""
    if spec.lanes != program.lanes:
        raise SpecError(f"CoreSpec.lanes = {spec.lanes} differs from the program's {program.lanes} lanes "
                        f"(compile the model for the spec's lanes)")
    for key, need in program.needs().items():
        have = getattr(spec, key)
        if have < need:
            raise SpecError(f"model {program.model} needs CoreSpec.{key} >= {need}; the spec has {have}")
    for op in program.linear_ops():
        if op.reduce_time:
            # a readout is exact in the model (no saturation): its largest |logit| must fit Wo
            src = program.source_buffer(op)
            top = max(abs(fixed.int_min(src.width, src.signed)), fixed.int_max(src.width, src.signed))
            bound = int((program.acc_bound(op, top) + op.bias.abs()).max())
            if bound > fixed.int_max(spec.current_width, True):
                raise SpecError(f"layer {op.name}: its logits reach +-{bound}, more than "
                                f"CoreSpec.current_width = {spec.current_width} bits hold")
    if program.lif_template is not None and program.alif_template is not None:
        raise SpecError(f"model {program.model} has LIF and adaptive-LIF layers; the core has one neuron array")
    lif = program.lif_template or program.alif_template
    if lif is not None and (spec.current_width, spec.membrane_width) != (lif.input_width, lif.membrane_width):
        raise SpecError(f"model {program.model} has neuron currents of {lif.input_width} bits and membranes of "
                        f"{lif.membrane_width} bits; CoreSpec.current_width = {spec.current_width}, "
                        f"membrane_width = {spec.membrane_width}")
