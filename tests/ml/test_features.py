"""The feature spec and the formulas on small hand-built books, where the right numbers can be worked out."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from c_engine import Side
from ml.features import (
    BookSeries,
    FeatureSpec,
    IncrementalFeatures,
    OwnOrderSegment,
    TradeSeries,
    batch_features,
    to_float32,
)

BUY, SELL = int(Side.BUY), int(Side.SELL)
SPEC = FeatureSpec(depth=2, ofi_window=2, return_horizons=(1,), momentum_horizons_ns=(10,), vol_halflife=1,
                   trade_window_ns=10, rate_tau_ns=1_000_000_000)  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def column(name: str) -> int:
    return SPEC.names().index(name)


def test_the_spec_names_its_features_in_order_and_its_hash_follows_every_parameter() -> None:
    spec = FeatureSpec()
    assert len(spec.names()) == spec.width == len(set(spec.names()))
    assert spec.spec_hash() == FeatureSpec().spec_hash()
    assert spec.spec_hash() != FeatureSpec(ofi_window=11).spec_hash()
    assert spec.spec_hash() != FeatureSpec(momentum_horizons_ns=(1_000_000_000,)).spec_hash()


@pytest.mark.parametrize("bad", [{"depth": 0}, {"return_horizons": ()}, {"return_horizons": (5, 5)},
                                 {"rate_tau_ns": -1}])  # fmt: skip
def test_the_spec_refuses_a_parameter_that_is_not_positive_or_repeats(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FeatureSpec(**bad)  # type: ignore[arg-type]


def test_to_float32_casts_a_row_and_keeps_nan() -> None:
    out = to_float32([1.0 / 3.0, math.nan])
    assert out.dtype == np.float32 and out[0] == np.float32(1.0 / 3.0) and math.isnan(out[1])


def two_samples() -> IncrementalFeatures:
    """Bids 100 x 3, 99 x 5; asks 102 x 1; then the bid rises to 101 x 2 and 4 lots trade (buyer) at 102."""
    f = IncrementalFeatures(SPEC)
    f.on_book_delta(BUY, 100, 3)
    f.on_book_delta(BUY, 99, 5)
    f.on_book_delta(SELL, 102, 1)
    f.sample(0)
    f.on_trade(BUY, 102, 4, 5)
    f.on_book_delta(BUY, 101, 2)
    return f


def test_book_shape_features_of_a_hand_built_book() -> None:
    row = two_samples().sample(5)
    assert row[column("spread_ticks")] == 1.0
    assert row[column("imbalance_l1")] == (2 - 1) / (2 + 1)
    assert row[column("imbalance_depth2")] == pytest.approx((1 * (2 - 1) + 0.5 * (3 - 0)) / (3 + 0.5 * 3))
    # Imbalance-weighted mid (101 * 1 + 102 * 2) / 3 less the mid 101.5.
    assert row[column("wmid_offset_ticks")] == pytest.approx((101 * 1 + 102 * 2) / 3 - 101.5)


def test_a_rising_bid_adds_its_new_size_to_the_ofi_and_the_level_below_its_change() -> None:
    row = two_samples().sample(5)
    # Level 1: the bid rose (100 -> 101): +2; the ask stayed at 102 x 1: 0. Level 2: the bid rose (99 -> 100)
    # with 3 after 5: +3; no second ask level either time: 0.
    assert row[column("ofi_l1_w2")] == 2.0
    assert row[column("ofi_l2_w2")] == 3.0


def test_returns_trade_flow_and_rates_of_a_hand_built_session() -> None:
    f = two_samples()
    row = f.sample(5)
    assert row[column("ret_1smp_bps")] == pytest.approx(1e4 * (203 - 202) / 202)
    assert math.isnan(row[column("mom_10ns_bps")])  # nothing 10 ns old yet
    assert row[column("tfi_10ns")] == 1.0
    assert row[column("trade_rate_hz")] == pytest.approx(math.exp(-5e-9) * 0 + 1.0)
    later = f.sample(20)  # the trade (t = 5) is out of the 10 ns window; the t = 5 sample is 10 ns old
    assert later[column("tfi_10ns")] == 0.0
    assert later[column("mom_10ns_bps")] == 0.0


def test_the_queue_proxy_counts_trades_at_its_price_and_is_capped_by_a_shrinking_level() -> None:
    f = IncrementalFeatures(SPEC)
    f.on_book_delta(BUY, 100, 10)  # others rest 10 lots at 100
    f.on_own_ack(7, BUY, 100, 4)
    f.on_book_delta(BUY, 100, 14)  # our 4 joined: 10 ahead
    assert f.queue_ahead(7) == 10
    f.on_trade(SELL, 100, 3, 1)  # a seller took 3 from the front; 5 more lots join behind us
    f.on_book_delta(BUY, 100, 16)
    assert f.queue_ahead(7) == 7
    f.on_book_delta(BUY, 100, 14)  # 2 cancelled: from behind us, we assume, so nothing moves
    assert f.queue_ahead(7) == 7
    f.on_book_delta(BUY, 100, 9)  # the level shrank below us: at most 9 - 4 ahead
    assert f.queue_ahead(7) == 5
    f.on_own_modified(7, 100, 6)  # a size increase loses the place
    assert f.queue_ahead(7) is None


def test_the_batch_queue_proxy_is_the_same_recurrence() -> None:
    ts = np.arange(4, dtype=np.int64)
    bid_qty = np.array([[14], [16], [14], [9]])
    book = BookSeries(ts, np.full((4, 1), 100), bid_qty, np.full((4, 1), 105), np.ones((4, 1), dtype=np.int64))
    trades = TradeSeries(*(np.array([v]) for v in (1, 1, SELL, 100, 3)))
    own = [OwnOrderSegment(BUY, 100, 0, np.array([4, 4, 4, 4]))]
    spec = FeatureSpec(depth=1)
    out = batch_features(spec, book, trades, own)
    assert out[:, spec.names().index("queue_ahead_bid")].tolist() == [10.0, 7.0, 7.0, 5.0]
    assert np.isnan(out[:, spec.names().index("queue_ahead_ask")]).all()


def test_the_benchmark_runs_at_a_tiny_size_and_reports_every_figure(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "bench/features_bench.py", "--commands", "300", "--runs", "1",
                          "--json", str(tmp_path / "f.json")], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "us per event" in out.stdout and "us per row" in out.stdout
