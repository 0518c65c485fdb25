"""The C engine against the pure-Python reference, event for event, on random command streams.

Hypothesis draws each stream as a byte string, ``RECORD`` bytes per command (cheap to generate, so a CI run
covers PROPTRADE_FUZZ_COMMANDS commands, default 200,000, in well under a minute). Each record decodes through
weighted tables into one command: several symbols (one with a narrow price domain, one with bands), clients
with and without risk limits (a small loss limit, a rate limit) and ids outside the engine's range, every op,
every type/tif/STP/post-only, and bad values (qty 0 or negative, unknown codes, missing prices, unknown and
other clients' order ids), with prices clustered around ``MID`` so that orders cross. Cancels and modifies
pick recent order ids, resolved against the reference's state while the stream runs, so most hit live orders.

After every command both engines' events must be equal and the book must not be crossed; after each stream
their L1/L2/L3 books, last prices and every position must be equal and ``Engine.check()`` must pass. An
all-zero record is no command at all, so Hypothesis shrinks a failing stream by zeroing the commands that do not
matter; the shrunk stream is saved as a command file under PROPTRADE_FAILURES_DIR (default build/failures/)
and the assertion names it: ``proptrade engine replay FILE --symbols ... --engine reference`` replays it.

``make fuzz`` runs the slow-marked long run (PROPTRADE_FUZZ_COMMANDS=5000000) on other seeds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

try:  # first: importing any part of c_engine imports Engine (c_engine/__init__.py)
    from c_engine import Engine
except ImportError as exc:  # the C extension is not built (or not written) yet
    pytest.skip(f"c_engine.Engine is not importable, nothing to compare with: {exc}", allow_module_level=True)

from c_engine._config import ClientLimits, EngineConfig, SymbolConfig
from c_engine._types import Command, Event
from c_engine._wire import SYMBOL_NONE, Flag, Op, OrderType, Side, Stp, Tif
from c_engine.reference import ReferenceEngine

REPO = Path(__file__).resolve().parents[2]
FUZZ_COMMANDS = int(os.environ.get("PROPTRADE_FUZZ_COMMANDS", "200000"))
FAILURES_DIR = Path(os.environ.get("PROPTRADE_FAILURES_DIR", REPO / "build" / "failures"))
#: the seed of the first Hypothesis round; each further round (and the slow run) uses the next ones
BASE_SEED = int(os.environ.get("PROPTRADE_FUZZ_SEED", "20250101"))
SLOW_SEED_OFFSET = 1_000_000

#: bytes per command in a stream
RECORD = 12
#: commands per stream: 1..MAX_STREAM, about half of it on average
MAX_STREAM = 400
MEAN_STREAM = MAX_STREAM // 2
#: the price the order flow clusters around, in ticks
MID = 1000
#: the clients that send orders: 0..5; 256 and 300 are outside max_clients (the default 256, as a replay has)
CLIENTS_USED = 6
MAX_CLIENTS = EngineConfig().max_clients

SYMBOLS = (
    SymbolConfig(name="AAA"),
    SymbolConfig(name="BBB", band_ticks=8, reference_price=MID, market_band_ticks=3, pnl_unit=2),
    # the narrow one: 11 valid prices, small orders, and a band in basis points (1000 * 60 // 10000 = 6 ticks)
    SymbolConfig(name="CCC", min_price_ticks=MID - 5, max_price_ticks=MID + 5, max_order_lots=50, band_bps=60,
                 reference_price=MID, pnl_unit=3),
    # the huge one: a lot may cost up to 2^62 ticks, so a client's second open sell (third buy) of one lot could take
    # its cash out of int64 (RISK_INT64_OVERFLOW), and PnL runs through the 128-bit paths
    SymbolConfig(name="HUGE", max_price_ticks=1 << 62, max_order_lots=1),
)  # fmt: skip
LIMITS = {
    1: ClientLimits(max_order_qty=30, max_open_orders=6, max_position=60),
    2: ClientLimits(max_position=150, max_loss=400),
    3: ClientLimits(max_order_qty=25, max_loss=40),
    4: ClientLimits(rate_per_s=20, rate_burst=4),
}
CONFIGS = {
    "roomy": EngineConfig(max_orders=4096, max_levels_per_side=256, max_symbols=4, max_clients=MAX_CLIENTS),
    # capacity limits that a stream reaches: ORDER_POOL_EXHAUSTED and BOOK_LEVELS_EXHAUSTED
    "tight": EngineConfig(max_orders=12, max_levels_per_side=4, max_symbols=4, max_clients=MAX_CLIENTS),
}


class AnyEngine(Protocol):
    """What the test calls on both engines. add_symbol and set_client_limits are positional-only here: the C
    engine names their parameters differently (and also takes a name and fields instead of a config)."""

    symbol_names: dict[int, str]

    def add_symbol(self, cfg: SymbolConfig, /) -> int: ...
    def set_client_limits(self, client_id: int, limits: ClientLimits, /) -> None: ...
    def execute(self, cmd: Command) -> list[Event]: ...
    def l1(self, symbol: str | int) -> Any: ...
    def l2(self, symbol: str | int, depth: int | None = None) -> Any: ...
    def l3(self, symbol: str | int) -> Any: ...
    def position(self, client_id: int, symbol: str | int) -> Any: ...
    def last_price(self, symbol: str | int) -> int | None: ...
    def stats(self) -> dict[str, int]: ...


E = TypeVar("E", bound=AnyEngine)


def make(engine_cls: Callable[[EngineConfig], E], config: EngineConfig) -> E:
    """An engine of ``engine_cls`` (the C one or the reference) with the test's symbols and client limits."""
    engine = engine_cls(config)
    for cfg in SYMBOLS:
        engine.add_symbol(cfg)
    for client, limits in LIMITS.items():
        engine.set_client_limits(client, limits)
    return engine


