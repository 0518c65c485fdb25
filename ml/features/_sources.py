"""Feature inputs from recorded data, two routes per source, so that batch and incremental check each other.

- **LOBSTER.** Batch: ``lobster_batch_inputs`` reads the order-book file's levels per row and the message
  file's visible executions directly. Incremental: ``lobster_incremental`` replays the message file through
  ``c_engine.lobster.replay_lobster`` on an engine (``FeatureEngine``) that feeds every event its commands
  return into ``IncrementalFeatures`` and takes a sample when the replay checks the book against the next row.
  Sample points: after each message that the replay applies (types 1-4) from the second on; the first message
  is in the seed book, and hidden executions, cross trades and halts (types 5-7) change no visible book, give
  the engine no command and are no sample. Trades: visible executions (type 4) only, the engine's only trades.
- **Synthetic.** ``synthetic_session`` runs ``c_engine.flow.SyntheticFlow`` through ``Engine.execute_batch`` and
  keeps commands and events. Incremental: those events, one sample after each command's events (the flow's
  commands have distinct times, so a change of ``ts_ns`` ends a command). Batch: ``synthetic_batch_inputs``
  runs the same commands again one at a time on a second engine and records its full-depth L2 book, its
  taker FILLs (not the TRADE events the incremental side reads) and, from its L3 book, one's own resting orders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow.csv as pacsv

from c_engine import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    Command,
    EngineConfig,
    Event,
    EventType,
    Liquidity,
    Op,
    Side,
    SymbolConfig,
)
from c_engine.flow import SyntheticFlow
from c_engine.lobster import (
    BOOK_CLIENT,
    EXECUTE,
    LobsterError,
    LobsterReport,
    Message,
    iter_messages,
    replay_lobster,
)

from ._batch import BookSeries, OwnOrderSegment, TradeSeries
from ._incremental import IncrementalFeatures

__all__ = [
    "FeatureEngine",
    "LobsterFeatures",
    "SyntheticSession",
    "incremental_from_events",
    "lobster_batch_inputs",
    "lobster_incremental",
    "lobster_own_segments",
    "synthetic_batch_inputs",
    "synthetic_session",
]

StrPath = str | PathLike[str]
F64 = npt.NDArray[np.float64]

#: LOBSTER message types the replay applies (new, partial cancel, delete, visible execution)
APPLIED_TYPES = frozenset((1, 2, 3, 4))
#: LOBSTER's placeholder prices of an empty order-book slot
_EMPTY_PRICES = (9999999999, -9999999999)
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_ACK, _FILL, _CANCELED, _MODIFIED = (int(EventType.ACK), int(EventType.FILL), int(EventType.CANCELED),
                                     int(EventType.MODIFIED))  # fmt: skip
_OP_NEW, _TAKER, _TRADE = int(Op.NEW), int(Liquidity.TAKER), int(EventType.TRADE)


# --- LOBSTER, batch side -----------------------------------------------------------------------------------------


def _read_orderbook(path: StrPath) -> npt.NDArray[np.int64]:
    opts = pacsv.ReadOptions(autogenerate_column_names=True)
    table = pacsv.read_csv(str(path), read_options=opts)
    return np.column_stack([np.asarray(c, dtype=np.int64) for c in table.columns])


def _ticks(raw: npt.NDArray[np.int64], tick: int, empty: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    if np.any((raw % tick != 0) & ~empty):
        raise LobsterError(f"an order-book price is not a multiple of the tick ({tick})")
    return np.where(empty, 0, raw // tick)


def lobster_batch_inputs(
    message_path: StrPath, orderbook_path: StrPath, tick: int = 100
) -> tuple[BookSeries, TradeSeries, list[Message]]:
    """The LOBSTER day as batch inputs: the order-book rows at the sample points, the visible executions, and
    the applied messages (one per sample, for own-order segments)."""
    messages = list(iter_messages(message_path, tick))
    values = _read_orderbook(orderbook_path)
    if len(values) != len(messages):
        raise LobsterError(f"{len(messages)} messages but {len(values)} order-book rows")
    rows = [i for i in range(1, len(messages)) if messages[i].type in APPLIED_TYPES]
    v = values[rows]
    ask_raw, ask_qty, bid_raw, bid_qty = v[:, 0::4], v[:, 1::4], v[:, 2::4], v[:, 3::4]
    ask_empty = np.isin(ask_raw, _EMPTY_PRICES) | (ask_qty == 0)
    bid_empty = np.isin(bid_raw, _EMPTY_PRICES) | (bid_qty == 0)
    applied = [messages[i] for i in rows]
    book = BookSeries(
        ts_ns=np.array([m.ts_ns for m in applied], dtype=np.int64),
        bid_price=_ticks(bid_raw, tick, bid_empty),
        bid_qty=np.where(bid_empty, 0, bid_qty),
        ask_price=_ticks(ask_raw, tick, ask_empty),
        ask_qty=np.where(ask_empty, 0, ask_qty),
    )
    execs = [(j, m) for j, m in enumerate(applied) if m.type == EXECUTE]
    trades = TradeSeries(
        sample=np.array([j for j, _ in execs], dtype=np.int64),
        ts_ns=np.array([m.ts_ns for _, m in execs], dtype=np.int64),
        # The message's direction is the resting order's side: the taker is on the other.
        side=np.array([_SELL if m.side == _BUY else _BUY for _, m in execs], dtype=np.int64),
        price=np.array([m.price for _, m in execs], dtype=np.int64),
        qty=np.array([m.size for _, m in execs], dtype=np.int64),
    )
    return book, trades, applied


def lobster_own_segments(applied: Sequence[Message], own_ids: Iterable[int]) -> list[OwnOrderSegment]:
    """Own-order segments of the LOBSTER orders ``own_ids`` from the applied messages (one per sample): each
    rests from its new-order message on; partial cancels and executions cut it; a delete or a full execution
    ends it (its last sample is the one before)."""
    segments = []
    for oid in own_ids:
        start, side, price, open_qty = -1, 0, 0, 0
        qtys: list[int] = []
        for j, m in enumerate(applied):
            if m.order_id != oid:
                continue
            if m.type == 1:
                start, side, price, open_qty = j, m.side, m.price, m.size
                continue
            if start < 0:
                break
            qtys.extend([open_qty] * (j - start - len(qtys)))
            open_qty = 0 if m.type == 3 else open_qty - m.size
            if open_qty <= 0:
                break
        else:
            if start >= 0:
                qtys.extend([open_qty] * (len(applied) - start - len(qtys)))
        if start >= 0 and qtys:
            segments.append(OwnOrderSegment(side, price, start, np.array(qtys, dtype=np.int64)))
    return segments


# --- LOBSTER, incremental side -----------------------------------------------------------------------------------


def _engine_class() -> type[Any]:
    from c_engine import Engine

    return Engine


class FeatureEngine(_engine_class()):  # type: ignore[misc]
    """A ``c_engine.Engine`` for ``replay_lobster`` that feeds the events of every command to ``features`` and
    takes a sample each time the replay reads the book to compare it with a row (``l2``): the end of a message.

    ``own_ordinals``: the n-th new orders of the file (0-based, in file order) to treat as one's own.
    """

    def __init__(self, config: EngineConfig, features: IncrementalFeatures, own_ordinals: Iterable[int] = ()):
        super().__init__(config)
        self.features = features
        self.rows: list[F64] = []
        self._own_ordinals = set(own_ordinals)
        self._new_orders = 0
        self._own_ids: set[int] = set()
        self._pending = False
        self._ts = 0
        #: the engine's trades: (sample they belong to, ts, taker side, price, qty)
        self.trades: list[tuple[int, int, int, int, int]] = []

    def execute(self, cmd: Command) -> list[Event]:
        events: list[Event] = super().execute(cmd)
        f = self.features
        is_file_order = cmd.op == _OP_NEW and cmd.client_id == BOOK_CLIENT
        for e in events:
            f.on_event(e)
            t = e.type
            if t == _TRADE:
                self.trades.append((len(self.rows), e.ts_ns, e.side, e.price, e.qty))
            elif t == _ACK and is_file_order and e.code == _OP_NEW:
                if self._new_orders in self._own_ordinals:
                    self._own_ids.add(e.order_id)
                    f.on_own_ack(e.order_id, e.side, e.price, e.aux)
                self._new_orders += 1
            elif e.order_id in self._own_ids and e.client_id == BOOK_CLIENT:
                if t == _FILL or t == _CANCELED:
                    f.on_own_fill(e.order_id, e.aux)
                elif t == _MODIFIED:
                    f.on_own_modified(e.order_id, e.price, e.aux)
        if events:
            self._pending = True
            self._ts = events[-1].ts_ns
        return events

    def l2(self, symbol: str | int, depth: int | None = None) -> Any:
        if self._pending:
            self.rows.append(self.features.sample(self._ts))
            self._pending = False
        return super().l2(symbol, depth)


class LobsterFeatures(NamedTuple):
    """What ``lobster_incremental`` gives: the rows, the replay's report, and the trades the engine printed."""

    rows: F64
    report: LobsterReport
    trades: TradeSeries


