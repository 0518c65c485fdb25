"""Performance metrics on hand-built fills and records, each answer worked out by hand in the test."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from c_engine import Liquidity, Side
from strategies.accounting import Fill, Instrument
from strategies.backtest import RECORD_DTYPE
from strategies.metrics import (
    CRYPTO,
    EQUITIES,
    MidSeries,
    PerformanceMetrics,
    adverse_selection,
    effective_spread,
    fill_rate,
    latency_percentiles,
    max_drawdown,
    pnl_changes,
    pnl_distribution,
    realised_spread,
    sharpe_ratio,
    time_weighted_abs_inventory,
)

S = 1_000_000_000
DAY = 86_400 * S
BUY, SELL = int(Side.BUY), int(Side.SELL)
MAKER, TAKER = int(Liquidity.MAKER), int(Liquidity.TAKER)


def _fill(side: int, price: int, qty: int, ts_ns: int, *, symbol_id: int = 0, trade_id: int = 1) -> Fill:
    return Fill(100, symbol_id, side, price, qty, MAKER, trade_id, trade_id, ts_ns)


def _records(
    ts_ns: Sequence[int],
    *,
    pnl: Sequence[float] | None = None,
    mid: Sequence[float] | None = None,
    position: Sequence[int] | None = None,
) -> npt.NDArray[np.void]:
    rec = np.zeros(len(ts_ns), dtype=RECORD_DTYPE)
    rec["ts_ns"] = ts_ns
    rec["mid"] = 100.0 if mid is None else mid
    if pnl is not None:
        rec["pnl"] = pnl
    if position is not None:
        rec["position"] = position
    return rec


def _mids(*points: tuple[float, float]) -> MidSeries:
    """A mid series from (seconds, mid) points."""
    return MidSeries.from_pairs([(int(t * S), m) for t, m in points])


# --- spreads and adverse selection -------------------------------------------------------------------------


def test_effective_spread_is_twice_the_distance_to_the_mid_per_lot_in_ticks_and_bps() -> None:
    mids = _mids((0, 100.0))
    fills = [_fill(BUY, 99, 2, 1 * S), _fill(SELL, 102, 1, 2 * S)]
    stat = effective_spread(fills, mids)
    # buy: 2 x (100 - 99) = 2 ticks on 2 lots; sell: 2 x (102 - 100) = 4 ticks on 1 lot -> (4 + 4) / 3
    assert stat.ticks == pytest.approx(8 / 3)
    # in bps of the mid 100: 200 bps on 2 lots, 400 bps on 1 lot
    assert stat.bps == pytest.approx((2 * 200 + 400) / 3)
    assert (stat.fills, stat.lots) == (2, 3)


def test_effective_spread_is_negative_for_a_buy_above_the_mid() -> None:
    stat = effective_spread([_fill(BUY, 101, 1, 1 * S)], _mids((0, 100.0)))
    assert stat.ticks == pytest.approx(-2.0)


def test_effective_spread_uses_the_mid_just_before_the_fill_not_the_one_at_its_time() -> None:
    # the observation at the fill's own time (1 s) already shows the fill's effect on the book
    mids = _mids((0, 100.0), (1, 98.0))
    assert effective_spread([_fill(BUY, 99, 1, 1 * S)], mids).ticks == pytest.approx(2.0)


def test_adverse_selection_of_a_buy_followed_by_a_falling_mid_is_positive() -> None:
    mids = _mids((0, 100.0), (1.5, 97.0))
    stat = adverse_selection([_fill(BUY, 99, 1, 1 * S)], mids, 1 * S, end_ns=10 * S)
    assert stat.ticks == pytest.approx(3.0)  # -(+1) x (97 - 100)
    assert stat.bps == pytest.approx(300.0)
    assert stat.horizon_s == 1.0


def test_adverse_selection_of_a_sell_followed_by_a_rising_mid_is_positive() -> None:
    mids = _mids((0, 100.0), (1.5, 104.0))
    assert adverse_selection([_fill(SELL, 101, 1, 1 * S)], mids, 1 * S, 10 * S).ticks == pytest.approx(4.0)


def test_adverse_selection_of_a_buy_followed_by_a_rising_mid_is_negative() -> None:
    mids = _mids((0, 100.0), (1.5, 102.0))
    assert adverse_selection([_fill(BUY, 99, 1, 1 * S)], mids, 1 * S, 10 * S).ticks == pytest.approx(-2.0)


def test_adverse_selection_depends_on_the_horizon() -> None:
    mids = _mids((0, 100.0), (1.5, 97.0), (6.5, 101.0))
    fills = [_fill(BUY, 99, 1, 1 * S)]
    assert adverse_selection(fills, mids, 1 * S, 60 * S).ticks == pytest.approx(3.0)
    assert adverse_selection(fills, mids, 5 * S, 60 * S).ticks == pytest.approx(3.0)  # 101 only from 6.5 s
    assert adverse_selection(fills, mids, 30 * S, 60 * S).ticks == pytest.approx(-1.0)


def test_realised_spread_is_effective_spread_less_twice_the_adverse_selection() -> None:
    mids = _mids((0, 100.0), (1.5, 97.0))
    fills = [_fill(BUY, 99, 1, 1 * S)]
    realised = realised_spread(fills, mids, 1 * S, 10 * S)
    assert realised.ticks == pytest.approx(2 * (97 - 99))  # -4
    assert realised.ticks == pytest.approx(
        effective_spread(fills, mids).ticks - 2 * adverse_selection(fills, mids, 1 * S, 10 * S).ticks
    )


def test_a_fill_whose_horizon_lies_past_the_data_is_left_out_at_that_horizon() -> None:
    mids = _mids((0, 100.0), (1.5, 97.0))
    fills = [_fill(BUY, 99, 1, 1 * S), _fill(BUY, 99, 1, 8 * S)]
    stat = adverse_selection(fills, mids, 5 * S, end_ns=10 * S)
    assert (stat.fills, stat.lots) == (1, 1)  # the fill at 8 s would need the mid at 13 s
    assert math.isnan(adverse_selection(fills, mids, 30 * S, end_ns=10 * S).ticks)


def test_a_fill_with_no_mid_before_it_is_left_out() -> None:
    mids = _mids((0, float("nan")), (2, 100.0))  # one side of the book empty until 2 s
    fills = [_fill(BUY, 99, 1, 1 * S), _fill(BUY, 98, 3, 3 * S)]
    stat = effective_spread(fills, mids)
    assert (stat.ticks, stat.fills, stat.lots) == (4.0, 1, 3)


def test_without_fills_spreads_and_adverse_selection_are_nan() -> None:
    mids = _mids((0, 100.0))
    assert math.isnan(effective_spread([], mids).ticks)
    assert math.isnan(adverse_selection([], mids, S, 10 * S).bps)
    assert realised_spread([], mids, S, 10 * S).fills == 0


# --- fill rate and inventory -------------------------------------------------------------------------------


def test_fill_rate_is_fills_per_quote_sent() -> None:
    assert fill_rate(3, 12) == 0.25
    assert fill_rate(0, 12) == 0.0


def test_fill_rate_without_quotes_is_nan() -> None:
    assert math.isnan(fill_rate(3, None))
    assert math.isnan(fill_rate(0, 0))


def test_time_weighted_abs_inventory_weights_each_position_by_how_long_it_was_held() -> None:
    fills = [_fill(BUY, 100, 2, 2 * S), _fill(SELL, 100, 5, 6 * S)]
    # 0 on [0, 2), 2 on [2, 6), -3 on [6, 10]: (0 x 2 + 2 x 4 + 3 x 4) / 10
    assert time_weighted_abs_inventory(fills, 0, 10 * S) == pytest.approx(2.0)


def test_time_weighted_abs_inventory_counts_the_starting_position_and_ignores_fills_after_the_end() -> None:
    fills = [_fill(SELL, 100, 4, 5 * S), _fill(SELL, 100, 9, 20 * S)]
    # 4 on [0, 5), 0 on [5, 10]
    assert time_weighted_abs_inventory(fills, 0, 10 * S, start_position=4) == pytest.approx(2.0)


def test_time_weighted_abs_inventory_of_an_empty_span_is_nan() -> None:
    assert math.isnan(time_weighted_abs_inventory([], 5 * S, 5 * S))


# --- PnL distribution, Sharpe, drawdown --------------------------------------------------------------------


def test_pnl_changes_are_taken_on_the_records_grid_leaving_out_the_last_shorter_step() -> None:
    rec = _records([0, S, 2 * S, 3 * S, 4 * S, 4 * S + S // 2], pnl=[0, 1, 3, 2, 6, 10])
    assert pnl_changes(rec, S).tolist() == [1, 2, -1, 4]


def test_pnl_changes_over_a_coarser_interval_read_the_last_record_at_or_before_each_step() -> None:
    rec = _records([0, S, 2 * S, 3 * S, 4 * S, 5 * S], pnl=[0, 1, 3, 2, 6, 10])
    assert pnl_changes(rec, 2 * S).tolist() == [3, 3]  # at 0, 2 and 4 s: 0, 3, 6


def test_pnl_changes_refuse_an_interval_finer_than_the_records() -> None:
    rec = _records([0, S, 2 * S], pnl=[0, 1, 2])
    with pytest.raises(ValueError, match="finer"):
        pnl_changes(rec, S // 2)


def test_pnl_distribution_gives_mean_median_and_sample_std_of_the_changes() -> None:
    dist = pnl_distribution(np.array([1.0, 2.0, -1.0, 4.0]), S)
    assert (dist.count, dist.mean, dist.median, dist.min, dist.max) == (4, 1.5, 1.5, -1.0, 4.0)
    # deviations -0.5, 0.5, -2.5, 2.5: (0.25 + 0.25 + 6.25 + 6.25) / 3
    assert dist.std == pytest.approx(math.sqrt(13 / 3))
    assert dist.interval_s == 1.0


def test_pnl_distribution_of_no_changes_is_nan() -> None:
    dist = pnl_distribution(np.zeros(0), S)
    assert dist.count == 0 and math.isnan(dist.mean) and math.isnan(dist.std)


def test_sharpe_of_daily_pnl_changes_is_annualised_by_the_square_root_of_365_days() -> None:
    changes = np.array([1.0, 2.0, 1.0, 2.0])  # mean 1.5, std (ddof 1) sqrt(1/3)
    expected = 1.5 / math.sqrt(1 / 3) * math.sqrt(365)  # 49.64
    assert sharpe_ratio(changes, DAY, CRYPTO) == pytest.approx(expected)
    assert expected == pytest.approx(49.64, abs=0.01)


def test_sharpe_of_equities_counts_252_sessions_of_six_and_a_half_hours() -> None:
    changes = np.array([1.0, 2.0, 1.0, 2.0])
    session = 23_400 * S
    assert sharpe_ratio(changes, session, EQUITIES) == pytest.approx(1.5 / math.sqrt(1 / 3) * math.sqrt(252))
    assert sharpe_ratio(changes, S, EQUITIES) == pytest.approx(1.5 / math.sqrt(1 / 3) * math.sqrt(252 * 23_400))


def test_sharpe_without_variation_or_with_one_change_is_nan() -> None:
    assert math.isnan(sharpe_ratio(np.array([1.0, 1.0, 1.0]), S))
    assert math.isnan(sharpe_ratio(np.array([1.0]), S))


def test_max_drawdown_is_the_largest_fall_from_a_running_peak() -> None:
    rec = _records([0, S, 2 * S, 3 * S, 4 * S, 5 * S], pnl=[0, 5, 3, 8, 2, 4])
    dd = max_drawdown(rec)
    assert dd.max_currency == 6.0  # from 8 at 3 s to 2 at 4 s
    assert (dd.peak_ts_ns, dd.trough_ts_ns) == (3 * S, 4 * S)
    # falls relative to their peak: 2/5 at 2 s, 6/8 at 4 s, 4/8 at 5 s
    assert dd.max_fraction == pytest.approx(0.75)


def test_max_drawdown_finds_its_peak_when_peak_minus_fall_does_not_round_back_to_it() -> None:
    # 59.88 - (59.88 - (-29.25)) is not exactly 59.88 in doubles: the peak is the running maximum itself
    rec = _records([0, S, 2 * S], pnl=[59.88, 3.97, -29.25])
    dd = max_drawdown(rec)
    assert dd.max_currency == pytest.approx(89.13)
    assert (dd.peak_ts_ns, dd.trough_ts_ns) == (0, 2 * S)


def test_max_drawdown_fraction_is_of_capital_plus_peak_when_capital_is_given() -> None:
    rec = _records([0, S, 2 * S, 3 * S, 4 * S, 5 * S], pnl=[0, 5, 3, 8, 2, 4])
    dd = max_drawdown(rec, capital=100.0)
    assert dd.max_currency == 6.0
    assert dd.max_fraction == pytest.approx(6 / 108)


def test_max_drawdown_of_a_run_that_never_made_money_has_no_fraction() -> None:
    dd = max_drawdown(_records([0, S, 2 * S], pnl=[0, -1, -3]))
    assert dd.max_currency == 3.0 and math.isnan(dd.max_fraction)
    assert (dd.peak_ts_ns, dd.trough_ts_ns) == (0, 2 * S)


def test_max_drawdown_of_a_curve_that_only_rises_is_zero() -> None:
    dd = max_drawdown(_records([0, S, 2 * S], pnl=[0, 1, 3]))
    assert (dd.max_currency, dd.max_fraction, dd.peak_ts_ns) == (0.0, 0.0, None)


# --- latency -----------------------------------------------------------------------------------------------


def test_latency_percentiles_are_nearest_rank_samples() -> None:
    p = latency_percentiles(list(range(1, 101)))
    assert (p.count, p.p50_ns, p.p90_ns, p.p99_ns, p.p999_ns, p.max_ns) == (100, 50, 90, 99, 100, 100)


def test_latency_percentiles_of_no_samples_are_nan() -> None:
    p = latency_percentiles([])
    assert p.count == 0 and math.isnan(p.p50_ns)


# --- all of them -------------------------------------------------------------------------------------------


def _hand_run() -> tuple[list[Fill], npt.NDArray[np.void]]:
    """10 s at 1 s records; mid 100 up to the record at 3 s, then 98; a buy of 2 at 99 at 2.5 s, a sell of 2
    at 99 at 7 s."""
    ts = [t * S for t in range(11)]
    mid = [100.0] * 4 + [98.0] * 7
    pnl = [0.0, 0.0, 0.0, -2.0, -2.0, -2.0, -2.0, -0.2, -0.2, -0.2, -0.2]
    position = [0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0]
    fills = [_fill(BUY, 99, 2, 2 * S + S // 2, trade_id=1), _fill(SELL, 99, 2, 7 * S, trade_id=2)]
    return fills, _records(ts, pnl=pnl, mid=mid, position=position)


def test_compute_metrics_gathers_every_metric_from_fills_and_records() -> None:
    fills, rec = _hand_run()
    inst = Instrument("X", tick_size=0.01, lot_size=1, maker_fee_bps=-1.0)
    m = PerformanceMetrics.compute_metrics(fills, rec, quotes_sent=8, instrument=inst, horizons_ns=(1 * S, 5 * S))
    assert (m.fills, m.maker_fills, m.quotes_sent, m.fill_rate) == (2, 2, 8, 0.25)
    assert (m.volume_lots, m.buy_lots, m.sell_lots, m.final_position) == (4, 2, 2, 0)
    assert m.volume_notional == pytest.approx(4 * 99 * 0.01)
    assert (m.start_ns, m.end_ns, m.duration_s, m.records, m.mid_source) == (0, 10 * S, 10.0, 11, "records")
    # mids from the records: 100 before 2.5 s (record at 2 s); 98 before 7 s (record at 6 s)
    # buy: 2 x (100 - 99) = 2; sell: -2 x (98 - 99) = 2
    assert m.effective_spread.ticks == pytest.approx(2.0)
    # at 1 s: the buy sees 100 before 3.5 s (the record at 3 s), the sell 98 before 8 s: no move either way;
    # at 5 s: the buy sees 98 before 7.5 s (adverse 2); the sell's 12 s lies past the data
    assert [a.ticks for a in m.adverse_selection] == pytest.approx([0.0, 2.0])
    assert [r.ticks for r in m.realised_spread] == pytest.approx([2.0, 2 * (98 - 99)])
    assert [a.fills for a in m.adverse_selection] == [2, 1]  # the sell's 5 s horizon is past the data
    assert m.time_weighted_abs_inventory == pytest.approx(2 * 4.5 / 10)  # 2 lots from 2.5 s to 7 s
    assert m.max_abs_inventory == 2
    assert m.pnl_distribution.count == 10 and m.pnl_distribution.interval_s == 1.0
    assert m.pnl_distribution.mean == pytest.approx(-0.02)
    assert m.final_pnl == pytest.approx(-0.2)
    assert m.drawdown.max_currency == pytest.approx(2.0)
    assert "365 days" in m.sharpe_convention and "1 s" in m.sharpe_convention
    assert m.latency == {}


def test_compute_metrics_uses_a_finer_mid_series_when_given() -> None:
    fills, rec = _hand_run()
    series = [(0, 100.0), (int(2.4 * S), 100.5), (3 * S, 98.0)]
    m = PerformanceMetrics.compute_metrics(fills, rec, mid_series=series, horizons_ns=(S,))
    assert m.mid_source == "series"
    # buy at 99 against 100.5: 3 ticks; sell at 99 against 98: 2 ticks
    assert m.effective_spread.ticks == pytest.approx(2.5)


def test_compute_metrics_gives_latency_percentiles_per_stage_when_given() -> None:
    fills, rec = _hand_run()
    m = PerformanceMetrics.compute_metrics(fills, rec, latencies={"order_to_ack": [10, 20, 30], "ack_to_fill": [5]})
    assert list(m.latency) == ["order_to_ack", "ack_to_fill"]
    assert (m.latency["order_to_ack"].p50_ns, m.latency["ack_to_fill"].max_ns) == (20, 5)


def test_compute_metrics_with_no_fills_gives_nan_spreads_and_zero_volume() -> None:
    _, rec = _hand_run()
    m = PerformanceMetrics.compute_metrics([], rec, quotes_sent=5)
    assert (m.fills, m.volume_lots, m.fill_rate, m.symbol_id) == (0, 0, 0.0, None)
    assert math.isnan(m.effective_spread.ticks) and math.isnan(m.adverse_selection[0].ticks)
    assert m.time_weighted_abs_inventory == 0.0
    assert math.isnan(m.volume_notional)


def test_compute_metrics_on_an_empty_book_gives_nan_spreads() -> None:
    fills, rec = _hand_run()
    rec["mid"] = np.nan  # a side of the book empty throughout
    m = PerformanceMetrics.compute_metrics(fills, rec)
    assert math.isnan(m.effective_spread.ticks) and m.effective_spread.fills == 0
    assert all(math.isnan(r.ticks) for r in m.realised_spread)
    assert m.volume_lots == 4  # what does not need a mid is still measured


def test_compute_metrics_on_no_records_gives_nan_and_no_error() -> None:
    m = PerformanceMetrics.compute_metrics([], np.zeros(0, dtype=RECORD_DTYPE))
    assert m.records == 0 and m.start_ns is None
    assert all(math.isnan(x) for x in (m.final_pnl, m.fees, m.sharpe, m.time_weighted_abs_inventory))
    assert math.isnan(m.drawdown.max_currency) and m.pnl_distribution.count == 0


def test_compute_metrics_asks_which_symbol_when_fills_span_several() -> None:
    _, rec = _hand_run()
    fills = [_fill(BUY, 99, 1, S, symbol_id=0), _fill(BUY, 50, 1, S, symbol_id=1, trade_id=2)]
    with pytest.raises(ValueError, match="symbol_id"):
        PerformanceMetrics.compute_metrics(fills, rec)
    m = PerformanceMetrics.compute_metrics(fills, rec, symbol_id=1)
    assert (m.fills, m.symbol_id) == (1, 1)


def test_compute_metrics_refuses_a_history_that_is_not_a_records_array() -> None:
    pairs = np.array([(0, 0.0), (S, 1.0)], dtype=[("ts_ns", np.int64), ("pnl", np.float64)])
    with pytest.raises(TypeError, match="RECORD_DTYPE"):
        PerformanceMetrics.compute_metrics([], pairs)


def test_metrics_as_a_dict_are_plain_data_in_field_order() -> None:
    fills, rec = _hand_run()
    d = PerformanceMetrics.compute_metrics(fills, rec, quotes_sent=8).as_dict()
    assert list(d)[:3] == ["symbol_id", "start_ns", "end_ns"]
    assert d["adverse_selection"][0]["horizon_s"] == 1.0
    text = json.dumps(d)  # NaN is still a float here: the report turns it into null
    assert json.loads(text)["fills"] == 2
