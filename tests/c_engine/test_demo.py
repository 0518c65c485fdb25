"""`proptrade demo` (what `make run` launches): live output, and a clean stop on --seconds or Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

PROPTRADE = [sys.executable, "-m", "hotpath.cli"]
ROOT = Path(__file__).resolve().parents[2]


def test_demo_prints_top_of_book_throughput_and_latency_then_stops_after_its_seconds() -> None:
    done = subprocess.run([*PROPTRADE, "demo", "--seconds", "1.5"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = [line for line in done.stdout.splitlines() if "M ops/s" in line]
    assert status, done.stdout
    assert "bid" in status[0] and "ask" in status[0] and "p99" in status[0]
    assert "stopped after" in done.stdout


def test_demo_stops_cleanly_on_ctrl_c() -> None:
    proc = subprocess.Popen([*PROPTRADE, "demo"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while "M ops/s" not in proc.stdout.readline():
            assert time.monotonic() < deadline and proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped after" in out and "Traceback" not in err
