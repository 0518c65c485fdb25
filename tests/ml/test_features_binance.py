"""On the Binance sample, batch features (the recorded book and trades, L2 arithmetic) equal the incremental
ones (the engine's BOOK_DELTA and TRADE events of the strategies' Binance replay)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from c_engine import record_binance
from ml.data import data_kind, load_data
from ml.features import (
    FeatureSpec,
    IncrementalFeatures,
    batch_features,
    binance_batch_inputs,
    binance_incremental,
    read_binance,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "binance"
CAPTURE = DATA / "usdm_btcusdt_20240808.gz"
#: the acceptance bound between the two implementations
TOLERANCE = 1e-9


def capture_path() -> Path:
    if not CAPTURE.is_file():
        pytest.skip(f"the Binance sample is not at {CAPTURE}")
    return CAPTURE


def max_difference(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """The largest |a - b|; NaN in one and not the other counts as infinite."""
    assert a.shape == b.shape
    if np.any(np.isnan(a) != np.isnan(b)):
        return float("inf")
    both = ~np.isnan(a)
    return float(np.max(np.abs(a[both] - b[both]), initial=0.0))


def test_batch_and_incremental_agree_on_the_binance_sample() -> None:
    path = capture_path()
    spec = FeatureSpec()
    capture = read_binance(path)
    book, trades = binance_batch_inputs(capture)
    batch = batch_features(spec, book, trades)
    incremental = binance_incremental(IncrementalFeatures(spec), path)
    assert incremental.counts["gaps"] == 0 and incremental.counts["diffs"] > 6000
    assert batch.shape == incremental.rows.shape and len(batch) > 10_000
    assert max_difference(batch, incremental.rows) <= TOLERANCE
    # The trades the engine printed, one per IOC and price, are the batch side's executed trades exactly.
    for got, want in zip(incremental.trades, trades, strict=True):
        assert np.array_equal(got, want)
    # Not a vacuous match: the book moved at every level read, trades came both ways, the mid moved.
    names = spec.names()
    for k in range(1, spec.depth + 1):
        assert np.nanstd(batch[:, names.index(f"ofi_l{k}_w{spec.ofi_window}")]) > 0
    assert set(trades.side.tolist()) == {1, 2} and len(trades.qty) > 10_000
    assert np.nanmax(np.abs(batch[:, names.index("ret_100smp_bps")])) > 0


def test_a_binance_capture_is_told_from_lobster_and_synthetic_data(tmp_path: Path) -> None:
    path = capture_path()
    assert data_kind(str(path)) == "binance"
    plain = tmp_path / "capture.txt"
    with gzip.open(path, "rb") as f:
        plain.write_bytes(b"".join(f.readline() for _ in range(3)))
    assert data_kind(str(plain)) == "binance"
    lobster = tmp_path / "X_message_10.csv"
    lobster.write_text("34200.004241176,1,16113575,18,5853300,1\n")
    assert data_kind(str(lobster)) == "lobster"
    assert data_kind("synthetic:100:1") == "synthetic"


def test_a_binance_recording_is_told_by_its_metadata_and_reads_as_its_capture(tmp_path: Path) -> None:
    path = capture_path()
    recording = tmp_path / "btc.parquet"
    record_binance(path, recording)
    assert data_kind(str(recording)) == "binance"
    from_recording, from_capture = load_data(str(recording)), load_data(str(path))
    assert from_recording.kind == "binance" and from_recording.samples == from_capture.samples > 10_000
    for got, want in zip((*from_recording.book, *from_recording.trades), (*from_capture.book, *from_capture.trades),
                         strict=True):  # fmt: skip
        assert np.array_equal(got, want)
