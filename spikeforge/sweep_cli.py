"""The ``spikeforge sweep`` subcommand (``run``, ``list``, ``report``); the work is in ``spikeforge.sweep``
and ``spikeforge.codesign``."""

from __future__ import annotations

from pathlib import Path


def add_sweep_parser(sub) -> None:
    from .sweep import KNOBS, MODELS, study_names

    text = "co-design studies: sweep knobs against accuracy, cycles, energy and area on a Dask cluster"
    p = sub.add_parser("sweep", help=text, description=text)
    ssub = p.add_subparsers(dest="sweep_command", metavar="ACTION", required=True)

    def cluster_options(q):
        q.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
        q.add_argument("--threads", action="store_true", help="LocalCluster workers as threads, not processes")
        q.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing Dask cluster (tcp://HOST:PORT) instead of a LocalCluster")
        q.add_argument("--cache", metavar="DIR", help="point cache (default $SPIKEFORGE_CACHE/sweep or "
                                                      "~/.cache/spikeforge/sweep)")
        q.add_argument("--samples", type=int, default=None,
                       help="held-out samples per point (default: the study's own, else 64)")
        q.add_argument("--retry-failed", action="store_true", help="recompute points cached as failed")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")

    r = ssub.add_parser("run", help="run one study (or a custom sweep): CSV, JSON, Pareto fronts, SVG plots",
                        description=f"studies: {', '.join(study_names())}; knobs: {', '.join(KNOBS)}")
    r.add_argument("study", metavar="STUDY", help=f"one of: {', '.join(study_names())}")
    r.add_argument("--models", metavar="M,M", help=f"models (default: the study's), of: {', '.join(MODELS)}")
    r.add_argument("--set", action="append", default=[], metavar="KNOB=V1,V2",
                   help="replace the study's grid by the product of these knob values (repeatable)")
    r.add_argument("--seeds", metavar="S,S", help="seeds (they matter only where mismatch is on)")
    r.add_argument("--retrain", action="store_true",
                   help="retrain the checkpoint for the knobs that change training (T, k, dead_zone, "
                        "memory_sigma): expensive")
    r.add_argument("--epochs", type=int, help="epochs of a retraining (default: the checkpoint's)")
    r.add_argument("--out", default="docs/results/codesign", metavar="DIR", help="output folder")
    cluster_options(r)

    ssub.add_parser("list", help="the studies and knobs")

    rep = ssub.add_parser("report", help="run every study (cached) and write docs/results/codesign.md")
    rep.add_argument("--out", default="docs/results", metavar="DIR",
                     help="folder of codesign.md (the studies' files go into DIR/codesign)")
    cluster_options(rep)


def _ints(text: str | None, what: str) -> list[int] | None:
    from .sweep import SweepError

    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise SweepError(f"{what} {text!r}: give integers separated by commas") from None


def cmd_sweep(args) -> int:
    from . import sweep as sw

    if args.sweep_command == "list":
        for name, st in sw.STUDIES.items():
            grids = "; ".join(" x ".join(f"{k} in {list(v)}" for k, v in g.items()) for g in st.grids)
            print(f"{name:12s} {st.title}\n{'':12s} models {', '.join(st.models)}; {grids}; seeds {list(st.seeds)}")
        print(f"{'custom':12s} --models M,M --set KNOB=V1,V2 ...")
        print("knobs:")
        for name, (what, parse, trains) in sw.KNOBS.items():
            print(f"  {name:10s} {what} ({parse.__name__}{'; --retrain retrains' if trains else ''})")
        return 0
    kwargs = dict(cache_dir=args.cache, workers=args.workers, scheduler=args.scheduler,
                  processes=not args.threads, progress=not args.no_progress, retry_failed=args.retry_failed)
    if args.sweep_command == "report":
        from .codesign import report

        path, result = report(Path(args.out), samples=64 if args.samples is None else args.samples, **kwargs)
        print(f"wrote {path} ({result.computed} points computed, {result.cached} from the cache, "
              f"{len(result.failed)} failed, {result.seconds:.1f} s)")
        return 0
    if args.study not in sw.study_names():
        raise sw.SweepError(f"unknown study {args.study!r}; studies: {', '.join(sw.study_names())}")
    grid = sw.parse_knob_values(args.set)
    models = sw.check_models(args.models.split(",")) if args.models else None
    result, files = sw.sweep(args.study, models=models, grid=grid, seeds=_ints(args.seeds, "--seeds"),
                             samples=args.samples, out_dir=args.out, retrain=args.retrain, epochs=args.epochs,
                             **kwargs)
    print(f"sweep {args.study}: {len(result.records)} points ({result.computed} computed, {result.cached} from "
          f"the cache, {len(result.failed)} failed) in {result.seconds:.1f} s")
    for rec in result.failed:
        print(f"  failed: {rec['model']} {sw.knob_label(None, rec)}: {rec.get('error')}")
    print("wrote " + ", ".join(str(f) for f in files))
    return 0
