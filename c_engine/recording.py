"""Recordings: a market data set parsed once into one Parquet file, read back as the loaders' own records.

A LOBSTER day, a Binance USD-M capture or a stream of engine commands (the platform's journal, the seeded
synthetic flow) is converted once by ``record_lobster``, ``record_binance`` or ``record_commands``; a replay then
reads the recording with ``iter_recorded_lobster``, ``iter_recorded_binance`` or ``read_recorded_commands`` /
``iter_recorded_commands``, which give back exactly what the loaders give (``c_engine.lobster.Message`` and
order-book lines, ``c_engine.binance`` records, ``COMMAND_DTYPE`` arrays), so whatever consumes the loaders
consumes a recording unchanged. ``open_recording`` tells a file's kind and metadata. The format's specification,
column by column, is in docs/STRATEGIES.md ("Recordings"); this docstring says why it is so.

Choices, in the order they bite:

- **One Parquet file, one kind.** A recording holds one input (a LOBSTER pair, one capture, one command stream)
  as one table; the file's key-value metadata (keys ``proptrade.*``, values UTF-8, JSON where structured) says
  what it is: format name and version, kind, converter version, row count, the symbols (every ``SymbolConfig``
  field), the kind's parameters (LOBSTER tick and levels; Binance symbol, tick and lot; a commands origin) and
  the source files by name, size and SHA-256. Nothing depends on when or where it was written: the same input
  gives the same bytes (under the same pinned pyarrow, whose version the file names).
- **Exact.** Every value the loaders give is an integer (ticks, lots, ns, ids) and stays one: integer columns
  of the width and signedness of the value (commands: each ``COMMAND_DTYPE`` field's own type, so a block
  read back equals the original byte for byte, reserved fields included), never a float. LOBSTER messages keep
  their prices in ticks of the recorded tick, the order-book lines the file's raw units, as the loaders do. A
  value that does not fit its column is an error, never wrapped.
- **Streamed.** Rows are written in row groups (``ROW_GROUP_ROWS`` records, ``ROW_GROUP_COMMANDS`` commands) as
  the loader yields them and read back one row group at a time, so neither side holds a whole day: a full
  LOBSTER day or 10 M commands stream in bounded memory. LOBSTER's messages and its order-book lines are
  columns of one table, each read by its own iterator of only its columns (a replay streams both side by side,
  as it streams the two text files).
- **Binance's records in one table.** Snapshot, depth update, trade, book ticker and other-stream records are
  rows of one table in file order, told apart by a ``record`` column; each field has one column, null in the
  rows of records without it. A snapshot's or diff's level lists are list columns (prices and quantities
  apart, ``list<int64>``), the natural Parquet form for a variable-length list, and read back through their
  offsets without a Python object per value.
- **Compressed, checked.** zstd, dictionaries where values repeat; delta encoding for the line numbers and
  times, which only grow. Every data page carries a CRC32 that the reader verifies, so a damaged file is a
  ``RecordingError``, as is any file that is not a recording, one of a newer format version, or one of another
  kind than the reader's: a recording is never read as something it is not.
- **Light import.** pyarrow and the loaders are imported inside the functions that use them: ``import
  c_engine`` does not load pyarrow.

Errors::

    RecordingError (ValueError)   not a recording, another kind, a newer version, damaged, a value that
                                  does not fit its column, inputs that do not pair up
    LobsterError, BinanceError    the input files themselves (raised by their loaders, unchanged)
    OSError                       a file that cannot be opened (FileNotFoundError, ...)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ._config import SymbolConfig
from ._wire import COMMAND_DTYPE, COMMAND_FIELDS

if TYPE_CHECKING:
    from .binance import Message as BinanceMessage
    from .lobster import Message as LobsterMessage

__all__ = [
    "CONVERTER_VERSION",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KINDS",
    "ROW_GROUP_COMMANDS",
    "ROW_GROUP_ROWS",
    "RecordingError",
    "RecordingInfo",
    "RecordingSummary",
    "SourceFile",
    "iter_recorded_binance",
    "iter_recorded_commands",
    "iter_recorded_lobster",
    "open_recording",
    "read_recorded_commands",
    "record_binance",
    "record_commands",
    "record_lobster",
]

StrPath = str | PathLike[str]

#: the value of the ``proptrade.format`` key: what makes a Parquet file a recording
FORMAT_NAME = "proptrade.recording"
#: the layout's version: a reader refuses a file of a newer one (a change of columns or of their meaning bumps it)
FORMAT_VERSION = 1
#: the converters' version: bumped when a converter writes other values from the same input (a loader fix)
CONVERTER_VERSION = 1
#: the kinds of recording, one per converter
KINDS = ("lobster", "binance", "commands")
#: records (LOBSTER rows, Binance messages) per row group: what a reader holds at a time (a few MB)
ROW_GROUP_ROWS = 1 << 16
#: commands per row group (8 MiB of ``COMMAND_DTYPE``): the block ``iter_recorded_commands`` yields
ROW_GROUP_COMMANDS = 1 << 17

#: the metadata keys (values are UTF-8; ``symbols``, ``sources`` and ``params`` are JSON)
KEY_FORMAT, KEY_VERSION, KEY_KIND = "proptrade.format", "proptrade.format_version", "proptrade.kind"
KEY_CONVERTER, KEY_ROWS = "proptrade.converter_version", "proptrade.rows"
KEY_SYMBOLS, KEY_SOURCES, KEY_PARAMS = "proptrade.symbols", "proptrade.sources", "proptrade.params"

#: the Binance ``record`` column's codes, one per record type of ``c_engine.binance``
SNAPSHOT, DEPTH_UPDATE, TRADE, BOOK_TICKER, OTHER = 1, 2, 3, 4, 5

_COMPRESSION = "zstd"
#: columns that only grow: delta-encoded (a few bits a row) instead of through a dictionary
_DELTA_COLUMNS = frozenset(("line_no", "ts_ns", "recv_ns", "event_ns", "transact_ns"))
_HASH_CHUNK = 1 << 20
#: order-book lines made into Python lists at a time: a row group's 65,536 at once would keep that many lists
#: alive, and the cyclic GC walks them at every collection the allocations trigger (3x slower on the GOOG day)
_LINES_AT_ONCE = 1024


class RecordingError(ValueError):
    """A file that is not a usable recording of the kind asked for, or an input that cannot be recorded exactly."""


class SourceFile(NamedTuple):
    """A file a recording was converted from: its name (no directory), size and SHA-256 (hex)."""

    name: str
    bytes: int
    sha256: str


class RecordingSummary(NamedTuple):
    """What a converter wrote: ``rows`` records into ``bytes`` bytes at ``path``, from ``source_bytes`` bytes of
    input files, in ``seconds`` (monotonic clock)."""

    path: str
    kind: str
    rows: int
    bytes: int
    source_bytes: int
    seconds: float


@dataclass(frozen=True)
class RecordingInfo:
    """A recording's metadata, as ``open_recording`` read and checked it."""

    path: str
    kind: str
    format_version: int
    converter_version: int
    rows: int
    row_groups: int
    #: the file's size
    bytes: int
    #: the symbols, in engine order (a command's ``symbol_id`` is a position here)
    symbols: tuple[SymbolConfig, ...]
    sources: tuple[SourceFile, ...]
    #: lobster: ``tick``, ``levels``; binance: ``symbol``, ``tick``, ``lot``; commands: ``origin``
    params: Mapping[str, Any]


