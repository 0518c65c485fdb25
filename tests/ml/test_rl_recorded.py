"""The recorded-data env: both checkers, exact reproducibility, the reward's accounting, LOBSTER windows that are
LobsterSource's replay, Binance through BinanceSource, and the command line."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from c_engine import Engine, SymbolConfig, record_commands, record_lobster
from c_engine.flow import SyntheticFlow
from ml.rl.cli import main
from ml.rl.recorded import LobsterDay, load_market_data
from ml.rl.recorded_env import RecordedEnvConfig, RecordedMarketEnv
from strategies.backtest import MarketSource
from strategies.backtest.binance_source import BinanceSource
from strategies.backtest.lobster_source import LobsterSource

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
AAPL = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
BINANCE = DATA / "binance" / "usdm_btcusdt_20240808.gz"


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent: the real market data samples live in ../shared/data beside the project")


@pytest.fixture(scope="module")
def commands_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of seeded synthetic flow on one symbol (one command a millisecond), recorded as engine commands."""
    symbol = SymbolConfig("SYN", tick_size=0.01, lot_size=1)
    engine = Engine()
    sid = engine.add_symbol(symbol)
    flow = SyntheticFlow(sid, seed=5, mid=10_000)
    blocks = []
    for i in range(20):
        block = flow.next_batch(1000, 1_000_000 + i * 1_000_000_000, 1_000_000)
        flow.observe(engine.execute_batch(block))
        blocks.append(block)
    path = tmp_path_factory.mktemp("rec") / "flow.parquet"
    record_commands(np.concatenate(blocks), [symbol], path, origin="synthetic seed=5")
    return path


def _config(data: Path, **fields: object) -> RecordedEnvConfig:
    base: dict[str, object] = {"horizon_steps": 100, "step_ns": 100_000_000, "warmup_ns": 1_000_000_000}
    return RecordedEnvConfig(data=str(data), **(base | fields))  # type: ignore[arg-type]


def _run(env: RecordedMarketEnv, seed: int, steps: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=seed)
    out = [obs.tobytes(), repr(info).encode()]
    for _ in range(steps):
        obs, reward, term, trunc, info = env.step(rng.uniform(-1, 1, 3).astype(np.float32))
        out += [obs.tobytes(), np.float64(reward).tobytes(), repr(sorted(info.items())).encode()]
        if term or trunc:
            obs, _ = env.reset()
            out.append(obs.tobytes())
    return out


def test_recorded_env_on_a_commands_recording_passes_both_checkers(commands_recording: Path) -> None:
    env = RecordedMarketEnv(_config(commands_recording, horizon_steps=30))
    gym_check_env(env, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)


def test_recorded_env_on_a_lobster_day_passes_both_checkers() -> None:
    _need(AAPL)
    env = RecordedMarketEnv(_config(AAPL, horizon_steps=30))
    gym_check_env(env, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)


def test_recorded_env_same_seed_gives_the_same_trajectory_byte_for_byte(commands_recording: Path) -> None:
    a, b = RecordedMarketEnv(_config(commands_recording)), RecordedMarketEnv(_config(commands_recording))
    assert _run(a, 3, 250) == _run(b, 3, 250)
    assert a.engine.state_hash() == b.engine.state_hash()


def test_recorded_env_draws_another_window_for_another_seed(commands_recording: Path) -> None:
    env = RecordedMarketEnv(_config(commands_recording))
    starts = {env.reset(seed=s)[1]["start_ns"] for s in range(5)}
    assert len(starts) == 5
    lo = 1_000_000 + 1_000_000_000  # the data's first command plus the warm-up
    assert all(lo <= s <= 1_000_000 + 20_000_000_000 for s in starts)


def test_lobster_windows_repeat_byte_for_byte() -> None:
    _need(AAPL)
    assert _run(RecordedMarketEnv(_config(AAPL)), 7, 150) == _run(RecordedMarketEnv(_config(AAPL)), 7, 150)


class _WholeDay:
    """The day as LobsterSource replays it, from its first row (no seek): what a window of row 1 must equal."""

    def __init__(self, day: LobsterDay) -> None:
        self.name, self.start_ns, self.end_ns = "whole", day.start_ns, day.end_ns

    def source(self, start_ns: int) -> MarketSource:
        return LobsterSource(AAPL, str(AAPL).replace("_message_", "_orderbook_"))


