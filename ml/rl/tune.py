"""Hyperparameter search for the RL market maker with Optuna: what ``proptrade rl tune`` runs.

A trial is one ``ml.rl.train.train`` run with hyperparameters drawn by the study; its value is what the run
keeps (the best periodic evaluation, as ``train`` keeps it). Choices, and why:

- **Objective: the Sharpe ratio of episode PnL** (mean / standard deviation over the evaluation episodes), the
  figure docs/RL.md compares agents and baselines on, measured on the evaluation seeds (``eval_seed`` on) that
  the analytic baselines run on, which are measured once per study and written beside each trial's rows. A
  Sharpe ratio that is undefined (every episode the same PnL: an agent that never trades) counts as 0. The
  held-out comparison is ``proptrade rl eval`` on other seeds: a study selects on its evaluation seeds, so its
  best value is optimistic there.
- **Search space.** PPO: learning rate (log 1e-5..3e-3), rollout length ``n_steps`` per env, minibatches per
  rollout (``batch_size = n_steps x n_envs / minibatches``), epochs, ``gamma``, GAE lambda, clip range,
  ``ent_coef`` (log 1e-8..1e-2), the initial action noise ``log_std_init``, and the network (width x depth of
  both heads). SAC: learning rate, batch size, ``gamma``, ``tau``, train frequency, learning starts and the
  network. With ``tune_reward``, the env's ``inventory_penalty`` too (log scale; per lot^2 a step on the engine
  env, per unit^2 on the AS env): it shapes the reward only, and the objective's PnL does not contain it, so
  the study is free to find the shaping that gives the best PnL ratio.
- **Pruning.** Each trial evaluates ``evaluations`` times along its run (every ``timesteps / evaluations``
  steps) and reports each value; Optuna's median pruner stops a trial whose intermediate value falls below the
  median of earlier trials at the same step (after ``startup_trials`` complete trials and its first report).
- **Seeded.** The sampler is TPE seeded with ``seed``; trial ``n`` trains with seed ``seed + n``. One job gives
  the same trials, values and best for the same arguments; with several jobs the trials interleave by timing.
- **Parallel trials** (``jobs`` > 1) run in worker processes (spawned: fresh interpreters, torch on one thread
  each) sharing one study through Optuna's journal file, ``<out>/study.journal``, which also lets a stopped
  study be resumed (same ``out``, same ``name``).
- **Outputs** in ``out``: each trial's ``train`` outputs under ``trial_<n>`` (model, statistics, ONNX, logs),
  ``trials.csv`` (one row per trial: state, value, the kept evaluation's figures, the parameters),
  ``trials.png`` (each trial's intermediate and final values beside the baselines' Sharpe ratios), and the
  best trial's model copied to ``best.zip``, ``best.vecnormalize.pkl``, ``best.onnx``, ``best.json`` (so
  ``proptrade rl eval --model <out>/best`` evaluates it), with ``study.json``: its parameters, the
  hyperparameters and env overrides they make, its value and the baselines' figures.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import optuna

from .baselines import EvalResult, evaluate
from .train import TrainConfig, default_baselines, env_config, make_single_env, train
from .vec import EnvKind

__all__ = ["TuneConfig", "TuneResult", "suggest", "tune"]

#: the files ``train`` writes beside its prefix, copied for the best trial
_SUFFIXES = (".zip", ".vecnormalize.pkl", ".onnx", ".json")


@dataclass(frozen=True)
class TuneConfig:
    algo: Literal["ppo", "sac"] = "ppo"
    env: EnvKind = "engine"
    #: trials in all (over every job)
    trials: int = 20
    #: env steps per trial
    timesteps: int = 50_000
    #: intermediate evaluations per trial (the last at the end), each reported for pruning
    evaluations: int = 4
    eval_episodes: int = 20
    #: first seed of the evaluation episodes (the baselines run on the same ones)
    eval_seed: int = 1_000_000
    seed: int = 1
    #: parallel training envs per trial (PPO)
    n_envs: int = 4
    #: parallel trials (worker processes)
    jobs: int = 1
    #: stop starting trials after this many seconds (None: run every trial)
    timeout_s: float | None = None
    #: complete trials before the pruner may prune
    startup_trials: int = 3
    #: also tune the env's inventory_penalty
    tune_reward: bool = True
    #: env config fields fixed for every trial
    env_overrides: dict[str, Any] = field(default_factory=dict)
    out: str = "models/rl_tune"
    #: the study's name in the journal
    name: str = "rl_tune"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.algo not in ("ppo", "sac"):
            raise ValueError(f"algo must be ppo or sac, got {self.algo!r}")
        if self.env not in ("engine", "as", "recorded"):
            raise ValueError(f"env must be engine, as or recorded, got {self.env!r}")
        if min(self.trials, self.timesteps, self.evaluations, self.eval_episodes, self.n_envs, self.jobs) < 1:
            raise ValueError("trials, timesteps, evaluations, eval_episodes, n_envs and jobs must be >= 1")
        if self.eval_episodes < 2:
            raise ValueError("eval_episodes must be >= 2 (the objective is a standard deviation)")


@dataclass(frozen=True)
class TuneResult:
    best_value: float
    best_trial: int
    best_params: dict[str, Any]
    #: the best model's path prefix (``<out>/best``)
    best_prefix: Path
    trials: int
    pruned: int
    wall_s: float


def suggest(trial: optuna.trial.BaseTrial, cfg: TuneConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trial's (SB3 hyperparameters, env overrides): the search space of the module docstring."""
    hp: dict[str, Any] = {"learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True)}
    hp["gamma"] = trial.suggest_categorical("gamma", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999])
    width = trial.suggest_categorical("net_width", [32, 64, 128, 256])
    depth = trial.suggest_int("net_depth", 1, 3)
    hp["net_arch"] = [width] * depth
    if cfg.algo == "ppo":
        n_steps = trial.suggest_categorical("n_steps", [128, 256, 512, 1024])
        minibatches = trial.suggest_categorical("minibatches", [2, 4, 8])
        hp["n_steps"] = n_steps
        hp["batch_size"] = n_steps * cfg.n_envs // minibatches
        hp["n_epochs"] = trial.suggest_categorical("n_epochs", [5, 10, 20])
        hp["gae_lambda"] = trial.suggest_categorical("gae_lambda", [0.8, 0.9, 0.95, 0.98])
        hp["clip_range"] = trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3])
        hp["ent_coef"] = trial.suggest_float("ent_coef", 1e-8, 1e-2, log=True)
        hp["log_std_init"] = trial.suggest_float("log_std_init", -2.5, 0.0)
    else:
        hp["batch_size"] = trial.suggest_categorical("batch_size", [64, 128, 256, 512])
        hp["tau"] = trial.suggest_categorical("tau", [0.005, 0.01, 0.02, 0.05])
        hp["train_freq"] = trial.suggest_categorical("train_freq", [1, 4, 8])
        hp["gradient_steps"] = hp["train_freq"]
        hp["learning_starts"] = trial.suggest_categorical("learning_starts", [100, 1000])
    overrides = dict(cfg.env_overrides)
    if cfg.tune_reward:
        high = 1e-1 if cfg.env == "as" else 1e-2
        overrides["inventory_penalty"] = trial.suggest_float("inventory_penalty", 1e-5, high, log=True)
    return hp, overrides


