"""``proptrade engine lobster``: a LOBSTER day replayed through the engine's own matching, row by row."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import pytest

from c_engine.lobster import LobsterError, read_messages, replay_lobster
from hotpath.cli import main

REPO = Path(__file__).resolve().parents[2]
LOBSTER = REPO.parent / "shared" / "data" / "lobster"
AAPL_MESSAGES = LOBSTER / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
AAPL_BOOK = LOBSTER / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
GOOG_MESSAGES = LOBSTER / "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz"
GOOG_BOOK = LOBSTER / "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz"


def need_aapl() -> None:
    if not (AAPL_MESSAGES.is_file() and AAPL_BOOK.is_file()):
        pytest.skip(f"LOBSTER AAPL sample not found in {LOBSTER} (the shared data folder beside the project)")


def test_the_aapl_sample_matches_every_row_with_its_refreshes(capsys: pytest.CaptureFixture[str]) -> None:
    need_aapl()
    report = replay_lobster(AAPL_MESSAGES, AAPL_BOOK)
    with capsys.disabled():
        print(f"\nLOBSTER AAPL: {report.rows_compared} rows, {report.refreshes} refreshes, "
              f"{report.mismatches} mismatches")  # fmt: skip
    assert report.mismatches == 0, "\n".join(report.first_mismatches)
    assert report.rows_compared == 998
    assert report.refreshes == 320  # levels that came back into view (data README: about 320)
    assert report.priority_deviations == 0 and report.anomalies == []


def test_the_full_goog_day_matches_every_row_read_from_gzip(capsys: pytest.CaptureFixture[str]) -> None:
    if not (GOOG_MESSAGES.is_file() and GOOG_BOOK.is_file()):
        pytest.skip(f"LOBSTER GOOG full day not found in {LOBSTER} (the shared data folder beside the project)")
    started = time.monotonic()
    report = replay_lobster(GOOG_MESSAGES, GOOG_BOOK)
    with capsys.disabled():
        print(f"\nLOBSTER GOOG: {report.rows_compared} rows, {report.refreshes} refreshes, "
              f"{report.mismatches} mismatches in {time.monotonic() - started:.1f} s")  # fmt: skip
    assert report.mismatches == 0, "\n".join(report.first_mismatches)
    assert report.anomalies == []
    assert report.rows_compared == 147_915
    assert report.applied == {1: 71_258, 2: 19, 3: 64_961, 4: 7_764} and report.skipped == {5: 3_913}
    assert (report.refreshes, report.refreshes_changed) == (47_799, 8_332)
    assert report.seed_applied == 7_120
    # One same-ns sweep of a level listed out of time order (3), two replaced orders that traded ahead (2).
    assert report.priority_deviations == 5


def test_the_lobster_command_prints_its_counts_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    need_aapl()
    code = main(["engine", "lobster", str(AAPL_MESSAGES), str(AAPL_BOOK)])
    out = capsys.readouterr().out
    assert code == 0
    assert "rows compared: 998, refreshes: 320" in out and "mismatches: 0" in out


# --- a small hand-made day: 2 levels a side, $0.01 tick ---------------------------------------------------------

Levels = list[tuple[int, int]]
#: one message and the order-book row after it: (time, type, id, size, price, direction), asks, bids
Step = tuple[tuple[str, int, int, int, int, int], Levels, Levels]

# Row 1 is the book after message 1; the book is seeded from it, so message 1 itself is not applied.
DAY: list[Step] = [
    # time, type, id, size, price, direction     asks (price, size) x2            bids (price, size) x2
    (("34200.1", 1, 1, 5, 1000000, 1),        [(1010000, 10), (1020000, 20)], [(1000000, 15), (990000, 30)]),
    (("34200.2", 2, 77, 4, 1010000, -1),      [(1010000, 6), (1020000, 20)],  [(1000000, 15), (990000, 30)]),
    (("34200.3", 1, 2, 3, 1010000, -1),       [(1010000, 9), (1020000, 20)],  [(1000000, 15), (990000, 30)]),
    (("34200.4", 4, 78, 6, 1010000, -1),      [(1010000, 3), (1020000, 20)],  [(1000000, 15), (990000, 30)]),
    (("34200.5", 3, 2, 3, 1010000, -1),       [(1020000, 20), (1030000, 40)], [(1000000, 15), (990000, 30)]),
    (("34200.6", 4, 1, 5, 1000000, 1),        [(1020000, 20), (1030000, 40)], [(1000000, 10), (990000, 30)]),
    (("34200.7", 5, 0, 9, 1005000, 1),        [(1020000, 20), (1030000, 40)], [(1000000, 10), (990000, 30)]),
]  # fmt: skip


def write_day(tmp_path: Path, day: list[Step] = DAY) -> tuple[Path, Path]:
    """The day as a LOBSTER message file and 2-level order-book file (empty slots as LOBSTER writes them)."""
    messages, book = tmp_path / "TEST_2024-01-02_message_2.csv", tmp_path / "TEST_2024-01-02_orderbook_2.csv"
    msg_lines, book_lines = [], []
    for msg, asks, bids in day:
        msg_lines.append(",".join(str(v) for v in msg))
        cells: list[int] = []
        for level in range(2):
            cells += asks[level] if level < len(asks) else (9999999999, 0)
            cells += bids[level] if level < len(bids) else (-9999999999, 0)
        book_lines.append(",".join(str(v) for v in cells))
    messages.write_text("\n".join(msg_lines) + "\n")
    book.write_text("\n".join(book_lines) + "\n")
    return messages, book


def test_a_hand_made_day_matches_every_row(tmp_path: Path) -> None:
    report = replay_lobster(*write_day(tmp_path))
    assert report.mismatches == 0, "\n".join(report.first_mismatches)
    assert report.rows_compared == 6
    assert report.applied == {2: 1, 1: 1, 4: 2, 3: 1} and report.skipped == {5: 1}


def test_cancels_and_executions_of_unknown_orders_apply_to_the_levels_seed_order(tmp_path: Path) -> None:
    # lines 2 (partial cancel of 77), 4 (execution of 78) and 6 (execution of 1, which is inside the seed)
    report = replay_lobster(*write_day(tmp_path))
    assert report.seed_applied == 3
    assert report.priority_deviations == 0 and report.anomalies == []


def test_a_level_that_comes_back_into_view_is_a_refresh_not_a_mismatch(tmp_path: Path) -> None:
    # line 5 empties ask 101.00, so 103.00 (beyond the previous row's 2nd ask, 102.00) comes into view
    report = replay_lobster(*write_day(tmp_path))
    assert report.refreshes == 1 and report.refreshes_changed == 1
    assert report.mismatches == 0


def test_a_level_back_in_view_with_its_old_size_is_rebuilt_from_the_row(tmp_path: Path) -> None:
    # Order 3 (20 at 102.00) leaves the view when 101.50 arrives; unseen, order 3 goes and order 9 (20) comes.
    # Back in view with the same 20 lots, the level must drop order 3: the later delete of order 9 empties it.
    bids = DAY[0][2]
    day: list[Step] = [
        (("34200.1", 1, 1, 5, 1000000, 1), [(1010000, 10), (1030000, 40)], bids),
        (("34200.2", 1, 3, 20, 1020000, -1), [(1010000, 10), (1020000, 20)], bids),
        (("34200.3", 1, 4, 5, 1015000, -1), [(1010000, 10), (1015000, 5)], bids),
        (("34200.4", 3, 4, 5, 1015000, -1), [(1010000, 10), (1020000, 20)], bids),
        (("34200.5", 3, 9, 20, 1020000, -1), [(1010000, 10), (1030000, 40)], bids),
    ]
    report = replay_lobster(*write_day(tmp_path, day))
    assert report.mismatches == 0, "\n".join(report.first_mismatches)
    assert report.anomalies == []
    # 102.00 back with its old size (rebuilt all the same), then 103.00 back in view
    assert report.refreshes == 2 and report.refreshes_changed == 0


def test_an_execution_behind_another_order_is_a_priority_deviation_applied_to_the_order_named(
    tmp_path: Path,
) -> None:
    bids = DAY[0][2]
    day: list[Step] = [
        DAY[0],
        (("34200.2", 1, 5, 3, 1010000, -1), [(1010000, 13), (1020000, 20)], bids),  # behind the seed's 10
        (("34200.3", 4, 5, 3, 1010000, -1), [(1010000, 10), (1020000, 20)], bids),  # yet order 5 trades
        (("34200.4", 3, 77, 10, 1010000, -1), [(1020000, 20)], bids),  # then the 10 older lots go
    ]
    report = replay_lobster(*write_day(tmp_path, day))
    assert report.mismatches == 0, "\n".join(report.first_mismatches)
    assert report.priority_deviations == 1 and report.anomalies == []


def test_times_with_more_than_9_decimals_are_rounded_to_the_nearest_ns(tmp_path: Path) -> None:
    day = list(DAY)
    day[1] = (("43002.632812672004", *day[1][0][1:]), day[1][1], day[1][2])
    day[2] = (("43002.6328126725", *day[2][0][1:]), day[2][1], day[2][2])
    day[3] = (("43002.632812672999999", *day[3][0][1:]), day[3][1], day[3][2])
    messages, book = write_day(tmp_path, day)
    times = [m.ts_ns for m in read_messages(messages)[1:4]]
    assert times == [43_002_632_812_672, 43_002_632_812_673, 43_002_632_812_673]
    assert replay_lobster(messages, book).mismatches == 0


def gzipped(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    with path.open("rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def test_gzip_files_replay_as_the_plain_ones(tmp_path: Path) -> None:
    messages, book = write_day(tmp_path)
    assert replay_lobster(gzipped(messages), gzipped(book)) == replay_lobster(messages, book)
    assert main(["engine", "lobster", str(gzipped(messages)), str(gzipped(book))]) == 0


def test_a_new_level_inside_the_view_is_not_a_refresh(tmp_path: Path) -> None:
    day = DAY[:1] + [(("34200.2", 1, 5, 7, 1015000, -1), [(1010000, 10), (1015000, 7)], DAY[0][2])]
    report = replay_lobster(*write_day(tmp_path, day))
    assert report.refreshes == 0 and report.mismatches == 0


def test_a_row_the_engine_disagrees_with_is_a_mismatch_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = list(DAY)
    day[2] = (day[2][0], [(1010000, 8), (1020000, 20)], day[2][2])  # row 3 should show 9 at 101.00
    messages, book = write_day(tmp_path, day)
    code = main(["engine", "lobster", str(messages), str(book)])
    out = capsys.readouterr().out
    assert code == 1
    assert "mismatches: 1" in out and "mismatch: row 3: sell" in out


def test_a_price_off_the_tick_is_an_error_not_a_rounding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    day = list(DAY)
    day[1] = (("34200.2", 2, 77, 4, 1010050, -1), day[1][1], day[1][2])
    messages, book = write_day(tmp_path, day)
    with pytest.raises(LobsterError, match="not a multiple of the tick"):
        replay_lobster(messages, book)
    assert main(["engine", "lobster", str(messages), str(book)]) == 2
    assert ":2: price 1010050" in capsys.readouterr().err
