"""The user-data stream: listen keys, and each account's ``executionReport`` events.

``POST /api/v3/userDataStream`` (key only, not signed) gives the account a listen key; a WebSocket on
``/ws/<listenKey>`` (or a SUBSCRIBE to it) then receives an ``executionReport`` for each change of the
account's orders, in engine order: NEW, TRADE, CANCELED, EXPIRED, TRADE_PREVENTION, REJECTED, REPLACED (the
gateway's own modify). Frames are built once per event and offered to the subscribers (``fanout``).

Choices:

- **One live key per account**, as Binance: a ``POST`` while the account's key lives gives that key again
  (and extends it), so what is kept is bounded by the number of accounts, whatever clients do.
- **Each key is its own topic.** A key lives :data:`LISTEN_KEY_TTL_S` after its last ``POST`` or ``PUT``
  (Binance's 60 minutes). When it ends (``DELETE``, or found expired at the account's next event or ``POST``)
  its subscribers get Binance's ``listenKeyExpired`` event and nothing more from it, as Binance closes the
  stream; a socket that carries other streams keeps them.
- The WebSocket API's subscriptions (``wsapi``) are *sinks*: callables that wrap and queue a report; each
  account has at most one per session there, so they are bounded too.
- Time is an injected monotonic clock (tests step it).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import orjson

from ..fanout import Topic
from ..ratelimit import Clock
from .errors import BinanceError, Code, mandatory
from .instruments import Instrument
from .ledger import OrderRecord, TradeRecord
from .views import ZERO

__all__ = ["LISTEN_KEY_TTL_S", "Sink", "UserData"]

#: how long a listen key lives without a keepalive
LISTEN_KEY_TTL_S = 3600.0

#: a WebSocket API subscription: takes each executionReport frame of its account
Sink = Callable[[str], object]


@dataclass
class _ListenKey:
    account: int
    expiry: float  #: on the monotonic clock
    topic: Topic = field(default_factory=Topic)


class UserData:
    """Listen keys and the accounts' user-data subscribers (see the module docstring)."""

    def __init__(self, instruments: Mapping[int, Instrument], accounts: Mapping[str, int],
                 clock: Clock = time.monotonic) -> None:  # fmt: skip
        self.instruments = dict(instruments)
        self.accounts = set(accounts.values())
        self.clock = clock
        #: account -> the WebSocket API's subscriptions to it, by a key each session chooses
        self.sinks: dict[int, dict[object, Sink]] = {}
        self._keys: dict[str, _ListenKey] = {}  #: listen key -> its account, expiry and subscribers
        self._key_of: dict[int, str] = {}  #: account -> its listen key

    def __len__(self) -> int:
        """How many listen keys are kept (live, or ended and not yet found so)."""
        return len(self._keys)

    def create(self, account: int) -> str:
        """The account's listen key, extended; a new one if it has none that lives."""
        now = self.clock()
        key = self._key_of.get(account)
        if key is not None and self._keys[key].expiry > now:
            self._keys[key].expiry = now + LISTEN_KEY_TTL_S
            return key
        if key is not None:
            self._end(key)
        key = secrets.token_hex(32)
        self._keys[key] = _ListenKey(account, now + LISTEN_KEY_TTL_S)
        self._key_of[account] = key
        return key

    def topic_of(self, key: str) -> Topic | None:
        """The subscribers of a live listen key; None if there is no such key (or it has expired)."""
        entry = self._live(key)
        return None if entry is None else entry.topic

    def _live(self, key: str) -> _ListenKey | None:
        entry = self._keys.get(key)
        if entry is not None and entry.expiry <= self.clock():
            self._end(key)
            return None
        return entry

    def _end(self, key: str) -> None:
        """Ends a key: ``listenKeyExpired`` to its subscribers, then it is forgotten."""
        entry = self._keys.pop(key)
        if self._key_of.get(entry.account) == key:
            del self._key_of[entry.account]
        if entry.topic.subscribers:
            event = {"e": "listenKeyExpired", "E": time.time_ns() // 1_000_000, "listenKey": key}
            entry.topic.publish(orjson.dumps(event).decode())
            entry.topic.subscribers.clear()

    def _owned(self, account: int, key: str | None) -> str:
        if not key:
            raise mandatory("listenKey")
        entry = self._live(key)
        if entry is None or entry.account != account:
            raise BinanceError(400, Code.INVALID_LISTEN_KEY, "This listenKey does not exist.")
        return key

    def keepalive(self, account: int, key: str | None) -> None:
        self._keys[self._owned(account, key)].expiry = self.clock() + LISTEN_KEY_TTL_S

    def close(self, account: int, key: str | None) -> None:
        self._end(self._owned(account, key))

    def on_order(self, order: OrderRecord, execution: str, trade: TradeRecord | None) -> None:
        """The ledger's listener: one executionReport to the account's subscribers."""
        key = self._key_of.get(order.account)
        entry = None if key is None else self._live(key)
        topic = None if entry is None or not entry.topic.subscribers else entry.topic
        sinks = self.sinks.get(order.account)
        if topic is None and not sinks:
            return
        frame = orjson.dumps(self.report(order, execution, trade)).decode()
        if topic is not None:
            topic.publish(frame)
        for sink in list((sinks or {}).values()):
            sink(frame)

    def report(self, order: OrderRecord, execution: str, trade: TradeRecord | None) -> dict[str, object]:
        """Binance's ``executionReport`` for one change of ``order``."""
        inst = self.instruments[order.symbol_id]
        return {
            "e": "executionReport", "E": time.time_ns() // 1_000_000, "s": inst.name, "c": order.client_order_id,
            "S": order.side, "o": order.type, "f": order.time_in_force, "q": inst.qty(order.orig_qty),
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
