"""Window-buffer and layer-norm vectors from a trained LSFormer's real activations.

    python -m spikeforge.lsformer_vectors CHECKPOINT -o sim/data/lsformer_kv [--images 2] [--head -1]
    python -m spikeforge.lsformer_vectors CHECKPOINT -o sim/data/lsformer_ln --norm head [--images 1]

Runs the checkpoint's integer model (``IntLSFormer``) on the first held-out digits
(``golden.data.digits_split(seed)`` with the checkpoint's training seed), takes the K and V spike maps that one
windowed attention head of block 0 streams through its dilated window buffer
(``2 D/heads`` channels of width 1, one map per image and time step), and writes a
compressed ``window`` vector directory: ``maps``, ``windows`` (= ``dilated_windows``),
plus that head's ``q`` spikes and attention ``counts`` from the model, so a test can
recompute the model's attention from the buffer's windows. The manifest records the
checkpoint's sha256, its held-out accuracy and the command options.

With ``--norm NAME`` (``norm1``, ``norm2`` of block 0, or ``head``) it writes a ``layernorm``
vector directory instead: the residual-stream tokens that norm receives (one token per image,
time step and pixel; ``norm1``'s input is the stem's, the same at every step, so once per
image and pixel), the norm's integer gamma and beta, the spec that holds them
(``golden.layernorm.LayerNormSpec``, widths from the values) and the golden outputs, which
are checked equal to the model's own normalised values before anything is written.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch


def make_vectors(checkpoint: str | Path, out: str | Path, *, images: int = 2, head: int = -1) -> Path:
    from golden import data
    from golden.models.lsformer import pixels_from_float
    from golden.vectors import save_vectors
    from golden.window import dilated_windows

    from .training import load_checkpoint

    model, ckpt = load_checkpoint(checkpoint)
    if ckpt["recipe"] != "lsformer":
        raise ValueError(f"{checkpoint} is a {ckpt['recipe']!r} checkpoint, not 'lsformer'")
    int_model = model.to_integer()
    ldwa = int_model.blocks[0].attn
    windowed = [h for h, spec in enumerate(ldwa.head_specs) if spec is not None]
    if not windowed:
        raise ValueError(f"{checkpoint}: every head is global; no window buffer to feed")
    if head == -1:  # the head with the largest dilation
        head = max(windowed, key=lambda h: ldwa.head_specs[h].dilations[0])
    if head not in windowed:
        raise ValueError(f"head {head} is not a windowed head; windowed heads: {windowed}")
    if images < 1:
        raise ValueError(f"--images must be >= 1, got {images}")
    seed = int(ckpt.get("seed", 0))
    split = data.digits_split(seed=seed)    # the checkpoint's own held-out digits
    layers = int_model.forward_layers(pixels_from_float(split.x_test[:images]))
    blk = layers["blocks"][0]
    spec = ldwa.head_specs[head]
    kv = blk["kv_maps"][head]                                  # (T B, H, W, 2 Dh)
    dh = ldwa.head_dim
    sl = slice(head * dh, (head + 1) * dh)
    t, b, n, _ = blk["q"].shape
    arrays = {
        "maps": kv.to(torch.uint8),
        "windows": dilated_windows(spec, kv).to(torch.uint8),
        "q": blk["q"][..., sl].reshape(t * b, ldwa.height, ldwa.width, dh).to(torch.uint8),
        "counts": blk["counts"][..., sl].reshape(t * b, ldwa.height, ldwa.width, dh).to(torch.int32),
    }
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    meta = {"source": f"lsformer checkpoint {Path(checkpoint).name}", "checkpoint_sha256": digest,
            "checkpoint_metrics": ckpt.get("metrics", {}), "model_config": ckpt["config"], "block": 0,
            "head": head, "images": images, "image_source": f"digits_split(seed={seed}).x_test[:images] (held out from this checkpoint's training)",
            "map_order": "time step major, then image (T B maps)",
            "command": f"python -m spikeforge.lsformer_vectors {checkpoint} -o {out} --images {images} --head {head}"}
    return save_vectors(out, "window", spec.to_dict(), 0, arrays, meta=meta, compressed=True)


NORMS = ("norm1", "norm2", "head")


def make_layernorm_vectors(checkpoint: str | Path, out: str | Path, *, norm: str = "head", images: int = 1) -> Path:
    from golden import data, fixed
    from golden.layernorm import LayerNormSpec, layer_norm_reference
    from golden.models.lsformer import pixels_from_float
    from golden.vectors import save_vectors

    from .training import load_checkpoint

    if norm not in NORMS:
        raise ValueError(f"--norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if images < 1:
        raise ValueError(f"--images must be >= 1, got {images}")
    model, ckpt = load_checkpoint(checkpoint)
    if ckpt["recipe"] != "lsformer":
        raise ValueError(f"{checkpoint} is a {ckpt['recipe']!r} checkpoint, not 'lsformer'")
    int_model = model.to_integer()
    seed = int(ckpt.get("seed", 0))
    split = data.digits_split(seed=seed)
    layers = int_model.forward_layers(pixels_from_float(split.x_test[:images]))
    blk = layers["blocks"][0]
    if norm == "norm1":
        ln, u = int_model.blocks[0].norm1, layers["u0"]                           # (B, N, D)
    elif norm == "norm2":
        ln, u = int_model.blocks[0].norm2, layers["u0"].unsqueeze(0) + blk["out"]  # (T, B, N, D)
    else:
        ln, u = int_model.head_norm, layers["blocks"][-1]["u"]
    tokens = u.reshape(-1, u.shape[-1])
    bits = lambda t: fixed.signed_bits_for(int(t.min()), int(t.max()))
    spec = LayerNormSpec(dim=tokens.shape[1], input_width=max(2, bits(tokens)), gamma_width=max(2, bits(ln.gamma)),
                         beta_width=max(2, bits(ln.beta)), eps=ln.eps)
    arrays = layer_norm_reference(spec, tokens, ln.gamma, ln.beta)
    if not torch.equal(arrays["y"], ln(tokens)):
        raise AssertionError("layer norm vectors: the spec's function differs from the model's norm")
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    meta = {"source": f"lsformer checkpoint {Path(checkpoint).name}", "checkpoint_sha256": digest,
            "checkpoint_metrics": ckpt.get("metrics", {}), "model_config": ckpt["config"], "norm": norm,
            "images": images, "image_source": f"digits_split(seed={seed}).x_test[:images] (held out from this checkpoint's training)",
            "token_order": "image, pixel" if norm == "norm1" else "time step, image, pixel",
            "command": f"python -m spikeforge.lsformer_vectors {checkpoint} -o {out} --norm {norm} --images {images}"}
    return save_vectors(out, "layernorm", spec.to_dict(), 0, arrays, meta=meta, compressed=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.lsformer_vectors", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("-o", "--output", required=True, metavar="DIR")
    parser.add_argument("--images", type=int, default=2, help="held-out digits to run (default 2)")
    parser.add_argument("--head", type=int, default=-1, help="head of block 0 (default: largest dilation)")
    parser.add_argument("--norm", choices=NORMS, default=None,
                        help="write layer-norm vectors of this norm instead of window-buffer vectors")
    args = parser.parse_args(argv)
    try:
        if args.norm is not None:
            directory = make_layernorm_vectors(args.checkpoint, args.output, norm=args.norm, images=args.images)
        else:
            directory = make_vectors(args.checkpoint, args.output, images=args.images, head=args.head)
    except (ValueError, OSError) as exc:
        print(f"spikeforge: error: {exc}", file=sys.stderr)
        return 2
    sizes = sum(p.stat().st_size for p in Path(directory).iterdir())
    print(f"wrote {directory} ({sizes} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
