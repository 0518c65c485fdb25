"""The control plane under random requests, against a real engine process: whatever a REQ socket sends, the
control thread answers it (``"ok": true`` or a typed error, never INTERNAL) and keeps serving.

Each request is one REQ message of 1 to 4 frames (ZeroMQ sends no empty message) of 0 to 200 KiB: JSON
objects naming known and unknown ops with known and random fields of random types (attach and detach of
random clients included), other JSON values, nesting from a few levels to far past the decoder's recursion
limit, truncated JSON and random bytes. A request never names :data:`FINAL_CLIENT`: at the end a normal
``Client`` attaches as it, trades and detaches, on an engine the requests may have halted (so the symbol is
resumed first).

Request ``i`` of seed ``s`` is drawn from ``random.Random((s << 32) + i)`` alone, so a failure, which prints
the seed, the index and the request, replays by itself. ``PROPTRADE_CONTROL_FUZZ_SEED`` sets the seed; the
normal suite sends :data:`QUICK_REQUESTS`, ``make fuzz`` (``pytest -m slow``) :data:`LONG_REQUESTS` (13 s
to 30 s on two cores, by load: too long for the suite).
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import pytest
import zmq

from c_engine import EventType
from hotpath.client import Client
from hotpath.control import MAX_REQUEST_BYTES, MAX_REQUEST_DEPTH
from hotpath.control_client import ControlClient, load_operator_key

from conftest import WAIT_S, EngineRun  # tests/hotpath/conftest.py

SEED = int(os.environ.get("PROPTRADE_CONTROL_FUZZ_SEED", "20261207"))
QUICK_REQUESTS = 5_000
LONG_REQUESTS = 100_000
#: The client id the end of the test attaches: no request names it (as client, or in an attach's accounts).
FINAL_CLIENT = 5
#: Every code a refused request may get; INTERNAL (a bug in a handler) fails the test.
CODES = {"BAD_REQUEST", "UNKNOWN_ACCOUNT", "UNKNOWN_SYMBOL", "INVALID_LIMIT", "ALREADY_ATTACHED", "NOT_ATTACHED",
         "STATIC", "NO_SLOT", "BUSY", "STOPPED", "FORBIDDEN", "RATE_LIMITED"}  # fmt: skip
#: Stands for the run's operator key in a drawn request (it differs per run), replaced when it is sent, so
#: operator ops run too and request ``i`` of a seed is still the same bytes but for the key.
KEY_SLOT = "K" * 64
#: Each op and the fields it reads (docs/HOTPATH.md, "Control plane"); a request names them more often than others.
LIMITS = ["max_order_qty", "max_open_orders", "max_position", "rate_per_s", "rate_burst", "max_loss"]
OPS: dict[str, list[str]] = {
    "attach": ["client", "pid", "accounts"],
    "detach": ["client", "cancel", "pid"],
    "heartbeat": ["client"],
    "snapshot": ["symbol", "depth"],
    "stats": [],
    "position": ["client", "symbol"],
    "symbols": [],
    "state_hash": [],
    "kill_reset": ["client"],
    "kill": ["client"],
    "halt": ["symbol"],
    "resume": ["symbol"],
    "set_limits": ["client", *LIMITS],
}
FIELDS = sorted({name for fields in OPS.values() for name in fields})
MAX_FRAME = 200 * 1024


def _thread_ids() -> list[int]:
    """This process's threads but its first (ZeroMQ's at least): ids that are no process's."""
    return sorted(int(t) for t in os.listdir("/proc/self/task") if int(t) != os.getpid())


def _int(rng: random.Random) -> int:
    kind = rng.random()
    if kind < 0.5:
        return rng.randint(-3, 70)  # client ids, depths, and just past them
    if kind < 0.8:
        return rng.choice([-1, 1]) * (1 << rng.randint(0, 80)) + rng.randint(-1, 1)  # around powers of two
    return rng.randint(-(10**30), 10**30)


