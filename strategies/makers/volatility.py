"""``EwmaVolatility``: realised volatility of a price sampled at irregular times, as an EWMA variance rate.

Each new price ``m`` after ``dt`` seconds adds ``(m - m_prev)^2 / dt`` (a variance per second) with weight
``1 - 2^(-dt / halflife_s)``, so the estimate has the same units whatever the sampling and older moves fade
with a half-life in seconds, not in samples. Several moves within one nanosecond are taken as one. ``sigma``
is in price units (whatever the caller feeds: ticks here) per square-root second; 0 until the first move.
"""

from __future__ import annotations

import math

__all__ = ["EwmaVolatility"]


class EwmaVolatility:
    def __init__(self, halflife_s: float) -> None:
        if not halflife_s > 0:
            raise ValueError(f"the volatility half-life must be positive, not {halflife_s!r}")
        self.halflife_s = halflife_s
        self.variance_rate = 0.0
        self._last: tuple[int, float] | None = None

    def update(self, now_ns: int, price: float) -> None:
        if self._last is not None:
            t0, p0 = self._last
            dt = (now_ns - t0) / 1e9
            if dt <= 0:
                return  # the older point stays: the move is counted over a dt > 0 next time
            w = 1.0 - 2.0 ** (-dt / self.halflife_s)
            self.variance_rate += w * ((price - p0) ** 2 / dt - self.variance_rate)
        self._last = (now_ns, price)

    @property
    def sigma(self) -> float:
        return math.sqrt(self.variance_rate)
