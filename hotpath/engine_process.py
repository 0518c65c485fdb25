"""The engine process: a pinned Python start-up, then the C event loop of ``include/pt_loop.h`` until stopped.

``run_engine_process(config)`` is the whole body of the process. It routes SIGTERM/SIGINT to a waiter
thread (through ``signal.set_wakeup_fd``), pins itself to one core, creates the engine from an
:class:`EngineProcessConfig`, creates every shared-memory segment under the run's ``prefix`` (one command ring
and one event ring per client, the market-data broadcast ring, and last the control block, so a valid control
block means everything is there), then calls ``pt_loop_run``, which holds no GIL and returns when the stop
flag in the control block is set: by the waiter thread on SIGTERM/SIGINT, or by anyone through
:meth:`EngineControl.request_stop`. It then removes every segment it created (if it is SIGKILLed instead,
multiprocessing's resource tracker removes them).

Journal (optional, ``journal_path``; docs/HOTPATH.md, "Journal"): before creating any segment the process
opens the journal file, or creates it with ``journal_capacity`` records, checks every record's checksum and the
header's count (``Journal.open_or_create``: a damaged journal is refused, its first bad record named, exit 2,
before anything is replayed) and replays every committed record
through the fresh engine (``execute_batch``, events discarded), then hands it to the loop, which appends each
command it runs (rejected ones too) before routing its events. Before the loop runs, every resting order of a
client that is not attached (all but the static ``clients``: the processes attached before were cut off when the
engine went down) is cancelled by a journaled DISCONNECT mass cancel, so nothing trades for a client that is gone.
A flusher thread (on the other cores) msyncs the
file every ``journal_flush_ms`` (0 = never). At a clean stop it flushes once more and, if ``status_path`` is set,
writes a JSON status file: ``{"rc", "replayed", "recovered_state_hash", "recovery_cancelled", "journaled",
"state_hash", "commands"}``: ``recovered_state_hash`` is the engine's state hash right after the replay (before
those cancels), ``recovery_cancelled`` how many orders they cancelled, ``state_hash`` the state at the stop.

Snapshots (``snapshot_every`` > 0; ``include/pt_journal_rotation.h``, docs/OPERATIONS.md): the journal is then a
chain of segments (``journal_path``, ``journal_path.000001``, ...) and recovery is ``hotpath.journal.recover``:
the newest snapshot that loads (a damaged one is named on stderr and the one before it used), then the segments
after it, every record checked. Every ``snapshot_every`` records, on the operator's ``checkpoint`` op, or when a
segment is full, the loop snapshots the engine between two commands and moves to the next segment, which a helper
thread (:class:`_Checkpointer`, replacing the flusher) prepared; that thread writes the snapshot file, closes the
old segment and keeps the newest ``snapshot_keep`` snapshots and the segments they need. Without it (the default)
the journal is the one file it always was; a journal left rotated by an earlier run is still recovered as a chain.

Control plane (``hotpath/control.py``): a thread of this process serves ZeroMQ REQ/REP on
``control_endpoint`` (default :func:`~hotpath.control.control_endpoint` of the prefix): clients attach (the
engine creates their ring pair and hands back the names), heartbeat and detach; a client whose process
exits or whose heartbeats stop has its orders cancelled (a journaled DISCONNECT mass cancel) and its slot
freed. The ``clients`` of the config are static slots, attached for the whole run without heartbeats.

Access (docs/OPERATIONS.md): every segment is created 0600 and so is the journal; the control socket is a file
in the run's private directory (``names.run_dir``, 0700), next to the operator key this process writes there at
start (0600, random, new for every start) and hands to the control server: operator ops must carry it. A
dynamically attached client's ring pair gets a random name, which is unlinked as soon as the client says it has
mapped the pair (the ``opened`` op), so no other process can open it by name. At a clean stop the socket, the
key and the run directory are removed.

Errors: a start that fails (a core it may not use, a damaged or unusable journal, a prefix whose segments
exist, a run directory it may not use) prints one line, ``engine: ...``, and exits 2; a loop that stops on a
full journal says so (which journal, how many records) and exits with the loop's rc, so the launcher can
report the engine's own words at once.

Segment names (``/dev/shm/NAME``) and the control endpoint come from ``names.py``. Run it as ``python -m
hotpath.engine_process CONFIG_JSON`` (:meth:`EngineProcessConfig.to_json`). ``engine_control.EngineControl`` reads
the live counters and sets the stop flag from any process; clients attach through the control plane
(``client.Client``, ``async_client.AsyncClient``) or, for a static slot, open their ring pair directly
(``engine_client.EngineClient``).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

import zmq

from c_engine import ClientLimits, Command, EngineConfig, SymbolConfig

from ._cloop import ffi, lib
from .bcast import Broadcast, broadcast_bytes
from .control import ControlServer, loop_execute, symbol_dicts
from .control_client import ControlError
from .engine_control import LoopError, check_loop_rc
from .journal import (
    Journal,
    JournalError,
    config_fingerprint,
    list_segments,
    list_snapshots,
    recover,
    segment_path,
    snapshot_path,
)
from .names import (
    command_ring_name,
    control_endpoint,
    control_name,
    event_ring_name,
    market_data_name,
    operator_key_path,
    private_dir,
    run_dir,
)
from .ring import Ring, ring_bytes
from .shm import ShmSegment

__all__ = ["EXIT_START_FAILED", "EngineProcessConfig", "run_engine_process"]

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
#: The exit status of a start that failed before the loop ran (its one-line reason is on stderr).
EXIT_START_FAILED = 2


@dataclass(frozen=True)
class EngineProcessConfig:
    """What the engine process starts with. ``prefix`` must be unique per run (it names the segments)."""

    prefix: str
    #: client ids that get a ring pair (and a slot in the loop)
    clients: tuple[int, ...] = (1, 2)
    symbols: tuple[SymbolConfig, ...] = (SymbolConfig("TEST"),)
    #: (client id, limits) pairs; clients not listed have no limits
    limits: tuple[tuple[int, ClientLimits], ...] = ()
    #: (account name, client id) pairs: an attach may name the account instead of the id (hotpath/accounts.py)
    accounts: tuple[tuple[str, int], ...] = ()
    #: small by default: the engine preallocates its order pool and levels
    engine: EngineConfig = field(
        default_factory=lambda: EngineConfig(max_orders=1 << 16, max_levels_per_side=1 << 10, max_symbols=8,
                                             max_clients=64))  # fmt: skip
    #: slots of each client ring (power of two)
    ring_capacity: int = 1024
    #: slots of the market-data ring (power of two)
    md_capacity: int = 1 << 14
    #: the core to pin to; None = the last core this process may use
    core: int | None = None
    #: the journal file (a regular file, not /dev/shm); None = no journal. An existing one is replayed first
    journal_path: str | None = None
    #: records of a new journal (an existing one keeps its own); 64 bytes each, reserved on disk at creation
    journal_capacity: int = 1 << 20
    #: msync the journal every this many ms from a background thread; 0 = never (the kernel writes back when
    #: it likes; a SIGKILL still loses nothing, a power loss may lose everything since the last writeback)
    journal_flush_ms: float = 5.0
    #: where to write the JSON status (state hashes, counts) at a clean stop; None = nowhere
    status_path: str | None = None
    #: the control plane's ZeroMQ endpoint; None = control_endpoint(prefix) (an abstract ipc socket)
    control_endpoint: str | None = None
    #: a dynamically attached client that sends no heartbeat for this long is disconnected; 0 = never
    heartbeat_timeout_s: float = 5.0
    #: a dynamically attached client whose full event ring holds the loop this long is disconnected; 0 = never
    slow_consumer_s: float = 2.0
    #: how long, per second, the requests of one caller (a process) may keep the loop paused (snapshot, position,
    #: state_hash, attach, kill); past it they get RATE_LIMITED. 0 = no limit. Operator requests are not limited
    control_pause_us_per_s: float = 5_000.0
    #: the pause one caller may use up at once (the bucket's size), in microseconds
    control_pause_burst_us: float = 50_000.0
    #: take a checkpoint (a snapshot of the engine and a new journal segment) every this many journal records;
    #: 0 = never, one journal file as before. Needs a journal. Recovery is then the newest snapshot and the
    #: segments after it (include/pt_journal_rotation.h)
    snapshot_every: int = 0
    #: snapshots kept (the newest ones), and the segments from the oldest kept one on; at least 1
    snapshot_keep: int = 2

    def fingerprint(self) -> int:
        """What a journal of this run is stamped with: everything that decides how its commands replay (the
        symbols in order, the client limits, the engine's capacities: ``max_clients`` is in the state hash)."""
        return config_fingerprint([asdict(s) for s in self.symbols], [[c, asdict(lim)] for c, lim in self.limits],
                                  asdict(self.engine))  # fmt: skip

    @property
    def endpoint(self) -> str:
        return self.control_endpoint or control_endpoint(self.prefix)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> EngineProcessConfig:
        d = json.loads(text)
        return cls(
            prefix=d["prefix"],
            clients=tuple(d["clients"]),
            symbols=tuple(SymbolConfig(**s) for s in d["symbols"]),
            limits=tuple((int(c), ClientLimits(**lim)) for c, lim in d["limits"]),
            accounts=tuple((str(name), int(c)) for name, c in d.get("accounts", ())),
            engine=EngineConfig(**d["engine"]),
            ring_capacity=d["ring_capacity"],
            md_capacity=d["md_capacity"],
            core=d["core"],
            journal_path=d.get("journal_path"),
            journal_capacity=d.get("journal_capacity", 1 << 20),
            journal_flush_ms=d.get("journal_flush_ms", 5.0),
            status_path=d.get("status_path"),
            control_endpoint=d.get("control_endpoint"),
            heartbeat_timeout_s=d.get("heartbeat_timeout_s", 5.0),
            slow_consumer_s=d.get("slow_consumer_s", 2.0),
            control_pause_us_per_s=d.get("control_pause_us_per_s", 5_000.0),
            control_pause_burst_us=d.get("control_pause_burst_us", 50_000.0),
            snapshot_every=d.get("snapshot_every", 0),
            snapshot_keep=d.get("snapshot_keep", 2),
        )


class _Mapped:
    """A segment this process created, and the cdata the loop holds on it (released before unmapping)."""

    def __init__(self, segment: ShmSegment) -> None:
        self.segment = segment
        assert segment.mmap is not None
        self.ptr: Any = ffi.from_buffer(segment.mmap, require_writable=True)
        self.size = segment.size

    def unlink(self) -> None:
        """Removes the segment's name now (the mappings stay): from then on no process can open it. Idempotent."""
        if self.segment.owner:
            self.segment.owner = False  # close() must not unlink it again, nor unregister it twice
            try:
                os.unlink(self.segment.path)
            except FileNotFoundError:
                pass
            resource_tracker.unregister("/" + self.segment.name, "shared_memory")

    def depth(self) -> int:
        """Messages in the ring now (a client ring's segment only): read from its head and tail, nothing waits."""
        ring = Ring(self.segment.mmap)
        try:
            return ring.depth()
        finally:
            ring.close()

    def close(self) -> None:
        ffi.release(self.ptr)
        self.segment.close()


def _create_ring(name: str, capacity: int) -> _Mapped:
    seg = ShmSegment.create(name, ring_bytes(capacity))
    try:
        Ring.create(seg.mmap, capacity).close()  # format only; the loop attaches in C
        return _Mapped(seg)
    except BaseException:
        seg.close()
        raise


def _create_ring_pair(prefix: str, client_id: int, capacity: int, nonce: str = "") -> tuple[_Mapped, _Mapped]:
    cmd = _create_ring(command_ring_name(prefix, client_id, nonce), capacity)
    try:
        return cmd, _create_ring(event_ring_name(prefix, client_id, nonce), capacity)
    except BaseException:
        cmd.close()
        raise


def _nonce() -> str:
    """The random part of an attached client's ring names (128 bits): nobody finds them by counting ids."""
    return secrets.token_hex(16)


def _create_broadcast(name: str, capacity: int) -> _Mapped:
    seg = ShmSegment.create(name, broadcast_bytes(capacity))
    try:
        Broadcast.create(seg.mmap, capacity).close()
        return _Mapped(seg)
    except BaseException:
        seg.close()
        raise


class _Checkpointer:
    """The loop's helper for checkpoints (``include/pt_journal_rotation.h``), in a thread off the engine's core:
    it formats the next journal segment and offers it to the loop, takes each checkpoint the loop hands back,
    writes its snapshot file (atomically, fsynced), msyncs and closes the segment the loop left, and removes
    the snapshots and segments past the retention. It also msyncs the live segment every ``flush_ms`` (the
    flusher's job when there is no rotation).

    Retention: the newest ``keep`` snapshots, and every segment from the oldest kept snapshot's on, so each
    kept snapshot still has the whole tail it needs; nothing is removed before ``keep`` snapshots are on disk
    (until then, a damaged snapshot falls back to the whole history). A segment that cannot be created (a full
    disk) is retried each tick, and said once: meanwhile the loop goes on in its segment, and stops when that
    is full, as without rotation."""

    def __init__(
        self, loop: Any, base: str, journal: Journal, segment: int, position: int, keep: int, flush_ms: float
    ) -> None:
        self.loop = loop
        self.base = base
        self.live = journal  # the segment the loop appends to
        self.segment = segment
        self.position = position  # records of the segments before it
        self.keep = max(1, keep)
        self.flush_ms = flush_ms
        self.offered: Journal | None = None
        self.checkpoints = 0
        self.pause_ns: list[int] = []
        self.last_snapshot: dict[str, Any] = {}
        self._cv = threading.Condition()
        self._offer_failed = False
        self._cp = ffi.new("pt_loop_checkpoint_t *")

    def offer(self) -> None:
        """Creates the next segment and offers it to the loop, if none is offered (the caller's thread)."""
        if self.offered is not None:
            return
        path = segment_path(self.base, self.segment + 1)
        try:
            if os.path.exists(path):  # left empty by a run that stopped before using it
                journal = Journal(path)
                if journal.committed() != 0 or journal.config_hash != self.live.config_hash:
                    journal.close()
                    raise JournalError(path, -1, "a segment that is not empty is in the way")
            else:
                journal = Journal.create(path, self.live.capacity, self.live.config_hash)
        except (OSError, JournalError) as e:
            if not self._offer_failed:
                print(f"engine: cannot create the next journal segment: {e}", file=sys.stderr, flush=True)
            self._offer_failed = True
            return
        self._offer_failed = False
        rc = lib.pt_loop_offer_segment(self.loop, journal.ptr, journal.size)
        if rc != lib.PT_LOOP_OK:
            journal.close()
            raise LoopError("offer_segment", rc)
        self.offered = journal

    def take(self) -> bool:
        """Handles a checkpoint the loop has taken, if any: True if there was one."""
        cp = self._cp
        if lib.pt_loop_take_checkpoint(self.loop, cp) != 1:
            return False
        old, new = self.live, self.offered
        assert new is not None  # the loop rotates only into an offered segment
        self.live, self.offered = new, None
        self.segment = int(cp.segment)
        self.position = int(cp.journal_position)
        path = snapshot_path(self.base, self.segment)
        written = False
        start = time.perf_counter()
        if cp.snapshot != ffi.NULL:
            rc = lib.pt_snapshot_write_file(os.fsencode(path), cp.snapshot, cp.snapshot_bytes)
            lib.pt_snapshot_free(cp.snapshot)
            written = rc == 0
            if not written:
                print(f"engine: could not write the snapshot {path} (pt_snapshot rc {rc}, "
                      f"{os.strerror(ffi.errno)}): recovery will replay from the one before", file=sys.stderr,
                      flush=True)  # fmt: skip
        else:
            why = f"pt_snapshot rc {cp.snapshot_rc}"
            print(f"engine: no memory for the snapshot of segment {self.segment} ({why}): recovery will replay from "
                  "the one before", file=sys.stderr, flush=True)  # fmt: skip
        write_s = time.perf_counter() - start
        old.flush()  # the segment left behind: whole on disk before anything older goes
        old.close()
        self.checkpoints += 1
        self.pause_ns.append(int(cp.pause_ns))
        info = {"segment": self.segment, "snapshot": path if written else None,
                "journal_position": int(cp.journal_position), "bytes": int(cp.snapshot_bytes),
                "live_orders": int(cp.live_orders), "pause_us": cp.pause_ns / 1e3,
                "write_ms": write_s * 1e3}  # fmt: skip
        if written:
            self._prune()
        with self._cv:
            self.last_snapshot = info
            self._cv.notify_all()
        return True

    def _prune(self) -> None:
        snapshots = list_snapshots(self.base)
        if len(snapshots) < self.keep:
            return  # until `keep` snapshots exist, every segment stays: a bad snapshot falls back to a full replay
        kept = snapshots[-self.keep :]
        for k in snapshots[: -self.keep]:
            _remove(snapshot_path(self.base, k))
        oldest = kept[0] if kept else 0
        for k in list_segments(self.base):
            if k < oldest:
                _remove(segment_path(self.base, k))

    def tick(self) -> None:
        self.take()
        self.offer()

    def run(self, done: threading.Event, spare: set[int]) -> threading.Thread:
        """Serves from a thread until ``done``: checkpoints within a millisecond, an msync every flush_ms."""

        def serve() -> None:
            if spare:
                os.sched_setaffinity(0, spare)
            next_flush = time.monotonic()
            while not done.wait(0.001):
                self.tick()
                if self.flush_ms > 0 and time.monotonic() >= next_flush:
                    self.live.flush()
                    next_flush = time.monotonic() + self.flush_ms / 1000.0

        thread = threading.Thread(target=serve, name="journal-checkpoints", daemon=True)
        thread.start()
        return thread

    def request(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """A checkpoint now (the control plane's ``checkpoint`` op): returns it once its snapshot is written."""
        with self._cv:
            before = self.checkpoints
            lib.pt_loop_request_checkpoint(self.loop)
            if not self._cv.wait_for(lambda: self.checkpoints > before, timeout_s):
                raise ControlError("BUSY", f"no checkpoint within {timeout_s} s (is a journal segment offered?)")
            return dict(self.last_snapshot)

    def close(self) -> None:
        """After the loop returned: the last checkpoint, if one is waiting; the live segment msynced."""
        self.take()
        self.live.flush()
        if self.offered is not None:  # stays on disk, empty: the next start appends to it or offers it
            self.offered.close()
            self.offered = None

    def stats(self) -> dict[str, Any]:
        pauses = self.pause_ns or [0]
        return {"checkpoints": self.checkpoints, "checkpoint_pause_max_us": max(pauses) / 1e3,
                "segment": self.segment}  # fmt: skip


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _start_flusher(journal: Journal, period_ms: float, spare: set[int], done: threading.Event) -> threading.Thread:
    """A thread that msyncs the journal every ``period_ms`` until ``done``, on the ``spare`` cores if any (it
    starts on the engine's core, inherited from the pinned main thread)."""

    def flush_loop() -> None:
        if spare:
            os.sched_setaffinity(0, spare)  # this thread only (Linux: pid 0 = the calling thread)
        while not done.wait(period_ms / 1000.0):
            journal.flush()

    thread = threading.Thread(target=flush_loop, name="journal-flush", daemon=True)
    thread.start()
    return thread


def _off_core(spare: set[int]) -> None:
    """Moves every thread of this process but the calling (loop) thread to the ``spare`` cores: threads started
    after the pin inherited the engine's core (ZeroMQ's I/O and reaper threads, the signal waiter, numpy's
    OpenBLAS pool), and any of them waking there would preempt the spinning loop."""
    if not spare:
        return  # one core: nowhere else to go
    me = threading.get_native_id()
    for tid in os.listdir("/proc/self/task"):
        if int(tid) != me:
            try:
                os.sched_setaffinity(int(tid), spare)
            except (ProcessLookupError, PermissionError):
                pass  # a thread that just exited


def _cancel_orphans(engine: Any, loop: Any, attached: set[int]) -> int:
    """After a recovery, before the loop runs: cancels every resting order of a client that is not attached now
    (every client but the static ones: the processes that were attached died with the engine, or were never told
    it came back). Each client's orders go in a DISCONNECT mass cancel run through the loop, so the journal records
    it and a later recovery replays it. Returns how many orders were cancelled."""
    orphans = sorted(
        {o.client_id for sid in engine.symbol_names for side in engine.l3(sid).values() for o in side} - attached
    )
    before = engine.stats()["live_orders"]
    for client in orphans:
        rc = loop_execute(loop, Command.mass_cancel(client, ts_ns=time.monotonic_ns(), disconnect=True))
        if rc != lib.PT_LOOP_OK:  # a full journal: the loop stops at its first command anyway
            print(f"engine: recovery could not cancel client {client}'s orders (pt_loop rc {rc})", file=sys.stderr)
            break
    return int(before - engine.stats()["live_orders"])


def _create_operator_key(prefix: str) -> tuple[Path, str]:
    """Makes the run directory private (or checks it) and writes a fresh operator key in it, 0600. A key or a
    socket left there by a run of this prefix that was killed is replaced: this process created the run's
    segments with O_EXCL just before, so no other engine of the prefix is running."""
    private_dir(run_dir(prefix))
    path = operator_key_path(prefix)
    key = secrets.token_hex(32)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    return path, key


def _remove_run_dir(prefix: str, key_path: Path) -> None:
    """At the end: the operator key, then the run directory if nothing else is in it (the control server has
    removed its socket file)."""
    try:
        key_path.unlink()
    except FileNotFoundError:
        pass
    try:
        run_dir(prefix).rmdir()
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.ENOTEMPTY):
            raise


def _loop_stopped(rc: int, config: EngineProcessConfig, journal: Journal | None) -> int:
    """The loop's ``rc`` (the process's exit status, as before), after saying on stderr why a loop that did not
    stop cleanly stopped: the launcher shows that line, and an operator reads it in the engine's log."""
    if rc == lib.PT_LOOP_OK:
        return 0
    if rc == lib.PT_LOOP_EJOURNALFULL:
        records = journal.committed() if journal is not None else 0
        print(f"engine: stopped: the journal {config.journal_path} is full ({records:,} records): the loop ran no "
              "command it could not journal. Start again with a new journal (a larger journal_capacity), or "
              "`proptrade journal dump` this one", file=sys.stderr, flush=True)  # fmt: skip
    else:
        print(f"engine: the loop stopped with pt_loop rc {rc}", file=sys.stderr, flush=True)
    return rc


def _write_status(path: str, status: dict[str, int]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(status, f)
    os.replace(tmp, path)  # a reader never sees half a file


def run_engine_process(config: EngineProcessConfig) -> int:
    """The engine process's body (see the module docstring); returns the loop's rc (0 = stopped cleanly)."""
    from c_engine import Engine  # the compiled engine: imported here so the config works without it

    # SIGTERM/SIGINT get a no-op Python handler, and Python's C-level handler (whichever thread the kernel picks:
    # numpy's BLAS threads too) writes the signal number to a pipe that a waiter thread reads; the waiter sets
    # the stop flag. No Python handler could run on the main thread while it is inside the C loop.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    old_handlers = {sig: signal.signal(sig, lambda *_: None) for sig in _STOP_SIGNALS}
    allowed = os.sched_getaffinity(0)
    core = config.core if config.core is not None else max(allowed)
    os.sched_setaffinity(0, {core})

    def make_engine() -> Engine:
        engine = Engine(config.engine)
        for sym in config.symbols:
            engine.add_symbol(sym)
        for client, limits in config.limits:
            engine.set_client_limits(client, limits)
        return engine

    if config.snapshot_every < 0 or config.snapshot_keep < 1:
        raise ValueError(f"snapshot_every must be >= 0 and snapshot_keep >= 1, not {config.snapshot_every} and "
                         f"{config.snapshot_keep}")  # fmt: skip
    engine = make_engine() if config.journal_path is None else None

    mapped: list[_Mapped] = []
    loop_out = ffi.new("pt_loop_t **")
    waiter: threading.Thread | None = None
    flusher: threading.Thread | None = None
    journal: Journal | None = None
    checkpointer: _Checkpointer | None = None
    key_path: Path | None = None
    control: ControlServer | None = None
    md_view: Broadcast | None = None
    done = threading.Event()
    status: dict[str, Any] = {}
    try:
        recovery = None
        if config.journal_path is not None:
            engine, journal, recovery = recover(config.journal_path, make_engine, config.journal_capacity,
                                                config.fingerprint())  # fmt: skip
            os.chmod(journal.path, 0o600)  # the run's whole history: the platform's user alone reads it
            for line in recovery.skipped:  # a damaged snapshot is passed over, and said
                print(f"engine: recovery passed over a snapshot: {line}", file=sys.stderr, flush=True)
            status["replayed"] = recovery.replayed
            status["recovered_state_hash"] = int(engine.state_hash())
            status["recovered_from_segment"] = recovery.segments[0]
            status["recovery_ms"] = round((recovery.load_s + recovery.replay_s) * 1e3, 3)
            if recovery.snapshot is not None:
                status["recovered_snapshot"] = recovery.segments[0]
        assert engine is not None
        rings = []
        for client in config.clients:
            cmd, evt = _create_ring_pair(config.prefix, client, config.ring_capacity)
            mapped += [cmd, evt]
            rings.append((client, cmd, evt))
        md = _create_broadcast(market_data_name(config.prefix), config.md_capacity)
        mapped.append(md)
        key_path, operator_key = _create_operator_key(config.prefix)  # after the segments: the prefix is ours
        ctl_seg = ShmSegment.create(control_name(config.prefix), lib.PT_LOOP_CONTROL_BYTES)
        ctl = _Mapped(ctl_seg)
        mapped.append(ctl)
        check_loop_rc(lib.pt_loop_control_init(ctl.ptr, ctl.size), "control_init")

        check_loop_rc(
            lib.pt_loop_create(ffi.cast("pt_engine_t *", engine._handle), ctl.ptr, ctl.size, loop_out), "create"
        )
        for client, cmd, evt in rings:
            check_loop_rc(
                lib.pt_loop_add_client(loop_out[0], client, cmd.ptr, cmd.size, evt.ptr, evt.size), "add_client"
            )
        check_loop_rc(lib.pt_loop_set_market_data(loop_out[0], md.ptr, md.size), "set_market_data")
        if journal is not None:
            assert recovery is not None and config.journal_path is not None
            check_loop_rc(lib.pt_loop_set_journal(loop_out[0], journal.ptr, journal.size), "set_journal")
            if config.snapshot_every > 0:
                check_loop_rc(lib.pt_loop_set_rotation(loop_out[0], config.snapshot_every, recovery.journal_position,
                                                       recovery.segment), "set_rotation")  # fmt: skip
                checkpointer = _Checkpointer(loop_out[0], config.journal_path, journal, recovery.segment,
                                             recovery.journal_position, config.snapshot_keep,
                                             config.journal_flush_ms)  # fmt: skip
                checkpointer.offer()  # before the recovery's cancels: a full segment rotates instead of stopping
            status["recovery_cancelled"] = _cancel_orphans(engine, loop_out[0], set(config.clients))
            if checkpointer is not None:
                checkpointer.take()  # a checkpoint those cancels took, if the segment was full
                flusher = checkpointer.run(done, allowed - {core})
            elif config.journal_flush_ms > 0:
                flusher = _start_flusher(journal, config.journal_flush_ms, allowed - {core}, done)
        md_view = view = Broadcast(md.segment.mmap)
        counters = ffi.new("pt_loop_counters_t *")

        watch = ffi.new("pt_loop_counters_t *")  # the control thread's own: `counters` is the main thread's

        def loop_running() -> bool:
            return lib.pt_loop_control_read(ctl.ptr, ctl.size, watch) == 0 and bool(watch.running)

        def stalled_on() -> int:
            return int(watch.stalled_on) if lib.pt_loop_control_read(ctl.ptr, ctl.size, watch) == 0 else 0

        control = ControlServer(
            loop=loop_out[0],
            engine=engine,
            endpoint=config.endpoint,
            market_data=market_data_name(config.prefix),
            create_rings=lambda cid: _create_ring_pair(config.prefix, cid, config.ring_capacity, _nonce()),
            static={client: (cmd, evt) for client, cmd, evt in rings},
            symbols=symbol_dicts(config.symbols),
            accounts=dict(config.accounts),
            md_tail=lambda: view.tail,
            running=loop_running,
            stalled_on=stalled_on,
            heartbeat_timeout_s=config.heartbeat_timeout_s,
            slow_consumer_s=config.slow_consumer_s,
            operator_key=operator_key,
            pause_us_per_s=config.control_pause_us_per_s,
            pause_burst_us=config.control_pause_burst_us,
            checkpoint=checkpointer.request if checkpointer is not None else None,
        )
        control.start(allowed - {core})

        def wait_for_signal() -> None:
            wanted = {int(sig) for sig in _STOP_SIGNALS}
            while not done.is_set():
                data = os.read(wake_r, 64)
                if not done.is_set() and wanted.intersection(data):
                    lib.pt_loop_request_stop(ctl.ptr, ctl.size)
                    return

        waiter = threading.Thread(target=wait_for_signal, name="stop-signal", daemon=True)
        waiter.start()
        _off_core(allowed - {core})
        rc = int(lib.pt_loop_run(loop_out[0]))  # cffi releases the GIL: the waiter and the control plane run
        control.stop()  # no pause can be asked of a loop that has returned
        if checkpointer is not None:
            done.set()  # the checkpoint thread ends; what it left is finished here
            if flusher is not None:
                flusher.join(5)
                flusher = None
            checkpointer.close()
            journal = checkpointer.live
            status.update(checkpointer.stats())
        if journal is not None:
            journal.flush()
            before = checkpointer.position if checkpointer is not None else recovery.journal_position if recovery else 0
            status["journaled"] = before + journal.committed()  # records of the whole history, every segment
        if config.status_path is not None:
            check_loop_rc(lib.pt_loop_control_read(ctl.ptr, ctl.size, counters), "control_read")
            status.update(rc=rc, state_hash=int(engine.state_hash()), commands=int(counters.commands),
                          disconnects=control.stats()["disconnects"])  # fmt: skip
            _write_status(config.status_path, status)
        return _loop_stopped(rc, config, journal)
    finally:
        done.set()
        if control is not None:
            control.close()  # the dynamic clients' rings: the loop no longer runs
        if md_view is not None:
            md_view.close()
        if waiter is not None:
            os.write(wake_w, b"\0")  # wakes the waiter's read; 0 is no signal
            waiter.join(5)
        if flusher is not None:
            flusher.join(5)
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)
        if loop_out[0] != ffi.NULL:
            lib.pt_loop_destroy(loop_out[0])
        for m in reversed(mapped):
            m.close()
        if journal is not None:
            journal.close()
        if checkpointer is not None:  # whatever segments it still holds (idempotent for the one closed above)
            checkpointer.live.close()
            if checkpointer.offered is not None:
                checkpointer.offered.close()
        if key_path is not None:  # only a run directory this process made its own
            _remove_run_dir(config.prefix, key_path)
        del engine


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m hotpath.engine_process CONFIG_JSON", file=sys.stderr)
        return 2
    try:
        return run_engine_process(EngineProcessConfig.from_json(args[0]))
    except JournalError as e:  # a journal it must not or cannot use (damaged included): one line, not a traceback
        print(f"engine: {e}", file=sys.stderr, flush=True)
        return EXIT_START_FAILED
    except (OSError, ValueError, LoopError, zmq.ZMQError) as e:  # a start that cannot go on: one line, at once
        print(f"engine: could not start: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return EXIT_START_FAILED


if __name__ == "__main__":
    sys.exit(main())
