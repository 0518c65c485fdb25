"""``proptrade up``: starts the platform from a TOML config, supervises it, shows it live, stops it cleanly.

Start order: the engine process (pinned to its core; the launcher waits until its loop runs), the market-data
bridge, the gateway (a ``[gateway]`` table: ``gateway.server``, started by module name, so hotpath imports
nothing of it; the launcher waits for its ``ready`` line), then the agents (one process per client id;
``hotpath.agents.flow`` and the inventory-skew maker ``strategies.agent`` in the embedded default, both started
by module name). Every child gets its own
session, so a Ctrl-C reaches the launcher alone and the launcher stops the children in order: agents and the
gateway first (each detaches, which cancels its orders), then the bridge, then the engine; a child that
outlives its SIGTERM by ``STOP_TIMEOUT_S`` is killed. At the end no
process of the run is left and no ``/dev/shm`` segment of its prefix (any its children left are removed and
reported).

One run per prefix: before starting anything the launcher claims the prefix (an abstract unix socket, held
for the whole run and freed by the kernel when the launcher dies, so two launchers starting at once cannot
both pass) and refuses it, with exit status 2, if another launcher holds it, a process listens on its control
endpoint, or any of its segments exists. So every segment of the prefix found at the stop was created by this
run's children, and only segments named exactly as the run's (``names.py``) are removed: those of a run whose
prefix merely starts with this one are not.

Children die with their launcher: each starts through :data:`_CHILD_START`, which asks the kernel for SIGTERM
when the launcher goes (``PR_SET_PDEATHSIG``) before running the child's module, so a SIGKILLed launcher
leaves no engine spinning and no agent trading; SIGTERM stops each of them cleanly (the engine flushes its
journal and removes its segments). The signal follows the thread that forked the child, so children are only
started on the launcher's main thread, which lives as long as the process.

Supervision: an agent that exits is restarted if its config says ``restart = true`` (at most
``max_restarts`` times, with a growing delay); the engine or the bridge dying stops the run with an error, and
so does an agent with ``ends_run = true`` (its exit with status 0 stops the run as a success).

A recorded market (``[market]``, or ``proptrade up --market SOURCE``): the market agent
(``hotpath.agents.market``) replays a LOBSTER day or a Binance USD-M capture into the engine in place of the
synthetic flow agents (``hotpath.agents.flow`` agents are not started unless ``keep_flow``). The launcher adds
the recording's symbol (named and sized by the data: ``hotpath/agents/market_replay.py``) after the config's
symbols, an account for the agent if the config has none of its name (the lowest free client id), and the agent
itself, with ``ends_run``: at the end of the recording it keeps the book (``at_end = "stay"``) or stops the run
(``"stop"``), and a replay that fails stops the run. ``move_agents`` (what ``--market`` sets) moves the agents
of the config's first symbol to the recording's, so the default maker quotes the real book. A Binance book
keeps every level a diff has touched, so its engine gets at least ``BINANCE_LEVELS`` levels a side.

Live view, once a second: the engine's commands and events per second (its shared-memory counters), the
order -> ACK and cancel -> CANCELED round trips of a probe client the launcher attaches itself (a passive
order far behind the touch, sent and cancelled in bursts of 4, ``probe_hz`` bursts a second, timed from send
to event; the launcher shares its core with the agents, so this is latency under load, not the floor), the
top of book (the launcher's own view of the market-data ring) and each maker's position and PnL as the
engine's risk state has them.

On a machine with fewer cores than processes the engine still takes its core (default: the last) and every
other process is confined to the remaining ones, where they back off when idle; with a single core the
engine's busy loop shares it with everything else, which works but is slow, and the launcher says so.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import errno
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from c_engine import Command, EngineConfig, Event, EventType, InvalidConfigError, Side, SymbolConfig

from .accounts import Account, Accounts, parse_accounts
from .bridge import DEFAULT_PUB_ENDPOINT, DEFAULT_REP_ENDPOINT
from .client import Client
from .control_client import ControlClient, ControlError, load_operator_key
from .engine_control import EngineControl
from .engine_process import EngineProcessConfig
from .md_view import BookView, control_snapshot
from .names import SHM_DIR, control_name, market_data_name, run_segments

if TYPE_CHECKING:
    from .agents.market_replay import MarketSpec

__all__ = ["DEFAULT_CONFIG", "Launcher", "MarketConfig", "PlatformConfig", "PrefixInUseError", "load_config", "run"]

STOP_TIMEOUT_S = 10.0
#: the bridge's longest idle sleep: the first market data after a silence reaches subscribers up to this late;
#: 10 ms keeps an idle bridge under 1% of a core (agents: hotpath/agents/base.py, AGENT_MAX_SLEEP_S)
BRIDGE_MAX_SLEEP_MS = 10
START_TIMEOUT_S = 30.0
#: how often the start checks whether the engine process has exited instead of starting its loop
_ENGINE_POLL_S = 0.05
#: the exit status of a run refused before it started anything (its prefix is in use)
EXIT_PREFIX_IN_USE = 2

#: How every child starts: ``python -c _CHILD_START LAUNCHER_PID MODULE ARGS...`` asks for SIGTERM when its
#: parent exits (prctl PR_SET_PDEATHSIG = 1), then checks that the parent is still the launcher (a launcher
#: that died before the prctl sends nothing: the child was reparented already) and runs MODULE as ``-m`` would,
#: with ``sys.argv[1:]`` = ARGS. Before the module installs its own SIGTERM handler the default action ends the
#: child, which has created nothing yet.
_CHILD_START = (
    "import ctypes, os, runpy, signal, sys\n"
    "launcher = int(sys.argv.pop(1))\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0) != 0:\n"
    "    raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG)')\n"
    "if os.getppid() != launcher:\n"
    "    sys.exit(f'{sys.argv[1]}: the launcher (pid {launcher}) is gone')\n"
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)\n"
)

DEFAULT_CONFIG = """\
# proptrade up: the platform that `make run` starts. Copy it (`proptrade up --print-config > my.toml`), edit,
# and run it with `proptrade up --config my.toml`. Prices in [symbols] are ticks unless the key says otherwise.

[engine]
core = "last"              # the core the engine busy-polls on: "last" or a core number
ring_capacity = 4096       # slots of each client's command ring and event ring
md_capacity = 65536        # slots of the market-data broadcast ring
heartbeat_timeout_s = 5.0  # a client silent this long is disconnected and its orders cancelled
slow_consumer_s = 2.0      # a client whose full event ring holds the engine this long is disconnected too
journal = ""               # a file to journal every accepted command to ("" = no journal)
journal_flush_ms = 5.0
snapshot_every = 0         # with a journal: snapshot the engine and start a new journal segment every N records
snapshot_keep = 2          # snapshots kept (and the journal segments from the oldest of them on)
max_orders = 262144
max_clients = 64

