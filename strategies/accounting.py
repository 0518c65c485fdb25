"""Accounting: position, cash, average cost, realised and unrealised PnL and fees, built from fills only.

One module for everyone who keeps books: live strategies, the backtester, the gateway and the RL environment.

- **Fills are the only input.** :meth:`Accounting.apply` takes a :class:`Fill` (``Fill.from_event`` turns an
  engine FILL event into one) and is idempotent on the fill's id (trade id, order id): the engine sends the
  maker's and the taker's fill of a trade under one trade id, and a replay or a reconnect may deliver a fill
  twice; it is counted once. Replaying the fills rebuilds the same numbers.
- **Integers where the engine has them.** Position is lots and cash is ticks x lots with the engine's sign
  (minus for buys, plus for sells), so live, ``position``/``cash_ticks`` equal the engine's own ``position()``
  for the account exactly. Money (PnL, fees) is in the instrument's currency, as floats.
- **Asset-agnostic.** An :class:`Instrument` says what a tick on a lot is worth: ``tick_size x lot_size x
  multiplier`` in ``currency``. An equity: tick $0.01, lot 1 share, multiplier 1. An ES-style future: tick 0.25
  index points, lot 1 contract, multiplier $50 a point (a tick on a lot is $12.50). A linear crypto perpetual
  such as BTCUSDT: tick 0.1 USDT, lot 0.001 BTC, multiplier 1, currency USDT.
- **Fees** are basis points of the fill's notional, by liquidity: ``maker_fee_bps`` for a fill of a resting
  order, ``taker_fee_bps`` for the aggressor; a negative rate is a rebate. Fees are kept per position and summed
  per currency by the account.
- **Average cost and realised PnL** follow the usual convention: a fill that adds to the position moves the
  average cost to the quantity-weighted mean; a fill that reduces it realises (price - average cost) x qty for
  a long (the mirror for a short); a fill through flat realises the closed part and opens the rest at its price.
  Unrealised PnL marks the open position to a price the caller gives (the mid, in ticks). Then
  ``realised + unrealised == (cash_ticks + position x mark) x tick value`` exactly up to float rounding, and
  ``net = realised + unrealised - fees``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from c_engine import Event, EventType, Liquidity, Side, SymbolConfig

__all__ = ["Accounting", "Fill", "Instrument", "PositionState"]

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_FILL = int(EventType.FILL)
_MAKER = int(Liquidity.MAKER)


@dataclass(frozen=True)
class Instrument:
    """What one tick on one lot of a symbol is worth, and its fees."""

    symbol: str
    tick_size: float
    lot_size: float
    #: currency per unit of price per unit of quantity (1 for equities and linear perpetuals; $50 for an
    #: ES-style future quoted in index points)
    multiplier: float = 1.0
    currency: str = "USD"
    #: fee in basis points of notional for a fill of a resting order (negative: a rebate)
    maker_fee_bps: float = 0.0
    #: fee in basis points of notional for an aggressing fill
    taker_fee_bps: float = 0.0

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size", "multiplier"):
            value = getattr(self, name)
            if not value > 0 or value == float("inf"):
                raise ValueError(f"instrument {self.symbol}: {name} must be a positive finite number, not {value!r}")

    @property
    def tick_lot_value(self) -> float:
        """Currency value of one tick on one lot."""
        return self.tick_size * self.lot_size * self.multiplier

    @classmethod
    def from_symbol(cls, config: SymbolConfig, **fields: Any) -> Instrument:
        """An instrument with the engine symbol's tick and lot; ``fields`` sets multiplier, currency and fees."""
        return cls(symbol=config.name, tick_size=config.tick_size, lot_size=config.lot_size, **fields)


class Fill(NamedTuple):
    """One fill of one account, in ticks and lots."""

    account: int
    symbol_id: int
    side: int
    price: int
    qty: int
    #: ``Liquidity.MAKER`` or ``Liquidity.TAKER``
    liquidity: int
    trade_id: int
    order_id: int
    ts_ns: int = 0

    @classmethod
    def from_event(cls, event: Event) -> Fill:
        if event.type != _FILL:
            raise ValueError(f"not a FILL event: {event!r}")
        return cls(event.client_id, event.symbol_id, event.side, event.price, event.qty, event.liquidity,
                   event.trade_id, event.order_id, event.ts_ns)  # fmt: skip

    @property
    def key(self) -> tuple[int, int]:
        """What makes a fill unique: its trade and the order it filled."""
        return self.trade_id, self.order_id