# --- schemas ---------------------------------------------------------------------------------------------------

#: LOBSTER message columns (``c_engine.lobster.Message``'s fields, in order) and their Arrow types
_LOBSTER_MESSAGE = (("line_no", "int64"), ("ts_ns", "int64"), ("type", "int8"), ("order_id", "int64"),
                    ("size", "int64"), ("price", "int64"), ("side", "int8"))  # fmt: skip
#: per level, the order-book line's 4 values (LOBSTER units), columns ``<name>_<level>`` from level 1
_LOBSTER_LEVEL = ("ask_price", "ask_size", "bid_price", "bid_size")
#: Binance columns: scalar ones (``?``: null where the record has no such field) and the level lists
_BINANCE_SCALARS = (("line_no", "int64"), ("recv_ns", "int64"), ("record", "int8"), ("event_ns", "int64?"),
                    ("transact_ns", "int64?"), ("update_id", "int64?"), ("first_id", "int64?"),
                    ("prev_final_id", "int64?"), ("trade_id", "int64?"), ("price", "int64?"), ("qty", "int64?"),
                    ("buyer_maker", "bool?"), ("trade_kind", "string?"), ("bid_price", "int64?"),
                    ("bid_qty", "int64?"), ("ask_price", "int64?"), ("ask_qty", "int64?"),
                    ("stream", "string?"))  # fmt: skip
