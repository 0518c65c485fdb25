"""The control plane against a real engine process: attach and detach, heartbeats, cancel-on-disconnect when a
client process dies (even one stalling the loop on a full event ring), snapshots, bad requests.

Clients that must die are child processes (``_spawn_client``): they attach, rest orders, report on stdout,
then wait to be killed. Every wait has a deadline; the engine_run fixture (conftest.py) checks that nothing
is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from c_engine import Command, EventType, Flag, Op, Side
from hotpath.client import Client, EngineGoneError
from hotpath.control import MAX_REQUEST_BYTES, MAX_REQUEST_DEPTH
from hotpath.control_client import ControlClient, ControlError, load_operator_key
from hotpath.engine_control import EngineControl
from hotpath.journal import read_commands

from conftest import (  # tests/hotpath/conftest.py
    SHM,
    START_TIMEOUT_S,
    WAIT_S,
    EngineRun,
    new_config,
    processes_named,
    read_market_data,
)


def _wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.005)


def _spawn_client(run: EngineRun, client_id: int, orders: int, *, read_events: bool = True) -> subprocess.Popen[str]:
    """A child process that attaches ``client_id``, rests ``orders`` buys (prices 90, 89, ...), prints "ready"
    (after their ACKs if ``read_events``), then sleeps until killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from hotpath.client import Client
        c = Client({client_id}, endpoint={run.config.endpoint!r})
        for i in range({orders}):
            c.submit("TEST", "buy", 1, 90 - i % 50)
        if {read_events}:
            c.wait_events({orders})
        print("ready", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "ready", f"child said {line!r}"
    return child


def _snapshot(run: EngineRun) -> dict[str, Any]:
    with ControlClient(run.config.endpoint) as ctl:
        return ctl.request("snapshot", symbol="TEST", depth=50)


def _stats(run: EngineRun) -> dict[str, Any]:
    with ControlClient(run.config.endpoint) as ctl:
        return ctl.request("stats")


def test_attach_trade_detach_with_cancel_and_attach_again(engine_run: EngineRun) -> None:
    with Client(5, endpoint=engine_run.config.endpoint) as c:
        assert not c.static and c.symbols == {"TEST": 0}
        # mapped, then unlinked: no other process can open the pair by name while it is attached
        assert not [p for p in SHM.iterdir() if p.name.startswith(f"{engine_run.prefix}_c5_")]
        cloid = c.submit("TEST", "buy", 2, 99)
        ack = c.wait_events(1)[0]
        assert ack.type == EventType.ACK and ack.client_id == 5 and ack.cloid == cloid and ack.price == 99
        c.submit("TEST", "sell", 1, 101)
        c.wait_events(1)
        snap = c.snapshot("TEST")
        assert snap["bids"] == [[99, 2, 1]] and snap["asks"] == [[101, 1, 1]]
        assert snap["engine_seq"] == 4  # two ACKs and two BOOK_DELTAs
        assert [cl["client"] for cl in _stats(engine_run)["clients"]] == [1, 2, 5]
    # close() detached with cancel: both orders gone, the ring pair unlinked, the id free again
    assert _snapshot(engine_run)["bids"] == [] and _snapshot(engine_run)["asks"] == []
    assert not (SHM / f"{engine_run.prefix}_c5_cmd").exists()
    with Client(5, endpoint=engine_run.config.endpoint) as again:
        again.submit("TEST", "sell", 1, 100, cloid=77)
        assert again.wait_events(1)[0].cloid == 77


def test_detach_without_cancel_leaves_the_orders(engine_run: EngineRun) -> None:
    c = Client(6, endpoint=engine_run.config.endpoint)
    c.submit("TEST", "buy", 3, 98)
    c.wait_events(1)
    c.close(cancel=False)
    assert _snapshot(engine_run)["bids"] == [[98, 3, 1]]


def test_one_client_id_attaches_once(engine_run: EngineRun) -> None:
    with Client(5, endpoint=engine_run.config.endpoint):
        with pytest.raises(ControlError) as err:
            Client(5, endpoint=engine_run.config.endpoint)
        assert err.value.code == "ALREADY_ATTACHED"


def test_a_static_client_attaches_to_its_config_slot_one_process_at_a_time(engine_run: EngineRun) -> None:
    child = _spawn_client(engine_run, 1, orders=0)  # holds static slot 1 until killed
    with pytest.raises(ControlError) as err:
        Client(1, endpoint=engine_run.config.endpoint)  # two producers on one SPSC ring: refused
    assert err.value.code == "ALREADY_ATTACHED" and err.value.message.startswith("client 1 is attached")
    child.kill()
    child.wait(WAIT_S)
    with Client(1, endpoint=engine_run.config.endpoint) as c:  # its process is gone: the slot is free
        assert c.static
        c.send(Command.new(1, 0, Side.SELL, 1, 100, cloid=3))
        assert c.wait_events(1)[0].type == EventType.ACK
    with Client(1, endpoint=engine_run.config.endpoint) as c:  # and after a detach
        assert c.static
    assert _snapshot(engine_run)["asks"] == [[100, 1, 1]]  # a static slot's orders are never cancelled for it


def test_only_the_loop_thread_runs_on_the_engine_core(engine_run: EngineRun) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: every thread shares it")
    with Client(5, endpoint=engine_run.config.endpoint):  # control traffic: ZeroMQ's threads are up
        pass
    core = engine_run.config.core
    tasks = Path(f"/proc/{engine_run.proc.pid}/task")
    on_core = [t.name for t in tasks.iterdir() if core in os.sched_getaffinity(int(t.name))]
    assert on_core == [str(engine_run.proc.pid)], f"threads allowed on the engine's core {core}: {on_core}"


@pytest.mark.engine_config(journal=True)
def test_a_client_that_dies_has_its_orders_cancelled_and_others_do_not_notice(engine_run: EngineRun) -> None:
    other = engine_run.client(1)
    other.submit(Command.new(1, 0, Side.SELL, 4, 120, cloid=1))
    assert other.wait_events(1)[0].type == EventType.ACK
    with other.market_data() as md:
        reader = md.reader()
        child = _spawn_client(engine_run, 7, orders=3)
        assert len(_snapshot(engine_run)["bids"]) == 3
        child.kill()
        child.wait(WAIT_S)
        _wait_for(lambda: _snapshot(engine_run)["bids"] == [], "the dead client's orders were not cancelled")
        deltas = read_market_data(reader, 6)  # three levels made, then emptied by the cancel-on-disconnect
        assert [ev.qty for ev in deltas] == [1, 1, 1, 0, 0, 0]
    assert _snapshot(engine_run)["asks"] == [[120, 4, 1]]  # the other client's order is untouched
    assert _stats(engine_run)["disconnects"] == 1
    assert not (SHM / f"{engine_run.prefix}_c7_cmd").exists()
    other.submit(Command.new(1, 0, Side.SELL, 1, 121, cloid=2))  # the engine goes on
    assert other.wait_events(1)[0].cloid == 2
    other.close()
    assert engine_run.terminate() == 0
    # journaled like any command: a mass cancel of client 7 with the DISCONNECT flag, after its 3 orders
    assert engine_run.config.journal_path is not None
    journaled = read_commands(engine_run.config.journal_path)
    assert [(int(r["op"]), int(r["client_id"]), int(r["flags"])) for r in journaled[1:5]] == [
        (Op.NEW, 7, Flag.HAS_PRICE)
    ] * 3 + [(Op.MASS_CANCEL, 7, Flag.DISCONNECT)]


def test_a_dead_client_stalling_the_loop_on_its_full_event_ring_is_cut_loose(engine_run: EngineRun) -> None:
    # ring_capacity is 1024: 1500 orders whose ACKs (and deltas) it never reads fill its event ring
    child = _spawn_client(engine_run, 8, orders=1500, read_events=False)
    _wait_for(lambda: engine_run.control.counters()["stalls"] > 0, "the loop never stalled")
    other = engine_run.client(1)
    other.submit(Command.new(1, 0, Side.SELL, 1, 200, cloid=9))
    with pytest.raises(TimeoutError):
        other.wait_events(1, timeout_s=0.3)  # the live-but-not-reading client holds the loop
    child.kill()
    child.wait(WAIT_S)
    assert other.wait_events(1)[0].cloid == 9  # freed once the engine sees the exit
    _wait_for(lambda: engine_run.control.counters()["clients"] == 2, "the dead client's slot was not freed")
    assert engine_run.control.counters()["dropped"] > 0  # its events, the one it stalled on included
    _wait_for(lambda: _snapshot(engine_run)["bids"] == [], "the dead client's orders were not cancelled")
    other.close()


@pytest.mark.engine_config(heartbeat_timeout_s=0.5)
def test_a_client_that_stops_heartbeating_is_disconnected(engine_run: EngineRun) -> None:
    silent = Client(9, endpoint=engine_run.config.endpoint, heartbeat=False)
    beating = Client(10, endpoint=engine_run.config.endpoint)  # heartbeats every 0.125 s
    silent.submit("TEST", "buy", 1, 95)
    silent.wait_events(1)
    _wait_for(lambda: _snapshot(engine_run)["bids"] == [], "the silent client was not disconnected", 5.0)
    clients = [c["client"] for c in _stats(engine_run)["clients"]]
    assert 9 not in clients and 10 in clients
    silent.close()  # detach fails (NOT_ATTACHED): logged, not raised
    beating.close()


def test_bad_requests_get_typed_errors_and_change_nothing(engine_run: EngineRun) -> None:
    key = load_operator_key(prefix=engine_run.prefix)
    with ControlClient(engine_run.config.endpoint) as ctl:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("launch", {}, "BAD_REQUEST"),
            ("attach", {"client": -1}, "BAD_REQUEST"),
            ("attach", {"client": "7"}, "UNKNOWN_ACCOUNT"),  # a name, and no account has it
            ("attach", {"client": 7.0}, "BAD_REQUEST"),
            ("attach", {"client": 7, "pid": 2**22 + 12345}, "BAD_REQUEST"),  # no such process
            ("detach", {"client": 7}, "FORBIDDEN"),  # no token, no operator key
            ("detach", {"client": 7, "token": "ab" * 16}, "NOT_ATTACHED"),  # no attachment has that token
            ("detach", {"client": 7, "operator_key": key}, "NOT_ATTACHED"),
            ("detach", {"client": 1, "operator_key": key}, "STATIC"),
            ("heartbeat", {"client": 7}, "FORBIDDEN"),
            ("heartbeat", {"client": 7, "token": "ab" * 16}, "NOT_ATTACHED"),
            ("snapshot", {"symbol": "NOPE"}, "UNKNOWN_SYMBOL"),
            ("snapshot", {"symbol": "TEST", "depth": 0}, "BAD_REQUEST"),
        ]
        for op, fields, code in cases:
            with pytest.raises(ControlError) as err:
                ctl.request(op, **fields)
            assert err.value.code == code, (op, fields)
        assert [c["client"] for c in ctl.request("stats")["clients"]] == [1, 2]
    raw: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(engine_run.config.endpoint)
    raw.send(b"not json")
    assert raw.poll(int(WAIT_S * 1000))
    assert json.loads(raw.recv())["code"] == "BAD_REQUEST"
    raw.close(0)


