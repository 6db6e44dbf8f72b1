"""Event-driven synapse layer: input spikes -> input currents of a LIF array, in exact integers.

Weights
-------
Each synapse (input row i, output column j) stores a log-quantized code
(``golden.logquant``); its effective weight is ``w_eff[i, j]``, the decoded
weight with the cell's analog mismatch on the fixed-point grid with F
fractional bits (``golden.mismatch``)::

    q      = log_decode(code[i, j])                    0 or +-2^s
    w_eff  = (q << F) + ((q * dg[i, j]) >> (16 - F)) + do[i, j]

The mismatch generator's (row, col) is (input index i, output index j). ``w_eff`` is
exact and is never narrowed: it has ``weight_width`` We bits (from the extremes of q,
dg and do), which may exceed Wa. ``SynapseSpec`` refuses a spec whose We exceeds 40
bits (the widest memory cell the hardware stores), although each field lies in its own
range (e.g. levels = 24, frac_bits = 16): the combination is the limit.

Integer mode (the hardware contract)
------------------------------------
Per time step t, with the spiking inputs i_1 < i_2 < ... < i_k (ascending index,
the order the hardware receives them)::

    acc_j = 0
    acc_j = fit_Wa(acc_j + w_eff[i_n, j])      for n = 1 .. k, in that order
    current[t, j] = acc_j

``fit_Wa`` saturates (default) or wraps to the Wa-bit signed accumulator after
every addition, so the order above is part of the contract: the sum
``acc_j + w_eff`` is formed exactly at full width and only the sum is fitted to Wa
(w_eff itself is never saturated to Wa first). A step without spikes gives current 0.

Counters (cumulative from reset, over all sequences in stream order, modulo 2^Wc: they
do **not** restart at a new sequence; sops[s, t] counts every input spike of sequences
0 .. s - 1 and of steps 0 .. t of sequence s)::

    sops  += n_outputs   per input spike   (one synaptic operation per weight added)
    reads += G           per input spike   (G = n_outputs / P weight-memory words per row)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from . import fixed
from .lif import LIFSpec, lif_run
from .logquant import LogQuantSpec, check_codes, log_decode
from .mismatch import MismatchSpec, effective_weights
from .spec import SpecBase, SpecError, check_choice, check_int

MISMATCH_IMPLS = ("precomputed", "table", "regenerate")


@dataclass(frozen=True)
class SynapseSpec(SpecBase):
    """A synapse layer: log-quantized weight memory, mismatch model and accumulators.

    Attributes
    ----------
    n_inputs : input neurons (memory rows), 1 .. 65536.
    n_outputs : output neurons, 1 .. 4096; a multiple of ``lanes``.
    lanes : P, synapses (output columns) added per cycle, 1 .. 64.
    code_bits, levels : the ``LogQuantSpec`` of the codes.
    frac_bits, mismatch_seed, layer, gain_sigma, offset_sigma, col_gain_sigma, row_offset_sigma :
        the ``MismatchSpec``.
    acc_width : Wa, bits of each signed accumulator (= the LIF input width), 2 .. 32.
    overflow : "saturate" (default) or "wrap" after every addition.
    counter_width : Wc, bits of the SOP and memory-read counters, 8 .. 48.
    mismatch_impl : how the hardware applies the mismatch: "precomputed" (the memory
        stores w_eff), "table" (codes + a (dg, do) correction table) or "regenerate"
        (codes; dg and do recomputed on chip by the counter-based generator).

    Joint rule: ``weight_width`` (We, the signed bits of an effective weight, derived from
    levels, frac_bits and the sigmas) must be <= 40, else ``SpecError``; e.g. levels = 24 with
    frac_bits = 16 needs 41 bits and is refused although each field is within its own range.
    """

    block = "synapse"

    n_inputs: int = 64
    n_outputs: int = 32
    lanes: int = 4
    code_bits: int = 4
    levels: int = 7
    frac_bits: int = 4
    mismatch_seed: int = 1
    layer: int = 0
    gain_sigma: int = 3277     # 5 % (3277 / 2^16)
    offset_sigma: int = 4      # 4 LSB of 2^-F = 0.25 of the smallest weight
    col_gain_sigma: int = 0
    row_offset_sigma: int = 0
    acc_width: int = 16
    overflow: str = "saturate"
    counter_width: int = 32
    mismatch_impl: str = "regenerate"

    def __post_init__(self):
        name = "SynapseSpec"
        check_int(name, "n_inputs", self.n_inputs, 1, 65536)
        check_int(name, "n_outputs", self.n_outputs, 1, 4096)
        check_int(name, "lanes", self.lanes, 1, 64)
        if self.n_outputs % self.lanes:
            raise SpecError(f"SynapseSpec.n_outputs = {self.n_outputs} must be a multiple of "
                            f"SynapseSpec.lanes = {self.lanes}")
        check_int(name, "acc_width", self.acc_width, 2, 32)
        check_choice(name, "overflow", self.overflow, fixed.OVERFLOW_MODES)
        check_int(name, "counter_width", self.counter_width, 8, 48)
        check_choice(name, "mismatch_impl", self.mismatch_impl, MISMATCH_IMPLS)
        try:
            self.logquant, self.mismatch  # noqa: B018 (validate the sub-specs)
        except SpecError as exc:
            raise SpecError(str(exc).replace("LogQuantSpec.", "SynapseSpec.")
                            .replace("MismatchSpec.seed", "SynapseSpec.mismatch_seed")
                            .replace("MismatchSpec.", "SynapseSpec.")) from None
        if self.weight_width > 40:
            raise SpecError(f"SynapseSpec: effective weights need {self.weight_width} bits (levels = "
                            f"{self.levels}, frac_bits = {self.frac_bits}); at most 40 are supported")

    @property
    def logquant(self) -> LogQuantSpec:
        return LogQuantSpec(code_bits=self.code_bits, levels=self.levels)

    @property
    def mismatch(self) -> MismatchSpec:
        return MismatchSpec(seed=self.mismatch_seed, layer=self.layer, gain_sigma=self.gain_sigma,
                            offset_sigma=self.offset_sigma, frac_bits=self.frac_bits,
                            col_gain_sigma=self.col_gain_sigma, row_offset_sigma=self.row_offset_sigma)

    @property
    def groups(self) -> int:
        """G = n_outputs / P: memory words per input row, cycles per input spike."""
        return self.n_outputs // self.lanes

    @property
    def weight_width(self) -> int:
        """We, signed bits of an effective weight (a precomputed memory cell)."""
        return self.mismatch.weight_width(self.logquant.max_weight)

    @property
    def address_bits(self) -> int:
        """Bits of a weight-memory address (n_inputs * G words) or an input index."""
        return fixed.bits_for(max(self.n_inputs * self.groups, self.n_inputs) - 1)


class SynapseTrace(NamedTuple):
    currents: torch.Tensor  # (S, T, n_outputs) int64
    sops: torch.Tensor      # (S, T) int64, cumulative synaptic operations at the end of each step
    reads: torch.Tensor     # (S, T) int64, cumulative weight-memory word reads


def check_weight_codes(spec: SynapseSpec, codes) -> torch.Tensor:
    """Codes as an int64 (n_inputs, n_outputs) tensor, or a ValueError naming the problem."""
    t = torch.as_tensor(codes)
    if tuple(t.shape) != (spec.n_inputs, spec.n_outputs):
        raise ValueError(f"weight codes have shape {tuple(t.shape)}; the spec needs "
                         f"(n_inputs, n_outputs) = ({spec.n_inputs}, {spec.n_outputs})")
    return check_codes(spec.logquant, t)


def synapse_weights(spec: SynapseSpec, codes) -> torch.Tensor:
    """Effective weights w_eff (n_inputs, n_outputs) int64 of the module docstring."""
    return effective_weights(spec.mismatch, log_decode(spec.logquant, check_weight_codes(spec, codes)))


def check_spikes(spec: SynapseSpec, spikes) -> torch.Tensor:
    t = torch.as_tensor(spikes)
    if t.dim() != 3 or t.shape[-1] != spec.n_inputs:
        raise ValueError(f"input spikes must have shape (sequences, steps, {spec.n_inputs}); "
                         f"got {tuple(t.shape)}")
    t = fixed.check_range(t, 1, False, "input spikes")
    return t


def synapse_run(spec: SynapseSpec, codes, spikes) -> SynapseTrace:
    """Exact integer synapse layer (module docstring) over (S, T, n_inputs) 0/1 spikes."""
    w = synapse_weights(spec, codes)
    x = check_spikes(spec, spikes).bool()
    acc = torch.zeros(*x.shape[:2], spec.n_outputs, dtype=torch.int64)
    for i in range(spec.n_inputs):  # ascending input index: the order of the hardware's additions
        added = fixed.fit(acc + w[i], spec.acc_width, True, spec.overflow)
        acc = torch.where(x[..., i, None], added, acc)
    per_step = x.sum(dim=-1).to(torch.int64).flatten()
    total = torch.cumsum(per_step, 0).reshape(x.shape[:2])
    modulus = 1 << spec.counter_width
    return SynapseTrace(acc, (total * spec.n_outputs) % modulus, (total * spec.groups) % modulus)


def synapse_float_currents(weights: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """The float layer the integer one approximates: current[t, j] = sum_i x[t, i] w[i, j]."""
    return spikes.double() @ weights.double()


# ---------------------------------------------------------------------------
# Reference vectors


def random_codes(spec: SynapseSpec, seed: int = 0, zero_fraction: float = 0.2) -> torch.Tensor:
    """Seeded valid codes (n_inputs, n_outputs): every level and both signs, some zeros."""
    gen = torch.Generator().manual_seed(seed)
    shape = (spec.n_inputs, spec.n_outputs)
    mag = torch.randint(1, spec.levels + 1, shape, generator=gen)
    sign = torch.randint(0, 2, shape, generator=gen)
    zero = torch.rand(shape, generator=gen) < zero_fraction
    mag = torch.where(zero, torch.zeros_like(mag), mag)
    sign = torch.where(zero, torch.zeros_like(sign), sign)
    return (sign << (spec.code_bits - 1)) | mag


def random_spikes(spec: SynapseSpec, sequences: int, steps: int, rate: float, seed: int = 0) -> torch.Tensor:
    """Seeded Bernoulli(rate) input spikes (sequences, steps, n_inputs) int64."""
    if sequences < 1 or steps < 1:
        raise ValueError(f"need sequences >= 1 and steps >= 1, got {sequences}, {steps}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"spike rate must be in [0, 1], got {rate}")
    gen = torch.Generator().manual_seed(seed + 1)
    return (torch.rand(sequences, steps, spec.n_inputs, generator=gen) < rate).to(torch.int64)


def synapse_reference(spec: SynapseSpec, codes, spikes) -> dict[str, torch.Tensor]:
    """Arrays of a synapse vector file: codes, spikes, currents, sops, reads."""
    trace = synapse_run(spec, codes, spikes)
    return {"codes": torch.as_tensor(codes).to(torch.uint8), "spikes": torch.as_tensor(spikes).to(torch.uint8),
            "currents": trace.currents, "sops": trace.sops, "reads": trace.reads}


def synapse_lif_run(spec: SynapseSpec, lif_spec: LIFSpec, codes, spikes):
    """Synapse layer then LIF array: (SynapseTrace, LIFTrace)."""
    check_pair(spec, lif_spec)
    trace = synapse_run(spec, codes, spikes)
    return trace, lif_run(lif_spec, trace.currents)


def check_pair(spec: SynapseSpec, lif_spec: LIFSpec) -> None:
    """The LIF array must take exactly the synapse layer's currents, P at a time."""
    for what, a, b in (("n_neurons", lif_spec.n_neurons, spec.n_outputs), ("lanes", lif_spec.lanes, spec.lanes),
                       ("input_width", lif_spec.input_width, spec.acc_width)):
        if a != b:
            raise SpecError(f"LIFSpec.{what} = {a} must equal the synapse layer's "
                            f"{ {'n_neurons': 'n_outputs', 'lanes': 'lanes', 'input_width': 'acc_width'}[what] } = {b}")
