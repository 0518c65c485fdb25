"""Operator ops of the control plane and `proptrade ctl`: each op that changes state runs as an engine command
through the loop, so it is journaled and a restart from the journal reproduces it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from c_engine import ClientLimits, EventType, Op, RejectReason
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
