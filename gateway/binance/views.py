"""Orders, fills and trades as Binance's JSON shapes (field names and order as Binance sends them; every
decimal a string)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .instruments import Instrument
from .ledger import OrderRecord, TradeRecord

__all__ = [
    "ZERO",
    "cancel_json",
    "fill_json",
    "levels_json",
    "my_trade_json",
    "new_order_json",
    "order_json",
    "public_trade_json",
]

#: Binance's zero for a field the platform has no use for (stopPrice, icebergQty, commission)
ZERO = "0.00000000"


def _price(inst: Instrument, order: OrderRecord) -> str:
    return inst.price(order.price) if order.price else ZERO


def _core(inst: Instrument, order: OrderRecord) -> dict[str, Any]:
    return {"price": _price(inst, order), "origQty": inst.qty(order.orig_qty), "executedQty": inst.qty(order.executed),
            "cummulativeQuoteQty": inst.notional(order.quote), "status": order.status,
            "timeInForce": order.time_in_force, "type": order.type, "side": order.side}  # fmt: skip


def order_json(inst: Instrument, order: OrderRecord) -> dict[str, Any]:
    """``GET /api/v3/order`` and ``openOrders``' shape."""
    return {"symbol": inst.name, "orderId": order.order_id, "orderListId": -1, "clientOrderId": order.client_order_id,
            **_core(inst, order), "stopPrice": ZERO, "icebergQty": ZERO, "time": order.time_ms,
            "updateTime": order.update_ms, "isWorking": True, "workingTime": order.time_ms,
            "origQuoteOrderQty": order.quote_order_qty or ZERO,
            "selfTradePreventionMode": order.stp}  # fmt: skip


def fill_json(inst: Instrument, trade: TradeRecord) -> dict[str, Any]:
    return {"price": inst.price(trade.price), "qty": inst.qty(trade.qty), "commission": ZERO,
            "commissionAsset": inst.quote, "tradeId": trade.trade_id}  # fmt: skip


def new_order_json(inst: Instrument, order: OrderRecord, resp_type: str, transact_ms: int) -> dict[str, Any]:
    """``POST /api/v3/order``'s answer for ``newOrderRespType`` ACK, RESULT or FULL."""
    out: dict[str, Any] = {"symbol": inst.name, "orderId": order.order_id, "orderListId": -1,
                           "clientOrderId": order.client_order_id, "transactTime": transact_ms}  # fmt: skip
    if resp_type == "ACK":
        return out
    out.update(_core(inst, order))
    out["origQuoteOrderQty"] = order.quote_order_qty or ZERO
    out["workingTime"] = order.time_ms if order.type != "MARKET" else -1
    out["selfTradePreventionMode"] = order.stp
    if resp_type == "FULL":
        out["fills"] = [fill_json(inst, t) for t in order.fills]
    return out


def cancel_json(inst: Instrument, order: OrderRecord, cancel_client_id: str, transact_ms: int) -> dict[str, Any]:
    """``DELETE /api/v3/order``'s answer (and each entry of ``DELETE openOrders``)."""
    return {"symbol": inst.name, "origClientOrderId": order.client_order_id, "orderId": order.order_id,
            "orderListId": -1, "clientOrderId": cancel_client_id, "transactTime": transact_ms,
            **_core(inst, order), "selfTradePreventionMode": order.stp}  # fmt: skip


def my_trade_json(inst: Instrument, trade: TradeRecord) -> dict[str, Any]:
    """``GET /api/v3/myTrades``' entry."""
    quote = trade.price * trade.qty
    return {"symbol": inst.name, "id": trade.trade_id, "orderId": trade.order_id, "orderListId": -1,
            "price": inst.price(trade.price), "qty": inst.qty(trade.qty), "quoteQty": inst.notional(quote),
            "commission": ZERO, "commissionAsset": inst.quote, "time": trade.time_ms,
            "isBuyer": trade.side == "BUY", "isMaker": trade.maker, "isBestMatch": True}  # fmt: skip


def public_trade_json(inst: Instrument, trade_id: int, price: int, qty: int, ms: int,
                      buyer_maker: bool) -> dict[str, Any]:  # fmt: skip
    """``GET /api/v3/trades``' entry."""
    return {"id": trade_id, "price": inst.price(price), "qty": inst.qty(qty), "quoteQty": inst.notional(price * qty),
            "time": ms, "isBuyerMaker": buyer_maker, "isBestMatch": True}  # fmt: skip


def levels_json(inst: Instrument, levels: Mapping[int, int] | list[tuple[int, int]]) -> list[list[str]]:
    items = levels.items() if isinstance(levels, Mapping) else levels
    return [[inst.price(p), inst.qty(q)] for p, q in items]
