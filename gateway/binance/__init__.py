"""A Binance-spot-compatible API on the gateway, so bots written for Binance (ccxt, python-binance,
binance-sdk-spot) trade on the platform unchanged: REST ``/api/v3/...`` with Binance's signing, weights, field
names and error codes, and its WebSocket streams (diff depth, trades, book ticker, user data).

It lives on the gateway's own state and events (the gateway's hooks feed it in engine order), sends the
same engine commands, and answers in Binance's terms; docs/API.md says what is served and how it maps.
Modules, one job each: ``errors`` the error bodies · ``instruments`` symbols as markets, exact decimals ·
``signing`` keys, HMAC, freshness · ``weights`` request weight · ``access`` which paths are Binance's ·
``ledger`` orders and trades from events · ``feed`` update ids, depth diffs, trades, top · ``views`` JSON
shapes · ``params`` parameters as Binance reads them · ``trading`` the order calls · ``account`` balances and
my trades · ``userdata`` listen keys, executionReport · ``api`` the state · ``rest``, ``ws``, ``wsapi`` the
routes · ``sockets`` one WebSocket connection's life.
"""

from starlette.routing import BaseRoute

from . import rest, ws, wsapi
from .access import BinanceAccess, is_binance_path
from .api import BinanceApi, SymbolSource, control_plane_symbols, keyring_of, venue_symbols
from .weights import WeightLimiter

__all__ = [
    "BinanceAccess",
    "BinanceApi",
    "SymbolSource",
    "WeightLimiter",
    "control_plane_symbols",
    "is_binance_path",
    "keyring_of",
    "routes",
    "venue_symbols",
]


def routes() -> list[BaseRoute]:
    """Every route of the Binance API: REST, streams, the WebSocket API (after the gateway's own routes, whose
    ``/ws/md`` and ``/ws/fills/...`` the streams' ``/ws/...`` must not shadow)."""
    return [*rest.routes(), *ws.routes(), *wsapi.routes()]
