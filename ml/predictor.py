"""``Predictor``: one exported model in onnxruntime, called on one feature row per decision.

Choices, for a process whose core belongs to the trading loop:

- **One session per model file per process.** ``load_predictor`` keeps the predictors it made by path, so a
  strategy started twice, or two strategies on one model, share one session (its thread pools and arena).
- **No threads of its own.** ``intra_op_num_threads = 1`` and ``inter_op_num_threads = 1`` with sequential
  execution: a single row is far too small to split, and onnxruntime otherwise starts one pool thread per core,
  pinned. Spinning is off (``session.intra_op.allow_spinning`` and ``session.inter_op.allow_spinning`` "0"), so
  no pool thread burns a core waiting for work that never comes.
- **Pre-allocated input.** The (1, n) float32 input array and the feed dict that names it are made once;
  ``predict_row`` copies the row's model columns into it (the one float64 -> float32 cast of
  ``ml.features.to_float32``) and runs.
- **Refused when the features differ.** Loading reads the file's ``ModelMeta`` and calls ``check_spec``.

``score`` is the number a strategy acts on: the predicted return in bps (return), ``P(up) - P(down)``
(direction), ``P(adverse)`` (adverse).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime

from .export import ModelMeta, check_spec, onnx_outputs, read_meta
from .features import FeatureSpec

__all__ = ["Predictor", "load_predictor", "session_options"]


def session_options() -> onnxruntime.SessionOptions:
    """The session options of the module docstring."""
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


class Predictor:
    """A model file, checked against ``spec`` (default ``FeatureSpec()``), ready for single rows."""

    def __init__(self, path: str | Path, spec: FeatureSpec | None = None) -> None:
        self.path = Path(path)
        self.spec = spec or FeatureSpec()
        self.meta: ModelMeta = read_meta(self.path)
        check_spec(self.meta, self.spec)
        self.session = onnxruntime.InferenceSession(str(self.path), session_options(),
                                                    providers=["CPUExecutionProvider"])  # fmt: skip
        names = self.spec.names()
        self.columns = np.array([names.index(n) for n in self.meta.feature_names], dtype=np.intp)
        self._row64 = np.empty(len(self.columns), dtype=np.float64)
        self._input = np.zeros((1, len(self.columns)), dtype=np.float32)
        self._feed = {self.session.get_inputs()[0].name: self._input}
        self.outputs = onnx_outputs(self.session)
        classes = list(self.meta.classes)
        self._up = classes.index(1.0) if 1.0 in classes else -1
        self._down = classes.index(-1.0) if -1.0 in classes else -1

    @property
    def target(self) -> str:
        return self.meta.target

    def predict_row(self, row: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """The model's output for one full feature row (``spec.names()`` order): probabilities or value."""
        np.take(row, self.columns, out=self._row64)
        self._input[0] = self._row64
        out: npt.NDArray[np.float32] = self.session.run(self.outputs, self._feed)[0][0]
        return out

    def score(self, row: npt.NDArray[np.float64]) -> float:
        """The number a strategy acts on (see the module docstring)."""
        out = self.predict_row(row)
        target = self.meta.target
        if target == "return":
            return float(out.reshape(-1)[0])
        if target == "direction":
            up = float(out[self._up]) if self._up >= 0 else 0.0
            down = float(out[self._down]) if self._down >= 0 else 0.0
            return up - down
        return float(out[-1])


_LOADED: dict[tuple[Path, str], Predictor] = {}


def load_predictor(path: str | Path, spec: FeatureSpec | None = None) -> Predictor:
    """The process's one ``Predictor`` of ``path`` under ``spec`` (made on first use)."""
    spec = spec or FeatureSpec()
    key = (Path(path).resolve(), spec.spec_hash())
    found = _LOADED.get(key)
    if found is None:
        found = _LOADED[key] = Predictor(path, spec)
    return found
