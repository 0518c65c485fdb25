"""The gateway's own view of its accounts, kept from the link's events only: open orders, fills, books, kill
switches, and each account's event stream.

:meth:`Desk.apply` takes every event of the link in engine order (the drain task feeds it) and returns the
message for the account's ``/ws/fills`` stream, or None. Nothing here asks the engine: ``GET /orders``,
``GET /fills`` and ``GET /risk`` read this state, so no request pauses the matching loop. Positions, cash and
PnL come from ``strategies.accounting`` (the one accounting module), fed the FILL events; they count from the
gateway's start, as the link's events do.

Client order ids: an account's open orders' ids, and those of its orders still in flight, are *reserved*, so
the gateway refuses a duplicate before it reaches the engine (which checks again, so two gateways or a race
still cannot slip one through).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from c_engine import CancelReason, Event, EventType, Liquidity, Op, RejectReason, Side, Units
from strategies.accounting import Accounting, Fill, Instrument

__all__ = ["Desk", "OrderState", "wall_clock_offset_ns"]

_ACK, _REJECT, _FILL = int(EventType.ACK), int(EventType.REJECT), int(EventType.FILL)
_CANCELED, _MODIFIED = int(EventType.CANCELED), int(EventType.MODIFIED)
_OP_NEW, _OP_MASS_CANCEL, _OP_KILL_RESET = int(Op.NEW), int(Op.MASS_CANCEL), int(Op.KILL_RESET)
_KILL_CANCEL, _KILL_REJECT = int(CancelReason.KILL_SWITCH), int(RejectReason.KILL_SWITCH)
_MAKER = int(Liquidity.MAKER)
_SIDE_NAMES = {int(Side.BUY): "buy", int(Side.SELL): "sell"}
#: order id -> owner entries kept for orders that are done (to answer 403 rather than 404 for them)
OWNERS_KEPT = 100_000


def wall_clock_offset_ns() -> int:
    """What to add to a ``time.monotonic_ns()`` stamp (every command's ``ts_ns``) to get epoch nanoseconds."""
    return time.time_ns() - time.monotonic_ns()


def _reason(enum_cls: type[RejectReason] | type[CancelReason], code: int) -> str:
    try:
        return enum_cls(code).name
    except ValueError:
        return str(code)


@dataclass
class OrderState:
    """One open order of one of the gateway's accounts, in ticks and lots."""

    order_id: int
    account: int
    symbol_id: int
    side: int
    price: int
    qty: int
    leaves: int
    cloid: int
    ts_ns: int

    @property
    def filled(self) -> int:
        return self.qty - self.leaves


class Desk:
    """State of the gateway's accounts from the link's events (see the module docstring)."""

    def __init__(self, accounts: Mapping[str, int], symbols: Mapping[str, int], units: Callable[[int], Units],
                 fills_kept: int = 10_000, clock_offset_ns: int | None = None) -> None:  # fmt: skip
        self.account_names = {cid: name for name, cid in accounts.items()}
        self.symbol_names = {sid: name for name, sid in symbols.items()}
        self.units = {sid: units(sid) for sid in self.symbol_names}
        self.offset_ns = wall_clock_offset_ns() if clock_offset_ns is None else clock_offset_ns
        instruments = {sid: Instrument(name, u.tick, u.lot) for sid, u in ((s, self.units[s]) for s in self.units)
                       for name in (self.symbol_names[sid],)}  # fmt: skip
        self.accounting = Accounting(instruments)
        self.open: dict[int, OrderState] = {}  #: order id -> open order
        self.open_by_account: dict[int, dict[int, OrderState]] = {cid: {} for cid in self.account_names}
        self.owners: collections.OrderedDict[int, int] = collections.OrderedDict()  #: order id -> account
        self.fills: dict[int, collections.deque[dict[str, Any]]] = {
            cid: collections.deque(maxlen=fills_kept) for cid in self.account_names
        }
        self.killed: dict[int, bool] = dict.fromkeys(self.account_names, False)
        self._cloids: dict[int, collections.Counter[int]] = {cid: collections.Counter() for cid in self.account_names}
        self.applied_seq = 0  #: engine seq of the last event applied
        self.rejects: collections.Counter[str] = collections.Counter()

    # --- client order ids ------------------------------------------------------------------------------------

    def cloid_taken(self, account: int, cloid: int) -> bool:
        return self._cloids[account][cloid] > 0

    def reserve(self, account: int, cloid: int) -> None:
        """Marks ``cloid`` in use for an order in flight; :meth:`release` it once its command has its answer."""
        self._cloids[account][cloid] += 1

    def release(self, account: int, cloid: int) -> None:
        counts = self._cloids[account]
        counts[cloid] -= 1
        if counts[cloid] <= 0:
            del counts[cloid]

    # --- events ----------------------------------------------------------------------------------------------

    def timestamp(self, ts_ns: int) -> float:
        return (ts_ns + self.offset_ns) / 1e9

    def apply(self, event: Event) -> dict[str, Any] | None:
        """Applies one event of the link; returns the account's stream message for it (None: not one of its)."""
        self.applied_seq = max(self.applied_seq, event.seq)
        cid = event.client_id
        if cid not in self.account_names:
            return None
        kind = event.type
        if kind == _FILL:
            return self._fill(event)
        if kind == _ACK:
            return self._ack(event)
        if kind == _CANCELED:
            return self._canceled(event)
        if kind == _MODIFIED:
            return self._modified(event)
        if kind == _REJECT:
            reason = _reason(RejectReason, event.reason)
            self.rejects[reason] += 1
            if event.reason == _KILL_REJECT:
                self.killed[cid] = True
            return self._message("reject", event, reason=reason, order_id=event.order_id or None,
                                 client_order_id=event.cloid or None,
                                 **self._human(event.symbol_id, event.price, event.qty))  # fmt: skip
        return None

    def _human(self, sid: int, price: int, qty: int) -> dict[str, float | None]:
        units = self.units.get(sid)
        if units is None:
            return {"price": None, "size": float(qty)}
        return {"price": units.price(price) if price else None, "size": units.size(qty)}

    def _message(self, event_name: str, event: Event, **fields: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"event": event_name, "client_id": self.account_names[event.client_id]}
        if event.symbol_id in self.symbol_names:
            out["symbol"] = self.symbol_names[event.symbol_id]
        if event.side in _SIDE_NAMES:
            out["side"] = _SIDE_NAMES[event.side]
        out.update(fields)
        out["seq"] = event.seq
        out["timestamp"] = self.timestamp(event.ts_ns)
        return out

    def _ack(self, event: Event) -> dict[str, Any] | None:
        cid = event.client_id
        if event.acked_op == _OP_MASS_CANCEL:
            return self._message("mass_cancel", event, cancelled=event.qty)
        if event.acked_op == _OP_KILL_RESET:
            self.killed[cid] = False
            return self._message("kill_reset", event)
        if event.acked_op != _OP_NEW:
            return None
        order = OrderState(event.order_id, cid, event.symbol_id, event.side, event.price, event.qty, event.qty,
                           event.cloid, event.ts_ns)  # fmt: skip
        self.open[order.order_id] = order
        self.open_by_account[cid][order.order_id] = order
        if order.cloid:
            self._cloids[cid][order.cloid] += 1
        self._own(order.order_id, cid)
        return self._message("ack", event, order_id=event.order_id, client_order_id=event.cloid or None,
                             **self._human(event.symbol_id, event.price, event.qty))  # fmt: skip

    def _own(self, order_id: int, account: int) -> None:
        self.owners[order_id] = account
        if len(self.owners) > OWNERS_KEPT:
            self.owners.popitem(last=False)

    def _done(self, order: OrderState) -> None:
        self.open.pop(order.order_id, None)
        self.open_by_account[order.account].pop(order.order_id, None)
        if order.cloid:
            self.release(order.account, order.cloid)

    def _fill(self, event: Event) -> dict[str, Any]:
        cid = event.client_id
        self.accounting.apply(Fill.from_event(event))
        order = self.open.get(event.order_id)
        cloid = None
        if order is not None:
            order.leaves = event.leaves
            cloid = order.cloid or None
            if order.leaves <= 0:
                self._done(order)
        units = self.units[event.symbol_id]
        message = self._message("fill", event, order_id=event.order_id, trade_id=event.trade_id,
                                price=units.price(event.price), size=units.size(event.qty),
                                leaves=units.size(event.leaves),
                                liquidity="maker" if event.liquidity == _MAKER else "taker",
                                client_order_id=cloid)  # fmt: skip
        self.fills[cid].append(message)
        return message

    def _canceled(self, event: Event) -> dict[str, Any]:
        if event.reason == _KILL_CANCEL:
            self.killed[event.client_id] = True
        order = self.open.get(event.order_id)
        cloid = None
        if order is not None:
            order.leaves = event.leaves
            cloid = order.cloid or None
            if order.leaves <= 0:
                self._done(order)
        units = self.units.get(event.symbol_id)
        leaves = units.size(event.leaves) if units else float(event.leaves)
        return self._message("cancel", event, order_id=event.order_id, reason=_reason(CancelReason, event.reason),
                             size=units.size(event.qty) if units else float(event.qty), leaves=leaves,
                             client_order_id=cloid)  # fmt: skip

    def _modified(self, event: Event) -> dict[str, Any]:
        order = self.open.get(event.order_id)
        if order is not None:
            order.price = event.price
            order.qty += event.qty - order.leaves  # size = filled + open, as the new open size says
            order.leaves = event.qty
        return self._message("modified", event, order_id=event.order_id, client_order_id=event.cloid or None,
                             **self._human(event.symbol_id, event.price, event.qty))  # fmt: skip
