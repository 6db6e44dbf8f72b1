"""The compiler: a golden integer model -> a ``CoreProgram`` for the neuromorphic core.

Supported today: the spiking MLP (``IntSpikingMLP``) and the WTA Spiking Transformer
(``IntWTASpikingformer``: WE-Spikingformer and WD-Spikingformer without cross-attention).
Anything else is refused with one ``SpecError`` line naming the layer and the operation
the core lacks. The mapping is the model's own integer arithmetic, layer for layer:

* ``QuantSpikingLinear`` / ``IntSpikingLinear``: ``LinearOp`` with the layer's weights,
  bias, input fraction (the shift) and LIF parameters;
* a readout ``sum_t (W x_t) + T b``: ``LinearOp(reduce_time=True)`` with bias T b;
* the embedding ``E[tok] + Pos[l]``: a ``LinearOp`` on the token source whose weight rows
  are E then Pos[:L];
* a residual ``x + y``: the op writing y accumulates into x's buffer;
* WTA attention: ``AttentionOp`` with the layer's ``WTASpec`` (one head).
"""

from __future__ import annotations

import torch

from .. import fixed
from ..lif import LIFSpec
from ..spec import SpecError
from .program import AttentionOp, Buffer, CoreProgram, LinearOp

#: LIF fields every layer of one program must share (the rest are run-time parameters)
LIF_CONSTANT_FIELDS = ("membrane_width", "input_width", "leak_mode", "leak_frac_bits", "overflow", "refractory")
#: LIF fields the core sends with every beat
LIF_RUNTIME_FIELDS = ("threshold", "leak_beta", "reset_mode")


def _lif_template(layers: list[tuple[str, LIFSpec]]) -> LIFSpec:
    name0, first = layers[0]
    for name, spec in layers[1:]:
        for key in LIF_CONSTANT_FIELDS:
            if getattr(spec, key) != getattr(first, key):
                raise SpecError(f"layer {name}: LIF {key} = {getattr(spec, key)!r} differs from layer {name0}'s "
                                f"{getattr(first, key)!r}; the core's LIF array has one {key}")
    if first.leak_mode != "multiply":
        raise SpecError(f"layer {name0}: LIF leak_mode {first.leak_mode!r}: the core's LIF runs the multiply leak")
    if first.refractory:
        raise SpecError(f"layer {name0}: LIF refractory = {first.refractory}: the core's LIF has no refractory counter")
    return first.replace(n_neurons=1, lanes=1)


def _check_lanes(lanes: int) -> None:
    if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= 64:
        raise SpecError(f"CoreSpec.lanes = {lanes!r} is out of range; allowed: 1 .. 64")


