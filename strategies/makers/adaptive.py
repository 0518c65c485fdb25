"""The adaptive-spread maker: the half-spread follows realised volatility, measured as an EWMA.

Volatility is :class:`~strategies.makers.volatility.EwmaVolatility` of fair value (ticks per square-root
second, half-life ``vol_halflife_s``). The half-spread is ``max(half_spread, vol_multiplier x sigma x
sqrt(vol_horizon_s))``: at least the configured floor, wider when the price moves more than that within the
horizon. ``sigma`` is 0 (the floor) until the first move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..interface import Trading
from .base import MakerParams, Quotes, QuotingStrategy
from .volatility import EwmaVolatility

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
        self.estimator = EwmaVolatility(params.vol_halflife_s)

    def observe_fair(self, trading: Trading, fair: float) -> None:
        self.estimator.update(trading.now_ns(), fair)

    @property
    def sigma(self) -> float:
        """Ticks per square-root second."""
        return self.estimator.sigma

    def half_spread(self) -> float:
        return max(self.half_spread_ticks, self.vol.vol_multiplier * self.sigma * math.sqrt(self.vol.vol_horizon_s))

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        h = self.half_spread()
        return Quotes(fair - h, fair + h, self.size_lots, self.size_lots)