@dataclass
class PositionState:
    """One account's books in one symbol."""

    instrument: Instrument
    position: int = 0  #: lots, long positive
    cash_ticks: int = 0  #: ticks x lots: minus for buys, plus for sells (the engine's convention)
    avg_cost: float = 0.0  #: ticks, of the open position (0 when flat)
    realised: float = 0.0  #: currency
    fees: float = 0.0  #: currency (rebates negative)
    volume: int = 0  #: lots traded
    fills: int = 0
    maker_fills: int = 0

    def apply(self, side: int, price: int, qty: int, maker: bool) -> None:
        sign = 1 if side == _BUY else -1
        inst = self.instrument
        self.fees += price * qty * inst.tick_lot_value * (inst.maker_fee_bps if maker else inst.taker_fee_bps) / 1e4
        self.cash_ticks -= sign * price * qty
        self.volume += qty
        self.fills += 1
        self.maker_fills += maker
        pos = self.position
        if pos == 0 or (pos > 0) == (sign > 0):  # opening or adding
            self.avg_cost = (self.avg_cost * abs(pos) + price * qty) / (abs(pos) + qty)
            self.position = pos + sign * qty
            return
        closed = min(qty, abs(pos))
        direction = 1 if pos > 0 else -1
        self.realised += direction * (price - self.avg_cost) * closed * inst.tick_lot_value
        self.position = pos + sign * qty
        if self.position == 0:
            self.avg_cost = 0.0
        elif (self.position > 0) != (pos > 0):  # through flat: the rest opens at this price
            self.avg_cost = float(price)

    def unrealised(self, mark: float) -> float:
        """Currency PnL of the open position marked at ``mark`` ticks."""
        return self.position * (mark - self.avg_cost) * self.instrument.tick_lot_value

    def net(self, mark: float) -> float:
        """Realised + unrealised - fees, in currency."""
        return self.realised + self.unrealised(mark) - self.fees

    def gross_ticks(self, mark: float) -> float:
        """Cash plus the position at ``mark``, in ticks x lots (the engine's PnL before ``pnl_unit``)."""
        return self.cash_ticks + self.position * mark


@dataclass
class Accounting:
    """Books of every account and symbol, built from fills; ``instruments`` maps symbol id -> Instrument."""

    instruments: dict[int, Instrument]
    positions: dict[tuple[int, int], PositionState] = field(default_factory=dict)
    _seen: set[tuple[int, int]] = field(default_factory=set, repr=False)

    def apply(self, fill: Fill) -> bool:
        """Books one fill; False (and nothing changes) if this fill was booked before."""
        key = fill.key
        if key in self._seen:
            return False
        state = self.state(fill.account, fill.symbol_id)
        self._seen.add(key)
        state.apply(fill.side, fill.price, fill.qty, fill.liquidity == _MAKER)
        return True

    def apply_events(self, events: Iterable[Event]) -> int:
        """Books the FILL events among ``events``; returns how many were new."""
        return sum(self.apply(Fill.from_event(e)) for e in events if e.type == _FILL)

    def state(self, account: int, symbol_id: int) -> PositionState:
        """The account's books in the symbol (created flat on first use)."""
        state = self.positions.get((account, symbol_id))
        if state is None:
            instrument = self.instruments.get(symbol_id)
            if instrument is None:
                raise KeyError(f"no instrument for symbol id {symbol_id}")
            state = self.positions[(account, symbol_id)] = PositionState(instrument)
        return state

    def position(self, account: int, symbol_id: int) -> int:
        state = self.positions.get((account, symbol_id))
        return 0 if state is None else state.position

    def of_account(self, account: int) -> Iterator[tuple[int, PositionState]]:
        """(symbol id, books) of every symbol the account has traded."""
        for (acct, sid), state in self.positions.items():
            if acct == account:
                yield sid, state

    def net_by_currency(self, account: int, marks: dict[int, float]) -> dict[str, float]:
        """The account's net PnL per currency, each symbol marked at ``marks[symbol_id]`` ticks (the average
        cost where a symbol has no mark, i.e. unrealised 0)."""
        out: dict[str, float] = {}
        for sid, state in self.of_account(account):
            mark = marks.get(sid, state.avg_cost)
            currency = state.instrument.currency
            out[currency] = out.get(currency, 0.0) + state.net(mark)
        return out
