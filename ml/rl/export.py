"""A trained SB3 policy as one ONNX graph: normalise -> policy (deterministic action) -> the env's action scaling.

SB3's own export guide leaves out what stands around ``model.policy``: ``VecNormalize``'s observation statistics
(an env wrapper, not part of the policy), the clipping or unsquashing that ``predict`` applies, and the env's
rescaling of an action into quotes. Here they are one graph, so a strategy needs nothing but the file:

- input ``obs``: float32 ``[batch, n_obs]``, the env's observation as it comes out of ``step``;
- ``clip((obs - mean) / sqrt(var + eps), -clip_obs, clip_obs)`` with the VecNormalize statistics (identity
  without them);
- the deterministic action as ``predict(obs, deterministic=True)`` gives it: PPO's Gaussian mean clipped to
  the Box [-1, 1], SAC's ``tanh`` of its mean (already in [-1, 1]), or for a MultiDiscrete action the argmax of
  each sub-space's logits;
- output ``action``: that action (float32; the grid indices for MultiDiscrete), and ``quote``: the env's
  scaling of it, ``(bid offset ticks, ask offset ticks, size lots)`` on the engine env, ``(bid offset, ask
  offset)`` in price units on the AS env, as ``decode_action`` computes them.

Exported with ``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter: the dynamo one needs
onnxscript) at a pinned opset; the model's metadata records the env kind, observation names, the normalisation
and (engine env) the env config the observation's scaling reads. ``onnx_session`` opens it as the hot path
should: one intra-op and one inter-op thread, sequential, no spinning (docs/ML.md's runtime rule); it and
``OnnxPolicy`` live in ``ml.rl.policy``, which needs onnxruntime and not torch, so a strategy never loads torch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from .as_env import AS_OBS_NAMES, ASMarketEnv
from .engine_env import OBS_EXTRA_NAMES, EngineMarketEnv
from .policy import OnnxPolicy, env_config_json, onnx_session

__all__ = ["OPSET", "OnnxPolicy", "export_onnx", "onnx_session"]

#: the ONNX opset the graph is written with
OPSET = 17


class _Normalise(nn.Module):
    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, mean: npt.NDArray[Any], var: npt.NDArray[Any], eps: float, clip: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(1.0 / np.sqrt(var + eps), dtype=torch.float32))
        self.clip = float(clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.clamp((obs - self.mean) * self.scale, -self.clip, self.clip)


class _Graph(nn.Module):
    """normalise -> deterministic action -> the env's quote scaling."""

    lo: torch.Tensor
    half_span: torch.Tensor
    norm: nn.Module
    features: nn.Module
    latent: nn.Module
    head: nn.Module

    def __init__(self, model: BaseAlgorithm, env: EngineMarketEnv | ASMarketEnv, norm: VecNormalize | None) -> None:
        super().__init__()
        rms = norm.obs_rms if norm is not None and norm.norm_obs else None
        if rms is not None and not isinstance(rms, RunningMeanStd):
            raise TypeError("only a Box observation's VecNormalize statistics are exported")
        self.norm = (
            _Normalise(rms.mean, rms.var, norm.epsilon, norm.clip_obs) if rms is not None and norm else nn.Identity()
        )
        policy: Any = model.policy  # SB3 types it as BasePolicy; the attributes below are PPO's and SAC's
        self.is_sac = isinstance(model, SAC)
        self.action_space = model.action_space
        if self.is_sac:
            actor = policy.actor
            self.features = actor.features_extractor
            self.latent = actor.latent_pi
            self.head = actor.mu
        elif isinstance(model, PPO):
            self.features = policy.features_extractor
            self.latent = policy.mlp_extractor.policy_net
            self.head = policy.action_net
        else:
            raise TypeError(f"only PPO and SAC policies are exported, not {type(model).__name__}")
        self.discrete = isinstance(self.action_space, spaces.MultiDiscrete)
        self.nvec = [int(n) for n in self.action_space.nvec] if self.discrete else []  # type: ignore[attr-defined]
        # the env's scaling, as constants: quote = lo + (a + 1) / 2 * span per output, sizes rounded
        if isinstance(env, EngineMarketEnv):
            c = env.config
            lo = [c.min_offset_ticks, c.min_offset_ticks, float(c.min_size_lots)]
            span = [c.max_offset_ticks - c.min_offset_ticks] * 2 + [float(c.max_size_lots - c.min_size_lots)]
            self.round_last = True
            grids = [np.linspace(c.min_offset_ticks, c.max_offset_ticks, c.discrete_offsets)] * 2
            grids.append(np.array([round(x) for x in np.linspace(c.min_size_lots, c.max_size_lots, c.discrete_sizes)]))
            self.grids = nn.ParameterList([nn.Parameter(torch.tensor(g, dtype=torch.float32), requires_grad=False)
                                           for g in grids])  # fmt: skip
        else:
            a = env.config
            lo = [a.min_offset] * 2
            span = [a.max_offset - a.min_offset] * 2
            self.round_last = False
            self.grids = nn.ParameterList()
        self.register_buffer("lo", torch.tensor(lo, dtype=torch.float32))
        self.register_buffer("half_span", torch.tensor(span, dtype=torch.float32) / 2.0)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.norm(obs)
        out = self.head(self.latent(self.features(x)))
        if self.discrete:
            parts = torch.split(out, self.nvec, dim=1)
            idx = [torch.argmax(p, dim=1, keepdim=True) for p in parts]
            action = torch.cat(idx, dim=1).to(torch.float32)
            quote = torch.cat([g[i] for g, i in zip(self.grids, idx, strict=True)], dim=1)
            return action, quote
        action = torch.tanh(out) if self.is_sac else torch.clamp(out, -1.0, 1.0)
        quote = self.lo + (action + 1.0) * self.half_span
        if self.round_last:
            quote = torch.cat([quote[:, :-1], torch.round(quote[:, -1:])], dim=1)
        return action, quote


