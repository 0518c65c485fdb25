"""Commands and events as Python values: one ``NamedTuple`` each, field for field the wire structs.

Both the C engine and the pure-Python reference produce ``Event`` tuples, so the differential tests compare
them with ``==``. The generic slots of the wire (``code``, ``ref``, ``aux``) get their per-type names through
properties and ``Event.to_dict()``, which is also the JSON form of ``proptrade engine replay --events``.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator, Sequence
from functools import partial
from operator import index as _index
from typing import Any, NamedTuple, SupportsIndex, overload

from ._wire import (
    CLIENT_NONE,
    MSG_SIZE,
    SYMBOL_NONE,
    CancelReason,
    EventFlag,
    EventType,
    Flag,
    Liquidity,
    Op,
    OrderType,
    RejectReason,
    Side,
    Stp,
    Tif,
)

__all__ = ["Command", "Event", "Events", "COMMAND_STRUCT", "EVENT_STRUCT"]

#: struct formats of pt_command_t and pt_event_t (unions collapsed to one member; an event's bytes 6 and 7 read
#: as the code and the flags, which a TRADE's maker_client spans).
COMMAND_STRUCT = struct.Struct("<BBHHBBBBHIQQQqqQ")
EVENT_STRUCT = struct.Struct("<BBHHBBQQQQqqq")
assert COMMAND_STRUCT.size == 64 and EVENT_STRUCT.size == 64
_LAST, _TRADE = int(EventFlag.LAST), int(EventType.TRADE)


class Command(NamedTuple):
    """One pt_command_t, in ticks and lots. Build it with the class methods."""

    op: int
    side: int = 0
    symbol_id: int = SYMBOL_NONE
    client_id: int = 0
    order_type: int = 0
    tif: int = 0
    stp: int = 0
    flags: int = 0
    ts_ns: int = 0
    order_id: int = 0
    cloid: int = 0
    price: int = 0
    qty: int = 0

    @classmethod
    def new(
        cls,
        client_id: int,
        symbol_id: int,
        side: int,
        qty: int,
        price: int | None = None,
        *,
        order_type: int = OrderType.LIMIT,
        tif: int = Tif.GTC,
        stp: int = Stp.NONE,
        post_only: bool = False,
        cloid: int = 0,
        ts_ns: int = 0,
    ) -> Command:
        flags = (Flag.POST_ONLY if post_only else 0) | (Flag.HAS_PRICE if price is not None else 0)
        return cls(Op.NEW, side, symbol_id, client_id, order_type, tif, stp, flags, ts_ns, 0, cloid, price or 0, qty)

    # cancel and modify are built positionally: a strategy sends one per requote, and the keyword form costs
    # twice as much.
    @classmethod
    def cancel(cls, client_id: int, order_id: int, *, ts_ns: int = 0) -> Command:
        return cls(_CANCEL, 0, SYMBOL_NONE, client_id, 0, 0, 0, 0, ts_ns, order_id, 0, 0, 0)

    @classmethod
    def modify(
        cls, client_id: int, order_id: int, *, qty: int | None = None, price: int | None = None, ts_ns: int = 0
    ) -> Command:
        flags = (_HAS_QTY if qty is not None else 0) | (_HAS_PRICE if price is not None else 0)
        return cls(_MODIFY, 0, SYMBOL_NONE, client_id, 0, 0, 0, flags, ts_ns, order_id, 0, price or 0, qty or 0)

    def at(self, ts_ns: int) -> Command:
        """This command stamped ``ts_ns`` (``_replace(ts_ns=...)``, at a fifth of its cost)."""
        return _make_command(self[:8] + (ts_ns,) + self[9:])

    @classmethod
    def mass_cancel(
        cls, client_id: int, symbol_id: int | None = None, *, ts_ns: int = 0, disconnect: bool = False
    ) -> Command:
        """Cancels the client's orders (on one symbol if given). ``disconnect``: the engine process cancels for a
        client that is gone; the CANCELED events then say DISCONNECT instead of MASS_CANCEL."""
        flags = Flag.DISCONNECT if disconnect else 0
        if symbol_id is None:
            return cls(Op.MASS_CANCEL, client_id=client_id, flags=flags, ts_ns=ts_ns)
        return cls(Op.MASS_CANCEL, symbol_id=symbol_id, client_id=client_id, flags=flags | Flag.HAS_SYMBOL, ts_ns=ts_ns)

    @classmethod
    def kill_reset(cls, client_id: int, *, ts_ns: int = 0) -> Command:
        return cls(Op.KILL_RESET, client_id=client_id, ts_ns=ts_ns)

    # Operator ops (the engine loop takes them only from its control plane).
    @classmethod
    def halt(cls, symbol_id: int, *, ts_ns: int = 0) -> Command:
        return cls(Op.HALT, symbol_id=symbol_id, client_id=CLIENT_NONE, ts_ns=ts_ns)

    @classmethod
    def resume(cls, symbol_id: int, *, ts_ns: int = 0) -> Command:
        return cls(Op.RESUME, symbol_id=symbol_id, client_id=CLIENT_NONE, ts_ns=ts_ns)

    @classmethod
    def kill(cls, client_id: int, *, ts_ns: int = 0) -> Command:
        return cls(Op.KILL, client_id=client_id, ts_ns=ts_ns)

    @classmethod
    def set_limit(cls, client_id: int, limit: int, value: int, *, ts_ns: int = 0) -> Command:
        """Sets one of a client's limits (``Limit``: its side byte) to ``value`` (qty; 0 switches it off)."""
        return cls(Op.SET_LIMIT, side=limit, client_id=client_id, qty=value, ts_ns=ts_ns)

    def pack(self) -> bytes:
        return COMMAND_STRUCT.pack(
            self.op, self.side, self.symbol_id, self.client_id, self.order_type, self.tif, self.stp, self.flags,
            0, 0, self.ts_ns, self.order_id, self.cloid, self.price, self.qty, 0,
        )  # fmt: skip

    @classmethod
    def unpack(cls, raw: bytes | memoryview, offset: int = 0) -> Command:
        v = COMMAND_STRUCT.unpack_from(raw, offset)
        return cls(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[10], v[11], v[12], v[13], v[14])


