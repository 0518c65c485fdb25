"""Engine, symbol and client-limit configuration, and the snapshot records, in ticks and lots.

These mirror ``pt_engine_config_t``, ``pt_symbol_config_t``, ``pt_client_limits_t``, ``pt_level_t``,
``pt_l3_order_t`` and ``pt_position_t`` of ``include/pt_engine.h``. A limit of 0 is off.

Each configuration's ``check()`` raises ``InvalidConfigError`` naming the first field outside the domain that
``pt_engine_create``, ``pt_engine_add_symbol`` and ``pt_engine_set_client_limits`` accept, with its range; the
message starts with the field's name, so a config reader can point at the line that sets it. The
engine checks the same domain itself, but only after a value has been packed into its C field: a value beyond
the field (2^64 in an int64, a bool, a float) fails there as an ``OverflowError`` or ``TypeError`` that names
nothing, and an out-of-domain value as a bare status code. Config readers (SYMBOLS.toml, LIMITS.toml, the
platform config, command-line capacities) call ``check()`` first, so a person is told which value is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

from ._errors import InvalidConfigError

__all__ = ["ClientLimits", "EngineConfig", "L3Order", "Level", "Position", "SymbolConfig"]

#: the largest value of an int64 field
INT64_MAX = (1 << 63) - 1
#: pt_engine.h's PT_MAX_ORDERS (order indexes are 31 bits)
MAX_ORDERS = 0x7FFFFFFE
#: pt_engine.h's PT_MAX_LEVELS_PER_SIDE (level indexes are 24 bits)
MAX_LEVELS_PER_SIDE = 1 << 23
#: symbol and client ids are uint16 with 0xFFFF meaning none, so at most 0xFFFE of each
MAX_SYMBOLS = MAX_CLIENTS = 0xFFFE
#: pt_engine.h's PT_MAX_PNL_UNIT: PnL stays exact in 128 bits
MAX_PNL_UNIT = 1 << 32
#: a trade's price x qty must fit an int64 with room to spare (pt_engine.h, add_symbol)
MAX_NOTIONAL = 1 << 62
#: rate limits are kept in tokens x 1e9 (per ns of command time) in an int64
MAX_RATE = INT64_MAX // 1_000_000_000


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if type(value) is not int:  # bool is an int subclass: true is not a count
        raise InvalidConfigError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise InvalidConfigError(f"{name} {value} is outside {lo}..{hi}")


@dataclass(frozen=True)
class EngineConfig:
    #: resting orders across all symbols (the preallocated order pool)
    max_orders: int = 1 << 20
    #: price levels per symbol and side
    max_levels_per_side: int = 1 << 14
    max_symbols: int = 64
    #: client ids are 0 .. max_clients-1
    max_clients: int = 256

    def check(self) -> None:
        """InvalidConfigError naming the first capacity outside what ``pt_engine_create`` accepts."""
        for name, hi in (("max_orders", MAX_ORDERS), ("max_levels_per_side", MAX_LEVELS_PER_SIDE),
                         ("max_symbols", MAX_SYMBOLS), ("max_clients", MAX_CLIENTS)):  # fmt: skip
            _check_int(name, getattr(self, name), 1, hi)


@dataclass(frozen=True)
class SymbolConfig:
    """A symbol in engine units. ``tick_size`` and ``lot_size`` are only used at the Python edge."""

    name: str
    tick_size: float = 1.0
    lot_size: float = 1.0
    min_price_ticks: int = 1
    max_price_ticks: int = 10_000_000
    max_order_lots: int = 1_000_000
    #: limit price band around the reference (last trade, else reference_price), in ticks; 0 = off
    band_ticks: int = 0
    #: the same in basis points of the reference, used when band_ticks is 0
    band_bps: int = 0
    #: reference price (ticks) for the band before the first trade; 0 = none
    reference_price: int = 0
    #: a market order trades at most this many ticks through the touch it found; 0 = off
    market_band_ticks: int = 0
    #: value of one tick on one lot, in the money unit of ClientLimits.max_loss
    pnl_unit: int = 1

    def check(self, engine: EngineConfig | None = None) -> None:
        """InvalidConfigError naming the first field outside what ``pt_engine_add_symbol`` accepts (with
        ``engine``, also its rule that ``max_order_lots x max_orders`` fits an int64)."""
        for name in ("tick_size", "lot_size"):
            value = getattr(self, name)
            # 1/size must be finite too: Units converts with the reciprocal
            if type(value) not in (int, float) or not (math.isfinite(value) and value > 0 and 1 / value < math.inf):
                raise InvalidConfigError(f"{name} must be a finite number > 0, not {value!r}")
        _check_int("min_price_ticks", self.min_price_ticks, 1, INT64_MAX)
        _check_int("max_price_ticks", self.max_price_ticks, self.min_price_ticks, INT64_MAX)
        _check_int("max_order_lots", self.max_order_lots, 1, INT64_MAX)
        for name in ("band_ticks", "band_bps", "reference_price", "market_band_ticks"):
            _check_int(name, getattr(self, name), 0, INT64_MAX)
        _check_int("pnl_unit", self.pnl_unit, 1, MAX_PNL_UNIT)
        if self.max_price_ticks * self.max_order_lots > MAX_NOTIONAL:
            raise InvalidConfigError(
                f"max_price_ticks x max_order_lots = {self.max_price_ticks * self.max_order_lots} is over 2^62 "
                "(a trade's notional must fit an int64)"
            )
        if engine is not None and self.max_order_lots * engine.max_orders > INT64_MAX:
            raise InvalidConfigError(
                f"max_order_lots x max_orders = {self.max_order_lots} x {engine.max_orders} is over 2^63 - 1 "
                "(a price level's quantity must fit an int64)"
            )


@dataclass(frozen=True)
class ClientLimits:
    """Pre-trade risk limits of one client; 0 switches a limit off."""

    max_order_qty: int = 0
    max_open_orders: int = 0
    #: lots per symbol, counting resting orders on the same side
    max_position: int = 0
    #: new orders and modifies per second of command time
    rate_per_s: int = 0
    #: token bucket size; 0 = rate_per_s
    rate_burst: int = 0
    #: kill switch when PnL < -max_loss (money units)
    max_loss: int = 0

    def check(self) -> None:
        """InvalidConfigError naming the first limit outside what ``pt_engine_set_client_limits`` accepts: an
        integer >= 0, below 2^63 (rate_per_s and rate_burst below 2^63 / 1e9)."""
        for f in fields(self):
            hi = MAX_RATE if f.name in ("rate_per_s", "rate_burst") else INT64_MAX
            _check_int(f.name, getattr(self, f.name), 0, hi)


class Level(NamedTuple):
    price: int
    qty: int
    order_count: int


class L3Order(NamedTuple):
    order_id: int
    client_id: int
    price: int
    open_qty: int


class Position(NamedTuple):
    position: int
    cash: int
    open_buy_qty: int
    open_sell_qty: int
    open_orders: int
    killed: bool
    pnl: int
