"""The wire layout of ``include/pt_wire.h`` in Python: its enums, constants and the two 64-byte structs.

The header is the single source of truth; this module mirrors it, written out so that type checkers and
readers see every member. ``tests/c_engine/test_wire_layout.py`` parses the header and fails on any enum,
value, constant or struct field that differs here (so a header change must be mirrored in the same commit),
and checks the dtypes against the compiled C (``offsetof``/``sizeof`` through cffi).
"""

from __future__ import annotations

import enum
from pathlib import Path

import numpy as np

__all__ = [
    "CancelReason",
    "COMMAND_DTYPE",
    "EVENT_DTYPE",
    "EventFlag",
    "EventType",
    "Flag",
    "HEADER",
    "Limit",
    "Liquidity",
    "MSG_SIZE",
    "Op",
    "OrderType",
    "RejectReason",
    "Side",
    "Stp",
    "SYMBOL_NONE",
    "CLIENT_NONE",
    "Tif",
]

#: the C header this module mirrors
HEADER = Path(__file__).with_name("include") / "pt_wire.h"

#: PT_MSG_SIZE: bytes per command and per event (one cache line)
MSG_SIZE = 64
#: PT_SYMBOL_NONE: the symbol id of a name that maps to no symbol
SYMBOL_NONE = 0xFFFF
#: PT_CLIENT_NONE: the client id of a name that maps to no client
CLIENT_NONE = 0xFFFF


class Op(enum.IntEnum):
    """enum pt_op: commands a client sends."""

    NEW = 1
    CANCEL = 2
    MODIFY = 3
    MASS_CANCEL = 4
    KILL_RESET = 5
    #: operator ops (the engine loop runs them only from its control plane)
    HALT = 6
    RESUME = 7
    KILL = 8
    SET_LIMIT = 9


class Limit(enum.IntEnum):
    """enum pt_limit (prefix PT_LIMIT_): which limit a SET_LIMIT sets (its side byte); ClientLimits' fields."""

    MAX_ORDER_QTY = 1
    MAX_OPEN_ORDERS = 2
    MAX_POSITION = 3
    RATE_PER_S = 4
    RATE_BURST = 5
    MAX_LOSS = 6


class Side(enum.IntEnum):
    """enum pt_side. 0 is never a valid side, type or time in force: a zeroed command is rejected."""

    BUY = 1
    SELL = 2


class OrderType(enum.IntEnum):
    """enum pt_order_type (prefix PT_TYPE_)."""

    LIMIT = 1
    MARKET = 2


class Tif(enum.IntEnum):
    """enum pt_tif: time in force."""

    GTC = 1
    IOC = 2
    FOK = 3


class Stp(enum.IntEnum):
    """enum pt_stp: self-trade prevention, decided by the taker's mode."""

    NONE = 0
    EXPIRE_TAKER = 1
    EXPIRE_MAKER = 2
    EXPIRE_BOTH = 3
    DECREMENT = 4


class Flag(enum.IntEnum):
    """enum pt_command_flag: the bits of pt_command_t.flags.

    An ``IntEnum``, not an ``IntFlag``, as it always was: ``|`` of two members is a plain int, which is what
    the wire field holds.
    """

    POST_ONLY = 1
    #: new: a limit price is given; modify: change the price
    HAS_PRICE = 2
    #: modify: change the open quantity
    HAS_QTY = 4
    #: mass cancel: only this symbol
    HAS_SYMBOL = 8
    #: mass cancel: sent by the engine process for a client that is gone (reason DISCONNECT)
    DISCONNECT = 16
    #: any op: the engine loop's verdict that the command's link may not act for its client (reject NOT_GRANTED)
    NOT_GRANTED = 32


class EventType(enum.IntEnum):
    """enum pt_event_type (prefix PT_EV_)."""

    ACK = 1
    REJECT = 2
    FILL = 3
    CANCELED = 4
    MODIFIED = 5
    BOOK_DELTA = 6
    TRADE = 7
    HEARTBEAT = 8


