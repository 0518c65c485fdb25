"""The batch features: numpy over a recorded session, one row per sample point, for training.

The inputs are plain arrays, so any recording can feed them (``sources.py`` builds them from LOBSTER files and
from a synthetic engine session): ``BookSeries`` (the top levels after each sample point), ``TradeSeries``
(every trade, with the sample it belongs to) and, for the queue-position proxy, one ``OwnOrderSegment`` per
stretch of time one's own order kept its queue place. The formulas are docs/ML.md's ("Features", a table
with each); ``_incremental.py`` computes the same ones event by event, and the tests hold the two within 1e-9.

In short, at sample t with level-k bid ``b_k x B_k`` and ask ``a_k x A_k`` and ``s = b_1 + a_1`` carried forward:
spread ``a_1 - b_1``; imbalance ``(B_1 - A_1) / (B_1 + A_1)`` and its depth-weighted form with ``w_k = 1/k``;
the imbalance-weighted mid less the mid ``(a_1 - b_1)(B_1 - A_1) / (2 (B_1 + A_1))`` (not Stoikov's 2018
micro-price, which needs a fitted model); order-flow imbalance per level between consecutive samples
``e_k = B_k 1{b_k >= b_k'} - B_k' 1{b_k <= b_k'} - A_k 1{a_k <= a_k'} + A_k' 1{a_k >= a_k'}`` (primes: the
previous sample; Cont, Kukanov & Stoikov 2014, "The price impact of order book events"; per level, Xu, Gould &
Howison 2019, "Multi-level order-flow imbalance in a limit order book"), summed over a window of samples; returns
``1e4 (s_t - s_ref) / s_ref`` over samples and over time; volatility ``sqrt`` of the EWMA of squared one-sample
returns; trade-flow imbalance ``(V_buy - V_sell) / (V_buy + V_sell)`` over a time window; arrival rates
``lambda_t = lambda_prev exp(-dt / tau) + n_t / tau``; the queue-position proxy of ``_incremental.py``'s docstring.

Choices:

- **Integers until the last division.** Sizes, OFI and trade volumes are int64; windowed sums are differences of
  integer cumulative sums, exact at any length (a float cumsum over a day would drift past 1e-9).
- **Empty levels.** A level slot whose qty is 0 is empty; its price is replaced by a sentinel (0 for a bid,
  ``ASK_EMPTY`` for an ask) so that the OFI's price comparisons treat a missing level as infinitely far.
- **Recurrences.** The EWMA volatility (a constant weight) runs through ``scipy.signal.lfilter``; the arrival
  rates (a weight that depends on the time between samples) through a log-depth associative scan of
  ``x[i] = a[i] * x[i-1] + b[i]``, all numpy. The queue proxy's ``a[t] = max(0, min(a[t-1] - x[t], c[t]))`` is
  a running minimum of ``c + cumsum(x)``, minus that cumsum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from c_engine import Side

from ._spec import FeatureSpec

__all__ = ["ASK_EMPTY", "BookSeries", "OwnOrderSegment", "TradeSeries", "batch_features", "depth_weights"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: the price an empty ask slot compares as: above any real price (an empty bid slot compares as 0)
ASK_EMPTY = 1 << 62
_BUY, _SELL = int(Side.BUY), int(Side.SELL)


class BookSeries(NamedTuple):
    """The book after each sample point: ``(n, levels)`` int64 arrays, best first; qty 0 marks an empty slot.

    ``levels`` must be at least the spec's ``depth``; a queue-position segment needs its price within them.
    """

    ts_ns: I64
    bid_price: I64
    bid_qty: I64
    ask_price: I64
    ask_qty: I64


class TradeSeries(NamedTuple):
    """Every trade in order: the sample point it belongs to (nondecreasing), its time, the taker's side, price
    (ticks) and qty (lots)."""

    sample: I64
    ts_ns: I64
    side: I64
    price: I64
    qty: I64


class OwnOrderSegment(NamedTuple):
    """One of one's own orders while it keeps one queue place: it rests from sample ``start`` on, at ``price`` on
    ``side``, with ``open_qty[j]`` open after sample ``start + j`` (a price change or a size increase, which lose
    the place, start a new segment). Segments are ranked in time priority by ``start``, then by list order."""

    side: int
    price: int
    start: int
    open_qty: I64


def depth_weights(depth: int) -> list[float]:
    """The depth-weighted imbalance's level weights ``w_k = 1 / k``, k = 1..depth."""
    return [1.0 / k for k in range(1, depth + 1)]


