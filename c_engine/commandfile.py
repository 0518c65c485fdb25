"""The command file: JSON lines a person can write and read, and the TOML files that configure a replay.

One command stream has three forms (ARCHITECTURE.md): the journal (binary wire structs), the in-memory batch
(numpy) and this one. ``proptrade engine replay`` reads it, the differential tests write failing streams with
:func:`dump_commands`, and ``proptrade journal dump`` turns a journal into it. The format is specified in
docs/ENGINE.md, "Command files"; in short::

    {"op":"new","ts":1,"client":1,"symbol":"AAA","side":"buy","type":"limit","price":1000,"qty":5,
     "tif":"GTC","post_only":false,"stp":"NONE","cloid":7}
    {"op":"cancel","ts":2,"client":1,"order_id":3}
    {"op":"modify","ts":3,"client":1,"order_id":3,"qty":4,"price":999}      (qty and price each optional)
    {"op":"mass_cancel","ts":4,"client":1}                                   (symbol optional; "disconnect":true
                                                                              when the engine process cancels
                                                                              for a client that is gone)
    {"op":"kill_reset","ts":5,"client":1}
    {"op":"halt","ts":6,"client":65535,"symbol":"AAA"}                      (operator ops: halt, resume, kill,
    {"op":"set_limit","ts":7,"client":1,"limit":"max_position","value":400}  set_limit; a halt has no client)

Any line may also say ``"not_granted":true``: the engine loop's verdict that the link the command came on may not
act for its client (the engine rejects it, NOT_GRANTED); a journal dump writes it so the replay rejects it too.

Two kinds of bad input, kept apart on purpose:

- A **malformed line** (not JSON, not an object, no op/ts/client, a value of the wrong JSON type, an integer
  outside its wire field, a field the op does not have, a key given twice) is a broken file, not an order:
  :class:`MalformedLineError` names the line and the reason, and the run stops there.
- A **well-formed command with a bad value** is an order like any other and reaches the engine, which rejects
  it with a REJECT event: an unknown op becomes op 0; an unknown or missing side, type or tif 0; an unknown stp
  255; an unknown or missing symbol ``SYMBOL_NONE``; a client outside 0..65534 ``CLIENT_NONE``; a missing qty 0;
  a missing limit price no ``HAS_PRICE`` flag.

Names (op, side, type, tif, stp) are matched without regard to case. Each enum field, and ``symbol``, may also
be the wire code as an integer, so that any command (a fuzzer's side 7, symbol id 9) survives
:func:`command_to_json` and :func:`parse_command` unchanged: ``parse_command(command_to_json(c)) == c`` for
every command this module can represent, and :func:`command_to_json` raises ``ValueError`` for the others
(a wire field the JSON form has no place for, such as a cancel carrying a price).

Exceptions::

    CommandFileError (ValueError)
     +-- MalformedLineError   a line of a command file; .line_no, .reason, .path
     +-- ConfigFileError      SYMBOLS.toml / LIMITS.toml; .path, .reason, .line (None: not known)
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields
from os import PathLike
from typing import Any

from ._config import MAX_SYMBOLS, ClientLimits, SymbolConfig
from ._errors import InvalidConfigError
from ._types import Command
from ._wire import CLIENT_NONE, SYMBOL_NONE, Flag, Limit, Op, OrderType, Side, Stp, Tif

__all__ = [
    "CommandFileError",
    "ConfigFileError",
    "MalformedLineError",
    "command_to_json",
    "dump_commands",
    "iter_commands",
    "load_limits",
    "load_symbols",
    "parse_command",
    "read_toml",
]

StrPath = str | PathLike[str]

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
UINT8_MAX, UINT16_MAX = 0xFF, 0xFFFF
#: client ids a command file can name; anything else is sent as CLIENT_NONE (the engine rejects it)
CLIENT_MAX = CLIENT_NONE - 1
#: the code an unknown STP name maps to (0 is a valid mode, NONE)
STP_UNKNOWN = 255
#: the longest symbol name a SYMBOLS.toml may give (as an account name: short enough for any message)
SYMBOL_NAME_MAX = 64


class CommandFileError(ValueError):
    """Base class of this module's errors."""


