"""Both engines against the spec (docs/ENGINE.md), one scenario per test.

Every test runs on the C ``Engine`` and on the pure-Python ``ReferenceEngine``. They cover what the
conformance files (tests/c_engine/test_conformance.py) do not: risk limits, price bands, the market
protection band, capacity limits, a 5,000-maker sweep, exact event sequences, and quantity conservation
with a never-crossed book on a random stream.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest

from c_engine import Engine
from c_engine._config import ClientLimits, EngineConfig, L3Order, Level, Position, SymbolConfig
from c_engine._types import Command, Event
from c_engine._wire import (
    SYMBOL_NONE,
    CancelReason,
    EventFlag,
    EventType,
    Liquidity,
    Op,
    OrderType,
    RejectReason,
    Side,
    Stp,
    Tif,
)
from c_engine.reference import ReferenceEngine

BUY, SELL = Side.BUY, Side.SELL
ACK, REJECT, FILL, CANCELED, MODIFIED, BOOK_DELTA, TRADE = (
    EventType.ACK, EventType.REJECT, EventType.FILL, EventType.CANCELED, EventType.MODIFIED,
    EventType.BOOK_DELTA, EventType.TRADE,
)  # fmt: skip


# ---- helpers for the scenarios below -------------------------------------------------------------------------------


#: either engine: every test runs once on each (the engine_kind fixture picks which)
AnyEngine = Engine | ReferenceEngine
ENGINE_CLASSES: dict[str, type[AnyEngine]] = {"c": Engine, "reference": ReferenceEngine}
_engine_cls: type[AnyEngine] = ReferenceEngine


@pytest.fixture(autouse=True, params=sorted(ENGINE_CLASSES))
def engine_kind(request: pytest.FixtureRequest) -> str:
    """Runs every test of this module once per engine: make_engine() builds the one in use."""
    global _engine_cls
    _engine_cls = ENGINE_CLASSES[request.param]
    return str(request.param)


#: make_engine's default (EngineConfig is frozen: one instance serves every call)
_DEFAULT_CONFIG = EngineConfig()


def make_engine(config: EngineConfig = _DEFAULT_CONFIG, **symbol_fields: Any) -> AnyEngine:
    engine = _engine_cls(config)
    engine.add_symbol(SymbolConfig(name="AAA", **symbol_fields))
    return engine


def limit(client: int, side: int, qty: int, price: int, ts: int = 0, **kw: Any) -> Command:
    return Command.new(client, 0, side, qty, price, ts_ns=ts, **kw)


def market(client: int, side: int, qty: int, ts: int = 0, tif: int = Tif.IOC, **kw: Any) -> Command:
    return Command.new(client, 0, side, qty, order_type=OrderType.MARKET, tif=tif, ts_ns=ts, **kw)


def types(events: list[Event]) -> list[int]:
    return [e.type for e in events]


def reject_reason(events: list[Event]) -> int | None:
    return events[0].reason if len(events) == 1 and events[0].type == REJECT else None


def trades(events: list[Event]) -> list[tuple[int, int, int, int]]:
    """(price, qty, maker order id, taker order id) per TRADE."""
    return [(e.price, e.qty, e.maker_order_id, e.order_id) for e in events if e.type == TRADE]


def book(engine: AnyEngine) -> dict[str, list[tuple[int, int]]]:
    """(order id, open qty) per side, in priority order."""
    return {side: [(o.order_id, o.open_qty) for o in orders] for side, orders in engine.l3("AAA").items()}


def ev(type_: int, side: int, client: int, code: int, seq: int, ts: int, order_id: int, ref: int, price: int,
       qty: int, aux: int, symbol: int = 0, last: bool = False) -> Event:  # fmt: skip
    """An event as the engine writes it; ``last``: the last one of its command for the command's client."""
    return Event(type_, side, symbol, client, code, EventFlag.LAST if last else 0, seq, ts, order_id, ref, price,
                 qty, aux)  # fmt: skip


# ---- client risk limits -----------------------------------------------------------------------------------------


def test_order_above_the_client_max_order_qty_is_rejected_and_one_at_it_is_accepted() -> None:
    engine = make_engine()
    engine.set_client_limits(1, ClientLimits(max_order_qty=10))
    assert reject_reason(engine.execute(limit(1, BUY, 11, 100))) == RejectReason.RISK_MAX_ORDER_QTY
    assert types(engine.execute(limit(1, BUY, 10, 100))) == [ACK, BOOK_DELTA]
    assert reject_reason(engine.execute(market(1, SELL, 11))) == RejectReason.RISK_MAX_ORDER_QTY