def test_a_stopped_engine_leaves_no_socket_and_a_client_times_out(engine_run: EngineRun) -> None:
    c = Client(11, endpoint=engine_run.config.endpoint)
    engine_run.proc.send_signal(signal.SIGTERM)
    assert engine_run.proc.wait(WAIT_S) == 0
    c._ctl.timeout_s = 0.2
    c.close()  # the detach times out: logged; the rings' mappings are closed anyway
    with pytest.raises(TimeoutError):
        ControlClient(engine_run.config.endpoint, timeout_s=0.2).request("stats")


def test_a_client_that_dies_while_the_loop_is_stalled_on_another_is_cancelled_once_the_stall_ends(
    engine_run: EngineRun,
) -> None:
    """The control thread cannot pause a loop stalled on a live client's full event ring (BUSY after 2 s); it
    must survive that and retry, and the dead client's orders go once the live one reads again."""
    dead = _spawn_client(engine_run, 7, orders=3)
    stalling = engine_run.client(1)
    for i in range(1500):  # more ACKs and fills than its 1024-slot event ring holds, none read
        stalling.submit(Command.new(1, 0, Side.SELL, 1, 300 + i % 100, cloid=i + 1, ts_ns=i + 1))
    _wait_for(lambda: engine_run.control.counters()["stalls"] > 0, "the loop never stalled")
    dead.kill()
    dead.wait(WAIT_S)
    time.sleep(2.5)  # one pause attempt timed out meanwhile
    assert engine_run.control.counters()["clients"] == 3  # 1, 2 and the dead 7: not detached yet
    got = stalling.wait_events(1500, timeout_s=10)  # reading ends the stall
    assert len(got) == 1500
    _wait_for(lambda: engine_run.control.counters()["clients"] == 2, "the dead client was never detached", 10)
    assert _snapshot(engine_run)["bids"] == []  # its three buys are cancelled
    assert _stats(engine_run)["disconnects"] == 1  # and the control plane still answers
    stalling.close()


