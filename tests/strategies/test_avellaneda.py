"""The closed-form quotes of Avellaneda-Stoikov (2008) and Gueant-Lehalle-Fernandez-Tapia (2013).

Hand values use the paper's section 4 market (sigma = 2, k = 1.5, A = 140) at gamma = 0.1, where
ln(1 + gamma / k) = ln(16 / 15) = 0.0645385211375712 and (1 + gamma / k) ** (1 + k / gamma) = (16 / 15) ** 16
= 2.80840396557645.
"""

from __future__ import annotations

import math

import pytest

from strategies.avellaneda import (
    ASParams,
    GLFTParams,
    as_quotes,
    glft_ask_half_spread,
    glft_bid_half_spread,
    glft_skew_and_half_spread,
    glft_skew_per_unit,
    inventory_risk,
    optimal_spread,
    reservation_price,
)

LN_16_15 = 0.0645385211375712
AS = ASParams(gamma_per_price=0.1, sigma_price_per_sqrt_time=2.0, k_per_price=1.5)
GLFT = GLFTParams(gamma_per_price=0.1, sigma_price_per_sqrt_time=2.0, k_per_price=1.5, a_per_time=140.0)
#: c = sqrt(sigma**2 * gamma / (2 * k * A) * (16 / 15) ** 16) = sqrt(0.4 / 420 * 2.80840396557645)
C = 0.0517172161219660


def test_reservation_price_moves_down_by_q_gamma_sigma2_tau() -> None:
    # 100 - 2 * 0.1 * 4 * 1
    assert reservation_price(100.0, 2.0, 1.0, AS) == pytest.approx(99.2, rel=1e-15)


def test_optimal_spread_is_the_inventory_risk_plus_the_log_term() -> None:
    # 0.1 * 4 * 1 + (2 / 0.1) * ln(16 / 15)
    assert optimal_spread(1.0, AS) == pytest.approx(0.4 + 20 * LN_16_15, rel=1e-14)


def test_as_quotes_sit_half_the_spread_either_side_of_the_reservation_price() -> None:
    half = (0.4 + 20 * LN_16_15) / 2
    bid, ask = as_quotes(100.0, 2.0, 1.0, AS)
    assert bid == pytest.approx(99.2 - half, rel=1e-14)
    assert ask == pytest.approx(99.2 + half, rel=1e-14)


def test_as_quotes_are_centred_on_the_mid_when_flat() -> None:
    bid, ask = as_quotes(100.0, 0.0, 0.7, AS)
    assert (bid + ask) / 2 == pytest.approx(100.0, rel=1e-15)


def test_at_the_horizon_the_reservation_price_is_the_mid_and_the_spread_the_log_term() -> None:
    assert reservation_price(100.0, 5.0, 0.0, AS) == 100.0
    assert optimal_spread(0.0, AS) == pytest.approx(20 * LN_16_15, rel=1e-14)


def test_as_spread_tends_to_two_over_k_as_gamma_goes_to_zero() -> None:
    zero = ASParams(0.0, 2.0, 1.5)
    assert optimal_spread(1.0, zero) == 2 / 1.5
    assert optimal_spread(1.0, ASParams(1e-12, 2.0, 1.5)) == pytest.approx(2 / 1.5, rel=1e-11)
    assert optimal_spread(1.0, ASParams(1e-300, 2.0, 1.5)) == pytest.approx(2 / 1.5, rel=1e-15)


def test_gamma_zero_quotes_ignore_inventory() -> None:
    zero = ASParams(0.0, 2.0, 1.5)
    assert as_quotes(100.0, 7.0, 1.0, zero) == as_quotes(100.0, -7.0, 1.0, zero)
    assert as_quotes(100.0, 7.0, 1.0, zero) == pytest.approx((100 - 1 / 1.5, 100 + 1 / 1.5), rel=1e-15)


def test_reservation_price_falls_as_inventory_grows() -> None:
    prices = [reservation_price(100.0, q, 0.5, AS) for q in range(-5, 6)]
    assert all(a > b for a, b in zip(prices, prices[1:], strict=False))


def test_a_more_risk_averse_dealer_skews_further_for_the_same_inventory() -> None:
    shifts = [100.0 - reservation_price(100.0, 3.0, 0.5, ASParams(g, 2.0, 1.5)) for g in (0.0, 0.01, 0.1, 0.5)]
    assert shifts[0] == 0.0
    assert all(a < b for a, b in zip(shifts, shifts[1:], strict=False))


def test_the_log_term_of_the_spread_narrows_as_gamma_grows() -> None:
    spreads = [optimal_spread(0.0, ASParams(g, 2.0, 1.5)) for g in (0.0, 0.01, 0.1, 0.5, 2.0)]
    assert all(a > b for a, b in zip(spreads, spreads[1:], strict=False))