def lobster_incremental(
    features: IncrementalFeatures,
    message_path: StrPath,
    orderbook_path: StrPath,
    tick: int = 100,
    own_ordinals: Iterable[int] = (),
) -> LobsterFeatures:
    """The incremental rows of a LOBSTER day (the replay's engine events, one sample per applied message), the
    replay's report and the engine's trades. The report's priority deviations are executions the engine applied
    as reductions of the order the file names, without a TRADE: the trade features miss them, where the batch
    side reads every execution."""
    engines: list[FeatureEngine] = []

    def factory(config: EngineConfig) -> FeatureEngine:
        engines.append(FeatureEngine(config, features, own_ordinals))
        return engines[-1]

    report = replay_lobster(message_path, orderbook_path, tick, factory)
    if report.mismatches or report.anomalies:
        raise LobsterError(f"the replay did not rebuild the book: {report.lines()}")
    rows = engines[0].rows
    t = np.array(engines[0].trades, dtype=np.int64).reshape(-1, 5)
    return LobsterFeatures(
        np.array(rows) if rows else np.empty((0, features.spec.width)),
        report,
        TradeSeries(t[:, 0], t[:, 1], t[:, 2], t[:, 3], t[:, 4]),
    )


# --- synthetic -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSession:
    """A synthetic run: its symbol, commands (``COMMAND_DTYPE``) and events (``EVENT_DTYPE``)."""

    symbol: SymbolConfig
    commands: npt.NDArray[np.void]
    events: npt.NDArray[np.void]


