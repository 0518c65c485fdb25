"""The gateway's settings: one frozen :class:`GatewayConfig`, from the platform config or from the launcher.

Two ways in, one result:

- ``proptrade gateway --config F`` (:func:`GatewayConfig.from_platform`): the platform TOML's ``[gateway]``
  table (``hotpath.launcher.GatewaySpec``: host, port, auth, accounts, rate limits, queue sizes) and its
  ``[[accounts]]``, for an engine run that is already up.
- ``proptrade up`` (:func:`GatewayConfig.from_launcher`): the launcher writes the same as JSON to the gateway
  process's stdin (``PlatformConfig.gateway_payload``), so API keys never appear on a command line.

``keys`` maps each API key to its account. An account without a key can only be used with ``auth`` off.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hotpath.accounts import Account, parse_accounts
from hotpath.launcher import GatewaySpec, PlatformConfig

__all__ = ["GatewayConfig"]

#: how long a shutdown waits for connections and in-flight commands before it cancels them
SHUTDOWN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway process needs (see the module docstring)."""

    prefix: str  #: the engine run: its market-data ring's name derives from it
    accounts: tuple[Account, ...]  #: the accounts the gateway acts for; the first is its link's own
    endpoint: str | None = None  #: the engine's control endpoint (None: the prefix's default)
    host: str = "127.0.0.1"
    port: int = 8000
    auth: bool = True
    rate_per_s: float = 50.0
    rate_burst: int = 100
    max_body_bytes: int = 16384
    ws_queue: int = 1024
    heartbeat_s: float = 5.0
    fills_kept: int = 10000
    shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S
    #: what a mass cancel costs against the rate limit (other calls cost 1): it may cancel many orders
    mass_cancel_cost: int = 10

    def __post_init__(self) -> None:
        if not self.accounts:
            raise ValueError("the gateway needs at least one account")
        names = [a.name for a in self.accounts]
        if len(set(names)) != len(names):
            raise ValueError(f"an account is listed twice: {names}")
        if self.auth:
            missing = [a.name for a in self.accounts if a.api_key is None]
            if missing:
                raise ValueError(f"accounts without an api_key while auth is on: {missing}")
        keys = [a.api_key for a in self.accounts if a.api_key is not None]
        if len(set(keys)) != len(keys):
            raise ValueError("two accounts share an api_key")

    @property
    def account_names(self) -> list[str]:
        return [a.name for a in self.accounts]

    @property
    def keys(self) -> dict[str, str]:
        """API key -> account name."""
        return {a.api_key: a.name for a in self.accounts if a.api_key is not None}

    def account(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)

    @classmethod
    def _from_spec(cls, spec: GatewaySpec, accounts: tuple[Account, ...], prefix: str, endpoint: str | None,
                   **overrides: Any) -> GatewayConfig:  # fmt: skip
        fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(cls) if hasattr(spec, f.name)}
        fields.pop("accounts", None)
        return cls(prefix=prefix, accounts=accounts, endpoint=endpoint, **{**fields, **overrides})

    @classmethod
    def from_platform(cls, platform: PlatformConfig, **overrides: Any) -> GatewayConfig:
        """From a parsed platform config (its ``[gateway]`` table must be there); ``overrides`` set fields."""
        spec = platform.gateway
        if spec is None:
            raise ValueError("the config has no [gateway] table (or it says enabled = false)")
        accounts = tuple(platform.accounts[name] for name in spec.accounts)
        return cls._from_spec(spec, accounts, platform.engine.prefix, platform.engine.endpoint, **overrides)

    @classmethod
    def from_launcher(cls, text: str) -> GatewayConfig:
        """From the JSON the launcher writes to the gateway's stdin."""
        doc: Mapping[str, Any] = json.loads(text)
        table = dict(doc["gateway"])
        table["accounts"] = tuple(table.get("accounts", ()))
        spec = GatewaySpec(**table)
        accounts = parse_accounts(doc["accounts"], max_clients=int(doc["max_clients"]))
        return cls._from_spec(spec, tuple(accounts[name] for name in spec.accounts), doc["prefix"],
                              doc.get("endpoint"))  # fmt: skip
