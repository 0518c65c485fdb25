"""The journal end to end: the engine process journals accepted commands, recovers from its journal after a
clean stop or a SIGKILL, and `proptrade journal dump` turns a journal into a command file that
`proptrade engine replay` runs to the same state hash.

Every engine is a real child process pinned to the last core; journal and status files live in tmp_path.
Every wait has a deadline; the fixture SIGKILLs whatever is still running and fails the test if a process or a
/dev/shm entry of the run is left behind (after a SIGKILL the engine's resource tracker unlinks its segments,
which takes a moment: the fixture waits for that, with a deadline).
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from c_engine import Command, Engine, Event, EventType, Flag, Op, Side, SymbolConfig
from hotpath.cli import main as proptrade
from hotpath.client import Client
from hotpath.engine_client import EngineClient
from hotpath.engine_control import EngineControl
from hotpath.engine_process import EngineProcessConfig
from hotpath.journal import Journal, JournalConfigError, JournalError, read_commands

from conftest import SHM, WAIT_S, Runs

LOOP_EJOURNALFULL = -7


def _journal_path(config: EngineProcessConfig) -> str:
    """The run's journal file (Runs.start always names one)."""
    assert config.journal_path is not None
    return config.journal_path


def _status_path(config: EngineProcessConfig) -> Path:
    """The run's status file (Runs.start always names one)."""
    assert config.status_path is not None
    return Path(config.status_path)


