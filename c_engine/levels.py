"""One side of an L2 book kept in Python: ``levels`` price -> quantity, and ``keys`` its prices sorted best first.

A bid side keys its prices negated, so for both sides ``keys[0]`` is the best and the first ``n`` keys are the
top ``n`` levels; a change costs a dict store, plus a bisect into ``keys`` only when a level appears or goes.
The Binance rebuild, the LOBSTER replay's own-events view and the Binance feature route keep their sides so.
"""

from __future__ import annotations

from bisect import bisect_left, insort

__all__ = ["set_level"]


def set_level(levels: dict[int, int], keys: list[int], price: int, qty: int, key: int) -> None:
    """Sets the level at ``price`` to ``qty`` (0 removes it); ``key`` is its sort key: -price for a bid, price
    for an ask."""
    if qty:
        if price not in levels:
            insort(keys, key)
        levels[price] = qty
    elif levels.pop(price, None) is not None:
        del keys[bisect_left(keys, key)]
