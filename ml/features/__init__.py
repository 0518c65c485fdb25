"""Microstructure features, defined once and computed two ways: ``batch_features`` (numpy over a recorded
session, for training) and ``IncrementalFeatures`` (event by event, for the hot path), proven equal by the
tests on LOBSTER, Binance and synthetic data. ``FeatureSpec`` names the features in order and hashes them for the
models that record it. docs/ML.md, "Features", gives each formula and its source.
"""

from ._batch import ASK_EMPTY, BookSeries, OwnOrderSegment, TradeSeries, batch_features, depth_weights
from ._binance import BinanceCapture, BinanceFeatures, binance_batch_inputs, binance_incremental, read_binance
from ._incremental import IncrementalFeatures
from ._sources import (
    FeatureEngine,
    LobsterFeatures,
    SyntheticSession,
    incremental_from_events,
    lobster_batch_inputs,
    lobster_incremental,
    lobster_own_segments,
    synthetic_batch_inputs,
    synthetic_session,
)
from ._spec import FEATURES_VERSION, FeatureSpec, to_float32

__all__ = [
    "ASK_EMPTY",
    "BinanceCapture",
    "BinanceFeatures",
    "BookSeries",
    "FEATURES_VERSION",
    "FeatureEngine",
    "FeatureSpec",
    "IncrementalFeatures",
    "LobsterFeatures",
    "OwnOrderSegment",
    "SyntheticSession",
    "TradeSeries",
    "batch_features",
    "binance_batch_inputs",
    "binance_incremental",
    "depth_weights",
    "incremental_from_events",
    "lobster_batch_inputs",
    "lobster_incremental",
    "lobster_own_segments",
    "read_binance",
    "synthetic_batch_inputs",
    "synthetic_session",
    "to_float32",
]
