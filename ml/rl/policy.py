"""The exported policy at run time: onnxruntime only (no torch, no stable-baselines3), so a strategy loads fast.

``onnx_session`` opens a graph written by ``ml.rl.export`` as the hot path should: one intra-op and one inter-op
thread, sequential, no spinning (docs/ML.md's runtime rule). ``OnnxPolicy`` runs it on one observation or a
batch. ``env_config_json`` / ``env_config_from_json`` carry the ``EngineEnvConfig`` fields that shape the
observation and the episode through the model's metadata (``env_config``), so the strategy that runs the policy
builds the observation its env gave (a model exported before the key existed reads as the defaults).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ml.features import FeatureSpec

from .engine_env import EngineEnvConfig

__all__ = ["OnnxPolicy", "env_config_from_json", "env_config_json", "onnx_session"]


def env_config_json(config: EngineEnvConfig) -> str:
    """The config's ``EngineEnvConfig`` fields as JSON (sorted keys; the feature spec as its fields): a
    subclass's own fields (the recorded env's data and timing) are left out, as a strategy does not read them."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(EngineEnvConfig)}
    fields["feature_spec"] = dataclasses.asdict(config.feature_spec)
    return json.dumps(fields, sort_keys=True)


def env_config_from_json(text: str) -> EngineEnvConfig:
    """The config ``env_config_json`` wrote (lists back to tuples, unknown keys refused by the dataclass)."""
    fields: dict[str, Any] = json.loads(text)
    spec: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.pop("feature_spec").items()}
    return EngineEnvConfig(**fields, feature_spec=FeatureSpec(**spec))


def onnx_session(path: str | Path) -> ort.InferenceSession:
    """The exported policy on onnxruntime's CPU provider: 1 intra-op and 1 inter-op thread, sequential,
    spinning off."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxPolicy:
    """An exported policy as an env policy: ``policy(obs, env) -> action`` (what ``evaluate`` calls), and
    ``quote(obs)`` for the scaled quote."""

    def __init__(self, path: str | Path) -> None:
        self.session = onnx_session(path)
        self._input = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        self.env_kind: str = meta.get("env", "")
        self.discrete = meta.get("action_kind") == "discrete"
        #: the metadata map as written by ``export_onnx``
        self.metadata: dict[str, str] = dict(meta)
        self.n_obs = int(self.session.get_inputs()[0].shape[1])

    def run(self, obs: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(action, quote) for a batch of observations, or for one (then rows of one)."""
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        action, quote = self.session.run(None, {self._input: x})
        return action, quote

    def __call__(self, obs: npt.NDArray[np.float32], env: Any = None) -> npt.NDArray[Any]:
        action: npt.NDArray[Any] = self.run(obs)[0][0]
        return action.astype(np.int64) if self.discrete else action

    def quote(self, obs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        quote: npt.NDArray[np.float32] = self.run(obs)[1][0]
        return quote