def _name(enum_cls: type[enum.IntEnum], value: int) -> str:
    try:
        return str(enum_cls(value).name)
    except ValueError:
        return str(value)


class Event(NamedTuple):
    """One pt_event_t. ``code``, ``ref`` and ``aux`` are the wire's unions; see the properties. ``flags`` is
    ``EventFlag`` bits (``last``), except in a TRADE, where code and flags are the maker's client id."""

    type: int
    side: int
    symbol_id: int
    client_id: int
    code: int
    flags: int
    seq: int
    ts_ns: int
    order_id: int
    ref: int
    price: int
    qty: int
    aux: int

    # Per-type names of the generic slots (pt_wire.h has the table).
    @property
    def reason(self) -> int:
        return self.code

    @property
    def liquidity(self) -> int:
        return self.code

    @property
    def maker_client(self) -> int:
        return self.code | self.flags << 8

    @property
    def last(self) -> bool:
        """The last event of its command for the command's client: nothing more of that command comes now."""
        return bool(self.flags & _LAST) and self.type != _TRADE

    @property
    def acked_op(self) -> int:
        return self.code

    @property
    def cloid(self) -> int:
        return self.ref

    @property
    def trade_id(self) -> int:
        return self.ref

    @property
    def order_count(self) -> int:
        return self.ref

    @property
    def leaves(self) -> int:
        return self.aux

    @property
    def maker_order_id(self) -> int:
        return self.aux

    @property
    def type_name(self) -> str:
        return _name(EventType, self.type)

    def to_dict(self, symbol_names: dict[int, str] | None = None) -> dict[str, Any]:
        """The event with its fields named for its type (the JSON of the command-file tools)."""
        symbol: str | int | None = self.symbol_id
        if symbol_names is not None:
            symbol = symbol_names.get(self.symbol_id, None if self.symbol_id == SYMBOL_NONE else self.symbol_id)
        side = _name(Side, self.side).lower() if self.side else None
        out: dict[str, Any] = {"type": self.type_name, "seq": self.seq, "ts": self.ts_ns}
        t = self.type
        if t == EventType.TRADE:
            out.update(
                symbol=symbol, price=self.price, qty=self.qty, trade_id=self.trade_id, side=side,
                maker_order_id=self.maker_order_id, taker_order_id=self.order_id,
                maker_client=self.maker_client, taker_client=self.client_id,
            )  # fmt: skip
        elif t == EventType.BOOK_DELTA:
            out.update(symbol=symbol, side=side, price=self.price, qty=self.qty, order_count=self.order_count)
        elif t == EventType.FILL:
            out.update(
                client=self.client_id, symbol=symbol, side=side, order_id=self.order_id, trade_id=self.trade_id,
                price=self.price, qty=self.qty, leaves=self.leaves, liquidity=_name(Liquidity, self.liquidity),
            )  # fmt: skip
        else:
            out.update(client=self.client_id, symbol=symbol, side=side, order_id=self.order_id, cloid=self.cloid)
            out.update(price=self.price, qty=self.qty, leaves=self.leaves)
            if t == EventType.REJECT:
                out["reason"] = _name(RejectReason, self.reason)
            elif t == EventType.CANCELED:
                out["reason"] = _name(CancelReason, self.reason)
            elif t == EventType.ACK:
                out["op"] = _name(Op, self.acked_op).lower()
        if self.last:
            out["last"] = True
        return out

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{self.type_name}({fields})"

    @classmethod
    def unpack_all(cls, raw: bytes | bytearray | memoryview) -> list[Event]:
        return list(map(_make_event, EVENT_STRUCT.iter_unpack(raw)))

    @staticmethod
    def unpack_at(raw: bytes | bytearray | memoryview, offset: int) -> Event:
        """The event whose wire bytes start at ``offset`` of ``raw``."""
        return _make_event(_unpack_event(raw, offset))

    def pack(self) -> bytes:
        return EVENT_STRUCT.pack(*self)