[[symbols]]
name = "SIM"
tick_size = 0.01
lot_size = 1
max_order_lots = 10000
band_ticks = 1000          # limit orders more than 1000 ticks from the last trade are rejected
reference_price = 10000    # the band's reference (ticks) before the first trade: 100.00

[bridge]
enabled = true
pub = "tcp://127.0.0.1:5560"   # market data, a topic per symbol
rep = "tcp://127.0.0.1:5561"   # snapshot requests

# Accounts: the names users and agents attach as; each maps to an engine client id (hotpath/accounts.py).
[[accounts]]
name = "mm_1"
client = 1
limits = { max_order_qty = 100, max_open_orders = 10, max_position = 400 }

[[accounts]]
name = "flow_1"
client = 10

[[accounts]]
name = "flow_2"
client = 11

[[accounts]]
name = "flow_3"
client = 12

[[accounts]]
name = "probe"
client = 63

# People and remote bots reach the platform through the gateway with these keys (change them: see
# docs/GATEWAY.md; a key may also come from an environment variable or a file).
[[accounts]]
name = "user_1"
client = 20
api_key = "user1-key"

[[accounts]]
name = "user_2"
client = 21
api_key = "user2-key"

[probe]
account = "probe"
hz = 50                    # bursts of 4 order/cancel round trips per second, timed

[gateway]                  # REST + WebSocket + OpenAPI docs on http://127.0.0.1:8000 (docs/GATEWAY.md)
port = 8000

# A recorded day in place of the flow agents below (or `proptrade up --market SOURCE`; docs/HOTPATH.md, "A recorded
# market"): the market agent replays it into the engine under an account "market"; the recording's symbol is added.
# [market]
# source = "lobster:AAPL_2012-06-21_34200000_57600000_message_10.csv"   # or "binance:CAPTURE.gz"
# speed = "max"            # or X times the recorded speed
# at_end = "stay"          # keep the book at the end of the recording; "stop" ends the run

[[agents]]
name = "flow"
module = "hotpath.agents.flow"
accounts = ["flow_1", "flow_2", "flow_3"]   # one process per account
symbol = "SIM"
args = ["--rate", "300", "--mid", "100"]
restart = true

[[agents]]
name = "maker"
module = "strategies.agent"               # proptrade strategy run (strategies/): any maker and its parameters
accounts = ["mm_1"]
symbol = "SIM"
args = ["--strategy", "inventory_skew", "--size", "5", "--half-spread", "0.02", "--skew", "0.002",
        "--max-position", "200", "--quote-interval", "0.001"]
