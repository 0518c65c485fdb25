"""The user-data stream: listen keys, and each account's ``executionReport`` events.

``POST /api/v3/userDataStream`` (key only, not signed) gives the account a listen key; a WebSocket on
``/ws/<listenKey>`` (or a SUBSCRIBE to it) then receives an ``executionReport`` for each change of the
account's orders, in engine order: NEW, TRADE, CANCELED, EXPIRED, TRADE_PREVENTION, REJECTED, REPLACED (the
gateway's own modify). A key lives :data:`LISTEN_KEY_TTL_S` after its last ``PUT`` (Binance's 60 minutes);
``DELETE`` ends it. Frames are built once per event and offered to the account's subscribers (``fanout``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping

import orjson

from ..fanout import Topic
from .errors import BinanceError, Code
from .instruments import Instrument
from .ledger import OrderRecord, TradeRecord
from .views import ZERO

__all__ = ["LISTEN_KEY_TTL_S", "UserData"]

#: how long a listen key lives without a keepalive
LISTEN_KEY_TTL_S = 3600.0


class UserData:
    """Listen keys and the accounts' user-data topics (see the module docstring)."""

    def __init__(self, instruments: Mapping[int, Instrument], accounts: Mapping[str, int]) -> None:
        self.instruments = dict(instruments)
        self.topics = {cid: Topic() for cid in accounts.values()}
        #: account -> the WebSocket API's subscriptions to it (each wraps a report and queues it)
        self.sinks: dict[int, dict[tuple[int, int], Callable[[str], object]]] = {}
        self._keys: dict[str, tuple[int, float]] = {}  #: listen key -> (account, expiry, monotonic)

    def create(self, account: int) -> str:
        """A listen key for ``account`` (Binance gives the same one while it lives; so does this)."""
        now = time.monotonic()
        for key, (cid, expiry) in self._keys.items():
            if cid == account and expiry > now:
                self._keys[key] = (cid, now + LISTEN_KEY_TTL_S)
                return key
        key = secrets.token_hex(32)
        self._keys[key] = (account, now + LISTEN_KEY_TTL_S)
        return key

    def account_of(self, key: str) -> int | None:
        entry = self._keys.get(key)
        if entry is None or entry[1] <= time.monotonic():
            self._keys.pop(key, None)
            return None
        return entry[0]

    def _owned(self, account: int, key: str | None) -> str:
        if not key:
            raise BinanceError(
                400,
                Code.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                "Mandatory parameter 'listenKey' was not sent, was empty/null, or malformed.",
            )
        if self.account_of(key) != account:
            raise BinanceError(400, Code.INVALID_LISTEN_KEY, "This listenKey does not exist.")
        return key

    def keepalive(self, account: int, key: str | None) -> None:
        key = self._owned(account, key)
        self._keys[key] = (account, time.monotonic() + LISTEN_KEY_TTL_S)

    def close(self, account: int, key: str | None) -> None:
        self._keys.pop(self._owned(account, key), None)

    def on_order(self, order: OrderRecord, execution: str, trade: TradeRecord | None) -> None:
        """The ledger's listener: one executionReport to the account's subscribers."""
        topic = self.topics.get(order.account)
        sinks = self.sinks.get(order.account)
        if (topic is None or not topic.subscribers) and not sinks:
            return
        inst = self.instruments[order.symbol_id]
        now = time.time_ns() // 1_000_000
        report = {
            "e": "executionReport", "E": now, "s": inst.name, "c": order.client_order_id, "S": order.side,
            "o": order.type, "f": order.time_in_force, "q": inst.qty(order.orig_qty),
            "p": inst.price(order.price) if order.price else ZERO, "P": ZERO, "F": ZERO, "g": -1,
            "C": order.client_order_id if execution == "CANCELED" else "", "x": execution, "X": order.status,
            "r": "NONE", "i": order.order_id, "l": inst.qty(trade.qty) if trade else inst.qty(0),
            "z": inst.qty(order.executed), "L": inst.price(trade.price) if trade else inst.price(0), "n": ZERO,
            "N": None, "T": trade.time_ms if trade else order.update_ms, "t": trade.trade_id if trade else -1,
            "I": 0, "w": order.is_open, "m": trade.maker if trade else False, "M": False, "O": order.time_ms,
            "Z": inst.notional(order.quote),
            "Y": inst.notional(trade.price * trade.qty) if trade else inst.notional(0),
            "Q": order.quote_order_qty or ZERO, "W": order.time_ms, "V": order.stp,
        }  # fmt: skip
        frame = orjson.dumps(report).decode()
        if topic is not None and topic.subscribers:
            topic.publish(frame)
        for sink in list((sinks or {}).values()):
            sink(frame)
