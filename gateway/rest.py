"""The REST routes: thin functions over :class:`~gateway.service.Gateway`, each declaring its response model.

Every route refuses a query parameter it does not declare (:func:`caller`), and every route that acts
for an account checks the caller first (:func:`act_as`): with auth on, the key's account must be the account the
request names, or the owner of the order it touches (403 otherwise). Errors are
:class:`~gateway.errors.ApiError`s; ``errors.py`` turns every failure into the one error body.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from fastapi import Path, Query, Request, Security
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

#: the API key's security scheme in the schema (/docs); AccessMiddleware does the checking (HTTP and WebSocket)
api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the API key of one account")
#: its name in the schema's components
KEY_SCHEME = api_key.scheme_name


class Caller(NamedTuple):
    """What every route needs: the gateway, and who is calling."""

    gateway: Gateway
    principal: Principal


Account = Annotated[str, Path(min_length=1, max_length=64, description="an account name")]
OrderId = Annotated[int, Path(ge=1, le=MAX_CLIENT_ORDER_ID, description="the engine's order id")]


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


_KNOWN_QUERY: dict[int, frozenset[str]] = {}  #: id(route) -> the query parameters it declares


def caller(request: Request) -> Caller:
    """The gateway and the caller of a request, called first by every route. Not a FastAPI dependency: each
    costs a resolution per request (and a plain-function one a worker-thread hop). It refuses a query parameter
    the route does not declare, 422: strict as the bodies are (``?depht=5`` is a typo to report, not a
    parameter to ignore)."""
    if request.query_params:
        route = request.scope.get("route")
        if isinstance(route, APIRoute):
            known = _KNOWN_QUERY.get(id(route))
            if known is None:
                known = _KNOWN_QUERY[id(route)] = frozenset(_query_names(route.dependant))
            unknown = sorted(set(request.query_params) - known)
            if unknown:
                allowed = ", ".join(sorted(known)) or "none"
                raise ApiError(422, ErrorCode.INVALID_REQUEST,
                               f"unknown query parameter {unknown[0]!r} (this route takes: {allowed})")  # fmt: skip
    return Caller(request.state.gateway, request.scope[PRINCIPAL])


def act_as(principal: Principal, account: str) -> None:
    """403 unless the caller may act for ``account``."""
    if principal.account is not None and principal.account != account:
        raise ApiError(403, ErrorCode.FORBIDDEN, f"this API key belongs to {principal.account!r}, not {account!r}")


def _act_on_order(gateway: Gateway, principal: Principal, order_id: int) -> None:
    owner = gateway.order_owner(order_id)
    if owner is not None:
        act_as(principal, gateway.desk.account_names[owner])


async def post_order(order: OrderRequest, request: Request) -> OrderResponse:
    """A new order; the answer is its ACK (with any fills it took at once) or its REJECT and reason."""
    gateway, principal = caller(request)
    act_as(principal, order.client_id)
    return await gateway.new_order(order)


async def post_cancel(order_id: OrderId, request: Request) -> CancelResponse:
    """Cancels an open order."""
    gateway, principal = caller(request)
    _act_on_order(gateway, principal, order_id)
    return await gateway.cancel(order_id)


async def patch_order(order_id: OrderId, change: ModifyRequest, request: Request) -> CancelResponse:
    """Changes an open order's price and/or open size (size down at the same price keeps its queue place)."""
    gateway, principal = caller(request)
    _act_on_order(gateway, principal, order_id)
    return await gateway.modify(order_id, change)


async def delete_orders(client_id: Account, request: Request,
                        symbol: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                        ) -> MassCancelResponse:  # fmt: skip
    """Cancels every open order of the account (of ``symbol`` only, if given)."""
    gateway, principal = caller(request)
    act_as(principal, client_id)
    return await gateway.mass_cancel(client_id, symbol)


async def get_orders(client_id: Account, request: Request) -> list[OrderView]:
    """The account's open orders, oldest first."""
    gateway, principal = caller(request)
    act_as(principal, client_id)
    return gateway.orders(client_id)


