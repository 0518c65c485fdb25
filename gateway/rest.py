"""The REST routes: thin functions over :class:`~gateway.service.Gateway`, each declaring its response model.

Every route refuses a query parameter it does not declare (:func:`known_query_only`), and every route that acts
for an account checks the caller first (:func:`act_as`): with auth on, the key's account must be the account the
request names, or the owner of the order it touches (403 otherwise). Errors are
:class:`~gateway.errors.ApiError`s; ``errors.py`` turns every failure into the one error body.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from .access import API_KEY_HEADER, PRINCIPAL, Principal
from .errors import ApiError, ErrorBody, ErrorCode
from .metrics import CONTENT_TYPE
from .models import (
    MAX_CLIENT_ORDER_ID,
    BookResponse,
    CancelResponse,
    FillModel,
    Health,
    MassCancelResponse,
    ModifyRequest,
    OrderRequest,
    OrderResponse,
    OrderView,
    RiskResponse,
    WhoAmI,
)
from .service import Gateway

__all__ = ["act_as", "routes"]

#: declares the key for /docs; AccessMiddleware does the checking (HTTP and WebSocket alike)
api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the API key of one account")


# Dependencies are coroutines: FastAPI runs a plain ``def`` one in a worker thread, two thread hops per request.
async def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.state.gateway
    return gateway


async def principal_of(request: Request) -> Principal:
    principal: Principal = request.scope[PRINCIPAL]
    return principal


GatewayDep = Annotated[Gateway, Depends(gateway_of)]
PrincipalDep = Annotated[Principal, Depends(principal_of)]
Account = Annotated[str, Path(min_length=1, max_length=64, description="an account name")]
OrderId = Annotated[int, Path(ge=1, le=MAX_CLIENT_ORDER_ID, description="the engine's order id")]


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


_KNOWN_QUERY: dict[int, frozenset[str]] = {}  #: id(route) -> the query parameters it declares


async def known_query_only(request: Request) -> None:
    """422 for a query parameter the route does not declare: strict as the bodies are (``?depht=5`` is a
    typo to report, not a parameter to ignore)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _KNOWN_QUERY.get(id(route))
    if known is None:
        known = _KNOWN_QUERY[id(route)] = frozenset(_query_names(route.dependant))
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ApiError(422, ErrorCode.INVALID_REQUEST, f"unknown query parameter {unknown[0]!r} (this route takes: "
                       f"{allowed})")  # fmt: skip


def act_as(principal: Principal, account: str) -> None:
    """403 unless the caller may act for ``account``."""
    if principal.account is not None and principal.account != account:
        raise ApiError(403, ErrorCode.FORBIDDEN, f"this API key belongs to {principal.account!r}, not {account!r}")


def _act_on_order(gateway: Gateway, principal: Principal, order_id: int) -> None:
    owner = gateway.order_owner(order_id)
    if owner is not None:
        act_as(principal, gateway.desk.account_names[owner])


async def post_order(order: OrderRequest, gateway: GatewayDep, principal: PrincipalDep) -> OrderResponse:
    """A new order; the answer is its ACK (with any fills it took at once) or its REJECT and reason."""
    act_as(principal, order.client_id)
    return await gateway.new_order(order)


async def post_cancel(order_id: OrderId, gateway: GatewayDep, principal: PrincipalDep) -> CancelResponse:
    """Cancels an open order."""
    _act_on_order(gateway, principal, order_id)
    return await gateway.cancel(order_id)


async def patch_order(order_id: OrderId, change: ModifyRequest, gateway: GatewayDep,
                      principal: PrincipalDep) -> CancelResponse:  # fmt: skip
    """Changes an open order's price and/or open size (size down at the same price keeps its queue place)."""
    _act_on_order(gateway, principal, order_id)
    return await gateway.modify(order_id, change)


async def delete_orders(client_id: Account, gateway: GatewayDep, principal: PrincipalDep,
                        symbol: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                        ) -> MassCancelResponse:  # fmt: skip
    """Cancels every open order of the account (of ``symbol`` only, if given)."""
    act_as(principal, client_id)
    return await gateway.mass_cancel(client_id, symbol)