def _value(result: EvalResult) -> float:
    return result.sharpe if math.isfinite(result.sharpe) else 0.0


def _objective(cfg: TuneConfig, baselines: Sequence[EvalResult]) -> Any:
    out = Path(cfg.out)

    def objective(trial: optuna.Trial) -> float:
        hp, overrides = suggest(trial, cfg)

        def report(timesteps: int, result: EvalResult) -> None:
            trial.report(_value(result), timesteps)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at {timesteps} steps (Sharpe {result.sharpe:.3g})")

        every = max(1, cfg.timesteps // cfg.evaluations)
        train_cfg = TrainConfig(algo=cfg.algo, env=cfg.env, timesteps=cfg.timesteps,
                                save=str(out / f"trial_{trial.number}"), seed=cfg.seed + trial.number,
                                n_envs=cfg.n_envs, eval_every=every if cfg.evaluations > 1 else 0,
                                eval_episodes=cfg.eval_episodes, eval_seed=cfg.eval_seed, env_overrides=overrides,
                                hyperparams=hp, progress=False)  # fmt: skip
        result = train(train_cfg, baselines=baselines, on_eval=report)
        agent = result.evaluation[0]
        trial.set_user_attr("pnl_mean", agent.mean)
        trial.set_user_attr("pnl_std", agent.std)
        trial.set_user_attr("mean_abs_inventory", float(agent.mean_abs_inventory.mean()))
        trial.set_user_attr("wall_s", result.wall_s)
        return _value(agent)

    return objective


def _storage(cfg: TuneConfig) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(Path(cfg.out) / "study.journal")))


def _study(cfg: TuneConfig, worker: int) -> optuna.Study:
    sampler = optuna.samplers.TPESampler(seed=cfg.seed + 7919 * worker)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=cfg.startup_trials, n_warmup_steps=0)
    return optuna.create_study(study_name=cfg.name, storage=_storage(cfg), sampler=sampler, pruner=pruner,
                               direction="maximize", load_if_exists=True)  # fmt: skip


