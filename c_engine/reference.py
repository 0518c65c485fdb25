"""``ReferenceEngine``: a small, obviously correct, pure-Python matching engine.

It implements docs/ENGINE.md exactly, with the same ``execute(Command) -> list[Event]`` surface as the C-backed
``c_engine.Engine``, so the differential tests (tests/c_engine/test_differential.py) can run both on the same
command stream and compare every event, the books and the positions. Clarity comes first: dicts and lists, one
method per step of the spec, the spec's words in the comments. Two lookups are indexed because the fuzz tests
run it on hundreds of thousands of commands: order id -> order (a dict), and each price level's queue (an
``OrderedDict``, so the front maker is O(1)). Price levels per side are a sorted list of prices.

Where the spec leaves a detail open, the simplest reading is taken and marked ``Choice:`` in a comment;
``grep -n Choice: c_engine/reference.py`` lists them all.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from ._config import ClientLimits, EngineConfig, L3Order, Level, Position, SymbolConfig
from ._errors import InvalidConfigError, OutOfRangeError, UnknownSymbolError
from ._types import Command, Event
from ._wire import (
    CLIENT_NONE,
    SYMBOL_NONE,
    CancelReason,
    EventFlag,
    EventType,
    Flag,
    Limit,
    Liquidity,
    Op,
    OrderType,
    RejectReason,
    Side,
    Stp,
    Tif,
)

__all__ = ["ReferenceEngine"]

#: SET_LIMIT's side byte (enum pt_limit) -> the ClientLimits field it sets
_LIMIT_FIELDS = {int(limit): limit.name.lower() for limit in Limit}


#: one rate-limit token, in the bucket's unit (1e-9 token), so refills stay integer: 1 ns adds rate_per_s units
TOKEN = 1_000_000_000

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_SIDES = (_BUY, _SELL)
_ORDER_TYPES = (int(OrderType.LIMIT), int(OrderType.MARKET))
_TIFS = (int(Tif.GTC), int(Tif.IOC), int(Tif.FOK))
_STPS = tuple(int(s) for s in Stp)
_BOOK_SIDES = {_BUY: "bids", _SELL: "asks"}  # the keys of l2 and l3, as on every book in the platform
# ReferenceEngine's default configuration: one frozen instance, shared as a default argument.
_DEFAULT_CONFIG = EngineConfig()


class _Reject(Exception):
    """A failed check; ``execute`` turns it into the command's only event."""

    def __init__(self, reason: RejectReason) -> None:
        super().__init__(reason.name)
        self.reason = reason


@dataclass(slots=True)
class _Order:
    order_id: int
    client_id: int
    symbol_id: int
    side: int
    #: limit price in ticks; 0 for a market order
    price: int
    open_qty: int
    cloid: int
    stp: int
    post_only: bool
    market: bool
    tif: int


@dataclass(slots=True)
class _Level:
    qty: int = 0
    #: order id -> order, in time priority
    orders: OrderedDict[int, _Order] = field(default_factory=OrderedDict)


class _BookSide:
    """One side of one symbol's book: levels by price, and the prices in ascending order."""

    def __init__(self, side: int) -> None:
        self.side = side
        self.levels: dict[int, _Level] = {}
        self.prices: list[int] = []

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.side == _BUY else self.prices[0]

    def prices_best_first(self) -> list[int]:
        return self.prices[::-1] if self.side == _BUY else list(self.prices)


@dataclass(slots=True)
class _Risk:
    """Risk state of one client on one symbol."""

    position: int = 0
    #: ticks x lots: minus for buys, plus for sells
    cash: int = 0
    open_buy_qty: int = 0
    open_sell_qty: int = 0


@dataclass(slots=True)
class _Client:
    limits: ClientLimits = field(default_factory=ClientLimits)
    killed: bool = False
    #: ids of the client's resting orders, on every symbol
    order_ids: set[int] = field(default_factory=set)
    #: cloid -> order id, for the client's resting orders with cloid != 0
    cloids: dict[int, int] = field(default_factory=dict)
    #: rate bucket, in 1e-9 tokens; set_client_limits fills it
    tokens: int = 0
    last_ts: int = 0


def _crosses(side: int, level_price: int, limit: int | None) -> bool:
    """Whether a taker on ``side`` with ``limit`` (None: no limit) may trade at ``level_price``."""
    if limit is None:
        return True
    return level_price <= limit if side == _BUY else level_price >= limit


# pt_engine.h's capacity limits (PT_MAX_ORDERS, PT_MAX_LEVELS_PER_SIDE): the C engine names order slots and
# levels by 32- and 24-bit indexes, and the reference refuses what it refuses.
MAX_ORDERS = 0x7FFFFFFE
MAX_LEVELS_PER_SIDE = 1 << 23
#: pt_engine.h's PT_MAX_PNL_UNIT: add_symbol refuses a larger pnl_unit
MAX_PNL_UNIT = 1 << 32


