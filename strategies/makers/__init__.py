"""The market makers: each a quoting formula on ``QuotingStrategy``, which keeps one bid and one ask.

Symmetric, inventory-skew, adaptive spread; Avellaneda-Stoikov and its infinite-horizon Gueant-Lehalle-
Fernandez-Tapia form. docs/STRATEGIES.md gives each formula and its backtests.
"""

from .adaptive import AdaptiveParams, AdaptiveSpreadMaker
from .base import MakerParams, Quotes, QuotingStrategy
from .inventory_skew import InventorySkewMaker, InventorySkewParams
from .symmetric import SymmetricMaker

__all__ = [
    "AdaptiveParams",
    "AdaptiveSpreadMaker",
    "InventorySkewMaker",
    "InventorySkewParams",
    "MakerParams",
    "QuotingStrategy",
    "Quotes",
    "SymmetricMaker",
]
