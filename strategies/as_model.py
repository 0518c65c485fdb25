"""The Avellaneda-Stoikov market model as a simulator: step by step, or vectorised over simulations.

::

    python -m strategies.as_model [--gamma 0.1 0.01 0.5] [--sims 1000] [--seed 1]

Avellaneda & Stoikov (2008), "High-frequency trading in a limit order book", Quantitative Finance 8(3), section
4, simulate their dealer in their own model; this module is that model. The mid starts at ``s`` and moves by
``+sigma * sqrt(dt)`` or ``-sigma * sqrt(dt)`` with probability 1/2 each per step of ``dt``; a quote at
distance ``delta`` from the mid is hit in a step with probability ``A * exp(-k * delta) * dt``; every trade is
one unit; after ``T / dt`` steps the profit is ``cash + q_T * s_T``. :class:`ASMarket` runs one path a step at
a time with quotes given by its caller (a reinforcement-learning environment drives it so);
:func:`simulate` runs many paths at once with a :class:`QuotingPolicy`, and :func:`paper_table` reproduces the
paper's comparison of the inventory (AS) strategy with the symmetric one.

Choices, each as the paper's section 4 describes the model, or where it is silent, said so:

- **One step.** At step ``i`` (time ``t = i * dt``, time left ``(N - i) * dt``, ``N = T / dt``) the dealer
  quotes offsets from the current mid ``s_t``; the bid is hit with probability ``min(1, A * exp(-k *
  delta_b) * dt)`` and, independently, the ask with ``min(1, A * exp(-k * delta_a) * dt)``; a hit trades one
  unit at the quoted price (cash ``-= s_t - delta_b`` on the bid, ``+= s_t + delta_a`` on the ask); then the
  mid moves. The arrivals are independent of the mid's move, as the paper's Poisson arrivals are independent of
  its Brownian motion, so whether the mid moves before or after the fills within a step changes nothing: fills
  are decided and priced against the mid the quotes were set on.
- **Both sides can fill in one step** (the two arrival processes are independent): inventory is unchanged and
  the dealer earns the whole spread.
- **Quotes are not clipped.** A large inventory can push an AS quote through the mid (a negative offset): its
  probability is then capped at 1, exactly as ``min(1, ...)`` says. Offsets must be finite.
- **The symmetric strategy** quotes ``mid -/+ spread / 2`` with one constant spread: the average, over steps
  and paths, of the spread the inventory strategy quoted in the same run (the paper: the same average spread,
  centred on the mid). The AS spread does not depend on inventory, so that average is
  ``(2 / gamma) * ln(1 + gamma / k) + gamma * sigma**2 * mean(T - t)``, the mean over the ``N`` quoting times.
- **Common random numbers.** Both strategies of a table run with the same seed: the same mid paths and the same
  arrival draws, so their difference is the strategies', not the luck's.
- **Randomness.** One ``numpy.random.Generator(PCG64(seed))`` per run; each step draws three uniforms per path in
  the order (mid, bid, ask). :class:`ASMarket` draws its whole path's ``(N, 3)`` block at reset, which is the same
  stream as ``simulate(..., n_sims=1)``: the same seed gives the same path, fill for fill, in both.
- **Statistics.** Standard deviations are sample ones (``ddof=1``).

With the paper's parameters (``s = 100, sigma = 2, T = 1, dt = 0.005, k = 1.5, A = 140``, 1000 paths) the
gamma = 0.1 and gamma = 0.01 tables come out as the paper's; the gamma = 0.5 one does not: with the spread the
formula gives (about 2.15 on average) the symmetric strategy earns about 60 and the inventory one about 49
(expectations from 10^5 paths), against the paper's 66.2 and 33.9; docs/STRATEGIES.md gives the figures.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from .avellaneda import ASParams, GLFTParams, glft_skew_and_half_spread, inventory_risk, optimal_spread

__all__ = [
    "ASMarket",
    "GLFTPolicy",
    "InventoryPolicy",
    "MarketState",
    "ModelParams",
    "PAPER_GAMMAS",
    "PAPER_MODEL",
    "PAPER_PROFITS",
    "PaperProfit",
    "QuotingPolicy",
    "SimulationResult",
    "StepResult",
    "SymmetricPolicy",
    "TableRow",
    "main",
    "paper_table",
    "simulate",
    "symmetric_row",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: how far horizon_time / step_time may be from a whole number of steps (relative)
_STEP_COUNT_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The market of Avellaneda & Stoikov (2008), section 4: mid, volatility, horizon, step and fill intensity."""

    #: mid price s at time 0, price units
    start_mid_price: float
    #: mid-price volatility sigma, price units per square root of a time unit
    sigma_price_per_sqrt_time: float
    #: horizon T, time units; the profit is marked at T
    horizon_time: float
    #: step dt, time units; horizon_time must be a whole number of steps
    step_time: float
    #: decay k of the fill intensity A * exp(-k * delta) with the quote's distance delta, per price unit
    k_per_price: float
    #: scale A of the fill intensity A * exp(-k * delta): fills per time unit of a quote at the mid
    a_per_time: float

    def __post_init__(self) -> None:
        for name in ("sigma_price_per_sqrt_time", "horizon_time", "step_time", "k_per_price", "a_per_time"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not math.isfinite(self.start_mid_price):
            raise ValueError(f"start_mid_price must be finite, got {self.start_mid_price!r}")
        steps = self.horizon_time / self.step_time
        if round(steps) < 1 or abs(steps - round(steps)) > _STEP_COUNT_TOLERANCE * steps:
            raise ValueError(
                f"horizon_time ({self.horizon_time!r}) must be a whole number >= 1 of step_time ({self.step_time!r})"
            )

    @property
    def n_steps(self) -> int:
        """N = T / dt, the number of quoting steps."""
        return round(self.horizon_time / self.step_time)

    def time_left(self, step: int) -> float:
        """T - t at the start of step ``step`` (0-based), as ``(N - step) * dt`` so no rounding accumulates."""
        return (self.n_steps - step) * self.step_time


#: the parameters of the paper's section 4 simulations
PAPER_MODEL = ModelParams(
    start_mid_price=100.0,
    sigma_price_per_sqrt_time=2.0,
    horizon_time=1.0,
    step_time=0.005,
    k_per_price=1.5,
    a_per_time=140.0,
)
#: the risk aversions of the paper's three tables, in its order
PAPER_GAMMAS = (0.1, 0.01, 0.5)


class PaperProfit(NamedTuple):
    """A profit mean and standard deviation over the paper's 1000 simulations."""

    mean: float
    std: float


#: gamma -> (inventory strategy, symmetric strategy) profits of the paper's tables (section 4)
PAPER_PROFITS: dict[float, tuple[PaperProfit, PaperProfit]] = {
    0.1: (PaperProfit(65.0, 6.6), PaperProfit(68.4, 12.7)),
    0.01: (PaperProfit(68.6, 8.7), PaperProfit(68.8, 12.8)),
    0.5: (PaperProfit(33.9, 4.7), PaperProfit(66.2, 14.5)),
}


class QuotingPolicy(Protocol):
    """Quotes for every path at once: the bid and ask offsets from the mid (either may be a scalar)."""

    def offsets(
        self, time_left: float, mid: FloatArray, inventory: IntArray
    ) -> tuple[FloatArray | float, FloatArray | float]:
        """(bid offset, ask offset) at time left T - t, for paths with these mids and inventories."""
        ...


@dataclass(frozen=True, slots=True)
class InventoryPolicy:
    """The AS inventory strategy: ``r -/+ spread / 2`` (Avellaneda & Stoikov 2008, eqs. 29-30)."""

    params: ASParams

    def offsets(self, time_left: float, mid: FloatArray, inventory: IntArray) -> tuple[FloatArray, FloatArray]:
        half = optimal_spread(time_left, self.params) / 2.0
        skew = inventory.astype(np.float64) * inventory_risk(time_left, self.params)
        return half + skew, half - skew


@dataclass(frozen=True, slots=True)
class SymmetricPolicy:
    """The symmetric strategy: ``mid -/+ spread / 2`` whatever the inventory."""

    #: total width ask - bid, price units
    spread_price: float

    def offsets(self, time_left: float, mid: FloatArray, inventory: IntArray) -> tuple[float, float]:
        half = self.spread_price / 2.0
        return half, half


@dataclass(frozen=True, slots=True)
class GLFTPolicy:
    """The Gueant-Lehalle-Fernandez-Tapia (2013) closed-form quotes, which ignore the time left."""

    params: GLFTParams

    def offsets(self, time_left: float, mid: FloatArray, inventory: IntArray) -> tuple[FloatArray, FloatArray]:
        skew_per_unit, half = glft_skew_and_half_spread(1.0, self.params)
        skew = inventory.astype(np.float64) * skew_per_unit
        return half + skew, half - skew


class TableRow(NamedTuple):
    """One strategy's row of the paper's tables."""

    spread: float
    profit_mean: float
    profit_std: float
    final_inventory_mean: float
    final_inventory_std: float


@dataclass(frozen=True)
class SimulationResult:
    """Per path: the terminal profit ``cash + q_T * s_T``, inventory, mid and cash, and the average spread."""

    profit: FloatArray
    final_inventory: IntArray
    final_mid: FloatArray
    cash: FloatArray
    #: time average of (bid offset + ask offset) over the path's steps
    average_spread: FloatArray

    def row(self) -> TableRow:
        """Means and sample standard deviations over the paths."""
        return TableRow(
            float(self.average_spread.mean()),
            float(self.profit.mean()),
            float(self.profit.std(ddof=1)),
            float(self.final_inventory.mean()),
            float(self.final_inventory.std(ddof=1)),
        )


def _sure_fill_offset(model: ModelParams) -> float:
    """The offset at and under which A * exp(-k * delta) * dt >= 1: a quote there is always hit."""
    return math.log(model.a_per_time * model.step_time) / model.k_per_price


def simulate(policy: QuotingPolicy, n_sims: int, seed: int, model: ModelParams = PAPER_MODEL) -> SimulationResult:
    """Runs ``n_sims`` independent paths of the model with ``policy``'s quotes, all paths in each numpy step."""
    if n_sims < 1:
        raise ValueError(f"n_sims must be >= 1, got {n_sims!r}")
    rng = np.random.Generator(np.random.PCG64(seed))
    move = model.sigma_price_per_sqrt_time * math.sqrt(model.step_time)
    a_dt, k = model.a_per_time * model.step_time, model.k_per_price
    sure = _sure_fill_offset(model)
    mid = np.full(n_sims, model.start_mid_price)
    inventory = np.zeros(n_sims, dtype=np.int64)
    cash = np.zeros(n_sims)
    spread_sum = np.zeros(n_sims)
    for step in range(model.n_steps):
        bid_arg, ask_arg = policy.offsets(model.time_left(step), mid, inventory)
        bid_offset = np.broadcast_to(np.asarray(bid_arg, dtype=np.float64), (n_sims,))
        ask_offset = np.broadcast_to(np.asarray(ask_arg, dtype=np.float64), (n_sims,))
        if not (np.isfinite(bid_offset).all() and np.isfinite(ask_offset).all()):
            raise ValueError(f"the policy quoted a non-finite offset at step {step}")
        u_mid, u_bid, u_ask = rng.random((3, n_sims))
        # exp only of offsets above the sure-fill one, so a far-through quote cannot overflow it
        bid_hit = (bid_offset <= sure) | (u_bid < a_dt * np.exp(-k * np.maximum(bid_offset, sure)))
        ask_hit = (ask_offset <= sure) | (u_ask < a_dt * np.exp(-k * np.maximum(ask_offset, sure)))
        cash -= np.where(bid_hit, mid - bid_offset, 0.0)
        cash += np.where(ask_hit, mid + ask_offset, 0.0)
        inventory += bid_hit
        inventory -= ask_hit
        spread_sum += bid_offset + ask_offset
        mid = mid + np.where(u_mid < 0.5, move, -move)
    return SimulationResult(
        profit=cash + inventory * mid,
        final_inventory=inventory,
        final_mid=mid,
        cash=cash,
        average_spread=spread_sum / model.n_steps,
    )


def symmetric_row(spread_price: float, model: ModelParams = PAPER_MODEL) -> TableRow:
    """The exact expectations of the symmetric strategy at ``spread_price``, the row that ``simulate`` estimates.

    With ``delta = spread / 2`` and ``p = min(1, A * exp(-k * delta) * dt)`` per side and step, the profit is
    the spread earned, ``delta`` per fill, plus ``sum q_(i+1) * (s_(i+1) - s_i)``, whose terms have mean 0 and
    no covariance (each mid move is independent of everything before it and of its step's fills). Each step
    changes q by a bid fill minus an ask fill, of variance ``v = 2 * p * (1 - p)``, so over N steps:
    ``E[profit] = 2 * p * delta * N``, ``Var[profit] = delta**2 * v * N + sigma**2 * dt * v * N * (N + 1) / 2``,
    ``E[q_T] = 0``, ``Var[q_T] = v * N``.
    """
    delta = spread_price / 2.0
    p = min(1.0, model.a_per_time * model.step_time * math.exp(-model.k_per_price * delta))
    n, v = model.n_steps, 2.0 * p * (1.0 - p)
    profit_var = delta**2 * v * n + model.sigma_price_per_sqrt_time**2 * model.step_time * v * n * (n + 1) / 2.0
    return TableRow(spread_price, 2.0 * p * delta * n, math.sqrt(profit_var), 0.0, math.sqrt(v * n))


def paper_table(
    gamma: float, n_sims: int, seed: int, model: ModelParams = PAPER_MODEL
) -> tuple[SimulationResult, SimulationResult]:
    """The paper's comparison at risk aversion ``gamma``: (inventory strategy, symmetric strategy), the symmetric
    one at the inventory one's average spread, both on the same seed."""
    params = ASParams(gamma, model.sigma_price_per_sqrt_time, model.k_per_price)
    inventory = simulate(InventoryPolicy(params), n_sims, seed, model)
    symmetric = simulate(SymmetricPolicy(float(inventory.average_spread.mean())), n_sims, seed, model)
    return inventory, symmetric


class MarketState(NamedTuple):
    """Where a path stands: time, mid, inventory (units) and cash."""

    time: float
    mid: float
    inventory: int
    cash: float


class StepResult(NamedTuple):
    """What one step did: which quotes were hit, and the state after the step's mid move."""

    bid_filled: bool
    ask_filled: bool
    #: the mid after the step's move
    mid: float
    inventory: int
    cash: float
    time: float
    #: the horizon is reached: no further step
    done: bool


class ASMarket:
    """One path of the model, a step at a time, with quotes chosen by the caller at each step.

    ``reset(seed)`` starts a path (the first reset needs a seed; a later ``reset()`` without one starts the next
    path on the same generator); ``step(bid_offset, ask_offset)`` quotes at those distances from the current mid
    for one ``dt``. After ``n_steps`` steps the path is done and ``profit`` is ``cash + q_T * s_T``.
    """

    def __init__(self, model: ModelParams = PAPER_MODEL) -> None:
        self.model = model
        self._rng: np.random.Generator | None = None
        self._draws: list[list[float]] = []
        self._move = model.sigma_price_per_sqrt_time * math.sqrt(model.step_time)
        self._a_dt = model.a_per_time * model.step_time
        self._k = model.k_per_price
        self._sure = _sure_fill_offset(model)
        self._step = 0
        self._mid = model.start_mid_price
        self._inventory = 0
        self._cash = 0.0

    def reset(self, seed: int | None = None) -> MarketState:
        """Starts a path: mid at ``start_mid_price``, no inventory, no cash, time 0."""
        if seed is not None:
            self._rng = np.random.Generator(np.random.PCG64(seed))
        elif self._rng is None:
            raise ValueError("the first reset needs a seed")
        # the whole path's draws at once: the same stream as simulate(n_sims=1), and no numpy call per step
        self._draws = self._rng.random((self.model.n_steps, 3)).tolist()
        self._step = 0
        self._mid = self.model.start_mid_price
        self._inventory = 0
        self._cash = 0.0
        return self.state

    def step(self, bid_offset: float, ask_offset: float) -> StepResult:
        """Quotes ``mid - bid_offset`` and ``mid + ask_offset`` for one step; fills, then the mid moves."""
        if self._step >= len(self._draws):
            raise RuntimeError("the path is done (or was never reset): call reset()")
        if not (math.isfinite(bid_offset) and math.isfinite(ask_offset)):
            raise ValueError(f"offsets must be finite, got bid {bid_offset!r}, ask {ask_offset!r}")
        u_mid, u_bid, u_ask = self._draws[self._step]
        mid = self._mid
        bid_hit = bid_offset <= self._sure or u_bid < self._a_dt * math.exp(-self._k * bid_offset)
        ask_hit = ask_offset <= self._sure or u_ask < self._a_dt * math.exp(-self._k * ask_offset)
        if bid_hit:
            self._cash -= mid - bid_offset
            self._inventory += 1
        if ask_hit:
            self._cash += mid + ask_offset
            self._inventory -= 1
        self._mid = mid + (self._move if u_mid < 0.5 else -self._move)
        self._step += 1
        return StepResult(
            bid_hit, ask_hit, self._mid, self._inventory, self._cash, self.time, self._step == len(self._draws)
        )

    @property
    def state(self) -> MarketState:
        return MarketState(self.time, self._mid, self._inventory, self._cash)

    @property
    def time(self) -> float:
        """t = steps taken * dt."""
        return self._step * self.model.step_time

    @property
    def time_left(self) -> float:
        """T - t, as the policies take it."""
        return self.model.time_left(self._step)

    @property
    def done(self) -> bool:
        return self._step >= len(self._draws)

    @property
    def profit(self) -> float:
        """cash + q * s: the path's profit marked at the current mid."""
        return self._cash + self._inventory * self._mid


def _format_rows(gamma: float, inventory: SimulationResult, symmetric: SimulationResult) -> list[str]:
    paper = PAPER_PROFITS.get(gamma)
    lines = [f"gamma = {gamma:g}"]
    header = f"  {'strategy':<10} {'spread':>7} {'profit':>8} {'std':>7} {'final q':>8} {'std q':>6}"
    lines.append(header + ("   paper: profit    std" if paper else ""))
    for i, (name, result) in enumerate((("inventory", inventory), ("symmetric", symmetric))):
        row = result.row()
        line = (
            f"  {name:<10} {row.spread:7.3f} {row.profit_mean:8.2f} {row.profit_std:7.2f}"
            f" {row.final_inventory_mean:8.3f} {row.final_inventory_std:6.2f}"
        )
        if paper:
            line += f"   {paper[i].mean:13.1f} {paper[i].std:6.1f}"
        lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the paper's tables from this simulator, beside the paper's profit figures."""
    parser = argparse.ArgumentParser(
        prog="python -m strategies.as_model", description="Avellaneda-Stoikov (2008) section 4 tables."
    )
    parser.add_argument("--gamma", type=float, nargs="+", default=list(PAPER_GAMMAS), help="risk aversions")
    parser.add_argument("--sims", type=int, default=1000, help="simulations per strategy (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="PCG64 seed, the same for both strategies")
    args = parser.parse_args(argv)
    if args.sims < 2:
        parser.error("--sims must be >= 2 (a standard deviation needs two paths)")
    for gamma in args.gamma:
        if not (math.isfinite(gamma) and gamma >= 0.0):
            parser.error(f"--gamma must be >= 0, got {gamma!r}")
    m = PAPER_MODEL
    print(
        f"s = {m.start_mid_price:g}, sigma = {m.sigma_price_per_sqrt_time:g}, T = {m.horizon_time:g},"
        f" dt = {m.step_time:g}, k = {m.k_per_price:g}, A = {m.a_per_time:g};"
        f" {args.sims} simulations, seed {args.seed}"
    )
    for gamma in args.gamma:
        print()
        print("\n".join(_format_rows(gamma, *paper_table(gamma, args.sims, args.seed))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
