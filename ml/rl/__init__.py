"""Reinforcement-learning market making: environments, analytic baselines, training and ONNX export.

``EngineMarketEnv`` quotes into the in-process C engine against seeded synthetic flow; ``ASMarketEnv`` is the
Avellaneda-Stoikov (2008) model of ``strategies.as_model`` as an env, so results compare with the literature;
``ASVecEnv`` and ``make_vec_env`` vectorise them; ``RecordedMarketEnv`` quotes into a replay of recorded data
(LOBSTER, Binance, engine commands) through the backtest's sources. Modules that need stable-baselines3 (and
so torch) or the backtester are imported when first used, so the envs alone load fast. docs/RL.md states the
contracts and the figures.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .as_env import AS_OBS_NAMES, ASEnvConfig, ASMarketEnv
from .engine_env import OBS_EXTRA_NAMES, EngineEnvConfig, EngineMarketEnv

if _TYPE_CHECKING:
    from .recorded_env import RecordedEnvConfig, RecordedMarketEnv
    from .vec import ASVecEnv, make_env, make_vec_env

#: names served lazily, by module (they import stable-baselines3 and torch, or the backtester)
_LAZY = {
    "ASVecEnv": "vec",
    "RecordedEnvConfig": "recorded_env",
    "RecordedMarketEnv": "recorded_env",
    "make_env": "vec",
    "make_vec_env": "vec",
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ml.rl' has no attribute {name!r}")


__all__ = [
    "ASEnvConfig",
    "ASMarketEnv",
    "ASVecEnv",
    "AS_OBS_NAMES",
    "EngineEnvConfig",
    "EngineMarketEnv",
    "OBS_EXTRA_NAMES",
    "RecordedEnvConfig",
    "RecordedMarketEnv",
    "make_env",
    "make_vec_env",
]
