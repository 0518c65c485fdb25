"""Checkpoints end to end: an engine process that snapshots and rotates its journal recovers from the newest
snapshot and the segments after it to the state a full replay of every command gives, after a clean stop or a
SIGKILL at a random point; a damaged newest snapshot falls back to the one before; a damaged record after the
snapshot is named and the engine refuses to start; orders of clients that are gone are cancelled, journaled.

Every engine is a real child process (``conftest.Runs``); journal, snapshots and status live in tmp_path.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from c_engine import Command, Engine, Event, EventType, Side
from hotpath.control_client import ControlClient, ControlError, load_operator_key
from hotpath.engine_client import EngineClient
from hotpath.engine_control import EngineControl
from hotpath.engine_process import EngineProcessConfig
from hotpath.journal import Journal, list_segments, list_snapshots, read_history, segment_path, snapshot_path

from conftest import START_TIMEOUT_S, WAIT_S, Runs

#: a checkpoint every this many records, in segments of SEGMENT records
EVERY = 60
SEGMENT = 1 << 12


def _reference(config: EngineProcessConfig, records: np.ndarray) -> Engine:
    """An uninterrupted in-process engine fed every journaled command from the start."""
    engine = Engine(config.engine)
    for sym in config.symbols:
        engine.add_symbol(sym)
    for client, limits in config.limits:
        engine.set_client_limits(client, limits)
    engine.execute_batch(records)
    return engine


def _full_history(config: EngineProcessConfig) -> np.ndarray:
    assert config.journal_path is not None
    first, records = read_history(config.journal_path)
    assert first == 0, "the test keeps every segment: the full replay starts at segment 0"
    return records


def _command(rng: random.Random, i: int) -> Command:
    """Clients 1 and 2: resting and crossing limits around 100, some cancels of recent orders."""
    client = 1 + i % 2
    if i > 20 and rng.random() < 0.15:
        return Command.cancel(client, rng.randint(max(1, i // 2 - 40), i // 2), ts_ns=1_000 + i)
    side = Side.BUY if rng.random() < 0.5 else Side.SELL
    price = rng.randint(96, 104) + (-6 if side == Side.BUY else 6) * (rng.random() < 0.5)
    return Command.new(client, 0, side, rng.randint(1, 5), price, cloid=i + 1, ts_ns=1_000 + i)


def _trade(config: EngineProcessConfig, n: int, seed: int, acks: int | None = None) -> int:
    """Sends up to ``n`` commands in small bursts (the checkpoint thread keeps up: several rotations), until
    ``acks`` ACKs came back if given; returns the ACKs seen."""
    rng = random.Random(seed)
    seen = answered = 0  # ACKs; commands answered (their last event carries the end-of-command flag)

    def count(events: list[Event]) -> None:
        nonlocal seen, answered
        seen += sum(e.type == EventType.ACK for e in events)
        answered += sum(e.last for e in events)

    with EngineClient(config.prefix, 1, WAIT_S) as one, EngineClient(config.prefix, 2, WAIT_S) as two:
        clients = {1: one, 2: two}
        deadline = time.monotonic() + 12 * WAIT_S  # a shared machine can be slow
        for start in range(0, n, 24):
            for i in range(start, min(n, start + 24)):
                cmd = _command(rng, i)
                clients[cmd.client_id].submit(cmd)
            time.sleep(0.002)
            for client in (one, two):
                count(client.poll_events(1024))
            if acks is not None and seen >= acks:
                return seen
            assert time.monotonic() < deadline, "the engine did not keep up"
        # Drain until every command was answered (a quiet moment is not the end: the engine may be behind).
        while acks is None and answered < n:
            for client in (one, two):
                count(client.poll_events(1024))
            assert time.monotonic() < deadline, f"the engine answered {answered} of {n} commands"
            time.sleep(0.002)
    return seen


def _start_logged(runs: Runs, log: Path, **overrides: object) -> tuple[EngineProcessConfig, subprocess.Popen[bytes]]:
    """Runs.start with the engine's stderr in ``log``; returns before the control plane is up."""
    n = len(runs.prefixes)
    config = EngineProcessConfig(prefix=f"pt_snp_{n}_{time.monotonic_ns() % 10**9}", core=max(os.sched_getaffinity(0)),
                                 journal_path=str(runs.tmp_path / "journal.bin"),
                                 status_path=str(runs.tmp_path / f"status{n}.json"), **overrides)  # type: ignore[arg-type]  # fmt: skip
    runs.prefixes.append(config.prefix)
    with log.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "hotpath.engine_process", config.to_json()], stderr=f)
    runs.procs.append(proc)
    return config, proc


def _wait_running(config: EngineProcessConfig) -> None:
    EngineControl(config.prefix, START_TIMEOUT_S).close()


def _has_records(path: str) -> bool:
    with Journal(path, writable=False) as j:
        return j.committed() > 0


def _rotating(**more: object) -> dict[str, object]:
    return {"snapshot_every": EVERY, "journal_capacity": SEGMENT, "snapshot_keep": 100, **more}


def test_a_rotating_run_recovers_from_its_newest_snapshot_to_the_state_of_a_full_replay(runs: Runs) -> None:
    config, proc = runs.start(**_rotating())
    _trade(config, 1500, seed=1)
    first = runs.stop(config, proc)
    assert first["checkpoints"] >= 3
    base = config.journal_path
    assert base is not None
    segments, snapshots = list_segments(base), list_snapshots(base)
    assert segments == list(range(len(segments))) and snapshots == list(range(1, len(snapshots) + 1))
    records = _full_history(config)
    assert len(records) == first["journaled"] == first["commands"]
    assert first["state_hash"] == _reference(config, records).state_hash()

    config2, proc2 = runs.start(**_rotating())
    second = runs.stop(config2, proc2)
    newest = snapshots[-1]
    assert second["recovered_snapshot"] == newest
    assert second["replayed"] < len(records)  # the tail only
    assert second["recovered_state_hash"] == first["state_hash"]