def _obs_names(env: EngineMarketEnv | ASMarketEnv) -> list[str]:
    if isinstance(env, EngineMarketEnv):
        return env.config.feature_spec.names() + list(OBS_EXTRA_NAMES)
    return list(AS_OBS_NAMES)


def export_onnx(
    model: BaseAlgorithm,
    path: str | Path,
    *,
    env: EngineMarketEnv | ASMarketEnv,
    vecnormalize: VecNormalize | None = None,
) -> Path:
    """Writes ``model``'s deterministic policy, with ``vecnormalize``'s statistics and ``env``'s action scaling,
    as ONNX at ``path``; returns the path."""
    import onnx

    path = Path(path)
    graph = _Graph(model, env, vecnormalize).eval()
    n_obs = int(np.prod(env.observation_space.shape or (0,)))
    dummy = torch.zeros((1, n_obs), dtype=torch.float32)
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter is chosen on purpose (the dynamo one needs onnxscript): not news each time
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            (dummy,),
            str(path),
            input_names=["obs"],
            output_names=["action", "quote"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}, "quote": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    meta = {
        "env": "engine" if isinstance(env, EngineMarketEnv) else "as",
        "algo": type(model).__name__,
        "obs_names": json.dumps(_obs_names(env)),
        "action_kind": "discrete" if graph.discrete else "box",
        "normalised": json.dumps(vecnormalize is not None and vecnormalize.norm_obs),
    }
    if isinstance(env, EngineMarketEnv):
        meta["feature_spec_hash"] = env.config.feature_spec.spec_hash()
        meta["env_config"] = env_config_json(env.config)
        # the data time of one env step: the flow's on the engine env, step_ns on the recorded env
        cfg = env.config
        meta["step_ns"] = str(getattr(cfg, "step_ns", cfg.flow_commands_per_step * cfg.flow_ts_step_ns))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path
