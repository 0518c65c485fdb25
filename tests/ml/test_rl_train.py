"""Training, ONNX export and the command line: a short run on each env, and the exported graph's parity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from ml.rl import ASMarketEnv, EngineEnvConfig, EngineMarketEnv
from ml.rl.baselines import calibrate_engine
from ml.rl.cli import main
from ml.rl.export import OnnxPolicy, export_onnx
from ml.rl.train import TrainConfig, train

SMALL: dict[str, Any] = {"horizon_steps": 100, "warmup_commands": 300}


def _rollout(env: EngineMarketEnv | ASMarketEnv, n: int, seed: int = 0) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    rows = []
    for _ in range(n):
        rows.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    return np.asarray(rows)


def _assert_parity(model: PPO | SAC, norm: VecNormalize, env: EngineMarketEnv | ASMarketEnv, path: Path) -> None:
    export_onnx(model, path, env=env, vecnormalize=norm)
    obs = _rollout(env, 300)
    expected, _ = model.predict(norm.normalize_obs(obs), deterministic=True)
    action, quote = OnnxPolicy(path).run(obs)
    assert np.abs(action - expected).max() <= 1e-5
    decoded = np.array([env.decode_action(a) for a in expected], dtype=np.float64)
    # a size that rounds at .5 in float32 on one side and float64 on the other would differ by a lot: none here
    assert np.abs(quote - decoded).max() <= 1e-4


def test_a_short_ppo_training_on_the_engine_env_saves_model_statistics_onnx_and_logs(tmp_path: Path) -> None:
    save = tmp_path / "rl_mm"
    cfg = TrainConfig(algo="ppo", env="engine", timesteps=2048, save=str(save), n_envs=2, eval_every=1024,
                      eval_episodes=2, env_overrides=SMALL, progress=False)  # fmt: skip
    result = train(cfg)
    for suffix in (".zip", ".vecnormalize.pkl", ".onnx", ".json"):
        assert save.with_suffix(suffix).exists()
    assert (save / "progress.csv").read_text().count("\n") >= 2
    rows = (save / "eval.csv").read_text().splitlines()
    policies = [r.split(",")[1] for r in rows[1:]]
    assert policies == ["symmetric", "inventory_skew", "avellaneda_stoikov", "agent", "agent"]
    assert [r.name for r in result.evaluation] == ["agent", "symmetric", "inventory_skew", "avellaneda_stoikov"]
    summary = json.loads(save.with_suffix(".json").read_text())
    assert summary["timesteps"] >= 2048 and summary["env"] == "engine"
    # the saved model is the evaluation with the best Sharpe: the one at 1024 steps or the final one
    assert summary["selected_timesteps"] in (1024, summary["timesteps"])
    assert (save / "best.zip").exists() or summary["selected_timesteps"] == summary["timesteps"]


def test_onnx_export_of_a_ppo_policy_on_the_engine_env_matches_sb3_predict(tmp_path: Path) -> None:
    env = EngineMarketEnv(EngineEnvConfig(**SMALL))
    norm = VecNormalize(DummyVecEnv([lambda: EngineMarketEnv(EngineEnvConfig(**SMALL))]))
    model = PPO("MlpPolicy", norm, seed=2, device="cpu", n_steps=256, batch_size=64)
    model.learn(512)
    _assert_parity(model, norm, env, tmp_path / "ppo.onnx")


def test_onnx_export_of_a_discrete_ppo_policy_picks_the_same_grid_point(tmp_path: Path) -> None:
    config = EngineEnvConfig(**SMALL, action_kind="discrete")
    env = EngineMarketEnv(config)
    norm = VecNormalize(DummyVecEnv([lambda: EngineMarketEnv(config)]))
    model = PPO("MlpPolicy", norm, seed=3, device="cpu", n_steps=256, batch_size=64)
    model.learn(512)
    _assert_parity(model, norm, env, tmp_path / "discrete.onnx")


def test_onnx_export_of_a_sac_policy_on_the_as_env_matches_sb3_predict(tmp_path: Path) -> None:
    norm = VecNormalize(DummyVecEnv([ASMarketEnv]))
    model = SAC("MlpPolicy", norm, seed=4, device="cpu", learning_starts=100, batch_size=64)
    model.learn(200)
    _assert_parity(model, norm, ASMarketEnv(), tmp_path / "sac.onnx")


def test_onnx_policy_records_the_env_and_its_observation_names(tmp_path: Path) -> None:
    env = ASMarketEnv()
    model = PPO("MlpPolicy", env, seed=5, device="cpu", n_steps=64, batch_size=64)
    path = export_onnx(model, tmp_path / "p.onnx", env=env)
    meta = OnnxPolicy(path).session.get_modelmeta().custom_metadata_map
    assert meta["env"] == "as" and json.loads(meta["obs_names"]) == ["inventory_scaled", "time_left_frac",
                                                                      "mid_move_scaled"]  # fmt: skip


def test_calibration_of_the_engine_market_finds_a_decaying_fill_intensity() -> None:
    cal = calibrate_engine(EngineEnvConfig(**SMALL), seeds=[1, 2])
    assert cal.sigma2_per_step > 0 and cal.a_per_step > 0 and cal.k_per_tick > 0.01


def test_cli_trains_evaluates_and_exports_on_the_as_env(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save = tmp_path / "as_mm"
    assert main(["train", "--algo", "ppo", "--env", "as", "--episodes", "5", "--save-path", str(save), "--n-envs",
                 "2", "--eval-every", "0", "--eval-episodes", "3", "--no-progress"]) == 0  # fmt: skip
    assert "avellaneda_stoikov" in capsys.readouterr().out
    assert main(["eval", "--model", str(save), "--episodes", "3", "--out", str(tmp_path / "eval")]) == 0
    assert (tmp_path / "eval" / "rl_eval_as.png").stat().st_size > 1000
    figures = json.loads((tmp_path / "eval" / "rl_eval_as.json").read_text())
    assert [r["policy"] for r in figures["results"]] == ["agent", "symmetric", "inventory_skew", "avellaneda_stoikov"]
    assert main(["export", "--model", str(save)]) == 0
    assert "max |onnx - predict|" in capsys.readouterr().out


def test_cli_refuses_an_unknown_env_field_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--env", "as", "--timesteps", "64", "--save", str(tmp_path / "x"), "--set", "no_such_field=1"]
    assert main(args) == 2
    assert "no_such_field" in capsys.readouterr().err