_BINANCE_LISTS = ("bid_prices", "bid_qtys", "ask_prices", "ask_qtys")
_C_TO_ARROW = {"uint8_t": "uint8", "uint16_t": "uint16", "uint32_t": "uint32", "uint64_t": "uint64",
               "int64_t": "int64"}  # fmt: skip
#: commands: one column per ``pt_command_t`` field, of its own type
_COMMAND_COLUMNS = tuple((name, _C_TO_ARROW[ctype]) for name, ctype, _ in COMMAND_FIELDS)


def _lobster_book_columns(levels: int) -> list[str]:
    return [f"{name}_{level}" for level in range(1, levels + 1) for name in _LOBSTER_LEVEL]


def _columns(kind: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The kind's columns as (name, Arrow type name), in file order; a name ending in ``?`` is nullable, the
    others are required (never null)."""
    if kind == "lobster":
        return [*_LOBSTER_MESSAGE, *((name, "int64") for name in _lobster_book_columns(int(params["levels"])))]
    if kind == "binance":
        return [*_BINANCE_SCALARS, *((name, "list<int64>?") for name in _BINANCE_LISTS)]
    return list(_COMMAND_COLUMNS)


def _arrow_type(name: str) -> Any:
    import pyarrow as pa

    name = name.rstrip("?")
    if name == "list<int64>":
        return pa.list_(pa.int64())
    return {"string": pa.string(), "bool": pa.bool_()}.get(name) or pa.type_for_alias(name)


def _type_name(field: Any) -> str:
    """The name ``_columns`` gives an Arrow field's type (a list's item field is named differently once
    written, so a list is named by its value type)."""
    import pyarrow as pa

    t = field.type
    name = f"list<{t.value_type}>" if pa.types.is_list(t) else str(t)
    return name + "?" if field.nullable else name


def _schema(kind: str, params: Mapping[str, Any]) -> Any:
    import pyarrow as pa

    return pa.schema([pa.field(name, _arrow_type(t), nullable=t.endswith("?")) for name, t in _columns(kind, params)])


# --- metadata --------------------------------------------------------------------------------------------------


def _sha256(path: StrPath) -> SourceFile:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return SourceFile(Path(path).name, size, digest.hexdigest())


def _metadata(
    kind: str, rows: int, symbols: Sequence[SymbolConfig], sources: Sequence[SourceFile], params: Mapping[str, Any]
) -> dict[bytes, bytes]:
    def js(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    meta = {
        KEY_FORMAT: FORMAT_NAME,
        KEY_VERSION: str(FORMAT_VERSION),
        KEY_KIND: kind,
        KEY_CONVERTER: str(CONVERTER_VERSION),
        KEY_ROWS: str(rows),
        KEY_SYMBOLS: js([dataclasses.asdict(s) for s in symbols]),
        KEY_SOURCES: js([s._asdict() for s in sources]),
        KEY_PARAMS: js(dict(params)),
    }
    return {k.encode(): v.encode() for k, v in meta.items()}


def _parse_metadata(path: str, raw: Mapping[bytes, bytes] | None) -> dict[str, Any]:
    """The checked metadata (kind, versions, rows, symbols, sources, params); RecordingError if not a recording."""
    meta = {k.decode("utf-8", "replace"): v for k, v in (raw or {}).items()}
    if meta.get(KEY_FORMAT) != FORMAT_NAME.encode():
        raise RecordingError(f"{path}: a Parquet file, but not a recording (no {KEY_FORMAT} = {FORMAT_NAME})")
    try:
        version = int(meta[KEY_VERSION])
        if version > FORMAT_VERSION:
            raise RecordingError(f"{path}: a recording of format version {version}; this reader knows up to "
                                 f"{FORMAT_VERSION}")  # fmt: skip
        kind = meta[KEY_KIND].decode()
        if kind not in KINDS:
            raise RecordingError(f"{path}: unknown recording kind {kind!r} (one of {', '.join(KINDS)})")
        symbols = tuple(SymbolConfig(**s) for s in json.loads(meta[KEY_SYMBOLS]))
        sources = tuple(SourceFile(s["name"], int(s["bytes"]), s["sha256"]) for s in json.loads(meta[KEY_SOURCES]))
        params = json.loads(meta[KEY_PARAMS])
        if not isinstance(params, dict):
            raise RecordingError(f"{path}: metadata {KEY_PARAMS} is not a JSON object")
        if kind == "lobster" and not (isinstance(params.get("levels"), int) and params["levels"] > 0):
            raise RecordingError(f"{path}: metadata {KEY_PARAMS} has no positive number of levels")
        return {"kind": kind, "format_version": version, "converter_version": int(meta[KEY_CONVERTER]),
                "rows": int(meta[KEY_ROWS]), "symbols": symbols, "sources": sources, "params": params}  # fmt: skip
    except KeyError as exc:
        raise RecordingError(f"{path}: a recording without the metadata key {exc}") from None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        if isinstance(exc, RecordingError):
            raise
        raise RecordingError(f"{path}: unreadable recording metadata ({exc})") from None


def _arrow_errors() -> tuple[type[BaseException], ...]:
    """What pyarrow raises on a file it cannot read (its own errors; OSError for a damaged page or footer)."""
    import pyarrow as pa

    return (pa.ArrowException, OSError)


def _open_parquet(path: StrPath) -> tuple[Any, RecordingInfo]:
    """The open ``ParquetFile`` (page checksums verified on every read) and the checked metadata."""
    import pyarrow.parquet as pq

    where = os.fspath(path)
    size = os.stat(where).st_size  # OSError (FileNotFoundError, ...) for a file that cannot be opened at all
    try:
        pf = pq.ParquetFile(where, page_checksum_verification=True)
        info = RecordingInfo(path=where, row_groups=pf.metadata.num_row_groups, bytes=size,
                             **_parse_metadata(where, pf.metadata.metadata))  # fmt: skip
        found = [(f.name, _type_name(f)) for f in pf.schema_arrow]
    except _arrow_errors() as exc:
        raise RecordingError(f"{where}: not a readable Parquet file ({exc})") from None
    expected = _columns(info.kind, info.params)
    if found != expected:
        missing = next((f"{n}: {t}" for n, t in expected if (n, t) not in found), None)
        raise RecordingError(f"{where}: the columns of a {info.kind} recording do not match its format "
                             f"(first missing: {missing or 'none; others added or reordered'})")  # fmt: skip
    if pf.metadata.num_rows != info.rows:
        raise RecordingError(f"{where}: {pf.metadata.num_rows} rows, the metadata says {info.rows}")
    return pf, info


def open_recording(path: StrPath) -> RecordingInfo:
    """The recording's kind and metadata, checked (``RecordingError`` if it is not one)."""
    pf, info = _open_parquet(path)
    pf.close()
    return info


