"""``Engine``: the C matching engine in-process, through cffi.

Two layers:

- wire units (ticks, lots): ``execute(Command)`` and ``execute_batch(numpy array)``, what replays, tests
  and backtests use;
- human units: ``submit``/``cancel``/``modify``/``mass_cancel``, which convert prices and sizes exactly
  (``OffTickError``/``OffLotError``, never rounding) and call the engine once per command.

Every call returns the command's events: a list of ``Event`` tuples from ``execute`` (its callers read them
all), an ``Events`` sequence that decodes each one when read from the human-unit calls (decoding them all was
a third to a half of such a call, and a caller mostly reads one), a numpy array of ``EVENT_DTYPE`` for a
batch. The engine's event buffer is always drained before a call returns.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ._cengine import ffi, lib  # cffi's generated extension: no stubs (pyproject.toml's mypy overrides)
from ._config import ClientLimits, EngineConfig, L3Order, Level, Position, SymbolConfig
from ._errors import CorruptStateError, EngineError, UnknownSymbolError, error_for_status
from ._orders import _DEFAULT_TIF, _OP_CANCEL, _POST_ONLY, _SIDES, _STPS, _TIFS, _TYPES, pack_new_order
from ._types import COMMAND_STRUCT, EVENT_STRUCT, Command, Event, Events, _make_event
from ._units import SymbolUnits, Units
from ._wire import COMMAND_DTYPE, EVENT_DTYPE, MSG_SIZE, SYMBOL_NONE, Side

__all__ = ["Book", "Engine", "SnapshotError", "SnapshotInfo"]

_BOOK_SIDES = (("bids", Side.BUY), ("asks", Side.SELL))  # the keys of l2 and l3, as on every book

#: a cffi cdata (a C pointer or struct): cffi is untyped, so it is Any to a type checker
_CData = Any
# Bound once: attribute lookups are a visible part of a 1 us call. Typed here, as cffi's lib is untyped: each
# returns a C int (an event count or a status); cffi converts each argument, raising TypeError or OverflowError
# for one that does not fit its C type, which the callers rely on.
_submit_one: Callable[..., int] = lib.py_submit_one
_new_order: Callable[..., int] = lib.py_new_order
_new_limit: Callable[..., int] = lib.py_new_limit
_cancel: Callable[..., int] = lib.py_cancel
_CONVERT_IN_PYTHON: int = lib.PY_CONVERT_IN_PYTHON
_monotonic_ns = time.monotonic_ns
_submit_batch: Callable[..., int] = lib.py_submit_batch
_run_until_watched: Callable[..., int] = lib.py_run_until_watched
_pack_command = COMMAND_STRUCT.pack_into
_iter_unpack = EVENT_STRUCT.iter_unpack
# Events are built as object.__new__(Events) and their _raw set, without calling Events(raw): a Python
# __init__ cost ~100 ns, a tenth of a submit. The bytes are copied by memoryview.tobytes() from a view made
# once per event count (_event_views), ~50 ns less than ffi.unpack or slicing the view each time.
_new_object = object.__new__
_EVENT_VIEWS = 16  # a command's event counts that have a view ready (most have 1 to 4)
# Engine keeps a py_shape_t per combination of names a caller has used. Names are few, but post_only may be
# any truthy or falsy value, each a key of its own: past this many, a combination is converted every call.
_MAX_SHAPES = 1024


class SnapshotInfo(NamedTuple):
    """What a snapshot file says about itself (``pt_snapshot_info_t``, ``include/pt_snapshot.h``)."""

    #: journal records whose effect the state includes (the caller's count; the engine only keeps it)
    journal_position: int
    #: the journal segment that continues after it (the caller's)
    segment: int
    #: the writer's configuration fingerprint (the caller's; 0 = none)
    config_hash: int
    #: ``state_hash()`` of the state it holds (checked again after a load)
    state_hash: int
    #: the engine's command count
    commands: int
    #: resting orders
    live_orders: int
    #: the file's size
    bytes: int


_SNAPSHOT_REASONS = {
    -20: "cannot be read or written",
    -21: "no memory for it",
    -22: "not a snapshot (bad magic)",
    -23: "a snapshot of another format version",
    -24: "not the size its header says (a torn or cut write)",
    -25: "fails its checksum",
    -26: "taken from an engine of other capacities or symbols",
    -27: "cannot be loaded into an engine that has run commands",
    -28: "contradicts itself (its checksum holds)",
    -29: "invalid arguments",
}


class SnapshotError(EngineError, OSError):
    """A snapshot that cannot be written, read or loaded; ``code`` is the ``pt_snapshot_rc``, ``path`` the file.
    An ``OSError`` too (``errno`` set when the file system said why)."""

    def __init__(self, path: str, code: int, detail: str = "") -> None:
        err = ffi.errno if code == lib.PT_SNAPSHOT_EIO else 0
        what = _SNAPSHOT_REASONS.get(code, "unusable")
        if err:
            what += f": {os.strerror(err)}"
        OSError.__init__(self, err or errno.EIO, f"{path}: snapshot {what}{detail} (pt_snapshot rc {code})")
        self.code = code
        self.path = path
        self.filename = path

    def __str__(self) -> str:
        return str(self.strerror)


def _snapshot_error(name: str, rc: int, info: Any) -> SnapshotError:
    """The error for ``rc`` from reading the snapshot ``name``; a bad checksum names both values."""
    detail = ""
    if rc == lib.PT_SNAPSHOT_EBADCRC:
        detail = f" (CRC32C {info.stored_crc:#010x} stored, {info.computed_crc:#010x} computed)"
    return SnapshotError(name, rc, detail)


def _snapshot_info(info: Any) -> SnapshotInfo:
    return SnapshotInfo(*(int(getattr(info, f)) for f in SnapshotInfo._fields))


class Book(NamedTuple):
    """Top of a book in human units: (price, size, order count) per level, best first."""

    symbol: str
    bids: list[tuple[float, float, int]]
    asks: list[tuple[float, float, int]]


def _event_capacity(engine: _CData) -> int:
    stats = ffi.new("pt_engine_stats_t *")
    lib.pt_engine_stats(engine, stats)
    return int(stats.event_capacity)


def _check(status: int, what: str) -> None:
    if status < 0:
        raise error_for_status(status, what)


class Engine(SymbolUnits):
    """The C engine. Symbols, clients and limits are configured first; then commands go in, events come out."""

    def __init__(self, config: EngineConfig | None = None, **overrides: int) -> None:
        self.config = EngineConfig(**{**asdict(config or EngineConfig()), **overrides})
        cfg = ffi.new("pt_engine_config_t *")
        cfg.max_orders = self.config.max_orders
        cfg.max_levels_per_side = self.config.max_levels_per_side
        cfg.max_symbols = self.config.max_symbols
        cfg.max_clients = self.config.max_clients
        out = ffi.new("pt_engine_t **")
        _check(lib.pt_engine_create(cfg, out), "pt_engine_create")
        self._e = ffi.gc(out[0], lib.pt_engine_destroy)
        count = ffi.new("size_t *")
        events = lib.pt_engine_events(self._e, count)
        # The single-call path: commands are packed into _cmd and events read in place from _events.
        self._cmd = bytearray(MSG_SIZE)
        self._cmd_ptr = ffi.from_buffer("pt_command_t *", self._cmd)
        self._watch_out: tuple[Any, Any, Any] | None = None  # the batch calls' out-parameters, made once
        self._watch_block: tuple[Any, Any, Any, int] | None = None  # execute_until_watched_raw's last block
        capacity = _event_capacity(self._e)
        self._events = memoryview(ffi.buffer(events, capacity * MSG_SIZE))
        self._event_views = [self._events[: k * MSG_SIZE] for k in range(min(capacity, _EVENT_VIEWS) + 1)]
        self._symbols: dict[str, int] = {}
        self._units: list[Units] = []
        # submit's py_shape_t * per combination of names. The hot path's: nested dicts, symbol -> side -> type
        # -> tif -> post_only -> stp, one subscript per name (~40% cheaper than building and hashing a tuple
        # key); only for a str symbol, as an int symbol must not be served by an equal float or numpy number,
        # which symbol_id rejects. On the way there, every symbol's by (symbol id, side, type, tif, post_only,
        # stp).
        self._shapes: dict[object, Any] = {}  # looked up with any name, so keyed by object; values nest
        self._hot_shapes = 0
        self._shapes_by_id: dict[tuple[object, ...], _CData] = {}
        self.symbol_names: dict[int, str] = {}

    @property
    def _handle(self) -> int:
        """The raw ``pt_engine_t *`` as an int, for C code in another cffi module (``hotpath._cloop``'s loop).
        Valid while this Engine lives; nothing else may call the engine while that code runs."""
        return int(ffi.cast("uintptr_t", self._e))

    # ---- configuration -------------------------------------------------------

    def add_symbol(self, symbol: SymbolConfig | str, **fields: Any) -> int:
        """Adds a symbol (a ``SymbolConfig``, or its name and fields) and returns its id."""
        cfg = symbol if isinstance(symbol, SymbolConfig) else SymbolConfig(name=symbol, **fields)
        if cfg.name in self._symbols:
            raise ValueError(f"symbol {cfg.name!r} already added")
        units = Units(cfg.tick_size, cfg.lot_size)
        c = ffi.new("pt_symbol_config_t *")
        for field in ("min_price_ticks", "max_price_ticks", "max_order_lots", "band_ticks", "band_bps",
                      "reference_price", "market_band_ticks", "pnl_unit"):  # fmt: skip
            setattr(c, field, getattr(cfg, field))
        sid = ffi.new("uint16_t *")
        _check(lib.pt_engine_add_symbol(self._e, c, sid), f"add_symbol {cfg.name}")
        self._symbols[cfg.name] = sid[0]
        self._units.append(units)
        self.symbol_names[sid[0]] = cfg.name
        return int(sid[0])

    def set_client_limits(self, client_id: int, limits: ClientLimits | None = None, **fields: int) -> None:
        """Sets a client's risk limits (a ``ClientLimits``, or its fields); 0 switches a limit off."""
        lim = limits or ClientLimits(**fields)
        c = ffi.new("pt_client_limits_t *")
        for field, value in asdict(lim).items():
            setattr(c, field, value)
        _check(lib.pt_engine_set_client_limits(self._e, client_id, c), f"set_client_limits {client_id}")

    def client_limits(self, client_id: int) -> ClientLimits:
        """A client's limits now (set by :meth:`set_client_limits` or by SET_LIMIT commands)."""
        c = ffi.new("pt_client_limits_t *")
        _check(lib.pt_engine_client_limits(self._e, client_id, c), f"client_limits {client_id}")
        return ClientLimits(**{f: int(getattr(c, f)) for f in asdict(ClientLimits())})

    def symbol_id(self, symbol: str | int) -> int:
        if isinstance(symbol, int):
            if symbol not in self.symbol_names:
                raise UnknownSymbolError(symbol)
            return symbol
        try:
            return self._symbols[symbol]
        except KeyError:
            raise UnknownSymbolError(symbol) from None

    # ---- wire units ------------------------------------------------------------

    def _run(self, cmd: Command) -> int:
        """Runs one command; its event count (its failure status raised)."""
        _pack_command(self._cmd, 0, cmd.op, cmd.side, cmd.symbol_id, cmd.client_id, cmd.order_type, cmd.tif,
                      cmd.stp, cmd.flags, 0, 0, cmd.ts_ns, cmd.order_id, cmd.cloid, cmd.price, cmd.qty, 0)  # fmt: skip
        n = _submit_one(self._e, self._cmd_ptr)
        if n < 0:
            _check(n, "submit")
        return n

    def _copy_events(self, n: int) -> Events:
        """The ``n`` events of the command just run (``n`` < 0: its failure status, raised)."""
        if n < 0:
            _check(n, "submit")
        try:
            view = self._event_views[n]
        except IndexError:
            view = self._events[: n * MSG_SIZE]
        events = _new_object(Events)
        events._raw = view.tobytes()
        return events

    def execute(self, cmd: Command) -> list[Event]:
        """Runs one command (ticks and lots) and returns its events."""
        return list(map(_make_event, _iter_unpack(self._events[: self._run(cmd) * MSG_SIZE])))

    def execute_batch(self, commands: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
        """Runs a numpy array of ``COMMAND_DTYPE`` in order; returns all their events as ``EVENT_DTYPE``.

        One C call runs the whole batch unless its events outgrow the engine's event buffer (sized for the
        worst command, 4 events per resting order); then it runs in as many calls as that takes.
        """
        if commands.dtype != COMMAND_DTYPE:
            raise TypeError(f"commands must have dtype COMMAND_DTYPE, not {commands.dtype}")
        commands = np.ascontiguousarray(commands)
        base = ffi.cast("const pt_command_t *", ffi.from_buffer(commands))
        if self._watch_out is None:
            self._watch_out = (ffi.new("size_t *"), ffi.new("size_t *"), ffi.new("int *"))
        done, count, _ = self._watch_out
        n = len(commands)
        status = _submit_batch(self._e, base, n, done, count)
        if status != 0 and done[0] == 0:
            _check(status, "submit_batch")
        if done[0] == n:  # the usual case, one call: its events copied once, as execute_until_watched does
            events = np.frombuffer(bytearray(self._events[: count[0] * MSG_SIZE]), dtype=EVENT_DTYPE)
            lib.pt_engine_clear_events(self._e)
            return events
        # The events outgrew the buffer: raw bytes, viewed as EVENT_DTYPE at the end (numpy cannot resize or
        # copy a dtype with overlapping fields, the wire's unions, as a whole, only as bytes).
        out = np.empty(max(16, 3 * n) * MSG_SIZE, dtype=np.uint8)
        filled = count[0] * MSG_SIZE
        out[:filled] = np.frombuffer(self._events[:filled], dtype=np.uint8)
        start = done[0]
        while start < n:
            status = _submit_batch(self._e, base + start, n - start, done, count)
            if status != 0 and done[0] == 0:
                _check(status, "submit_batch")
            size = count[0] * MSG_SIZE
            if filled + size > len(out):
                grown = np.empty(max(2 * len(out), filled + size), dtype=np.uint8)
                grown[:filled] = out[:filled]
                out = grown
            out[filled : filled + size] = np.frombuffer(self._events[:size], dtype=np.uint8)
            filled += size
            start += done[0]
        lib.pt_engine_clear_events(self._e)
        return out[:filled].view(EVENT_DTYPE)

    def execute_until_watched(
        self, commands: npt.NDArray[np.void], watch_symbol: int, watch_client: int
    ) -> tuple[int, bool, npt.NDArray[np.void]]:
        """Runs ``commands`` in order until the first one that concerns a watcher: an event of its own for
        ``watch_client``, a trade on ``watch_symbol``, or a change of ``watch_symbol``'s top of book (py_glue.h).
        Returns (commands run, whether it stopped at a watched one, their events as ``EVENT_DTYPE``). The
        commands that concern nobody run back to back in C; a backtest hands Python only the watched ones.
        It may also stop early, unwatched, when the event buffer is full: run the rest in another call."""
        done, watched, raw = self.execute_until_watched_raw(commands, watch_symbol, watch_client)
        return done, watched, np.frombuffer(raw, dtype=EVENT_DTYPE)

    def execute_until_watched_raw(
        self,
        commands: npt.NDArray[np.void],
        watch_symbol: int,
        watch_client: int,
        start: int = 0,
        stop: int | None = None,
    ) -> tuple[int, bool, bytearray]:
        """:meth:`execute_until_watched` on ``commands[start:stop]``, with the events as their wire bytes
        (``MSG_SIZE`` each). A backtest calls it per strategy reaction, a few commands at a time out of one
        block: the block's address is kept from the last call (slicing and viewing it each time, and viewing the
        bytes as ``EVENT_DTYPE``, cost more than the run: numpy checks a view to a dtype with overlapping fields,
        the wire's unions, at every call)."""
        cached = self._watch_block
        if cached is not None and cached[0] is commands:
            base, n = cached[2], cached[3]
        else:
            if commands.dtype != COMMAND_DTYPE:
                raise TypeError(f"commands must have dtype COMMAND_DTYPE, not {commands.dtype}")
            contiguous = np.ascontiguousarray(commands)
            base, n = ffi.cast("const pt_command_t *", ffi.from_buffer(contiguous)), len(contiguous)
            self._watch_block = (commands, contiguous, base, n)  # the arrays kept alive with their address
        stop = n if stop is None else min(stop, n)
        if not 0 <= start <= stop:
            raise IndexError(f"commands[{start}:{stop}] of {n}")
        if self._watch_out is None:  # made once: a backtest calls this per strategy reaction
            self._watch_out = (ffi.new("size_t *"), ffi.new("size_t *"), ffi.new("int *"))
        done, count, watched = self._watch_out
        status = _run_until_watched(self._e, base + start, stop - start, watch_symbol, watch_client, done, count,
                                    watched)  # fmt: skip
        if status != 0 and done[0] == 0:
            _check(status, "run_until_watched")
        raw = bytearray(self._events[: count[0] * MSG_SIZE])
        lib.pt_engine_clear_events(self._e)
        return int(done[0]), bool(watched[0]), raw

    # ---- human units ---------------------------------------------------------------

    def submit(
        self,
        client: int,
        symbol: str | int,
        side: str | int,
        qty: float,
        price: float | None = None,
        *,
        type: str = "limit",
        tif: str | None = None,
        post_only: bool = False,
        stp: str = "NONE",
        cloid: int = 0,
        ts_ns: int | None = None,
    ) -> Events:
        """A new order in human units. ``tif`` defaults to GTC for a limit and IOC for a market order."""
        if ts_ns is None:
            ts_ns = _monotonic_ns()
        try:
            shape = self._shapes[symbol][side][type][tif][post_only][stp]
        except (KeyError, TypeError):  # not seen yet, or a name that is not hashable
            shape = None
        if shape is None:  # outside the except clause: an error raised here has no KeyError as its context
            shape = self._shape(symbol, side, type, tif, post_only, stp)
        n = _CONVERT_IN_PYTHON
        c: object  # the class of qty, then of price (an annotation only: no code is run for it)
        # Only a float or an int (exactly: not a subclass, not bool) is converted in C as Units would: cffi
        # would turn a Decimal or a numpy scalar into a double through __float__, rounding it. Tested with
        # `is`, not membership in a set of the two (~30 ns less a call).
        if shape is not None and ((c := qty.__class__) is float or c is int):
            # One crossing converts, packs and runs the order (the Python packing and conversion below cost
            # more than the engine). Any argument it cannot take as pack_new_order would (a value outside its
            # field, a size beyond a double's exact integers) leaves it to pack_new_order, which raises the
            # same error as ever: C runs nothing unless it converted everything.
            try:
                if (c := price.__class__) is float or c is int:
                    n = _new_limit(shape, client, cloid, ts_ns, price, qty)
                elif price is None:
                    n = _new_order(shape, 0, client, cloid, ts_ns, 0.0, qty)
            except (OverflowError, TypeError):
                pass
        if n == _CONVERT_IN_PYTHON:
            sid = self._symbols[symbol] if isinstance(symbol, str) else self.symbol_id(symbol)
            pack_new_order(self._cmd, 0, self._units[sid], sid, client, side, qty, price, type, tif, post_only,
                           stp, cloid, ts_ns)  # fmt: skip
            n = _submit_one(self._e, self._cmd_ptr)
        # _copy_events, inline (a call level costs ~100 ns).
        if n < 0:
            _check(n, "submit")
        try:
            view = self._event_views[n]
        except IndexError:
            view = self._events[: n * MSG_SIZE]
        events = _new_object(Events)
        events._raw = view.tobytes()
        return events

    def _shape(self, symbol: str | int, side: str | int, type: str, tif: str | None, post_only: bool,
               stp: str) -> _CData | None:  # fmt: skip
        """submit's py_shape_t for these names, kept for the next order with them; None if a name is not one
        (pack_new_order then raises its error). An unknown symbol raises here, first, as it always has."""
        sid = self._symbols[symbol] if isinstance(symbol, str) else self.symbol_id(symbol)
        try:
            order_type = _TYPES[type]
            codes = (_SIDES[side], order_type, _TIFS[tif] if tif else _DEFAULT_TIF[order_type], _STPS[stp],
                     _POST_ONLY if post_only else 0)  # fmt: skip
        except (KeyError, TypeError):
            return None
        try:
            shape = self._shapes_by_id[sid, side, type, tif, post_only, stp]
        except TypeError:  # post_only is not hashable (every other name was a dict key above): no caching
            return self._new_shape(sid, codes)
        except KeyError:
            shape = self._new_shape(sid, codes)
            if len(self._shapes_by_id) < _MAX_SHAPES:
                self._shapes_by_id[sid, side, type, tif, post_only, stp] = shape
        if symbol.__class__ is str and self._hot_shapes < _MAX_SHAPES:
            level = self._shapes
            for name in (symbol, side, type, tif, post_only):
                level = level.setdefault(name, {})
            level[stp] = shape
            self._hot_shapes += 1
        return shape

    def _new_shape(self, sid: int, codes: tuple[int, int, int, int, int]) -> _CData:
        u = self._units[sid]
        units = (u.tick, u._per_tick, u._tick_tol, u.lot, u._per_lot, u._lot_tol)
        return ffi.new("py_shape_t *", (self._e, units, sid, *codes))

    def cancel(self, client: int, order_id: int, *, ts_ns: int | None = None) -> Events:
        # Packed in C, without a Command tuple: cancels are a third of a market maker's traffic.
        if ts_ns is None:
            ts_ns = _monotonic_ns()
        try:
            n = _cancel(self._e, client, order_id, ts_ns)
        except (OverflowError, TypeError):
            # A value outside its wire field: the packer raises the error it always has.
            _pack_command(self._cmd, 0, _OP_CANCEL, 0, SYMBOL_NONE, client, 0, 0, 0, 0, 0, 0, ts_ns, order_id,
                          0, 0, 0, 0)  # fmt: skip
            n = _submit_one(self._e, self._cmd_ptr)
        # _copy_events, inline.
        if n < 0:
            _check(n, "submit")
        try:
            view = self._event_views[n]
        except IndexError:
            view = self._events[: n * MSG_SIZE]
        events = _new_object(Events)
        events._raw = view.tobytes()
        return events

    def modify(
        self,
        client: int,
        order_id: int,
        *,
        symbol: str | int,
        qty: float | None = None,
        price: float | None = None,
        ts_ns: int | None = None,
    ) -> Events:
        """Changes an order's open size and/or price; ``symbol`` gives the units to convert them with."""
        units = self._units[self.symbol_id(symbol)]
        cmd = Command.modify(
            client,
            order_id,
            qty=None if qty is None else units.lots(qty),
            price=None if price is None else units.ticks(price),
            ts_ns=self._ts(ts_ns),
        )
        return self._copy_events(self._run(cmd))

    def mass_cancel(self, client: int, symbol: str | int | None = None, *, ts_ns: int | None = None) -> Events:
        sid = None if symbol is None else self.symbol_id(symbol)
        return self._copy_events(self._run(Command.mass_cancel(client, sid, ts_ns=self._ts(ts_ns))))

    def kill_reset(self, client: int, *, ts_ns: int | None = None) -> Events:
        return self._copy_events(self._run(Command.kill_reset(client, ts_ns=self._ts(ts_ns))))

    @staticmethod
    def _ts(ts_ns: int | None) -> int:
        return time.monotonic_ns() if ts_ns is None else ts_ns

    # ---- snapshots ---------------------------------------------------------------------

    def l1(self, symbol: str | int) -> tuple[Level | None, Level | None]:
        bid = ffi.new("pt_level_t *")
        ask = ffi.new("pt_level_t *")
        _check(lib.pt_engine_l1(self._e, self.symbol_id(symbol), bid, ask), "l1")
        return (
            Level(bid.price, bid.qty, bid.order_count) if bid.order_count else None,
            Level(ask.price, ask.qty, ask.order_count) if ask.order_count else None,
        )

    def l2(self, symbol: str | int, depth: int | None = None) -> dict[str, list[Level]]:
        """Price levels per side (``"bids"``, ``"asks"``), best first, in ticks and lots."""
        sid = self.symbol_id(symbol)
        limit = depth if depth is not None else self.config.max_levels_per_side
        out = ffi.new("pt_level_t[]", max(limit, 1))
        count = ffi.new("size_t *")
        book: dict[str, list[Level]] = {}
        for name, side in _BOOK_SIDES:
            _check(lib.pt_engine_l2(self._e, sid, side, out, limit, count), "l2")
            book[name] = [Level(out[i].price, out[i].qty, out[i].order_count) for i in range(count[0])]
        return book

    def l3(self, symbol: str | int) -> dict[str, list[L3Order]]:
        """Every resting order per side (``"bids"``, ``"asks"``), in priority order (best price, then time)."""
        sid = self.symbol_id(symbol)
        count = ffi.new("size_t *")
        book: dict[str, list[L3Order]] = {}
        for name, side in _BOOK_SIDES:
            _check(lib.pt_engine_order_count(self._e, sid, side, count), "l3")
            out = ffi.new("pt_l3_order_t[]", max(count[0], 1))
            _check(lib.pt_engine_l3(self._e, sid, side, out, count[0], count), "l3")
            book[name] = [L3Order(o.order_id, o.client_id, o.price, o.open_qty) for o in out[0 : count[0]]]
        return book

    def book(self, symbol: str | int, depth: int = 10) -> Book:
        """The top ``depth`` levels in human prices and sizes."""
        sid = self.symbol_id(symbol)
        units = self._units[sid]
        levels = self.l2(sid, depth)

        def human(side: list[Level]) -> list[tuple[float, float, int]]:
            return [(units.price(lv.price), units.size(lv.qty), lv.order_count) for lv in side]

        return Book(self.symbol_names[sid], human(levels["bids"]), human(levels["asks"]))

    def position(self, client_id: int, symbol: str | int) -> Position:
        p = ffi.new("pt_position_t *")
        _check(lib.pt_engine_position(self._e, client_id, self.symbol_id(symbol), p), "position")
        return Position(p.position, p.cash, p.open_buy_qty, p.open_sell_qty, p.open_orders, bool(p.killed), p.pnl)

    def last_price(self, symbol: str | int) -> int | None:
        price = ffi.new("int64_t *")
        _check(lib.pt_engine_last_price(self._e, self.symbol_id(symbol), price), "last_price")
        return int(price[0]) or None

    def stats(self) -> dict[str, int]:
        s = ffi.new("pt_engine_stats_t *")
        lib.pt_engine_stats(self._e, s)
        return {f: int(getattr(s, f)) for f in ("commands", "events", "next_order_id", "next_trade_id", "live_orders")}

    def state_hash(self) -> int:
        """64-bit hash of books, orders and risk state: equal for equal command streams."""
        return int(lib.pt_engine_state_hash(self._e))

    # ---- snapshots (include/pt_snapshot.h) -------------------------------------------------------------------

    def save_snapshot(
        self,
        path: str | os.PathLike[str],
        *,
        journal_position: int = 0,
        segment: int = 0,
        config_hash: int = 0,
        state_hash: bool = True,
    ) -> SnapshotInfo:
        """Writes the engine's whole state to ``path`` atomically (a temporary file, fsynced, renamed over it):
        books in priority order, risk state, kill switches, limits, counters, with a CRC32C. The three keywords
        are kept in its header for whoever recovers from it (the engine process: the journal records it covers,
        the segment after it, the configuration fingerprint). ``state_hash=False`` leaves the state hash out of
        the header, as the engine loop's checkpoints do (computing it walks every order's queue); a load then
        checks every invariant but not the hash. Raises :class:`SnapshotError`."""
        name = os.fspath(path)
        info = ffi.new("pt_snapshot_info_t *")
        info.journal_position, info.segment, info.config_hash = journal_position, segment, config_hash
        info.no_hash = not state_hash
        rc = lib.pt_snapshot_save(self._e, info, os.fsencode(name))
        if rc != 0:
            raise SnapshotError(name, rc)
        return _snapshot_info(info)

    def load_snapshot(self, path: str | os.PathLike[str]) -> SnapshotInfo:
        """Loads the snapshot at ``path`` into this engine, which must be fresh (no command run) and have the
        snapshot's capacities and the same symbols in the same order. Afterwards ``state_hash()`` is the
        snapshot's, and every command gives the events it would have given the engine the snapshot was taken
        from. Raises :class:`SnapshotError`; after a failure other than a damaged file, another configuration
        (``ECONFIG``) or an engine that is not fresh, this engine is unusable."""
        name = os.fspath(path)
        info = ffi.new("pt_snapshot_info_t *")
        rc = lib.pt_snapshot_load(self._e, os.fsencode(name), info)
        if rc != 0:
            raise _snapshot_error(name, rc, info)
        return _snapshot_info(info)

    @staticmethod
    def snapshot_info(path: str | os.PathLike[str]) -> SnapshotInfo:
        """Reads and verifies the snapshot at ``path`` (header, size, checksum) without loading it."""
        name = os.fspath(path)
        info = ffi.new("pt_snapshot_info_t *")
        rc = lib.pt_snapshot_read_info(os.fsencode(name), info)
        if rc != 0:
            raise _snapshot_error(name, rc, info)
        return _snapshot_info(info)

    def check(self) -> None:
        """Walks every engine invariant; raises ``CorruptStateError`` if one is broken."""
        status = lib.pt_engine_check(self._e)
        if status != 0:
            raise CorruptStateError(f"engine invariant broken (status {status})")
