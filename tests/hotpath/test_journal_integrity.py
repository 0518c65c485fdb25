"""Journal integrity: each record's CRC32C is checked at recovery, by `proptrade journal verify` and before a
dump; `proptrade journal salvage` copies the intact prefix into a new journal that recovers to that prefix's
state.

Most journals here are written in process (``Journal.create`` and ``Journal.append``, the same C append the
engine loop runs); one test has a real engine process write its journal, and the recoveries are real engine
processes. Damage is done to the file the way a disk or a stray writer would: bytes flipped, the count lowered.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from c_engine import COMMAND_DTYPE, Command, Engine, Side
from hotpath.cli import main as proptrade
from hotpath.engine_client import EngineClient
from hotpath.engine_control import EngineControl
from hotpath.engine_process import EngineProcessConfig
from hotpath.journal import Journal, JournalCorruptError, read_commands

from conftest import SHM, WAIT_S, Runs

RECORD_BYTES = 64
HEADER_BYTES = 128
COUNT_OFFSET = 64
PRICE_OFFSET = 40  # of a record: pt_command_t.price
#: the configuration Runs.start uses (its fingerprint stamps the journals recovered here)
DEFAULT = EngineProcessConfig(prefix="unused")


def _stream(n: int, seed: int) -> list[Command]:
    """Clients 1 and 2 alternating: crossing limit orders around 100, with every 7th a qty-0 REJECT."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        qty = 0 if i % 7 == 3 else rng.randint(1, 5)
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        out.append(Command.new(1 + i % 2, 0, side, qty, rng.randint(95, 105), cloid=i + 1, ts_ns=1_000 + i))
    return out


def _records(commands: list[Command]) -> np.ndarray:
    return np.frombuffer(b"".join(c.pack() for c in commands), dtype=COMMAND_DTYPE).copy()


def _write_journal(path: Path, records: np.ndarray, capacity: int = 4096) -> None:
    with Journal.create(path, capacity, DEFAULT.fingerprint()) as journal:
        journal.append(records)


def _state_hash(records: np.ndarray) -> int:
    """An in-process engine of the default configuration fed these records."""
    engine = Engine(DEFAULT.engine)
    for sym in DEFAULT.symbols:
        engine.add_symbol(sym)
    engine.execute_batch(records)
    return int(engine.state_hash())


def _flip(path: Path, offset: int, n: int = 4) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def _set_count(path: Path, count: int) -> None:
    with open(path, "r+b") as f:
        f.seek(COUNT_OFFSET)
        f.write(struct.pack("<Q", count))


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


def test_an_engine_written_journal_verifies_intact_and_a_restart_recovers_its_state(
    runs: Runs, capsys: pytest.CaptureFixture[str]
) -> None:
    config, proc = runs.start()
    _submit_all(config, _stream(300, seed=11))
    first = runs.stop(config, proc)
    assert config.journal_path is not None
    capsys.readouterr()
    assert proptrade(["journal", "verify", config.journal_path]) == 0
    out = capsys.readouterr().out
    assert "300 records committed" in out and "all 300 records intact" in out
    config2, proc2 = runs.start()
    second = runs.stop(config2, proc2)
    assert second["replayed"] == 300 and second["recovered_state_hash"] == first["state_hash"]


