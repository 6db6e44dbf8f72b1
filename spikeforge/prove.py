"""``spikeforge prove``: the formal properties of a block (``sim/formal``), one line per property.

    spikeforge prove BLOCK [--depth N] [--induction] [--config NAME] [--set FIELD=VALUE ...]
    spikeforge prove --all

Each line: block, property, mode (``bmc depth N`` or ``k-induction k=N``), PASS / FAIL / OPEN /
TIMEOUT / ERROR, seconds. A FAIL writes its counterexample trace (VCD) into ``--out`` (default
``build/formal``) and names the file; the exit status is 1 when any property fails (OPEN, an
induction that did not close, is not a failure: its base case passed).
"""

from __future__ import annotations

import json
import time

MAX_DEPTH = 200


def add_parser(sub, block_names, int_range) -> None:
    p = sub.add_parser("prove", help="prove a block's formal properties with SymbiYosys (stream contract, "
                       "latency, saturation); a failure writes its counterexample trace",
                       description="Prove the formal properties of one block (spikeforge prove BLOCK) or of every "
                                   "block (spikeforge prove --all): BMC from reset, or k-induction with --induction.")
    p.add_argument("block", nargs="?", metavar="BLOCK", choices=block_names(),
                   help=f"one of: {', '.join(block_names())}")
    p.add_argument("--all", action="store_true", help="every block with formal properties")
    p.add_argument("--depth", type=int_range(1, MAX_DEPTH), default=None, metavar="N",
                   help=f"BMC depth in cycles, 1 .. {MAX_DEPTH} (default: each property's own, past the "
                        "pipeline plus a few beats)")
    p.add_argument("--induction", action="store_true",
                   help="also run k-induction (k = the depth) for the properties where it closes")
    p.add_argument("--property", dest="properties", action="append", default=None, metavar="NAME",
                   help="only this property (repeatable); e.g. valid_held, drains, latency, saturate")
    p.add_argument("--config", default=None, metavar="NAME",
                   help="a named formal configuration of the block (e.g. lif: wide, addressed, multiply, core)")
    p.add_argument("--set", dest="overrides", action="append", default=None, metavar="FIELD=VALUE",
                   help="override a field of the block's small formal spec (JSON value: --set lanes=2, "
                        "--set overflow='\"wrap\"' or overflow=wrap)")
    p.add_argument("--out", default="build/formal", metavar="DIR",
                   help="folder for counterexample traces (default build/formal)")
    p.add_argument("--jobs", type=int_range(1, 64), default=2, help="solver runs in parallel (default 2)")
    p.add_argument("--timeout", type=int_range(1, 86400), default=600, metavar="S",
                   help="seconds one property may run before it is reported as TIMEOUT (default 600)")
    p.add_argument("--no-cache", action="store_true", help="run the solver even if an identical run is cached")


def parse_overrides(items, spec_cls) -> dict:
    import dataclasses

    from .cli import CLIError

    fields = {f.name for f in dataclasses.fields(spec_cls)}
    values = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise CLIError(f"--set {item!r}: give FIELD=VALUE, e.g. --set lanes=2")
        if name not in fields:
            raise CLIError(f"--set {item!r}: {spec_cls.__name__} has no field {name!r}; fields: "
                           f"{', '.join(sorted(fields))}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text                      # a bare word: a string choice (overflow=wrap)
        values[name] = tuple(value) if isinstance(value, list) else value
    return values


def cmd_prove(args) -> int:
    from sim.formal import FormalToolError, formal_block, formal_names, prove, resolve_spec
    from sim.formal.base import describe

    from .cli import CLIError, check_output_dir

    if args.all and args.block:
        raise CLIError("give either --all or one BLOCK, not both")
    if not args.all and not args.block:
        raise CLIError(f"name a BLOCK ({', '.join(formal_names())}) or give --all")
    if args.all and (args.overrides or args.config or args.properties):
        raise CLIError("--set, --config and --property go with one BLOCK, not --all")
    out = check_output_dir(args.out, "--out")
    names = formal_names() if args.all else [args.block]
    if args.block and args.block not in formal_names():
        raise CLIError(f"block {args.block!r} has no formal properties yet; blocks with properties: "
                       f"{', '.join(formal_names())}")
    failed = 0
    start = time.monotonic()
    for name in names:
        fblock = formal_block(name)
        spec = resolve_spec(fblock, args.config,
                            parse_overrides(args.overrides, type(fblock.default_spec())))
        print(f"{name}: {type(spec).__name__}({describe(spec)})", flush=True)
        try:
            results = prove(name, spec=spec, properties=args.properties, depth=args.depth,
                            induction=args.induction, out_dir=out, jobs=args.jobs, use_cache=not args.no_cache,
                            tag=args.config or "", timeout=args.timeout)
        except FormalToolError as exc:
            raise CLIError(str(exc)) from None
        for result in results:
            print("  " + result.line(), flush=True)
            failed += result.status in ("FAIL", "ERROR", "TIMEOUT")
    total = time.monotonic() - start
    print(f"{'FAIL' if failed else 'PASS'}: {failed} of the properties failed ({total:.1f} s)"
          if failed else f"PASS: every property holds ({total:.1f} s)")
    return 1 if failed else 0
