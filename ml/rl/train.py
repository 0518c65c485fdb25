"""Training the RL market maker with stable-baselines3, evaluated against the analytic baselines as it learns.

``train(TrainConfig(...))`` is what ``proptrade rl train`` runs. Choices, and why:

- **Algorithms.** PPO (on-policy; vectorised envs; Box or MultiDiscrete actions) or SAC (off-policy; one env;
  Box only). Default MLP policies; hyperparameters are SB3's defaults but for PPO's rollout length and batch,
  set so that a short run still makes several updates, and its initial action noise (``PPO_LOG_STD_INIT``).
  torch runs on one thread: these machines have two cores, and torch's default pool on both made SAC 10x
  slower under load.
- **Normalisation travels with the model.** Training envs are wrapped in ``VecNormalize`` (observations and
  rewards); its statistics are saved beside the model (``<save>.vecnormalize.pkl``) and baked into the ONNX
  graph (``ml.rl.export``). Evaluation uses the training statistics frozen at that moment.
- **Evaluation on fixed seeds against the baselines.** Every ``eval_every`` steps the deterministic agent runs
  ``eval_episodes`` episodes on seeds ``eval_seed, eval_seed + 1, ...`` (apart from the training seeds: those
  are ``seed + env index`` and then the env's own draws); the baselines (``default_baselines``) ran on the same
  seeds once at the start. Rows go to ``<save>/eval.csv``; SB3's training log goes to ``<save>/progress.csv``.
- **The best evaluation is kept.** As SB3's ``EvalCallback`` does, the model (and its statistics) of the best
  evaluation by Sharpe ratio is the one saved, the final one if nothing earlier beat it; ``proptrade rl eval``
  then measures it on other seeds (held out from this selection).
- **Outputs.** ``<save>.zip`` (the SB3 model), ``<save>.vecnormalize.pkl``, ``<save>.onnx`` (the exported
  policy), ``<save>.json`` (the run: algo, env, config overrides, seeds, wall time, the selected evaluation's
  timesteps, final evaluation), and the best checkpoint so far in ``<save>/best.*``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize
from tqdm import tqdm

from strategies.avellaneda import ASParams, GLFTParams, glft_skew_and_half_spread, optimal_spread

from .as_env import ASEnvConfig, ASMarketEnv
from .baselines import (
    AvellanedaStoikov,
    EvalResult,
    InventorySkew,
    Policy,
    Symmetric,
    baseline_policy,
    calibrate_engine,
    evaluate,
)
from .engine_env import EngineEnvConfig, EngineMarketEnv
from .export import export_onnx
from .recorded_env import RecordedEnvConfig, RecordedMarketEnv
from .vec import EnvKind, make_vec_env

__all__ = [
    "EvalHook",
    "TrainConfig",
    "TrainResult",
    "agent_policy",
    "default_baselines",
    "env_config",
    "make_single_env",
    "train",
]

#: quote size of the engine env's baselines, lots
BASELINE_SIZE_LOTS = 5
#: the AS risk aversion of the baselines: per tick on the engine env (per quote unit), the paper's first on AS
ENGINE_GAMMA_PER_TICK = 0.01
AS_GAMMA = 0.1
#: PPO's initial log standard deviation of its Gaussian actions (SB3's default 0, std 1, spreads half the
#: exploration onto the clipped edges of [-1, 1])
PPO_LOG_STD_INIT = -1.0


@dataclass(frozen=True)
class TrainConfig:
    algo: Literal["ppo", "sac"] = "ppo"
    env: EnvKind = "engine"
    timesteps: int = 100_000
    #: path prefix of the outputs (see the module docstring)
    save: str = "models/rl_mm"
    seed: int = 1
    #: parallel training envs (PPO; SAC uses one)
    n_envs: int = 4
    #: evaluate every this many timesteps (0: only at the end)
    eval_every: int = 20_000
    eval_episodes: int = 20
    #: first seed of the evaluation episodes
    eval_seed: int = 1_000_000
    #: env config fields to override (simple values only), e.g. {"horizon_steps": 500, "inventory_penalty": 0.01}
    env_overrides: dict[str, Any] = field(default_factory=dict)
    #: SB3 constructor arguments over this module's defaults (``learning_rate``, ``n_steps``, ``batch_size``,
    #: ``gamma``, ``ent_coef``, ...); ``net_arch`` (hidden layer widths) and ``log_std_init`` go to the policy
    hyperparams: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.algo not in ("ppo", "sac"):
            raise ValueError(f"algo must be ppo or sac, got {self.algo!r}")
        if self.env not in ("engine", "as", "recorded"):
            raise ValueError(f"env must be engine, as or recorded, got {self.env!r}")
        if self.timesteps < 1 or self.n_envs < 1 or self.eval_episodes < 1 or self.eval_every < 0:
            raise ValueError("timesteps, n_envs and eval_episodes must be >= 1, eval_every >= 0")


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    vecnormalize_path: Path
    onnx_path: Path
    wall_s: float
    #: the final evaluation: the agent first, then the baselines
    evaluation: list[EvalResult]


def env_config(kind: EnvKind, overrides: dict[str, Any]) -> EngineEnvConfig | ASEnvConfig:
    """The env's default config with ``overrides`` applied (unknown fields raise); the recorded env's must name
    its ``data``."""
    if kind == "recorded":
        return RecordedEnvConfig(**overrides)
    base: EngineEnvConfig | ASEnvConfig = EngineEnvConfig() if kind == "engine" else ASEnvConfig()
    return replace(base, **overrides)


def make_single_env(kind: EnvKind, config: EngineEnvConfig | ASEnvConfig) -> EngineMarketEnv | ASMarketEnv:
    if kind == "recorded":
        assert isinstance(config, RecordedEnvConfig)
        return RecordedMarketEnv(config)
    if kind == "engine":
        assert isinstance(config, EngineEnvConfig)
        return EngineMarketEnv(config)
    assert isinstance(config, ASEnvConfig)
    return ASMarketEnv(config)


def default_baselines(kind: EnvKind, config: EngineEnvConfig | ASEnvConfig) -> dict[str, Policy]:
    """The analytic baselines of ``kind``'s env: symmetric, inventory skew and Avellaneda-Stoikov.

    AS env: the paper's AS strategy at gamma 0.1, the symmetric one at its average spread (the paper's
    comparison) and the GLFT closed form as the inventory skew. Engine env: quotes of 5 lots; AS at gamma 0.01
    per tick and quote unit with sigma and k from ``calibrate_engine``; symmetric at AS's half-spread at half
    the horizon; the skew at the same half-spread, 0.5 tick per quote unit of inventory."""
    if kind == "as":
        assert isinstance(config, ASEnvConfig)
        m = config.model
        params = ASParams(AS_GAMMA, m.sigma_price_per_sqrt_time, m.k_per_price)
        mean_spread = float(np.mean([optimal_spread(m.time_left(i), params) for i in range(m.n_steps)]))
        glft = GLFTParams(AS_GAMMA, m.sigma_price_per_sqrt_time, m.k_per_price, m.a_per_time)
        skew, half = glft_skew_and_half_spread(1.0, glft)
        return {
            "symmetric": baseline_policy(Symmetric(mean_spread / 2.0)),
            "inventory_skew": baseline_policy(InventorySkew(half, skew)),
            "avellaneda_stoikov": baseline_policy(AvellanedaStoikov(params)),
        }
    assert isinstance(config, EngineEnvConfig)
    cal = calibrate_engine(config)
    params = cal.as_params(ENGINE_GAMMA_PER_TICK)
    half = optimal_spread(config.horizon_steps / 2.0, params) / 2.0
    return {
        "symmetric": baseline_policy(Symmetric(half), BASELINE_SIZE_LOTS),
        "inventory_skew": baseline_policy(InventorySkew(half, 0.5), BASELINE_SIZE_LOTS),
        "avellaneda_stoikov": baseline_policy(AvellanedaStoikov(params), BASELINE_SIZE_LOTS),
    }


def agent_policy(model: BaseAlgorithm, norm: VecNormalize | None) -> Policy:
    """The trained agent as an env policy: observations normalised with ``norm``'s statistics, deterministic."""

    def act(obs: Any, env: Any) -> Any:
        x = norm.normalize_obs(obs) if norm is not None else obs
        return model.predict(x, deterministic=True)[0]

    return act