def test_gtc_order_beyond_max_open_orders_is_rejected_while_ioc_orders_still_go_through() -> None:
    engine = make_engine()
    engine.set_client_limits(1, ClientLimits(max_open_orders=2))
    engine.execute(limit(1, BUY, 1, 100))
    engine.execute(limit(1, BUY, 1, 99))
    assert reject_reason(engine.execute(limit(1, BUY, 1, 98))) == RejectReason.RISK_MAX_OPEN_ORDERS
    assert types(engine.execute(limit(1, BUY, 1, 98, tif=Tif.IOC))) == [ACK, CANCELED]
    engine.execute(Command.cancel(1, 1))
    assert types(engine.execute(limit(1, BUY, 1, 98))) == [ACK, BOOK_DELTA]
    assert engine.position(1, "AAA").open_orders == 2


def test_max_position_counts_the_position_and_the_open_orders_on_the_same_side_only() -> None:
    engine = make_engine()
    engine.set_client_limits(1, ClientLimits(max_position=10))
    engine.execute(limit(2, SELL, 4, 100))
    engine.execute(limit(1, BUY, 4, 100))  # trades: position +4
    engine.execute(limit(1, BUY, 5, 90))  # open buy 5: 4 + 5 = 9
    assert reject_reason(engine.execute(limit(1, BUY, 2, 90))) == RejectReason.RISK_MAX_POSITION
    assert types(engine.execute(limit(1, BUY, 1, 90)))[0] == ACK  # exactly 10
    # Sell side: -position + open sell + qty = -4 + 0 + 14 = 10 is allowed, 15 is not.
    assert reject_reason(engine.execute(limit(1, SELL, 15, 200))) == RejectReason.RISK_MAX_POSITION
    assert types(engine.execute(limit(1, SELL, 14, 200)))[0] == ACK
    assert engine.position(1, "AAA") == Position(4, -400, 6, 14, 3, False, 0)


def test_modify_raising_qty_beyond_max_position_is_rejected_and_lowering_it_is_not() -> None:
    engine = make_engine()
    engine.set_client_limits(1, ClientLimits(max_position=10))
    engine.execute(limit(1, BUY, 6, 90))
    engine.execute(limit(1, BUY, 3, 91))
    assert reject_reason(engine.execute(Command.modify(1, 1, qty=8))) == RejectReason.RISK_MAX_POSITION
    assert types(engine.execute(Command.modify(1, 1, qty=7))) == [MODIFIED, BOOK_DELTA]  # 7 + 3 = 10
    engine.set_client_limits(1, ClientLimits(max_position=5))
    assert types(engine.execute(Command.modify(1, 1, qty=6))) == [MODIFIED, BOOK_DELTA]  # a decrease is allowed


def test_rate_limit_allows_the_burst_then_rejects_until_time_refills_the_bucket() -> None:
    engine = make_engine()
    engine.set_client_limits(1, ClientLimits(rate_per_s=2, rate_burst=3))
    for i in range(3):
        assert types(engine.execute(limit(1, BUY, 1, 100 - i, ts=1000)))[0] == ACK
    assert reject_reason(engine.execute(limit(1, BUY, 1, 90, ts=1000))) == RejectReason.RATE_LIMIT
    # 2 tokens per second: one token after 0.5 s, not a nanosecond before.
    assert reject_reason(engine.execute(limit(1, BUY, 1, 90, ts=1000 + 499_999_999))) == RejectReason.RATE_LIMIT
    assert types(engine.execute(limit(1, BUY, 1, 90, ts=1000 + 500_000_000)))[0] == ACK
    assert reject_reason(engine.execute(limit(1, BUY, 1, 89, ts=1000 + 500_000_000))) == RejectReason.RATE_LIMIT
    # A long pause refills to the burst, no more.
    for i in range(3):
        assert types(engine.execute(limit(1, BUY, 1, 80 - i, ts=10**12)))[0] == ACK
    assert reject_reason(engine.execute(limit(1, BUY, 1, 70, ts=10**12))) == RejectReason.RATE_LIMIT


def test_modifies_take_rate_tokens_but_cancels_and_rejected_orders_do_not() -> None:
    engine = make_engine()
    engine.set_client_limits(1, ClientLimits(rate_per_s=1, rate_burst=2, max_order_qty=5))
    assert reject_reason(engine.execute(limit(1, BUY, 6, 100))) == RejectReason.RISK_MAX_ORDER_QTY
    assert types(engine.execute(limit(1, BUY, 1, 100)))[0] == ACK
    assert types(engine.execute(Command.cancel(1, 1))) == [CANCELED, BOOK_DELTA]
    assert types(engine.execute(limit(1, BUY, 1, 100)))[0] == ACK  # the second token
    assert reject_reason(engine.execute(Command.modify(1, 2, qty=2))) == RejectReason.RATE_LIMIT
    assert types(engine.execute(Command.mass_cancel(1))) == [CANCELED, ACK, BOOK_DELTA]