# ---- decoding a record into a command ---------------------------------------------------------------------------


def table(*weighted: tuple[Any, int]) -> tuple[Any, ...]:
    """A 256-entry lookup table: byte -> value, each value ``weight`` times; the first value is byte 0."""
    out = tuple(value for value, weight in weighted for _ in range(weight))
    assert len(out) == 256, len(out)
    return out


SKIP, BAD_OP = 0, -1
# Halts are rare and resumes more frequent, so a symbol is halted about a fifth of the time.
OPS = table((SKIP, 1), (Op.NEW, 150), (Op.CANCEL, 37), (Op.MODIFY, 40), (Op.MASS_CANCEL, 6),
            (Op.KILL_RESET, 8), (Op.HALT, 1), (Op.RESUME, 4), (Op.KILL, 1), (Op.SET_LIMIT, 2),
            (BAD_OP, 6))  # fmt: skip
BAD_OPS = (0, 10, 11, 200, 255)
CLIENTS = table((0, 36), (1, 45), (2, 45), (3, 45), (4, 40), (5, 37), (MAX_CLIENTS, 4), (300, 4))
assert len(set(CLIENTS)) == CLIENTS_USED + 2
SYMBOL_IDS = table((0, 80), (1, 70), (2, 60), (3, 40), (len(SYMBOLS), 4), (SYMBOL_NONE, 2))
SIDES = table((Side.BUY, 124), (Side.SELL, 124), (0, 3), (3, 3), (255, 2))
L, M = OrderType.LIMIT, OrderType.MARKET
KINDS = table(  # (order type, tif, post-only)
    ((L, Tif.GTC, False), 140), ((L, Tif.IOC, False), 25), ((L, Tif.FOK, False), 18), ((M, Tif.IOC, False), 20),
    ((M, Tif.FOK, False), 12), ((L, Tif.GTC, True), 25), ((L, Tif.IOC, True), 3), ((M, Tif.IOC, True), 3),
    ((M, Tif.GTC, False), 3), ((0, Tif.GTC, False), 2), ((3, Tif.GTC, False), 1), ((L, 0, False), 2),
    ((L, 4, False), 2),
)  # fmt: skip
STPS = table((Stp.NONE, 120), (Stp.EXPIRE_TAKER, 32), (Stp.EXPIRE_MAKER, 32), (Stp.EXPIRE_BOTH, 32),
             (Stp.DECREMENT, 34), (5, 3), (255, 3))  # fmt: skip
