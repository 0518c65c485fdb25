"""The token bucket: burst, refill by the injected clock, cost per call, Retry-After from the window."""

from __future__ import annotations

import pytest

from gateway.ratelimit import RateLimiter


class StepClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_refused_until_the_clock_refills_it() -> None:
    clock = StepClock()
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=clock)
    assert [limiter.hit("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.window("a").retry_after_s == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.hit("a") and not limiter.hit("a")


def test_keys_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1, clock=StepClock())
    assert limiter.hit("a") and limiter.hit("b") and not limiter.hit("a")


def test_a_refused_call_consumes_nothing_and_a_heavy_call_costs_more() -> None:
    clock = StepClock()
    limiter = RateLimiter(rate_per_s=1, burst=10, clock=clock)
    assert limiter.hit("a", cost=8)
    assert not limiter.hit("a", cost=5)
    assert limiter.window("a", cost=5).retry_after_s == pytest.approx(3.0)
    assert limiter.test("a", cost=2) and limiter.hit("a", cost=2) and not limiter.test("a")


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = StepClock()
    limiter = RateLimiter(rate_per_s=1, burst=1, clock=clock)
    assert limiter.hit("a")
    clock.now -= 50
    assert not limiter.hit("a")


def test_rate_zero_switches_the_limit_off_and_bad_settings_are_refused() -> None:
    limiter = RateLimiter(rate_per_s=0, burst=1, clock=StepClock())
    assert all(limiter.hit("a") for _ in range(1000))
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=float("nan"), burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate_per_s=1, burst=0)