def test_old_snapshots_and_segments_go_past_the_retention(runs: Runs) -> None:
    config, proc = runs.start(**_rotating(snapshot_keep=2))
    _trade(config, 2000, seed=2)
    first = runs.stop(config, proc)
    assert first["checkpoints"] >= 4
    base = config.journal_path
    assert base is not None
    snapshots = list_snapshots(base)
    assert len(snapshots) == 2
    assert list_segments(base)[0] == snapshots[0]  # every segment the oldest kept snapshot needs, none before
    config2, proc2 = runs.start(**_rotating(snapshot_keep=2))
    assert runs.stop(config2, proc2)["recovered_state_hash"] == first["state_hash"]


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_sigkill_at_a_random_point_recovers_the_full_replay_and_cancels_the_gone_clients_orders(
        runs: Runs, seed: int) -> None:  # fmt: skip
    kill_after = random.Random(seed).randint(300, 1400)
    config, proc = runs.start(**_rotating())
    _trade(config, 3000, seed=seed, acks=kill_after)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(WAIT_S) == -signal.SIGKILL
    before = _full_history(config)
    truth = _reference(config, before)
    assert config.journal_path is not None
    assert list_snapshots(config.journal_path), "no checkpoint before the kill"

    # Client 2 is not attached when the engine comes back: its orders are cancelled, journaled.
    config2, proc2 = runs.start(**_rotating(clients=(1,)))
    recovered = runs.stop(config2, proc2)
    assert recovered["recovered_state_hash"] == truth.state_hash()
    gone_orders = sum(o.client_id == 2 for side in truth.l3(0).values() for o in side)
    assert recovered["recovery_cancelled"] == gone_orders
    after = _full_history(config2)
    replayed = _reference(config2, after)
    assert replayed.state_hash() == recovered["state_hash"]
    assert not [o for side in replayed.l3(0).values() for o in side if o.client_id == 2]


def test_a_damaged_newest_snapshot_falls_back_to_the_one_before_and_says_why(runs: Runs) -> None:
    config, proc = runs.start(**_rotating())
    _trade(config, 1500, seed=6)
    first = runs.stop(config, proc)
    assert config.journal_path is not None
    snapshots = list_snapshots(config.journal_path)
    assert len(snapshots) >= 2
    newest = Path(snapshot_path(config.journal_path, snapshots[-1]))
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x01
    newest.write_bytes(data)

    log = runs.tmp_path / "engine.log"
    config2, proc2 = _start_logged(runs, log, **_rotating())
    _wait_running(config2)
    second = runs.stop(config2, proc2)
    assert second["recovered_snapshot"] == snapshots[-2]
    assert second["recovered_state_hash"] == first["state_hash"]
    text = log.read_text()
    assert f"passed over a snapshot: {newest}: snapshot fails its checksum" in text


def test_a_damaged_record_after_the_snapshot_is_named_and_nothing_starts(runs: Runs) -> None:
    config, proc = runs.start(**_rotating())
    _trade(config, 1500, seed=7)
    runs.stop(config, proc)
    config, proc = runs.start(journal_capacity=SEGMENT)  # no rotation: a tail after the newest snapshot, surely
    _trade(config, 30, seed=8)
    runs.stop(config, proc)
    base = config.journal_path
    assert base is not None
    newest = list_snapshots(base)[-1]
    tail = [k for k in list_segments(base) if k >= newest and _has_records(segment_path(base, k))]
    assert tail, f"no record after snapshot {newest}: {sorted(p.name for p in runs.tmp_path.iterdir())}"
    path = Path(segment_path(base, tail[-1]))
    with path.open("r+b") as f:
        f.seek(128 + 40)  # record 0's price
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x04]))

    log = runs.tmp_path / "engine.log"
    config2, proc2 = _start_logged(runs, log, **_rotating())
    assert proc2.wait(START_TIMEOUT_S) == 2
    text = log.read_text()
    assert f"engine: {path}: record 0 (file offset 128) fails its checksum" in text
    assert "Traceback" not in text
    assert config2.status_path is not None and not Path(config2.status_path).exists()


def test_the_operator_checkpoint_op_writes_a_snapshot_at_once(runs: Runs) -> None:
    config, proc = runs.start(**_rotating(snapshot_every=10**9))  # never due by count
    _trade(config, 200, seed=8)
    key = load_operator_key(prefix=config.prefix)
    with ControlClient(config.endpoint, WAIT_S, operator_key=key) as ctl:
        reply = ctl.request("checkpoint")
    assert reply["segment"] == 1 and reply["journal_position"] == 200
    assert reply["snapshot"] == snapshot_path(config.journal_path or "", 1) and Path(reply["snapshot"]).exists()
    assert reply["pause_us"] > 0
    with ControlClient(config.endpoint, WAIT_S) as anyone, pytest.raises(ControlError) as refused:
        anyone.request("checkpoint")
    assert refused.value.code == "FORBIDDEN"
    status = runs.stop(config, proc)
    assert status["checkpoints"] == 1
    assert json.loads(Path(config.status_path or "").read_text())["segment"] == 1
