"""What `monitor` computes per window: the model it scores (`Model`), the task's metrics with scikit-learn
(`score_window`), and each feature's drift against a reference (`Profile`: PSI or the KS statistic). The rules
are stated in `jobs/_monitor.py`'s docstring."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Task = Literal["classification", "regression"]
PSI_BINS = 10
PSI_EPSILON = 1e-4
"""The smallest share a PSI bin counts with (an empty bin would make the logarithm infinite)."""
MAX_CLASSES_INFERRED = 20
"""A label column of integers with at most this many values is read as classes when the model does not say."""


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    selector: str
    """How it was chosen: `alias:champion` or `stage:Production`."""
    run_id: str | None
    pyfunc: Any
    raw: Any
    """The flavor's own model (e.g. the sklearn estimator) when pyfunc exposes it, else None."""


# -- scoring ---------------------------------------------------------------------------------------------------
def infer_task(model: Model, labels: pd.Series, notes: list[str]) -> Task:
    from sklearn.base import is_classifier, is_regressor

    if model.raw is not None and is_classifier(model.raw):
        return "classification"
    if model.raw is not None and is_regressor(model.raw):
        return "regression"
    dtype = labels.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        task: Task = "classification"
    elif pd.api.types.is_integer_dtype(dtype) and labels.nunique() <= MAX_CLASSES_INFERRED:
        task = "classification"
    else:
        task = "regression"
    notes.append(f"task {task} inferred from the label column's values (pass task= to choose)")
    return task


def classes_of(model: Model, labels: pd.Series, task: Task) -> np.ndarray | None:
    if task != "classification":
        return None
    known = getattr(model.raw, "classes_", None)
    return np.asarray(known) if known is not None else np.sort(labels.unique())


def score_window(
    model: Model, frame: pd.DataFrame, features: Sequence[str], label: str, task: Task, classes: Any, notes: list[str]
) -> dict[str, float]:
    from sklearn import metrics as skm

    x = frame[list(features)]
    y = frame[label].to_numpy()
    out = np.asarray(model.pyfunc.predict(x))
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    proba = None
    if task == "regression":
        pred = out.astype(float)
        values = {
            "rmse": skm.root_mean_squared_error(y, pred),
            "mae": skm.mean_absolute_error(y, pred),
            "r2": skm.r2_score(y, pred) if len(y) > 1 else math.nan,
        }
        return {k: float(v) for k, v in values.items() if not math.isnan(v)}
    if out.ndim == 2:  # logged with pyfunc_predict_fn="predict_proba": the columns are the classes
        proba, pred = out, classes[np.argmax(out, axis=1)]
    else:
        pred = out
        if model.raw is not None and hasattr(model.raw, "predict_proba"):
            proba = np.asarray(model.raw.predict_proba(x))
        else:
            notes.append("roc_auc skipped: the model gives no class probabilities (predict_proba)")
    binary = len(classes) == 2
    average: Any = "binary" if binary else "macro"
    kw: dict[str, Any] = {"average": average, "zero_division": 0}
    kw |= {"pos_label": classes[1]} if binary else {"labels": classes}
    values = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, **kw),
        "recall": skm.recall_score(y, pred, **kw),
        "f1": skm.f1_score(y, pred, **kw),
    }
    if proba is not None and len(np.unique(y)) > 1:
        try:
            if binary:
                values["roc_auc"] = skm.roc_auc_score(y == classes[1], proba[:, 1])
            else:
                values["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
        except ValueError as e:
            notes.append(f"roc_auc skipped on a window: {e}")
    return {k: float(v) for k, v in values.items()}


# -- drift -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """A feature's reference distribution, ready to score windows against (see the module docstring)."""

    feature: str
    method: str
    edges: np.ndarray | None
    categories: tuple[Any, ...] | None
    expected: np.ndarray | None
    sorted_reference: np.ndarray | None

    @property
    def key(self) -> str:
        return f"drift.{self.method}.{self.feature}"

    @staticmethod
    def of(feature: str, reference: pd.Series, method: str) -> Profile:
        """`reference`'s profile: KS keeps its sorted values; PSI its bins and their shares."""
        numeric = pd.api.types.is_numeric_dtype(reference.dtype) and not pd.api.types.is_bool_dtype(reference.dtype)
        if numeric:
            values = reference.dropna().to_numpy(dtype=float)
            if method == "ks":
                return Profile(feature, "ks", None, None, None, np.sort(values))
            qs = np.linspace(0, 1, PSI_BINS + 1)[1:-1]
            bins = Profile(
                feature, "psi", np.unique(np.quantile(values, qs)) if len(values) else np.array([]), None, None, None
            )
        else:
            bins = Profile(feature, "psi", None, tuple(reference.dropna().unique().tolist()), None, None)
        return dataclasses.replace(bins, expected=bins._shares(reference))

    def _shares(self, values: pd.Series) -> np.ndarray:
        """The share of `values` in each bin: the value bins, then the "missing" bin."""
        missing = values.isna().to_numpy()
        present = values[~missing]
        if self.edges is not None:
            idx = np.searchsorted(self.edges, present.to_numpy(dtype=float), side="right")
            n_bins = len(self.edges) + 1
        else:
            cats = self.categories or ()
            codes = pd.Categorical(present, categories=list(cats)).codes
            idx = np.where(codes < 0, len(cats), codes)  # values the reference lacks share one bin
            n_bins = len(cats) + 1
        counts = np.bincount(idx, minlength=n_bins).astype(float)
        counts = np.append(counts, missing.sum())
        return counts / max(len(values), 1)

    def score(self, values: pd.Series) -> float:
        if self.method == "ks":
            from scipy.stats import ks_2samp

            current = values.dropna().to_numpy(dtype=float)
            if len(current) == 0 or self.sorted_reference is None or len(self.sorted_reference) == 0:
                return math.nan
            return float(ks_2samp(self.sorted_reference, current).statistic)
        assert self.expected is not None
        ref = np.maximum(self.expected, PSI_EPSILON)
        cur = np.maximum(self._shares(values), PSI_EPSILON)
        return float(np.sum((cur - ref) * np.log(cur / ref)))
