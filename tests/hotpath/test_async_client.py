"""AsyncClient (hotpath/async_client.py) against a real engine process: awaited responses, the event iterator,
many requests in flight from many tasks, back-pressure on a full ring, and the engine's death."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from c_engine import CancelReason, Event, EventType, Op, RejectReason
from hotpath.async_client import AsyncClient
from hotpath.client import EngineGoneError

from conftest import WAIT_S, EngineRun

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.engine_config(clients=(), accounts=(("mm_1", 5),))
def test_each_request_returns_its_response_and_events_come_in_engine_order(engine_run: EngineRun) -> None:
    async def main() -> tuple[list[Event], list[Event]]:
        async with await AsyncClient.connect("mm_1", endpoint=engine_run.config.endpoint) as client:
            assert (client.client_id, client.account) == (5, "mm_1")
            ack = await client.submit("TEST", "buy", 2, 90)
            modified = await client.modify(ack.order_id, symbol="TEST", qty=1)
            canceled = await client.cancel(ack.order_id)
            reject = await client.cancel(ack.order_id)  # already gone
            await client.submit("TEST", "sell", 1, 95)
            mass = await client.mass_cancel()
            seen = []
            async for event in client.events():
                seen.append(event)
                if len(seen) == 7:
                    break
            return [ack, modified, canceled, reject, mass], seen

    (ack, modified, canceled, reject, mass), seen = run(main)
    assert (ack.type, ack.cloid, ack.qty) == (EventType.ACK, 1, 2)
    assert (modified.type, modified.order_id, modified.qty) == (EventType.MODIFIED, ack.order_id, 1)
    assert (canceled.type, canceled.reason) == (EventType.CANCELED, CancelReason.USER)
    assert (reject.type, reject.reason) == (EventType.REJECT, RejectReason.UNKNOWN_ORDER)
    assert (mass.type, mass.qty) == (EventType.ACK, 1)  # one order cancelled
    assert [e.type for e in seen] == [EventType.ACK, EventType.MODIFIED, EventType.CANCELED, EventType.REJECT,
                                      EventType.ACK, EventType.CANCELED, EventType.ACK]  # fmt: skip
    assert [e.seq for e in seen] == sorted(e.seq for e in seen)


@pytest.mark.engine_config(clients=(), ring_capacity=16)
def test_many_tasks_in_flight_each_get_their_own_response_through_a_small_ring(engine_run: EngineRun) -> None:
    orders = 2000

    async def main() -> tuple[list[Event], int]:
        async with await AsyncClient.connect(7, endpoint=engine_run.config.endpoint) as client:
            ticks = 0
            done = asyncio.Event()

            async def ticker() -> None:  # runs only if nothing blocks the event loop
                nonlocal ticks
                while not done.is_set():
                    ticks += 1
                    await asyncio.sleep(0)

            tick_task = asyncio.create_task(ticker())
            # A 16-slot ring and 2,000 submits at once: most wait for room (back-pressure), none is lost.
            acks = await asyncio.gather(*(client.submit("TEST", "buy", 1, 50 + i % 40, cloid=i + 1)
                                          for i in range(orders)))  # fmt: skip
            done.set()
            await tick_task
            await client.mass_cancel()
            return list(acks), ticks

    acks, ticks = run(main)
    assert [a.cloid for a in acks] == list(range(1, orders + 1))
    assert all(a.type == EventType.ACK for a in acks)
    assert ticks > 10


@pytest.mark.engine_config(clients=())
def test_a_waiting_request_and_the_event_iterator_fail_at_once_when_the_engine_dies(engine_run: EngineRun) -> None:
    async def main() -> float:
        client = await AsyncClient.connect(9, endpoint=engine_run.config.endpoint)
        await client.submit("TEST", "buy", 1, 90)
        engine_run.proc.kill()
        engine_run.proc.wait(WAIT_S)
        t0 = time.monotonic()
        with pytest.raises(EngineGoneError):
            await client.cancel(1)  # never answered: the drain notices the engine is gone
        with pytest.raises(EngineGoneError):
            async for _ in client.events():
                pass
        await client.close()
        return time.monotonic() - t0

    assert run(main) < 2.0


@pytest.mark.engine_config(clients=())
def test_execute_returns_every_event_of_the_command_up_to_the_one_flagged_last(engine_run: EngineRun) -> None:
    async def main() -> tuple[list[Event], list[Event], list[Event]]:
        async with await AsyncClient.connect(3, endpoint=engine_run.config.endpoint) as maker, \
                await AsyncClient.connect(4, endpoint=engine_run.config.endpoint) as taker:  # fmt: skip
            for price in (100, 101):
                await maker.submit("TEST", "sell", 2, price)
            # Buys 5 up to 101: takes 2 at 100 and 2 at 101, and 1 rests: nothing more of it comes after.
            order, _ = taker.new_order("TEST", "buy", 5, 101, "limit", None, False, "NONE", None, None)
            sweep = await taker.execute(order)
            rejected = await taker.execute(taker.cancel_command(999, None))
            resting = await taker.execute(taker.new_order("TEST", "buy", 1, 90, "limit", None, False, "NONE", None,
                                                          None)[0])  # fmt: skip
            return sweep, rejected, resting

    sweep, rejected, resting = run(main)
    assert [(e.type, e.qty) for e in sweep] == [(EventType.ACK, 5), (EventType.FILL, 2), (EventType.FILL, 2)]
    assert [e.last for e in sweep] == [False, False, True] and sweep[-1].leaves == 1
    assert [(e.type, e.last) for e in rejected] == [(EventType.REJECT, True)]
    assert [(e.type, e.last) for e in resting] == [(EventType.ACK, True)]


@pytest.mark.engine_config(clients=())
def test_an_operators_ack_on_the_ring_is_not_taken_for_the_response_to_a_request(engine_run: EngineRun) -> None:
    from hotpath import ControlClient
    from hotpath.control_client import load_operator_key

    key = load_operator_key(prefix=engine_run.prefix)

    async def main() -> tuple[Event, list[Event]]:
        async with await AsyncClient.connect(6, endpoint=engine_run.config.endpoint) as client:
            with ControlClient(engine_run.config.endpoint, operator_key=key) as ctl:  # an operator's op
                ctl.request("kill_reset", client=6)  # blocks the loop: its ACK waits on the ring, unread
            ack = await client.submit("TEST", "buy", 1, 90, cloid=77)
            seen = [event async for event in _take(client, 2)]
            return ack, seen

    ack, seen = run(main)
    assert (ack.type, ack.acked_op, ack.cloid) == (EventType.ACK, Op.NEW, 77)
    assert [e.acked_op for e in seen] == [Op.KILL_RESET, Op.NEW]  # both reached the iterator, in order


async def _take(client: AsyncClient, n: int) -> AsyncIterator[Event]:
    count = 0
    async for event in client.events():
        yield event
        count += 1
        if count == n:
            return
