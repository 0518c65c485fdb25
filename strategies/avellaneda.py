"""Closed-form market-making quotes: Avellaneda-Stoikov (2008) and Gueant-Lehalle-Fernandez-Tapia (2013).

Pure functions of floats, no engine, no I/O; the simulator of the paper's own market model is
:mod:`strategies.as_model`. Both models price in the same abstract units: a mid price ``s`` that moves as a
Brownian motion with ``sigma`` price units per square root of a time unit, market orders that hit a quote at
distance ``delta`` from the mid with intensity ``A * exp(-k * delta)`` per time unit, unit order sizes, and a
dealer with CARA (exponential) utility of risk aversion ``gamma`` per price unit.

- **Avellaneda & Stoikov (2008)**, "High-frequency trading in a limit order book", Quantitative Finance 8(3),
  217-224: the finite-horizon approximations of their eqs. (29)-(30), with ``tau = T - t`` the time left,

  - reservation price ``r = s - q * gamma * sigma**2 * tau`` (:func:`reservation_price`);
  - total spread ``gamma * sigma**2 * tau + (2 / gamma) * ln(1 + gamma / k)`` (:func:`optimal_spread`);
  - quotes ``bid = r - spread / 2``, ``ask = r + spread / 2`` (:func:`as_quotes`), so the bid sits
    ``spread / 2 + q * gamma * sigma**2 * tau`` under the mid and the ask ``spread / 2 - q * ...`` over it.

- **Gueant, Lehalle & Fernandez-Tapia (2013)**, "Dealing with the inventory risk: a solution to the market
  making problem", Mathematics and Financial Economics 7(4), 477-507: the closed-form approximations of the
  optimal quotes far from the horizon (their asymptotic, infinite-horizon regime, in the case where the
  utility's risk aversion and the penalty coincide, xi = gamma), with
  ``c = sqrt(sigma**2 * gamma / (2 * k * A) * (1 + gamma / k) ** (1 + k / gamma))``:

  - ``delta_b(q) = (1 / gamma) * ln(1 + gamma / k) + (2 * q + 1) / 2 * c`` (:func:`glft_bid_half_spread`);
  - ``delta_a(q) = (1 / gamma) * ln(1 + gamma / k) - (2 * q - 1) / 2 * c`` (:func:`glft_ask_half_spread`);
  - so the quotes are symmetric around ``s - q * c`` (skew ``q * c``) at half-spread
    ``(1 / gamma) * ln(1 + gamma / k) + c / 2`` (:func:`glft_skew_and_half_spread`), and
    ``delta_b(q) = delta_a(-q)``.

Choices:

- **gamma = 0 is allowed** (a risk-neutral dealer) and handled as the limit, never by dividing by zero:
  ``(1 / gamma) * ln(1 + gamma / k) -> 1 / k`` (computed as ``log1p(x) / x`` with ``x = gamma / k``, exact at
  every small gamma), ``(1 + gamma / k) ** (1 + k / gamma) -> e``, so the AS spread tends to ``2 / k`` and the
  GLFT skew and its ``c / 2`` term to 0.
- **Offsets, not signs.** An offset is a distance from the mid, positive away from it: ``bid = mid - bid
  offset``, ``ask = mid + ask offset``. A large inventory can make one offset negative (the quote crosses the
  mid); the formulas do not clip it, since that is what the approximation says: clipping is the caller's rule.
- **Validation.** Parameters live in frozen dataclasses checked at construction (``sigma``, ``k``, ``A``
  positive and finite, ``gamma`` finite and >= 0); a time left must be finite and >= 0. A bad value raises
  ``ValueError`` naming the field and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "ASParams",
    "GLFTParams",
    "Quotes",
    "SkewSpread",
    "as_quotes",
    "glft_ask_half_spread",
    "glft_bid_half_spread",
    "glft_skew_and_half_spread",
    "glft_skew_per_unit",
    "inventory_risk",
    "optimal_spread",
    "reservation_price",
]


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_gamma(value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"gamma_per_price must be a finite number >= 0, got {value!r}")


def _check_time_left(value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"time_left must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class ASParams:
    """The Avellaneda-Stoikov dealer and market: what its quotes depend on besides mid, inventory and time."""

    #: risk aversion gamma of the CARA utility, per price unit; 0 is the risk-neutral limit
    gamma_per_price: float
    #: mid-price volatility sigma, price units per square root of a time unit
    sigma_price_per_sqrt_time: float
    #: decay k of the fill intensity A * exp(-k * delta) with the quote's distance delta, per price unit
    k_per_price: float

    def __post_init__(self) -> None:
        _check_gamma(self.gamma_per_price)
        _check_positive("sigma_price_per_sqrt_time", self.sigma_price_per_sqrt_time)
        _check_positive("k_per_price", self.k_per_price)


@dataclass(frozen=True, slots=True)
class GLFTParams:
    """The Gueant-Lehalle-Fernandez-Tapia dealer and market: the AS parameters and the intensity scale A."""

    #: risk aversion gamma of the CARA utility, per price unit (xi = gamma); 0 is the risk-neutral limit
    gamma_per_price: float
    #: mid-price volatility sigma, price units per square root of a time unit
    sigma_price_per_sqrt_time: float
    #: decay k of the fill intensity A * exp(-k * delta) with the quote's distance delta, per price unit
    k_per_price: float
    #: scale A of the fill intensity A * exp(-k * delta): fills per time unit of a quote at the mid
    a_per_time: float

    def __post_init__(self) -> None:
        _check_gamma(self.gamma_per_price)
        _check_positive("sigma_price_per_sqrt_time", self.sigma_price_per_sqrt_time)
        _check_positive("k_per_price", self.k_per_price)
        _check_positive("a_per_time", self.a_per_time)


class Quotes(NamedTuple):
    """A bid and an ask price."""

    bid: float
    ask: float


class SkewSpread(NamedTuple):
    """Quotes as a shift and a width: ``bid = mid - skew - half_spread``, ``ask = mid - skew + half_spread``.

    A positive skew (long inventory) lowers both quotes: the dealer buys less eagerly and sells more eagerly.
    """

    skew: float
    half_spread: float


def _log_term(gamma: float, k: float) -> float:
    """``(1 / gamma) * ln(1 + gamma / k)``, and its limit ``1 / k`` at gamma = 0."""
    if gamma == 0.0:
        return 1.0 / k
    x = gamma / k
    return math.log1p(x) / x / k


def inventory_risk(time_left: float, params: ASParams) -> float:
    """``gamma * sigma**2 * (T - t)``: how far one unit of inventory moves the AS reservation price (AS 2008,
    eq. 29), which is also the inventory-risk part of the AS spread (eq. 30)."""
    _check_time_left(time_left)
    return params.gamma_per_price * params.sigma_price_per_sqrt_time**2 * time_left


def reservation_price(mid: float, inventory: float, time_left: float, params: ASParams) -> float:
    """``r = s - q * gamma * sigma**2 * (T - t)`` (Avellaneda & Stoikov 2008, eq. 29): the price at which the
    dealer is indifferent to holding one more or one less unit, given inventory q and time left T - t."""
    return mid - inventory * inventory_risk(time_left, params)


def optimal_spread(time_left: float, params: ASParams) -> float:
    """``gamma * sigma**2 * (T - t) + (2 / gamma) * ln(1 + gamma / k)`` (Avellaneda & Stoikov 2008, eq. 30):
    the total width ask - bid; independent of inventory; ``2 / k`` as gamma -> 0."""
    return inventory_risk(time_left, params) + 2.0 * _log_term(params.gamma_per_price, params.k_per_price)


def as_quotes(mid: float, inventory: float, time_left: float, params: ASParams) -> Quotes:
    """The AS bid and ask: ``r -/+ spread / 2`` around the reservation price (Avellaneda & Stoikov 2008,
    eqs. 29-30)."""
    half = optimal_spread(time_left, params) / 2.0
    r = reservation_price(mid, inventory, time_left, params)
    return Quotes(r - half, r + half)


def glft_skew_per_unit(params: GLFTParams) -> float:
    """``c = sqrt(sigma**2 * gamma / (2 * k * A) * (1 + gamma / k) ** (1 + k / gamma))`` (Gueant, Lehalle &
    Fernandez-Tapia 2013, closed-form approximations, xi = gamma): the shift of both quotes per unit of
    inventory; 0 at gamma = 0.

    The power is taken as ``exp((1 + k / gamma) * log1p(gamma / k))``, which tends to ``e`` as gamma -> 0."""
    gamma, k = params.gamma_per_price, params.k_per_price
    if gamma == 0.0:
        return 0.0
    x = gamma / k
    power = math.exp((1.0 + 1.0 / x) * math.log1p(x))
    return math.sqrt(params.sigma_price_per_sqrt_time**2 * gamma / (2.0 * k * params.a_per_time) * power)


def glft_skew_and_half_spread(inventory: float, params: GLFTParams) -> SkewSpread:
    """The GLFT quotes as skew ``q * c`` and half-spread ``(1 / gamma) * ln(1 + gamma / k) + c / 2`` (Gueant,
    Lehalle & Fernandez-Tapia 2013, closed-form approximations, xi = gamma); see :class:`SkewSpread`."""
    c = glft_skew_per_unit(params)
    return SkewSpread(inventory * c, _log_term(params.gamma_per_price, params.k_per_price) + c / 2.0)


def glft_bid_half_spread(inventory: float, params: GLFTParams) -> float:
    """``delta_b(q) = (1 / gamma) * ln(1 + gamma / k) + (2 * q + 1) / 2 * c`` (Gueant, Lehalle &
    Fernandez-Tapia 2013, closed-form approximation of the optimal bid distance far from the horizon): how far
    under the mid to bid with inventory q; grows with q."""
    skew, half_spread = glft_skew_and_half_spread(inventory, params)
    return half_spread + skew


def glft_ask_half_spread(inventory: float, params: GLFTParams) -> float:
    """``delta_a(q) = (1 / gamma) * ln(1 + gamma / k) - (2 * q - 1) / 2 * c`` (Gueant, Lehalle &
    Fernandez-Tapia 2013, closed-form approximation of the optimal ask distance far from the horizon): how far
    over the mid to offer with inventory q; shrinks as q grows; ``delta_a(q) = delta_b(-q)``."""
    skew, half_spread = glft_skew_and_half_spread(inventory, params)
    return half_spread - skew