restart = true
maker = true
"""


@dataclass(frozen=True)
class AgentSpec:
    name: str
    module: str
    accounts: tuple[str, ...]  #: one process per account, each attaching as that account
    symbol: str
    args: tuple[str, ...] = ()
    restart: bool = False
    max_restarts: int = 5
    maker: bool = False  #: show its position and PnL in the live view
    #: its exit stops the run (status 0: a success, as a replay that reached its end; else the run failed)
    ends_run: bool = False


@dataclass(frozen=True)
class GatewaySpec:
    """The ``[gateway]`` table: the REST/WebSocket gateway (``gateway/``), a process of its own started by module
    name (hotpath never imports it). It gets this table, the run's prefix and its accounts as JSON on stdin
    (:meth:`PlatformConfig.gateway_payload`), never on its command line, where API keys would be visible to
    every local user; it prints one ``ready URL`` line once it listens."""

    host: str = "127.0.0.1"  #: what it binds: loopback unless the config says otherwise
    port: int = 8000  #: 0: any free port (the ready line says which)
    auth: bool = True  #: API keys required; false only for local play
    #: the accounts its one link acts for (default: every account with an api_key that no agent or the probe uses)
    accounts: tuple[str, ...] = ()
    rate_per_s: float = 50.0  #: each key's request rate (a token bucket; 0 = no limit)
    rate_burst: int = 100
    max_body_bytes: int = 16384
    ws_queue: int = 1024  #: frames a WebSocket client may fall behind before it is dropped
    heartbeat_s: float = 5.0
    fills_kept: int = 10000  #: per account, for GET /fills
    module: str = "gateway.server"
    restart: bool = True
    max_restarts: int = 5


@dataclass(frozen=True)
class MarketConfig:
    """The ``[market]`` table: a recording replayed into the engine by the market agent (module docstring)."""

    spec: MarketSpec  #: what to replay (``hotpath.agents.market_replay.parse_market``)
    symbol: SymbolConfig  #: the recording's symbol, added to the platform's
    account: str = "market"
    speed: float = 0.0  #: x the recorded speed; 0: as fast as it goes ("max")
    at_end: str = "stay"  #: "stay": the book stays until the platform stops; "stop": the run stops
    delay_s: float = 0.0  #: between the opening book and the first message (strategies attach meanwhile)
    max_messages: int = 0  #: replay only the first N messages (0: all)
    progress_s: float = 2.0  #: between the agent's progress lines
    keep_flow: bool = False  #: start the synthetic flow agents too
    move_agents: bool = False  #: the agents of the config's first symbol trade the recording's instead

    def agent_args(self) -> tuple[str, ...]:
        """The market agent's arguments (after the launcher's ``--endpoint --client --symbol --seed``)."""
        speed = "max" if not self.speed else repr(self.speed)
        args = ["--source", self.spec.text(), "--speed", speed, "--at-end", self.at_end, "--delay", repr(self.delay_s),
                "--progress-s", repr(self.progress_s)]  # fmt: skip
        if self.spec.tick is not None:
            args += ["--tick", repr(self.spec.tick)]
        if self.spec.lot is not None:
            args += ["--lot", repr(self.spec.lot)]
        if self.max_messages:
            args += ["--max-messages", str(self.max_messages)]
        return tuple(args)


@dataclass(frozen=True)
class PlatformConfig:
    engine: EngineProcessConfig
    accounts: Accounts = dataclasses.field(default_factory=Accounts)
    agents: tuple[AgentSpec, ...] = ()
    bridge_pub: str | None = None  #: None: no bridge
    bridge_rep: str | None = None
    probe_account: str | None = None  #: None: no probe
    probe_hz: float = 50.0
    gateway: GatewaySpec | None = None  #: None: no gateway
    market: MarketConfig | None = None  #: None: no recorded market

    def gateway_payload(self) -> str:
        """What the gateway process reads on stdin: the run's prefix and control endpoint, the ``[gateway]``
        table and its accounts as ``[[accounts]]`` entries (``hotpath.accounts.parse_accounts`` reads them)."""
        if self.gateway is None:
            raise ValueError("the config has no [gateway]")
        accounts = []
        for name in self.gateway.accounts:
            account = self.accounts[name]
            entry: dict[str, Any] = {"name": account.name, "client": account.client_id}
            if account.limits is not None:
                entry["limits"] = dataclasses.asdict(account.limits)
            for key in ("api_key", "secret_env", "secret_file"):
                if getattr(account, key) is not None:
                    entry[key] = getattr(account, key)
            accounts.append(entry)
        return json.dumps({"prefix": self.engine.prefix, "endpoint": self.engine.endpoint,
                           "max_clients": self.engine.engine.max_clients,
                           "gateway": dataclasses.asdict(self.gateway), "accounts": accounts})  # fmt: skip


#: the keys each table of the platform config may have; anything else is a typo, refused
_TABLE_KEYS: dict[str, frozenset[str]] = {
    "engine": frozenset(
        {
            "core",
            "ring_capacity",
            "md_capacity",
            "heartbeat_timeout_s",
            "slow_consumer_s",
            "journal",
            "journal_flush_ms",
            "max_orders",
            "max_levels_per_side",
            "max_clients",
            "snapshot_every",
            "snapshot_keep",
        }
    ),  # fmt: skip
    "bridge": frozenset({"enabled", "pub", "rep"}),
    "gateway": frozenset({"enabled", *(f.name for f in dataclasses.fields(GatewaySpec))}),
    "probe": frozenset({"account", "hz"}),
    "agents": frozenset(
        {"name", "module", "accounts", "symbol", "args", "restart", "max_restarts", "maker", "ends_run"}
    ),
    "market": frozenset(
        {
            "source",
            "speed",
            "at_end",
            "account",
            "symbol",
            "tick",
            "lot",
            "delay_s",
            "max_messages",
            "progress_s",
            "keep_flow",
            "move_agents",
        }
    ),  # fmt: skip
    "symbols": frozenset(f.name for f in dataclasses.fields(SymbolConfig)),
}
_LISTS = {"agents", "symbols", "accounts"}  # arrays of tables; the rest are single tables
#: an agent's module: what ``python -m`` takes
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _keys_known(doc: dict[str, Any]) -> None:
    """ValueError for a table or a key the config format does not have (a typo would be silently ignored)."""
    for table, value in doc.items():
        if table not in _TABLE_KEYS and table != "accounts":
            raise ValueError(f"unknown table [{table}] (known: {sorted([*_TABLE_KEYS, 'accounts'])})")
        if table == "accounts":
            continue  # hotpath/accounts.py checks its own keys
        entries = value if table in _LISTS else [value]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError(f"[{table}] must be {'an array of tables' if table in _LISTS else 'a table'}")
        for entry in entries:
            if table == "agents" and ("clients" in entry or "limits" in entry):
                raise ValueError(f"agent {entry.get('name')!r}: agents name their accounts (accounts = [...]); "
                                 "client ids and limits belong to [[accounts]]")  # fmt: skip
            unknown = set(entry) - _TABLE_KEYS[table]
            if unknown:
                raise ValueError(f"[{table}]: unknown keys {sorted(unknown)} (known: {sorted(_TABLE_KEYS[table])})")


#: the longest time a config may give (heartbeats, stalls, flush periods): a day; clocks and waits overflow far
#: beyond it, and nothing of a run waits longer
MAX_CONFIG_S = 86_400.0
#: the most slots a client ring or the market-data ring may have (pt_ring.h, pt_bcast.h: 2^30)
MAX_RING_CAPACITY = 1 << 30
#: the fastest probe: bursts a second
MAX_PROBE_HZ = 10_000.0
#: the levels a side the engine holds with a Binance market: the 6-minute BTCUSDT sample reaches 5,018 bid levels
BINANCE_LEVELS = 1 << 16
#: the most levels a side an engine may hold (EngineConfig's bound)
MAX_LEVELS_PER_SIDE = 1 << 23
#: the module of the synthetic flow agents a recorded market replaces, and of the market agent
FLOW_MODULE = "hotpath.agents.flow"
MARKET_MODULE = "hotpath.agents.market"


def _number(
    table: dict[str, Any], key: str, default: float, kind: type, low: float, high: float = math.inf,
    where: str = "[engine]",
) -> Any:  # fmt: skip
    """``table[key]`` (or ``default``) as ``kind``, in ``low .. high``; ValueError naming the key otherwise."""
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ValueError(f"{where} {key} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    if not math.isfinite(value) or value < low:
        raise ValueError(f"{where} {key} must be a finite number >= {low}, not {value!r}")
    if value > high:
        raise ValueError(f"{where} {key} must be at most {int(high) if high == int(high) else high}, not {value!r}")
    return kind(value)


def _text(entry: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    """``entry[key]`` (or ``default``), a non-empty string; ValueError naming the key otherwise."""
    value = entry.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {key} must be a non-empty string, not {value!r}")
    return value


def _flag(entry: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {key} must be true or false, not {value!r}")
    return value


def _strings(entry: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {key} must be a list of strings, not {value!r}")
    return tuple(value)


def _engine_table(eng: dict[str, Any]) -> dict[str, Any]:
    """The [engine] table's values, checked: what the engine process would otherwise fail on after starting."""
    out: dict[str, Any] = {}
    for key, default in (("ring_capacity", 4096), ("md_capacity", 1 << 16)):
        n = _number(eng, key, default, int, 2, MAX_RING_CAPACITY)
        if n & (n - 1):
            raise ValueError(f"[engine] {key} must be a power of two, not {n}")
        out[key] = n
    out["max_orders"] = _number(eng, "max_orders", 1 << 18, int, 1)
    out["max_levels_per_side"] = _number(eng, "max_levels_per_side", 1 << 12, int, 1, MAX_LEVELS_PER_SIDE)
    out["max_clients"] = _number(eng, "max_clients", 64, int, 1)
    for key, default_s, high in (("heartbeat_timeout_s", 5.0, MAX_CONFIG_S), ("slow_consumer_s", 2.0, MAX_CONFIG_S),
                                 ("journal_flush_ms", 5.0, MAX_CONFIG_S * 1000)):  # fmt: skip
        out[key] = _number(eng, key, default_s, float, 0, high)
    core = eng.get("core", "last")
    allowed = sorted(os.sched_getaffinity(0))
    if core != "last" and (isinstance(core, bool) or not isinstance(core, int) or core not in allowed):
        raise ValueError(f'[engine] core must be "last" or one of the cores this process may use {allowed}, '
                         f"not {core!r}")  # fmt: skip
    out["core"] = None if core == "last" else core
    journal = eng.get("journal", "")
    if not isinstance(journal, str):
        raise ValueError(f"[engine] journal must be a path (a string), not {journal!r}")
    if journal and os.path.isdir(journal):
        raise ValueError(f"[engine] journal {journal!r} is a directory: give a file's path")
    if journal and not os.path.isdir(os.path.dirname(os.path.abspath(journal))):
        raise ValueError(f"[engine] journal {journal!r}: its directory does not exist")
    if journal and os.path.exists(journal):
        from .journal import Journal, JournalError

        try:  # the header only: the engine checks every record's checksum itself when it starts
            Journal(journal, writable=False).close()
        except (JournalError, OSError) as exc:
            raise ValueError(f"[engine] journal {journal!r} is not a usable journal: {exc}") from None
    out["journal"] = journal or None
    out["snapshot_every"] = _number(eng, "snapshot_every", 0, int, 0)
    out["snapshot_keep"] = _number(eng, "snapshot_keep", 2, int, 1)
    if out["snapshot_every"] and not journal:
        raise ValueError("[engine] snapshot_every needs a journal: set [engine] journal to a file's path")
    return out


