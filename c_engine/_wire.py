"""The wire layout, read from ``include/pt_wire.h`` so C and Python cannot drift.

The header is the single source of truth: this module parses its enums and the
two 64-byte structs and builds the ``IntEnum`` classes and numpy structured
dtypes from them. ``tests/c_engine/test_wire_layout.py`` checks the result
against the compiled C (``offsetof``/``sizeof`` through cffi).
"""

from __future__ import annotations

import enum
import re
from pathlib import Path

import numpy as np

__all__ = [
    "CancelReason",
    "COMMAND_DTYPE",
    "EVENT_DTYPE",
    "EventType",
    "Flag",
    "HEADER",
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

HEADER = Path(__file__).with_name("include") / "pt_wire.h"

_C_TO_NUMPY = {
    "uint8_t": "u1",
    "uint16_t": "<u2",
    "uint32_t": "<u4",
    "uint64_t": "<u8",
    "int64_t": "<i8",
}
_C_SIZE = {"uint8_t": 1, "uint16_t": 2, "uint32_t": 4, "uint64_t": 8, "int64_t": 8}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _parse_enums(text: str) -> dict[str, dict[str, int]]:
    enums: dict[str, dict[str, int]] = {}
    for name, body in re.findall(r"enum\s+(\w+)\s*\{(.*?)\};", text, flags=re.S):
        members = re.findall(r"(\w+)\s*=\s*(-?\d+)", body)
        enums[name] = {member: int(value) for member, value in members}
    return enums


def _parse_struct(text: str, name: str) -> tuple[list[tuple[str, str, int]], int]:
    """Return [(field, c_type, offset)] and the struct size, with anonymous unions overlapping."""
    match = re.search(r"typedef\s+struct\s+" + name + r"\s*\{(.*?)\}\s*\w+_t\s*;", text, flags=re.S)
    if match is None:
        raise RuntimeError(f"struct {name} not found in {HEADER}")
    body = match.group(1)
    fields: list[tuple[str, str, int]] = []
    offset = 0
    for chunk in re.finditer(r"union\s*\{(.*?)\}\s*;|(\w+)\s+(\w+)\s*(\[\s*\d+\s*\])?\s*;", body, flags=re.S):
        if chunk.group(1) is not None:
            members = re.findall(r"(\w+)\s+(\w+)\s*;", chunk.group(1))
            size = max(_C_SIZE[c_type] for c_type, _ in members)
            offset = _align(offset, size)
            fields.extend((field, c_type, offset) for c_type, field in members)
            offset += size
        else:
            c_type, field = chunk.group(2), chunk.group(3)
            size = _C_SIZE[c_type]
            offset = _align(offset, size)
            fields.append((field, c_type, offset))
            offset += size
    return fields, offset


def _align(offset: int, size: int) -> int:
    return (offset + size - 1) // size * size


def _dtype(fields: list[tuple[str, str, int]], size: int) -> np.dtype:
    return np.dtype(
        {
            "names": [f for f, _, _ in fields],
            "formats": [_C_TO_NUMPY[t] for _, t, _ in fields],
            "offsets": [o for _, _, o in fields],
            "itemsize": size,
        }
    )


def _int_enum(name: str, members: dict[str, int], prefix: str) -> type[enum.IntEnum]:
    return enum.IntEnum(name, {k[len(prefix):]: v for k, v in members.items()})  # type: ignore[return-value]


_TEXT = _strip_comments(HEADER.read_text())
_ENUMS = _parse_enums(_TEXT)

MSG_SIZE = int(re.search(r"#define\s+PT_MSG_SIZE\s+(\d+)", _TEXT).group(1))  # type: ignore[union-attr]
SYMBOL_NONE = int(re.search(r"#define\s+PT_SYMBOL_NONE\s+(0x[0-9A-Fa-f]+)", _TEXT).group(1), 16)  # type: ignore[union-attr]
CLIENT_NONE = int(re.search(r"#define\s+PT_CLIENT_NONE\s+(0x[0-9A-Fa-f]+)", _TEXT).group(1), 16)  # type: ignore[union-attr]

Op = _int_enum("Op", _ENUMS["pt_op"], "PT_OP_")
Side = _int_enum("Side", _ENUMS["pt_side"], "PT_SIDE_")
OrderType = _int_enum("OrderType", _ENUMS["pt_order_type"], "PT_TYPE_")
Tif = _int_enum("Tif", _ENUMS["pt_tif"], "PT_TIF_")
Stp = _int_enum("Stp", _ENUMS["pt_stp"], "PT_STP_")
Flag = _int_enum("Flag", _ENUMS["pt_command_flag"], "PT_FLAG_")
EventType = _int_enum("EventType", _ENUMS["pt_event_type"], "PT_EV_")
RejectReason = _int_enum("RejectReason", _ENUMS["pt_reject_reason"], "PT_REJ_")
CancelReason = _int_enum("CancelReason", _ENUMS["pt_cancel_reason"], "PT_CXL_")
Liquidity = _int_enum("Liquidity", _ENUMS["pt_liquidity"], "PT_LIQ_")

COMMAND_FIELDS, _COMMAND_SIZE = _parse_struct(_TEXT, "pt_command")
EVENT_FIELDS, _EVENT_SIZE = _parse_struct(_TEXT, "pt_event")
COMMAND_DTYPE = _dtype(COMMAND_FIELDS, _COMMAND_SIZE)
EVENT_DTYPE = _dtype(EVENT_FIELDS, _EVENT_SIZE)
assert COMMAND_DTYPE.itemsize == MSG_SIZE and EVENT_DTYPE.itemsize == MSG_SIZE
