"""The platform's symbols as Binance spot markets: ``exchangeInfo``, and exact conversion of Binance's decimal
strings to the engine's ticks and lots.

Choices:

- A symbol keeps its engine name as its Binance name (``SIM``), so a bot names it the same on both APIs. Its
  base asset is that name and its quote asset :data:`QUOTE_ASSET` (ccxt then calls it ``SIM/USD``): the
  engine has no currencies, and one quote asset makes balances add up across symbols.
- Filters come from the instrument config (``c_engine.SymbolConfig``): ``PRICE_FILTER`` (min, max, tick),
  ``LOT_SIZE`` (one lot up to ``max_order_lots``, step one lot) and ``NOTIONAL`` (from the smallest to the
  largest order the engine takes, so it never refuses what the other two allow).
- Numbers are decimal strings with :data:`PLACES` decimals, as Binance writes them (more where a tick or lot
  needs them). A price or quantity is parsed as a ``Decimal`` and refused, never rounded: characters outside
  Binance's pattern -1100, more decimals than the asset's precision -1111, off the tick or lot or out of range
  -1013 with the failing filter's name (ccxt turns those into ``InvalidOrder``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from c_engine import SymbolConfig

from .errors import BinanceError, Code, illegal_chars

__all__ = ["DECIMAL_PATTERN", "Instrument", "PLACES", "QUOTE_ASSET", "exchange_info"]

#: the quote asset of every symbol (the engine has no currencies)
QUOTE_ASSET = "USD"
#: decimals in the strings Binance sends, and the most a price or quantity may have (baseAssetPrecision)
PLACES = 8
#: Binance's pattern for a decimal parameter, as its -1100 message quotes it
DECIMAL_PATTERN = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_DECIMAL = re.compile(DECIMAL_PATTERN)


def _places(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(PLACES, -exponent if isinstance(exponent, int) else 0)


@dataclass(frozen=True)
class Instrument:
    """One symbol as a Binance market (see the module docstring)."""

    symbol_id: int
    name: str
    tick: Decimal
    lot: Decimal
    min_price_ticks: int = 1
    max_price_ticks: int = 10_000_000
    max_order_lots: int = 1_000_000

    @classmethod
    def from_config(cls, symbol_id: int, config: SymbolConfig) -> Instrument:
        return cls(symbol_id, config.name, Decimal(str(config.tick_size)), Decimal(str(config.lot_size)),
                   config.min_price_ticks, config.max_price_ticks, config.max_order_lots)  # fmt: skip

    @property
    def base(self) -> str:
        return self.name

    @property
    def quote(self) -> str:
        return QUOTE_ASSET

    @property
    def stream_name(self) -> str:
        """The symbol as stream names spell it (lower case)."""
        return self.name.lower()

    def _text(self, value: Decimal, step: Decimal) -> str:
        return f"{value:.{_places(step)}f}"

    def price(self, ticks: int) -> str:
        return self._text(ticks * self.tick, self.tick)

    def qty(self, lots: int) -> str:
        return self._text(lots * self.lot, self.lot)

    def notional(self, ticks_x_lots: int) -> str:
        """A quote amount given in ticks x lots (price x quantity summed over fills)."""
        step = self.tick * self.lot
        return self._text(ticks_x_lots * step, step)

    def decimal(self, name: str, text: str) -> Decimal:
        """A decimal parameter, checked against Binance's pattern and the asset precision."""
        if not _DECIMAL.match(text):
            raise illegal_chars(name, DECIMAL_PATTERN)
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise illegal_chars(name, DECIMAL_PATTERN) from None
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > _places(self.lot if name != "price" else self.tick):
            raise BinanceError(400, Code.BAD_PRECISION, "Precision is over the maximum defined for this asset.")
        return value

    def ticks(self, text: str, name: str = "price") -> int:
        """A price in ticks; -1013 PRICE_FILTER off the tick or outside [min, max]."""
        value = self.decimal(name, text)
        steps, rest = divmod(value, self.tick)
        if rest or not self.min_price_ticks <= steps <= self.max_price_ticks:
            raise BinanceError(400, Code.FILTER_FAILURE, "Filter failure: PRICE_FILTER")
        return int(steps)

    def lots(self, text: str, name: str = "quantity") -> int:
        """A quantity in lots; -1013 LOT_SIZE off the lot or outside [one lot, max_order_lots]."""
        value = self.decimal(name, text)
        steps, rest = divmod(value, self.lot)
        if rest or not 1 <= steps <= self.max_order_lots:
            raise BinanceError(400, Code.FILTER_FAILURE, "Filter failure: LOT_SIZE")
        return int(steps)

    def filters(self) -> list[dict[str, Any]]:
        return [
            {"filterType": "PRICE_FILTER", "minPrice": self.price(self.min_price_ticks),
             "maxPrice": self.price(self.max_price_ticks), "tickSize": self.price(1)},
            {"filterType": "LOT_SIZE", "minQty": self.qty(1), "maxQty": self.qty(self.max_order_lots),
             "stepSize": self.qty(1)},
            {"filterType": "NOTIONAL", "minNotional": self.notional(self.min_price_ticks), "applyMinToMarket": True,
             "maxNotional": self.notional(self.max_price_ticks * self.max_order_lots), "applyMaxToMarket": False,
             "avgPriceMins": 0},
        ]  # fmt: skip

    def market(self) -> dict[str, Any]:
        """The symbol's entry in ``exchangeInfo``."""
        return {"symbol": self.name, "status": "TRADING", "baseAsset": self.base, "baseAssetPrecision": PLACES,
                "quoteAsset": self.quote, "quotePrecision": PLACES, "quoteAssetPrecision": PLACES,
                "baseCommissionPrecision": PLACES, "quoteCommissionPrecision": PLACES,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": False, "ocoAllowed": False,
                "otoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
                "cancelReplaceAllowed": False, "amendAllowed": False, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False, "filters": self.filters(), "permissions": [],
                "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE",
                "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH",
                                                    "DECREMENT"]}  # fmt: skip


def exchange_info(instruments: Sequence[Instrument], server_time_ms: int,
                  rate_limits: Sequence[Mapping[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """``GET /api/v3/exchangeInfo``'s body for ``instruments``."""
    return {"timezone": "UTC", "serverTime": server_time_ms, "rateLimits": list(rate_limits),
            "exchangeFilters": [], "symbols": [i.market() for i in instruments]}  # fmt: skip
