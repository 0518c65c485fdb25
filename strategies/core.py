"""``TradingCore``: the part of the trading interface that live trading and the backtest venue share.

It turns the strategy's calls into engine commands named by client order id, and the client's own events into
order updates, accounting and handler calls: so both implementations build commands, track orders and keep
books through the same code, and differ only in how a command reaches the engine (``_send``), what the clock
is, and where the book view comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from c_engine import Command, Event, EventType, OrderType, Side, Stp, Tif, Units
from hotpath import L2Book

from .accounting import Accounting, Fill, Instrument
from .interface import PublicTrade, Strategy
from .orders import OrderState, OrderTracker

__all__ = ["TradingCore"]

_FILL = int(EventType.FILL)


class TradingCore:
    """Implements :class:`~strategies.interface.Trading` but for ``_send`` and ``book``.

    ``symbols`` maps each symbol id the run knows to (name, Units); ``instruments`` gives the accounting's
    tick values and fees (by default one of multiplier 1 and no fees per symbol).
    """

    def __init__(
        self,
        strategy: Strategy,
        client_id: int,
        symbols: Mapping[int, tuple[str, Units]],
        clock: Callable[[], int],
        instruments: Mapping[int, Instrument] | None = None,
        stp: Stp | int = Stp.NONE,
    ) -> None:
        self.strategy = strategy
        self._client_id = client_id
        self._symbols = dict(symbols)
        self._ids = {name: sid for sid, (name, _) in self._symbols.items()}
        self._clock = clock
        if instruments is None:
            instruments = {sid: Instrument(name, u.tick, u.lot) for sid, (name, u) in self._symbols.items()}
        self._accounting = Accounting(dict(instruments))
        self._orders = OrderTracker(clock)
        self._stp = int(stp)
        self.timer_ns: int | None = None
        #: the symbol ids whose market data the strategy receives
        self.subscribed = frozenset(self.symbol_id(s) for s in strategy.symbols)
        # A strategy that keeps Strategy's on_trade (most makers) is not handed trades: a PublicTrade built
        # for a no-op was a sizeable part of a backtest's work per reaction.
        self._wants_trades = getattr(type(strategy), "on_trade", None) is not Strategy.on_trade

    # --- Trading ------------------------------------------------------------------------------------------

    @property
    def client_id(self) -> int:
        return self._client_id

    @property
    def accounting(self) -> Accounting:
        return self._accounting

    @property
    def orders(self) -> OrderTracker:
        return self._orders

    def now_ns(self) -> int:
        return self._clock()

    def units(self, symbol_id: int) -> Units:
        return self._symbols[symbol_id][1]

    def symbol_id(self, symbol: str | int) -> int:
        if isinstance(symbol, int) and symbol in self._symbols:
            return symbol
        sid = self._ids.get(symbol) if isinstance(symbol, str) else None
        if sid is None:
            raise KeyError(f"unknown symbol {symbol!r}; known: {sorted(self._ids)}")
        return sid

    def book(self, symbol_id: int) -> L2Book:
        raise NotImplementedError

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
        order = self._orders.new(symbol_id, int(side), qty, price or 0)
        if price is None:
            cmd = Command.new(self._client_id, symbol_id, int(side), qty, order_type=OrderType.MARKET,
                              tif=Tif.IOC if tif == Tif.GTC else int(tif), stp=self._stp, cloid=order.cloid,
                              ts_ns=self._clock())  # fmt: skip
        else:
            cmd = Command.new(self._client_id, symbol_id, int(side), qty, price, tif=int(tif), stp=self._stp,
                              post_only=post_only, cloid=order.cloid, ts_ns=self._clock())  # fmt: skip
        self._send(cmd)
        return order.cloid

    def cancel(self, cloid: int) -> int:
        order = self._orders.get(cloid)
        if order.state == OrderState.PENDING_NEW:
            order.deferred = ("cancel", None, None)
        elif order.state == OrderState.OPEN:
            order.state = OrderState.PENDING_CANCEL
            self._send(Command.cancel(self._client_id, order.order_id, ts_ns=self._clock()))
        return cloid

    def modify(self, cloid: int, *, price: int | None = None, qty: int | None = None) -> int:
        order = self._orders.get(cloid)
        if order.state == OrderState.PENDING_NEW:
            if order.deferred is None or order.deferred[0] != "cancel":
                order.deferred = ("modify", price, qty)
        elif order.state == OrderState.OPEN:
            if price is not None:
                order.pending_price = price
            order.modifies_in_flight += 1
            self._send(Command.modify(self._client_id, order.order_id, price=price, qty=qty, ts_ns=self._clock()))
        return cloid

    def mass_cancel(self, symbol_id: int | None = None) -> int:
        for order in self._orders.open_orders(symbol_id):
            if order.state == OrderState.OPEN:
                order.state = OrderState.PENDING_CANCEL
            elif order.state == OrderState.PENDING_NEW:
                order.deferred = None  # it reaches the engine before the mass cancel, which takes it
        self._send(Command.mass_cancel(self._client_id, symbol_id, ts_ns=self._clock()))
        return 0

    def set_timer(self, at_ns: int) -> None:
        self.timer_ns = at_ns

    # --- what the implementation provides -----------------------------------------------------------------

    def _send(self, cmd: Command) -> None:
        raise NotImplementedError

    # --- dispatch (called by the implementation) ----------------------------------------------------------

    def on_own_events(self, events: Iterable[Event]) -> None:
        """The client's own events, in engine order: order updates, accounting, ``on_order``."""
        strategy, orders = self.strategy, self._orders
        for ev in events:
            update = orders.on_event(ev)
            if ev.type == _FILL:
                self._accounting.apply(Fill.from_event(ev))
            if update is not None:
                strategy.on_order(self, update)
            for order in orders.take_deferred():
                kind, price, qty = order.deferred or ("", None, None)
                order.deferred = None
                if kind == "cancel":
                    self.cancel(order.cloid)
                else:
                    self.modify(order.cloid, price=price, qty=qty)

    def on_trade(self, symbol_id: int, price: int, qty: int, aggressor: int, ts_ns: int) -> None:
        if self._wants_trades:
            self.strategy.on_trade(self, PublicTrade(symbol_id, price, qty, aggressor, ts_ns))

    def on_book(self, symbol_id: int) -> None:
        self.strategy.on_book(self, symbol_id)

    def fire_timer(self, now_ns: int) -> bool:
        """Calls ``on_timer`` if the timer is due at ``now_ns``; whether it did."""
        due = self.timer_ns
        if due is None or now_ns < due:
            return False
        self.timer_ns = None
        self.strategy.on_timer(self, now_ns)
        return True
