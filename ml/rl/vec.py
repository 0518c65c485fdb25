"""Vectorised envs for throughput: the AS model as numpy over many paths, and the engine env by process.

- ``ASVecEnv`` steps ``n_envs`` paths of the Avellaneda-Stoikov model in one set of numpy operations (a
  stable-baselines3 ``VecEnv``). Each path is drawn exactly as ``ASMarketEnv`` draws it (the env's seed seeds a
  ``np_random``, which draws the path's PCG64 seed; the path's ``(N, 3)`` uniforms are drawn at its reset), so
  env ``i`` seeded ``s`` gives, step for step, what ``ASMarketEnv`` seeded ``s`` gives (tested). Finished
  paths are reset at once, SB3's way: the step returns the new path's first observation and puts the last one
  in ``info["terminal_observation"]``.
- The engine env has one C engine per env and no cross-env batch to take: ``make_vec_env("engine", ...)``
  gives SB3's ``DummyVecEnv`` (one process) or ``SubprocVecEnv`` (a process per env, ``subprocess=True``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from .as_env import ASEnvConfig, ASMarketEnv
from .engine_env import EngineEnvConfig, EngineMarketEnv
from .recorded_env import RecordedEnvConfig, RecordedMarketEnv

__all__ = ["ASVecEnv", "EnvKind", "make_env", "make_vec_env"]

#: the markets: the engine against synthetic flow, the AS model, the engine against recorded data
EnvKind = Literal["engine", "as", "recorded"]


class ASVecEnv(VecEnv):
    """``n_envs`` paths of the AS model stepped together; see the module docstring."""

    def __init__(self, n_envs: int, config: ASEnvConfig | None = None) -> None:
        self.config = cfg = config or ASEnvConfig()
        probe = ASMarketEnv(cfg)
        self.render_mode = None  # read by VecEnv.__init__ through get_attr
        super().__init__(n_envs, probe.observation_space, probe.action_space)
        m = cfg.model
        self._n_steps = m.n_steps
        self._move = m.sigma_price_per_sqrt_time * math.sqrt(m.step_time)
        self._a_dt = m.a_per_time * m.step_time
        self._k = m.k_per_price
        self._sure = math.log(self._a_dt) / self._k
        self._mid_scale = m.sigma_price_per_sqrt_time * math.sqrt(m.horizon_time)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(n_envs)]
        self._draws = np.zeros((n_envs, self._n_steps, 3))
        self._step = np.zeros(n_envs, dtype=np.int64)
        self._mid = np.full(n_envs, m.start_mid_price)
        self._q = np.zeros(n_envs, dtype=np.int64)
        self._cash = np.zeros(n_envs)
        self._actions = np.zeros((n_envs, 2))
        self._rows = np.arange(n_envs)

    def _reset_path(self, i: int) -> None:
        rng = self._rngs[i]
        path_seed = int(rng.integers(0, 2**63 - 1))
        self._draws[i] = np.random.Generator(np.random.PCG64(path_seed)).random((self._n_steps, 3))
        self._step[i] = 0
        self._mid[i] = self.config.model.start_mid_price
        self._q[i] = 0
        self._cash[i] = 0.0

    def _observe(self) -> npt.NDArray[np.float32]:
        m = self.config.model
        obs = np.empty((self.num_envs, 3), dtype=np.float32)
        obs[:, 0] = self._q / self.config.inventory_scale
        obs[:, 1] = (self._n_steps - self._step) * m.step_time / m.horizon_time
        obs[:, 2] = (self._mid - m.start_mid_price) / self._mid_scale
        return obs

    def reset(self) -> VecEnvObs:
        for i in range(self.num_envs):
            if self._seeds[i] is not None:
                self._rngs[i] = seeding.np_random(self._seeds[i])[0]
            self._reset_path(i)
        self._reset_seeds()
        self._reset_options()
        return self._observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2)

    def step_wait(self) -> VecEnvStepReturn:
        cfg = self.config
        a = np.clip(self._actions, -1.0, 1.0)
        half = (cfg.max_offset - cfg.min_offset) / 2.0
        bid_off = cfg.min_offset + (a[:, 0] + 1.0) * half
        ask_off = cfg.min_offset + (a[:, 1] + 1.0) * half
        u = self._draws[self._rows, self._step]
        mid = self._mid
        sure = self._sure
        bid_hit = (bid_off <= sure) | (u[:, 1] < self._a_dt * np.exp(-self._k * np.maximum(bid_off, sure)))
        ask_hit = (ask_off <= sure) | (u[:, 2] < self._a_dt * np.exp(-self._k * np.maximum(ask_off, sure)))
        self._cash += np.where(ask_hit, mid + ask_off, 0.0) - np.where(bid_hit, mid - bid_off, 0.0)
        self._q += bid_hit.astype(np.int64) - ask_hit.astype(np.int64)
        new_mid = mid + np.where(u[:, 0] < 0.5, self._move, -self._move)
        spread_capture = np.where(bid_hit, bid_off, 0.0) + np.where(ask_hit, ask_off, 0.0)
        q = self._q
        inventory_pnl = q * (new_mid - mid)
        penalty = cfg.inventory_penalty * q * q
        rewards = (cfg.reward_scale * (spread_capture + inventory_pnl - penalty)).astype(np.float32)
        self._mid = new_mid
        self._step += 1
        terminated = np.zeros(self.num_envs, dtype=bool)
        if cfg.max_inventory is not None:
            terminated = np.abs(q) >= cfg.max_inventory
        truncated = (self._step >= self._n_steps) & ~terminated
        dones = terminated | truncated
        obs = self._observe()
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones).tolist():
            infos[i]["terminal_observation"] = obs[i].copy()
            infos[i]["TimeLimit.truncated"] = bool(truncated[i])
            infos[i]["episode_profit"] = float(self._cash[i] + q[i] * new_mid[i])
            self._reset_path(i)
        if dones.any():
            obs = self._observe()
        return obs, rewards, dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:  # fmt: skip
        raise NotImplementedError("ASVecEnv has no per-env objects to call")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]],
                       indices: VecEnvIndices = None) -> list[bool]:  # fmt: skip
        return [False for _ in self._get_indices(indices)]


def make_env(kind: EnvKind, config: EngineEnvConfig | ASEnvConfig | None = None) -> gym.Env[Any, Any]:
    """One env of ``kind`` with ``config`` (its kind's default when None)."""
    if kind == "engine":
        if config is not None and (not isinstance(config, EngineEnvConfig) or isinstance(config, RecordedEnvConfig)):
            raise TypeError("the engine env takes an EngineEnvConfig")
        return EngineMarketEnv(config)
    if kind == "as":
        if config is not None and not isinstance(config, ASEnvConfig):
            raise TypeError("the AS env takes an ASEnvConfig")
        return ASMarketEnv(config)
    if kind == "recorded":
        if not isinstance(config, RecordedEnvConfig):
            raise TypeError("the recorded env takes a RecordedEnvConfig (with its data file)")
        return RecordedMarketEnv(config)
    raise ValueError(f"unknown env kind {kind!r} (engine, as, recorded)")


def make_vec_env(
    kind: EnvKind,
    n_envs: int,
    config: EngineEnvConfig | ASEnvConfig | None = None,
    *,
    seed: int | None = None,
    subprocess: bool = False,
) -> VecEnv:
    """``n_envs`` envs of ``kind`` as one SB3 ``VecEnv``; env ``i`` is seeded ``seed + i`` at its first reset.

    The AS model is numpy-vectorised (``ASVecEnv``) unless ``subprocess``; the engine env runs in this process
    (``DummyVecEnv``) or one process per env (``SubprocVecEnv``)."""
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    venv: VecEnv
    if kind == "as" and not subprocess:
        if config is not None and not isinstance(config, ASEnvConfig):
            raise TypeError("the AS env takes an ASEnvConfig")
        venv = ASVecEnv(n_envs, config)
    else:
        fns: Sequence[Callable[[], gym.Env[Any, Any]]] = [lambda: make_env(kind, config) for _ in range(n_envs)]
        venv = SubprocVecEnv(list(fns), start_method="fork") if subprocess else DummyVecEnv(list(fns))
    if seed is not None:
        venv.seed(seed)
    return venv
