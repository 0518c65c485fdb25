"""Idle strategies: what a non-engine process does when its ring has no work.

Only the pinned engine busy-spins. Everyone else backs off (ARCHITECTURE.md: two spinners on one of
these 2-vCPU machines collapse to millisecond round trips), like Aeron's ``BackOffIdleStrategy``:
the loop passes its work count to :meth:`BackoffIdle.idle`, which resets after work and otherwise
steps spin -> ``os.sched_yield`` -> sleep, doubling the sleep up to a cap.
"""

from __future__ import annotations

import os
import time

__all__ = ["BackoffIdle"]


class BackoffIdle:
    """Spin ``max_spins`` times, yield ``max_yields`` times, then sleep ``min_sleep_s`` doubling to ``max_sleep_s``."""

    __slots__ = ("max_spins", "max_yields", "min_sleep_s", "max_sleep_s", "_spins", "_yields", "_sleep_s")

    def __init__(
        self, max_spins: int = 10, max_yields: int = 20, min_sleep_s: float = 1e-6, max_sleep_s: float = 1e-3
    ) -> None:
        self.max_spins = max_spins  #: idle calls that return at once (a Python call is already ~50 ns)
        self.max_yields = max_yields  #: then idle calls that give the core away (os.sched_yield)
        self.min_sleep_s = min_sleep_s  #: then sleep this long, doubling each idle call ...
        self.max_sleep_s = max_sleep_s  #: ... up to this (bounds the wake-up latency of an idle process)
        self.reset()

    def reset(self) -> None:
        """Back to spinning: call after doing work."""
        self._spins = 0
        self._yields = 0
        self._sleep_s = self.min_sleep_s

    def idle(self, work_count: int = 0, cap_s: float | None = None) -> None:
        """One step of waiting; ``work_count > 0`` means the last poll found work, so start over. ``cap_s``
        bounds this step's sleep (a caller with a timer due sooner than the back-off would sleep passes it)."""
        if work_count > 0:
            self.reset()
        elif self._spins < self.max_spins:
            self._spins += 1
        elif self._yields < self.max_yields:
            self._yields += 1
            os.sched_yield()
        else:
            time.sleep(self._sleep_s if cap_s is None else max(0.0, min(self._sleep_s, cap_s)))
            self._sleep_s = min(self._sleep_s * 2, self.max_sleep_s)
