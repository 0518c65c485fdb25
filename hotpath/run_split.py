"""``RunSplitter``: a backtest's split of an engine run that stopped at a watched command, in C
(``src/run_split.c``, ``include/pt_run_split.h``).

``Engine.execute_until_watched_raw`` runs commands until one concerns a strategy and returns the run's events
as wire bytes. The backtest venue (``strategies.backtest.venue``) hands the strategy's symbol's deltas from
before the watched command's time to its book quietly, and the watched command's market data and the
strategy's own events as usual. Sorting a run of ~16 rows that way in Python (a struct read or a byte test
per row) cost about a sixth of a strategy reaction; here it is one cffi call, and Python builds objects only
for the rows it delivers.

Choices:

- **Preallocated.** One splitter owns room for ``capacity`` rows of each output; a longer run is the caller's
  to handle another way (the venue uses numpy columns past 64 rows).
- **Tuples and ints, not objects.** Quiet deltas come back as (side, seq, order_count, price, qty) tuples, one
  struct pass over the C array in place; kept rows as ``row * 4 + kind`` ints, ``kind`` one of ``KEPT_OWN``,
  ``KEPT_DELTA``, ``KEPT_TRADE`` (a tuple per row cost more than the split).
"""

from __future__ import annotations

import struct

from c_engine import MSG_SIZE

from ._cring import ffi, lib

__all__ = ["KEPT_DELTA", "KEPT_OWN", "KEPT_TRADE", "RunSplit", "RunSplitter"]

#: a kept row is the strategy's own event, its symbol's BOOK_DELTA, or its symbol's TRADE
KEPT_OWN: int = lib.PT_KEPT_OWN
KEPT_DELTA: int = lib.PT_KEPT_DELTA
KEPT_TRADE: int = lib.PT_KEPT_TRADE

_QUIET = struct.Struct("<qQQqq")  # pt_quiet_delta_t
_ITER_QUIET = _QUIET.iter_unpack
#: a split run: (quiet deltas, the last one's ts_ns, kept rows as row * 4 + kind, the run's last ts_ns)
RunSplit = tuple[list[tuple[int, int, int, int, int]], int, list[int], int]
_EVENT_BYTES = MSG_SIZE  # one pt_event_t


class RunSplitter:
    """Splits runs of up to ``capacity`` events (``split``)."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        # The quiet deltas land in a bytearray that a struct reads in place (a memoryview slice, no copy).
        self._quiet_bytes = bytearray(capacity * _QUIET.size)
        self._quiet_view = memoryview(self._quiet_bytes)
        self._quiet = ffi.from_buffer("pt_quiet_delta_t[]", self._quiet_bytes)
        self._kept = ffi.new("uint32_t[]", capacity)
        self._out = ffi.new("pt_run_split_t *")

    def split(self, raw: bytes | bytearray, watched: bool, symbol: int, client: int) -> RunSplit:
        """The run ``raw`` (whole events, at most ``capacity``): ``watched`` says whether its last command
        concerns the strategy (``Engine.execute_until_watched_raw``); ``symbol`` is the strategy's symbol id
        and ``client`` its client id. Returns (quiet deltas, the last one's ts_ns, kept rows, the run's last
        ts_ns): each quiet delta (side, seq, order_count, price, qty), each kept row ``row * 4 + kind``."""
        n = len(raw) // _EVENT_BYTES
        if n > self.capacity or n * _EVENT_BYTES != len(raw):
            raise ValueError(f"a run of {len(raw)} bytes: whole events, at most {self.capacity}")
        out = self._out
        lib.pt_run_split(ffi.from_buffer(raw), n, watched, symbol, client, self._quiet, self._kept, out)
        nquiet, nkept = out.nquiet, out.nkept
        quiet = list(_ITER_QUIET(self._quiet_view[: nquiet * _QUIET.size])) if nquiet else []
        return quiet, out.quiet_ts, ffi.unpack(self._kept, nkept) if nkept else [], out.last_ts
