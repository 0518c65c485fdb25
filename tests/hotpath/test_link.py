"""One link acting for many accounts (pt_loop_grant; the control plane's attach with ``accounts``): commands
name their account and are checked against the link's grant, events of every granted account come back on the
link, and cancel-on-disconnect covers every account the link held."""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from c_engine import EngineConfig, Event, EventType, Flag, Liquidity, Op, RejectReason, Side
from hotpath import AsyncClient, Client, ControlClient, ControlError
from hotpath.journal import read_commands

from conftest import WAIT_S, EngineRun

ACCOUNTS = 1000
BIG = EngineConfig(max_orders=1 << 14, max_levels_per_side=1 << 10, max_symbols=8, max_clients=ACCOUNTS + 100)


@pytest.mark.engine_config(clients=(), engine=BIG, journal=True)
def test_one_link_trades_for_a_thousand_accounts_and_each_position_equals_its_fills(engine_run: EngineRun) -> None:
    accounts = list(range(10, 10 + ACCOUNTS))

    async def main() -> tuple[list[dict[str, Any]], collections.Counter[int], Event]:
        async with await AsyncClient.connect(1, endpoint=engine_run.config.endpoint, accounts=accounts) as link:
            assert sorted(link.accounts.values()) == [1, *accounts]
            # Account a sells 1 + a % 3 lots at 100 + a % 5, account a + 1 takes them: 500 trades between pairs.
            for seller in accounts[::2]:
                ack = await link.submit("TEST", "sell", 1 + seller % 3, 100 + seller % 5, account=seller)
                assert ack.type == EventType.ACK and ack.client_id == seller
                take = await link.submit("TEST", "buy", 1 + seller % 3, 100 + seller % 5, tif="IOC",
                                         account=seller + 1)  # fmt: skip
                assert take.type == EventType.ACK and take.client_id == seller + 1
            outside = await link.submit("TEST", "buy", 1, 90, account=5)  # not granted
            await link.mass_cancel()  # the link's own account: nothing of the others
            fills: collections.Counter[int] = collections.Counter()
            while link.buffered:
                async for event in link.events():
                    if event.type == EventType.FILL:
                        fills[event.client_id] += event.qty if event.side == Side.BUY else -event.qty
                    if not link.buffered:
                        break
            positions = [await link.request("position", client=a, symbol="TEST") for a in accounts]
            return positions, fills, outside

    positions, fills, outside = asyncio.run(asyncio.wait_for(main(), 60))
    assert {p["client"]: p["position"] for p in positions} == {a: fills[a] for a in accounts}
    assert sum(1 for a in accounts if fills[a]) == ACCOUNTS
    assert (outside.type, outside.reason, outside.client_id) == (EventType.REJECT, RejectReason.NOT_GRANTED, 5)
    engine_run.terminate()
    records = read_commands(engine_run.config.journal_path or "")
    flagged = records[(records["flags"] & Flag.NOT_GRANTED) != 0]
    assert flagged[["op", "client_id"]].tolist() == [(Op.NEW, 5)]  # journaled with the loop's verdict


@pytest.mark.engine_config(clients=(), engine=BIG)
def test_an_account_is_held_by_one_link_or_client_at_a_time(engine_run: EngineRun) -> None:
    endpoint = engine_run.config.endpoint
    with Client(1, endpoint=endpoint, accounts=[20, 21]) as link:
        for holder, accounts in ((21, ()), (2, (3, 20))):
            with pytest.raises(ControlError) as err:
                Client(holder, endpoint=endpoint, accounts=list(accounts), timeout_s=2.0)
            assert err.value.code == "ALREADY_ATTACHED"
        link.submit("TEST", "sell", 1, 101, account=21)
        (ack,) = link.wait_events(1)
        assert (ack.type, ack.client_id) == (EventType.ACK, 21)
        with Client(2, endpoint=endpoint) as other:  # an id nobody holds
            other.submit("TEST", "buy", 1, 101)
            got = other.wait_events(2)
        assert [e.type for e in got] == [EventType.ACK, EventType.FILL]
        maker_fill = link.wait_events(1)[0]  # the maker's FILL reaches the link of account 21
        assert (maker_fill.type, maker_fill.client_id, maker_fill.liquidity) == (EventType.FILL, 21, Liquidity.MAKER)


@pytest.mark.engine_config(clients=(), engine=BIG)
def test_sigkill_of_the_linking_process_cancels_every_granted_accounts_orders_and_nothing_else(
    engine_run: EngineRun,
) -> None:
    endpoint = engine_run.config.endpoint
    code = textwrap.dedent(f"""
        import time
        from hotpath import Client
        link = Client(1, endpoint={endpoint!r}, accounts=list(range(100, 150)))
        for account in range(100, 150):
            link.submit("TEST", "buy", 1, 80 + account % 10, account=account)
            link.submit("TEST", "sell", 1, 120 + account % 10, account=account)
        link.wait_events(100)
        print("ready", flush=True)
        time.sleep(60)
    """)
    with Client(2, endpoint=endpoint) as other:
        other.submit("TEST", "buy", 1, 70)
        other.wait_events(1)
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            with ControlClient(endpoint) as ctl:
                assert len(ctl.request("snapshot", symbol="TEST", depth=100)["bids"]) == 11
                child.send_signal(signal.SIGKILL)
                child.wait(WAIT_S)
                deadline = time.monotonic() + WAIT_S
                while (book := ctl.request("snapshot", symbol="TEST", depth=100))[
                    "asks"
                ] and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert book["bids"] == [[70, 1, 1]] and book["asks"] == []  # only the other client's order is left
                assert ctl.request("stats")["disconnects"] == 1
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
