"""The control plane: ZeroMQ REQ/REP between clients and the engine process, served from a thread of it.

Nothing here is on the latency path: orders go through the shared-memory rings. The control plane attaches
and detaches clients (handing back the names of their ring pair), takes heartbeats, answers snapshot and
stats requests, and notices a client that is gone:

- its process exits: the server holds a pidfd for it (``os.pidfd_open``), which its poller wakes on at once;
- its heartbeats stop for ``heartbeat_timeout_s``;
- the loop has waited on its full event ring for ``slow_consumer_s`` (a live client that stopped reading its
  events would otherwise hold every other client up: a slow consumer is disconnected, not waited for);
- it detaches.

A client that is gone has its resting orders cancelled (cancel-on-disconnect) by a mass cancel with the
DISCONNECT flag, which runs through the loop like any command: journaled first, book deltas to market data.
Its slot and rings are then freed, and the id may attach again. Other clients never notice beyond the
pause: every action that touches the engine or the loop's slots parks the loop at a pass boundary for its
duration (``pt_loop.h``, "Controller"); :meth:`ControlServer.stats` reports how long the pauses took.

Access (docs/OPERATIONS.md, "Who may call what"). The first gate is the socket itself: by default a file in the
run's directory that only the platform's user may enter (``names.py``); for a unix socket the server also reads
the caller's credentials (SO_PEERCRED on the connection the message came in on) and refuses, FORBIDDEN, a caller
of another uid than its own or root's, whatever endpoint was configured. Then each op has an access class
(:class:`Access`), checked in one place, :meth:`ControlServer._authorize`:

- READ (``stats``, ``symbols``, ``snapshot``, ``state_hash``, ``opened``): anyone who reached the socket;
  ``opened`` changes only the names of the caller's own rings, and needs their token;
- ATTACH (``attach``): anyone; an id held by a live attachment is refused, and a ``pid`` given must be the
  caller's own. The reply carries a random 128-bit ``token`` that names this attachment;
- OWN (``heartbeat``, ``detach``, ``position``, ``kill``): the token of the attachment that acts for the named
  client (its own id, or an account granted to its link), or the operator key (not for ``heartbeat``). A
  token of an attachment that has ended gets NOT_ATTACHED, a missing or another client's token FORBIDDEN;
- OPERATOR (``kill_reset``, ``halt``, ``resume``, ``set_limits``, ``checkpoint``): the operator key, which the
  engine process writes at start into the run directory, readable by the platform's user alone (``operator.key``,
  0600). Every operator op leaves an audit line.

A request carries its token as ``"token"`` and the key as ``"operator_key"``.

Rate limit: the ops that pause the loop for a caller's benefit (``snapshot``, ``position``, ``state_hash``,
``attach``, ``kill``) draw on that caller's :class:`PauseBudget`, a token bucket whose tokens are microseconds of
loop pause (each request is charged what it really paused, at least :data:`MIN_CHARGE_US`), refilled at
``pause_us_per_s``. A caller is a process (its pid from SO_PEERCRED; a TCP connection when there are no
credentials), so opening more sockets buys nothing. An empty bucket answers ``RATE_LIMITED`` with
``retry_after_s``, before pausing anything. Detach and heartbeat are never limited (a refused detach would
leave orders live), nor is an operator request.

Protocol: one JSON object per request and per reply. Every reply has ``"ok"``; a failed request gets ``"ok":
false, "code": ..., "error": ...`` and changes nothing. docs/HOTPATH.md lists the ops.

No request may stop the control thread, whatever its bytes: it reads every message whole (``recv_multipart``),
refuses one of more than one frame, of more than :data:`MAX_REQUEST_BYTES`, that is not JSON (a decoder
RecursionError included) or that nests deeper than :data:`MAX_REQUEST_DEPTH` (``BAD_REQUEST``), and always sends
exactly one reply, so the REP socket never waits for a send that does not come. Should the thread die all the
same (a bug), it logs why and stops the engine process (:meth:`ControlServer.start`): an engine without its
control plane would go on trading with no attach, no heartbeat and no cancel-on-disconnect.
"""

from __future__ import annotations

import enum
import errno
import hmac
import json
import logging
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import zmq

from c_engine import Command, Limit

from ._cloop import ffi, lib
from .control_client import ControlError
from .idle import BackoffIdle

__all__ = [
    "MAX_REQUEST_BYTES",
    "MAX_REQUEST_DEPTH",
    "MIN_CHARGE_US",
    "Access",
    "Caller",
    "ControlServer",
    "PauseBudget",
    "loop_execute",
    "symbol_dicts",
]

log = logging.getLogger("proptrade.control")

#: The longest request the server decodes (its one frame, bytes); a longer one gets BAD_REQUEST. The longest
#: real request, an attach granting a link every one of its 64 slots' account names, is a few KiB.
MAX_REQUEST_BYTES = 64 * 1024
#: How deep a request's JSON may nest (the object itself is 1; a real request is at most 2, ``accounts``);
#: deeper gets BAD_REQUEST, so no handler or log line meets a structure that recursion cannot print.
MAX_REQUEST_DEPTH = 32
#: The largest pid Linux hands out (PID_MAX_LIMIT on 64-bit): a larger ``pid`` is refused before any syscall.
_PID_MAX = 1 << 22
#: The largest value a SET_LIMIT command carries (its qty field is an int64).
_LIMIT_MAX = (1 << 63) - 1
#: What a rate-limited request is charged at least (µs), however short its pause: a pause costs the loop its
#: park-and-resume handshake too, and a flood of tiny ones must run dry as well.
MIN_CHARGE_US = 20.0
#: Callers whose budgets are kept; past it, those whose buckets are full again are forgotten.
_MAX_CALLERS = 1024
#: struct ucred of SO_PEERCRED: pid, uid, gid
_UCRED = struct.Struct("3i")


