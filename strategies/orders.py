"""``OrderTracker``: a trading object's own orders by client order id, kept from its commands and events.

The engine names orders by its own ids, handed out in the ACK; a strategy names them by the client order id
(cloid) it got from ``submit``. The tracker links the two, turns each engine event into an
:class:`~strategies.interface.OrderUpdate` carrying the cloid, and keeps what sizing needs: every order that
can still trade, including those sent and not yet acknowledged and those with a cancel in flight (a pending
cancel can still fill), so ``exposure`` is the worst case a side can reach.

A REJECT names its command's target: order id 0 for a new order (its cloid says which), the order's id for a
cancel or modify, which leaves the order as it was. A cancel or modify of an order whose ACK has not come yet is
held and handed back by :meth:`take_deferred` once the ACK is in, since the engine cannot act on an order id
that it has not yet given out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from c_engine import Event, EventType, Op, Side

from .interface import OrderUpdate

__all__ = ["OrderState", "OrderTracker", "OwnOrder"]

_ACK, _REJECT, _FILL = int(EventType.ACK), int(EventType.REJECT), int(EventType.FILL)
_CANCELED, _MODIFIED = int(EventType.CANCELED), int(EventType.MODIFIED)
_OP_NEW = int(Op.NEW)
_BUY, _SELL = int(Side.BUY), int(Side.SELL)


class OrderState(enum.IntEnum):
    PENDING_NEW = 1  #: sent, no ACK yet
    OPEN = 2  #: resting (or an IOC between its ACK and its last fill)
    PENDING_CANCEL = 3  #: a cancel is in flight; it may still fill
    DONE = 4  #: filled, cancelled or rejected


@dataclass
class OwnOrder:
    cloid: int
    symbol_id: int
    side: int
    price: int  #: ticks (0 for a market order)
    qty: int  #: lots, as sent
    leaves: int  #: lots still open (as sent while pending)
    order_id: int = 0
    state: OrderState = OrderState.PENDING_NEW
    filled: int = 0
    #: ("cancel", 0, 0) or ("modify", price, qty) waiting for the ACK
    deferred: tuple[str, int | None, int | None] | None = None
    #: the price of a modify in flight (0: none)
    pending_price: int = 0
    #: modifies sent and not yet answered (MODIFIED or REJECT)
    modifies_in_flight: int = 0
    #: the trading clock when it was sent, and when its ACK arrived (0: not yet)
    sent_ns: int = 0
    ack_ns: int = 0
    #: the price it rested at before its last move (0: never moved); a delayed book may still show it there
    previous_price: int = 0

    def prices(self) -> tuple[int, ...]:
        """Every price a delayed book may show this order at: now, before its last move, and its move in flight."""
        return tuple(p for p in (self.price, self.previous_price, self.pending_price) if p)

    @property
    def live(self) -> bool:
        """Can it still trade?"""
        return self.state != OrderState.DONE


class OrderTracker:
    """The own orders of one trading object (one client id)."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        #: with a clock, each order's delays are measured as the strategy sees them: ``order_to_ack`` (sent to
        #: its ACK arriving) and ``ack_to_fill`` (its ACK to its first fill), in ns
        self._clock = clock
        self.latencies: dict[str, list[int]] = {"order_to_ack": [], "ack_to_fill": []}
        self.by_cloid: dict[int, OwnOrder] = {}
        self._by_order_id: dict[int, OwnOrder] = {}
        self._next_cloid = 1
        self._ready: list[OwnOrder] = []  # acknowledged orders with a deferred cancel/modify

    # --- commands -----------------------------------------------------------------------------------------

    def new(self, symbol_id: int, side: int, qty: int, price: int) -> OwnOrder:
        """Books a new order about to be sent; returns it with its cloid."""
        order = OwnOrder(self._next_cloid, symbol_id, int(side), price, qty, qty)
        if self._clock is not None:
            order.sent_ns = self._clock()
        self._next_cloid += 1
        self.by_cloid[order.cloid] = order
        return order

    def get(self, cloid: int) -> OwnOrder:
        order = self.by_cloid.get(cloid)
        if order is None:
            raise KeyError(f"no order with client order id {cloid}")
        return order

    def skip_cloids(self, upto: int) -> None:
        """Hand out ids above ``upto`` from now on (a restarted strategy never reuses an id)."""
        self._next_cloid = max(self._next_cloid, upto + 1)

    # --- events -------------------------------------------------------------------------------------------

    def on_event(self, ev: Event) -> OrderUpdate | None:
        """Applies one of the client's own events; the update for the strategy, or None for one it never sent
        (an operator's ACK, a mass cancel's ACK is returned with cloid 0)."""
        t = ev.type
        if t == _ACK:
            if ev.acked_op != _OP_NEW:
                return OrderUpdate(t, 0, 0, ev.symbol_id, ev.side, 0, ev.qty, 0, ev.ts_ns, ev.acked_op)
            order = self.by_cloid.get(ev.cloid)
            if order is None or order.state != OrderState.PENDING_NEW:
                return None
            order.order_id, order.state, order.price, order.leaves = ev.order_id, OrderState.OPEN, ev.price, ev.aux
            self._by_order_id[ev.order_id] = order
            if self._clock is not None:
                order.ack_ns = self._clock()
                self.latencies["order_to_ack"].append(order.ack_ns - order.sent_ns)
            if order.deferred is not None:
                self._ready.append(order)
            return self._update(t, order, ev, ev.qty, ev.aux)
        if t == _REJECT:
            if ev.order_id == 0:
                order = self.by_cloid.get(ev.cloid)
                if order is None or order.state != OrderState.PENDING_NEW:
                    return None
                self._finish(order)
                return self._update(t, order, ev, ev.qty, 0)
            order = self._by_order_id.get(ev.order_id)
            if order is None:
                return None
            if order.state == OrderState.PENDING_CANCEL:
                order.state = OrderState.OPEN  # the cancel failed: the order stands (or is gone: then DONE)
            order.pending_price = 0
            order.modifies_in_flight = max(0, order.modifies_in_flight - 1)
            return self._update(t, order, ev, ev.qty, order.leaves)
        order = self._by_order_id.get(ev.order_id)
        if order is None:
            return None
        if t == _FILL:
            if not order.filled and order.ack_ns:
                self.latencies["ack_to_fill"].append(self._clock() - order.ack_ns if self._clock else 0)
            order.filled += ev.qty
            order.leaves = ev.aux
        elif t == _CANCELED:
            order.leaves = ev.aux
        elif t == _MODIFIED:
            if ev.price != order.price:
                order.previous_price = order.price
            order.price, order.leaves, order.pending_price = ev.price, ev.aux, 0
            order.modifies_in_flight = max(0, order.modifies_in_flight - 1)
        else:
            return None
        if order.leaves == 0:
            self._finish(order)
        return self._update(t, order, ev, ev.qty, order.leaves)

    def _finish(self, order: OwnOrder) -> None:
        order.state = OrderState.DONE
        order.leaves = 0
        order.deferred = None
        self._by_order_id.pop(order.order_id, None)
        del self.by_cloid[order.cloid]

    @staticmethod
    def _update(t: int, order: OwnOrder, ev: Event, qty: int, leaves: int) -> OrderUpdate:
        return OrderUpdate(t, order.cloid, order.order_id, order.symbol_id, order.side, ev.price, qty, leaves,
                           ev.ts_ns, ev.code)  # fmt: skip

    def take_deferred(self) -> list[OwnOrder]:
        """Orders acknowledged since the last call that have a cancel or modify waiting; clears the list."""
        ready = [o for o in self._ready if o.live and o.deferred is not None]
        self._ready.clear()
        return ready

    # --- views --------------------------------------------------------------------------------------------

    def open_orders(self, symbol_id: int | None = None, side: int | None = None) -> Iterator[OwnOrder]:
        """Orders that can still trade (pending ones included)."""
        for order in self.by_cloid.values():
            if (symbol_id is None or order.symbol_id == symbol_id) and (side is None or order.side == side):
                yield order

    def exposure(self, symbol_id: int, side: Side | int) -> int:
        """Lots that could still trade on the side: open, pending and pending-cancel orders."""
        return self.exposures(symbol_id).get(int(side), 0)

    def exposures(self, symbol_id: int) -> dict[int, int]:
        """:meth:`exposure` of both sides (wire codes), in one pass over the orders: a maker asks at every
        requote."""
        buy = sell = 0
        for order in self.by_cloid.values():  # a plain loop, not open_orders
            if order.symbol_id == symbol_id:
                if order.side == _BUY:
                    buy += order.leaves
                elif order.side == _SELL:
                    sell += order.leaves
        return {_BUY: buy, _SELL: sell}

    def __len__(self) -> int:
        return len(self.by_cloid)
