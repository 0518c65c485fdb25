"""``EwmaVolatility``: realised volatility of a price sampled at irregular times, from fixed-interval returns.

The price is read on a fixed grid of ``sample_interval_s`` (the last value at or before each grid point), and
each grid return ``r`` updates an EWMA of ``r^2 / interval`` (a variance per second) with half-life
``halflife_s``. A grid, not the raw updates: two updates microseconds apart would give ``(dm)^2 / dt`` a huge
weight per unit of time and make the estimate jump with the sampling, which a quote must not. ``sigma`` is in
the caller's price units (ticks here) per square-root second; 0 until the first full interval has passed.
"""

from __future__ import annotations

import math

__all__ = ["EwmaVolatility"]


class EwmaVolatility:
    def __init__(self, halflife_s: float, sample_interval_s: float = 1.0) -> None:
        if not halflife_s > 0 or not sample_interval_s > 0:
            raise ValueError(f"the half-life and sample interval must be positive ({halflife_s!r}, "
                             f"{sample_interval_s!r})")  # fmt: skip
        self.halflife_s = halflife_s
        self.interval_ns = int(sample_interval_s * 1e9)
        self._weight = 1.0 - 2.0 ** (-sample_interval_s / halflife_s)
        self.variance_rate = 0.0
        self._grid_ns: int | None = None  # the next grid point
        self._at_grid = 0.0  # the price at the last grid point
        self._last = 0.0  # the latest price

    def update(self, now_ns: int, price: float) -> None:
        if self._grid_ns is None:
            self._grid_ns, self._at_grid, self._last = now_ns + self.interval_ns, price, price
            return
        interval_s = self.interval_ns / 1e9
        while now_ns >= self._grid_ns:  # grid points passed: each return is last-at-or-before minus previous
            r = self._last - self._at_grid
            self.variance_rate += self._weight * (r * r / interval_s - self.variance_rate)
            self._at_grid = self._last
            self._grid_ns += self.interval_ns
            if now_ns - self._grid_ns > 1000 * self.interval_ns:  # a long silence: zero returns, in one step
                skipped = (now_ns - self._grid_ns) // self.interval_ns
                self.variance_rate *= (1.0 - self._weight) ** skipped
                self._grid_ns += skipped * self.interval_ns
        self._last = price

    @property
    def sigma(self) -> float:
        return math.sqrt(self.variance_rate)
