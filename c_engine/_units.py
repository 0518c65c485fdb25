"""``Units``: the one exact conversion between human prices and sizes and the engine's integer ticks and lots.

Every package converts through it (``Engine``, ``hotpath.Client``, the gateway, backtests): a price that is not
a whole number of ticks, or a size that is not a whole number of lots, is an error (``OffTickError``,
``OffLotError``), never rounded. Binary floats hold most decimal prices inexactly, so a float within a
millionth of a step of a whole number of steps is taken as that number; a ``Decimal`` is converted exactly.
The C fast path of ``Engine.submit`` (``c_engine/src/py_glue.c``, ``py_to_steps``) does the same float arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from ._errors import OffLotError, OffTickError

__all__ = ["SymbolUnits", "Units"]


class Units:
    """Exact conversion between human prices/sizes and integer ticks/lots for one symbol (tick and lot size)."""

    __slots__ = ("tick", "lot", "_per_tick", "_per_lot", "_tick_tol", "_lot_tol", "_tick_dec", "_lot_dec")

    def __init__(self, tick_size: float, lot_size: float) -> None:
        if tick_size <= 0 or lot_size <= 0:
            raise ValueError("tick_size and lot_size must be > 0")
        self.tick, self.lot = float(tick_size), float(lot_size)
        self._per_tick, self._per_lot = 1.0 / self.tick, 1.0 / self.lot
        # Binary floats hold most decimal prices inexactly: allow that representation error (far below a
        # millionth of a step), nothing more.
        self._tick_tol, self._lot_tol = self.tick * 1e-6, self.lot * 1e-6
        self._tick_dec, self._lot_dec = Decimal(str(tick_size)), Decimal(str(lot_size))

    # ticks() and lots() are on every order's path: one call level, no keyword or attribute chains (~150 ns).
    def ticks(self, price: float) -> int:
        """``price`` in ticks, exactly; OffTickError if it is not a whole number of ticks."""
        if type(price) is int and self.tick == 1.0:
            return price  # exact at any size (a float product would round beyond 2^53)
        try:
            n = round(price * self._per_tick)
        except TypeError:  # a Decimal: exact arithmetic
            return self._inexact(price, self._tick_dec, OffTickError)
        if abs(n * self.tick - price) <= self._tick_tol:
            return n
        return self._inexact(price, self._tick_dec, OffTickError)

    def lots(self, size: float) -> int:
        """``size`` in lots, exactly; OffLotError if it is not a whole number of lots."""
        if type(size) is int and self.lot == 1.0:
            return size
        try:
            n = round(size * self._per_lot)
        except TypeError:  # a Decimal
            return self._inexact(size, self._lot_dec, OffLotError)
        if abs(n * self.lot - size) <= self._lot_tol:
            return n
        return self._inexact(size, self._lot_dec, OffLotError)

    @staticmethod
    def _inexact(value: float, step_dec: Decimal, error: type[Exception]) -> int:
        """A Decimal that is an exact multiple, else the off-tick/off-lot error."""
        if isinstance(value, Decimal) and value % step_dec == 0:
            return int(value / step_dec)
        raise error(f"{value} is not a multiple of {step_dec}")

    def price(self, ticks: int) -> float:
        """The human price of ``ticks`` (the nearest float to the exact decimal)."""
        return float(Decimal(ticks) * self._tick_dec)

    def size(self, lots: int) -> float:
        """The human size of ``lots`` (the nearest float to the exact decimal)."""
        return float(Decimal(lots) * self._lot_dec)

    def __repr__(self) -> str:
        return f"Units(tick_size={self._tick_dec}, lot_size={self._lot_dec})"


class SymbolUnits:
    """Unit conversion by symbol, with the same names wherever a symbol's units are known: ``c_engine.Engine``,
    ``hotpath.Client`` and ``hotpath.AsyncClient``. A class that mixes it in has ``symbol_id(symbol)`` and
    ``_units`` (a symbol id's ``Units``)."""

    _units: Sequence[Units] | Mapping[int, Units]

    def symbol_id(self, symbol: str | int) -> int:
        raise NotImplementedError

    def units(self, symbol: str | int) -> Units:
        """The symbol's exact human <-> ticks/lots conversion."""
        return self._units[self.symbol_id(symbol)]

    def price(self, symbol: str | int, ticks: int) -> float:
        return self._units[self.symbol_id(symbol)].price(ticks)

    def size(self, symbol: str | int, lots: int) -> float:
        return self._units[self.symbol_id(symbol)].size(lots)

    def ticks(self, symbol: str | int, price: float) -> int:
        return self._units[self.symbol_id(symbol)].ticks(price)

    def lots(self, symbol: str | int, size: float) -> int:
        return self._units[self.symbol_id(symbol)].lots(size)
