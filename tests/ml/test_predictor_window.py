"""The predictor maker's feature window: the best levels of a side, found by a tick walk on a deep book."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from ml.predictor_maker import _WALK_TICKS, _top_prices


@pytest.mark.parametrize("gap", [1, 3, 40, 500])
@pytest.mark.parametrize("n", [3, _WALK_TICKS, 2_000])
def test_the_top_prices_are_those_a_full_sort_gives_on_any_book(gap: int, n: int) -> None:
    rng = np.random.default_rng(n + gap)
    prices = 100_000 + np.cumsum(rng.integers(1, gap + 1, size=n))
    asks = {int(p): (1, 1) for p in prices}
    bids = {200_000 - p: q for p, q in asks.items()}
    assert _top_prices(asks, min(asks), 5, 1) == heapq.nsmallest(5, asks)
    assert _top_prices(bids, max(bids), 5, -1) == heapq.nlargest(5, bids)


def test_an_empty_side_has_no_top() -> None:
    assert _top_prices({}, None, 5, 1) == []
