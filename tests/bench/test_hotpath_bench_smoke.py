"""bench/hotpath_bench.py at a tiny size, so the benchmark code cannot rot: every section is there and sane.

It starts the real engine process, a ZeroMQ server and (if built) the ring ping-pong echo, with a busy-polling
client: it needs two cores. Nothing here asserts a speed: the machine is shared and the numbers are noise at this
size; only that each latency is positive and its percentiles ordered, and that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "hotpath_bench.py"
TIMEOUT_S = 120  #: usually ~6 s; generous because other test workers may share both cores
SECTIONS = ("b", "b_cancel", "c", "c_cancel", "d", "timer")

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the benchmark needs two cores")


def _run_bench(out: Path) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(BENCH), "--round-trips", "2000", "--zmq-round-trips", "500", "--warmup", "200",
            "--throughput-seconds", "0.2", "--throughput-runs", "2", "--ratio-blocks", "2",
            "--ratio-block-round-trips", "1000", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        stdout, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the bench cleans up its children and segments on SIGTERM
        try:
            stdout, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
        pytest.fail(f"the benchmark ran over {TIMEOUT_S} s:\n{stdout}")
    return subprocess.CompletedProcess(args, proc.returncode, stdout, None)


def _check_latency(name: str, sec: dict[str, Any], n: int) -> None:
    lat = sec["latency"]
    assert lat["n"] == n, name
    assert 0 < lat["p50_ns"] <= lat["p99_ns"] <= lat["p99.9_ns"] <= lat["max_ns"], (name, lat)
    assert lat["mean_ns"] > 0, name


def _leftovers(pid: int) -> tuple[list[str], list[int]]:
    """Segments and processes of the bench run ``pid`` (its engine prefix is pt_hpbench_<pid>_...)."""
    tag = f"pt_hpbench_{pid}_"
    segments = [p.name for p in Path("/dev/shm").iterdir() if p.name.startswith(tag)]
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return segments, pids


def test_a_tiny_run_writes_every_section_with_sane_numbers(tmp_path: Path) -> None:
    result = _run_bench(tmp_path)
    assert result.returncode == 0, result.stdout
    report = json.loads((tmp_path / "hotpath.json").read_text())

    for name in SECTIONS:
        _check_latency(name, report[name], 500 if name.startswith("c") else 2000)
    if (ROOT / "build" / "ring_pingpong").exists():
        _check_latency("a_prime", report["a_prime"], 2000)
        pairs = report["ratio_blocks"]["pairs"]
        assert len(pairs) == 2 and all(r["ratio"] == r["b_p50_ns"] / r["a_prime_p50_ns"] > 0 for r in pairs)
    else:
        assert "skipped" in report["a_prime"]

    e = report["e"]
    assert len(e["runs"]) == 2 and e["median_orders_per_s"] > 0
    for run in e["runs"]:
        assert run["orders"] > 0 and run["events"] == 2 * run["orders"] and run["engine_commands"] == run["orders"]

    assert {t["target"] for t in report["targets"]} >= {"(b) p50 <= 5 us", "(e) >= 1 M orders/s batched"}
    assert report["engine_counters"]["unrouted"] == 0
    assert report["commit"] and report["cpu"]
    assert "targets (docs/BENCHMARKS.md, hot path)" in result.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert (tmp_path / "hotpath.png").stat().st_size > 0


def test_ctrl_c_leaves_no_process_or_segment(tmp_path: Path) -> None:
    """SIGINT in the middle of the engine phases: the engine and every segment are gone when the bench exits."""
    args = [sys.executable, str(BENCH), "--round-trips", "5000000", "--skip", "a,c", "--warmup", "0",
            "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the (b) banner comes once the engine runs
            if line.startswith("==== (b)"):
                break
        else:
            pytest.fail("the bench ended before (b)")
        segments, _ = _leftovers(proc.pid)
        assert segments, "the engine's segments should exist while it runs"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)  # a loaded machine: the stop itself takes well under a second
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest
    assert _leftovers(proc.pid) == ([], [])
