"""The compiler: a golden integer model -> a ``CoreProgram`` for the neuromorphic core.

Supported today: the spiking MLP (``IntSpikingMLP``), the WTA Spiking Transformer
(``IntWTASpikingformer``: WE-Spikingformer and WD-Spikingformer without cross-attention)
and Matterhorn (``IntMatterhorn``).
Anything else is refused with one ``SpecError`` line naming the layer and the operation
the core lacks. The mapping is the model's own integer arithmetic, layer for layer:

* ``QuantSpikingLinear`` / ``IntSpikingLinear``: ``LinearOp`` with the layer's weights,
  bias, input fraction (the shift) and LIF parameters;
* a readout ``sum_t (W x_t) + T b``: ``LinearOp(reduce_time=True)`` with bias T b;
* the embedding ``E[tok] + Pos[l]``: a ``LinearOp`` on the token source whose weight rows
  are E then Pos[:L];
* a residual ``x + y``: the op writing y accumulates into x's buffer;
* WTA attention: ``AttentionOp`` with the layer's ``WTASpec`` (one head).

Matterhorn (``compile_matterhorn``):

* the stem ``a_l = W_l patch_l`` and its codes ``clamp((pixels . W) >> (4 + fs - fa))``: a
  ``LinearOp`` over the 64 pixels with one weight row per pixel (that of its token and its
  place in the patch) and ``row_masks`` (token r reads its own patch), ending in the MTTS
  encoder (``neuron = "mtts"``: the clamp, then the spikes of every step);
* every ``AdaptiveLIF`` unit: a ``LinearOp`` with ``alif`` (per-neuron theta_n, b_n) and the
  frozen noise pattern of the variation model (``noise``, (T, L, n));
* the spike-driven attention ``q (k^T v)``: ``SDSAOp``; its neurons ``ALIF(y << (8 - s))``: a
  ``LinearOp`` on y with the weights 2^(8 - s) I (one event per nonzero y);
* the residuals as in the WTA model (accumulate);
* spike pooling and the folded head ``W' counts + b'``: one readout over all rows and steps
  (``reduce_rows``) whose row r meets the weights of its 2x2 region (``row_banks``).
"""

from __future__ import annotations

import torch

from .. import fixed
from ..lif import LIFSpec
from ..sdsa import SDSASpec
from ..spec import SpecError
from .program import AttentionOp, Buffer, CoreProgram, LinearOp, SDSAOp

#: LIF fields every layer of one program must share (the rest are run-time parameters)
LIF_CONSTANT_FIELDS = ("membrane_width", "input_width", "leak_mode", "leak_frac_bits", "overflow", "refractory")
#: LIF fields the core sends with every beat
LIF_RUNTIME_FIELDS = ("threshold", "leak_beta", "reset_mode")


def _check_shared(layers: list, fields: tuple, kind: str, unit: str):
    """The first layer's spec, after checking that every layer has its ``fields`` (one unit serves all)."""
    name0, first = layers[0]
    for name, spec in layers[1:]:
        for key in fields:
            if getattr(spec, key) != getattr(first, key):
                raise SpecError(f"layer {name}: {kind} {key} = {getattr(spec, key)!r} differs from layer {name0}'s "
                                f"{getattr(first, key)!r}; the core's {unit} has one {key}")
    return name0, first


def _lif_template(layers: list[tuple[str, LIFSpec]]) -> LIFSpec:
    name0, first = _check_shared(layers, LIF_CONSTANT_FIELDS, "LIF", "LIF array")
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


#: ALIF fields every layer of one program must share (theta_n, b_n and the noise are per neuron; the
#: increment delta = round(0.5 2^f) follows each layer's current scale and is a run-time parameter)
ALIF_CONSTANT_FIELDS = ("membrane_width", "input_width", "leak_frac_bits", "adapt_shift", "adapt_width")


def _alif_template(layers: list) -> "ALIFSpec":
    _, first = _check_shared(layers, ALIF_CONSTANT_FIELDS, "ALIF", "adaptive-LIF array")
    return first.replace(n_neurons=1, lanes=1, adapt_increment=0)


