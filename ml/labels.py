"""Labels for the short-term predictors, and the time-ordered split that keeps them honest.

Every label at sample ``t`` reads only samples after ``t`` (and the state at ``t`` it is measured from); every
feature at ``t`` reads only samples at or before it (``ml.features``). A label whose horizon runs past the end of
the data is undefined (NaN) and the row is not used.

Notation as docs/ML.md: ``s_t = b_1 + a_1`` (twice the mid, ticks) carried forward over one-sided books.

- **Signed mid return** over the next ``k`` samples, in bps: ``r_t = 1e4 (s_{t+k} - s_t) / s_t``. The
  regression target.
- **Direction**, 3 classes from the same return with a flat band ``flat_bps``: ``-1`` (down) if
  ``r_t < -flat_bps``, ``+1`` (up) if ``r_t > flat_bps``, else ``0`` (flat). The default band is 0: any move of
  the mid is a move. Mids move in half ticks, so at a 1-tick spread most short windows are exactly flat and
  "always flat" is a strong baseline; a band > 0 also calls small moves flat.
- **Adverse selection** of a hypothetical touch quote. On recorded data nobody's passive fills are known, so
  each sample posts, in thought, a one-lot bid at the best bid ``p = b_1(t)`` (and an ask at ``a_1(t)``), at
  the back of its level: the level's qty ``B_1(t)`` is ahead of it. It fills when the qty that takers sold at
  ``p`` after ``t`` exceeds that queue, or as soon as a taker sells below ``p`` (the level was swept); the
  trades counted are those of samples ``t+1 .. t+fill_horizon``; cancels ahead of it are not credited (the
  risk-averse queue rule of the features' queue proxy). A fill at sample ``u`` is *adverse* when the mid
  ``markout`` samples later is below the fill price: ``s_{u+markout} < 2p`` (the mirror for the ask), i.e. the
  fill loses money marked to mid. ``adverse_bid``/``adverse_ask`` are 1 for an adverse fill, 0 for no fill or
  a good one, NaN where the fill window or the markout runs past the data; ``adverse`` is 1 if either side's is
  (undefined if either is). This is the unconditional probability that quoting at the touch now gets picked
  off, the quantity a maker widens on.
- **Split**: ``time_split`` cuts train, validation and test in time order and drops ``gap`` samples before each
  cut, at least the longest label horizon, so no training label reads a sample that a later set's features
  or labels cover (the purge of Lopez de Prado, "Advances in Financial Machine Learning", ch. 7).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from c_engine import Side

from .features import BookSeries, TradeSeries

__all__ = [
    "LabelParams",
    "Labels",
    "Split",
    "adverse_touch",
    "direction_labels",
    "forward_return_bps",
    "make_labels",
    "time_split",
    "twice_mid",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_BUY, _SELL = int(Side.BUY), int(Side.SELL)


@dataclass(frozen=True)
class LabelParams:
    """The label definitions' parameters (see the module docstring); a model file records them."""

    #: samples ahead of the signed return and the direction
    horizon: int = 10
    #: bps: a return within +-flat_bps is "flat"
    flat_bps: float = 0.0
    #: samples after the touch quote is posted in which trades may fill it
    fill_horizon: int = 50
    #: samples after the fill at which the mid is compared with the fill price
    markout: int = 50

    def __post_init__(self) -> None:
        for name in ("horizon", "fill_horizon", "markout"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"LabelParams.{name} must be a positive int, not {value!r}")
        if not self.flat_bps >= 0:
            raise ValueError(f"LabelParams.flat_bps must be >= 0, not {self.flat_bps!r}")

    @property
    def reach(self) -> int:
        """The most samples ahead any label reads: the purge gap a split needs."""
        return max(self.horizon, self.fill_horizon + self.markout)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def twice_mid(book: BookSeries) -> F64:
    """``s_t = b_1 + a_1`` where both sides have a level, carried forward; NaN before the first two-sided book."""
    both = (book.bid_qty[:, 0] > 0) & (book.ask_qty[:, 0] > 0)
    s = (book.bid_price[:, 0] + book.ask_price[:, 0]).astype(np.float64)
    n = len(s)
    last = np.maximum.accumulate(np.where(both, np.arange(n), -1)) if n else np.zeros(0, dtype=np.int64)
    return np.where(last >= 0, s[np.maximum(last, 0)], np.nan)


