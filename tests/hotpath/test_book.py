"""The L2 book model (hotpath/book.py) that BookView, the bridge and the subscriber share."""

from __future__ import annotations

import pytest

from c_engine import Side
from hotpath.book import SIDE_CODES, L2Book

BUY, SELL = int(Side.BUY), int(Side.SELL)


def test_a_delta_sets_the_level_total_and_qty_zero_removes_it() -> None:
    book = L2Book()
    for seq, (price, qty) in enumerate(((10, 1), (12, 2), (11, 3)), start=1):
        book.apply_delta(BUY, price, qty, 1, seq)
        book.apply_delta(SELL, price + 10, qty, 1, seq)
    book.apply_delta(BUY, 12, 0, 0, 4)
    book.apply_delta(SELL, 21, 7, 2, 5)
    assert book.levels("bids") == [[11, 3, 1], [10, 1, 1]]
    assert book.levels("asks", 2) == [[20, 1, 1], [21, 7, 2]]
    assert book.engine_seq == 5


def test_best_is_the_highest_bid_and_lowest_ask() -> None:
    book = L2Book()
    assert book.best() == (None, None)
    book.replace([(99, 5, 1), (100, 2, 1)], [(102, 4, 2), (101, 0, 0)])
    assert book.best() == ((100, 2), (102, 4))


def test_a_delta_with_an_unknown_side_raises_and_changes_nothing() -> None:
    book = L2Book()
    with pytest.raises(ValueError):
        book.apply_delta(3, 1, 1, 1, 1)
    assert book.levels("bids") == [] and book.levels("asks") == [] and book.engine_seq == 0


def test_json_side_names_map_to_the_wire_codes() -> None:
    assert SIDE_CODES == {"buy": BUY, "sell": SELL}


def test_a_run_of_deltas_in_wire_order_leaves_the_book_one_delta_at_a_time_would() -> None:
    deltas = [(BUY, 1, 1, 10, 5), (BUY, 2, 2, 12, 3), (SELL, 3, 1, 15, 4), (BUY, 4, 0, 12, 0), (SELL, 5, 1, 14, 2),
              (SELL, 6, 0, 14, 0), (BUY, 7, 1, 11, 9)]  # fmt: skip
    one_by_one, batch = L2Book(), L2Book()
    for side, seq, count, price, qty in deltas:
        one_by_one.apply_delta(side, price, qty, count, seq)
        one_by_one.best()  # the cached best is read between deltas, as a strategy would
    batch.best()
    batch.apply_deltas(deltas)
    assert batch == one_by_one and batch.best() == one_by_one.best() == ((11, 9), (15, 4))
    assert batch.engine_seq == 7


def test_a_run_with_a_bad_side_keeps_what_came_before_it() -> None:
    book = L2Book()
    with pytest.raises(ValueError):
        book.apply_deltas([(BUY, 1, 1, 10, 5), (3, 2, 1, 11, 1), (SELL, 3, 1, 12, 1)])
    assert book.levels("bids") == [[10, 5, 1]] and book.levels("asks") == [] and book.engine_seq == 1
    assert book.best() == ((10, 5), None)
