"""Every reject reason and every cancel reason, each by a scenario that produces it, on both engines.

A rejected command must be the only event of its command, change nothing (books, positions, the next
order id) and leave the engine's invariants intact.
"""

from __future__ import annotations

import pytest

from c_engine import (
    CancelReason,
    ClientLimits,
    Command,
    Engine,
    EngineConfig,
    EventType,
    Flag,
    Op,
    OrderType,
    RejectReason,
    Side,
    Stp,
    SymbolConfig,
    Tif,
)
from c_engine.reference import ReferenceEngine

BUY, SELL = Side.BUY, Side.SELL
ENGINES = [pytest.param(Engine, id="c"), pytest.param(ReferenceEngine, id="reference")]
AnyEngine = Engine | ReferenceEngine


def build(engine_cls: type[AnyEngine], **config: int) -> AnyEngine:
    cfg = {"max_orders": 64, "max_levels_per_side": 16, "max_symbols": 4, "max_clients": 16, **config}
    engine = engine_cls(EngineConfig(**cfg))
    engine.add_symbol(SymbolConfig("AAA", max_price_ticks=100_000, max_order_lots=1_000))
    engine.add_symbol(SymbolConfig("BND", band_ticks=5, reference_price=1_000))
    # a notional of 2^62 per order (the most add_symbol allows): two full-size orders reach int64's edge
    engine.add_symbol(SymbolConfig("BIG", max_price_ticks=1 << 40, max_order_lots=1 << 22))
    return engine


BIG, MKT = 2, 3  # symbol ids: build()'s third symbol, and the one test_each_cancel_reason_is_reported adds


def limit(client: int, side: int, price: int, qty: int, **kw: object) -> Command:
    return Command.new(client, 0, side, qty, price, **kw)  # type: ignore[arg-type]


# Each case: (engine config, client limits, setup commands, the command that must be rejected).
Case = tuple[dict[str, int], dict[int, ClientLimits], list[Command], Command]

LOSS = [limit(2, SELL, 110, 5), limit(1, BUY, 110, 5), limit(3, BUY, 100, 1), limit(4, SELL, 100, 1)]

