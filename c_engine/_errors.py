"""Exceptions of the engine's Python surface.

::

    EngineError                   base; .code is the C status (EngineStatus) or 0 for Python-side errors
    ├── NoMemoryError             PT_E_NOMEM: allocation failed at create time
    ├── InvalidConfigError        PT_E_INVALID: a configuration value is out of its domain
    ├── EventBufferFullError      PT_E_FULL: drain events first (the Python API always does)
    ├── OutOfRangeError           PT_E_RANGE: symbol or client id out of range, too many symbols
    ├── CorruptStateError         PT_E_CORRUPT: an engine invariant is broken (a bug: please report)
    └── ConversionError           a human price or size that does not map exactly to ticks or lots
        ├── OffTickError
        └── OffLotError
    UnknownSymbolError (EngineError, KeyError)

Orders the engine refuses are not exceptions: they are REJECT events with a reason code, because a
rejection is a normal outcome of trading, and the hot path reports it the same way.
"""

from __future__ import annotations

import enum

__all__ = [
    "ConversionError",
    "CorruptStateError",
    "EngineError",
    "EngineStatus",
    "EventBufferFullError",
    "InvalidConfigError",
    "NoMemoryError",
    "OffLotError",
    "OffTickError",
    "OutOfRangeError",
    "UnknownSymbolError",
    "error_for_status",
]


class EngineStatus(enum.IntEnum):
    """enum pt_status of pt_engine.h (checked against the compiled library by a test)."""

    OK = 0
    NOMEM = -1
    INVALID = -2
    FULL = -3
    RANGE = -4
    CORRUPT = -5


class EngineError(Exception):
    code: int = 0


class NoMemoryError(EngineError):
    code = EngineStatus.NOMEM


class InvalidConfigError(EngineError, ValueError):
    code = EngineStatus.INVALID


class EventBufferFullError(EngineError):
    code = EngineStatus.FULL


class OutOfRangeError(EngineError, IndexError):
    code = EngineStatus.RANGE


class CorruptStateError(EngineError):
    code = EngineStatus.CORRUPT


class ConversionError(EngineError, ValueError):
    pass


class OffTickError(ConversionError):
    """A price that is not a whole number of ticks."""


class OffLotError(ConversionError):
    """A size that is not a whole number of lots."""


class UnknownSymbolError(EngineError, KeyError):
    pass


_BY_STATUS: dict[int, type[EngineError]] = {
    cls.code: cls
    for cls in (NoMemoryError, InvalidConfigError, EventBufferFullError, OutOfRangeError, CorruptStateError)
}


def error_for_status(status: int, message: str) -> EngineError:
    """The exception for a negative pt_status."""
    return _BY_STATUS.get(status, EngineError)(f"{message} (status {status})")