def test_a_lobster_window_from_the_first_row_is_lobster_sources_replay() -> None:
    _need(AAPL)
    # a horizon longer than the sample: the only window starts after the warm-up, seeded from row 1
    cfg = _config(AAPL, horizon_steps=2000, warmup_ns=0)
    day = load_market_data(AAPL)
    assert isinstance(day, LobsterDay)
    window, whole = RecordedMarketEnv(cfg), RecordedMarketEnv(cfg, data=_WholeDay(day))
    assert _run(window, 1, 400) == _run(whole, 1, 400)
    assert window.account.fills > 0
    assert window.engine.state_hash() == whole.engine.state_hash()


def test_a_later_lobster_window_is_seeded_from_its_own_row() -> None:
    _need(AAPL)
    day = load_market_data(AAPL)
    assert isinstance(day, LobsterDay)
    source = day.source(int(day.times[500]))
    assert source.row == 500
    env = RecordedMarketEnv(_config(AAPL, horizon_steps=50))
    env.reset(seed=2)
    for level in env.engine.l2(env._sid)["bids"][:1]:  # the engine's touch is a price of the day's book
        assert level.price * day.tick in day.lines[:, 2]


def test_a_lobster_recording_replays_as_its_csv_files(tmp_path: Path) -> None:
    _need(AAPL)
    recording = tmp_path / "aapl.parquet"
    record_lobster(AAPL, str(AAPL).replace("_message_", "_orderbook_"), recording)
    from_csv, from_recording = RecordedMarketEnv(_config(AAPL)), RecordedMarketEnv(_config(recording))
    assert _run(from_csv, 5, 150) == _run(from_recording, 5, 150)


def test_recorded_env_rewards_sum_to_the_pnl_and_the_accounting_is_the_engines() -> None:
    _need(AAPL)
    env = RecordedMarketEnv(_config(AAPL, horizon_steps=300, inventory_penalty=0.01, maker_fee_bps=-0.5))
    env.reset(seed=4)
    rng = np.random.default_rng(1)
    total = penalty = 0.0
    done = False
    while not done:
        _, reward, term, trunc, info = env.step(rng.uniform(-1, 1, 3).astype(np.float32))
        total += reward
        penalty += info["penalty"]
        pos = env.engine.position(env.config.agent_client_id, env._sid)
        assert (pos.position, pos.cash) == (env.account.position, env.account.cash_ticks)
        done = term or trunc
    assert env.account.fills > 5
    assert math.isclose(total, env.pnl() - penalty, rel_tol=1e-9, abs_tol=1e-6)


def test_binance_episodes_replay_as_a_freshly_parsed_binance_source() -> None:
    _need(BINANCE)
    # a horizon longer than the capture: every window starts after the warm-up (no long replay to reach it)
    cfg = _config(BINANCE, horizon_steps=5000, warmup_ns=500_000_000)
    shared = RecordedMarketEnv(cfg)

    class Fresh:
        name, start_ns, end_ns = "fresh", shared.data.start_ns, shared.data.end_ns

        def source(self, start_ns: int) -> MarketSource:
            return BinanceSource(BINANCE)

    fresh = RecordedMarketEnv(cfg, data=Fresh())
    # a second episode on the shared parse must not see the first's state
    _run(shared, 11, 20)
    assert _run(shared, 11, 100) == _run(fresh, 11, 100)
    assert shared.account.fills > 0


def test_cli_trains_on_recorded_data(commands_recording: Path, tmp_path: Path) -> None:
    save = tmp_path / "rec_mm"
    args = ["train", "--env", "recorded", "--data", str(commands_recording), "--timesteps", "512", "--save",
            str(save), "--n-envs", "2", "--eval-every", "0", "--eval-episodes", "2", "--no-progress",
            "--set", "horizon_steps=64", "--set", "step_ns=10000000", "--set", "warmup_ns=200000000"]  # fmt: skip
    assert main(args) == 0
    assert save.with_suffix(".onnx").exists()


def test_a_policy_trained_on_recorded_data_decides_at_the_data_step(commands_recording: Path, tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from ml.rl.export import OnnxPolicy, export_onnx
    from ml.rl.strategy import RlMaker, RlMakerParams

    env = RecordedMarketEnv(_config(commands_recording, step_ns=250_000_000))
    path = export_onnx(PPO("MlpPolicy", env, seed=1, device="cpu", n_steps=64, batch_size=64), tmp_path / "p.onnx",
                       env=env)  # fmt: skip
    maker = RlMaker(RlMakerParams("SYN"), OnnxPolicy(path))
    assert maker.decision_interval_ns == 250_000_000


def test_cli_refuses_data_without_the_recorded_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--env", "engine", "--data", "x.gz", "--save", str(tmp_path / "x")]) == 2
    assert "--data goes with --env recorded" in capsys.readouterr().err