def _write_rows(path: Path, timesteps: int, results: Sequence[EvalResult]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["timesteps", "policy", "episodes", "pnl_mean", "pnl_std", "sharpe", "mean_abs_inventory"])
        for r in results:
            w.writerow([timesteps, r.name, len(r.pnl), f"{r.mean:.6g}", f"{r.std:.6g}", f"{r.sharpe:.6g}",
                        f"{float(r.mean_abs_inventory.mean()):.6g}"])  # fmt: skip


class _Progress(BaseCallback):
    """A tqdm bar over the run's timesteps."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.bar: Any = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class _Evaluate(BaseCallback):
    """Every ``every`` timesteps: the agent on the evaluation seeds, written beside the baselines' rows; the
    best by Sharpe so far is kept in ``best_dir`` (model and VecNormalize statistics), as SB3's EvalCallback
    keeps its best model."""

    def __init__(self, every: int, total: int, env: EngineMarketEnv | ASMarketEnv, seeds: Sequence[int],
                 out: Path, best_dir: Path, hook: EvalHook | None = None) -> None:  # fmt: skip
        super().__init__()
        self.hook = hook
        self.every, self.total, self.env, self.seeds, self.out = every, total, env, list(seeds), out
        self.best_dir = best_dir
        self.next_at = every
        self.best: EvalResult | None = None
        self.best_timesteps = 0

    def _on_step(self) -> bool:
        # the last evaluation is train's own, after learn()
        if self.every and self.next_at <= self.num_timesteps < self.total:
            self.next_at += self.every
            norm = self.model.get_vec_normalize_env()
            r = evaluate(self.env, agent_policy(self.model, norm), self.seeds, "agent")
            _write_rows(self.out, self.num_timesteps, [r])
            self.logger.record("eval/pnl_mean", r.mean)
            self.logger.record("eval/pnl_std", r.std)
            if norm is not None and r.sharpe > (self.best.sharpe if self.best is not None else -math.inf):
                self.best, self.best_timesteps = r, self.num_timesteps
                self.model.save(self.best_dir / "best.zip")
                norm.save(str(self.best_dir / "best.vecnormalize.pkl"))
            if self.hook is not None:
                self.hook(self.num_timesteps, r)
        return True


#: hyperparameters that belong to the policy network rather than the algorithm
POLICY_KEYS = ("net_arch", "log_std_init")


def _build_model(cfg: TrainConfig, venv: VecNormalize) -> BaseAlgorithm:
    kwargs = {k: v for k, v in cfg.hyperparams.items() if k not in POLICY_KEYS}
    policy_kwargs = {k: v for k, v in cfg.hyperparams.items() if k in POLICY_KEYS}
    if cfg.algo == "ppo":
        # a multiple of 16 steps per env, so the rollout splits into 4 equal minibatches (SB3 warns otherwise)
        n_steps = max(64, min(1024, cfg.timesteps // (4 * cfg.n_envs))) // 16 * 16
        kwargs = {"n_steps": n_steps, "batch_size": n_steps * cfg.n_envs // 4} | kwargs
        policy_kwargs = {"log_std_init": PPO_LOG_STD_INIT} | policy_kwargs
        return PPO("MlpPolicy", venv, seed=cfg.seed, device="cpu", policy_kwargs=policy_kwargs, verbose=0,
                   **kwargs)  # fmt: skip
    if "log_std_init" in policy_kwargs:
        raise ValueError("log_std_init is a PPO hyperparameter")
    kwargs = {"learning_starts": min(1000, cfg.timesteps // 10)} | kwargs
    return SAC("MlpPolicy", venv, seed=cfg.seed, device="cpu", policy_kwargs=policy_kwargs or None, verbose=0,
               **kwargs)  # fmt: skip


#: called after each periodic evaluation with (timesteps, the agent's result); it may raise to stop the run (a
#: hyperparameter search prunes a trial so)
EvalHook = Callable[[int, EvalResult], None]


def train(
    cfg: TrainConfig, *, baselines: Sequence[EvalResult] | None = None, on_eval: EvalHook | None = None
) -> TrainResult:
    """Trains, evaluates, saves and exports; see the module docstring for the outputs. ``baselines``: the
    baselines' results on the evaluation seeds when already known (a search measures them once)."""
    torch.set_num_threads(1)
    env_cfg = env_config(cfg.env, cfg.env_overrides)
    if cfg.algo == "sac" and isinstance(env_cfg, EngineEnvConfig) and env_cfg.action_kind != "box":
        raise ValueError("SAC needs the Box action (action_kind 'box')")
    save = Path(cfg.save)
    logdir = save
    logdir.mkdir(parents=True, exist_ok=True)
    eval_csv = logdir / "eval.csv"
    eval_csv.unlink(missing_ok=True)
    n_envs = cfg.n_envs if cfg.algo == "ppo" else 1
    venv = VecNormalize(make_vec_env(cfg.env, n_envs, env_cfg, seed=cfg.seed), gamma=0.99)
    model = _build_model(cfg, venv)
    model.set_logger(configure(str(logdir), ["csv"]))
    eval_env = make_single_env(cfg.env, env_cfg)
    seeds = range(cfg.eval_seed, cfg.eval_seed + cfg.eval_episodes)
    if baselines is None:
        policies = default_baselines(cfg.env, env_cfg)
        baselines = [evaluate(eval_env, policy, seeds, name) for name, policy in policies.items()]
    baseline_results = list(baselines)
    _write_rows(eval_csv, 0, baseline_results)
    evaluator = _Evaluate(cfg.eval_every, cfg.timesteps, eval_env, seeds, eval_csv, logdir, on_eval)
    callbacks: list[BaseCallback] = [evaluator]
    if cfg.progress:
        callbacks.append(_Progress(cfg.timesteps))
    t0 = time.perf_counter()
    model.learn(cfg.timesteps, callback=callbacks)
    wall_s = time.perf_counter() - t0
    agent = evaluate(eval_env, agent_policy(model, venv), seeds, "agent")
    _write_rows(eval_csv, model.num_timesteps, [agent])
    trained_steps = model.num_timesteps
    selected_steps = trained_steps
    norm = venv
    best = evaluator.best
    if best is not None and not best.sharpe <= agent.sharpe:  # an earlier evaluation was better: keep that one
        model = type(model).load(logdir / "best.zip", device="cpu")
        norm = VecNormalize.load(str(logdir / "best.vecnormalize.pkl"), make_vec_env(cfg.env, 1, env_cfg))
        agent, selected_steps = best, evaluator.best_timesteps
    model_path = save.with_suffix(".zip")
    model.save(model_path)
    norm_path = save.with_suffix(".vecnormalize.pkl")
    norm.save(str(norm_path))
    onnx_path = export_onnx(model, save.with_suffix(".onnx"), env=eval_env, vecnormalize=norm)
    results = [agent, *baseline_results]
    summary = {
        "algo": cfg.algo,
        "env": cfg.env,
        "timesteps": trained_steps,
        # the evaluation whose model was saved (the best Sharpe on the evaluation seeds)
        "selected_timesteps": selected_steps,
        "wall_s": wall_s,
        "config": {k: v for k, v in asdict(cfg).items() if k != "progress"},
        "evaluation": [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.row().items()} for r in results
        ],  # fmt: skip
    }
    save.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    venv.close()
    if norm is not venv:
        norm.close()
    return TrainResult(model_path, norm_path, onnx_path, wall_s, results)
