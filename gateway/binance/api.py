"""``BinanceApi``: the Binance-compatible API's state on one gateway, made by the app's lifespan after the
:class:`~gateway.service.Gateway` started, and given to each request as ``request.state.binance``.

It holds the instruments (from the engine's symbol configs, which :func:`control_plane_symbols` asks the
engine's control plane for; tests give their own), the keyring (each account's ``api_key`` and HMAC secret),
the :class:`~gateway.binance.ledger.Ledger` (read by ``trading`` and ``account``) and the
:class:`~gateway.binance.feed.MarketFeed`, fed by the gateway's hooks (same events, same order, same task as
the gateway's own state), the user-data stream and the task that sends the depth diffs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from c_engine import SymbolConfig
from hotpath.accounts import AccountError
from hotpath.control_client import AsyncControlClient
from hotpath.names import control_endpoint

from ..config import GatewayConfig
from ..fanout import Subscriber
from ..service import Gateway
from ..venue import LiveVenue, Venue
from .account import AccountReads
from .feed import MarketFeed
from .instruments import Instrument
from .ledger import Ledger
from .signing import Credential, Keyring
from .trading import Trading
from .userdata import UserData

__all__ = ["BinanceApi", "SymbolSource", "control_plane_symbols", "keyring_of", "venue_symbols"]

log = logging.getLogger("proptrade.gateway.binance")

#: gives the engine's symbols as (symbol id, config)
SymbolSource = Callable[[GatewayConfig], Awaitable[Sequence[tuple[int, SymbolConfig]]]]


async def control_plane_symbols(config: GatewayConfig) -> list[tuple[int, SymbolConfig]]:
    """The running engine's symbol configs, from its control plane (``symbols``: no pause of the loop)."""
    ctl = AsyncControlClient(config.endpoint or control_endpoint(config.prefix), 10.0)
    try:
        reply = await ctl.request("symbols")
    finally:
        ctl.close()
    out = []
    for entry in reply["symbols"]:
        fields = dict(entry)
        sid = int(fields.pop("symbol_id"))
        out.append((sid, SymbolConfig(**fields)))
    return out


async def venue_symbols(config: GatewayConfig, venue: Venue) -> list[tuple[int, SymbolConfig]]:
    """The symbols of the gateway's venue: the engine's configs for the running platform; for another venue (an
    in-process engine in tests) each symbol's tick and lot with the engine's default limits."""
    if isinstance(venue, LiveVenue):
        return await control_plane_symbols(config)
    out = []
    for name, sid in venue.symbols.items():
        units = venue.units(sid)
        out.append((sid, SymbolConfig(name, tick_size=units.tick, lot_size=units.lot)))
    return out


def keyring_of(config: GatewayConfig) -> Keyring:
    """API key -> credential for every account of ``config`` with a key; the secret from ``secret_env`` or
    ``secret_file`` (None, with a warning, where there is none: that account cannot sign)."""
    entries = {}
    for account in config.accounts:
        if account.api_key is None:
            continue
        secret = None
        if account.secret_env is not None or account.secret_file is not None:
            try:
                secret = account.secret().encode()
            except AccountError as e:
                log.warning("Binance API: %s", e)
        else:
            log.warning("Binance API: account %s has no secret_env or secret_file: it cannot sign", account.name)
        entries[account.api_key] = Credential(account.name, account.client_id, secret)
    return Keyring(entries)


class BinanceApi:
    """See the module docstring. Make it with :meth:`start`; :meth:`stop` before the gateway stops."""

    def __init__(self, gateway: Gateway, symbols: Sequence[tuple[int, SymbolConfig]], keyring: Keyring,
                 weight_per_minute: int = 0) -> None:  # fmt: skip
        self.gateway = gateway
        self.weight_per_minute = weight_per_minute  #: the request weight budget (exchangeInfo says it)
        known = gateway.market.symbol_names
        self.instruments = {cfg.name.upper(): Instrument.from_config(sid, cfg) for sid, cfg in symbols if sid in known}
        by_id = {inst.symbol_id: inst for inst in self.instruments.values()}
        self.keyring = keyring
        self.ledger = Ledger(gateway.account_ids, gateway.desk.offset_ns, gateway.config.fills_kept)
        self.feed = MarketFeed(by_id, gateway.market.books, gateway.desk.offset_ns)
        self.trading = Trading(gateway, self.instruments, self.ledger, self.feed)
        self.account = AccountReads(gateway, self.instruments, self.ledger)
        self.userdata = UserData(by_id, gateway.account_ids)
        self.ledger.listeners.append(self.userdata.on_order)
        self.connections: set[Subscriber] = set()  #: every open WebSocket of this API
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, gateway: Gateway, symbols: Sequence[tuple[int, SymbolConfig]], keyring: Keyring,
                    weight_per_minute: int = 0) -> BinanceApi:  # fmt: skip
        self = cls(gateway, symbols, keyring, weight_per_minute)
        gateway.event_hooks.append(self.ledger.apply)
        gateway.market_hooks.append(self.feed.apply)
        gateway.resync_hooks.append(self.feed.gap)
        self._task = gateway.spawn(self.feed.run(), "binance-depth")
        return self

    def stop(self) -> None:
        """Closes every WebSocket of this API (the gateway's stop ends the task)."""
        for subscriber in list(self.connections):
            subscriber.close()
        if self._task is not None:
            self._task.cancel()