def _str(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return rng.choice(["TEST", "test", "", "0", "mm_1", "NOPE", "attach", "\x00", "é", "\ud800"])
    alphabet = 'abcXYZ019 _-"\\/\x00\x1f\u00e9\u20ac\U0001f600\ud800'
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def _value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value, nested up to a few levels past MAX_REQUEST_DEPTH."""
    kind = rng.randrange(9 if depth < MAX_REQUEST_DEPTH + 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind in (2, 3):
        return _int(rng)
    if kind == 4:
        return rng.choice([0.0, -0.0, 1.5, 5.0, 1e308, float("inf"), float("-inf"), float("nan"), rng.random()])
    if kind in (5, 6):
        return _str(rng)
    if kind == 7:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_str(rng): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _nested(rng: random.Random) -> bytes:
    """Nesting from shallow to far past the decoder's recursion limit, closed or not, sometimes in a request."""
    n = int(10 ** rng.uniform(0, 5))  # 1 .. 100 000 levels
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    body = opener * n + b"1" + closer * (n if rng.random() < 0.5 else rng.randrange(n + 1))
    return b'{"op": "stats", "x": ' + body + b"}" if rng.random() < 0.3 else body


def _scrub(request: dict[str, Any]) -> None:
    """Keeps the request off FINAL_CLIENT."""
    if type(request.get("client")) is int and request["client"] == FINAL_CLIENT:
        request["client"] = FINAL_CLIENT + 1
    if isinstance(request.get("accounts"), list):
        request["accounts"] = [a for a in request["accounts"] if not (type(a) is int and a == FINAL_CLIENT)]


def _object(rng: random.Random) -> dict[str, Any]:
    """A request object: a known op (mostly) with known and random fields of random types."""
    request: dict[str, Any] = {}
    kind = rng.random()
    if kind < 0.8:
        request["op"] = rng.choice(sorted(OPS))
    elif kind < 0.95:
        request["op"] = _str(rng)
    elif kind < 0.98:
        request["op"] = _value(rng)
    own = OPS.get(request["op"], []) if isinstance(request.get("op"), str) else []
    names = [name for name in own if rng.random() < 0.8] + rng.sample(FIELDS, rng.randrange(3))
    for name in names:
        plausible = rng.random() < 0.7
        if name == "client" and plausible:
            request[name] = rng.randrange(-1, 66)
        elif name == "accounts" and plausible:
            request[name] = [rng.choice([rng.randrange(66), _str(rng)]) for _ in range(rng.randrange(4))]
        elif name == "pid" and plausible:
            request[name] = rng.choice([1, os.getpid(), *_thread_ids(), rng.randrange(1, 1 << 22)])
        elif name == "symbol" and plausible:
            request[name] = rng.choice(["TEST", 0])
        elif name == "cancel" and plausible:
            request[name] = rng.random() < 0.5
        elif name in ("depth", *LIMITS) and plausible:
            request[name] = _int(rng)
        else:
            request[name] = _value(rng)
    for _ in range(rng.randrange(3) if rng.random() < 0.3 else 0):
        request[_str(rng)] = _value(rng)
    if rng.random() < 0.3:
        request["operator_key"] = KEY_SLOT if rng.random() < 0.8 else _value(rng)
    _scrub(request)
    return request


def _frame(rng: random.Random) -> bytes:
    """One frame: a request object (sometimes padded past the size limit, or cut short), another JSON value,
    deep nesting, or random bytes."""
    kind = rng.random()
    if kind < 0.6:
        data = json.dumps(_object(rng)).encode()
        if rng.random() < 0.05:  # cut short
            data = data[: rng.randrange(len(data) + 1)]
        return data
    if kind < 0.65:  # a request padded to around the limit or past it
        target = rng.choice([MAX_REQUEST_BYTES - 1, MAX_REQUEST_BYTES, MAX_REQUEST_BYTES + 1, MAX_FRAME])
        head = json.dumps(_object(rng))[:-1]
        pad = max(0, target - len(head) - len(', "pad": ""}'))
        return (head + (", " if head != "{" else "") + '"pad": "' + "x" * pad + '"}').encode()
    if kind < 0.75:
        return json.dumps(_value(rng)).encode()
    if kind < 0.85:
        return _nested(rng)
    size = min(MAX_FRAME, int(2 ** rng.uniform(0, 17.7)) - 1)  # log-uniform, 0 .. 200 KiB
    return rng.randbytes(size)


def request_frames(seed: int, index: int) -> list[bytes]:
    """Request ``index`` of ``seed``: 1 frame mostly, else 2 to 4 (each any kind of frame)."""
    rng = random.Random((seed << 32) + index)
    count = 1 if rng.random() < 0.85 else rng.randint(2, 4)
    return [_frame(rng) for _ in range(count)]


def _describe(seed: int, index: int, frames: list[bytes]) -> str:
    shown = [f[:300] + (b"..." if len(f) > 300 else b"") for f in frames]
    return (f"request {index} of PROPTRADE_CONTROL_FUZZ_SEED={seed}: {len(frames)} frames of "
            f"{[len(f) for f in frames]} bytes: {shown!r}")  # fmt: skip


def _check_reply(frames: list[bytes], reply: list[bytes]) -> None:
    assert len(reply) == 1, f"{len(reply)} reply frames"
    answer = json.loads(reply[0])
    assert isinstance(answer, dict) and type(answer.get("ok")) is bool, answer
    if not answer["ok"]:
        assert answer.get("code") in CODES and isinstance(answer.get("error"), str), answer
    if len(frames) != 1 or len(frames[0]) > MAX_REQUEST_BYTES:
        assert answer.get("code") == "BAD_REQUEST", answer


def fuzz_control_plane(run: EngineRun, seed: int, requests: int) -> None:
    """Sends ``requests`` random requests from one raw REQ socket, each answered within WAIT_S; then a normal
    client attaches, trades and detaches."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(run.config.endpoint)
    operator_key = load_operator_key(prefix=run.prefix)
    assert operator_key is not None and len(operator_key) == len(KEY_SLOT)
    refused: dict[str, int] = {}
    t0 = time.monotonic()
    try:
        for index in range(requests):
            frames = [f.replace(KEY_SLOT.encode(), operator_key.encode()) for f in request_frames(seed, index)]
            try:
                sock.send_multipart(frames)
                if not sock.poll(int(WAIT_S * 1000)):
                    raise TimeoutError(f"no reply within {WAIT_S} s")
                reply = sock.recv_multipart()
                _check_reply(frames, reply)
            except (AssertionError, TimeoutError, ValueError) as e:
                raise AssertionError(f"{_describe(seed, index, frames)}\n-> {e!r}") from e
            answer = json.loads(reply[0])
            key = "ok" if answer["ok"] else answer["code"]
            refused[key] = refused.get(key, 0) + 1
    finally:
        sock.close(0)
    print(f"seed {seed}: {requests} requests in {time.monotonic() - t0:.1f} s: {dict(sorted(refused.items()))}")
    with ControlClient(run.config.endpoint, operator_key=operator_key) as ctl:
        ctl.request("resume", symbol="TEST")  # a request may have halted it
    with Client(FINAL_CLIENT, endpoint=run.config.endpoint) as c:
        c.submit("TEST", "buy", 1, 97)
        assert c.wait_events(1)[0].type == EventType.ACK
        with ControlClient(run.config.endpoint) as ctl:
            assert FINAL_CLIENT in [cl["client"] for cl in ctl.request("stats")["clients"]]
            assert ctl.request("snapshot", symbol="TEST")["bids"] == [[97, 1, 1]]
    with ControlClient(run.config.endpoint) as ctl:
        assert ctl.request("snapshot", symbol="TEST")["bids"] == []  # detached with cancel


def test_the_control_thread_answers_random_requests_and_keeps_serving(engine_run: EngineRun) -> None:
    fuzz_control_plane(engine_run, SEED, QUICK_REQUESTS)


@pytest.mark.slow
def test_the_control_thread_answers_a_long_run_of_random_requests(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip(f"the long control-plane fuzz run ({LONG_REQUESTS} requests): make fuzz (pytest -m slow)")
    engine_run: EngineRun = request.getfixturevalue("engine_run")  # only now: a skipped run starts no engine
    fuzz_control_plane(engine_run, SEED + 1, LONG_REQUESTS)
