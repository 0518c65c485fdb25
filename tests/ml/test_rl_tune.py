"""The hyperparameter search: a tiny seeded study runs, reports intermediate values, saves its best trial."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from ml.rl.cli import main
from ml.rl.tune import TuneConfig, suggest, tune

TINY = {"algo": "ppo", "env": "as", "trials": 2, "timesteps": 512, "evaluations": 2, "eval_episodes": 2,
        "n_envs": 2, "progress": False}  # fmt: skip


def test_a_tiny_study_saves_the_best_trials_model_and_parameters(tmp_path: Path) -> None:
    cfg = TuneConfig(**TINY, out=str(tmp_path / "study"))  # type: ignore[arg-type]
    result = tune(cfg)
    assert result.trials == 2
    for suffix in (".zip", ".vecnormalize.pkl", ".onnx", ".json"):
        assert (tmp_path / "study" / f"best{suffix}").exists()
    summary = json.loads((tmp_path / "study" / "study.json").read_text())
    assert summary["best_trial"] == result.best_trial and summary["best_params"] == result.best_params
    assert [b["policy"] for b in summary["baselines"]] == ["symmetric", "inventory_skew", "avellaneda_stoikov"]
    assert 0 < summary["env_overrides"]["inventory_penalty"] < 0.1
    assert (tmp_path / "study" / "trials.csv").read_text().count("\n") == 3
    assert (tmp_path / "study" / "trials.png").stat().st_size > 1000


def test_each_trial_reports_its_intermediate_evaluations(tmp_path: Path) -> None:
    cfg = TuneConfig(**TINY, out=str(tmp_path / "study"))  # type: ignore[arg-type]
    tune(cfg)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "study" / "study.journal"))
    )
    trials = optuna.load_study(study_name=cfg.name, storage=storage).trials
    # the evaluation at half the run is reported; the final one is the trial's value
    assert all(list(t.intermediate_values) == [256] for t in trials)


def test_the_same_seed_draws_the_same_trials(tmp_path: Path) -> None:
    a = tune(TuneConfig(**TINY, out=str(tmp_path / "a")))  # type: ignore[arg-type]
    b = tune(TuneConfig(**TINY, out=str(tmp_path / "b")))  # type: ignore[arg-type]
    assert (a.best_trial, a.best_params, a.best_value) == (b.best_trial, b.best_params, b.best_value)


def test_the_search_space_gives_ppo_a_batch_that_divides_the_rollout() -> None:
    cfg = TuneConfig(n_envs=4)
    hp, overrides = suggest(optuna.trial.FixedTrial({"learning_rate": 1e-4, "gamma": 0.99, "net_width": 64,
                                                     "net_depth": 2, "n_steps": 256, "minibatches": 8,
                                                     "n_epochs": 10, "gae_lambda": 0.95, "clip_range": 0.2,
                                                     "ent_coef": 1e-6, "log_std_init": -1.0,
                                                     "inventory_penalty": 0.003}), cfg)  # fmt: skip
    assert hp["batch_size"] == 128 and hp["net_arch"] == [64, 64]
    assert overrides == {"inventory_penalty": 0.003}


def test_cli_tune_prints_the_best_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tune", "--env", "as", "--trials", "2", "--timesteps", "256", "--evaluations", "1", "--eval-episodes",
            "2", "--n-envs", "2", "--no-progress", "--out", str(tmp_path / "t")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best trial" in out and "baseline avellaneda_stoikov" in out
