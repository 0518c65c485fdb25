"""The market-data bridge: md ring -> books -> ZeroMQ PUB, snapshot requests, gaps, overruns, idle cost.

Most tests drive ``Bridge.poll_once()`` from the test thread, so nothing races; the tests of ``run()`` use a
thread, the command-line tests a real process (SIGTERM/SIGINT, idle CPU). Endpoints are ipc:// sockets under
pytest's temporary directory; every wait has a deadline, and each test checks its /dev/shm segment is gone.
"""

from __future__ import annotations

import json
import random
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from c_engine import EVENT_DTYPE, Command, Event, EventType, Side
from hotpath.bcast import SharedMemoryBroadcast
from hotpath.bridge import Bridge, main
from hotpath.md_subscriber import BridgeRequestError, MarketDataSubscriber

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = {0: "AAA", 1: "BBB", 2: "AA"}  # "AA" is a prefix of "AAA": topics must still not mix
BUY, SELL = int(Side.BUY), int(Side.SELL)
TIMEOUT_S = 5.0


def delta(seq: int, symbol_id: int, side: int, price: int, qty: int, count: int) -> np.ndarray:
    row = np.zeros(1, EVENT_DTYPE)
    row["type"], row["seq"], row["ts_ns"] = EventType.BOOK_DELTA, seq, 1000 + seq
    row["symbol_id"], row["side"], row["price"], row["qty"], row["order_count"] = symbol_id, side, price, qty, count
    return row


def trade(seq: int, symbol_id: int, side: int, price: int, qty: int) -> np.ndarray:
    row = np.zeros(1, EVENT_DTYPE)
    row["type"], row["seq"], row["ts_ns"], row["symbol_id"], row["side"] = EventType.TRADE, seq, 7, symbol_id, side
    row["price"], row["qty"], row["trade_id"], row["order_id"], row["maker_order_id"] = price, qty, 9, 11, 12
    row["client_id"], row["maker_client"] = 3, 4
    return row


def rows(parts: list[np.ndarray]) -> np.ndarray:
    # Through bytes: np.concatenate repacks a dtype with overlapping fields (the wire's unions) into 94 bytes.
    return np.frombuffer(b"".join(p.tobytes() for p in parts), EVENT_DTYPE)


