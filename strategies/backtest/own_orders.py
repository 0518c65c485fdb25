"""``StrategyOrders``: a replay's view of the strategy's resting orders and their queue places.

A market replay that shares the engine with a strategy needs to know, at a level, how much of the strategy's
quantity the engine would match before a given order (market impact "extend") and which of the replay's own
orders stand ahead of the strategy's (queue models on L2 data). Priority is the engine seq of the event that put
an order at the back of its level: its ACK, or a MODIFIED that moved it or grew it (a modify down keeps its
place). The replay's own orders are only ever reduced, so their ACK seq is their place.
"""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from c_engine import Event, EventType, Op, Side

__all__ = ["StrategyOrders"]

_BUY = int(Side.BUY)
_ACK, _FILL, _CANCELED, _MODIFIED = (int(t) for t in (EventType.ACK, EventType.FILL, EventType.CANCELED,
                                                      EventType.MODIFIED))  # fmt: skip
_OP_NEW = int(Op.NEW)


class StrategyOrders:
    """The strategy's resting orders with their time priority; implements ``c_engine.lobster.OwnOrders``."""

    def __init__(self) -> None:
        #: strategy order id -> [side, price, open qty, priority seq]
        self.resting: dict[int, list[int]] = {}
        #: every other order's ACK seq (its priority: recorded orders are only ever reduced)
        self.others: dict[int, int] = {}
        #: every order id the strategy ever had (a fill that just finished an order is still its)
        self.ids: set[int] = set()

    def observe_strategy(self, events: list[Event]) -> None:
        """The strategy's own command's events."""
        for e in events:
            t = e.type
            if t == _ACK and e.acked_op == _OP_NEW:
                self.ids.add(e.order_id)
                if e.aux:
                    self.resting[e.order_id] = [e.side, e.price, e.aux, e.seq]
            elif t == _MODIFIED:
                entry = self.resting.get(e.order_id)
                if entry is not None:
                    if e.price != entry[1] or e.aux > entry[2]:
                        entry[3] = e.seq
                    entry[1], entry[2] = e.price, e.aux
                    if not e.aux:
                        del self.resting[e.order_id]
            else:
                self._reduce(e)

    def observe_market(self, events: list[Event]) -> None:
        """The market's commands' events (the strategy's fills among them)."""
        for e in events:
            if e.type == _ACK and e.acked_op == _OP_NEW:
                self.others[e.order_id] = e.seq
            else:
                self._reduce(e)

    def _reduce(self, e: Event) -> None:
        if e.type in (_FILL, _CANCELED):
            entry = self.resting.get(e.order_id)
            if entry is not None:
                entry[2] = e.aux
                if not e.aux:
                    del self.resting[e.order_id]

    # --- OwnOrders ------------------------------------------------------------------------------------------

    def qty_at(self, side: int, price: int) -> int:
        return sum(o[2] for o in self.resting.values() if o[0] == side and o[1] == price)

    def ahead_of(self, side: int, price: int, order_id: int) -> int:
        seq = self.others.get(order_id, 1 << 62)
        sign = 1 if side == _BUY else -1  # better means higher for bids, lower for asks
        ahead = 0
        for o_side, o_price, o_open, o_seq in self.resting.values():
            if o_side == side and (sign * (o_price - price) > 0 or (o_price == price and o_seq < seq)):
                ahead += o_open
        return ahead

    def crossing(self, side: int, price: int) -> int:
        if side == _BUY:  # a buy at ``price`` takes the strategy's asks at or below it
            return sum(o[2] for o in self.resting.values() if o[0] != _BUY and o[1] <= price)
        return sum(o[2] for o in self.resting.values() if o[0] == _BUY and o[1] >= price)

    def owns(self, order_id: int) -> bool:
        return order_id in self.ids

    def observe_market_rows(self, rows: npt.NDArray[Any]) -> None:
        """``observe_market`` for an ``EVENT_DTYPE`` batch."""
        types = rows["type"]
        acks = (types == _ACK) & (rows["acked_op"] == _OP_NEW)
        for order_id, seq in zip(rows["order_id"][acks].tolist(), rows["seq"][acks].tolist(), strict=True):
            self.others[order_id] = seq
        done = ((types == _FILL) | (types == _CANCELED)) & (rows["client_id"] != 0)
        if self.resting and done.any():
            for order_id, leaves in zip(rows["order_id"][done].tolist(), rows["leaves"][done].tolist(), strict=True):
                entry = self.resting.get(order_id)
                if entry is not None:
                    entry[2] = leaves
                    if not leaves:
                        del self.resting[order_id]

    def first_place(self, side: int, price: int) -> int | None:
        """The priority seq of the strategy's first order at the level, None if it has none there."""
        seqs = [o[3] for o in self.resting.values() if o[0] == side and o[1] == price]
        return min(seqs) if seqs else None

    def qty_better(self, side: int, price: int) -> int:
        """The strategy's open quantity at prices better than ``price`` on ``side``."""
        sign = 1 if side == _BUY else -1
        return sum(o[2] for o in self.resting.values() if o[0] == side and sign * (o[1] - price) > 0)
