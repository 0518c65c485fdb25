"""``proptrade up``: the whole platform as processes (engine, bridge, flow agents, maker), live view, restart of
a crashed agent, and a clean stop on --seconds, SIGINT or SIGTERM with no process or /dev/shm entry left; a
second run on a live run's prefix is refused, and a killed launcher takes its run down with it.

The runs use a small config (low rates, ipc endpoints in the abstract namespace) and a unique prefix; each has
a deadline, and the helper kills whatever is left before failing the test.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hotpath.engine_control import EngineControl
from hotpath.launcher import DEFAULT_CONFIG, Launcher, PrefixInUseError, load_config
from hotpath.names import private_dir, run_dir
from hotpath.testing import LaunchedPlatform, finish_platform, processes_named, wait_live

from conftest import SHM

SMALL = """
[engine]
ring_capacity = 1024
md_capacity = 4096
heartbeat_timeout_s = 2.0
max_orders = 65536

[[symbols]]
name = "SIM"
tick_size = 0.01
band_ticks = 1000
reference_price = 10000

[bridge]
enabled = true
pub = "ipc://@{prefix}-pub"
rep = "ipc://@{prefix}-rep"

[[accounts]]
name = "mm_1"
client = 1
limits = {{ max_position = 400 }}

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
hz = 50

[[agents]]
name = "flow"
module = "hotpath.agents.flow"
accounts = ["flow_a", "flow_b"]
symbol = "SIM"
args = ["--rate", "200", "--mid", "100"{flow_extra}]
restart = true
max_restarts = 3

[[agents]]
name = "maker"
module = "strategies.agent"
args = ["--strategy", "inventory_skew", "--size", "5", "--half-spread", "0.02", "--max-position", "200"]
accounts = ["mm_1"]
symbol = "SIM"
maker = true
"""


def _up(tmp_path: Path, seconds: float, flow_extra: str = "", prefix: str = "") -> tuple[subprocess.Popen[str], str]:
    prefix = prefix or f"pt_up_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    config = tmp_path / f"{prefix}-{uuid.uuid4().hex[:6]}.toml"
    config.write_text(SMALL.format(prefix=prefix, flow_extra=flow_extra))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotpath.cli", "up", "--config", str(config), "--seconds", str(seconds),
         "--prefix", prefix],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return proc, prefix


def _finish(proc: subprocess.Popen[str], prefix: str, timeout_s: float = 60.0) -> str:
    """Waits for the run to end; kills and removes whatever it left, and fails the test if there was any."""
    run = LaunchedPlatform(prefix, proc)
    leftovers = finish_platform(run, timeout_s)
    assert not leftovers.processes, f"processes left behind: {leftovers.processes}"
    assert not leftovers.segments, f"segments left behind: {leftovers.segments}"
    return run.output


def _wait_live(proc: subprocess.Popen[str]) -> None:
    """Reads the launcher's output up to its first live line: everything is up."""
    wait_live(LaunchedPlatform("", proc))


def test_the_default_config_parses_and_bad_ones_say_why() -> None:
    config = load_config(DEFAULT_CONFIG, prefix="x")
    assert [a.name for a in config.agents] == ["flow", "maker"] and config.engine.symbols[0].name == "SIM"
    assert config.engine.limits == ((1, config.accounts["mm_1"].limits),)
    assert dict(config.engine.accounts) == {"mm_1": 1, "flow_1": 10, "flow_2": 11, "flow_3": 12, "probe": 63,
                                            "user_1": 20, "user_2": 21}  # fmt: skip
    assert config.agents[1].accounts == ("mm_1",) and config.probe_account == "probe"
    with pytest.raises(ValueError, match="both use client 10"):
        load_config(DEFAULT_CONFIG.replace("client = 1\n", "client = 10\n"))
    with pytest.raises(ValueError, match="used twice"):
        load_config(DEFAULT_CONFIG.replace('accounts = ["mm_1"]', 'accounts = ["flow_1"]'))
    with pytest.raises(ValueError, match="no account 'mm_9'"):
        load_config(DEFAULT_CONFIG.replace('accounts = ["mm_1"]', 'accounts = ["mm_9"]'))
    with pytest.raises(ValueError, match="no \\[\\[symbols\\]\\]"):
        load_config("[engine]\n")
    with pytest.raises(ValueError, match="0..63"):
        load_config(DEFAULT_CONFIG.replace("client = 1\n", "client = 64\n"))
    with pytest.raises(ValueError, match="belong to \\[\\[accounts\\]\\]"):
        load_config(DEFAULT_CONFIG.replace('accounts = ["mm_1"]', "clients = [1]"))


