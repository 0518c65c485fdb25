"""The engine process: a real child process running the pinned C loop, with clients on its rings.

Each test starts `python -m hotpath.engine_process` pinned to the last core (it busy-spins there; this process
backs off with BackoffIdle), talks to it through EngineClient/EngineControl, then stops it. Every wait has a
deadline; the fixture kills the child if it outlives its SIGTERM and fails the test if a process or a
/dev/shm entry of the run is left behind.
"""

from __future__ import annotations

import time

import pytest

from c_engine import Command, Engine, Event, EventType, OrderType, RejectReason, Side
from hotpath._cloop import lib

from conftest import WAIT_S, EngineRun, new_config, read_market_data  # tests/hotpath/conftest.py

MD_TYPES = (EventType.BOOK_DELTA, EventType.TRADE)


def _reference_events(commands: list[Command]) -> list[Event]:
    """The in-process engine fed the same commands in the same order."""
    config = new_config()
    engine = Engine(config.engine)
    for sym in config.symbols:
        engine.add_symbol(sym)
    out: list[Event] = []
    for cmd in commands:
        out += engine.execute(cmd)
    return out


def test_the_loop_constants_match_the_header() -> None:
    assert lib.PT_LOOP_CONTROL_BYTES == 256 and lib.PT_LOOP_OFF_STOP == 64 and lib.PT_LOOP_OFF_COUNTERS == 128
    assert lib.PT_LOOP_MAX_CLIENTS == 64 and lib.PT_LOOP_CLIENT_BATCH == 32


def test_crossing_orders_route_acks_fills_and_rejects_like_the_in_process_engine(engine_run: EngineRun) -> None:
    sells = [
        Command.new(1, 0, Side.SELL, 5, 100, cloid=11, ts_ns=1000),
        Command.new(1, 0, Side.SELL, 3, 101, cloid=12, ts_ns=1001),
        Command.new(1, 0, Side.SELL, 0, 102, cloid=13, ts_ns=1002),  # qty 0: REJECT
    ]
    buys = [
        Command.new(2, 0, Side.BUY, 6, 101, cloid=21, ts_ns=2000),  # takes 5 @ 100 and 1 @ 101
        # a market order without IOC/FOK: REJECT
        Command.new(2, 0, Side.BUY, 2, None, order_type=OrderType.MARKET, cloid=22, ts_ns=2001),
    ]
    expected = _reference_events(sells + buys)
    per_client = {c: [e for e in expected if e.type not in MD_TYPES and e.client_id == c] for c in (1, 2)}
    md_expected = [e for e in expected if e.type in MD_TYPES]
    assert {e.type for e in expected} >= {EventType.ACK, EventType.REJECT, EventType.FILL, EventType.TRADE}

    with engine_run.client(1) as one, engine_run.client(2) as two, two.market_data() as md:
        reader = md.reader()
        for cmd in sells:
            one.submit(cmd)
        got_one = one.wait_events(3, WAIT_S)  # ACK, ACK, REJECT: all of client 1's own events come first
        for cmd in buys:
            two.submit(cmd)
        got_two = two.wait_events(len(per_client[2]), WAIT_S)
        got_one += one.wait_events(len(per_client[1]) - 3, WAIT_S)  # the maker FILLs
        md_got = read_market_data(reader, len(md_expected))
        time.sleep(0.05)
        assert one.poll_events() == [] and two.poll_events() == [] and reader.read() is None

    assert got_one == per_client[1]
    assert got_two == per_client[2]
    assert md_got == md_expected
    assert [e.type for e in got_one].count(EventType.FILL) == 2  # each maker order gets its own FILL
    assert any(e.type == EventType.REJECT and e.reason == RejectReason.MARKET_NOT_IOC_FOK for e in got_two)


def test_a_client_cannot_act_as_another_client(engine_run: EngineRun) -> None:
    with engine_run.client(1) as one, engine_run.client(2) as two:
        one.submit(Command.new(1, 0, Side.SELL, 5, 100, ts_ns=1))
        (ack,) = one.wait_events(1, WAIT_S)
        two.submit(Command.cancel(1, ack.order_id, ts_ns=2))  # claims to be client 1
        (reject,) = two.wait_events(1, WAIT_S)
        two.submit(Command.new(1, 0, Side.BUY, 1, 90, ts_ns=3))
        (ack2,) = two.wait_events(1, WAIT_S)
        time.sleep(0.05)
        assert one.poll_events() == []
    assert (reject.type, reject.reason, reject.client_id) == (EventType.REJECT, RejectReason.NOT_OWNER, 2)
    assert (ack2.type, ack2.client_id) == (EventType.ACK, 2)


