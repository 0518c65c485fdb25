"""The engine's own error, reported at once: a start that fails exits with one line (no 30 s wait in the
launcher, no traceback), and a loop stopped by a full journal says so on stderr, which the launcher shows."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from c_engine import COMMAND_DTYPE, Command, Side
from hotpath.engine_process import EXIT_START_FAILED
from hotpath.journal import Journal
from hotpath.launcher import Launcher, load_config

from conftest import new_config

PROBE_ONLY = """
[engine]
ring_capacity = 1024
md_capacity = 4096

[[symbols]]
name = "SIM"
tick_size = 0.01
band_ticks = 1000
reference_price = 10000

[bridge]
enabled = false

[[accounts]]
name = "probe"
client = 63

[probe]
account = "probe"
hz = 50
"""


def _launcher(journal: Path, capacity: int = 1 << 12) -> Launcher:
    config = load_config(PROBE_ONLY, prefix=f"pt_err_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    engine = dataclasses.replace(config.engine, journal_path=str(journal), journal_capacity=capacity)
    return Launcher(dataclasses.replace(config, engine=engine), out=io.StringIO())


def _said(launcher: Launcher) -> str:
    assert isinstance(launcher.out, io.StringIO)
    return launcher.out.getvalue()


def test_an_engine_that_cannot_start_exits_at_once_with_one_line() -> None:
    config = dataclasses.replace(new_config(), core=4096)  # no such core
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "hotpath.engine_process", config.to_json()], capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert out.returncode == EXIT_START_FAILED
    assert out.stderr.startswith("engine: could not start: OSError") and out.stderr.count("\n") == 1, out.stderr
    assert time.monotonic() - t0 < 10


def test_the_launcher_reports_a_failed_engine_start_at_once_in_the_engines_words(tmp_path: Path) -> None:
    journal = tmp_path / "engine.journal"
    with Journal.create(journal, 16, _launcher(journal).config.engine.fingerprint()) as j:
        j.append(np.frombuffer(Command.new(63, 0, Side.BUY, 1, 9_000).pack(), dtype=COMMAND_DTYPE))
    with journal.open("r+b") as f:  # the header is intact (the config check passes it); record 0 is not
        f.seek(128 + 10)
        f.write(b"\xff")
    launcher = _launcher(journal)
    t0 = time.monotonic()
    assert launcher.run(seconds=5) == 1
    assert time.monotonic() - t0 < 10  # not the 30 s start timeout
    said = _said(launcher)
    assert f"FAILED: RuntimeError: the engine did not start (rc {EXIT_START_FAILED}): engine: " in said, said
    assert "record 0" in said, said


def test_a_journal_full_stop_ends_the_run_with_the_engines_reason(tmp_path: Path) -> None:
    journal = tmp_path / "engine.journal"
    launcher = _launcher(journal, capacity=32)  # the probe's orders and cancels fill it within a second
    assert launcher.run(seconds=20) == 1
    said = _said(launcher)
    assert "FAILED: the engine exited (rc " in said and f"engine: stopped: the journal {journal} is full" in said, said