class ReferenceEngine:
    """The matching engine of docs/ENGINE.md in plain Python: same commands, same events as ``c_engine.Engine``."""

    def __init__(self, config: EngineConfig = _DEFAULT_CONFIG) -> None:
        # The configuration domain of pt_engine_create, pt_engine_add_symbol and pt_engine_set_client_limits,
        # with the same exceptions as Engine, so that both refuse the same configurations.
        if not 0 < config.max_orders <= MAX_ORDERS or not 0 < config.max_levels_per_side <= MAX_LEVELS_PER_SIDE:
            raise InvalidConfigError(f"invalid engine config {config}")
        if not 0 < config.max_symbols < SYMBOL_NONE:
            raise InvalidConfigError(f"invalid engine config {config}")
        if not 0 < config.max_clients < CLIENT_NONE:
            raise InvalidConfigError(f"invalid engine config {config}")
        self.config = config
        self.symbol_names: dict[int, str] = {}
        self._symbol_ids: dict[str, int] = {}
        self._symbols: list[SymbolConfig] = []
        self._books: list[dict[int, _BookSide]] = []
        self._last_price: list[int] = []  # 0 = no trade yet
        self._halted: set[int] = set()  # symbol ids (HALT, until RESUME)
        self._clients: dict[int, _Client] = {}
        self._risk: dict[tuple[int, int], _Risk] = {}
        #: every resting order, by id
        self.orders: dict[int, _Order] = {}
        self._loss_clients: list[int] = []  # clients with max_loss > 0, ascending
        self._next_order_id = 1
        self._next_trade_id = 1
        self._next_seq = 1
        self._commands = 0
        # Per-command state.
        self._events: list[Event] = []
        self._ts = 0
        self._touched: dict[tuple[int, int, int], None] = {}  # (symbol, side, price), in order of first touch
        self._traded = False

    # ---- configuration -------------------------------------------------------------------

    def add_symbol(self, cfg: SymbolConfig) -> int:
        if cfg.name in self._symbol_ids:
            raise ValueError(f"symbol {cfg.name!r} already added")
        if len(self._symbols) >= self.config.max_symbols:
            raise OutOfRangeError(f"more than max_symbols={self.config.max_symbols} symbols")
        if (
            cfg.min_price_ticks < 1
            or cfg.max_price_ticks < cfg.min_price_ticks
            or cfg.max_order_lots < 1
            or min(cfg.band_ticks, cfg.band_bps, cfg.reference_price, cfg.market_band_ticks) < 0
            or not 1 <= cfg.pnl_unit <= MAX_PNL_UNIT  # the C engine keeps PnL exact in 128 bits
            or cfg.max_price_ticks * cfg.max_order_lots > 1 << 62  # a trade's price x qty fits an int64
            or cfg.max_order_lots * self.config.max_orders > _INT64_MAX  # so does a level's qty
        ):
            raise InvalidConfigError(f"invalid symbol config {cfg}")
        sid = len(self._symbols)
        self._symbols.append(cfg)
        self._books.append({_BUY: _BookSide(_BUY), _SELL: _BookSide(_SELL)})
        self._last_price.append(0)
        self._symbol_ids[cfg.name] = sid
        self.symbol_names[sid] = cfg.name
        return sid

    def set_client_limits(self, client_id: int, limits: ClientLimits) -> None:
        client = self._client(client_id)
        values = (limits.max_order_qty, limits.max_open_orders, limits.max_position, limits.rate_per_s,
                  limits.rate_burst, limits.max_loss)  # fmt: skip
        if min(values) < 0 or max(limits.rate_per_s, limits.rate_burst) > ((1 << 63) - 1) // TOKEN:
            raise InvalidConfigError(f"invalid client limits {limits}")
        client.limits = limits
        # Choice: setting limits starts a fresh rate bucket: full (its new capacity), last_ts = 0. The kill
        # switch and the risk state are kept.
        client.tokens = self._capacity(limits)
        client.last_ts = 0
        self._loss_clients = sorted(c for c, st in self._clients.items() if st.limits.max_loss > 0)

    def client_limits(self, client_id: int) -> ClientLimits:
        return self._client(client_id).limits

    def symbol_id(self, symbol: str | int) -> int:
        if isinstance(symbol, str):
            if symbol not in self._symbol_ids:
                raise UnknownSymbolError(symbol)
            return self._symbol_ids[symbol]
        if not 0 <= symbol < len(self._symbols):
            raise UnknownSymbolError(symbol)
        return symbol

    # ---- snapshots -----------------------------------------------------------------------

    def l1(self, symbol: str | int) -> tuple[Level | None, Level | None]:
        """The best bid and best ask level (None for an empty side)."""
        book = self._books[self.symbol_id(symbol)]
        best: list[Level | None] = []
        for side in _SIDES:
            price = book[side].best()
            level = None if price is None else book[side].levels[price]
            best.append(None if level is None or price is None else Level(price, level.qty, len(level.orders)))
        return best[0], best[1]

    def l2(self, symbol: str | int, depth: int | None = None) -> dict[str, list[Level]]:
        book = self._books[self.symbol_id(symbol)]
        out: dict[str, list[Level]] = {}
        for side in _SIDES:
            book_side = book[side]
            prices = book_side.prices_best_first()[:depth]
            levels = [book_side.levels[p] for p in prices]
            out[_BOOK_SIDES[side]] = [Level(p, lv.qty, len(lv.orders)) for p, lv in zip(prices, levels, strict=True)]
        return out

    def l3(self, symbol: str | int) -> dict[str, list[L3Order]]:
        book = self._books[self.symbol_id(symbol)]
        out: dict[str, list[L3Order]] = {}
        for side in _SIDES:
            book_side = book[side]
            out[_BOOK_SIDES[side]] = [
                L3Order(o.order_id, o.client_id, o.price, o.open_qty)
                for p in book_side.prices_best_first()
                for o in book_side.levels[p].orders.values()
            ]
        return out

    def position(self, client_id: int, symbol: str | int) -> Position:
        sid = self.symbol_id(symbol)
        client = self._client(client_id)
        risk = self._risk.get((client_id, sid), _Risk())
        # Choice: pt_position_t.pnl is an int64, so the exact PnL is saturated to its range here (the kill
        # switch compares the exact value).
        pnl = max(_INT64_MIN, min(_INT64_MAX, self._pnl(client_id)))
        return Position(
            risk.position, risk.cash, risk.open_buy_qty, risk.open_sell_qty,
            len(client.order_ids), client.killed, pnl,
        )  # fmt: skip

    def last_price(self, symbol: str | int) -> int | None:
        return self._last_price[self.symbol_id(symbol)] or None

    def stats(self) -> dict[str, int]:
        """The counters of ``Engine.stats()``: commands run, events emitted, the next ids, resting orders."""
        return {
            "commands": self._commands,
            "events": self._next_seq - 1,
            "next_order_id": self._next_order_id,
            "next_trade_id": self._next_trade_id,
            "live_orders": len(self.orders),
        }

    # ---- commands ------------------------------------------------------------------------

    def execute(self, cmd: Command) -> list[Event]:
        """Runs one command (ticks and lots) and returns its events, the last of them for the command's client
        flagged LAST."""
        events = self._run(cmd)
        for i in range(len(events) - 1, -1, -1):
            e = events[i]
            if e.client_id == cmd.client_id and e.type not in (EventType.BOOK_DELTA, EventType.TRADE):
                events[i] = e._replace(flags=e.flags | EventFlag.LAST)
                break
        return events

    def _run(self, cmd: Command) -> list[Event]:
        self._commands += 1
        self._events = []
        self._ts = cmd.ts_ns
        self._touched = {}
        self._traded = False
        try:
            if cmd.flags & Flag.NOT_GRANTED:
                raise _Reject(RejectReason.NOT_GRANTED)
            if cmd.op in (Op.HALT, Op.RESUME):  # a symbol's state: no client check (the id is only echoed)
                self._halt(cmd)
                return self._events
            if cmd.client_id >= self.config.max_clients:
                raise _Reject(RejectReason.UNKNOWN_CLIENT)
            if cmd.op == Op.NEW:
                self._new(cmd)
            elif cmd.op == Op.CANCEL:
                self._cancel(cmd)
            elif cmd.op == Op.MODIFY:
                self._modify(cmd)
            elif cmd.op == Op.MASS_CANCEL:
                self._mass_cancel(cmd)
            elif cmd.op == Op.KILL_RESET:
                self._kill_reset(cmd)
            elif cmd.op == Op.KILL:
                self._kill(cmd)
            elif cmd.op == Op.SET_LIMIT:
                self._set_limit(cmd)
            else:
                raise _Reject(RejectReason.UNKNOWN_OP)
        except _Reject as reject:
            # A reject is the only event of its command and changes nothing (checks never mutate).
            assert not self._events
            self._emit(
                EventType.REJECT, cmd.side, cmd.symbol_id, cmd.client_id, reject.reason,
                cmd.order_id, cmd.cloid, cmd.price, cmd.qty, 0,
            )  # fmt: skip
            return self._events
        if self._traded:
            self._check_kill_switches()
        self._emit_book_deltas()
        return self._events

    def _new(self, cmd: Command) -> None:
        client_id, sid, side, qty, price = cmd.client_id, cmd.symbol_id, cmd.side, cmd.qty, cmd.price
        # 2. names
        if sid >= len(self._symbols):
            raise _Reject(RejectReason.UNKNOWN_SYMBOL)
        if sid in self._halted:
            raise _Reject(RejectReason.SYMBOL_HALTED)
        if side not in _SIDES:
            raise _Reject(RejectReason.UNKNOWN_SIDE)
        if cmd.order_type not in _ORDER_TYPES:
            raise _Reject(RejectReason.UNKNOWN_ORDER_TYPE)
        if cmd.tif not in _TIFS:
            raise _Reject(RejectReason.UNKNOWN_TIF)
        if cmd.stp not in _STPS:
            raise _Reject(RejectReason.UNKNOWN_STP)
        market = cmd.order_type == OrderType.MARKET
        post_only = bool(cmd.flags & Flag.POST_ONLY)
        rests = not market and cmd.tif == Tif.GTC  # only a GTC limit order can rest
        # 3., 4.
        if market and cmd.tif == Tif.GTC:
            raise _Reject(RejectReason.MARKET_NOT_IOC_FOK)
        if post_only and not rests:
            raise _Reject(RejectReason.POST_ONLY_NOT_GTC_LIMIT)
        # 5. quantity
        sym = self._symbols[sid]
        if qty <= 0:
            raise _Reject(RejectReason.INVALID_QTY)
        if qty > sym.max_order_lots:
            raise _Reject(RejectReason.QTY_ABOVE_SYMBOL_MAX)
        # 6., 7. price. Choice: a market order's price field is ignored unless HAS_PRICE is set (then rejected).
        has_price = bool(cmd.flags & Flag.HAS_PRICE)
        if market:
            if has_price:
                raise _Reject(RejectReason.MARKET_WITH_PRICE)
        else:
            if not has_price:
                raise _Reject(RejectReason.MISSING_PRICE)
            self._check_price(sid, price)
        # 8.-10.
        client = self._client(client_id)
        if cmd.cloid != 0 and cmd.cloid in client.cloids:
            raise _Reject(RejectReason.DUPLICATE_CLIENT_ORDER_ID)
        if client.killed:
            raise _Reject(RejectReason.KILL_SWITCH)
        tokens = self._rate_tokens_after(client, cmd.ts_ns)
        # 11.-13. client limits
        limits = client.limits
        if limits.max_order_qty and qty > limits.max_order_qty:
            raise _Reject(RejectReason.RISK_MAX_ORDER_QTY)
        if rests and limits.max_open_orders and len(client.order_ids) + 1 > limits.max_open_orders:
            raise _Reject(RejectReason.RISK_MAX_OPEN_ORDERS)
        if limits.max_position and self._exposure(client_id, sid, side) + qty > limits.max_position:
            raise _Reject(RejectReason.RISK_MAX_POSITION)
        if self._could_leave_int64(client_id, sid, side, qty):
            raise _Reject(RejectReason.RISK_INT64_OVERFLOW)
        # 14. post-only: would it trade (lock included) with any resting order, its own client's too?
        book = self._books[sid]
        opposite = book[_SELL if side == _BUY else _BUY]
        best = opposite.best()
        if post_only and best is not None and _crosses(side, best, price):
            raise _Reject(RejectReason.POST_ONLY_WOULD_TAKE)
        # 15. capacity, before matching
        if rests:
            if len(self.orders) >= self.config.max_orders:
                raise _Reject(RejectReason.ORDER_POOL_EXHAUSTED)
            own = book[side]
            if price not in own.levels and len(own.levels) >= self.config.max_levels_per_side:
                raise _Reject(RejectReason.BOOK_LEVELS_EXHAUSTED)

        # Accepted.
        self._spend_token(client, tokens, cmd.ts_ns)
        order = _Order(
            order_id=self._next_order_id, client_id=client_id, symbol_id=sid, side=side,
            price=0 if market else price, open_qty=qty, cloid=cmd.cloid, stp=cmd.stp,
            post_only=post_only, market=market, tif=cmd.tif,
        )  # fmt: skip
        self._next_order_id += 1
        self._emit(EventType.ACK, side, sid, client_id, Op.NEW, order.order_id, order.cloid, order.price, qty, qty)
        limit = self._walk_limit(order)
        if order.tif == Tif.FOK and not self._fok_fills(order, limit):
            self._emit_canceled(order, CancelReason.FOK, order.open_qty, 0)  # killed: nothing else changes
            return
        self._take(order, limit)

    def _cancel(self, cmd: Command) -> None:
        order = self._owned_order(cmd)
        self._cancel_resting(order, CancelReason.USER)

    def _modify(self, cmd: Command) -> None:
        has_qty = bool(cmd.flags & Flag.HAS_QTY)
        has_price = bool(cmd.flags & Flag.HAS_PRICE)
        if not has_qty and not has_price:
            raise _Reject(RejectReason.MODIFY_NOTHING)
        if has_qty and cmd.qty <= 0:
            raise _Reject(RejectReason.INVALID_QTY)
        if has_price and cmd.price <= 0:
            raise _Reject(RejectReason.INVALID_PRICE)
        order = self._owned_order(cmd)
        sid, side = order.symbol_id, order.side
        if sid in self._halted:
            raise _Reject(RejectReason.SYMBOL_HALTED)
        sym = self._symbols[sid]
        new_qty = cmd.qty if has_qty else order.open_qty
        new_price = cmd.price if has_price else order.price
        if has_qty and new_qty > sym.max_order_lots:
            raise _Reject(RejectReason.QTY_ABOVE_SYMBOL_MAX)
        if has_price:
            # Choice: the band applies whenever a price is given, even if it equals the current one.
            self._check_price(sid, new_price)
        client = self._client(order.client_id)
        tokens = self._rate_tokens_after(client, cmd.ts_ns)
        limits = client.limits
        if has_qty and limits.max_order_qty and new_qty > limits.max_order_qty:
            raise _Reject(RejectReason.RISK_MAX_ORDER_QTY)
        if (
            limits.max_position
            and new_qty > order.open_qty
            and self._exposure(order.client_id, sid, side) - order.open_qty + new_qty > limits.max_position
        ):
            raise _Reject(RejectReason.RISK_MAX_POSITION)
        if new_qty > order.open_qty and self._could_leave_int64(order.client_id, sid, side, new_qty - order.open_qty):
            raise _Reject(RejectReason.RISK_INT64_OVERFLOW)
        book = self._books[sid]
        best = book[_SELL if side == _BUY else _BUY].best()
        if order.post_only and best is not None and _crosses(side, best, new_price):
            raise _Reject(RejectReason.POST_ONLY_WOULD_TAKE)
        own = book[side]
        if (
            new_price != order.price
            and new_price not in own.levels
            and len(own.levels) >= self.config.max_levels_per_side
            and len(own.levels[order.price].orders) > 1
        ):
            raise _Reject(RejectReason.BOOK_LEVELS_EXHAUSTED)

        # Accepted.
        self._spend_token(client, tokens, cmd.ts_ns)
        # Choice: MODIFIED's code slot (reason/liquidity/acked_op) is 0.
        self._emit(EventType.MODIFIED, side, sid, order.client_id, 0, order.order_id, order.cloid, new_price,
                   new_qty, new_qty)  # fmt: skip
        if new_price == order.price and new_qty == order.open_qty:
            return  # nothing changes, the order keeps its place
        if new_price == order.price and new_qty < order.open_qty:
            self._reduce(order, order.open_qty - new_qty)  # in place: keeps its time priority
            return
        # Larger qty or another price: leave the level, take as a GTC limit under its own id, rest what is left.
        self._unrest(order)
        order.price = new_price
        order.open_qty = new_qty
        self._take(order, new_price)

    def _mass_cancel(self, cmd: Command) -> None:
        has_symbol = bool(cmd.flags & Flag.HAS_SYMBOL)
        if has_symbol and cmd.symbol_id >= len(self._symbols):
            raise _Reject(RejectReason.UNKNOWN_SYMBOL)
        client = self._client(cmd.client_id)
        reason = CancelReason.DISCONNECT if cmd.flags & Flag.DISCONNECT else CancelReason.MASS_CANCEL
        count = 0
        for order_id in sorted(client.order_ids):
            order = self.orders[order_id]
            if not has_symbol or order.symbol_id == cmd.symbol_id:
                self._cancel_resting(order, reason)
                count += 1
        # Choice: the ACK echoes the command's symbol_id and cloid (as a REJECT would); side, order_id, price
        # and leaves are 0.
        self._emit(EventType.ACK, 0, cmd.symbol_id, cmd.client_id, Op.MASS_CANCEL, 0, cmd.cloid, 0, count, 0)

    def _halt(self, cmd: Command) -> None:
        if cmd.symbol_id >= len(self._symbols):
            raise _Reject(RejectReason.UNKNOWN_SYMBOL)
        if cmd.op == Op.HALT:
            self._halted.add(cmd.symbol_id)
        else:
            self._halted.discard(cmd.symbol_id)
        self._emit(EventType.ACK, 0, cmd.symbol_id, cmd.client_id, cmd.op, 0, cmd.cloid, 0, 0, 0)

    def _kill(self, cmd: Command) -> None:
        client = self._client(cmd.client_id)
        client.killed = True
        count = 0
        for order_id in sorted(client.order_ids):
            self._cancel_resting(self.orders[order_id], CancelReason.KILL_SWITCH)
            count += 1
        self._emit(EventType.ACK, 0, cmd.symbol_id, cmd.client_id, Op.KILL, 0, cmd.cloid, 0, count, 0)

    def _set_limit(self, cmd: Command) -> None:
        client = self._client(cmd.client_id)
        name = _LIMIT_FIELDS.get(cmd.side)
        if name is None:
            raise _Reject(RejectReason.INVALID_LIMIT)
        try:
            self.set_client_limits(cmd.client_id, replace(client.limits, **{name: cmd.qty}))
        except InvalidConfigError:
            raise _Reject(RejectReason.INVALID_LIMIT) from None
        self._emit(EventType.ACK, 0, cmd.symbol_id, cmd.client_id, Op.SET_LIMIT, 0, cmd.cloid, 0, cmd.qty, 0)

    def _kill_reset(self, cmd: Command) -> None:
        self._client(cmd.client_id).killed = False
        # Choice: like the mass-cancel ACK (the command's symbol_id and cloid echoed), with qty 0.
        self._emit(EventType.ACK, 0, cmd.symbol_id, cmd.client_id, Op.KILL_RESET, 0, cmd.cloid, 0, 0, 0)

    # ---- checks ---------------------------------------------------------------------------

    def _check_price(self, sid: int, price: int) -> None:
        """INVALID_PRICE, PRICE_OUT_OF_RANGE, PRICE_BAND for a limit price."""
        sym = self._symbols[sid]
        if price <= 0:
            raise _Reject(RejectReason.INVALID_PRICE)
        if not sym.min_price_ticks <= price <= sym.max_price_ticks:
            raise _Reject(RejectReason.PRICE_OUT_OF_RANGE)
        reference = self._last_price[sid] or sym.reference_price
        if reference <= 0:
            return  # no reference: no band
        band = sym.band_ticks or reference * sym.band_bps // 10000
        # Choice: band_ticks == band_bps == 0 is no band (both "off"); a bps band that rounds to 0 is a band of 0.
        if (sym.band_ticks or sym.band_bps) and abs(price - reference) > band:
            raise _Reject(RejectReason.PRICE_BAND)

    def _owned_order(self, cmd: Command) -> _Order:
        """UNKNOWN_ORDER, then NOT_OWNER."""
        order = self.orders.get(cmd.order_id)
        if order is None:
            raise _Reject(RejectReason.UNKNOWN_ORDER)
        if order.client_id != cmd.client_id:
            raise _Reject(RejectReason.NOT_OWNER)
        return order

    @staticmethod
    def _capacity(limits: ClientLimits) -> int:
        return (limits.rate_burst or limits.rate_per_s) * TOKEN

    def _rate_tokens_after(self, client: _Client, ts: int) -> int | None:
        """RATE_LIMIT: the bucket after refilling to ``ts`` (None: rate limit off). Changes nothing."""
        rate = client.limits.rate_per_s
        if not rate:
            return None  # Choice: with the rate limit off the bucket is not used at all (last_ts stays)
        tokens = client.tokens
        if ts > client.last_ts:  # a command whose ts goes backwards refills nothing
            tokens = min(self._capacity(client.limits), tokens + (ts - client.last_ts) * rate)
        if tokens < TOKEN:
            raise _Reject(RejectReason.RATE_LIMIT)
        return tokens

    @staticmethod
    def _spend_token(client: _Client, tokens: int | None, ts: int) -> None:
        if tokens is not None:
            client.tokens = tokens - TOKEN
            client.last_ts = max(client.last_ts, ts)

    def _exposure(self, client_id: int, sid: int, side: int) -> int:
        """buy: position + open_buy_qty; sell: -position + open_sell_qty."""
        risk = self._risk.get((client_id, sid), _Risk())
        if side == _BUY:
            return risk.position + risk.open_buy_qty
        return -risk.position + risk.open_sell_qty

    def _could_leave_int64(self, client_id: int, sid: int, side: int, add_qty: int) -> bool:
        """If the client's open orders on the side and add_qty more all filled at the symbol's max price, would its
        open qty, its cash or its position's value at that price leave int64? (The C engine keeps them in int64.)"""
        risk = self._risk.get((client_id, sid), _Risk())
        max_price = self._symbols[sid].max_price_ticks
        lots = (risk.open_buy_qty if side == _BUY else risk.open_sell_qty) + add_qty
        signed = lots if side == _BUY else -lots
        value = (risk.position + signed) * max_price
        cash = risk.cash - signed * max_price
        return any(not _INT64_MIN <= v <= _INT64_MAX for v in (lots, value, cash))

    # ---- matching -------------------------------------------------------------------------

    def _walk_limit(self, order: _Order) -> int | None:
        """The worst price a taker may trade at; None: no limit (a market order without a band)."""
        if not order.market:
            return order.price
        band = self._symbols[order.symbol_id].market_band_ticks
        touch = self._books[order.symbol_id][_SELL if order.side == _BUY else _BUY].best()
        if not band or touch is None:
            return None
        return touch + band if order.side == _BUY else touch - band

    def _fok_fills(self, order: _Order, limit: int | None) -> bool:
        """The FOK dry run: can the walk fill the whole order, given its STP mode?"""
        need = order.open_qty
        opposite = self._books[order.symbol_id][_SELL if order.side == _BUY else _BUY]
        for price in opposite.prices_best_first():
            if not _crosses(order.side, price, limit):
                return False
            for maker in opposite.levels[price].orders.values():
                if maker.client_id == order.client_id and order.stp != Stp.NONE:
                    if order.stp == Stp.EXPIRE_MAKER:
                        continue  # passed over (cancelled if the FOK executes)
                    return False  # EXPIRE_TAKER, EXPIRE_BOTH or DECREMENT before it is complete
                need -= maker.open_qty
                if need <= 0:
                    return True
        return False

    def _take(self, taker: _Order, limit: int | None) -> None:
        """Walks the opposite side, then rests, or cancels, what is left of the taker."""
        sid, side = taker.symbol_id, taker.side
        opposite = self._books[sid][_SELL if side == _BUY else _BUY]
        while taker.open_qty > 0:
            best = opposite.best()
            if best is None or not _crosses(side, best, limit):
                break
            maker = next(iter(opposite.levels[best].orders.values()))
            if maker.client_id != taker.client_id or taker.stp == Stp.NONE:
                self._trade(taker, maker)
            elif taker.stp == Stp.EXPIRE_TAKER:
                self._emit_canceled(taker, CancelReason.STP, taker.open_qty, 0)
                return
            elif taker.stp == Stp.EXPIRE_MAKER:
                self._cancel_resting(maker, CancelReason.STP)
            elif taker.stp == Stp.EXPIRE_BOTH:
                self._cancel_resting(maker, CancelReason.STP)
                self._emit_canceled(taker, CancelReason.STP, taker.open_qty, 0)
                return
            else:  # DECREMENT
                d = min(maker.open_qty, taker.open_qty)
                self._emit_canceled(maker, CancelReason.STP, d, maker.open_qty - d)
                self._reduce(maker, d)  # keeps its queue place; leaves the book at 0
                taker.open_qty -= d
                self._emit_canceled(taker, CancelReason.STP, d, taker.open_qty)
        if taker.open_qty == 0:
            return
        if taker.market:
            band = self._symbols[sid].market_band_ticks
            stopped_by_band = bool(band) and opposite.best() is not None
            reason = CancelReason.PRICE_BAND if stopped_by_band else CancelReason.NO_LIQUIDITY
            self._emit_canceled(taker, reason, taker.open_qty, 0)
        elif taker.tif == Tif.GTC:
            self._rest(taker)
        else:
            # IOC. A FOK only gets here after its dry run said it fills completely, so never with a rest.
            assert taker.tif == Tif.IOC, "a FOK that passed its dry run must fill completely"
            self._emit_canceled(taker, CancelReason.IOC, taker.open_qty, 0)

    def _trade(self, taker: _Order, maker: _Order) -> None:
        qty = min(maker.open_qty, taker.open_qty)
        price = maker.price  # always the maker's price
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        sid = taker.symbol_id
        self._reduce(maker, qty)
        taker.open_qty -= qty
        for order in (taker, maker):
            risk = self._risk_of(order.client_id, sid)
            signed = qty if order.side == _BUY else -qty
            risk.position += signed
            risk.cash -= signed * price
        self._last_price[sid] = price
        self._traded = True
        self._emit(EventType.FILL, maker.side, sid, maker.client_id, Liquidity.MAKER, maker.order_id, trade_id,
                   price, qty, maker.open_qty)  # fmt: skip
        self._emit(EventType.FILL, taker.side, sid, taker.client_id, Liquidity.TAKER, taker.order_id, trade_id,
                   price, qty, taker.open_qty)  # fmt: skip
        self._emit(EventType.TRADE, taker.side, sid, taker.client_id, maker.client_id, taker.order_id, trade_id,
                   price, qty, maker.order_id)  # fmt: skip

    # ---- the book -------------------------------------------------------------------------

    def _rest(self, order: _Order) -> None:
        """Adds ``order`` at the back of its price level."""
        book_side = self._books[order.symbol_id][order.side]
        level = book_side.levels.get(order.price)
        if level is None:
            level = book_side.levels[order.price] = _Level()
            bisect.insort(book_side.prices, order.price)
        level.orders[order.order_id] = order
        level.qty += order.open_qty
        self.orders[order.order_id] = order
        client = self._client(order.client_id)
        client.order_ids.add(order.order_id)
        if order.cloid:
            client.cloids[order.cloid] = order.order_id
        self._add_open(order, order.open_qty)
        self._touch(order)

    def _unrest(self, order: _Order) -> None:
        """Takes ``order`` out of the book (its open qty is left as it is)."""
        book_side = self._books[order.symbol_id][order.side]
        level = book_side.levels[order.price]
        del level.orders[order.order_id]
        level.qty -= order.open_qty
        if not level.orders:
            del book_side.levels[order.price]
            del book_side.prices[bisect.bisect_left(book_side.prices, order.price)]
        del self.orders[order.order_id]
        client = self._client(order.client_id)
        client.order_ids.discard(order.order_id)
        if order.cloid:
            del client.cloids[order.cloid]
        self._add_open(order, -order.open_qty)
        self._touch(order)

    def _reduce(self, order: _Order, qty: int) -> None:
        """Takes ``qty`` off a resting order in place; at 0 it leaves the book."""
        if qty == order.open_qty:
            self._unrest(order)
            order.open_qty = 0
            return
        order.open_qty -= qty
        self._books[order.symbol_id][order.side].levels[order.price].qty -= qty
        self._add_open(order, -qty)
        self._touch(order)

    def _cancel_resting(self, order: _Order, reason: CancelReason) -> None:
        qty = order.open_qty
        self._unrest(order)
        order.open_qty = 0
        self._emit_canceled(order, reason, qty, 0)

    def _add_open(self, order: _Order, qty: int) -> None:
        risk = self._risk_of(order.client_id, order.symbol_id)
        if order.side == _BUY:
            risk.open_buy_qty += qty
        else:
            risk.open_sell_qty += qty

    def _touch(self, order: _Order) -> None:
        self._touched.setdefault((order.symbol_id, order.side, order.price), None)

    # ---- risk -----------------------------------------------------------------------------

    def _client(self, client_id: int) -> _Client:
        if not 0 <= client_id < self.config.max_clients:
            raise OutOfRangeError(f"client {client_id} outside 0..{self.config.max_clients - 1}")
        client = self._clients.get(client_id)
        if client is None:
            client = self._clients[client_id] = _Client()
        return client

    def _risk_of(self, client_id: int, sid: int) -> _Risk:
        risk = self._risk.get((client_id, sid))
        if risk is None:
            risk = self._risk[(client_id, sid)] = _Risk()
        return risk

    def _pnl(self, client_id: int) -> int:
        """sum over symbols of pnl_unit x (cash + position x last trade price), exact (Python ints)."""
        total = 0
        for sid, sym in enumerate(self._symbols):
            risk = self._risk.get((client_id, sid))
            if risk is not None:
                total += sym.pnl_unit * (risk.cash + risk.position * self._last_price[sid])
        return total

    def _check_kill_switches(self) -> None:
        """After a command that printed a trade: clients with a loss limit and the switch off, ascending id."""
        for client_id in self._loss_clients:
            client = self._clients[client_id]
            if client.killed or self._pnl(client_id) >= -client.limits.max_loss:
                continue
            client.killed = True
            for order_id in sorted(client.order_ids):
                self._cancel_resting(self.orders[order_id], CancelReason.KILL_SWITCH)

    # ---- events ---------------------------------------------------------------------------

    def _emit(
        self, type_: int, side: int, symbol_id: int, client_id: int, code: int,
        order_id: int, ref: int, price: int, qty: int, aux: int,
    ) -> None:  # fmt: skip
        code, flags = (int(code) & 0xFF, int(code) >> 8) if type_ == EventType.TRADE else (int(code), 0)
        self._events.append(
            Event(int(type_), int(side), symbol_id, client_id, code, flags, self._next_seq, self._ts,
                  order_id, ref, price, qty, aux)
        )  # fmt: skip
        self._next_seq += 1

    def _emit_canceled(self, order: _Order, reason: CancelReason, qty: int, leaves: int) -> None:
        self._emit(EventType.CANCELED, order.side, order.symbol_id, order.client_id, reason, order.order_id,
                   order.cloid, order.price, qty, leaves)  # fmt: skip

    def _emit_book_deltas(self) -> None:
        """One BOOK_DELTA per touched level, in order of first touch, with its state after the command."""
        for sid, side, price in self._touched:
            level = self._books[sid][side].levels.get(price)
            qty, count = (level.qty, len(level.orders)) if level is not None else (0, 0)
            self._emit(EventType.BOOK_DELTA, side, sid, 0, 0, 0, count, price, qty, 0)
