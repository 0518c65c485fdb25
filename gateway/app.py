"""``create_app(config)``: the gateway's ASGI application, built in one place.

Every route (``rest.routes()``, ``streams.routes()``, ``dashboard.routes()``: the page at ``/``, and
``binance.routes()``: the Binance-compatible API, docs/API.md), the middleware (``binance.BinanceAccess``: the
Binance paths' request weight, every other path through ``access.AccessMiddleware``: auth, rate limit, body
size, metrics) and the exception handlers (``errors.EXCEPTION_HANDLERS``) are listed here; nothing is added
later. Resources live in the lifespan: it connects the venue (by default the running platform,
``venue.LiveVenue``), starts the :class:`~gateway.service.Gateway` (books loaded, tasks running) and the
:class:`~gateway.binance.BinanceApi` on it before the first request, and yields them as the request state
(``request.state.gateway``, ``request.state.binance``). If the venue cannot be reached, startup fails and
uvicorn opens no socket. At shutdown the gateway waits for in-flight commands (bounded), closes the streams,
stops its tasks and detaches the link, last.

Tests pass their own ``venue`` factory (an in-process engine: ``venue.EngineVenue``), ``clock`` (the rate
limiters', stepped by hand) and, for the Binance API, ``symbols`` (the engine's symbol configs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from . import binance, dashboard, rest, streams
from .access import AccessMiddleware
from .config import GatewayConfig
from .errors import EXCEPTION_HANDLERS
from .metrics import Metrics
from .ratelimit import Clock, RateLimiter, monotonic
from .service import Gateway
from .venue import LiveVenue, Venue

__all__ = ["State", "VenueFactory", "create_app", "live_venue"]

#: makes the venue at startup
VenueFactory = Callable[[GatewayConfig], Awaitable[Venue]]


class State(TypedDict):
    """What the lifespan yields: each request's ``request.state``."""

    gateway: Gateway
    binance: binance.BinanceApi


async def live_venue(config: GatewayConfig) -> Venue:
    """The running platform: one link for every account of ``config``."""
    return await LiveVenue.connect(config.prefix, config.account_names, config.endpoint)


def create_app(config: GatewayConfig, *, venue: VenueFactory = live_venue, clock: Clock = monotonic,
               symbols: binance.SymbolSource | None = None) -> FastAPI:  # fmt: skip
    """The gateway app for ``config`` (see the module docstring). ``symbols``: the engine's symbol configs for
    the Binance API (default: the venue's, ``binance.venue_symbols``)."""
    metrics = Metrics()
    limiter = RateLimiter(config.rate_per_s, config.rate_burst, clock)
    #: the Binance API's request weight per minute: the gateway's request rate, per minute
    weights = binance.WeightLimiter(round(config.rate_per_s * 60), clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        link = await venue(config)
        try:
            gateway = await Gateway.start(config, link, metrics)
        except BaseException:
            await link.close()
            raise
        try:
            specs = await symbols(config) if symbols is not None else await binance.venue_symbols(config, link)
            api = await binance.BinanceApi.start(gateway, specs, binance.keyring_of(config), weights.per_minute)
        except BaseException:
            await gateway.stop()
            raise
        try:
            yield {"gateway": gateway, "binance": api}
        finally:
            api.stop()
            await gateway.stop()

    def access(app: ASGIApp) -> ASGIApp:  # the gateway's own rules, for every path not the Binance API's
        return AccessMiddleware(app, keys=config.keys if config.auth else None, limiter=limiter,
                                max_body_bytes=config.max_body_bytes, metrics=metrics,
                                mass_cancel_cost=config.mass_cancel_cost)  # fmt: skip

    middleware = [Middleware(binance.BinanceAccess, other=access, limiter=weights, metrics=metrics,
                             max_body_bytes=config.max_body_bytes)]  # fmt: skip
    routes: list[BaseRoute] = [*rest.routes(), *streams.routes(), *dashboard.routes(), *binance.routes()]
    return FastAPI(title="proptrade gateway", version="1", routes=routes, middleware=middleware,
                   exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan,
                   description="REST and WebSocket access to the proptrade platform; docs/GATEWAY.md")  # fmt: skip
