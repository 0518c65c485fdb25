"""Every exported model kind agrees with scikit-learn on a whole test set, alone and joined with another in one
graph; model files carry their metadata and are refused under other features; the predictors run single rows
with the session settings they promise."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from ml.data import load_synthetic
from ml.dataset import Dataset, build_dataset, model_features
from ml.export import (
    ModelMeta,
    SpecMismatch,
    export_model,
    joint_model,
    joint_outputs,
    joint_parity,
    parity,
    read_meta,
    to_onnx_bytes,
    versions,
)
from ml.features import FeatureSpec, to_float32
from ml.labels import LabelParams, time_split
from ml.models import MODEL_KINDS, make_model
from ml.predictor import JointPredictor, Predictor, load_predictor, session_options

PARAMS = LabelParams(horizon=10, fill_horizon=20, markout=20)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return build_dataset(load_synthetic(3000, seed=5), FeatureSpec(), PARAMS)


def _fit(ds: Dataset, kind: str, target: str) -> tuple[Pipeline, np.ndarray, np.ndarray]:
    split = time_split(len(ds.features), PARAMS.reach)
    x, y, _ = ds.xy(target, split.train)
    xt, _, _ = ds.xy(target, split.test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_model(kind, target, tiny=True).fit(to_float32(x), y)
    return model, xt, y


def _meta(ds: Dataset, target: str, kind: str, classes: list[float]) -> ModelMeta:
    return ModelMeta(target, kind, model_features(ds.spec), ds.spec.spec_hash(), ds.spec.to_json(),
                     PARAMS.as_dict(), ds.data.name, ds.data.data_hash, {}, classes, versions())  # fmt: skip


@pytest.mark.parametrize("target", ["return", "direction", "adverse"])
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_onnxruntime_agrees_with_scikit_learn_on_the_whole_test_set(dataset: Dataset, kind: str, target: str) -> None:
    model, x_test, _ = _fit(dataset, kind, target)
    check = parity(model, to_onnx_bytes(model, x_test.shape[1]), x_test)
    assert check.rows == len(x_test) > 500
    assert check.class_mismatches == 0
    assert check.max_abs <= 1e-5


def _classes(model: Pipeline) -> list[float]:
    last = model.steps[-1][1]
    return [float(c) for c in last.classes_] if hasattr(last, "classes_") else []


@pytest.mark.parametrize("signal", ["return", "direction"])
@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_a_signal_and_an_adverse_model_in_one_graph_agree_with_scikit_learn_on_the_whole_test_set(
    dataset: Dataset, kind: str, signal: str
) -> None:
    other = MODEL_KINDS[(MODEL_KINDS.index(kind) + 1) % len(MODEL_KINDS)]
    pipelines = [_fit(dataset, kind, signal)[0], _fit(dataset, other, "adverse")[0]]
    metas = [
        _meta(dataset, signal, kind, _classes(pipelines[0])),
        _meta(dataset, "adverse", other, _classes(pipelines[1])),
    ]
    width = len(model_features(dataset.spec))
    protos = [onnx.load_from_string(to_onnx_bytes(p, width, m)) for p, m in zip(pipelines, metas, strict=True)]
    joint = joint_model(list(zip(protos, metas, strict=True)), dataset.spec)
    rows = dataset.features[time_split(len(dataset.features), PARAMS.reach).test]
    assert len(rows) > 500 and np.isnan(rows).any()  # undefined features (NaN) included
    assert joint_parity(pipelines, joint, joint_outputs(protos), rows, dataset.spec) <= 1e-5


def test_a_joint_graph_refuses_a_model_of_other_features(dataset: Dataset) -> None:
    model, x_test, _ = _fit(dataset, "linear", "return")
    meta = _meta(dataset, "return", "linear", [])
    proto = onnx.load_from_string(to_onnx_bytes(model, x_test.shape[1], meta))
    with pytest.raises(SpecMismatch, match="retrain"):
        joint_model([(proto, meta)], dataclasses.replace(FeatureSpec(), ofi_window=11))


def test_hist_gradient_boosting_does_not_convert_under_the_pinned_onnx() -> None:
    # Why the forest is a random forest: when this starts failing, HistGradientBoosting can come back.
    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Pipeline([("model", HistGradientBoostingClassifier(max_iter=3))]).fit(x, y)
    with pytest.raises(ValueError, match="TreeEnsembleClassifier"):
        to_onnx_bytes(model, x.shape[1])


def test_a_model_file_carries_its_feature_names_spec_hash_data_hash_and_versions(
    dataset: Dataset, tmp_path: Path
) -> None:
    model, _, y = _fit(dataset, "forest", "direction")
    path = export_model(model, tmp_path / "m" / "d.onnx", _meta(dataset, "direction", "forest", [-1.0, 0.0, 1.0]))
    meta = read_meta(path)
    assert meta.feature_names == model_features(FeatureSpec())
    assert "queue_ahead_bid" not in meta.feature_names
    assert meta.spec_hash == FeatureSpec().spec_hash() and meta.data_hash == dataset.data.data_hash
    assert set(meta.versions) == {"python", "numpy", "sklearn", "skl2onnx", "onnx", "onnxruntime"}
    assert meta.label_params == PARAMS.as_dict()


def test_a_model_is_refused_when_the_feature_spec_differs(dataset: Dataset, tmp_path: Path) -> None:
    model, _, _ = _fit(dataset, "linear", "return")
    path = export_model(model, tmp_path / "r.onnx", _meta(dataset, "return", "linear", []))
    Predictor(path)  # the running spec: accepted
    with pytest.raises(SpecMismatch, match="retrain"):
        Predictor(path, dataclasses.replace(FeatureSpec(), ofi_window=11))


def test_a_model_whose_feature_names_differ_from_the_spec_is_refused(dataset: Dataset, tmp_path: Path) -> None:
    model, _, _ = _fit(dataset, "linear", "return")
    meta = dataclasses.replace(
        _meta(dataset, "return", "linear", []), feature_names=list(reversed(model_features(FeatureSpec())))
    )
    path = export_model(model, tmp_path / "r.onnx", meta)
    with pytest.raises(SpecMismatch, match="reads"):
        Predictor(path)


def test_an_onnx_file_without_our_metadata_is_refused(dataset: Dataset, tmp_path: Path) -> None:
    model, x_test, _ = _fit(dataset, "linear", "return")
    path = tmp_path / "bare.onnx"
    path.write_bytes(to_onnx_bytes(model, x_test.shape[1]))
    with pytest.raises(SpecMismatch, match="not a proptrade model"):
        read_meta(path)


def test_single_row_predictions_equal_scikit_learn_and_scores_are_what_a_strategy_reads(
    dataset: Dataset, tmp_path: Path
) -> None:
    model, _, _ = _fit(dataset, "forest", "direction")
    classes = [float(c) for c in model.steps[-1][1].classes_]
    path = export_model(model, tmp_path / "d.onnx", _meta(dataset, "direction", "forest", classes))
    predictor = Predictor(path)
    rows = dataset.features[2000:2050]
    expected = model.predict_proba(to_float32(rows[:, predictor.columns]))
    for row, want in zip(rows, expected, strict=True):
        np.testing.assert_allclose(predictor.predict_row(row), want, atol=1e-5)
        assert predictor.score(row) == pytest.approx(want[classes.index(1.0)] - want[classes.index(-1.0)], abs=1e-5)


def test_a_joint_predictor_gives_each_models_score_for_single_rows_from_one_session(
    dataset: Dataset, tmp_path: Path
) -> None:
    predictors = []
    for kind, target in (("forest", "direction"), ("mlp", "return"), ("linear", "adverse")):
        model, _, _ = _fit(dataset, kind, target)
        path = export_model(model, tmp_path / f"{target}.onnx", _meta(dataset, target, kind, _classes(model)))
        predictors.append(Predictor(path))
    joint = JointPredictor(predictors)
    assert not any("session" in vars(p) for p in predictors)  # the joint session is the only one made
    rows = dataset.features[2000:2100]
    got = np.array([joint.scores(row) for row in rows])
    want = np.array([[p.score(row) for p in predictors] for row in rows])
    assert np.ptp(want, axis=0).min() > 0  # the rows give each model more than one score
    np.testing.assert_array_equal(got, want)  # the same float32 outputs, the same arithmetic


def test_one_session_per_model_file_per_process(dataset: Dataset, tmp_path: Path) -> None:
    model, _, _ = _fit(dataset, "linear", "return")
    path = export_model(model, tmp_path / "r.onnx", _meta(dataset, "return", "linear", []))
    assert load_predictor(path) is load_predictor(str(path))


def test_the_session_runs_one_thread_sequentially_without_spinning() -> None:
    opts = session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.execution_mode.name == "ORT_SEQUENTIAL"
