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
