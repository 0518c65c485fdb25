"""Binance's order calls on the gateway (new, test, query, cancel, open orders): checks first, then one engine
command, then the answer in Binance's shape.

Everything Binance would refuse is refused here before a command goes out (symbol, side, type, time in force,
parameters required or not allowed, filters, the order's owner), so a refused request leaves the engine as it
was. What the engine itself refuses (post-only would take, risk, band, its own rate limit) is a -2010 (-1015
for the rate limit) with the text docs/API.md lists.

Client order ids are strings on Binance and 63-bit integers in the engine: the engine gets a hash of the
string (:func:`engine_cloid`), the ledger keeps the string. A duplicate of an open order's id is refused
("Duplicate order sent."), as Binance does.

``quoteOrderQty`` (a MARKET order by amount spent or received) is turned into a quantity by walking the
gateway's book at the time of the request: the most lots whose cost does not exceed the amount. The engine
then fills what is there when the order arrives (IOC), so a book that moved in between fills less, never more.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from c_engine import Command, Event, EventType, OrderType, RejectReason, Side, Stp, Tif

from ..errors import ApiError
from ..service import Gateway
from .errors import BinanceError, Code, illegal_chars, mandatory
from .feed import MarketFeed
from .instruments import Instrument
from .ledger import Intent, Ledger, OrderRecord, status_of_cancel
from .params import choice, instrument_of, int_param
from .signing import Credential
from .views import cancel_json, new_order_json, order_json

__all__ = ["Trading", "engine_cloid"]

_ACK, _REJECT, _FILL, _CANCELED = (
    int(EventType.ACK),
    int(EventType.REJECT),
    int(EventType.FILL),
    int(EventType.CANCELED),
)
#: Binance's pattern for a client order id
CLIENT_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
_SIDES = {"BUY": int(Side.BUY), "SELL": int(Side.SELL)}
_TIFS = {"GTC": int(Tif.GTC), "IOC": int(Tif.IOC), "FOK": int(Tif.FOK)}
_STPS = {s.name: int(s) for s in Stp}
_RESP_TYPES = ("ACK", "RESULT", "FULL")
#: an engine reject reason -> (Binance code, text) of the -2010 answer; others: "Order rejected: REASON."
_REJECTS: dict[int, tuple[Code, str]] = {
    int(RejectReason.POST_ONLY_WOULD_TAKE): (Code.NEW_ORDER_REJECTED, "Order would immediately match and take."),
    int(RejectReason.DUPLICATE_CLIENT_ORDER_ID): (Code.NEW_ORDER_REJECTED, "Duplicate order sent."),
    int(RejectReason.RISK_MAX_POSITION): (Code.NEW_ORDER_REJECTED,
                                          "Account has insufficient balance for requested action."),
    int(RejectReason.RISK_MAX_OPEN_ORDERS): (Code.NEW_ORDER_REJECTED, "Filter failure: MAX_NUM_ORDERS"),
    int(RejectReason.RISK_MAX_ORDER_QTY): (Code.NEW_ORDER_REJECTED, "Filter failure: LOT_SIZE"),
    int(RejectReason.PRICE_BAND): (Code.NEW_ORDER_REJECTED, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    int(RejectReason.SYMBOL_HALTED): (Code.NEW_ORDER_REJECTED, "Market is closed."),
    int(RejectReason.KILL_SWITCH): (Code.NEW_ORDER_REJECTED, "This action is disabled on this account."),
    int(RejectReason.RATE_LIMIT): (Code.TOO_MANY_ORDERS, "Too many new orders."),
}  # fmt: skip


def engine_cloid(client_order_id: str) -> int:
    """The engine's client order id (1 .. 2^63 - 1) for a Binance ``clientOrderId`` string."""
    digest = hashlib.blake2b(client_order_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1) or 1


def new_client_order_id() -> str:
    """A clientOrderId for an order sent without one (22 characters, as Binance makes them)."""
    return secrets.token_urlsafe(16)[:22].replace("-", "x").replace("_", "y")


def _reject(event: Event | None) -> BinanceError:
    if event is None:
        return BinanceError(503, Code.DISCONNECTED, "Internal error; unable to process your request. Please try again.")
    code, text = _REJECTS.get(event.reason, (Code.NEW_ORDER_REJECTED, ""))
    if not text:
        try:
            text = f"Order rejected: {RejectReason(event.reason).name}."
        except ValueError:
            text = f"Order rejected: {event.reason}."
    return BinanceError(400, code, text)