@pytest.mark.engine_config(slow_consumer_s=0.5)
def test_a_live_client_that_stops_reading_is_disconnected_as_a_slow_consumer(engine_run: EngineRun) -> None:
    slow = _spawn_client(engine_run, 8, orders=1500, read_events=False)  # alive, heartbeating, never reads
    try:
        _wait_for(lambda: engine_run.control.counters()["stalled_on"] == 8 + 1, "the loop never stalled on it")
        other = engine_run.client(1)
        other.submit(Command.new(1, 0, Side.SELL, 1, 200, cloid=9))
        assert other.wait_events(1, timeout_s=5)[0].cloid == 9  # served again within the slow-consumer timeout
        _wait_for(lambda: engine_run.control.counters()["clients"] == 2, "the slow client was not disconnected")
        assert engine_run.control.counters()["stalled_on"] == 0
        _wait_for(lambda: _snapshot(engine_run)["bids"] == [], "the slow client's orders were not cancelled")
        assert slow.poll() is None  # the process lives on; its next request gets NOT_ATTACHED
        other.close()
    finally:
        slow.kill()
        slow.wait(WAIT_S)


@pytest.mark.engine_config(ring_capacity=8)
def test_a_client_learns_at_once_that_the_engine_died(engine_run: EngineRun) -> None:
    from hotpath.client import EngineGoneError

    c = Client(5, endpoint=engine_run.config.endpoint)
    assert c.engine_pid == engine_run.proc.pid
    engine_run.proc.kill()
    engine_run.proc.wait(WAIT_S)
    t0 = time.monotonic()
    with pytest.raises(EngineGoneError):
        c.wait_events(1, timeout_s=30)
    for i in range(8):  # nobody takes them: the command ring fills
        c.send(Command.new(5, 0, Side.BUY, 1, 90, cloid=i + 1))
    with pytest.raises(EngineGoneError):
        c.send(Command.new(5, 0, Side.BUY, 1, 90, cloid=9), timeout_s=30)
    c.close()  # no engine to drain to or to detach from: quick
    assert time.monotonic() - t0 < 5.0  # each wait ended on the engine's death, not on its 30 s timeout