def _linear_scan(a: F64, b: F64) -> F64:
    """``x[i] = a[i] * x[i-1] + b[i]`` with ``x[-1] = 0``, for all i at once (Hillis-Steele doubling).

    Each pass composes every element with the one ``d`` before it, the maps ``x -> a x + b`` being
    associative under composition; products of decays in [0, 1] only shrink, so no pass overflows.
    """
    a, x = a.copy(), b.copy()
    d = 1
    while d < len(x):
        x[d:] = a[d:] * x[:-d] + x[d:]  # the right side is evaluated whole before it is stored
        a[d:] = a[d:] * a[:-d]
        d *= 2
    return x


def _window_sum(values: I64, window: int) -> I64:
    """The sum of the last ``window`` rows (the current one included) of an int64 array, exactly."""
    c = np.cumsum(values, axis=0)
    out = c.copy()
    out[window:] -= c[:-window]
    return out


def _normalised(book: BookSeries, depth: int) -> tuple[I64, I64, I64, I64]:
    if book.bid_price.shape[1] < depth:
        raise ValueError(f"the book has {book.bid_price.shape[1]} levels a side, the spec reads {depth}")
    bq, aq = book.bid_qty[:, :depth].astype(np.int64), book.ask_qty[:, :depth].astype(np.int64)
    bp = np.where(bq > 0, book.bid_price[:, :depth], 0).astype(np.int64)
    ap = np.where(aq > 0, book.ask_price[:, :depth], ASK_EMPTY).astype(np.int64)
    return bp, bq, ap, aq


def _ofi(bp: I64, bq: I64, ap: I64, aq: I64) -> I64:
    """The per-sample order-flow imbalance at each level (Cont et al. 2014; per level, Xu et al. 2019)."""
    e = np.zeros(bq.shape, dtype=np.int64)
    pb, qb, pa, qa = bp[:-1], bq[:-1], ap[:-1], aq[:-1]
    nb, nqb, na, nqa = bp[1:], bq[1:], ap[1:], aq[1:]
    bid = nqb * (nb >= pb) - qb * (nb <= pb)
    ask = nqa * (na <= pa) - qa * (na >= pa)
    e[1:] = bid - ask
    return e


def _divide(num: npt.NDArray[np.int64], den: npt.NDArray[np.int64]) -> F64:
    """num / den in float64, NaN where den is 0."""
    out = np.full(num.shape, np.nan)
    ok = den != 0
    out[ok] = num[ok] / den[ok]
    return out


def _queue_ahead(book: BookSeries, trades: TradeSeries, segments: Sequence[OwnOrderSegment], n: int) -> F64:
    """Columns (bid, ask): the queue-ahead proxy of the front own order of each side, NaN where none rests."""
    out = np.full((n, 2), np.nan)
    best = [np.zeros(n, dtype=np.int64), np.full(n, ASK_EMPTY, dtype=np.int64)]
    order = sorted(range(len(segments)), key=lambda i: (segments[i].start, i))
    for i in order:
        seg = segments[i]
        start, stop = seg.start, seg.start + len(seg.open_qty)
        if seg.side == _BUY:
            prices, qtys, col, taker = book.bid_price, book.bid_qty, 0, _SELL
        else:
            prices, qtys, col, taker = book.ask_price, book.ask_qty, 1, _BUY
        level = np.where((prices[start:stop] == seg.price) & (qtys[start:stop] > 0), qtys[start:stop], 0).sum(axis=1)
        c = level - seg.open_qty
        x = np.zeros(stop - start, dtype=np.int64)
        lo, hi = np.searchsorted(trades.sample, (start, stop - 1), side="right")  # samples start+1..stop-1
        hit = (trades.price[lo:hi] == seg.price) & (trades.side[lo:hi] == taker)
        np.add.at(x, trades.sample[lo:hi][hit] - start, trades.qty[lo:hi][hit])
        total = np.cumsum(x)
        ahead = np.maximum(0, np.minimum.accumulate(c + total) - total)
        # Front: the best price; at one price the earlier segment, which came first in this loop.
        current = best[col][start:stop]
        front = current < seg.price if col == 0 else current > seg.price
        rows = np.flatnonzero(front) + start
        best[col][rows] = seg.price
        out[rows, col] = ahead[rows - start]
    return out


