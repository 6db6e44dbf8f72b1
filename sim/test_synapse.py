"""Synapse engine (and engine + LIF array) under Verilator, bit for bit against golden vectors.

Every configuration's golden vector file is written, read back through the
checked loader, turned into command beats and run by the shared cocotb bench
with seeded random valid/ready gaps. Each output beat carries P currents and
the engine's SOP and memory-read counters, so the counters are checked against
the golden counts on every beat, not only at the end.
"""

from __future__ import annotations

import functools

import pytest
import torch

from golden.lif import LIFSpec
from golden.logquant import log_quantize
from golden.synapse import (SynapseSpec, random_codes, random_spikes, synapse_lif_run, synapse_reference)
from golden.vectors import load_vectors, save_vectors
from rtl.lif import lif_expected_beats
from rtl.synapse import SynapseEngine, SynapseLIF, synapse_expected_beats, synapse_input_beats

# name -> (spec, sequences, steps, spike rate, load through the write port?)
# each checks at least 10,000 synaptic operations
COSIM_CONFIGS = {
    # 4-bit codes, sigma 0, weights stored precomputed, initialised from the golden file, dense spikes
    "b4-ideal-precomputed-dense": (SynapseSpec(n_inputs=32, n_outputs=16, lanes=4, gain_sigma=0, offset_sigma=0,
                                               mismatch_impl="precomputed"), 2, 20, 0.5, False),
    # 8-bit codes, 12 levels, 5 % gain + offset mismatch (and column / row parts) from a correction
    # table, very sparse spikes
    "b8-table-sparse": (SynapseSpec(n_inputs=64, n_outputs=16, lanes=8, code_bits=8, levels=12, frac_bits=2,
                                    gain_sigma=3277, offset_sigma=3, col_gain_sigma=1000, row_offset_sigma=2,
                                    acc_width=20, mismatch_impl="table"),
                        4, 130, 0.02, True),
    # 4-bit codes, mismatch (cell, column and row parts) regenerated on chip, 8-bit accumulators
    # that saturate, G = 8
    "b4-regenerate-saturating": (SynapseSpec(n_inputs=32, n_outputs=16, lanes=2, gain_sigma=6554, offset_sigma=8,
                                             col_gain_sigma=2000, row_offset_sigma=3, acc_width=8, mismatch_seed=77, layer=3,
                                             mismatch_impl="regenerate"), 2, 25, 0.4, True),
    # 8-bit codes, precomputed with mismatch, wrapping accumulators, N = P (G = 1)
    "b8-precomputed-wrap-G1": (SynapseSpec(n_inputs=48, n_outputs=8, lanes=8, code_bits=8, levels=10,
                                           frac_bits=3, gain_sigma=2000, offset_sigma=5, acc_width=10,
                                           overflow="wrap", mismatch_impl="precomputed"), 3, 16, 0.6, True),
}


def write_synapse_vectors(directory, spec: SynapseSpec, sequences: int, steps: int, rate: float, seed: int):
    arrays = synapse_reference(spec, random_codes(spec, seed), random_spikes(spec, sequences, steps, rate, seed))
    return save_vectors(directory, "synapse", spec.to_dict(), seed, arrays, meta={"rate": rate})


def synapse_stream_from_vectors(directory, load: bool):
    """Golden vector directory -> (spec, codes, input beats, expected output beats).

    ``load``: the stream loads the codes through the write port (the design then
    starts from zero codes); otherwise the design's memory is initialised from them.
    """
    vectors = load_vectors(directory, block="synapse")
    spec = SynapseSpec.from_dict(vectors.spec)
    codes = torch.as_tensor(vectors["codes"].astype("int64"))
    spikes = torch.as_tensor(vectors["spikes"].astype("int64"))
    beats = synapse_input_beats(spec, spikes, load_codes=codes if load else None)
    expected = synapse_expected_beats(spec, vectors["currents"], vectors["sops"], vectors["reads"])
    return spec, codes, beats, expected


def config_vectors(tmp_path, name):
    spec, sequences, steps, rate, load = COSIM_CONFIGS[name]
    directory = write_synapse_vectors(tmp_path / "vectors", spec, sequences, steps, rate, seed=13)
    spec, codes, beats, expected = synapse_stream_from_vectors(directory, load)
    def make_engine():
        return SynapseEngine(spec) if load else SynapseEngine(spec, init_codes=codes)
    return spec, make_engine, beats, expected, load_vectors(directory)


@pytest.mark.parametrize("name", sorted(COSIM_CONFIGS))
def test_synapse_verilator_bit_exact(name, tmp_path):
    from sim.harness import cosim

    spec, make_engine, beats, expected, vectors = config_vectors(tmp_path, name)
    spikes_total = int(vectors["spikes"].sum())
    assert spikes_total * spec.n_outputs >= 10_000
    # the golden counters are the plain counts: every spike adds N weights from G words
    assert int(vectors["sops"][-1, -1]) == spikes_total * spec.n_outputs
    assert int(vectors["reads"][-1, -1]) == spikes_total * spec.groups
    # the registry's module name: a configuration loaded through the port builds the same Verilog
    # as `spikeforge check synapse` and shares its cached build
    report = cosim(make_engine(), "synapse_engine", beats, expected, tmp_path / "run",
                   seed=7, valid_prob=0.7, ready_prob=0.6)
    assert report.result.beats_checked == len(expected)
    assert report.mismatches == 0, report.explain()


