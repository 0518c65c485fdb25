"""Engine's single-call path: ``submit`` and ``cancel`` convert and pack in C (``py_new_limit``/``py_new_order``
with a cached ``py_shape_t`` per combination of names, ``py_cancel``), and the human-unit calls return ``Events``,
decoded when read. Neither may be told apart from the Python path:
the same ticks and lots, the same errors, the same ``Event`` values."""

from __future__ import annotations

import math
import random
import struct
import threading
import time
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from c_engine import (
    COMMAND_DTYPE,
    Command,
    Engine,
    EngineConfig,
    Event,
    Events,
    EventType,
    Op,
    SymbolConfig,
    Units,
    pack_new_order,
)
from c_engine._wire import SYMBOL_NONE
from c_engine.reference import ReferenceEngine

INT64 = range(-(2**63), 2**63)
#: (tick_size, lot_size) of the symbols "S0", "S1", ...
STEPS = [(1.0, 1.0), (1, 1), (0.01, 0.001), (0.05, 0.1), (0.25, 2.5), (1e-8, 1e-4), (3, 7), (0.1, 1)]


def make_engine() -> Engine:
    engine = Engine(EngineConfig(max_orders=1 << 12, max_levels_per_side=1 << 12, max_symbols=len(STEPS)))
    for i, (tick, lot) in enumerate(STEPS):
        engine.add_symbol(SymbolConfig(f"S{i}", tick_size=tick, lot_size=lot))
    return engine


def python_conversion(units: Units, price: Any, qty: Any) -> tuple[int, int] | tuple[type, str]:
    """What the Python path makes of a price and size: (ticks, lots), or the error it raises."""
    try:
        ticks, lots = units.ticks(price), units.lots(qty)
    except Exception as e:  # noqa: BLE001 - whatever it raises, the C path must raise too
        return type(e), str(e)
    if ticks not in INT64 or lots not in INT64:
        return struct.error, "argument out of range"  # the packer's error for a value beyond the wire's int64
    return ticks, lots


def c_conversion(engine: Engine, symbol: str, price: Any, qty: Any) -> tuple[int, int] | tuple[type, str]:
    """What ``Engine.submit`` sent: the price and size its ACK or REJECT echoes, or the error it raised."""
    try:
        events = engine.submit(1, symbol, "buy", qty, price, ts_ns=1)
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    assert events[0].type in (EventType.ACK, EventType.REJECT)
    engine.mass_cancel(1, ts_ns=1)  # keeps the book from filling up
    return events[0].price, events[0].qty


def candidate_values(step: float, rng: random.Random) -> list[Any]:
    """Sizes on the grid, near it (within and beyond the tolerance), off it, at a double's limits, not finite,
    and of the types the C path leaves to Python."""
    values: list[Any] = [0, 0.0, -0.0, 1, -1, 2**53 - 1, 2**53, 2**53 + 1, 2**62 + 1, 2**63, 2**64 + 3, -(2**63) - 1,
                         float(2**53), float(2**62), 2.0**63, 1e300, -1e300, math.inf, -math.inf, math.nan, True,
                         Decimal("1.5"), Decimal(str(step)) * 7, Decimal(str(step)) * 7 + Decimal("1e-12")]  # fmt: skip
    for _ in range(60):
        k = rng.choice([rng.randrange(1, 100), rng.randrange(1, 10**7), rng.randrange(-1000, 0)])
        exact = k * step
        values += [exact, (k + 0.5) * step, (k + 0.3) * step, exact + step * 1e-7, exact + step * 2e-6, k]
    return values


def test_submit_converts_in_c_exactly_as_the_python_path() -> None:
    engine, rng = make_engine(), random.Random(11)
    for i, (tick, lot) in enumerate(STEPS):
        units = Units(tick, lot)
        prices = candidate_values(tick, rng)
        sizes = candidate_values(lot, rng)
        pairs = [(p, rng.choice(sizes[-6:])) for p in prices] + [(rng.choice(prices[-6:]), q) for q in sizes]
        for price, qty in pairs:
            assert c_conversion(engine, f"S{i}", price, qty) == python_conversion(units, price, qty), (i, price, qty)


