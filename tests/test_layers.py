"""Shared spiking layers: the integer forms against hand arithmetic and an independent loop, and
the float forms against the integer ones within a stated bound."""

import pytest
import torch

from golden import fixed
from golden.layers import (QuantLinear, SpikingLinear, lif_run_time_first, quantize_linear,
                           quantize_spiking_linear, weight_frac_for)
from golden.lif import LIFSpec, lif_run


def test_weight_frac_by_hand():
    # max |w| = 0.7: 127 / 0.7 = 181.4 -> f = floor(log2 181.4) = 7 (0.7 * 128 = 89.6 <= 127)
    assert weight_frac_for(torch.tensor([0.7, -0.2]), 8) == 7
    # max |w| = 3: 127 / 3 = 42.3 -> f = 5
    assert weight_frac_for(torch.tensor([-3.0]), 8) == 5


def test_quant_linear_by_hand():
    q = QuantLinear(weight=torch.tensor([[3, -2], [1, 1]]), bias=torch.tensor([5, -1]), weight_frac=4,
                    input_frac=1)
    # row 0: (7*3 + (-3)*(-2)) = 27 >> 1 = 13, + 5 = 18; row 1: (7 - 3) = 4 >> 1 = 2, - 1 = 1
    assert q(torch.tensor([[7, -3]])).tolist() == [[18, 1]]
    # negative sums shift toward minus infinity: (-7*1 + 0) = -7 >> 1 = -4, -1 -> -5
    assert q(torch.tensor([[-7, 0]]))[0, 1].item() == -5
    with pytest.raises(TypeError):
        q(torch.tensor([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="takes 2"):
        q(torch.tensor([[1, 2, 3]]))


def test_quantized_spiking_linear_against_an_independent_loop():
    torch.manual_seed(0)
    layer = SpikingLinear(6, 4, beta=0.75, threshold=0.5)
    q = quantize_spiking_linear(layer, weight_bits=6, input_frac=0, membrane_width=16, input_width=12)
    spikes_in = (torch.rand(5, 3, 6) < 0.5).to(torch.int64)
    currents, trace = q.forward_trace(spikes_in)
    w, b = q.weight.tolist(), q.bias.tolist()
    for t in range(5):
        for n in range(3):
            for j in range(4):
                total = sum(int(spikes_in[t, n, i]) * w[j][i] for i in range(6)) + b[j]
                total = max(-2048, min(2047, total))  # 12-bit input width saturates
                assert int(currents[t, n, j]) == total
    # the LIF part is exactly lif_run on the same currents, time moved to dim -2
    ref = lif_run(q.lif, currents.movedim(0, -2))
    assert torch.equal(ref.spikes.movedim(-2, 0), trace.spikes)


def test_float_and_integer_spiking_linear_agree():
    """Float currents on the integer grid: the integer currents equal round(currents 2^f) up to the
    weight rounding, |error| <= (fan-in + 1) / 2 LSB; the spike trains agree on >= 95 % of entries
    (measured 99 %); differences come from near-threshold membranes."""
    torch.manual_seed(3)
    layer = SpikingLinear(32, 16, beta=0.875, threshold=1.0)
    q = quantize_spiking_linear(layer, weight_bits=8, input_frac=0)
    x = (torch.rand(8, 10, 32) < 0.3).float()
    with torch.no_grad():
        currents_f, spikes_f = layer.forward_currents(x)
    currents_i, trace = q.forward_trace(x.to(torch.int64))
    err = (currents_f.double() * 2 ** q.weight_frac - currents_i.double()).abs()
    assert float(err.max()) <= (32 + 1) / 2
    agree = float((spikes_f.to(torch.int64) == trace.spikes).double().mean())
    assert agree >= 0.95


def test_lif_run_time_first_shapes():
    spec = LIFSpec(n_neurons=3, lanes=1)
    trace = lif_run_time_first(spec, torch.zeros(7, 2, 5, 3, dtype=torch.int64))
    assert trace.spikes.shape == (7, 2, 5, 3)
    with pytest.raises(ValueError, match="shape"):
        lif_run_time_first(spec, torch.zeros(3, dtype=torch.int64))


def test_quantize_linear_saturates_and_keeps_bias_scale():
    lin = torch.nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.5, -0.25]]))
        lin.bias.copy_(torch.tensor([0.125]))
    q = quantize_linear(lin, weight_bits=4)          # 7 / 0.5 = 14 -> f = 3
    assert q.weight_frac == 3
    assert q.weight.tolist() == [[4, -2]] and q.bias.tolist() == [1]
    assert fixed.int_max(4, True) == 7