async def get_orders(client_id: Account, gateway: GatewayDep, principal: PrincipalDep) -> list[OrderView]:
    """The account's open orders, oldest first."""
    act_as(principal, client_id)
    return gateway.orders(client_id)


async def get_fills(client_id: Account, gateway: GatewayDep, principal: PrincipalDep,
                    limit: Annotated[int, Query(ge=1, le=100_000)] = 100) -> list[FillModel]:  # fmt: skip
    """The account's most recent fills (up to ``limit``), oldest first."""
    act_as(principal, client_id)
    return gateway.fills(client_id, limit)


async def get_risk(client_id: Account, gateway: GatewayDep, principal: PrincipalDep) -> RiskResponse:
    """Position, cash and PnL per symbol, limits and kill switch."""
    act_as(principal, client_id)
    return gateway.risk(client_id)


async def get_book(gateway: GatewayDep, symbol: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                   depth: Annotated[int | None, Query(ge=1, le=100_000)] = None) -> BookResponse:  # fmt: skip
    """The gateway's own L2 book (every level unless ``depth``); ``seq`` is the last /ws/md message it holds."""
    return gateway.book(symbol, depth)


async def get_health(gateway: GatewayDep) -> Health:
    return Health(status="ok" if gateway.gone is None else "engine_gone", symbols=sorted(gateway.market.symbol_ids),
                  accounts=list(gateway.account_ids), auth=gateway.config.auth)  # fmt: skip


async def get_whoami(gateway: GatewayDep, principal: PrincipalDep) -> WhoAmI:
    """The API key's account (the dashboard asks this once a key is entered); with auth off, every account."""
    if principal.account is not None:
        return WhoAmI(client_id=principal.account, accounts=[principal.account], auth=gateway.config.auth)
    return WhoAmI(client_id=None, accounts=list(gateway.account_ids), auth=gateway.config.auth)


async def get_metrics(gateway: GatewayDep) -> Response:
    """Prometheus text exposition."""
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)


#: the error statuses a route may answer, each with the one error body
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
#: what a public route without parameters may answer: an unknown query parameter
_QUERY_ERRORS: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}}
_STRICT = [Depends(known_query_only)]
_KEY = [Security(api_key), *_STRICT]


def routes() -> list[APIRoute]:
    """Every REST route, in the order /docs lists them."""
    return [
        APIRoute("/order", post_order, methods=["POST"], dependencies=_KEY, responses=_ERRORS, tags=["orders"]),
        APIRoute("/cancel/{order_id}", post_cancel, methods=["POST"], dependencies=_KEY, responses=_ERRORS,
                 tags=["orders"]),
        APIRoute("/order/{order_id}", patch_order, methods=["PATCH"], dependencies=_KEY, responses=_ERRORS,
                 tags=["orders"]),
        APIRoute("/orders/{client_id}", delete_orders, methods=["DELETE"], dependencies=_KEY, responses=_ERRORS,
                 tags=["orders"]),
        APIRoute("/orders/{client_id}", get_orders, methods=["GET"], dependencies=_KEY, responses=_ERRORS,
                 tags=["account"]),
        APIRoute("/fills/{client_id}", get_fills, methods=["GET"], dependencies=_KEY, responses=_ERRORS,
                 tags=["account"]),
        APIRoute("/risk/{client_id}", get_risk, methods=["GET"], dependencies=_KEY, responses=_ERRORS,
                 tags=["account"]),
        APIRoute("/whoami", get_whoami, methods=["GET"], dependencies=_KEY, responses=_ERRORS, tags=["account"]),
        APIRoute("/book", get_book, methods=["GET"], dependencies=_STRICT, responses=_ERRORS, tags=["market data"]),
        APIRoute("/health", get_health, methods=["GET"], dependencies=_STRICT, responses=_QUERY_ERRORS,
                 tags=["operations"]),
        APIRoute("/metrics", get_metrics, methods=["GET"], dependencies=_STRICT, response_class=Response,
                 tags=["operations"], responses={**_QUERY_ERRORS, 200: {"content": {CONTENT_TYPE: {}},
                                                                        "description": "Prometheus text"}}),
    ]  # fmt: skip