def _open_kind(path: StrPath, kind: str) -> tuple[Any, RecordingInfo]:
    pf, info = _open_parquet(path)
    if info.kind != kind:
        pf.close()
        raise RecordingError(f"{info.path}: a {info.kind} recording, not a {kind} one")
    return pf, info


def _row_groups(pf: Any, info: RecordingInfo, columns: list[str]) -> Iterator[Any]:
    """Each row group's ``columns`` as a Table, one at a time; a damaged page is a RecordingError. The file is
    closed when the iteration ends (or the generator is dropped)."""
    errors = _arrow_errors()
    rows = 0
    try:
        for i in range(info.row_groups):
            try:
                table = pf.read_row_group(i, columns=columns)
            except errors as exc:
                raise RecordingError(f"{info.path}: row group {i} is damaged ({exc})") from None
            rows += table.num_rows
            yield table
    finally:
        pf.close()
    if rows != info.rows:
        raise RecordingError(f"{info.path}: {rows} rows read, the metadata says {info.rows}")


# --- writing ---------------------------------------------------------------------------------------------------


def _as_array(values: Any, arrow_type: Any) -> Any:
    import pyarrow as pa

    return values if isinstance(values, pa.Array) and values.type == arrow_type else pa.array(values, type=arrow_type)


class _Writer:
    """A recording being written: to ``<out>.partial``, renamed to ``out`` by ``finish`` (so a failed conversion
    never leaves a file that looks like a recording), removed by ``abort``."""

    def __init__(self, out: StrPath, kind: str, params: Mapping[str, Any]) -> None:
        import pyarrow.parquet as pq

        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.kind = kind
        self.params = dict(params)
        self.schema = _schema(kind, params)
        self.rows = 0
        dictionary = [f.name for f in self.schema if f.name not in _DELTA_COLUMNS]
        encodings = {name: "DELTA_BINARY_PACKED" for name in self.schema.names if name in _DELTA_COLUMNS}
        self._writer = pq.ParquetWriter(self.partial, self.schema, compression=_COMPRESSION,
                                        use_dictionary=dictionary, column_encoding=encodings,
                                        write_page_checksum=True)  # fmt: skip

    def write(self, columns: Mapping[str, Any]) -> None:
        """One row group: every column as an Arrow array or numpy array of the schema's type."""
        import pyarrow as pa

        try:
            arrays = [_as_array(columns[f.name], f.type) for f in self.schema]
        except (pa.ArrowException, OverflowError, TypeError) as exc:
            raise RecordingError(f"{self.out}: a value does not fit its column ({exc})") from None
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self.rows += table.num_rows

    def finish(
        self, symbols: Sequence[SymbolConfig], sources: Sequence[SourceFile], started_ns: int
    ) -> RecordingSummary:
        self._writer.add_key_value_metadata(_metadata(self.kind, self.rows, symbols, sources, self.params))
        self._writer.close()
        os.replace(self.partial, self.out)
        return RecordingSummary(os.fspath(self.out), self.kind, self.rows, self.out.stat().st_size,
                                sum(s.bytes for s in sources), (time.monotonic_ns() - started_ns) / 1e9)  # fmt: skip

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.partial.unlink(missing_ok=True)


