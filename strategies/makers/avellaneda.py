"""The Avellaneda-Stoikov maker and its infinite-horizon Gueant-Lehalle-Fernandez-Tapia form, on a real book.

The formulas are ``strategies.avellaneda``'s (with their citations); this module maps the book onto them:

- **Units.** Prices are in the symbol's price units (ticks x tick size), time in seconds, and inventory ``q`` in
  quote sizes (position / ``size``), the paper's unit orders: so ``gamma`` is per price unit per quote size
  held, ``k`` per price unit, ``A`` fills per second, ``sigma`` price units per square-root second.
- **sigma**: the ``sigma`` parameter if positive, else the EWMA realised volatility of fair value
  (``vol_halflife_s``), floored at one tick per square-root hour so the formulas stay defined before the first
  move.
- **Horizon (AS only).** ``T - t`` runs down from ``horizon_s`` to 0 and starts again: the paper's finite
  trading period, repeated (a session, an hour). GLFT has no horizon: its quotes are the stationary ones.
- **Quotes** are the formula's bid and ask around fair value (``QuotingStrategy``: post-only, rounded away
  from fair, sized against ``max_position``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..avellaneda import ASParams, GLFTParams, as_quotes, glft_ask_half_spread, glft_bid_half_spread
from ..interface import Trading
from .base import MakerParams, Quotes, QuotingStrategy
from .volatility import EwmaVolatility

__all__ = ["AvellanedaStoikovMaker", "AvellanedaStoikovParams", "GlftMaker", "GlftParams"]


@dataclass(frozen=True)
class AvellanedaStoikovParams(MakerParams):
    #: risk aversion, per price unit per quote size held
    gamma: float = 0.1
    #: fill-intensity decay with distance from the mid, per price unit
    k: float = 1.5
    #: volatility, price units per square-root second; 0: estimate it (EWMA)
    sigma: float = 0.0
    vol_halflife_s: float = 60.0
    #: the trading period T, in seconds; it restarts when it ends
    horizon_s: float = 3600.0


@dataclass(frozen=True)
class GlftParams(MakerParams):
    gamma: float = 0.1
    k: float = 1.5
    #: fill intensity of a quote at the mid, fills per second
    a: float = 1.0
    sigma: float = 0.0
    vol_halflife_s: float = 60.0


class _ModelMaker(QuotingStrategy):
    """Volatility and inventory in the model's units."""

    def __init__(self, params: MakerParams, sigma: float, halflife_s: float) -> None:
        super().__init__(params)
        self.fixed_sigma = sigma
        self.estimator = EwmaVolatility(halflife_s)
        self.tick = 1.0

    def on_start(self, trading: Trading) -> None:
        super().on_start(trading)
        self.tick = trading.units(self.sid).tick

    def observe_fair(self, trading: Trading, fair: float) -> None:
        self.estimator.update(trading.now_ns(), fair)

    def sigma(self) -> float:
        """Price units per square-root second."""
        if self.fixed_sigma > 0:
            return self.fixed_sigma
        return max(self.estimator.sigma, 1.0 / 60.0) * self.tick

    def inventory(self, position: int) -> float:
        return position / self.size_lots if self.size_lots else 0.0


class AvellanedaStoikovMaker(_ModelMaker):
    name = "avellaneda"

    def __init__(self, params: AvellanedaStoikovParams) -> None:
        super().__init__(params, params.sigma, params.vol_halflife_s)
        self.model = params
        self._start_ns: int | None = None

    def time_left(self, now_ns: int) -> float:
        if self._start_ns is None:
            self._start_ns = now_ns
        elapsed = (now_ns - self._start_ns) / 1e9
        return self.model.horizon_s - math.fmod(elapsed, self.model.horizon_s)

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        params = ASParams(self.model.gamma, self.sigma(), self.model.k)
        q = as_quotes(fair * self.tick, self.inventory(position), self.time_left(trading.now_ns()), params)
        return Quotes(q.bid / self.tick, q.ask / self.tick, self.size_lots, self.size_lots)


class GlftMaker(_ModelMaker):
    name = "glft"

    def __init__(self, params: GlftParams) -> None:
        super().__init__(params, params.sigma, params.vol_halflife_s)
        self.model = params

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        params = GLFTParams(self.model.gamma, self.sigma(), self.model.k, self.model.a)
        q = self.inventory(position)
        mid = fair * self.tick
        bid = mid - glft_bid_half_spread(q, params)
        ask = mid + glft_ask_half_spread(q, params)
        return Quotes(bid / self.tick, ask / self.tick, self.size_lots, self.size_lots)
