"""``proptrade engine lobster``: a LOBSTER day replayed through the engine's own matching, row by row."""

from __future__ import annotations

from pathlib import Path

import pytest

from c_engine.lobster import LobsterError, replay_lobster
from hotpath.cli import main

REPO = Path(__file__).resolve().parents[2]
LOBSTER = REPO.parent / "shared" / "data" / "lobster"
AAPL_MESSAGES = LOBSTER / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
AAPL_BOOK = LOBSTER / "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"


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
