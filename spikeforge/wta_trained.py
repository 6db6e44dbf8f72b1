"""WTA attention vectors from a trained WD/WE-Spikingformer's real Q/K/V spikes.

    python -m spikeforge.wta_trained CHECKPOINT [-o sim/data/wta_trained] [--windows 8] [--lanes 4]
                                    [--layers DIR]

runs the checkpoint's integer model on held-out text (the tail of the corpus, the
first ``--windows`` windows of ``seq_len`` characters), takes block 0's attention
Q, K and V spikes (T, B, L, D), splits the heads and writes every (step, window,
head) as one sequence of the WTA attention unit: the packed spike bits, the
winners the integer model chose and the manifest (checkpoint sha256, recipe, held-out
metrics). ``sim/test_wta_trained.py`` recomputes the golden attention from the
hash-checked spikes, checks it against the stored winners and co-simulates the RTL.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from golden import data
from golden.models.common import heads_split
from golden.vectors import save_vectors
from golden.wta import WTASpec, wta_attention

BLOCK = "wta-trained"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "sim" / "data" / "wta_trained"


def trained_vectors(checkpoint: str | Path, *, windows: int = 8, lanes: int = 4, layer: str = "block0.attn"):
    """Return (spec, arrays, meta) for ``save_vectors``."""
    from .training import load_checkpoint

    model, ckpt = load_checkpoint(checkpoint)
    if ckpt.get("vocab") is None or not hasattr(model, "to_integer"):
        raise ValueError(f"{checkpoint} is not a WTA language model checkpoint (recipe {ckpt.get('recipe')!r})")
    seq_len = ckpt["train"]["seq_len"]
    split = data.text_split(max_chars=ckpt["train"].get("max_chars"))
    tokens = data.sequential_windows(split.val_ids, seq_len, windows)
    if tokens.shape[0] < windows:
        raise ValueError(f"the held-out text has only {tokens.shape[0]} windows of {seq_len}")
    with torch.no_grad():
        out = model.to_integer().forward_layers(tokens)
    if f"{layer}.q" not in out:
        raise ValueError(f"the model has no attention layer {layer!r}")
    spec: WTASpec = out["_specs"][layer]
    heads = spec.heads
    q, k, v = (heads_split(out[f"{layer}.{n}"], heads) for n in "qkv")    # (T, B, H, L, dh)
    flat = lambda x: x.reshape(-1, *x.shape[-2:])                            # noqa: E731
    q, k, v = flat(q), flat(k), flat(v)
    index, valid = flat(out[f"{layer}.wta_index"]), flat(out[f"{layer}.wta_valid"])
    spec = spec.replace(heads=1, lanes=lanes)
    # the stored winners are the model's own; the golden function on the extracted rows must agree
    assert torch.equal(wta_attention(spec, q, k, v).index, index)
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    arrays = {"q_bits": np.packbits(q.numpy().astype(np.uint8), axis=-1),
              "k_bits": np.packbits(k.numpy().astype(np.uint8), axis=-1),
              "v_bits": np.packbits(v.numpy().astype(np.uint8), axis=-1),
              "index": index.numpy().astype(np.uint8), "n_valid": valid.sum(-1).numpy().astype(np.uint8)}
    meta = {"checkpoint_sha256": digest, "recipe": ckpt["recipe"], "layer": layer, "windows": windows,
            "seq_len": seq_len, "metrics": ckpt.get("metrics", {}), "head_dim": spec.head_dim,
            "spike_rate": {n: float(x.double().mean()) for n, x in (("q", q), ("k", k), ("v", v))},
            "command": f"spikeforge train {ckpt['recipe']} --out CHECKPOINT && "
                       f"python -m spikeforge.wta_trained CHECKPOINT --windows {windows} --lanes {lanes}"}
    return spec, arrays, meta


def model_layer_vectors(checkpoint: str | Path, directory: str | Path, *, windows: int = 2) -> Path:
    """Reference vectors of every layer of the checkpoint's integer model on held-out text.

    Writes one vector directory (block ``wta-model``) whose arrays are the integer model's
    ``forward_layers`` tensors (tokens, embedding currents and spikes, q, k, v, winners,
    attention output, projections, MLP, logits) for ``windows`` held-out windows.
    """
    from .training import load_checkpoint

    model, ckpt = load_checkpoint(checkpoint)
    if ckpt.get("vocab") is None or not hasattr(model, "to_integer"):
        raise ValueError(f"{checkpoint} is not a WTA language model checkpoint (recipe {ckpt.get('recipe')!r})")
    split = data.text_split(max_chars=ckpt["train"].get("max_chars"))
    tokens = data.sequential_windows(split.val_ids, ckpt["train"]["seq_len"], windows)
    with torch.no_grad():
        out = model.to_integer().forward_layers(tokens)
    specs = {name: spec.to_dict() for name, spec in out.pop("_specs").items()}
    arrays = {name.replace(".", "__"): t.to(torch.int64) for name, t in out.items()}
    meta = {"checkpoint_sha256": hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest(),
            "recipe": ckpt["recipe"], "config": ckpt["config"], "wta_specs": specs,
            "note": "array names are forward_layers keys with '.' written as '__'"}
    return save_vectors(directory, "wta-model", {}, 0, arrays, meta=meta)


def unpack_trained(vectors) -> tuple[WTASpec, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A loaded ``wta-trained`` VectorSet -> (spec, Q, K, V) int64 (S, L, dh)."""
    spec = WTASpec.from_dict(vectors.spec)
    d = spec.head_dim

    def bits(name):
        return torch.from_numpy(np.unpackbits(vectors[name], axis=-1)[..., :d].astype(np.int64))

    return spec, bits("q_bits"), bits("k_bits"), bits("v_bits")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.wta_trained", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("-o", "--output", default=str(DEFAULT_DIR))
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--layers", metavar="DIR", help="also write every layer's integer tensors to DIR")
    args = parser.parse_args(argv)
    try:
        spec, arrays, meta = trained_vectors(args.checkpoint, windows=args.windows, lanes=args.lanes)
        if args.layers:
            print(f"wrote {model_layer_vectors(args.checkpoint, args.layers)} (every layer)")
    except (ValueError, OSError) as exc:
        print(f"spikeforge: error: {exc}", file=sys.stderr)
        return 2
    directory = save_vectors(args.output, BLOCK, spec.to_dict(), 0, arrays, meta=meta)
    rows = arrays["index"].shape[0] * arrays["index"].shape[1]
    print(f"wrote {directory}: {arrays['index'].shape[0]} sequences, {rows} attention rows, "
          f"spike rates {meta['spike_rate']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
