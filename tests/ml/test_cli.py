"""``proptrade ml train`` trains, evaluates, exports and prints the table; ``eval`` scores unseen data only."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.cli import main
from ml.export import read_meta
from ml.features import FeatureSpec

LOBSTER = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
AAPL = LOBSTER / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
BINANCE = LOBSTER.parent / "binance" / "usdm_btcusdt_20240808.gz"


def test_train_prints_models_and_baselines_on_validation_and_test_and_writes_a_checked_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models" / "tiny.onnx"
    assert main(["train", "--data", "synthetic:2500:1", "--tiny", "--target", "adverse", "--fill-horizon", "20",
                 "--markout", "20", "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    for split in ("valid", "test"):
        for row in ("linear", "forest", "mlp", "always flat"):
            assert any(line.startswith(f"{split:<6} {row}") for line in text.splitlines()), (split, row)
    assert "class mismatches 0" in text
    meta = read_meta(out)
    assert meta.target == "adverse" and meta.kind == "forest" and meta.spec_hash == FeatureSpec().spec_hash()
    assert set(meta.metrics) == {"valid", "test"} and "forest" in meta.metrics["test"]


def test_eval_scores_other_data_and_refuses_the_training_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.onnx"
    assert main(["train", "--data", "synthetic:2500:1", "--tiny", "--model", "linear", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--data", "synthetic:1500:2"]) == 0
    text = capsys.readouterr().out
    assert "eval   linear" in text and "eval   last return" in text
    assert main(["eval", "--model", str(out), "--data", "synthetic:2500:1"]) == 2
    assert "never saw" in capsys.readouterr().err


def test_train_reads_a_lobster_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not AAPL.is_file():
        pytest.skip(f"the LOBSTER sample is not at {LOBSTER}")
    out = tmp_path / "aapl.onnx"
    assert main(["train", "--data", str(AAPL), "--tiny", "--target", "return", "--horizon", "5", "--fill-horizon",
                 "10", "--markout", "10", "--out", str(out)]) == 0  # fmt: skip
    assert "r2" in capsys.readouterr().out
    assert read_meta(out).data_name == str(AAPL)


def test_train_reads_a_binance_capture_told_by_its_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not BINANCE.is_file():
        pytest.skip(f"the Binance sample is not at {BINANCE}")
    out = tmp_path / "btc.onnx"
    assert main(["train", "--data", str(BINANCE), "--tiny", "--model", "linear", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"data: binance {BINANCE}") and "class mismatches 0" in text
    meta = read_meta(out)
    assert meta.data_name == str(BINANCE) and meta.kind == "linear"


def test_unreadable_data_is_one_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", "synthetic:x", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "synthetic:COMMANDS" in capsys.readouterr().err
