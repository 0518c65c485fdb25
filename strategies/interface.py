"""The trading interface: what a strategy sees and calls, live and in a backtest alike.

A strategy is a :class:`Strategy`: it reacts in ``on_*`` handlers and acts only through the :class:`Trading`
object it is given. Two implementations exist, :class:`strategies.live.LiveTrading` (a ``hotpath.Client`` on
the running platform) and :class:`strategies.backtest.BacktestVenue` (the C engine in-process, replaying
recorded or synthetic market data with latency and queue models); a strategy cannot tell which one it runs on.

- **Orders are named by client order id.** ``submit`` returns the id it gave the order (``cloid``, counting up
  from 1 per trading object); ``cancel``/``modify`` take that id and return it; ``mass_cancel`` returns 0. The
  engine's order ids stay inside the implementation (a cancel sent before the order's ACK waits for it).
- **Own events** arrive as :class:`OrderUpdate` (ACK, REJECT, FILL, CANCELED, MODIFIED, with the cloid).
- **Market data** for the symbols the strategy subscribed to: ``on_book(symbol_id)`` after the book of that
  symbol changed (read it with ``trading.book(symbol_id)``: an ``hotpath.L2Book`` the implementation keeps) and
  ``on_trade`` for each public trade. In a backtest the book is the engine's book as of the market-data delay.
- **Time** is injected: ``trading.now_ns()``; a strategy never reads the system clock. ``set_timer(at_ns)``
  asks for one ``on_timer`` call at or after ``at_ns`` (a later call replaces it).
- **Books of its own**: ``trading.accounting`` is the strategy's :class:`strategies.accounting.Accounting`, kept
  from its fills by the implementation, and ``trading.orders`` its open orders
  (:class:`strategies.orders.OrderTracker`), both read-only to the strategy.

Prices are integer ticks and sizes integer lots, as on the wire; ``trading.units(symbol_id)`` converts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

from c_engine import Side, Tif, Units

if TYPE_CHECKING:
    from hotpath import L2Book

    from .accounting import Accounting
    from .orders import OrderTracker

__all__ = ["OrderUpdate", "PublicTrade", "Strategy", "Trading"]


class OrderUpdate(NamedTuple):
    """One of the strategy's own order events, with the client order id it gave the order."""

    #: ``EventType``: ACK, REJECT, FILL, CANCELED or MODIFIED
    type: int
    #: the strategy's id of the order (0 for the ACK of a mass cancel)
    cloid: int
    #: the engine's id of the order (0 for a rejected new order)
    order_id: int
    symbol_id: int
    side: int
    #: ticks: the order's limit (ACK, MODIFIED, CANCELED), the fill's price (FILL), the command's (REJECT)
    price: int
    #: lots: the order's qty (ACK), filled (FILL), cancelled (CANCELED), new open qty (MODIFIED)
    qty: int
    #: lots still open after this event
    leaves: int
    ts_ns: int
    #: ``RejectReason`` (REJECT), ``CancelReason`` (CANCELED), ``Liquidity`` (FILL), else 0
    code: int = 0


class PublicTrade(NamedTuple):
    """A trade on a subscribed symbol, as market data shows it (no account, no order id)."""

    symbol_id: int
    price: int
    qty: int
    #: the aggressor's side: BUY means a buyer lifted the ask
    aggressor: int
    ts_ns: int


class Trading(Protocol):
    """What a strategy may call. Implementations: ``LiveTrading``, ``BacktestVenue``."""

    @property
    def client_id(self) -> int: ...

    @property
    def accounting(self) -> Accounting: ...

    @property
    def orders(self) -> OrderTracker: ...

    def now_ns(self) -> int:
        """The injected clock: monotonic ns live, data time in a backtest."""
        ...

    def units(self, symbol_id: int) -> Units: ...

    def symbol_id(self, symbol: str | int) -> int: ...

    def book(self, symbol_id: int) -> L2Book:
        """The strategy's view of the symbol's book (its own orders included, as the engine shows them)."""
        ...

    def submit(
        self,
        symbol_id: int,
        side: Side | int,
        qty: int,
        price: int | None = None,
        *,
        tif: Tif | int = Tif.GTC,
        post_only: bool = False,
    ) -> int:
        """Sends a new order (``price`` None: a market order, IOC); returns its client order id."""
        ...

    def cancel(self, cloid: int) -> int:
        """Cancels the order; returns its client order id."""
        ...

    def modify(self, cloid: int, *, price: int | None = None, qty: int | None = None) -> int:
        """Moves and/or resizes the order (the engine puts a moved or grown order at the back of its level)."""
        ...

    def mass_cancel(self, symbol_id: int | None = None) -> int:
        """Cancels every open order (of one symbol); returns 0."""
        ...

    def set_timer(self, at_ns: int) -> None: ...


class Strategy:
    """A strategy: override the handlers it needs. ``symbols`` names what it subscribes to."""

    #: symbol names (or ids) whose book and trades the strategy receives
    symbols: tuple[str | int, ...] = ()
    #: "top": ``on_book`` when the top of the book changes (enough for a quoting strategy; a backtest then runs
    #: the rest of the market in C); "all": on every change of the book (a strategy whose state follows every
    #: level change, such as features sampled per market event). Live, every change calls it either way.
    book_updates: str = "top"

    def on_start(self, trading: Trading) -> None:
        """Called once before any other handler."""

    def on_book(self, trading: Trading, symbol_id: int) -> None:
        """The symbol's book changed (after a batch of market data: not necessarily every level change)."""

    def on_trade(self, trading: Trading, trade: PublicTrade) -> None:
        """A public trade on a subscribed symbol (the strategy's own fills included, without their ids)."""

    def on_order(self, trading: Trading, update: OrderUpdate) -> None:
        """One of the strategy's own order events, in engine order."""

    def on_timer(self, trading: Trading, now_ns: int) -> None:
        """The timer set with ``set_timer`` is due."""

    def on_stop(self, trading: Trading) -> None:
        """Called once at the end (before the implementation cancels what is still open)."""
