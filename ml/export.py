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
- **Several models, one graph.** ``joint_model`` puts the models a strategy calls at each decision into one
  graph, so a decision is one onnxruntime run. A run's fixed cost is what a decision pays most for live, where
  it starts on cold caches: onnxruntime's code and the session's structures, not the arithmetic (one run of
  the linear model alone costs 4 us warm and 15-38 us with the caches emptied first). So the graph is kept to
  few nodes, and few kinds of node. Its input (``JOINT_INPUT``) is what each exported model reads: the model
  columns (``joint_columns``: ``ml.dataset.model_features``) as float32, which the C features write there
  themselves at each sample (``ml.features.IncrementalFeatures.sampler``). A graph that took the whole float64
  row and selected and cast the columns itself (``Gather``, ``Cast``) ran 11 % slower warm and 12 % slower
  after reading 24 MB of other data.
  Each model's nodes follow under a prefix (``m0_``, ``m1_``, ...), and a node that repeats an earlier one
  (same operator, attributes and inputs: each pipeline's fill of NaN with 0) is dropped for the earlier one's
  output. The outputs are each model's own (``joint_outputs``: the probabilities of a classifier, the value of a
  regressor); the score a strategy reads is taken from them in Python (``ml.predictor``): a ``MatMul`` and a
  ``Concat`` to compute it in the graph made a cold run about 40 % slower. ``joint_parity`` holds every output to
  scikit-learn's on a set of rows.
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
from onnx import compose, helper
from sklearn.pipeline import Pipeline

from .dataset import model_features
from .features import FeatureSpec, to_float32

__all__ = [
    "MODEL_FORMAT",
    "JOINT_INPUT",
    "ModelMeta",
    "Parity",
    "SpecMismatch",
    "TARGET_OPSET",
    "check_spec",
    "export_model",
    "joint_columns",
    "joint_model",
    "joint_outputs",
    "joint_parity",
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
#: the joint graph's input: the model columns of feature rows (``joint_columns``), float32, (rows, columns)
JOINT_INPUT = "features"


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


def _output_name(proto: onnx.ModelProto) -> str:
    """The output a predictor reads in an exported graph (``onnx_outputs``' choice)."""
    names = [o.name for o in proto.graph.output]
    return "probabilities" if "probabilities" in names else names[0]


def joint_outputs(protos: list[onnx.ModelProto]) -> list[str]:
    """The joint graph's output of each of its models (``protos``: their exported graphs, in order)."""
    return [f"m{k}_{_output_name(proto)}" for k, proto in enumerate(protos)]


def _drop_repeats(nodes: list[onnx.NodeProto], keep: set[str]) -> list[onnx.NodeProto]:
    """``nodes`` (in order) without a node that repeats an earlier one: same domain, operator, attributes and
    inputs (after earlier renames); its outputs are the earlier node's. A node with an output in ``keep`` stays."""
    first: dict[tuple[str, str, tuple[str, ...], tuple[bytes, ...]], onnx.NodeProto] = {}
    renamed: dict[str, str] = {}
    out = []
    for node in nodes:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        key = (node.domain, node.op_type, tuple(node.input), tuple(a.SerializeToString() for a in node.attribute))
        earlier = first.get(key)
        if earlier is None or keep.intersection(node.output):
            first.setdefault(key, node)
            out.append(node)
        else:
            renamed.update(zip(node.output, earlier.output, strict=True))
    return out


def joint_columns(spec: FeatureSpec) -> list[int]:
    """The columns of a whole feature row of ``spec`` that a joint graph reads, in its input's order."""
    names = spec.names()
    return [names.index(n) for n in model_features(spec)]


def joint_model(models: list[tuple[onnx.ModelProto, ModelMeta]], spec: FeatureSpec) -> onnx.ModelProto:
    """One graph of several exported models of one spec: whole feature rows in, each model's output out (see
    the module docstring). Each model's metadata must fit ``spec`` (``check_spec``)."""
    if not models:
        raise ValueError("a joint model needs at least one model")
    tensor = onnx.TensorProto
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    opsets: dict[str, int] = {}
    outputs: list[onnx.ValueInfoProto] = []
    wanted = joint_outputs([proto for proto, _ in models])
    for k, (proto, meta) in enumerate(models):
        check_spec(meta, spec)
        model = compose.add_prefix(proto, f"m{k}_")
        graph = model.graph
        (source,) = [i.name for i in graph.input]
        for node in graph.node:
            node.input[:] = [JOINT_INPUT if name == source else name for name in node.input]
        nodes.extend(graph.node)
        inits.extend(graph.initializer)
        outputs.extend(o for o in graph.output if o.name == wanted[k])
        for opset in model.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    nodes = _drop_repeats(nodes, set(wanted))
    used = {name for node in nodes for name in node.input}
    graph = helper.make_graph(
        nodes,
        "joint",
        [helper.make_tensor_value_info(JOINT_INPUT, tensor.FLOAT, ["rows", len(joint_columns(spec))])],
        outputs,
        [init for init in inits if init.name in used],
    )
    opset_imports = [helper.make_opsetid(domain, version) for domain, version in sorted(opsets.items())]
    joint = helper.make_model(graph, opset_imports=opset_imports, producer_name="proptrade.ml")
    joint.ir_version = max(proto.ir_version for proto, _ in models)
    onnx.checker.check_model(joint)
    return joint


def joint_parity(
    pipelines: list[Pipeline],
    joint: onnx.ModelProto,
    outputs: list[str],
    rows: npt.NDArray[np.float64],
    spec: FeatureSpec,
) -> float:
    """The largest absolute difference between the joint graph's ``outputs`` (onnxruntime; one per pipeline, in
    order) and the pipelines' own (scikit-learn: probabilities of a classifier, values of a regressor, on the
    model columns as float32), on whole feature rows ``rows`` of ``spec``."""
    session = onnxruntime.InferenceSession(joint.SerializeToString(), providers=["CPUExecutionProvider"])
    x32 = to_float32(rows[:, joint_columns(spec)])
    got = session.run(outputs, {JOINT_INPUT: x32})
    worst = 0.0
    for pipeline, value in zip(pipelines, got, strict=True):
        model = pipeline.steps[-1][1]
        want = pipeline.predict_proba(x32) if hasattr(model, "classes_") else pipeline.predict(x32).reshape(-1, 1)
        worst = max(worst, float(np.abs(np.asarray(value, dtype=np.float64).reshape(want.shape) - want).max()))
    return worst