def _symbol(entry: dict[str, Any]) -> SymbolConfig:
    name = entry.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isprintable():
        raise ValueError(f"[[symbols]] name must be 1-64 printable characters, not {name!r}")
    for key in ("tick_size", "lot_size"):
        value = entry.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"[[symbols]] {name!r}: {key} must be a finite number > 0, not {value!r}")
    try:
        return SymbolConfig(**entry)
    except (TypeError, ValueError) as e:
        raise ValueError(f"[[symbols]] {name!r}: {e}") from None


def _gateway(table: dict[str, Any] | None, accounts: Accounts, users: list[str]) -> GatewaySpec | None:
    """The ``[gateway]`` table, checked; None when it is absent or ``enabled = false``."""
    if table is None or not table.get("enabled", True):
        return None
    defaults = GatewaySpec()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(GatewaySpec):
        if f.name not in table:
            continue
        value, default = table[f.name], getattr(defaults, f.name)
        if f.name == "accounts":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"[gateway] accounts must be a list of account names, not {value!r}")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"[gateway] {f.name} must be true or false, not {value!r}")
        elif isinstance(default, (int, float)):
            whole = isinstance(default, int)
            if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or \
                    not math.isfinite(value) or value < 0:  # fmt: skip
                raise ValueError(f"[gateway] {f.name} must be {'an integer' if whole else 'a number'} >= 0, "
                                 f"not {value!r}")  # fmt: skip
        elif not isinstance(value, str) or not value:
            raise ValueError(f"[gateway] {f.name} must be a non-empty string, not {value!r}")
        values[f.name] = value
    spec = GatewaySpec(**values)
    if spec.port > 65535:
        raise ValueError(f"[gateway] port must be 0..65535, not {spec.port}")
    for key in ("rate_burst", "max_body_bytes", "ws_queue"):
        if getattr(spec, key) < 1:
            raise ValueError(f"[gateway] {key} must be at least 1")
    if "accounts" not in table:
        names = tuple(n for n, a in accounts.items() if a.api_key is not None and n not in users)
        spec = dataclasses.replace(spec, accounts=names)
    if not spec.accounts:
        raise ValueError("[gateway] has no accounts: list them (accounts = [...]) or give accounts an api_key")
    if len(set(spec.accounts)) != len(spec.accounts):
        raise ValueError(f"[gateway] accounts: a name is listed twice: {list(spec.accounts)}")
    for name in spec.accounts:
        account = accounts[name]  # AccountError (a ValueError) for a name no [[accounts]] entry has
        if name in users:
            raise ValueError(f"[gateway] account {name!r} is used by an agent or the probe: one process per account")
        if spec.auth and account.api_key is None:
            raise ValueError(f"[gateway] account {name!r} has no api_key (auth is on)")
    return spec


def _market(table: dict[str, Any]) -> MarketConfig:
    """The ``[market]`` table, checked: the source's files exist (their content is the agent's to read)."""
    from .agents.market import AT_END, parse_speed
    from .agents.market_replay import market_symbol, parse_market

    where = "[market]"
    if "source" not in table:
        raise ValueError(f"{where}: source is missing (lobster:MESSAGE[,ORDERBOOK] or binance:FILE)")
    units: dict[str, Any] = {}
    for key in ("tick", "lot"):
        if key in table:
            units[key] = _number(table, key, 0.0, float, 0, where=where)
    symbol = _text(table, "symbol", where) if "symbol" in table else None
    try:
        spec = parse_market(_text(table, "source", where), symbol=symbol, **units)
        speed_value = table.get("speed", "max")
        if isinstance(speed_value, bool) or not isinstance(speed_value, (str, int, float)):
            raise ValueError(f"speed must be 'max' or a number > 0, not {speed_value!r}")
        speed = parse_speed(speed_value)
        sym = market_symbol(spec)
    except (ValueError, OSError) as e:  # a recording's metadata that cannot be read is a ValueError too
        raise ValueError(f"{where} {e}") from None
    at_end = _text(table, "at_end", where, "stay")
    if at_end not in AT_END:
        raise ValueError(f"{where}: at_end must be one of {list(AT_END)}, not {at_end!r}")
    return MarketConfig(spec=spec, symbol=sym, account=_text(table, "account", where, "market"), speed=speed,
                        at_end=at_end, delay_s=_number(table, "delay_s", 0.0, float, 0, MAX_CONFIG_S, where),
                        max_messages=_number(table, "max_messages", 0, int, 0, where=where),
                        progress_s=_number(table, "progress_s", 2.0, float, 0, MAX_CONFIG_S, where),
                        keep_flow=_flag(table, "keep_flow", where, False),
                        move_agents=_flag(table, "move_agents", where, False))  # fmt: skip


def _with_market_account(accounts: Accounts, name: str, max_clients: int) -> Accounts:
    """``accounts`` with ``name`` added (the lowest free client id, never the launcher's own fallback id
    ``max_clients - 1``) unless it is there already."""
    if name in accounts.ids():  # (Accounts' lookup raises AccountError, not KeyError: no `in` on it)
        return accounts
    used = {a.client_id for a in accounts.values()}
    free = next((i for i in range(1, max_clients - 1) if i not in used), None)
    if free is None:
        raise ValueError(f"[market] no free client id for the account {name!r}: raise [engine] max_clients")
    return Accounts([*accounts.values(), Account(name, free)])


