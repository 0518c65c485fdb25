"""Labels read only the future, features only the past; the split keeps a purge gap; the touch-quote rule."""

from __future__ import annotations

import numpy as np
import pytest

from c_engine import Side
from ml.data import MarketData, load_synthetic
from ml.features import BookSeries, FeatureSpec, TradeSeries, batch_features
from ml.labels import (
    LabelParams,
    adverse_touch,
    direction_labels,
    forward_return_bps,
    make_labels,
    time_split,
    twice_mid,
)

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
PARAMS = LabelParams(horizon=5, fill_horizon=10, markout=5)


@pytest.fixture(scope="module")
def session() -> MarketData:
    return load_synthetic(1500, seed=3)


def _book(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> BookSeries:
    n = len(bids)
    return BookSeries(np.arange(n, dtype=np.int64) * 1000, np.array([[b[0]] for b in bids]),
                      np.array([[b[1]] for b in bids]), np.array([[a[0]] for a in asks]),
                      np.array([[a[1]] for a in asks]))  # fmt: skip


def _trades(rows: list[tuple[int, int, int, int]]) -> TradeSeries:
    """(sample, taker side, price, qty)."""
    a = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return TradeSeries(a[:, 0], a[:, 0] * 1000, a[:, 1], a[:, 2], a[:, 3])


def _perturbed_after(data: MarketData, t: int) -> tuple[BookSeries, TradeSeries]:
    """The session with every book row after ``t`` moved up 7 ticks and resized, and its later trades doubled."""
    b = data.book
    cut = slice(t + 1, None)
    bp, bq, ap, aq = (x.copy() for x in (b.bid_price, b.bid_qty, b.ask_price, b.ask_qty))
    bp[cut] = np.where(bq[cut] > 0, bp[cut] + 7, 0)
    ap[cut] = np.where(aq[cut] > 0, ap[cut] + 7, 0)
    bq[cut] = bq[cut] * 2
    tr = data.trades
    later = tr.sample > t
    qty = np.where(later, tr.qty * 2, tr.qty)
    return BookSeries(b.ts_ns, bp, bq, ap, aq), TradeSeries(tr.sample, tr.ts_ns, tr.side, tr.price, qty)


def test_features_up_to_t_are_unchanged_when_everything_after_t_changes(session: MarketData) -> None:
    spec = FeatureSpec()
    t = 900
    before = batch_features(spec, session.book, session.trades)
    book, trades = _perturbed_after(session, t)
    after = batch_features(spec, book, trades)
    np.testing.assert_array_equal(before[: t + 1], after[: t + 1])
    assert not np.array_equal(np.nan_to_num(before[t + 1 :]), np.nan_to_num(after[t + 1 :]))


def test_labels_read_the_future_and_those_whose_reach_ends_before_the_change_stay(session: MarketData) -> None:
    t = 900
    before = make_labels(session.book, session.trades, PARAMS)
    book, trades = _perturbed_after(session, t)
    after = make_labels(book, trades, PARAMS)
    settled = t - PARAMS.reach  # every label of rows up to here reads rows at or before t only
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a[: settled + 1], b[: settled + 1])
    # the return at t reads s_{t+5}, which moved 7 ticks: it changed
    assert before.ret_bps[t] != after.ret_bps[t]


def test_a_label_at_t_does_not_change_when_the_past_before_t_changes(session: MarketData) -> None:
    t = 600
    b = session.book
    bp, bq = b.bid_price.copy(), b.bid_qty.copy()
    bq[: t - 1] = bq[: t - 1] + 3  # sizes only: the mid of earlier rows and later rows stay
    changed = BookSeries(b.ts_ns, bp, bq, b.ask_price, b.ask_qty)
    r0 = make_labels(session.book, session.trades, PARAMS).ret_bps
    r1 = make_labels(changed, session.trades, PARAMS).ret_bps
    np.testing.assert_array_equal(r0[t:], r1[t:])


def test_the_forward_return_is_in_bps_of_twice_the_mid_and_undefined_past_the_end() -> None:
    s = np.array([200.0, 202.0, 202.0, 198.0])
    r = forward_return_bps(s, 2)
    np.testing.assert_allclose(r[:2], [100.0, 1e4 * (198 - 202) / 202])
    assert np.isnan(r[2:]).all()


def test_the_mid_is_carried_over_a_one_sided_book_and_undefined_before_the_first_two_sided_one() -> None:
    book = _book([(0, 0), (100, 5), (0, 0)], [(101, 5), (101, 5), (102, 3)])
    s = twice_mid(book)
    assert np.isnan(s[0]) and s[1] == 201 and s[2] == 201


def test_a_return_within_the_flat_band_is_flat() -> None:
    labels = direction_labels(np.array([-0.6, -0.4, 0.0, 0.4, 0.6, np.nan]), flat_bps=0.5)
    np.testing.assert_array_equal(labels[:5], [-1, 0, 0, 0, 1])
    assert np.isnan(labels[5])


def test_a_touch_bid_fills_only_after_the_queue_ahead_trades_and_is_adverse_when_the_mid_ends_below() -> None:
    # bid 100 x 10 at t=0; takers sell 6 then 5 at 100 (the 11th lot is ours: filled at sample 2); the mid
    # falls to 99.5 two samples after the fill (markout 2): adverse.
    bids = [(100, 10), (100, 4), (99, 8), (99, 8), (99, 8), (99, 8), (99, 8), (99, 8)]
    asks = [(101, 5)] * 2 + [(100, 5)] * 6
    book = _book(bids, asks)
    trades = _trades([(1, _SELL, 100, 6), (2, _SELL, 100, 5)])
    bid, _ = adverse_touch(book, trades, fill_horizon=3, markout=2)
    assert bid[0] == 1.0
    # the same with only 10 lots sold: the queue ahead never clears, no fill
    bid_short, _ = adverse_touch(book, _trades([(1, _SELL, 100, 6), (2, _SELL, 100, 4)]), 3, 2)
    assert bid_short[0] == 0.0


def test_a_touch_ask_filled_by_a_sweep_through_its_price_and_followed_by_a_rise_is_adverse() -> None:
    bids = [(100, 5)] * 6
    asks = [(101, 50), (102, 5), (103, 5), (103, 5), (103, 5), (103, 5)]
    trades = _trades([(1, _BUY, 102, 3)])  # a buyer paid 102: our 101 ask was taken, whatever its queue
    _, ask = adverse_touch(_book(bids, asks), trades, fill_horizon=2, markout=2)
    assert ask[0] == 1.0  # mid at sample 3 is 101.5 > 101
    assert np.isnan(ask[4])  # the fill window runs past the data


def test_the_split_is_in_time_order_with_a_purge_gap_before_each_later_set() -> None:
    split = time_split(1000, gap=30, valid=0.2, test=0.2)
    assert split.train[-1] + 30 < split.valid[0] and split.valid[-1] + 30 < split.test[0]
    assert split.test[-1] == 999 and split.test[0] == 800 and split.valid[0] == 600
