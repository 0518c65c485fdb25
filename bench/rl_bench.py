"""RL environment throughput, single and vectorised, on both envs; ONNX policy latency against SB3 ``predict``.

::

    .venv/bin/python bench/rl_bench.py [--steps 20000] [--runs 5] [--seed 1] [--no-policy] [--json OUT.json]

Each figure is the median of ``--runs`` timed runs after one untimed warm-up run, with ``time.perf_counter_ns``
around whole loops (no per-step clock reads). Actions are drawn before the clock starts. Beside each wall-clock
rate (``..._steps_s``) is the rate per second of this process's CPU time (``..._steps_cpu_s``,
``time.process_time_ns``), which other work on a shared machine disturbs far less.

- *engine env, single*: ``EngineMarketEnv.step`` called directly (no gymnasium wrappers), resets included
  (an episode's reset builds a fresh engine and warms its book), with uniform random actions (both quotes move
  nearly every step: a modify per side per step, the worst case) and with one constant action (quotes move only
  when the mid does);
- *engine env, vectorised*: SB3's ``DummyVecEnv`` of 4 envs in this process, and ``SubprocVecEnv`` of 2 (one
  process per core of these machines): env steps per second over all envs;
- *AS env*: ``ASMarketEnv`` single, and ``ASVecEnv`` of 256 paths in numpy;
- *recorded env*: ``RecordedMarketEnv`` on the LOBSTER AAPL sample (100 ms steps, 100-step windows) and on the
  GOOG day (1 s steps, 1,000-step windows), random actions, resets included, when ../shared/data is there;
- *policy*: a PPO policy (the default MLP, untrained: latency does not depend on the weights) exported by
  ``ml.rl.export`` and run by onnxruntime (1 thread, sequential) on one observation, against SB3's
  ``model.predict(obs, deterministic=True)``; p50 and p99 over single calls.

Prints the parameters, the CPU model and the commit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_common import cpu_model, git_commit  # noqa: E402
from ml.rl import ASMarketEnv, EngineMarketEnv, make_vec_env  # noqa: E402

#: the files whose changes the commit label reports as dirty
SOURCES = ("ml/rl", "bench/rl_bench.py", "c_engine/flow.py", "ml/features", "strategies/as_model.py",
           "strategies/backtest")  # fmt: skip


#: the shared market data samples (outside the repository)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def median_rate(fn: Callable[[], int], runs: int) -> tuple[float, float]:
    """Medians of ``runs`` timed calls of ``fn`` (which returns how many steps it took): steps per second of wall
    time and per second of this process's CPU time."""
    fn()
    rates, cpu_rates = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        n = fn()
        c1, t1 = time.process_time_ns(), time.perf_counter_ns()
        rates.append(n / ((t1 - t0) / 1e9))
        cpu_rates.append(n / (max(c1 - c0, 1) / 1e9))
    return statistics.median(rates), statistics.median(cpu_rates)


def single_env_rate(env: Any, actions: np.ndarray, seed: int, runs: int) -> tuple[float, float]:
    def run() -> int:
        env.reset(seed=seed)
        step = env.step
        for a in actions:
            _, _, term, trunc, _ = step(a)
            if term or trunc:
                env.reset()
        return len(actions)

    return median_rate(run, runs)


def vec_env_rate(venv: Any, actions: np.ndarray, runs: int) -> tuple[float, float]:
    def run() -> int:
        venv.reset()
        for a in actions:
            venv.step(a)
        return len(actions) * int(venv.num_envs)

    return median_rate(run, runs)


def _rates(label: str, rates: tuple[float, float]) -> dict[str, float]:
    return {f"{label}_steps_s": rates[0], f"{label}_steps_cpu_s": rates[1]}