def load_config(text: str, *, prefix: str | None = None, market: dict[str, Any] | None = None) -> PlatformConfig:
    """Parses a platform TOML (the format of :data:`DEFAULT_CONFIG`) and checks all of it, before anything is
    started; ValueError names the table, the key and what is wrong. Checked: every key's type and range, the
    engine's capacities, symbols and account limits against what the engine accepts (``EngineConfig.check``,
    ``SymbolConfig.check``, ``ClientLimits.check``), an existing journal's header, TOML the parser cannot
    read (nested too deeply, an integer of more digits than ``int()`` takes). ``market``: ``[market]`` keys
    that override the config's (``proptrade up --market``)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"not valid TOML: {e}") from None
    except RecursionError:
        raise ValueError("not valid TOML: arrays or inline tables nested too deeply") from None
    except ValueError as e:  # an integer of more digits than int() takes: tomllib does not say where
        digits = sys.get_int_max_str_digits()
        found = re.search(rf"[0-9_]{{{digits}}}", text) if digits else None
        where = f"line {text.count(chr(10), 0, found.start()) + 1}: " if found else ""
        raise ValueError(f"not valid TOML: {where}{e}") from None
    if market:
        if "source" not in market and "market" not in doc:
            raise ValueError("--speed and --at-end are for a recorded market: give --market SOURCE")
        table = doc.get("market", {})
        doc["market"] = {**(table if isinstance(table, dict) else {}), **market}
    _keys_known(doc)
    eng = _engine_table(doc.get("engine", {}))
    symbols = tuple(_symbol(s) for s in doc.get("symbols", []))
    if not symbols and "market" not in doc:  # a recorded market brings its own
        raise ValueError("the config has no [[symbols]]")
    names = [s.name for s in symbols]
    first = names[0] if names else None  # the config's first symbol (move_agents)
    if len(set(names)) != len(names):
        raise ValueError(f"[[symbols]]: a name is used twice: {names}")
    recorded = _market(doc["market"]) if "market" in doc else None
    levels = eng["max_levels_per_side"]
    if recorded is not None:
        if recorded.symbol.name in names:
            raise ValueError(f"[market] the recording's symbol {recorded.symbol.name} is made from its data: take "
                             "it out of [[symbols]] (or give the market another name: [market] symbol)")  # fmt: skip
        symbols += (recorded.symbol,)
        names.append(recorded.symbol.name)
        if recorded.spec.kind == "binance":
            levels = max(levels, BINANCE_LEVELS)
    max_clients = eng["max_clients"]
    capacity = EngineConfig(max_orders=eng["max_orders"], max_levels_per_side=levels,
                            max_symbols=max(8, len(symbols)), max_clients=max_clients)  # fmt: skip
    try:  # what the engine process would refuse after the launcher had started it
        capacity.check()
    except InvalidConfigError as e:
        raise ValueError(f"[engine] {e}") from None
    for s in symbols:
        try:
            s.check(capacity)
        except InvalidConfigError as e:
            raise ValueError(f"[[symbols]] {s.name!r}: {e}") from None
    accounts = parse_accounts(doc.get("accounts", []), max_clients=max_clients)
    if recorded is not None:
        accounts = _with_market_account(accounts, recorded.account, max_clients)
    for account in accounts.values():
        try:
            if account.limits is not None:
                account.limits.check()
        except InvalidConfigError as e:
            raise ValueError(f"[[accounts]] {account.name!r}: limits: {e}") from None
    agents = []
    for a in doc.get("agents", []):
        missing = {"name", "module", "accounts", "symbol"} - set(a)
        if missing:
            raise ValueError(f"[[agents]] {a.get('name')!r}: missing {sorted(missing)}")
        where = f"[[agents]] {a['name']!r}"
        name = _text(a, "name", where)
        if not _MODULE.fullmatch(_text(a, "module", where)):
            raise ValueError(f"{where}: module must be a dotted module name, not {a['module']!r}")
        if a["symbol"] not in names:  # it would crash at start, again at every restart
            raise ValueError(f"{where}: no symbol {a['symbol']!r} (known: {names})")
        agents.append(AgentSpec(name=name, module=a["module"], accounts=_strings(a, "accounts", where),
                                symbol=a["symbol"], args=_strings(a, "args", where),
                                restart=_flag(a, "restart", where, False),
                                max_restarts=_number(a, "max_restarts", 5, int, 0, 1_000_000, where),
                                maker=_flag(a, "maker", where, False),
                                ends_run=_flag(a, "ends_run", where, False)))  # fmt: skip
    if recorded is not None:  # the recording replaces the synthetic flow
        if not recorded.keep_flow:
            agents = [a for a in agents if a.module != FLOW_MODULE]
        if recorded.move_agents:
            agents = [dataclasses.replace(a, symbol=recorded.symbol.name) if a.symbol == first else a
                      for a in agents]  # fmt: skip
        agents.append(AgentSpec(name="market", module=MARKET_MODULE, accounts=(recorded.account,),
                                symbol=recorded.symbol.name, args=recorded.agent_args(), ends_run=True))  # fmt: skip
    probe = doc.get("probe", {})
    hz = _number(probe, "hz", 50.0, float, 0, MAX_PROBE_HZ, "[probe]")
    probe_account = _text(probe, "account", "[probe]", "probe") if hz > 0 else None
    users = [name for a in agents for name in a.accounts] + ([probe_account] if probe_account else [])
    if len(set(users)) != len(users):
        raise ValueError(f"each account runs in one process at a time; used twice: {sorted(users)}")
    for name in users:
        accounts[name]  # AccountError (a ValueError) for a name no [[accounts]] entry has
    engine = EngineProcessConfig(
        prefix=prefix or f"pt_{os.getpid()}_{uuid.uuid4().hex[:6]}",
        clients=(),  # every client attaches through the control plane
        symbols=symbols,
        limits=tuple((a.client_id, a.limits) for a in accounts.values() if a.limits is not None),
        accounts=tuple(accounts.ids().items()),
        engine=capacity,
        ring_capacity=eng["ring_capacity"],
        md_capacity=eng["md_capacity"],
        core=eng["core"],
        journal_path=eng["journal"],
        journal_flush_ms=eng["journal_flush_ms"],
        heartbeat_timeout_s=eng["heartbeat_timeout_s"],
        slow_consumer_s=eng["slow_consumer_s"],
        snapshot_every=eng["snapshot_every"],
        snapshot_keep=eng["snapshot_keep"],
    )
    bridge = doc.get("bridge", {})
    on = _flag(bridge, "enabled", "[bridge]", True)
    for key, default in (("pub", DEFAULT_PUB_ENDPOINT), ("rep", DEFAULT_REP_ENDPOINT)):
        _text(bridge, key, "[bridge]", default)
    return PlatformConfig(
        engine=engine,
        accounts=accounts,
        agents=tuple(agents),
        bridge_pub=bridge.get("pub", DEFAULT_PUB_ENDPOINT) if on else None,
        bridge_rep=bridge.get("rep", DEFAULT_REP_ENDPOINT) if on else None,
        probe_account=probe_account,
        probe_hz=hz,
        gateway=_gateway(doc.get("gateway"), accounts, users),
        market=recorded,
    )


class PrefixInUseError(RuntimeError):
    """The run's prefix belongs to another run (or to what one left behind); nothing was started."""


