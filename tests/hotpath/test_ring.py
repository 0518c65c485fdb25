"""The SPSC ring from Python: single-process semantics, then two real processes over /dev/shm.

The 10 M-message transfer runs in C (tests/c/test_ring.c, `make ctest`); here two processes move 200 k
messages through the numpy batch API and a slow consumer back-pressures the producer. Every wait has a
deadline, children are killed in `finally`, and every test checks that its segment is gone afterwards.
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

import numpy as np
import pytest

from c_engine import COMMAND_DTYPE, EVENT_DTYPE, Command
from hotpath import BackoffIdle
from hotpath._cring import lib
from hotpath.ring import (
    BadMagicError,
    BadVersionError,
    InvalidRingError,
    Ring,
    RingFullError,
    RingStatus,
    SharedMemoryRing,
    ring_bytes,
)

ROOT = Path(__file__).resolve().parents[2]
SHM = Path("/dev/shm")
CHILD_TIMEOUT_S = 30.0
FORK = mp.get_context("fork")


def msg(seq: int) -> bytes:
    """A command whose order_id is its sequence number."""
    return Command.cancel(client_id=1, order_id=seq).pack()


def seq_of(raw: bytes | None) -> int:
    assert raw is not None, "the ring was empty"
    return Command.unpack(raw).order_id


def batch(start: int, n: int) -> np.ndarray:
    arr = np.zeros(n, COMMAND_DTYPE)
    arr["op"] = 2
    arr["order_id"] = np.arange(start, start + n)
    return arr


@pytest.fixture
def ring() -> Iterator[Ring]:
    """An 8-slot ring in anonymous (page-aligned) memory."""
    mem = mmap.mmap(-1, ring_bytes(8))
    r = Ring.create(mem, 8)
    yield r
    r.close()
    mem.close()


# ---- single process ----


def test_status_codes_match_the_c_header() -> None:
    for status in RingStatus:
        assert getattr(lib, f"PT_RING_{status.name}") == status
    assert lib.PT_RING_HEADER_BYTES == 320 and lib.PT_RING_SLOT_BYTES == 64


def test_messages_come_out_in_the_order_they_went_in(ring: Ring) -> None:
    for i in range(5):
        assert ring.push(msg(i))
    assert ring.depth() == len(ring) == 5
    assert [seq_of(ring.pop()) for _ in range(5)] == list(range(5))


def test_ring_wraps_around_many_times_without_losing_order(ring: Ring) -> None:
    pushed = popped = 0
    for round_ in range(3000):
        for _ in range(1 + round_ % 5):
            if ring.push(msg(pushed)):
                pushed += 1
        for _ in range(1 + (round_ * 7) % 5):
            raw = ring.pop()
            if raw is not None:
                assert seq_of(raw) == popped
                popped += 1
    assert pushed > 100 * ring.capacity
    assert (ring.tail, ring.head) == (pushed, popped)


def test_full_ring_refuses_push_and_never_overwrites(ring: Ring) -> None:
    for i in range(8):
        assert ring.push(msg(i))
    assert ring.push(msg(99)) is False
    assert ring.push_batch(batch(100, 3)) == 0
    assert ring.depth() == 8
    assert [seq_of(ring.pop()) for _ in range(8)] == list(range(8))


def test_empty_ring_pop_returns_none_and_batches_are_empty(ring: Ring) -> None:
    assert ring.pop() is None
    assert len(ring.pop_batch(4)) == 0
    assert len(ring.peek_batch(4)) == 0
    ring.release(3)  # nothing published: no effect
    assert ring.head == 0


def test_push_batch_is_partial_when_the_ring_is_nearly_full(ring: Ring) -> None:
    assert ring.push_batch(batch(0, 6)) == 6
    assert ring.push_batch(batch(6, 5)) == 2
    out = ring.pop_batch(100)
    assert out.dtype == COMMAND_DTYPE and list(out["order_id"]) == list(range(8))


def test_peek_batch_is_a_zero_copy_view_that_stops_at_the_wrap(ring: Ring) -> None:
    ring.push_batch(batch(0, 6))
    ring.pop_batch(6)
    ring.push_batch(batch(6, 5))  # slots 6, 7, 0, 1, 2
    view = ring.peek_batch(100)
    assert list(view["order_id"]) == [6, 7]
    assert not view.flags.owndata and not view.flags.writeable
    ring.release(len(view))
    del view
    view = ring.peek_batch(2)
    assert list(view["order_id"]) == [8, 9]
    ring.release(2)
    del view
    assert list(ring.pop_batch(10)["order_id"]) == [10]


def test_pop_batch_can_decode_as_events(ring: Ring) -> None:
    ring.push_batch(batch(0, 2))
    out = ring.pop_batch(2, dtype=EVENT_DTYPE)
    assert out.dtype == EVENT_DTYPE and list(out["order_id"]) == [0, 1]


def test_indices_sit_at_the_drawn_byte_offsets() -> None:
    mem = mmap.mmap(-1, ring_bytes(8))
    r = Ring.create(mem, 8)
    r.push_batch(batch(0, 3))
    r.pop()
    assert struct.unpack_from("<QII", mem, 0) == (lib.PT_RING_MAGIC, lib.PT_RING_VERSION, 8)
    assert struct.unpack_from("<Q", mem, lib.PT_RING_OFF_TAIL)[0] == 3
    assert struct.unpack_from("<Q", mem, lib.PT_RING_OFF_HEAD)[0] == 1
    assert struct.unpack_from("<Q", mem, lib.PT_RING_HEADER_BYTES + 64 + 24)[0] == 1  # slot 1's order_id
    r.close()
    mem.close()


def test_push_accepts_commands_and_bytes_and_rejects_other_sizes(ring: Ring) -> None:
    assert ring.push(Command.cancel(1, 7))
    assert ring.push(bytearray(msg(8)))
    with pytest.raises(ValueError):
        ring.push(b"short")
    assert [seq_of(ring.pop()) for _ in range(2)] == [7, 8]


def test_attach_to_an_uninitialised_region_raises_bad_magic() -> None:
    mem = mmap.mmap(-1, ring_bytes(8))
    with pytest.raises(BadMagicError) as info:
        Ring(mem)
    assert info.value.code == RingStatus.EBADMAGIC
    Ring.create(mem, 8).close()
    struct.pack_into("<I", mem, 8, lib.PT_RING_VERSION + 1)
    with pytest.raises(BadVersionError):
        Ring(mem)
    mem.close()


def test_attach_to_a_segment_that_is_not_a_ring_raises_bad_magic(shm_name: str) -> None:
    (SHM / shm_name).write_bytes(bytes(4096))
    try:
        with pytest.raises(BadMagicError):
            SharedMemoryRing.attach(shm_name)
    finally:
        os.unlink(SHM / shm_name)


@pytest.mark.parametrize("capacity", [0, 3, 12, 1000])
def test_capacity_not_a_power_of_two_is_rejected_and_creates_nothing(shm_name: str, capacity: int) -> None:
    with pytest.raises(InvalidRingError):
        ring_bytes(capacity)
    with pytest.raises(InvalidRingError):
        SharedMemoryRing.create(shm_name, capacity)
    mem = mmap.mmap(-1, 4096)
    with pytest.raises(InvalidRingError):
        Ring.create(mem, capacity)
    mem.close()


def test_pop_wait_raises_timeout_error_on_an_empty_ring(ring: Ring) -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        ring.pop_wait(0.05)
    assert 0.05 <= time.monotonic() - t0 < 2


def test_push_wait_raises_ring_full_error_on_a_full_ring(ring: Ring) -> None:
    ring.push_batch(batch(0, 8))
    with pytest.raises(RingFullError):
        ring.push_wait(msg(8), 0.05)
    assert isinstance(RingFullError(), TimeoutError)
    assert ring.depth() == 8


def test_backoff_idle_steps_from_spin_to_yield_to_sleep_and_resets_after_work() -> None:
    idle = BackoffIdle(max_spins=2, max_yields=2, min_sleep_s=1e-6, max_sleep_s=4e-6)
    for _ in range(10):
        idle.idle(0)
    assert idle._sleep_s == 4e-6  # capped
    idle.idle(1)
    assert (idle._spins, idle._yields, idle._sleep_s) == (0, 0, 1e-6)


# ---- shared memory and two processes ----


def test_owner_close_removes_the_segment_and_an_attacher_close_does_not(shm_name: str) -> None:
    before = {p.name for p in SHM.iterdir()}
    owner = SharedMemoryRing.create(shm_name, 16)
    assert (SHM / shm_name).exists()
    with SharedMemoryRing.attach(shm_name) as other:
        assert other.capacity == 16 and not other.owner
    assert (SHM / shm_name).exists()
    owner.push(msg(1))
    view = SharedMemoryRing.attach(shm_name)
    held = view.peek_batch(1)  # a live zero-copy view must not stop close
    owner.close()
    view.close()
    assert int(held["order_id"][0]) == 1  # the mapping lives as long as the view
    del held
    assert shm_name not in {p.name for p in SHM.iterdir()} - before


def test_an_attaching_process_leaves_the_segment_and_no_tracker_warning(shm_name: str) -> None:
    with SharedMemoryRing.create(shm_name, 16) as owner:
        owner.push(msg(42))
        code = textwrap.dedent(f"""
            from hotpath import SharedMemoryRing
            from c_engine import Command
            with SharedMemoryRing.attach({shm_name!r}) as r:
                print(Command.unpack(r.pop()).order_id)
        """)
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "42"
        assert "resource_tracker" not in done.stderr and "leaked" not in done.stderr
        assert (SHM / shm_name).exists()
        assert owner.head == 1


def test_a_segment_whose_owner_dies_without_closing_is_removed(shm_name: str) -> None:
    code = f"from hotpath import SharedMemoryRing; import os; SharedMemoryRing.create({shm_name!r}, 8); os._exit(0)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60, check=True)
    deadline = time.monotonic() + 10  # the owner's resource tracker unlinks it once the owner is gone
    while (SHM / shm_name).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not (SHM / shm_name).exists()


def _consume(name: str, count: int, conn: Connection, sleep_every: int, sleep_s: float) -> None:
    """Child: attaches by name, pops ``count`` messages in batches, reports (received, first bad index or -1)."""
    received, bad = 0, -1
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    idle = BackoffIdle()
    with SharedMemoryRing.attach(name) as ring:
        while received < count and time.monotonic() < deadline:
            got = ring.pop_batch(1 if sleep_every else 512)["order_id"]
            if len(got) and bad < 0:
                wrong = np.flatnonzero(got != np.arange(received, received + len(got)))
                if len(wrong):
                    bad = received + int(wrong[0])
            received += len(got)
            idle.idle(len(got))
            if sleep_every and len(got) and received % sleep_every == 0:
                time.sleep(sleep_s)  # the slow consumer
        extra = ring.pop()
    conn.send((received, bad, extra is not None))
    conn.close()


def _run_consumer(name: str, count: int, sleep_every: int = 0, sleep_s: float = 0.0) -> tuple[BaseProcess, Connection]:
    parent_conn, child_conn = FORK.Pipe(duplex=False)
    proc = FORK.Process(target=_consume, args=(name, count, child_conn, sleep_every, sleep_s), daemon=True)
    proc.start()
    child_conn.close()
    return proc, parent_conn


def _result(proc: BaseProcess, conn: Connection) -> tuple[int, int, bool]:
    assert conn.poll(CHILD_TIMEOUT_S + 10), "consumer did not report in time"
    result: tuple[int, int, bool] = conn.recv()
    proc.join(10)
    assert proc.exitcode == 0
    return result


def _stop(proc: BaseProcess) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join(10)


def test_two_processes_move_200k_messages_through_batches_without_loss_or_reordering(shm_name: str) -> None:
    count = 200_000
    with SharedMemoryRing.create(shm_name, 1024) as ring:
        proc, conn = _run_consumer(shm_name, count)
        try:
            t0 = time.monotonic()
            for start in range(0, count, 1000):
                ring.push_batch_wait(batch(start, 1000), timeout_s=CHILD_TIMEOUT_S)
            received, bad, extra = _result(proc, conn)
            elapsed = time.monotonic() - t0
        finally:
            _stop(proc)
        assert (received, bad, extra) == (count, -1, False)
        assert ring.tail == ring.head == count
        assert elapsed < CHILD_TIMEOUT_S


def test_a_slow_consumer_back_pressures_the_producer_and_nothing_is_lost(shm_name: str) -> None:
    count = 2000
    with SharedMemoryRing.create(shm_name, 64) as ring:
        proc, conn = _run_consumer(shm_name, count, sleep_every=100, sleep_s=0.01)
        try:
            refused = 0
            for i in range(count):
                m = msg(i)
                if not ring.push(m):
                    refused += 1
                    assert ring.tail == i  # the refused push wrote nothing
                    ring.push_wait(m, timeout_s=CHILD_TIMEOUT_S)
            received, bad, extra = _result(proc, conn)
        finally:
            _stop(proc)
        assert refused > 0
        assert (received, bad, extra) == (count, -1, False)