async def get_fills(client_id: Account, request: Request,
                    limit: Annotated[int, Query(ge=1, le=100_000)] = 100) -> list[FillModel]:  # fmt: skip
    """The account's most recent fills (up to ``limit``), oldest first."""
    gateway, principal = caller(request)
    act_as(principal, client_id)
    return gateway.fills(client_id, limit)


async def get_risk(client_id: Account, request: Request) -> RiskResponse:
    """Position, cash and PnL per symbol, limits and kill switch."""
    gateway, principal = caller(request)
    act_as(principal, client_id)
    return gateway.risk(client_id)


async def get_book(request: Request, symbol: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
                   depth: Annotated[int | None, Query(ge=1, le=100_000)] = None) -> BookResponse:  # fmt: skip
    """The gateway's own L2 book (every level unless ``depth``); ``seq`` is the last /ws/md message it holds."""
    gateway = caller(request).gateway
    return gateway.book(symbol, depth)


async def get_health(request: Request) -> Health:
    gateway = caller(request).gateway
    return Health(status="ok" if gateway.gone is None else "engine_gone", symbols=sorted(gateway.market.symbol_ids),
                  accounts=list(gateway.account_ids), auth=gateway.config.auth)  # fmt: skip


async def get_whoami(request: Request) -> WhoAmI:
    """The API key's account (the dashboard asks this once a key is entered); with auth off, every account."""
    gateway, principal = caller(request)
    if principal.account is not None:
        return WhoAmI(client_id=principal.account, accounts=[principal.account], auth=gateway.config.auth)
    return WhoAmI(client_id=None, accounts=list(gateway.account_ids), auth=gateway.config.auth)


async def get_metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    gateway = caller(request).gateway
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)


#: the error statuses a route may answer, each with the one error body
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
#: what a public route without parameters may answer: an unknown query parameter
_QUERY_ERRORS: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}}
#: an operation that needs the key: it names the scheme in the schema (the middleware checks the key)
_KEYED: dict[str, Any] = {"security": [{KEY_SCHEME: []}]}


def routes() -> list[APIRoute]:
    """Every REST route, in the order /docs lists them."""
    return [
        APIRoute("/order", post_order, methods=["POST"], openapi_extra=_KEYED, responses=_ERRORS, tags=["orders"]),
        APIRoute("/cancel/{order_id}", post_cancel, methods=["POST"], openapi_extra=_KEYED, responses=_ERRORS,
                 tags=["orders"]),
        APIRoute("/order/{order_id}", patch_order, methods=["PATCH"], openapi_extra=_KEYED, responses=_ERRORS,
                 tags=["orders"]),
        APIRoute("/orders/{client_id}", delete_orders, methods=["DELETE"], openapi_extra=_KEYED, responses=_ERRORS,
                 tags=["orders"]),
        APIRoute("/orders/{client_id}", get_orders, methods=["GET"], openapi_extra=_KEYED, responses=_ERRORS,
                 tags=["account"]),
        APIRoute("/fills/{client_id}", get_fills, methods=["GET"], openapi_extra=_KEYED, responses=_ERRORS,
                 tags=["account"]),
        APIRoute("/risk/{client_id}", get_risk, methods=["GET"], openapi_extra=_KEYED, responses=_ERRORS,
                 tags=["account"]),
        # the one route that declares the key as a dependency: FastAPI then lists the scheme in the schema's
        # components, which _KEYED names; it costs a resolution per request, so nowhere else
        APIRoute("/whoami", get_whoami, methods=["GET"], dependencies=[Security(api_key)], responses=_ERRORS,
                 tags=["account"]),
        APIRoute("/book", get_book, methods=["GET"], responses=_ERRORS, tags=["market data"]),
        APIRoute("/health", get_health, methods=["GET"], responses=_QUERY_ERRORS,
                 tags=["operations"]),
        APIRoute("/metrics", get_metrics, methods=["GET"], response_class=Response,
                 tags=["operations"], responses={**_QUERY_ERRORS, 200: {"content": {CONTENT_TYPE: {}},
                                                                        "description": "Prometheus text"}}),
    ]  # fmt: skip
