"""``BacktestVenue``: the trading interface over the C engine in-process, replaying a market source.

The strategy's orders and the source's market flow meet in one ``c_engine.Engine``: the engine's own matching
decides every fill, so queue position is the engine's price-time priority (an order joins the back of its
level and fills only after what is ahead of it has traded or left), and a marketable order of the market takes
a better-priced strategy quote first, as it would on the exchange.

Time is the data's. The venue is a discrete-event simulation over five streams, merged in time order (at equal
times in this order): the source's messages, the strategy's commands reaching the engine (sent at ``now`` plus
an entry delay), its own events reaching it (engine time plus a response delay), market data reaching it
(engine time plus a market-data delay: the strategy's books are the engine's as of that delay, so it acts on
stale data as it would live), and its timer. Deliveries on one stream keep their order (as on one
connection): a delay drawn shorter than the previous one waits for it.

Batching: the source runs in one ``execute_batch`` up to the next event of another stream, and never further
than ``min(response, market data) + entry`` delay past its first message: nothing the strategy does in reaction
to that message can reach the engine sooner, so batching changes no fill (zero delays give one message at a
time). The strategy is called only on events it subscribed to: its own, and market data of its symbols. A
strategy of one symbol with ``book_updates = "top"`` (the makers) is called only when its top of book changes;
a command source then runs in C up to the first command that concerns it (``Engine.execute_until_watched``),
and the deeper level changes before it reach its book with their own delay, without a call.

Everything is deterministic: the same source, strategy, parameters and seeds give identical fills and PnL.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from c_engine import (
    EVENT_DTYPE,
    MSG_SIZE,
    ClientLimits,
    Command,
    Engine,
    EngineConfig,
    Event,
    EventType,
    Op,
    Side,
    Units,
)
from hotpath import L2Book
from hotpath.run_split import KEPT_DELTA, KEPT_OWN, RunSplitter

from ..accounting import Fill, Instrument
from ..core import TradingCore
from ..interface import Strategy
from .latency import LatencyModel
from .sources import FIRST_STRATEGY_CLIENT, MarketSource

__all__ = ["BacktestConfig", "BacktestError", "BacktestResult", "BacktestVenue", "MID_DTYPE", "RECORD_DTYPE"]

#: commands a strategy may send at one instant of data time before the run is stopped as a runaway loop (a
#: strategy that answers its own book changes at zero delay can otherwise spin forever without time passing)
MAX_COMMANDS_PER_INSTANT = 10_000


class BacktestError(RuntimeError):
    """A run that cannot go on: a strategy stuck sending commands without data time passing."""


_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_DELTA, _TRADE, _FILL = int(EventType.BOOK_DELTA), int(EventType.TRADE), int(EventType.FILL)
# Own events are the types below BOOK_DELTA (ACK, REJECT, FILL, CANCELED, MODIFIED); market data is BOOK_DELTA
# and TRADE.
assert int(EventType.MODIFIED) + 1 == _DELTA and _DELTA + 1 == _TRADE
_NEVER = 1 << 62
_QUOTE_OPS = (int(Op.NEW), int(Op.MODIFY))

#: one row of a run's record, sampled every ``record_interval_ns`` of data time and at the end: what the
#: metrics and plots read (live runs record the same rows)
RECORD_DTYPE = np.dtype(
    [
        ("ts_ns", np.int64),
        ("mid", np.float64),  # ticks; NaN while a side is empty
        ("position", np.int64),  # lots, of the strategy's first symbol
        ("cash_ticks", np.int64),
        ("pnl", np.float64),  # net of fees, currency, all symbols marked to mid
        ("fees", np.float64),
        ("bid", np.int64),  # the strategy's best own bid (ticks), 0 if none
        ("ask", np.int64),  # its best own ask, 0 if none
    ]
)


@dataclass(frozen=True)
class BacktestConfig:
    """Every fill assumption of a backtest, named. Latencies and fees have no default on purpose."""

    entry_latency: LatencyModel
    response_latency: LatencyModel
    market_data_latency: LatencyModel
    maker_fee_bps: float
    taker_fee_bps: float
    #: currency per unit of price per unit of size (see ``Instrument``)
    multiplier: float = 1.0
    currency: str = "USD"
    client_id: int = FIRST_STRATEGY_CLIENT
    record_interval_ns: int = 1_000_000_000
    #: the strategy's pre-trade limits in the engine (None: none)
    limits: ClientLimits | None = None

    def __post_init__(self) -> None:
        if self.client_id < FIRST_STRATEGY_CLIENT:
            raise ValueError(f"a strategy's client id must be at least {FIRST_STRATEGY_CLIENT} (sources use below)")
        if self.record_interval_ns <= 0:
            raise ValueError("record_interval_ns must be positive")

    def describe(self) -> list[str]:
        return [
            f"latency: entry {self.entry_latency.describe()}, response {self.response_latency.describe()}, "
            f"market data {self.market_data_latency.describe()}",
            f"fees: maker {self.maker_fee_bps} bps, taker {self.taker_fee_bps} bps; multiplier {self.multiplier} "
            f"{self.currency}",
            "queue: the engine's price-time priority (an order joins the back of its level)",
        ]


#: a run of events up to this long is routed in Python, a longer one in numpy columns
_SHORT_RUN = 64
#: a quiet delivery's delta: (side, seq, order count, price, qty), the wire's field order
_QuietDelta = tuple[int, int, int, int, int]
_EVENT_BYTES = MSG_SIZE
_EVENT_AT = Event.unpack_at


#: the engine's mid of the strategy's first symbol at each change, at engine time (no delay): what fill-time
#: metrics read
MID_DTYPE = np.dtype([("ts_ns", np.int64), ("mid", np.float64)])


@dataclass
class BacktestResult:
    config: BacktestConfig
    source: str
    fills: list[Fill]
    records: npt.NDArray[Any]
    messages: int
    commands_sent: int
    instruments: dict[int, Instrument] = field(default_factory=dict)
    #: the symbol the records' mid, position and quotes are of
    symbol_id: int = 0
    #: new orders and modifies sent (the quotes of a maker)
    quotes_sent: int = 0
    #: ``MID_DTYPE`` rows
    mids: npt.NDArray[Any] = field(default_factory=lambda: np.zeros(0, dtype=MID_DTYPE))


class _Tap:
    """The engine as a source sees it: every call's events are also handed to the venue."""

    def __init__(self, engine: Engine, venue: BacktestVenue) -> None:
        self._engine = engine
        self._venue = venue

    def execute(self, cmd: Command) -> list[Event]:
        events = self._engine.execute(cmd)
        self._venue._route_events(events, cmd.ts_ns)
        return events

    def execute_batch(self, commands: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
        rows = self._engine.execute_batch(commands)
        self._venue._route_rows(rows)
        return rows

    def execute_until_watched_raw(
        self,
        commands: npt.NDArray[np.void],
        watch_symbol: int,
        watch_client: int,
        start: int = 0,
        stop: int | None = None,
    ) -> tuple[int, bool, bytearray]:
        done, watched, raw = self._engine.execute_until_watched_raw(commands, watch_symbol, watch_client, start,
                                                                    stop)  # fmt: skip
        self._venue._route_watched(raw, watched)
        return done, watched, raw

    def execute_until_watched(
        self, commands: npt.NDArray[np.void], watch_symbol: int, watch_client: int
    ) -> tuple[int, bool, npt.NDArray[np.void]]:
        done, watched, raw = self.execute_until_watched_raw(commands, watch_symbol, watch_client)
        return done, watched, np.frombuffer(raw, dtype=EVENT_DTYPE)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class BacktestVenue(TradingCore):
    """Runs ``strategy`` against ``source`` under ``config``: ``run()`` returns the result."""

    def __init__(self, strategy: Strategy, source: MarketSource, config: BacktestConfig) -> None:
        # A source may need a bigger engine (a whole rebuilt L2 book); the strategy's client id must fit.
        wanted = getattr(source, "engine_config", None)
        engine_config = wanted() if wanted is not None else EngineConfig()
        self.engine = Engine(dataclasses.replace(engine_config, max_clients=max(engine_config.max_clients,
                                                                               config.client_id + 1)))  # fmt: skip
        symbols: dict[int, tuple[str, Units]] = {}
        instruments: dict[int, Instrument] = {}
        for sym in source.symbols():
            sid = self.engine.add_symbol(sym)
            symbols[sid] = (sym.name, Units(sym.tick_size, sym.lot_size))
            instruments[sid] = Instrument(sym.name, sym.tick_size, sym.lot_size, config.multiplier, config.currency,
                                          config.maker_fee_bps, config.taker_fee_bps)  # fmt: skip
        if config.limits is not None:
            self.engine.set_client_limits(config.client_id, config.limits)
        self._now = 0
        super().__init__(strategy, config.client_id, symbols, self._clock_now, instruments)
        self.config = config
        self.source = source
        #: a source that keeps its own view of the engine is shown the strategy's commands' events
        self._observe = getattr(source, "observe", None)
        self._books = {sid: L2Book() for sid in symbols}
        self._commands: deque[tuple[int, Command]] = deque()
        self._own: deque[tuple[int, list[Event]]] = deque()
        #: (delivery time, rows, quiet): a quiet delivery only updates the books (no handler is called); its
        #: rows are (side, price, qty, order count, seq) of the first symbol's deltas
        self._md: deque[tuple[int, list[Event] | list[_QuietDelta], bool]] = deque()
        self._last = {"entry": 0, "own": 0, "md": 0}
        self._response_latency, self._md_latency = config.response_latency, config.market_data_latency
        self._sub_codes = np.array(sorted(self.subscribed), dtype=np.uint16)
        self.fills: list[Fill] = []
        self._records: list[tuple[Any, ...]] = []
        self._primary = self.symbol_id(strategy.symbols[0]) if strategy.symbols else next(iter(symbols))
        self.commands_sent = 0
        self.quotes_sent = 0
        self._instant, self._instant_commands = -1, 0
        self._engine_book = L2Book()  # the first symbol's book at engine time, for the mid series
        self._splitter = RunSplitter(_SHORT_RUN)  # a short watched run, sorted in C (_route_watched)
        self._mids: list[tuple[int, float]] = []
        lat = config
        self._batch_horizon_ns = min(lat.response_latency.min_ns, lat.market_data_latency.min_ns) + \
            lat.entry_latency.min_ns  # fmt: skip

    def _clock_now(self) -> int:
        return self._now

    # --- Trading ------------------------------------------------------------------------------------------

    def book(self, symbol_id: int) -> L2Book:
        return self._books[symbol_id]

    def _send(self, cmd: Command) -> None:
        if self._now != self._instant:
            self._instant, self._instant_commands = self._now, 0
        self._instant_commands += 1
        if self._instant_commands > MAX_COMMANDS_PER_INSTANT:
            raise BacktestError(f"the strategy sent over {MAX_COMMANDS_PER_INSTANT} commands at data time "
                                f"{self._now} ns without time passing: a requote loop (set quote_interval_s or "
                                f"a latency above 0)")  # fmt: skip
        at = self._deliver_at("entry", self._now, self.config.entry_latency)
        self._commands.append((at, cmd))
        self.commands_sent += 1
        self.quotes_sent += cmd.op in _QUOTE_OPS

    # --- routing engine events to the strategy ------------------------------------------------------------

    def _deliver_at(self, stream: str, t: int, model: LatencyModel) -> int:
        at = t + model.draw()
        last = self._last[stream]
        if at < last:  # a delay drawn shorter than the one before waits for it
            at = last
        self._last[stream] = at
        return at

    def _route_events(self, events: Iterable[Event], t: int | None = None) -> None:
        """Queues the events for the strategy: its own after the response delay, market data of its symbols
        after the market-data delay, each counted from its command's time (``t``, else the event's ts_ns)."""
        me, subscribed = self._client_id, self.subscribed
        own: list[Event] = []
        md: list[Event] = []  # a delta's ref is its level's order count
        cmd_ts = -1
        for e in events:
            ts = e.ts_ns if t is None else t
            if ts != cmd_ts:  # a new command: what the previous one gave goes out first
                self._flush(own, md, cmd_ts)
                own, md, cmd_ts = [], [], ts
            et = e.type
            if et >= _DELTA:
                if et <= _TRADE and e.symbol_id in subscribed:
                    md.append(e)
                    if et == _DELTA and e.symbol_id == self._primary:
                        self._track_mid(e)
            elif e.client_id == me:
                own.append(e)
        self._flush(own, md, cmd_ts)

    def _track_mid(self, e: Event) -> None:
        book = self._engine_book
        book.apply_delta(e.side, e.price, e.qty, e.ref, e.seq)
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            mid = (bid + ask) / 2
            if not self._mids or self._mids[-1][1] != mid:
                self._mids.append((e.ts_ns, mid))

    def _flush(self, own: list[Event], md: list[Event], t: int) -> None:
        if own:
            self._own.append((self._deliver_at("own", t, self._response_latency), own))
        if md:
            self._md.append((self._deliver_at("md", t, self._md_latency), md, False))

    def _route_watched(self, raw: bytearray, watched: bool) -> None:
        """The events of a run (wire bytes) that stopped at the first command that concerns the strategy (if
        ``watched``): the commands before it only changed book levels behind the top of its symbol (or nothing
        it sees), so their deltas go to its books quietly, with the last of them; the watched command's events
        go as usual.

        A run is short (about 16 events when the strategy reacts to every top change, 9 of them before the
        watched command and 4 of those its symbol's deltas), so a short one is sorted in C
        (``hotpath.run_split``: a sixth of a reaction in Python) and only the rows the strategy gets become
        ``Event``s; numpy's per-call cost (a view, a mask, a search) is several microseconds at that size."""
        n = len(raw) // _EVENT_BYTES
        if not n:
            return
        if n > _SHORT_RUN:
            self._route_long_run(np.frombuffer(raw, dtype=EVENT_DTYPE), watched)
            return
        quiet, quiet_ts, kept, last_ts = self._splitter.split(raw, watched, self._primary, self._client_id)
        if quiet:
            self._quiet(quiet, quiet_ts)
        if kept:
            # One time (the watched command's, or a full buffer's last): the rows the strategy sees, and only
            # those, become Events (watching means one subscribed symbol, the primary: _route_events' rules)
            event_at = _EVENT_AT
            own: list[Event] = []
            md: list[Event] = []
            for k in kept:  # row * 4 + kind
                e = event_at(raw, (k >> 2) * _EVENT_BYTES)
                kind = k & 3
                if kind == KEPT_OWN:
                    own.append(e)
                else:
                    md.append(e)
                    if kind == KEPT_DELTA:
                        self._track_mid(e)
            self._flush(own, md, last_ts)

    def _route_long_run(self, rows: npt.NDArray[Any], watched: bool) -> None:
        """``_route_watched`` for a long run, in numpy columns."""
        times = rows["ts_ns"]
        split = len(rows)
        if watched:
            split = int(np.searchsorted(times, times[-1], side="left"))
        quiet = rows[:split]
        if split:
            deltas = quiet[(quiet["type"] == _DELTA) & (quiet["symbol_id"] == self._primary)]
            if len(deltas):
                columns = (deltas[f].tolist() for f in ("side", "seq", "order_count", "price", "qty"))
                self._quiet(list(zip(*columns, strict=True)), int(deltas["ts_ns"][-1]))
        if split < len(rows):
            self._route_rows(rows[split:])

    def _quiet(self, deltas: list[_QuietDelta], t: int) -> None:
        """Deltas below the top of the first symbol (no mid change): to the engine-time book now, and to the
        strategy's book quietly after the market-data delay, counted from ``t``."""
        self._engine_book.apply_deltas(deltas)
        self._md.append((self._deliver_at("md", t, self._md_latency), deltas, True))

    def _route_rows(self, rows: npt.NDArray[Any]) -> None:
        """The same for an ``EVENT_DTYPE`` batch: only the rows that concern the strategy are decoded."""
        if len(rows) > 64:  # mask first: most rows are other clients' events and other symbols' data
            types = rows["type"]
            if len(self._sub_codes) == 1:
                symbol_ok = rows["symbol_id"] == self._sub_codes[0]
            else:
                symbol_ok = np.isin(rows["symbol_id"], self._sub_codes)
            mask = ((types >= _DELTA) & (types <= _TRADE) & symbol_ok) | (
                (types < _DELTA) & (rows["client_id"] == self._client_id)
            )
            rows = rows[mask]
        if len(rows):
            self._route_events(Event.unpack_all(rows.tobytes()))

    # --- delivering ---------------------------------------------------------------------------------------

    def _deliver_own(self, events: list[Event]) -> None:
        for e in events:
            if e.type == _FILL:
                self.fills.append(Fill.from_event(e))
        self.on_own_events(events)

    def _deliver_quiet(self, deltas: list[_QuietDelta]) -> None:
        self._books[self._primary].apply_deltas(deltas)

    def _deliver_md(self, rows: list[Event]) -> None:
        books = self._books
        touched: list[int] = []
        for r in rows:
            if r.type == _DELTA:
                books[r.symbol_id].apply_delta(r.side, r.price, r.qty, r.ref, r.seq)
                if r.symbol_id not in touched:
                    touched.append(r.symbol_id)
        for r in rows:
            if r.type == _TRADE:
                self.on_trade(r.symbol_id, r.price, r.qty, r.side, r.ts_ns)
        for sid in touched:
            self.on_book(sid)

    def _execute_command(self, cmd: Command) -> None:
        events = self.engine.execute(cmd.at(self._now))
        if self._observe is not None:
            self._observe(events)
        self._route_events(events, self._now)

    # --- the simulation -----------------------------------------------------------------------------------

    def run(self, progress: Callable[[int], None] | None = None) -> BacktestResult:
        """Runs to the end of the data; ``progress(messages done)`` is called every few thousand steps."""
        source, engine = self.source, _Tap(self.engine, self)
        steps = 0
        # A source of engine commands runs in C until the first command that concerns the strategy, when the
        # strategy watches one symbol; others run as far as no reaction could land sooner.
        watch = None
        if len(self.subscribed) == 1 and getattr(self.strategy, "book_updates", "top") == "top":
            watch = getattr(source, "run_watched", None)
        source.open(engine)  # type: ignore[arg-type]  # the tap stands in for the engine
        # The data starts at its first message, or earlier if opening it (a seeded book) gave market data.
        starts = [t for t in (source.peek_ns(), self._md[0][0] if self._md else None) if t is not None]
        self._now = min(starts) if starts else 0
        self.strategy.on_start(self)
        interval = self.config.record_interval_ns
        next_record = self._now
        # The loop runs once per delivery (a few times per strategy reaction): what it reads is bound locally.
        commands, own, md, peek = self._commands, self._own, self._md, source.peek_ns
        primary, client_id = self._primary, self._client_id
        while True:
            t_src = peek()
            t_cmd = commands[0][0] if commands else _NEVER
            t_own = own[0][0] if own else _NEVER
            t_md = md[0][0] if md else _NEVER
            if t_src is None and t_cmd == t_own == t_md == _NEVER:
                break  # the data ended and everything in flight has landed (later timers are moot)
            t_timer = self.timer_ns if self.timer_ns is not None else _NEVER
            t_other = min(t_cmd, t_own, t_md, t_timer)
            t_src_v = t_src if t_src is not None else _NEVER
            now = t_src_v if t_src_v < t_other else t_other
            while now >= next_record:
                self._record(next_record)
                next_record += interval
            if now > self._now:
                self._now = now
            steps += 1
            if progress is not None and not steps & 0x1FFF:
                progress(getattr(source, "executed", 0))
            if t_src_v == now:
                if watch is not None:  # up to the next event of another stream, or the first that concerns it
                    watch(engine, t_other, primary, client_id)
                else:
                    source.run_until(engine, min(t_other, now + self._batch_horizon_ns))  # type: ignore[arg-type]
            elif t_cmd == now:
                self._execute_command(commands.popleft()[1])
            elif t_own == now:
                self._deliver_own(own.popleft()[1])
            elif t_md == now:
                _, rows, quiet = md.popleft()
                if quiet:
                    self._deliver_quiet(cast(list[_QuietDelta], rows))
                else:
                    self._deliver_md(cast(list[Event], rows))
            else:
                self.fire_timer(now)
        self.strategy.on_stop(self)
        self._execute_command(Command.mass_cancel(self._client_id, ts_ns=self._now))
        while self._own:
            self._deliver_own(self._own.popleft()[1])
        self._record(self._now)
        records = np.array(self._records, dtype=RECORD_DTYPE)
        return BacktestResult(self.config, source.name, self.fills, records, getattr(source, "executed", 0),
                              self.commands_sent, dict(self.accounting.instruments), self._primary, self.quotes_sent,
                              np.array(self._mids, dtype=MID_DTYPE))  # fmt: skip

    def mid(self, symbol_id: int) -> float:
        """The engine's mid now (ticks), NaN while a side is empty."""
        bid, ask = self.engine.l1(symbol_id)
        return (bid.price + ask.price) / 2 if bid is not None and ask is not None else float("nan")

    def _record(self, ts: int) -> None:
        marks = {}
        for sid, state in self.accounting.of_account(self._client_id):
            m = self.mid(sid)
            marks[sid] = m if m == m else state.avg_cost
        pnl = sum(state.net(marks[sid]) for sid, state in self.accounting.of_account(self._client_id))
        fees = sum(state.fees for _, state in self.accounting.of_account(self._client_id))
        primary = self.accounting.positions.get((self._client_id, self._primary))
        bids = [o.price for o in self.orders.open_orders(self._primary, _BUY) if o.price]
        asks = [o.price for o in self.orders.open_orders(self._primary, _SELL) if o.price]
        self._records.append((ts, self.mid(self._primary), primary.position if primary else 0,
                              primary.cash_ticks if primary else 0, pnl, fees, max(bids, default=0),
                              min(asks, default=0)))  # fmt: skip
