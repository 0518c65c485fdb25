"""The Avellaneda-Stoikov market simulator, and the tables of the paper's section 4 reproduced with it.

Acceptance for the paper's tables (1000 paths per strategy, seed 1, the command docs/STRATEGIES.md cites): a
profit mean is reproduced when it is within one combined standard error of the paper's,
``sqrt(std_ours**2 / 1000 + std_paper**2 / 1000)`` (each mean's standard error over its 1000 paths, added in
quadrature, since both are estimates); a profit standard deviation when it is within 10% of the paper's.
With one combined standard error a run that reproduces the paper's expectations exactly passes a mean
cell about 84% of the time, so the seed matters: seed 1 is the documented command's, fixed before any run,
and 23 of seeds 1-40 pass all eight gamma = 0.1 and 0.01 cells. The expectations are checked too, against the
paper's own standard error: the symmetric strategy's exact moments (no seed), and the inventory strategy's
estimated over 20000 paths. The gamma = 0.1 and 0.01 tables pass; the gamma = 0.5 table cannot
(see ``test_paper_table_at_gamma_0_5_is_not_reproduced``), so only what holds there is checked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategies.as_model import (
    PAPER_MODEL,
    PAPER_PROFITS,
    ASMarket,
    GLFTPolicy,
    InventoryPolicy,
    ModelParams,
    SimulationResult,
    SymmetricPolicy,
    main,
    paper_table,
    simulate,
    symmetric_row,
)
from strategies.avellaneda import ASParams, GLFTParams, as_quotes

N_SIMS = 1000
SEED = 1
AS_01 = ASParams(0.1, PAPER_MODEL.sigma_price_per_sqrt_time, PAPER_MODEL.k_per_price)


@pytest.fixture(scope="module")
def tables() -> dict[float, tuple[SimulationResult, SimulationResult]]:
    return {gamma: paper_table(gamma, N_SIMS, SEED) for gamma in PAPER_PROFITS}


def _combined_standard_error(ours_std: float, paper_std: float) -> float:
    return math.sqrt(ours_std**2 / N_SIMS + paper_std**2 / N_SIMS)


@pytest.mark.parametrize("gamma", [0.1, 0.01])
@pytest.mark.parametrize("strategy", [0, 1], ids=["inventory", "symmetric"])
def test_paper_profit_is_reproduced(
    tables: dict[float, tuple[SimulationResult, SimulationResult]], gamma: float, strategy: int
) -> None:
    row = tables[gamma][strategy].row()
    paper = PAPER_PROFITS[gamma][strategy]
    assert abs(row.profit_mean - paper.mean) <= _combined_standard_error(row.profit_std, paper.std)
    assert abs(row.profit_std / paper.std - 1.0) <= 0.10


@pytest.mark.parametrize("gamma", [0.1, 0.01])
def test_symmetric_strategy_expectation_is_within_the_papers_standard_error(gamma: float) -> None:
    # seed-free: the exact moments, against the paper's mean +/- its own standard error std / sqrt(1000)
    spread = (2 / gamma) * math.log1p(gamma / 1.5) + gamma * 4.0 * (1.0 + 0.005) / 2
    exact, paper = symmetric_row(spread), PAPER_PROFITS[gamma][1]
    assert abs(exact.profit_mean - paper.mean) <= paper.std / math.sqrt(N_SIMS)
    assert abs(exact.profit_std / paper.std - 1.0) <= 0.10


@pytest.mark.parametrize("gamma", [0.1, 0.01])
def test_inventory_strategy_expectation_is_within_the_papers_standard_error(gamma: float) -> None:
    # 20000 paths estimate the expectation; combined standard error sqrt(ours**2 / 20000 + paper**2 / 1000)
    n = 20_000
    row, paper = simulate(InventoryPolicy(ASParams(gamma, 2.0, 1.5)), n, SEED).row(), PAPER_PROFITS[gamma][0]
    assert abs(row.profit_mean - paper.mean) <= math.sqrt(row.profit_std**2 / n + paper.std**2 / N_SIMS)
    assert abs(row.profit_std / paper.std - 1.0) <= 0.10


@pytest.mark.xfail(strict=True, reason="the paper's gamma = 0.5 profits are far from this model's; see docs")
@pytest.mark.parametrize("strategy", [0, 1], ids=["inventory", "symmetric"])
def test_paper_table_at_gamma_0_5_is_not_reproduced(
    tables: dict[float, tuple[SimulationResult, SimulationResult]], strategy: int
) -> None:
    row = tables[0.5][strategy].row()
    paper = PAPER_PROFITS[0.5][strategy]
    assert abs(row.profit_mean - paper.mean) <= _combined_standard_error(row.profit_std, paper.std)


@pytest.mark.parametrize("gamma", [0.1, 0.01, 0.5])
def test_the_spread_column_is_the_as_spread_averaged_over_the_quoting_times(
    tables: dict[float, tuple[SimulationResult, SimulationResult]], gamma: float
) -> None:
    # (2 / gamma) * ln(1 + gamma / k) + gamma * sigma**2 * mean(T - t_i), mean over t_i = 0, dt, ..., T - dt
    expected = (2 / gamma) * math.log1p(gamma / 1.5) + gamma * 4.0 * (1.0 + 0.005) / 2
    inventory, symmetric = tables[gamma]
    assert inventory.row().spread == pytest.approx(expected, rel=1e-12)
    assert symmetric.row().spread == pytest.approx(expected, rel=1e-12)
    assert np.ptp(inventory.average_spread) < 1e-12  # the AS spread does not depend on the path


@pytest.mark.parametrize("gamma", [0.1, 0.01, 0.5])
def test_symmetric_strategy_matches_its_exact_expectations(
    tables: dict[float, tuple[SimulationResult, SimulationResult]], gamma: float
) -> None:
    symmetric = tables[gamma][1]
    row, exact = symmetric.row(), symmetric_row(symmetric.row().spread)
    # three standard errors: of a mean, std / sqrt(n); of a standard deviation, about std / sqrt(2 n)
    assert abs(row.profit_mean - exact.profit_mean) <= 3 * exact.profit_std / math.sqrt(N_SIMS)
    assert abs(row.profit_std - exact.profit_std) <= 3 * exact.profit_std / math.sqrt(2 * N_SIMS)
    assert abs(row.final_inventory_mean) <= 3 * exact.final_inventory_std / math.sqrt(N_SIMS)
    assert abs(row.final_inventory_std - exact.final_inventory_std) <= 3 * exact.final_inventory_std / math.sqrt(
        2 * N_SIMS
    )


@pytest.mark.parametrize("gamma", [0.1, 0.01, 0.5])
def test_inventory_strategy_has_less_risk_and_less_profit_than_the_symmetric_one(
    tables: dict[float, tuple[SimulationResult, SimulationResult]], gamma: float
) -> None:
    inventory, symmetric = (result.row() for result in tables[gamma])
    assert inventory.profit_std < symmetric.profit_std
    assert inventory.final_inventory_std < symmetric.final_inventory_std
    assert inventory.profit_mean < symmetric.profit_mean
    assert abs(inventory.final_inventory_mean) <= 3 * inventory.final_inventory_std / math.sqrt(N_SIMS)


def test_more_risk_aversion_holds_less_inventory(
    tables: dict[float, tuple[SimulationResult, SimulationResult]],
) -> None:
    stds = [tables[gamma][0].row().final_inventory_std for gamma in (0.01, 0.1, 0.5)]
    assert stds[0] > stds[1] > stds[2]


def test_the_same_seed_gives_identical_results_and_another_seed_others() -> None:
    policy = InventoryPolicy(AS_01)
    a, b, c = simulate(policy, 50, 7), simulate(policy, 50, 7), simulate(policy, 50, 8)
    for name in ("profit", "final_inventory", "final_mid", "cash", "average_spread"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.profit, c.profit)


def test_stepping_by_hand_is_the_same_path_as_one_vectorised_simulation() -> None:
    market = ASMarket()
    for seed in (3, 4):
        state = market.reset(seed)
        while not market.done:
            bid, ask = as_quotes(state.mid, state.inventory, market.time_left, AS_01)
            step = market.step(state.mid - bid, ask - state.mid)
            state = market.state
            assert (step.mid, step.inventory, step.cash) == (state.mid, state.inventory, state.cash)
        vectorised = simulate(InventoryPolicy(AS_01), 1, seed)
        assert market.state.inventory == vectorised.final_inventory[0]
        assert market.state.mid == pytest.approx(vectorised.final_mid[0], rel=1e-15)
        assert market.state.cash == pytest.approx(vectorised.cash[0], rel=1e-13)
        assert market.profit == pytest.approx(vectorised.profit[0], rel=1e-13)


def test_a_step_trades_one_unit_at_the_quoted_prices_and_moves_the_mid_by_sigma_sqrt_dt() -> None:
    market = ASMarket()
    market.reset(11)
    move = 2.0 * math.sqrt(0.005)
    for _ in range(50):
        before = market.state
        step = market.step(0.3, 0.4)
        assert abs(step.mid - before.mid) == pytest.approx(move, rel=1e-12)
        assert step.inventory - before.inventory == int(step.bid_filled) - int(step.ask_filled)
        cash = before.cash - (before.mid - 0.3) * step.bid_filled + (before.mid + 0.4) * step.ask_filled
        assert step.cash == pytest.approx(cash, rel=1e-15)
        assert step.time == pytest.approx(before.time + 0.005, rel=1e-12)


def test_a_quote_through_the_mid_always_fills_and_a_far_one_never() -> None:
    market = ASMarket()
    market.reset(5)
    for _ in range(PAPER_MODEL.n_steps):
        step = market.step(-1000.0, 60.0)
        assert step.bid_filled and not step.ask_filled
    assert market.state.inventory == PAPER_MODEL.n_steps
    through = simulate(SymmetricPolicy(-2000.0), 20, 5)
    assert np.array_equal(through.final_inventory, np.zeros(20))  # both sides every step
    # each step buys at mid + 1000 and sells at mid - 1000
    assert np.allclose(through.cash, -2000.0 * PAPER_MODEL.n_steps)


def test_the_path_ends_after_n_steps() -> None:
    market = ASMarket()
    market.reset(1)
    results = [market.step(0.7, 0.7) for _ in range(PAPER_MODEL.n_steps)]
    assert [r.done for r in results] == [False] * (PAPER_MODEL.n_steps - 1) + [True]
    assert results[-1].time == pytest.approx(PAPER_MODEL.horizon_time, rel=1e-12)
    with pytest.raises(RuntimeError, match="done"):
        market.step(0.7, 0.7)


def test_the_first_reset_needs_a_seed_and_a_later_one_starts_the_next_path() -> None:
    market = ASMarket()
    with pytest.raises(ValueError, match="seed"):
        market.reset()
    with pytest.raises(RuntimeError, match="reset"):
        market.step(0.7, 0.7)
    market.reset(9)
    first = [market.step(0.7, 0.7).mid for _ in range(20)]
    market.reset()
    second = [market.step(0.7, 0.7).mid for _ in range(20)]
    market.reset(9)
    again = [market.step(0.7, 0.7).mid for _ in range(20)]
    assert first == again
    assert first != second


def test_a_non_finite_offset_is_refused() -> None:
    market = ASMarket()
    market.reset(1)
    with pytest.raises(ValueError, match="finite"):
        market.step(math.nan, 0.5)
    with pytest.raises(ValueError, match="non-finite"):
        simulate(SymmetricPolicy(math.inf), 3, 1)


def test_glft_policy_keeps_inventory_closer_to_zero_than_the_symmetric_one() -> None:
    m = PAPER_MODEL
    glft = simulate(GLFTPolicy(GLFTParams(0.1, m.sigma_price_per_sqrt_time, m.k_per_price, m.a_per_time)), 500, 2)
    symmetric = simulate(SymmetricPolicy(float(glft.average_spread.mean())), 500, 2)
    assert glft.row().final_inventory_std < symmetric.row().final_inventory_std / 2


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("step_time", 0.003, "whole number"),
        ("step_time", 2.0, "whole number"),
        ("a_per_time", 0.0, "a_per_time"),
        ("sigma_price_per_sqrt_time", -1.0, "sigma_price_per_sqrt_time"),
        ("start_mid_price", math.nan, "start_mid_price"),
    ],
)
def test_model_params_refuse_a_bad_value(field: str, value: float, match: str) -> None:
    kwargs = {
        "start_mid_price": 100.0,
        "sigma_price_per_sqrt_time": 2.0,
        "horizon_time": 1.0,
        "step_time": 0.005,
        "k_per_price": 1.5,
        "a_per_time": 140.0,
        field: value,
    }
    with pytest.raises(ValueError, match=match):
        ModelParams(**kwargs)


def test_paper_model_has_two_hundred_steps_and_exact_times_left() -> None:
    assert PAPER_MODEL.n_steps == 200
    assert PAPER_MODEL.time_left(0) == 1.0
    assert PAPER_MODEL.time_left(199) == pytest.approx(0.005, rel=1e-15)


def test_main_prints_the_table_beside_the_paper(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--gamma", "0.1", "--sims", "200", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "k = 1.5, A = 140; 200 simulations, seed 1" in out
    assert "inventory" in out and "symmetric" in out and "65.0" in out and "68.4" in out