def synthetic_session(
    n_commands: int, *, seed: int = 1, mean_gap_ns: int = 1_000_000, chunk: int = 1000
) -> SyntheticSession:
    """``n_commands`` of ``SyntheticFlow`` run through ``Engine.execute_batch``; exponential gaps between
    commands (at least 1 ns, so times are distinct)."""
    from c_engine import Engine

    symbol = SymbolConfig("SYN", tick_size=0.01, lot_size=1, max_price_ticks=1_000_000)
    engine = Engine(EngineConfig())
    sid = engine.add_symbol(symbol)
    flow = SyntheticFlow(sid, seed=seed)
    gaps = np.random.default_rng(seed + 7919)
    clock = 0
    commands, events = [], []
    for start in range(0, n_commands, chunk):
        n = min(chunk, n_commands - start)
        block = flow.next_batch(n, 0)
        times = clock + np.cumsum(gaps.exponential(mean_gap_ns, size=n).astype(np.int64) + 1)
        clock = int(times[-1])
        block["ts_ns"] = times
        ev = engine.execute_batch(block)
        flow.observe(ev)
        commands.append(block)
        events.append(ev)
    # Joined as bytes: numpy re-lays a dtype with overlapping fields (the wire's unions) when it concatenates.
    return SyntheticSession(symbol, _join(commands, COMMAND_DTYPE), _join(events, EVENT_DTYPE))