def _announce(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if trial.state == optuna.trial.TrialState.COMPLETE:
        what = (f"Sharpe {trial.value:.3f} (PnL {trial.user_attrs['pnl_mean']:.2f} +- "
                f"{trial.user_attrs['pnl_std']:.2f}, {trial.user_attrs['wall_s']:.0f} s)")  # fmt: skip
    else:
        steps = max(trial.intermediate_values, default=0)
        what = f"{trial.state.name.lower()} at {steps} steps"
    try:
        best = f"best: trial {study.best_trial.number}, {study.best_value:.3f}"
    except ValueError:
        best = "no complete trial yet"
    print(f"trial {trial.number}: {what}; {best}", flush=True)


def _run_trials(cfg: TuneConfig, baselines: Sequence[EvalResult], n_trials: int, worker: int) -> None:
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _study(cfg, worker)
    study.optimize(_objective(cfg, baselines), n_trials=n_trials, timeout=cfg.timeout_s, callbacks=[_announce],
                   show_progress_bar=cfg.progress and worker == 0, gc_after_trial=True)  # fmt: skip


def _baselines(cfg: TuneConfig) -> list[EvalResult]:
    env_cfg = env_config(cfg.env, cfg.env_overrides)
    env = make_single_env(cfg.env, env_cfg)
    seeds = range(cfg.eval_seed, cfg.eval_seed + cfg.eval_episodes)
    return [evaluate(env, policy, seeds, name) for name, policy in default_baselines(cfg.env, env_cfg).items()]


def _write_trials(path: Path, study: optuna.Study) -> None:
    trials = study.trials
    params = sorted({k for t in trials for k in t.params})
    attrs = ["pnl_mean", "pnl_std", "mean_abs_inventory", "wall_s"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial", "state", "value", "last_step", *attrs, *params])
        for t in trials:
            w.writerow([t.number, t.state.name, "" if t.value is None else repr(t.value),
                        max(t.intermediate_values, default=""), *(t.user_attrs.get(a, "") for a in attrs),
                        *(t.params.get(p, "") for p in params)])  # fmt: skip


def _plot_trials(path: Path, study: optuna.Study, baselines: Sequence[Any], title: str, timesteps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for t in study.trials:
        steps = sorted(t.intermediate_values)
        values = [t.intermediate_values[s] for s in steps]
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            steps, values = [*steps, timesteps], [*values, t.value]
        pruned = t.state == optuna.trial.TrialState.PRUNED
        ax.plot(steps, values, marker="x" if pruned else "o", linestyle=":" if pruned else "-", alpha=0.7,
                label=f"trial {t.number}{' (pruned)' if pruned else ''}")  # fmt: skip
    for r, style in zip(baselines, ("--", "-.", ":"), strict=False):
        if math.isfinite(r.sharpe):
            ax.axhline(r.sharpe, color="black", linestyle=style, linewidth=1, label=f"{r.name}")
    ax.set_xlabel("timesteps (the last point of a complete trial: the value it kept)")
    ax.set_ylabel("Sharpe of episode PnL (evaluation seeds)")
    ax.set_title(title)
    ax.legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tune(cfg: TuneConfig) -> TuneResult:
    """Runs the study (see the module docstring) and saves the best trial's model and parameters."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial comes from _announce
    started = time.perf_counter()
    baselines = _baselines(cfg)
    for r in baselines:
        print(f"baseline {r.name}: Sharpe {r.sharpe:.3f} (PnL {r.mean:.2f} +- {r.std:.2f})", flush=True)
    if cfg.jobs == 1:
        _run_trials(cfg, baselines, cfg.trials, 0)
    else:
        shares = [cfg.trials // cfg.jobs + (i < cfg.trials % cfg.jobs) for i in range(cfg.jobs)]
        _study(cfg, 0)  # created once here, so the workers only load it
        ctx = multiprocessing.get_context("spawn")
        workers = [ctx.Process(target=_run_trials, args=(cfg, baselines, n, i)) for i, n in enumerate(shares) if n]
        for p in workers:
            p.start()
        for p in workers:
            p.join()
            if p.exitcode:
                raise RuntimeError(f"a tuning worker exited with status {p.exitcode}")
    study = _study(cfg, 0)
    _write_trials(out / "trials.csv", study)
    title = f"{cfg.algo} on the {cfg.env} env: {len(study.trials)} trials"
    _plot_trials(out / "trials.png", study, baselines, title, cfg.timesteps)
    try:
        best = study.best_trial
    except ValueError:
        raise RuntimeError("no trial completed (all pruned or failed): see trials.csv") from None
    prefix = out / "best"
    source = out / f"trial_{best.number}"
    for suffix in _SUFFIXES:
        shutil.copyfile(source.with_suffix(suffix), prefix.with_suffix(suffix))
    hp, overrides = suggest(optuna.trial.FixedTrial(best.params), cfg)
    states = [t.state for t in study.trials]
    wall_s = time.perf_counter() - started
    summary = {
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "hyperparams": hp,
        "env_overrides": overrides,
        "best_figures": best.user_attrs,
        "baselines": [r.row() for r in baselines],
        "trials": len(states),
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "wall_s": wall_s,
        "config": asdict(replace(cfg, progress=False)),
    }
    (out / "study.json").write_text(json.dumps(summary, indent=1, default=str))
    return TuneResult(float(best.value or 0.0), best.number, dict(best.params), prefix, len(states),
                      states.count(optuna.trial.TrialState.PRUNED), wall_s)  # fmt: skip
