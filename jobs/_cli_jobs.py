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
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing: give comma-separated names, e.g. a,b")
    return parts


def _model_selector(stage_help: str = "the model's stage (e.g. Production)") -> tuple[Arg, ...]:
    return (
        Arg(("--model",), {"dest": "model_name", "required": True, "help": "registered model name"}),
        Arg(("--stage",), {"help": stage_help + "; or --alias"}),
        Arg(("--alias",), {"help": "the model's alias (e.g. champion); or --stage"}),
    )


JOBS: dict[str, CliJob] = {
    "maintain": CliJob(
        help="OPTIMIZE (compaction; Z-order where declared) and VACUUM (a dry run unless --no-dry-run) every "
        "table under the lake, or those named; safe beside writers and another maintain",
        target="_maintain:maintain",
        args=(
            Arg(("--tables",), {"type": _csv, "help": "tables to maintain, comma-separated (default: every table)"}),
            Arg(("--optimize",), {"action": argparse.BooleanOptionalAction, "help": "compact small files (default)"}),
            Arg(("--vacuum",), {"action": argparse.BooleanOptionalAction, "help": "VACUUM after OPTIMIZE (default)"}),
            Arg(
                ("--dry-run",),
                {
                    "action": argparse.BooleanOptionalAction,
                    "help": "list what VACUUM would delete without deleting (default; --no-dry-run deletes)",
                },
            ),
            Arg(
                ("--retention-hours",),
                {"type": float, "help": "VACUUM retention (default: each table's delta.deletedFileRetentionDuration)"},
            ),
            Arg(
                ("--zorder",),
                {
                    "action": "append",
                    "metavar": "TABLE=COL[,COL]",
                    "help": "Z-order a table by these columns (repeatable; default: the table's lakehouse.zorder.columns)",
                },
            ),
        ),
    ),
    "features": CliJob(
        help="run a feature pipeline (package.module:function returning a DataFrame for [start, end)) window by "
        "window and merge each window into a feature table; resumes from a failed window",
        target="_features:features",
        args=(
            Arg(("--pipeline",), {"required": True, "help": "package.module:function, called as fn(start, end)"}),
            Arg(("--table",), {"required": True, "help": "the feature table, e.g. features.customer_daily"}),
            Arg(("--start",), {"required": True, "help": "first window's start (UTC)"}),
            Arg(("--end",), {"required": True, "help": "last window's end, exclusive (UTC)"}),
            Arg(("--window",), {"help": "1h, 1d (default), 7d, 1w, 1mo, or hour, day, week, month"}),
            Arg(("--primary-keys",), {"type": _csv, "help": "comma-separated; needed to create the table"}),
            Arg(("--timestamp-keys",), {"type": _csv, "help": "comma-separated, for a time-series table"}),
            Arg(("--rerun",), {"action": "store_true", "default": None, "help": "run succeeded windows again"}),
        ),
    ),
    "score": CliJob(
        help="batch inference: score a window of a keys table with a registered feature-store model and replace "
        "that window's rows of a predictions table (model name and version on every row)",
        target="_score:score",
        args=(
            *_model_selector(),
            Arg(("--version",), {"help": "a model version number; or --stage / --alias"}),
            Arg(("--keys-table",), {"required": True, "help": "the Delta table of keys to score"}),
            Arg(("--output-table",), {"required": True, "help": "the predictions table (created on first use)"}),
            Arg(("--time",), {"dest": "timestamp_column", "help": "the keys table's time column (for a window)"}),
            Arg(("--start",), {"help": "window start (UTC), needs --time"}),
            Arg(("--end",), {"help": "window end, exclusive (UTC), needs --time"}),
            Arg(
                ("--key-columns",), {"type": _csv, "help": "what identifies an output row (default: every key column)"}
            ),
            Arg(
                ("--publish-online",),
                {"action": "store_true", "default": None, "help": "publish the model's feature tables online"},
            ),
        ),
    ),
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
