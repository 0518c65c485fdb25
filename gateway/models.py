"""The REST API's request and response bodies: what ``/docs`` shows, and what FastAPI validates and serialises.

Requests are strict (``extra="forbid"``, no string-to-number coercion, no NaN or infinity): a wrong type or an
unknown field is a 422, never a guess. Prices and sizes are human numbers (``100.05``, ``5``); the gateway
converts them to the engine's ticks and lots exactly (``c_engine.Units``) and refuses what is off the tick or
the lot. Responses give prices and sizes in the same human units, and levels as ``[price, size, orders]``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

__all__ = [
    "BookResponse",
    "CancelResponse",
    "FillModel",
    "Health",
    "MassCancelResponse",
    "ModifyRequest",
    "OrderRequest",
    "OrderResponse",
    "OrderView",
    "PositionModel",
    "RiskResponse",
    "WhoAmI",
]

#: the largest client order id: the engine's field is 64 bits, kept signed for every JSON reader
MAX_CLIENT_ORDER_ID = 2**63 - 1

Side = Literal["buy", "sell"]
#: A book level ``[price, size, orders]``. Its schema is a plain array of three numbers, not the tuple
#: (``prefixItems``) pydantic would write: OpenAPI 3.0 tooling, client generators and schemathesis 4.32's
#: response check do not take ``prefixItems``. The values sent are the same.
Level = Annotated[
    tuple[float, float, int],
    WithJsonSchema({"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3,
                    "description": "[price, size, orders]"}),
]  # fmt: skip
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class OrderRequest(BaseModel):
    """A new order, as the seed shows it: ``{"client_id": "mm_1", "side": "buy", "type": "limit", "price":
    100.05, "size": 5}``. ``symbol`` may be left out when the platform has one symbol."""

    model_config = _STRICT

    client_id: str = Field(min_length=1, max_length=64, description="the account the order is for")
    side: Side
    type: Literal["limit", "market"] = "limit"
    price: float | None = Field(default=None, gt=0, description="limit price; none for a market order")
    size: float = Field(gt=0)
    symbol: str | None = Field(default=None, min_length=1, max_length=64)
    client_order_id: int | None = Field(default=None, ge=1, le=MAX_CLIENT_ORDER_ID,
                                        description="unique among the account's open orders")  # fmt: skip
    time_in_force: Literal["GTC", "IOC", "FOK"] | None = Field(
        default=None, description="default GTC (limit), IOC (market)"
    )
    post_only: bool = False
    stp: Literal["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"] = "NONE"


class ModifyRequest(BaseModel):
    """A new price and/or a new open size for a resting order (size down at the same price keeps its place)."""

    model_config = _STRICT

    price: float | None = Field(default=None, gt=0)
    size: float | None = Field(default=None, gt=0, description="the new open (leaves) size")

    @model_validator(mode="after")
    def _something(self) -> ModifyRequest:
        if self.price is None and self.size is None:
            raise ValueError("give price, size or both")
        return self


class FillModel(BaseModel):
    """One fill of one of the account's orders."""

    event: Literal["fill"] = "fill"
    client_id: str
    symbol: str
    order_id: int
    trade_id: int
    side: Side
    price: float
    size: float
    leaves: float = Field(description="the order's open size after this fill")
    liquidity: Literal["maker", "taker"]
    client_order_id: int | None = None
    seq: int = Field(description="the engine's event sequence number")
    timestamp: float = Field(description="seconds since the epoch")


class OrderResponse(BaseModel):
    """What became of a new order: accepted (with the fills it took at once) or rejected with the engine's reason."""

    status: Literal["accepted", "rejected"]
    reason: str | None = Field(default=None, description="the engine's reject reason, e.g. RISK_MAX_POSITION")
    order_id: int | None = None
    client_id: str
    symbol: str
    side: Side
    type: Literal["limit", "market"]
    price: float | None
    size: float
    client_order_id: int | None = None
    state: Literal["open", "filled", "cancelled", "rejected"]
    filled: float
    leaves: float
    fills: list[FillModel] = []
    timestamp: float


class OrderView(BaseModel):
    """One open order."""

    order_id: int
    client_id: str
    symbol: str
    side: Side
    price: float | None
    size: float = Field(description="the size it was entered with")
    leaves: float
    filled: float
    client_order_id: int | None = None
    timestamp: float


class CancelResponse(BaseModel):
    """The result of a cancel or a modify."""

    status: Literal["cancelled", "modified", "rejected"]
    reason: str | None = None
    order_id: int
    client_id: str
    price: float | None = None
    leaves: float = Field(description="open size after the command (0 once cancelled)")
    fills: list[FillModel] = []


class MassCancelResponse(BaseModel):
    status: Literal["cancelled", "rejected"]
    reason: str | None = None
    client_id: str
    cancelled: int = Field(description="how many orders were cancelled")


class BookResponse(BaseModel):
    """The gateway's own book of a symbol; ``seq`` is the last ``/ws/md`` message it includes."""

    symbol: str
    seq: int
    mid: float | None
    best_bid: float | None
    best_ask: float | None
    spread: float | None
    bids: list[Level] = Field(description="[price, size, orders], best first")
    asks: list[Level]
    timestamp: float


class PositionModel(BaseModel):
    symbol: str
    position: float
    avg_cost: float | None
    cash: float = Field(description="minus for buys, plus for sells, in price x size")
    mark: float | None = Field(description="the price unrealised PnL is marked at: the mid, else the last trade")
    realised: float
    unrealised: float
    fees: float
    net: float


class RiskResponse(BaseModel):
    """An account's books since the gateway started, its limits and its kill switch."""

    client_id: str
    positions: list[PositionModel]
    pnl: float = Field(description="net PnL over every symbol")
    open_orders: int
    killed: bool
    limits: dict[str, int] = Field(description="the engine's risk limits of the account (0: off)")


class Health(BaseModel):
    status: Literal["ok", "engine_gone"]
    symbols: list[str]
    accounts: list[str]
    auth: bool


class WhoAmI(BaseModel):
    """Who the caller is: its key's account, and the accounts it may act for."""

    client_id: str | None = Field(description="the API key's account; none when auth is off")
    accounts: list[str] = Field(description="the accounts this caller may act for")
    auth: bool