def _ints(values: Sequence[int], dtype: type[np.generic]) -> npt.NDArray[Any]:
    """Python ints as a numpy column; one that does not fit is an OverflowError (a RecordingError in ``write``)."""
    return np.array(values, dtype=dtype)


def record_lobster(
    message: StrPath, orderbook: StrPath, out: StrPath, tick: int = 100, *, symbol: str | None = None
) -> RecordingSummary:
    """Converts a LOBSTER message file and its order-book file (plain or gzip) into the recording ``out``.

    Row i holds message i (``c_engine.lobster.iter_messages(message, tick)``) and order-book line i
    (``iter_book_lines``): the two files must have as many lines. ``symbol`` (default: the file name's first
    ``_``-separated part, as ``proptrade engine lobster`` names it) and ``tick`` make the recorded symbol.
    """
    from .lobster import iter_book_lines, iter_messages, symbol_config

    started = time.monotonic_ns()
    symbol_name = symbol or Path(message).name.split("_")[0] or "LOBSTER"
    messages = iter_messages(message, tick)
    lines = iter_book_lines(orderbook)
    first_message, first_line = next(messages, None), next(lines, None)
    if first_message is None or first_line is None:
        raise RecordingError(f"{message if first_message is None else orderbook} is empty")
    levels = len(first_line) // 4
    writer = _Writer(out, "lobster", {"tick": tick, "levels": levels})
    book_names = _lobster_book_columns(levels)
    try:
        pending: list[tuple[LobsterMessage, list[int]]] = [(first_message, first_line)]

        def flush() -> None:
            fields = list(zip(*(m for m, _ in pending), strict=True))
            columns: dict[str, Any] = {
                column: _ints(values, np.int8 if type_name == "int8" else np.int64)
                for (column, type_name), values in zip(_LOBSTER_MESSAGE, fields, strict=True)
            }
            book = np.array([line for _, line in pending], dtype=np.int64)
            columns.update((column, book[:, j]) for j, column in enumerate(book_names))
            writer.write(columns)
            pending.clear()

        for msg, line in zip_longest(messages, lines):
            if msg is None or line is None:
                raise RecordingError(f"{message} and {orderbook} have different numbers of lines")
            pending.append((msg, line))
            if len(pending) == ROW_GROUP_ROWS:
                flush()
        if pending:
            flush()
        sources = (_sha256(message), _sha256(orderbook))
        return writer.finish([symbol_config(symbol_name, tick)], sources, started)
    except BaseException:
        writer.abort()
        raise


