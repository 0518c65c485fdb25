"""The Binance view of the gateway's accounts' orders and trades, kept from the link's events.

The gateway's drain hands every event of its link here, in engine order, right after its own desk
(``Gateway.event_hooks``). A new order's Binance attributes that the engine does not carry (the
``clientOrderId`` string, the type ``LIMIT_MAKER``, ``quoteOrderQty``) are registered under the engine client
order id before the command goes out (:meth:`Ledger.expect`) and joined to the order at its ACK; an order
entered through the gateway's own API gets the attributes its events say.

Statuses come from the events and, for a cancel, its reason (docs/API.md has the table): ACK -> NEW, a fill
-> PARTIALLY_FILLED or FILLED, CANCELED for USER, MASS_CANCEL, DISCONNECT or KILL_SWITCH -> CANCELED, for IOC,
FOK, NO_LIQUIDITY or PRICE_BAND -> EXPIRED, for STP -> EXPIRED_IN_MATCH; a REJECT of a new order -> REJECTED
(the REST answer is then a -2010 error, the user-data stream says REJECTED).

Done orders are kept (:data:`DONE_KEPT` of them, oldest dropped first) so ``GET /api/v3/order`` answers for
them; trades, ``fills_kept`` per account.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from c_engine import CancelReason, Event, EventType, Liquidity, Op, Side

__all__ = ["DONE_KEPT", "Intent", "Ledger", "OrderRecord", "TradeRecord", "status_of_cancel"]

_ACK, _REJECT, _FILL = int(EventType.ACK), int(EventType.REJECT), int(EventType.FILL)
_CANCELED, _MODIFIED = int(EventType.CANCELED), int(EventType.MODIFIED)
_OP_NEW, _MAKER = int(Op.NEW), int(Liquidity.MAKER)
#: done orders kept for lookups
DONE_KEPT = 100_000
_SIDES = {int(Side.BUY): "BUY", int(Side.SELL): "SELL"}
#: a cancel's reason -> the order's Binance status
_CANCEL_STATUS = {
    int(CancelReason.USER): "CANCELED",
    int(CancelReason.MASS_CANCEL): "CANCELED",
    int(CancelReason.DISCONNECT): "CANCELED",
    int(CancelReason.KILL_SWITCH): "CANCELED",
    int(CancelReason.IOC): "EXPIRED",
    int(CancelReason.FOK): "EXPIRED",
    int(CancelReason.NO_LIQUIDITY): "EXPIRED",
    int(CancelReason.PRICE_BAND): "EXPIRED",
    int(CancelReason.STP): "EXPIRED_IN_MATCH",
}


def status_of_cancel(reason: int) -> str:
    """The Binance status of an order its engine cancel (with ``reason``) ended."""
    return _CANCEL_STATUS.get(reason, "CANCELED")


@dataclass(frozen=True)
class Intent:
    """What a Binance new order says that the engine's command does not."""

    client_order_id: str
    type: str  #: LIMIT, LIMIT_MAKER or MARKET
    time_in_force: str  #: GTC, IOC or FOK
    stp: str = "NONE"
    quote_order_qty: str | None = None  #: a MARKET order's quoteOrderQty as given


@dataclass
class TradeRecord:
    """One fill of one of the accounts' orders."""

    trade_id: int
    order_id: int
    account: int
    symbol_id: int
    side: str
    price: int  #: ticks
    qty: int  #: lots
    maker: bool
    time_ms: int


@dataclass
class OrderRecord:
    """One order in Binance's terms; prices in ticks, quantities in lots."""

    order_id: int
    account: int
    symbol_id: int
    side: str
    type: str
    time_in_force: str
    stp: str
    client_order_id: str
    price: int
    orig_qty: int
    time_ms: int
    quote_order_qty: str | None = None
    status: str = "NEW"
    executed: int = 0
    quote: int = 0  #: sum of price x qty over its fills, ticks x lots
    update_ms: int = 0
    fills: list[TradeRecord] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def leaves(self) -> int:
        return self.orig_qty - self.executed if self.is_open else 0


#: called with (order, execution type, the trade or None) at every change of an order; REJECTED orders too
Listener = Callable[[OrderRecord, str, TradeRecord | None], None]