@pytest.mark.parametrize(
    "overrides",
    [
        {"side": "up"}, {"type": "stop"}, {"tif": "DAY"}, {"stp": "BOTH_WAYS"}, {"side": ["buy"]},
        {"client": 70_000}, {"client": -1}, {"cloid": -1}, {"cloid": 2**64}, {"cloid": 1.5}, {"ts_ns": -1},
        {"qty": 2.5, "price": 100.005},  # off the lot and off the tick: the price is checked first
    ],
)  # fmt: skip
def test_submit_arguments_the_c_path_cannot_take_raise_as_the_python_path_does(overrides: dict[str, Any]) -> None:
    args: dict[str, Any] = dict(client=1, side="buy", qty=2.0, price=100.0, type="limit", tif=None,
                                post_only=False, stp="NONE", cloid=0, ts_ns=1) | overrides  # fmt: skip
    with pytest.raises(Exception) as python_error:
        pack_new_order(bytearray(64), 0, Units(0.01, 1), 0, args["client"], args["side"], args["qty"],
                       args["price"], args["type"], args["tif"], args["post_only"], args["stp"], args["cloid"],
                       args["ts_ns"])  # fmt: skip
    engine = Engine()
    engine.add_symbol(SymbolConfig("S", tick_size=0.01, lot_size=1))
    before = engine.state_hash()
    client, side, qty, price = args.pop("client"), args.pop("side"), args.pop("qty"), args.pop("price")
    with pytest.raises(python_error.type) as c_error:
        engine.submit(client, "S", side, qty, price, **args)
    assert str(c_error.value) == str(python_error.value)
    assert engine.state_hash() == before and engine.stats()["commands"] == 0


@pytest.mark.parametrize("client, order_id, ts_ns", [(70_000, 1, 1), (-1, 1, 1), (1, -1, 1), (1, 2**64, 1), (1, 1, -1)])
def test_cancel_arguments_outside_their_fields_raise_as_the_packer_does(client: int, order_id: int, ts_ns: int) -> None:
    engine = Engine()
    with pytest.raises(struct.error) as packer_error:
        struct.pack("<HQQ", client, order_id, ts_ns)
    with pytest.raises(struct.error) as error:
        engine.cancel(client, order_id, ts_ns=ts_ns)
    assert str(error.value) == str(packer_error.value) and engine.stats()["commands"] == 0


def test_market_orders_and_post_only_take_the_c_path_with_their_flags() -> None:
    engine, ref = Engine(), ReferenceEngine()
    for e in (engine, ref):
        e.add_symbol(SymbolConfig("S", tick_size=0.5, lot_size=1))
    got = [
        engine.submit(1, "S", "sell", 3, 50.5, post_only=True, cloid=9, ts_ns=1),
        engine.submit(2, "S", "buy", 2.0, type="market", ts_ns=2),
        engine.submit(2, "S", "buy", 2, 50.0, tif="IOC", stp="EXPIRE_MAKER", ts_ns=3),
    ]
    want = [
        ref.execute(Command.new(1, 0, 2, 3, 101, post_only=True, cloid=9, ts_ns=1)),
        ref.execute(Command.new(2, 0, 1, 2, order_type=2, tif=2, ts_ns=2)),
        ref.execute(Command.new(2, 0, 1, 2, 100, tif=2, stp=2, ts_ns=3)),
    ]
    assert got == want


# ---- Events ------------------------------------------------------------------------------------------------------


def every_field(event: Event) -> dict[str, Any]:
    names = ("reason", "liquidity", "maker_client", "acked_op", "cloid", "trade_id", "order_count", "leaves",
             "maker_order_id", "type_name")  # fmt: skip
    return {**event._asdict(), **{n: getattr(event, n) for n in names}, "dict": event.to_dict({0: "S"})}


def test_human_unit_calls_return_events_equal_to_the_reference_and_field_for_field() -> None:
    engine, ref = Engine(), ReferenceEngine()
    for e in (engine, ref):
        e.add_symbol(SymbolConfig("S"))
    calls: list[tuple[Events, Command]] = [
        (engine.submit(1, "S", "sell", 5, 100, cloid=3, ts_ns=1), Command.new(1, 0, 2, 5, 100, cloid=3, ts_ns=1)),
        (engine.submit(1, "S", "sell", 2, 101, ts_ns=2), Command.new(1, 0, 2, 2, 101, ts_ns=2)),
        (engine.submit(2, "S", "buy", 7, 101, ts_ns=3), Command.new(2, 0, 1, 7, 101, ts_ns=3)),  # two fills
        (engine.submit(2, "S", "buy", 1, 90, ts_ns=4), Command.new(2, 0, 1, 1, 90, ts_ns=4)),
        (engine.modify(2, 4, symbol="S", qty=3, price=91, ts_ns=5), Command.modify(2, 4, qty=3, price=91, ts_ns=5)),
        (engine.submit(3, "S", "buy", 1, 80, ts_ns=6), Command.new(3, 0, 1, 1, 80, ts_ns=6)),
        (engine.cancel(2, 4, ts_ns=7), Command.cancel(2, 4, ts_ns=7)),
        (engine.cancel(2, 4, ts_ns=8), Command.cancel(2, 4, ts_ns=8)),  # gone: a reject
        (engine.mass_cancel(3, "S", ts_ns=9), Command.mass_cancel(3, 0, ts_ns=9)),
        (engine.kill_reset(3, ts_ns=10), Command.kill_reset(3, ts_ns=10)),
    ]
    seen = set()
    for got, cmd in calls:
        want = ref.execute(cmd)
        assert isinstance(got, Events) and got == want and want == got and not got != want
        assert len(got) == len(want) and list(got) == want
        for i, event in enumerate(want):
            assert type(got[i]) is Event and got[i] == event and got[i - len(want)] == event
            assert every_field(got[i]) == every_field(event)
            seen.add(event.type)
    assert seen == {EventType.ACK, EventType.REJECT, EventType.FILL, EventType.CANCELED, EventType.MODIFIED,
                    EventType.BOOK_DELTA, EventType.TRADE}  # fmt: skip


