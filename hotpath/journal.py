"""The command journal's Python side: create, open (validated by ``pt_journal_attach``), check, read, flush,
dump, verify, salvage.

The layout, the append rule and the per-record CRC32C are in ``include/pt_journal.h`` (the engine loop appends
in C, with no syscall); docs/HOTPATH.md, "Journal", has the guarantees. A journal is a regular file (e.g. in a
run directory, never ``/dev/shm``) mapped ``MAP_SHARED``:

- :meth:`Journal.open_or_create` is what the engine process uses: an existing journal is validated, header and
  every record's checksum (:meth:`Journal.verify`), and its records replayed by the caller; a new one is
  formatted in ``PATH.new`` and renamed into place, so a crash during creation never leaves a half-formatted
  journal at ``PATH``.
- :func:`read_commands` returns the committed records of a journal file as a ``COMMAND_DTYPE`` array (a copy),
  the form ``Engine.execute_batch`` takes, after checking them; :func:`dump` writes them as a command file
  (``proptrade journal dump``), the form ``proptrade engine replay`` takes.
- :meth:`Journal.check` reports what ``pt_journal_check`` found (:class:`JournalCheck`); ``proptrade journal
  verify`` prints it (exit 0 intact, 1 damaged, 2 not a usable journal). :func:`salvage` (``proptrade journal
  salvage JOURNAL --out NEW``) copies the intact prefix, the records before the first damaged one, into a new
  journal with the same capacity and configuration stamp. It writes a new file and never repairs in place:
  the damaged journal stays as evidence, and an operator chooses to start the engine on the salvaged one.

- Snapshots and segments (``include/pt_journal_rotation.h``): an engine that takes checkpoints journals into a
  chain of segments, ``PATH`` (segment 0), ``PATH.000001``, ..., with ``PATH.00000k.snap`` the engine's state
  before segment k (:func:`segment_path`, :func:`snapshot_path`). :func:`recover` rebuilds the engine from the
  newest snapshot that loads and the segments after it (every record checked; a damaged snapshot is passed over
  for the one before); :func:`read_history` and :func:`dump` read every segment still on disk, in order.

Choices: the checking is done in C (the checksums are CRC32C, which Python's ``zlib`` does not compute, and a
million records take a few milliseconds there); a record past the count is not replayed, even when whole,
unless salvage is told to (``--past-committed``): the count is what the engine published, so by default the
journal means what the clients were told.

Exceptions::

    JournalError (.code: a negative enum pt_journal_rc, or below -99 for what is not the file's fault; .path)
    +-- JournalCorruptError  the records fail their checksums or contradict the count (.check: JournalCheck)
    +-- JournalConfigError   written under another engine configuration (.found, .expected)
    +-- JournalSpaceError    the disk cannot hold a new journal (.size)
    +-- RecoveryError        a segment the history needs is missing (and no snapshot makes up for it)
"""

from __future__ import annotations

import argparse
import errno
import glob
import hashlib
import json
import mmap
import os
import re
import struct
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from c_engine import COMMAND_DTYPE, Command
from c_engine.commandfile import ConfigFileError, command_to_json, load_symbols
from c_engine.replay import written_whole

from ._cloop import ffi, lib

if TYPE_CHECKING:
    from c_engine import Engine

__all__ = [
    "Recovery",
    "RecoveryError",
    "list_segments",
    "list_snapshots",
    "read_history",
    "recover",
    "segment_path",
    "snapshot_path",
    "Journal",
    "JournalCheck",
    "JournalConfigError",
    "JournalCorruptError",
    "JournalError",
    "JournalSpaceError",
    "config_fingerprint",
    "dump",
    "journal_bytes",
    "read_commands",
    "run_dump",
    "run_salvage",
    "run_verify",
    "salvage",
]

StrPath = str | PathLike[str]
#: bytes of one record: a pt_command_t
RECORD_BYTES = 64
#: bytes of the header before record 0
HEADER_BYTES = 128
#: byte offset of the header's layout version (u32)
_VERSION_OFFSET = 8


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
    -4: "a damaged journal header (its checksum fails, or the committed count is beyond the capacity)",
}


