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
class CliJob:
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


def _model_selector(stage_help: str = "the model's stage (e.g. Production)") -> tuple[Arg, ...]:
    return (
        Arg(("--model",), {"dest": "model_name", "required": True, "help": "registered model name"}),
        Arg(("--stage",), {"help": stage_help + "; or --alias"}),
        Arg(("--alias",), {"help": "the model's alias (e.g. champion); or --stage"}),
    )


JOBS: dict[str, CliJob] = {
    "monitor": CliJob(
        help="score a labelled table window by window with a registered model, log a run per window, alert on "
        "a metric or drift past its threshold, write a PNG chart and an HTML report",
        target="_monitor:monitor",
        args=(
            *_model_selector(),
            Arg(("--table",), {"required": True, "help": "the labelled Delta table (name under the lake, or path)"}),
            Arg(("--label",), {"dest": "label_column", "required": True, "help": "the label column"}),
            Arg(("--time",), {"dest": "timestamp_column", "required": True, "help": "the event-time column"}),
            Arg(("--window",), {"help": "month (default), week, quarter, day, a pandas frequency or a number of days"}),
            Arg(("--start",), {"help": "first time monitored (naive = UTC)"}),
            Arg(("--end",), {"help": "end of the monitored time, exclusive"}),
            Arg(("--task",), {"choices": ["classification", "regression"], "help": "default: inferred"}),
            Arg(("--features",), {"type": _csv, "help": "comma-separated input columns (default: the signature's)"}),
            Arg(("--baseline",), {"help": "training (default when logged), window:first or window:<date>"}),
            Arg(("--tolerances",), {"help": "per-metric tolerance, e.g. accuracy=0.03,rmse=0.2"}),
            Arg(("--reference-table",), {"help": "the training set for drift (default: the baseline window)"}),
            Arg(("--drift-method",), {"choices": ["psi", "ks"], "help": "psi (default) or ks"}),
            Arg(("--drift-threshold",), {"type": float, "help": "default 0.2 for PSI, 0.1 for KS"}),
            Arg(("--experiment",), {"help": "monitoring experiment (default /monitoring/<model>)"}),
            Arg(("--output-dir",), {"help": "where the chart and report go (default <lake>/monitoring/<model>)"}),
        ),
    ),
    "validate": CliJob(
        help="score a model version and the Production version on a holdout table, tag the verdict "
        "(validation.status), which gates promotion for models tagged validation.required=true",
        target="_validate:validate",
        args=(
            Arg(("--model",), {"dest": "model_name", "required": True, "help": "registered model name"}),
            Arg(("--version",), {"required": True, "help": "the model version to validate"}),
            Arg(("--holdout-table",), {"required": True, "help": "the labelled holdout Delta table"}),
            Arg(("--label",), {"dest": "label_column", "required": True, "help": "the label column"}),
            Arg(("--metric",), {"help": "accuracy, rmse, mae or r2 (default: by task)"}),
            Arg(("--tolerance",), {"type": float, "help": "how much worse than Production still passes (default 0)"}),
        ),
    ),
}
"""Job name -> spec, in the order `--help` lists them."""