class Trading:
    """Binance's signed calls on one gateway (see the module docstring)."""

    def __init__(self, gateway: Gateway, instruments: Mapping[str, Instrument], ledger: Ledger,
                 feed: MarketFeed) -> None:  # fmt: skip
        self.gateway = gateway
        self.instruments = dict(instruments)
        self.by_id = {i.symbol_id: i for i in self.instruments.values()}
        self.ledger = ledger
        self.feed = feed

    def instrument(self, params: Mapping[str, str], required: bool = True) -> Instrument | None:
        return instrument_of(self.instruments, params, required)

    async def _execute(self, cmd: Command) -> list[Event]:
        try:
            return await self.gateway.execute(cmd)
        except ApiError as e:  # the engine is gone or silent
            raise BinanceError(
                503, Code.DISCONNECTED, f"Internal error; unable to process your request. {e.message}"
            ) from None

    # --- new orders ------------------------------------------------------------------------------------------

    def _quote_qty_lots(self, inst: Instrument, side: int, amount: Decimal) -> int:
        budget = amount / (inst.tick * inst.lot)  # in ticks x lots
        book = self.feed.books[inst.symbol_id]
        levels = book.levels("asks" if side == _SIDES["BUY"] else "bids")
        lots = 0
        for price, qty, _ in levels:
            can = min(qty, int(budget // price))
            lots += can
            budget -= can * price
            if can < qty:
                break
        if lots == 0:
            raise BinanceError(400, Code.NEW_ORDER_REJECTED,
                               "Order book liquidity is less than LOT_SIZE filter minimum quantity.")  # fmt: skip
        return min(lots, inst.max_order_lots)

    async def new_order(self, cred: Credential, params: Mapping[str, str], *, test: bool = False) -> dict[str, Any]:
        """``POST /api/v3/order`` (and ``order/test``: every check, no command)."""
        inst = self.instrument(params)
        assert inst is not None
        side = _SIDES[choice(params, "side", _SIDES, Code.INVALID_SIDE, "Invalid side.")]
        kind = choice(params, "type", ("LIMIT", "LIMIT_MAKER", "MARKET"), Code.INVALID_ORDER_TYPE, "Invalid orderType.")
        tif_text = params.get("timeInForce")
        if kind == "LIMIT":
            tif = choice(params, "timeInForce", _TIFS, Code.INVALID_TIF, "Invalid timeInForce.")
        elif tif_text:
            raise BinanceError(400, Code.PARAM_NOT_REQUIRED, "Parameter 'timeInForce' sent when not required.")
        else:
            tif = "GTC" if kind == "LIMIT_MAKER" else "IOC"
        quote_qty = None
        if kind == "MARKET":
            if params.get("price"):
                raise BinanceError(400, Code.PARAM_NOT_REQUIRED, "Parameter 'price' sent when not required.")
            ticks = None
            if params.get("quantity") and params.get("quoteOrderQty"):
                raise BinanceError(400, Code.OPTIONAL_PARAMS_BAD_COMBO, "Combination of optional parameters invalid.")
            if params.get("quoteOrderQty"):
                quote_qty = params["quoteOrderQty"]
                amount = inst.decimal("quoteOrderQty", quote_qty)
                if amount <= 0:
                    raise BinanceError(400, Code.FILTER_FAILURE, "Filter failure: NOTIONAL")
                lots = 1 if test else self._quote_qty_lots(inst, side, amount)  # a test order checks no liquidity
            elif params.get("quantity"):
                lots = inst.lots(params["quantity"])
            else:
                raise BinanceError(
                    400,
                    Code.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
        else:
            if not params.get("quantity"):
                raise mandatory("quantity")
            if not params.get("price"):
                raise mandatory("price")
            lots = inst.lots(params["quantity"])
            ticks = inst.ticks(params["price"])
        client_order_id = params.get("newClientOrderId") or new_client_order_id()
        if not _CLIENT_ID.match(client_order_id):
            raise illegal_chars("newClientOrderId", CLIENT_ID_PATTERN)
        resp_type = params.get("newOrderRespType") or ("ACK" if kind == "LIMIT_MAKER" else "FULL")
        if resp_type not in _RESP_TYPES:
            raise illegal_chars("newOrderRespType", "^(ACK|RESULT|FULL)$")
        stp = params.get("selfTradePreventionMode") or "NONE"
        if stp not in _STPS:
            raise illegal_chars("selfTradePreventionMode", "^(NONE|EXPIRE_TAKER|EXPIRE_MAKER|EXPIRE_BOTH|DECREMENT)$")
        cid = cred.client_id
        cloid = engine_cloid(client_order_id)
        desk = self.gateway.desk
        if desk.cloid_taken(cid, cloid):
            raise BinanceError(400, Code.NEW_ORDER_REJECTED, "Duplicate order sent.")
        if test:
            return {}
        cmd = Command.new(cid, inst.symbol_id, side, lots, ticks,
                          order_type=int(OrderType.MARKET if kind == "MARKET" else OrderType.LIMIT),
                          tif=_TIFS[tif], stp=_STPS[stp], post_only=kind == "LIMIT_MAKER", cloid=cloid,
                          ts_ns=time.monotonic_ns())  # fmt: skip
        self.ledger.expect(cid, cloid, Intent(client_order_id, kind, tif, stp, quote_qty))
        desk.reserve(cid, cloid)
        try:
            events = await self._execute(cmd)
        finally:
            desk.release(cid, cloid)
            self.ledger.forget(cid, cloid)
        first = events[0] if events else None
        if first is None or first.type != _ACK:
            raise _reject(first)
        order = self.ledger.get(first.order_id)
        if order is None:
            raise BinanceError(500, Code.UNKNOWN, "An unknown error occurred while processing the request.")
        return new_order_json(inst, self._as_of(order, events), resp_type, self.ledger.ms(first.ts_ns))

    @staticmethod
    def _as_of(order: OrderRecord, events: list[Event]) -> OrderRecord:
        """``order`` as its own command left it (later fills of a resting order may be applied already)."""
        fills = [e for e in events if e.type == _FILL and e.order_id == order.order_id]
        trade_ids = {e.trade_id for e in fills}
        executed = sum(e.qty for e in fills)
        status = "NEW" if not executed else "FILLED" if executed >= order.orig_qty else "PARTIALLY_FILLED"
        for e in events:
            if e.type == _CANCELED and e.order_id == order.order_id and e.leaves <= 0:
                status = status_of_cancel(e.reason)
        return dataclasses.replace(order, status=status, executed=executed, quote=sum(e.price * e.qty for e in fills),
                                   fills=[t for t in order.fills if t.trade_id in trade_ids])  # fmt: skip

    # --- orders ----------------------------------------------------------------------------------------------

    def _find(self, cred: Credential, params: Mapping[str, str], inst: Instrument, code: Code,
              msg: str) -> OrderRecord:  # fmt: skip
        order_id = int_param(params, "orderId")
        orig = params.get("origClientOrderId")
        if order_id is None and not orig:
            raise BinanceError(
                400,
                Code.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order_id is not None:
            order = self.ledger.get(order_id)
            if order is not None and orig and order.client_order_id != orig:
                order = None
        else:
            assert orig is not None
            order = self.ledger.by_client_order_id(cred.client_id, orig)
        if order is None or order.account != cred.client_id or order.symbol_id != inst.symbol_id:
            raise BinanceError(400, code, msg)  # someone else's order is no order of this key's
        return order

    def query_order(self, cred: Credential, params: Mapping[str, str]) -> dict[str, Any]:
        inst = self.instrument(params)
        assert inst is not None
        return order_json(inst, self._find(cred, params, inst, Code.NO_SUCH_ORDER, "Order does not exist."))

    async def cancel_order(self, cred: Credential, params: Mapping[str, str]) -> dict[str, Any]:
        inst = self.instrument(params)
        assert inst is not None
        order = self._find(cred, params, inst, Code.CANCEL_REJECTED, "Unknown order sent.")
        cancel_id = params.get("newClientOrderId") or new_client_order_id()
        if not _CLIENT_ID.match(cancel_id):
            raise illegal_chars("newClientOrderId", CLIENT_ID_PATTERN)
        if not order.is_open:
            raise BinanceError(400, Code.CANCEL_REJECTED, "Unknown order sent.")
        events = await self._execute(Command.cancel(cred.client_id, order.order_id, ts_ns=time.monotonic_ns()))
        first = events[0] if events else None
        if first is None or first.type != _CANCELED:
            raise BinanceError(400, Code.CANCEL_REJECTED, "Unknown order sent.")
        return cancel_json(inst, order, cancel_id, self.ledger.ms(first.ts_ns))

    def open_orders(self, cred: Credential, params: Mapping[str, str]) -> list[dict[str, Any]]:
        inst = self.instrument(params, required=False)
        orders = self.ledger.open_of(cred.client_id, None if inst is None else inst.symbol_id)
        return [order_json(self.by_id[o.symbol_id], o) for o in orders]

    async def cancel_open_orders(self, cred: Credential, params: Mapping[str, str]) -> list[dict[str, Any]]:
        inst = self.instrument(params)
        assert inst is not None
        if not self.ledger.open_of(cred.client_id, inst.symbol_id):
            raise BinanceError(400, Code.CANCEL_REJECTED, "Unknown order sent.")
        cmd = Command.mass_cancel(cred.client_id, inst.symbol_id, ts_ns=time.monotonic_ns())
        events = await self._execute(cmd)
        out = []
        for e in events:
            if e.type == _CANCELED:
                order = self.ledger.get(e.order_id)
                if order is not None:
                    out.append(cancel_json(inst, order, new_client_order_id(), self.ledger.ms(e.ts_ns)))
        return out
