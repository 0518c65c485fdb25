"""``proptrade rl ...``: train, evaluate and export the RL market maker.

::

    proptrade rl train --algo ppo|sac --timesteps N --save models/rl_mm [--env engine|as] [--seed 1]
                       [--n-envs 4] [--eval-every N] [--eval-episodes 20] [--set FIELD=VALUE ...]
    proptrade rl eval --model models/rl_mm [--episodes 100] [--seed 2000000] [--out DIR]
    proptrade rl export --model models/rl_mm
    proptrade rl tune --algo ppo|sac --env engine|as --trials 20 --timesteps 50000 --out models/rl_tune
                      [--evaluations 4] [--eval-episodes 20] [--jobs 1] [--timeout S] [--no-reward]
                      [--set FIELD=VALUE ...]

``train`` is ``ml.rl.train.train`` (outputs: ``<save>.zip``, ``.vecnormalize.pkl``, ``.onnx``, ``.json`` and the
CSV logs in ``<save>/``); ``--episodes E`` and ``--save-path`` are the older ``train_rl.py`` spellings (E
episodes of the env's horizon). ``eval`` runs the exported ONNX policy and the analytic baselines on the same
seeds and prints mean PnL, PnL std, Sharpe and mean |inventory|, with a plot (``<out>/rl_eval_<env>.png``) and
the figures as JSON. ``export`` re-exports ``<model>.onnx`` from the saved model and statistics and prints its
parity with SB3's ``predict`` on a rollout. ``tune`` is ``ml.rl.tune.tune``: an Optuna study over the
algorithm's hyperparameters (and the env's inventory penalty unless ``--no-reward``), the best trial's model
saved as ``<out>/best.*`` (``eval --model <out>/best`` measures it) and its parameters in ``<out>/study.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _value(text: str) -> Any:
    """A --set value: JSON when it parses (numbers, true/false, null), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _overrides(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes FIELD=VALUE, got {pair!r}")
        out[key] = _value(value)
    return out


def _data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``--set`` pairs, with ``--data`` as the recorded env's ``data`` (required there, refused elsewhere)."""
    out = _overrides(args.set)
    if args.data is not None:
        if args.env != "recorded":
            raise ValueError("--data goes with --env recorded")
        out["data"] = str(Path(args.data).resolve())
    elif args.env == "recorded" and "data" not in out:
        raise ValueError("--env recorded needs --data FILE")
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="proptrade rl", description="The RL market maker: train, eval, export, tune.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train with stable-baselines3, evaluate against the baselines, export ONNX")
    t.add_argument("--algo", choices=["ppo", "sac"], default="ppo")
    t.add_argument("--env", choices=["engine", "as", "recorded"], default="engine")
    t.add_argument("--data", help="the recorded env's data: a LOBSTER message file, a Binance capture, a recording")
    steps = t.add_mutually_exclusive_group()
    steps.add_argument("--timesteps", type=int, help="env steps to train (default 100000)")
    steps.add_argument("--episodes", type=int, help="episodes of the env's horizon to train (train_rl.py's flag)")
    t.add_argument("--save", "--save-path", dest="save", default="models/rl_mm", help="output path prefix")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--n-envs", type=int, default=4, help="parallel envs (PPO)")
    t.add_argument("--eval-every", type=int, default=20_000, help="timesteps between evaluations (0: at the end)")
    t.add_argument("--eval-episodes", type=int, default=20)
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="an env config field")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    e = sub.add_parser("eval", help="the exported policy against the baselines on seeded episodes")
    e.add_argument("--model", default="models/rl_mm", help="the path prefix train saved under")
    e.add_argument("--episodes", type=int, default=100)
    e.add_argument("--seed", type=int, default=2_000_000, help="first episode seed")
    e.add_argument("--out", type=Path, help="where the plot and figures go (default: the model's log folder)")
    u = sub.add_parser("tune", help="an Optuna hyperparameter search; the best trial saved as <out>/best")
    u.add_argument("--algo", choices=["ppo", "sac"], default="ppo")
    u.add_argument("--env", choices=["engine", "as", "recorded"], default="engine")
    u.add_argument("--data", help="the recorded env's data: a LOBSTER message file, a Binance capture, a recording")
    u.add_argument("--trials", type=int, default=20)
    u.add_argument("--timesteps", type=int, default=50_000, help="env steps per trial")
    u.add_argument("--evaluations", type=int, default=4, help="evaluations per trial, reported for pruning")
    u.add_argument("--eval-episodes", type=int, default=20)
    u.add_argument("--seed", type=int, default=1)
    u.add_argument("--n-envs", type=int, default=4, help="parallel envs per trial (PPO)")
    u.add_argument("--jobs", type=int, default=1, help="parallel trials (worker processes)")
    u.add_argument("--timeout", type=float, help="start no trial after this many seconds")
    u.add_argument("--startup-trials", type=int, default=3, help="complete trials before pruning starts")
    u.add_argument("--no-reward", action="store_true", help="keep the env's inventory_penalty fixed")
    u.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a fixed env config field")
    u.add_argument("--out", default="models/rl_tune", help="the study's folder")
    u.add_argument("--no-progress", action="store_true", help="no progress bar")
    x = sub.add_parser("export", help="re-export the saved model to ONNX and check its parity")
    x.add_argument("--model", default="models/rl_mm")
    return p


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, env_config, train

    overrides = _data_overrides(args)
    timesteps = args.timesteps or 100_000
    if args.episodes is not None:
        horizon = getattr(env_config(args.env, overrides), "horizon_steps", None)
        if horizon is None:
            horizon = env_config(args.env, overrides).model.n_steps  # type: ignore[union-attr]
        timesteps = args.episodes * int(horizon)
    cfg = TrainConfig(algo=args.algo, env=args.env, timesteps=timesteps, save=args.save, seed=args.seed,
                      n_envs=args.n_envs, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                      env_overrides=overrides, progress=not args.no_progress)  # fmt: skip
    result = train(cfg)
    print(f"trained {cfg.algo} on the {cfg.env} env: {timesteps} steps in {result.wall_s:.1f} s")
    print(f"saved {result.model_path}, {result.vecnormalize_path}, {result.onnx_path}")
    _print_table(result.evaluation)
    return 0


