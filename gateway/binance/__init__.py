"""A Binance-spot-compatible API on the gateway, so bots written for Binance (ccxt, python-binance,
binance-sdk-spot) trade on the platform unchanged: REST ``/api/v3/...`` with Binance's signing, weights, field
names and error codes, and its WebSocket streams (diff depth, trades, book ticker, user data).

It lives on the gateway's own state and events (the gateway's hooks feed it in engine order), sends the
same engine commands, and answers in Binance's terms; docs/API.md says what is served and how it maps.
Modules, one job each: ``errors`` the error bodies · ``instruments`` symbols as markets, exact decimals ·
``signing`` keys, HMAC, freshness · ``weights`` request weight · ``access`` which paths are Binance's ·
``ledger`` orders and trades from events · ``feed`` update ids, depth diffs, trades, top · ``views`` JSON
shapes · ``trading`` the signed calls · ``userdata`` listen keys, executionReport · ``api`` the state ·
``rest``, ``ws`` the routes.
"""

from .access import BinanceAccess, is_binance_path
from .api import BinanceApi, SymbolSource, control_plane_symbols, keyring_of, venue_symbols
from .rest import routes as rest_routes
from .weights import WeightLimiter
from .ws import routes as ws_routes

__all__ = [
    "BinanceAccess",
    "BinanceApi",
    "SymbolSource",
    "WeightLimiter",
    "control_plane_symbols",
    "is_binance_path",
    "keyring_of",
    "rest_routes",
    "venue_symbols",
    "ws_routes",
]