_make_command = partial(tuple.__new__, Command)
_CANCEL, _MODIFY = int(Op.CANCEL), int(Op.MODIFY)
_HAS_QTY, _HAS_PRICE = int(Flag.HAS_QTY), int(Flag.HAS_PRICE)
_unpack_event = EVENT_STRUCT.unpack_from
_make_event = partial(tuple.__new__, Event)  # about 40% cheaper than Event._make per event


class Events(Sequence[Event]):
    """One command's events as the engine wrote them, each decoded into an ``Event`` only when it is read.

    ``Engine``'s human-unit calls return this rather than a list: building every ``Event`` tuple (~0.4 us each)
    was a third of a submit and half of a cancel, and a caller mostly reads one of them (the ACK's order id).
    A caller that iterates over them all pays more than the list cost (~0.3 us per call: the copy, this object
    and a Python-level ``__iter__``). It holds a copy of the wire bytes, so it stays valid after later
    commands; each read decodes afresh. It is a read-only ``Sequence``: indexing, slicing (a list), iteration
    and ``len`` behave as a list's, and it compares equal to a list of the same ``Event`` values (what the
    reference engine returns) and to an equal ``Events``.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        # Engine's hot calls skip this (object.__new__, then _raw set: a Python __init__ is ~100 ns a call):
        # _raw stays the only state.
        self._raw = raw  # whole pt_event_t records

    def __len__(self) -> int:
        return len(self._raw) // MSG_SIZE

    @overload
    def __getitem__(self, index: SupportsIndex) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Event | list[Event]:
        if index.__class__ is int:
            # One struct call, no bounds arithmetic: unpack_from takes a negative offset from the end, as a
            # list takes a negative index, and fails beyond either end.
            try:
                return _make_event(_unpack_event(self._raw, index * MSG_SIZE))
            except (struct.error, OverflowError):  # beyond either end; OverflowError beyond a C offset
                raise IndexError("event index out of range") from None
        if isinstance(index, slice):
            return list(self)[index]
        return self[_index(index)]

    def __iter__(self) -> Iterator[Event]:
        return map(_make_event, EVENT_STRUCT.iter_unpack(self._raw))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Events):
            return self._raw == other._raw
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are unhashable

    def __add__(self, other: Sequence[Event]) -> list[Event]:
        return [*self, *other]

    def __radd__(self, other: Sequence[Event]) -> list[Event]:
        return [*other, *self]

    def __repr__(self) -> str:
        return repr(list(self))
