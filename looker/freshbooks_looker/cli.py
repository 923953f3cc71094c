"""``freshbooks-looker``: one console script, one sub-command per job.

freshbooks-looker check [--duckdb FILE | --postgres DSN]   offline LookML check [dev extra]
freshbooks-looker post-load                                 every step after a load: timestamptz,
                                                            datagroup reset, scheduled plans
freshbooks-looker refresh                                   reset the Looker datagroup (after a load)
freshbooks-looker drift  (--duckdb FILE | --postgres DSN)   FreshBooks dimensions vs the model
freshbooks-looker timestamptz --postgres DSN               timestamp -> timestamptz (PostgreSQL)
freshbooks-looker generate [--check]                        regenerate the generated LookML [dev]
freshbooks-looker cost-centers --csv F (--duckdb F | --postgres DSN)   load the cost-center mapping
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import cost_centers, drift, generate, looker_api, post_load
from .extras import ExtraMissing
from .warehouse import convert_timestamps_to_timestamptz

try:  # a development tool: the runtime install (no `dev` extra) has no sqlglot / python-liquid
    from . import check

    CHECK_MISSING: str | None = None
except ExtraMissing as exc:
    CHECK_MISSING = str(exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="freshbooks-looker", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "check", help="offline LookML check (static, all dialects, optional warehouse run) [dev]"
    )
    if CHECK_MISSING is None:
        check.add_arguments(p)
        p.set_defaults(func=check.run)
    else:  # one line instead of a traceback, whatever the arguments
        p.set_defaults(func=_missing)

    p = sub.add_parser(
        "post-load",
        help="run the post-load steps (timestamptz, datagroup reset, "
        "scheduled plans) after a successful load",
    )
    post_load.add_arguments(p)
    p.set_defaults(func=post_load.run)

    p = sub.add_parser("refresh", help="reset the Looker datagroup after a successful load")
    looker_api.add_arguments(p)
    p.set_defaults(func=looker_api.run)

    p = sub.add_parser("drift", help="compare FreshBooks dimensions in the warehouse with the model")
    drift.add_arguments(p)
    p.set_defaults(func=drift.run)

    p = sub.add_parser("timestamptz", help="convert timestamp columns to timestamptz (PostgreSQL)")
    p.add_argument(
        "--postgres",
        default=os.environ.get("FRESHBOOKS_LOOKER_POSTGRES_DSN"),
        help="PostgreSQL DSN (default: env FRESHBOOKS_LOOKER_POSTGRES_DSN)",
    )
    p.add_argument("--schema", default="freshbooks")
    p.set_defaults(func=_timestamptz)

    p = sub.add_parser(
        "generate", help="regenerate the base views and the manifest's dialect constants [dev]"
    )
    p.add_argument("--check", action="store_true", help="exit 1 if generated files are stale")
    p.add_argument("--catalog", help="catalog JSON file (default: run tap-freshbooks --discover)")
    p.set_defaults(func=_generate)

    p = sub.add_parser("cost-centers", help="load the cost-center mapping CSV into <schema>.cost_centers")
    cost_centers.add_arguments(p)
    p.set_defaults(func=cost_centers.run)

    args, unknown = parser.parse_known_args(argv)
    if unknown and args.func is not _missing:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args) or 0)
    except ExtraMissing as exc:  # a warehouse driver the install lacks: say which extra brings it
        print(f"freshbooks-looker {args.command}: {exc}", file=sys.stderr)
        return 2


def _missing(args: argparse.Namespace) -> int:
    print(f"freshbooks-looker {args.command}: {CHECK_MISSING}", file=sys.stderr)
    return 2


def _timestamptz(args: argparse.Namespace) -> int:
    if not args.postgres:
        print("timestamptz: give --postgres DSN or set FRESHBOOKS_LOOKER_POSTGRES_DSN")
        return 2
    changed = convert_timestamps_to_timestamptz(args.postgres, args.schema)
    print(f"timestamptz: {len(changed)} column(s) converted")
    return 0


def _generate(args: argparse.Namespace) -> int:
    catalog = json.loads(Path(args.catalog).read_text()) if args.catalog else None
    files = generate.generate(catalog)
    if args.check:
        stale = generate.stale(files)
        for path in stale:
            print(f"stale: {path}")
        return 1 if stale else 0
    for path in generate.write(files):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
