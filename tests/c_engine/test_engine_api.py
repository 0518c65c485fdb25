"""The Python surface of the C engine: human units at the edge, batches, snapshots, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from c_engine import (
    COMMAND_DTYPE,
    ClientLimits,
    Command,
    Engine,
    EngineConfig,
    Event,
    EventType,
    InvalidConfigError,
    OffLotError,
    OffTickError,
    OrderType,
    RejectReason,
    Side,
    SymbolConfig,
    Tif,
    UnknownSymbolError,
    reference,
)
from c_engine._cengine import lib
from c_engine.flow import SyntheticFlow
from c_engine.reference import ReferenceEngine


def make_engine() -> Engine:
    engine = Engine(EngineConfig(max_orders=1 << 14, max_levels_per_side=512, max_symbols=4, max_clients=16))
    engine.add_symbol(SymbolConfig("BTC", tick_size=0.1, lot_size=0.001))
    engine.add_symbol(SymbolConfig("AAPL", tick_size=0.01, lot_size=1))
    return engine


def test_human_prices_and_sizes_become_ticks_and_lots_exactly() -> None:
    engine = make_engine()
    ack = engine.submit(1, "BTC", "buy", 0.25, 61234.5, ts_ns=1)[0]
    assert (ack.type, ack.price, ack.qty) == (EventType.ACK, 612345, 250)
    assert engine.book("BTC").bids == [(61234.5, 0.25, 1)]


def test_decimals_and_ints_of_any_size_convert_exactly() -> None:
    from decimal import Decimal

    from c_engine import Units

    # Units converts a Decimal exactly (c_engine/_units.py says so), though ticks() and lots() are annotated float.
    cents = Units(0.01, 1)
    assert cents.ticks(Decimal("100.07")) == 10007  # type: ignore[arg-type]  # deliberately a Decimal
    assert cents.ticks(100.07) == 10007 and cents.ticks(100) == 10000
    with pytest.raises(OffTickError):
        cents.ticks(Decimal("100.005"))  # type: ignore[arg-type]  # deliberately a Decimal
    whole = Units(1, 1)
    assert whole.ticks(2**62 + 1) == 2**62 + 1  # no float product: exact beyond 2^53
    assert whole.lots(Decimal(7)) == 7  # type: ignore[arg-type]  # deliberately a Decimal


def test_price_off_the_tick_raises_and_changes_nothing() -> None:
    engine = make_engine()
    before = engine.state_hash()
    with pytest.raises(OffTickError):
        engine.submit(1, "AAPL", "buy", 1, 100.005)
    with pytest.raises(OffLotError):
        engine.submit(1, "BTC", "buy", 0.0005, 100.0)
    assert engine.state_hash() == before
    assert engine.stats()["next_order_id"] == 1


def test_unknown_symbol_raises_a_key_error() -> None:
    with pytest.raises(UnknownSymbolError):
        make_engine().book("NOPE")


def test_rejected_order_is_a_reject_event_with_its_reason() -> None:
    engine = make_engine()
    engine.set_client_limits(3, ClientLimits(max_order_qty=5))
    (reject,) = engine.submit(3, "AAPL", "sell", 6, 10.0, ts_ns=1)
    assert reject.type == EventType.REJECT and reject.reason == RejectReason.RISK_MAX_ORDER_QTY


def test_market_order_defaults_to_ioc_and_trades_at_the_makers_price() -> None:
    engine = make_engine()
    engine.submit(1, "AAPL", "sell", 10, 100.02, ts_ns=1)
    events = engine.submit(2, "AAPL", "buy", 4, type="market", ts_ns=2)
    (trade,) = [e for e in events if e.type == EventType.TRADE]
    assert (trade.price, trade.qty, trade.maker_order_id, trade.order_id) == (10002, 4, 1, 2)
    assert engine.position(2, "AAPL").position == 4
    assert engine.position(1, "AAPL").cash == 4 * 10002


def test_modify_and_cancel_in_human_units() -> None:
    engine = make_engine()
    engine.submit(1, "AAPL", "buy", 10, 99.0, ts_ns=1)
    modified = engine.modify(1, 1, symbol="AAPL", qty=4, price=99.5, ts_ns=2)[0]
    assert (modified.type, modified.price, modified.qty) == (EventType.MODIFIED, 9950, 4)
    assert engine.l3("AAPL")["bids"][0].open_qty == 4
    assert engine.cancel(1, 1, ts_ns=3)[0].type == EventType.CANCELED
    assert engine.l2("AAPL") == {"bids": [], "asks": []}


def run_flow(n_batches: int, single: bool) -> tuple[list[tuple[int, ...]], int]:
    engine = make_engine()
    flow = SyntheticFlow(engine.symbol_id("AAPL"), seed=7)
    out: list[tuple[int, ...]] = []
    ts = 1
    for _ in range(n_batches):
        batch = flow.next_batch(500, ts)
        ts = int(batch["ts_ns"][-1]) + 1
        if single:
            events = [e for row in batch for e in engine.execute(Command.unpack(row.tobytes()))]
            flow.observe(_as_array(events))
            out.extend(tuple(e) for e in events)
        else:
            events_array = engine.execute_batch(batch)
            flow.observe(events_array)
            out.extend(tuple(e) for e in _as_events(events_array))
        engine.check()
    return out, engine.state_hash()


def _as_array(events: list[Event]) -> np.ndarray:
    from c_engine import EVENT_DTYPE

    return np.frombuffer(b"".join(e.pack() for e in events), dtype=EVENT_DTYPE)


def _as_events(array: np.ndarray) -> list[Event]:
    return Event.unpack_all(array.tobytes())


def test_batch_and_single_calls_give_identical_events_and_state() -> None:
    single_events, single_hash = run_flow(20, single=True)
    batch_events, batch_hash = run_flow(20, single=False)
    assert len(single_events) > 10_000
    assert single_events == batch_events
    assert single_hash == batch_hash


def test_same_stream_gives_the_same_state_hash_and_a_different_one_differs() -> None:
    assert run_flow(5, single=False)[1] == run_flow(5, single=False)[1]
    engine = make_engine()
    a = engine.state_hash()
    engine.submit(1, "AAPL", "buy", 1, 1.0, ts_ns=1)
    assert engine.state_hash() != a


def test_batch_rejects_an_array_of_the_wrong_dtype() -> None:
    with pytest.raises(TypeError):
        make_engine().execute_batch(np.zeros(3, dtype=np.int64))


def test_batch_larger_than_the_event_buffer_is_run_in_pieces() -> None:
    engine = Engine(EngineConfig(max_orders=64, max_levels_per_side=64, max_symbols=1, max_clients=4))
    engine.add_symbol(SymbolConfig("X"))
    commands = np.zeros(5000, dtype=COMMAND_DTYPE)
    commands["op"] = 1
    commands["side"] = np.where(np.arange(5000) % 2, Side.BUY, Side.SELL)
    commands["order_type"] = OrderType.LIMIT
    commands["tif"] = Tif.GTC
    commands["flags"] = 2
    commands["price"] = 100
    commands["qty"] = 1
    commands["ts_ns"] = np.arange(5000)
    events = engine.execute_batch(commands)
    assert np.count_nonzero(events["type"] == EventType.TRADE) == 2500
    assert events["seq"].tolist() == list(range(1, len(events) + 1))


@pytest.mark.parametrize("engine_cls", [Engine, ReferenceEngine])
def test_both_engines_refuse_the_same_capacities(engine_cls: type[Engine] | type[ReferenceEngine]) -> None:
    # pt_engine.h's limits, which the reference repeats: one more than each is refused by both engines.
    assert (reference.MAX_ORDERS, reference.MAX_LEVELS_PER_SIDE) == (lib.PT_MAX_ORDERS, lib.PT_MAX_LEVELS_PER_SIDE)
    engine_cls(EngineConfig(max_orders=16, max_levels_per_side=reference.MAX_LEVELS_PER_SIDE))
    for bad in ({"max_levels_per_side": reference.MAX_LEVELS_PER_SIDE + 1}, {"max_levels_per_side": 0},
                {"max_orders": reference.MAX_ORDERS + 1}, {"max_orders": 0}):  # fmt: skip
        with pytest.raises(InvalidConfigError):
            engine_cls(EngineConfig(**{"max_orders": 16, "max_levels_per_side": 16, **bad}))


@pytest.mark.parametrize("engine_cls", [Engine, ReferenceEngine])
def test_both_engines_refuse_the_same_symbol_configs(engine_cls: type[Engine] | type[ReferenceEngine]) -> None:
    # pnl_unit up to PT_MAX_PNL_UNIT; a level's qty (at most max_orders full orders) must fit an int64
    assert reference.MAX_PNL_UNIT == lib.PT_MAX_PNL_UNIT
    engine = engine_cls(EngineConfig(max_orders=16, max_levels_per_side=16))
    most_lots = ((1 << 63) - 1) // 16
    engine.add_symbol(SymbolConfig("OK1", max_price_ticks=1, max_order_lots=most_lots))
    engine.add_symbol(SymbolConfig("OK2", pnl_unit=reference.MAX_PNL_UNIT))
    for bad in ({"max_price_ticks": 1, "max_order_lots": most_lots + 1}, {"pnl_unit": reference.MAX_PNL_UNIT + 1}):
        with pytest.raises(InvalidConfigError):
            engine.add_symbol(SymbolConfig("BAD", **bad))