def _frozen_noise(neuron, steps: int, rows: int, n: int):
    """(T, R, n) int64: the evaluation-mode noise e of an ALIF driven by (T, B, R, n) currents
    (the pattern is shared over the batch), or None without noise."""
    e = neuron.noise((steps, 1, rows, n))
    return None if e is None else e[:, 0].to(torch.int64)


def compile_matterhorn(model, lanes: int = 8) -> CoreProgram:
    """``IntMatterhorn`` -> program: pixels (static) -> stem + MTTS -> blocks -> pooled head."""
    from ..models.matterhorn import ATT_FRAC, PATCH, PIXEL_FRAC, POOLED, TOKENS

    _check_lanes(lanes)
    t = model.time_steps
    dim = int(model.stem.shape[2])
    length = TOKENS
    pad = lambda n: -(-n // lanes) * lanes  # noqa: E731
    rows = t * length
    shift = PIXEL_FRAC + model.stem_frac - model.act_frac
    if shift < 0:
        raise SpecError(f"layer stem: its codes need a left shift by {-shift} (pixels . W << {-shift}); the core's "
                        f"MAC shifts right only")
    grid = 8 // PATCH
    # raster pixel i = (y, x): token (y // 2) grid + x // 2, place (y % 2) 2 + x % 2 (golden.models.matterhorn.patches)
    token_of = [(i // 8 // PATCH) * grid + (i % 8) // PATCH for i in range(64)]
    place_of = [((i // 8) % PATCH) * PATCH + (i % 8) % PATCH for i in range(64)]
    stem_w = torch.stack([model.stem[token_of[i], place_of[i]] for i in range(64)]).to(torch.int64)   # (64, D)
    masks = torch.tensor([[token_of[i] == r for i in range(64)] for r in range(length)])
    pixels = Buffer("pixels", 1, 64, 5, False)           # 0 .. 16
    ops: list = [LinearOp("stem", "pixels", "x", length, t, stem_w, torch.zeros(dim, dtype=torch.int64), shift,
                          None, static_src=True, mtts=model.mtts, row_masks=masks, currents_tensor="codes",
                          out_tensor="mtts_spikes")]
    alif_layers = []
    depth = len(model.blocks)
    hidden, sdsa = None, None

    def unit(name, src, dst, pair, *, accumulate=False, out_tensor=None, sum_tensor=None, weight=None,
             neuron=None):
        if pair is not None:
            lin, neuron = pair
            weight, bias, fi = lin.weight.t(), lin.bias, lin.input_frac
        else:
            bias, fi = torch.zeros(weight.shape[1], dtype=torch.int64), 0
        alif_layers.append((name, neuron.spec))
        return LinearOp(name, src, dst, length, t, weight.to(torch.int64), bias.to(torch.int64), fi, None,
                        alif=neuron, noise=_frozen_noise(neuron, t, length, int(weight.shape[1])),
                        accumulate=accumulate, out_tensor=out_tensor, sum_tensor=sum_tensor)

    for i, blk in enumerate(model.blocks):
        p = f"block{i}"
        for name in ("q", "k", "v"):
            ops.append(unit(f"{p}.{name}", "x", name, getattr(blk, name), out_tensor=f"{p}_{name}"))
        heads = blk.heads
        if dim % heads:
            raise SpecError(f"layer {p}.attention: dim {dim} is not a multiple of heads {heads}")
        spec = SDSASpec(length=length, head_dim=dim // heads, lanes=1)
        if sdsa is not None and spec != sdsa:
            raise SpecError(f"layer {p}.attention: its heads ({spec.to_dict()}) differ from an earlier block's; "
                            f"the core has one spike-driven attention unit")
        sdsa = spec
        if (dim // heads) % lanes and heads > 1:
            raise SpecError(f"layer {p}.attention: the head width {dim // heads} is not a multiple of lanes = "
                            f"{lanes}; the core needs the heads aligned to whole words")
        ops.append(SDSAOp(f"{p}.attention", "q", "k", "v", "y", heads, t, spec, out_tensor=f"{p}_attention"))
        gain = torch.eye(dim, dtype=torch.int64) << (ATT_FRAC - blk.attn_shift)
        ops.append(unit(f"{p}.att", "y", "a", None, weight=gain, neuron=blk.att, out_tensor=f"{p}_att"))
        ops.append(unit(f"{p}.o", "a", "x", blk.o, accumulate=True, sum_tensor=f"{p}_x1"))
        hidden = int(blk.mlp1[0].weight.shape[0])
        ops.append(unit(f"{p}.mlp1", "x", "h", blk.mlp1))
        ops.append(unit(f"{p}.mlp2", "h", "x", blk.mlp2, accumulate=True, sum_tensor=f"{p}_out"))
    head = model.head
    region = [((r // grid) // 2) * 2 + (r % grid) // 2 for r in range(length)]   # golden spike_pool's order
    if head.weight.shape[1] != POOLED * dim:
        raise SpecError(f"layer head: it takes {head.weight.shape[1]} pooled counts; the core pools {POOLED} "
                        f"regions of {dim}")
    ops.append(LinearOp("head", "x", None, length, t, head.weight.t().to(torch.int64), head.bias.to(torch.int64),
                        head.input_frac, None, reduce_time=True, reduce_rows=True, row_banks=tuple(region),
                        out_tensor="logits"))
    x_max = 1 + 2 * depth
    buffers = {"x": Buffer("x", rows, pad(dim), fixed.bits_for(x_max)),
               "q": Buffer("q", rows, pad(dim), 1), "k": Buffer("k", rows, pad(dim), 1),
               "v": Buffer("v", rows, pad(dim), 1), "a": Buffer("a", rows, pad(dim), 1)}
    if sdsa is not None:
        buffers["y"] = Buffer("y", rows, pad(dim), sdsa.out_width, False)
        buffers["h"] = Buffer("h", rows, pad(hidden), 1)
    prog = CoreProgram(model="IntMatterhorn", input_kind="pixels", input_buffer=pixels, buffers=buffers, ops=ops,
                       lanes=lanes, time_steps=t, out_rows=1, out_features=int(head.weight.shape[0]),
                       logit_scale=1 << head.weight_frac, lif_template=None,
                       meta={"positions": True, "tokens": length,
                             # forward_layers tensors that do not leave the core, and why
                             "not_tapped": {
                                 "mtts_time": "the encoder's code inside the MTTS unit; its spike trains "
                                              "(mtts_spikes) are compared",
                                 "mtts_silent": "the encoder's silent flag inside the MTTS unit; its spike "
                                                "trains (mtts_spikes) are compared",
                                 "counts": "the pooled counts are summed inside the MAC's accumulators by the "
                                           "banked head; its logits are compared"}},
                       alif_template=_alif_template(alif_layers) if alif_layers else None)
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
                    "a layer norm op (its unit, rtl.layernorm, exists but is not in the core)"),
    "IntLSFormer": ("stem", "convolutions, dilated window attention (the window buffer), a layer norm op (its "
                    "unit, rtl.layernorm, exists but is not in the core) and spiking response pooling"),
    "AnnViT": ("every layer", "spiking neurons: it is the non-spiking reference (softmax, real matmuls)"),
    "AnnCausalLM": ("every layer", "spiking neurons: it is the non-spiking softmax reference of the WTA "
                                   "causal LM (softmax, real matmuls)"),
}


def compile_model(model, *, lanes: int = 8, seq_len: int | None = None) -> CoreProgram:
    """Any supported golden integer model -> ``CoreProgram``; ``SpecError`` names what does not map."""
    from ..models.matterhorn import IntMatterhorn
    from ..models.spiking_mlp import IntSpikingMLP
    from ..models.wta_spikingformer import IntWTASpikingformer

    if isinstance(model, IntSpikingMLP):
        return compile_spiking_mlp(model, lanes)
    if isinstance(model, IntWTASpikingformer):
        return compile_wta_spikingformer(model, seq_len if seq_len is not None else 32, lanes)
    if isinstance(model, IntMatterhorn):
        return compile_matterhorn(model, lanes)
    name = type(model).__name__
    layer, needs = MISSING.get(name, ("?", "its operations"))
    raise SpecError(f"model {name}: layer {layer}: not on the core yet: needs {needs} (the core runs "
                    f"IntSpikingMLP, IntWTASpikingformer and IntMatterhorn)")