@dataclass(frozen=True)
class JournalCheck:
    """What ``pt_journal_check`` found in a journal (``include/pt_journal.h``, "Checksums")."""

    path: str
    #: 0 (intact), ``PT_JOURNAL_EBADCRC`` (-6: a committed record is damaged) or ``PT_JOURNAL_ECOUNT`` (-7: whole
    #: records follow the count, which was lowered)
    rc: int
    capacity: int
    config_hash: int
    #: the header's count of committed records
    committed: int
    #: records 0 .. intact-1 match their checksums (the prefix a salvage keeps)
    intact: int
    #: whole records right after the count: 1 is an append a crash cut short, more contradict the count
    past_committed: int
    #: rc -6: the first bad record's file offset, its stored checksum and what its bytes give
    bad_offset: int
    stored_crc: int
    computed_crc: int
    #: how the checksums were computed here: "the SSE4.2 crc32 instruction" or "a table"
    crc_path: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def problem(self) -> str:
        """One sentence on what is wrong ("" when nothing is)."""
        if self.rc == lib.PT_JOURNAL_EBADCRC:
            return (
                f"record {self.intact} (file offset {self.bad_offset}) fails its checksum: CRC32C "
                f"{self.stored_crc:#010x} expected (stored), {self.computed_crc:#010x} computed from its bytes; "
                f"the {self.intact} records before it are intact"
            )
        if self.rc == lib.PT_JOURNAL_ECOUNT:
            return (
                f"the header counts {self.committed} committed records but {self.past_committed} whole records "
                "follow them: the count was lowered (damage), or a power loss kept the records' pages and not "
                "the header's"
            )
        return ""

    def summary(self) -> str:
        """What ``proptrade journal verify`` prints: counts, then the problem if any."""
        head = (
            f"{self.path}: {self.committed} records committed of {self.capacity:,}, config {self.config_hash:#018x}, "
            f"CRC32C by {self.crc_path}"
        )
        if not self.ok:
            return f"{head}\n{self.path}: DAMAGED: {self.problem()}"
        tail = f"{self.path}: all {self.committed} records intact"
        if self.past_committed:
            tail += "; 1 whole record after them was never published (an append cut short by a crash): not replayed"
        return f"{head}\n{tail}"


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


