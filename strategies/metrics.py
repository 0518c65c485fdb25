"""Performance metrics of a run: pure functions of its fills and its records, never of the engine.

:meth:`PerformanceMetrics.compute_metrics` takes the fills (:class:`~strategies.accounting.Fill`) and the run's
records (the ``RECORD_DTYPE`` array that backtests and live runs both write: ts_ns, mid, position, cash_ticks,
pnl, fees, bid, ask) and returns one frozen :class:`PerformanceMetrics`. Each metric is a small function here,
usable alone, whose docstring states its convention. The choices that apply to all of them:

- **One symbol.** Records hold one symbol's mid and position (the strategy's first symbol); the fills used are
  that symbol's (``symbol_id``; when not given, the fills must all be of one symbol). PnL and fees in the
  records are the account's, all symbols, in currency.
- **Signs from the strategy's side.** ``s = +1`` for a fill where the strategy bought, ``-1`` where it sold.
  A spread is positive when the strategy earned it; adverse selection is positive when the mid moved against
  the strategy after its fill (fell after a buy, rose after a sell).
- **Averages per lot.** Spreads and adverse selection are means over fills weighted by fill quantity: one
  order filled as 1 + 4 lots counts as one order of 5 would, however the engine split it. With equal-size
  fills this is the plain mean over fills.
- **The mid at a time** is the mid *prevailing just before* it: the last mid observation strictly before
  ``t`` (:class:`MidSeries`), so a fill is compared with the book it met, not the book it left (an observation
  at the fill's own time may already show the fill's effect). Observations come from a finer mid series when
  the caller gives one (``mid_series``, (ts_ns, mid) pairs, e.g. every top-of-book change), else from the
  records, which are sampled every ``record_interval_ns`` (1 s by default): then the mid at a fill can be up
  to one interval stale, and spreads measured on it are noisy. ``PerformanceMetrics.mid_source`` says which.
  A NaN mid (a side of the book empty) leaves that fill out of the metric.
- **Horizons are data time.** A fill whose ``t + horizon`` lies past the end of the data (the last record,
  or the last mid observation if later) has no mid at the horizon and is left out at that horizon (using the
  last mid instead would pull the measure towards zero); each horizon says how many fills it used.
- **PnL intervals.** The PnL curve is the records' ``pnl``, read on a regular grid from the first record every
  ``interval_ns`` (default: the records' own interval, the median gap between records), taking at each grid
  point the last record at or before it. The last, shorter interval to the final record is left out, so
  every change covers the same time (the final PnL is reported on its own).
- **Sharpe** is the mean over the standard deviation (ddof 1) of those per-interval PnL changes, times the
  square root of the number of intervals in a year: ``days_per_year x seconds_per_day / interval_s``
  (:class:`Annualisation`: :data:`CRYPTO` 365 days of 24 h, :data:`EQUITIES` 252 days of 6.5 h). It is
  scale-free, so no capital is needed, and takes a zero risk-free rate. It depends on the interval: PnL
  changes of a market maker over 1 s are far from independent, so compare Sharpes at one interval only.
- **NaN means "not measurable"** (no fills, no quotes, no records, no mid): never 0, which would read as a
  measurement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from c_engine import Liquidity, Side

from .accounting import Fill, Instrument

__all__ = [
    "CRYPTO",
    "DEFAULT_HORIZONS_NS",
    "EQUITIES",
    "Annualisation",
    "Drawdown",
    "HorizonStat",
    "LatencyPercentiles",
    "MidSeries",
    "PerformanceMetrics",
    "PnlDistribution",
    "SpreadStat",
    "adverse_selection",
    "drawdown_series",
    "effective_spread",
    "fill_rate",
    "inventory_path",
    "latency_percentiles",
    "max_drawdown",
    "pnl_changes",
    "pnl_distribution",
    "realised_spread",
    "records_interval_ns",
    "sharpe_ratio",
    "time_weighted_abs_inventory",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_BUY = int(Side.BUY)
_MAKER = int(Liquidity.MAKER)
_NAN = float("nan")
_S = 1_000_000_000
#: the record fields the metrics read (``strategies.backtest.RECORD_DTYPE`` has them all)
_RECORD_FIELDS = ("ts_ns", "mid", "position", "pnl", "fees")

#: adverse selection and realised spread are measured this long after each fill (data time): 1 s, 5 s, 30 s
DEFAULT_HORIZONS_NS = (1 * _S, 5 * _S, 30 * _S)


@dataclass(frozen=True)
class Annualisation:
    """How many seconds of data a year holds, to annualise a Sharpe ratio."""

    name: str
    days_per_year: float
    #: seconds of trading a day: 86,400 for a market open around the clock, 23,400 for a 6.5 h session
    seconds_per_day: float

    def intervals_per_year(self, interval_ns: int) -> float:
        return self.days_per_year * self.seconds_per_day * _S / interval_ns


#: crypto trades every day around the clock: 365 days of 24 h
CRYPTO = Annualisation("crypto", 365, 86_400)
#: US equities: 252 sessions of 6.5 h (09:30-16:00)
EQUITIES = Annualisation("equities", 252, 23_400)


# --- results -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpreadStat:
    """A per-lot mean over fills, in ticks and in basis points of the mid."""

    ticks: float
    bps: float
    #: fills that had the mids the measure needs
    fills: int
    lots: int


@dataclass(frozen=True)
class HorizonStat:
    """A per-lot mean over fills measured ``horizon_s`` after each fill."""

    horizon_s: float
    ticks: float
    bps: float
    fills: int
    lots: int


@dataclass(frozen=True)
class PnlDistribution:
    """Per-interval PnL changes (currency) of ``interval_s`` each."""

    interval_s: float
    count: int
    mean: float
    median: float
    std: float  #: ddof 1
    min: float
    max: float


@dataclass(frozen=True)
class Drawdown:
    """The largest fall of the PnL curve from a running peak."""

    #: currency; 0 when the curve never fell
    max_currency: float
    #: the largest fall as a fraction of the equity peak it fell from (equity = capital + PnL), taken over the
    #: points whose peak is positive; NaN when no peak is (a fraction of a non-positive peak means nothing)
    max_fraction: float
    #: when the largest fall started (the last time the curve stood at its peak) and ended; None if no fall
    peak_ts_ns: int | None
    trough_ts_ns: int | None


@dataclass(frozen=True)
class LatencyPercentiles:
    """Percentiles of one latency sample (ns), nearest rank: each is a delay that was observed."""

    count: int
    p50_ns: float
    p90_ns: float
    p99_ns: float
    p999_ns: float
    max_ns: float


@dataclass(frozen=True)
class MidSeries:
    """Mid observations (ticks, NaN while a side is empty) at non-decreasing times, read as of a time."""

    ts_ns: IntArray
    mid: FloatArray
    #: where the observations come from: "records" or "series" (a finer series the caller gave)
    source: str = "series"

    def __post_init__(self) -> None:
        if len(self.ts_ns) != len(self.mid):
            raise ValueError(f"mid series: {len(self.ts_ns)} times but {len(self.mid)} mids")
        if len(self.ts_ns) > 1 and bool((np.diff(self.ts_ns) < 0).any()):
            raise ValueError("mid series: times must be non-decreasing")

    @classmethod
    def from_records(cls, records: npt.NDArray[Any]) -> MidSeries:
        return cls(np.asarray(records["ts_ns"], dtype=np.int64), np.asarray(records["mid"], dtype=np.float64),
                   "records")  # fmt: skip

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[int, float]] | npt.NDArray[Any]) -> MidSeries:
        """From (ts_ns, mid) pairs: a sequence of tuples or an (n, 2) array."""
        if len(pairs) == 0:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
        ts = np.asarray([int(p[0]) for p in pairs], dtype=np.int64)
        mid = np.asarray([float(p[1]) for p in pairs], dtype=np.float64)
        return cls(ts, mid)

    @property
    def end_ns(self) -> int | None:
        return int(self.ts_ns[-1]) if len(self.ts_ns) else None

    def before(self, t_ns: IntArray) -> FloatArray:
        """The mid prevailing just before each time: the last observation strictly before it (NaN if none)."""
        idx = np.searchsorted(self.ts_ns, t_ns, side="left") - 1
        out = np.full(len(t_ns), _NAN)
        ok = idx >= 0
        out[ok] = self.mid[idx[ok]]
        return out


# --- fills --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FillArrays:
    ts: IntArray
    sign: IntArray  # +1 bought, -1 sold
    price: FloatArray
    qty: IntArray

    @classmethod
    def of(cls, fills: Sequence[Fill]) -> _FillArrays:
        order = np.argsort(np.asarray([f.ts_ns for f in fills], dtype=np.int64), kind="stable")
        ordered = [fills[int(i)] for i in order]
        return cls(
            np.asarray([f.ts_ns for f in ordered], dtype=np.int64),
            np.asarray([1 if f.side == _BUY else -1 for f in ordered], dtype=np.int64),
            np.asarray([f.price for f in ordered], dtype=np.float64),
            np.asarray([f.qty for f in ordered], dtype=np.int64),
        )


def _weighted(values: FloatArray, mids: FloatArray, qty: IntArray, horizon_ns: int | None) -> HorizonStat:
    """Per-lot means of ``values`` (ticks) and of ``values / mids`` (bps) over the finite ones."""
    ok = np.isfinite(values) & np.isfinite(mids) & (mids > 0)
    lots = int(qty[ok].sum())
    if lots == 0:
        ticks = bps = _NAN
    else:
        w = qty[ok].astype(np.float64)
        ticks = float(np.dot(values[ok], w) / lots)
        bps = float(np.dot(values[ok] / mids[ok], w) / lots * 1e4)
    return HorizonStat((horizon_ns or 0) / _S, ticks, bps, int(ok.sum()), lots)


def effective_spread(fills: Sequence[Fill], mids: MidSeries) -> SpreadStat:
    """Effective spread: ``2 x s x (m0 - price)`` per fill, ``m0`` the mid just before the fill.

    In ticks, and in bps as ``2 x s x (m0 - price) / m0 x 1e4``; per-lot mean. Signed from the strategy's
    side: a maker fill at its quote earns a positive spread (bought below the mid, sold above); a fill on the
    wrong side of the mid (a stale quote picked off, or a taking order) counts negative, which an absolute
    value would hide.
    """
    f = _FillArrays.of(fills)
    m0 = mids.before(f.ts)
    s = _weighted(2.0 * f.sign * (m0 - f.price), m0, f.qty, None)
    return SpreadStat(s.ticks, s.bps, s.fills, s.lots)


def _at_horizon(f: _FillArrays, mids: MidSeries, horizon_ns: int, end_ns: int | None) -> FloatArray:
    """The mid just before ``t + horizon`` per fill; NaN where that lies past ``end_ns``."""
    t = f.ts + horizon_ns
    mh = mids.before(t)
    if end_ns is None:
        return np.full(len(t), _NAN)
    mh[t > end_ns] = _NAN
    return mh


def realised_spread(fills: Sequence[Fill], mids: MidSeries, horizon_ns: int, end_ns: int | None) -> HorizonStat:
    """Realised spread at ``horizon_ns``: ``2 x s x (m_h - price)`` per fill, ``m_h`` the mid just before
    ``t + horizon``: what the fill earned once the mid had moved on (positive: earned).

    In ticks and in bps of ``m0`` (the mid just before the fill); per-lot mean over the fills whose horizon
    lies within the data (``end_ns``). Realised = effective - 2 x adverse selection, fill by fill.
    """
    f = _FillArrays.of(fills)
    m0 = mids.before(f.ts)
    mh = _at_horizon(f, mids, horizon_ns, end_ns)
    return _weighted(2.0 * f.sign * (mh - f.price), np.where(np.isfinite(mh), m0, _NAN), f.qty, horizon_ns)


def adverse_selection(fills: Sequence[Fill], mids: MidSeries, horizon_ns: int, end_ns: int | None) -> HorizonStat:
    """Adverse selection at ``horizon_ns``: ``-s x (m_h - m0)`` per fill, the mid move against the fill.

    ``m0`` is the mid just before the fill, ``m_h`` just before ``t + horizon``; positive when the mid fell
    after a buy or rose after a sell (the fill was informed against the strategy). In ticks and bps of
    ``m0``; per-lot mean over the fills whose horizon lies within the data (``end_ns``).
    """
    f = _FillArrays.of(fills)
    m0 = mids.before(f.ts)
    mh = _at_horizon(f, mids, horizon_ns, end_ns)
    return _weighted(-1.0 * f.sign * (mh - m0), m0, f.qty, horizon_ns)


def fill_rate(fills: int, quotes_sent: int | None) -> float:
    """Fill events per quote sent (a new order or a modify that places a quote): NaN without quotes.

    Counts the engine's fill events, so a quote filled in two parts counts twice: the rate can exceed 1.
    """
    if not quotes_sent:
        return _NAN
    return fills / quotes_sent


# --- inventory ----------------------------------------------------------------------------------------------


def inventory_path(fills: Sequence[Fill], start_ns: int, start_position: int = 0) -> tuple[IntArray, IntArray]:
    """The position (lots) as a step function: it is ``position[i]`` from ``ts[i]`` until ``ts[i + 1]``.

    It starts at ``start_position`` at ``start_ns`` and changes at each fill's engine time (fills before
    ``start_ns`` count from ``start_ns``). This is the inventory the engine held, exact at every fill; the
    records' ``position`` is the strategy's own view, which learns of a fill one response delay later and is
    sampled only every record interval.
    """
    f = _FillArrays.of(fills)
    ts = np.concatenate([[start_ns], np.maximum(f.ts, start_ns)]).astype(np.int64)
    pos = np.concatenate([[start_position], start_position + np.cumsum(f.sign * f.qty)]).astype(np.int64)
    return ts, pos


def time_weighted_abs_inventory(fills: Sequence[Fill], start_ns: int, end_ns: int, start_position: int = 0) -> float:
    """Mean of ``|position|`` (lots) over ``[start_ns, end_ns]``, weighted by time (:func:`inventory_path`).

    Fills after ``end_ns`` do not count; NaN for an empty span.
    """
    if end_ns <= start_ns:
        return _NAN
    ts, pos = inventory_path(fills, start_ns, start_position)
    keep = ts <= end_ns
    ts, pos = ts[keep], pos[keep]
    durations = np.diff(np.concatenate([ts, [end_ns]]))
    return float(np.dot(np.abs(pos).astype(np.float64), durations.astype(np.float64)) / (end_ns - start_ns))


# --- PnL ----------------------------------------------------------------------------------------------------


def records_interval_ns(records: npt.NDArray[Any]) -> int | None:
    """The records' own sampling interval: the median positive gap between records (None with fewer than 2)."""
    gaps = np.diff(np.asarray(records["ts_ns"], dtype=np.int64))
    gaps = gaps[gaps > 0]
    return int(np.median(gaps)) if len(gaps) else None


