"""Recorded market data as feature inputs: one call per data kind, each giving a ``MarketData``.

A predictor trains on ``batch_features`` over a ``BookSeries`` and a ``TradeSeries``; this module builds those
from what a user has, and names the data by a hash so that a model file can say what it was trained on and
``proptrade ml eval`` can refuse to score a model on its own training data.

- **lobster**: a LOBSTER day, message file and order-book file (plain or gzip): the order-book rows at each
  applied message and the visible executions (``ml.features.lobster_batch_inputs``). Given the message file, the
  order-book file is the same name with ``message`` replaced by ``orderbook``.
- **synthetic**: ``synthetic:COMMANDS[:SEED]``, the seeded flow of ``strategies.backtest.SyntheticSource`` (the
  very flow a backtest replays, so a model trained on seed 1 can be backtested on seed 2), run through an engine
  and recorded; the batch inputs are that run replayed one command at a time
  (``ml.features.synthetic_batch_inputs``).
- **commands**: a Parquet recording of engine commands (``c_engine.recording.record_commands``: the platform's
  journal, a recorded live session, a synthetic stream), run through an engine, then as for synthetic.
- **binance**: a Binance USD-M capture (the collector's lines, plain or gzip) or its Parquet recording
  (``c_engine.record_binance``): the L2 book rebuilt by the replay's rules and its executed trades, one sample
  per exchange millisecond with messages (``ml.features.binance_batch_inputs``). Read as BTCUSDT (tick 0.1, lot
  0.001) unless told another symbol, tick and lot; a recording says its own.

The kind is told from the name and the first bytes (``data_kind``): ``synthetic:`` names the flow; a Parquet
file is a Binance or a commands recording as its metadata says; a file whose first line is
``<digits> {json}`` is a Binance capture; anything else is a LOBSTER message file.

The data hash is the SHA-256 of the input files' bytes (LOBSTER: both files), or of the commands' bytes
(synthetic and commands), 16 hex digits: the same data gives the same hash wherever it lies.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from c_engine import COMMAND_DTYPE, EVENT_DTYPE, SymbolConfig

from .features import (
    BookSeries,
    SyntheticSession,
    TradeSeries,
    binance_batch_inputs,
    lobster_batch_inputs,
    read_binance,
    synthetic_batch_inputs,
)

__all__ = ["DATA_KINDS", "DataError", "MarketData", "data_kind", "load_data", "load_synthetic", "parse_synthetic"]

#: the data kinds ``load_data`` reads
DATA_KINDS = ("lobster", "synthetic", "commands", "binance")
#: the first line of a Binance collector file: receive time (ns), a space, a JSON object
_BINANCE_LINE = re.compile(rb"[0-9]{1,19} \{")
_GZIP_MAGIC = b"\x1f\x8b"
#: the prefix of a synthetic data name: ``synthetic:COMMANDS[:SEED]``
SYNTHETIC_PREFIX = "synthetic:"


class DataError(ValueError):
    """Data that cannot be read as the kind asked for, or a name that names no data."""


@dataclass(frozen=True)
class MarketData:
    """Feature inputs of one recorded or generated session, and what names it."""

    book: BookSeries
    trades: TradeSeries
    #: the kind and the name as given (a path, or ``synthetic:N:SEED``)
    kind: str
    name: str
    #: 16 hex digits of the SHA-256 of the data (see the module docstring)
    data_hash: str
    symbol: SymbolConfig

    @property
    def samples(self) -> int:
        return len(self.book.ts_ns)


def data_kind(name: str) -> str:
    """The kind a data name has (see the module docstring): ``synthetic:...``; a Parquet recording, ``binance``
    or ``commands`` by its metadata; a Binance collector file by its first line; else LOBSTER."""
    if name.startswith(SYNTHETIC_PREFIX):
        return "synthetic"
    path = Path(name)
    try:
        with path.open("rb") as f:
            head = f.read(4)
            if head == b"PAR1":
                from c_engine import open_recording
                from c_engine.recording import RecordingError

                try:
                    return "binance" if open_recording(path).kind == "binance" else "commands"
                except RecordingError:
                    return "commands"  # its reader says what is wrong with it
        opener = gzip.open if head[:2] == _GZIP_MAGIC else open
        with opener(path, "rb") as g:
            first = g.readline(64)
    except (OSError, EOFError):
        return "commands" if name.endswith(".parquet") else "lobster"  # the loader reports the file
    return "binance" if _BINANCE_LINE.match(first) else "lobster"


def load_data(
    name: str,
    kind: str | None = None,
    *,
    tick: int = 100,
    symbol: str = "BTCUSDT",
    tick_size: float = 0.1,
    lot_size: float = 0.001,
) -> MarketData:
    """The data ``name`` names, read as ``kind`` (default: ``data_kind(name)``); ``tick`` is LOBSTER's tick in
    its price units (100: one cent); ``symbol``, ``tick_size`` and ``lot_size`` are a Binance capture's."""
    kind = kind or data_kind(name)
    if kind == "synthetic":
        n, seed = parse_synthetic(name)
        return load_synthetic(n, seed)
    if kind == "lobster":
        return _load_lobster(Path(name), tick)
    if kind == "commands":
        return _load_commands(Path(name))
    if kind == "binance":
        return _load_binance(Path(name), symbol, tick_size, lot_size)
    raise DataError(f"unknown data kind {kind!r}; choose one of {', '.join(DATA_KINDS)}")


