"""The predictor maker's feature window: the best levels of a side as (price, qty), found by a tick walk from
the best price, however deep or sparse the side."""

from __future__ import annotations

import heapq

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml.predictor_maker import _WALK_TICKS, _book_window


@pytest.mark.parametrize("gap", [1, 3, 40, 500])
@pytest.mark.parametrize("n", [3, _WALK_TICKS, 2_000])
def test_the_window_is_what_a_full_sort_gives_on_any_book(gap: int, n: int) -> None:
    rng = np.random.default_rng(n + gap)
    prices = 100_000 + np.cumsum(rng.integers(1, gap + 1, size=n))
    asks = {int(p): (int(p) % 5 + 1, 1) for p in prices}
    bids = {200_000 - p: q for p, q in asks.items()}
    assert _book_window(asks, min(asks), 5, 1) == [(p, asks[p][0]) for p in heapq.nsmallest(5, asks)]
    assert _book_window(bids, max(bids), 5, -1) == [(p, bids[p][0]) for p in heapq.nlargest(5, bids)]


@given(
    prices=st.sets(st.integers(1, 10 * _WALK_TICKS), max_size=40) | st.sets(st.integers(1, 300), max_size=300),
    depth=st.integers(1, 8),
)
def test_the_window_is_the_best_levels_best_first_for_any_side_and_depth(prices: set[int], depth: int) -> None:
    levels = {p: (p % 7 + 1, 1) for p in prices}
    for step, best in ((-1, max(prices, default=None)), (1, min(prices, default=None))):
        want = sorted(prices, reverse=step < 0)[:depth]
        assert _book_window(levels, best, depth, step) == [(p, levels[p][0]) for p in want]


def test_an_empty_side_has_an_empty_window() -> None:
    assert _book_window({}, None, 5, 1) == []
