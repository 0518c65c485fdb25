"""Binance's request weight: each call costs a weight, each caller has a budget per minute.

As Binance: the window is the clock minute (fixed, not sliding), the budget is per caller's address, every
answer carries ``X-MBX-USED-WEIGHT-1M`` (what this minute has used, this call included), and a call over the
budget is a 429 with ``Retry-After`` (seconds to the next minute) and -1003, consuming nothing. The weights are
Binance's (:func:`weight_of`). Time is the gateway's injected monotonic clock, so tests step it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qs

from ..ratelimit import Clock

__all__ = ["WeightLimiter", "weight_of"]

#: Binance's weights of the served calls: (method, path) -> weight (depth, openOrders and bookTicker
#: depend on parameters: weight_of)
_WEIGHTS = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/trades"): 25,
    ("POST", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/test"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("POST", "/api/v3/userDataStream"): 2,
    ("PUT", "/api/v3/userDataStream"): 2,
    ("DELETE", "/api/v3/userDataStream"): 2,
}


def weight_of(method: str, path: str, query: bytes) -> int:
    """A call's weight, as Binance counts it."""
    if path == "/api/v3/depth":
        values = parse_qs(query.decode("latin-1")).get("limit", ["100"])
        limit = int(values[0]) if values[0].isdigit() else 100
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if path == "/api/v3/openOrders" and method == "GET":
        return 6 if b"symbol=" in query else 80
    if path == "/api/v3/ticker/bookTicker":
        return 2 if b"symbol=" in query else 4
    return _WEIGHTS.get((method, path), 1)


@dataclass
class WeightLimiter:
    """Weight used per caller per clock minute (see the module docstring); ``per_minute`` 0: no limit."""

    per_minute: int
    clock: Clock

    def __post_init__(self) -> None:
        self._used: dict[str, tuple[int, int]] = {}  #: caller -> (minute, weight used in it)

    def hit(self, caller: str, weight: int) -> tuple[bool, int, int]:
        """Consumes ``weight`` if the minute's budget allows: (allowed, weight used this minute, seconds until
        the next minute)."""
        now = self.clock()
        minute = int(now // 60)
        retry = max(1, math.ceil((minute + 1) * 60 - now))
        at, used = self._used.get(caller, (minute, 0))
        if at != minute:
            used = 0
        if self.per_minute and used + weight > self.per_minute:
            self._used[caller] = (minute, used)
            return False, used, retry
        used += weight
        self._used[caller] = (minute, used)
        if len(self._used) > 10_000:  # callers of past minutes: forget them
            self._used = {k: v for k, v in self._used.items() if v[0] == minute}
        return True, used, retry