def parse_synthetic(name: str) -> tuple[int, int]:
    """(commands, seed) of a name ``synthetic:COMMANDS[:SEED]``."""
    parts = name.removeprefix(SYNTHETIC_PREFIX).split(":")
    try:
        n = int(parts[0])
        seed = int(parts[1]) if len(parts) > 1 else 1
    except (ValueError, IndexError):
        raise DataError(f"synthetic data is named synthetic:COMMANDS[:SEED], not {name!r}") from None
    if n <= 0 or len(parts) > 2:
        raise DataError(f"synthetic data is named synthetic:COMMANDS[:SEED] with COMMANDS > 0, not {name!r}")
    return n, seed


def _file_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def _load_lobster(message: Path, tick: int) -> MarketData:
    from c_engine.lobster import symbol_config

    if "message" not in message.name:
        raise DataError(f"{message}: a LOBSTER message file has 'message' in its name (the order-book file is found "
                        "by replacing it with 'orderbook')")  # fmt: skip
    orderbook = message.with_name(message.name.replace("message", "orderbook"))
    for path in (message, orderbook):
        if not path.is_file():
            raise DataError(f"{path}: no such file")
    book, trades, _ = lobster_batch_inputs(message, orderbook, tick)
    symbol = symbol_config(message.name.split("_")[0] or "LOBSTER", tick)
    return MarketData(book, trades, "lobster", str(message), _file_hash(message, orderbook), symbol)


def _load_binance(path: Path, symbol: str, tick: float, lot: float) -> MarketData:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        capture = read_binance(path, symbol, tick, lot)
    except ValueError as e:  # a BinanceError or RecordingError names the file and line; no snapshot
        raise DataError(str(e)) from None
    book, trades = binance_batch_inputs(capture)
    return MarketData(book, trades, "binance", str(path), _file_hash(path), capture.symbol)


class _Recorder:
    """An engine that keeps every batch of commands it executes and the events they gave."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.commands: list[npt.NDArray[np.void]] = []
        self.events: list[npt.NDArray[np.void]] = []

    def execute_batch(self, commands: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
        events: npt.NDArray[np.void] = self.engine.execute_batch(commands)
        self.commands.append(np.array(commands, copy=True))
        self.events.append(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def _joined(blocks: list[npt.NDArray[np.void]], dtype: np.dtype[np.void]) -> npt.NDArray[np.void]:
    # As bytes: numpy re-lays a dtype with overlapping fields (the wire's unions) when it concatenates.
    if not blocks:
        return np.zeros(0, dtype=dtype)
    return np.concatenate([np.ascontiguousarray(b).view(np.uint8) for b in blocks]).view(dtype)


def _from_session(session: SyntheticSession, kind: str, name: str) -> MarketData:
    book, trades, _ = synthetic_batch_inputs(session)
    digest = hashlib.sha256(np.ascontiguousarray(session.commands).view(np.uint8).tobytes()).hexdigest()[:16]
    return MarketData(book, trades, kind, name, digest, session.symbol)


def load_synthetic(n: int, seed: int = 1, mean_gap_ns: int = 1_000_000) -> MarketData:
    """``n`` commands of the backtest's synthetic flow (``SyntheticSource(n, seed=seed)``), recorded."""
    from c_engine import Engine, EngineConfig
    from strategies.backtest import SyntheticSource

    source = SyntheticSource(n, seed=seed, mean_gap_ns=mean_gap_ns)
    engine = Engine(EngineConfig())
    symbol = source.symbols()[0]
    engine.add_symbol(symbol)
    recorder = _Recorder(engine)
    source.open(engine)
    while (t := source.peek_ns()) is not None:
        source.run_until(recorder, t + 1_000_000_000)  # type: ignore[arg-type]  # the recorder stands in
    session = SyntheticSession(symbol, _joined(recorder.commands, COMMAND_DTYPE), _joined(recorder.events, EVENT_DTYPE))
    return _from_session(session, "synthetic", f"{SYNTHETIC_PREFIX}{n}:{seed}")


def _load_commands(path: Path) -> MarketData:
    from c_engine import Engine, EngineConfig
    from c_engine.recording import RecordingError, read_recorded_commands

    try:
        symbols, commands = read_recorded_commands(path)
    except RecordingError as e:
        raise DataError(str(e)) from None
    if len(symbols) != 1:
        raise DataError(f"{path}: features are of one symbol; the recording has {len(symbols)}")
    engine = Engine(EngineConfig())
    engine.add_symbol(symbols[0])
    events = engine.execute_batch(commands)
    return _from_session(SyntheticSession(symbols[0], commands, events), "commands", str(path))