class JournalCorruptError(JournalError):
    """A journal whose records fail their checksums or contradict its count; ``check`` says where."""

    def __init__(self, check: JournalCheck) -> None:
        Exception.__init__(
            self,
            f"{check.path}: {check.problem()} (pt_journal rc {check.rc}): `proptrade journal verify` shows it, "
            f"`proptrade journal salvage {check.path} --out NEW` copies the intact records to a new journal"
            + (" (with --past-committed, those after the count too)" if check.rc == lib.PT_JOURNAL_ECOUNT else ""),
        )
        self.path = check.path
        self.code = check.rc
        self.check = check


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
        self.writable = writable
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
            reason = _REASONS.get(rc, "unusable")
            if rc == lib.PT_JOURNAL_EBADVERSION:
                (version,) = struct.unpack_from("<I", self.mmap, _VERSION_OFFSET)
                reason += f" (version {version}; this build reads version {lib.PT_JOURNAL_VERSION})"
            self.close()
            raise JournalError(path, rc, reason)
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
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)  # the owner only (docs/OPERATIONS.md)
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
        its records would replay to another state under this configuration. So is one whose records fail their
        checksums or contradict its count (``JournalCorruptError``, naming the first bad record): replaying it
        would rebuild some other state, or stop short of what the clients were told, without a word."""
        if not os.path.exists(path):
            return cls.create(path, capacity, config_hash)
        return _open_segment(str(path), config_hash)

    def committed(self) -> int:
        """Records appended so far (acquire load: they are whole)."""
        return int(lib.pt_journal_committed(self._handle))

    def check(self) -> JournalCheck:
        """Every committed record against its checksum, and the records after the count (``pt_journal_check``:
        a few ms per million records). Safe while the engine appends: it then checks what was committed."""
        out = ffi.new("pt_journal_check_t *")
        rc = int(lib.pt_journal_check(self._handle, out))
        if rc not in (lib.PT_JOURNAL_OK, lib.PT_JOURNAL_EBADCRC, lib.PT_JOURNAL_ECOUNT):
            raise JournalError(self.path, rc, _REASONS.get(rc, "unusable"))
        return JournalCheck(
            path=self.path,
            rc=rc,
            capacity=self.capacity,
            config_hash=self.config_hash,
            committed=int(out.committed),
            intact=int(out.intact),
            past_committed=int(out.past_committed),
            bad_offset=int(out.bad_offset),
            stored_crc=int(out.stored_crc),
            computed_crc=int(out.computed_crc),
            crc_path="the SSE4.2 crc32 instruction" if self._handle.crc_hw else "a table",
        )

    def verify(self) -> JournalCheck:
        """:meth:`check`, raising ``JournalCorruptError`` unless the journal is intact."""
        check = self.check()
        if not check.ok:
            raise JournalCorruptError(check)
        return check

    def commands(self) -> np.ndarray:
        """The committed records, copied, as ``COMMAND_DTYPE`` (unchecked: :meth:`verify` first)."""
        return self.records(self.committed())

    def records(self, n: int) -> np.ndarray:
        """Records 0 .. n-1 as they are in the file, copied, whether or not they were committed."""
        if not 0 <= n <= self.capacity:
            raise ValueError(f"{n} records asked of a journal of {self.capacity}")
        raw = np.frombuffer(self.mmap, dtype=np.uint8, count=n * RECORD_BYTES, offset=HEADER_BYTES)
        return raw.copy().view(COMMAND_DTYPE)

    def append(self, records: np.ndarray) -> None:
        """Appends ``COMMAND_DTYPE`` records, each with its checksum, as the engine loop does (for tools and
        tests: never while an engine runs on this journal, the one appender). ``JournalError`` (rc -5) if they
        do not all fit; then none was written."""
        if not self.writable:
            raise PermissionError(f"{self.path}: opened read-only")  # the C append would fault on the mapping
        if records.dtype != COMMAND_DTYPE:
            raise TypeError(f"records must be COMMAND_DTYPE, not {records.dtype}")
        if len(records) > lib.pt_journal_free(self._handle):
            raise JournalError(self.path, lib.PT_JOURNAL_EFULL, f"no room for {len(records)} more records")
        data = np.ascontiguousarray(records)
        base = ffi.cast("char *", ffi.from_buffer(data))
        for i in range(len(data)):
            rc = lib.pt_journal_append(self._handle, ffi.cast("pt_command_t *", base + i * RECORD_BYTES))
            if rc != lib.PT_JOURNAL_OK:
                raise JournalError(self.path, rc, "cannot append")

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


def read_commands(path: StrPath, verify: bool = True) -> np.ndarray:
    """The committed records of the journal file at ``path`` (read-only), as ``COMMAND_DTYPE``; checked first
    (``JournalCorruptError``) unless ``verify`` is false."""
    with Journal(path, writable=False) as journal:
        if verify:
            journal.verify()
        return journal.commands()


def salvage(path: StrPath, out: StrPath, past_committed: bool = False) -> tuple[JournalCheck, int]:
    """Copies the intact prefix of the journal at ``path`` (records 0 .. ``check.intact``-1) into a new journal
    at ``out`` (which must not exist), of the same capacity and configuration stamp; returns the source's check
    and how many records were copied. ``past_committed`` also copies the whole records after the count, for a
    journal whose count is known to be stale (a power loss that kept the records' pages and not the header's).
    The new journal is verified and msynced before this returns."""
    with Journal(path, writable=False) as source:
        check = source.check()
        n = check.intact
        if past_committed and check.rc != lib.PT_JOURNAL_EBADCRC:
            n += check.past_committed
        records = source.records(n)
        capacity, config_hash = source.capacity, source.config_hash
    with Journal.create(out, capacity, config_hash) as new:
        new.append(records)
        new.verify()
        new.flush()
    return check, n


def dump(path: StrPath, out: IO[str], symbol_names: Mapping[int, str]) -> int:
    """Writes the journal's records to ``out`` as command-file lines; returns how many. A journal that was
    rotated at snapshots (``BASE.000001`` and on beside it) is read segment after segment, from the oldest one
    still on disk (:func:`read_history`)."""
    rotated = any(k > 0 for k in list_segments(path))
    records = read_history(path)[1] if rotated else read_commands(path)
    raw = records.tobytes()
    for i in range(len(records)):
        cmd = Command.unpack(raw, i * RECORD_BYTES)
        out.write(json.dumps(command_to_json(cmd, symbol_names), separators=(",", ":")))
        out.write("\n")
    return len(records)


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b) or (
        os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    )


def run_dump(args: argparse.Namespace) -> int:
    """``proptrade journal dump JOURNAL [--symbols SYMBOLS.toml] [--out FILE]``; returns the exit code. The
    ``--out`` file is written whole or not at all, and never over the journal or the symbols file."""
    if args.out and any(_same_file(args.out, other) for other in (args.journal, args.symbols) if other):
        print(f"{args.out}: is an input of this dump; refusing to overwrite it", file=sys.stderr)
        return 2
    try:
        names = {i: s.name for i, s in enumerate(load_symbols(args.symbols))} if args.symbols else {}
        if args.out:
            with written_whole(args.out) as f:
                n = dump(args.journal, f, names)
        else:
            n = dump(args.journal, sys.stdout, names)
    except (JournalError, ConfigFileError, ValueError) as exc:  # ValueError: a record no command line can carry
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        return _unusable(exc, args.journal)
    print(f"dumped {n} commands", file=sys.stderr)
    return 0


def _unusable(exc: BaseException, path: str) -> int:
    """Prints one line for a file that cannot be used as a journal (``path``, unless the error names another
    file); returns exit code 2."""
    if isinstance(exc, OSError) and not isinstance(exc, JournalError):
        # mmap of a directory or a device fails with no file name (ENODEV); the journal is what was mapped
        print(f"{exc.filename or path}: {exc.strerror or exc}", file=sys.stderr)
    else:
        print(exc, file=sys.stderr)
    return 2


def run_verify(args: argparse.Namespace) -> int:
    """``proptrade journal verify JOURNAL``: prints the check; exit 0 intact, 1 damaged, 2 not a usable journal."""
    try:
        with Journal(args.journal, writable=False) as journal:
            check = journal.check()
    except (JournalError, OSError) as exc:
        return _unusable(exc, args.journal)
    print(check.summary())
    return 0 if check.ok else 1


def run_salvage(args: argparse.Namespace) -> int:
    """``proptrade journal salvage JOURNAL --out NEW [--past-committed]``: exit 0 when NEW holds the intact
    prefix, 2 when JOURNAL is not a usable journal or NEW cannot be written (it exists, or the disk is full)."""
    try:
        check, n = salvage(args.journal, args.out, past_committed=args.past_committed)
    except FileExistsError:
        print(f"{args.out}: exists: salvage writes a new journal, it never overwrites one", file=sys.stderr)
        return 2
    except (JournalError, OSError) as exc:
        if isinstance(exc, OSError) and exc.filename == f"{args.out}.new":  # Journal.create's temporary name
            exc.filename = args.out
        return _unusable(exc, args.journal)
    what = check.problem() if not check.ok else "the journal is intact"
    if check.rc == lib.PT_JOURNAL_ECOUNT and not args.past_committed:
        what += f" (left out: --past-committed copies them too, {check.committed + check.past_committed} in all)"
    print(f"{args.journal}: {what}")
    print(f"{args.out}: {n} records of {check.committed} committed copied (a journal of {check.capacity:,})")
    return 0


# ---- segments and snapshots (include/pt_journal_rotation.h) -------------------------------------------------------

_SEGMENT_RE = re.compile(r"\.(\d{6})$")
_SNAPSHOT_RE = re.compile(r"\.(\d{6})\.snap$")


def segment_path(base: StrPath, segment: int) -> str:
    """The file of journal segment ``segment`` of the journal at ``base``: segment 0 is ``base`` itself (a run
    that never rotates has only it), segment k is ``BASE.k`` with k in six digits."""
    base = os.fspath(base)
    return base if segment == 0 else f"{base}.{segment:06d}"


def snapshot_path(base: StrPath, segment: int) -> str:
    """The snapshot taken when the loop entered segment ``segment``: the state after every earlier segment."""
    return f"{os.fspath(base)}.{segment:06d}.snap"


def _numbered(base: StrPath, pattern: re.Pattern[str], suffix: str) -> list[int]:
    base = os.fspath(base)
    found = []
    for path in glob.glob(glob.escape(base) + ".[0-9][0-9][0-9][0-9][0-9][0-9]" + suffix):
        m = pattern.search(path)
        if m is not None and path == base + m.group(0):
            found.append(int(m.group(1)))
    return sorted(found)


def list_segments(base: StrPath) -> list[int]:
    """The journal segments of ``base`` that exist, ascending (0 is ``base`` itself)."""
    found = _numbered(base, _SEGMENT_RE, "")
    return ([0] if os.path.exists(base) else []) + found


def list_snapshots(base: StrPath) -> list[int]:
    """The segments of ``base`` that have a snapshot file, ascending (unchecked: a file may be damaged)."""
    return _numbered(base, _SNAPSHOT_RE, ".snap")


@dataclass
class Recovery:
    """How :func:`recover` rebuilt the state: which snapshot, which segments, and what it had to pass over."""

    #: the snapshot loaded, None when the whole history was replayed from segment 0 (or there was none)
    snapshot: str | None = None
    #: the segments replayed after it, in order (the last one is the journal appended to from now on)
    segments: list[int] = field(default_factory=list)
    #: records replayed
    replayed: int = 0
    #: records of every segment before the last: where the live journal's record 0 sits in the whole history
    journal_position: int = 0
    #: one line per snapshot that could not be used, newest first, and why
    skipped: list[str] = field(default_factory=list)
    #: seconds spent loading the snapshot and replaying
    load_s: float = 0.0
    replay_s: float = 0.0

    @property
    def segment(self) -> int:
        """The live segment: the one the engine appends to."""
        return self.segments[-1]


class RecoveryError(JournalError):
    """The history cannot be rebuilt: a segment the chain needs is missing, or no snapshot and no segment 0."""

    def __init__(self, path: StrPath, what: str) -> None:
        Exception.__init__(self, f"{os.fspath(path)}: {what}")
        self.path = os.fspath(path)
        self.code = -102  # not a pt_journal rc: files are missing, none is damaged


def _open_segment(path: str, config_hash: int) -> Journal:
    """A segment to replay: attached, stamped with this configuration, every record checked (the first bad one
    named: ``JournalCorruptError``)."""
    journal = Journal(path)
    try:
        if config_hash and journal.config_hash and journal.config_hash != config_hash:
            raise JournalConfigError(path, journal.config_hash, config_hash)
        journal.verify()
    except BaseException:
        journal.close()
        raise
    return journal


#: commands per execute_batch call when replaying
_REPLAY_CHUNK = 1 << 16


def _replay_into(engine: Engine, journal: Journal) -> int:
    commands = journal.commands()
    for start in range(0, len(commands), _REPLAY_CHUNK):
        engine.execute_batch(commands[start : start + _REPLAY_CHUNK])
    return len(commands)


def recover(
    base: StrPath, make_engine: Callable[[], Engine], capacity: int, config_hash: int = 0
) -> tuple[Engine, Journal, Recovery]:
    """Rebuilds the engine from the journal at ``base``: the newest snapshot that loads (its checksum, size,
    configuration and state hash all hold), then every segment from its own on, each checked record by record
    before it is replayed; a snapshot that does not load is named in ``Recovery.skipped`` and the one before it
    is tried, with one more segment to replay; with none, the whole history from segment 0. Returns the engine,
    the last segment opened for appending, and how it went. With no journal at all, a new one of ``capacity``
    records is created at ``base`` (segment 0).

    ``make_engine`` gives a fresh engine of the run's configuration each time it is called (a snapshot that
    failed to load may have left the last one unusable). Raises ``JournalCorruptError`` for a damaged record
    (named), ``JournalConfigError`` for a segment of another configuration, :class:`RecoveryError` when a
    needed segment is missing."""
    base = os.fspath(base)
    recovery = Recovery()
    segments = list_segments(base)
    if not segments:
        recovery.segments = [0]
        return make_engine(), Journal.create(base, capacity, config_hash), recovery
    first, last = segments[0], segments[-1]
    missing = sorted(set(range(first, last + 1)) - set(segments))
    engine: Engine | None = None
    start = None
    t0 = time.perf_counter()
    for k in reversed(list_snapshots(base)):
        path = snapshot_path(base, k)
        if k < first or k > last or any(m >= k for m in missing):
            recovery.skipped.append(f"{path}: a segment after it is missing")
            continue
        candidate = make_engine()
        try:
            info = candidate.load_snapshot(path)
        except OSError as e:  # c_engine's SnapshotError is an OSError: damaged, torn, unreadable
            recovery.skipped.append(str(e))
            continue
        if config_hash and info.config_hash and info.config_hash != config_hash:
            recovery.skipped.append(
                f"{path}: written under another configuration (fingerprint {info.config_hash:#018x})"
            )
            continue
        if info.segment != k:
            recovery.skipped.append(f"{path}: says it precedes segment {info.segment}, not {k}")
            continue
        engine, start = candidate, k
        recovery.snapshot = path
        recovery.journal_position = info.journal_position
        break
    recovery.load_s = time.perf_counter() - t0
    if engine is None or start is None:
        if first != 0:
            raise RecoveryError(base, f"no usable snapshot, and segment 0 (the start of the history) is gone: "
                                      f"the oldest segment left is {segment_path(base, first)}"
                                      + "".join(f"; {line}" for line in recovery.skipped))  # fmt: skip
        engine, start = make_engine(), 0
    needed_missing = [m for m in missing if m >= start]
    if needed_missing:
        raise RecoveryError(base, f"segment {segment_path(base, needed_missing[0])} is missing: the history after "
                                  f"{recovery.snapshot or 'its start'} cannot be replayed past it")  # fmt: skip
    t0 = time.perf_counter()
    journal: Journal | None = None
    try:
        for k in range(start, last + 1):
            journal = _open_segment(segment_path(base, k), config_hash)
            recovery.replayed += _replay_into(engine, journal)
            recovery.segments.append(k)
            if k != last:
                recovery.journal_position += journal.committed()
                journal.close()
                journal = None
    except BaseException:
        if journal is not None:
            journal.close()
        raise
    recovery.replay_s = time.perf_counter() - t0
    assert journal is not None
    return engine, journal, recovery


def read_history(base: StrPath) -> tuple[int, np.ndarray]:
    """The records of every segment of the journal at ``base`` that is still on disk, in order, each checked;
    returns the first segment's number (0 unless older ones were removed after a snapshot) and the records."""
    segments = list_segments(base)
    if not segments:
        raise FileNotFoundError(errno.ENOENT, "no journal", os.fspath(base))
    missing = sorted(set(range(segments[0], segments[-1] + 1)) - set(segments))
    if missing:
        raise RecoveryError(base, f"segment {segment_path(base, missing[0])} is missing")
    parts = [read_commands(segment_path(base, k)) for k in segments]
    return segments[0], np.concatenate(parts) if parts else np.zeros(0, dtype=COMMAND_DTYPE)
