"""The replays behind the market agent, in process: ``LobsterReplay`` in own-events mode and ``BinanceReplay`` fed
only their own account's events (what a client link gives), with other clients' orders in the same engine, and
the markets of ``hotpath/agents/market_replay.py``."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from c_engine import Command, Engine, EngineConfig, Event, EventType, Side, Tif
from c_engine.binance import BinanceReplay, DepthUpdate, Snapshot
from c_engine.binance import symbol_config as binance_symbol
from c_engine.lobster import DELETE, EXECUTE, NEW, LobsterReplay, Message, replay_lobster, symbol_config
from c_engine.lobster_synth import write_synthetic_day
from hotpath.agents.market_replay import LobsterMarket, market_symbol, open_market, parse_market

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
AAPL = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
BINANCE = DATA / "binance" / "usdm_btcusdt_20240808.gz"

BUY, SELL = int(Side.BUY), int(Side.SELL)
_MARKET_DATA = (int(EventType.BOOK_DELTA), int(EventType.TRADE))
MARKET = 5  #: the market account: the book's, the seed and the taker client at once
OTHER = 9  #: another client (a strategy) trading in the same engine
TICK = 100  #: LOBSTER price units a tick


class LinkLike:
    """An in-process engine that answers as a client link does: only the market account's own events, no
    market data, nothing of other clients (hotpath/agents/market_link.py)."""

    def __init__(self, engine: Engine, client: int = MARKET) -> None:
        self.engine, self.client = engine, client

    def symbol_id(self, symbol: str | int) -> int:
        return self.engine.symbol_id(symbol)

    def execute(self, cmd: Command) -> list[Event]:
        return self.own(self.engine.execute(cmd))

    def own(self, events: list[Event]) -> list[Event]:
        return [e for e in events if e.client_id == self.client and e.type not in _MARKET_DATA]

    def execute_batch(self, commands: npt.NDArray[Any]) -> npt.NDArray[Any]:
        rows = self.engine.execute_batch(commands)
        own: npt.NDArray[Any] = rows[(rows["client_id"] == self.client) & ~np.isin(rows["type"], _MARKET_DATA)]
        return own

    def l1(self, symbol: str | int) -> Any:
        raise AssertionError("a link's replay never reads the engine's book")

    def l2(self, symbol: str | int, depth: int | None = None) -> Any:
        raise AssertionError("a link's replay never reads the engine's book")


def need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path.name} not found in {path.parent} (the shared data folder beside the project)")


# --- LOBSTER, own events only ----------------------------------------------------------------------------------


def row(asks: list[tuple[int, int]], bids: list[tuple[int, int]], levels: int = 2) -> list[int]:
    """An order-book line (LOBSTER units) from (price ticks, size) levels, best first."""
    values = []
    for i in range(levels):
        values += [asks[i][0] * TICK, asks[i][1]] if i < len(asks) else [9999999999, 0]
        values += [bids[i][0] * TICK, bids[i][1]] if i < len(bids) else [-9999999999, 0]
    return values


def message(n: int, kind: int, order_id: int, size: int, price: int, side: int) -> Message:
    return Message(n, 34_200_000_000_000 + n, kind, order_id, size, price, side)


def seeded(levels: int = 2) -> tuple[Engine, LinkLike, LobsterReplay, list[int]]:
    """An engine with the book ask 100 @ 100.10, bid 100 @ 99.90, replayed in own-events mode over a link."""
    engine = Engine(EngineConfig())
    engine.add_symbol(symbol_config("X", TICK))
    link = LinkLike(engine)
    replay = LobsterReplay(link, "X", levels, tick=TICK, clients=(MARKET, MARKET, MARKET), own_events_only=True)
    first = row([(10010, 100)], [(9990, 100)])
    replay.seed_line(first, 34_200_000_000_000)
    return engine, link, replay, first


def other(engine: Engine, link: LinkLike, replay: LobsterReplay, side: int, qty: int, price: int,
          tif: int = Tif.GTC) -> list[Event]:  # fmt: skip
    """Another client's order; what it does to the market account's orders reaches the replay as a link would
    deliver it (its FILLs, unsolicited)."""
    events = engine.execute(Command.new(OTHER, engine.symbol_id("X"), side, qty, price, tif=tif))
    replay.observe(link.own(events))
    return events


def levels_of(engine: Engine, side: str) -> list[tuple[int, int]]:
    return [(lv.price, lv.qty) for lv in engine.l2("X")[side]]


def test_own_events_replay_reproduces_a_synthetic_day_and_leaves_the_book_of_the_full_replay(tmp_path: Path) -> None:
    paths = write_synthetic_day(tmp_path, seed=31, events=1500, filtered=True)
    reference = replay_lobster(*paths)
    market = LobsterMarket(parse_market(f"lobster:{paths[0]},{paths[1]}"))
    engine = Engine(EngineConfig())
    engine.add_symbol(market.symbol)
    market.open(LinkLike(engine), MARKET)
    while market.next_ns() is not None:
        market.step()
    assert market.replay is not None
    report = market.replay.report
    assert report.mismatches == 0 and report.anomalies == [], report.lines()
    assert (report.rows_compared, report.refreshes, report.seed_applied) == (
        reference.rows_compared, reference.refreshes, reference.seed_applied)  # fmt: skip
    full = Engine(EngineConfig())
    full.add_symbol(market.symbol)
    # The reference engine's book, rebuilt the default way (BOOK_DELTAs, l2 checks) over the same files:
    default = LobsterReplay(full, "SYNTH", 10, tick=TICK)
    messages, rows = market_files(paths)
    first, first_line = next(messages), next(rows)
    default.seed_line(first_line, first.ts_ns)
    previous = first_line
    for msg, line in zip(messages, rows, strict=True):
        default.step(msg, previous, line)
        previous = line
    assert engine.l2("SYNTH") == full.l2("SYNTH")


def market_files(paths: tuple[Path, Path]) -> tuple[Any, Any]:
    from c_engine.lobster import iter_book_lines, iter_messages

    return iter_messages(paths[0], TICK), iter_book_lines(paths[1], TICK)


def test_the_aapl_sample_replays_with_one_client_id_three_times_in_own_events_mode() -> None:
    need(AAPL)
    market = open_market(parse_market(f"lobster:{AAPL}"))
    engine = Engine(EngineConfig())
    engine.add_symbol(market.symbol)
    market.open(LinkLike(engine), MARKET)
    while market.next_ns() is not None:
        market.step()
    counts = market.counts()
    assert (counts["rows_compared"], counts["mismatches"], counts["anomalies"]) == (998, 0, 0)
    assert (counts["refreshes"], counts["unknown_ids"]) == (320, 17)  # as replay_lobster (tests/c_engine)


def test_an_execution_that_meets_another_clients_better_bid_first_still_takes_the_recorded_size_off_its_maker() -> None:
    engine, link, replay, first = seeded()
    after_new = row([(10010, 100)], [(9995, 50), (9990, 100)])
    assert replay.step(message(2, NEW, 1, 50, 9995, BUY), first, after_new)
    other(engine, link, replay, BUY, 30, 9998)  # a strategy's bid above the recorded best
    after_exec = row([(10010, 100)], [(9995, 30), (9990, 100)])
    assert replay.step(message(3, EXECUTE, 1, 20, 9995, BUY), after_new, after_exec)
    assert replay.report.displaced == 1 and replay.report.anomalies == []
    assert levels_of(engine, "bids") == [(9998, 10), (9995, 30), (9990, 100)]  # the strategy was filled 20


def test_a_new_order_that_crosses_another_clients_quote_rests_with_its_recorded_size() -> None:
    engine, link, replay, first = seeded()
    other(engine, link, replay, SELL, 30, 10005)
    after = row([(10010, 100)], [(10006, 50), (9990, 100)])
    assert replay.step(message(2, NEW, 2, 50, 10006, BUY), first, after)
    assert replay.report.crossed_others == 1 and replay.report.anomalies == []
    assert levels_of(engine, "asks") == [(10010, 100)] and levels_of(engine, "bids") == [(10006, 50), (9990, 100)]


def test_a_new_order_that_another_clients_quote_takes_whole_is_placed_again() -> None:
    engine, link, replay, first = seeded()
    other(engine, link, replay, SELL, 80, 10005)  # more than the recorded order's 50
    after = row([(10010, 100)], [(10006, 50), (9990, 100)])
    assert replay.step(message(2, NEW, 2, 50, 10006, BUY), first, after)
    assert replay.report.crossed_others == 1 and replay.report.anomalies == []
    assert levels_of(engine, "asks") == [(10010, 100)] and levels_of(engine, "bids") == [(10006, 50), (9990, 100)]
    assert engine.position(OTHER, "X").position == -80


def test_an_order_another_client_consumed_is_not_executed_again_and_no_other_recorded_order_pays() -> None:
    engine, link, replay, first = seeded()
    after_new = row([(10008, 40), (10010, 100)], [(9990, 100)])
    assert replay.step(message(2, NEW, 3, 40, 10008, SELL), first, after_new)
    other(engine, link, replay, BUY, 40, 10008, Tif.IOC)  # takes the recorded order whole
    after_exec = row([(10008, 30), (10010, 100)], [(9990, 100)])
    replay.step(message(3, EXECUTE, 3, 10, 10008, SELL), after_new, after_exec)
    assert any("no order rests" in a for a in replay.report.anomalies)
    assert levels_of(engine, "asks") == [(10010, 100)]  # no IOC went on to the next recorded order
    assert replay.report.mismatches == 1  # the recorded book still had 30 there: the strategy moved it
    after_delete = row([(10010, 100)], [(9990, 100)])
    assert replay.step(message(4, DELETE, 3, 30, 10008, SELL), after_exec, after_delete)
    assert levels_of(engine, "asks") == [(10010, 100)]


def test_an_execution_of_more_than_is_left_trades_only_what_is_left() -> None:
    engine, link, replay, first = seeded()
    after_new = row([(10008, 40), (10010, 100)], [(9990, 100)])
    assert replay.step(message(2, NEW, 3, 40, 10008, SELL), first, after_new)
    other(engine, link, replay, BUY, 25, 10008, Tif.IOC)  # 15 of it left
    after_exec = row([(10010, 100)], [(9990, 100)])
    assert replay.step(message(3, EXECUTE, 3, 40, 10008, SELL), after_new, after_exec)
    assert any("executes 40 of order" in a for a in replay.report.anomalies)
    assert levels_of(engine, "asks") == [(10010, 100)]


# --- Binance, own events only ----------------------------------------------------------------------------------


def binance_book() -> tuple[Engine, BinanceReplay]:
    engine = Engine(EngineConfig(max_orders=1 << 12, max_levels_per_side=1 << 10))
    engine.add_symbol(binance_symbol("BTCUSDT", 0.1, 0.001))
    replay = BinanceReplay(LinkLike(engine), "BTCUSDT", book_client=MARKET, exclusive=False)
    replay.load(Snapshot(1, 0, 0, 1_000, 10, [(1000, 5), (999, 5)], [(1002, 5)]))
    return engine, replay


def test_clear_better_cancels_only_book_levels_better_than_the_trade_never_another_clients_quote() -> None:
    engine, replay = binance_book()
    engine.execute(Command.new(OTHER, 0, BUY, 3, 1001))  # a strategy bid above the book's best
    assert len(replay.clear_better(BUY, 1000, 2_000)) == 0  # the rebuilt best bid (1000) is not better
    assert replay.held[BUY] == {1000: 5, 999: 5}
    cleared = replay.clear_better(BUY, 999, 2_000)
    assert int(cleared["type"][0]) == int(EventType.CANCELED) and replay.held[BUY] == {999: 5}
    assert [(lv.price, lv.qty) for lv in engine.l2(0)["bids"]] == [(1001, 3), (999, 5)]


def test_a_book_order_that_trades_with_another_clients_quote_is_settled_from_its_own_fills() -> None:
    engine, replay = binance_book()
    engine.execute(Command.new(OTHER, 0, SELL, 2, 1001))  # a strategy ask inside the book's spread
    replay.apply(DepthUpdate(2, 0, 0, 3_000, 10, 11, 10, [(1001, 5)], []))  # the file's new best bid crosses it
    assert replay.held[BUY] == {1001: 3, 1000: 5, 999: 5}  # 2 of the 5 traded: the link said so by FILLs only
    assert replay.anomalies == 0
    replay.apply(DepthUpdate(3, 0, 0, 4_000, 12, 12, 11, [(1001, 4)], []))  # the next diff sets the level again
    assert [(lv.price, lv.qty) for lv in engine.l2(0)["bids"]][0] == (1001, 4)


def test_the_binance_market_replays_the_sample_prefix_the_same_over_own_events_as_in_process(tmp_path: Path) -> None:
    need(BINANCE)
    prefix = tmp_path / "btcusdt_prefix.gz"
    with gzip.open(BINANCE, "rt") as whole, gzip.open(prefix, "wt") as part:
        part.writelines(itertools.islice(whole, 8000))  # the snapshot is line 55
    books = []
    for wrap in (False, True):
        market = open_market(parse_market(f"binance:{prefix}"))
        engine = Engine(EngineConfig(max_orders=1 << 18, max_levels_per_side=1 << 16))
        engine.add_symbol(market.symbol)
        market.open(LinkLike(engine) if wrap else engine, MARKET)
        while market.next_ns() is not None:
            market.step()
        counts = market.counts()
        assert counts["anomalies"] == 0 and counts["gaps"] == 0 and counts["trades"] > 1000
        books.append(engine.l2("BTCUSDT"))
    assert books[0] == books[1]


# --- specs ----------------------------------------------------------------------------------------------------


def test_a_lobster_spec_finds_its_order_book_file_beside_the_message_file(tmp_path: Path) -> None:
    message_path, book_path = write_synthetic_day(tmp_path, seed=1, events=50)
    spec = parse_market(f"lobster:{message_path}")
    assert spec.paths == (str(message_path), str(book_path))
    assert market_symbol(spec).name == "SYNTH" and market_symbol(spec).tick_size == 0.01
    book_path.unlink()
    with pytest.raises(ValueError, match="no order-book file"):
        parse_market(f"lobster:{message_path}")


@pytest.mark.parametrize(
    ("text", "error"),
    [("nasdaq:x.csv", "give lobster"), ("lobster:", "give lobster"), ("binance:a,b", "give lobster"),
     ("binance:/no/such/file", "no file")],
)  # fmt: skip
def test_a_bad_market_spec_says_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_market(text)


def test_a_binance_spec_gives_the_contract_and_its_units(tmp_path: Path) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_text("")
    symbol = market_symbol(parse_market(f"binance:{capture}", symbol="ethusdt", tick=0.01, lot=0.001))
    assert (symbol.name, symbol.tick_size, symbol.lot_size) == ("ETHUSDT", 0.01, 0.001)