def test_rate_bucket_refills_nothing_when_time_goes_backwards() -> None:
    engine = make_engine()
    engine.set_client_limits(1, ClientLimits(rate_per_s=1))
    assert types(engine.execute(limit(1, BUY, 1, 100, ts=5_000_000_000)))[0] == ACK
    assert reject_reason(engine.execute(limit(1, BUY, 1, 100, ts=1))) == RejectReason.RATE_LIMIT
    # last_ts stayed at 5 s: a token is back one second after it, not one second after ts=1.
    assert reject_reason(engine.execute(limit(1, BUY, 1, 100, ts=5_999_999_999))) == RejectReason.RATE_LIMIT
    assert types(engine.execute(limit(1, BUY, 1, 100, ts=6_000_000_000)))[0] == ACK


def test_kill_switch_trips_on_loss_cancels_the_client_orders_and_rejects_new_ones_until_reset() -> None:
    engine = make_engine()
    engine.set_client_limits(1, ClientLimits(max_loss=50))
    engine.execute(limit(1, SELL, 1, 500, ts=1))  # order 1, rests far away
    engine.execute(limit(1, BUY, 1, 90, ts=2))  # order 2
    engine.execute(limit(2, SELL, 10, 100, ts=3))  # order 3
    engine.execute(limit(1, BUY, 10, 100, ts=4))  # order 4: client 1 long 10 at 100, PnL 0
    assert not engine.position(1, "AAA").killed
    engine.execute(limit(3, BUY, 1, 95, ts=5))  # order 5
    events = engine.execute(limit(2, SELL, 1, 94, ts=6))  # order 6 trades at 95: client 1 PnL = 10 * -5 = -50
    assert not engine.position(1, "AAA").killed  # -50 is not below -50
    events = engine.execute(limit(3, BUY, 1, 94, ts=7))  # order 7
    events = engine.execute(limit(2, SELL, 1, 94, ts=8))  # order 8 trades at 94: PnL -60
    assert types(events) == [ACK, FILL, FILL, TRADE, CANCELED, CANCELED, BOOK_DELTA, BOOK_DELTA, BOOK_DELTA]
    kill_cancels = [e for e in events if e.type == CANCELED]
    assert [(e.order_id, e.reason, e.client_id, e.qty, e.leaves) for e in kill_cancels] == [
        (1, CancelReason.KILL_SWITCH, 1, 1, 0),
        (2, CancelReason.KILL_SWITCH, 1, 1, 0),
    ]
    assert engine.position(1, "AAA") == Position(10, -1000, 0, 0, 0, True, -60)
    assert reject_reason(engine.execute(limit(1, SELL, 1, 94, ts=9))) == RejectReason.KILL_SWITCH
    ack = engine.execute(Command.kill_reset(1, ts_ns=10))
    assert ack == [ev(ACK, 0, 1, Op.KILL_RESET, ack[0].seq, 10, 0, 0, 0, 0, 0, symbol=SYMBOL_NONE, last=True)]
    assert not engine.position(1, "AAA").killed
    # After the reset it trades again; the next trading command checks the PnL again and trips the switch.
    assert types(engine.execute(limit(1, SELL, 1, 200, ts=11)))[:2] == [ACK, BOOK_DELTA]
    events = engine.execute(limit(4, BUY, 1, 94, ts=12))
    events = engine.execute(limit(5, SELL, 1, 94, ts=13))
    assert [e.order_id for e in events if e.type == CANCELED] == [9]
    assert engine.position(1, "AAA").killed


def test_kill_switch_checks_every_client_with_a_loss_limit_in_ascending_client_id() -> None:
    engine = make_engine()
    for client in (3, 1):
        engine.set_client_limits(client, ClientLimits(max_loss=1))
    engine.execute(limit(2, SELL, 2, 100))
    engine.execute(limit(3, BUY, 1, 100))  # client 3 long 1 at 100
    engine.execute(limit(1, BUY, 1, 100))  # client 1 long 1 at 100
    engine.execute(limit(3, BUY, 1, 50))  # order 4
    engine.execute(limit(1, BUY, 1, 50))  # order 5
    engine.execute(limit(1, SELL, 1, 300))  # order 6
    engine.execute(limit(4, BUY, 1, 97))
    events = engine.execute(limit(2, SELL, 1, 97))  # last price 97: both lose 3
    assert [(e.client_id, e.order_id) for e in events if e.type == CANCELED] == [(1, 5), (1, 6), (3, 4)]


