"""bench/control_bench.py at a tiny size, so it cannot rot: every op measured, reads that touch the engine
pause the loop once per request and stats never does. No speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_control_benchmark_measures_every_op_and_counts_the_pauses(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "bench/control_bench.py", "--orders", "600", "--levels", "50",
                          "--requests", "20", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    results = json.loads((tmp_path / "control.json").read_text())
    assert results["stats"]["pauses"] == 0
    for label in ("position", "snapshot depth 10", "snapshot full depth", "state_hash"):
        assert results[label]["pauses"] == 20, label
        assert 0 < results[label]["round_trip_p50_us"] <= results[label]["round_trip_p99_us"], label
