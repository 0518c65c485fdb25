"""``QuotingStrategy``: one bid and one ask on one symbol, kept at the prices a subclass asks for.

What every maker here shares, so each strategy module is only its quoting formula (:meth:`quotes`):

- **Fair value** is the mid of the best bid and ask *of everyone else*: the strategy's own quantity is taken out
  of each level first (a maker that quoted around its own quotes would chase itself), at every price a delayed
  book may still show it at (its price, the one before its last move, a move in flight).
- **Requoting** happens on a book change or a fill, at most once per ``quote_interval_s`` (the rest waits for
  the timer), and never while the quote's previous change is unanswered, so a busy book does not turn into a
  storm of modifies. A quote whose price moved is modified in
  place (the engine puts it at the back of its new level); a side whose target is None is cancelled.
- **Quotes are post-only GTC**: a maker never takes; a quote that would cross is rejected by the engine and
  placed again at the next requote.
- **Limits count what is in flight**: a bid is placed only if position + every live buy order (pending ones
  included) + its size stays within ``max_position`` lots; the mirror for asks.
- **Prices round away from fair**: bids down, asks up, to the tick, so the two quotes never cross each other.

Parameters are in human units (price, size, seconds) as the command line takes them, converted once with the
symbol's ``Units`` at start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from c_engine import EventType, Side, Tif

from ..interface import OrderUpdate, Strategy, Trading

__all__ = ["MakerParams", "QuotingStrategy", "Quotes"]

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_FILL = int(EventType.FILL)


@dataclass(frozen=True)
class MakerParams:
    """What every maker takes (human units). Subclasses add their own fields."""

    symbol: str
    #: distance from fair value to each quote, in price units
    half_spread: float = 0.02
    #: quote size, in size units
    size: float = 1.0
    #: the most the position may reach either way, in size units
    max_position: float = 100.0
    #: the least time between two requotes of a side, in seconds
    quote_interval_s: float = 0.05


class Quotes(NamedTuple):
    """Target prices (ticks, None: do not quote that side) and sizes (lots). A named tuple: a maker makes one
    per requote, and a frozen dataclass cost three times as much to build."""

    bid: float | None
    ask: float | None
    bid_size: int
    ask_size: int


class QuotingStrategy(Strategy):
    """Keeps one bid and one ask at :meth:`quotes`; see the module docstring."""

    def __init__(self, params: MakerParams) -> None:
        self.params = params
        self.symbols = (params.symbol,)
        self.sid = -1
        self.half_spread_ticks = 0.0
        self.size_lots = 0
        self.max_position_lots = 0
        self.interval_ns = int(params.quote_interval_s * 1e9)
        self._cloid = {_BUY: 0, _SELL: 0}  # the live quote per side (0: none)
        self._last_change_ns = {_BUY: -(1 << 62), _SELL: -(1 << 62)}
        self.quotes_sent = 0
        self.stopped = False

    # --- the formula (subclasses) -------------------------------------------------------------------------

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        """Where to quote, given fair value (ticks) and position (lots)."""
        raise NotImplementedError

    def observe_fair(self, trading: Trading, fair: float) -> None:
        """Called with every new fair value before quoting (estimators update here)."""

    # --- handlers -----------------------------------------------------------------------------------------

    def on_start(self, trading: Trading) -> None:
        self.sid = trading.symbol_id(self.params.symbol)
        units = trading.units(self.sid)
        self.half_spread_ticks = self.params.half_spread / units.tick
        self.size_lots = units.lots(self.params.size)
        self.max_position_lots = units.lots(self.params.max_position)

    def on_book(self, trading: Trading, symbol_id: int) -> None:
        if symbol_id == self.sid:
            self.requote(trading)

    def on_order(self, trading: Trading, update: OrderUpdate) -> None:
        side = update.side
        if self._cloid.get(side) == update.cloid and update.leaves == 0:
            self._cloid[side] = 0
        if update.type == _FILL:
            self.requote(trading)

    def on_timer(self, trading: Trading, now_ns: int) -> None:
        self.requote(trading)

    def on_stop(self, trading: Trading) -> None:
        """No quote after this: the trading object cancels what is open next, and a fill arriving meanwhile
        must not place a new order behind that cancel."""
        self.stopped = True

    # --- quoting ------------------------------------------------------------------------------------------

    def fair(self, trading: Trading) -> float | None:
        """The mid of everyone else's best bid and ask (ticks), None while a side is empty."""
        book = trading.book(self.sid)
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return None
        # Our lots at the two best prices, in one pass over our open orders (this runs per requote); a side
        # whose best level is all ours is looked past by _others_best, which is rare.
        own_bid = own_ask = 0
        sid = self.sid
        for order in trading.orders.by_cloid.values():
            if order.symbol_id != sid or not order.order_id:
                continue
            if order.side == _BUY:
                own_bid += order.leaves * ((order.price == bid) + (order.previous_price == bid) +
                                           (order.pending_price == bid))  # fmt: skip
            else:
                own_ask += order.leaves * ((order.price == ask) + (order.previous_price == ask) +
                                           (order.pending_price == ask))  # fmt: skip
        if book.bids[bid][0] <= own_bid:
            bid = self._others_best(trading, _BUY)
        if book.asks[ask][0] <= own_ask:
            ask = self._others_best(trading, _SELL)
        return None if bid is None or ask is None else (bid + ask) / 2

    def _others_best(self, trading: Trading, side: int) -> int | None:
        """The best price on ``side`` where someone else rests: the book's best, unless only we are there."""
        book = trading.book(self.sid)
        best = book.best_bid() if side == _BUY else book.best_ask()
        if best is None:
            return None
        levels = book.bids if side == _BUY else book.asks
        own = self._own_lots(trading, side)
        if levels[best][0] > own.get(best, 0):
            return best
        # Our quantity fills the best level: the next level of others (a scan, only in that case).
        for price in sorted(levels, reverse=side == _BUY):
            if levels[price][0] > own.get(price, 0):
                return price
        return None

    def _own_lots(self, trading: Trading, side: int) -> dict[int, int]:
        """Our resting lots on ``side`` at every price a delayed book may show them (``OwnOrder.prices``)."""
        own: dict[int, int] = {}
        sid = self.sid
        for order in trading.orders.by_cloid.values():  # open orders only; a plain loop: this runs per requote
            if order.side != side or order.symbol_id != sid or not order.order_id:
                continue
            leaves = order.leaves
            for price in (order.price, order.previous_price, order.pending_price):
                if price:
                    own[price] = own.get(price, 0) + leaves
        return own

    def position(self, trading: Trading) -> int:
        return trading.accounting.position(trading.client_id, self.sid)

    def requote(self, trading: Trading) -> None:
        if self.stopped:
            return
        fair = self.fair(trading)
        if fair is None:
            return
        self.observe_fair(trading, fair)
        position = self.position(trading)
        q = self.quotes(trading, fair, position)
        now = trading.now_ns()
        orders = trading.orders
        exposure: dict[int, int] | None = None  # lots that could still trade, by side
        for side, target, size in ((_BUY, q.bid, q.bid_size), (_SELL, q.ask, q.ask_size)):
            price = None if target is None or size <= 0 else (math.floor(target) if side == _BUY else math.ceil(target))
            if price is not None and price <= 0:
                price = None
            if price is not None:
                if exposure is None:  # both sides in one pass over the open orders, when a side needs it
                    exposure = orders.exposures(self.sid)
                # Worst case if every live order of the side fills, this quote resized to ``size`` included.
                reach = exposure[side] - self._quote_leaves(trading, side) + size
                if (position + reach if side == _BUY else -position + reach) > self.max_position_lots:
                    price = None
            cloid = self._cloid[side]
            live = cloid and cloid in orders.by_cloid
            if not live:
                self._cloid[side] = 0
            if now - self._last_change_ns[side] < self.interval_ns:
                trading.set_timer(self._last_change_ns[side] + self.interval_ns)
                continue
            if price is None:
                if live:
                    trading.cancel(cloid)
                    self._last_change_ns[side] = now
                continue
            if not live:
                self._cloid[side] = trading.submit(self.sid, side, size, price, tif=Tif.GTC, post_only=True)
                self._last_change_ns[side] = now
                self.quotes_sent += 1
                continue
            order = orders.by_cloid[cloid]
            if order.modifies_in_flight:
                continue  # its last move is not answered yet: one change in flight per quote
            if order.order_id and (order.price != price or order.leaves != size):
                trading.modify(cloid, price=price if order.price != price else None,
                               qty=size if order.leaves != size else None)  # fmt: skip
                self._last_change_ns[side] = now
                self.quotes_sent += 1

    def _quote_leaves(self, trading: Trading, side: int) -> int:
        cloid = self._cloid[side]
        order = trading.orders.by_cloid.get(cloid) if cloid else None
        return order.leaves if order is not None else 0