def recorded_rates(rng: np.random.Generator, args: argparse.Namespace) -> dict[str, float]:
    """The recorded env on the LOBSTER samples, when the shared data is there."""
    from ml.rl.recorded_env import RecordedEnvConfig, RecordedMarketEnv

    out: dict[str, float] = {}
    lobster = DATA / "lobster"
    for label, name, step_ns, horizon in (
        ("recorded_aapl", "AAPL_2012-06-21_34200000_57600000_message_10.csv", 100_000_000, 100),
        ("recorded_goog", "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz", 1_000_000_000, 1000),
    ):
        if not (lobster / name).exists():
            print(f"  {label}: {lobster / name} absent, skipped")
            continue
        env = RecordedMarketEnv(RecordedEnvConfig(data=str(lobster / name), step_ns=step_ns, horizon_steps=horizon))
        actions = rng.uniform(-1, 1, (max(args.steps // 10, 200), 3)).astype(np.float32)
        out |= _rates(f"{label}_random", single_env_rate(env, actions, args.seed, args.runs))
    return out


def policy_latency(runs: int, seed: int) -> dict[str, float]:
    import onnxruntime as ort
    from stable_baselines3 import PPO

    from ml.rl.export import export_onnx, onnx_session

    env = EngineMarketEnv()
    model = PPO("MlpPolicy", env, seed=seed, device="cpu")
    obs_rows = []
    obs, _ = env.reset(seed=seed)
    for _ in range(200):
        obs_rows.append(obs)
        obs, *_ = env.step(env.action_space.sample())
    calls = 2000 * runs
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.onnx"
        export_onnx(model, path, env=env)
        session: ort.InferenceSession = onnx_session(path)
        name = session.get_inputs()[0].name
        out: dict[str, float] = {}
        for label, fn in (
            ("onnx", lambda o: session.run(None, {name: o[None, :]})),
            ("sb3_predict", lambda o: model.predict(o, deterministic=True)),
        ):
            for o in obs_rows[:50]:
                fn(o)
            times = []
            for i in range(calls):
                o = obs_rows[i % len(obs_rows)]
                t0 = time.perf_counter_ns()
                fn(o)
                times.append(time.perf_counter_ns() - t0)
            times.sort()
            out[f"{label}_p50_us"] = times[len(times) // 2] / 1e3
            out[f"{label}_p99_us"] = times[int(len(times) * 0.99)] / 1e3
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="steps per timed run (single envs)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-policy", action="store_true", help="skip the ONNX vs SB3 predict latency")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"rl_bench: steps {args.steps}, runs {args.runs} (median), seed {args.seed}")
    print(f"cpu: {cpu_model()}; commit {git_commit(*SOURCES)}")
    results: dict[str, float] = {}

    engine = EngineMarketEnv()
    random3 = rng.uniform(-1, 1, (args.steps, 3)).astype(np.float32)
    const3 = np.tile(engine.encode_quote(1.5, 1.5, 5), (args.steps, 1))
    results |= _rates("engine_single_random", single_env_rate(engine, random3, args.seed, args.runs))
    results |= _rates("engine_single_constant", single_env_rate(engine, const3, args.seed, args.runs))
    t0 = time.perf_counter_ns()
    for i in range(20):
        engine.reset(seed=i)
    results["engine_reset_ms"] = (time.perf_counter_ns() - t0) / 20 / 1e6

    vec_steps = max(args.steps // 4, 100)
    for label, n, sub in (("engine_dummy4", 4, False), ("engine_subproc2", 2, True)):
        venv = make_vec_env("engine", n, seed=args.seed, subprocess=sub)
        actions = rng.uniform(-1, 1, (vec_steps, n, 3)).astype(np.float32)
        results |= _rates(f"{label}_random", vec_env_rate(venv, actions, args.runs))
        venv.close()

    as_env = ASMarketEnv()
    random2 = rng.uniform(-1, 1, (args.steps, 2)).astype(np.float32)
    results |= _rates("as_single_random", single_env_rate(as_env, random2, args.seed, args.runs))
    as_vec = make_vec_env("as", 256, seed=args.seed)
    as_actions = rng.uniform(-1, 1, (max(args.steps // 50, 50), 256, 2)).astype(np.float32)
    results |= _rates("as_vec256_random", vec_env_rate(as_vec, as_actions, args.runs))
    results |= recorded_rates(rng, args)

    if not args.no_policy:
        results.update(policy_latency(args.runs, args.seed))

    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"  {key:<{width}}  {value:12,.1f}")
    if args.json:
        args.json.write_text(json.dumps({"params": vars(args) | {"json": str(args.json)}, "results": results,
                                         "cpu": cpu_model(), "commit": git_commit(*SOURCES)}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
