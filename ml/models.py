"""The predictors: scikit-learn pipelines, and their metrics next to naive baselines.

Three model kinds per target, each a ``Pipeline`` that casts its input to float32 first (the ONNX tree
operators hold float32 thresholds: a model trained on float64 flips branches near a threshold once exported,
so training sees inference's dtype), then fills undefined features (NaN) with 0:

- ``linear``: standardised, then ``Ridge`` (return) or ``LogisticRegression`` (direction, adverse).
- ``forest``: ``RandomForestRegressor``/``Classifier``. Not ``HistGradientBoosting``: under the pinned onnx
  1.23.2 and skl2onnx 1.20.0 its converter fails (it hands numpy ``uint32`` node ids to ``onnx.helper``, which
  refuses them); a test keeps that fact checked.
- ``mlp``: standardised, then a two-layer ``MLPRegressor``/``Classifier`` with early stopping.

``tiny=True`` gives small versions (few trees, few iterations) for tests.

Metrics (``evaluate``), on rows the model was not fitted on. Classification: accuracy, macro F1 and AUC (one
vs rest, macro, from the predicted probabilities; a constant score has AUC 0.5). Regression: R^2 and the
correlation of prediction and outcome. Baselines, computed on the same rows: ``always flat`` (the majority
class of the training labels, or 0 for the return) and ``last return`` (the past return over the same horizon,
the feature ``ret_{k}smp_bps``, as the prediction, or its direction under the flat band).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from skl2onnx.sklapi import CastTransformer
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["MODEL_KINDS", "Metrics", "baseline_predictions", "evaluate", "is_classifier", "make_model"]

#: the model kinds ``make_model`` builds
MODEL_KINDS = ("linear", "forest", "mlp")
#: metric name -> value (NaN where it does not apply)
Metrics = dict[str, float]


def is_classifier(target: str) -> bool:
    return target != "return"


def _estimator(kind: str, classify: bool, tiny: bool, seed: int) -> BaseEstimator:
    if kind == "linear":
        return LogisticRegression(max_iter=200 if tiny else 1000, C=1.0) if classify else Ridge(alpha=1.0)
    if kind == "forest":
        trees, depth, leaf = (8, 6, 20) if tiny else (60, 10, 50)
        common: dict[str, Any] = {"n_estimators": trees, "max_depth": depth, "min_samples_leaf": leaf, "n_jobs": 1,
                                  "random_state": seed}  # fmt: skip
        return RandomForestClassifier(**common) if classify else RandomForestRegressor(**common)
    if kind == "mlp":
        layers, iters = ((16,), 30) if tiny else ((32, 16), 200)
        mlp: dict[str, Any] = {"hidden_layer_sizes": layers, "max_iter": iters, "early_stopping": True,
                               "random_state": seed, "alpha": 1e-3}  # fmt: skip
        return MLPClassifier(**mlp) if classify else MLPRegressor(**mlp)
    raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def make_model(kind: str, target: str, *, tiny: bool = False, seed: int = 0) -> Pipeline:
    """An unfitted pipeline: cast to float32, NaN -> 0, (scale,) the estimator."""
    steps: list[tuple[str, Any]] = [
        ("cast", CastTransformer(dtype=np.float32)),
        ("fill", SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)),
    ]
    if kind in ("linear", "mlp"):
        steps.append(("scale", StandardScaler()))
    steps.append(("model", _estimator(kind, is_classifier(target), tiny, seed)))
    return Pipeline(steps)


def baseline_predictions(
    target: str, y_train: npt.NDArray[np.float64], last_return: npt.NDArray[np.float64], flat_bps: float, n: int
) -> dict[str, npt.NDArray[np.float64]]:
    """The naive baselines' predictions for ``n`` rows. For a classifier, one-hot score columns in the sorted
    order of the training classes; for the return, the predicted value."""
    last = np.nan_to_num(last_return, nan=0.0)
    if target == "return":
        return {"always flat": np.zeros(n), "last return": last}
    classes = np.unique(y_train)
    majority = classes[np.argmax([np.sum(y_train == c) for c in classes])]
    out = {"always flat": np.tile((classes == majority).astype(np.float64), (n, 1))}
    if target == "direction":
        sign = np.where(last > flat_bps, 1.0, np.where(last < -flat_bps, -1.0, 0.0))
        out["last return"] = (sign[:, None] == classes[None, :]).astype(np.float64)
    return out


def evaluate(
    target: str, y: npt.NDArray[np.float64], scores: npt.NDArray[Any], classes: npt.NDArray[Any] | None = None
) -> Metrics:
    """Metrics of predictions ``scores`` against labels ``y``: for a classifier, per-class scores (probabilities
    or one-hot) in the order of ``classes``; for the return, the predicted values."""
    if len(y) == 0:
        return {}
    if target == "return":
        pred = np.asarray(scores, dtype=np.float64).reshape(-1)
        corr = float(np.corrcoef(pred, y)[0, 1]) if np.std(pred) > 0 and np.std(y) > 0 else math.nan
        return {"r2": float(r2_score(y, pred)), "corr": corr, "n": float(len(y))}
    assert classes is not None
    scores = np.asarray(scores, dtype=np.float64)
    pred = np.asarray(classes)[np.argmax(scores, axis=1)]
    out: Metrics = {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, average="macro", zero_division=0.0)),
        "n": float(len(y)),
    }
    present = np.unique(y)
    if len(present) < 2:
        out["auc"] = math.nan
    elif len(classes) == 2:
        out["auc"] = float(roc_auc_score(y == classes[1], scores[:, 1]))
    else:
        keep = np.isin(classes, present)
        s = scores[:, keep]
        sums = s.sum(axis=1, keepdims=True)
        s = np.where(sums > 0, s / np.where(sums > 0, sums, 1.0), 1.0 / s.shape[1])
        if s.shape[1] == 2:
            out["auc"] = float(roc_auc_score(y == np.asarray(classes)[keep][1], s[:, 1]))
        else:
            out["auc"] = float(
                roc_auc_score(y, s, multi_class="ovr", average="macro", labels=np.asarray(classes)[keep])
            )
    return out