def _endpoint_listens(endpoint: str) -> bool:
    """Whether a process listens on a ZeroMQ ``ipc://`` or ``tcp://`` endpoint now (a plain connect: no request,
    so no wait for a reply that never comes); other transports are not checked."""
    transport, _, address = endpoint.partition("://")
    try:
        if transport == "ipc":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect("\0" + address[1:] if address.startswith("@") else address)  # @: abstract name
            return True
        if transport == "tcp":
            host, _, port = address.rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return True
    except (OSError, ValueError):
        return False
    return False


class _Child:
    """One supervised process."""

    def __init__(self, name: str, module: str, args: list[str], cores: set[int] | None, restart: bool = False,
                 max_restarts: int = 0) -> None:  # fmt: skip
        self.name, self.module, self.args, self.cores = name, module, args, cores
        self.restart, self.max_restarts = restart, max_restarts
        self.ends_run = False  #: its exit stops the run (AgentSpec.ends_run)
        self.restarts = 0
        self.next_start = 0.0
        self.proc: subprocess.Popen[bytes] | None = None
        self.stdin_data: bytes | None = None  #: written to the child's stdin at every start (the gateway's config)

    def start(self, stdout: int | None = None, stderr: int | None = None) -> None:
        # PR_SET_PDEATHSIG fires when the forking thread exits: only the main thread, which lives as long as
        # the launcher, may start children (run() already must run there, for its signal handlers).
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("children are started on the launcher's main thread only")
        argv = [sys.executable, "-c", _CHILD_START, str(os.getpid()), self.module, *self.args]
        # Its own session: the terminal's Ctrl-C goes to the launcher only, which stops children in order.
        stdin = subprocess.PIPE if self.stdin_data is not None else None
        self.proc = subprocess.Popen(argv, start_new_session=True, stdout=stdout, stdin=stdin, stderr=stderr)
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.write(self.stdin_data or b"")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass  # it died at once: supervise() sees the exit
        if self.cores:
            try:
                os.sched_setaffinity(self.proc.pid, self.cores)
            except ProcessLookupError:
                pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)


