"""The broadcast ring from Python: single-process semantics, then real processes over /dev/shm.

The 5 M-message run with a fast and a slow reader process is in C (tests/c/test_bcast.c, `make ctest`); here a
producer process publishes 200 k messages through the numpy batch API to a reader that keeps up (nothing lost)
and a reader that sleeps (lapped: Overrun with counts that add up, every message it gets intact and in order).
Every wait has a deadline, children are killed in `finally`, and every test checks its segment is gone after.
"""

from __future__ import annotations

import mmap
import multiprocessing as mp
import os
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hotpath
from c_engine import EVENT_DTYPE, Event
from hotpath import BackoffIdle
from hotpath._cring import lib
from hotpath.bcast import (
    _ERRORS,
    Broadcast,
    BroadcastBadMagicError,
    BroadcastBadVersionError,
    BroadcastReader,
    BroadcastStatus,
    InvalidBroadcastError,
    Overrun,
    SharedMemoryBroadcast,
    broadcast_bytes,
)

ROOT = Path(__file__).resolve().parents[2]
SHM = Path("/dev/shm")
CHILD_TIMEOUT_S = 20.0
FORK = mp.get_context("fork")


def batch(start: int, n: int) -> np.ndarray:
    """Trade events whose engine seq is their position and whose price/qty are derived from it."""
    arr = np.zeros(n, EVENT_DTYPE)
    seqs = np.arange(start, start + n, dtype=np.uint64)
    arr["type"] = 7
    arr["seq"] = seqs
    arr["price"] = (seqs * 7 + 100).astype(np.int64)
    arr["qty"] = (seqs % 97 + 1).astype(np.int64)
    return arr


def msg(seq: int) -> bytes:
    return batch(seq, 1).tobytes()


def seq_of(raw: bytes | None) -> int:
    assert raw is not None, "nothing new to read"
    return Event.unpack_all(raw)[0].seq


def intact(arr: np.ndarray, start: int) -> bool:
    return bool(np.array_equal(arr, batch(start, len(arr))))


@pytest.fixture
def bcast() -> Iterator[Broadcast]:
    """An 8-slot broadcast ring in anonymous (page-aligned) memory."""
    mem = mmap.mmap(-1, broadcast_bytes(8))
    b = Broadcast.create(mem, 8)
    yield b
    b.close()
    mem.close()


# ---- single process ----


def test_status_codes_match_the_c_header_and_every_error_code_has_a_class() -> None:
    for status in BroadcastStatus:
        assert getattr(lib, f"PT_BCAST_{status.name}") == status
    assert {code for code in BroadcastStatus if code < 0} == set(_ERRORS)
    assert all(cls.code == code for code, cls in _ERRORS.items())
    assert lib.PT_BCAST_HEADER_BYTES == 128 and lib.PT_BCAST_SLOT_BYTES == 64
    assert "SharedMemoryBroadcast" in hotpath.__all__ and hotpath.__all__ == sorted(hotpath.__all__)


def test_a_reader_gets_messages_in_publish_order_then_none(bcast: Broadcast) -> None:
    reader = bcast.reader()
    assert isinstance(reader, BroadcastReader) and reader.position == 0
    for i in range(3):
        bcast.publish(msg(i))
    assert bcast.publish_batch(batch(3, 2)) == 2
    assert seq_of(reader.read()) == 0
    out = reader.read_batch(10)
    assert out.dtype == EVENT_DTYPE and intact(out, 1) and len(out) == 4
    assert reader.read() is None and len(reader.read_batch(4)) == 0
    assert (reader.position, reader.lag, reader.lost_total, bcast.tail) == (5, 0, 0, 5)


def test_publish_accepts_events_and_bytes_and_rejects_other_sizes(bcast: Broadcast) -> None:
    reader = bcast.reader()
    bcast.publish(Event.unpack_all(msg(7))[0])
    bcast.publish(bytearray(msg(8)))
    with pytest.raises(ValueError):
        bcast.publish(b"short")
    assert [seq_of(reader.read()) for _ in range(2)] == [7, 8]


def test_readers_have_independent_cursors_and_a_new_reader_starts_at_the_newest(bcast: Broadcast) -> None:
    early = bcast.reader()
    bcast.publish_batch(batch(0, 3))
    late = bcast.reader()
    assert late.position == 3 and late.read() is None
    bcast.publish(msg(3))
    assert seq_of(late.read()) == 3
    assert intact(early.read_batch(8), 0)


