"""Recipe: Matterhorn (golden/models/matterhorn.py): MTTS encoding, spike-driven attention with
adaptive-threshold LIF neurons under the seeded variation model, on 8x8 digits.

Also a small tool for trained checkpoints (``python -m spikeforge.training.matterhorn``):

    report CKPT                 held-out accuracy (float and integer) and the silent fractions of
                                the MTTS-encoded stem activations without mask, with mask, with
                                mask + dead zone
    vectors CKPT -o DIR         MTTS co-simulation vectors from the trained model's real
                                activations on held-out digits (the committed sim/data set)
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from golden.models.matterhorn import Matterhorn

from . import Recipe


def build(vocab_size, **config):
    return Matterhorn(**config)


RECIPE = Recipe(
    name="matterhorn",
    task="digits",
    build=build,
    defaults={"epochs": 12, "lr": 0.005, "batch_size": 64, "dim": 32, "heads": 2, "blocks": 1, "mlp_ratio": 2,
              "time_steps": 8, "act_bits": 5, "act_frac": 2, "train_form": "step", "mask": True,
              "mask_value": 0, "dead_zone": 0, "attn_shift": 2, "threshold": 0.5, "beta": 0.875,
              "adapt_increment": 0.5, "adapt_shift": 2, "variation_seed": 0, "threshold_spread": 0.1,
              "leak_spread": 0.05, "noise": 0.05, "weight_levels": 7, "weight_gain_sigma": 0.05,
              "weight_offset_sigma": 4, "mismatch_seed": 1},
    summary="Matterhorn: MTTS-encoded spike-driven transformer, adaptive-threshold LIF, seeded analog variation, "
            "log-quantized weights with the memory's analog mismatch",
)


# ---- tools for a trained checkpoint -----------------------------------------------------------------

def held_out_report(checkpoint: str, dead_zones=(0, 1, 2, 3), seed: int | None = None) -> dict:
    """Held-out accuracy (float, integer) and MTTS silent fractions of the stem codes.

    For each dead-zone half width d: the silent fraction of all held-out encoded activations
    without mask (plain TTFS), with the mask, with mask + dead zone [M - d, M + d], and the
    integer model's held-out accuracy when run with that encoder.
    """
    from golden import data
    from golden.models.matterhorn import digits_pixels
    from golden.mtts import pick_mask_value, silence_report
    from spikeforge.training import load_checkpoint

    torch.set_num_threads(1)
    model, ckpt = load_checkpoint(checkpoint)
    split = data.digits_split(seed=ckpt.get("seed", 0) if seed is None else seed)
    trained = model.mtts
    with torch.no_grad():
        float_acc = float((model(split.x_test).argmax(1) == split.y_test).float().mean())
    imodel = model.to_integer()
    train_codes = imodel.codes(digits_pixels(split.x_train))
    test_pixels = digits_pixels(split.x_test)
    codes = imodel.codes(test_pixels)
    out = {"checkpoint": checkpoint, "trained_mtts": trained.to_dict(), "float_accuracy": float_acc,
           "most_frequent_code_train": pick_mask_value(train_codes), "values": int(codes.numel()), "rows": []}
    for d in dead_zones:
        spec = trained.with_dead_zone(d)
        imodel.mtts = spec
        int_acc = float((imodel(test_pixels).argmax(1) == split.y_test).float().mean())
        rep = silence_report(spec, codes)
        rep.update({"dead_zone_half_width": d, "integer_accuracy": int_acc})
        out["rows"].append(rep)
    imodel.mtts = trained
    out["integer_accuracy"] = float((imodel(test_pixels).argmax(1) == split.y_test).float().mean())
    return out


def activation_vectors(checkpoint: str, directory, *, images: int = 40, lanes: int = 8, emit: str = "spikes"):
    """Write the stem codes of the first ``images`` held-out digits as an MTTS vector set.

    Block name ``matterhorn-activations``; arrays: ``values`` int8 (beats, lanes) in the
    trained model's encoder order (image, token, channel); the manifest's spec is the trained
    model's MTTS spec with ``lanes`` and ``emit`` set; meta records the checkpoint's sha256,
    its metrics and the golden silent count.
    """
    import hashlib
    from pathlib import Path

    from golden import data
    from golden.models.matterhorn import digits_pixels
    from golden.mtts import mtts_silent
    from golden.vectors import save_vectors
    from spikeforge.training import load_checkpoint

    torch.set_num_threads(1)
    model, ckpt = load_checkpoint(checkpoint)
    split = data.digits_split(seed=ckpt.get("seed", 0))
    codes = model.to_integer().codes(digits_pixels(split.x_test[:images])).flatten()
    if codes.numel() % lanes:
        raise ValueError(f"{codes.numel()} values do not fill beats of {lanes} lanes")
    spec = model.mtts.replace(lanes=lanes, emit=emit)
    values = codes.reshape(-1, lanes).to(torch.int8)
    meta = {"checkpoint_sha256": hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest(),
            "metrics": ckpt.get("metrics", {}), "config": ckpt.get("config", {}), "images": images,
            "silent_total": int(mtts_silent(spec, codes).sum()),
            "command": f"python -m spikeforge.training.matterhorn vectors CKPT -o DIR --images {images} "
                       f"--lanes {lanes} --emit {emit}"}
    return save_vectors(directory, "matterhorn-activations", spec.to_dict(), 0, {"values": values}, meta=meta)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.training.matterhorn",
                                     description="Matterhorn checkpoint tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("report", help="held-out accuracy and MTTS silent fractions")
    p.add_argument("checkpoint")
    p.add_argument("--dead-zones", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("vectors", help="MTTS vectors from the trained model's held-out activations")
    p.add_argument("checkpoint")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--lanes", type=int, default=8)
    p.add_argument("--emit", choices=("code", "spikes"), default="spikes")
    args = parser.parse_args(argv)
    try:
        if args.command == "vectors":
            print(f"wrote {activation_vectors(args.checkpoint, args.output, images=args.images, lanes=args.lanes, emit=args.emit)}")
            return 0
        rep = held_out_report(args.checkpoint, tuple(args.dead_zones))
    except ValueError as exc:
        print(f"matterhorn: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"{rep['checkpoint']}: held-out accuracy float {rep['float_accuracy']:.4f}, "
          f"integer {rep['integer_accuracy']:.4f} (trained encoder: mask {rep['trained_mtts']['mask']}, "
          f"dead zone {rep['trained_mtts']['dead_zone']} [{rep['trained_mtts']['dead_lo']}, "
          f"{rep['trained_mtts']['dead_hi']}])")
    print(f"most frequent stem code on the training set: {rep['most_frequent_code_train']}; "
          f"{rep['values']} held-out encoded values")
    print(f"{'dead zone':>10} {'plain TTFS':>11} {'mask':>8} {'mask+dz':>8} {'dz max err':>10} {'int acc':>8}")
    for r in rep["rows"]:
        dz = "none" if r["dead_zone"] is None else f"[{r['dead_zone'][0]},{r['dead_zone'][1]}]"
        print(f"{dz:>10} {r['silent_plain']:>11.4f} {r['silent_mask']:>8.4f} {r['silent_mask_dead_zone']:>8.4f} "
              f"{r['dead_zone_max_error']:>10d} {r['integer_accuracy']:>8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