NO_PRICE = None
PRICES = table(
    *[(MID + offset, 11) for offset in (0, *range(-10, 0), *range(1, 11))],
    (NO_PRICE, 5), (0, 4), (-5, 3), (20_000_000, 3), (MID + 200, 5), (MID - 300, 5),
)  # fmt: skip
QTYS = table(*[(q, 10) for q in range(1, 21)], *[(q, 6) for q in (25, 30, 35, 40, 45, 50, 60)],
             (0, 4), (-3, 3), (51, 3), (2_000_000, 4))  # fmt: skip
CLOIDS = table((0, 128), *[(c, 8) for c in range(1, 17)])
TS_STEPS = table((0, 48), (1, 30), (1_000, 30), (1_000_000, 40), (50_000_000, 40), (250_000_000, 30),
                 (1_000_000_000, 20), (5_000_000_000, 6), (-100_000_000, 10), (1 << 62, 2))  # fmt: skip
UINT64_MAX = (1 << 64) - 1
RECENT, ID_ZERO, ID_HUGE, ID_OLD = "recent", "zero", "huge", "old"
ORDER_REFS = table(*[((RECENT, k), 14) for k in range(16)], ((ID_ZERO, 0), 8), ((ID_HUGE, 0), 8),
                   ((ID_OLD, 0), 16))  # fmt: skip
QTY, PRICE, BOTH, NEITHER = "qty", "price", "both", "neither"
MODIFY_FIELDS = table((QTY, 80), (PRICE, 80), (BOTH, 86), (NEITHER, 10))


def decode(records: bytes, ref: ReferenceEngine) -> Iterator[Command]:
    """The commands of a stream, one record at a time, each resolved against ``ref`` as it is then; one in
    256 (ts-step byte 255) carries the engine loop's NOT_GRANTED flag, whatever its op."""
    for cmd, ts_byte in _decode(records, ref):
        yield cmd._replace(flags=cmd.flags | Flag.NOT_GRANTED) if ts_byte == 255 else cmd


def _decode(records: bytes, ref: ReferenceEngine) -> Iterator[tuple[Command, int]]:
    """Each command with its record's ts-step byte.

    Record bytes: 0 op, 1 client, 2 symbol, 3 side, 4 kind, 5 stp, 6 price, 7 qty, 8 cloid, 9 ts step,
    10 order id, 11 spare; cancel, modify and the rest reuse them (see below).
    """
    ts = 0
    for i in range(0, len(records) - RECORD + 1, RECORD):
        b = records[i : i + RECORD]
        op = OPS[b[0]]
        if op == SKIP:
            continue
        ts = min(UINT64_MAX, max(0, ts + TS_STEPS[b[9]]))  # a rare jump of 2**62 ns tests refill overflow
        client = CLIENTS[b[1]]
        if op == Op.NEW:
            order_type, tif, post_only = KINDS[b[4]]
            price = PRICES[b[6]]
            if order_type == OrderType.MARKET:
                price = PRICES[b[6]] if b[6] >= 250 else None  # a market order rarely carries a price
            yield (Command.new(client, SYMBOL_IDS[b[2]], SIDES[b[3]], QTYS[b[7]], price, order_type=order_type,
                              tif=tif, stp=STPS[b[5]], post_only=post_only, cloid=CLOIDS[b[8]],
                              ts_ns=ts), b[9])  # fmt: skip
        elif op in (Op.CANCEL, Op.MODIFY):
            order_id = resolve_order_id(ORDER_REFS[b[10]], b[11], ref)
            order = ref.orders.get(order_id)
            if order is not None and b[8] < 200:  # mostly the owner: the rest is NOT_OWNER
                client = order.client_id
            if op == Op.CANCEL:
                yield (Command.cancel(client, order_id, ts_ns=ts), b[9])
                continue
            fields = MODIFY_FIELDS[b[4]]
            qty = QTYS[b[7]] if fields in (QTY, BOTH) else None
            price = PRICES[b[6]] if fields in (PRICE, BOTH) else None
            if fields in (PRICE, BOTH) and price is NO_PRICE:
                price = order.price if order is not None else MID  # the same price again
            yield (Command.modify(client, order_id, qty=qty, price=price, ts_ns=ts), b[9])
        elif op == Op.MASS_CANCEL:
            symbol = SYMBOL_IDS[b[2]] if b[3] < 128 else None
            # a quarter of them cancel-on-disconnect
            yield (Command.mass_cancel(client, symbol, ts_ns=ts, disconnect=b[4] < 64), b[9])
        elif op == Op.KILL_RESET:
            yield (Command.kill_reset(3 if b[3] < 128 else client, ts_ns=ts), b[9])  # client 3 is the one that trips
        elif op in (Op.HALT, Op.RESUME):
            yield (Command(op, symbol_id=SYMBOL_IDS[b[2]], client_id=client, ts_ns=ts), b[9])
        elif op == Op.KILL:
            yield (Command.kill(client, ts_ns=ts), b[9])
        elif op == Op.SET_LIMIT:  # limits 0 and 7 do not exist; a negative qty is refused too
            yield (Command.set_limit(client, b[3] % 8, QTYS[b[7]], ts_ns=ts), b[9])
        else:
            yield (Command(BAD_OPS[b[3] % len(BAD_OPS)], client_id=client, ts_ns=ts), b[9])


