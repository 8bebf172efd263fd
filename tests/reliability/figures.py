"""Print the figures of the last reliability runs (test-artifacts/reliability/*.json) as Markdown, for
RELIABILITY.md: `.venv/bin/python tests/reliability/figures.py`."""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "test-artifacts", "reliability")


def main() -> int:
    if not os.path.isdir(ARTIFACTS):
        print(f"no figures in {ARTIFACTS}: run `.venv/bin/python -m pytest tests/reliability` first", file=sys.stderr)
        return 1
    for name in sorted(os.listdir(ARTIFACTS)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(ARTIFACTS, name)) as fh:
            record = json.load(fh)
        print(f"### {record['test']}{' (--long)' if record['long'] else ''}: {record['outcome']}")
        print(
            f"`{record['command']}`, {record['finished_utc']}, {record['seconds']} s, {record['machine']['cores']} cores"
        )
        print()
        for key, value in sorted(record["figures"].items()):
            print(f"- {key}: {value}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