def iter_recorded_lobster(path: StrPath) -> tuple[Iterator[LobsterMessage], Iterator[list[int]]]:
    """The recorded messages and order-book lines, as ``iter_messages`` and ``iter_book_lines`` give them: two
    independent streams (each reads only its own columns, a row group at a time), to be consumed side by side."""
    from .lobster import Message

    pf, info = _open_kind(path, "lobster")
    pf.close()
    message_names = [name for name, _ in _LOBSTER_MESSAGE]
    book_names = _lobster_book_columns(int(info.params["levels"]))

    def messages() -> Iterator[LobsterMessage]:
        for table in _row_groups(_open_kind(path, "lobster")[0], info, message_names):
            yield from map(Message, *(table.column(name).to_numpy().tolist() for name in message_names))

    def book_lines() -> Iterator[list[int]]:
        for table in _row_groups(_open_kind(path, "lobster")[0], info, book_names):
            columns = [table.column(n).to_numpy() for n in book_names]
            for start in range(0, table.num_rows, _LINES_AT_ONCE):
                lines: list[list[int]] = np.column_stack([c[start : start + _LINES_AT_ONCE] for c in columns]).tolist()
                yield from lines

    return messages(), book_lines()


def _levels(levels: Sequence[tuple[int, int]], prices: list[int], qtys: list[int], offsets: list[int]) -> None:
    for price, qty in levels:
        prices.append(price)
        qtys.append(qty)
    offsets.append(len(prices))


def record_binance(
    path: StrPath, out: StrPath, *, symbol: str = "BTCUSDT", tick: float = 0.1, lot: float = 0.001
) -> RecordingSummary:
    """Converts a Binance USD-M collector file (plain or gzip) into the recording ``out``: every record
    ``c_engine.binance.iter_messages(path, symbol, tick, lot)`` yields, in file order."""
    import pyarrow as pa

    from .binance import BookTicker, DepthUpdate, Snapshot, Trade, iter_messages, symbol_config

    started = time.monotonic_ns()
    name = symbol.upper()
    writer = _Writer(out, "binance", {"symbol": name, "tick": tick, "lot": lot})
    scalars = [n for n, _ in _BINANCE_SCALARS]
    try:
        cols: dict[str, list[Any]] = {n: [] for n in scalars}
        flat: dict[str, list[int]] = {n: [] for n in _BINANCE_LISTS}
        offsets: dict[str, list[int]] = {"bid": [0], "ask": [0]}
        has_levels: list[bool] = []
        absent = dict.fromkeys(scalars)

        def add(row: dict[str, Any], bids: Sequence[tuple[int, int]] | None = None,
                asks: Sequence[tuple[int, int]] | None = None) -> None:  # fmt: skip
            for n in scalars:
                cols[n].append(row.get(n))
            has_levels.append(bids is not None)
            _levels(bids or (), flat["bid_prices"], flat["bid_qtys"], offsets["bid"])
            _levels(asks or (), flat["ask_prices"], flat["ask_qtys"], offsets["ask"])

        def flush() -> None:
            columns: dict[str, Any] = dict(cols)
            mask = pa.array([not h for h in has_levels], type=pa.bool_())
            for side in ("bid", "ask"):
                for part in ("prices", "qtys"):
                    values = pa.array(_ints(flat[f"{side}_{part}"], np.int64))
                    columns[f"{side}_{part}"] = pa.ListArray.from_arrays(
                        pa.array(offsets[side], type=pa.int32()), values, mask=mask
                    )
            writer.write(columns)
            for column in (*cols.values(), *flat.values(), has_levels):
                column.clear()
            offsets["bid"][:] = offsets["ask"][:] = [0]

        for msg in iter_messages(path, name, tick, lot):
            base = {**absent, "line_no": msg.line_no, "recv_ns": msg.recv_ns}
            if isinstance(msg, DepthUpdate):
                add({**base, "record": DEPTH_UPDATE, "event_ns": msg.event_ns, "transact_ns": msg.transact_ns,
                     "update_id": msg.final_id, "first_id": msg.first_id, "prev_final_id": msg.prev_final_id},
                    msg.bids, msg.asks)  # fmt: skip
            elif isinstance(msg, BookTicker):
                add({**base, "record": BOOK_TICKER, "event_ns": msg.event_ns, "transact_ns": msg.transact_ns,
                     "update_id": msg.update_id, "bid_price": msg.bid_price, "bid_qty": msg.bid_qty,
                     "ask_price": msg.ask_price, "ask_qty": msg.ask_qty})  # fmt: skip
            elif isinstance(msg, Trade):
                if type(msg.buyer_maker) is not bool or type(msg.kind) is not str:
                    raise RecordingError(f"{path}:{msg.line_no}: a trade's m is not a boolean or X not a string")
                add({**base, "record": TRADE, "event_ns": msg.event_ns, "transact_ns": msg.trade_ns,
                     "trade_id": msg.trade_id, "price": msg.price, "qty": msg.qty, "buyer_maker": msg.buyer_maker,
                     "trade_kind": msg.kind})  # fmt: skip
            elif isinstance(msg, Snapshot):
                add({**base, "record": SNAPSHOT, "event_ns": msg.event_ns, "transact_ns": msg.transact_ns,
                     "update_id": msg.last_update_id}, msg.bids, msg.asks)  # fmt: skip
            else:
                add({**base, "record": OTHER, "stream": msg.stream})
            if len(has_levels) == ROW_GROUP_ROWS:
                flush()
        if has_levels:
            flush()
        return writer.finish([symbol_config(name, tick, lot)], [_sha256(path)], started)
    except BaseException:
        writer.abort()
        raise


