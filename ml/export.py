"""Fitted pipelines to ONNX files that say what they expect, and the checks that hold them to it.

- **Whole pipeline, pinned opsets.** The fitted ``Pipeline`` (cast, fill, scale, estimator) is converted as one
  graph by ``skl2onnx.to_onnx`` from a float32 sample, at ``TARGET_OPSET`` (main domain 17, ``ai.onnx.ml`` 3:
  what the pinned onnxruntime runs and the pinned skl2onnx writes for every model kind here). Classifiers are
  converted with ``zipmap`` off: their probabilities come out as one float32 tensor, not a list of dicts.
- **Metadata in the file.** ``ModelMeta`` (as JSON under the metadata key ``proptrade.model``): the target,
  the model kind, the input feature names in order, the feature spec's hash and text, the label parameters,
  the training data's name and hash, the metrics, the classes, the library versions and ``MODEL_FORMAT``. The
  file's producer is ``proptrade.ml``.
- **Refused on mismatch.** ``check_spec`` refuses a model whose spec hash is not the running code's (a formula
  or parameter changed) or whose input names are not the spec's model columns in order (``SpecMismatch``).
- **Parity.** ``parity`` runs the file in onnxruntime and the pipeline in scikit-learn on the same rows: the
  largest absolute difference of the outputs (probabilities or values) and the count of differing classes.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
import skl2onnx
import sklearn
from sklearn.pipeline import Pipeline

from .dataset import model_features
from .features import FeatureSpec, to_float32

__all__ = [
    "MODEL_FORMAT",
    "ModelMeta",
    "Parity",
    "SpecMismatch",
    "TARGET_OPSET",
    "check_spec",
    "export_model",
    "onnx_outputs",
    "parity",
    "read_meta",
    "to_onnx_bytes",
    "versions",
]

#: opsets of the exported graphs: the main ONNX domain and the ML domain (tree ensembles, imputer, scaler)
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
#: version of the metadata layout below; a reader refuses a newer one
MODEL_FORMAT = 1
#: the metadata key that holds ``ModelMeta`` as JSON
META_KEY = "proptrade.model"


class SpecMismatch(ValueError):
    """A model file made for other features than the running code computes (or not a model of ours)."""


@dataclass(frozen=True)
class ModelMeta:
    """What a model file says about itself."""

    #: "return", "direction" or "adverse"
    target: str
    #: "linear", "forest" or "mlp"
    kind: str
    #: the model's input columns, in order (feature names of the spec)
    feature_names: list[str]
    spec_hash: str
    spec_json: str
    #: ``ml.labels.LabelParams`` as a dict
    label_params: dict[str, Any]
    data_name: str
    data_hash: str
    #: split name -> metric name -> value, the model's and the baselines' (see ``ml.cli``)
    metrics: dict[str, Any]
    #: class labels in the order of the probability columns (empty for the return)
    classes: list[float] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    format: int = MODEL_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, allow_nan=True)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("format", 0) > MODEL_FORMAT:
            raise SpecMismatch(f"model metadata of format {raw.get('format') if isinstance(raw, dict) else '?'}; "
                               f"this code reads {MODEL_FORMAT} and older")  # fmt: skip
        try:
            return cls(**raw)
        except TypeError as e:
            raise SpecMismatch(f"model metadata does not fit ModelMeta: {e}") from None


def versions() -> dict[str, str]:
    """The versions of what trains and runs a model."""
    return {"python": platform.python_version(), "numpy": np.__version__, "sklearn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}  # fmt: skip


def to_onnx_bytes(pipeline: Pipeline, n_inputs: int, meta: ModelMeta | None = None) -> bytes:
    """The fitted pipeline as a serialised ONNX model (see the module docstring)."""
    sample = np.zeros((1, n_inputs), dtype=np.float32)
    model = pipeline.steps[-1][1]
    options = {id(model): {"zipmap": False}} if hasattr(model, "classes_") else None
    proto = skl2onnx.to_onnx(pipeline, sample, target_opset=TARGET_OPSET, options=options)
    proto.producer_name = "proptrade.ml"
    if meta is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, meta.to_json()
        proto.doc_string = f"{meta.kind} {meta.target} predictor on {len(meta.feature_names)} features"
    data: bytes = proto.SerializeToString()
    return data


def export_model(pipeline: Pipeline, path: str | Path, meta: ModelMeta) -> Path:
    """Writes the model file (its folder made if needed); returns its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(to_onnx_bytes(pipeline, len(meta.feature_names), meta))
    return out


def read_meta(path: str | Path) -> ModelMeta:
    """The metadata of a model file; ``SpecMismatch`` if it has none of ours."""
    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == META_KEY:
            return ModelMeta.from_json(entry.value)
    raise SpecMismatch(f"{path}: no {META_KEY} metadata: not a proptrade model")


def check_spec(meta: ModelMeta, spec: FeatureSpec) -> None:
    """Refuses (``SpecMismatch``) a model made under other features than ``spec`` computes."""
    if meta.spec_hash != spec.spec_hash():
        raise SpecMismatch(f"the model was trained on features {meta.spec_hash}; this code computes "
                           f"{spec.spec_hash()} (a formula or a parameter differs): retrain it")  # fmt: skip
    expected = model_features(spec)
    if meta.feature_names != expected:
        raise SpecMismatch(f"the model reads {meta.feature_names}; the spec's model columns are {expected}")


def onnx_outputs(session: onnxruntime.InferenceSession) -> list[str]:
    """The output a predictor reads: the probabilities of a classifier, the value of a regressor."""
    names = [o.name for o in session.get_outputs()]
    return ["probabilities"] if "probabilities" in names else [names[0]]


@dataclass(frozen=True)
class Parity:
    rows: int
    #: the largest absolute difference of probabilities (classifier) or values (regressor)
    max_abs: float
    #: the largest difference relative to max(1, |scikit-learn's value|)
    max_rel: float
    #: rows whose predicted class differs (0 for a regressor)
    class_mismatches: int


def parity(pipeline: Pipeline, model_bytes: bytes, x: npt.NDArray[np.float64]) -> Parity:
    """onnxruntime against scikit-learn on the rows ``x`` (float64 features, cast as the pipeline casts)."""
    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    x32 = to_float32(x)
    feed = {session.get_inputs()[0].name: x32}
    model = pipeline.steps[-1][1]
    if hasattr(model, "classes_"):
        label, proba = session.run(["label", "probabilities"], feed)
        ref = pipeline.predict_proba(x32)
        ref_label = pipeline.predict(x32)
        mismatches = int(np.sum(np.asarray(label).reshape(-1) != ref_label))
        diff = np.abs(np.asarray(proba, dtype=np.float64) - ref)
        rel = diff / np.maximum(1.0, np.abs(ref))
    else:
        (value,) = session.run(onnx_outputs(session), feed)
        ref = pipeline.predict(x32).reshape(-1)
        diff = np.abs(np.asarray(value, dtype=np.float64).reshape(-1) - ref)
        rel = diff / np.maximum(1.0, np.abs(ref))
        mismatches = 0
    return Parity(len(x), float(diff.max(initial=0.0)), float(rel.max(initial=0.0)), mismatches)