class _StderrTail:
    """Copies a child's stderr, line by line, to the launcher's own (so the terminal shows it as before) from a
    daemon thread, and keeps its last lines: what the launcher reports when that child fails. Reading a pipe
    starts no process, so any thread may do it."""

    def __init__(self, name: str, pipe: Any, keep: int = 20) -> None:
        self._pipe = pipe
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._thread = threading.Thread(target=self._copy, name=f"{name}-stderr", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        for raw in iter(self._pipe.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            print(line, file=sys.stderr, flush=True)
        self._pipe.close()

    def last(self, timeout_s: float = 1.0) -> str:
        """The child's last non-empty stderr line once the pipe is drained (the child has exited), or ""."""
        self._thread.join(timeout_s)
        return next((line.strip() for line in reversed(self.lines) if line.strip()), "")


class _Probe:
    """Times order -> ACK and cancel -> CANCELED round trips of a passive order far behind the touch."""

    def __init__(self, client: Client, symbol_id: int, view: BookView, fallback_ticks: int) -> None:
        self.client, self.symbol_id, self.view = client, symbol_id, view
        self.fallback_ticks = fallback_ticks
        self.ack_ns: list[int] = []
        self.cancel_ns: list[int] = []
        self.all_ack_ns: list[int] = []

    def once(self, burst: int = 4) -> None:
        """``burst`` order/cancel pairs back to back. On a VM the first round trip after the launcher slept costs
        ~100 us more (a cold core); the rest show the path itself, as a client that owns its core sees it."""
        for _ in range(burst):
            self._pair()

    def _pair(self) -> None:
        bid, _ = self.view.best(self.symbol_id)
        price = max(1, (bid[0] if bid else self.fallback_ticks) - 50)
        order = Command.new(self.client.client_id, self.symbol_id, Side.BUY, 1, price, post_only=True,
                            ts_ns=time.monotonic_ns())  # fmt: skip
        ack = self._round_trip(lambda: self.client.send(order), EventType.ACK)
        if ack is None:
            return
        t, ev = ack
        self.ack_ns.append(t)
        self.all_ack_ns.append(t)
        if ev.leaves > 0:
            done = self._round_trip(lambda: self.client.cancel(ev.order_id), EventType.CANCELED)
            if done is not None:
                self.cancel_ns.append(done[0])

    def _round_trip(self, send: Callable[[], None], want: int, timeout_s: float = 0.1) -> tuple[int, Event] | None:
        t0 = time.perf_counter_ns()
        send()
        deadline = t0 + int(timeout_s * 1e9)
        while True:  # spins: a round trip takes microseconds, and the probe runs only probe_hz times a second
            for ev in self.client.poll(16):
                if ev.type == want or ev.type == EventType.REJECT:
                    return (time.perf_counter_ns() - t0, ev) if ev.type == want else None
            if time.perf_counter_ns() > deadline:
                return None


def _percentiles(ns: list[int]) -> str:
    if not ns:
        return "n/a"
    p50, p99 = np.percentile(np.asarray(ns), [50, 99])
    return f"p50 {p50 / 1e3:.1f} us, p99 {p99 / 1e3:.1f} us, max {max(ns) / 1e3:.1f} us (n={len(ns)})"


def _level(level: tuple[int, int] | None, tick_size: float) -> str:
    """A best level, (price ticks, qty), as "qty @ price"; "--" for none."""
    return f"{level[1]} @ {level[0] * tick_size:.2f}" if level else "--"


class _StopFlag:
    """The launcher's stop request, set from its SIGINT/SIGTERM handler: a plain attribute, no lock. A
    ``threading.Event`` is not safe there: ``set`` takes the lock that ``wait`` holds, so a signal landing in the
    middle of the live loop's ``wait`` made the handler wait on the main thread forever (the launcher then
    ignored every signal). The live loop sleeps its period and reads the flag."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class Launcher:
    """Runs one platform (see the module docstring)."""

    def __init__(self, config: PlatformConfig, out: TextIO = sys.stdout) -> None:
        self.config = config
        self.out = out
        self.prefix = config.engine.prefix
        self.endpoint = config.engine.endpoint
        self.children: list[_Child] = []
        self.failed: str | None = None
        self._stop = _StopFlag()
        self._claim: socket.socket | None = None
        self._engine_stderr: _StderrTail | None = None

    def claim(self) -> None:
        """Takes the prefix for this run, or raises :class:`PrefixInUseError` saying whose it is. Held until
        :meth:`release`; the kernel frees it if the launcher dies."""
        prefix = self.prefix
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0proptrade-{prefix}.up")  # the abstract namespace: no file, gone with the process
        except OSError as e:
            claim.close()
            if e.errno != errno.EADDRINUSE:
                raise
            raise PrefixInUseError(f"prefix {prefix} is in use: another proptrade up runs it") from e
        try:
            if (SHM_DIR / control_name(prefix)).exists():
                raise PrefixInUseError(f"prefix {prefix} is in use: its control block {SHM_DIR / control_name(prefix)}"
                                       " exists (a running engine; `proptrade stats` shows it)")  # fmt: skip
            if _endpoint_listens(self.endpoint):
                raise PrefixInUseError(f"prefix {prefix} is in use: a process listens on its control endpoint "
                                       f"{self.endpoint}")  # fmt: skip
            left = run_segments(prefix)
            if left:
                raise PrefixInUseError(f"prefix {prefix} is in use: segments of another run exist in {SHM_DIR}: "
                                       f"{left} (remove them if that run is gone)")  # fmt: skip
        except BaseException:
            claim.close()
            raise
        self._claim = claim

    def release(self) -> None:
        if self._claim is not None:
            self._claim.close()
            self._claim = None

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    # --- start -------------------------------------------------------------------------------------------

    def _cores(self) -> tuple[int, set[int] | None]:
        allowed = os.sched_getaffinity(0)
        core = self.config.engine.core if self.config.engine.core is not None else max(allowed)
        others = allowed - {core}
        nproc = 1 + (self.config.bridge_pub is not None) + (self.config.gateway is not None)
        nproc += sum(len(a.accounts) for a in self.config.agents)
        if not others:
            self.say(f"note: 1 core for {nproc} processes: the engine's busy loop shares it with everything")
            return core, None
        if len(allowed) < nproc:
            self.say(f"note: {len(allowed)} cores for {nproc} processes: the engine takes core {core}, "
                     f"the rest share cores {sorted(others)} and back off when idle")  # fmt: skip
        return core, others

    def start(self) -> None:
        core, others = self._cores()
        cfg = dataclasses.replace(self.config.engine, core=core)  # explicit: the child's mask may differ
        engine = _Child("engine", "hotpath.engine_process", [cfg.to_json()], None)
        engine.start(stderr=subprocess.PIPE)
        assert engine.proc is not None and engine.proc.stderr is not None
        self._engine_stderr = _StderrTail("engine", engine.proc.stderr)
        if others:
            os.sched_setaffinity(0, others)  # the launcher too keeps off the engine's core
        self.children.append(engine)
        self._wait_for_engine(engine)
        self.say(f"engine up: prefix {self.prefix}, pinned to core {core}, control {self.endpoint}")
        if self.config.bridge_pub is not None:
            symbols = ",".join(f"{i}={s.name}" for i, s in enumerate(cfg.symbols))
            bridge = _Child("bridge", "hotpath.bridge", ["--md", market_data_name(self.prefix), "--symbols", symbols,
                                                         "--pub", self.config.bridge_pub,
                                                         "--rep", str(self.config.bridge_rep),
                                                         "--control", self.endpoint,
                                                         "--max-sleep-ms", str(BRIDGE_MAX_SLEEP_MS)],
                            others)  # fmt: skip
            bridge.start(stdout=subprocess.PIPE)
            self.children.append(bridge)
            assert bridge.proc is not None and bridge.proc.stdout is not None
            line = bridge.proc.stdout.readline().decode().strip()
            if not line.startswith("ready"):
                raise RuntimeError(f"the bridge did not start (said {line!r})")
            self.say(f"bridge up: {line.removeprefix('ready ')}")
        if self.config.gateway is not None:
            self._start_gateway(self.config.gateway, others)
        for spec in self.config.agents:
            for account in spec.accounts:
                seed = self.config.accounts[account].client_id  # distinct per account, stable across runs
                args = ["--endpoint", self.endpoint, "--client", account, "--symbol", spec.symbol,
                        "--seed", str(seed), *spec.args]  # fmt: skip
                child = _Child(f"{spec.name}[{account}]", spec.module, args, others, spec.restart, spec.max_restarts)
                child.ends_run = spec.ends_run
                child.start()
                self.children.append(child)
            self.say(f"{spec.name}: {len(spec.accounts)} process(es), accounts {list(spec.accounts)}")

    def _wait_for_engine(self, engine: _Child) -> None:
        """Until the engine's loop runs; if the engine exits first, RuntimeError at once with its own last words
        (a bad journal, a core it may not use...), not a timeout START_TIMEOUT_S later."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                EngineControl(self.prefix, _ENGINE_POLL_S).close()
                return
            except TimeoutError:
                pass
            assert engine.proc is not None
            if engine.proc.poll() is not None:
                raise RuntimeError(f"the engine did not start (rc {engine.proc.returncode}){self._engine_said()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the engine's loop was not running after {START_TIMEOUT_S} s")

    def _engine_said(self) -> str:
        """The engine's last stderr line after a colon and a space, or "" if it said nothing."""
        said = self._engine_stderr.last() if self._engine_stderr is not None else ""
        return f": {said}" if said else ""

    def _start_gateway(self, spec: GatewaySpec, others: set[int] | None) -> None:
        """Starts the gateway and waits for its ``ready URL`` line (it prints nothing else on stdout)."""
        gateway = _Child("gateway", spec.module, ["--prefix", self.prefix, "--from-launcher"], others, spec.restart,
                         spec.max_restarts)  # fmt: skip
        gateway.stdin_data = self.config.gateway_payload().encode()
        gateway.start(stdout=subprocess.PIPE)
        self.children.append(gateway)
        assert gateway.proc is not None and gateway.proc.stdout is not None
        line = gateway.proc.stdout.readline().decode().strip()
        if not line.startswith("ready"):
            raise RuntimeError(f"the gateway did not start (said {line!r})")
        self.say(f"gateway up: {line.removeprefix('ready ')} (API docs at /docs), accounts {list(spec.accounts)}")

    # --- supervise ---------------------------------------------------------------------------------------

    def supervise(self) -> None:
        """Restarts agents that exited (if configured); a dead engine or bridge fails the run."""
        now = time.monotonic()
        for child in self.children:
            if child.alive() or child.proc is None:
                continue
            rc = child.proc.returncode
            if child.name in ("engine", "bridge"):
                said = self._engine_said() if child.name == "engine" else ""
                self.failed = f"the {child.name} exited (rc {rc}){said}"
                self._stop.set()
                return
            if child.ends_run:
                self.say(f"{child.name} exited (rc {rc}): stopping the run")
                if rc != 0:
                    self.failed = f"{child.name} exited (rc {rc})"
                self._stop.set()
                return
            if child.restart and child.restarts < child.max_restarts:
                if child.next_start == 0.0:
                    child.next_start = now + 0.5 * 2**child.restarts  # growing delay: no restart storm
                    self.say(f"{child.name} exited (rc {rc}); restarting in {child.next_start - now:.1f} s")
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    child.start()
                    self.say(f"{child.name} restarted ({child.restarts}/{child.max_restarts})")

    # --- run ---------------------------------------------------------------------------------------------

    def run(self, seconds: float = 0.0) -> int:
        """Starts, shows the live view until Ctrl-C/SIGTERM or ``seconds``, stops; returns the exit code (2: the
        prefix is in use, nothing was started)."""
        try:
            self.claim()
        except PrefixInUseError as e:
            print(f"proptrade up: {e}", file=sys.stderr, flush=True)
            return EXIT_PREFIX_IN_USE
        previous = {sig: signal.signal(sig, lambda *_: self._stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        probe_client: Client | None = None
        try:
            self.start()
            probe_client, view, probe = self._attach_probe()
            self._live(view, probe, seconds)
        except Exception as e:
            self.failed = self.failed or f"{type(e).__name__}: {e}"
        finally:
            if probe_client is not None:
                probe_client.close()
            self.stop()
            self.release()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.failed:
            self.say(f"FAILED: {self.failed}")
            return 1
        return 0

    def _attach_probe(self) -> tuple[Client, BookView, _Probe | None]:
        """The launcher's own client: its market-data view for the live book, and the probe if configured."""
        cfg = self.config.engine
        probe_account = self.config.probe_account
        client = Client(probe_account if probe_account is not None else cfg.engine.max_clients - 1,
                        endpoint=self.endpoint)  # fmt: skip
        view = BookView(client.market_data(), list(range(len(cfg.symbols))),
                        control_snapshot(client.request, client.symbol_names))  # fmt: skip
        view.resync()
        probe = None
        if probe_account is not None:
            probe = _Probe(client, 0, view, cfg.symbols[0].reference_price or cfg.symbols[0].min_price_ticks + 100)
        return client, view, probe

    def _live(self, view: BookView, probe: _Probe | None, seconds: float) -> None:
        control = EngineControl(self.prefix)
        # one socket for the run's position requests: the operator's, since they read every maker's account
        positions = ControlClient(self.endpoint, timeout_s=1.0, operator_key=load_operator_key(prefix=self.prefix))
        try:
            start = last = time.monotonic()
            last_counts = control.counters()
            period = 1.0 / self.config.probe_hz if probe is not None and self.config.probe_hz > 0 else 0.05
            while not self._stop.is_set():
                now = time.monotonic()
                if seconds and now - start >= seconds:
                    break
                self.supervise()
                view.poll()
                if probe is not None:
                    probe.once()
                if now - last >= 1.0:
                    counts = control.counters()
                    self.say(self._line(now - start, counts, last_counts, now - last, view, probe, positions))
                    last, last_counts = now, counts
                    if probe is not None:
                        probe.ack_ns.clear()
                        probe.cancel_ns.clear()
                time.sleep(period)  # not a wait on _stop: see _StopFlag
            if probe is not None:
                self.say(f"probe order -> ACK over the whole run: {_percentiles(probe.all_ack_ns)}")
        finally:
            positions.close()
            control.close()

    def _line(self, t: float, counts: dict[str, int], before: dict[str, int], dt: float, view: BookView,
              probe: _Probe | None, positions: ControlClient) -> str:  # fmt: skip
        rate = (counts["commands"] - before["commands"]) / dt
        evs = (counts["events"] - before["events"]) / dt
        parts = [f"t={t:5.0f}s  {rate:9,.0f} cmd/s {evs:9,.0f} evt/s  clients {counts['clients']}"
                 f"  stalls {counts['stalls']}"]  # fmt: skip
        if probe is not None:
            parts.append(f"order->ACK {_percentiles(probe.ack_ns)}")
        for sid, sym in enumerate(self.config.engine.symbols):
            bid, ask = view.best(sid)
            last = view.last_trade.get(sid)
            tick = sym.tick_size
            book = f"{sym.name} {_level(bid, tick)} | {_level(ask, tick)}"
            parts.append(f"{book} last {last[0] * tick:.2f}" if last else book)
        parts += self._makers(positions)
        return "  ".join(parts)

    def _makers(self, ctl: ControlClient) -> list[str]:
        out = []
        for spec in self.config.agents:
            if not spec.maker:
                continue
            for account in spec.accounts:
                try:
                    pos = ctl.request("position", client=account, symbol=spec.symbol)
                except (ControlError, TimeoutError):
                    continue
                out.append(f"{spec.name}[{account}] pos {pos['position']:+d} pnl {pos['pnl']:+,d}")
        return out

    # --- stop --------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Agents, then the bridge, then the engine: SIGTERM, wait, SIGKILL if need be; then checks /dev/shm for
        segments of this run (the prefix was free when claimed, so its children made them) and removes them."""
        agents = [c for c in self.children if c.name not in ("engine", "bridge")]
        for group in (agents, [c for c in self.children if c.name == "bridge"],
                      [c for c in self.children if c.name == "engine"]):  # fmt: skip
            for child in group:
                child.signal(signal.SIGTERM)
            for child in group:
                if child.proc is None:
                    continue
                try:
                    child.proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.say(f"{child.name} did not stop within {STOP_TIMEOUT_S} s: killed")
                    child.proc.kill()
                    child.proc.wait(STOP_TIMEOUT_S)
        leftovers = run_segments(self.prefix) if self._claim is not None else []
        for name in leftovers:
            try:
                os.unlink(SHM_DIR / name)
            except FileNotFoundError:
                pass
        if leftovers:
            self.say(f"removed shared-memory segments left behind: {leftovers}")
        else:
            self.say("stopped: every process exited, no shared-memory segment left")


def _config_text(data: bytes) -> str:
    """A config file's bytes as text; ValueError naming the line and column of a byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ValueError(f"line {line}: not UTF-8 (byte {data[e.start]:#04x} at column {column})") from None


def run(args: argparse.Namespace) -> int:
    """``proptrade up``."""
    if args.print_config:
        print(DEFAULT_CONFIG, end="")
        return 0
    market: dict[str, Any] = {}  # the command line's [market] keys
    if getattr(args, "market", None):
        market.update(source=args.market, move_agents=True)
    if getattr(args, "speed", None) is not None:
        market["speed"] = args.speed
    if getattr(args, "at_end", None) is not None:
        market["at_end"] = args.at_end
    try:
        text = _config_text(Path(args.config).read_bytes()) if args.config else DEFAULT_CONFIG
        config = load_config(text, prefix=args.prefix, market=market or None)
    except (OSError, ValueError) as e:  # one line, exit 2, nothing started
        where = args.config or "the default config"
        print(f"proptrade up: {where}: {e}", file=sys.stderr)
        return 2
    return Launcher(config).run(args.seconds)