def _raw_request(endpoint: str, frames: list[bytes]) -> dict[str, Any]:
    """Sends ``frames`` as one message from a raw REQ socket; the reply's one JSON frame (TimeoutError if none)."""
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart(frames)
        if not sock.poll(int(WAIT_S * 1000)):
            raise TimeoutError(f"no reply to {len(frames)} frames of {[len(f) for f in frames]} bytes")
        reply = sock.recv_multipart()
        assert len(reply) == 1
        answer: dict[str, Any] = json.loads(reply[0])
        return answer
    finally:
        sock.close(0)


def _trade_once(run: EngineRun, client_id: int = 5) -> None:
    """A normal client attaches, rests an order (ACK), and detaches with cancel: the control plane serves."""
    with Client(client_id, endpoint=run.config.endpoint) as c:
        c.submit("TEST", "buy", 1, 97)
        assert c.wait_events(1)[0].type == EventType.ACK
    assert _snapshot(run)["bids"] == []


def test_a_request_of_two_frames_gets_bad_request_and_the_control_thread_lives(engine_run: EngineRun) -> None:
    reply = _raw_request(engine_run.config.endpoint, [b"{}", b"x"])
    assert reply["ok"] is False and reply["code"] == "BAD_REQUEST" and "one frame" in reply["error"]
    _trade_once(engine_run)


