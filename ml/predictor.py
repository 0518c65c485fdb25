"""``Predictor``: one exported model in onnxruntime, called on one feature row per decision; ``JointPredictor``:
several of them in one session, one call per decision.

Choices, for a process whose core belongs to the trading loop:

- **One session per model file per process.** ``load_predictor`` keeps the predictors it made by path, so a
  strategy started twice, or two strategies on one model, share one session (its thread pools and arena). A
  ``Predictor`` makes its session on first use: one whose model runs only inside a ``JointPredictor`` has none.
- **One run per decision.** A strategy that reads several models (the predictor maker: a signal and the adverse
  selection) runs them as one graph (``ml.export.joint_model``) in a ``JointPredictor``: a run's fixed cost,
  about 4 us warm and several times that on cold caches, is paid once. Its input and each output are bound
  once to arrays of its own (io-binding). The input is the model columns as float32 (``columns``;
  ``ml.export.joint_model``): ``ml.features.IncrementalFeatures.sampler`` has the C features write them
  there at each sample, so no row is made or copied in Python and the graph neither selects nor casts.
  ``run`` runs and reads each score from the output the run wrote, with no feed dict and no output array
  made; ``scores(row)`` copies a whole row's columns in first. It runs
  without ``RunOptions``: onnxruntime's ``run_with_iobinding`` looks a run option up in options it is given,
  and a missing one costs a C++ exception (about 25 us, which made io-binding look slower than ``run`` here).
- **No threads of its own.** ``intra_op_num_threads = 1`` and ``inter_op_num_threads = 1`` with sequential
  execution: a single row is far too small to split, and onnxruntime otherwise starts one pool thread per core,
  pinned. Spinning is off (``session.intra_op.allow_spinning`` and ``session.inter_op.allow_spinning`` "0"), so
  no pool thread burns a core waiting for work that never comes.
- **Pre-allocated input.** The (1, n) float32 input array and the feed dict that names it are made once;
  ``predict_row`` copies the row's model columns into it (the one float64 -> float32 cast of
  ``ml.features.to_float32``) and runs.
- **Refused when the features differ.** Loading reads the file's ``ModelMeta`` and calls ``check_spec``.

``score`` is the number a strategy acts on: the predicted return in bps (return), ``P(up) - P(down)``
(direction), ``P(adverse)`` (adverse); ``JointPredictor.scores`` gives the same numbers for each of its models.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime

from .export import (
    JOINT_INPUT,
    ModelMeta,
    check_spec,
    joint_columns,
    joint_model,
    joint_outputs,
    onnx_outputs,
    read_meta,
)
from .features import FeatureSpec

__all__ = ["JointPredictor", "Predictor", "load_predictor", "session_options"]


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
        names = self.spec.names()
        self.columns = np.array([names.index(n) for n in self.meta.feature_names], dtype=np.intp)
        self._row64 = np.empty(len(self.columns), dtype=np.float64)
        self._input = np.zeros((1, len(self.columns)), dtype=np.float32)
        classes = list(self.meta.classes)
        if self.meta.target == "direction":
            plus = classes.index(1.0) if 1.0 in classes else -1
            minus = classes.index(-1.0) if -1.0 in classes else -1
        else:
            plus, minus = len(classes) - 1 if classes else 0, -1
        #: the output columns whose difference is the score (-1: none, 0 in its place): P(up) and P(down) of a
        #: direction model, the last class of an adverse model, the value of a return model
        self.score_columns = (plus, minus)

    @cached_property
    def session(self) -> onnxruntime.InferenceSession:
        """The model's own session (made on first use)."""
        return onnxruntime.InferenceSession(str(self.path), session_options(), providers=["CPUExecutionProvider"])

    @cached_property
    def outputs(self) -> list[str]:
        """The output ``predict_row`` reads."""
        return onnx_outputs(self.session)

    @cached_property
    def _feed(self) -> dict[str, npt.NDArray[np.float32]]:
        return {self.session.get_inputs()[0].name: self._input}

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
        out = self.predict_row(row).reshape(-1)
        plus, minus = self.score_columns
        return (out.item(plus) if plus >= 0 else 0.0) - (out.item(minus) if minus >= 0 else 0.0)


class JointPredictor:
    """The models of ``predictors`` (one feature spec) as one graph in one session; ``scores(row)`` runs them
    all on one whole feature row (see the module docstring)."""

    def __init__(self, predictors: Sequence[Predictor]) -> None:
        if not predictors:
            raise ValueError("a joint predictor needs at least one model")
        self.predictors = tuple(predictors)
        self.spec = spec = predictors[0].spec
        if any(p.spec.spec_hash() != spec.spec_hash() for p in predictors):
            raise ValueError("the models of a joint predictor must read one feature spec")
        protos = [onnx.load(str(p.path)) for p in predictors]
        self.proto = joint_model(list(zip(protos, (p.meta for p in predictors), strict=True)), spec)
        self.session = onnxruntime.InferenceSession(self.proto.SerializeToString(), session_options(),
                                                    providers=["CPUExecutionProvider"])  # fmt: skip
        #: the columns of a whole feature row (``spec.names()`` order) the graph reads, in its input's order
        self.columns = np.array(joint_columns(spec), dtype=np.intp)
        self._input = np.zeros((1, len(self.columns)), dtype=np.float32)
        binding = self.session.io_binding()
        binding.bind_cpu_input(JOINT_INPUT, self._input)
        shapes = {o.name: o.shape for o in self.session.get_outputs()}
        #: per model: its bound output (one row) and the columns its score adds and subtracts (-1: none)
        self._plan: list[tuple[npt.NDArray[np.float32], int, int]] = []
        for predictor, name in zip(predictors, joint_outputs(protos), strict=True):
            out = np.zeros((1, int(shapes[name][1])), dtype=np.float32)
            binding.bind_output(name, "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
            self._plan.append((out[0], *predictor.score_columns))
        self._binding = binding
        self._run = self.session.run_with_iobinding
        #: the bound input: a feature row's ``columns`` as float32, which ``run`` reads
        self.input: npt.NDArray[np.float32] = self._input[0]

    def run(self) -> list[float]:
        """Each model's score (``Predictor.score``), in the order of ``predictors``, for the row in ``input``
        (a hot path's features write it there: ``ml.features.IncrementalFeatures.sampler``)."""
        self._run(self._binding)
        return [(out.item(plus) if plus >= 0 else 0.0) - (out.item(minus) if minus >= 0 else 0.0)
                for out, plus, minus in self._plan]  # fmt: skip

    def scores(self, row: npt.NDArray[np.float64]) -> list[float]:
        """``run`` on one whole feature row (``spec.names()`` order, float64), its ``columns`` copied into
        ``input`` first (cast to float32, to nearest)."""
        self._input[0] = row[self.columns]
        return self.run()


_LOADED: dict[tuple[Path, str], Predictor] = {}


def load_predictor(path: str | Path, spec: FeatureSpec | None = None) -> Predictor:
    """The process's one ``Predictor`` of ``path`` under ``spec`` (made on first use)."""
    spec = spec or FeatureSpec()
    key = (Path(path).resolve(), spec.spec_hash())
    found = _LOADED.get(key)
    if found is None:
        found = _LOADED[key] = Predictor(path, spec)
    return found