def test_wrap_around_many_times_keeps_order(bcast: Broadcast) -> None:
    reader = bcast.reader()
    published = seen = 0
    for round_ in range(2000):
        n = 1 + round_ % 5
        bcast.publish_batch(batch(published, n))
        published += n
        while len(got := reader.read_batch(1 + round_ % 3)):
            assert intact(got, seen)
            seen += len(got)
    assert seen == published > 100 * bcast.capacity and reader.lost_total == 0


def test_a_lapped_reader_gets_overrun_with_the_exact_lost_count_and_reads_on(bcast: Broadcast) -> None:
    reader = bcast.reader()
    bcast.publish_batch(batch(0, 20))  # the ring holds 12..19
    with pytest.raises(Overrun) as info:
        reader.read()
    assert (info.value.lost, info.value.position, info.value.code) == (12, 12, BroadcastStatus.OVERRUN)
    assert intact(reader.read_batch(100), 12)
    bcast.publish_batch(batch(20, 30))  # holds 42..49
    with pytest.raises(Overrun) as info:
        reader.read_batch(4)
    assert (info.value.lost, reader.position, reader.lost_total, reader.overruns) == (22, 42, 34, 2)
    assert intact(reader.read_batch(100), 42)


def test_resync_jumps_to_the_newest_position_without_counting_a_loss(bcast: Broadcast) -> None:
    reader = bcast.reader()
    bcast.publish_batch(batch(0, 30))
    assert reader.lag == 30
    assert reader.resync() == 30
    assert reader.read() is None and reader.lost_total == 0
    bcast.publish(msg(30))
    assert seq_of(reader.read()) == 30


def test_read_wait_times_out_on_nothing_new_and_returns_a_message(bcast: Broadcast) -> None:
    reader = bcast.reader()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        reader.read_wait(0.05)
    assert 0.05 <= time.monotonic() - t0 < 2
    bcast.publish(msg(1))
    assert seq_of(reader.read_wait(1.0)) == 1


def test_tail_and_slot_seq_sit_at_the_drawn_byte_offsets() -> None:
    mem = mmap.mmap(-1, broadcast_bytes(4))
    b = Broadcast.create(mem, 4)
    b.publish_batch(batch(0, 6))
    assert struct.unpack_from("<QII", mem, 0) == (lib.PT_BCAST_MAGIC, lib.PT_BCAST_VERSION, 4)
    assert struct.unpack_from("<Q", mem, lib.PT_BCAST_OFF_TAIL)[0] == 6
    assert struct.unpack_from("<4Q", mem, lib.PT_BCAST_OFF_SEQ) == (5, 6, 3, 4)  # position + 1 per slot
    slot1 = int(lib.pt_bcast_slots_offset(4)) + 64
    assert seq_of(bytes(mem[slot1 : slot1 + 64])) == 5
    b.close()
    mem.close()


def test_bad_regions_raise_one_class_per_c_code(shm_name: str) -> None:
    mem = mmap.mmap(-1, broadcast_bytes(8))
    with pytest.raises(BroadcastBadMagicError):
        Broadcast(mem)
    Broadcast.create(mem, 8).close()
    struct.pack_into("<I", mem, 8, lib.PT_BCAST_VERSION + 1)
    with pytest.raises(BroadcastBadVersionError):
        Broadcast(mem)
    for capacity in (0, 3, 12):
        with pytest.raises(InvalidBroadcastError):
            Broadcast.create(mem, capacity)
        with pytest.raises(InvalidBroadcastError):
            SharedMemoryBroadcast.create(shm_name, capacity)
    mem.close()
    (SHM / shm_name).write_bytes(bytes(4096))
    try:
        with pytest.raises(BroadcastBadMagicError):
            SharedMemoryBroadcast.attach(shm_name)
    finally:
        os.unlink(SHM / shm_name)


def test_a_closed_broadcast_refuses_calls_instead_of_touching_unmapped_memory(shm_name: str) -> None:
    b = SharedMemoryBroadcast.create(shm_name, 8)
    reader = b.reader()
    b.close()
    with pytest.raises(ValueError):
        reader.read()
    with pytest.raises(ValueError):
        b.publish(msg(0))


# ---- shared memory and processes ----


def test_owner_close_removes_the_segment_and_an_attacher_close_does_not(shm_name: str) -> None:
    owner = SharedMemoryBroadcast.create(shm_name, 16)
    with SharedMemoryBroadcast.attach(shm_name) as other:
        assert other.capacity == 16 and not other.owner
    assert (SHM / shm_name).exists()
    owner.close()
    assert not (SHM / shm_name).exists()


