"""``BookView``: a process's own L2 books, kept from the engine's market-data ring.

A BOOK_DELTA carries a level's new total (qty, order count), so the books are exact at any depth as long as
no delta is missed. If the reader is lapped (``Overrun``), the view resyncs: it gives up what it had not
read, asks ``snapshot(symbol_id)`` for each symbol (the control plane's snapshot: the book and the engine seq
it includes) and then applies only deltas with a greater engine seq. The engine process starts with empty
books, so a view opened before the first order needs no snapshot at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy.typing as npt

from c_engine import EventType

from .bcast import BroadcastReader, Overrun
from .book import L2Book, SnapshotSource

__all__ = ["BookView", "control_snapshot"]

_DELTA, _TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)


class BookView:
    """L2 books of ``symbol_ids`` from a market-data reader; ``poll()`` applies what has arrived."""

    def __init__(
        self, reader: BroadcastReader, symbol_ids: Sequence[int], snapshot: SnapshotSource | None = None
    ) -> None:
        self._reader = reader
        self._snapshot = snapshot
        self.books: dict[int, L2Book] = {sid: L2Book() for sid in symbol_ids}
        self.last_trade: dict[int, tuple[int, int]] = {}  #: symbol id -> (price, qty) of the last trade
        self.trades = 0
        self.overruns = 0
        self._skip_upto = 0  # after a resync: deltas up to this engine seq are already in the snapshots

    def poll(self, max_count: int = 4096) -> npt.NDArray[Any]:
        """Applies the messages that arrived (up to ``max_count``) and returns them (``EVENT_DTYPE``)."""
        try:
            rows = self._reader.read_batch(max_count)
        except Overrun:
            self.overruns += 1
            self.resync()
            return self._reader.read_batch(0)
        if len(rows):
            self._apply(rows)
        return rows

    def _apply(self, rows: npt.NDArray[Any]) -> None:
        if self._skip_upto:
            rows = rows[rows["seq"] > self._skip_upto]
        columns = (rows[f].tolist() for f in ("type", "symbol_id", "side", "price", "qty", "order_count", "seq"))
        for etype, sid, side, price, qty, count, seq in zip(*columns, strict=True):
            book = self.books.get(sid)
            if book is None:
                continue
            if etype == _DELTA:
                book.apply_delta(side, price, qty, count, seq)
            elif etype == _TRADE:
                self.last_trade[sid] = (price, qty)
                self.trades += 1

    def resync(self) -> None:
        """Drops what was not read and reloads every book from ``snapshot`` (marks them stale without one)."""
        self._reader.resync()
        if self._snapshot is None:
            for book in self.books.values():
                book.stale = True
            return
        for sid, book in self.books.items():
            engine_seq, bids, asks = self._snapshot(sid)
            book.replace(bids, asks)
            book.stale = False
            self._skip_upto = max(self._skip_upto, engine_seq)

    def best(self, symbol_id: int) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """((bid price, qty) or None, (ask price, qty) or None)."""
        return self.books[symbol_id].best()


def control_snapshot(request: Callable[..., Mapping[str, Any]], symbol_names: Mapping[int, str]) -> SnapshotSource:
    """A SnapshotSource from a control-plane request function (``ControlClient.request``): full depth."""

    def snapshot(symbol_id: int) -> tuple[int, Sequence[Sequence[int]], Sequence[Sequence[int]]]:
        reply = request("snapshot", symbol=symbol_names[symbol_id], depth=1 << 16)
        return int(reply["engine_seq"]), reply["bids"], reply["asks"]

    return snapshot