def test_position_pnl_saturates_at_the_int64_range_while_the_kill_switch_compares_the_exact_value() -> None:
    engine = make_engine(max_price_ticks=1 << 40, max_order_lots=1 << 21, pnl_unit=1 << 20)
    engine.set_client_limits(1, ClientLimits(max_loss=(1 << 63) - 1))
    engine.execute(limit(2, SELL, 1 << 21, 1 << 40))
    engine.execute(limit(1, BUY, 1 << 21, 1 << 40))  # client 1: cash -2**61
    engine.execute(limit(3, BUY, 1, 1))
    events = engine.execute(limit(4, SELL, 1, 1))  # last price 1: PnL about -2**81, far below -max_loss
    assert [e.reason for e in events if e.type == CANCELED] == []  # client 1 has no resting order to cancel
    assert engine.position(1, "AAA").pnl == -(1 << 63)
    assert engine.position(1, "AAA").killed
    assert engine.position(2, "AAA").pnl == (1 << 63) - 1


# ---- price bands --------------------------------------------------------------------------------------------------


def test_limit_price_more_than_band_ticks_from_the_reference_price_is_rejected() -> None:
    engine = make_engine(band_ticks=5, reference_price=100)
    assert reject_reason(engine.execute(limit(1, BUY, 1, 94))) == RejectReason.PRICE_BAND
    assert reject_reason(engine.execute(limit(1, SELL, 1, 106))) == RejectReason.PRICE_BAND
    assert types(engine.execute(limit(1, BUY, 1, 95)))[0] == ACK
    assert types(engine.execute(limit(1, SELL, 1, 105)))[0] == ACK


def test_band_bps_is_the_integer_fraction_of_the_reference_price() -> None:
    engine = make_engine(band_bps=150, reference_price=1000)  # 1000 * 150 // 10000 = 15 ticks
    assert types(engine.execute(limit(1, BUY, 1, 985)))[0] == ACK
    assert reject_reason(engine.execute(limit(1, BUY, 1, 984))) == RejectReason.PRICE_BAND
    engine = make_engine(band_bps=150, reference_price=999)  # 14.985 -> 14 ticks
    assert reject_reason(engine.execute(limit(1, SELL, 1, 1014))) == RejectReason.PRICE_BAND
    assert types(engine.execute(limit(1, SELL, 1, 1013)))[0] == ACK


def test_band_follows_the_last_trade_price_once_there_is_one() -> None:
    engine = make_engine(band_ticks=5, reference_price=100)
    engine.execute(limit(1, SELL, 1, 104))
    engine.execute(limit(2, BUY, 1, 104))  # trade at 104: the reference is now 104
    assert types(engine.execute(limit(1, SELL, 1, 109)))[0] == ACK
    assert reject_reason(engine.execute(limit(1, BUY, 1, 98))) == RejectReason.PRICE_BAND


def test_without_any_reference_price_there_is_no_band_until_the_first_trade() -> None:
    engine = make_engine(band_ticks=5)
    assert types(engine.execute(limit(1, SELL, 1, 10_000)))[0] == ACK
    assert types(engine.execute(limit(2, BUY, 1, 10_000)))[0] == ACK  # trades at 10000
    assert reject_reason(engine.execute(limit(1, BUY, 1, 100))) == RejectReason.PRICE_BAND


def test_market_orders_are_not_price_banded() -> None:
    engine = make_engine(band_ticks=5, reference_price=100)
    assert types(engine.execute(market(1, BUY, 1))) == [ACK, CANCELED]


def test_modify_to_a_price_outside_the_band_is_rejected_but_a_qty_only_modify_is_not() -> None:
    engine = make_engine(band_ticks=5, reference_price=100)
    engine.execute(limit(1, BUY, 5, 96))
    assert reject_reason(engine.execute(Command.modify(1, 1, price=94))) == RejectReason.PRICE_BAND
    engine.execute(limit(2, SELL, 1, 104))
    engine.execute(limit(3, BUY, 1, 104))  # the reference moves to 104: order 1 at 96 is now outside the band
    assert types(engine.execute(Command.modify(1, 1, qty=4))) == [MODIFIED, BOOK_DELTA]


def test_market_order_stops_at_the_protection_band_and_its_rest_is_cancelled_with_price_band() -> None:
    engine = make_engine(market_band_ticks=2)
    for i, price in enumerate((100, 101, 102, 103)):
        engine.execute(limit(1, SELL, 1, price, ts=i))
    events = engine.execute(market(2, BUY, 10, ts=9))
    assert trades(events) == [(100, 1, 1, 5), (101, 1, 2, 5), (102, 1, 3, 5)]
    cancel = [e for e in events if e.type == CANCELED]
    assert [(e.reason, e.qty, e.leaves, e.price) for e in cancel] == [(CancelReason.PRICE_BAND, 7, 0, 0)]
    assert book(engine) == {"bids": [], "asks": [(4, 1)]}


