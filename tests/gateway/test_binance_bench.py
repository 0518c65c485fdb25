"""bench/binance_api_bench.py runs end to end on a small setting and reports both clients."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "binance_api_bench.py"


def test_the_bench_times_ccxt_and_the_seed_api_in_one_run() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--orders", "50", "--rounds", "1"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert re.search(r"\[0\] ccxt  create\+cancel p50 +[\d.]+ us", out.stdout), out.stdout
    assert re.search(r"\[0\] seed  create\+cancel p50 +[\d.]+ us", out.stdout), out.stdout
    assert re.search(r"ccxt/seed [\d.]+x", out.stdout) and "removed what the run left" not in out.stdout
