"""The wire header, the cffi view of the compiled C and the numpy dtypes describe the same bytes.

``include/pt_wire.h`` is the single source of truth and ``c_engine/_wire.py`` mirrors it by hand: the tests
here parse the header and fail on any enum, member, value, constant or struct field that the Python side does
not have exactly, then check both against the compiled library.
"""

from __future__ import annotations

import enum
import inspect
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

import c_engine
from c_engine import _cengine, _errors, _wire
from c_engine._types import COMMAND_STRUCT, EVENT_STRUCT

ffi, lib = _cengine.ffi, _cengine.lib

_NUMPY_TO_C = {"|u1": "uint8_t", "<u2": "uint16_t", "<u4": "uint32_t", "<u8": "uint64_t", "<i8": "int64_t"}
_C_SIZE = {"uint8_t": 1, "uint16_t": 2, "uint32_t": 4, "uint64_t": 8, "int64_t": 8}

# ---- a small, strict reader of pt_wire.h -----------------------------------------------------------------
# The header promises one declaration per line, literal integer enum values and no preprocessor logic inside
# structs. Anything else is an error here rather than silently skipped, so the comparison below cannot pass by
# missing a member.


class HeaderError(ValueError):
    pass


class Header(NamedTuple):
    enums: dict[str, list[tuple[str, int]]]  # C enum name -> [(member, value)] in declaration order
    defines: dict[str, int]  # every #define with a value
    structs: dict[str, tuple[list[tuple[str, str, int]], int]]  # typedef name -> ([(field, type, offset)], size)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _int(literal: str) -> int:
    if not re.fullmatch(r"-?(0[xX][0-9A-Fa-f]+|\d+)", literal):
        raise HeaderError(f"not a literal integer: {literal!r}")
    return int(literal, 0)


def _parse_enums(text: str) -> dict[str, list[tuple[str, int]]]:
    enums: dict[str, list[tuple[str, int]]] = {}
    found = list(re.finditer(r"\benum\s+(\w+)\s*\{(.*?)\}\s*;", text, flags=re.S))
    if len(found) != len(re.findall(r"\benum\b", text)):
        raise HeaderError("an enum that is not `enum name { A = 1, ... };`")
    for match in found:
        members = []
        for entry in match.group(2).split(","):
            if not entry.strip():
                continue
            member = re.fullmatch(r"\s*(\w+)\s*=\s*(\S+)\s*", entry)
            if member is None:
                raise HeaderError(f"enum {match.group(1)}: {entry.strip()!r} is not `NAME = value`")
            members.append((member.group(1), _int(member.group(2))))
        enums[match.group(1)] = members
    return enums


def _parse_defines(text: str) -> dict[str, int]:
    defines = {}
    for name, value in re.findall(r"^\s*#define\s+(\w+)[ \t]*([^\n]*)$", text, flags=re.M):
        if value.strip():  # not an include guard
            defines[name] = _int(value.strip())
    return defines


def _align(offset: int, size: int) -> int:
    return (offset + size - 1) // size * size


def _parse_members(body: str, where: str, kind: str) -> tuple[list[tuple[str, str, int]], int, int]:
    """The members of a struct or union body as ([(field, C type, offset from the body's start)], size, alignment),
    with C's natural alignment. A struct may hold anonymous unions, a union anonymous structs (one level each
    way is what the header uses); anything else is refused."""
    fields: list[tuple[str, str, int]] = []
    offset = size = align = 0
    rest = body.strip()
    while rest:
        if plain := re.match(r"(\w+)\s+(\w+)\s*;", rest):
            if plain.group(1) in ("struct", "union"):
                raise HeaderError(f"{where}: a named nested {plain.group(1)}")
            c_type, name = plain.group(1), plain.group(2)
            members, m_size, m_align = [(name, c_type, 0)], _C_SIZE[c_type], _C_SIZE[c_type]
            rest = rest[plain.end() :].strip()
        elif nested := re.match(r"(struct|union)\s*\{", rest):
            if nested.group(1) == kind:
                raise HeaderError(f"{where}: a {kind} directly inside a {kind}")
            depth, end = 1, nested.end()
            while depth:
                if end >= len(rest):
                    raise HeaderError(f"{where}: an unclosed {nested.group(1)}")
                depth += {"{": 1, "}": -1}.get(rest[end], 0)
                end += 1
            closing = re.match(r"\s*;", rest[end:])
            if closing is None:
                raise HeaderError(f"{where}: a nested {nested.group(1)} that is not anonymous")
            members, m_size, m_align = _parse_members(rest[nested.end() : end - 1], where, nested.group(1))
            if not members:
                raise HeaderError(f"{where}: an empty {nested.group(1)}")
            rest = rest[end + closing.end() :].strip()
        else:
            raise HeaderError(f"{where}: cannot read {rest!r}")
        at = 0 if kind == "union" else _align(offset, m_align)
        fields.extend((name, c_type, at + o) for name, c_type, o in members)
        offset = at + m_size if kind == "struct" else 0
        size = max(size, at + m_size)
        align = max(align, m_align)
    return fields, _align(size, align) if align else 0, align


