"""The agent loop (hotpath/agents/base.py) against a real engine: an agent sees its own events and every
market-data row, trades included."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from c_engine import Event, EventType
from hotpath.agents.base import run_agent
from hotpath.client import Client
from hotpath.md_view import BookView, control_snapshot

from conftest import EngineRun


class _Recorder:
    """An agent that records what it is handed and stops the loop once it has seen a trade."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.events: list[Event] = []
        self.rows: list[npt.NDArray[Any]] = []

    def on_events(self, events: list[Event]) -> None:
        self.events += events

    def on_book(self, view: BookView, rows: npt.NDArray[Any]) -> None:
        self.rows.append(rows.copy())
        if (rows["type"] == EventType.TRADE).any():
            self.stop.set()

    def step(self, now_ns: int) -> int:
        return 0

    def next_due_ns(self) -> int | None:
        return None


@pytest.mark.engine_config(clients=())
def test_an_agent_is_handed_the_trades_and_deltas_of_market_data(engine_run: EngineRun) -> None:
    endpoint = engine_run.config.endpoint
    with Client(1, endpoint=endpoint) as watcher, Client(2, endpoint=endpoint) as seller, \
            Client(3, endpoint=endpoint) as buyer:  # fmt: skip
        view = BookView(watcher.market_data(), [0], control_snapshot(watcher.request, watcher.symbol_names))
        stop = threading.Event()
        agent = _Recorder(stop)
        seller.submit("TEST", "sell", 3, 101)
        seller.wait_events(1)
        buyer.submit("TEST", "buy", 2, 101)
        buyer.wait_events(2)  # ACK, FILL: filled whole, nothing rests
        run_agent(agent, watcher, view, stop, seconds=5.0)
    assert stop.is_set(), "no TRADE reached the agent within 5 s"
    rows = np.concatenate(agent.rows)
    trades = rows[rows["type"] == EventType.TRADE]
    assert trades[["price", "qty", "client_id", "maker_client"]].tolist() == [(101, 2, 3, 2)]
    deltas = rows[rows["type"] == EventType.BOOK_DELTA]
    assert deltas[["price", "qty"]].tolist() == [(101, 3), (101, 1)]  # the rest, then what the trade left
    assert agent.events == []  # the watcher's own ring: it sent nothing
    assert view.books[0].best() == (None, (101, 1))
