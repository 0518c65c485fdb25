"""Python access to the SPSC ring of ``include/pt_ring.h``, per message (cffi) and in numpy batches.

``Ring`` works over any writable, 64-byte-aligned buffer (an ``mmap``); ``SharedMemoryRing`` adds a named
POSIX shared-memory segment (``/dev/shm/NAME``) that one process creates (the owner, which unlinks it on
close) and another attaches to by name. Messages are the 64-byte wire structs: ``bytes``, anything with a
``pack()`` (``Command``, ``Event``), or rows of ``COMMAND_DTYPE``/``EVENT_DTYPE`` arrays.

"Try again" is not an error: ``push`` returns False on a full ring and ``pop`` returns None on an empty one.
The bounded waits ``push_wait``/``pop_wait`` back off with :class:`~hotpath.idle.BackoffIdle` and raise on
timeout. Errors::

    RingError (code: RingStatus)           bad arguments or region; one subclass per C error code
     +-- InvalidRingError   EINVAL         NULL, misaligned, too small, capacity not a power of two
     +-- BadMagicError      EBADMAGIC      the region was never initialised as a ring
     +-- BadVersionError    EBADVERSION    a ring of another layout version
    TimeoutError
     +-- RingFullError                     push_wait: still full at the deadline (pop_wait raises TimeoutError)

One ``Ring`` object per side per process; a ring has exactly one producer and one consumer.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from c_engine import COMMAND_DTYPE, MSG_SIZE

from ._cring import ffi, lib
from .idle import BackoffIdle
from .messages import Message, message_bytes, message_rows
from .shm import ShmSegment

__all__ = [
    "BadMagicError",
    "BadVersionError",
    "InvalidRingError",
    "Ring",
    "RingError",
    "RingFullError",
    "RingStatus",
    "SharedMemoryRing",
    "ring_bytes",
]


class RingStatus(enum.IntEnum):
    """The C return codes (``enum pt_ring_rc``); FULL and EMPTY mean "try again"."""

    OK = 0
    FULL = 1
    EMPTY = 2
    EINVAL = -1
    EBADMAGIC = -2
    EBADVERSION = -3


class RingError(Exception):
    """A ring call failed for a reason that retrying will not fix."""

    code: RingStatus = RingStatus.EINVAL

    def __init__(self, message: str, code: RingStatus | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidRingError(RingError):
    code = RingStatus.EINVAL


class BadMagicError(RingError):
    code = RingStatus.EBADMAGIC


class BadVersionError(RingError):
    code = RingStatus.EBADVERSION


class RingFullError(TimeoutError):
    """``push_wait`` timed out: the consumer did not free a slot in time. Nothing was written."""


_ERRORS: dict[int, type[RingError]] = {
    RingStatus.EINVAL: InvalidRingError,
    RingStatus.EBADMAGIC: BadMagicError,
    RingStatus.EBADVERSION: BadVersionError,
}


#: RingStatus.OK as a plain int: comparing with an IntEnum member costs ~200 ns in CPython 3.11, with an
#: int ~30 ns, and push/pop compare once per call (bench/hotpath_bench.py: ~1 us off a round trip)
_OK = int(RingStatus.OK)


def _raise_for(rc: int, what: str) -> None:
    if rc != RingStatus.OK:
        raise _ERRORS.get(rc, RingError)(f"{what}: {RingStatus(rc).name}", RingStatus(rc))


def ring_bytes(capacity: int) -> int:
    """Bytes a ring of ``capacity`` slots needs (header + slots); raises if capacity is not a power of two."""
    if not 1 <= capacity <= lib.PT_RING_MAX_CAPACITY:
        raise InvalidRingError(f"capacity {capacity} out of range [1, {lib.PT_RING_MAX_CAPACITY}]")
    size = int(lib.pt_ring_bytes(capacity))
    if size == 0:
        raise InvalidRingError(f"capacity {capacity} is not a power of two")
    return size


class Ring:
    """One side's handle on a ring in ``buffer`` (writable, 64-byte aligned, e.g. an ``mmap``).

    ``Ring(buffer)`` attaches to a ring already initialised there; ``Ring.create(buffer, capacity)``
    formats the buffer first. ``dtype`` is what ``pop_batch``/``peek_batch`` return by default.
    """

    def __init__(self, buffer: Any, *, dtype: npt.DTypeLike = COMMAND_DTYPE) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype.itemsize != MSG_SIZE:
            raise ValueError(f"dtype itemsize must be {MSG_SIZE}, not {self.dtype.itemsize}")
        self._mv: memoryview | None = memoryview(buffer).cast("B")
        self._cbuf: Any = ffi.from_buffer(self._mv, require_writable=True)
        self._base = int(ffi.cast("uintptr_t", self._cbuf))
        self._h = ffi.new("pt_ring_t *")
        self._out = ffi.new("char[64]")
        self._out_bytes = ffi.buffer(self._out)
        self._first = ffi.new("const void **")
        try:
            _raise_for(lib.pt_ring_attach(self._cbuf, len(self._mv), self._h), "attach")
        except BaseException:
            self._release_buffer()
            raise
        self.capacity: int = int(self._h.capacity)

    @classmethod
    def create(cls, buffer: Any, capacity: int, *, dtype: npt.DTypeLike = COMMAND_DTYPE) -> Ring:
        """Formats ``buffer`` as an empty ring of ``capacity`` slots and attaches to it."""
        ring_bytes(capacity)
        view = memoryview(buffer).cast("B")
        cbuf = ffi.from_buffer(view, require_writable=True)
        try:
            _raise_for(lib.pt_ring_init(cbuf, len(view), capacity), "init")
        finally:
            ffi.release(cbuf)
            view.release()
        return cls(buffer, dtype=dtype)

    # ---- producer ----

    def push(self, msg: Message) -> bool:
        """Copies one 64-byte message in; False (nothing written) if the ring is full."""
        return lib.py_ring_push(self._h, message_bytes(msg)) == _OK  # type: ignore[no-any-return]

    def push_batch(self, msgs: npt.NDArray[Any]) -> int:
        """Copies as many rows as fit (one release store publishes them all); returns how many."""
        arr = message_rows(msgs)
        if arr.size == 0:
            return 0
        return int(lib.pt_ring_push_batch(self._h, ffi.from_buffer(arr), arr.size))

    def push_wait(self, msg: Message, timeout_s: float, check: Callable[[], None] | None = None) -> None:
        """Pushes one message, backing off while the ring is full; RingFullError after ``timeout_s``.

        ``check`` is called at every idle step; whatever it raises ends the wait (a client's "the consumer is
        gone", say)."""
        if self.push(msg):
            return
        idle = BackoffIdle()
        deadline = time.monotonic() + timeout_s
        while not self.push(msg):
            if time.monotonic() >= deadline:
                raise RingFullError(f"ring still full after {timeout_s} s (capacity {self.capacity})")
            if check is not None:
                check()
            idle.idle(0)

    def push_batch_wait(
        self, msgs: npt.NDArray[Any], timeout_s: float, check: Callable[[], None] | None = None
    ) -> None:
        """Pushes every row, in order, backing off while full; RingFullError (with some rows pushed) on timeout.
        ``check`` as in :meth:`push_wait`."""
        arr = np.ascontiguousarray(msgs)
        done = self.push_batch(arr)
        idle = BackoffIdle()
        deadline = time.monotonic() + timeout_s
        while done < len(arr):
            n = self.push_batch(arr[done:])
            done += n
            if n == 0:
                if time.monotonic() >= deadline:
                    raise RingFullError(f"ring still full after {timeout_s} s: {done} of {len(arr)} rows pushed")
                if check is not None:
                    check()
                idle.idle(0)
            else:
                idle.reset()

    # ---- consumer ----

    def pop(self) -> bytes | None:
        """The oldest message as 64 bytes (a copy), or None if the ring is empty."""
        if lib.pt_ring_try_pop(self._h, self._out) != _OK:
            return None
        return bytes(self._out_bytes[:])

    def pop_wait(self, timeout_s: float) -> bytes:
        """The oldest message, backing off while the ring is empty; TimeoutError after ``timeout_s``."""
        msg = self.pop()
        if msg is not None:
            return msg
        idle = BackoffIdle()
        deadline = time.monotonic() + timeout_s
        while (msg := self.pop()) is None:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"ring still empty after {timeout_s} s")
            idle.idle(0)
        return msg

    def pop_batch(self, max_count: int, dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
        """Up to ``max_count`` messages copied out as a structured array (empty if none); frees their slots.

        Sized by what is there: an idle poller does not allocate (and free) ``max_count`` rows per call."""
        count = min(max_count, int(lib.pt_ring_depth(self._h)))
        out = np.empty(count, dtype=self.dtype if dtype is None else dtype)
        if out.dtype.itemsize != MSG_SIZE:
            raise ValueError(f"dtype itemsize must be {MSG_SIZE}")
        if count == 0:
            return out
        n = int(lib.pt_ring_pop_batch(self._h, ffi.from_buffer(out, require_writable=True), count))
        return out[:n]

    def peek_batch(self, max_count: int, dtype: npt.DTypeLike | None = None) -> npt.NDArray[Any]:
        """Zero copy: a read-only view of up to ``max_count`` of the oldest messages, in the ring's memory.

        The run stops at the end of the slot array (call again after ``release`` for the rest). The slots stay
        the consumer's until ``release(n)``; do not use the view after releasing them (the producer reuses them).
        """
        assert self._mv is not None, "ring is closed"
        n = int(lib.pt_ring_peek(self._h, self._first, max_count))
        offset = int(ffi.cast("uintptr_t", self._first[0])) - self._base
        view = np.frombuffer(self._mv, dtype=self.dtype if dtype is None else dtype, count=n, offset=offset)
        view.flags.writeable = False
        return view

    def release(self, n: int) -> None:
        """Hands the ``n`` oldest (peeked) messages back to the producer."""
        lib.pt_ring_release(self._h, n)

    # ---- either side ----

    def depth(self) -> int:
        """Messages published and not yet consumed (a snapshot)."""
        return int(lib.pt_ring_depth(self._h))

    __len__ = depth

    @property
    def head(self) -> int:
        """Messages consumed since the ring was created."""
        return int(lib.pt_ring_head(self._h))

    @property
    def tail(self) -> int:
        """Messages published since the ring was created."""
        return int(lib.pt_ring_tail(self._h))

    def _release_buffer(self) -> bool:
        """Drops this handle's hold on the buffer; False if numpy views from peek_batch still hold it."""
        if self._mv is None:
            return True
        ffi.release(self._cbuf)
        try:
            self._mv.release()
        except BufferError:  # peek_batch views are alive: they keep the mapping, and it goes with them
            self._mv = None
            return False
        self._mv = None
        return True

    def close(self) -> None:
        self._release_buffer()

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SharedMemoryRing(Ring):
    """A ring in the named shared-memory segment ``/dev/shm/NAME`` (ownership rules: ``hotpath.shm``).

    ``SharedMemoryRing.create(name, capacity)`` makes and owns the segment: ``close()`` unlinks it.
    ``SharedMemoryRing.attach(name)`` maps the ring another process created and never unlinks it.
    """

    def __init__(
        self, name: str, capacity: int | None = None, *, create: bool = False, dtype: npt.DTypeLike = COMMAND_DTYPE
    ) -> None:
        if create and capacity is None:
            raise ValueError("create=True needs a capacity")
        self.name = name
        self._segment = ShmSegment(name, ring_bytes(capacity) if capacity is not None and create else None,
                                   create=create)  # fmt: skip
        try:
            if capacity is not None and create:
                Ring.create(self._segment.mmap, capacity)
            elif self._segment.size < lib.PT_RING_HEADER_BYTES:
                raise InvalidRingError(f"{self._segment.path} has {self._segment.size} bytes: too small for a ring",
                                       RingStatus.EINVAL)  # fmt: skip
            super().__init__(self._segment.mmap, dtype=dtype)
        except BaseException:
            self._segment.close()
            raise

    @property
    def owner(self) -> bool:
        return self._segment.owner

    @classmethod
    def create(cls, name: str, capacity: int, *, dtype: npt.DTypeLike = COMMAND_DTYPE) -> SharedMemoryRing:
        """Creates and owns ``/dev/shm/NAME`` holding an empty ring of ``capacity`` slots."""
        return cls(name, capacity, create=True, dtype=dtype)

    @classmethod
    def attach(cls, name: str, *, dtype: npt.DTypeLike = COMMAND_DTYPE) -> SharedMemoryRing:
        """Maps the ring another process created under ``name``."""
        return cls(name, dtype=dtype)

    def close(self) -> None:
        """Unmaps; the owner also removes the segment (attached processes keep their mapping until they close)."""
        self._release_buffer()
        self._segment.close()

    def __enter__(self) -> SharedMemoryRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
