"""Latency models: how long a strategy's command takes to reach the engine, and the engine's answer and market
data to reach the strategy.

A backtest without latency lets a strategy act on a book it could not have seen yet and rest ahead of orders
that really came first. Every backtest names its three delays explicitly (``BacktestConfig`` has no default).
``ConstantLatency`` is one fixed delay; ``EmpiricalLatency`` draws each delay from a recorded sample (e.g.
order -> ack times measured live, ``bench/`` prints them), seeded, so a run is reproducible. ``min_ns`` is what
the venue uses to batch the engine safely: nothing the strategy does in reaction to an event at ``t`` can reach
the engine before ``t + min(response, market data) + min(entry)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ConstantLatency", "EmpiricalLatency", "LatencyModel"]


class LatencyModel:
    """A delay in ns, drawn per message."""

    @property
    def min_ns(self) -> int:
        raise NotImplementedError

    def draw(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantLatency(LatencyModel):
    ns: int

    def __post_init__(self) -> None:
        if self.ns < 0:
            raise ValueError(f"a latency cannot be negative: {self.ns} ns")

    @property
    def min_ns(self) -> int:
        return self.ns

    def draw(self) -> int:
        return self.ns

    def describe(self) -> str:
        return f"constant {self.ns} ns"


@dataclass
class EmpiricalLatency(LatencyModel):
    """Delays drawn uniformly from ``samples_ns`` (a recorded distribution) with a seeded generator."""

    samples_ns: Sequence[int]
    seed: int = 1
    _samples: np.ndarray = field(init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples_ns, dtype=np.int64)
        if samples.size == 0 or samples.min() < 0:
            raise ValueError("an empirical latency needs at least one sample, none negative")
        self._samples = samples
        self._rng = np.random.default_rng(self.seed)

    @property
    def min_ns(self) -> int:
        return int(self._samples.min())

    def draw(self) -> int:
        return int(self._samples[self._rng.integers(len(self._samples))])

    def describe(self) -> str:
        p50, p99 = np.percentile(self._samples, [50, 99])
        return f"empirical ({len(self._samples)} samples, p50 {p50:.0f} ns, p99 {p99:.0f} ns, seed {self.seed})"