def test_a_request_nested_too_deep_to_decode_gets_bad_request_and_the_control_thread_lives(
    engine_run: EngineRun,
) -> None:
    endpoint = engine_run.config.endpoint
    reply = _raw_request(endpoint, [b"[" * 100_000])  # longer than the limit: refused before decoding
    assert reply["code"] == "BAD_REQUEST" and str(MAX_REQUEST_BYTES) in reply["error"]
    reply = _raw_request(endpoint, [b"[" * (MAX_REQUEST_BYTES - 1)])  # the decoder's RecursionError
    assert reply["code"] == "BAD_REQUEST" and reply["error"] == "not JSON"
    deep = b'{"op": "stats", "x": ' + b"[" * MAX_REQUEST_DEPTH + b"]" * MAX_REQUEST_DEPTH + b"}"
    reply = _raw_request(endpoint, [deep])  # valid JSON, one level deeper than allowed
    assert reply["code"] == "BAD_REQUEST" and "levels deep" in reply["error"]
    padded = json.dumps({"op": "stats", "pad": "x" * MAX_REQUEST_BYTES}).encode()
    assert _raw_request(endpoint, [padded])["code"] == "BAD_REQUEST"
    assert _raw_request(endpoint, [b'{"op": "stats"}'])["ok"] is True
    _trade_once(engine_run)


def test_an_attach_whose_pid_is_a_thread_but_not_a_process_gets_bad_request(engine_run: EngineRun) -> None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)  # ZeroMQ's I/O thread runs from here on
    sock.close(0)
    thread = next(int(t) for t in os.listdir("/proc/self/task") if int(t) != os.getpid())
    with ControlClient(engine_run.config.endpoint) as ctl:
        with pytest.raises(ControlError) as err:
            ctl.request("attach", client=7, pid=thread)
        assert err.value.code == "BAD_REQUEST" and err.value.message.startswith(f"pid {thread} is not a process id")
    _trade_once(engine_run)


def test_a_control_thread_that_dies_stops_the_engine_process_with_an_error(tmp_path: Path) -> None:
    """A bug that kills the control thread (made here by a patched check that raises after a "die" request)
    stops the loop: the client sees EngineGoneError, the process exits non-zero and logs why, and nothing of
    the run is left behind."""
    config = new_config()
    code = textwrap.dedent("""
        import sys
        from hotpath import control, engine_process

        handle, dying = control.ControlServer.handle, []

        def patched_handle(self, request):
            if isinstance(request, dict) and request.get("op") == "die":
                dying.append(True)
                return {"ok": True}
            return handle(self, request)

        def patched_check(self):
            if dying:
                raise RuntimeError("a bug in the control thread")

        control.ControlServer.handle = patched_handle
        control.ControlServer._check_slow_consumer = patched_check
        sys.exit(engine_process.main(sys.argv[1:]))
    """)
    log = tmp_path / "engine.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, config.to_json()], stderr=err)
    try:
        EngineControl(config.prefix, START_TIMEOUT_S).close()
        c = Client(5, endpoint=config.endpoint)
        c.submit("TEST", "buy", 1, 97)
        assert c.wait_events(1)[0].type == EventType.ACK
        with ControlClient(config.endpoint) as ctl:
            ctl.request("die")
        assert proc.wait(WAIT_S) != 0
        with pytest.raises(EngineGoneError):
            c.wait_events(1, timeout_s=WAIT_S)
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT_S)
    text = log.read_text()
    assert "the control thread died" in text and "RuntimeError: a bug in the control thread" in text, text
    assert not [p for p in SHM.iterdir() if p.name.startswith(config.prefix + "_")]
    assert not processes_named(config.prefix)