def _tune(args: argparse.Namespace) -> int:
    from .tune import TuneConfig, tune

    cfg = TuneConfig(algo=args.algo, env=args.env, trials=args.trials, timesteps=args.timesteps,
                     evaluations=args.evaluations, eval_episodes=args.eval_episodes, seed=args.seed,
                     n_envs=args.n_envs, jobs=args.jobs, timeout_s=args.timeout, startup_trials=args.startup_trials,
                     tune_reward=not args.no_reward, env_overrides=_data_overrides(args), out=args.out,
                     progress=not args.no_progress)  # fmt: skip
    result = tune(cfg)
    print(f"{result.trials} trials ({result.pruned} pruned) in {result.wall_s:.0f} s; best trial "
          f"{result.best_trial}: Sharpe {result.best_value:.3f} on the evaluation seeds")  # fmt: skip
    print(f"best parameters: {json.dumps(result.best_params)}")
    print(f"saved {result.best_prefix}.zip, .onnx, .json and {Path(cfg.out) / 'study.json'}")
    return 0


def _print_table(results: Sequence[Any]) -> None:
    print(f"  {'policy':<20} {'episodes':>8} {'pnl mean':>10} {'pnl std':>10} {'sharpe':>7} {'mean |inv|':>10}")
    for r in results:
        row = r.row()
        print(f"  {row['policy']:<20} {row['episodes']:>8} {row['pnl_mean']:>10.2f} {row['pnl_std']:>10.2f}"
              f" {row['sharpe']:>7.2f} {row['mean_abs_inventory']:>10.2f}")  # fmt: skip


def _load_run(prefix: Path) -> dict[str, Any]:
    meta = prefix.with_suffix(".json")
    if not meta.exists():
        raise FileNotFoundError(f"{meta} not found: train saves it beside the model")
    run: dict[str, Any] = json.loads(meta.read_text())
    return run


def _eval(args: argparse.Namespace) -> int:
    from .baselines import evaluate
    from .export import OnnxPolicy
    from .train import default_baselines, env_config, make_single_env

    prefix = Path(args.model)
    run = _load_run(prefix)
    kind = run["env"]
    cfg = env_config(kind, run["config"]["env_overrides"])
    env = make_single_env(kind, cfg)
    seeds = range(args.seed, args.seed + args.episodes)
    results = [evaluate(env, OnnxPolicy(prefix.with_suffix(".onnx")), seeds, "agent")]
    results += [evaluate(env, p, seeds, name) for name, p in default_baselines(kind, cfg).items()]
    _print_table(results)
    out: Path = args.out or prefix
    out.mkdir(parents=True, exist_ok=True)
    figures = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.row().items()}
               for r in results]  # fmt: skip
    (out / f"rl_eval_{kind}.json").write_text(json.dumps({"seeds": [seeds.start, seeds.stop], "results": figures},
                                                         indent=1))  # fmt: skip
    _plot(results, out / f"rl_eval_{kind}.png", f"{kind} env, {args.episodes} episodes")
    print(f"wrote {out / f'rl_eval_{kind}.png'} and {out / f'rl_eval_{kind}.json'}")
    return 0


def _plot(results: Sequence[Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in results]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.boxplot([r.pnl for r in results], tick_labels=names, showmeans=True)
    ax1.set_title(f"episode PnL ({title})")
    ax1.tick_params(axis="x", labelrotation=20)
    ax2.bar(names, [float(r.mean_abs_inventory.mean()) for r in results])
    ax2.set_title("mean |inventory| over steps")
    ax2.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _export(args: argparse.Namespace) -> int:
    import numpy as np
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from .export import OnnxPolicy, export_onnx
    from .train import env_config, make_single_env

    prefix = Path(args.model)
    run = _load_run(prefix)
    kind = run["env"]
    cfg = env_config(kind, run["config"]["env_overrides"])
    env = make_single_env(kind, cfg)
    algo = PPO if run["algo"] == "ppo" else SAC
    model = algo.load(prefix.with_suffix(".zip"), device="cpu")
    norm = VecNormalize.load(str(prefix.with_suffix(".vecnormalize.pkl")), DummyVecEnv([lambda: env]))
    path = export_onnx(model, prefix.with_suffix(".onnx"), env=env, vecnormalize=norm)
    obs, _ = env.reset(seed=0)
    rows = []
    for _ in range(500):
        rows.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    batch = np.asarray(rows)
    expected, _ = model.predict(norm.normalize_obs(batch), deterministic=True)
    got, _ = OnnxPolicy(path).run(batch)
    print(f"exported {path}; max |onnx - predict| over {len(rows)} observations: {np.abs(got - expected).max():.3g}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "tune":
            return _tune(args)
        return _export(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"proptrade rl {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
