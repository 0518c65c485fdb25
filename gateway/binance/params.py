"""Binance request parameters read as Binance reads them: the symbol, a choice among names, an integer, a
``limit``, each refused with Binance's code and text.

Shared by the public, trading and account calls, so that one parameter is refused the same way by every
route: a missing one -1102, characters outside its pattern -1100, an unknown symbol -1121, a ``limit`` out
of range -1130, a name not among the allowed the caller's code (-1115 timeInForce, -1116 type, -1117 side).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import BinanceError, Code, illegal_chars, mandatory
from .instruments import Instrument

__all__ = ["choice", "instrument_of", "int_param", "limit_param"]

#: Binance's pattern for an integer parameter, as its -1100 message quotes it
INT_PATTERN = "^[0-9]{1,20}$"


def instrument_of(instruments: Mapping[str, Instrument], params: Mapping[str, str],
                  required: bool = True) -> Instrument | None:  # fmt: skip
    """The instrument ``symbol`` names (any case); None if it names none and none is ``required``."""
    symbol = params.get("symbol")
    if not symbol:
        if required:
            raise mandatory("symbol")
        return None
    inst = instruments.get(symbol.upper())
    if inst is None:
        raise BinanceError(400, Code.INVALID_SYMBOL, "Invalid symbol.")
    return inst


def choice(params: Mapping[str, str], name: str, allowed: Mapping[str, Any] | tuple[str, ...], code: Code,
           msg: str) -> str:  # fmt: skip
    """A parameter that must be one of ``allowed``; ``code`` and ``msg`` when it is another."""
    value = params.get(name)
    if not value:
        raise mandatory(name)
    if value not in allowed:
        raise BinanceError(400, code, msg)
    return value


def int_param(params: Mapping[str, str], name: str) -> int | None:
    """An optional integer parameter (None when absent or empty)."""
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit() or len(text) > 20:
        raise illegal_chars(name, INT_PATTERN)
    return int(text)


def limit_param(params: Mapping[str, str], default: int, largest: int) -> int:
    """``limit``: ``default`` when absent, else 1 to ``largest``."""
    text = params.get("limit")
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise illegal_chars("limit", INT_PATTERN)
    value = int(text)
    if not 1 <= value <= largest:
        raise BinanceError(400, Code.INVALID_PARAMETER, "Invalid data sent for a parameter.")
    return value
