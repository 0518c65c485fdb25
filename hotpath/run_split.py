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
- **Tuples, not objects.** Quiet deltas come back as (side, seq, order_count, price, qty) tuples, one struct
  unpack of the whole array; kept rows as (row, kind) with ``kind`` one of ``KEPT_OWN``, ``KEPT_DELTA``,
  ``KEPT_TRADE``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ._cring import ffi, lib

__all__ = ["KEPT_DELTA", "KEPT_OWN", "KEPT_TRADE", "RunSplit", "RunSplitter"]

#: a kept row is the strategy's own event, its symbol's BOOK_DELTA, or its symbol's TRADE
KEPT_OWN: int = lib.PT_KEPT_OWN
KEPT_DELTA: int = lib.PT_KEPT_DELTA
KEPT_TRADE: int = lib.PT_KEPT_TRADE

_QUIET = struct.Struct("<qQQqq")  # pt_quiet_delta_t
_EVENT_BYTES = 64  # pt_event_t: PT_MSG_SIZE


class RunSplit(NamedTuple):
    """One run, split: the quiet deltas, the time of the last of them, the kept rows, the run's last time."""

    quiet: list[tuple[int, int, int, int, int]]
    quiet_ts: int
    kept: list[tuple[int, int]]
    last_ts: int


class RunSplitter:
    """Splits runs of up to ``capacity`` events (``split``)."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._quiet = ffi.new("pt_quiet_delta_t[]", capacity)
        self._quiet_bytes = ffi.buffer(self._quiet)
        self._kept = ffi.new("uint32_t[]", capacity)
        self._out = ffi.new("pt_run_split_t *")

    def split(self, raw: bytes | bytearray, watched: bool, symbol: int, client: int) -> RunSplit:
        """The run ``raw`` (whole events, at most ``capacity``): ``watched`` says whether its last command
        concerns the strategy (``Engine.execute_until_watched_raw``); ``symbol`` is the strategy's symbol id
        and ``client`` its client id."""
        n = len(raw) // _EVENT_BYTES
        if n > self.capacity or n * _EVENT_BYTES != len(raw):
            raise ValueError(f"a run of {len(raw)} bytes: whole events, at most {self.capacity}")
        out = self._out
        lib.pt_run_split(ffi.from_buffer(raw), n, watched, symbol, client, self._quiet, self._kept, out)
        nquiet = out.nquiet
        quiet = list(_QUIET.iter_unpack(self._quiet_bytes[: nquiet * _QUIET.size])) if nquiet else []
        kept = [(k >> 2, k & 3) for k in ffi.unpack(self._kept, out.nkept)] if out.nkept else []
        return RunSplit(quiet, out.quiet_ts, kept, out.last_ts)
