"""bench/async_client_bench.py at a tiny size, so the benchmark code cannot rot: both kinds timed, sane
percentiles, a ratio, nothing left behind. No speed is asserted (a shared machine; noise at this size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the benchmark needs two cores")


def test_the_async_client_benchmark_runs_and_reports_both_kinds(tmp_path: Path) -> None:
    before = {p.name for p in Path("/dev/shm").glob("pt_asyncbench_*")}
    out = subprocess.run([sys.executable, "bench/async_client_bench.py", "--round-trips", "400", "--block", "200",
                          "--warmup", "50", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    results = json.loads((tmp_path / "async_client.json").read_text())
    for kind in ("sync", "async"):
        lat = results[kind]
        assert lat["n"] == 400
        assert 0 < lat["p50_ns"] <= lat["p99_ns"] <= lat["max_ns"]
    assert results["blocks"] == 2 and results["async_over_sync_p50_median_of_blocks"] > 0
    assert {p.name for p in Path("/dev/shm").glob("pt_asyncbench_*")} == before