def _stream(n: int, seed: int) -> list[Command]:
    """Clients 1 and 2 alternating: crossing limit orders around 100, with every 7th a qty-0 REJECT."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        client = 1 + i % 2
        qty = 0 if i % 7 == 3 else rng.randint(1, 5)
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        out.append(Command.new(client, 0, side, qty, rng.randint(95, 105), cloid=i + 1, ts_ns=1_000 + i))
    return out


def _reference_hash(records: np.ndarray, config: EngineProcessConfig) -> int:
    """An uninterrupted in-process engine fed the journaled commands."""
    engine = Engine(config.engine)
    for sym in config.symbols:
        engine.add_symbol(sym)
    engine.execute_batch(records)
    return int(engine.state_hash())


def _submit_all(config: EngineProcessConfig, commands: list[Command]) -> None:
    """Sends each command from its client and waits until the loop has run them all."""
    with EngineClient(config.prefix, 1, WAIT_S) as one, EngineClient(config.prefix, 2, WAIT_S) as two, \
            EngineControl(config.prefix, WAIT_S) as control:  # fmt: skip
        clients = {1: one, 2: two}
        for i, cmd in enumerate(commands):
            clients[cmd.client_id].submit(cmd)
            if i % 64 == 63:  # keep the event rings drained
                one.poll_events(1024), two.poll_events(1024)
        deadline = time.monotonic() + WAIT_S
        while control.counters()["commands"] < len(commands):
            one.poll_events(1024), two.poll_events(1024)
            assert time.monotonic() < deadline, "the engine did not run every command"
            time.sleep(0.001)


def test_a_restart_replays_the_journal_to_the_state_of_the_first_run_and_keeps_appending(runs: Runs) -> None:
    commands = _stream(400, seed=1)
    config, proc = runs.start()
    _submit_all(config, commands)
    first = runs.stop(config, proc)
    records = read_commands(_journal_path(config))
    assert first["rc"] == 0 and first["replayed"] == 0 and first["commands"] == len(commands)
    assert first["journaled"] == len(records) == len(commands)  # the qty-0 REJECTs too: they take a seq
    for client in (1, 2):  # the loop serves clients in turn: each client's commands keep its order
        sent = [c.cloid for c in commands if c.client_id == client]
        assert records["cloid"][records["client_id"] == client].tolist() == sent
    assert first["state_hash"] == _reference_hash(records, config)

    config2, proc2 = runs.start()
    more = [Command.new(1, 0, Side.BUY, 2, 90 + i, cloid=1000 + i, ts_ns=10_000 + i) for i in range(5)]
    _submit_all(config2, more)
    second = runs.stop(config2, proc2)
    assert second["replayed"] == len(records)
    assert second["recovered_state_hash"] == first["state_hash"] == _reference_hash(records, config2)
    all_records = read_commands(_journal_path(config))
    assert len(all_records) == second["journaled"] == len(records) + len(more)
    assert (all_records[: len(records)] == records).all()
    assert second["state_hash"] == _reference_hash(all_records, config2)


@pytest.mark.parametrize("kill_after", [1, 57, 300])
def test_after_a_sigkill_every_acknowledged_command_is_journaled_and_recovery_matches(
        runs: Runs, kill_after: int) -> None:  # fmt: skip
    commands = _stream(2000, seed=kill_after)
    config, proc = runs.start(ring_capacity=256)
    acked: set[tuple[int, int]] = set()
    with EngineClient(config.prefix, 1, WAIT_S) as one, EngineClient(config.prefix, 2, WAIT_S) as two:
        clients = {1: one, 2: two}
        deadline = time.monotonic() + WAIT_S
        sent = 0
        while len(acked) < kill_after:
            assert time.monotonic() < deadline, f"{len(acked)} ACKs of {kill_after}"
            for cmd in commands[sent : sent + 16]:  # keep commands in flight while the ACKs come back
                clients[cmd.client_id].submit(cmd)
            sent = min(sent + 16, len(commands))
            for client in (one, two):
                acked |= {(e.client_id, e.cloid) for e in client.poll_events(1024) if e.type == EventType.ACK}
        proc.send_signal(signal.SIGKILL)  # mid-stream: commands are still in the rings
        assert proc.wait(WAIT_S) == -signal.SIGKILL
    assert not _status_path(config).exists()  # it died, it wrote nothing

    records = read_commands(_journal_path(config))
    journaled = set(zip(records["client_id"].tolist(), records["cloid"].tolist(), strict=True))
    assert acked <= journaled
    assert len(journaled) == len(records)
    for client_id in (1, 2):  # each client's commands in the order it sent them
        cloids = records["cloid"][records["client_id"] == client_id].tolist()
        assert cloids == sorted(cloids)

    config2, proc2 = runs.start(ring_capacity=256)
    recovered = runs.stop(config2, proc2)
    assert recovered["replayed"] == len(records)
    assert recovered["recovered_state_hash"] == recovered["state_hash"] == _reference_hash(records, config2)


def _symbols_toml(path: Path, symbols: tuple[SymbolConfig, ...]) -> None:
    lines = []
    for sym in symbols:
        lines.append(f"[symbols.{sym.name}]")
        lines += [f"{key} = {value!r}" for key, value in asdict(sym).items() if key != "name"]
    path.write_text("\n".join(lines) + "\n")


def test_journal_dump_replays_through_engine_replay_to_the_same_state_hash(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, proc = runs.start()
    _submit_all(config, _stream(300, seed=7))
    status = runs.stop(config, proc)
    symbols = tmp_path / "SYMBOLS.toml"
    _symbols_toml(symbols, config.symbols)
    engine = ["--max-orders", str(config.engine.max_orders), "--max-levels-per-side",
              str(config.engine.max_levels_per_side), "--max-clients", str(config.engine.max_clients)]  # fmt: skip
    for named in (True, False):  # symbol names from SYMBOLS.toml, or ids written as integers
        out = tmp_path / f"commands_{named}.jsonl"
        args = ["journal", "dump", _journal_path(config), "--out", str(out)]
        assert proptrade(args + (["--symbols", str(symbols)] if named else [])) == 0
        first = json.loads(out.read_text().splitlines()[0])
        assert first["symbol"] == ("TEST" if named else 0)
        capsys.readouterr()
        assert proptrade(["engine", "replay", str(out), "--symbols", str(symbols), *engine]) == 0
        line = capsys.readouterr().out
        assert f"replayed {status['journaled']} commands" in line
        assert f"state hash {status['state_hash']:#018x}" in line


def test_a_full_journal_stops_the_loop_without_running_what_it_cannot_journal(runs: Runs) -> None:
    config, proc = runs.start(journal_capacity=5)
    with EngineClient(config.prefix, 1, WAIT_S) as one:
        for i in range(8):
            one.submit(Command.new(1, 0, Side.BUY, 1, 50 + i, cloid=i + 1, ts_ns=i + 1))
        acks = one.wait_events(5, WAIT_S)
        assert proc.wait(WAIT_S) == LOOP_EJOURNALFULL & 0xFF
        assert one.poll_events() == []  # commands 6..8 were never run
    assert [e.cloid for e in acks] == [1, 2, 3, 4, 5]
    assert read_commands(_journal_path(config))["cloid"].tolist() == [1, 2, 3, 4, 5]
    status = json.loads(_status_path(config).read_text())
    assert status["rc"] == LOOP_EJOURNALFULL and status["journaled"] == 5 and status["commands"] == 5


def test_a_journal_is_only_recovered_under_the_configuration_it_was_written_under(runs: Runs) -> None:
    config, proc = runs.start()
    _submit_all(config, _stream(20, seed=3))
    runs.stop(config, proc)
    assert config.journal_path is not None
    with Journal(config.journal_path, writable=False) as journal:
        assert journal.config_hash == config.fingerprint() != 0
    other = EngineProcessConfig(prefix="x", symbols=(SymbolConfig("TEST", band_ticks=5),))
    assert other.fingerprint() != config.fingerprint()  # a symbol's band changes how commands replay
    with pytest.raises(JournalConfigError, match="written under another configuration"):
        Journal.open_or_create(config.journal_path, 16, other.fingerprint())
    bad = subprocess.run([sys.executable, "-m", "hotpath.engine_process",
                          EngineProcessConfig(**{**asdict(other), "prefix": config.prefix + "b",
                                                 "symbols": other.symbols, "engine": other.engine,
                                                 "journal_path": config.journal_path}).to_json()],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert bad.returncode != 0 and "written under another configuration" in bad.stderr
    assert not list(SHM.glob(config.prefix + "b_*"))  # refused before creating anything


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "not_a_journal"
    bad.write_bytes(b"\0" * 4096)
    with pytest.raises(JournalError, match="bad magic"):
        read_commands(bad)
    (tmp_path / "short").write_bytes(b"x")
    with pytest.raises(JournalError):
        read_commands(tmp_path / "short")
    journal = Journal.create(tmp_path / "j", 4)
    journal.close()
    with pytest.raises(FileExistsError):
        Journal.create(tmp_path / "j", 4)  # never overwrites a journal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j", "not_a_journal", "short"]
    os.truncate(tmp_path / "j", 200)  # truncated below its capacity
    with pytest.raises(JournalError, match="truncated"):
        read_commands(tmp_path / "j")


def _flow_agent(endpoint: str, client: int, rate: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hotpath.agents.flow", "--endpoint", endpoint, "--client",
                             str(client), "--symbol", "TEST", "--mid", "100", "--rate", str(rate),
                             "--seed", str(client)], stderr=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.parametrize("kill_after", [20, 1500])
def test_a_sigkill_under_load_loses_no_acknowledged_event_and_clients_reattach(runs: Runs, kill_after: int) -> None:
    """Two flow agents (separate processes, attached through the control plane) load the engine while this
    test's own client trades against them; the engine is SIGKILLed after ``kill_after`` of our ACKs. Every
    event our client received must be, byte for byte, the event of the same seq in a replay of the journal;
    the restarted engine recovers that replay's state, then cancels (journaled) every resting order of a
    client that is not attached, ours and the agents'; and the client id attaches again and finds none."""
    config, proc = runs.start(ring_capacity=1024)
    agents = [_flow_agent(config.endpoint, c, 5_000) for c in (10, 11)]
    received: list[bytes] = []
    try:
        with EngineControl(config.prefix, WAIT_S) as control:
            deadline = time.monotonic() + 30
            while control.counters()["clients"] < 4 or control.counters()["commands"] < 200:
                assert time.monotonic() < deadline, "the flow agents did not attach and trade"  # 10, 11
                time.sleep(0.01)
        client = Client(5, endpoint=config.endpoint)
        rng = random.Random(kill_after)
        acks = 0
        deadline = time.monotonic() + 30
        while acks < kill_after:
            assert time.monotonic() < deadline, f"{acks} ACKs of {kill_after}"
            for _ in range(8):
                side = "buy" if rng.random() < 0.5 else "sell"
                client.submit("TEST", side, rng.randint(1, 5), rng.randint(97, 103))
            for ev in client.poll(1024):
                received.append(ev.pack())
                acks += ev.type == EventType.ACK
            time.sleep(0.0005)
        with EngineControl(config.prefix, WAIT_S) as control:
            assert control.counters()["clients"] == 5  # the agents are still trading
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(WAIT_S) == -signal.SIGKILL
        received += [ev.pack() for ev in client.poll(1 << 16)]  # whatever had reached our ring
        client._ctl.timeout_s = 0.2
        client.close()  # the engine is gone: the detach times out (logged), the mappings are released
    finally:
        for agent in agents:
            agent.kill()
            agent.wait(WAIT_S)

    records = read_commands(_journal_path(config))
    journaled_clients = set(records["client_id"].tolist())
    assert 5 in journaled_clients and journaled_clients & {10, 11}  # ours, and the load
    replay = Engine(config.engine)
    for sym in config.symbols:
        replay.add_symbol(sym)
    events = replay.execute_batch(records)
    by_seq = {int(row["seq"]): row.tobytes() for row in events}
    assert received and all(by_seq.get(Event.unpack_all(raw)[0].seq) == raw for raw in received)
    assert any(Event.unpack_all(raw)[0].last for raw in received)  # end-of-command markers included

    resting = {c: replay.position(c, "TEST").open_orders for c in (5, 10, 11)}
    assert resting[5] > 0  # what recovery must not leave live: our orders, the engine having died under them
    config2, proc2 = runs.start(ring_capacity=1024)
    with Client(5, endpoint=config2.endpoint) as again:  # the same id attaches to the recovered engine
        again.mass_cancel()
        (ack,) = again.wait_events(1)
        assert (ack.type, ack.qty) == (EventType.ACK, 0)  # nothing left to cancel
    recovered = runs.stop(config2, proc2)
    assert recovered["replayed"] == len(records)
    assert recovered["recovered_state_hash"] == int(replay.state_hash())
    assert recovered["recovery_cancelled"] == sum(resting.values()) == replay.stats()["live_orders"]
    tail = read_commands(config2.journal_path)[len(records) :]  # type: ignore[arg-type]
    expected = sorted(c for c, n in resting.items() if n)
    first = tail[: len(expected)]  # the recovery's cancels come first, before any client's command
    assert (first["op"] == Op.MASS_CANCEL).all() and ((first["flags"] & Flag.DISCONNECT) != 0).all()
    assert first["client_id"].tolist() == expected  # journaled, in id order


def test_a_new_journal_has_its_whole_size_reserved_on_disk(tmp_path: Path) -> None:
    # A sparse journal on a full disk would kill the engine with SIGBUS at the first page it could not allocate.
    with Journal.create(tmp_path / "j", 1 << 12) as journal:
        size = journal.size
    assert os.stat(tmp_path / "j").st_blocks * 512 >= size


def _no_bigger_files_than(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_an_engine_whose_journal_cannot_be_reserved_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    config = EngineProcessConfig(prefix=f"pt_jfull_{os.getpid()}", journal_path=str(path), journal_capacity=1 << 16)
    out = subprocess.run([sys.executable, "-m", "hotpath.engine_process", config.to_json()], capture_output=True,
                         text=True, timeout=30, preexec_fn=_no_bigger_files_than(1 << 20))  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"engine: {path}: cannot reserve the journal's") and "Traceback" not in out.stderr
    assert not path.exists() and not list(tmp_path.iterdir())  # nothing half made
    assert not list(SHM.glob(config.prefix + "_*"))