def test_the_engine_table_passes_snapshot_settings_on_and_refuses_them_without_a_journal(tmp_path: Path) -> None:
    journal = tmp_path / "run.jnl"
    config = load_config(DEFAULT_CONFIG.replace('journal = ""', f'journal = "{journal}"').replace(
        "snapshot_every = 0", "snapshot_every = 5000").replace("snapshot_keep = 2", "snapshot_keep = 3"))  # fmt: skip
    assert (config.engine.snapshot_every, config.engine.snapshot_keep) == (5000, 3)
    assert load_config(DEFAULT_CONFIG).engine.snapshot_every == 0  # the default: one journal file, no snapshots
    with pytest.raises(ValueError, match="snapshot_every needs a journal"):
        load_config(DEFAULT_CONFIG.replace("snapshot_every = 0", "snapshot_every = 5000"))
    with pytest.raises(ValueError, match="snapshot_keep must be"):
        load_config(DEFAULT_CONFIG.replace("snapshot_keep = 2", "snapshot_keep = 0"))


def test_up_runs_the_platform_shows_it_live_and_stops_cleanly(tmp_path: Path) -> None:
    proc, prefix = _up(tmp_path, seconds=5)
    out = _finish(proc, prefix)
    assert proc.returncode == 0, out
    assert "engine up" in out and "bridge up" in out and "flow: 2 process(es)" in out
    live = [line for line in out.splitlines() if line.startswith("t=")]
    assert len(live) >= 3, out
    assert "clients 4" in live[-1] and "order->ACK p50" in live[-1] and "maker[mm_1] pos" in live[-1], live[-1]
    assert "stopped: every process exited, no shared-memory segment left" in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_everything(tmp_path: Path, sig: int) -> None:
    proc, prefix = _up(tmp_path, seconds=0)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait for the first live line: everything is up
        line = proc.stdout.readline()
        if line.startswith("t=") or not line:
            break
    proc.send_signal(sig)
    out = _finish(proc, prefix)
    assert proc.returncode == 0, out
    assert "no shared-memory segment left" in out


def test_a_crashed_agent_is_restarted(tmp_path: Path) -> None:
    # the flow agents exit after 1 s on their own: the launcher restarts them (restart = true)
    proc, prefix = _up(tmp_path, seconds=6, flow_extra=', "--seconds", "1"')
    out = _finish(proc, prefix)
    assert proc.returncode == 0, out
    assert "flow[flow_a] restarted (1/3)" in out, out


IDLE = """
[engine]
ring_capacity = 1024
md_capacity = 4096

[[symbols]]
name = "SIM"

[bridge]
enabled = true
pub = "ipc://@{prefix}-pub"
rep = "ipc://@{prefix}-rep"

[[accounts]]
name = "mm_1"
client = 1

[probe]
hz = 0

[[agents]]
name = "maker"
module = "strategies.agent"
args = ["--strategy", "inventory_skew", "--size", "5", "--half-spread", "0.02", "--max-position", "200"]
accounts = ["mm_1"]
symbol = "SIM"
"""


def _cpu_ns(pids: list[int]) -> dict[int, int]:
    """On-CPU nanoseconds of each process, all its threads (the scheduler's own account: no 10 ms ticks)."""
    out = {}
    for pid in pids:
        try:
            tasks = Path(f"/proc/{pid}/task").iterdir()
            out[pid] = sum(int((t / "schedstat").read_text().split()[0]) for t in tasks)
        except (OSError, ValueError):
            continue
    return out