def wait_until(pred: Callable[[], bool], step: Callable[[], Any] | None = None, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        if step is not None:
            step()
        time.sleep(0.001)


@pytest.fixture
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    # A short directory: an ipc:// path must fit in sun_path (107 bytes), a test-named tmp_path may not.
    d = tmp_path_factory.mktemp("zmq")
    return f"ipc://{d}/pub", f"ipc://{d}/rep"


@pytest.fixture
def md(shm_name: str) -> Iterator[SharedMemoryBroadcast]:
    with SharedMemoryBroadcast.create(shm_name, 1024) as ring:
        yield ring


@pytest.fixture
def bridge(md: SharedMemoryBroadcast, endpoints: tuple[str, str]) -> Iterator[Bridge]:
    with Bridge(md.name, SYMBOLS, *endpoints, heartbeat_s=0.02) as b:
        yield b


@pytest.fixture
def subscriber(endpoints: tuple[str, str]) -> Iterator[MarketDataSubscriber]:
    with MarketDataSubscriber(*endpoints, ["AAA", "BBB"], snapshot_timeout_ms=2000) as s:
        yield s


@contextmanager
def running(bridge: Bridge) -> Iterator[None]:
    """Runs the bridge in a thread: a subscriber's snapshot request blocks until the bridge answers it."""
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(TIMEOUT_S)
    assert not thread.is_alive()


def connect(sub: MarketDataSubscriber) -> None:
    """Returns once the SUB connection carries messages (a heartbeat arrived): ZeroMQ joins are asynchronous."""
    wait_until(lambda: sub.received > 0, step=lambda: sub.poll(1))


def pump(sub: MarketDataSubscriber, done: Callable[[], bool]) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    wait_until(done, step=lambda: got.extend(sub.poll(1)))
    return got


SCRIPT = [  # (symbol, side, price, qty, count) deltas; the expected book follows
    (0, BUY, 100, 5, 1), (0, BUY, 99, 3, 1), (0, SELL, 101, 4, 2), (0, BUY, 100, 8, 2),
    (1, SELL, 50, 1, 1), (0, SELL, 102, 6, 1), (0, BUY, 99, 0, 0), (0, SELL, 101, 2, 1), (1, BUY, 48, 9, 3),
    (2, BUY, 7, 1, 1),
]  # fmt: skip
EXPECTED = {
    "AAA": {"bids": [[100, 8, 2]], "asks": [[101, 2, 1], [102, 6, 1]]},
    "BBB": {"bids": [[48, 9, 3]], "asks": [[50, 1, 1]]},
}


def publish_script(md: SharedMemoryBroadcast, first_seq: int = 1) -> None:
    md.publish_batch(rows([delta(first_seq + i, *d) for i, d in enumerate(SCRIPT)]))


def test_deltas_give_subscriber_and_bridge_the_expected_books(
    bridge: Bridge, subscriber: MarketDataSubscriber, md: SharedMemoryBroadcast
) -> None:
    with running(bridge):
        connect(subscriber)
        publish_script(md)
        got = pump(subscriber, lambda: subscriber.last_seq("AAA") == 7 and subscriber.last_seq("BBB") == 2)
    for name, book in EXPECTED.items():
        assert bridge.book(name).to_dict() == book
        assert subscriber.book(name).to_dict() == book
        assert subscriber.gaps(name) == 0
    assert bridge.book(2).to_dict() == {"bids": [[7, 1, 1]], "asks": []}
    assert all(m["symbol"] != "AA" for m in got)  # the prefix topic was filtered out


def test_each_topic_numbers_its_messages_from_one(
    bridge: Bridge, subscriber: MarketDataSubscriber, md: SharedMemoryBroadcast
) -> None:
    with running(bridge):
        connect(subscriber)
        publish_script(md)
        got = pump(subscriber, lambda: subscriber.last_seq("BBB") == 2 and subscriber.last_seq("AAA") == 7)
    aaa = [m for m in got if m["symbol"] == "AAA"]
    assert [m["seq"] for m in aaa] == list(range(1, 8))
    assert [m["engine_seq"] for m in aaa] == [1, 2, 3, 4, 6, 7, 8]
    assert aaa[0] == {"seq": 1, "engine_seq": 1, "type": "book_delta", "symbol": "AAA", "side": "buy",
                      "price": 100, "qty": 5, "order_count": 1, "ts_ns": 1001}  # fmt: skip
    assert [m["seq"] for m in got if m["symbol"] == "BBB"] == [1, 2]
    assert bridge.seq("AAA") == 7 and bridge.seq("BBB") == 2 and bridge.seq("AA") == 1


def test_trade_is_published_with_maker_and_taker_fields_and_leaves_the_book(
    bridge: Bridge, subscriber: MarketDataSubscriber, md: SharedMemoryBroadcast
) -> None:
    with running(bridge):
        connect(subscriber)
        md.publish_batch(rows([delta(1, 0, BUY, 100, 5, 1), trade(2, 0, SELL, 100, 2)]))
        got = pump(subscriber, lambda: subscriber.last_seq("AAA") == 2)
    assert got[-1] == {"seq": 2, "engine_seq": 2, "type": "trade", "symbol": "AAA", "side": "sell", "price": 100,
                       "qty": 2, "trade_id": 9, "maker_order_id": 12, "taker_order_id": 11, "maker_client": 4,
                       "taker_client": 3, "ts_ns": 7}  # fmt: skip
    assert bridge.book("AAA").to_dict() == {"bids": [[100, 5, 1]], "asks": []}


def test_snapshot_request_returns_book_to_depth_with_last_topic_seq(
    bridge: Bridge, subscriber: MarketDataSubscriber, md: SharedMemoryBroadcast
) -> None:
    publish_script(md)
    bridge.poll_once()
    with running(bridge):
        reply = subscriber.request_snapshot("AAA", depth=1)
    assert reply == {"symbol": "AAA", "seq": 7, "engine_seq": 8, "stale": False, "session": bridge.session,
                     "bids": [[100, 8, 2]], "asks": [[101, 2, 1]]}  # fmt: skip


def rep_round_trip(bridge: Bridge, endpoint: str, frames: list[bytes]) -> dict[str, Any]:
    ctx: zmq.Context[Any] = zmq.Context.instance()
    with ctx.socket(zmq.REQ) as req:
        req.setsockopt(zmq.LINGER, 0)
        req.connect(endpoint)
        req.send_multipart(frames)
        wait_until(lambda: bool(req.poll(0)), step=bridge.poll_once)
        reply: dict[str, Any] = json.loads(req.recv())
        return reply


@pytest.mark.parametrize(
    "frames, error",
    [
        ([b"not json"], "not JSON"),
        ([b"[1, 2]"], "JSON object"),
        ([b'{"op": "launch"}'], "unknown op"),
        ([b'{"op": "snapshot", "symbol": "ZZZ"}'], "unknown symbol"),
        ([b'{"op": "snapshot", "symbol": 0}'], "symbol name"),
        ([b'{"op": "snapshot", "symbol": "AAA", "depth": -1}'], "depth"),
        ([b'{"op": "snapshot", "symbol": "AAA", "depth": true}'], "depth"),
        ([b"\xff\xfe"], "not JSON"),
        ([b'{"op": "snapshot"}', b"extra"], "one frame"),
    ],
)
def test_malformed_request_is_answered_with_an_error_and_the_bridge_serves_on(
    bridge: Bridge, endpoints: tuple[str, str], frames: list[bytes], error: str
) -> None:
    assert error in rep_round_trip(bridge, endpoints[1], frames)["error"]
    assert rep_round_trip(bridge, endpoints[1], [b'{"op": "snapshot", "symbol": "BBB"}'])["seq"] == 0
    assert bridge.bad_requests == 1 and bridge.requests == 2


def test_stats_request_returns_the_counters(
    bridge: Bridge, endpoints: tuple[str, str], md: SharedMemoryBroadcast
) -> None:
    publish_script(md)
    stats = rep_round_trip(bridge, endpoints[1], [b'{"op": "stats"}'])
    assert stats["events_in"] == len(SCRIPT) and stats["overruns"] == 0


def test_late_subscriber_detects_the_gap_and_resyncs_from_a_snapshot(
    bridge: Bridge, md: SharedMemoryBroadcast, endpoints: tuple[str, str]
) -> None:
    publish_script(md)
    bridge.poll_once()
    with MarketDataSubscriber(*endpoints, ["AAA"]) as late, running(bridge):
        # The first message it sees (a heartbeat or a delta) carries seq >= 7: a gap, so it asks for a snapshot.
        got = pump(late, lambda: late.snapshots("AAA") >= 1)
        assert late.book("AAA").to_dict() == EXPECTED["AAA"] and late.gaps("AAA") >= 1
        assert got[0]["source"] == "request" and got[0]["seq"] == 7
        md.publish(delta(20, 0, BUY, 100, 0, 0).tobytes())
        pump(late, lambda: late.last_seq("AAA") == 8)
        assert late.book("AAA").to_dict() == {"bids": [], "asks": [[101, 2, 1], [102, 6, 1]]}


class DroppingSubscriber(MarketDataSubscriber):
    """Loses the messages whose payload seq is in ``drop`` (as a slow subscriber past its high-water mark)."""

    drop: set[int] = {3, 4}

    def _receive(self) -> list[bytes] | None:
        frames = super()._receive()
        if frames is not None and frames[0] == b"AAA" and json.loads(frames[1])["seq"] in self.drop:
            self.drop = self.drop - {json.loads(frames[1])["seq"]}
            return None
        return frames


def test_subscriber_that_loses_messages_mid_stream_resyncs_and_ends_equal(
    bridge: Bridge, md: SharedMemoryBroadcast, endpoints: tuple[str, str]
) -> None:
    with DroppingSubscriber(*endpoints, ["AAA"]) as sub:
        with running(bridge):
            connect(sub)
            publish_script(md)
            got = pump(sub, lambda: sub.last_seq("AAA") == 7)
        assert sub.gaps("AAA") == 1 and sub.snapshots("AAA") == 1
        assert [m["seq"] for m in got if m["symbol"] == "AAA"][:2] == [1, 2]
        assert sub.book("AAA").to_dict() == EXPECTED["AAA"] == bridge.book("AAA").to_dict()


def test_subscriber_notices_a_lost_tail_message_from_the_heartbeat(
    bridge: Bridge, md: SharedMemoryBroadcast, endpoints: tuple[str, str]
) -> None:
    sub = DroppingSubscriber(*endpoints, ["AAA"])
    with sub:
        sub.drop = {2}
        with running(bridge):
            connect(sub)
            md.publish_batch(rows([delta(1, 0, BUY, 100, 5, 1), delta(2, 0, BUY, 101, 1, 1)]))
            pump(sub, lambda: sub.snapshots("AAA") == 1)  # nothing follows seq 2 but a heartbeat
        assert sub.book("AAA").to_dict() == {"bids": [[101, 1, 1], [100, 5, 1]], "asks": []}


def test_subscriber_resyncs_when_the_bridge_restarts_and_numbers_from_one_again(
    md: SharedMemoryBroadcast, endpoints: tuple[str, str]
) -> None:
    with MarketDataSubscriber(*endpoints, ["AAA"]) as sub:
        with Bridge(md.name, SYMBOLS, *endpoints, heartbeat_s=0.02) as first, running(first):
            connect(sub)
            publish_script(md)
            pump(sub, lambda: sub.last_seq("AAA") == 7)
        with Bridge(md.name, SYMBOLS, *endpoints, heartbeat_s=0.02) as second, running(second):
            md.publish(delta(20, 0, SELL, 103, 1, 1).tobytes())  # seq 1 of the new run: "old" to the subscriber
            # Until a heartbeat shows the new session (and the delta is in, whichever came first).
            pump(sub, lambda: sub.snapshots("AAA") == 1 and 103 in sub.book("AAA").asks)
            assert sub.book("AAA").to_dict() == {"bids": [], "asks": [[103, 1, 1]]}
            assert sub.last_seq("AAA") == 1


def test_md_overrun_resyncs_books_from_snapshot_source_and_skips_covered_deltas(
    shm_name: str, endpoints: tuple[str, str]
) -> None:
    calls: list[int] = []

    def source(symbol_id: int) -> tuple[int, list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        calls.append(symbol_id)
        return 45, [(100, 10, 2), (98, 1, 1)], [(105, 3, 1)]

    with SharedMemoryBroadcast.create(shm_name, 16) as md, \
            Bridge(shm_name, {0: "AAA"}, *endpoints, snapshot_source=source, heartbeat_s=0.02) as bridge, \
            MarketDataSubscriber(*endpoints, ["AAA"]) as sub:  # fmt: skip
        assert calls == [0] and bridge.resyncs == 1  # the start-up snapshot
        with running(bridge):
            connect(sub)  # its first message (seq 1, after the start-up snapshot) is a gap: it syncs
            pump(sub, lambda: sub.snapshots("AAA") == 1)
        # The bridge is paused, so it is surely lapped: 40 messages in a ring of 16.
        md.publish_batch(rows([delta(i, 0, BUY, 200 + i, 1, 1) for i in range(1, 41)]))
        bridge.poll_once()
        assert bridge.overruns == 1 and bridge.lost_total > 0 and calls == [0, 0]
        assert bridge.book("AAA").to_dict() == {"bids": [[100, 10, 2], [98, 1, 1]], "asks": [[105, 3, 1]]}
        # After the resync the ring still carries events up to the snapshot's engine seq: already included.
        md.publish_batch(rows([delta(44, 0, BUY, 100, 0, 0), delta(45, 0, SELL, 105, 0, 0),
                               delta(46, 0, SELL, 104, 2, 1)]))  # fmt: skip
        with running(bridge):
            got = pump(sub, lambda: sub.last_seq("AAA") == 3)  # 2: the snapshot message, 3: the delta of seq 46
        assert bridge.skipped == 2
        expected = {"bids": [[100, 10, 2], [98, 1, 1]], "asks": [[104, 2, 1], [105, 3, 1]]}
        assert bridge.book("AAA").to_dict() == expected == sub.book("AAA").to_dict()
        assert [m["type"] for m in got if m.get("source") != "request"][-2:] == ["snapshot", "book_delta"]
        assert bridge.stats()["overruns"] == 1


def test_md_overrun_without_snapshot_source_marks_books_stale(shm_name: str, endpoints: tuple[str, str]) -> None:
    with SharedMemoryBroadcast.create(shm_name, 16) as md, \
            Bridge(shm_name, {0: "AAA"}, *endpoints) as bridge:  # fmt: skip
        md.publish_batch(rows([delta(i, 0, BUY, 200 + i, 1, 1) for i in range(1, 41)]))
        bridge.poll_once()
        assert bridge.overruns == 1 and bridge.resyncs == 0
        assert bridge.book("AAA").stale and bridge.snapshot("AAA")["stale"] is True
        assert bridge.seq("AAA") >= 1  # the "stale" notice took a seq
        with pytest.raises(BridgeRequestError):
            bridge.snapshot("AAA", depth=1.5)


def test_bridge_book_follows_a_real_engine_through_an_overrun(shm_name: str, endpoints: tuple[str, str]) -> None:
    from c_engine import Engine

    engine = Engine()
    ids = [engine.add_symbol(name) for name in ("AAA", "BBB")]
    rng = random.Random(7)
    live: list[int] = []

    def step() -> list[Event]:
        if live and rng.random() < 0.3:
            return engine.execute(Command.cancel(1, live.pop(rng.randrange(len(live)))))
        cmd = Command.new(rng.choice([1, 2]), rng.choice(ids), rng.choice([BUY, SELL]), rng.randint(1, 9),
                          rng.randint(95, 105))  # fmt: skip
        events = engine.execute(cmd)
        live.extend(e.order_id for e in events if e.type == EventType.ACK and e.client_id == 1)
        return events

    def source(symbol_id: int) -> tuple[int, Any, Any]:
        l2 = engine.l2(symbol_id)
        return engine.stats()["events"], l2["bids"], l2["asks"]  # the engine seq of its last event

    def run(md: SharedMemoryBroadcast, n: int) -> None:
        for _ in range(n):
            for ev in step():
                if ev.type in (EventType.BOOK_DELTA, EventType.TRADE):
                    md.publish(ev)

    def check(bridge: Bridge) -> None:
        for sid in ids:
            l2 = engine.l2(sid)
            want = {"bids": [list(lv) for lv in l2["bids"]], "asks": [list(lv) for lv in l2["asks"]]}
            assert bridge.book(sid).to_dict() == want

    with SharedMemoryBroadcast.create(shm_name, 64) as md, \
            Bridge(shm_name, {ids[0]: "AAA", ids[1]: "BBB"}, *endpoints, snapshot_source=source) as bridge:  # fmt: skip
        for _ in range(20):  # the bridge keeps up
            run(md, 10)
            while bridge.poll_once():
                pass
        check(bridge)
        assert bridge.overruns == 0
        run(md, 300)  # it falls more than 64 messages behind
        bridge.poll_once()
        assert bridge.overruns == 1
        check(bridge)
        for _ in range(20):
            run(md, 10)
            while bridge.poll_once():
                pass
        check(bridge)
        engine.check()


def test_run_stops_cleanly_and_releases_its_endpoints(md: SharedMemoryBroadcast, endpoints: tuple[str, str]) -> None:
    bridge = Bridge(md.name, SYMBOLS, *endpoints)
    stop = threading.Event()
    t = threading.Thread(target=bridge.run, args=(stop,))
    t.start()
    try:
        with MarketDataSubscriber(*endpoints, ["AAA"]) as sub:
            publish_script(md)
            wait_until(lambda: bridge.events_in == len(SCRIPT))
            assert sub.request_snapshot("AAA")["bids"] == [[100, 8, 2]]  # served while running
    finally:
        stop.set()
        t.join(TIMEOUT_S)
        bridge.close()
    assert not t.is_alive()
    Bridge(md.name, SYMBOLS, *endpoints).close()  # the same endpoints bind again: the sockets were closed


def test_bridge_binds_loopback_only(md: SharedMemoryBroadcast) -> None:
    with pytest.raises(ValueError, match="127.0.0.1"):
        Bridge(md.name, SYMBOLS, "tcp://0.0.0.0:5999", "tcp://127.0.0.1:5998")


# ---- the process: python -m hotpath.bridge -----------------------------------------------------------------


def read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        raise TimeoutError("bridge printed nothing")
    return proc.stdout.readline()


def cpu_s(pid: int) -> float:
    """CPU time of all the process's threads, in ns-precise scheduler time (/proc/stat ticks are 10 ms)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that just ended
            pass
    return total / 1e9


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_bridge_process_idles_under_5_percent_of_a_core_and_exits_0_on_signal(
    md: SharedMemoryBroadcast, endpoints: tuple[str, str], sig: signal.Signals
) -> None:
    cmd = [sys.executable, "-m", "hotpath.bridge", "--md", md.name, "--pub", endpoints[0], "--rep", endpoints[1],
           "--symbols", "0=AAA,1=BBB"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert read_line(proc, 20).startswith("ready")
        with MarketDataSubscriber(*endpoints, ["AAA"]) as sub:
            publish_script(md)
            wait_until(lambda: bool(sub.request_snapshot("AAA")["seq"] == 7))
        if sig == signal.SIGTERM:  # one measurement is enough; a resource bound, not a speed claim
            time.sleep(0.2)
            t0, c0 = time.monotonic(), cpu_s(proc.pid)
            time.sleep(1.0)
            share = (cpu_s(proc.pid) - c0) / (time.monotonic() - t0)
            print(f"idle bridge: {share:.1%} of a core")
            assert share < 0.05, f"idle bridge used {share:.1%} of a core"
        proc.send_signal(sig)
        assert proc.wait(TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()


def test_main_rejects_a_bad_symbol_list(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--md", "x", "--symbols", "AAA"])
    assert exc.value.code == 2
