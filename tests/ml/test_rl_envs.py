"""The RL environments: both checkers, exact reproducibility, the reward's accounting, episode ends, scaling."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from ml.rl import (
    OBS_EXTRA_NAMES,
    ASEnvConfig,
    ASMarketEnv,
    ASVecEnv,
    EngineEnvConfig,
    EngineMarketEnv,
    make_vec_env,
)
from ml.rl.baselines import AvellanedaStoikov, Symmetric, baseline_policy, evaluate
from strategies.as_model import PAPER_MODEL, InventoryPolicy, simulate
from strategies.avellaneda import ASParams

SHORT = EngineEnvConfig(horizon_steps=200, warmup_commands=500)


def _run(env: EngineMarketEnv | ASMarketEnv, seed: int, steps: int, action_seed: int = 0) -> list[bytes]:
    """Observation bytes, rewards and infos of ``steps`` random-action steps (resetting at an episode's end)."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(action_seed)
    out = [obs.tobytes()]
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, reward, term, trunc, info = env.step(action)
        out += [obs.tobytes(), np.float64(reward).tobytes(), repr(sorted(info.items())).encode()]
        if term or trunc:
            obs, _ = env.reset()
            out.append(obs.tobytes())
    return out


@pytest.mark.parametrize("action_kind", ["box", "discrete"])
def test_engine_env_passes_the_gymnasium_checker(action_kind: str) -> None:
    env = EngineMarketEnv(EngineEnvConfig(horizon_steps=50, warmup_commands=300, action_kind=action_kind))  # type: ignore[arg-type]
    gym_check_env(env, skip_render_check=True)


@pytest.mark.parametrize("action_kind", ["box", "discrete"])
def test_engine_env_passes_the_stable_baselines3_checker(action_kind: str) -> None:
    env = EngineMarketEnv(EngineEnvConfig(horizon_steps=50, warmup_commands=300, action_kind=action_kind))  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning of the checker fails the test
        sb3_check_env(env, warn=True)


def test_as_env_passes_both_checkers() -> None:
    env = ASMarketEnv()
    gym_check_env(env, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)


def test_engine_env_same_seed_gives_the_same_trajectory_byte_for_byte() -> None:
    a, b = EngineMarketEnv(SHORT), EngineMarketEnv(SHORT)
    assert _run(a, 11, 450) == _run(b, 11, 450)
    assert a.engine.state_hash() == b.engine.state_hash()


def test_engine_env_other_seed_gives_another_trajectory() -> None:
    assert _run(EngineMarketEnv(SHORT), 11, 50) != _run(EngineMarketEnv(SHORT), 12, 50)


def test_engine_env_reset_with_a_seed_repeats_the_episode_on_the_same_env() -> None:
    env = EngineMarketEnv(SHORT)
    first = _run(env, 5, 120)
    assert _run(env, 5, 120) == first


def test_engine_env_rewards_sum_to_the_documented_pnl_decomposition() -> None:
    cfg = EngineEnvConfig(horizon_steps=300, warmup_commands=500, inventory_penalty=0.01, maker_fee_bps=-0.2,
                          reward_scale=1.0)  # fmt: skip
    env = EngineMarketEnv(cfg)
    env.reset(seed=3)
    rng = np.random.default_rng(1)
    total = capture = inv_pnl = fees = penalty = 0.0
    done = False
    while not done:
        _, reward, term, trunc, info = env.step(rng.uniform(-1, 1, 3).astype(np.float32))
        total += reward
        capture += info["spread_capture"]
        inv_pnl += info["inventory_pnl"]
        fees += info["fees"]
        penalty += info["penalty"]
        done = term or trunc
    assert env.account.fills > 10
    assert math.isclose(capture + inv_pnl - fees - penalty, total, rel_tol=1e-9, abs_tol=1e-6)
    # spread capture + inventory PnL - fees is the accounting's net PnL marked at the final mid
    assert math.isclose(capture + inv_pnl - fees, env.account.net(env.mid_ticks), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(total, env.pnl() - penalty, rel_tol=1e-9, abs_tol=1e-6)


def test_engine_env_accounting_equals_the_engines_position_and_cash_at_every_step() -> None:
    env = EngineMarketEnv(SHORT)
    env.reset(seed=8)
    rng = np.random.default_rng(2)
    for _ in range(200):
        env.step(rng.uniform(-1, 1, 3).astype(np.float32))
        pos = env.engine.position(env.config.agent_client_id, 0)
        assert (pos.position, pos.cash) == (env.account.position, env.account.cash_ticks)
    assert env.account.fills > 0


def test_engine_env_quotes_only_ever_fill_as_maker() -> None:
    env = EngineMarketEnv(SHORT)
    evaluate(env, lambda obs, e: np.array([-1.0, -1.0, 1.0], dtype=np.float32), [4])
    assert env.account.fills > 0
    assert env.account.maker_fills == env.account.fills


def test_engine_env_terminates_when_the_loss_kill_switch_fires() -> None:
    env = EngineMarketEnv(EngineEnvConfig(horizon_steps=2000, warmup_commands=500, max_loss=50))
    env.reset(seed=1)
    done, term, trunc = False, False, False
    while not done:
        _, _, term, trunc, _ = env.step(np.array([-1.0, 1.0, 1.0], dtype=np.float32))  # buys only: takes risk
        done = term or trunc
    assert term and not trunc
    assert env.engine.position(env.config.agent_client_id, 0).killed
    assert env.t < 2000


def test_engine_env_terminates_at_the_position_limit() -> None:
    env = EngineMarketEnv(EngineEnvConfig(horizon_steps=2000, warmup_commands=500, max_position_lots=30))
    env.reset(seed=1)
    done, term = False, False
    while not done:
        _, _, term, trunc, _ = env.step(np.array([-1.0, 1.0, 1.0], dtype=np.float32))
        done = term or trunc
    assert term and abs(env.inventory) == 30


def test_engine_env_truncates_at_the_horizon() -> None:
    env = EngineMarketEnv(SHORT)
    result = evaluate(env, baseline_policy(Symmetric(3.5), 2), [2])
    assert result.steps.tolist() == [SHORT.horizon_steps]


def test_engine_env_refuses_an_agent_client_id_inside_the_flows() -> None:
    with pytest.raises(ValueError, match="agent_client_id"):
        EngineEnvConfig(flow_clients=8, agent_client_id=8)


def test_engine_env_box_action_spans_the_documented_ranges() -> None:
    env = EngineMarketEnv()
    cfg = env.config
    assert env.decode_action(np.full(3, -1.0, dtype=np.float32)) == (cfg.min_offset_ticks, cfg.min_offset_ticks,
                                                                      cfg.min_size_lots)  # fmt: skip
    assert env.decode_action(np.full(3, 1.0, dtype=np.float32)) == (cfg.max_offset_ticks, cfg.max_offset_ticks,
                                                                     cfg.max_size_lots)  # fmt: skip
    assert env.decode_action(np.full(3, 7.0, dtype=np.float32)) == env.decode_action(np.ones(3, dtype=np.float32))
    bid, ask, size = env.decode_action(env.encode_quote(2.0, 4.5, 7))
    assert (round(bid, 5), round(ask, 5), size) == (2.0, 4.5, 7)


def test_engine_env_discrete_action_picks_the_grid() -> None:
    env = EngineMarketEnv(EngineEnvConfig(action_kind="discrete", discrete_offsets=9, discrete_sizes=5))
    assert env.decode_action(np.array([0, 8, 4])) == (0.5, 4.5, 20)
    assert env.decode_action(env.encode_quote(3.5, 1.5, 10)) == (3.5, 1.5, 10)


def test_engine_env_observation_is_finite_float32() -> None:
    env = EngineMarketEnv(SHORT)
    obs, _ = env.reset(seed=9)
    for _ in range(50):
        assert obs.dtype == np.float32 and np.isfinite(obs).all()
        obs, *_ = env.step(env.action_space.sample())


def test_as_env_rewards_sum_to_the_profit_less_penalties() -> None:
    env = ASMarketEnv(ASEnvConfig(inventory_penalty=0.05))
    env.reset(seed=4)
    rng = np.random.default_rng(3)
    total = penalty = 0.0
    done = False
    while not done:
        _, reward, term, trunc, info = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        total += reward
        penalty += info["penalty"]
        done = term or trunc
    assert math.isclose(total, env.pnl() - penalty, rel_tol=1e-9, abs_tol=1e-9)


def test_as_env_same_seed_gives_the_same_trajectory_byte_for_byte() -> None:
    assert _run(ASMarketEnv(), 21, 450) == _run(ASMarketEnv(), 21, 450)


def test_as_env_runs_the_path_that_the_simulator_runs_for_the_drawn_seed() -> None:
    params = ASParams(0.1, PAPER_MODEL.sigma_price_per_sqrt_time, PAPER_MODEL.k_per_price)
    env = ASMarketEnv(ASEnvConfig(min_offset=-20.0, max_offset=20.0))
    result = evaluate(env, baseline_policy(AvellanedaStoikov(params)), [6])
    path_seed = int(seeding.np_random(6)[0].integers(0, 2**63 - 1))
    expected = simulate(InventoryPolicy(params), 1, path_seed)
    # offsets pass through a float32 action: the same fills, a profit within float32 rounding of the offsets
    assert result.pnl[0] == pytest.approx(float(expected.profit[0]), abs=1e-3)


def test_as_vec_env_steps_each_path_as_the_single_env_does() -> None:
    vec = ASVecEnv(3)
    vec.seed(7)
    vec_obs = np.asarray(vec.reset())
    singles = [ASMarketEnv() for _ in range(3)]
    for i, env in enumerate(singles):
        obs, _ = env.reset(seed=7 + i)
        assert np.array_equal(obs, vec_obs[i])
    rng = np.random.default_rng(0)
    for _ in range(450):  # past one horizon (200 steps): resets included
        actions = rng.uniform(-1, 1, (3, 2)).astype(np.float32)
        step_obs, vec_rewards, vec_dones, vec_infos = vec.step(actions)
        vec_obs = np.asarray(step_obs)
        for i, env in enumerate(singles):
            obs, reward, term, trunc, _ = env.step(actions[i])
            if term or trunc:
                assert vec_dones[i] and np.array_equal(vec_infos[i]["terminal_observation"], obs)
                obs, _ = env.reset()
            assert np.array_equal(obs, vec_obs[i])
            assert np.float32(reward) == vec_rewards[i]


def test_engine_vec_env_steps_every_env() -> None:
    vec = make_vec_env("engine", 2, EngineEnvConfig(horizon_steps=30, warmup_commands=300), seed=3)
    obs = np.asarray(vec.reset())
    assert obs.shape == (2, len(OBS_EXTRA_NAMES) + EngineEnvConfig().feature_spec.width)
    dones = np.zeros(2, dtype=bool)
    for _ in range(30):
        _, _, dones, _ = vec.step(np.zeros((2, 3), dtype=np.float32))
    assert dones.all()
    vec.close()