def test_four_flipped_bytes_in_a_record_refuse_recovery_naming_the_record(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    records = _records(_stream(400, seed=5))
    _write_journal(path, records)
    _flip(path, HEADER_BYTES + 123 * RECORD_BYTES + PRICE_OFFSET)
    # Without the check this would replay, quietly, to another state:
    assert _state_hash(read_commands(path, verify=False)) != _state_hash(records)
    prefix = f"pt_jint_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    config = EngineProcessConfig(prefix=prefix, core=max(os.sched_getaffinity(0)), journal_path=str(path))
    out = subprocess.run([sys.executable, "-m", "hotpath.engine_process", config.to_json()], capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.startswith(f"engine: {path}: record 123 (file offset {HEADER_BYTES + 123 * 64}) fails its")
    assert "expected (stored)" in out.stderr and "Traceback" not in out.stderr and out.stderr.count("\n") == 1
    assert not list(SHM.glob(prefix + "_*"))  # refused before any segment was made


def test_a_count_lowered_by_a_thousand_is_refused_at_recovery(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    _write_journal(path, _records(_stream(1500, seed=2)))
    _set_count(path, 500)
    with pytest.raises(JournalCorruptError, match="counts 500 committed records but 1000 whole records") as e:
        Journal.open_or_create(path, 4096, DEFAULT.fingerprint())
    assert e.value.code == -7 and e.value.check.intact == 500


def test_one_whole_record_after_the_count_is_an_unpublished_append_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.bin"
    _write_journal(path, _records(_stream(50, seed=3)))
    _set_count(path, 49)  # what a crash between an append's copy and its publishing store leaves
    assert proptrade(["journal", "verify", str(path)]) == 0
    assert "never published" in capsys.readouterr().out
    assert len(read_commands(path)) == 49


def test_verify_exits_1_naming_the_first_bad_record_of_a_damaged_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.bin"
    _write_journal(path, _records(_stream(100, seed=4)))
    _flip(path, HEADER_BYTES + 70 * RECORD_BYTES + 3)
    _flip(path, HEADER_BYTES + 30 * RECORD_BYTES + 60)  # the first bad one is named, whatever follows
    assert proptrade(["journal", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED: record 30 (file offset {HEADER_BYTES + 30 * 64}) fails its checksum" in out
    assert "the 30 records before it are intact" in out


def _zeros(path: Path) -> None:
    path.write_bytes(bytes(4096))


def _short(path: Path) -> None:
    path.write_bytes(b"x")


def _truncated(path: Path) -> None:
    _write_journal(path, _records(_stream(4, seed=1)), capacity=16)
    os.truncate(path, 600)


def _version_2(path: Path) -> None:
    _write_journal(path, _records(_stream(4, seed=1)), capacity=16)
    with open(path, "r+b") as f:
        f.seek(8)
        f.write(struct.pack("<I", 2))  # the layout before checksums


def _stamp_flipped(path: Path) -> None:
    _write_journal(path, _records(_stream(4, seed=1)), capacity=16)
    _flip(path, 24, 1)  # a byte of the configuration stamp: damage, not another configuration


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (_zeros, "bad magic"),
        (_short, "usable size"),
        (_truncated, "truncated"),
        (_version_2, "version 2;"),
        (_stamp_flipped, "damaged journal header"),
        (None, "No such file"),
    ],
)
def test_verify_exits_2_with_one_line_for_a_file_that_is_no_usable_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, said: str
) -> None:
    path = tmp_path / "journal.bin"
    if callable(make):
        make(path)
    assert proptrade(["journal", "verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1 and "Traceback" not in err


def test_salvage_keeps_the_prefix_before_the_bad_record_and_it_recovers_to_that_prefixs_state(
    runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "damaged.bin"
    records = _records(_stream(400, seed=9))
    _write_journal(damaged, records)
    _flip(damaged, HEADER_BYTES + 250 * RECORD_BYTES + PRICE_OFFSET)
    salvaged = tmp_path / "journal.bin"  # where Runs.start's engines journal
    assert proptrade(["journal", "salvage", str(damaged), "--out", str(salvaged)]) == 0
    assert "250 records of 400 committed copied" in capsys.readouterr().out
    assert proptrade(["journal", "verify", str(salvaged)]) == 0
    config, proc = runs.start()
    status = runs.stop(config, proc)
    assert status["replayed"] == 250
    assert status["recovered_state_hash"] == _state_hash(records[:250]) != _state_hash(records)


def test_salvage_past_committed_takes_back_the_records_a_lowered_count_left_out(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    records = _records(_stream(1500, seed=6))
    _write_journal(path, records)
    _set_count(path, 500)
    assert proptrade(["journal", "salvage", str(path), "--out", str(tmp_path / "count")]) == 0
    assert proptrade(["journal", "salvage", str(path), "--out", str(tmp_path / "all"), "--past-committed"]) == 0
    assert (read_commands(tmp_path / "count") == records[:500]).all()
    assert (read_commands(tmp_path / "all") == records).all()
    with Journal(tmp_path / "all", writable=False) as journal:  # the stamp and capacity come along
        assert (journal.capacity, journal.config_hash) == (4096, DEFAULT.fingerprint())


def test_salvage_never_overwrites_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, out = tmp_path / "journal.bin", tmp_path / "out.bin"
    _write_journal(path, _records(_stream(10, seed=8)))
    out.write_bytes(b"keep me")
    assert proptrade(["journal", "salvage", str(path), "--out", str(out)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me" and not (tmp_path / "out.bin.new").exists()


def test_dump_of_a_damaged_journal_fails_naming_the_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.bin"
    _write_journal(path, _records(_stream(20, seed=7)))
    _flip(path, HEADER_BYTES + 7 * RECORD_BYTES)
    assert proptrade(["journal", "dump", str(path), "--out", str(tmp_path / "c.jsonl")]) == 2
    assert "record 7 (file offset" in capsys.readouterr().err


def test_a_journal_opened_read_only_refuses_an_append(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    _write_journal(path, _records(_stream(3, seed=1)))
    with Journal(path, writable=False) as journal, pytest.raises(PermissionError, match="read-only"):
        journal.append(_records(_stream(1, seed=2)))
    assert len(read_commands(path)) == 3
