"""Running a whole platform in a test: start ``proptrade up`` on a config, wait until it is live, stop it, and
make sure nothing of it is left (processes, ``/dev/shm`` segments, its run directory).

A platform with a gateway is waited for by its ``gateway up: URL`` line instead (:class:`ServedPlatform`):
its port is free and chosen at start (``port = 0``), so that line is where its address is learnt.

For the project's own end-to-end tests and for a user's tests of a strategy against a real platform::

    with launched_platform(CONFIG_TOML, tmp_path) as run:
        with Client("mm_1", prefix=run.prefix) as client:
            ...

A run's prefix is in every one of its processes' command lines, so what is left of a run is found by it: the
stop kills whatever outlived the launcher and removes its segments and run directory, then reports them (a
test asserts there were none).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from .control_client import ControlClient
from .names import control_endpoint, run_dir

__all__ = ["FLOW_ONLY_CONFIG", "LaunchedPlatform", "Leftovers", "ServedPlatform", "finish_platform",
           "launched_platform", "processes_named", "remove_leftovers", "start_platform", "wait_live"]  # fmt: skip

SHM = Path("/dev/shm")

#: a small platform for strategy tests: one symbol (SIM, $0.01 ticks around 100.00), two Poisson flow agents,
#: and the account ``mm_1`` (client 1, max position 400) left free for the process under test; no bridge, so
#: no fixed TCP port and runs side by side
FLOW_ONLY_CONFIG = """
[engine]
ring_capacity = 1024
md_capacity = 8192
heartbeat_timeout_s = 2.0
max_orders = 65536

[[symbols]]
name = "SIM"
tick_size = 0.01
band_ticks = 1000
reference_price = 10000

[bridge]
enabled = false            # no fixed TCP ports: tests run side by side

[[accounts]]
name = "mm_1"
client = 1
limits = { max_position = 400 }

[[accounts]]
name = "flow_a"
client = 10

[[accounts]]
name = "flow_b"
client = 11

[[accounts]]
name = "probe"
client = 63

[probe]
account = "probe"
hz = 20

[[agents]]
name = "flow"
module = "hotpath.agents.flow"
accounts = ["flow_a", "flow_b"]
symbol = "SIM"
args = ["--rate", "400", "--mid", "100"]
"""


def processes_named(text: str) -> list[int]:
    """Pids (not this one) whose command line contains ``text``: a run's prefix names all its processes."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@dataclass
class Leftovers:
    """What a stopped run left behind (and the stop then removed)."""

    processes: list[int] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.processes or self.segments)


@dataclass
class LaunchedPlatform:
    prefix: str
    proc: subprocess.Popen[str]
    #: the launcher's output read so far (up to its first live line, after ``wait_live``)
    said: list[str] = field(default_factory=list)
    #: the rest of its output, after the stop
    output: str = ""
    leftovers: Leftovers = field(default_factory=Leftovers)


def start_platform(config: str, directory: Path, seconds: float = 60.0, prefix: str = "") -> LaunchedPlatform:
    """Writes ``config`` (TOML) into ``directory`` and starts ``proptrade up`` on it under a unique prefix."""
    prefix = prefix or f"pt_t{os.getpid()}_{uuid.uuid4().hex[:6]}"
    path = directory / f"{prefix}.toml"
    path.write_text(config)
    proc = subprocess.Popen([sys.executable, "-m", "hotpath.cli", "up", "--config", str(path), "--seconds",
                             str(seconds), "--prefix", prefix], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    return LaunchedPlatform(prefix, proc)


def wait_live(run: LaunchedPlatform, timeout_s: float = 30.0) -> bool:
    """Reads the launcher's output up to its first live line (``t=``): everything is up. False if it ended."""
    assert run.proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = run.proc.stdout.readline()
        if not line:
            return False
        run.said.append(line)
        if line.startswith("t="):
            return True
    return False


def remove_leftovers(prefix: str) -> Leftovers:
    """Waits (10 s at most) for the run's processes to go, kills those that stay, removes its segments and its
    run directory; returns what there was to remove."""
    deadline = time.monotonic() + 10
    while processes_named(prefix) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_named(prefix)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    segments = sorted(str(p) for p in SHM.glob(f"{prefix}_*"))
    for seg in segments:
        Path(seg).unlink(missing_ok=True)
    shutil.rmtree(run_dir(prefix), ignore_errors=True)
    return Leftovers(left, segments)


def finish_platform(run: LaunchedPlatform, timeout_s: float = 60.0, interrupt: bool = False) -> Leftovers:
    """Waits for the launcher to end (after a SIGINT if ``interrupt``), then removes what it left
    (:func:`remove_leftovers`). Returns what there was to remove."""
    try:
        if interrupt and run.proc.poll() is None:
            run.proc.send_signal(signal.SIGINT)
        run.output, _ = run.proc.communicate(timeout=timeout_s)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
        run.leftovers = remove_leftovers(run.prefix)
    return run.leftovers


@contextmanager
def launched_platform(config: str, directory: Path, seconds: float = 60.0) -> Iterator[LaunchedPlatform]:
    """A live platform for the block (``AssertionError`` if it does not come up); stopped with SIGINT after it,
    and ``AssertionError`` if anything of it was left behind."""
    run = start_platform(config, directory, seconds)
    try:
        if not wait_live(run):
            raise AssertionError(f"the platform did not come up: {''.join(run.said)}")
        yield run
    finally:
        leftovers = finish_platform(run, interrupt=True)
    if leftovers:
        raise AssertionError(f"left behind: {leftovers}")


class ServedPlatform:
    """``proptrade up`` on a config with a gateway, until :meth:`stop`: its ``url`` (``http://...``) and
    ``ws_url`` once the gateway serves, the launcher's output in ``lines`` (read by a thread, so its pipe never
    fills), and the engine's state hash. ``RuntimeError`` if the gateway does not come up in ``timeout_s``."""

    def __init__(self, config: str, directory: Path, tag: str = "srv", timeout_s: float = 60.0) -> None:
        """Writes ``config`` (TOML) into ``directory`` and starts it under a unique prefix starting ``pt_<tag>``."""
        self.prefix = f"pt_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        path = directory / f"{self.prefix}.toml"
        path.write_text(config)
        self.proc = subprocess.Popen([sys.executable, "-m", "hotpath.cli", "up", "--config", str(path), "--prefix",
                                      self.prefix], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)  # fmt: skip
        self.lines: list[str] = []
        self.url = ""
        found = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                match = re.match(r"gateway up: (http://\S+)", line)
                if match:
                    self.url = match.group(1)
                    found.set()
            found.set()

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not found.wait(timeout_s) or not self.url:
            self.stop()
            raise RuntimeError(f"the platform did not start: {''.join(self.lines)}")
        self.ws_url = self.url.replace("http://", "ws://")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        """Stops it; ``AssertionError`` if anything of it was left behind."""
        leftovers = self.stop()
        if leftovers:
            raise AssertionError(f"left behind: {leftovers}")

    def state_hash(self) -> tuple[int, int]:
        """The engine's state hash and the number of commands it has applied (its control plane's)."""
        ctl = ControlClient(control_endpoint(self.prefix), timeout_s=5.0)
        try:
            reply = ctl.request("state_hash")
        finally:
            ctl.close()
        return int(reply["state_hash"]), int(reply["commands"])

    def stop(self) -> Leftovers:
        """SIGTERM to the launcher (SIGKILL after 30 s), then :func:`remove_leftovers`; returns what it found."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        return remove_leftovers(self.prefix)
