"""Python access to the broadcast ring of ``include/pt_bcast.h``: one producer, any number of readers.

``Broadcast`` works over any writable, 64-byte-aligned buffer (an ``mmap``); ``SharedMemoryBroadcast`` adds a
named POSIX shared-memory segment (``/dev/shm/NAME``) that the producer's process creates (the owner, which
unlinks it on close) and reader processes attach to by name, exactly as ``SharedMemoryRing`` does. Messages are
the 64-byte wire structs: ``bytes``, anything with a ``pack()`` (``Event``), or rows of ``EVENT_DTYPE`` arrays.

The producer never waits: ``publish`` always succeeds and overwrites the oldest message. Each
``BroadcastReader`` keeps its own cursor in this process. "Nothing new" is not an error: ``read`` returns None
and ``read_batch`` an empty array. A reader that fell more than ``capacity`` messages behind gets
:class:`Overrun` (``lost`` says how many messages it missed); its cursor has already moved to the oldest
message still in the ring, so it may read on, or call ``resync()`` and ask the engine for a snapshot. Errors::

    BroadcastError (code: BroadcastStatus)   bad arguments or region; one subclass per C error code
     +-- InvalidBroadcastError    EINVAL     NULL, misaligned, too small, capacity not a power of two
     +-- BroadcastBadMagicError   EBADMAGIC  the region was never initialised as a broadcast ring
     +-- BroadcastBadVersionError EBADVERSION a broadcast ring of another layout version
    Overrun (lost, position)                 not an error of the ring: this reader was lapped (OVERRUN)
    TimeoutError                             read_wait: nothing published before the deadline

Exactly one producer per ring (one ``Broadcast`` object that publishes); readers are cheap and independent.
"""

from __future__ import annotations

import enum
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from c_engine import EVENT_DTYPE, MSG_SIZE

from ._cring import ffi, lib
from .idle import BackoffIdle
from .messages import Message, message_bytes, message_rows
from .shm import ShmSegment

__all__ = [
    "Broadcast",
    "BroadcastBadMagicError",
    "BroadcastBadVersionError",
    "BroadcastError",
    "BroadcastReader",
    "BroadcastStatus",
    "InvalidBroadcastError",
    "Overrun",
    "SharedMemoryBroadcast",
    "broadcast_bytes",
]


class BroadcastStatus(enum.IntEnum):
    """The C return codes (``enum pt_bcast_rc``); EMPTY means "try again", OVERRUN "you lost messages"."""

    OK = 0
    EMPTY = 1
    OVERRUN = 2
    EINVAL = -1
    EBADMAGIC = -2
    EBADVERSION = -3


