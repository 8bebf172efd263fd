"""`lakehouse-jobs` (or `python -m jobs`): drain a lake's registry events, list triggers and runs.

lakehouse-jobs drain /data/lake [--follow SECONDS]
lakehouse-jobs triggers /data/lake
lakehouse-jobs runs /data/lake
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from ._triggers import call, drain, list_runs, list_triggers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse-jobs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("drain", help="deliver every due registry event (webhooks and job triggers)")
    d.add_argument("lake", help="lake root path or lakehouse:/// URI")
    d.add_argument(
        "--follow", type=float, default=0.0, metavar="SECONDS", help="keep delivering (retries included) for this long"
    )
    for name in ("triggers", "runs"):
        sub.add_parser(name, help=f"print the lake's {name} as JSON lines").add_argument("lake")
    c = sub.add_parser("call", help="(internal) call package.module:function with $LAKEHOUSE_EVENT")
    c.add_argument("target")
    args = parser.parse_args(argv)
    if args.cmd == "drain":
        drain(args.lake, follow_seconds=args.follow)
    elif args.cmd == "triggers":
        for t in list_triggers(args.lake):
            print(json.dumps(dataclasses.asdict(t)))
    elif args.cmd == "runs":
        for r in list_runs(args.lake):
            print(json.dumps(dataclasses.asdict(r)))
    else:
        call(args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
