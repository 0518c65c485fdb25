"""The market makers: each a quoting formula on ``QuotingStrategy``, which keeps one bid and one ask.

Symmetric, inventory-skew, adaptive spread; Avellaneda-Stoikov and its infinite-horizon Gueant-Lehalle-
Fernandez-Tapia form. docs/STRATEGIES.md gives each formula and its backtests.
"""

from .adaptive import AdaptiveParams, AdaptiveSpreadMaker
from .avellaneda import AvellanedaStoikovMaker, AvellanedaStoikovParams, GlftMaker, GlftParams
from .base import MakerParams, Quotes, QuotingStrategy
from .inventory_skew import InventorySkewMaker, InventorySkewParams
from .symmetric import SymmetricMaker
from .volatility import EwmaVolatility

__all__ = [
    "AdaptiveParams",
    "AdaptiveSpreadMaker",
    "AvellanedaStoikovMaker",
    "AvellanedaStoikovParams",
    "GlftMaker",
    "GlftParams",
    "InventorySkewMaker",
    "InventorySkewParams",
    "MakerParams",
    "QuotingStrategy",
    "Quotes",
    "SymmetricMaker",
    "EwmaVolatility",
]