REJECT_CASES: dict[RejectReason, Case] = {
    RejectReason.UNKNOWN_CLIENT: ({}, {}, [], limit(300, BUY, 100, 1)),
    RejectReason.UNKNOWN_OP: ({}, {}, [], Command(op=10, client_id=1)),
    RejectReason.UNKNOWN_SYMBOL: ({}, {}, [], Command.new(1, 7, BUY, 1, 100)),
    RejectReason.UNKNOWN_SIDE: ({}, {}, [], limit(1, 3, 100, 1)),
    RejectReason.UNKNOWN_ORDER_TYPE: ({}, {}, [], Command.new(1, 0, BUY, 1, 100, order_type=5)),
    RejectReason.UNKNOWN_TIF: ({}, {}, [], limit(1, BUY, 100, 1, tif=0)),
    RejectReason.UNKNOWN_STP: ({}, {}, [], limit(1, BUY, 100, 1, stp=255)),
    RejectReason.MARKET_NOT_IOC_FOK: ({}, {}, [], Command.new(1, 0, BUY, 1, order_type=OrderType.MARKET)),
    RejectReason.POST_ONLY_NOT_GTC_LIMIT: ({}, {}, [], limit(1, BUY, 100, 1, tif=Tif.IOC, post_only=True)),
    RejectReason.INVALID_QTY: ({}, {}, [], limit(1, BUY, 100, 0)),
    RejectReason.QTY_ABOVE_SYMBOL_MAX: ({}, {}, [], limit(1, BUY, 100, 1_001)),
    RejectReason.MISSING_PRICE: ({}, {}, [], Command.new(1, 0, BUY, 1)),
    RejectReason.MARKET_WITH_PRICE: ({}, {}, [], Command.new(1, 0, BUY, 1, 100, order_type=OrderType.MARKET,
                                                             tif=Tif.IOC)),
    RejectReason.INVALID_PRICE: ({}, {}, [], limit(1, BUY, -5, 1)),
    RejectReason.PRICE_OUT_OF_RANGE: ({}, {}, [], limit(1, BUY, 100_001, 1)),
    RejectReason.PRICE_BAND: ({}, {}, [], Command.new(1, 1, BUY, 1, 1_006)),
    RejectReason.MODIFY_NOTHING: ({}, {}, [limit(1, BUY, 100, 1)], Command.modify(1, 1)),
    RejectReason.UNKNOWN_ORDER: ({}, {}, [], Command.cancel(1, 99)),
    RejectReason.NOT_OWNER: ({}, {}, [limit(1, BUY, 100, 1)], Command.cancel(2, 1)),
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: ({}, {}, [limit(1, BUY, 100, 1, cloid=5)],
                                             Command.new(1, 1, SELL, 1, 1_000, cloid=5)),
    RejectReason.KILL_SWITCH: ({}, {1: ClientLimits(max_loss=10)}, LOSS, limit(1, BUY, 90, 1)),
    RejectReason.RATE_LIMIT: ({}, {1: ClientLimits(rate_per_s=1)}, [limit(1, BUY, 90, 1, ts_ns=5)],
                              limit(1, BUY, 91, 1, ts_ns=5)),
    RejectReason.RISK_MAX_ORDER_QTY: ({}, {1: ClientLimits(max_order_qty=5)}, [], limit(1, BUY, 100, 6)),
    RejectReason.RISK_MAX_OPEN_ORDERS: ({}, {1: ClientLimits(max_open_orders=1)}, [limit(1, BUY, 100, 1)],
                                        limit(1, SELL, 200, 1)),
    RejectReason.RISK_MAX_POSITION: ({}, {1: ClientLimits(max_position=10)}, [limit(1, BUY, 100, 6)],
                                     limit(1, BUY, 99, 5, tif=Tif.IOC)),
    RejectReason.POST_ONLY_WOULD_TAKE: ({}, {}, [limit(2, SELL, 100, 1)], limit(1, BUY, 100, 1, post_only=True)),
    RejectReason.ORDER_POOL_EXHAUSTED: ({"max_orders": 1}, {}, [limit(1, BUY, 100, 1)], limit(1, BUY, 100, 1)),
    RejectReason.BOOK_LEVELS_EXHAUSTED: ({"max_levels_per_side": 1}, {}, [limit(1, BUY, 100, 1)],
                                         limit(1, BUY, 99, 1)),
    # an open buy of 2^22 lots, worth 2^62 at the max price of 2^40 ticks: one more would be worth 2^63
    RejectReason.RISK_INT64_OVERFLOW: ({}, {}, [Command.new(1, BIG, BUY, 1 << 22, 1)],
                                       Command.new(1, BIG, BUY, 1 << 22, 2)),
    # the engine loop flags a command whose link may not act for its client; a valid order otherwise
    RejectReason.NOT_GRANTED: ({}, {}, [], limit(1, BUY, 100, 1)._replace(flags=Flag.HAS_PRICE | Flag.NOT_GRANTED)),
    RejectReason.SYMBOL_HALTED: ({}, {}, [Command.halt(1)], Command.new(1, 1, BUY, 1, 100)),
    RejectReason.INVALID_LIMIT: ({}, {}, [], Command.set_limit(1, 7, 5)),  # there is no limit 7
}  # fmt: skip


def observable_state(engine: AnyEngine) -> tuple[tuple[object, ...], tuple[object, ...]]:
    books = tuple((engine.l2(s), engine.l3(s)) for s in ("AAA", "BND", "BIG"))
    positions = tuple(engine.position(c, s) for c in range(8) for s in ("AAA", "BND", "BIG"))
    return books, positions