def _parse_structs(text: str) -> dict[str, tuple[list[tuple[str, str, int]], int]]:
    """typedef name -> ([(field, C type, offset)], sizeof); the members of an anonymous union share its offset."""
    structs = {}
    found = [m.start() for m in re.finditer(r"typedef\s+struct\s+\w+\s*\{", text)]
    if len(found) != len(re.findall(r"\btypedef\s+struct\b", text)):
        raise HeaderError("a struct that is not `typedef struct name { ... } name_t;`")
    for start in found:
        opening = text.index("{", start)
        depth, end = 1, opening + 1
        while depth:
            if end >= len(text):
                raise HeaderError("an unclosed struct")
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        name = re.match(r"\s*(\w+)\s*;", text[end:])
        if name is None:
            raise HeaderError("a struct that is not `typedef struct name { ... } name_t;`")
        fields, size, _ = _parse_members(text[opening + 1 : end - 1], name.group(1), "struct")
        structs[name.group(1)] = (fields, size)
    return structs


def parse_header(path: Path) -> Header:
    text = _strip_comments(path.read_text())
    return Header(_parse_enums(text), _parse_defines(text), _parse_structs(text))


HEADER = parse_header(_wire.HEADER)

# C enum -> (its Python mirror, the prefix its members drop).
ENUMS: dict[str, tuple[type[enum.IntEnum], str]] = {
    "pt_op": (_wire.Op, "PT_OP_"),
    "pt_limit": (_wire.Limit, "PT_LIMIT_"),
    "pt_side": (_wire.Side, "PT_SIDE_"),
    "pt_order_type": (_wire.OrderType, "PT_TYPE_"),
    "pt_tif": (_wire.Tif, "PT_TIF_"),
    "pt_stp": (_wire.Stp, "PT_STP_"),
    "pt_command_flag": (_wire.Flag, "PT_FLAG_"),
    "pt_event_type": (_wire.EventType, "PT_EV_"),
    "pt_reject_reason": (_wire.RejectReason, "PT_REJ_"),
    "pt_cancel_reason": (_wire.CancelReason, "PT_CXL_"),
    "pt_liquidity": (_wire.Liquidity, "PT_LIQ_"),
    "pt_event_flag": (_wire.EventFlag, "PT_EVF_"),
}
CONSTANTS = {"PT_MSG_SIZE": _wire.MSG_SIZE, "PT_SYMBOL_NONE": _wire.SYMBOL_NONE, "PT_CLIENT_NONE": _wire.CLIENT_NONE}
# typedef -> (its field list and dtype in _wire).
STRUCTS = {
    "pt_command_t": (_wire.COMMAND_FIELDS, _wire.COMMAND_DTYPE),
    "pt_event_t": (_wire.EVENT_FIELDS, _wire.EVENT_DTYPE),
}


def _dtype_fields(dtype: np.dtype[np.void]) -> list[tuple[str, str, int]]:
    assert dtype.fields is not None
    return [(name, _NUMPY_TO_C[dtype.fields[name][0].str], dtype.fields[name][1]) for name in dtype.names or ()]


# ---- the header against the Python mirror -------------------------------------------------------------------


def test_every_header_enum_has_a_python_enum() -> None:
    assert set(HEADER.enums) == set(ENUMS)


