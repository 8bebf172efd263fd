"""The jobs `lakehouse-jobs` runs: each one's help, its command-line arguments and the function it calls.

A job's function is imported when the job runs, so `lakehouse-jobs --help` stays fast and a job's heavy imports
(Spark, scikit-learn, matplotlib) load only for the job that needs them.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Arg:
    """One command-line option: `flags` and `argparse` keyword arguments; `dest` is the job function's keyword."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.options.get("dest") or self.flags[0].lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class JobSpec:
    help: str
    target: str
    """`module:function` inside `jobs`, e.g. `_maintain:maintain`."""
    args: tuple[Arg, ...] = ()

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        for a in self.args:
            parser.add_argument(*a.flags, dest=a.dest, **{k: v for k, v in a.options.items() if k != "dest"})

    def arguments(self, ns: argparse.Namespace) -> dict[str, Any]:
        """The job function's keyword arguments from the parsed command line (unset options left out)."""
        return {a.dest: getattr(ns, a.dest) for a in self.args if getattr(ns, a.dest) is not None}

    def function(self) -> Callable[..., dict[str, Any]]:
        module, _, name = self.target.partition(":")
        fn: Callable[..., dict[str, Any]] = getattr(importlib.import_module(f"jobs.{module}"), name)
        return fn


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


JOBS: dict[str, JobSpec] = {}
"""Job name -> spec, in the order `--help` lists them. Each job module's entry is added below."""
