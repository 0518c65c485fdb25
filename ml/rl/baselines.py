"""Analytic quoting baselines for both envs, their calibration on the engine env, and seeded evaluation.

A baseline maps (inventory, time left) to bid and ask offsets from the mid in its env's units (ticks and steps
on the engine env; the model's price and time units on the AS env), and an env's ``encode_quote`` turns them
into the action the agent would send, so baselines and agents are evaluated through the same ``step``:

- ``Symmetric``: ``mid -/+ half_spread`` whatever the inventory (the paper's symmetric strategy);
- ``InventorySkew``: both quotes shifted by ``skew_per_unit x q`` against the inventory at a fixed half-spread;
- ``AvellanedaStoikov``: the AS (2008) quotes of ``strategies.avellaneda`` (eqs. 29-30), ``q`` in quote units.

On the engine env a quote unit is one quote of ``size_lots``: inventory is divided by it before the formulas
(the AS model trades one unit per fill). The AS model's parameters there come from ``calibrate_engine``: the
mid's variance per step, and the fill intensity ``A exp(-k delta)`` per step fitted (least squares on its
logarithm) to the fill rates of symmetric quotes at several offsets, on seeds of their own.

``evaluate`` runs a policy over seeded episodes (the same seeds for every policy: the same flow, so differences
are the policies') and reports per-episode PnL, its mean, standard deviation and Sharpe ratio (mean / std over
episodes, no annualisation: an episode is the unit), and the mean absolute inventory over steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from strategies.avellaneda import ASParams, inventory_risk, optimal_spread

from .as_env import ASMarketEnv
from .engine_env import EngineEnvConfig, EngineMarketEnv
from .recorded_env import RecordedEnvConfig, RecordedMarketEnv

__all__ = [
    "AvellanedaStoikov",
    "EngineCalibration",
    "EvalResult",
    "InventorySkew",
    "Policy",
    "QuotingRule",
    "Symmetric",
    "baseline_policy",
    "calibrate_engine",
    "evaluate",
]

F64 = npt.NDArray[np.float64]
AnyEnv = EngineMarketEnv | ASMarketEnv
#: a policy: observation (and the env, for the analytic ones) -> action
Policy = Callable[[Any, AnyEnv], Any]


class QuotingRule(Protocol):
    def offsets(self, inventory_units: float, time_left: float) -> tuple[float, float]:
        """(bid offset, ask offset) from the mid for this inventory (quote units) and time left."""
        ...


@dataclass(frozen=True)
class Symmetric:
    half_spread: float

    def offsets(self, inventory_units: float, time_left: float) -> tuple[float, float]:
        return self.half_spread, self.half_spread


@dataclass(frozen=True)
class InventorySkew:
    half_spread: float
    #: how far both quotes move down per unit of long inventory
    skew_per_unit: float

    def offsets(self, inventory_units: float, time_left: float) -> tuple[float, float]:
        skew = self.skew_per_unit * inventory_units
        return self.half_spread + skew, self.half_spread - skew


@dataclass(frozen=True)
class AvellanedaStoikov:
    params: ASParams

    def offsets(self, inventory_units: float, time_left: float) -> tuple[float, float]:
        half = optimal_spread(time_left, self.params) / 2.0
        skew = inventory_units * inventory_risk(time_left, self.params)
        return half + skew, half - skew


def baseline_policy(rule: QuotingRule, size_lots: int = 1) -> Policy:
    """A policy that quotes ``rule``'s offsets; on the engine env with ``size_lots`` per quote, time in steps."""

    def act(obs: Any, env: AnyEnv) -> Any:
        if isinstance(env, EngineMarketEnv):
            bid, ask = rule.offsets(env.inventory / size_lots, float(env.steps_left))
            return env.encode_quote(bid, ask, size_lots)
        bid, ask = rule.offsets(float(env.inventory), env.time_left)
        return env.encode_quote(bid, ask)

    return act


class EngineCalibration(NamedTuple):
    """The engine env's market in the AS model's terms: per step and per tick."""

    #: variance of the mid's change over one step, ticks^2
    sigma2_per_step: float
    #: fill intensity A exp(-k delta): fills per step of a quote at the mid, and its decay per tick
    a_per_step: float
    k_per_tick: float

    def as_params(self, gamma_per_tick: float) -> ASParams:
        return ASParams(gamma_per_tick, math.sqrt(self.sigma2_per_step), self.k_per_tick)


def calibrate_engine(
    config: EngineEnvConfig | None = None,
    seeds: Sequence[int] = range(10_000, 10_004),
    offsets_ticks: Sequence[float] = (0.5, 1.5, 2.5, 3.5, 4.5),
) -> EngineCalibration:
    """Measures the mid's variance per step and fits the fill intensity on symmetric quotes of 1 lot (on the
    recorded env when ``config`` is a ``RecordedEnvConfig``: the data's windows drawn by ``seeds``)."""
    env = RecordedMarketEnv(config) if isinstance(config, RecordedEnvConfig) else EngineMarketEnv(config)
    moves: list[float] = []
    rates: list[float] = []
    for off in offsets_ticks:
        fills = steps = 0
        for seed in seeds:
            env.reset(seed=seed)
            action = env.encode_quote(off, off, 1)
            done = False
            while not done:
                mid = env.mid_ticks
                before = env.account.fills
                _, _, term, trunc, _ = env.step(action)
                fills += env.account.fills - before
                steps += 1
                moves.append(env.mid_ticks - mid)
                done = term or trunc
        rates.append(fills / (2.0 * steps))  # per side and step
    x = np.asarray(offsets_ticks, dtype=np.float64)
    y = np.log(np.maximum(np.asarray(rates), 1e-12))
    slope, intercept = np.polyfit(x, y, 1)
    return EngineCalibration(float(np.var(moves)), float(math.exp(intercept)), float(max(-slope, 1e-6)))


@dataclass(frozen=True)
class EvalResult:
    """Per-episode PnL (the env's mark-to-mid net PnL at the episode's end) and mean |inventory| over steps."""

    name: str
    pnl: F64
    mean_abs_inventory: F64
    steps: npt.NDArray[np.int64]

    @property
    def mean(self) -> float:
        return float(self.pnl.mean())

    @property
    def std(self) -> float:
        return float(self.pnl.std(ddof=1)) if len(self.pnl) > 1 else 0.0

    @property
    def sharpe(self) -> float:
        """Mean over standard deviation of the episode PnL (per episode, not annualised)."""
        return self.mean / self.std if self.std > 0 else math.nan

    def row(self) -> dict[str, float | str]:
        return {"policy": self.name, "episodes": len(self.pnl), "pnl_mean": self.mean, "pnl_std": self.std,
                "sharpe": self.sharpe, "mean_abs_inventory": float(self.mean_abs_inventory.mean())}  # fmt: skip


def evaluate(env: AnyEnv, policy: Policy, seeds: Sequence[int], name: str = "policy") -> EvalResult:
    """Runs one episode per seed with ``policy`` (deterministic given the seed) and collects its figures."""
    pnl, inv, steps = [], [], []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        done = False
        n = 0
        abs_inv = 0.0
        while not done:
            obs, _, term, trunc, _ = env.step(policy(obs, env))
            abs_inv += abs(env.inventory)
            n += 1
            done = term or trunc
        pnl.append(env.pnl())
        inv.append(abs_inv / n)
        steps.append(n)
    return EvalResult(name, np.array(pnl), np.array(inv), np.array(steps, dtype=np.int64))
