"""The matching engine: price-time priority in C11 with pre-trade risk, and its Python surface.

``Engine`` runs the C engine in-process (cffi, API mode); ``ReferenceEngine`` is a small pure-Python
engine with the same semantics that the differential tests compare it with. ``Units`` is the one exact
conversion between human prices/sizes and ticks/lots that every package uses; ``pack_new_order`` packs a new
order given by name and in human units. Commands and events are
the 64-byte structs of ``include/pt_wire.h``: ``Command``/``Event`` tuples one at a time, or numpy
arrays of ``COMMAND_DTYPE``/``EVENT_DTYPE`` in batches. docs/ENGINE.md is the specification.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._config import ClientLimits, EngineConfig, L3Order, Level, Position, SymbolConfig
from ._errors import (
    ConversionError,
    CorruptStateError,
    EngineError,
    EngineStatus,
    EventBufferFullError,
    InvalidConfigError,
    NoMemoryError,
    OffLotError,
    OffTickError,
    OutOfRangeError,
    UnknownSymbolError,
)
from ._orders import pack_new_order
from ._types import Command, Event, Events
from ._units import SymbolUnits, Units
from ._wire import (
    CLIENT_NONE,
    COMMAND_DTYPE,
    EVENT_DTYPE,
    MSG_SIZE,
    SYMBOL_NONE,
    CancelReason,
    EventFlag,
    EventType,
    Flag,
    Limit,
    Liquidity,
    Op,
    OrderType,
    RejectReason,
    Side,
    Stp,
    Tif,
)
from .recording import (
    RecordingError,
    RecordingInfo,
    RecordingSummary,
    iter_recorded_binance,
    iter_recorded_commands,
    iter_recorded_lobster,
    open_recording,
    read_recorded_commands,
    record_binance,
    record_commands,
    record_lobster,
)

if _TYPE_CHECKING:
    from ._engine import Book, Engine, SnapshotError, SnapshotInfo


def __getattr__(name: str) -> _Any:
    # Engine needs the compiled extension; importing it lazily keeps the pure-Python parts (reference engine,
    # command files, the CLI's --help) usable before `make build`.
    if name in ("Book", "Engine", "SnapshotError", "SnapshotInfo"):
        from . import _engine

        return getattr(_engine, name)
    raise AttributeError(f"module 'c_engine' has no attribute {name!r}")


__all__ = [
    "Book",
    "CLIENT_NONE",
    "COMMAND_DTYPE",
    "CancelReason",
    "ClientLimits",
    "Command",
    "ConversionError",
    "CorruptStateError",
    "EVENT_DTYPE",
    "Engine",
    "EngineConfig",
    "EngineError",
    "EngineStatus",
    "Event",
    "EventBufferFullError",
    "EventFlag",
    "EventType",
    "Events",
    "Flag",
    "InvalidConfigError",
    "L3Order",
    "Level",
    "Limit",
    "Liquidity",
    "MSG_SIZE",
    "NoMemoryError",
    "OffLotError",
    "OffTickError",
    "Op",
    "OrderType",
    "OutOfRangeError",
    "Position",
    "RecordingError",
    "RecordingInfo",
    "RecordingSummary",
    "RejectReason",
    "SYMBOL_NONE",
    "Side",
    "SnapshotError",
    "SnapshotInfo",
    "Stp",
    "SymbolConfig",
    "SymbolUnits",
    "Tif",
    "Units",
    "UnknownSymbolError",
    "iter_recorded_binance",
    "iter_recorded_commands",
    "iter_recorded_lobster",
    "open_recording",
    "pack_new_order",
    "read_recorded_commands",
    "record_binance",
    "record_commands",
    "record_lobster",
]