class Ledger:
    """Orders and trades of the gateway's accounts (see the module docstring)."""

    def __init__(self, accounts: Mapping[str, int], offset_ns: int, trades_kept: int = 10_000) -> None:
        self.account_ids = set(accounts.values())
        self.offset_ns = offset_ns
        self.open: dict[int, OrderRecord] = {}  #: order id -> open order
        self.done: collections.OrderedDict[int, OrderRecord] = collections.OrderedDict()
        self.by_client_id: dict[tuple[int, str], int] = {}  #: (account, clientOrderId) -> latest order id
        self.trades: dict[int, collections.deque[TradeRecord]] = {
            cid: collections.deque(maxlen=trades_kept) for cid in self.account_ids
        }
        self._intents: dict[tuple[int, int], Intent] = {}
        self.listeners: list[Listener] = []

    def ms(self, ts_ns: int) -> int:
        """An engine (monotonic) timestamp as epoch milliseconds."""
        return (ts_ns + self.offset_ns) // 1_000_000

    def expect(self, account: int, cloid: int, intent: Intent) -> None:
        """Registers a new order's Binance attributes before its command goes out."""
        self._intents[(account, cloid)] = intent

    def forget(self, account: int, cloid: int) -> None:
        """Drops what :meth:`expect` registered, once the command has its answer."""
        self._intents.pop((account, cloid), None)

    def get(self, order_id: int) -> OrderRecord | None:
        return self.open.get(order_id) or self.done.get(order_id)

    def by_client_order_id(self, account: int, client_order_id: str) -> OrderRecord | None:
        order_id = self.by_client_id.get((account, client_order_id))
        return None if order_id is None else self.get(order_id)

    def open_of(self, account: int, symbol_id: int | None = None) -> list[OrderRecord]:
        return sorted((o for o in self.open.values() if o.account == account
                       and (symbol_id is None or o.symbol_id == symbol_id)), key=lambda o: o.order_id)  # fmt: skip

    # --- events ----------------------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Applies one event of the link (every event, in engine order)."""
        if event.client_id not in self.account_ids:
            return
        kind = event.type
        if kind == _ACK and event.acked_op == _OP_NEW:
            self._new(event)
        elif kind == _FILL:
            self._fill(event)
        elif kind == _CANCELED:
            self._canceled(event)
        elif kind == _MODIFIED:
            order = self.open.get(event.order_id)
            if order is not None:
                order.price = event.price
                order.orig_qty = order.executed + event.qty
                order.update_ms = self.ms(event.ts_ns)
                self._tell(order, "REPLACED", None)
        elif kind == _REJECT and event.order_id == 0 and event.side in _SIDES:
            self._rejected(event)

    def _intent(self, event: Event) -> Intent:
        intent = self._intents.pop((event.client_id, event.cloid), None) if event.cloid else None
        if intent is not None:
            return intent
        return Intent(str(event.cloid) if event.cloid else f"pt-{event.order_id}",
                      "LIMIT" if event.price else "MARKET", "GTC" if event.price else "IOC")  # fmt: skip

    def _new(self, event: Event) -> None:
        intent = self._intent(event)
        ms = self.ms(event.ts_ns)
        order = OrderRecord(event.order_id, event.client_id, event.symbol_id, _SIDES.get(event.side, "BUY"),
                            intent.type, intent.time_in_force, intent.stp, intent.client_order_id, event.price,
                            event.qty, ms, intent.quote_order_qty, update_ms=ms)  # fmt: skip
        self.open[order.order_id] = order
        self.by_client_id[(order.account, order.client_order_id)] = order.order_id
        self._tell(order, "NEW", None)

    def _fill(self, event: Event) -> None:
        order = self.open.get(event.order_id)
        ms = self.ms(event.ts_ns)
        trade = TradeRecord(event.trade_id, event.order_id, event.client_id, event.symbol_id,
                            _SIDES.get(event.side, "BUY"), event.price, event.qty, event.liquidity == _MAKER,
                            ms)  # fmt: skip
        self.trades[event.client_id].append(trade)
        if order is None:
            return
        order.executed += event.qty
        order.quote += event.price * event.qty
        order.update_ms = ms
        order.fills.append(trade)
        order.status = "PARTIALLY_FILLED" if event.leaves > 0 else "FILLED"
        if event.leaves <= 0:
            self._finish(order)
        self._tell(order, "TRADE", trade)

    def _canceled(self, event: Event) -> None:
        order = self.open.get(event.order_id)
        if order is None:
            return
        order.update_ms = self.ms(event.ts_ns)
        if event.leaves > 0:  # a decrement: the order stays open with less
            order.orig_qty = order.executed + event.leaves
            self._tell(order, "REPLACED", None)
            return
        order.status = status_of_cancel(event.reason)
        self._finish(order)
        self._tell(order, "CANCELED" if order.status == "CANCELED" else
                   "TRADE_PREVENTION" if order.status == "EXPIRED_IN_MATCH" else "EXPIRED", None)  # fmt: skip

    def _rejected(self, event: Event) -> None:
        intent = self._intent(event)
        ms = self.ms(event.ts_ns)
        order = OrderRecord(0, event.client_id, event.symbol_id, _SIDES[event.side], intent.type,
                            intent.time_in_force, intent.stp, intent.client_order_id, event.price, event.qty, ms,
                            intent.quote_order_qty, status="REJECTED", update_ms=ms)  # fmt: skip
        self._tell(order, "REJECTED", None)

    def _finish(self, order: OrderRecord) -> None:
        self.open.pop(order.order_id, None)
        self.done[order.order_id] = order
        while len(self.done) > DONE_KEPT:
            _, old = self.done.popitem(last=False)
            if self.by_client_id.get((old.account, old.client_order_id)) == old.order_id:
                del self.by_client_id[(old.account, old.client_order_id)]

    def _tell(self, order: OrderRecord, execution: str, trade: TradeRecord | None) -> None:
        for listener in self.listeners:
            listener(order, execution, trade)
