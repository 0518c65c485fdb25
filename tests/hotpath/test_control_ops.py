"""Operator ops of the control plane and `proptrade ctl`: each op that changes state runs as an engine command
through the loop, so it is journaled and a restart from the journal reproduces it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from c_engine import CancelReason, ClientLimits, Command, Event, EventType, Limit, Op, RejectReason, SymbolConfig
from hotpath.cli import main as proptrade
from hotpath.client import Client
from hotpath.journal import read_commands

from conftest import WAIT_S, EngineRun, Runs

LOSS_LIMITED = ((1, ClientLimits(max_loss=1)),)


def _ctl(endpoint: str, *args: str) -> tuple[int, dict[str, object]]:
    out = subprocess.run([sys.executable, "-m", "hotpath.cli", "ctl", "--endpoint", endpoint, *args],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    return out.returncode, json.loads(out.stdout) if out.stdout else {"stderr": out.stderr}


def _lose_money(endpoint: str) -> None:
    """Client 1 buys at 105 and sells at 100 to client 2: a loss of 5 past its max_loss of 1 fires its kill switch."""
    with Client(1, endpoint=endpoint) as loser, Client(2, endpoint=endpoint) as other:
        other.submit("TEST", "sell", 1, 105)
        other.wait_events(1)
        loser.submit("TEST", "buy", 1, 105)
        loser.wait_events(2)  # ACK, FILL
        other.submit("TEST", "buy", 1, 100)
        other.wait_events(1)
        loser.submit("TEST", "sell", 1, 100)
        loser.wait_events(2)  # ACK, FILL: the loss is realised and the switch fires
        loser.submit("TEST", "buy", 1, 90)
        assert loser.wait_events(1)[0].reason == RejectReason.KILL_SWITCH, "the kill switch did not fire"


@pytest.mark.engine_config(clients=())
def test_ctl_prints_the_reply_and_a_failed_request_as_json(engine_run: EngineRun) -> None:
    endpoint = engine_run.config.endpoint
    code, reply = _ctl(endpoint, "state_hash")
    assert code == 0 and reply["ok"] is True and isinstance(reply["state_hash"], int) and reply["commands"] == 0
    code, reply = _ctl(endpoint, "position", "client=7", "symbol=NOPE")
    assert code == 1 and reply == {"ok": False, "code": "UNKNOWN_SYMBOL", "error": "no symbol 'NOPE'"}
    assert proptrade(["ctl", "--endpoint", endpoint, "stats", "oops"]) == 2  # not FIELD=VALUE


def test_kill_reset_is_journaled_and_a_restart_from_the_journal_reproduces_it(runs: Runs) -> None:
    config, proc = runs.start(clients=(), limits=LOSS_LIMITED)
    _lose_money(config.endpoint)
    code, reply = _ctl(config.endpoint, "kill_reset", "client=1")
    assert code == 0 and reply["events"] == 1, reply  # its ACK
    with Client(1, endpoint=config.endpoint) as client:  # trades again
        client.submit("TEST", "buy", 1, 90)
        assert client.wait_events(1, WAIT_S)[0].type == EventType.ACK
    _, before = _ctl(config.endpoint, "state_hash")
    first = runs.stop(config, proc)
    records = read_commands(Path(config.journal_path or ""))
    resets = records[records["op"] == Op.KILL_RESET]
    assert resets["client_id"].tolist() == [1]
    config2, proc2 = runs.start(clients=(), limits=LOSS_LIMITED)
    _, after = _ctl(config2.endpoint, "state_hash")
    second = runs.stop(config2, proc2)
    assert second["recovered_state_hash"] == first["state_hash"] == before["state_hash"] == after["state_hash"]


def _order_events(endpoint: str, client_id: int, qty: int, price: int, symbol: str = "TEST") -> list[Event]:
    with Client(client_id, endpoint=endpoint) as client:
        client.submit(symbol, "buy", qty, price)
        events = client.wait_events(1, WAIT_S)
        client.mass_cancel()
        client.wait_events(1, WAIT_S)
    return events


def test_halt_kill_and_set_limits_are_journaled_and_a_restart_from_the_journal_reproduces_them(runs: Runs) -> None:
    symbols = (SymbolConfig("TEST"), SymbolConfig("OTHER"))
    config, proc = runs.start(clients=(), symbols=symbols)
    endpoint = config.endpoint
    with Client(3, endpoint=endpoint) as victim:
        victim.submit("TEST", "buy", 1, 90)
        victim.submit("OTHER", "buy", 1, 90)
        victim.wait_events(2, WAIT_S)
        code, killed = _ctl(endpoint, "kill", "client=3")
        assert code == 0 and killed == {"ok": True, "client": 3, "cancelled": 2}
        assert [e.reason for e in victim.wait_events(2, WAIT_S)] == [CancelReason.KILL_SWITCH] * 2
    assert _ctl(endpoint, "halt", "symbol=OTHER")[0] == 0
    code, limits = _ctl(endpoint, "set_limits", "client=4", "max_order_qty=5", "max_position=50")
    assert code == 0 and limits["limits"]["max_order_qty"] == 5 and limits["limits"]["max_position"] == 50  # type: ignore[index]
    code, refused = _ctl(endpoint, "set_limits", "client=4", "rate_per_s=10000000000")  # past INT64_MAX / 1e9
    assert code == 1 and refused["code"] == "INVALID_LIMIT"

    def behaviour(endpoint: str) -> tuple[object, ...]:
        return (
            _order_events(endpoint, 3, 1, 90)[0].reason,
            _order_events(endpoint, 4, 6, 90)[0].reason,
            _order_events(endpoint, 4, 5, 90, "OTHER")[0].reason,
            _order_events(endpoint, 5, 1, 90)[0].type,
        )

    expected = (RejectReason.KILL_SWITCH, RejectReason.RISK_MAX_ORDER_QTY, RejectReason.SYMBOL_HALTED, EventType.ACK)
    assert behaviour(endpoint) == expected
    first = runs.stop(config, proc)
    records = read_commands(Path(config.journal_path or ""))
    ops = [Op(op) for op in records["op"].tolist() if op >= Op.HALT]
    assert ops == [Op.KILL, Op.HALT, Op.SET_LIMIT, Op.SET_LIMIT, Op.SET_LIMIT]
    config2, proc2 = runs.start(clients=(), symbols=symbols)
    assert behaviour(config2.endpoint) == expected  # the recovered engine halts, kills and limits alike
    assert _ctl(config2.endpoint, "resume", "symbol=OTHER")[0] == 0
    assert _order_events(config2.endpoint, 4, 5, 90, "OTHER")[0].type == EventType.ACK
    second = runs.stop(config2, proc2)
    assert second["replayed"] == len(records) and first["state_hash"] == second["recovered_state_hash"]
    config3, proc3 = runs.start(clients=(), symbols=symbols)  # the resume, too, comes back from the journal
    assert _order_events(config3.endpoint, 4, 5, 90, "OTHER")[0].type == EventType.ACK
    third = runs.stop(config3, proc3)
    assert third["recovered_state_hash"] == second["state_hash"]


@pytest.mark.engine_config(clients=())
def test_a_client_cannot_send_an_operator_op_through_its_ring(engine_run: EngineRun) -> None:
    with Client(7, endpoint=engine_run.config.endpoint) as client:
        client.send(Command.halt(0))
        client.send(Command.set_limit(7, Limit.MAX_ORDER_QTY, 1))
        got = client.wait_events(2, WAIT_S)  # the loop stamped its client id on both: both come back
        assert [(e.type, e.reason, e.client_id) for e in got] == [(EventType.REJECT, RejectReason.NOT_GRANTED, 7)] * 2
        client.submit("TEST", "buy", 3, 90)  # neither took effect
        assert client.wait_events(1, WAIT_S)[0].type == EventType.ACK