class BroadcastError(Exception):
    """A broadcast-ring call failed for a reason that retrying will not fix."""

    code: BroadcastStatus = BroadcastStatus.EINVAL

    def __init__(self, message: str, code: BroadcastStatus | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidBroadcastError(BroadcastError):
    code = BroadcastStatus.EINVAL


class BroadcastBadMagicError(BroadcastError):
    code = BroadcastStatus.EBADMAGIC


class BroadcastBadVersionError(BroadcastError):
    code = BroadcastStatus.EBADVERSION


class Overrun(Exception):
    """The reader was lapped (``PT_BCAST_OVERRUN``): ``lost`` messages are gone for it.

    The reader's cursor already points at ``position``, the oldest message the ring still held: read on to
    continue from there with a gap, or call ``resync()`` and rebuild state from an engine snapshot.
    """

    code = BroadcastStatus.OVERRUN

    def __init__(self, lost: int, position: int) -> None:
        super().__init__(f"reader overrun: {lost} messages lost, continuing at position {position}")
        self.lost = lost
        self.position = position


_ERRORS: dict[int, type[BroadcastError]] = {
    BroadcastStatus.EINVAL: InvalidBroadcastError,
    BroadcastStatus.EBADMAGIC: BroadcastBadMagicError,
    BroadcastStatus.EBADVERSION: BroadcastBadVersionError,
}


# Plain ints for the per-read comparisons (an IntEnum member compare costs ~200 ns in CPython 3.11).
_OK, _EMPTY = int(BroadcastStatus.OK), int(BroadcastStatus.EMPTY)


def _raise_for(rc: int, what: str) -> None:
    if rc != BroadcastStatus.OK:
        raise _ERRORS.get(rc, BroadcastError)(f"{what}: {BroadcastStatus(rc).name}", BroadcastStatus(rc))


def broadcast_bytes(capacity: int) -> int:
    """Bytes a broadcast ring of ``capacity`` slots needs; raises if capacity is not a power of two."""
    if not 1 <= capacity <= lib.PT_BCAST_MAX_CAPACITY:
        raise InvalidBroadcastError(f"capacity {capacity} out of range [1, {lib.PT_BCAST_MAX_CAPACITY}]")
    size = int(lib.pt_bcast_bytes(capacity))
    if size == 0:
        raise InvalidBroadcastError(f"capacity {capacity} is not a power of two")
    return size


class Broadcast:
    """A handle on a broadcast ring in ``buffer`` (writable, 64-byte aligned, e.g. an ``mmap``).

    ``Broadcast(buffer)`` attaches to a ring already initialised there; ``Broadcast.create(buffer, capacity)``
    formats the buffer first. The producer calls ``publish``/``publish_batch``; readers come from ``reader()``.
    """

    def __init__(self, buffer: Any) -> None:
        self._mv: memoryview | None = memoryview(buffer).cast("B")
        self._cbuf: Any = ffi.from_buffer(self._mv, require_writable=True)
        self._h = ffi.new("pt_bcast_t *")
        try:
            _raise_for(lib.pt_bcast_attach(self._cbuf, len(self._mv), self._h), "attach")
        except BaseException:
            self._release_buffer()
            raise
        self.capacity: int = int(self._h.capacity)

    @classmethod
    def create(cls, buffer: Any, capacity: int) -> Broadcast:
        """Formats ``buffer`` as an empty broadcast ring of ``capacity`` slots and attaches to it."""
        broadcast_bytes(capacity)
        view = memoryview(buffer).cast("B")
        cbuf = ffi.from_buffer(view, require_writable=True)
        try:
            _raise_for(lib.pt_bcast_init(cbuf, len(view), capacity), "init")
        finally:
            ffi.release(cbuf)
            view.release()
        return cls(buffer)

    # ---- producer (exactly one per ring) ----

    def publish(self, msg: Message) -> None:
        """Copies one 64-byte message in and publishes it; never waits (the oldest message is overwritten)."""
        msg = message_bytes(msg)
        self._check_open()
        lib.py_bcast_publish(self._h, msg)

    def publish_batch(self, msgs: npt.NDArray[Any]) -> int:
        """Publishes every row in order (one release store per up to ``capacity`` rows); returns how many."""
        arr = message_rows(msgs)
        if arr.size == 0:
            return 0
        self._check_open()
        return int(lib.pt_bcast_publish_batch(self._h, ffi.from_buffer(arr), arr.size))

    # ---- either side ----

    @property
    def tail(self) -> int:
        """Messages published since the ring was created (the position the next one gets)."""
        self._check_open()
        return int(lib.pt_bcast_tail(self._h))

    def reader(self) -> BroadcastReader:
        """A new reader whose cursor starts at the newest position (it sees what is published from now on)."""
        return BroadcastReader(self)

    def _check_open(self) -> None:
        if self._mv is None:
            raise ValueError("broadcast ring is closed")

    def _release_buffer(self) -> None:
        if self._mv is None:
            return
        ffi.release(self._cbuf)
        self._mv.release()
        self._mv = None

    def close(self) -> None:
        self._release_buffer()

    def __enter__(self) -> Broadcast:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BroadcastReader:
    """One reader's cursor, in this process (the ring never knows readers exist).

    ``read()``/``read_batch()`` raise :class:`Overrun` when the reader was lapped; the cursor has then already
    moved to the oldest message still held. ``resync()`` moves it to the newest position instead.
    """

    def __init__(self, bcast: Broadcast) -> None:
        bcast._check_open()
        self._b = bcast  # keeps the mapping alive
        self._rd = ffi.new("pt_bcast_reader_t *")
        _raise_for(lib.pt_bcast_reader_open(bcast._h, self._rd), "reader_open")
        self._out = ffi.new("char[64]")
        self._out_bytes = ffi.buffer(self._out)
        self._n = ffi.new("size_t *")

    def _overrun(self) -> Overrun:
        return Overrun(int(self._rd.lost_last), int(self._rd.next))

    def read(self) -> bytes | None:
        """The next message as 64 bytes (a copy), or None if nothing new; raises Overrun if lapped."""
        self._b._check_open()
        rc = lib.pt_bcast_read(self._rd, self._out)
        if rc == _OK:
            return bytes(self._out_bytes[:])
        if rc == _EMPTY:
            return None
        if rc == BroadcastStatus.OVERRUN:
            raise self._overrun()
        _raise_for(rc, "read")
        return None  # pragma: no cover

    def read_batch(self, max_count: int, dtype: npt.DTypeLike = EVENT_DTYPE) -> npt.NDArray[Any]:
        """Up to ``max_count`` messages copied out as a structured array (empty if none); raises Overrun if lapped.

        On Overrun nothing is returned: the whole batch counts as lost (``Overrun.lost``), and the next call reads
        on from the oldest message the ring still holds.
        """
        # Sized by the lag (not beyond max_count): an idle reader does not allocate max_count rows per call.
        # A lag beyond the capacity means an overrun, which pt_bcast_read_batch reports.
        max_count = min(max_count, int(lib.pt_bcast_reader_lag(self._rd)))
        out = np.empty(max_count, dtype=dtype)
        if out.dtype.itemsize != MSG_SIZE:
            raise ValueError(f"dtype itemsize must be {MSG_SIZE}")
        if max_count == 0:
            return out
        self._b._check_open()
        rc = lib.pt_bcast_read_batch(self._rd, ffi.from_buffer(out, require_writable=True), max_count, self._n)
        if rc == _OK:
            return out[: int(self._n[0])]
        if rc == _EMPTY:
            return out[:0]
        if rc == BroadcastStatus.OVERRUN:
            raise self._overrun()
        _raise_for(rc, "read_batch")
        return out[:0]  # pragma: no cover

    def read_wait(self, timeout_s: float) -> bytes:
        """The next message, backing off while there is none; TimeoutError after ``timeout_s``, Overrun if lapped."""
        msg = self.read()
        if msg is not None:
            return msg
        idle = BackoffIdle()
        deadline = time.monotonic() + timeout_s
        while (msg := self.read()) is None:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no broadcast message after {timeout_s} s")
            idle.idle(0)
        return msg

    def resync(self) -> int:
        """Skips everything unread: the cursor moves to the newest position. Returns how many were skipped.

        Use it after an Overrun (or at start-up) when a gap is not acceptable: the caller then asks the engine
        (through the bridge's snapshot request) for a book snapshot and applies messages read from here on top
        of it. Skipped messages are not counted in ``lost_total``.
        """
        self._b._check_open()
        return int(lib.pt_bcast_resync(self._rd))

    @property
    def position(self) -> int:
        """The ring position of the next message this reader will get."""
        return int(self._rd.next)

    @property
    def lag(self) -> int:
        """Messages published beyond the cursor (more than ``capacity`` means the next read overruns)."""
        self._b._check_open()
        return int(lib.pt_bcast_reader_lag(self._rd))

    @property
    def lost_total(self) -> int:
        """Messages lost in every Overrun since this reader was opened."""
        return int(self._rd.lost_total)

    @property
    def overruns(self) -> int:
        """How many times this reader was lapped."""
        return int(self._rd.overruns)


class SharedMemoryBroadcast(Broadcast):
    """A broadcast ring in the named shared-memory segment ``/dev/shm/NAME`` (ownership rules: ``hotpath.shm``).

    ``SharedMemoryBroadcast.create(name, capacity)`` makes and owns the segment: ``close()`` unlinks it.
    ``SharedMemoryBroadcast.attach(name)`` maps the ring another process created and never unlinks it.
    """

    def __init__(self, name: str, capacity: int | None = None, *, create: bool = False) -> None:
        if create and capacity is None:
            raise ValueError("create=True needs a capacity")
        self.name = name
        self._segment = ShmSegment(name, broadcast_bytes(capacity) if capacity is not None and create else None,
                                   create=create)  # fmt: skip
        try:
            if capacity is not None and create:
                Broadcast.create(self._segment.mmap, capacity).close()  # format only; this object attaches below
            elif self._segment.size < lib.PT_BCAST_HEADER_BYTES:
                raise InvalidBroadcastError(
                    f"{self._segment.path} has {self._segment.size} bytes: too small for a broadcast ring"
                )
            super().__init__(self._segment.mmap)
        except BaseException:
            self._segment.close()
            raise

    @property
    def owner(self) -> bool:
        return self._segment.owner

    @classmethod
    def create(cls, name: str, capacity: int) -> SharedMemoryBroadcast:
        """Creates and owns ``/dev/shm/NAME`` holding an empty broadcast ring of ``capacity`` slots."""
        return cls(name, capacity, create=True)

    @classmethod
    def attach(cls, name: str) -> SharedMemoryBroadcast:
        """Maps the broadcast ring another process created under ``name``."""
        return cls(name)

    def close(self) -> None:
        """Unmaps; the owner also removes the segment (attached processes keep their mapping until they close)."""
        self._release_buffer()
        self._segment.close()

    def __enter__(self) -> SharedMemoryBroadcast:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