def resolve_order_id(choice: tuple[str, int], spare: int, ref: ReferenceEngine) -> int:
    kind, k = choice
    next_id = ref.stats()["next_order_id"]
    if kind == RECENT:
        return max(1, next_id - 1 - k)
    if kind == ID_ZERO:
        return 0
    if kind == ID_HUGE:
        return 1 << 63
    return 1 + (spare * 7919) % next_id  # any id so far, or the next one (not assigned yet)


# ---- running a stream -----------------------------------------------------------------------------------------------


def first_difference(got: list[Event], want: list[Event]) -> str:
    for i, (g, w) in enumerate(zip(got, want, strict=False)):  # the lengths may differ: reported below
        if g != w:
            return f"event {i}:\n  C:         {g!r}\n  reference: {w!r}"
    return f"C gave {len(got)} events, the reference {len(want)}:\n  C:         {got}\n  reference: {want}"


def save_failure(commands: list[Command], name: str, symbol_names: dict[int, str], config: EngineConfig) -> str:
    """Writes the stream as a command file, with the SYMBOLS.toml and LIMITS.toml to replay it; says how."""
    FAILURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FAILURES_DIR / f"{name}.jsonl"
    try:
        from c_engine.commandfile import dump_commands

        dump_commands(commands, path, symbol_names)
    except (ImportError, ValueError):  # no command-file writer (yet): one repr per line, still readable
        path = path.with_suffix(".txt")
        path.write_text("".join(f"{cmd!r}\n" for cmd in commands))
    symbols, limits = FAILURES_DIR / "fuzz-SYMBOLS.toml", FAILURES_DIR / "fuzz-LIMITS.toml"
    symbols.write_text("".join(
        f"[symbols.{cfg.name}]\n" + "".join(f"{k} = {v!r}\n" for k, v in asdict(cfg).items() if k != "name")
        for cfg in SYMBOLS
    ))  # fmt: skip
    limits.write_text("".join(
        f"[clients.{client}]\n" + "".join(f"{k} = {v}\n" for k, v in asdict(lim).items())
        for client, lim in LIMITS.items()
    ))  # fmt: skip
    capacity = (
        f"--max-orders {config.max_orders} --max-levels-per-side {config.max_levels_per_side} "
        f"--max-clients {config.max_clients}"
    )
    return f"{path} (replay: proptrade engine replay {path} --symbols {symbols} --limits {limits} {capacity})"


def check_not_crossed(engine: AnyEngine, where: str) -> None:
    for sid in range(len(SYMBOLS)):
        bid, ask = engine.l1(sid)
        assert bid is None or ask is None or bid.price < ask.price, f"{where}: book {sid} crossed: {bid} {ask}"


