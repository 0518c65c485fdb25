"""The inventory-skew maker: quotes shift against inventory and shrink near the position limit.

Both quotes move by ``skew`` (price units per unit of position) against the position: long, both go lower, so
the ask is hit more readily and the bid less. The quote size falls linearly with how much of ``max_position``
the position uses on that side: ``size x (1 - |q| / max_position)`` for the side that would add to the
position (at least one lot while any room is left), full size for the side that reduces it. This is the maker
``make run`` starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..interface import Trading
from .base import MakerParams, Quotes, QuotingStrategy

__all__ = ["InventorySkewMaker", "InventorySkewParams"]


@dataclass(frozen=True)
class InventorySkewParams(MakerParams):
    #: how far both quotes move against the position, in price units per unit of size held
    skew: float = 0.002


class InventorySkewMaker(QuotingStrategy):
    name = "inventory_skew"

    def __init__(self, params: InventorySkewParams) -> None:
        super().__init__(params)
        self.skew_params = params
        self.skew_ticks_per_lot = 0.0

    def on_start(self, trading: Trading) -> None:
        super().on_start(trading)
        units = trading.units(self.sid)
        # ticks of shift per lot held: (price per unit of size) x (size per lot) / (price per tick)
        self.skew_ticks_per_lot = self.skew_params.skew * units.lot / units.tick

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        center = fair - self.skew_ticks_per_lot * position
        h = self.half_spread_ticks
        use = min(1.0, abs(position) / self.max_position_lots) if self.max_position_lots else 1.0
        shrunk = max(1, int(self.size_lots * (1.0 - use))) if use < 1.0 else 0
        bid_size = shrunk if position > 0 else self.size_lots
        ask_size = shrunk if position < 0 else self.size_lots
        return Quotes(center - h, center + h, bid_size, ask_size)