def _filled(table: Any, name: str, fill: Any) -> list[Any]:
    """A column as Python values, nulls as ``fill`` (through numpy: exact for integers, and fast)."""
    import pyarrow.compute as pc

    column = table.column(name)
    if column.null_count:
        column = pc.fill_null(column, fill)
    values: list[Any] = column.to_numpy().tolist()
    return values


def _level_lists(table: Any, prices: str, qtys: str) -> tuple[list[int], list[int], list[int]]:
    """A pair of list columns as flat Python values and the shared offsets (row i: ``offsets[i]:offsets[i+1]``)."""
    price_list = table.column(prices).combine_chunks()
    qty_list = table.column(qtys).combine_chunks()
    offsets = price_list.offsets.to_numpy()
    if not np.array_equal(offsets, qty_list.offsets.to_numpy()):
        raise RecordingError(f"{prices} and {qtys} have lists of different lengths")
    base = int(offsets[0]) if len(offsets) else 0
    flat_prices = price_list.values.to_numpy()[base:].tolist()
    flat_qtys = qty_list.values.to_numpy()[base:].tolist()
    return flat_prices, flat_qtys, (offsets - base).tolist()


#: the Binance integer columns, in the order ``iter_recorded_binance`` unpacks them
_BINANCE_INTS = ("line_no", "recv_ns", "event_ns", "transact_ns", "update_id", "first_id", "prev_final_id",
                 "trade_id", "price", "qty", "bid_price", "bid_qty", "ask_price", "ask_qty")  # fmt: skip


def iter_recorded_binance(path: StrPath) -> Iterator[BinanceMessage]:
    """The recorded records, as ``c_engine.binance.iter_messages`` gives them, in file order."""
    from .binance import BookTicker, DepthUpdate, OtherMessage, Snapshot, Trade

    pf, info = _open_kind(path, "binance")
    names = [n for n, _ in _BINANCE_SCALARS] + list(_BINANCE_LISTS)

    def records() -> Iterator[BinanceMessage]:
        for table in _row_groups(pf, info, names):
            kinds = table.column("record").to_numpy().tolist()
            line, recv, event, transact, update, first, prev, trade_id, price, qty, bid_p, bid_q, ask_p, ask_q = (
                _filled(table, n, 0) for n in _BINANCE_INTS
            )
            buyer_maker = _filled(table, "buyer_maker", False)
            trade_kind, stream = table.column("trade_kind").to_pylist(), table.column("stream").to_pylist()
            bp, bq, bo = _level_lists(table, "bid_prices", "bid_qtys")
            ap, aq, ao = _level_lists(table, "ask_prices", "ask_qtys")
            for i, kind in enumerate(kinds):
                if kind == BOOK_TICKER:
                    yield BookTicker(line[i], recv[i], event[i], transact[i], update[i], bid_p[i], bid_q[i],
                                     ask_p[i], ask_q[i])  # fmt: skip
                elif kind == TRADE:
                    yield Trade(line[i], recv[i], event[i], transact[i], trade_id[i], price[i], qty[i],
                                buyer_maker[i], trade_kind[i])  # fmt: skip
                elif kind == DEPTH_UPDATE or kind == SNAPSHOT:
                    bids = list(zip(bp[bo[i] : bo[i + 1]], bq[bo[i] : bo[i + 1]], strict=True))
                    asks = list(zip(ap[ao[i] : ao[i + 1]], aq[ao[i] : ao[i + 1]], strict=True))
                    if kind == DEPTH_UPDATE:
                        yield DepthUpdate(line[i], recv[i], event[i], transact[i], first[i], update[i], prev[i],
                                          bids, asks)  # fmt: skip
                    else:
                        yield Snapshot(line[i], recv[i], event[i], transact[i], update[i], bids, asks)
                elif kind == OTHER:
                    yield OtherMessage(line[i], recv[i], stream[i])
                else:
                    raise RecordingError(f"{info.path}: line {line[i]}: unknown record code {kind}")

    return records()


