"""A session's feature rows and labels, side by side, and the columns a model reads.

``build_dataset`` runs ``batch_features`` and ``make_labels`` over one ``MarketData``. The models read every
feature but the queue-position proxy (``MODEL_FEATURES``): recorded market data has no orders of one's own, so
that column would be NaN in every training row and defined in every live one, a shift the model never saw.
The proxy stays in the feature row for strategies that read it directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .data import MarketData
from .features import FeatureSpec, batch_features
from .labels import LabelParams, Labels, make_labels

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

__all__ = ["Dataset", "EXCLUDED_FEATURES", "TARGETS", "build_dataset", "model_features"]

#: feature columns the models do not read (see the module docstring)
EXCLUDED_FEATURES = ("queue_ahead_bid", "queue_ahead_ask")
#: what a model predicts: the signed return (regression), its direction (3 classes), adverse selection (2)
TARGETS = ("return", "direction", "adverse")


def model_features(spec: FeatureSpec) -> list[str]:
    """The names of the columns a model reads, in the spec's order."""
    return [name for name in spec.names() if name not in EXCLUDED_FEATURES]


@dataclass(frozen=True)
class Dataset:
    """Feature rows (all of the spec's columns, float64) and labels of one session."""

    data: MarketData
    spec: FeatureSpec
    params: LabelParams
    features: npt.NDArray[np.float64]
    labels: Labels

    @property
    def columns(self) -> npt.NDArray[np.int64]:
        """The indices of ``model_features`` in a feature row."""
        names = self.spec.names()
        return np.array([names.index(n) for n in model_features(self.spec)], dtype=np.int64)

    def target(self, name: str) -> npt.NDArray[np.float64]:
        """The label array of a target (NaN: undefined)."""
        if name == "return":
            return self.labels.ret_bps
        if name == "direction":
            return self.labels.direction
        if name == "adverse":
            return self.labels.adverse
        raise ValueError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}")

    def xy(self, target: str, rows: I64 | None = None) -> tuple[F64, F64, I64]:
        """(model inputs, labels, their row indices) of ``rows`` (default all) where the label is defined."""
        y = self.target(target)
        idx = np.arange(len(y), dtype=np.int64) if rows is None else rows
        idx = idx[~np.isnan(y[idx])]
        return self.features[np.ix_(idx, self.columns)], y[idx], idx


def build_dataset(data: MarketData, spec: FeatureSpec | None = None, params: LabelParams | None = None) -> Dataset:
    """Features and labels of ``data`` under ``spec`` and ``params`` (defaults: the defaults)."""
    spec = spec or FeatureSpec()
    params = params or LabelParams()
    features = batch_features(spec, data.book, data.trades)
    return Dataset(data, spec, params, features, make_labels(data.book, data.trades, params))
