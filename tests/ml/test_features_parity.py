"""Batch and incremental features agree, each reading its own route to the same data, and neither looks ahead."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ml.features import (
    BookSeries,
    FeatureSpec,
    IncrementalFeatures,
    OwnOrderSegment,
    SyntheticSession,
    TradeSeries,
    batch_features,
    incremental_from_events,
    lobster_batch_inputs,
    lobster_incremental,
    lobster_own_segments,
    synthetic_batch_inputs,
    synthetic_session,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
AAPL = ("AAPL_2012-06-21_34200000_57600000_message_10.csv", "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv")
GOOG = ("GOOG_2012-06-21_34200000_57600000_message_10.csv.gz",
        "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz")  # fmt: skip
#: the acceptance bound between the two implementations
TOLERANCE = 1e-9
#: a spec with horizons at the synthetic session's scale (about 1 ms between commands)
SYNTHETIC_SPEC = FeatureSpec(
    momentum_horizons_ns=(5_000_000, 50_000_000), trade_window_ns=20_000_000, rate_tau_ns=10_000_000
)
OWN_CLIENT = 1

F64 = npt.NDArray[np.float64]


def lobster_files(names: tuple[str, str]) -> tuple[Path, Path]:
    paths = (DATA / names[0], DATA / names[1])
    if not all(p.exists() for p in paths):
        pytest.skip(f"LOBSTER data not found under {DATA}")
    return paths


def max_difference(a: F64, b: F64, columns: slice | list[int] = slice(None)) -> float:
    """The largest |a - b| over the columns; NaN in one and not the other counts as infinite."""
    a, b = a[:, columns], b[:, columns]
    assert a.shape == b.shape
    if np.any(np.isnan(a) != np.isnan(b)):
        return float("inf")
    both = ~np.isnan(a)
    return float(np.max(np.abs(a[both] - b[both]), initial=0.0))


@pytest.fixture(scope="module")
def session() -> SyntheticSession:
    return synthetic_session(4000, seed=11)


@pytest.fixture(scope="module")
def synthetic_batch(session: SyntheticSession) -> tuple[BookSeries, TradeSeries, list[OwnOrderSegment]]:
    return synthetic_batch_inputs(session, own_client=OWN_CLIENT)


def test_batch_and_incremental_agree_on_the_aapl_lobster_sample() -> None:
    messages, orderbook = lobster_files(AAPL)
    spec = FeatureSpec()
    book, trades, _ = lobster_batch_inputs(messages, orderbook)
    incremental, report, _ = lobster_incremental(IncrementalFeatures(spec), messages, orderbook)
    batch = batch_features(spec, book, trades)
    assert report.mismatches == 0 and len(batch) == 937
    assert max_difference(batch, incremental) <= TOLERANCE
    # Not a vacuous match: the book moved and trades happened.
    assert np.nanstd(batch[:, spec.names().index("ofi_l1_w10")]) > 0
    assert np.max(batch[:, spec.names().index("trade_rate_hz")]) > 0


def test_batch_and_incremental_agree_on_the_goog_day_but_for_the_replays_priority_deviations() -> None:
    messages, orderbook = lobster_files(GOOG)
    spec = FeatureSpec()
    book, trades, _ = lobster_batch_inputs(messages, orderbook)
    incremental, report, engine_trades = lobster_incremental(IncrementalFeatures(spec), messages, orderbook)
    batch = batch_features(spec, book, trades)
    names = spec.names()
    trade_columns = [names.index(f"tfi_{spec.trade_window_ns}ns"), names.index("trade_rate_hz")]
    book_columns = [i for i in range(spec.width) if i not in trade_columns]
    assert max_difference(batch, incremental, book_columns) <= TOLERANCE
    # The replay applies an execution of an order behind others in its queue as a reduction, without a TRADE:
    # exactly those executions are missing from the engine's trades, and without them all features agree.
    file_trades = Counter(zip(*(a.tolist() for a in trades), strict=True))
    printed = Counter(zip(*(a.tolist() for a in engine_trades), strict=True))
    assert not printed - file_trades
    assert (file_trades - printed).total() == report.priority_deviations == 5
    assert max_difference(batch_features(spec, book, engine_trades), incremental) <= TOLERANCE


def test_batch_and_incremental_agree_on_a_synthetic_session_with_own_orders(
    session: SyntheticSession, synthetic_batch: tuple[BookSeries, TradeSeries, list[OwnOrderSegment]]
) -> None:
    book, trades, own = synthetic_batch
    batch = batch_features(SYNTHETIC_SPEC, book, trades, own)
    incremental = incremental_from_events(IncrementalFeatures(SYNTHETIC_SPEC, OWN_CLIENT), session.events)
    assert batch.shape == (len(session.commands), SYNTHETIC_SPEC.width)
    assert max_difference(batch, incremental) <= TOLERANCE
    queue = batch[:, -2:]
    assert np.sum(~np.isnan(queue)) > len(batch) // 2 and np.nanmax(queue) > 0


def test_batch_and_incremental_agree_when_the_windows_hold_thousands_of_samples_and_trades(
    session: SyntheticSession, synthetic_batch: tuple[BookSeries, TradeSeries, list[OwnOrderSegment]]
) -> None:
    # The whole session (about 4 s) inside the long windows: the incremental side's ring of samples grows past
    # its first size (1024) and the long horizons never expire an entry (tests/hotpath/test_book_features.py
    # grows the ring of trades).
    spec = FeatureSpec(momentum_horizons_ns=(1_000_000, 10**12), trade_window_ns=10**12, ofi_window=500,
                       return_horizons=(1, 3000))  # fmt: skip
    book, trades, own = synthetic_batch
    batch = batch_features(spec, book, trades, own)
    incremental = incremental_from_events(IncrementalFeatures(spec, OWN_CLIENT), session.events)
    assert max_difference(batch, incremental) <= TOLERANCE
    assert np.isnan(batch[:, spec.names().index("mom_1000000000000ns_bps")]).all()
    assert np.isfinite(batch[3010:, spec.names().index("ret_3000smp_bps")]).all()  # the first mids are undefined


def test_the_queue_proxy_agrees_on_lobster_orders_that_stay_in_view() -> None:
    messages, orderbook = lobster_files(AAPL)
    spec = FeatureSpec()
    book, trades, applied = lobster_batch_inputs(messages, orderbook)
    new_ids = [m.order_id for m in applied if m.type == 1]
    # Own orders: those whose level stays within the file's 10 levels while they rest (the batch side reads
    # the level's qty from the row).
    chosen = []
    for ordinal, oid in enumerate(new_ids):
        for seg in lobster_own_segments(applied, [oid]):
            prices = book.bid_price if seg.side == 1 else book.ask_price
            qtys = book.bid_qty if seg.side == 1 else book.ask_qty
            rows = slice(seg.start, seg.start + len(seg.open_qty))
            if np.all(np.any((prices[rows] == seg.price) & (qtys[rows] > 0), axis=1)):
                chosen.append((ordinal, oid))
    assert len(chosen) >= 20
    own = lobster_own_segments(applied, [oid for _, oid in chosen])
    batch = batch_features(spec, book, trades, own)
    ordinals = [ordinal for ordinal, _ in chosen]
    incremental = lobster_incremental(IncrementalFeatures(spec), messages, orderbook, own_ordinals=ordinals).rows
    assert max_difference(batch, incremental) <= TOLERANCE
    assert np.nanmax(batch[:, -2:]) > 0


def truncated(
    book: BookSeries, trades: TradeSeries, own: list[OwnOrderSegment], k: int
) -> tuple[BookSeries, TradeSeries, list[OwnOrderSegment]]:
    keep = trades.sample < k
    segments = [s._replace(open_qty=s.open_qty[: k - s.start]) for s in own if s.start < k]
    return (BookSeries(*(a[:k] for a in book)), TradeSeries(*(a[keep] for a in trades)), segments)


def test_batch_features_at_t_do_not_change_when_later_data_is_removed_or_altered(
    synthetic_batch: tuple[BookSeries, TradeSeries, list[OwnOrderSegment]],
) -> None:
    book, trades, own = synthetic_batch
    full = batch_features(SYNTHETIC_SPEC, book, trades, own)
    k = 2500
    cut = batch_features(SYNTHETIC_SPEC, *truncated(book, trades, own, k))
    assert max_difference(full[:k], cut) == 0.0
    # Alter everything after k: other sizes, shifted prices, later times, trades flipped.
    altered_book = BookSeries(
        np.concatenate([book.ts_ns[:k], book.ts_ns[k:] + 10**9]),
        np.concatenate([book.bid_price[:k], book.bid_price[k:] - 3]),
        np.concatenate([book.bid_qty[:k], book.bid_qty[k:] * 2]),
        book.ask_price,
        np.concatenate([book.ask_qty[:k], book.ask_qty[k:] + 7]),
    )
    late = trades.sample >= k
    altered_trades = trades._replace(side=np.where(late, 3 - trades.side, trades.side), qty=trades.qty + late * 5)
    altered = batch_features(SYNTHETIC_SPEC, altered_book, altered_trades, own)
    assert max_difference(full[:k], altered[:k]) == 0.0
    assert max_difference(full[k:], altered[k:]) > 0


def test_incremental_features_at_t_do_not_change_when_later_events_are_removed(session: SyntheticSession) -> None:
    full = incremental_from_events(IncrementalFeatures(SYNTHETIC_SPEC, OWN_CLIENT), session.events)
    ts = session.events["ts_ns"]
    k = 2500
    cut_at = int(np.searchsorted(ts, session.commands["ts_ns"][k]))
    cut = incremental_from_events(IncrementalFeatures(SYNTHETIC_SPEC, OWN_CLIENT), session.events[:cut_at])
    assert len(cut) == k
    assert max_difference(full[:k], cut) == 0.0
