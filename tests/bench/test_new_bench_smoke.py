"""The benchmarks of the strategies, ML, recording, journal and Binance replay at a tiny size, so they cannot
rot: each runs to the end and prints its table. No speed is asserted (docs/BENCHMARKS.md has the figures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
AAPL = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
AAPL_BOOK = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
BINANCE = DATA / "binance" / "usdm_btcusdt_20240808.gz"


def _run(*args: str, timeout: float = 180) -> str:
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_the_as_model_benchmark_runs() -> None:
    assert "steps/s" in _run("bench/as_model_bench.py", "--paths", "2", "--sims", "10", "--runs", "1")


def test_the_journal_benchmark_runs(tmp_path: Path) -> None:
    assert _run("bench/journal_bench.py", "--records", "4096", "--runs", "1", "--dir", str(tmp_path), "--out",
                str(tmp_path))  # fmt: skip


def test_the_features_benchmark_runs() -> None:
    assert _run("bench/features_bench.py", "--commands", "500", "--runs", "1")


def test_the_binance_replay_benchmark_runs() -> None:
    if not BINANCE.exists():
        pytest.skip(f"Binance sample not found at {BINANCE} (the shared data folder beside the project)")
    assert _run("bench/binance_replay_bench.py", "--runs", "1")


def test_the_recording_benchmark_runs() -> None:
    if not (AAPL.exists() and BINANCE.exists()):
        pytest.skip(f"LOBSTER/Binance samples not found in {DATA} (the shared data folder beside the project)")
    assert _run("bench/recording_bench.py", "--lobster", str(AAPL), str(AAPL_BOOK), "--commands", "1000", "--runs",
                "1")  # fmt: skip


def test_the_replay_benchmark_runs() -> None:
    out = _run("bench/replay_bench.py", "--messages", "20000", "--runs", "1", "--binance", str(ROOT / "absent"))
    assert "synthetic day, strategy on every top change" in out


def test_the_ml_benchmark_runs() -> None:
    assert _run("bench/ml_bench.py", "--train", "2000", "--rows", "200", "--events", "500")


def test_the_rl_benchmark_runs() -> None:
    assert _run("bench/rl_bench.py", "--steps", "500", "--runs", "1")
