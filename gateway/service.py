"""``Gateway``: the one object behind every route: the venue link, the desk (accounts' state), the market (books
and ``/ws/md``), the account streams, the metrics, and the tasks that keep them current.

Tasks (each held in :attr:`Gateway.tasks` until it ends; shutdown cancels and awaits them):

- the *drain*: every event of the link, in engine order, into the desk; each account message goes to that
  account's ``/ws/fills`` topic. A request that sent a command waits until the drain has applied that
  command's last event (:meth:`Gateway.caught_up`), so what it answers and what ``GET /orders`` shows agree.
- the *market-data poll*: the market-data ring into the market's books and ``/ws/md`` topics; it sleeps with
  back-off (0.2 ms up to 2 ms) when the ring is empty, and resyncs from engine snapshots after a gap.
- the *heartbeat*: every ``heartbeat_s`` a heartbeat frame on every topic, and the engine's ``stats`` into the
  metrics.

Commands are checked before they are sent (symbol, units, duplicate client order id, ownership), so a bad
request never reaches the engine; what the engine itself refuses (risk, band, post-only) comes back as a
``rejected`` result with the engine's reason. A command's answer is awaited with a timeout: a gone or silent
engine is a 503, never a hung request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from c_engine import (
    Command,
    Event,
    EventType,
    OffLotError,
    OffTickError,
    OrderType,
    RejectReason,
    Side,
    Stp,
    Tif,
    Units,
)

from .config import GatewayConfig
from .desk import Desk, wall_clock_offset_ns
from .errors import ApiError, ErrorCode
from .fanout import Topic
from .market import Market, dumps
from .metrics import Metrics
from .models import (
    BookResponse,
    CancelResponse,
    FillModel,
    MassCancelResponse,
    ModifyRequest,
    OrderRequest,
    OrderResponse,
    OrderView,
    PositionModel,
    RiskResponse,
)
from .venue import MarketDataGap, Venue

__all__ = ["Gateway"]

log = logging.getLogger("proptrade.gateway")
T = TypeVar("T")

_ACK, _REJECT, _FILL = int(EventType.ACK), int(EventType.REJECT), int(EventType.FILL)
_CANCELED, _MODIFIED = int(EventType.CANCELED), int(EventType.MODIFIED)
#: the largest price (ticks) or size (lots) the gateway sends: the engine's int64 arithmetic needs headroom
MAX_STEPS = 2**62
#: how long a request waits for the engine's answer to its command
COMMAND_TIMEOUT_S = 5.0
#: the market-data poll's longest sleep when the ring is empty (its latency when idle)
MD_MAX_SLEEP_S = 0.002
_SIDES = {"buy": int(Side.BUY), "sell": int(Side.SELL)}
_TYPES = {"limit": int(OrderType.LIMIT), "market": int(OrderType.MARKET)}
_TIFS = {t.name: int(t) for t in Tif}
_STPS = {s.name: int(s) for s in Stp}
_SIDE_NAMES: dict[int, Literal["buy", "sell"]] = {int(Side.BUY): "buy", int(Side.SELL): "sell"}


def _steps(value: float, convert: Any, what: str) -> int:
    """``value`` in ticks or lots, exactly: 422 OFF_TICK / OFF_LOT / OUT_OF_RANGE otherwise."""
    try:
        n = int(convert(value))
    except OffTickError:
        raise ApiError(422, ErrorCode.OFF_TICK, f"{what} {value} is not a whole number of ticks") from None
    except OffLotError:
        raise ApiError(422, ErrorCode.OFF_LOT, f"{what} {value} is not a whole number of lots") from None
    except (OverflowError, ValueError):
        raise ApiError(422, ErrorCode.OUT_OF_RANGE, f"{what} {value} is out of range") from None
    if not 1 <= n <= MAX_STEPS:
        raise ApiError(422, ErrorCode.OUT_OF_RANGE, f"{what} {value} is out of range")
    return n


class Gateway:
    """See the module docstring. Made by the app's lifespan: ``await Gateway.start(config, venue)``."""

    def __init__(self, config: GatewayConfig, venue: Venue, metrics: Metrics | None = None) -> None:
        self.config = config
        self.venue = venue
        self.metrics = metrics or Metrics()
        offset = wall_clock_offset_ns()
        self.account_ids = {name: venue.accounts[name] for name in config.account_names}
        self.desk = Desk(self.account_ids, venue.symbols, venue.units, config.fills_kept, offset)
        self.market = Market(venue.symbols, venue.units, offset)
        self.account_topics = {cid: Topic() for cid in self.account_ids.values()}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.gone: BaseException | None = None  #: why the link ended, once it has
        self.in_flight = 0  #: commands sent and not answered yet
        # requests waiting for the drain to reach an engine seq: a heap of (seq, tie-break, future), each woken
        # once when it is reached (not every waiter at every event, as one shared asyncio.Event would)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_ids = itertools.count()
        self._ended = False  #: the drain has ended
        # what another API on this gateway (gateway.binance) keeps from the same streams, fed in the same order:
        self.event_hooks: list[Callable[[Event], None]] = []  #: each link event, after the desk took it
        #: each market-data batch after the books took it, with the engine seq the books' snapshot held
        self.market_hooks: list[Callable[[list[Event], int], None]] = []
        self.resync_hooks: list[Callable[[], None]] = []  #: after the books were reloaded from a gap

    @classmethod
    async def start(cls, config: GatewayConfig, venue: Venue, metrics: Metrics | None = None) -> Gateway:
        """Loads the books from engine snapshots, then starts the tasks."""
        self = cls(config, venue, metrics)
        await self._resync_books(initial=True)
        self.spawn(self._drain(), "drain")
        self.spawn(self._poll_market_data(), "market-data")
        self.spawn(self._heartbeat(), "heartbeat")
        return self

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=f"gateway-{name}")
        self.tasks.add(task)  # a reference until it ends: the loop keeps only weak ones
        task.add_done_callback(self.tasks.discard)
        return task

    async def stop(self) -> None:
        """Waits (bounded) for in-flight commands, closes every stream, stops the tasks, detaches the link."""
        deadline = time.monotonic() + self.config.shutdown_timeout_s
        while self.in_flight and self.gone is None and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        for topic in [*self.market.topics.values(), *self.account_topics.values()]:
            for subscriber in list(topic.subscribers):
                subscriber.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.venue.close()

    # --- tasks -------------------------------------------------------------------------------------------------

    async def _drain(self) -> None:
        try:
            async for event in self.venue.events():
                self._apply(event)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # the engine is gone or detached us: every request from now on is a 503
            log.error("the engine link ended: %s", e)
            self.gone = e
        else:
            self.gone = ConnectionError("the engine link closed")
        finally:
            self._ended = True  # whatever ended it (shutdown too): no waiter is left waiting
            self._wake_waiters()

    def _apply(self, event: Event) -> None:
        message = self.desk.apply(event)
        for hook in self.event_hooks:
            hook(event)
        self.metrics.engine_seq.set(self.desk.applied_seq)
        if message is not None:
            if message["event"] == "reject":
                self.metrics.rejects.labels(message["reason"]).inc()
            topic = self.account_topics[event.client_id]
            if topic.subscribers:
                self.metrics.ws_dropped.labels("fills").inc(topic.publish(dumps(message)))
        waiters = self._waiters
        if waiters and waiters[0][0] <= self.desk.applied_seq:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        """Wakes the requests whose seq the drain has reached; every one once the drain has ended."""
        waiters, applied, ended = self._waiters, self.desk.applied_seq, self._ended
        while waiters and (ended or waiters[0][0] <= applied):
            future = heapq.heappop(waiters)[2]
            if not future.done():
                future.set_result(None)

    async def caught_up(self, seq: int) -> None:
        """Returns once the drain has applied every event up to engine seq ``seq``; 503 if the link ended."""
        if self.desk.applied_seq >= seq:
            return
        if not self._ended:
            future = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (seq, next(self._waiter_ids), future))
            await future
        if self.desk.applied_seq < seq:
            raise ApiError(503, ErrorCode.ENGINE_UNAVAILABLE, f"the engine link ended: {self.gone or 'stopped'}")

    async def _resync_books(self, *, initial: bool = False) -> None:
        snapshots = {sid: await self.venue.snapshot(sid) for sid in self.market.symbol_names}
        if initial:
            self.market.load(snapshots)
        else:
            self.market.resynced(snapshots)
            self.metrics.md_gaps.inc()
            for hook in self.resync_hooks:
                hook()

    async def _poll_market_data(self) -> None:
        sleep_s = 0.0
        while True:
            try:
                events = self.venue.read_market_data()
            except MarketDataGap as gap:
                log.warning("market data: %s; resyncing from snapshots", gap)
                await self._resync_books()
                continue
            if events:
                self.market.apply(events)
                for market_hook in self.market_hooks:
                    market_hook(events, self.market.skip_upto)
                self.metrics.md_messages.inc(len(events))
                sleep_s = 0.0
                await asyncio.sleep(0)
                continue
            sleep_s = min(max(sleep_s * 2, 0.0002), MD_MAX_SLEEP_S)
            await asyncio.sleep(sleep_s)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            frame = dumps(self.market.heartbeat())
            for topic in self.market.topics.values():
                self.metrics.ws_dropped.labels("md").inc(topic.publish(frame))
            beat = dumps({"event": "heartbeat", "timestamp": time.time()})
            for topic in self.account_topics.values():
                self.metrics.ws_dropped.labels("fills").inc(topic.publish(beat))
            if self.gone is None:
                try:
                    self.metrics.set_engine_stats(await self.venue.engine_stats())
                except Exception as e:  # stats are nice to have: never let them end the heartbeat
                    log.warning("engine stats: %s", e)

    # --- lookups -------------------------------------------------------------------------------------------

    def account_id(self, name: str) -> int:
        try:
            return self.account_ids[name]
        except KeyError:
            raise ApiError(404, ErrorCode.UNKNOWN_ACCOUNT, f"no account {name!r} at this gateway") from None

    def symbol_id(self, symbol: str | None, status: int = 422) -> int:
        symbols = self.market.symbol_ids
        if symbol is None:
            if len(symbols) == 1:
                return next(iter(symbols.values()))
            raise ApiError(status, ErrorCode.SYMBOL_REQUIRED, f"name a symbol: one of {sorted(symbols)}")
        try:
            return symbols[symbol]
        except KeyError:
            raise ApiError(
                status, ErrorCode.UNKNOWN_SYMBOL, f"no symbol {symbol!r} (known: {sorted(symbols)})"
            ) from None

    def owner(self, order_id: int) -> int:
        """The account of an open order of this gateway; 404 UNKNOWN_ORDER if it is not one."""
        order = self.desk.open.get(order_id)
        if order is None:
            raise ApiError(404, ErrorCode.UNKNOWN_ORDER, f"order {order_id} is not an open order of this gateway")
        return order.account

    def order_owner(self, order_id: int) -> int | None:
        """The account an order of this gateway belongs to (open or recently done), or None."""
        return self.desk.owners.get(order_id)

    # --- commands ------------------------------------------------------------------------------------------

    async def execute(self, cmd: Command) -> list[Event]:
        """Sends a command checked by its caller (another API on this gateway); its account's events, applied."""
        return await self._execute(cmd)

    async def _execute(self, cmd: Command) -> list[Event]:
        """Sends ``cmd``; returns its events for its account once the desk has applied them."""
        if self.gone is not None:
            raise ApiError(503, ErrorCode.ENGINE_UNAVAILABLE, f"the engine link ended: {self.gone}")
        self.in_flight += 1
        try:
            events = await self.venue.execute(cmd, COMMAND_TIMEOUT_S)
        except TimeoutError:
            raise ApiError(503, ErrorCode.ENGINE_UNAVAILABLE, "the engine did not answer in time") from None
        except ConnectionError as e:  # EngineGoneError, DetachedError
            raise ApiError(503, ErrorCode.ENGINE_UNAVAILABLE, f"the engine link ended: {e}") from None
        finally:
            self.in_flight -= 1
        own = [e for e in events if e.client_id == cmd.client_id]
        if events:
            await self.caught_up(max(e.seq for e in events))
        return own

    def _fill(self, event: Event, cloid: int | None) -> FillModel:
        units = self.market.units[event.symbol_id]
        return FillModel(client_id=self.desk.account_names[event.client_id],
                         symbol=self.market.symbol_names[event.symbol_id], order_id=event.order_id,
                         trade_id=event.trade_id, side=_SIDE_NAMES[event.side], price=units.price(event.price),
                         size=units.size(event.qty), leaves=units.size(event.leaves),
                         liquidity="maker" if event.liquidity == 1 else "taker", client_order_id=cloid,
                         seq=event.seq, timestamp=self.desk.timestamp(event.ts_ns))  # fmt: skip

    async def new_order(self, req: OrderRequest) -> OrderResponse:
        cid = self.account_id(req.client_id)
        sid = self.symbol_id(req.symbol)
        units = self.market.units[sid]
        if req.type == "limit" and req.price is None:
            raise ApiError(422, ErrorCode.INVALID_REQUEST, "a limit order needs a price")
        if req.type == "market" and req.price is not None:
            raise ApiError(422, ErrorCode.INVALID_REQUEST, "a market order has no price")
        ticks = None if req.price is None else _steps(req.price, units.ticks, "price")
        lots = _steps(req.size, units.lots, "size")
        cloid = req.client_order_id or 0
        if cloid and self.desk.cloid_taken(cid, cloid):
            self.metrics.refused.labels(ErrorCode.DUPLICATE_CLIENT_ORDER_ID).inc()
            raise ApiError(409, ErrorCode.DUPLICATE_CLIENT_ORDER_ID,
                           f"client_order_id {cloid} is in use by an open order of {req.client_id}")  # fmt: skip
        tif = req.time_in_force or ("GTC" if req.type == "limit" else "IOC")
        cmd = Command.new(cid, sid, _SIDES[req.side], lots, ticks, order_type=_TYPES[req.type], tif=_TIFS[tif],
                          stp=_STPS[req.stp], post_only=req.post_only, cloid=cloid,
                          ts_ns=time.monotonic_ns())  # fmt: skip
        if cloid:
            self.desk.reserve(cid, cloid)
        try:
            events = await self._execute(cmd)
        finally:
            if cloid:
                self.desk.release(cid, cloid)
        return self._order_response(req, sid, units, events)

    def _order_response(self, req: OrderRequest, sid: int, units: Units, events: list[Event]) -> OrderResponse:
        first = events[0] if events else None
        base: dict[str, Any] = dict(client_id=req.client_id, symbol=self.market.symbol_names[sid], side=req.side,
                                    type=req.type, price=req.price, size=req.size,
                                    client_order_id=req.client_order_id, timestamp=time.time())  # fmt: skip
        if first is None or first.type == _REJECT:
            reason = RejectReason(first.reason).name if first is not None else "NO_ANSWER"
            self.metrics.order_result("rejected")
            return OrderResponse(status="rejected", reason=reason, state="rejected", filled=0.0, leaves=0.0, **base)
        self.metrics.order_result("accepted")
        order_id = first.order_id
        fills = [self._fill(e, req.client_order_id) for e in events if e.type == _FILL and e.order_id == order_id]
        filled = sum(e.qty for e in events if e.type == _FILL and e.order_id == order_id)
        leaves = first.leaves
        for e in events:
            if e.order_id == order_id and e.type in (_FILL, _CANCELED):
                leaves = e.leaves
        state: Literal["open", "filled", "cancelled"]
        if order_id in self.desk.open:
            state = "open"
        elif leaves == 0 and filled == first.qty:
            state = "filled"
        else:
            state = "cancelled"
        return OrderResponse(status="accepted", order_id=order_id, state=state, filled=units.size(filled),
                             leaves=units.size(leaves if state == "open" else 0), fills=fills, **base)  # fmt: skip

    async def cancel(self, order_id: int) -> CancelResponse:
        cid = self.owner(order_id)
        events = await self._execute(Command.cancel(cid, order_id, ts_ns=time.monotonic_ns()))
        return self._order_result(cid, order_id, events)

    async def modify(self, order_id: int, req: ModifyRequest) -> CancelResponse:
        cid = self.owner(order_id)
        order = self.desk.open[order_id]
        units = self.market.units[order.symbol_id]
        ticks = None if req.price is None else _steps(req.price, units.ticks, "price")
        lots = None if req.size is None else _steps(req.size, units.lots, "size")
        cmd = Command.modify(cid, order_id, qty=lots, price=ticks, ts_ns=time.monotonic_ns())
        events = await self._execute(cmd)
        return self._order_result(cid, order_id, events)

    def _order_result(self, cid: int, order_id: int, events: list[Event]) -> CancelResponse:
        name = self.desk.account_names[cid]
        first = events[0] if events else None
        if first is None or first.type == _REJECT:
            reason = RejectReason(first.reason).name if first is not None else "NO_ANSWER"
            return CancelResponse(status="rejected", reason=reason, order_id=order_id, client_id=name, leaves=0.0)
        units = self.market.units[first.symbol_id]
        order = self.desk.open.get(order_id)
        cloid = (order.cloid or None) if order is not None else None
        fills = [self._fill(e, cloid) for e in events if e.type == _FILL and e.order_id == order_id]
        leaves = order.leaves if order is not None else 0
        status: Literal["cancelled", "modified"] = "cancelled" if first.type == _CANCELED else "modified"
        return CancelResponse(status=status, order_id=order_id, client_id=name, leaves=units.size(leaves),
                              price=units.price(first.price) if first.price else None, fills=fills)  # fmt: skip

    async def mass_cancel(self, account: str, symbol: str | None) -> MassCancelResponse:
        cid = self.account_id(account)
        sid = None if symbol is None else self.symbol_id(symbol)
        events = await self._execute(Command.mass_cancel(cid, sid, ts_ns=time.monotonic_ns()))
        answer = next((e for e in events if e.type in (_ACK, _REJECT)), None)
        if answer is None or answer.type == _REJECT:
            reason = RejectReason(answer.reason).name if answer is not None else "NO_ANSWER"
            return MassCancelResponse(status="rejected", reason=reason, client_id=account, cancelled=0)
        return MassCancelResponse(status="cancelled", client_id=account, cancelled=answer.qty)

    # --- reads ----------------------------------------------------------------------------------------------

    def book(self, symbol: str | None, depth: int | None) -> BookResponse:
        sid = self.symbol_id(symbol, status=404)
        market = self.market
        return BookResponse(symbol=market.symbol_names[sid], seq=market.seq[sid],
                            bids=market.levels(sid, "bids", depth), asks=market.levels(sid, "asks", depth),
                            timestamp=time.time(), **market.top(sid))  # fmt: skip

    def orders(self, account: str) -> list[OrderView]:
        cid = self.account_id(account)
        out = []
        for order in sorted(self.desk.open_by_account[cid].values(), key=lambda o: o.order_id):
            units = self.market.units[order.symbol_id]
            out.append(OrderView(order_id=order.order_id, client_id=account,
                                 symbol=self.market.symbol_names[order.symbol_id], side=_SIDE_NAMES[order.side],
                                 price=units.price(order.price) if order.price else None, size=units.size(order.qty),
                                 leaves=units.size(order.leaves), filled=units.size(order.filled),
                                 client_order_id=order.cloid or None,
                                 timestamp=self.desk.timestamp(order.ts_ns)))  # fmt: skip
        return out

    def fills(self, account: str, limit: int) -> list[FillModel]:
        cid = self.account_id(account)
        kept = self.desk.fills[cid]
        recent = list(kept)[-limit:] if limit < len(kept) else list(kept)
        return [FillModel.model_validate(f) for f in recent]

    def risk(self, account: str) -> RiskResponse:
        cid = self.account_id(account)
        positions = []
        total = 0.0
        for sid, state in sorted(self.desk.accounting.of_account(cid)):
            units = self.market.units[sid]
            mark = self.market.mark(sid)
            mark_ticks = mark if mark is not None else state.avg_cost
            net = state.net(mark_ticks)
            total += net
            positions.append(PositionModel(
                symbol=self.market.symbol_names[sid], position=units.size(state.position),
                avg_cost=state.avg_cost * units.tick if state.position else None,
                cash=state.cash_ticks * units.tick * units.lot, mark=mark * units.tick if mark is not None else None,
                realised=state.realised, unrealised=state.unrealised(mark_ticks), fees=state.fees, net=net,
            ))  # fmt: skip
        limits = self.config.account(account)
        return RiskResponse(client_id=account, positions=positions, pnl=total,
                            open_orders=len(self.desk.open_by_account[cid]), killed=self.desk.killed[cid],
                            limits=dataclasses.asdict(limits.limits) if limits and limits.limits else {})  # fmt: skip
