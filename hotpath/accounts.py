"""Named accounts: what users type (``mm_1``), mapped once to the engine client ids that stay internal.

One ``[[accounts]]`` table of the platform config lists them::

    [[accounts]]
    name = "mm_1"                    # letters, digits, "_", "-", "."; unique
    client = 1                       # the engine client id: unique, 0 <= client < max_clients
    limits = { max_order_qty = 100, max_position = 400 }     # c_engine.ClientLimits fields; default: none
    api_key = "mm1-key"              # optional: what a remote user presents to the gateway
    secret_env = "PROPTRADE_MM_1_SECRET"   # optional: the API secret, read from this environment variable,
    # secret_file = "/run/secrets/mm_1"    # or from this file (one of the two, never the secret itself)

The launcher, the engine process's control plane (an attach may name an account instead of an id), the
gateway and every ``--client`` option read it. A secret is read when it is asked for, never stored in the
config or printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from c_engine import ClientLimits

__all__ = ["Account", "AccountError", "Accounts", "parse_accounts"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KEYS = {"name", "client", "limits", "api_key", "secret_env", "secret_file"}
_LIMIT_KEYS = {f.name for f in fields(ClientLimits)}


class AccountError(ValueError):
    """An ``[[accounts]]`` entry that is not valid, or a name or id that no account has."""


@dataclass(frozen=True)
class Account:
    """One account: its name, engine client id, risk limits and API credentials' sources."""

    name: str
    client_id: int
    limits: ClientLimits | None = None
    api_key: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None

    def secret(self) -> str:
        """The API secret, read now from its environment variable or file; AccountError if it has none or the
        variable or file is missing or empty."""
        if self.secret_env is not None:
            value = os.environ.get(self.secret_env, "")
            where = f"environment variable {self.secret_env}"
        elif self.secret_file is not None:
            try:
                value = Path(self.secret_file).read_text().strip()
            except OSError as e:
                raise AccountError(f"account {self.name}: cannot read secret_file {self.secret_file}: {e}") from None
            where = f"file {self.secret_file}"
        else:
            raise AccountError(f"account {self.name} has no secret_env or secret_file")
        if not value:
            raise AccountError(f"account {self.name}: the {where} is empty or not set")
        return value


class Accounts(Mapping[str, Account]):
    """The accounts by name (a read-only mapping), with lookups by engine client id."""

    def __init__(self, accounts: Iterable[Account] = ()) -> None:
        self._by_name: dict[str, Account] = {}
        self._by_id: dict[int, Account] = {}
        for account in accounts:
            if account.name in self._by_name:
                raise AccountError(f"account name {account.name!r} is used twice")
            if account.client_id in self._by_id:
                other = self._by_id[account.client_id].name
                raise AccountError(f"accounts {other!r} and {account.name!r} both use client {account.client_id}")
            self._by_name[account.name] = account
            self._by_id[account.client_id] = account

    def __getitem__(self, name: str) -> Account:
        try:
            return self._by_name[name]
        except KeyError:
            raise AccountError(f"no account {name!r} (known: {sorted(self._by_name)})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def by_id(self, client_id: int) -> Account | None:
        """The account of an engine client id, or None."""
        return self._by_id.get(client_id)

    def client_id(self, account: str | int) -> int:
        """An account name's engine client id (an int is taken as an id already)."""
        return account if isinstance(account, int) else self[account].client_id

    def ids(self) -> dict[str, int]:
        """name -> engine client id, what the engine process's control plane resolves attaches with."""
        return {name: a.client_id for name, a in self._by_name.items()}


def _account(entry: Mapping[str, Any], max_clients: int) -> Account:
    if not isinstance(entry, Mapping):
        raise AccountError(f"an [[accounts]] entry must be a table, not {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AccountError(f"account name must be 1-64 letters, digits, '_', '-' or '.', not {name!r}")
    if "secret" in entry:
        raise AccountError(f"account {name}: a secret never goes in the config; use secret_env or secret_file")
    unknown = set(entry) - _KEYS
    if unknown:
        raise AccountError(f"account {name}: unknown keys {sorted(unknown)} (known: {sorted(_KEYS)})")
    client = entry.get("client")
    if type(client) is not int or not 0 <= client < max_clients:
        raise AccountError(f"account {name}: client must be an integer in 0..{max_clients - 1}, not {client!r}")
    limits = entry.get("limits")
    if limits is not None:
        if not isinstance(limits, Mapping) or set(limits) - _LIMIT_KEYS:
            raise AccountError(f"account {name}: limits takes {sorted(_LIMIT_KEYS)}, not {limits!r}")
        limits = ClientLimits(**limits)
    if "secret_env" in entry and "secret_file" in entry:
        raise AccountError(f"account {name}: give secret_env or secret_file, not both")
    text = {key: entry.get(key) for key in ("api_key", "secret_env", "secret_file")}
    for key, value in text.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise AccountError(f"account {name}: {key} must be a non-empty string")
    return Account(name, client, limits, **text)


def parse_accounts(entries: Iterable[Mapping[str, Any]], *, max_clients: int) -> Accounts:
    """The ``[[accounts]]`` tables of a config, validated; AccountError names the first thing wrong."""
    return Accounts(_account(entry, max_clients) for entry in entries)