def forward_return_bps(s: F64, k: int) -> F64:
    """``1e4 (s_{t+k} - s_t) / s_t``; NaN where ``t + k`` is past the end or either mid is undefined."""
    out = np.full(len(s), np.nan)
    if k < len(s):
        out[:-k] = 1e4 * (s[k:] - s[:-k]) / s[:-k]
    return out


def direction_labels(ret_bps: F64, flat_bps: float = 0.0) -> F64:
    """-1, 0, +1 (as floats, NaN where the return is) by the flat band."""
    out = np.where(ret_bps > flat_bps, 1.0, np.where(ret_bps < -flat_bps, -1.0, 0.0))
    return np.where(np.isnan(ret_bps), np.nan, out)


def _touch_side(price: I64, queue: I64, s: F64, trades: TradeSeries, buy: bool, fill_horizon: int, markout: int) -> F64:
    n = len(price)
    out = np.full(n, np.nan)
    taker = _SELL if buy else _BUY
    pick = np.asarray(trades.side) == taker
    t_sample = np.asarray(trades.sample, dtype=np.int64)[pick]
    t_price = np.asarray(trades.price, dtype=np.int64)[pick]
    t_qty = np.asarray(trades.qty, dtype=np.int64)[pick]
    starts = np.searchsorted(t_sample, np.arange(n), side="right")  # first trade of a later sample
    ends = np.searchsorted(t_sample, np.arange(n) + fill_horizon, side="right")
    for t in range(n):
        if queue[t] <= 0 or np.isnan(s[t]):
            out[t] = 0.0 if t + fill_horizon < n else np.nan  # no touch to join: no fill
            continue
        p, ahead, fill_at = int(price[t]), int(queue[t]), -1
        for j in range(int(starts[t]), int(ends[t])):
            tp = int(t_price[j])
            through = tp < p if buy else tp > p
            if through:
                fill_at = int(t_sample[j])
                break
            if tp == p:
                ahead -= int(t_qty[j])
                if ahead < 0:
                    fill_at = int(t_sample[j])
                    break
        if fill_at < 0:
            out[t] = 0.0 if t + fill_horizon < n else np.nan
            continue
        u = fill_at + markout
        if u >= n:
            continue
        out[t] = float(s[u] < 2 * p) if buy else float(s[u] > 2 * p)
    return out


def adverse_touch(book: BookSeries, trades: TradeSeries, fill_horizon: int, markout: int) -> tuple[F64, F64]:
    """(bid, ask): per sample, 1 if the hypothetical touch quote of that side fills adversely (module docstring)."""
    s = twice_mid(book)
    bid = _touch_side(book.bid_price[:, 0], book.bid_qty[:, 0], s, trades, True, fill_horizon, markout)
    ask = _touch_side(book.ask_price[:, 0], book.ask_qty[:, 0], s, trades, False, fill_horizon, markout)
    return bid, ask


class Labels(NamedTuple):
    """Every label of a session, one value per sample (NaN: undefined)."""

    ret_bps: F64
    direction: F64
    adverse_bid: F64
    adverse_ask: F64
    adverse: F64


def make_labels(book: BookSeries, trades: TradeSeries, params: LabelParams) -> Labels:
    """All labels of a recorded session (``ml.features``' batch inputs) under ``params``."""
    s = twice_mid(book)
    ret = forward_return_bps(s, params.horizon)
    bid, ask = adverse_touch(book, trades, params.fill_horizon, params.markout)
    both = np.fmax(bid, ask)
    either = np.where(np.isnan(bid) | np.isnan(ask), np.nan, both)
    return Labels(ret, direction_labels(ret, params.flat_bps), bid, ask, either)


class Split(NamedTuple):
    """Row indices of the three sets, each in time order."""

    train: I64
    valid: I64
    test: I64


def time_split(n: int, gap: int, valid: float = 0.2, test: float = 0.2) -> Split:
    """Train, validation, test in time order (the last ``test`` fraction is the test set), with ``gap`` samples
    dropped before the validation and before the test set."""
    if not (0 < valid < 1 and 0 < test < 1 and valid + test < 1):
        raise ValueError("valid and test are fractions that leave some training data")
    if gap < 0:
        raise ValueError("gap must be >= 0")
    test_start = n - int(round(n * test))
    valid_start = test_start - int(round(n * valid))
    train = np.arange(0, max(0, valid_start - gap), dtype=np.int64)
    valid_rows = np.arange(valid_start, max(valid_start, test_start - gap), dtype=np.int64)
    return Split(train, valid_rows, np.arange(test_start, n, dtype=np.int64))
