"""The incremental features: the same formulas as ``_batch.py``, updated event by event for the hot path.

``IncrementalFeatures`` takes the engine's market data one event at a time (``on_book_delta``, ``on_trade``:
the fields of a BOOK_DELTA or TRADE, or whole ``c_engine.Event`` tuples through ``on_event``), one's own order
events (``on_own_*``), and gives a feature row at each sample point (``sample``). The tests hold it within
1e-9 of ``batch_features`` on the same data read another way.

Choices:

- **The state in C.** The update and the sample run in ``hotpath.book_features`` (C, ``book_features.c``):
  in Python the sample cost 6-21 us and a stream with a sample after each command 2.7-8.6 us per event
  (docs/ML.md, "Cost"), over the 2 us a hot path affords. This class keeps the API (``on_*``, ``sample``,
  ``queue_ahead``) and the Python-side choices: which events are market data and which are one's own.
  ``sample`` returns a new row; ``sampler(out)`` writes each row into one array bound once (no array made,
  no copy: the row a decision feeds its model).
- **What costs what.** An event is O(1) work plus, when a level appears or disappears, a binary search and a
  memmove of the levels better than it (few: they sit near the touch). ``sample`` is O(depth + horizons),
  plus amortised O(1) for the expiring windows, plus O(own orders resting) only when one rested or left
  since the last sample (the front order per side is kept).
- **Own orders and the queue proxy.** An own order is *pending* from its ACK until the BOOK_DELTA of its level
  in the same command (the engine emits the deltas last): its queue ahead is then the level's qty less its own
  open qty. A TRADE at its price whose taker is on the other side takes its qty off the queue ahead; every
  later delta of the level caps it at the level's qty less its own open qty (cancels are assumed to come from
  behind it unless the level shrank below it: the risk-averse rule); it never goes below 0. A price change or
  a size increase makes it pending again (it lost its place). The inputs are what a live strategy has: the
  public BOOK_DELTA and TRADE stream and its own ACK/FILL/CANCELED/MODIFIED events, so live and backtest use
  one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from c_engine import EventType, Op
from hotpath.book_features import BookFeatures

from ._spec import FeatureSpec

__all__ = ["IncrementalFeatures"]

_BOOK_DELTA, _TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)
_ACK, _FILL = int(EventType.ACK), int(EventType.FILL)
_CANCELED, _MODIFIED = int(EventType.CANCELED), int(EventType.MODIFIED)
_OP_NEW = int(Op.NEW)


class IncrementalFeatures:
    """The feature state of one symbol, kept from its events; ``sample(ts_ns)`` gives the current row.

    ``own_client``: the client whose ACK/FILL/CANCELED/MODIFIED events ``on_event`` treats as one's own
    orders (``None``: none are; the ``on_own_*`` methods take them directly).
    """

    def __init__(self, spec: FeatureSpec, own_client: int | None = None) -> None:
        self.spec = spec
        self.own_client = own_client
        self._kernel = k = BookFeatures(
            depth=spec.depth,
            ofi_window=spec.ofi_window,
            return_horizons=spec.return_horizons,
            momentum_horizons_ns=spec.momentum_horizons_ns,
            trade_window_ns=spec.trade_window_ns,
            rate_tau_ns=spec.rate_tau_ns,
            vol_alpha=spec.vol_alpha,
        )
        self._delta, self._trade = k.book_delta, k.trade
        self._ack, self._fill, self._modified = k.own_ack, k.own_fill, k.own_modified
        self._sample = k.sample

    @property
    def samples(self) -> int:
        """Sample points taken so far."""
        return self._kernel.samples

    # --- market data ----------------------------------------------------------------------------------------

    def on_book_delta(self, side: int, price: int, qty: int) -> None:
        """A BOOK_DELTA: the level's new total qty (0: gone)."""
        self._delta(side, price, qty)

    def on_trade(self, side: int, price: int, qty: int, ts_ns: int) -> None:
        """A TRADE: the taker's side, the price (the makers'), the qty."""
        self._trade(side, price, qty, ts_ns)

    # --- own orders ------------------------------------------------------------------------------------------

    def on_own_ack(self, order_id: int, side: int, price: int, open_qty: int) -> None:
        """The ACK of one's own new order (market orders, price 0, never rest: they are not kept)."""
        self._ack(order_id, side, price, open_qty)

    def on_own_fill(self, order_id: int, leaves: int) -> None:
        """A FILL of one's own order, ``leaves`` open after it."""
        self._fill(order_id, leaves)

    def on_own_canceled(self, order_id: int, leaves: int = 0) -> None:
        """A CANCELED of one's own order."""
        self._fill(order_id, leaves)

    def on_own_modified(self, order_id: int, price: int, leaves: int) -> None:
        """A MODIFIED: the new price and open qty. Only a size cut at the same price keeps the queue place."""
        self._modified(order_id, price, leaves)

    def queue_ahead(self, order_id: int) -> int | None:
        """The proxy's qty ahead of one own order; ``None`` if it is unknown or not resting yet."""
        return self._kernel.queue_ahead(order_id)

    # --- events ------------------------------------------------------------------------------------------------

    def on_event(self, e: Any) -> None:
        """One ``c_engine.Event`` (or anything with its fields): market data, or an own-order event of
        ``own_client``; every other event is ignored."""
        t = e.type
        if t == _BOOK_DELTA:
            self._delta(e.side, e.price, e.qty)
        elif t == _TRADE:
            self._trade(e.side, e.price, e.qty, e.ts_ns)
        elif e.client_id == self.own_client and self.own_client is not None:
            if t == _ACK:
                if e.code == _OP_NEW:
                    self._ack(e.order_id, e.side, e.price, e.aux)
            elif t == _FILL or t == _CANCELED:
                self._fill(e.order_id, e.aux)
            elif t == _MODIFIED:
                self._modified(e.order_id, e.price, e.aux)

    # --- the sample point --------------------------------------------------------------------------------------

    def sample(self, ts_ns: int) -> npt.NDArray[np.float64]:
        """The feature row at a sample point (after the last event of a command), time ``ts_ns``."""
        return self._sample(ts_ns)

    def sampler(
        self,
        out: npt.NDArray[np.float64],
        model_input: npt.NDArray[np.float32] | None = None,
        columns: Sequence[int] = (),
    ) -> Callable[[int], None]:
        """``sample(ts_ns)`` writing the row into ``out`` (``spec.width`` contiguous float64 values, bound
        once) instead of a new array, and, with ``model_input``, the row's ``columns`` as float32 into it (a
        model's bound input, such as ``ml.predictor.JointPredictor.input``)."""
        return self._kernel.sampler(out, model_input, columns)