class MalformedLineError(CommandFileError):
    """A command-file line that is not a command at all; the run stops at it."""

    def __init__(self, line_no: int, reason: str, path: StrPath | None = None) -> None:
        self.line_no = line_no
        self.reason = reason
        self.path = None if path is None else str(path)
        where = f"{self.path}:{line_no}" if self.path is not None else f"line {line_no}"
        super().__init__(f"{where}: {reason}")


class ConfigFileError(CommandFileError):
    """A SYMBOLS.toml or LIMITS.toml that cannot be used."""

    def __init__(self, path: StrPath, reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        #: the line the error is about, where it is known
        self.line = line
        super().__init__(f"{self.path}{'' if line is None else f':{line}'}: {reason}")


# --- names <-> wire codes -------------------------------------------------------------------------------------

_OP_NAMES: dict[int, str] = {op: op.name.lower() for op in Op}
_LIMIT_NAMES: dict[int, str] = {limit: limit.name.lower() for limit in Limit}
_SIDE_NAMES: dict[int, str] = {Side.BUY: "buy", Side.SELL: "sell"}
_TYPE_NAMES: dict[int, str] = {OrderType.LIMIT: "limit", OrderType.MARKET: "market"}
_TIF_NAMES: dict[int, str] = {t: t.name for t in Tif}
_STP_NAMES: dict[int, str] = {s: s.name for s in Stp}


def _by_name(names: Mapping[int, str]) -> dict[str, int]:
    return {name.lower(): int(code) for code, name in names.items()}


_OP_CODES = _by_name(_OP_NAMES)
_SIDE_CODES = _by_name(_SIDE_NAMES)
_TYPE_CODES = _by_name(_TYPE_NAMES)
_TIF_CODES = _by_name(_TIF_NAMES)
_STP_CODES = _by_name(_STP_NAMES)
_LIMIT_CODES = _by_name(_LIMIT_NAMES)

#: the fields each op has (besides op, ts and client, which every line has)
_OP_FIELDS: dict[int, frozenset[str]] = {
    Op.NEW: frozenset({"symbol", "side", "type", "price", "qty", "tif", "post_only", "stp", "cloid"}),
    Op.CANCEL: frozenset({"order_id"}),
    Op.MODIFY: frozenset({"order_id", "qty", "price"}),
    Op.MASS_CANCEL: frozenset({"symbol", "disconnect"}),
    Op.KILL_RESET: frozenset(),
    Op.HALT: frozenset({"symbol"}),
    Op.RESUME: frozenset({"symbol"}),
    Op.KILL: frozenset(),
    Op.SET_LIMIT: frozenset({"limit", "value"}),
}
#: ops whose symbol is their target, not a filter: it sets no HAS_SYMBOL flag
_SYMBOL_TARGETS = frozenset({int(Op.HALT), int(Op.RESUME)})
#: the flags each op other than new may carry (new's are POST_ONLY and HAS_PRICE)
_OP_FLAGS: dict[int, int] = {
    Op.MODIFY: Flag.HAS_QTY | Flag.HAS_PRICE,
    Op.MASS_CANCEL: Flag.HAS_SYMBOL | Flag.DISCONNECT,
}
#: the fields every line may have
_COMMON_FIELDS = frozenset({"op", "ts", "client", "not_granted"})
_ALL_FIELDS = frozenset({"order_id"}).union(_COMMON_FIELDS, *_OP_FIELDS.values())
_ALLOWED = {int(op): names | _COMMON_FIELDS for op, names in _OP_FIELDS.items()}
_ALLOWED_ANY_OP = _ALL_FIELDS

# Plain ints for the parser's hot path (IntEnum members are slower to combine and compare).
_NEW, _LIMIT, _GTC = int(Op.NEW), int(OrderType.LIMIT), int(Tif.GTC)
_POST_ONLY, _HAS_PRICE, _HAS_QTY, _HAS_SYMBOL, _DISCONNECT, _NOT_GRANTED = (
    int(f) for f in (Flag.POST_ONLY, Flag.HAS_PRICE, Flag.HAS_QTY, Flag.HAS_SYMBOL, Flag.DISCONNECT, Flag.NOT_GRANTED)
)


# --- parsing -----------------------------------------------------------------------------------------------------


class _Bad(Exception):
    """A malformed line's reason, raised inside parse_command and turned into MalformedLineError."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Bad(f"key {key!r} given twice")
            seen.add(key)
    return out


def _no_constants(name: str) -> Any:
    raise _Bad(f"{name} is not a JSON number")


def _int(obj: Mapping[str, Any], key: str, lo: int, hi: int, what: str) -> int:
    value = obj[key]
    if type(value) is not int:  # bool is an int subclass: true/false are not integers here
        raise _Bad(f"{key} must be an integer, not {json.dumps(value)}")
    if not lo <= value <= hi:
        raise _Bad(f"{key} {value} is outside the {what} range")
    return value


def _enum(obj: Mapping[str, Any], key: str, codes: Mapping[str, int], unknown: int, hi: int = UINT8_MAX) -> int:
    """A name (unknown names give ``unknown``) or the wire code as an integer."""
    value = obj[key]
    if isinstance(value, str):
        return codes.get(value.lower(), unknown)
    if type(value) is int:
        return _int(obj, key, 0, hi, "wire code")
    raise _Bad(f"{key} must be a name or a wire code, not {json.dumps(value)}")


def _symbol(obj: Mapping[str, Any], symbol_ids: Mapping[str, int]) -> int:
    value = obj["symbol"]
    if isinstance(value, str):
        return symbol_ids.get(value, SYMBOL_NONE)
    if type(value) is int:
        return _int(obj, "symbol", 0, UINT16_MAX, "symbol id")
    raise _Bad(f"symbol must be a name or a symbol id, not {json.dumps(value)}")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
#: a key followed by a number too long for int(): only searched for once the decoder has refused a line
_LONG_NUMBER = re.compile(rf'"([^"\\]{{1,64}})"\s*:\s*-?[0-9]{{{sys.get_int_max_str_digits()}}}')


def _long_number(text: str) -> str:
    """The key of the first over-long number in a line, as the error names it (``value`` inside an array)."""
    found = _LONG_NUMBER.search(text)
    return found.group(1) if found else "a value"


def _load_json(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Bad(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise _Bad("empty line")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _Bad(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:  # the decoder recurses per nested array or object
        raise _Bad("not a command: arrays or objects nested too deeply (a command is one flat object)") from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits, before any field sees it
        raise _Bad(f"{_long_number(text)}: a number of more than {sys.get_int_max_str_digits()} digits, "
                   "beyond every field's range") from None  # fmt: skip


def parse_command(obj: Any, line_no: int, symbol_ids: Mapping[str, int], path: StrPath | None = None) -> Command:
    """One command-file line (its text, or the object already decoded) as a wire ``Command``.

    ``symbol_ids`` maps symbol names to engine ids. Raises :class:`MalformedLineError` for a malformed line;
    a bad value is kept, mapped to a code the engine rejects (see the module docstring).
    """
    try:
        if isinstance(obj, (str, bytes)):
            obj = _load_json(obj)
        if not isinstance(obj, dict):
            raise _Bad(f"not a JSON object but {type(obj).__name__ if obj is not None else 'null'}")
        return _parse(obj, symbol_ids)
    except _Bad as exc:
        raise MalformedLineError(line_no, str(exc), path) from None


def _parse(obj: dict[str, Any], symbol_ids: Mapping[str, int]) -> Command:
    if not ("op" in obj and "ts" in obj and "client" in obj):
        raise _Bad("no " + repr(next(k for k in ("op", "ts", "client") if k not in obj)))
    op = _enum(obj, "op", _OP_CODES, 0)
    if not obj.keys() <= _ALLOWED.get(op, _ALLOWED_ANY_OP):
        extra = sorted(obj.keys() - _ALLOWED.get(op, _ALLOWED_ANY_OP))
        known = [k for k in extra if k in _ALL_FIELDS]
        if known:
            raise _Bad(f"op {obj['op']!r} has no field {known[0]!r}")
        raise _Bad(f"unknown field {extra[0]!r}")

    ts = _int(obj, "ts", 0, UINT64_MAX, "uint64")
    client = _int(obj, "client", INT64_MIN, INT64_MAX, "int64")
    if not 0 <= client <= CLIENT_MAX:
        client = CLIENT_NONE
    new = op == _NEW
    get = obj.get
    # The flags say which optional fields were given; which ones an op has is fixed by _OP_FIELDS above.
    flags = 0

    symbol = SYMBOL_NONE
    if "symbol" in obj:
        symbol = _symbol(obj, symbol_ids)
        if not new and op not in _SYMBOL_TARGETS:  # a new order always carries its symbol (NONE when missing)
            flags |= _HAS_SYMBOL
    side = _enum(obj, "side", _SIDE_CODES, 0) if "side" in obj else 0
    if "limit" in obj:  # SET_LIMIT: which limit, in the side byte
        side = _enum(obj, "limit", _LIMIT_CODES, 0)
    order_type = _enum(obj, "type", _TYPE_CODES, 0) if "type" in obj else (_LIMIT if new else 0)
    tif = _enum(obj, "tif", _TIF_CODES, 0) if "tif" in obj else (_GTC if new else 0)
    stp = _enum(obj, "stp", _STP_CODES, STP_UNKNOWN) if "stp" in obj else 0
    order_id = _int(obj, "order_id", 0, UINT64_MAX, "uint64") if "order_id" in obj else 0
    cloid = _int(obj, "cloid", 0, UINT64_MAX, "uint64") if "cloid" in obj else 0
    price = 0
    if "price" in obj:
        price = _int(obj, "price", INT64_MIN, INT64_MAX, "int64")
        flags |= _HAS_PRICE
    qty = 0
    if "value" in obj:  # SET_LIMIT: the new value, in the qty field
        qty = _int(obj, "value", INT64_MIN, INT64_MAX, "int64")
    if "qty" in obj:
        qty = _int(obj, "qty", INT64_MIN, INT64_MAX, "int64")
        if not new:  # a new order always carries its qty (0 when missing)
            flags |= _HAS_QTY
    post_only = get("post_only", False)
    if post_only is not False:
        if post_only is not True:
            raise _Bad(f"post_only must be true or false, not {json.dumps(post_only)}")
        flags |= _POST_ONLY
    disconnect = get("disconnect", False)
    if disconnect is not False:
        if disconnect is not True:
            raise _Bad(f"disconnect must be true or false, not {json.dumps(disconnect)}")
        flags |= _DISCONNECT
    not_granted = get("not_granted", False)
    if not_granted is not False:
        if not_granted is not True:
            raise _Bad(f"not_granted must be true or false, not {json.dumps(not_granted)}")
        flags |= _NOT_GRANTED
    return Command(op, side, symbol, client, order_type, tif, stp, flags, ts, order_id, cloid, price, qty)


def iter_commands(path: StrPath, symbol_ids: Mapping[str, int]) -> Iterator[Command]:
    """The commands of a command file, in order; raises :class:`MalformedLineError` at the first bad line."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            yield parse_command(raw.rstrip(b"\r\n"), line_no, symbol_ids, path)


# --- writing -----------------------------------------------------------------------------------------------------


def _name_or_code(names: Mapping[int, str], code: int) -> str | int:
    return names.get(code, code)


def _unrepresentable(cmd: Command, what: str) -> ValueError:
    return ValueError(f"{cmd!r} cannot be written as a command-file line: {what}")


def command_to_json(cmd: Command, symbol_names: Mapping[int, str]) -> dict[str, Any]:
    """The command-file object of ``cmd`` (the inverse of :func:`parse_command`).

    ``symbol_names`` maps engine ids to names; an id it does not name is written as the integer. Raises
    ``ValueError`` if the command has a wire field that its op's JSON form cannot carry.
    """
    op, flags = cmd.op, cmd.flags
    client = cmd.client_id if cmd.client_id <= CLIENT_MAX else CLIENT_NONE
    out: dict[str, Any] = {"op": _name_or_code(_OP_NAMES, op), "ts": cmd.ts_ns, "client": client}
    if flags & _NOT_GRANTED:  # any op may carry it; the rest of the line is the op's own form
        out["not_granted"] = True
        flags &= ~_NOT_GRANTED

    def symbol() -> str | int:
        return symbol_names.get(cmd.symbol_id, cmd.symbol_id)

    # Which wire fields the JSON form of this op can carry; everything else must hold its default.
    defaults = {"side": 0, "symbol_id": SYMBOL_NONE, "order_type": 0, "tif": 0, "stp": 0, "order_id": 0,
                "cloid": 0, "price": 0, "qty": 0}  # fmt: skip
    if op == Op.NEW:
        if flags & ~(Flag.POST_ONLY | Flag.HAS_PRICE):
            raise _unrepresentable(cmd, f"flags {flags:#x}")
        out["symbol"] = symbol()
        out["side"] = _name_or_code(_SIDE_NAMES, cmd.side)
        out["type"] = _name_or_code(_TYPE_NAMES, cmd.order_type)
        if flags & Flag.HAS_PRICE:
            out["price"] = cmd.price
        out["qty"] = cmd.qty
        out["tif"] = _name_or_code(_TIF_NAMES, cmd.tif)
        out["post_only"] = bool(flags & Flag.POST_ONLY)
        out["stp"] = _name_or_code(_STP_NAMES, cmd.stp)
        out["cloid"] = cmd.cloid
        used = {"side", "symbol_id", "order_type", "tif", "stp", "cloid", "qty"}
        used |= {"price"} if flags & Flag.HAS_PRICE else set()
    elif op in _SYMBOL_TARGETS or op == Op.SET_LIMIT:
        if flags:
            raise _unrepresentable(cmd, f"flags {flags:#x}")
        if op == Op.SET_LIMIT:
            out["limit"] = _name_or_code(_LIMIT_NAMES, cmd.side)
            out["value"] = cmd.qty
            used = {"side", "qty"}
        else:
            out["symbol"] = symbol()
            used = {"symbol_id"}
    elif op in _OP_FIELDS:
        if flags & ~_OP_FLAGS.get(op, 0):
            raise _unrepresentable(cmd, f"flags {flags:#x}")
        used = set()
        if op in (Op.CANCEL, Op.MODIFY):
            out["order_id"] = cmd.order_id
            used.add("order_id")
        if flags & Flag.HAS_QTY:
            out["qty"] = cmd.qty
            used.add("qty")
        if flags & Flag.HAS_PRICE:
            out["price"] = cmd.price
            used.add("price")
        if flags & Flag.HAS_SYMBOL:
            out["symbol"] = symbol()
            used.add("symbol_id")
        if flags & Flag.DISCONNECT:
            out["disconnect"] = True
    else:  # an unknown op: every field that is not its default, flags from presence
        if flags & ~(Flag.POST_ONLY | Flag.HAS_PRICE | Flag.HAS_QTY | Flag.HAS_SYMBOL):
            raise _unrepresentable(cmd, f"flags {flags:#x}")
        used = {"side", "order_type", "tif", "stp", "order_id", "cloid"}
        for field, key in (("side", "side"), ("order_type", "type"), ("tif", "tif"), ("stp", "stp"),
                           ("order_id", "order_id"), ("cloid", "cloid")):  # fmt: skip
            value = getattr(cmd, field)
            if value != defaults[field]:
                out[key] = value
        if flags & Flag.HAS_SYMBOL:
            out["symbol"] = symbol()
            used.add("symbol_id")
        if flags & Flag.HAS_PRICE:
            out["price"] = cmd.price
            used.add("price")
        if flags & Flag.HAS_QTY:
            out["qty"] = cmd.qty
            used.add("qty")
        if flags & Flag.POST_ONLY:
            out["post_only"] = True
    for field, default in defaults.items():
        if field not in used and getattr(cmd, field) != default:
            raise _unrepresentable(cmd, f"{field} = {getattr(cmd, field)}")
    return out


def dump_commands(commands: Iterable[Command], path: StrPath, symbol_names: Mapping[int, str]) -> None:
    """Write ``commands`` as a command file, one compact JSON object per line."""
    with open(path, "w", encoding="utf-8") as f:
        for cmd in commands:
            f.write(json.dumps(command_to_json(cmd, symbol_names), separators=(",", ":")))
            f.write("\n")


# --- SYMBOLS.toml and LIMITS.toml --------------------------------------------------------------------------------

_SYMBOL_REQUIRED = ("tick_size", "lot_size", "min_price_ticks", "max_price_ticks", "max_order_lots", "band_ticks")
_SYMBOL_OPTIONAL = ("band_bps", "reference_price", "market_band_ticks", "pnl_unit")
_LIMIT_KEYS = tuple(f.name for f in fields(ClientLimits))


class _TomlFile:
    """A TOML config file's document and text: errors name the file and, where a line scan finds it, the line of
    the key (or of its table's header) they are about."""

    def __init__(self, path: StrPath) -> None:
        self.path = path
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ConfigFileError(path, exc.strerror or str(exc)) from None
        self.text, self.doc = _parse_toml(data, path)

    def error(self, reason: str, table: tuple[str, ...] = (), key: str | None = None) -> ConfigFileError:
        return ConfigFileError(self.path, reason, _line_of(self.text, table, key))

    def table(self, name: tuple[str, ...], value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"[{'.'.join(name)}] must be a table", name[:-1], name[-1])
        return value

    def check_keys(self, table: tuple[str, ...], got: Iterable[str], allowed: Iterable[str]) -> None:
        unknown = sorted(set(got) - set(allowed))
        if unknown:
            shown = f"[{'.'.join(table)}]" if table else "top level"
            raise self.error(f"{shown}: unknown key {unknown[0]!r} (known: {', '.join(allowed)})", table, unknown[0])


def read_toml(path: StrPath) -> dict[str, Any]:
    """A TOML file's document; :class:`ConfigFileError` naming the file, and the line where one is known, for a
    file that cannot be read, bytes that are not UTF-8 and TOML that is invalid or that ``tomllib`` cannot
    read (nested too deeply, an integer of more digits than ``int()`` takes). For any config file a command
    line names: its error is one line."""
    return _TomlFile(path).doc


def _parse_toml(data: bytes, path: StrPath) -> tuple[str, dict[str, Any]]:
    """A TOML file's bytes as text and document; :class:`ConfigFileError` naming ``path`` and the line for
    anything ``tomllib`` refuses, including what it raises besides ``TOMLDecodeError``: bytes that are not UTF-8,
    arrays or inline tables nested deeper than the recursion limit, an integer of more digits than ``int()``
    takes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigFileError(path, f"not UTF-8 (byte {data[exc.start]:#04x} at column {column})", line) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(path, f"not TOML: {exc}") from None
    except RecursionError:
        raise ConfigFileError(path, "not TOML that can be read: arrays or inline tables nested too deeply") from None
    except ValueError as exc:  # an integer beyond int()'s digit limit: tomllib does not say where
        digits = sys.get_int_max_str_digits()
        long = re.search(rf"[0-9_]{{{digits}}}", text) if digits else None
        if long is None:
            raise ConfigFileError(path, f"not TOML that can be read: {exc}") from None
        raise ConfigFileError(path, f"an integer of more than {digits} digits, beyond every field's range",
                              text.count("\n", 0, long.start()) + 1) from None  # fmt: skip


#: a table header line, ``[a.b]`` (not an array of tables, which these files do not have)
_HEADER = re.compile(r"\s*\[([^\[\]]+)\]\s*(?:#.*)?$")


def _dotted(key: str) -> tuple[str, ...]:
    """``a."b.c" . d`` -> ``("a", "b.c", "d")``: a dotted TOML key's parts (escapes are not decoded)."""
    parts, part, quote = [], "", ""
    for ch in key:
        if quote:
            quote = "" if ch == quote else quote
            part += ch if quote else ""
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(part.strip())
            part = ""
        else:
            part += ch
    parts.append(part.strip())
    return tuple(parts)


def _line_of(text: str, table: tuple[str, ...], key: str | None = None) -> int | None:
    """The line where ``key`` is set in ``table`` (``()``: the top level) or where it starts as a table of its
    own, else the table's header line, else None. A line scan, not a parser: a key set by a dotted key or in an
    inline table is not found; the error then names the table alone."""
    current: tuple[str, ...] = ()
    header = None
    assign = None
    if key is not None:
        quoted = re.escape(key)
        assign = re.compile(rf"""\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*=""")
    for line_no, line in enumerate(text.split("\n"), start=1):  # TOML's newline only: as tomllib counts
        found = _HEADER.match(line)
        if found:
            current = _dotted(found.group(1))
            if current == table and header is None:
                header = line_no
            if key is not None and current[: len(table) + 1] == (*table, key):  # the key is a table itself
                return line_no
        elif assign is not None and current == table and assign.match(line):
            return line_no
    return header


def load_symbols(path: StrPath) -> list[SymbolConfig]:
    """The ``[symbols.NAME]`` tables of a SYMBOLS.toml, in file order (so ids 0, 1, 2, ... follow the file).

    Every table needs ``tick_size``, ``lot_size``, ``min_price_ticks``, ``max_price_ticks``, ``max_order_lots``
    and ``band_ticks``; ``band_bps``, ``reference_price``, ``market_band_ticks`` and ``pnl_unit`` are optional.
    Any other key is an error that names it, and so is a value outside what the engine accepts
    (``SymbolConfig.check``): the file, the line, the table and the key.
    """
    toml = _TomlFile(path)
    toml.check_keys((), toml.doc, ["symbols"])
    symbols = toml.table(("symbols",), toml.doc.get("symbols", {}))
    if not symbols:
        raise toml.error("no [symbols.NAME] table")
    if len(symbols) > MAX_SYMBOLS:
        raise toml.error(f"{len(symbols)} symbols: an engine holds at most {MAX_SYMBOLS}")
    out = []
    for name, raw in symbols.items():
        table = ("symbols", name)
        if not (0 < len(name) <= SYMBOL_NAME_MAX and name.isprintable()):
            shown = json.dumps(name[:SYMBOL_NAME_MAX]) + ("..." if len(name) > SYMBOL_NAME_MAX else "")
            raise toml.error(f"[symbols.{shown}]: a symbol name is 1 to {SYMBOL_NAME_MAX} printable characters", table)
        where = f"symbols.{name}"
        values = toml.table(table, raw)
        toml.check_keys(table, values, _SYMBOL_REQUIRED + _SYMBOL_OPTIONAL)
        missing = [k for k in _SYMBOL_REQUIRED if k not in values]
        if missing:
            raise toml.error(f"[{where}]: missing key {missing[0]!r}", table)
        for key, value in values.items():
            if key in ("tick_size", "lot_size"):
                if type(value) not in (int, float) or not value > 0:
                    raise toml.error(f"[{where}]: {key} must be a positive number, not {value!r}", table, key)
            elif type(value) is not int:
                raise toml.error(f"[{where}]: {key} must be an integer, not {value!r}", table, key)
        cfg = SymbolConfig(name=name, **values)
        try:
            cfg.check()
        except InvalidConfigError as exc:  # its message starts with the field's name
            raise toml.error(f"[{where}]: {exc}", table, str(exc).split(" ", 1)[0]) from None
        out.append(cfg)
    return out


def load_limits(path: StrPath) -> dict[int, ClientLimits]:
    """The client limits of a LIMITS.toml: ``{client_id: ClientLimits}``, by ascending client id.

    ``[clients.N]`` gives client N's limits; ``[default]`` gives values for every client listed under
    ``[clients]`` (a client's own keys win). Keys are the fields of ``ClientLimits``, non-negative integers,
    0 = off; a key not given is off. Clients not listed have no limits. An error names the file, the line, the
    table and the key.
    """
    toml = _TomlFile(path)
    toml.check_keys((), toml.doc, ["clients", "default"])
    default = toml.table(("default",), toml.doc.get("default", {}))
    clients = toml.table(("clients",), toml.doc.get("clients", {}))
    toml.check_keys(("default",), default, _LIMIT_KEYS)
    _check_limits(toml, ("default",), default, {})
    out: dict[int, ClientLimits] = {}
    for key, raw in clients.items():
        table = ("clients", key)
        # the length first: int() of a key of thousands of digits is itself an error
        if not (key.isascii() and key.isdigit() and len(key) <= 5 and int(key) <= CLIENT_MAX):
            shown = key if len(key) <= 20 and key.isprintable() else json.dumps(key[:20]) + "..."
            raise toml.error(f"[clients.{shown}]: a client id is an integer 0..{CLIENT_MAX}", table)
        values = toml.table(table, raw)
        toml.check_keys(table, values, _LIMIT_KEYS)
        limits = _check_limits(toml, table, values, default)
        if int(key) in out:
            raise toml.error(f"[clients.{key}]: client {int(key)} given twice", table)
        out[int(key)] = limits
    return dict(sorted(out.items()))


def _check_limits(
    toml: _TomlFile, table: tuple[str, ...], values: dict[str, Any], default: dict[str, Any]
) -> ClientLimits:
    """The limits of ``table``, its own ``values`` over ``default``'s; an error names the table a bad value is
    set in."""
    merged = {**default, **values}

    def where(name: str) -> tuple[str, ...]:
        return table if name in values else ("default",)

    for name, value in merged.items():
        if type(value) is not int or value < 0:
            reason = f"{name} must be a non-negative integer, not {value!r}"
            raise toml.error(f"[{'.'.join(where(name))}]: {reason}", where(name), name)
    limits = ClientLimits(**merged)
    try:
        limits.check()
    except InvalidConfigError as exc:  # its message starts with the field's name
        name = str(exc).split(" ", 1)[0]
        raise toml.error(f"[{'.'.join(table)}]: {exc}", where(name), name) from None
    return limits
