"""``hotpath.run_split``: the C split of a watched engine run equals a plain Python reading of the rules on random
runs and on the runs of a real backtest, and refuses what it has no room for."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c_engine import Engine, EngineConfig, Event, EventType, SymbolConfig
from c_engine.flow import SyntheticFlow
from hotpath.run_split import KEPT_DELTA, KEPT_OWN, KEPT_TRADE, RunSplit, RunSplitter

DELTA, TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)


def reference(events: list[Event], watched: bool, symbol: int, client: int) -> RunSplit:
    """The rules as pt_run_split.h states them, one event at a time."""
    if not events:
        return [], 0, [], 0
    last = events[-1].ts_ns
    split = len(events)
    if watched:
        while split and events[split - 1].ts_ns == last:
            split -= 1
    quiet = [
        (e.side, e.seq, e.ref, e.price, e.qty) for e in events[:split] if e.type == DELTA and e.symbol_id == symbol
    ]
    quiet_ts = next((e.ts_ns for e in reversed(events[:split]) if e.type == DELTA and e.symbol_id == symbol), 0)
    kept = []
    for row in range(split, len(events)):
        e = events[row]
        if e.type == DELTA and e.symbol_id == symbol:
            kept.append(row * 4 + KEPT_DELTA)
        elif e.type == TRADE and e.symbol_id == symbol:
            kept.append(row * 4 + KEPT_TRADE)
        elif e.type < DELTA and e.client_id == client:
            kept.append(row * 4 + KEPT_OWN)
    return quiet, quiet_ts, kept, last


_event = st.builds(
    Event,
    type=st.integers(1, 8),
    side=st.integers(1, 2),
    symbol_id=st.integers(0, 2),
    client_id=st.sampled_from([1, 2, 100, 300]),
    code=st.integers(0, 255),
    flags=st.integers(0, 255),
    seq=st.integers(0, 2**64 - 1),
    ts_ns=st.integers(0, 3),  # few times, so runs of equal times are common
    order_id=st.integers(0, 2**64 - 1),
    ref=st.integers(0, 2**64 - 1),
    price=st.integers(-(2**63), 2**63 - 1),
    qty=st.integers(-(2**63), 2**63 - 1),
    aux=st.integers(-(2**63), 2**63 - 1),
)


@settings(max_examples=400, deadline=None)
@given(events=st.lists(_event, max_size=64).map(lambda es: sorted(es, key=lambda e: e.ts_ns)),
       watched=st.booleans(), symbol=st.integers(0, 2), client=st.sampled_from([1, 100, 300]))  # fmt: skip
def test_random_runs_split_as_the_rules_say(events: list[Event], watched: bool, symbol: int, client: int) -> None:
    raw = bytearray(b"".join(e.pack() for e in events))
    assert RunSplitter(64).split(raw, watched, symbol, client) == reference(events, watched, symbol, client)


def test_the_runs_of_a_real_engine_split_as_the_rules_say() -> None:
    engine = Engine(EngineConfig(max_clients=101))
    engine.add_symbol(SymbolConfig("SYN", max_price_ticks=1_000_000))
    block = SyntheticFlow(0, seed=5).next_batch(3_000, 1_000)
    splitter, pos, checked = RunSplitter(64), 0, 0
    while pos < len(block):
        done, watched, raw = engine.execute_until_watched_raw(block, 0, 3, pos)  # client 3: one of the flow's
        pos += done
        if len(raw) <= 64 * 64:
            assert splitter.split(raw, watched, 0, 3) == reference(Event.unpack_all(raw), watched, 0, 3)
            checked += 1
    assert checked > 100


def test_a_run_longer_than_its_room_or_of_partial_events_is_refused() -> None:
    splitter = RunSplitter(4)
    with pytest.raises(ValueError):
        splitter.split(bytearray(64 * 5), True, 0, 1)
    with pytest.raises(ValueError):
        splitter.split(bytearray(100), True, 0, 1)
    assert splitter.split(bytearray(), True, 0, 1) == ([], 0, [], 0)
