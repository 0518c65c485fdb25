"""Packing orders given by name and in human units into the 64-byte wire command (``include/pt_wire.h``).

``pack_new_order`` is the one conversion of a new order that ``Engine.submit`` (when its C fast path cannot
take the arguments) and ``hotpath.Client.submit`` share: names ("buy", "limit", "IOC", "NONE") to wire codes,
price and size to ticks and lots through :class:`~c_engine.Units`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._types import COMMAND_STRUCT
from ._units import Units
from ._wire import Flag, Op, OrderType, Side, Stp, Tif

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["pack_new_order"]

_pack_command = COMMAND_STRUCT.pack_into

# Name -> wire code as plain ints: IntEnum and IntFlag members cost ~100 ns per comparison, | or pack in
# CPython 3.11, a visible share of a 2 us call (the single-call path below uses ints throughout).
_SIDES = {"buy": int(Side.BUY), "sell": int(Side.SELL), Side.BUY: int(Side.BUY), Side.SELL: int(Side.SELL)}
_TYPES = {"limit": int(OrderType.LIMIT), "market": int(OrderType.MARKET)}
_TIFS = {"GTC": int(Tif.GTC), "IOC": int(Tif.IOC), "FOK": int(Tif.FOK)}
_STPS = {s.name: int(s) for s in Stp}
# The default tif of each order type, and the flag bits.
_DEFAULT_TIF = {int(OrderType.LIMIT): int(Tif.GTC), int(OrderType.MARKET): int(Tif.IOC)}
_POST_ONLY, _HAS_PRICE = int(Flag.POST_ONLY), int(Flag.HAS_PRICE)
_OP_NEW, _OP_CANCEL = int(Op.NEW), int(Op.CANCEL)


def pack_new_order(
    buf: WriteableBuffer, offset: int, units: Units, symbol_id: int, client: int, side: str | int, qty: float,
    price: float | None, type: str, tif: str | None, post_only: bool, stp: str, cloid: int, ts_ns: int,
) -> None:  # fmt: skip
    """Packs a new order given in human units into ``buf`` at ``offset`` (the one conversion both
    ``Engine.submit`` and ``hotpath.Client.submit`` use). ``tif`` None: GTC for a limit, IOC for a market."""
    order_type = _TYPES[type]
    flags = _POST_ONLY if post_only else 0
    ticks = 0
    if price is not None:
        ticks = units.ticks(price)
        flags |= _HAS_PRICE
    _pack_command(
        buf, offset, _OP_NEW, _SIDES[side], symbol_id, client, order_type,
        _TIFS[tif] if tif else _DEFAULT_TIF[order_type],
        _STPS[stp], flags, 0, 0, ts_ns, 0, cloid, ticks, units.lots(qty), 0,
    )  # fmt: skip