class RejectReason(enum.IntEnum):
    """enum pt_reject_reason (prefix PT_REJ_): in the order the engine checks them (docs/ENGINE.md), but for
    RISK_INT64_OVERFLOW: added last, so no number moved; it is checked right after RISK_MAX_POSITION."""

    UNKNOWN_CLIENT = 1
    UNKNOWN_OP = 2
    UNKNOWN_SYMBOL = 3
    UNKNOWN_SIDE = 4
    UNKNOWN_ORDER_TYPE = 5
    UNKNOWN_TIF = 6
    UNKNOWN_STP = 7
    MARKET_NOT_IOC_FOK = 8
    POST_ONLY_NOT_GTC_LIMIT = 9
    INVALID_QTY = 10
    QTY_ABOVE_SYMBOL_MAX = 11
    MISSING_PRICE = 12
    MARKET_WITH_PRICE = 13
    INVALID_PRICE = 14
    PRICE_OUT_OF_RANGE = 15
    PRICE_BAND = 16
    MODIFY_NOTHING = 17
    UNKNOWN_ORDER = 18
    NOT_OWNER = 19
    DUPLICATE_CLIENT_ORDER_ID = 20
    KILL_SWITCH = 21
    RATE_LIMIT = 22
    RISK_MAX_ORDER_QTY = 23
    RISK_MAX_OPEN_ORDERS = 24
    RISK_MAX_POSITION = 25
    POST_ONLY_WOULD_TAKE = 26
    ORDER_POOL_EXHAUSTED = 27
    BOOK_LEVELS_EXHAUSTED = 28
    RISK_INT64_OVERFLOW = 29
    NOT_GRANTED = 30
    SYMBOL_HALTED = 31
    INVALID_LIMIT = 32


class CancelReason(enum.IntEnum):
    """enum pt_cancel_reason (prefix PT_CXL_): why an order was CANCELED."""

    USER = 1
    IOC = 2
    FOK = 3
    NO_LIQUIDITY = 4
    STP = 5
    MASS_CANCEL = 6
    KILL_SWITCH = 7
    PRICE_BAND = 8
    DISCONNECT = 9


class EventFlag(enum.IntEnum):
    """enum pt_event_flag (prefix PT_EVF_): bits of an event's flags byte (every event but TRADE)."""

    #: the last event of its command for the command's client: nothing more of that command comes now
    LAST = 1


class Liquidity(enum.IntEnum):
    """enum pt_liquidity (prefix PT_LIQ_): the FILL's liquidity flag."""

    MAKER = 1
    TAKER = 2


#: pt_command_t as (field, C type, byte offset), in declaration order.
COMMAND_FIELDS: list[tuple[str, str, int]] = [
    ("op", "uint8_t", 0),
    ("side", "uint8_t", 1),
    ("symbol_id", "uint16_t", 2),
    ("client_id", "uint16_t", 4),
    ("order_type", "uint8_t", 6),
    ("tif", "uint8_t", 7),
    ("stp", "uint8_t", 8),
    ("flags", "uint8_t", 9),
    ("reserved0", "uint16_t", 10),
    ("reserved1", "uint32_t", 12),
    ("ts_ns", "uint64_t", 16),
    ("order_id", "uint64_t", 24),
    ("cloid", "uint64_t", 32),
    ("price", "int64_t", 40),
    ("qty", "int64_t", 48),
    ("reserved2", "uint64_t", 56),
]

#: pt_event_t the same way; the members of an anonymous union share their offset.
EVENT_FIELDS: list[tuple[str, str, int]] = [
    ("type", "uint8_t", 0),
    ("side", "uint8_t", 1),
    ("symbol_id", "uint16_t", 2),
    ("client_id", "uint16_t", 4),
    ("maker_client", "uint16_t", 6),  # union: maker_client (TRADE) | {reason | liquidity | acked_op, flags}
    ("reason", "uint8_t", 6),
    ("liquidity", "uint8_t", 6),
    ("acked_op", "uint8_t", 6),
    ("flags", "uint8_t", 7),
    ("seq", "uint64_t", 8),
    ("ts_ns", "uint64_t", 16),
    ("order_id", "uint64_t", 24),
    ("cloid", "uint64_t", 32),  # union: cloid | trade_id | order_count
    ("trade_id", "uint64_t", 32),
    ("order_count", "uint64_t", 32),
    ("price", "int64_t", 40),
    ("qty", "int64_t", 48),
    ("leaves", "int64_t", 56),  # union: leaves | maker_order_id
    ("maker_order_id", "uint64_t", 56),
]

_C_TO_NUMPY = {
    "uint8_t": "u1",
    "uint16_t": "<u2",
    "uint32_t": "<u4",
    "uint64_t": "<u8",
    "int64_t": "<i8",
}


def _dtype(fields: list[tuple[str, str, int]], size: int) -> np.dtype[np.void]:
    return np.dtype(
        {
            "names": [f for f, _, _ in fields],
            "formats": [_C_TO_NUMPY[t] for _, t, _ in fields],
            "offsets": [o for _, _, o in fields],
            "itemsize": size,
        }
    )


#: numpy structured dtypes of pt_command_t and pt_event_t (the unions as overlapping fields)
COMMAND_DTYPE = _dtype(COMMAND_FIELDS, MSG_SIZE)
EVENT_DTYPE = _dtype(EVENT_FIELDS, MSG_SIZE)