def test_counters_are_live_and_the_stop_flag_ends_the_loop_and_cleans_up(engine_run: EngineRun) -> None:
    before = engine_run.control.counters()
    assert before["running"] == 1 and before["stop"] == 0
    with engine_run.client(1) as one:
        for i in range(10):
            one.submit(Command.new(1, 0, Side.BUY, 1, 50 + i, ts_ns=i + 1))
        one.wait_events(10, WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while engine_run.control.counters()["commands"] < 10 and time.monotonic() < deadline:
            time.sleep(0.001)
        after = engine_run.control.counters()
    assert after["commands"] == 10
    assert after["events"] >= 20  # an ACK and a BOOK_DELTA each
    assert after["iterations"] > before["iterations"] and after["idle_passes"] > before["idle_passes"]
    assert after["stalls"] == after["unrouted"] == 0
    engine_run.control.request_stop()
    assert engine_run.proc.wait(WAIT_S) == 0
    assert engine_run.segments() == set()


@pytest.mark.engine_config(ring_capacity=8)
def test_a_full_event_ring_stalls_the_loop_and_loses_nothing(engine_run: EngineRun) -> None:
    with engine_run.client(1) as one:
        for i in range(12):  # 8 ACKs fill the event ring; the 9th waits
            one.submit(Command.new(1, 0, Side.BUY, 1, 100 + i, cloid=i + 1, ts_ns=i + 1))
        deadline = time.monotonic() + WAIT_S
        while engine_run.control.counters()["stalls"] == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert engine_run.control.counters()["stalls"] > 0
        acks = one.wait_events(12, WAIT_S)
    assert [(e.type, e.cloid) for e in acks] == [(EventType.ACK, i + 1) for i in range(12)]


@pytest.mark.engine_config(ring_capacity=8)
def test_a_full_command_ring_back_pressures_the_client_and_loses_nothing(engine_run: EngineRun) -> None:
    from hotpath.ring import RingFullError

    with engine_run.client(1) as one, engine_run.client(2) as two:
        for i in range(12):  # client 1 reads nothing: 8 ACKs fill its event ring and the loop stalls
            one.submit(Command.new(1, 0, Side.BUY, 1, 100 + i, cloid=i + 1, ts_ns=i + 1))
        deadline = time.monotonic() + WAIT_S
        while engine_run.control.counters()["stalls"] == 0:
            assert time.monotonic() < deadline, "the loop never stalled"
            time.sleep(0.001)
        sells = [Command.new(2, 0, Side.SELL, 1, 200 + i, cloid=100 + i, ts_ns=100 + i) for i in range(20)]
        pushed = 0
        while two.commands.push(sells[pushed]):  # nobody takes client 2's commands now: its ring fills
            pushed += 1
        assert pushed == 8  # the ring's capacity: the ninth push is refused, nothing overwritten
        with pytest.raises(RingFullError):
            two.submit(sells[pushed], timeout_s=0.05)  # a bounded wait, then a clear error
        got_one = one.wait_events(12)  # client 1 reads: the loop runs again and drains client 2's ring
        got_two: list[Event] = []
        deadline = time.monotonic() + WAIT_S
        for cmd in sells[pushed:]:  # client 2 must read its own events meanwhile, or it stalls the loop itself
            while not two.commands.push(cmd):
                got_two += two.poll_events()
                assert time.monotonic() < deadline
        got_two += two.wait_events(len(sells) - len(got_two))
    assert [e.cloid for e in got_one] == list(range(1, 13))
    assert [(e.type, e.cloid) for e in got_two] == [(EventType.ACK, 100 + i) for i in range(20)]  # all, in order


def test_sigterm_stops_the_engine_and_leaves_no_process_or_segment(engine_run: EngineRun) -> None:
    assert len(engine_run.segments()) == 2 * len(engine_run.config.clients) + 2
    assert engine_run.processes() == [engine_run.proc.pid]
    assert engine_run.terminate() == 0
    assert engine_run.segments() == set()
    assert engine_run.processes() == []


def test_proptrade_stats_prints_the_live_counters_of_a_running_engine(
    engine_run: EngineRun, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotpath.cli import main

    client = engine_run.client(1)
    try:
        client.submit(Command.new(1, 0, Side.BUY, 1, 100, ts_ns=1))
        client.wait_events(1)
        client.submit(Command.new(1, 0, Side.BUY, 1, 99, ts_ns=2))  # its ACK is left unread in the ring
        deadline = time.monotonic() + WAIT_S
        while engine_run.control.counters()["commands"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert main(["stats", engine_run.prefix, "--interval", "0.05", "--count", "2"]) == 0
    finally:
        client.close()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(engine_run.prefix)]
    assert len(lines) == 2
    assert "commands 2" in lines[0] and "events" in lines[0] and "/s)" in lines[1]
    # ring depths from the rings themselves: client 1's unread ACK, two book deltas carried on market data
    assert "c1 cmd 0  c1 evt 1  c2 cmd 0  c2 evt 0  md published 2" in lines[0], lines[0]
    assert main(["stats"]) == 0  # every running engine: this one is among them
    assert engine_run.prefix in capsys.readouterr().out
