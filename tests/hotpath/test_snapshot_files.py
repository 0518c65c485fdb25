"""hotpath.journal.recover and the rotated journal's files, in-process: segments and snapshots written as the
engine process writes them, then recovered from, damaged, or with a file missing."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import numpy as np
import pytest

from c_engine import COMMAND_DTYPE, Command, Engine, EngineConfig, Side, SymbolConfig
from hotpath.journal import (
    Journal,
    JournalConfigError,
    JournalCorruptError,
    RecoveryError,
    dump,
    list_segments,
    list_snapshots,
    read_history,
    recover,
    segment_path,
    snapshot_path,
)

CONFIG = EngineConfig(max_orders=1 << 12, max_levels_per_side=64, max_symbols=1, max_clients=8)
FINGERPRINT = 0x5EED
PER_SEGMENT = 300


def make_engine() -> Engine:
    engine = Engine(CONFIG)
    engine.add_symbol(SymbolConfig("AAA"))
    return engine


def commands(n: int, seed: int = 1) -> np.ndarray:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if i > 10 and rng.random() < 0.2:
            out.append(Command.cancel(1 + i % 3, rng.randint(1, i // 2), ts_ns=i + 1))
        else:
            out.append(Command.new(1 + i % 3, 0, side, rng.randint(1, 5), rng.randint(95, 105), ts_ns=i + 1))
    return np.frombuffer(b"".join(c.pack() for c in out), dtype=COMMAND_DTYPE)


def write_history(base: Path, records: np.ndarray) -> int:
    """Segments of PER_SEGMENT records with a snapshot between two, as the engine process leaves them; returns
    the state hash at the end."""
    engine = make_engine()
    for k, start in enumerate(range(0, len(records), PER_SEGMENT)):
        if k > 0:
            engine.save_snapshot(snapshot_path(base, k), journal_position=start, segment=k, config_hash=FINGERPRINT)
        chunk = records[start : start + PER_SEGMENT]
        with Journal.create(segment_path(base, k), PER_SEGMENT * 2, FINGERPRINT) as journal:
            journal.append(chunk)
        engine.execute_batch(chunk)
    return engine.state_hash()


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, np.ndarray, int]:
    records = commands(1400)
    base = tmp_path / "journal"
    return base, records, write_history(base, records)


def test_segment_zero_is_the_journal_itself_and_the_others_are_numbered_beside_it(tmp_path: Path) -> None:
    base = tmp_path / "j"
    assert segment_path(base, 0) == str(base)
    assert segment_path(base, 12) == f"{base}.000012"
    assert snapshot_path(base, 12) == f"{base}.000012.snap"


def test_no_journal_at_all_starts_a_new_segment_zero(tmp_path: Path) -> None:
    engine, journal, rec = recover(tmp_path / "j", make_engine, 64, FINGERPRINT)
    with journal:
        assert journal.path == str(tmp_path / "j") and journal.committed() == 0
    assert rec.segments == [0] and rec.snapshot is None and engine.stats()["commands"] == 0


def test_recovery_loads_the_newest_snapshot_and_replays_only_its_segment(history: tuple[Path, np.ndarray, int]) -> None:
    base, records, state = history
    assert list_segments(base) == [0, 1, 2, 3, 4] and list_snapshots(base) == [1, 2, 3, 4]
    engine, journal, rec = recover(base, make_engine, 64, FINGERPRINT)
    journal.close()
    assert rec.snapshot == snapshot_path(base, 4) and rec.segments == [4]
    assert rec.replayed == len(records) - 4 * PER_SEGMENT and rec.journal_position == 4 * PER_SEGMENT
    assert engine.state_hash() == state and not rec.skipped


def test_a_damaged_newest_snapshot_is_passed_over_for_the_one_before(history: tuple[Path, np.ndarray, int]) -> None:
    base, _, state = history
    newest = Path(snapshot_path(base, 4))
    newest.write_bytes(newest.read_bytes()[:-8])  # torn
    engine, journal, rec = recover(base, make_engine, 64, FINGERPRINT)
    journal.close()
    assert rec.snapshot == snapshot_path(base, 3) and rec.segments == [3, 4]
    assert engine.state_hash() == state
    assert len(rec.skipped) == 1 and "torn or cut write" in rec.skipped[0] and str(newest) in rec.skipped[0]


def test_without_any_usable_snapshot_the_whole_history_is_replayed(history: tuple[Path, np.ndarray, int]) -> None:
    base, records, state = history
    for k in list_snapshots(base):
        os.unlink(snapshot_path(base, k))
    engine, journal, rec = recover(base, make_engine, 64, FINGERPRINT)
    journal.close()
    assert rec.segments == [0, 1, 2, 3, 4] and rec.replayed == len(records) and engine.state_hash() == state


def test_a_history_of_another_configuration_is_refused(history: tuple[Path, np.ndarray, int]) -> None:
    base, _, _ = history
    with pytest.raises(JournalConfigError, match="another configuration"):
        recover(base, make_engine, 64, FINGERPRINT + 1)


def test_a_missing_segment_in_the_tail_is_named(history: tuple[Path, np.ndarray, int]) -> None:
    base, _, _ = history
    os.unlink(snapshot_path(base, 4))
    os.unlink(segment_path(base, 3))
    with pytest.raises(RecoveryError, match=r"no usable snapshot|journal\.000003 is missing") as err:
        recover(base, make_engine, 64, FINGERPRINT)
    assert "000003" in str(err.value)


def test_without_snapshots_and_segment_zero_nothing_can_be_rebuilt(history: tuple[Path, np.ndarray, int]) -> None:
    base, _, _ = history
    for k in list_snapshots(base):
        os.unlink(snapshot_path(base, k))
    os.unlink(base)
    with pytest.raises(RecoveryError, match="segment 0 .* is gone"):
        recover(base, make_engine, 64, FINGERPRINT)


def test_a_damaged_record_in_the_tail_is_named_by_segment_and_index(history: tuple[Path, np.ndarray, int]) -> None:
    base, _, _ = history
    path = segment_path(base, 4)
    with open(path, "r+b") as f:
        f.seek(128 + 64 * 7 + 48)  # record 7's qty
        f.write(b"\x7f")
    with pytest.raises(JournalCorruptError, match=rf"{path}: record 7 \(file offset {128 + 64 * 7}\) fails"):
        recover(base, make_engine, 64, FINGERPRINT)


def test_dump_and_read_history_read_every_segment_in_order(history: tuple[Path, np.ndarray, int]) -> None:
    base, records, _ = history
    first, got = read_history(base)
    assert first == 0 and (got == records).all()
    out = io.StringIO()
    assert dump(base, out, {0: "AAA"}) == len(records)
    assert len(out.getvalue().splitlines()) == len(records)
