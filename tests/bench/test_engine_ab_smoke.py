"""bench/engine_ab.c at a tiny size, so the A/B tool cannot rot: two builds of the engine (HEAD and the working
tree) in one binary, replaying engine_bench's stream in alternating blocks, must both run it and end in the same
state. Nothing here asserts a speed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("git", "cc", "nm", "objcopy", "make")

pytestmark = [
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="engine_ab builds BASE from git: not a git checkout"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason=f"needs {', '.join(TOOLS)}"),
]


def _run(*args: str | Path) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{args[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_two_builds_replay_the_mix_to_the_same_state(tmp_path: Path) -> None:
    _run("make", "-s", "build/engine_bench")
    _run("bench/build_ab.sh", "HEAD", tmp_path / "ab")
    commands = tmp_path / "commands.bin"
    _run(ROOT / "build" / "engine_bench", "--ops", "20000", "--warmup", "0", "--dump-commands", commands)
    assert commands.stat().st_size == (5000 + 20000) * 64  # prefill, then the ops: one 64-byte command each

    out = _run(tmp_path / "ab" / "engine_ab", "--commands", commands, "--block", "5000", "--label-a", "head")
    assert re.search(r"^a\s+head\s+[\d.]+ M ops/s over all rounds \(20000 ops", out, re.M), out
    assert re.search(r"^b\s+b\s+[\d.]+ M ops/s over all rounds \(20000 ops", out, re.M), out
    assert "over 4 rounds of 5000 ops" in out, out
    assert re.search(r"^end state\s+identical", out, re.M), out

    # --latency: both builds' percentiles per op kind over the same rounds, and the per-round p99 ratio
    out = _run(tmp_path / "ab" / "engine_ab", "--commands", commands, "--block", "5000", "--latency")
    for kind in ("passive", "cancel", "ioc", "all"):
        for build in ("a", "b"):
            assert re.search(rf"^\s+{kind}\s+{build}\s+{build}(\s+\d+){{4}}$", out, re.M), out
    assert re.search(r"^b/a p99 per round: median [\d.]+ \(range [\d.]+-[\d.]+\)$", out, re.M), out
    assert re.search(r"^end state\s+identical", out, re.M), out