def run_stream(records: bytes, config_name: str, name: str) -> int:
    """Runs one stream through both engines; returns how many commands it had."""
    config = CONFIGS[config_name]
    c_engine, ref = make(Engine, config), make(ReferenceEngine, config)
    executed: list[Command] = []
    try:
        for cmd in decode(records, ref):
            executed.append(cmd)
            got = c_engine.execute(cmd)
            want = ref.execute(cmd)
            assert got == want, f"command {len(executed)} {cmd}: {first_difference(got, want)}"
            check_not_crossed(ref, f"command {len(executed)} (reference)")
        check_not_crossed(c_engine, "end of stream (C)")
        for sid in range(len(SYMBOLS)):
            assert c_engine.l1(sid) == ref.l1(sid), f"symbol {sid}: L1 differs"
            assert c_engine.l2(sid) == ref.l2(sid), f"symbol {sid}: L2 differs"
            assert c_engine.l3(sid) == ref.l3(sid), f"symbol {sid}: L3 differs"
            assert c_engine.last_price(sid) == ref.last_price(sid), f"symbol {sid}: last price differs"
            for client in range(CLIENTS_USED):
                got_pos, want_pos = c_engine.position(client, sid), ref.position(client, sid)
                assert got_pos == want_pos, f"position of client {client} on {sid}: C {got_pos}, ref {want_pos}"
        assert c_engine.stats() == ref.stats(), "stats differ"
        c_engine.check()
    except Exception as exc:
        saved = save_failure(executed, name, ref.symbol_names, config)
        raise AssertionError(
            f"C engine and reference disagree after {len(executed)} commands, engine config {config}. "
            f"The stream is saved as {saved}. {type(exc).__name__}: {exc}"
        ) from exc
    return len(executed)


streams = st.integers(1, MAX_STREAM).flatmap(lambda n: st.binary(min_size=n * RECORD, max_size=n * RECORD))


def fuzz(config_name: str, commands: int, first_seed: int, name: str) -> None:
    """Runs Hypothesis rounds (seeds first_seed, first_seed+1, ...) until ``commands`` commands have run."""
    done = 0
    round_seed = first_seed
    while done < commands:
        # A Hypothesis run starts with its simplest (shortest) streams: a few more examples make each round count.
        examples = math.ceil((commands - done) / MEAN_STREAM) + 20

        @seed(round_seed)
        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(records=streams)
        def one_round(records: bytes) -> None:
            nonlocal done
            done += run_stream(records, config_name, name)

        one_round()
        print(f"{name}: hypothesis seed {round_seed}, {examples} streams, {done} commands so far")
        round_seed += 1


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_c_engine_gives_the_reference_events_books_and_positions_on_random_streams(config_name: str) -> None:
    # Split over the configs so that pytest -n 2 runs them side by side.
    first_seed = BASE_SEED + 1000 * sorted(CONFIGS).index(config_name)
    fuzz(config_name, math.ceil(FUZZ_COMMANDS / len(CONFIGS)), first_seed, f"differential-{config_name}")


@pytest.mark.slow
@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_c_engine_gives_the_reference_events_on_a_long_random_run(
    config_name: str, request: pytest.FixtureRequest
) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long fuzz run: make fuzz (pytest -m slow, PROPTRADE_FUZZ_COMMANDS=5000000)")
    first_seed = BASE_SEED + SLOW_SEED_OFFSET + 1000 * sorted(CONFIGS).index(config_name)
    fuzz(config_name, math.ceil(FUZZ_COMMANDS / len(CONFIGS)), first_seed, f"differential-slow-{config_name}")


def test_decoded_streams_cover_every_op_and_reject_reason_of_the_reference() -> None:
    """The tables reach what the differential test is for: every command type and most outcomes."""
    import random

    from c_engine._wire import CancelReason, EventType, RejectReason

    rng = random.Random(7)
    reasons: set[int] = set()
    cancels: set[int] = set()
    ops: set[int] = set()
    for config_name in sorted(CONFIGS):
        ref = make(ReferenceEngine, CONFIGS[config_name])
        for cmd in decode(rng.randbytes(RECORD * 40_000), ref):
            ops.add(cmd.op)
            for e in ref.execute(cmd):
                if e.type == EventType.REJECT:
                    reasons.add(e.reason)
                elif e.type == EventType.CANCELED:
                    cancels.add(e.reason)
    assert set(Op) <= ops and {0, 10} & ops
    missing = {r.name for r in RejectReason} - {RejectReason(r).name for r in reasons}
    assert not missing, f"never rejected with {sorted(missing)}"
    assert {CancelReason(r).name for r in cancels} == {r.name for r in CancelReason}