def test_events_behave_as_a_read_only_list() -> None:
    engine = Engine()
    engine.add_symbol(SymbolConfig("S"))
    events = engine.submit(1, "S", "buy", 5, 100, ts_ns=1)
    as_list = list(events)
    engine.submit(1, "S", "buy", 1, 99, ts_ns=2)  # overwrites the engine's buffer: events hold their own copy
    assert list(events) == list(events) == as_list and len(as_list) == 2
    assert events[0].type == EventType.ACK and events[-1].type == EventType.BOOK_DELTA
    assert events[1:] == as_list[1:] and events[::-1] == as_list[::-1] and events[5:] == []
    for bad in (2, -3, 10**30):
        with pytest.raises(IndexError):
            events[bad]
    assert events[np.int64(1)] == events[True] == as_list[1]  # any integer with __index__, as a list takes
    with pytest.raises(TypeError):
        events["0"]  # type: ignore[call-overload]  # deliberately wrong: the test checks the error
    assert as_list[1] in events and as_list[1]._replace(qty=6) not in events
    assert list(reversed(events)) == as_list[::-1] and events.index(as_list[1]) == 1 and events.count(as_list[0]) == 1
    assert repr(events) == repr(as_list)
    assert events + as_list == as_list + events == as_list * 2 and isinstance(events + events, list)
    assert events != as_list[:1] and events != tuple(as_list) and events != Events(b"")
    assert not Events(b"") and len(Events(b"")) == 0 and Events(b"") == []
    with pytest.raises(TypeError):
        hash(events)
    twin = Engine()
    twin.add_symbol(SymbolConfig("S"))
    assert twin.submit(1, "S", "buy", 5, 100, ts_ns=1) == events != twin.submit(1, "S", "buy", 5, 100, ts_ns=1)


# ---- the shape cache -----------------------------------------------------------------------------------------------


def test_the_shape_cache_serves_each_symbol_and_engine_its_own_units() -> None:
    # One set of names for every call: only the symbol or the engine differs, and each order must carry its own
    # symbol id and be converted with its own tick and lot.
    a, b = make_engine(), Engine()
    b.add_symbol(SymbolConfig("S2", tick_size=0.5, lot_size=0.5))  # S2 of b is a's S0's id with other steps
    cases: list[tuple[Engine, str | int, float, float, tuple[int, int, int]]] = [
        (a, "S0", 7.0, 3.0, (0, 7, 3)),
        (a, "S2", 7.0, 3.0, (2, 700, 3000)),
        (b, "S2", 7.0, 3.0, (0, 14, 6)),
        (a, 2, 7.0, 3.0, (2, 700, 3000)),
        (b, 0, 7.0, 3.0, (0, 14, 6)),
        (a, "S2", 7.0, 3.0, (2, 700, 3000)),
    ]
    for engine, symbol, price, qty, want in cases:
        before = b.stats()["commands"] if engine is a else a.stats()["commands"]
        ack = engine.submit(1, symbol, "buy", qty, price, tif="GTC", ts_ns=1)[0]
        assert (ack.type, ack.symbol_id, ack.price, ack.qty) == (EventType.ACK, *want)
        assert (b.stats()["commands"] if engine is a else a.stats()["commands"]) == before  # the other engine idle


def test_a_cached_str_symbol_does_not_make_equal_numbers_valid_symbols() -> None:
    engine = make_engine()
    engine.submit(1, "S0", "buy", 1.0, 5.0, ts_ns=1)
    engine.submit(1, 0, "buy", 1.0, 5.0, ts_ns=1)  # an int symbol is an id
    for symbol in (0.0, np.int64(0), "S9"):
        with pytest.raises(KeyError):  # UnknownSymbolError, or the plain KeyError of an unknown name
            engine.submit(1, symbol, "buy", 1.0, 5.0, ts_ns=1)  # type: ignore[arg-type]  # deliberately wrong: the test checks the error