def pnl_changes(records: npt.NDArray[Any], interval_ns: int) -> FloatArray:
    """PnL changes (currency) over consecutive ``interval_ns`` steps from the first record.

    The PnL at each grid point ``t0 + k x interval`` (up to the last record) is the last record's at or before
    it; the last, shorter step to the final record is left out; NaN PnLs are dropped from the result.
    """
    if interval_ns <= 0:
        raise ValueError(f"interval_ns must be positive, not {interval_ns}")
    ts = np.asarray(records["ts_ns"], dtype=np.int64)
    if len(ts) < 2:
        return np.zeros(0, dtype=np.float64)
    own = records_interval_ns(records)
    if own is not None and interval_ns < own:
        raise ValueError(f"interval_ns {interval_ns} is finer than the records' own interval {own}: "
                         "the grid would repeat records")  # fmt: skip
    steps = int((ts[-1] - ts[0]) // interval_ns)
    grid = ts[0] + interval_ns * np.arange(steps + 1, dtype=np.int64)
    values = np.asarray(records["pnl"], dtype=np.float64)[np.searchsorted(ts, grid, side="right") - 1]
    changes = np.diff(values)
    finite: FloatArray = changes[np.isfinite(changes)]
    return finite


def pnl_distribution(changes: FloatArray, interval_ns: int) -> PnlDistribution:
    """Mean, median, std (ddof 1), min and max of per-interval PnL changes; NaN where too few."""
    n = len(changes)
    return PnlDistribution(
        interval_ns / _S,
        n,
        float(np.mean(changes)) if n else _NAN,
        float(np.median(changes)) if n else _NAN,
        float(np.std(changes, ddof=1)) if n > 1 else _NAN,
        float(np.min(changes)) if n else _NAN,
        float(np.max(changes)) if n else _NAN,
    )


def sharpe_ratio(changes: FloatArray, interval_ns: int, annualisation: Annualisation = CRYPTO) -> float:
    """Annualised Sharpe of per-interval PnL changes: ``mean / std (ddof 1) x sqrt(intervals a year)``.

    ``intervals a year = days_per_year x seconds_per_day / interval_s`` (see :class:`Annualisation`); the
    risk-free rate is 0. NaN with fewer than two changes or no variation.
    """
    if len(changes) < 2:
        return _NAN
    std = float(np.std(changes, ddof=1))
    if not std > 0:
        return _NAN
    return float(np.mean(changes)) / std * float(np.sqrt(annualisation.intervals_per_year(interval_ns)))


def drawdown_series(records: npt.NDArray[Any], capital: float = 0.0) -> tuple[IntArray, FloatArray, FloatArray]:
    """(ts_ns, equity, drawdown): equity = capital + PnL, drawdown = running peak of equity - equity (>= 0).

    Records with a NaN PnL are dropped.
    """
    ts = np.asarray(records["ts_ns"], dtype=np.int64)
    pnl = np.asarray(records["pnl"], dtype=np.float64)
    ok = np.isfinite(pnl)
    equity = capital + pnl[ok]
    peak = np.maximum.accumulate(equity) if len(equity) else equity
    return ts[ok], equity, peak - equity


def max_drawdown(records: npt.NDArray[Any], capital: float = 0.0) -> Drawdown:
    """The largest fall of capital + PnL from its running peak (see :class:`Drawdown`).

    With ``capital`` 0 (no capital given) the fraction is of the peak PnL, meaningful only once the run has
    made money: a run that never stood above 0 has a NaN fraction. Give the capital the strategy ties up to
    get the usual fraction of equity.
    """
    ts, equity, dd = drawdown_series(records, capital)
    if len(dd) == 0:
        return Drawdown(_NAN, _NAN, None, None)
    peak = np.maximum.accumulate(equity)  # the running peak itself: equity + dd may miss it by a rounding step
    positive = peak > 0
    fraction = float(np.max(dd[positive] / peak[positive])) if positive.any() else _NAN
    trough = int(np.argmax(dd))
    if dd[trough] <= 0:
        return Drawdown(0.0, fraction, None, None)
    at_peak = int(np.flatnonzero(equity[: trough + 1] == peak[trough])[-1])
    return Drawdown(float(dd[trough]), fraction, int(ts[at_peak]), int(ts[trough]))


# --- latency ------------------------------------------------------------------------------------------------


def latency_percentiles(samples_ns: Sequence[int] | npt.NDArray[Any]) -> LatencyPercentiles:
    """p50, p90, p99, p99.9 and max of delays (ns), nearest rank: the smallest sample with at least p % of
    the samples at or below it. NaN for an empty sample."""
    x = np.asarray(samples_ns, dtype=np.float64)
    if len(x) == 0:
        return LatencyPercentiles(0, _NAN, _NAN, _NAN, _NAN, _NAN)
    p = np.percentile(x, [50, 90, 99, 99.9], method="inverted_cdf")
    return LatencyPercentiles(len(x), float(p[0]), float(p[1]), float(p[2]), float(p[3]), float(x.max()))


# --- all of them --------------------------------------------------------------------------------------------


def _check_records(records: npt.NDArray[Any]) -> None:
    names = records.dtype.names or ()
    missing = [f for f in _RECORD_FIELDS if f not in names]
    if missing:
        raise TypeError(f"pnl_history must be a records array (RECORD_DTYPE); it lacks {missing}")


def _select(fills: Sequence[Fill], symbol_id: int | None) -> tuple[list[Fill], int | None]:
    if symbol_id is None:
        symbols = sorted({f.symbol_id for f in fills})
        if len(symbols) > 1:
            raise ValueError(f"fills of several symbols {symbols}: say which with symbol_id")
        return list(fills), symbols[0] if symbols else None
    return [f for f in fills if f.symbol_id == symbol_id], symbol_id


@dataclass(frozen=True)
class PerformanceMetrics:
    """Every metric of one run; :meth:`compute_metrics` builds it, :meth:`as_dict` gives it as plain data."""

    symbol_id: int | None
    start_ns: int | None
    end_ns: int | None
    duration_s: float
    records: int
    #: where mids came from: "records" (sampled every record interval) or "series" (a finer series given)
    mid_source: str
    fills: int
    maker_fills: int
    #: None when the caller did not say how many quotes were sent
    quotes_sent: int | None
    fill_rate: float
    volume_lots: int
    buy_lots: int
    sell_lots: int
    #: currency (NaN without an instrument)
    volume_notional: float
    #: currency, the account's, from the last record
    fees: float
    #: currency, net of fees, the account's, from the last record
    final_pnl: float
    #: lots, the engine's: the first record's position plus the fills
    final_position: int
    effective_spread: SpreadStat
    realised_spread: tuple[HorizonStat, ...]
    adverse_selection: tuple[HorizonStat, ...]
    time_weighted_abs_inventory: float
    max_abs_inventory: int
    pnl_distribution: PnlDistribution
    sharpe: float
    #: how the Sharpe was sampled and annualised, in words
    sharpe_convention: str
    drawdown: Drawdown
    #: per named stage (e.g. "order_to_ack", "ack_to_fill"): empty for a backtest
    latency: dict[str, LatencyPercentiles] = field(default_factory=dict)

    @classmethod
    def compute_metrics(
        cls,
        fills: Sequence[Fill],
        pnl_history: npt.NDArray[Any],
        *,
        quotes_sent: int | None = None,
        symbol_id: int | None = None,
        instrument: Instrument | None = None,
        mid_series: MidSeries | Sequence[tuple[int, float]] | None = None,
        horizons_ns: Sequence[int] = DEFAULT_HORIZONS_NS,
        interval_ns: int | None = None,
        annualisation: Annualisation = CRYPTO,
        capital: float = 0.0,
        latencies: Mapping[str, Sequence[int] | npt.NDArray[Any]] | None = None,
    ) -> PerformanceMetrics:
        """Metrics of ``fills`` and ``pnl_history``, the run's records (``RECORD_DTYPE``; see the module).

        ``quotes_sent`` gives the fill rate; ``symbol_id`` picks the records' symbol among the fills;
        ``instrument`` the notional volume; ``mid_series`` a finer mid than the records' (``MidSeries`` or
        (ts_ns, mid) pairs); ``horizons_ns`` the adverse-selection and realised-spread horizons; ``interval_ns``
        the PnL sampling interval (default the records' own); ``annualisation`` the Sharpe's year; ``capital``
        the drawdown fraction's base; ``latencies`` named samples of delays in ns (live runs).
        """
        records = pnl_history
        _check_records(records)
        used, sid = _select(fills, symbol_id)
        n = len(records)
        start = int(records["ts_ns"][0]) if n else None
        end = int(records["ts_ns"][-1]) if n else None
        if mid_series is None:
            mids = MidSeries.from_records(records)
        elif isinstance(mid_series, MidSeries):
            mids = mid_series
        else:
            mids = MidSeries.from_pairs(mid_series)
        data_end = max((t for t in (end, mids.end_ns) if t is not None), default=None)

        f = _FillArrays.of(used)
        start_position = int(records["position"][0]) if n else 0
        path_start = start if start is not None else (int(f.ts[0]) if len(f.ts) else 0)
        _, path = inventory_path(used, path_start, start_position)
        interval = interval_ns if interval_ns is not None else records_interval_ns(records)
        changes = pnl_changes(records, interval) if interval is not None else np.zeros(0, dtype=np.float64)
        notional = float(np.dot(f.price, f.qty.astype(np.float64)) * instrument.tick_lot_value) if instrument else _NAN
        if interval is None:
            convention = "no PnL intervals"
        else:
            convention = (
                f"mean / std (ddof 1) of {interval / _S:g} s PnL changes x sqrt({annualisation.days_per_year:g} "
                f"days x {annualisation.seconds_per_day:g} s / {interval / _S:g} s) ({annualisation.name}); "
                "risk-free rate 0"
            )
        return cls(
            symbol_id=sid,
            start_ns=start,
            end_ns=end,
            duration_s=(end - start) / _S if start is not None and end is not None else 0.0,
            records=n,
            mid_source=mids.source,
            fills=len(used),
            maker_fills=sum(1 for x in used if x.liquidity == _MAKER),
            quotes_sent=quotes_sent,
            fill_rate=fill_rate(len(used), quotes_sent),
            volume_lots=int(f.qty.sum()),
            buy_lots=int(f.qty[f.sign > 0].sum()),
            sell_lots=int(f.qty[f.sign < 0].sum()),
            volume_notional=notional,
            fees=float(records["fees"][-1]) if n else _NAN,
            final_pnl=float(records["pnl"][-1]) if n else _NAN,
            final_position=int(path[-1]),
            effective_spread=effective_spread(used, mids),
            realised_spread=tuple(realised_spread(used, mids, h, data_end) for h in horizons_ns),
            adverse_selection=tuple(adverse_selection(used, mids, h, data_end) for h in horizons_ns),
            time_weighted_abs_inventory=(
                time_weighted_abs_inventory(used, start, end, start_position)
                if start is not None and end is not None
                else _NAN
            ),
            max_abs_inventory=int(np.abs(path).max()),
            pnl_distribution=pnl_distribution(changes, interval or 0),
            sharpe=sharpe_ratio(changes, interval, annualisation) if interval is not None else _NAN,
            sharpe_convention=convention,
            drawdown=max_drawdown(records, capital),
            latency={name: latency_percentiles(s) for name, s in (latencies or {}).items()},
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, ints, floats, str, None) in field order; NaN stays a float NaN."""
        plain: dict[str, Any] = _plain(dataclasses.asdict(self))
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
