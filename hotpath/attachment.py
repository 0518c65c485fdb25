"""What a client process learns when it attaches to an engine, shared by ``Client`` and ``AsyncClient``.

The control plane's attach reply names the client's ring pair and the market-data ring, lists the engine's
symbols with their tick and lot sizes, and gives the engine's pid. :class:`Attachment` keeps that: the symbol
maps, the exact unit conversion per symbol (the same method names as ``c_engine.Engine``), the opened ring
pair, and whether the engine process still exists.
"""

from __future__ import annotations

import os
import time
from typing import Any

from c_engine import MSG_SIZE, Command, SymbolUnits, Units, UnknownSymbolError, pack_new_order

from .engine_client import EngineClient
from .names import control_endpoint

__all__ = ["Attachment", "DetachedError", "EngineGoneError", "resolve_endpoint"]


class EngineGoneError(ConnectionError):
    """The engine process this client was attached to has exited: nothing more will be taken or answered."""


class DetachedError(ConnectionError):
    """The engine detached this client (an operator, a missed heartbeat, a slow consumer): its rings are gone,
    nothing it sends is taken. Attach again to go on."""


def resolve_endpoint(prefix: str | None, endpoint: str | None) -> str:
    """The control endpoint from an explicit ``endpoint`` or the engine run's ``prefix``."""
    if endpoint is not None:
        return endpoint
    if prefix is None:
        raise ValueError("give the engine run's prefix or its control endpoint")
    return control_endpoint(prefix)


class Attachment(SymbolUnits):
    """An attached client's view of the engine: ids, symbols, units, rings (see the module docstring)."""

    def __init__(self, reply: dict[str, Any]) -> None:
        """Opens the ring pair that the attach ``reply`` names."""
        self.client_id: int = reply["client"]
        self.account: str | None = reply.get("account")  #: the account's name; None for an id no account has
        #: every account this link acts for, its own first: name (or the id as a string) -> engine client id
        self.accounts: dict[str, int] = dict(reply.get("accounts") or {str(self.client_id): self.client_id})
        self.static = bool(reply["static"])
        self.token: str | None = reply.get("token")  #: names this attachment in heartbeats and the detach
        self.engine_pid: int | None = reply.get("engine_pid")
        self.heartbeat_timeout_s = float(reply["heartbeat_timeout_s"])
        self.symbols: dict[str, int] = {s["name"]: s["symbol_id"] for s in reply["symbols"]}
        self.symbol_names: dict[int, str] = {sid: name for name, sid in self.symbols.items()}
        self._units = {s["symbol_id"]: Units(s["tick_size"], s["lot_size"]) for s in reply["symbols"]}
        self._rings = EngineClient.from_names(self.client_id, reply["command_ring"], reply["event_ring"],
                                              reply["market_data"])  # fmt: skip
        self._cmd = bytearray(MSG_SIZE)
        self._next_cloid = 1

    # --- commands, as both clients send them -------------------------------------------------------------

    def new_order(self, symbol: str | int, side: str, qty: float, price: float | None, type: str, tif: str | None,
                  post_only: bool, stp: str, cloid: int | None,
                  account: str | int | None) -> tuple[bytes, int]:  # fmt: skip
        """A new order in human units as wire bytes, and its client order id (given, or the next of this
        link's own sequence). ``tif`` None: GTC for a limit, IOC for a market."""
        sid = self.symbol_id(symbol)
        if cloid is None:
            cloid = self._next_cloid
            self._next_cloid += 1
        pack_new_order(self._cmd, 0, self._units[sid], sid, self.account_id(account), side, qty, price, type, tif,
                       post_only, stp, cloid, time.monotonic_ns())  # fmt: skip
        return bytes(self._cmd), cloid

    def cancel_command(self, order_id: int, account: str | int | None) -> Command:
        return Command.cancel(self.account_id(account), order_id, ts_ns=time.monotonic_ns())

    def modify_command(self, order_id: int, symbol: str | int, qty: float | None, price: float | None,
                       account: str | int | None) -> Command:  # fmt: skip
        """``symbol`` gives the units to convert the new size and price with."""
        units = self._units[self.symbol_id(symbol)]
        return Command.modify(self.account_id(account), order_id, qty=None if qty is None else units.lots(qty),
                              price=None if price is None else units.ticks(price),
                              ts_ns=time.monotonic_ns())  # fmt: skip

    def mass_cancel_command(self, symbol: str | int | None, account: str | int | None) -> Command:
        sid = None if symbol is None else self.symbol_id(symbol)
        return Command.mass_cancel(self.account_id(account), sid, ts_ns=time.monotonic_ns())

    def account_id(self, account: str | int | None) -> int:
        """The engine client id a command acts for: this link's own (None), a granted account's name, or an id
        as given (the engine loop rejects, NOT_GRANTED, an id the link was not granted)."""
        if account is None:
            return self.client_id
        if isinstance(account, int):
            return account
        try:
            return self.accounts[account]
        except KeyError:
            raise KeyError(
                f"account {account!r} is not granted to this link (granted: {sorted(self.accounts)})"
            ) from None

    def symbol_id(self, symbol: str | int) -> int:
        """The engine's id of a symbol name (or id); UnknownSymbolError if the engine has no such symbol."""
        if isinstance(symbol, str):
            try:
                return self.symbols[symbol]
            except KeyError:
                raise UnknownSymbolError(f"unknown symbol {symbol!r} (known: {sorted(self.symbols)})") from None
        if symbol not in self.symbol_names:
            raise UnknownSymbolError(f"unknown symbol id {symbol}")
        return symbol

    def engine_alive(self) -> bool:
        """False once the engine process is gone (a signal-0 probe of its pid)."""
        if self.engine_pid is None:
            return True
        try:
            os.kill(self.engine_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