class Access(enum.Enum):
    """Who may call an op (the module docstring; checked in ``ControlServer._authorize``)."""

    READ = "read"  #: anyone who reached the socket: reads engine or platform state, changes nothing
    ATTACH = "attach"  #: anyone: takes a free id (or a static slot no live process holds)
    OWN = "own"  #: the named client's attachment (its token), or the operator key
    OPERATOR = "operator"  #: the operator key: changes an account's or a symbol's trading state


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as the kernel says: ``pid`` and ``uid`` from SO_PEERCRED (None over TCP, where only
    the connection is known), and ``key``, what its rate limit is kept by."""

    pid: int | None
    uid: int | None
    key: object

    @classmethod
    def of(cls, fd: int) -> Caller:
        """The caller on connection ``fd`` (ZeroMQ's ZMQ_SRCFD of the message); a duplicate of the descriptor
        is read and closed, ZeroMQ's own is left alone."""
        try:
            with socket.socket(fileno=os.dup(fd)) as sock:
                if sock.family == socket.AF_UNIX:
                    pid, uid, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
                    return cls(pid, uid, ("pid", pid))
        except OSError:
            pass
        return cls(None, None, ("fd", fd))


#: The caller of a request whose connection is unknown (``handle`` called directly): limited as one caller.
_NOBODY = Caller(None, None, ("unknown",))


class PauseBudget:
    """A token bucket of loop-pause microseconds for one caller: ``rate_us_per_s`` come back every second, up
    to ``burst_us``. :meth:`check` refuses while the bucket is empty; :meth:`charge` takes what a request cost
    (it may run the bucket below zero: a request's cost is known only once it ran). ``clock`` is injected
    (monotonic seconds), so tests step time."""

    def __init__(self, rate_us_per_s: float, burst_us: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_us_per_s = rate_us_per_s
        self.burst_us = burst_us
        self._clock = clock
        self._level = burst_us
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._level = min(self.burst_us, self._level + (now - self._at) * self.rate_us_per_s)
        self._at = now
        return self._level

    def check(self) -> float:
        """0.0 if a request may run now, else the seconds until the bucket holds something again."""
        level = self._refill()
        return 0.0 if level > 0 else (-level + MIN_CHARGE_US) / self.rate_us_per_s

    def charge(self, used_us: float) -> None:
        self._refill()
        self._level -= max(used_us, MIN_CHARGE_US)

    def full(self) -> bool:
        return self._refill() >= self.burst_us


@dataclass
class _Attached:
    """A client slot the server knows: its rings, and how it watches the client."""

    client_id: int
    cmd: Any  # engine_process._Mapped
    evt: Any
    static: bool
    pid: int | None = None
    pidfd: int | None = None
    last_heartbeat: float = 0.0
    attached_at: float = 0.0
    #: the other client ids this slot's link may act for (its grant; empty for a one-account client)
    granted: tuple[int, ...] = ()
    #: names this attachment (the module docstring, "Access"): requests that carry the token of one that ended
    #: (its id attached again since) are answered NOT_ATTACHED, so a detached client learns it at its next
    #: heartbeat; "" while no process holds a static slot
    token: str = ""

    def acts_for(self, client: int) -> bool:
        return client == self.client_id or client in self.granted


@dataclass
class _PauseStats:
    count: int = 0
    total_ns: int = 0
    max_ns: int = 0
    last_ns: int = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.total_ns += ns
        self.max_ns = max(self.max_ns, ns)
        self.last_ns = ns


class ControlServer:
    """Serves the control plane of one engine process from a background thread.

    ``create_rings(client_id) -> (cmd, evt)`` makes a fresh ring pair for a client and returns the mapped
    segments (objects with ``.segment`` (its ``.name``), ``.ptr``, ``.size``, ``depth()``, ``unlink()`` and
    ``close()``); the server unlinks their names once the client has mapped them and closes them when the
    client goes. ``static`` are the slots the process attached itself (their rings stay until the end).
    ``operator_key``: what operator requests must carry (None: no request is an operator's).
    ``pause_us_per_s`` and ``pause_burst_us``: each caller's :class:`PauseBudget` (0 = no rate limit).
    """

    def __init__(
        self,
        *,
        loop: Any,
        engine: Any,
        endpoint: str,
        market_data: str,
        create_rings: Callable[[int], tuple[Any, Any]],
        static: dict[int, tuple[Any, Any]],
        symbols: list[dict[str, Any]],
        md_tail: Callable[[], int],
        accounts: dict[str, int] | None = None,
        running: Callable[[], bool],
        stalled_on: Callable[[], int] = lambda: 0,
        heartbeat_timeout_s: float = 5.0,
        slow_consumer_s: float = 2.0,
        pause_timeout_s: float = 2.0,
        operator_key: str | None = None,
        pause_us_per_s: float = 5_000.0,
        pause_burst_us: float = 50_000.0,
        checkpoint: Callable[[], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self._checkpoint_now = checkpoint  # the engine process's: a snapshot and a new journal segment
        self._engine = engine
        self.endpoint = endpoint
        self._market_data = market_data
        self._operator_key = operator_key
        self._tokens: dict[str, int] = {}  # token -> the client id of the attachment it names
        self.pause_us_per_s = pause_us_per_s
        self.pause_burst_us = pause_burst_us
        self._clock = clock
        self._budgets: dict[object, PauseBudget] = {}
        self._caller = _NOBODY  # the caller of the request being answered (the control thread's only)
        self._request_pause_ns = 0  # what the request being answered has paused the loop so far
        self._rate_limited = 0
        self._create_rings = create_rings
        self._symbols = symbols
        self._accounts = dict(accounts or {})  # account name -> client id
        self._account_names = {cid: name for name, cid in self._accounts.items()}
        self._granted_to: dict[int, int] = {}  # account -> the link (client id) it is granted to
        self._md_tail = md_tail
        self._running = running
        self._stalled_on = stalled_on
        self.slow_consumer_s = slow_consumer_s
        self._stall: tuple[int, float] | None = None  # (client id, since) of the stall the loop is in
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.pause_timeout_s = pause_timeout_s
        self._clients: dict[int, _Attached] = {
            cid: _Attached(cid, cmd, evt, static=True) for cid, (cmd, evt) in static.items()
        }
        self._pauses = _PauseStats()
        self._disconnects = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None  # what killed the serving thread, if anything did
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.REP)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.bind(endpoint)  # bound here, before the loop runs: a client may connect at once

    # --- thread ------------------------------------------------------------------------------------------

    def start(self, cores: set[int] | None = None) -> None:
        """Serves from a daemon thread, on ``cores`` if given (not the engine's).

        If that thread dies (a bug: no request can kill it), it logs the error and sends its own process
        SIGTERM, which the engine process routes to the loop's stop flag (engine_process.py), as an operator
        would: the loop returns, every client gets EngineGoneError, and :meth:`stop` raises the error so the
        process exits non-zero. An engine whose control plane is gone must not go on trading: nothing would
        attach or detach, and a client that died would keep its orders."""

        def serve() -> None:
            try:
                if cores:
                    os.sched_setaffinity(0, cores)  # this thread only
                self._serve()
            except BaseException as e:
                self._failure = e
                log.critical("the control thread died: stopping the engine process", exc_info=True)
                os.kill(os.getpid(), signal.SIGTERM)

        self._thread = threading.Thread(target=serve, name="control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops serving (waits for the thread); the loop must have returned first or be about to. Raises
        RuntimeError, from the error, if the serving thread died of one."""
        self._end_thread()
        if self._failure is not None:
            failure, self._failure = self._failure, None  # raised once: close() must still clean up
            raise RuntimeError("the control thread died; the engine process was stopped") from failure

    def _end_thread(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(10)

    def close(self) -> None:
        """Closes the socket and every dynamic client's rings. Only after pt_loop_run returned. Never raises
        for the serving thread's death (:meth:`stop` does)."""
        self._end_thread()
        self._sock.close(0)
        if self.endpoint.startswith("ipc://") and not self.endpoint.startswith("ipc://@"):  # a socket file
            try:
                os.unlink(self.endpoint[len("ipc://") :])
            except FileNotFoundError:
                pass
        for att in list(self._clients.values()):
            if not att.static:
                self._release(att)
        self._clients.clear()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        watched: dict[int, int] = {}  # pidfd -> client id
        while not self._running():  # requests wait in the socket until the loop can be paused
            if self._done.wait(0.001):
                return
        while not self._done.is_set():
            self._sync_watch(poller, watched)
            ready = dict(poller.poll(self._poll_ms()))
            if self._sock in ready:
                self._answer_pending()  # all of them first: heartbeats must not wait behind a slow disconnect
            for fd in ready:
                if fd in watched:
                    self._gone(watched[fd], "process exited")
            self._check_heartbeats()
            self._check_slow_consumer()

    def _answer_pending(self, most: int = 256) -> None:
        for _ in range(most):
            if not self._sock.poll(0, zmq.POLLIN):
                return
            self._answer_one()

    def _check_slow_consumer(self) -> None:
        """Disconnects a dynamic client whose full event ring has held the loop for ``slow_consumer_s`` (a
        static one is only reported, once per stall: its slot belongs to the engine's config)."""
        if self.slow_consumer_s <= 0:
            return
        cid = self._stalled_on() - 1
        now = time.monotonic()
        if cid < 0:
            self._stall = None
            return
        if self._stall is None or self._stall[0] != cid:
            self._stall = (cid, now)
            return
        held = now - self._stall[1]
        if held < self.slow_consumer_s:
            return
        att = self._clients.get(cid)
        if att is not None and not att.static:
            self._gone(cid, f"slow consumer: its full event ring held the engine for {held:.1f} s")
        else:
            log.warning("client %d (static) has held the engine for %.1f s: static slots are not disconnected",
                        cid, held)  # fmt: skip
            self._stall = (cid, float("inf"))  # once per stall

    def _poll_ms(self) -> int:
        """Wakes often enough to see a heartbeat timeout (and the stop request) within ~100 ms."""
        return 100

    def _sync_watch(self, poller: zmq.Poller, watched: dict[int, int]) -> None:
        live = {att.pidfd: cid for cid, att in self._clients.items() if att.pidfd is not None}
        for fd in set(watched) - set(live):
            poller.unregister(fd)
        for fd in set(live) - set(watched):
            poller.register(fd, zmq.POLLIN)
        watched.clear()
        watched.update(live)

    def _check_heartbeats(self) -> None:
        if self.heartbeat_timeout_s <= 0:
            return
        now = time.monotonic()
        for cid, att in list(self._clients.items()):
            if not att.static and now - att.last_heartbeat > self.heartbeat_timeout_s:
                self._gone(cid, f"no heartbeat for {now - att.last_heartbeat:.1f} s")

    def _answer_one(self) -> None:
        """Reads one message, whatever it holds, and sends exactly one reply to it."""
        frames = self._sock.recv_multipart(copy=False)  # every frame: a REP socket with one unread cannot send
        request: Any = None
        try:
            self._caller = Caller.of(frames[0].get(zmq.SRCFD))
        except zmq.ZMQError:
            self._caller = _NOBODY
        try:
            request = _decode(frames)
            reply = self.handle(request)
        except ControlError as e:
            reply = {"ok": False, "code": e.code, "error": e.message}
            if e.retry_after_s is not None:
                reply["retry_after_s"] = e.retry_after_s
        except Exception as e:  # a bug must not kill the control plane: say so, keep serving
            log.exception("control request %r failed", request)
            reply = {"ok": False, "code": "INTERNAL", "error": repr(e)}
        try:
            data = json.dumps(reply).encode()  # ASCII: every non-ASCII character is escaped
        except (TypeError, ValueError, RecursionError) as e:  # a handler's reply that is not JSON: a bug
            log.exception("control reply %r is not JSON", reply)
            data = json.dumps({"ok": False, "code": "INTERNAL", "error": f"reply not JSON: {e!r}"}).encode()
        self._sock.send(data)

    # --- requests ----------------------------------------------------------------------------------------

    def handle(self, request: Any) -> dict[str, Any]:
        """One request -> its reply (raises ControlError for a failed one)."""
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            raise ControlError("BAD_REQUEST", 'a request is a JSON object with an "op"')
        entry = self._HANDLERS.get(request["op"])
        if entry is None:
            raise ControlError("BAD_REQUEST", f"unknown op {request['op']!r} (known: {sorted(self._HANDLERS)})")
        handler, access, limited = entry
        operator = self._authorize(request, access)
        budget = self._budget() if limited and not operator else None
        if budget is not None:
            wait_s = budget.check()
            if wait_s > 0:
                self._rate_limited += 1
                raise ControlError("RATE_LIMITED", f"{request['op']}: this caller has used its share of engine "
                                   f"pauses ({self.pause_us_per_s:g} us/s); retry in {wait_s:.3f} s",
                                   retry_after_s=round(wait_s, 6))  # fmt: skip
        self._request_pause_ns = 0
        try:
            return {"ok": True, **handler(self, request)}
        finally:
            if budget is not None:
                budget.charge(self._request_pause_ns / 1e3)

    def _authorize(self, request: dict[str, Any], access: Access) -> bool:
        """The one place every request passes before it runs, with its op's access class: who may call what is
        decided here (the module docstring, "Access"). Returns whether the request carries the operator key.
        FORBIDDEN for a caller of another user, a wrong key, a missing one, or a missing or foreign token;
        NOT_ATTACHED for the token of an attachment that has ended."""
        caller = self._caller
        if caller.uid is not None and caller.uid not in (0, os.geteuid()):
            raise ControlError("FORBIDDEN", f"uid {caller.uid} may not use this engine's control plane")
        key = request.get("operator_key")
        operator = False
        if key is not None:
            if (
                self._operator_key is None
                or not isinstance(key, str)
                or not hmac.compare_digest(key.encode("utf-8", "surrogatepass"), self._operator_key.encode())
            ):
                raise ControlError("FORBIDDEN", "wrong operator key")
            operator = True
        op = request["op"]
        if access is Access.OPERATOR:
            if not operator:
                raise ControlError("FORBIDDEN", f"{op} is an operator op: it needs the run's operator key")
            log.info("operator op %s (pid %s)", {k: v for k, v in request.items() if k not in ("pid", "operator_key")},
                     caller.pid)  # fmt: skip
        elif access is Access.OWN and (not operator or op == "heartbeat"):
            self._check_token(request)
        elif access is Access.OWN:
            log.info("operator op %s (pid %s)", {k: v for k, v in request.items() if k not in ("pid", "operator_key")},
                     caller.pid)  # fmt: skip
        return operator

    def _check_token(self, request: dict[str, Any]) -> None:
        """The request's ``token`` names an attachment that acts for its ``client``, or ControlError."""
        cid = self._client_id(request)
        token = request.get("token")
        if not isinstance(token, str) or not token:
            raise ControlError("FORBIDDEN", f"{request['op']} of client {cid} needs the token its attach handed out")
        holder = self._tokens.get(token)
        if holder is None:
            raise ControlError("NOT_ATTACHED", f"client {cid}: that attachment has ended (the client was detached)")
        if not self._clients[holder].acts_for(cid):
            raise ControlError("FORBIDDEN", f"that token is client {holder}'s, which does not act for client {cid}")

    def _budget(self) -> PauseBudget | None:
        """The caller's pause budget; None when there is no rate limit."""
        if self.pause_us_per_s <= 0:
            return None
        budget = self._budgets.get(self._caller.key)
        if budget is None:
            if len(self._budgets) >= _MAX_CALLERS:  # forget the callers who are owed nothing
                for key in [k for k, b in self._budgets.items() if b.full()]:
                    del self._budgets[key]
            budget = self._budgets[self._caller.key] = PauseBudget(self.pause_us_per_s, self.pause_burst_us,
                                                                   self._clock)  # fmt: skip
        return budget

    def _client_id(self, request: dict[str, Any]) -> int:
        """The request's client: an engine client id, or the name of an account of the config."""
        cid = request.get("client")
        if isinstance(cid, str):
            try:
                return self._accounts[cid]
            except KeyError:
                raise ControlError("UNKNOWN_ACCOUNT", f"no account {cid!r} (known: {sorted(self._accounts)})") from None
        max_clients = self._engine.config.max_clients
        if type(cid) is not int or not 0 <= cid < max_clients:
            raise ControlError("BAD_REQUEST", f"client must be an account name or an integer in 0..{max_clients - 1}, "
                               f"not {cid!r}")  # fmt: skip
        return cid

    def _grant(self, request: dict[str, Any], cid: int) -> tuple[int, ...]:
        """The ``accounts`` an attach asks its link to act for (names or ids), resolved; ALREADY_ATTACHED if
        one is attached itself or granted to another link."""
        names = request.get("accounts", [])
        if not isinstance(names, list):
            raise ControlError("BAD_REQUEST", f"accounts must be a list of account names or ids, not {names!r}")
        ids: dict[int, None] = {}  # ordered, without repeats
        for name in names:
            account = self._client_id({"client": name})
            holder = self._holder(account)
            if holder is not None and holder != cid:
                raise ControlError("ALREADY_ATTACHED", f"account {name!r} is held by client {holder}")
            if account != cid:
                ids[account] = None
        return tuple(ids)

    def _holder(self, account: int) -> int | None:
        """The attached client whose slot acts for ``account`` (itself, or the link it is granted to)."""
        if account in self._clients:
            return account
        return self._granted_to.get(account)

    def _check_caller_pid(self, pid: int | None) -> None:
        """FORBIDDEN for an attach that names another process than the caller's (when the kernel says who the
        caller is): it would take a static slot a live process holds, or watch the wrong process."""
        if pid is not None and self._caller.pid is not None and pid != self._caller.pid:
            raise ControlError("FORBIDDEN", f"pid {pid} is not the caller's process ({self._caller.pid})")

    def _attach(self, request: dict[str, Any]) -> dict[str, Any]:
        cid = self._client_id(request)
        grant = self._grant(request, cid)
        pid = request.get("pid")
        if pid is not None and (type(pid) is not int or not 0 < pid <= _PID_MAX):
            raise ControlError("BAD_REQUEST", f"pid must be a process id (1 .. {_PID_MAX}), not {pid!r}")
        att = self._clients.get(cid)
        if att is not None and att.pid is not None and _alive(att.pid) and att.pid != pid:
            raise ControlError("ALREADY_ATTACHED", f"client {cid} is attached (pid {att.pid})")
        if att is not None and not att.static:  # the same pid attaching twice
            raise ControlError("ALREADY_ATTACHED", f"client {cid} is attached (pid {att.pid})")
        if att is not None and grant:
            raise ControlError("BAD_REQUEST", f"client {cid} is a static slot: it cannot be granted accounts")
        holder = self._holder(cid)
        if att is None and holder is not None:
            raise ControlError("ALREADY_ATTACHED", f"client {cid} is granted to the link of client {holder}")
        if att is not None:
            self._check_caller_pid(pid)
            att.pid = pid  # a static slot: one process at a time may use its rings (never watched, never cancelled)
            self._tokens.pop(att.token, None)
            att.token = os.urandom(16).hex()
            self._tokens[att.token] = cid
        else:
            pidfd = None
            if pid is not None:
                try:
                    pidfd = os.pidfd_open(pid)
                except ProcessLookupError:
                    raise ControlError("BAD_REQUEST", f"no process {pid}") from None
                except OSError as e:  # a thread's id, not its process's: ENOENT or EINVAL, by kernel
                    if e.errno not in (errno.ENOENT, errno.EINVAL):
                        raise  # another (out of descriptors): not the request's fault; INTERNAL, logged
                    raise ControlError("BAD_REQUEST", f"pid {pid} is not a process id: {e.strerror}") from None
            try:
                self._check_caller_pid(pid)
                att = self._attach_slot(cid, pid, pidfd, grant)
            except BaseException:
                if pidfd is not None:
                    os.close(pidfd)
                raise
        cmd_name, evt_name = att.cmd.segment.name, att.evt.segment.name
        return {
            "client": cid,
            "account": self._account_names.get(cid),
            # every account the link acts for, its own first: name (or the id as a string) -> client id
            "accounts": {self._account_names.get(a, str(a)): a for a in (cid, *att.granted)},
            "static": att.static,
            "token": att.token,  # names this attachment in every request it makes for these ids
            "unlink_rings": not att.static,  # say "opened" once mapped: the names are removed then
            "command_ring": cmd_name,
            "event_ring": evt_name,
            "market_data": self._market_data,
            "symbols": self._symbols,
            "heartbeat_timeout_s": self.heartbeat_timeout_s,
            "engine_pid": os.getpid(),  # the client watches it: a dead engine fails its waits at once
        }

    def _attach_slot(self, cid: int, pid: int | None, pidfd: int | None, grant: tuple[int, ...] = ()) -> _Attached:
        cmd, evt = self._create_rings(cid)
        try:
            with self._paused():
                rc = lib.pt_loop_add_client(self._loop, cid, cmd.ptr, cmd.size, evt.ptr, evt.size)
                if rc == lib.PT_LOOP_OK:
                    rc = self._grant_all(cid, grant)
            if rc == lib.PT_LOOP_ESLOTS:
                raise ControlError("NO_SLOT", f"all {lib.PT_LOOP_MAX_CLIENTS} client slots are taken")
            if rc != lib.PT_LOOP_OK:
                raise ControlError("INTERNAL", f"pt_loop_add_client rc {rc}")
        except BaseException:
            cmd.close()
            evt.close()
            raise
        now = time.monotonic()
        att = _Attached(cid, cmd, evt, static=False, pid=pid, pidfd=pidfd, last_heartbeat=now, attached_at=now,
                        token=os.urandom(16).hex(),
                        granted=grant)  # fmt: skip
        self._clients[cid] = att
        self._tokens[att.token] = cid
        self._granted_to.update(dict.fromkeys(grant, cid))
        log.info("client %d attached (pid %s)%s", cid, pid, f", a link for {len(grant)} more accounts" if grant else "")
        return att

    def _grant_all(self, cid: int, grant: tuple[int, ...]) -> int:
        """Paused: grants the new slot of ``cid`` its accounts; on a failure removes the slot again."""
        for account in grant:
            rc = int(lib.pt_loop_grant(self._loop, cid, account))
            if rc != lib.PT_LOOP_OK:
                lib.pt_loop_remove_client(self._loop, cid)
                return rc
        return int(lib.PT_LOOP_OK)

    def _attached(self, request: dict[str, Any]) -> _Attached:
        """The request's client's own attachment; NOT_ATTACHED if it is not attached, or if the request's token
        (an operator's request may carry none) names another attachment."""
        cid = self._client_id(request)
        att = self._clients.get(cid)
        if att is None:
            raise ControlError("NOT_ATTACHED", f"client {cid} is not attached")
        token = request.get("token")
        if (token is not None or request.get("operator_key") is None) and token != att.token:
            raise ControlError("NOT_ATTACHED", f"client {cid}: that attachment has ended (the client was detached)")
        return att

    def _detach(self, request: dict[str, Any]) -> dict[str, Any]:
        att = self._attached(request)
        if att.static:
            if att.token and request.get("token") == att.token:
                att.pid = None  # the static slot's user leaves; the slot stays
                self._tokens.pop(att.token, None)
                att.token = ""
                return {"cancelled": 0}
            raise ControlError("STATIC", f"client {att.client_id} is attached by the engine's config")
        cancel = request.get("cancel", True)
        if type(cancel) is not bool:
            raise ControlError("BAD_REQUEST", f"cancel must be true or false, not {cancel!r}")
        return {"cancelled": self._disconnect(att, "detached", cancel)}

    def _heartbeat(self, request: dict[str, Any]) -> dict[str, Any]:
        att = self._attached(request)
        att.last_heartbeat = time.monotonic()
        return {}

    def _opened(self, request: dict[str, Any]) -> dict[str, Any]:
        """The client has mapped its ring pair: their names are removed, so no other process can open them (the
        mappings, the engine's and the client's, stay). A static slot's names stay: its config opens them."""
        token = request.get("token")
        cid = self._tokens.get(token) if isinstance(token, str) else None
        if cid is None:
            raise ControlError("NOT_ATTACHED", "that token names no attachment")
        att = self._clients[cid]
        if not att.static:
            att.cmd.unlink()
            att.evt.unlink()
        return {}

    def _snapshot(self, request: dict[str, Any]) -> dict[str, Any]:
        symbol = request.get("symbol")
        depth = request.get("depth", 10)
        if type(depth) is not int or depth < 1:
            raise ControlError("BAD_REQUEST", f"depth must be a positive integer, not {depth!r}")
        try:
            sid = self._engine.symbol_id(symbol)
        except Exception:
            raise ControlError("UNKNOWN_SYMBOL", f"no symbol {symbol!r}") from None
        depth = min(depth, self._engine.config.max_levels_per_side)  # no side has more levels
        with self._paused():
            book = self._engine.l2(sid, depth)
            engine_seq = self._engine.stats()["events"]
            md_position = self._md_tail()
        return {
            "symbol": self._engine.symbol_names[sid],
            "symbol_id": sid,
            "engine_seq": engine_seq,  # the snapshot includes every event up to this seq
            "md_position": md_position,  # the market-data ring position of the next event after it
            "bids": [list(lv) for lv in book["bids"]],
            "asks": [list(lv) for lv in book["asks"]],
        }

    def _stats(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.stats()

    def _position(self, request: dict[str, Any]) -> dict[str, Any]:
        """The engine's own risk state of one client on one symbol (lots, ticks x lots, money units)."""
        cid = self._client_id(request)
        try:
            sid = self._engine.symbol_id(request.get("symbol"))
        except Exception:
            raise ControlError("UNKNOWN_SYMBOL", f"no symbol {request.get('symbol')!r}") from None
        with self._paused():
            pos = self._engine.position(cid, sid)
            last = self._engine.last_price(sid)
        return {"client": cid, "symbol": self._engine.symbol_names[sid], "last_price": last, **pos._asdict()}

    def _symbols_op(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"symbols": self._symbols}

    def _state_hash(self, request: dict[str, Any]) -> dict[str, Any]:
        """The engine's state hash (books, orders, risk) and the commands and events it covers."""
        with self._paused():
            digest = self._engine.state_hash()
            stats = self._engine.stats()
        return {"state_hash": digest, "commands": stats["commands"], "engine_seq": stats["events"]}

    def _kill_reset(self, request: dict[str, Any]) -> dict[str, Any]:
        """Lets a client whose kill switch fired trade again (an engine command: journaled, replayed)."""
        cid = self._client_id(request)
        return self._execute(Command.kill_reset(cid, ts_ns=time.monotonic_ns()))

    def _symbol(self, request: dict[str, Any]) -> int:
        try:
            return int(self._engine.symbol_id(request.get("symbol")))
        except Exception:
            raise ControlError("UNKNOWN_SYMBOL", f"no symbol {request.get('symbol')!r}") from None

    def _halt(self, request: dict[str, Any]) -> dict[str, Any]:
        """Halts a symbol: new orders and modifies on it are rejected (SYMBOL_HALTED), cancels still work."""
        return self._execute(Command.halt(self._symbol(request), ts_ns=time.monotonic_ns()))

    def _resume(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._execute(Command.resume(self._symbol(request), ts_ns=time.monotonic_ns()))

    def _kill(self, request: dict[str, Any]) -> dict[str, Any]:
        """Fires a client's kill switch: its resting orders are cancelled and it trades no more until kill_reset."""
        cid = self._client_id(request)
        with self._paused():
            before = self._engine.stats()["live_orders"]
            rc = self._execute_paused(Command.kill(cid, ts_ns=time.monotonic_ns()))
            cancelled = before - self._engine.stats()["live_orders"]
        if rc != lib.PT_LOOP_OK:
            raise ControlError("INTERNAL", f"pt_loop_execute rc {rc}")
        return {"client": cid, "cancelled": cancelled}

    def _set_limits(self, request: dict[str, Any]) -> dict[str, Any]:
        """Sets some of a client's limits (the fields of ClientLimits that the request names; 0 = off), one
        SET_LIMIT engine command each, all in one pause; the rest keep their values. Returns the limits now."""
        cid = self._client_id(request)
        values = {}
        for limit in Limit:
            value = request.get(limit.name.lower())
            if value is None:
                continue
            if type(value) is not int or not 0 <= value <= _LIMIT_MAX:
                raise ControlError("BAD_REQUEST", f"{limit.name.lower()} must be an int in 0..2**63-1, not {value!r}")
            values[limit] = value
        if not values:
            raise ControlError("BAD_REQUEST", f"name at least one limit: {[lim.name.lower() for lim in Limit]}")
        with self._paused():
            for limit, value in values.items():
                rc = self._execute_paused(Command.set_limit(cid, limit, value, ts_ns=time.monotonic_ns()))
                if rc != lib.PT_LOOP_OK:
                    raise ControlError("INTERNAL", f"pt_loop_execute rc {rc}")
            limits = asdict(self._engine.client_limits(cid))
        refused = {lim.name.lower(): v for lim, v in values.items() if limits[lim.name.lower()] != v}
        if refused:  # the engine rejected them (INVALID_LIMIT, journaled): the client's limits are as shown
            raise ControlError("INVALID_LIMIT", f"refused {refused}; limits now {limits}")
        return {"client": cid, "limits": limits}

    def _execute(self, cmd: Command) -> dict[str, Any]:
        """Runs one command through the loop (see :meth:`_execute_paused`); returns how many events it made."""
        with self._paused():
            before = self._engine.stats()["events"]
            rc = self._execute_paused(cmd)
            events = self._engine.stats()["events"] - before
        if rc != lib.PT_LOOP_OK:
            raise ControlError("INTERNAL", f"pt_loop_execute rc {rc}")
        return {"events": events}

    def _execute_paused(self, cmd: Command) -> int:
        """Runs one command through the paused loop (:func:`loop_execute`). Returns the pt_loop rc."""
        return loop_execute(self._loop, cmd)

    def _checkpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        """A snapshot of the engine and a new journal segment now (``include/pt_journal_rotation.h``): the loop
        takes it at its next pass boundary; answered once the snapshot file is written."""
        if self._checkpoint_now is None:
            raise ControlError("NO_SNAPSHOTS", "this engine takes no snapshots (snapshot_every is 0, or no journal)")
        return self._checkpoint_now()

    #: op -> (handler, who may call it, whether it draws on the caller's pause budget)
    _HANDLERS: dict[str, tuple[Callable[[ControlServer, dict[str, Any]], dict[str, Any]], Access, bool]] = {
        "attach": (_attach, Access.ATTACH, True),
        "opened": (_opened, Access.READ, False),
        "detach": (_detach, Access.OWN, False),
        "heartbeat": (_heartbeat, Access.OWN, False),
        "snapshot": (_snapshot, Access.READ, True),
        "stats": (_stats, Access.READ, False),
        "position": (_position, Access.OWN, True),
        "symbols": (_symbols_op, Access.READ, False),
        "state_hash": (_state_hash, Access.READ, True),
        "kill": (_kill, Access.OWN, True),
        "kill_reset": (_kill_reset, Access.OPERATOR, False),
        "halt": (_halt, Access.OPERATOR, False),
        "resume": (_resume, Access.OPERATOR, False),
        "set_limits": (_set_limits, Access.OPERATOR, False),
        "checkpoint": (_checkpoint, Access.OPERATOR, False),
    }

    # --- what the requests do to the loop ----------------------------------------------------------------

    @contextmanager
    def _paused(self) -> Iterator[None]:
        """Parks the loop at a pass boundary for the block (pt_loop.h: Controller); BUSY if it does not park
        within ``pause_timeout_s`` (stalled on a live client's full event ring)."""
        ticket = lib.pt_loop_pause_begin(self._loop)
        start = time.perf_counter_ns()
        deadline = time.monotonic() + self.pause_timeout_s
        idle = BackoffIdle(max_spins=10_000)  # a pass takes microseconds: spin first
        while (granted := lib.pt_loop_pause_granted(self._loop, ticket)) != 1:
            if granted < 0 or time.monotonic() > deadline:
                lib.pt_loop_resume(self._loop)  # withdraws the request
                if granted < 0:
                    raise ControlError("STOPPED", "the engine loop is not running")
                raise ControlError("BUSY", f"the engine loop did not pause within {self.pause_timeout_s} s")
            idle.idle(0)
        parked = time.perf_counter_ns()  # the loop matches nothing from here: what a caller's budget pays
        try:
            yield
        finally:
            lib.pt_loop_resume(self._loop)
            end = time.perf_counter_ns()
            self._pauses.add(end - start)
            self._request_pause_ns += end - parked

    def _gone(self, cid: int, why: str) -> None:
        """Cancel-on-disconnect for a client that is gone. Never raises: the control thread must live. If the
        loop cannot be paused now (BUSY: stalled on another, live client's full event ring), the client stays
        marked gone in the loop (its events dropped, its commands not run) and the next wake-up tries again:
        its pidfd stays readable, its heartbeat stays late."""
        att = self._clients.get(cid)
        if att is None or att.static:
            return
        try:
            n = self._disconnect(att, why, cancel=True)
        except ControlError as e:
            log.warning("client %d (pid %s) is gone (%s) but not yet detached: %s; retrying", cid, att.pid, why, e)
            return
        except Exception:
            log.exception("client %d: cancel-on-disconnect failed", cid)
            return
        log.warning("client %d (pid %s) is gone: %s; %d orders cancelled", cid, att.pid, why, n)

    def _disconnect(self, att: _Attached, why: str, cancel: bool) -> int:
        """Cancel-on-disconnect (if ``cancel``) and frees the slot; returns how many orders were cancelled."""
        cid = att.client_id
        lib.pt_loop_set_client_gone(self._loop, cid)  # at once: a stall on its ring ends, its commands stop
        cancelled = 0
        with self._paused():
            if cancel:
                before = self._engine.stats()["live_orders"]
                for account in (cid, *att.granted):  # a link: every account it acted for
                    rc = self._execute_paused(Command.mass_cancel(account, ts_ns=time.monotonic_ns(), disconnect=True))
                    if rc != lib.PT_LOOP_OK:
                        log.error("client %d: cancel-on-disconnect of %d failed (pt_loop rc %d)", cid, account, rc)
                cancelled = before - self._engine.stats()["live_orders"]
            lib.pt_loop_remove_client(self._loop, cid)
        del self._clients[cid]
        self._tokens.pop(att.token, None)
        for account in att.granted:
            del self._granted_to[account]
        self._release(att)
        self._disconnects += 1
        log.info("client %d detached (%s)", cid, why)
        return cancelled

    @staticmethod
    def _release(att: _Attached) -> None:
        att.cmd.close()
        att.evt.close()
        if att.pidfd is not None:
            os.close(att.pidfd)
            att.pidfd = None

    def stats(self) -> dict[str, Any]:
        """The clients attached now, and the pauses the control plane caused."""
        now = time.monotonic()
        p = self._pauses
        return {
            "clients": [
                {
                    "client": a.client_id,
                    "static": a.static,
                    "pid": a.pid,
                    "heartbeat_age_s": None if a.static else round(now - a.last_heartbeat, 3),
                    "cmd_depth": _depth(a.cmd),  # commands not yet taken
                    "evt_depth": _depth(a.evt),  # events not yet read
                }
                for a in sorted(self._clients.values(), key=lambda a: a.client_id)
            ],
            "disconnects": self._disconnects,
            "rate_limited": self._rate_limited,
            "pauses": p.count,
            "pause_max_us": p.max_ns / 1e3,
            "pause_mean_us": p.total_ns / p.count / 1e3 if p.count else 0.0,
        }


def _decode(frames: list[zmq.Frame]) -> Any:
    """A request's JSON value, or BAD_REQUEST: not one frame, longer than MAX_REQUEST_BYTES, not JSON (invalid
    UTF-8, a number too long to convert and nesting too deep for the decoder are ValueError or RecursionError),
    or nested deeper than MAX_REQUEST_DEPTH."""
    if len(frames) != 1:
        raise ControlError("BAD_REQUEST", f"a request is one frame, not {len(frames)}")
    size = len(frames[0].buffer)
    if size > MAX_REQUEST_BYTES:
        raise ControlError("BAD_REQUEST", f"a request is at most {MAX_REQUEST_BYTES} bytes, not {size}")
    try:
        request = json.loads(frames[0].bytes)
    except (ValueError, RecursionError):
        raise ControlError("BAD_REQUEST", "not JSON") from None
    if _deeper_than(request, MAX_REQUEST_DEPTH):
        raise ControlError("BAD_REQUEST", f"a request nests at most {MAX_REQUEST_DEPTH} levels deep")
    return request


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests lists and objects more than ``limit`` deep (a scalar is 0 deep). No
    recursion: the decoder accepts nesting nearly as deep as the interpreter's recursion limit."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def loop_execute(loop: Any, cmd: Command) -> int:
    """Runs one command through a loop that is paused (or not yet running): journaled before its events go out,
    exactly as if its client had sent it, so recovery replays it. Returns the pt_loop rc."""
    buf = ffi.from_buffer(cmd.pack())
    try:
        return int(lib.pt_loop_execute(loop, ffi.cast("pt_command_t *", buf)))
    finally:
        ffi.release(buf)


def _depth(mapped: Any) -> int | None:
    """A ring's depth, if its mapping can say (the engine process's can)."""
    depth = getattr(mapped, "depth", None)
    return int(depth()) if depth is not None else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def symbol_dicts(symbols: Any) -> list[dict[str, Any]]:
    """The symbol configs as the attach reply carries them (id = position)."""
    return [{"symbol_id": i, **asdict(s)} for i, s in enumerate(symbols)]