def compile_spiking_mlp(model, lanes: int = 8) -> CoreProgram:
    """``IntSpikingMLP`` -> program: pixels (static) -> layer1 -> layer2 -> readout (sum over T)."""
    _check_lanes(lanes)
    t = model.time_steps
    h1, h2 = model.layer1.weight.shape[0], model.layer2.weight.shape[0]
    pixels = Buffer("pixels", 1, 64, 5, False)           # 0 .. 16
    buffers = {"spikes1": Buffer("spikes1", t, -(-h1 // lanes) * lanes, 1),
               "spikes2": Buffer("spikes2", t, -(-h2 // lanes) * lanes, 1)}
    ops = [
        LinearOp("layer1", "pixels", "spikes1", 1, t, model.layer1.weight.t(), model.layer1.bias,
                 model.layer1.input_frac, model.layer1.lif, static_src=True,
                 currents_tensor="currents1", out_tensor="spikes1"),
        LinearOp("layer2", "spikes1", "spikes2", 1, t, model.layer2.weight.t(), model.layer2.bias,
                 model.layer2.input_frac, model.layer2.lif, currents_tensor="currents2", out_tensor="spikes2"),
        LinearOp("readout", "spikes2", None, 1, t, model.readout.weight.t(), t * model.readout.bias,
                 model.readout.input_frac, None, reduce_time=True, out_tensor="logits"),
    ]
    template = _lif_template([("layer1", model.layer1.lif), ("layer2", model.layer2.lif)])
    prog = CoreProgram(model="spiking-mlp", input_kind="pixels", input_buffer=pixels, buffers=buffers, ops=ops,
                       lanes=lanes, time_steps=t, out_rows=1, out_features=int(model.readout.weight.shape[0]),
                       logit_scale=t << model.readout.weight_frac, lif_template=template)
    prog.layout()
    return prog


def compile_wta_spikingformer(model, seq_len: int, lanes: int = 8, causal: bool | None = None) -> CoreProgram:
    """``IntWTASpikingformer`` -> program for windows of ``seq_len`` tokens.

    Buffers: X (residual stream, values 0 .. 1 + 2 depth), Q, K, V, H (spikes), A (attention
    output, F-bit fixed point)."""
    _check_lanes(lanes)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= seq_len <= model.pos.shape[0]:
        raise SpecError(f"sequence length {seq_len!r} is out of range for this model; allowed: 1 .. "
                        f"{model.pos.shape[0]} (its max_len)")
    t, length = model.time_steps, seq_len
    vocab, dim = model.embed.shape
    pad = lambda n: -(-n // lanes) * lanes  # noqa: E731
    depth = len(model.blocks)
    x_max = 1 + 2 * depth
    rows = t * length
    tokens = Buffer("tokens", length, 1, fixed.bits_for(vocab - 1), False)
    lif_layers = [("embed", model.embed_lif.spec)]
    ops: list = []
    # embedding: weight rows = E (vocab rows) then Pos[:L]; events (tok, 1), (vocab + l, 1)
    table = torch.cat([model.embed, model.pos[:length]]).to(torch.int64)
    ops.append(LinearOp("embed", "tokens", "x", length, t, table, torch.zeros(dim, dtype=torch.int64), 0,
                        model.embed_lif.spec, static_src=True, currents_tensor="embed.currents",
                        out_tensor="embed.spikes"))
    hidden = None
    wta_spec = None
    for i, (attn, cross, fc1, fc2) in enumerate(model.blocks):
        p = f"block{i}.attn"
        if cross is not None:
            raise SpecError(f"layer block{i}.cross: WTA cross-attention to an encoder memory is not on the core yet "
                            f"(needs a second sequence input)")
        for proj, name in ((attn.q, "q"), (attn.k, "k"), (attn.v, "v")):
            ops.append(LinearOp(f"{p}.{name}", "x", name, length, t, proj.q.weight.t(), proj.q.bias,
                                proj.q.input_frac, proj.q.lif, out_tensor=f"{p}.{name}"))
            lif_layers.append((f"{p}.{name}", proj.q.lif))
        spec = attn.layer.spec(length, length).replace(lanes=1)
        if wta_spec is not None and spec != wta_spec:
            raise SpecError(f"layer {p}: its WTA attention ({spec.to_dict()}) differs from an earlier block's; "
                            f"the core has one attention unit")
        wta_spec = spec
        heads = attn.heads
        ops.append(AttentionOp(f"{p}.wta", "q", "k", "v", "a", heads, t, spec.replace(heads=1),
                               index_tensor=f"{p}.wta_index", valid_tensor=f"{p}.wta_valid",
                               out_tensor=f"{p}.wta_out"))
        ops.append(LinearOp(f"{p}.proj", "a", "x", length, t, attn.proj.q.weight.t(), attn.proj.q.bias,
                            attn.proj.q.input_frac, attn.proj.q.lif, accumulate=True, out_tensor=f"{p}.out",
                            sum_tensor=None))
        lif_layers.append((f"{p}.proj", attn.proj.q.lif))
        hidden = fc1.q.weight.shape[0]
        ops.append(LinearOp(f"block{i}.mlp.fc1", "x", "h", length, t, fc1.q.weight.t(), fc1.q.bias,
                            fc1.q.input_frac, fc1.q.lif, out_tensor=f"block{i}.mlp.fc1"))
        ops.append(LinearOp(f"block{i}.mlp.fc2", "h", "x", length, t, fc2.q.weight.t(), fc2.q.bias,
                            fc2.q.input_frac, fc2.q.lif, accumulate=True, out_tensor=f"block{i}.mlp.fc2",
                            sum_tensor=f"block{i}.out"))
        lif_layers += [(f"block{i}.mlp.fc1", fc1.q.lif), (f"block{i}.mlp.fc2", fc2.q.lif)]
    head = model.head
    ops.append(LinearOp("head", "x", None, length, t, head.weight.t(), t * head.bias, head.input_frac, None,
                        reduce_time=True, out_tensor="logits"))
    buffers = {"x": Buffer("x", rows, pad(dim), fixed.bits_for(x_max)),
               "q": Buffer("q", rows, pad(dim), 1), "k": Buffer("k", rows, pad(dim), 1),
               "v": Buffer("v", rows, pad(dim), 1)}
    if wta_spec is not None:
        buffers["a"] = Buffer("a", rows, pad(dim), wta_spec.out_width, True)
        buffers["h"] = Buffer("h", rows, pad(hidden), 1)
        if dim % lanes and heads > 1:
            raise SpecError(f"embed_dim = {dim} is not a multiple of lanes = {lanes}; the core needs the heads "
                            f"aligned to whole words")
    prog = CoreProgram(model=type(model).__name__, input_kind="tokens", input_buffer=tokens, buffers=buffers,
                       ops=ops, lanes=lanes, time_steps=t, out_rows=length, out_features=int(head.weight.shape[0]),
                       logit_scale=t << head.weight_frac, lif_template=_lif_template(lif_layers),
                       meta={"seq_len": length, "vocab": int(vocab)})
    prog.layout()
    return prog


#: the first layer of each model the core cannot run yet, and what it needs (issue 13)
MISSING = {
    "IntSpikformer": ("conv1", "3x3 convolutions (the window buffer in front of the MAC), max pooling and "
                      "spiking self-attention SN(Q (K^T V) s)"),
    "IntSpikeDrivenV2": ("stem", "3x3 convolutions (the window buffer), membrane shortcuts and spike-driven "
                         "self-attention"),
    "IntSpikingResformer": ("stem", "convolutions (the window buffer) and dual spike self-attention with "
                            "firing-rate scaling"),
    "IntTEFormer": ("conv1", "the SPS stem's convolutions, reversed-time attention, the sigmoid-ROM gate and "
                    "the spiking layer norm"),
    "IntMatterhorn": ("stem", "the MTTS encoder, adaptive-threshold LIF neurons, spike-driven attention "
                      "q (k^T v) >> s and the log-quantized weight memory"),
    "IntLSFormer": ("stem", "convolutions, dilated window attention (the window buffer), integer layer norm and "
                    "spiking response pooling"),
    "AnnViT": ("every layer", "spiking neurons: it is the non-spiking reference (softmax, real matmuls)"),
    "AnnCausalLM": ("every layer", "spiking neurons: it is the non-spiking softmax reference of the WTA "
                                   "causal LM (softmax, real matmuls)"),
}


def compile_model(model, *, lanes: int = 8, seq_len: int | None = None) -> CoreProgram:
    """Any supported golden integer model -> ``CoreProgram``; ``SpecError`` names what does not map."""
    from ..models.spiking_mlp import IntSpikingMLP
    from ..models.wta_spikingformer import IntWTASpikingformer

    if isinstance(model, IntSpikingMLP):
        return compile_spiking_mlp(model, lanes)
    if isinstance(model, IntWTASpikingformer):
        return compile_wta_spikingformer(model, seq_len if seq_len is not None else 32, lanes)
    name = type(model).__name__
    layer, needs = MISSING.get(name, ("?", "its operations"))
    raise SpecError(f"model {name}: layer {layer}: not on the core yet: needs {needs} (the core runs "
                    f"IntSpikingMLP and IntWTASpikingformer)")
