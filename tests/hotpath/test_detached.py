"""A client the engine detached (an operator, a missed heartbeat, a slow consumer) is told so: its next call raises
DetachedError within one heartbeat, instead of sending into rings nobody reads; and it never detaches whoever has
attached its id since."""

from __future__ import annotations

import asyncio
import time

import pytest

from c_engine import EventType
from hotpath import AsyncClient, Client, ControlClient, DetachedError
from hotpath.control_client import load_operator_key

from conftest import EngineRun

HEARTBEAT_TIMEOUT_S = 2.0  # heartbeats every 0.5 s


@pytest.mark.engine_config(clients=(), heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
def test_a_detached_client_gets_detached_error_and_leaves_the_next_holder_of_its_id_alone(
    engine_run: EngineRun,
) -> None:
    endpoint = engine_run.config.endpoint
    old = Client(7, endpoint=endpoint)
    old.submit("TEST", "buy", 1, 90)
    assert old.wait_events(1)[0].type == EventType.ACK
    with ControlClient(endpoint, operator_key=load_operator_key(prefix=engine_run.prefix)) as ctl:
        assert ctl.request("detach", client=7)["cancelled"] == 1  # an operator cuts it loose
        deadline = time.monotonic() + HEARTBEAT_TIMEOUT_S
        with pytest.raises(DetachedError, match="detached"):
            while time.monotonic() < deadline:  # within one heartbeat (0.5 s), with room for a busy machine
                old.submit("TEST", "buy", 1, 89)
                time.sleep(0.05)
        with pytest.raises(DetachedError):
            old.poll()
        with Client(7, endpoint=endpoint) as new:  # the id attaches again, in another attachment
            old.close()  # must not detach the new one
            assert [c["client"] for c in ctl.request("stats")["clients"]] == [7]
            new.submit("TEST", "buy", 1, 88)
            assert new.wait_events(1)[0].type == EventType.ACK


@pytest.mark.engine_config(clients=(), heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
def test_an_async_client_that_was_detached_fails_its_calls_with_detached_error(engine_run: EngineRun) -> None:
    async def main() -> None:
        client = await AsyncClient.connect(8, endpoint=engine_run.config.endpoint)
        with ControlClient(engine_run.config.endpoint, operator_key=load_operator_key(prefix=engine_run.prefix)) as ctl:
            ctl.request("detach", client=8)
        deadline = time.monotonic() + HEARTBEAT_TIMEOUT_S
        with pytest.raises(DetachedError):
            while time.monotonic() < deadline:
                await client.submit("TEST", "buy", 1, 90, timeout_s=0.2)
                await asyncio.sleep(0.05)
        await client.close()

    asyncio.run(asyncio.wait_for(main(), 30))
