"""The adaptive-spread maker: the half-spread follows realised volatility, measured as an EWMA.

Each new fair value ``m`` after ``dt`` seconds adds ``(m - m_prev)^2`` to an exponentially weighted estimate of
the variance rate (ticks^2 per second) with time constant ``vol_halflife_s`` (weight ``1 - 2^(-dt/halflife)``
on the new observation), so the estimate is in the units the quote needs whatever the sampling. The half-spread
is ``max(half_spread, vol_multiplier x sigma x sqrt(vol_horizon_s))``: at least the configured floor, wider when
the price moves more than that within the horizon. ``sigma`` starts at 0 (the floor) until the first move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..interface import Trading
from .base import MakerParams, Quotes, QuotingStrategy

__all__ = ["AdaptiveSpreadMaker", "AdaptiveParams"]


@dataclass(frozen=True)
class AdaptiveParams(MakerParams):
    #: half-life of the EWMA variance estimate, in seconds
    vol_halflife_s: float = 30.0
    #: the horizon the spread must cover, in seconds
    vol_horizon_s: float = 1.0
    #: half-spread = this x sigma x sqrt(horizon), when above the floor
    vol_multiplier: float = 2.0


class AdaptiveSpreadMaker(QuotingStrategy):
    name = "adaptive"

    def __init__(self, params: AdaptiveParams) -> None:
        super().__init__(params)
        self.vol = params
        self.variance_rate = 0.0  # ticks^2 per second
        self._last: tuple[int, float] | None = None

    def observe_fair(self, trading: Trading, fair: float) -> None:
        now = trading.now_ns()
        if self._last is not None:
            t0, m0 = self._last
            dt = (now - t0) / 1e9
            if dt > 0:
                w = 1.0 - 2.0 ** (-dt / self.vol.vol_halflife_s)
                self.variance_rate += w * ((fair - m0) ** 2 / dt - self.variance_rate)
            elif fair != m0:
                return  # a move within the same ns: keep the older point, its dt will carry the move
        self._last = (now, fair)

    @property
    def sigma(self) -> float:
        """Ticks per square-root second."""
        return math.sqrt(self.variance_rate)

    def half_spread(self) -> float:
        return max(self.half_spread_ticks, self.vol.vol_multiplier * self.sigma * math.sqrt(self.vol.vol_horizon_s))

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        h = self.half_spread()
        return Quotes(fair - h, fair + h, self.size_lots, self.size_lots)