def test_the_as_spread_widens_with_the_time_left() -> None:
    spreads = [optimal_spread(tau, AS) for tau in (0.0, 0.25, 0.5, 1.0)]
    assert all(a < b for a, b in zip(spreads, spreads[1:], strict=False))
    assert inventory_risk(0.5, AS) == pytest.approx(0.2, rel=1e-15)


def test_glft_hand_values_at_inventory_two() -> None:
    log_term = 10 * LN_16_15  # (1 / gamma) * ln(1 + gamma / k)
    assert glft_skew_per_unit(GLFT) == pytest.approx(C, rel=1e-13)
    assert glft_bid_half_spread(2.0, GLFT) == pytest.approx(log_term + 2.5 * C, rel=1e-13)  # (2q + 1) / 2 = 2.5
    assert glft_ask_half_spread(2.0, GLFT) == pytest.approx(log_term - 1.5 * C, rel=1e-13)  # (2q - 1) / 2 = 1.5


def test_glft_skew_and_half_spread_separate_the_shift_from_the_width() -> None:
    skew, half = glft_skew_and_half_spread(2.0, GLFT)
    assert skew == pytest.approx(2 * C, rel=1e-13)
    assert half == pytest.approx(10 * LN_16_15 + C / 2, rel=1e-13)
    assert glft_bid_half_spread(2.0, GLFT) == pytest.approx(half + skew, rel=1e-15)
    assert glft_ask_half_spread(2.0, GLFT) == pytest.approx(half - skew, rel=1e-15)


@pytest.mark.parametrize("q", [-7.0, -2.0, -1.0, 0.0, 0.5, 1.0, 3.0, 12.0])
def test_glft_bid_at_q_equals_ask_at_minus_q(q: float) -> None:
    assert glft_bid_half_spread(q, GLFT) == pytest.approx(glft_ask_half_spread(-q, GLFT), rel=1e-15)


def test_glft_total_spread_does_not_depend_on_inventory() -> None:
    totals = [glft_bid_half_spread(q, GLFT) + glft_ask_half_spread(q, GLFT) for q in range(-6, 7)]
    assert max(totals) - min(totals) < 1e-14


def test_glft_bid_widens_and_ask_narrows_as_inventory_grows() -> None:
    bids = [glft_bid_half_spread(q, GLFT) for q in range(-6, 7)]
    asks = [glft_ask_half_spread(q, GLFT) for q in range(-6, 7)]
    assert all(a < b for a, b in zip(bids, bids[1:], strict=False))
    assert all(a > b for a, b in zip(asks, asks[1:], strict=False))


def test_glft_skew_per_unit_grows_with_gamma() -> None:
    skews = [glft_skew_per_unit(GLFTParams(g, 2.0, 1.5, 140.0)) for g in (0.0, 0.01, 0.1, 0.5)]
    assert skews[0] == 0.0
    assert all(a < b for a, b in zip(skews, skews[1:], strict=False))


def test_glft_tends_to_one_over_k_a_side_as_gamma_goes_to_zero() -> None:
    zero = GLFTParams(0.0, 2.0, 1.5, 140.0)
    assert glft_bid_half_spread(4.0, zero) == 1 / 1.5
    assert glft_ask_half_spread(4.0, zero) == 1 / 1.5
    tiny = GLFTParams(1e-10, 2.0, 1.5, 140.0)
    # c -> sqrt(sigma**2 * gamma * e / (2 * k * A)) ~ 1.4e-6 here
    assert glft_skew_per_unit(tiny) == pytest.approx(math.sqrt(4 * 1e-10 * math.e / 420), rel=1e-8)
    assert glft_bid_half_spread(0.0, tiny) == pytest.approx(1 / 1.5, abs=1e-5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gamma_per_price", -0.1),
        ("gamma_per_price", math.nan),
        ("sigma_price_per_sqrt_time", 0.0),
        ("sigma_price_per_sqrt_time", -2.0),
        ("k_per_price", 0.0),
        ("k_per_price", math.inf),
    ],
)
def test_as_params_refuse_a_bad_value_naming_the_field(field: str, value: float) -> None:
    kwargs = {"gamma_per_price": 0.1, "sigma_price_per_sqrt_time": 2.0, "k_per_price": 1.5, field: value}
    with pytest.raises(ValueError, match=field):
        ASParams(**kwargs)


@pytest.mark.parametrize("value", [0.0, -140.0, math.nan])
def test_glft_params_refuse_a_non_positive_intensity_scale(value: float) -> None:
    with pytest.raises(ValueError, match="a_per_time"):
        GLFTParams(0.1, 2.0, 1.5, value)


@pytest.mark.parametrize("time_left", [-0.1, math.nan, math.inf])
def test_a_negative_or_non_finite_time_left_is_refused(time_left: float) -> None:
    with pytest.raises(ValueError, match="time_left"):
        optimal_spread(time_left, AS)


def test_params_are_frozen() -> None:
    with pytest.raises(AttributeError):
        AS.gamma_per_price = 0.2  # type: ignore[misc]
