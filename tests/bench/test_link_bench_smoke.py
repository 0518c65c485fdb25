"""bench/link_bench.py at a tiny size, so the benchmark code cannot rot: both kinds run and are checked, the
report has every run, its rates and the ratio, nothing is left behind. No speed is asserted (a shared machine;
noise at this size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="the benchmark needs two cores: the engine and the client each spin on one"
)


def leftovers() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("pt_linkbench_*")}


def test_the_link_benchmark_runs_both_kinds_and_reports_every_run(tmp_path: Path) -> None:
    before = leftovers()
    out = subprocess.run([sys.executable, "bench/link_bench.py", "--accounts", "20", "--batch", "8", "--seconds",
                          "0.2", "--runs", "2", "--warmup-seconds", "0.05", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    results = json.loads((tmp_path / "link.json").read_text())
    assert results["params"]["accounts"] == 20 and results["params"]["batch"] == 8
    assert results["commit"] and results["cpu"] and results["cores"]["client"] != results["cores"]["engine"]
    assert len(results["runs"]) == 2
    for pair in results["runs"]:
        for kind in ("link", "one_account"):
            run = pair[kind]
            assert run["orders"] > 0 and run["orders"] % 8 == 0
            assert run["events"] == 2 * run["orders"] == 2 * run["engine_commands"]
            assert run["orders_per_s"] > 0 and run["events_per_s"] == pytest.approx(2 * run["orders_per_s"])
        assert pair["ratio"] == pytest.approx(pair["link"]["orders_per_s"] / pair["one_account"]["orders_per_s"])
    for kind in ("link", "one_account"):
        s = results[kind]
        assert s["min_orders_per_s"] <= s["median_orders_per_s"] <= s["max_orders_per_s"]
    assert results["ratio_median_of_runs"] > 0 and isinstance(results["pass"], bool)
    assert "PASS" in out.stdout or "FAIL" in out.stdout
    assert leftovers() == before


def test_the_link_benchmark_refuses_one_core_for_both_sides(tmp_path: Path) -> None:
    core = min(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "bench/link_bench.py", "--cores", f"{core},{core}", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "refusing" in out.stderr
    assert not (tmp_path / "link.json").exists()
