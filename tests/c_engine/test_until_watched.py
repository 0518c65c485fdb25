"""``Engine.execute_until_watched`` and its wire-bytes form: run a block of commands up to the first one that
concerns a watcher, in as many calls as the watcher's reactions, and end exactly where one batch ends."""

from __future__ import annotations

import numpy as np
import pytest

from c_engine import COMMAND_DTYPE, EVENT_DTYPE, Engine, EngineConfig, Event, EventType, SymbolConfig
from c_engine.flow import SyntheticFlow

WATCHER = 100


def _engine() -> Engine:
    engine = Engine(EngineConfig(max_clients=WATCHER + 1))
    engine.add_symbol(SymbolConfig("SYN", max_price_ticks=1_000_000))
    return engine


def _block(n: int = 4_000) -> np.ndarray:
    flow = SyntheticFlow(0, seed=3)
    return flow.next_batch(n, 1_000)


def _watched_in_steps(engine: Engine, block: np.ndarray) -> tuple[bytes, list[int]]:
    """The block through ``execute_until_watched_raw`` from one stop to the next: all events, the stops."""
    out, stops, pos = bytearray(), [], 0
    while pos < len(block):
        done, watched, raw = engine.execute_until_watched_raw(block, 0, WATCHER, pos, len(block))
        assert done > 0
        out += raw
        pos += done
        if watched:
            stops.append(pos)
    return bytes(out), stops


def test_running_a_block_stop_by_stop_gives_the_events_and_state_of_one_batch() -> None:
    block = _block()
    whole = _engine()
    batch_events = whole.execute_batch(block).tobytes()
    stepped = _engine()
    events, stops = _watched_in_steps(stepped, block)
    assert events == batch_events
    assert stepped.state_hash() == whole.state_hash()
    assert 10 < len(stops) < len(block)  # it stopped at the top's changes, not at every command


def test_each_stop_is_a_command_that_changed_the_top_or_traded() -> None:
    block = _block()
    engine = _engine()
    pos = 0
    while pos < len(block):
        before = engine.l1(0)
        done, watched, raw = engine.execute_until_watched_raw(block, 0, WATCHER, pos)
        pos += done
        events = Event.unpack_all(raw)
        traded = any(e.type == EventType.TRADE for e in events)
        if watched:  # the commands before the last changed nothing the watcher sees: the last did
            assert traded or engine.l1(0) != before
        else:  # the block's end: nothing in the run concerned the watcher
            assert not traded and engine.l1(0) == before


def test_the_array_form_is_the_same_events_viewed_as_event_dtype() -> None:
    block = _block(500)
    a, b = _engine(), _engine()
    done_a, watched_a, rows = a.execute_until_watched(block, 0, WATCHER)
    done_b, watched_b, raw = b.execute_until_watched_raw(block, 0, WATCHER)
    assert (done_a, watched_a) == (done_b, watched_b)
    assert rows.dtype == EVENT_DTYPE and rows.tobytes() == bytes(raw)


def test_start_and_stop_select_a_slice_of_the_same_block() -> None:
    block = _block(600)
    a, b = _engine(), _engine()
    a.execute_batch(block[:200])
    b.execute_batch(block[:200])
    done_a, _, raw_a = a.execute_until_watched_raw(block, 0, WATCHER, 200, 400)
    done_b, _, raw_b = b.execute_until_watched_raw(block[200:400].copy(), 0, WATCHER)
    assert done_a == done_b and raw_a == raw_b
    assert done_a <= 200


def test_a_bad_slice_or_dtype_is_refused_before_anything_runs() -> None:
    engine = _engine()
    block = _block(50)
    with pytest.raises(IndexError):
        engine.execute_until_watched_raw(block, 0, WATCHER, 30, 20)
    with pytest.raises(TypeError):
        engine.execute_until_watched_raw(np.zeros(4, dtype=np.int64), 0, WATCHER)
    assert engine.stats()["commands"] == 0
    done, _, _ = engine.execute_until_watched_raw(block, 0, WATCHER, 0, 10_000)  # stop past the end: the end
    assert 0 < done <= len(block)
    assert block.dtype == COMMAND_DTYPE