def test_check_command_path_for_synapse_vectors(tmp_path):
    """`spikeforge check synapse` (registry: load the codes through the write port, then spikes)."""
    from spikeforge.blocks import get_block
    from spikeforge.demo import check_vectors

    spec, sequences, steps, rate, _ = COSIM_CONFIGS["b4-regenerate-saturating"]
    directory = write_synapse_vectors(tmp_path / "vectors", spec, sequences, steps, rate, seed=21)
    report = check_vectors(get_block("synapse"), directory, seed=2, workdir=tmp_path / "run")
    assert report.mismatches == 0, report.details
    assert report.work == int(load_vectors(directory)["spikes"].sum()) * spec.n_outputs
    assert report.beats == sequences * steps * spec.groups


# ---- engine + LIF array with weights of a trained float SpikingLinear -----------------------------

@functools.lru_cache(maxsize=4)
def trained_spiking_linear(n_in: int = 32, n_out: int = 16, steps: int = 60, seed: int = 0):
    """A float ``SpikingLinear`` (no bias) trained briefly to fire at per-neuron target rates.

    Returns (layer, input spikes (T, B, n_in) float) of its training data.
    """
    from golden.layers import SpikingLinear

    torch.manual_seed(seed)
    layer = SpikingLinear(n_in, n_out, bias=False, beta=0.875, threshold=1.0)
    x = (torch.rand(16, 8, n_in) < 0.3).float()
    target = torch.linspace(0.05, 0.6, n_out)
    opt = torch.optim.Adam(layer.parameters(), lr=0.03)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((layer(x).mean(dim=(0, 1)) - target) ** 2).mean()
        loss.backward()
        opt.step()
    return layer, x


def trained_pair(n_in: int = 32, n_out: int = 16, lanes: int = 4, code_bits: int = 4, levels: int = 7,
                 frac_bits: int = 4, gain_sigma: int = 3277, offset_sigma: int = 4):
    """Quantize a trained ``SpikingLinear`` with the golden log quantizer into (spec, lif_spec, codes, spikes, f).

    Integer currents are in units of 2^-(f + F): the threshold theta = 1.0 becomes 2^(f + F).
    """
    layer, x = trained_spiking_linear(n_in, n_out)
    spec = SynapseSpec(n_inputs=n_in, n_outputs=n_out, lanes=lanes, code_bits=code_bits, levels=levels,
                       frac_bits=frac_bits, gain_sigma=gain_sigma, offset_sigma=offset_sigma, acc_width=16,
                       mismatch_impl="regenerate")
    quantized = log_quantize(spec.logquant, layer.linear.weight.detach().t())  # (in, out): rows are inputs
    theta = 1 << (quantized.scale_exp + frac_bits)
    lif_spec = LIFSpec(n_neurons=n_out, lanes=lanes, membrane_width=20, input_width=16, threshold=theta,
                       leak_shift=3)  # beta = 0.875 = 1 - 2^-3
    spikes = x.permute(1, 0, 2).to(torch.int64)  # (sequences, steps, n_in)
    return spec, lif_spec, quantized, spikes, layer, x


def pair_vectors(directory, spec, lif_spec, codes, spikes):
    trace, lif_trace = synapse_lif_run(spec, lif_spec, codes, spikes)
    arrays = {"codes": codes.to(torch.uint8), "spikes": spikes.to(torch.uint8), "currents": trace.currents,
              "out_spikes": lif_trace.spikes.to(torch.uint8), "membrane": lif_trace.membrane}
    save_vectors(directory, "synapse_lif", {"synapse": spec.to_dict(), "lif": lif_spec.to_dict()}, 0, arrays)
    vectors = load_vectors(directory, block="synapse_lif")
    beats = synapse_input_beats(spec, torch.as_tensor(vectors["spikes"].astype("int64")),
                                load_codes=torch.as_tensor(vectors["codes"].astype("int64")))
    expected = lif_expected_beats(lif_spec, vectors["out_spikes"], vectors["membrane"])
    return beats, expected, vectors


def test_synapse_lif_pair_with_trained_weights_verilator(tmp_path):
    from sim.harness import cosim

    spec, lif_spec, quantized, spikes, _, _ = trained_pair()
    beats, expected, vectors = pair_vectors(tmp_path / "vectors", spec, lif_spec, quantized.codes, spikes)
    assert int(vectors["spikes"].sum()) * spec.n_outputs >= 10_000
    assert int(vectors["out_spikes"].sum()) > 0  # the trained layer fires
    report = cosim(SynapseLIF(spec, lif_spec), "synapse_lif", beats, expected, tmp_path / "run",
                   seed=3, valid_prob=0.7, ready_prob=0.7)
    assert report.result.beats_checked == len(expected)
    assert report.mismatches == 0, report.explain()
