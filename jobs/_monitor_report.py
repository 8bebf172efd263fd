"""What `monitor` leaves for people: a PNG chart and a self-contained HTML report of its windows.

The chart has one panel per metric (its value per window, the alert threshold dashed, the baseline dotted, the
windows that alerted marked) and one of the drift scores (one line per feature, at most `MAX_DRIFT_LINES`, the
most drifted first, and the threshold). The report inlines the chart (base64 PNG, no file or network fetched),
the tables of metrics and drift per window with their thresholds, and the alerts. Both are overwritten by the
next run: the history is in the MLflow runs.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

__all__ = ["CHART_FILE", "REPORT_FILE", "Threshold", "WindowRow", "write_report"]

CHART_FILE = "monitoring.png"
REPORT_FILE = "monitoring.html"
MAX_DRIFT_LINES = 10


@dataclass(frozen=True)
class WindowRow:
    """One window as reported: its label (start date), rows, metrics, drift scores (`drift.<method>.<feature>`)
    and the keys (metrics or drift) that alerted."""

    label: str
    rows: int
    metrics: Mapping[str, float]
    drift: Mapping[str, float]
    alerted: frozenset[str]


@dataclass(frozen=True)
class Threshold:
    """A metric's alert line: values `below` (or `above`) `value` alert; `baseline` is what it was derived from."""

    value: float
    baseline: float | None
    side: Literal["below", "above"]


def write_report(
    output_dir: str,
    *,
    title: str,
    windows: Sequence[WindowRow],
    limits: Mapping[str, Threshold],
    drift_thresholds: Mapping[str, float],
    drift_method: str,
    reference: str,
    alerts: Sequence[Mapping[str, Any]],
) -> tuple[str, str]:
    """Write `CHART_FILE` and `REPORT_FILE` into `output_dir` (made if missing); return their paths.

    A metric without a `limits` entry is drawn without lines. `drift_thresholds` maps each drift key to its
    threshold.
    """
    os.makedirs(output_dir, exist_ok=True)
    chart = os.path.join(output_dir, CHART_FILE)
    png = _chart(title, windows, limits, drift_thresholds, drift_method)
    with open(chart, "wb") as f:
        f.write(png)
    report = os.path.join(output_dir, REPORT_FILE)
    page = _html(title, windows, limits, drift_thresholds, drift_method, reference, alerts, png)
    with open(report, "w", encoding="utf-8") as f:
        f.write(page)
    return chart, report


def _chart(
    title: str,
    windows: Sequence[WindowRow],
    limits: Mapping[str, Threshold],
    drift_thresholds: Mapping[str, float],
    drift_method: str,
) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global backend, no GUI
    from matplotlib.figure import Figure

    x = [pd.Timestamp(w.label) for w in windows]
    metrics = list(dict.fromkeys(m for w in windows for m in w.metrics))
    panels = len(metrics) + 1
    cols = 2 if panels > 2 else 1
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(6 * cols, 3 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(panels)]
    for ax, m in zip(axes, metrics, strict=False):
        points = [(t, w.metrics[m], m in w.alerted) for t, w in zip(x, windows, strict=True) if m in w.metrics]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=m)
        bad = [p for p in points if p[2]]
        if bad:
            ax.scatter([p[0] for p in bad], [p[1] for p in bad], color="red", zorder=3, s=60, label="alert")
        if m in limits:
            lim = limits[m]
            ax.axhline(lim.value, color="red", linestyle="--", label=f"threshold {lim.value:.4g}")
            if lim.baseline is not None:
                ax.axhline(lim.baseline, color="grey", linestyle=":", label=f"baseline {lim.baseline:.4g}")
        ax.set_title(m)
        ax.legend(fontsize="small")
        ax.tick_params(axis="x", labelrotation=30)
    drift_ax = axes[-1]
    keys = list(dict.fromkeys(k for w in windows for k in w.drift))
    keys.sort(key=lambda k: -max((w.drift.get(k, 0.0) for w in windows), default=0.0))
    for k in keys[:MAX_DRIFT_LINES]:
        ys = [w.drift.get(k, math.nan) for w in windows]
        drift_ax.plot(x, ys, marker=".", label=k.split(".", 2)[-1])
    for t in sorted(set(drift_thresholds.values())):
        drift_ax.axhline(t, color="red", linestyle="--", label=f"threshold {t:.4g}")
    drift_ax.set_title(f"drift ({drift_method})" + (f", top {MAX_DRIFT_LINES}" if len(keys) > MAX_DRIFT_LINES else ""))
    drift_ax.legend(fontsize="small")
    drift_ax.tick_params(axis="x", labelrotation=30)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _html(
    title: str,
    windows: Sequence[WindowRow],
    limits: Mapping[str, Threshold],
    drift_thresholds: Mapping[str, float],
    drift_method: str,
    reference: str,
    alerts: Sequence[Mapping[str, Any]],
    png: bytes,
) -> str:
    e = html.escape
    metrics = list(dict.fromkeys(m for w in windows for m in w.metrics))
    drift = list(dict.fromkeys(k for w in windows for k in w.drift))

    def cell(value: float | None, alerted: bool) -> str:
        text = "" if value is None or math.isnan(value) else f"{value:.4f}"
        return f'<td class="alert">{text}</td>' if alerted else f"<td>{text}</td>"

    def table(keys: Sequence[str], values: str, thresholds: Mapping[str, str]) -> str:
        head = "".join(f"<th>{e(k)}</th>" for k in keys)
        limit_row = "".join(f"<td>{e(thresholds.get(k, ''))}</td>" for k in keys)
        body = "".join(
            f"<tr><td>{e(w.label)}</td><td>{w.rows}</td>"
            + "".join(cell(getattr(w, values).get(k), k in w.alerted) for k in keys)
            + "</tr>"
            for w in windows
        )
        return (
            f"<table><tr><th>window</th><th>rows</th>{head}</tr>{body}"
            f'<tr class="limit"><td>threshold</td><td></td>{limit_row}</tr></table>'
        )

    metric_limits = {
        m: f"{'<' if t.side == 'below' else '>'} {t.value:.4f}"
        + ("" if t.baseline is None else f" (baseline {t.baseline:.4f})")
        for m, t in limits.items()
    }
    drift_limits = {k: f"> {t:.4f}" for k, t in drift_thresholds.items()}
    shown = ", ".join(f"{t:.4f}" for t in sorted(set(drift_thresholds.values())))
    alert_items = "".join(
        f"<li>{e(str(a['window']))}: {e(str(a['metric']))} = {a['value']:.4f}, threshold {a['threshold']:.4f}</li>"
        for a in alerts
    )
    image = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }}
td.alert {{ background: #fdd; color: #900; font-weight: bold; }}
tr.limit td {{ background: #eee; font-style: italic; }}
</style></head><body>
<h1>{e(title)}</h1>
<p>{len(windows)} windows, {len(alerts)} alert(s). Drift: {e(drift_method)} against {e(reference)},
threshold {shown}. Alerting cells are red; the last row of each table is the threshold.</p>
<img alt="metrics and drift per window" src="data:image/png;base64,{image}">
<h2>Alerts</h2><ul>{alert_items or "<li>none</li>"}</ul>
<h2>Metrics</h2>{table(metrics, "metrics", metric_limits)}
<h2>Drift ({e(drift_method)})</h2>{table(drift, "drift", drift_limits)}
</body></html>
"""
