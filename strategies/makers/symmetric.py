"""The symmetric maker: one bid and one ask ``half_spread`` either side of fair value, whatever its inventory.

The baseline every other maker is measured against. It stops quoting a side only when a fill there could take
the position past ``max_position`` (``QuotingStrategy`` checks that for every maker).
"""

from __future__ import annotations

from ..interface import Trading
from .base import MakerParams, Quotes, QuotingStrategy

__all__ = ["SymmetricMaker"]


class SymmetricMaker(QuotingStrategy):
    name = "symmetric"

    def __init__(self, params: MakerParams) -> None:
        super().__init__(params)

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        h = self.half_spread_ticks
        return Quotes(fair - h, fair + h, self.size_lots, self.size_lots)