def test_an_attaching_process_reads_and_leaves_the_segment_and_no_tracker_warning(shm_name: str) -> None:
    with SharedMemoryBroadcast.create(shm_name, 16) as owner:
        code = textwrap.dedent(f"""
            import sys
            from hotpath import SharedMemoryBroadcast
            from c_engine import Event
            with SharedMemoryBroadcast.attach({shm_name!r}) as b:
                r = b.reader()
                print("ready", flush=True)
                sys.stdin.readline()
                print(Event.unpack_all(r.read_wait(10.0))[0].seq)
        """)
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            owner.publish(msg(42))
            out, err = child.communicate("go\n", timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
        assert child.returncode == 0, err
        assert out.strip() == "42"
        assert "resource_tracker" not in err and "leaked" not in err
        assert (SHM / shm_name).exists()


def test_a_segment_whose_owner_dies_without_closing_is_removed(shm_name: str) -> None:
    code = (
        "import os; from hotpath import SharedMemoryBroadcast; "
        f"SharedMemoryBroadcast.create({shm_name!r}, 8); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60, check=True)
    deadline = time.monotonic() + 10  # the owner's resource tracker unlinks it once the owner is gone
    while (SHM / shm_name).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not (SHM / shm_name).exists()


def _read(name: str, count: int, conn: Connection, slow: bool, progress: Any) -> None:
    """Child: attaches, reads until position ``count``; reports (start, read, lost, overruns, first bad or -1, ...).

    The fast reader publishes its position in ``progress`` so the test's producer can pace itself on it.
    """
    read = lost = overruns = 0
    bad = -1
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    idle = BackoffIdle()
    with SharedMemoryBroadcast.attach(name) as b:
        reader = b.reader()
        conn.send("ready")
        reader_start = reader.position
        while reader.position < count and time.monotonic() < deadline:
            at = reader.position
            try:
                got = reader.read_batch(256 if slow else 1024)
            except Overrun as o:
                if o.lost != reader.position - at or o.position != reader.position:
                    bad = at
                lost += o.lost
                overruns += 1
                continue
            if len(got) and bad < 0 and not intact(got, at):
                bad = at
            read += len(got)
            if progress is not None:
                progress.value = reader.position
            idle.idle(len(got))
            if slow and len(got):
                time.sleep(0.002)  # the slow reader
    conn.send((reader_start, read, lost, overruns, bad, reader.lost_total))
    conn.close()


def _start_reader(name: str, count: int, slow: bool, progress: Any = None) -> tuple[BaseProcess, Connection]:
    parent_conn, child_conn = FORK.Pipe(duplex=False)
    proc = FORK.Process(target=_read, args=(name, count, child_conn, slow, progress), daemon=True)
    proc.start()
    child_conn.close()
    assert parent_conn.poll(CHILD_TIMEOUT_S), "reader did not attach in time"
    assert parent_conn.recv() == "ready"
    return proc, parent_conn


def _result(proc: BaseProcess, conn: Connection) -> tuple[int, int, int, int, int, int]:
    assert conn.poll(CHILD_TIMEOUT_S + 10), "reader did not report in time"
    result: tuple[int, int, int, int, int, int] = conn.recv()
    proc.join(10)
    assert proc.exitcode == 0
    return result


def _stop(proc: BaseProcess) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join(10)


def test_a_fast_reader_keeps_up_and_a_slow_reader_is_lapped_with_every_loss_counted(shm_name: str) -> None:
    count, capacity, chunk = 200_000, 65536, 1000
    progress = FORK.RawValue("Q", 0)  # the fast reader's position (test-only pacing; the ring never waits)
    with SharedMemoryBroadcast.create(shm_name, capacity) as b:
        fast, fast_conn = _start_reader(shm_name, count, slow=False, progress=progress)
        try:
            slow, slow_conn = _start_reader(shm_name, count, slow=True)
            try:
                t0 = time.monotonic()
                idle = BackoffIdle()
                for start in range(0, count, chunk):
                    while start + chunk - progress.value > capacity // 2:  # keep the fast reader inside the ring
                        assert time.monotonic() - t0 < CHILD_TIMEOUT_S, "fast reader stalled"
                        idle.idle(0)
                    idle.reset()
                    b.publish_batch(batch(start, chunk))
                f_start, f_read, f_lost, f_overruns, f_bad, _ = _result(fast, fast_conn)
                s_start, s_read, s_lost, s_overruns, s_bad, s_lost_total = _result(slow, slow_conn)
                elapsed = time.monotonic() - t0
            finally:
                _stop(slow)
        finally:
            _stop(fast)
        assert b.tail == count
    assert (f_start, f_read, f_lost, f_overruns, f_bad) == (0, count, 0, 0, -1)
    assert s_start == 0 and s_overruns > 0 and s_bad == -1
    assert s_read + s_lost == count and s_lost == s_lost_total
    assert elapsed < CHILD_TIMEOUT_S
