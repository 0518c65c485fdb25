"""Fixtures shared by the hot-path tests: segment names, and a real engine child process (``engine_run``).

The engine child is pinned to the last core (it busy-spins there; the test process backs off with
BackoffIdle). Every wait has a deadline; the fixture kills the child if it outlives its SIGTERM and fails the
test if a process or a /dev/shm entry of the run is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from c_engine import Event
from hotpath.engine_client import EngineClient
from hotpath.engine_control import EngineControl
from hotpath.engine_process import EngineProcessConfig
from hotpath.testing import processes_named as processes_named  # re-exported for the tests here

SHM = Path("/dev/shm")
START_TIMEOUT_S = 15.0
WAIT_S = 5.0


@pytest.fixture
def shm_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh segment name; fails the test if the segment is still in /dev/shm afterwards (and removes it)."""
    name = f"pt_test_{request.module.__name__.rsplit('_', 1)[-1]}_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    assert not (SHM / name).exists()
    yield name
    leaked = (SHM / name).exists()
    if leaked:
        os.unlink(SHM / name)
    assert not leaked, f"/dev/shm/{name} left behind"


def read_market_data(reader: Any, n: int) -> list[Event]:
    """The next ``n`` market-data events from a broadcast reader, each within WAIT_S of the first."""
    got: list[Event] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < n:
        got += Event.unpack_all(reader.read_wait(max(0.0, deadline - time.monotonic())))
    return got


class EngineRun:
    """A running engine child process and its config."""

    def __init__(self, config: EngineProcessConfig) -> None:
        self.config = config
        self.prefix = config.prefix
        self.proc = subprocess.Popen([sys.executable, "-m", "hotpath.engine_process", config.to_json()])
        try:
            self.control = EngineControl(self.prefix, START_TIMEOUT_S)
        except BaseException:
            self.proc.kill()  # SIGKILL: the engine's resource tracker unlinks whatever it created
            self.proc.wait(WAIT_S)
            raise

    def client(self, client_id: int) -> EngineClient:
        return EngineClient(self.prefix, client_id, WAIT_S)

    def segments(self) -> set[str]:
        return {p.name for p in SHM.iterdir() if p.name.startswith(self.prefix + "_")}

    def processes(self) -> list[int]:
        """Pids whose command line names this run (the engine child, or anything it left behind)."""
        return processes_named(self.prefix)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT_S)


def new_config(**overrides: object) -> EngineProcessConfig:
    prefix = f"pt_eng_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    return EngineProcessConfig(prefix=prefix, core=max(os.sched_getaffinity(0)), **overrides)  # type: ignore[arg-type]


@pytest.fixture
def engine_run(request: pytest.FixtureRequest) -> Iterator[EngineRun]:
    marker = request.node.get_closest_marker("engine_config")
    kwargs = dict(marker.kwargs) if marker else {}
    if kwargs.pop("journal", False):  # engine_config(journal=True): a journal in the test's tmp_path
        kwargs["journal_path"] = str(request.getfixturevalue("tmp_path") / "engine.journal")
        kwargs.setdefault("journal_capacity", 1 << 12)
    run = EngineRun(new_config(**kwargs))
    try:
        yield run
    finally:
        run.control.close()
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGTERM)
            try:
                run.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait(WAIT_S)
        # A SIGKILLed engine (some tests kill it) leaves its segments to its resource tracker, a process of
        # its own that unlinks them and exits a moment later: wait for it, with a deadline, then check.
        deadline = time.monotonic() + WAIT_S
        while (run.segments() or run.processes()) and time.monotonic() < deadline:
            time.sleep(0.01)
        leaked = run.segments()
        for name in leaked:
            os.unlink(SHM / name)
        assert not leaked, f"segments left behind: {leaked}"
        assert not run.processes(), "a process of the run is still alive"


class Runs:
    """Starts engine processes (one at a time) and cleans up after all of them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.prefixes: list[str] = []

    def start(self, **overrides: object) -> tuple[EngineProcessConfig, subprocess.Popen[bytes]]:
        prefix = f"pt_jrn_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        n = len(self.prefixes)
        config = EngineProcessConfig(prefix=prefix, core=max(os.sched_getaffinity(0)),
                                     journal_path=str(self.tmp_path / "journal.bin"),
                                     status_path=str(self.tmp_path / f"status{n}.json"), **overrides)  # type: ignore[arg-type]  # fmt: skip
        self.prefixes.append(prefix)
        proc = subprocess.Popen([sys.executable, "-m", "hotpath.engine_process", config.to_json()])
        self.procs.append(proc)
        EngineControl(prefix, START_TIMEOUT_S).close()  # running
        return config, proc

    def stop(self, config: EngineProcessConfig, proc: subprocess.Popen[bytes]) -> dict[str, int]:
        with EngineControl(config.prefix, WAIT_S) as control:
            control.request_stop()
        assert proc.wait(WAIT_S) == 0
        assert config.status_path is not None
        status: dict[str, int] = json.loads(Path(config.status_path).read_text())
        return status

    def segments(self) -> set[Path]:
        return {p for p in SHM.iterdir() if any(p.name.startswith(prefix + "_") for prefix in self.prefixes)}

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(WAIT_S)
        deadline = time.monotonic() + WAIT_S  # a killed engine's resource tracker unlinks its segments
        while self.segments() and time.monotonic() < deadline:
            time.sleep(0.01)
        leaked = self.segments()
        for path in leaked:
            path.unlink(missing_ok=True)
        assert not leaked, f"segments left behind: {leaked}"


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[Runs]:
    r = Runs(tmp_path)
    try:
        yield r
    finally:
        r.cleanup()
