"""``proptrade engine replay``: run a command file through the engine and write what it did.

::

    proptrade engine replay COMMANDS.jsonl --symbols SYMBOLS.toml [--limits LIMITS.toml]
                            [--events EVENTS.jsonl] [--l3 L3.json] [--engine c|reference]

The symbols are added in the order of SYMBOLS.toml (ids 0, 1, 2, ...), the client limits of LIMITS.toml are set,
then the commands go through ``execute_batch`` in chunks. Outputs (formats in docs/ENGINE.md, "Command files"):

- ``--events``: every event as one JSON line, ``Event.to_dict(symbol_names)``.
- ``--l3``: the final book, ``{"AAA": {"buy": [{"order_id", "client", "side", "price", "open_qty"}, ...],
  "sell": [...]}, ...}``, every symbol, each side in priority order.
- stdout: one summary line (commands, events, trades, rejects, final state hash).

The file is streamed: parsed a chunk at a time, each chunk run as soon as it is parsed. A malformed line stops
the run there: the commands before it have run and their events are written (the events file is the exact
prefix, for debugging), no L3 file is written, ``path:LINE: reason`` goes to stderr and the exit code is 2.
Unusable SYMBOLS/LIMITS files, capacities the engine cannot have (``--max-orders`` and the others, checked by
``EngineConfig.check`` before any file is read) and unreadable paths also exit 2. Every such error is one line
on stderr. Nothing is ever skipped silently. An output
that is one of the inputs, or both outputs in one file (by any name), is refused before anything runs (exit 2).
Each output is written under a temporary name and renamed when complete: a run that fails while writing one
leaves no half file, and the earlier file of that name as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from os import PathLike
from typing import IO, Any, NamedTuple, Protocol, TextIO

import numpy as np
import numpy.typing as npt

from ._config import ClientLimits, EngineConfig, L3Order, Level, SymbolConfig
from ._errors import EngineError, InvalidConfigError
from ._types import Command, Event
from ._wire import COMMAND_DTYPE, EventType
from .commandfile import (
    CommandFileError,
    ConfigFileError,
    MalformedLineError,
    iter_commands,
    load_limits,
    load_symbols,
)

__all__ = ["ReplaySummary", "build_engine", "engine_class", "format_l3", "l3_json", "replay", "run", "written_whole"]

StrPath = str | PathLike[str]
#: commands per execute_batch call: large enough to amortise the crossing, small enough to stream
CHUNK_COMMANDS = 1 << 16
#: exit code of a malformed command file or an unusable config file
EXIT_BAD_INPUT = 2
_ENCODER = json.JSONEncoder(separators=(",", ":"))


class _ReplayEngine(Protocol):
    """What the replay tools (this module and lobster.py) use of an engine, which ``Engine`` and the pure-Python
    ``ReferenceEngine`` both have. ``execute_batch`` and ``state_hash`` are used when an engine has them."""

    symbol_names: dict[int, str]

    def add_symbol(self, cfg: SymbolConfig, /) -> int: ...

    def set_client_limits(self, client_id: int, limits: ClientLimits, /) -> None: ...

    def symbol_id(self, symbol: str | int, /) -> int: ...

    def execute(self, cmd: Command, /) -> list[Event]: ...

    def l2(self, symbol: str | int, depth: int | None = None, /) -> dict[str, list[Level]]: ...

    def l3(self, symbol: str | int, /) -> dict[str, list[L3Order]]: ...


class ReplaySummary(NamedTuple):
    commands: int
    events: int
    trades: int
    rejects: int
    #: the engine's final ``state_hash()``; None for an engine without one
    state_hash: int | None

    def line(self) -> str:
        state = "n/a" if self.state_hash is None else f"{self.state_hash:#018x}"
        return (
            f"replayed {self.commands} commands: {self.events} events, {self.trades} trades, "
            f"{self.rejects} rejects, state hash {state}"
        )


def engine_class(kind: str = "c") -> Callable[..., _ReplayEngine]:
    """``c_engine.Engine`` (``"c"``) or the pure-Python ``ReferenceEngine`` (``"reference"``), imported lazily."""
    if kind == "c":
        from c_engine import Engine

        return Engine
    if kind == "reference":
        from c_engine.reference import ReferenceEngine

        return ReferenceEngine
    raise ValueError(f"unknown engine {kind!r} (c or reference)")


def build_engine(
    symbols: Iterable[SymbolConfig],
    limits: Mapping[int, ClientLimits] | None = None,
    factory: Callable[..., _ReplayEngine] | None = None,
    config: EngineConfig | None = None,
    symbols_path: StrPath = "symbols",
    limits_path: StrPath = "limits",
) -> _ReplayEngine:
    """An engine with ``symbols`` added in order and ``limits`` set.

    A symbol or limit the engine refuses (a price domain it cannot hold, a client id beyond ``max_clients``)
    raises :class:`ConfigFileError` naming the file and table.
    """
    config = config or EngineConfig()
    engine = (factory or engine_class("c"))(config)
    refused = (EngineError, ValueError, IndexError)
    for cfg in symbols:
        try:
            cfg.check(config)  # names the field; the engine's own refusal is a bare status code
            engine.add_symbol(cfg)
        except refused as exc:
            raise ConfigFileError(symbols_path, f"[symbols.{cfg.name}]: the engine refuses it: {exc}") from None
    for client_id, client_limits in (limits or {}).items():
        try:
            client_limits.check()
            engine.set_client_limits(client_id, client_limits)
        except refused as exc:
            raise ConfigFileError(limits_path, f"[clients.{client_id}]: the engine refuses it: {exc}") from None
    return engine


def l3_json(engine: _ReplayEngine) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The whole book of every symbol, in the ``--l3`` form."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for symbol_id, name in sorted(engine.symbol_names.items()):
        book = engine.l3(symbol_id)
        out[name] = {
            side: [
                {"order_id": o.order_id, "client": o.client_id, "side": side, "price": o.price, "open_qty": o.open_qty}
                for o in book[key]
            ]
            for side, key in (("buy", "bids"), ("sell", "asks"))
        }
    return out


def format_l3(l3: Mapping[str, Mapping[str, list[dict[str, Any]]]]) -> str:
    """The ``--l3`` JSON text: one order per line, so a book diffs line by line."""
    symbols = []
    for name, book in l3.items():
        sides = []
        for side in ("buy", "sell"):
            orders = ",\n".join("      " + json.dumps(o) for o in book[side])
            sides.append(f'    "{side}": [\n{orders}\n    ]' if orders else f'    "{side}": []')
        symbols.append(f"  {json.dumps(name)}: {{\n" + ",\n".join(sides) + "\n  }")
    return "{\n" + ",\n".join(symbols) + "\n}\n" if symbols else "{}\n"


def replay(
    commands_path: StrPath,
    engine: _ReplayEngine,
    events_out: IO[str] | None = None,
    chunk: int = CHUNK_COMMANDS,
) -> ReplaySummary:
    """Run a command file through ``engine``, writing event lines to ``events_out``.

    Raises :class:`MalformedLineError` at the first malformed line, after running (and writing the events of)
    every command before it.
    """
    names: dict[int, str] = dict(engine.symbol_names)
    symbol_ids = {name: symbol_id for symbol_id, name in names.items()}
    counts = {"commands": 0, "events": 0, "trades": 0, "rejects": 0}
    pending: list[Command] = []
    # An engine without execute_batch runs one command at a time.
    execute_batch: Callable[[npt.NDArray[np.void]], npt.NDArray[np.void]] | None = getattr(
        engine, "execute_batch", None
    )

    def flush() -> None:
        if not pending:
            return
        counts["commands"] += len(pending)
        if execute_batch is not None:
            batch = np.frombuffer(b"".join(cmd.pack() for cmd in pending), dtype=COMMAND_DTYPE)
            raw = np.ascontiguousarray(execute_batch(batch))
            types = raw["type"]
            events = Event.unpack_all(raw.tobytes()) if events_out is not None else []
        else:
            events = [event for cmd in pending for event in engine.execute(cmd)]
            types = np.array([e.type for e in events], dtype=np.uint8)
        pending.clear()
        counts["events"] += len(types)
        counts["trades"] += int(np.count_nonzero(types == EventType.TRADE))
        counts["rejects"] += int(np.count_nonzero(types == EventType.REJECT))
        if events_out is not None:
            encode = _ENCODER.encode
            events_out.writelines(encode(e.to_dict(names)) + "\n" for e in events)

    try:
        for cmd in iter_commands(commands_path, symbol_ids):
            pending.append(cmd)
            if len(pending) >= chunk:
                flush()
    finally:
        flush()  # the commands before a malformed line still run: the events file is their exact prefix
    state_hash = int(engine.state_hash()) if hasattr(engine, "state_hash") else None
    return ReplaySummary(state_hash=state_hash, **counts)


def _clash(outputs: list[str], inputs: list[str]) -> str | None:
    """The first output that is one of the inputs or another output (the same file by any name), or None."""
    seen = list(inputs)
    for out in outputs:
        real = os.path.realpath(out)
        for other in seen:
            if real == os.path.realpath(other) or (
                os.path.exists(out) and os.path.exists(other) and os.path.samefile(out, other)
            ):
                return out
        seen.append(out)
    return None


@contextlib.contextmanager
def written_whole(path: str) -> Iterator[TextIO]:
    """A text file written under a temporary name and renamed to ``path`` when the block ends (an error inside
    it leaves no file, and an earlier ``path`` as it was). Every tool's output file is written this way."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        try:
            f = open(tmp, "w", encoding="utf-8")
        except OSError as exc:  # named as the path asked for, not the temporary name
            raise OSError(exc.errno, exc.strerror, path) from None
        with f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def run(args: argparse.Namespace, factory: Callable[..., _ReplayEngine] | None = None) -> int:
    """The ``engine replay`` subcommand; returns the exit code."""
    outputs = [p for p in (args.events, args.l3) if p]
    clash = _clash(outputs, [p for p in (args.commands, args.symbols, args.limits) if p])
    if clash is not None:
        print(f"{clash}: is an input or another output of this replay; refusing to overwrite it", file=sys.stderr)
        return EXIT_BAD_INPUT
    for field in ("max_orders", "max_levels_per_side", "max_clients"):
        try:  # before any file is read: the C field would take a value beyond it as an OverflowError
            replace(EngineConfig(), **{field: getattr(args, field)}).check()
        except InvalidConfigError as exc:
            print(f"--{field.replace('_', '-')}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        symbols = load_symbols(args.symbols)
        limits = load_limits(args.limits) if args.limits else {}
        config = EngineConfig(
            max_orders=args.max_orders,
            max_levels_per_side=args.max_levels_per_side,
            max_symbols=max(EngineConfig().max_symbols, len(symbols)),
            max_clients=args.max_clients,
        )
        try:
            engine = build_engine(symbols, limits, factory or engine_class(args.engine), config, args.symbols,
                                  args.limits)  # fmt: skip
        except (EngineError, MemoryError) as exc:  # capacities in the domain that this machine cannot allocate
            print(f"the engine cannot be created with {config}: {exc or 'out of memory'}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.events:
            # A malformed line ends the replay with the events of the lines before it, complete: they are kept.
            malformed: MalformedLineError | None = None
            with written_whole(args.events) as events_out:
                try:
                    summary = replay(args.commands, engine, events_out)
                except MalformedLineError as exc:
                    malformed = exc
            if malformed is not None:
                raise malformed
        else:
            summary = replay(args.commands, engine)
        if args.l3:
            with written_whole(args.l3) as f:
                f.write(format_l3(l3_json(engine)))
    except (CommandFileError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, CommandFileError):
            print(f"{exc.filename}: {exc.strerror}", file=sys.stderr)
        elif isinstance(exc, MalformedLineError):  # one line: the reason, then what the run left
            print(f"{exc}; replay stopped: the commands before that line ran, no L3 written", file=sys.stderr)
        else:
            print(exc, file=sys.stderr)
        if isinstance(exc, MalformedLineError):
            if args.l3 and os.path.exists(args.l3):
                os.remove(args.l3)  # never leave an L3 of an earlier run beside a failed one
        return EXIT_BAD_INPUT
    print(summary.line())
    return 0