def test_equal_names_share_a_shape_and_any_other_value_still_takes_the_python_path() -> None:
    engine, ref = Engine(), ReferenceEngine()
    for e in (engine, ref):
        e.add_symbol(SymbolConfig("S", tick_size=0.5, lot_size=1))
    got = [
        engine.submit(1, "S", "sell", 3, 50.5, post_only=True, ts_ns=1),
        # Side.SELL's int and a truthy int: the same shape as the call above.
        engine.submit(1, "S", 2, 3, 51.0, post_only=1, ts_ns=2),  # type: ignore[arg-type]  # deliberately not a bool
        # Not hashable: converted every call.
        engine.submit(1, "S", "sell", 3, 51.5, post_only=[1], ts_ns=3),  # type: ignore[arg-type]  # deliberately not a bool
        engine.submit(1, "S", "sell", 3, 52.0, post_only=[], tif="", ts_ns=4),  # type: ignore[arg-type]  # deliberately not a bool
    ]
    want = [
        ref.execute(Command.new(1, 0, 2, 3, 101, post_only=True, ts_ns=1)),
        ref.execute(Command.new(1, 0, 2, 3, 102, post_only=True, ts_ns=2)),
        ref.execute(Command.new(1, 0, 2, 3, 103, post_only=True, ts_ns=3)),
        ref.execute(Command.new(1, 0, 2, 3, 104, ts_ns=4)),
    ]
    assert got == want
    bad_names: list[tuple[dict[str, object], type[Exception]]] = [
        ({"side": "up"}, KeyError),
        ({"tif": "DAY"}, KeyError),
        ({"side": ["sell"]}, TypeError),
    ]
    for bad, error in bad_names:
        with pytest.raises(error):
            engine.submit(1, "S", **{"side": "sell", **bad}, qty=3, price=50.5, ts_ns=5)  # type: ignore[arg-type]  # deliberately wrong: the test checks the error
    assert engine.stats()["commands"] == len(got)


def test_the_shape_cache_stops_growing_at_its_bound() -> None:
    from c_engine._engine import _MAX_SHAPES

    engine = Engine(EngineConfig(max_orders=1 << 12))
    engine.add_symbol(SymbolConfig("S"))
    for i in range(_MAX_SHAPES + 10):
        # Every truthy post_only value is a key of its own: past the bound, each call converts its names again.
        ack = engine.submit(1, "S", "buy", 1, 10, post_only=f"yes{i}", ts_ns=i)[0]  # type: ignore[arg-type]  # deliberately not a bool
        assert ack.type == EventType.ACK
        engine.mass_cancel(1, ts_ns=i)
    assert engine._hot_shapes == len(engine._shapes_by_id) == _MAX_SHAPES


def test_a_batch_lets_other_python_threads_run_while_it_runs() -> None:
    # cffi's wrappers keep the GIL (a single call is too short to hand it over); py_submit_batch releases it.
    # Timed around the C call alone (execute_batch's Python steps let the other thread in either way), and only
    # its middle counts: the other thread may take the GIL for a switch interval (5 ms) just before or after it.
    # On a loaded 2-core machine the other thread may also get no CPU for a whole batch, so up to three
    # batches are tried: with the GIL held, none of them could ever show a tick in its middle.
    from c_engine._cengine import ffi
    from c_engine._engine import _submit_batch

    engine = Engine()
    # 3 M rejects (~40 ms here, 13 ns each): the middle third must outlast a 5 ms switch interval; the default
    # event buffer (4 M) takes all their events.
    commands = np.zeros(3_000_000, dtype=COMMAND_DTYPE)
    commands["op"], commands["symbol_id"], commands["client_id"] = int(Op.CANCEL), SYMBOL_NONE, 1
    commands["order_id"] = 9  # never placed: each cancel is a quick reject
    base = ffi.cast("const pt_command_t *", ffi.from_buffer(commands))
    done, count = ffi.new("size_t *"), ffi.new("size_t *")

    def ticks_in_the_middle_of_a_batch() -> bool:
        ticks: list[int] = []
        stop = threading.Event()

        def tick() -> None:
            while not stop.is_set():
                ticks.append(time.perf_counter_ns())

        thread = threading.Thread(target=tick)
        thread.start()
        try:
            while not ticks:
                time.sleep(0.001)
            start = time.perf_counter_ns()
            status = _submit_batch(engine._e, base, len(commands), done, count)
            end = time.perf_counter_ns()
        finally:
            stop.set()
            thread.join()
        assert status == 0 and done[0] == count[0] == len(commands)  # each a reject: 1 event
        third = (end - start) // 3
        assert end - start > 15_000_000
        return any(start + third < t < end - third for t in ticks)

    assert any(ticks_in_the_middle_of_a_batch() for _ in range(3))