def test_market_order_within_the_band_that_empties_the_book_is_cancelled_with_no_liquidity() -> None:
    engine = make_engine(market_band_ticks=2)
    engine.execute(limit(1, BUY, 1, 100))
    engine.execute(limit(1, BUY, 1, 99))
    events = engine.execute(market(2, SELL, 5))
    assert [e.reason for e in events if e.type == CANCELED] == [CancelReason.NO_LIQUIDITY]
    assert [e.reason for e in engine.execute(market(2, SELL, 5)) if e.type == CANCELED] == [CancelReason.NO_LIQUIDITY]


@pytest.mark.parametrize("side", [BUY, SELL])
def test_a_protection_band_wider_than_any_price_is_no_bound(side: int) -> None:
    # touch + band is past int64 for a buy: the C engine must not wrap it into a bound below the touch.
    engine = make_engine(market_band_ticks=2**63 - 1)
    for i, price in enumerate((100, 101, 102)):
        engine.execute(limit(1, side ^ 3, 1, price, ts=i))
    events = engine.execute(market(2, side, 5, ts=9))
    assert sorted(t[0] for t in trades(events)) == [100, 101, 102]
    assert [e.reason for e in events if e.type == CANCELED] == [CancelReason.NO_LIQUIDITY]


def test_market_fok_counts_only_the_liquidity_inside_the_protection_band() -> None:
    engine = make_engine(market_band_ticks=1)
    for price in (100, 101, 102):
        engine.execute(limit(1, SELL, 1, price))
    events = engine.execute(market(2, BUY, 3, tif=Tif.FOK))
    assert types(events) == [ACK, CANCELED] and events[1].reason == CancelReason.FOK
    assert trades(engine.execute(market(2, BUY, 2, tif=Tif.FOK))) == [(100, 1, 1, 5), (101, 1, 2, 5)]


# ---- capacity ------------------------------------------------------------------------------------------------------


def test_gtc_order_is_rejected_when_the_order_pool_is_full_even_if_it_would_fill_completely() -> None:
    engine = make_engine(EngineConfig(max_orders=2))
    engine.execute(limit(1, SELL, 1, 100))
    engine.execute(limit(1, SELL, 1, 101))
    assert reject_reason(engine.execute(limit(2, BUY, 1, 100))) == RejectReason.ORDER_POOL_EXHAUSTED
    assert trades(engine.execute(limit(2, BUY, 1, 100, tif=Tif.IOC))) == [(100, 1, 1, 3)]
    assert types(engine.execute(limit(2, BUY, 1, 90)))[0] == ACK


def test_gtc_order_at_a_new_price_is_rejected_when_its_side_has_max_levels() -> None:
    engine = make_engine(EngineConfig(max_levels_per_side=2))
    engine.execute(limit(1, BUY, 1, 100))
    engine.execute(limit(1, BUY, 1, 99))
    assert reject_reason(engine.execute(limit(1, BUY, 1, 98))) == RejectReason.BOOK_LEVELS_EXHAUSTED
    assert types(engine.execute(limit(1, BUY, 1, 99)))[0] == ACK  # an existing level
    assert types(engine.execute(limit(1, SELL, 1, 120)))[0] == ACK  # the other side has room


def test_modify_to_a_new_price_on_a_full_side_is_rejected_unless_the_order_is_alone_at_its_level() -> None:
    engine = make_engine(EngineConfig(max_levels_per_side=2))
    engine.execute(limit(1, BUY, 1, 100))  # 1
    engine.execute(limit(1, BUY, 1, 99))  # 2
    engine.execute(limit(1, BUY, 1, 99))  # 3
    assert reject_reason(engine.execute(Command.modify(1, 2, price=98))) == RejectReason.BOOK_LEVELS_EXHAUSTED
    assert types(engine.execute(Command.modify(1, 1, price=97)))[0] == MODIFIED
    assert [lv.price for lv in engine.l2("AAA")["bids"]] == [99, 97]


# ---- a big sweep ----------------------------------------------------------------------------------------------------


