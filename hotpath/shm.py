"""Named POSIX shared-memory segments (``/dev/shm/NAME``) that one process owns and others attach to.

``ShmSegment.create(name, size)`` makes the segment (it must not exist) and owns it: ``close()`` unlinks it, and
multiprocessing's resource tracker unlinks it if the owner dies without closing (registered exactly as
``multiprocessing.shared_memory`` registers its own segments). ``ShmSegment.attach(name)`` maps an existing
segment and never unlinks it; it does not register with the tracker either (on Python 3.11 ``SharedMemory(
create=False)`` does, and the tracker then unlinks the owner's segment, or warns about it, when the attaching
process exits). The rings (``ring.py``, ``bcast.py``) live in such segments.
"""

from __future__ import annotations

import mmap
import os
from multiprocessing import resource_tracker

from .names import SHM_DIR

__all__ = ["ShmSegment"]

#: Where Linux keeps POSIX shared-memory segments (shm_open names map to files here).


class ShmSegment:
    """One mapping of ``/dev/shm/NAME``; ``mmap`` is the writable, page-aligned mapping."""

    def __init__(self, name: str, size: int | None = None, *, create: bool = False) -> None:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"bad shared-memory name {name!r}")
        self.name = name
        self.owner = create
        self.path = SHM_DIR / name
        self.mmap: mmap.mmap | None = None
        if create:
            if size is None or size <= 0:
                raise ValueError("create=True needs a positive size")
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            try:
                resource_tracker.register("/" + name, "shared_memory")
                os.ftruncate(fd, size)
                self.mmap = mmap.mmap(fd, size)
            except BaseException:
                self._unlink()
                raise
            finally:
                os.close(fd)
        else:
            fd = os.open(self.path, os.O_RDWR)
            try:
                self.mmap = mmap.mmap(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
        self.size = len(self.mmap)

    @classmethod
    def create(cls, name: str, size: int) -> ShmSegment:
        return cls(name, size, create=True)

    @classmethod
    def attach(cls, name: str) -> ShmSegment:
        return cls(name)

    def _unlink(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        resource_tracker.unregister("/" + self.name, "shared_memory")

    def close(self) -> None:
        """Unmaps; the owner also removes the segment (attached processes keep their mapping until they close).

        A mapping that numpy views still use (a ring's ``peek_batch``) stays mapped until they are gone.
        """
        if self.owner:
            self.owner = False
            self._unlink()
        if self.mmap is not None:
            try:
                self.mmap.close()
            except BufferError:
                pass
            self.mmap = None
