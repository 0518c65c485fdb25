"""Engine, symbol and client-limit configuration, and the snapshot records, in ticks and lots.

These mirror ``pt_engine_config_t``, ``pt_symbol_config_t``, ``pt_client_limits_t``, ``pt_level_t``,
``pt_l3_order_t`` and ``pt_position_t`` of ``include/pt_engine.h``. A limit of 0 is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["ClientLimits", "EngineConfig", "L3Order", "Level", "Position", "SymbolConfig"]


@dataclass(frozen=True)
class EngineConfig:
    #: resting orders across all symbols (the preallocated order pool)
    max_orders: int = 1 << 20
    #: price levels per symbol and side
    max_levels_per_side: int = 1 << 14
    max_symbols: int = 64
    #: client ids are 0 .. max_clients-1
    max_clients: int = 256


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