def test_one_taker_sweeps_five_thousand_makers_in_price_time_order() -> None:
    engine = make_engine()
    for i in range(5000):
        engine.execute(limit(1 + i % 7, SELL, 2, 1000 + i // 10))  # 500 levels of 10 makers
    events = engine.execute(limit(9, BUY, 10_001, 2000, ts=1))
    printed = trades(events)
    assert len(printed) == 5000
    assert [t[2] for t in printed] == list(range(1, 5001))
    assert [t[0] for t in printed] == [1000 + i // 10 for i in range(5000)]
    assert sum(t[1] for t in printed) == 10_000
    deltas = [e for e in events if e.type == BOOK_DELTA]
    assert len(deltas) == 501  # 500 emptied ask levels, then the rest of the taker at 2000
    assert deltas[-1].price == 2000 and deltas[-1].qty == 1 and deltas[-1].order_count == 1
    assert all(e.qty == 0 and e.order_count == 0 for e in deltas[:-1])
    assert engine.l2("AAA") == {"bids": [Level(2000, 1, 1)], "asks": []}
    assert engine.position(9, "AAA").position == 10_000


# ---- exact event sequences -----------------------------------------------------------------------------------------


def test_a_trade_emits_ack_fill_maker_fill_taker_trade_then_one_book_delta_per_level() -> None:
    engine = make_engine()
    assert engine.execute(limit(1, SELL, 5, 100, ts=10, cloid=7)) == [
        ev(ACK, SELL, 1, Op.NEW, 1, 10, 1, 7, 100, 5, 5, last=True),
        ev(BOOK_DELTA, SELL, 0, 0, 2, 10, 0, 1, 100, 5, 0),
    ]
    assert engine.execute(limit(2, BUY, 8, 101, ts=11, cloid=9)) == [
        ev(ACK, BUY, 2, Op.NEW, 3, 11, 2, 9, 101, 8, 8),
        ev(FILL, SELL, 1, Liquidity.MAKER, 4, 11, 1, 1, 100, 5, 0),
        ev(FILL, BUY, 2, Liquidity.TAKER, 5, 11, 2, 1, 100, 5, 3, last=True),
        ev(TRADE, BUY, 2, 1, 6, 11, 2, 1, 100, 5, 1),
        ev(BOOK_DELTA, SELL, 0, 0, 7, 11, 0, 0, 100, 0, 0),
        ev(BOOK_DELTA, BUY, 0, 0, 8, 11, 0, 1, 101, 3, 0),
    ]
    assert engine.position(1, "AAA") == Position(-5, 500, 0, 0, 0, False, 0)
    assert engine.position(2, "AAA") == Position(5, -500, 3, 0, 1, False, 0)


def test_a_reject_echoes_the_command_and_is_the_only_event() -> None:
    engine = make_engine()
    cmd = Command(Op.NEW, 7, 0, 3, OrderType.LIMIT, Tif.GTC, Stp.NONE, 2, 42, 5, 11, 100, 4)
    assert engine.execute(cmd) == [ev(REJECT, 7, 3, RejectReason.UNKNOWN_SIDE, 1, 42, 5, 11, 100, 4, 0, last=True)]
    assert engine.execute(Command.cancel(3, 99, ts_ns=43)) == [
        ev(REJECT, 0, 3, RejectReason.UNKNOWN_ORDER, 2, 43, 99, 0, 0, 0, 0, symbol=SYMBOL_NONE, last=True)
    ]
    assert engine.execute(Command(10, client_id=3, ts_ns=44)) == [
        ev(REJECT, 0, 3, RejectReason.UNKNOWN_OP, 3, 44, 0, 0, 0, 0, 0, symbol=SYMBOL_NONE, last=True)
    ]
    assert engine.execute(Command(10, client_id=999, ts_ns=45))[0].reason == RejectReason.UNKNOWN_CLIENT
    assert engine.l2("AAA") == {"bids": [], "asks": []}
    assert engine.execute(limit(1, BUY, 1, 100))[0].order_id == 1  # rejects took no id


def test_mass_cancel_emits_cancels_in_ascending_order_id_then_an_ack_with_the_count() -> None:
    engine = make_engine()
    engine.add_symbol(SymbolConfig(name="BBB"))
    engine.execute(limit(1, BUY, 1, 100))  # 1
    engine.execute(Command.new(1, 1, SELL, 2, 300))  # 2, BBB
    engine.execute(limit(2, BUY, 1, 100))  # 3, another client
    engine.execute(limit(1, SELL, 3, 200, cloid=5))  # 4
    events = engine.execute(Command.mass_cancel(1, ts_ns=50))
    assert events == [
        ev(CANCELED, BUY, 1, CancelReason.MASS_CANCEL, 9, 50, 1, 0, 100, 1, 0),
        ev(CANCELED, SELL, 1, CancelReason.MASS_CANCEL, 10, 50, 2, 0, 300, 2, 0, symbol=1),
        ev(CANCELED, SELL, 1, CancelReason.MASS_CANCEL, 11, 50, 4, 5, 200, 3, 0),
        ev(ACK, 0, 1, Op.MASS_CANCEL, 12, 50, 0, 0, 0, 3, 0, symbol=SYMBOL_NONE, last=True),
        ev(BOOK_DELTA, BUY, 0, 0, 13, 50, 0, 1, 100, 1, 0),
        ev(BOOK_DELTA, SELL, 0, 0, 14, 50, 0, 0, 300, 0, 0, symbol=1),
        ev(BOOK_DELTA, SELL, 0, 0, 15, 50, 0, 0, 200, 0, 0),
    ]
    assert engine.execute(Command.mass_cancel(1, 1, ts_ns=51)) == [
        ev(ACK, 0, 1, Op.MASS_CANCEL, 16, 51, 0, 0, 0, 0, 0, symbol=1, last=True)
    ]
    assert reject_reason(engine.execute(Command.mass_cancel(1, 5))) == RejectReason.UNKNOWN_SYMBOL


def test_modify_emits_modified_first_then_trades_as_a_taker_and_rests_the_remainder() -> None:
    engine = make_engine()
    engine.execute(limit(1, SELL, 2, 101, ts=1))  # 1
    engine.execute(limit(2, BUY, 5, 99, ts=2, cloid=3))  # 2
    assert engine.execute(Command.modify(2, 2, price=101, ts_ns=3)) == [
        ev(MODIFIED, BUY, 2, 0, 5, 3, 2, 3, 101, 5, 5),
        ev(FILL, SELL, 1, Liquidity.MAKER, 6, 3, 1, 1, 101, 2, 0),
        ev(FILL, BUY, 2, Liquidity.TAKER, 7, 3, 2, 1, 101, 2, 3, last=True),
        ev(TRADE, BUY, 2, 1, 8, 3, 2, 1, 101, 2, 1),
        ev(BOOK_DELTA, BUY, 0, 0, 9, 3, 0, 0, 99, 0, 0),
        ev(BOOK_DELTA, SELL, 0, 0, 10, 3, 0, 0, 101, 0, 0),
        ev(BOOK_DELTA, BUY, 0, 0, 11, 3, 0, 1, 101, 3, 0),
    ]
    assert engine.execute(Command.modify(2, 2, qty=3, price=101, ts_ns=4)) == [
        ev(MODIFIED, BUY, 2, 0, 12, 4, 2, 3, 101, 3, 3, last=True)
    ]


def test_stp_decrement_cancels_the_maker_then_the_taker_by_the_smaller_open_qty() -> None:
    engine = make_engine()
    engine.execute(limit(1, SELL, 5, 100, ts=1))  # 1
    events = engine.execute(limit(1, BUY, 3, 100, ts=2, stp=Stp.DECREMENT))  # 2
    assert events == [
        ev(ACK, BUY, 1, Op.NEW, 3, 2, 2, 0, 100, 3, 3),
        ev(CANCELED, SELL, 1, CancelReason.STP, 4, 2, 1, 0, 100, 3, 2),
        ev(CANCELED, BUY, 1, CancelReason.STP, 5, 2, 2, 0, 100, 3, 0, last=True),
        ev(BOOK_DELTA, SELL, 0, 0, 6, 2, 0, 1, 100, 2, 0),
    ]


def test_stp_expire_both_cancels_the_maker_then_the_taker_and_stops() -> None:
    engine = make_engine()
    engine.execute(limit(1, SELL, 5, 100, ts=1))  # 1
    events = engine.execute(market(1, BUY, 3, ts=2, stp=Stp.EXPIRE_BOTH))  # 2
    assert events == [
        ev(ACK, BUY, 1, Op.NEW, 3, 2, 2, 0, 0, 3, 3),
        ev(CANCELED, SELL, 1, CancelReason.STP, 4, 2, 1, 0, 100, 5, 0),
        ev(CANCELED, BUY, 1, CancelReason.STP, 5, 2, 2, 0, 0, 3, 0, last=True),
        ev(BOOK_DELTA, SELL, 0, 0, 6, 2, 0, 0, 100, 0, 0),
    ]


def test_a_killed_fok_emits_only_its_ack_and_a_fok_cancel_of_its_whole_qty() -> None:
    engine = make_engine()
    engine.execute(limit(1, SELL, 2, 100, ts=1))
    events = engine.execute(limit(2, BUY, 3, 100, ts=2, tif=Tif.FOK, cloid=4))
    assert events == [
        ev(ACK, BUY, 2, Op.NEW, 3, 2, 2, 4, 100, 3, 3),
        ev(CANCELED, BUY, 2, CancelReason.FOK, 4, 2, 2, 4, 100, 3, 0, last=True),
    ]


def test_a_cancel_emits_canceled_user_with_the_open_qty_then_the_book_delta() -> None:
    engine = make_engine()
    engine.execute(limit(1, BUY, 5, 100, ts=1, cloid=8))
    engine.execute(limit(2, BUY, 1, 100, ts=2))
    engine.execute(limit(3, SELL, 2, 100, ts=3))
    assert engine.execute(Command.cancel(1, 1, ts_ns=4)) == [
        ev(CANCELED, BUY, 1, CancelReason.USER, 10, 4, 1, 8, 100, 3, 0, last=True),
        ev(BOOK_DELTA, BUY, 0, 0, 11, 4, 0, 1, 100, 1, 0),
    ]


# ---- invariants on a random stream -----------------------------------------------------------------------------------


def _random_stream(rng: random.Random, n: int) -> list[Command]:
    cmds = []
    for ts in range(1, n + 1):
        client = rng.randrange(4)
        r = rng.random()
        if r < 0.6:
            side = rng.choice((BUY, SELL))
            kind = rng.random()
            stp = rng.choice(list(Stp))
            if kind < 0.15:
                tif = rng.choice((Tif.IOC, Tif.FOK))
                cmds.append(Command.new(client, 0, side, rng.randint(1, 12), order_type=OrderType.MARKET, tif=tif,
                                        stp=stp, ts_ns=ts))  # fmt: skip
            else:
                tif = rng.choice((Tif.GTC, Tif.GTC, Tif.GTC, Tif.IOC, Tif.FOK))
                post_only = tif == Tif.GTC and rng.random() < 0.1
                cmds.append(Command.new(client, 0, side, rng.randint(1, 12), 100 + rng.randint(-6, 6), tif=tif,
                                        stp=stp, post_only=post_only, ts_ns=ts))  # fmt: skip
        elif r < 0.8:
            cmds.append(Command.cancel(client, rng.randint(1, max(1, ts // 2)), ts_ns=ts))
        elif r < 0.97:
            qty = rng.choice((None, rng.randint(1, 12)))
            price = rng.choice((None, 100 + rng.randint(-6, 6))) if qty else 100 + rng.randint(-6, 6)
            cmds.append(Command.modify(client, rng.randint(1, max(1, ts // 2)), qty=qty, price=price, ts_ns=ts))
        else:
            cmds.append(Command.mass_cancel(client, ts_ns=ts))
    return cmds


def test_random_stream_conserves_every_order_quantity_and_never_leaves_the_book_crossed() -> None:
    engine = make_engine()
    rng = random.Random(20240611)
    original: dict[int, int] = {}  # order qty, plus each modify's change of the open qty
    open_qty: dict[int, int] = {}
    done: dict[int, int] = defaultdict(int)  # filled + cancelled
    seq = 0
    for cmd in _random_stream(rng, 4000):
        for e in engine.execute(cmd):
            seq += 1
            assert e.seq == seq
            if e.type == ACK and e.acked_op == Op.NEW:
                original[e.order_id] = e.qty
                open_qty[e.order_id] = e.qty
            elif e.type == MODIFIED:
                original[e.order_id] += e.qty - open_qty[e.order_id]
                open_qty[e.order_id] = e.qty
            elif e.type in (FILL, CANCELED):
                done[e.order_id] += e.qty
                open_qty[e.order_id] = e.leaves
                assert e.leaves >= 0
        levels = engine.l2("AAA", 1)
        if levels["bids"] and levels["asks"]:
            assert levels["bids"][0].price < levels["asks"][0].price, f"crossed after {cmd}"
    resting = {o.order_id: o.open_qty for orders in engine.l3("AAA").values() for o in orders}
    for order_id, qty in original.items():
        assert qty == done[order_id] + resting.get(order_id, 0), f"order {order_id} does not add up"
        assert open_qty[order_id] == resting.get(order_id, 0)
    # Every level's qty and count agree with its orders.
    for side, side_levels in engine.l2("AAA").items():
        for lv in side_levels:
            orders = [o for o in engine.l3("AAA")[side] if o.price == lv.price]
            assert lv == Level(lv.price, sum(o.open_qty for o in orders), len(orders))
    assert len(original) > 500 and len(resting) > 0


def test_l3_lists_orders_in_price_then_time_priority() -> None:
    engine = make_engine()
    for price in (100, 101, 100, 99):
        engine.execute(limit(1, BUY, 1, price))
    assert engine.l3("AAA")["bids"] == [L3Order(2, 1, 101, 1), L3Order(1, 1, 100, 1), L3Order(3, 1, 100, 1),
                                       L3Order(4, 1, 99, 1)]  # fmt: skip
    assert engine.l2("AAA", 2)["bids"] == [Level(101, 1, 1), Level(100, 2, 2)]
