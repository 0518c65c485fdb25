"""Per-key rate limits: a token bucket (the algorithm) over a dict of bucket states (the storage).

Each key (an account, or the peer address without auth) has a bucket of ``burst`` tokens refilled at
``rate_per_s``; a call consumes its ``cost`` (heavier calls, a mass cancel, cost more). :meth:`RateLimiter.hit`
consumes when there is enough and says whether it did, :meth:`RateLimiter.test` only checks, and
:meth:`RateLimiter.window` gives what remains and when the bucket is full again, which fills ``Retry-After``.

Time comes from an injected monotonic clock (``Clock``, a function returning seconds), never from ``time.time()``:
tests step it by hand. A refused call consumes nothing, so a client hammering a full limit is refused until its
tokens come back and is never locked out longer. The storage keeps one small tuple per key; keys are accounts
(few) or peer addresses in ``--no-auth`` mode (local use), so it is not pruned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Clock", "RateLimiter", "Window", "monotonic"]

#: A monotonic clock in seconds; the gateway's default is :func:`time.monotonic`.
Clock = Callable[[], float]


def monotonic() -> float:
    """The default clock."""
    return time.monotonic()


class Window(NamedTuple):
    """A key's bucket now: tokens left, and seconds until ``cost`` more tokens are there (0: now)."""

    remaining: float
    retry_after_s: float


class _Bucket(NamedTuple):
    tokens: float
    at: float  #: clock time the tokens were counted at


@dataclass
class RateLimiter:
    """Token buckets by key; see the module docstring. ``rate_per_s`` 0 switches limiting off."""

    rate_per_s: float
    burst: float
    clock: Clock = monotonic

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_per_s) and self.rate_per_s >= 0):
            raise ValueError(f"rate_per_s must be a finite number >= 0, not {self.rate_per_s!r}")
        if not (math.isfinite(self.burst) and self.burst >= 1):
            raise ValueError(f"burst must be a finite number >= 1, not {self.burst!r}")
        self._buckets: dict[str, _Bucket] = {}

    def _now(self, key: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            return _Bucket(self.burst, now)
        elapsed = max(0.0, now - bucket.at)  # a clock that steps back refills nothing
        return _Bucket(min(self.burst, bucket.tokens + elapsed * self.rate_per_s), now)

    def test(self, key: str, cost: float = 1.0) -> bool:
        """Whether ``cost`` tokens are there now (consumes nothing)."""
        return self.rate_per_s == 0 or self._now(key).tokens >= cost

    def hit(self, key: str, cost: float = 1.0) -> bool:
        """Consumes ``cost`` tokens and returns True, or returns False and consumes nothing."""
        if self.rate_per_s == 0:
            return True
        bucket = self._now(key)
        if bucket.tokens < cost:
            self._buckets[key] = bucket
            return False
        self._buckets[key] = _Bucket(bucket.tokens - cost, bucket.at)
        return True

    def window(self, key: str, cost: float = 1.0) -> Window:
        """Tokens left for ``key`` and the seconds until ``cost`` tokens are there."""
        if self.rate_per_s == 0:
            return Window(math.inf, 0.0)
        bucket = self._now(key)
        missing = max(0.0, min(cost, self.burst) - bucket.tokens)
        return Window(bucket.tokens, missing / self.rate_per_s)