def _join(blocks: list[npt.NDArray[np.void]], dtype: np.dtype[np.void]) -> npt.NDArray[np.void]:
    return np.concatenate([np.ascontiguousarray(b).view(np.uint8) for b in blocks]).view(dtype)


def incremental_from_events(
    features: IncrementalFeatures, events: npt.NDArray[np.void], on_sample: Callable[[int], None] | None = None
) -> F64:
    """Feeds an ``EVENT_DTYPE`` array to ``features`` and samples after each command's events (a change of
    ``ts_ns`` ends a command: the commands must have distinct times). ``on_sample(i)`` runs before sample i."""
    rows: list[F64] = []
    stream = Event.unpack_all(np.ascontiguousarray(events).view(np.uint8).tobytes())
    for i, e in enumerate(stream):
        features.on_event(e)
        if i + 1 == len(stream) or stream[i + 1].ts_ns != e.ts_ns:
            if on_sample is not None:
                on_sample(len(rows))
            rows.append(features.sample(e.ts_ns))
    return np.array(rows) if rows else np.empty((0, features.spec.width))


def synthetic_batch_inputs(
    session: SyntheticSession, own_client: int | None = None
) -> tuple[BookSeries, TradeSeries, list[OwnOrderSegment]]:
    """Batch inputs of a synthetic session, from a second engine run one command at a time (see the module
    docstring); ``own_client``'s resting orders become own-order segments."""
    from c_engine import Engine

    engine = Engine(EngineConfig())
    sid = engine.add_symbol(session.symbol)
    n = len(session.commands)
    books: list[tuple[list[Any], list[Any]]] = []
    ts = np.empty(n, dtype=np.int64)
    trades: list[tuple[int, int, int, int, int]] = []
    # Own orders: id -> [side, price, start, open qtys], closed into segments when they end or lose their place.
    live: dict[int, list[Any]] = {}
    segments: list[OwnOrderSegment] = []
    for i, row in enumerate(session.commands):
        cmd = Command.unpack(row.tobytes())
        ts[i] = cmd.ts_ns
        for e in engine.execute(cmd):
            if e.type == _FILL and e.liquidity == _TAKER:
                trades.append((i, e.ts_ns, e.side, e.price, e.qty))
        l2 = engine.l2(sid)
        books.append((l2["bids"], l2["asks"]))
        if own_client is None:
            continue
        l3 = engine.l3(sid)
        seen = set()
        for name, side in (("bids", _BUY), ("asks", _SELL)):
            for o in l3[name]:
                if o.client_id != own_client:
                    continue
                seen.add(o.order_id)
                entry = live.get(o.order_id)
                if entry is not None and (entry[1] != o.price or o.open_qty > entry[3][-1]):
                    segments.append(OwnOrderSegment(entry[0], entry[1], entry[2], np.array(entry[3])))
                    entry = None
                if entry is None:
                    live[o.order_id] = [side, o.price, i, [o.open_qty]]
                else:
                    entry[3].append(o.open_qty)
        for oid in [oid for oid in live if oid not in seen]:
            entry = live.pop(oid)
            segments.append(OwnOrderSegment(entry[0], entry[1], entry[2], np.array(entry[3])))
    for entry in live.values():
        segments.append(OwnOrderSegment(entry[0], entry[1], entry[2], np.array(entry[3])))
    depth = max([max(len(b), len(a)) for b, a in books] + [1])
    arrays = [np.zeros((n, depth), dtype=np.int64) for _ in range(4)]
    for i, (bids, asks) in enumerate(books):
        for j, lv in enumerate(bids):
            arrays[0][i, j], arrays[1][i, j] = lv.price, lv.qty
        for j, lv in enumerate(asks):
            arrays[2][i, j], arrays[3][i, j] = lv.price, lv.qty
    book = BookSeries(ts, arrays[0], arrays[1], arrays[2], arrays[3])
    t = np.array(trades, dtype=np.int64).reshape(-1, 5)
    return book, TradeSeries(t[:, 0], t[:, 1], t[:, 2], t[:, 3], t[:, 4]), segments