def batch_features(
    spec: FeatureSpec, book: BookSeries, trades: TradeSeries, own: Sequence[OwnOrderSegment] = ()
) -> F64:
    """The ``(n, spec.width)`` float64 feature rows of a recorded session, columns in ``spec.names()`` order."""
    n = len(book.ts_ns)
    ts = np.asarray(book.ts_ns, dtype=np.int64)
    if n and np.any(np.diff(ts) < 0):
        raise ValueError("sample times must not decrease")
    if len(trades.ts_ns) and (np.any(np.diff(trades.ts_ns) < 0) or np.any(np.diff(trades.sample) < 0)):
        raise ValueError("trades must be in time and sample order")
    out = np.empty((n, spec.width))
    if n == 0:
        return out
    d = spec.depth
    bp, bq, ap, aq = _normalised(book, d)
    both = (bq[:, 0] > 0) & (aq[:, 0] > 0)
    col = 0

    # Book shape.
    out[:, 0] = np.where(both, (ap[:, 0] - bp[:, 0]).astype(np.float64), np.nan)
    out[:, 1] = _divide(bq[:, 0] - aq[:, 0], bq[:, 0] + aq[:, 0])
    num, den = np.zeros(n), np.zeros(n)
    for k, w in enumerate(depth_weights(d)):  # level by level, in the incremental side's order of additions
        num = num + w * (bq[:, k] - aq[:, k])
        den = den + w * (bq[:, k] + aq[:, k])
    out[:, 2] = np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
    wmid = _divide((ap[:, 0] - bp[:, 0]) * (bq[:, 0] - aq[:, 0]), 2 * (bq[:, 0] + aq[:, 0]))
    out[:, 3] = np.where(both, wmid, np.nan)
    col = 4

    # Order-flow imbalance, levels 1..depth, over the window.
    out[:, col : col + d] = _window_sum(_ofi(bp, bq, ap, aq), spec.ofi_window)
    col += d

    # Mid (as bid + ask, in ticks: twice the mid), carried forward over one-sided books.
    s_now = bp[:, 0] + ap[:, 0]
    last = np.maximum.accumulate(np.where(both, np.arange(n), -1))
    defined = last >= 0
    s = np.where(defined, s_now[np.maximum(last, 0)], 0)

    def ret(ref: I64) -> F64:
        ok = (ref >= 0) & defined & defined[np.maximum(ref, 0)]
        r = np.full(n, np.nan)
        j = ref[ok]
        r[ok] = 1e4 * (s[ok] - s[j]) / s[j]
        return r

    idx = np.arange(n)
    for h in spec.return_horizons:
        out[:, col] = ret(idx - h)
        col += 1
    for h in spec.momentum_horizons_ns:
        out[:, col] = ret(np.searchsorted(ts, ts - h, side="right") - 1)
        col += 1

    # Realised volatility: EWMA of the squared one-sample return (0 where undefined).
    r1 = np.nan_to_num(ret(idx - 1), nan=0.0)
    alpha = spec.vol_alpha
    var = lfilter([alpha], [1.0, -(1.0 - alpha)], r1 * r1)
    out[:, col] = np.sqrt(var)
    col += 1

    # Trade-flow imbalance over the time window.
    t_sample = np.asarray(trades.sample, dtype=np.int64)
    t_qty = np.asarray(trades.qty, dtype=np.int64)
    signed = np.where(np.asarray(trades.side) == _BUY, t_qty, -t_qty)
    cs = np.concatenate(([0], np.cumsum(signed)))
    ca = np.concatenate(([0], np.cumsum(t_qty)))
    hi = np.searchsorted(t_sample, idx, side="right")
    lo = np.searchsorted(np.asarray(trades.ts_ns, dtype=np.int64), ts - spec.trade_window_ns, side="right")
    total = ca[hi] - ca[lo]
    out[:, col] = np.where(total > 0, _divide(cs[hi] - cs[lo], total), 0.0)
    col += 1

    # Arrival rates (events per second): trades, and samples that changed the top-depth book.
    decay = np.empty(n)
    decay[0] = 0.0
    decay[1:] = np.exp(-(np.diff(ts) / spec.rate_tau_ns))
    per_event = 1e9 / spec.rate_tau_ns
    n_trades = np.bincount(t_sample, minlength=n)[:n]
    changed = np.zeros(n, dtype=np.int64)
    changed[1:] = ((bp[1:] != bp[:-1]) | (bq[1:] != bq[:-1]) | (ap[1:] != ap[:-1]) | (aq[1:] != aq[:-1])).any(axis=1)
    out[:, col] = _linear_scan(decay, (n_trades * per_event).astype(np.float64))
    out[:, col + 1] = _linear_scan(decay, (changed * per_event).astype(np.float64))
    col += 2

    # Queue-position proxy of one's own front order each side.
    out[:, col : col + 2] = _queue_ahead(book, trades, own, n)
    return out
