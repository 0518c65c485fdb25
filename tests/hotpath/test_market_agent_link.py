"""``LinkEngine`` (hotpath/agents/market_link.py) against a real engine process: a command's own events up to its
LAST, other clients' fills handed over in engine order, batches larger than the ring, and a recorded day replayed
over the link leaving the book the in-process replay leaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from c_engine import COMMAND_DTYPE, Command, Engine, EngineConfig, Event, EventType, Side, Tif
from c_engine.lobster import symbol_config
from c_engine.lobster_synth import write_synthetic_day
from hotpath import Client
from hotpath.agents.market import main as market_main
from hotpath.agents.market_link import LinkEngine
from hotpath.agents.market_replay import LobsterMarket, parse_market

from conftest import EngineRun

BUY, SELL = int(Side.BUY), int(Side.SELL)
SYNTH = symbol_config("SYNTH", 100)
SMALL = EngineConfig(max_orders=1 << 14, max_levels_per_side=1 << 10, max_clients=64)


@pytest.mark.engine_config(clients=(), ring_capacity=64)
def test_execute_returns_its_own_events_and_hands_other_clients_fills_to_the_observer(engine_run: EngineRun) -> None:
    endpoint = engine_run.config.endpoint
    with Client(5, endpoint=endpoint) as market, Client(9, endpoint=endpoint) as other:
        link = LinkEngine(market)
        seen: list[Event] = []
        link.observer = seen.extend
        rested = link.execute(Command.new(5, 0, SELL, 10, 100, ts_ns=1))
        assert [e.type for e in rested] == [EventType.ACK] and rested[0].last
        other.send(Command.new(9, 0, BUY, 4, 100, tif=Tif.IOC))
        other.wait_events(2)  # its ACK and FILL (the engine routes the market's FILL before the next command)
        placed = link.execute(Command.new(5, 0, BUY, 1, 90))
        assert [e.type for e in placed] == [EventType.ACK] and placed[0].price == 90
        assert [(e.type, e.order_id, e.qty, e.aux) for e in seen] == [(EventType.FILL, rested[0].order_id, 4, 6)]
        assert placed[0].ts_ns != 1 and rested[0].ts_ns != 1  # stamped with the live clock, not the replay's time


@pytest.mark.engine_config(clients=(), ring_capacity=64)
def test_a_batch_larger_than_the_command_ring_goes_in_chunks_and_returns_every_event(engine_run: EngineRun) -> None:
    with Client(5, endpoint=engine_run.config.endpoint) as market:
        link = LinkEngine(market)
        batch = np.frombuffer(b"".join(Command.new(5, 0, BUY, 1, 50 + i % 40, cloid=i + 1).pack() for i in range(300)),
                              dtype=COMMAND_DTYPE)  # fmt: skip
        rows = link.execute_batch(batch)
        assert len(rows) == 300 and set(rows["type"].tolist()) == {int(EventType.ACK)}
        assert rows["cloid"].tolist() == list(range(1, 301)) and link.waits == 5  # 64 at a time


@pytest.mark.engine_config(clients=(), symbols=(SYNTH,), engine=SMALL)
def test_a_recorded_day_over_the_link_leaves_the_book_the_in_process_replay_leaves(
    engine_run: EngineRun, tmp_path: Path
) -> None:
    message_path, book_path = write_synthetic_day(tmp_path, seed=31, events=600, filtered=True)
    spec = parse_market(f"lobster:{message_path}")
    live = LobsterMarket(spec)
    with Client(5, endpoint=engine_run.config.endpoint) as market:
        live.open(LinkEngine(market), market.client_id)
        while live.next_ns() is not None:
            live.step()
        snapshot = market.snapshot("SYNTH", 1 << 10)
    here = LobsterMarket(spec)
    engine = Engine(EngineConfig())
    engine.add_symbol(SYNTH)
    here.open(engine, 5)
    while here.next_ns() is not None:
        here.step()
    assert live.counts() == here.counts() and live.counts()["mismatches"] == 0
    book = engine.l2("SYNTH")
    assert snapshot["bids"] == [list(lv) for lv in book["bids"]]
    assert snapshot["asks"] == [list(lv) for lv in book["asks"]]


@pytest.mark.engine_config(clients=(), engine=SMALL)
def test_the_market_agent_refuses_a_platform_symbol_without_the_recordings_units(
    engine_run: EngineRun, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    message_path, _ = write_synthetic_day(tmp_path, seed=1, events=50)
    argv = ["--endpoint", engine_run.config.endpoint, "--client", "5", "--symbol", "TEST", "--source",
            f"lobster:{message_path}"]  # fmt: skip
    assert market_main(argv) == 2  # TEST has a tick of 1, the recording's is $0.01
    assert "is not the recording's" in caplog.text