def test_an_idle_platform_costs_under_5_percent_of_a_core_outside_the_engine(tmp_path: Path) -> None:
    """Engine, bridge, an idle maker (no flow: nothing to quote) and the launcher: everything but the engine
    backs off. A resource bound, not a speed claim: 5% of a core is the issue's budget."""
    prefix = f"pt_idle_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    config = tmp_path / "idle.toml"
    config.write_text(IDLE.format(prefix=prefix))
    proc = subprocess.Popen([sys.executable, "-m", "hotpath.cli", "up", "--config", str(config), "--seconds", "14",
                             "--prefix", prefix],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # up once the maker is started
            if line.startswith("maker:"):
                break
        # Start-up (imports, attach, the first snapshot) is not idling, and on a loaded machine it can take
        # seconds: wait until the maker and the launcher's own client are attached, then let them settle.
        with EngineControl(prefix, timeout_s=30) as control:
            deadline = time.monotonic() + 30
            while control.counters()["clients"] < 2:
                assert time.monotonic() < deadline, "the maker never attached"
                time.sleep(0.05)
        time.sleep(1.0)
        others = [
            pid for pid in processes_named(prefix) if b"engine_process" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        others += [proc.pid]
        before, t0 = _cpu_ns(others), time.monotonic()
        time.sleep(5.0)
        after, t1 = _cpu_ns(others), time.monotonic()
        used_s = sum(after[p] - before[p] for p in after if p in before) / 1e9
        assert len(after) == 3, f"expected launcher, bridge and maker, got {after}"
        assert used_s / (t1 - t0) < 0.05, f"{used_s / (t1 - t0):.1%} of a core outside the engine"
    finally:
        proc.send_signal(signal.SIGINT)
    out = _finish(proc, prefix)
    assert proc.returncode == 0, out


def test_a_dead_engine_stops_the_run_with_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    proc, prefix = _up(tmp_path, seconds=0)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # everything is up at the first live line
        line = proc.stdout.readline()
        if line.startswith("t=") or not line:
            break
    engines = [pid for pid in processes_named(prefix) if b"engine_process" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(engines) == 1
    os.kill(engines[0], signal.SIGKILL)
    out = _finish(proc, prefix)  # the launcher notices, stops the agents and the bridge, removes the segments
    assert proc.returncode == 1, out
    assert "FAILED: the engine exited (rc -9)" in out, out


def _segments(prefix: str) -> list[tuple[str, int]]:
    """Name and inode of each segment of run ``prefix``: a segment removed and made again has a new inode."""
    return sorted((p.name, p.stat().st_ino) for p in SHM.glob(f"{prefix}_*"))


def test_a_second_run_on_a_live_runs_prefix_is_refused_and_leaves_the_first_running(tmp_path: Path) -> None:
    first, prefix = _up(tmp_path, seconds=0)
    try:
        _wait_live(first)
        with EngineControl(prefix, timeout_s=30) as control:  # its agents and probe are attached: rings made
            deadline = time.monotonic() + 30
            while control.counters()["clients"] < 4:
                assert time.monotonic() < deadline, "the first run's clients never attached"
                time.sleep(0.05)
        segments = _segments(prefix)
        assert (f"{prefix}_ctl", (SHM / f"{prefix}_ctl").stat().st_ino) in segments, segments
        second, _ = _up(tmp_path, seconds=2, prefix=prefix)
        try:
            out, _ = second.communicate(timeout=30)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        assert second.returncode == 2, out
        assert f"prefix {prefix} is in use" in out and len(out.strip().splitlines()) == 1, out
        assert _segments(prefix) == segments
        assert first.poll() is None
        with EngineControl(prefix, timeout_s=5) as control:  # the first run still trades
            before = control.counters()["commands"]
            deadline = time.monotonic() + 10
            while control.counters()["commands"] == before:
                assert time.monotonic() < deadline, "the first run stopped trading"
                time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGINT)
        out = _finish(first, prefix)
    assert first.returncode == 0, out
    assert "stopped: every process exited, no shared-memory segment left" in out, out


def _remains(prefix: str) -> tuple[list[int], list[str]]:
    """The processes and the /dev/shm segments of run ``prefix`` that exist now."""
    return processes_named(prefix), sorted(p.name for p in SHM.glob(f"{prefix}_*"))


def test_a_killed_launcher_takes_its_whole_run_down_with_it(tmp_path: Path) -> None:
    proc, prefix = _up(tmp_path, seconds=0)
    try:
        _wait_live(proc)
        children = [pid for pid in processes_named(prefix) if pid != proc.pid]
        assert len(children) == 5, children  # engine, bridge, two flow agents, the maker
    finally:
        proc.kill()
        proc.wait()
    t0 = time.monotonic()
    while any(_remains(prefix)) and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    gone_s = time.monotonic() - t0
    left, segments = _remains(prefix)
    for pid in left:  # whatever outlived its launcher (nothing, unless this test fails)
        os.kill(pid, signal.SIGKILL)
    _finish(proc, prefix)
    assert not left and not segments, f"{gone_s:.1f} s after the launcher died: {left} {segments}"


def _launcher(prefix: str) -> Launcher:
    return Launcher(load_config(SMALL.format(prefix=prefix, flow_extra=""), prefix=prefix), out=io.StringIO())


def test_a_prefix_is_refused_while_a_launcher_its_control_block_its_endpoint_or_a_segment_has_it() -> None:
    prefix = f"pt_claim_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    first = _launcher(prefix)
    first.claim()
    try:
        with pytest.raises(PrefixInUseError, match=f"prefix {prefix} is in use: another proptrade up runs it"):
            _launcher(prefix).claim()
    finally:
        first.release()
    for name, why in ((f"{prefix}_ctl", "its control block"), (f"{prefix}_c3_evt", "segments of another run")):
        (SHM / name).write_bytes(b"")
        try:
            with pytest.raises(PrefixInUseError, match=why):
                _launcher(prefix).claim()
        finally:
            (SHM / name).unlink()
    path = private_dir(run_dir(prefix)) / "control"  # the control endpoint, ipc://{run_dir}/control
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
        engine.bind(str(path))
        engine.listen()
        try:
            with pytest.raises(PrefixInUseError, match="listens on its control endpoint"):
                _launcher(prefix).claim()
        finally:
            path.unlink()
            run_dir(prefix).rmdir()
    free = _launcher(prefix)
    free.claim()  # everything above let go of it
    free.release()


def test_the_stop_removes_only_segments_named_as_its_own_runs() -> None:
    prefix = f"pt_claim_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    other = SHM / f"{prefix}_x_md"  # the market data of run "{prefix}_x", which the prefix's glob also matches
    launcher = _launcher(prefix)
    other.write_bytes(b"")
    try:
        launcher.claim()
        (SHM / f"{prefix}_md").write_bytes(b"")  # as an engine of this run killed before its clean-up leaves it
        launcher.stop()
        launcher.release()
        assert other.exists() and not (SHM / f"{prefix}_md").exists()
        assert isinstance(launcher.out, io.StringIO)
        assert f"removed shared-memory segments left behind: ['{prefix}_md']" in launcher.out.getvalue()
    finally:
        launcher.release()
        for seg in SHM.glob(f"{prefix}_*"):
            seg.unlink()


def _bad(old: str, new: str) -> str:
    assert old in DEFAULT_CONFIG, old
    return DEFAULT_CONFIG.replace(old, new, 1)


BAD_CONFIGS = {
    "not TOML": ("[engine\ncore = 1", "not valid TOML"),
    "an unknown table": (DEFAULT_CONFIG + "\n[engines]\ncore = 1\n", "unknown table [engines]"),
    "an unknown key": (_bad("ring_capacity = 4096", "ring_capacitty = 4096"), "unknown keys ['ring_capacitty']"),
    "a ring that is no power of two": (_bad("ring_capacity = 4096", "ring_capacity = 3"), "power of two"),
    "a string capacity": (_bad("md_capacity = 65536", 'md_capacity = "big"'), "md_capacity must be an integer"),
    "a core it may not use": (_bad('core = "last"', "core = 99"), "core must be"),
    "a negative timeout": (_bad("heartbeat_timeout_s = 5.0", "heartbeat_timeout_s = -1.0"), ">= 0"),
    "an infinite timeout": (_bad("slow_consumer_s = 2.0", "slow_consumer_s = inf"), "finite"),
    "a journal that is a directory": (_bad('journal = ""', 'journal = "/tmp"'), "is a directory"),
    "an infinite tick size": (_bad("tick_size = 0.01", "tick_size = inf"), "tick_size must be a finite number"),
    "an unknown symbol key": (_bad("lot_size = 1", "lot_size = 1\ncolour = 3"), "unknown keys ['colour']"),
    "an agent on no symbol": (
        _bad('symbol = "SIM"\nargs = ["--rate"', 'symbol = "XXX"\nargs = ["--rate"'),
        "no symbol 'XXX'",
    ),
    "an agent without a module": (_bad('module = "hotpath.agents.flow"\n', ""), "missing ['module']"),
    "a client id twice": (_bad("client = 10\n", "client = 1\n"), "both use client 1"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_a_bad_config_is_one_line_and_exit_2_before_anything_starts(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotpath.cli import main

    text, message = BAD_CONFIGS[name]
    path = tmp_path / "platform.toml"
    path.write_text(text)
    prefix = f"pt_bad_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    assert main(["up", "--config", str(path), "--seconds", "1", "--prefix", prefix]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"proptrade up: {path}: ") and message in err and err.count("\n") == 1, err
    assert not list(SHM.glob(f"{prefix}_*")) and not processes_named(prefix)
