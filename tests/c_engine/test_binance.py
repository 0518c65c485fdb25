"""``proptrade engine binance``: a USD-M book rebuilt from update ids, checked by book tickers and in the engine."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from c_engine import COMMAND_DTYPE, Command, Engine, Side, Tif
from c_engine.binance import (
    ENGINE_CONFIG,
    BinanceCheck,
    BinanceError,
    BinanceReplay,
    BinanceReport,
    DepthBook,
    DepthUpdate,
    DiffResult,
    Snapshot,
    Top,
    Trade,
    estimate_clock_offset,
    iter_messages,
    replay_binance,
    symbol_config,
)
from hotpath.cli import main

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"

Json = dict[str, Any]
Lv = list[tuple[str, str]]


def snapshot(last_id: int, bids: Lv, asks: Lv) -> Json:
    return {"lastUpdateId": last_id, "E": 1_000, "T": 999, "bids": bids, "asks": asks}


def diff(first: int, final: int, prev: int, bids: Lv | None = None, asks: Lv | None = None,
         symbol: str = "BTCUSDT") -> Json:  # fmt: skip
    data = {"e": "depthUpdate", "E": 1_000 + final, "T": 1_000 + final, "s": symbol, "U": first, "u": final,
            "pu": prev, "b": bids or [], "a": asks or []}  # fmt: skip
    return {"stream": f"{symbol.lower()}@depth@0ms", "data": data}


def ticker(update_id: int, bid: str, bid_qty: str, ask: str, ask_qty: str) -> Json:
    data = {"e": "bookTicker", "u": update_id, "s": "BTCUSDT", "b": bid, "B": bid_qty, "a": ask, "A": ask_qty,
            "T": 1_000 + update_id, "E": 1_000 + update_id}  # fmt: skip
    return {"stream": "btcusdt@bookTicker", "data": data}


def trade(trade_id: int, price: str, qty: str) -> Json:
    data = {"e": "trade", "E": 2_000, "T": 2_000, "s": "BTCUSDT", "t": trade_id, "p": price, "q": qty,
            "X": "MARKET", "m": True}  # fmt: skip
    return {"stream": "btcusdt@trade", "data": data}


def write(tmp_path: Path, messages: list[Json], name: str = "day.txt") -> Path:
    path = tmp_path / name
    text = "".join(f"{10**18 + 1_000_000 * i} {json.dumps(m)}\n" for i, m in enumerate(messages))
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# The book: bids 100.0 x 1, 99.9 x 2; asks 100.1 x 3, 100.2 x 4 (ticks 1000, 999 / 1001, 1002; lots of 0.001).
BOOK = snapshot(100, [("100.0", "1.000"), ("99.9", "2.000")], [("100.1", "3.000"), ("100.2", "4.000")])
#: the same as the parser gives it
BOOK_RECORD = Snapshot(1, 10**18, 1_000_000_000, 999_000_000, 100, [(1000, 1000), (999, 2000)],
                       [(1001, 3000), (1002, 4000)])  # fmt: skip


def diff_record(first: int, final: int, prev: int, bids: list[tuple[int, int]] | None = None) -> DepthUpdate:
    return DepthUpdate(0, 0, 0, 0, first, final, prev, bids or [], [])


def test_a_clean_day_rebuilds_and_every_ticker_at_a_final_id_matches(tmp_path: Path) -> None:
    path = write(tmp_path, [
        diff(95, 99, 90, [("100.0", "5.000")]),  # before the snapshot's id: dropped
        BOOK,
        diff(99, 102, 99, [("100.0", "1.500")]),  # straddles 100: the first applied
        ticker(102, "100.0", "1.500", "100.1", "3.000"),
        trade(1, "100.1", "0.500"),
        diff(103, 104, 102, asks=[("100.1", "2.500")]),
        ticker(104, "100.0", "1.500", "100.1", "2.500"),
    ])  # fmt: skip
    report = replay_binance(path)
    assert report.failed is False, report.lines()
    assert (report.snapshots, report.diffs, report.trades, report.tickers) == (1, 3, 1, 2)
    assert (report.applied, report.dropped, report.gaps) == (2, 1, 0)
    assert (report.at_final_id, report.mismatches, report.engine_mismatches) == (2, 0, 0)
    assert report.final_top == Top(1000, 1500, 1001, 2500)


def test_a_diff_whose_pu_is_not_the_previous_u_is_a_gap_and_the_book_goes_stale(tmp_path: Path) -> None:
    path = write(tmp_path, [
        BOOK,
        diff(100, 101, 99, [("100.0", "2.000")]),
        diff(105, 106, 104, [("100.0", "3.000")]),  # pu 104, the book is at 101: updates 102..104 are missing
        ticker(106, "100.0", "3.000", "100.1", "3.000"),
        diff(107, 108, 106, [("100.0", "4.000")]),
    ])  # fmt: skip
    report = replay_binance(path)
    assert (report.applied, report.gaps, report.stale) == (1, 1, 2)
    assert report.first_gaps == ["line 3: U 105 u 106 pu 104, the book is at 101"]
    assert report.while_stale == 1 and report.compared == 0
    assert report.final_top == Top(1000, 2000, 1001, 3000)  # the book as it was before the gap
    assert report.failed


def test_the_first_diff_starting_after_the_snapshot_id_is_a_gap(tmp_path: Path) -> None:
    report = replay_binance(write(tmp_path, [BOOK, diff(102, 103, 101, [("100.0", "2.000")])]))
    assert (report.applied, report.gaps) == (0, 1)


def test_a_later_snapshot_resyncs_a_stale_book_from_the_diffs_held(tmp_path: Path) -> None:
    path = write(tmp_path, [
        BOOK,
        diff(100, 101, 99, [("100.0", "2.000")]),
        diff(105, 106, 104, [("99.9", "0.000")]),  # a gap
        diff(107, 108, 106, [("100.0", "4.000")]),
        snapshot(107, [("100.0", "9.000"), ("99.8", "1.000")], [("100.3", "1.000")]),
        ticker(108, "100.0", "4.000", "100.3", "1.000"),
    ])  # fmt: skip
    report = replay_binance(path)
    assert (report.snapshots, report.gaps, report.applied, report.dropped) == (2, 1, 2, 1)
    assert (report.at_final_id, report.mismatches, report.engine_mismatches) == (1, 0, 0)
    assert report.final_top == Top(1000, 4000, 1003, 1000)


def test_quantity_zero_removes_a_level_in_the_book_and_the_engine(tmp_path: Path) -> None:
    path = write(tmp_path, [
        BOOK,
        diff(100, 101, 99, [("100.0", "0.000")], [("100.1", "0.000"), ("100.5", "0.000")]),  # 100.5: absent
        ticker(101, "99.9", "2.000", "100.2", "4.000"),
    ])  # fmt: skip
    report = replay_binance(path)
    assert report.final_top == Top(999, 2000, 1002, 4000)
    assert (report.at_final_id, report.mismatches, report.engine_mismatches, report.engine_orders) == (1, 0, 0, 2)


def test_an_off_tick_price_is_an_error_naming_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, [BOOK, diff(100, 101, 99, [("100.05", "1.000")])])
    with pytest.raises(BinanceError, match=r"day\.txt:2: price 100\.05 is not a multiple of the tick \(0\.1\)"):
        list(iter_messages(path))


def test_an_off_lot_quantity_is_an_error_naming_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, [BOOK, ticker(100, "100.0", "1.0005", "100.1", "3.000")])
    with pytest.raises(BinanceError, match=r"day\.txt:2: qty 1\.0005 is not a multiple of the lot \(0\.001\)"):
        list(iter_messages(path))


def test_a_ticker_that_disagrees_with_the_rebuilt_book_is_a_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, [
        BOOK,
        diff(100, 101, 99, [("100.0", "2.000")]),
        ticker(101, "100.0", "2.001", "100.1", "3.000"),  # one lot more than the book has
    ])  # fmt: skip
    report = replay_binance(path)
    assert (report.at_final_id, report.mismatches, report.engine_mismatches) == (1, 1, 0)
    assert "ticker bid 2001@1000 ask 3000@1001 != rebuilt bid 2000@1000 ask 3000@1001" in report.first_mismatches[0]
    assert report.failed


def test_diffs_before_the_snapshot_are_held_and_replayed_from_it(tmp_path: Path) -> None:
    path = write(tmp_path, [
        diff(90, 98, 80, [("100.0", "7.000")]),  # below the snapshot's id: dropped
        ticker(101, "100.0", "2.000", "100.1", "3.000"),  # its diff comes later: waits
        diff(99, 101, 98, [("100.0", "2.000")]),
        BOOK,
    ])  # fmt: skip
    report = replay_binance(path)
    assert (report.applied, report.dropped, report.at_final_id, report.mismatches) == (1, 1, 1, 0)


def test_a_ticker_inside_a_diffs_id_range_is_counted_and_not_compared(tmp_path: Path) -> None:
    path = write(tmp_path, [
        BOOK,
        ticker(102, "100.0", "9.000", "100.1", "3.000"),  # saw part of 99..104: not comparable
        diff(99, 104, 98, [("100.0", "2.000")]),
        ticker(103, "100.0", "8.000", "100.1", "3.000"),  # the same, arriving after the diff
    ])  # fmt: skip
    report = replay_binance(path)
    assert (report.inside, report.compared, report.mismatches) == (2, 0, 0)


def test_a_ticker_arriving_after_its_diff_is_compared_with_the_kept_top(tmp_path: Path) -> None:
    path = write(tmp_path, [
        BOOK,
        diff(100, 101, 99, [("100.0", "2.000")]),
        diff(102, 103, 101, [("100.0", "3.000")]),
        ticker(101, "100.0", "2.000", "100.1", "3.000"),
        ticker(100, "100.0", "1.000", "100.1", "3.000"),  # the snapshot's own id
    ])  # fmt: skip
    report = replay_binance(path)
    assert (report.at_final_id, report.mismatches) == (2, 0)


def test_a_ticker_between_two_diffs_is_compared_with_the_book_before_the_second(tmp_path: Path) -> None:
    path = write(tmp_path, [
        BOOK,
        diff(100, 101, 99, [("100.0", "2.000")]),
        ticker(103, "100.0", "2.000", "100.1", "3.000"),  # after 101, before 105: the book after 101
        diff(105, 106, 101, [("100.0", "3.000")]),
        ticker(104, "100.0", "2.000", "100.1", "3.000"),  # the same, arriving late
    ])  # fmt: skip
    report = replay_binance(path)
    assert (report.between, report.mismatches) == (2, 0)


def test_tickers_older_than_the_kept_history_are_counted_too_late(tmp_path: Path) -> None:
    messages = [BOOK] + [diff(100 + i, 101 + i, 100 + i, [("100.0", f"{i + 1}.000")]) for i in range(4)]
    path = write(tmp_path, [*messages, ticker(101, "100.0", "1.000", "100.1", "3.000")])
    report = replay_binance(path, history=1)
    assert (report.applied, report.too_late, report.compared) == (4, 1, 0)


def test_messages_of_other_streams_and_symbols_are_counted_by_stream(tmp_path: Path) -> None:
    other = {"stream": "btcusdt@markPrice", "data": {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT"}}
    partial = {"stream": "btcusdt@depth20@100ms", "data": {"e": "depthUpdate", "E": 1, "s": "BTCUSDT"}}
    path = write(tmp_path, [BOOK, other, partial, diff(100, 101, 99), diff(1, 2, 0, symbol="ETHUSDT")])
    report = replay_binance(path)
    assert report.other == {"btcusdt@markPrice": 1, "btcusdt@depth20@100ms": 1, "ethusdt@depth@0ms": 1}
    assert report.applied == 1


def test_a_gzip_file_is_read_directly(tmp_path: Path) -> None:
    path = write(tmp_path, [BOOK, diff(100, 101, 99, [("100.0", "2.000")])], name="day.gz")
    assert replay_binance(path).applied == 1


def test_the_parser_gives_exact_ticks_lots_and_ns(tmp_path: Path) -> None:
    messages = list(iter_messages(write(tmp_path, [BOOK, trade(7, "100.1", "0.500")])))
    assert messages[0] == BOOK_RECORD
    assert messages[1] == Trade(2, 10**18 + 1_000_000, 2 * 10**9, 2 * 10**9, 7, 1001, 500, True, "MARKET")


def test_the_book_alone_applies_diffs_by_id_without_the_engine() -> None:
    book = DepthBook()
    assert book.apply(diff_record(100, 101, 99)) == DiffResult.STALE  # no snapshot yet
    book.load(BOOK_RECORD)
    assert book.apply(diff_record(90, 99, 89)) == DiffResult.OLD
    assert book.apply(diff_record(100, 101, 99, bids=[(1000, 0)])) == DiffResult.APPLIED
    assert book.apply(diff_record(100, 101, 99)) == DiffResult.OLD  # a repeat
    assert book.top() == Top(999, 2000, 1001, 3000)
    assert book.depth(1) == ([(999, 2000)], [(1001, 3000)])
    assert book.apply(diff_record(103, 104, 102)) == DiffResult.GAP
    assert book.apply(diff_record(105, 106, 104)) == DiffResult.STALE


# --- the engine replay -----------------------------------------------------------------------------------------


def engine_replay(exclusive: bool = True) -> tuple[Engine, BinanceReplay]:
    engine = Engine(ENGINE_CONFIG)
    engine.add_symbol(symbol_config())
    replay = BinanceReplay(engine, exclusive=exclusive)
    replay.load(BOOK_RECORD)
    return engine, replay


def l3_bids(engine: Engine) -> list[tuple[int, int, int]]:
    return [(o.client_id, o.price, o.open_qty) for o in engine.l3("BTCUSDT")["bids"]]


def test_a_level_increase_joins_the_back_and_a_decrease_comes_off_the_back() -> None:
    engine, replay = engine_replay()
    replay.apply(diff_record(100, 101, 99, bids=[(1000, 1500)]))  # +500 behind the 1000 there
    assert l3_bids(engine)[:2] == [(1, 1000, 1000), (1, 1000, 500)]
    replay.apply(diff_record(102, 102, 101, bids=[(1000, 1200)]))  # -300 off the newest
    assert l3_bids(engine)[:2] == [(1, 1000, 1000), (1, 1000, 200)]
    replay.apply(diff_record(103, 103, 102, bids=[(1000, 700)]))  # -500: the newest cancelled, the oldest cut
    assert l3_bids(engine)[:1] == [(1, 1000, 700)] and l3_bids(engine)[1][1] == 999
    rebuilt, in_engine = replay.check()
    assert rebuilt == in_engine == Top(1000, 700, 1001, 3000)


def test_a_strategy_order_keeps_its_place_while_the_book_level_shrinks_behind_it() -> None:
    engine, replay = engine_replay(exclusive=False)
    replay.apply(diff_record(100, 101, 99, bids=[(1000, 1500)]))
    mine = engine.execute(Command.new(7, 0, Side.BUY, 100, 1000))[0].order_id  # behind the book's 1500
    replay.apply(diff_record(102, 102, 101, bids=[(1000, 2000)]))  # +500 behind the strategy's order
    replay.apply(diff_record(103, 103, 102, bids=[(1000, 1000)]))  # -1000: the 500 behind, then 500 ahead
    assert [(o.client_id, o.open_qty) for o in engine.l3("BTCUSDT")["bids"] if o.price == 1000] == [
        (1, 1000),
        (7, 100),
    ]
    rebuilt, own = replay.check()
    assert rebuilt == own == Top(1000, 1000, 1001, 3000)
    assert replay.engine_top().bid_qty == 1100  # the engine's level holds the strategy's order too
    assert mine in {o.order_id for o in engine.l3("BTCUSDT")["bids"]}


def test_fills_of_book_orders_by_another_client_are_observed() -> None:
    engine, replay = engine_replay(exclusive=False)
    taker = Command.new(7, 0, Side.SELL, 400, 1000, tif=Tif.IOC)  # takes 400 of the book's 1000 at 100.0
    events = engine.execute_batch(np.frombuffer(taker.pack(), dtype=COMMAND_DTYPE))
    replay.observe(events)
    assert replay.held[Side.BUY][1000] == 600
    # The diff that includes that trade says 600: nothing to do; then 500: one modify.
    assert len(replay.apply(diff_record(100, 101, 99, bids=[(1000, 600)])).events) == 0
    replay.apply(diff_record(102, 102, 101, bids=[(1000, 500)]))
    assert replay.check()[0] == replay.check()[1] == Top(1000, 500, 1001, 3000)
    assert replay.anomalies == 0


def test_book_orders_that_cross_each_other_in_an_exclusive_engine_are_an_anomaly() -> None:
    engine, replay = engine_replay()
    # A bid at 100.1 while the ask there stays: a crossed diff, which Binance never sends.
    replay.apply(diff_record(100, 101, 99, bids=[(1001, 1000)]))
    assert replay.anomalies == 1 and "traded with each other" in replay.first_anomalies[0]


# --- the clock -------------------------------------------------------------------------------------------------


def test_the_clock_offset_follows_a_drifting_collector_clock() -> None:
    rng = np.random.default_rng(5)
    n = 60_000
    event = np.sort(rng.integers(0, 360 * 10**9, n)) + 1_723_161_256_000_000_000
    true_offset = -1_270_000_000 - 5 * (event - event[0]) // 1_000_000  # -5 ppm
    latency = 2_000_000 + rng.exponential(3_000_000, n).astype(np.int64)  # a 2 ms floor and a tail
    recv = event + true_offset + latency
    clock = estimate_clock_offset(recv, event)
    assert clock.drift_ppm == pytest.approx(-5.0, abs=0.2)
    # The floor latency is inside the offset: at the start it reads -1270 ms + 2 ms + the 1% quantile's tail.
    assert clock.offset_ns == pytest.approx(-1_268_000_000, abs=200_000)
    assert clock.exchange_ns(int(recv[-1])) - int(event[-1]) == pytest.approx(int(latency[-1]) - 2_000_000,
                                                                             abs=300_000)  # fmt: skip


def test_one_window_of_samples_gives_a_constant_offset() -> None:
    clock = estimate_clock_offset([100, 200, 300], [50, 150, 250])
    assert (clock.offset_ns, clock.drift_ns_per_s, clock.windows) == (50, 0.0, 0)


# --- the command -----------------------------------------------------------------------------------------------


def test_the_command_exits_1_on_a_mismatch_and_prints_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, [BOOK, diff(100, 101, 99), ticker(101, "100.0", "1.000", "100.1", "3.001")])
    assert main(["engine", "binance", str(path)]) == 1
    out = capsys.readouterr().out
    assert "mismatches: 1" in out and "  mismatch: book ticker line 3" in out


def test_the_command_exits_2_with_one_line_on_an_unusable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_snapshot = write(tmp_path, [diff(100, 101, 99)])
    assert main(["engine", "binance", str(no_snapshot)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no depth snapshot" in err
    bad = tmp_path / "bad.txt"
    bad.write_text('1 {"lastUpdateId": 1, "E": 1, "T": 1, "bids": [], "asks": []}\nnot json\n')
    assert main(["engine", "binance", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}:2: ") and err.count("\n") == 1
    assert main(["engine", "binance", str(tmp_path / "absent.gz")]) == 2


# --- the real sample -------------------------------------------------------------------------------------------


def test_the_btcusdt_sample_has_no_gap_and_every_comparable_ticker_and_engine_top_matches() -> None:
    if not SAMPLE.is_file():
        pytest.skip(f"Binance BTCUSDT sample not found at {SAMPLE} (the shared data folder beside the project)")
    engine = Engine(ENGINE_CONFIG)
    engine.add_symbol(symbol_config())
    replay = BinanceReplay(engine)
    check = BinanceCheck(BinanceReport(SAMPLE.name, "BTCUSDT", engine=True), replay)
    for msg in iter_messages(SAMPLE):
        check.feed(msg)
    report = check.finish()
    assert (report.messages, report.snapshots, report.diffs, report.trades, report.tickers) == (
        93_954, 1, 6_551, 21_313, 66_089)  # fmt: skip
    assert report.snapshot_lines == [55]
    assert (report.applied, report.dropped, report.gaps, report.stale) == (6_547, 4, 0, 0)
    assert (report.at_final_id, report.between, report.mismatches) == (629, 0, 0), report.first_mismatches
    assert (report.inside, report.before_snapshot, report.after_last_diff, report.too_late) == (65_427, 33, 0, 0)
    assert (report.engine_mismatches, report.anomalies) == (0, 0), report.first_mismatches + report.first_anomalies
    # Not only the top: the engine's whole book is the rebuilt one.
    l2 = engine.l2("BTCUSDT")
    bids, asks = replay.book.depth(len(replay.book.bids) + len(replay.book.asks))
    assert [(lv.price, lv.qty) for lv in l2["bids"]] == bids and len(bids) == 5_018
    assert [(lv.price, lv.qty) for lv in l2["asks"]] == asks and len(asks) == 4_578
    engine.check()
    clock = report.clock
    assert clock is not None
    assert clock.offset_ns == pytest.approx(-1_270_400_000, abs=1_000_000)  # the collector is ~1.27 s behind
    assert clock.drift_ppm == pytest.approx(-5.0, abs=0.5)
