"""The account's reads on the Binance API: ``GET /api/v3/account`` (balances per asset) and
``GET /api/v3/myTrades`` (the account's fills).

Choices:

- **Balances are counted, not deposited.** Each symbol's base asset holds the account's position in it and
  the quote asset :data:`~gateway.binance.instruments.QUOTE_ASSET` the cash of all symbols, both from the
  gateway's accounting since it started (either can be negative: there are no deposits). What open orders
  would spend is ``locked``: a buy locks price x quantity of the quote, a sell its quantity of the base.
- **No commissions**: every rate and ``commission`` is zero, as the engine charges none.
- **Trades** come from the ledger's bounded per-account history (``fills_kept``), filtered as Binance filters
  (``orderId``, ``fromId``, ``startTime``, ``endTime``, ``limit``): the oldest first from ``fromId``, else the
  latest ``limit``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..service import Gateway
from .instruments import QUOTE_ASSET, Instrument
from .ledger import Ledger
from .params import instrument_of, int_param, limit_param
from .signing import Credential
from .views import my_trade_json

__all__ = ["AccountReads", "MAX_TRADES_LIMIT", "TRADES_LIMIT"]

#: myTrades and trades: the default and largest ``limit``
TRADES_LIMIT, MAX_TRADES_LIMIT = 500, 1000


class AccountReads:
    """``account`` and ``myTrades`` for the keys of one gateway (see the module docstring)."""

    def __init__(self, gateway: Gateway, instruments: Mapping[str, Instrument], ledger: Ledger) -> None:
        self.gateway = gateway
        self.instruments = dict(instruments)
        self.by_id = {i.symbol_id: i for i in self.instruments.values()}
        self.ledger = ledger

    def account(self, cred: Credential, params: Mapping[str, str]) -> dict[str, Any]:
        """``GET /api/v3/account``: balances per asset (see the module docstring)."""
        totals: dict[str, Decimal] = {QUOTE_ASSET: Decimal(0)}
        locked: dict[str, Decimal] = {QUOTE_ASSET: Decimal(0)}
        for inst in self.instruments.values():
            totals[inst.base] = Decimal(0)
            locked[inst.base] = Decimal(0)
        for sid, state in self.gateway.desk.accounting.of_account(cred.client_id):
            held = self.by_id.get(sid)
            if held is None:
                continue
            totals[held.base] += state.position * held.lot
            totals[QUOTE_ASSET] += state.cash_ticks * held.tick * held.lot
        for order in self.ledger.open_of(cred.client_id):
            inst = self.by_id[order.symbol_id]
            if order.side == "BUY":
                locked[QUOTE_ASSET] += order.price * order.leaves * inst.tick * inst.lot
            else:
                locked[inst.base] += order.leaves * inst.lot
        omit_zero = params.get("omitZeroBalances") == "true"
        balances = []
        for asset, total in totals.items():
            free, lock = total - locked[asset], locked[asset]
            if omit_zero and not free and not lock:
                continue
            balances.append({"asset": asset, "free": f"{free:.8f}", "locked": f"{lock:.8f}"})
        rates = {"maker": "0.00000000", "taker": "0.00000000", "buyer": "0.00000000", "seller": "0.00000000"}
        return {"makerCommission": 0, "takerCommission": 0, "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": rates, "canTrade": True, "canWithdraw": False, "canDeposit": False,
                "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
                "updateTime": time.time_ns() // 1_000_000, "accountType": "SPOT", "balances": balances,
                "permissions": ["SPOT"], "uid": cred.client_id}  # fmt: skip

    def my_trades(self, cred: Credential, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v3/myTrades`` (see the module docstring)."""
        inst = instrument_of(self.instruments, params)
        assert inst is not None
        limit = limit_param(params, TRADES_LIMIT, MAX_TRADES_LIMIT)
        order_id, from_id = int_param(params, "orderId"), int_param(params, "fromId")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        picked = [t for t in self.ledger.trades.get(cred.client_id, ()) if t.symbol_id == inst.symbol_id
                  and (order_id is None or t.order_id == order_id) and (from_id is None or t.trade_id >= from_id)
                  and (start is None or t.time_ms >= start) and (end is None or t.time_ms <= end)]  # fmt: skip
        picked.sort(key=lambda t: t.trade_id)
        picked = picked[:limit] if from_id is not None else picked[-limit:]
        return [my_trade_json(inst, t) for t in picked]
