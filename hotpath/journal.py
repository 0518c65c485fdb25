"""The command journal's Python side: create, open (validated by ``pt_journal_attach``), read, flush, dump.

The layout and the append rule are in ``include/pt_journal.h`` (the engine loop appends in C, with no
syscall); docs/HOTPATH.md, "Journal", has the guarantees. A journal is a regular file (e.g. in a run
directory, never ``/dev/shm``) mapped ``MAP_SHARED``:

- :meth:`Journal.open_or_create` is what the engine process uses: an existing journal is validated and its
  records replayed by the caller; a new one is formatted in ``PATH.new`` and renamed into place, so a crash
  during creation never leaves a half-formatted journal at ``PATH``.
- :func:`read_commands` returns the committed records of a journal file as a ``COMMAND_DTYPE`` array (a copy),
  the form ``Engine.execute_batch`` takes; :func:`dump` writes them as a command file (``proptrade journal
  dump``), the form ``proptrade engine replay`` takes.

Exceptions: :class:`JournalError` (``.code``: the negative ``enum pt_journal_rc``, ``.path``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import sys
from collections.abc import Mapping
from os import PathLike
from typing import IO, Any

import numpy as np

from c_engine import COMMAND_DTYPE, Command
from c_engine.commandfile import ConfigFileError, command_to_json, load_symbols

from ._cloop import ffi, lib

__all__ = [
    "Journal",
    "JournalConfigError",
    "JournalError",
    "JournalSpaceError",
    "config_fingerprint",
    "dump",
    "journal_bytes",
    "read_commands",
    "run_dump",
]

StrPath = str | PathLike[str]
RECORD_BYTES = 64
HEADER_BYTES = 128


class JournalError(Exception):
    """A journal file that cannot be used; ``code`` is the ``pt_journal_*`` return code."""

    def __init__(self, path: StrPath, code: int, what: str) -> None:
        super().__init__(f"{os.fspath(path)}: {what} (pt_journal rc {code})")
        self.path = os.fspath(path)
        self.code = code


_REASONS = {
    -1: "not a journal of a usable size (truncated, or capacity too large)",
    -2: "not a journal (bad magic)",
    -3: "a journal of another version or record size",
    -4: "a damaged journal (committed count beyond its capacity)",
}


class JournalSpaceError(JournalError):
    """The disk cannot hold the journal's full size: refused at creation, not discovered as a SIGBUS later."""

    def __init__(self, path: StrPath, size: int, error: OSError) -> None:
        Exception.__init__(
            self,
            f"{os.fspath(path)}: cannot reserve the journal's {size:,} bytes on disk ({error.strerror}): free space,"
            " or give the engine a smaller journal_capacity",
        )
        self.path = os.fspath(path)
        self.code = -101  # not a pt_journal rc: the file system is full, not the file damaged
        self.size = size


class JournalConfigError(JournalError):
    """The journal was written under another engine configuration than the one recovering from it."""

    def __init__(self, path: StrPath, found: int, expected: int) -> None:
        Exception.__init__(
            self,
            f"{os.fspath(path)}: written under another configuration (fingerprint {found:#018x}, this engine's is "
            f"{expected:#018x}): symbols, their order, client limits and engine capacities must be the same to "
            "replay it; start the engine with the configuration it was written under, or with a new journal",
        )
        self.path = os.fspath(path)
        self.code = -100  # not a pt_journal rc: the file is fine, the configuration is not
        self.found, self.expected = found, expected


def config_fingerprint(*parts: Any) -> int:
    """A nonzero 64-bit fingerprint of whatever decides how commands replay (JSON-able parts, in order)."""
    digest = hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


def journal_bytes(capacity: int) -> int:
    """File size of a journal of ``capacity`` records."""
    size = int(lib.pt_journal_bytes(capacity))
    if size == 0:
        raise ValueError(f"journal capacity {capacity} out of range (1 .. {lib.PT_JOURNAL_MAX_CAPACITY})")
    return size


