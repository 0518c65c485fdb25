"""The RL policy as a strategy: its observation is the env's on the same market, it backtests by name with a
policy trained and exported here, and ``proptrade strategy run --strategy rl`` quotes on the launched platform
with books equal to the engine's (the platform stopped at the end with nothing left behind)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from c_engine import EVENT_DTYPE, EventType, Units
from hotpath import L2Book
from hotpath.testing import FLOW_ONLY_CONFIG, launched_platform
from ml.rl import EngineEnvConfig, EngineMarketEnv
from ml.rl.export import export_onnx
from ml.rl.policy import OnnxPolicy
from ml.rl.strategy import RlMaker, RlMakerParams
from strategies.backtest import BacktestConfig, BacktestVenue, ConstantLatency, SyntheticSource
from strategies.registry import OPTIONS, STRATEGIES, StrategyError, build_strategy, load_plugins

SMALL: dict[str, Any] = {"horizon_steps": 100, "warmup_commands": 300}
SHM = Path("/dev/shm")


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PPO policy (a few hundred steps on the engine env), exported to ONNX."""
    config = EngineEnvConfig(**SMALL)
    norm = VecNormalize(DummyVecEnv([lambda: EngineMarketEnv(config)]))
    model = PPO("MlpPolicy", norm, seed=4, device="cpu", n_steps=128, batch_size=64, n_epochs=2)
    model.learn(256)
    return export_onnx(model, tmp_path_factory.mktemp("rl") / "rl_mm.onnx", env=EngineMarketEnv(config),
                       vecnormalize=norm)  # fmt: skip


class _Accounting:
    def __init__(self, env: EngineMarketEnv) -> None:
        self.env = env

    def position(self, client_id: int, symbol_id: int) -> int:
        return self.env.inventory


class _EnvMarket:
    """What the trading interface would show of the env's market: its book, the clock, the position."""

    client_id = 100

    def __init__(self, env: EngineMarketEnv) -> None:
        self.accounting = _Accounting(env)
        self.l2 = L2Book()
        self.now = 0

    def now_ns(self) -> int:
        return self.now

    def book(self, symbol_id: int) -> L2Book:
        return self.l2

    def symbol_id(self, symbol: str | int) -> int:
        return 0

    def units(self, symbol_id: int) -> Units:
        return Units(1.0, 1.0)

    def set_timer(self, at_ns: int) -> None:
        pass


def test_the_strategys_observation_equals_the_envs_on_the_same_market(policy_path: Path) -> None:
    config = EngineEnvConfig(**SMALL)
    env = EngineMarketEnv(config)
    policy = OnnxPolicy(policy_path)
    maker = RlMaker(RlMakerParams("SYN", max_position=config.max_position_lots), policy)
    assert maker.config == config, "the env config travels in the model's metadata"
    market = _EnvMarket(env)
    maker.on_start(market)  # type: ignore[arg-type]
    obs, _ = env.reset(seed=11)
    sid = env._sid
    for name, side in (("bids", 1), ("asks", 2)):
        for level in env.engine.l2(sid)[name]:
            market.l2.apply_delta(side, level.price, level.qty, 1, 0)
    maker.feed_book(market)  # type: ignore[arg-type]
    step_ns = config.flow_commands_per_step * config.flow_ts_step_ns
    t0 = 1 + (config.warmup_commands - 1) * config.flow_ts_step_ns
    rng = np.random.default_rng(5)
    own_events = 0
    for t in range(config.horizon_steps):
        maker.decisions = t
        mine = maker.observe(market, t0 + t * step_ns)  # type: ignore[arg-type]
        np.testing.assert_array_equal(mine, obs, err_msg=f"step {t}")
        # half the steps follow the policy, half move the quotes at random (more own-order events)
        action = policy(obs) if t % 2 else rng.uniform(-1, 1, 3).astype(np.float32)
        obs, _, terminated, truncated, _ = env.step(action)
        for e in env._block_events[-1].reshape(-1).view(EVENT_DTYPE):
            typ, side = int(e["type"]), int(e["side"])
            if typ == EventType.BOOK_DELTA:
                market.l2.apply_delta(side, int(e["price"]), int(e["qty"]), int(e["order_count"]), int(e["seq"]))
                maker.feed_book(market)  # type: ignore[arg-type]
            elif typ == EventType.TRADE:
                market.now = int(e["ts_ns"])
                maker.features.on_trade(side, int(e["price"]), int(e["qty"]), market.now)
            elif int(e["client_id"]) == config.agent_client_id:
                own_events += 1
                maker.on_own_event(typ, int(e["order_id"]), side, int(e["price"]), int(e["leaves"]))
        if terminated or truncated:
            break
    assert t == config.horizon_steps - 1 and own_events > 50
    assert env.account.fills > 0, "the agent never traded: the own-quote entries were not exercised"


def test_the_entry_point_registers_the_rl_strategy_with_its_model_option() -> None:
    load_plugins()
    assert "rl" in STRATEGIES and set(OPTIONS["rl"]) == {"model"}
    with pytest.raises(StrategyError, match="needs --model"):
        build_strategy("rl", "SYN", {})


def test_a_backtest_of_the_exported_policy_by_name_quotes_and_fills(policy_path: Path) -> None:
    maker = build_strategy("rl", "SYN", {"max_position": 50}, {"model": str(policy_path)})
    assert isinstance(maker, RlMaker)
    zero = ConstantLatency(50_000)
    result = BacktestVenue(maker, SyntheticSource(20_000, seed=3), BacktestConfig(zero, zero, zero, 0.0, 0.0)).run()
    assert maker.decisions > 100 and result.quotes_sent > 0
    assert result.fills, "the policy's quotes never filled in the backtest"


def test_proptrade_backtest_runs_the_rl_strategy_by_name(policy_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from strategies.backtest_cli import main

    assert main(["synthetic", "--messages", "5000", "--strategy", "rl", "--model", str(policy_path)]) == 0
    assert "rl on synthetic SYN" in capsys.readouterr().out


# --- live, against the launched platform -----------------------------------------------------------------------


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[str]:
    """``proptrade up`` with flow agents on a unique prefix; stopped at the end, nothing left behind."""
    with launched_platform(FLOW_ONLY_CONFIG, tmp_path) as run:
        yield run.prefix


def test_proptrade_strategy_run_rl_attaches_quotes_and_prints_books_equal_to_the_engine(
    platform: str, policy_path: Path
) -> None:
    from hotpath import Client

    run = subprocess.run([sys.executable, "-m", "hotpath.cli", "strategy", "run", "--strategy", "rl", "--model",
                          str(policy_path), "--account", "mm_1", "--prefix", platform, "--seconds", "3"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    books = json.loads(run.stdout.strip().splitlines()[-1])
    assert books["quotes_sent"] > 0
    with Client("mm_1", prefix=platform) as client:
        engine = client.request("position", client=client.client_id, symbol="SIM")
    assert (books["position"], books["cash_ticks"]) == (engine["position"], engine["cash"]), (run.stdout, engine)
    assert engine["open_orders"] == 0