# --- commands --------------------------------------------------------------------------------------------------


def _blocks(commands: npt.NDArray[np.void] | Iterable[npt.NDArray[np.void]]) -> Iterator[npt.NDArray[np.void]]:
    if isinstance(commands, np.ndarray):
        yield commands
    else:
        yield from commands


def record_commands(
    commands: npt.NDArray[np.void] | Iterable[npt.NDArray[np.void]],
    symbols: Sequence[SymbolConfig],
    out: StrPath,
    *,
    sources: Iterable[StrPath] = (),
    origin: str = "",
) -> RecordingSummary:
    """Writes engine commands (one ``COMMAND_DTYPE`` array, or an iterable of blocks for a stream too long to
    hold) into the recording ``out``. ``symbols`` are the engine's symbols in id order (a journal's: the
    platform's symbol config); ``sources`` the files they came from (a journal, its SYMBOLS.toml), hashed into
    the metadata; ``origin`` says in words where they came from (``"synthetic seed=1"``)."""
    started = time.monotonic_ns()
    writer = _Writer(out, "commands", {"origin": origin})
    names = [name for name, _ in _COMMAND_COLUMNS]
    try:
        pending: list[npt.NDArray[np.void]] = []
        held = 0

        def flush(n: int) -> None:
            nonlocal held
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
            block, rest = joined[:n], joined[n:]
            writer.write({name: np.ascontiguousarray(block[name]) for name in names})
            pending[:] = [rest] if len(rest) else []
            held = len(rest)

        for block in _blocks(commands):
            if not isinstance(block, np.ndarray) or block.dtype != COMMAND_DTYPE:
                what = getattr(block, "dtype", type(block).__name__)
                raise RecordingError(f"{out}: commands must be COMMAND_DTYPE arrays, not {what!r}")
            if block.ndim != 1:
                raise RecordingError(f"{out}: a block of commands must be one-dimensional, not of shape {block.shape}")
            if len(block):
                pending.append(block)
                held += len(block)
            while held >= ROW_GROUP_COMMANDS:
                flush(ROW_GROUP_COMMANDS)
        if held:
            flush(held)
        source_files = [_sha256(s) for s in sources]
        return writer.finish(list(symbols), source_files, started)
    except BaseException:
        writer.abort()
        raise


def _fill_commands(table: Any, out: npt.NDArray[np.void]) -> None:
    """Each column of a row group into its field of ``out`` (as many rows)."""
    for name, _ in _COMMAND_COLUMNS:
        out[name] = table.column(name).to_numpy()


def iter_recorded_commands(path: StrPath) -> Iterator[npt.NDArray[np.void]]:
    """The recorded commands as ``COMMAND_DTYPE`` blocks, one per row group (``ROW_GROUP_COMMANDS`` at most),
    streamed; the symbols are ``open_recording(path).symbols``."""
    pf, info = _open_kind(path, "commands")
    names = [name for name, _ in _COMMAND_COLUMNS]

    def blocks() -> Iterator[npt.NDArray[np.void]]:
        for table in _row_groups(pf, info, names):
            block = np.zeros(table.num_rows, dtype=COMMAND_DTYPE)
            _fill_commands(table, block)
            yield block

    return blocks()


def read_recorded_commands(path: StrPath) -> tuple[list[SymbolConfig], npt.NDArray[np.void]]:
    """The recording's symbols (in engine order) and all its commands as one ``COMMAND_DTYPE`` array, what
    ``hotpath.journal.read_commands`` gives and ``Engine.execute_batch`` takes."""
    pf, info = _open_kind(path, "commands")
    out = np.zeros(info.rows, dtype=COMMAND_DTYPE)
    at = 0
    for table in _row_groups(pf, info, [name for name, _ in _COMMAND_COLUMNS]):
        _fill_commands(table, out[at : at + table.num_rows])
        at += table.num_rows
    return list(info.symbols), out