def test_every_reject_reason_has_a_scenario() -> None:
    assert set(REJECT_CASES) == set(RejectReason)


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize("reason", list(RejectReason), ids=lambda r: r.name)
def test_rejected_command_gets_its_reason_and_changes_nothing(
    engine_cls: type[AnyEngine], reason: RejectReason
) -> None:
    config, limits, setup, rejected = REJECT_CASES[reason]
    engine = build(engine_cls, **config)
    for client, lim in limits.items():
        engine.set_client_limits(client, lim)
    for cmd in setup:
        assert all(e.type != EventType.REJECT for e in engine.execute(cmd)), cmd
    before = observable_state(engine)
    hash_before = engine.state_hash() if isinstance(engine, Engine) else None

    events = engine.execute(rejected)

    assert [(e.type, e.reason) for e in events] == [(EventType.REJECT, reason)]
    assert (events[0].client_id, events[0].order_id, events[0].cloid) == (
        rejected.client_id, rejected.order_id, rejected.cloid)  # fmt: skip
    assert observable_state(engine) == before
    if isinstance(engine, Engine):  # the C engine alone has a state hash and an invariant check
        assert engine.state_hash() == hash_before
        engine.check()
    next_ack = engine.execute(Command.new(9, 0, SELL, 1, 99_999, tif=Tif.IOC, ts_ns=10**12))[0]
    assert next_ack.type == EventType.ACK
    assert next_ack.order_id == 1 + sum(1 for c in setup if c.op == Op.NEW)


# Each case: (limits, setup commands, the command whose events include a CANCELED with this reason).
CANCEL_CASES: dict[CancelReason, tuple[dict[int, ClientLimits], list[Command], Command]] = {
    CancelReason.USER: ({}, [limit(1, BUY, 100, 3)], Command.cancel(1, 1)),
    CancelReason.IOC: ({}, [limit(2, SELL, 100, 1)], limit(1, BUY, 100, 3, tif=Tif.IOC)),
    CancelReason.FOK: ({}, [limit(2, SELL, 100, 1)], limit(1, BUY, 100, 3, tif=Tif.FOK)),
    CancelReason.NO_LIQUIDITY: ({}, [], Command.new(1, 0, BUY, 3, order_type=OrderType.MARKET, tif=Tif.IOC)),
    CancelReason.STP: ({}, [limit(1, SELL, 100, 1)], limit(1, BUY, 100, 3, stp=Stp.EXPIRE_TAKER)),
    CancelReason.MASS_CANCEL: ({}, [limit(1, BUY, 100, 3)], Command.mass_cancel(1)),
    CancelReason.DISCONNECT: ({}, [limit(1, BUY, 100, 3)], Command.mass_cancel(1, disconnect=True)),
    CancelReason.KILL_SWITCH: ({1: ClientLimits(max_loss=10)}, LOSS[:3] + [limit(1, BUY, 50, 1)], LOSS[3]),
    CancelReason.PRICE_BAND: ({}, [Command.new(2, MKT, SELL, 1, 100), Command.new(2, MKT, SELL, 1, 105)],
                              Command.new(1, MKT, BUY, 2, order_type=OrderType.MARKET, tif=Tif.IOC)),
}  # fmt: skip


@pytest.mark.parametrize("engine_cls", ENGINES)
@pytest.mark.parametrize("reason", list(CANCEL_CASES), ids=lambda r: r.name)
def test_each_cancel_reason_is_reported(engine_cls: type[AnyEngine], reason: CancelReason) -> None:
    limits, setup, trigger = CANCEL_CASES[reason]
    engine = build(engine_cls)
    engine.add_symbol(SymbolConfig("MKT", market_band_ticks=3))
    for client, lim in limits.items():
        engine.set_client_limits(client, lim)
    for cmd in setup:
        engine.execute(cmd)
    events = engine.execute(trigger)
    assert any(e.type == EventType.CANCELED and e.reason == reason for e in events), events


def test_every_cancel_reason_has_a_scenario() -> None:
    assert set(CANCEL_CASES) == set(CancelReason)