def test_spiking_mlp_integer_forward_equals_the_layer_by_layer_run():
    from golden.models.spiking_mlp import SpikingMLP
    torch.manual_seed(0)
    for hidden, steps in [(64, 4), (12, 7)]:
        model = SpikingMLP(hidden=hidden, time_steps=steps).to_integer()
        pixels = torch.randint(0, 17, (9, 1, 8, 8))
        out = model.forward_layers(pixels)
        flat = pixels.flatten(1).to(torch.int64)
        c1, t1 = model.layer1.forward_trace(flat.unsqueeze(0).expand(steps, *flat.shape))
        c2, t2 = model.layer2.forward_trace(t1.spikes)
        assert torch.equal(out["currents1"], c1) and torch.equal(out["spikes1"], t1.spikes)
        assert torch.equal(out["currents2"], c2) and torch.equal(out["spikes2"], t2.spikes)
        logits = torch.matmul(t2.spikes, model.readout.weight.t()).sum(0) + steps * model.readout.bias
        assert torch.equal(out["logits"], logits)


def _int_matmul_cases():
    """(x, weight) pairs: random, every value at a range edge, the field width at its edge, overflow-prone."""
    g = torch.Generator().manual_seed(14)
    for trial in range(600):
        k = int(torch.randint(1, 70, (), generator=g))
        n = int(torch.randint(1, 40, (), generator=g))
        wb = int(torch.randint(1, 33, (), generator=g))
        xb = int(torch.randint(0, 33, (), generator=g))
        w_lo, w_hi = (-1, 1) if wb == 1 else (-(1 << (wb - 1)), (1 << (wb - 1)) - 1)
        w = torch.randint(w_lo, w_hi + 1, (n, k), generator=g)
        if trial % 3 == 0:  # only the extremes: every partial sum at its bound
            w = torch.where(torch.rand(n, k, generator=g) < 0.5, w_lo, w_hi)
        shape = [(k,), (5, k), (2, 3, k), (0, k), (4, 0, k)][trial % 5]
        x_lo = 0 if trial % 2 else -(1 << xb)
        x = torch.randint(x_lo, 1 << xb, shape, generator=g)
        if trial % 4 == 1 and x.numel():
            x = torch.where(torch.rand(shape, generator=g) < 0.5, x_lo, (1 << xb) - 1)
        yield x, w
    # spikes against 8-bit weights (the models' case), all ones: the bound itself is reached
    yield torch.ones(3, 256, dtype=torch.int64), torch.full((256, 256), -128, dtype=torch.int64)
    yield torch.ones(3, 256, dtype=torch.int64), torch.full((7, 256), 127, dtype=torch.int64)
    yield torch.zeros(3, 0, dtype=torch.int64), torch.zeros(4, 0, dtype=torch.int64)


def test_int_matmul_equals_torch_matmul():
    """The column-packed integer product is the plain int64 product, value for value."""
    from golden.layers import int_matmul
    for x, w in _int_matmul_cases():
        ref = torch.matmul(x, w.t())
        got = int_matmul(x, w, min_columns=2)   # packed from 2 columns on (the default packs from 65)
        assert got.dtype == ref.dtype == torch.int64 and got.shape == ref.shape
        assert torch.equal(got, ref), (tuple(x.shape), tuple(w.shape))
        got = int_matmul(x, w)
        assert got.dtype == ref.dtype == torch.int64 and got.shape == ref.shape
        assert torch.equal(got, ref), (tuple(x.shape), tuple(w.shape))


def test_quant_linear_packed_equals_the_plain_equation():
    """QuantLinear (packed product, in-place shift and bias) against ((x W^T) >> fi) + b written out."""
    g = torch.Generator().manual_seed(3)
    for fi in (0, 4):
        w = torch.randint(-128, 128, (96, 64), generator=g)
        b = torch.randint(-1000, 1000, (96,), generator=g)
        x = torch.randint(0, 17, (4, 5, 64), generator=g)
        q = QuantLinear(weight=w, bias=b, weight_frac=6, input_frac=fi)
        assert torch.equal(q(x), (torch.matmul(x, w.t()) >> fi) + b)