class Journal:
    """A journal file mapped read-write ``MAP_SHARED`` (or read-only). ``ptr``/``size`` go to the C loop."""

    def __init__(self, path: StrPath, writable: bool = True) -> None:
        self.path = os.fspath(path)
        fd = os.open(self.path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size < HEADER_BYTES:
                raise JournalError(path, -1, _REASONS[-1])
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            self.mmap: mmap.mmap = mmap.mmap(fd, size, access=access)
        finally:
            os.close(fd)  # the mapping keeps the file
        self.size = size
        self.ptr: Any = ffi.from_buffer(self.mmap, require_writable=writable)
        self._handle = ffi.new("pt_journal_t *")
        rc = lib.pt_journal_attach(self.ptr, self.size, self._handle)
        if rc != lib.PT_JOURNAL_OK:
            self.close()
            raise JournalError(path, rc, _REASONS.get(rc, "unusable"))
        self.capacity = int(self._handle.capacity)
        #: the writer's configuration fingerprint (``config_fingerprint``), 0 if it gave none
        self.config_hash = int(self._handle.config_hash)

    @classmethod
    def create(cls, path: StrPath, capacity: int, config_hash: int = 0) -> Journal:
        """Formats a new, empty journal at ``path`` (which must not exist), stamped with ``config_hash``.

        The file's whole size is reserved on disk now (``posix_fallocate``): a mapped file whose pages cannot be
        allocated when the loop first writes them kills the process with SIGBUS, so a disk without room for the
        journal is refused here (``JournalSpaceError``), before the engine takes any order."""
        path = os.fspath(path)
        size = journal_bytes(capacity)
        tmp = path + ".new"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as e:
                raise JournalSpaceError(path, size, e) from None
            with mmap.mmap(fd, size, access=mmap.ACCESS_WRITE) as mm:
                ptr = ffi.from_buffer(mm, require_writable=True)
                rc = lib.pt_journal_init(ptr, size, capacity, config_hash)
                ffi.release(ptr)
                if rc != lib.PT_JOURNAL_OK:
                    raise JournalError(path, rc, "cannot format")
                mm.flush()
            os.link(tmp, path)  # fails if path exists: never overwrite a journal
        finally:
            os.close(fd)
            os.unlink(tmp)
        return cls(path)

    @classmethod
    def open_or_create(cls, path: StrPath, capacity: int, config_hash: int = 0) -> Journal:
        """The journal at ``path`` if there is one (its own capacity wins), else a new one of ``capacity``.

        An existing journal stamped with another nonzero ``config_hash`` is refused (``JournalConfigError``):
        its records would replay to another state under this configuration."""
        if not os.path.exists(path):
            return cls.create(path, capacity, config_hash)
        journal = cls(path)
        if config_hash and journal.config_hash and journal.config_hash != config_hash:
            journal.close()
            raise JournalConfigError(path, journal.config_hash, config_hash)
        return journal

    def committed(self) -> int:
        """Records appended so far (acquire load: they are whole)."""
        return int(lib.pt_journal_committed(self._handle))

    def commands(self) -> np.ndarray:
        """The committed records, copied, as ``COMMAND_DTYPE``."""
        n = self.committed()
        raw = np.frombuffer(self.mmap, dtype=np.uint8, count=n * RECORD_BYTES, offset=HEADER_BYTES)
        return raw.copy().view(COMMAND_DTYPE)

    def flush(self) -> None:
        """``msync(MS_SYNC)`` of the whole mapping: what was appended survives a power loss once this returns."""
        self.mmap.flush()

    def close(self) -> None:
        if self.ptr is not None:
            ffi.release(self.ptr)
            self.ptr = None
        if not self.mmap.closed:
            self.mmap.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_commands(path: StrPath) -> np.ndarray:
    """The committed records of the journal file at ``path`` (read-only), as ``COMMAND_DTYPE``."""
    with Journal(path, writable=False) as journal:
        return journal.commands()


def dump(path: StrPath, out: IO[str], symbol_names: Mapping[int, str]) -> int:
    """Writes the journal's records to ``out`` as command-file lines; returns how many."""
    records = read_commands(path)
    raw = records.tobytes()
    for i in range(len(records)):
        cmd = Command.unpack(raw, i * RECORD_BYTES)
        out.write(json.dumps(command_to_json(cmd, symbol_names), separators=(",", ":")))
        out.write("\n")
    return len(records)


def run_dump(args: argparse.Namespace) -> int:
    """``proptrade journal dump JOURNAL [--symbols SYMBOLS.toml] [--out FILE]``; returns the exit code."""
    try:
        names = {i: s.name for i, s in enumerate(load_symbols(args.symbols))} if args.symbols else {}
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                n = dump(args.journal, f, names)
        else:
            n = dump(args.journal, sys.stdout, names)
    except (JournalError, ConfigFileError, ValueError) as exc:  # ValueError: a record no command line can carry
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"dumped {n} commands", file=sys.stderr)
    return 0