@pytest.mark.parametrize("c_enum", sorted(ENUMS))
def test_python_enum_has_the_header_members_values_and_order(c_enum: str) -> None:
    enum_cls, prefix = ENUMS[c_enum]
    assert all(name.startswith(prefix) for name, _ in HEADER.enums[c_enum])
    header = [(name.removeprefix(prefix), value) for name, value in HEADER.enums[c_enum]]
    # __members__ lists aliases too, which a header with one name per value has none of.
    assert [(name, member.value) for name, member in enum_cls.__members__.items()] == header


def test_every_header_constant_has_the_same_python_value() -> None:
    assert HEADER.defines == CONSTANTS


@pytest.mark.parametrize("struct", sorted(STRUCTS))
def test_python_fields_and_dtype_are_the_header_struct(struct: str) -> None:
    fields, dtype = STRUCTS[struct]
    header_fields, size = HEADER.structs[struct]
    assert fields == header_fields
    assert _dtype_fields(dtype) == header_fields
    assert dtype.itemsize == size == _wire.MSG_SIZE


def test_every_header_struct_has_a_dtype() -> None:
    assert set(HEADER.structs) == set(STRUCTS)


@pytest.mark.parametrize(
    "text",
    [
        "enum pt_x { PT_X_A = 1 << 2, };",  # an expression
        "enum pt_x { PT_X_A, };",  # an implicit value
        "typedef enum { PT_X_A = 1 } pt_x_t;",  # an anonymous enum
        "#define PT_X (1 + 2)",
        "typedef struct pt_x { uint8_t a[4]; } pt_x_t;",  # an array
        "typedef struct pt_x { uint8_t a; struct { uint8_t b; }; } pt_x_t;",  # a struct in a struct
        "typedef struct pt_x { union { uint8_t a; union { uint8_t b; }; }; } pt_x_t;",  # a union in a union
        "typedef struct pt_x { union { uint8_t a; } u; } pt_x_t;",  # a named union
    ],
)
def test_the_header_reader_refuses_what_it_cannot_read(text: str, tmp_path: Path) -> None:
    path = tmp_path / "h.h"
    path.write_text(text)
    with pytest.raises((HeaderError, KeyError)):
        parse_header(path)


# ---- the compiled library --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ctype", sorted(STRUCTS))
def test_numpy_dtype_has_the_c_struct_fields_offsets_and_types(ctype: str) -> None:
    dtype = STRUCTS[ctype][1]
    c_fields = {name: (f.type.cname, f.offset) for name, f in ffi.typeof(ctype).fields}
    assert ffi.sizeof(ctype) == dtype.itemsize == 64
    assert dict((name, (c_type, offset)) for name, c_type, offset in _dtype_fields(dtype)) == c_fields


def test_struct_formats_cover_64_bytes() -> None:
    assert COMMAND_STRUCT.size == EVENT_STRUCT.size == 64


@pytest.mark.parametrize("c_enum", sorted(ENUMS))
def test_every_c_enum_constant_has_the_same_python_value(c_enum: str) -> None:
    enum_cls, prefix = ENUMS[c_enum]
    c_names = {name[len(prefix) :]: getattr(lib, name) for name in dir(lib) if name.startswith(prefix)}
    assert c_names == {member.name: member.value for member in enum_cls}


def test_every_c_status_code_has_its_exception_class() -> None:
    c_status = {name[len("PT_E_") :]: getattr(lib, name) for name in dir(lib) if name.startswith("PT_E_")}
    mapped = {cls.code for cls in _errors._BY_STATUS.values()}
    assert set(c_status.values()) == mapped
    assert {s.name for s in _errors.EngineStatus if s.value < 0} == set(c_status)


def test_reserved_constants_match_the_header() -> None:
    assert lib.PT_SYMBOL_NONE == _wire.SYMBOL_NONE and lib.PT_CLIENT_NONE == _wire.CLIENT_NONE
    assert lib.PT_MSG_SIZE == _wire.MSG_SIZE


def test_public_api_list_is_complete_and_sorted() -> None:
    public = {
        name for name, value in vars(c_engine).items() if not name.startswith("_") and not inspect.ismodule(value)
    }
    public |= {"Book", "Engine", "SnapshotError", "SnapshotInfo"}  # lazy: they need the compiled extension
    assert c_engine.__all__ == sorted(set(c_engine.__all__))
    assert set(c_engine.__all__) == public
