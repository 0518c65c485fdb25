"""The wire header, the cffi view of the compiled C and the numpy dtypes describe the same bytes."""

from __future__ import annotations

import pytest

from c_engine import COMMAND_DTYPE, EVENT_DTYPE, CancelReason, EventType, Op, RejectReason
from c_engine import _errors, _wire
from c_engine._cengine import ffi, lib
from c_engine._types import COMMAND_STRUCT, EVENT_STRUCT


_NUMPY_TO_C = {"|u1": "uint8_t", "<u2": "uint16_t", "<u4": "uint32_t", "<u8": "uint64_t", "<i8": "int64_t"}


@pytest.mark.parametrize(("ctype", "dtype"), [("pt_command_t", COMMAND_DTYPE), ("pt_event_t", EVENT_DTYPE)])
def test_numpy_dtype_has_the_c_struct_fields_offsets_and_types(ctype: str, dtype) -> None:
    c_fields = {name: (f.type.cname, f.offset) for name, f in ffi.typeof(ctype).fields}
    np_fields = {name: (_NUMPY_TO_C[field_dtype.str], offset) for name, (field_dtype, offset) in dtype.fields.items()}
    assert ffi.sizeof(ctype) == dtype.itemsize == 64
    assert np_fields == c_fields


def test_struct_formats_cover_64_bytes() -> None:
    assert COMMAND_STRUCT.size == EVENT_STRUCT.size == 64


@pytest.mark.parametrize(
    ("enum_cls", "prefix"),
    [(Op, "PT_OP_"), (EventType, "PT_EV_"), (RejectReason, "PT_REJ_"), (CancelReason, "PT_CXL_")],
)
def test_every_c_enum_constant_has_the_same_python_value(enum_cls, prefix: str) -> None:
    c_names = {name[len(prefix):]: getattr(lib, name) for name in dir(lib) if name.startswith(prefix)}
    assert c_names == {member.name: member.value for member in enum_cls}


def test_every_c_status_code_has_its_exception_class() -> None:
    c_status = {name[len("PT_E_"):]: getattr(lib, name) for name in dir(lib) if name.startswith("PT_E_")}
    mapped = {cls.code for cls in _errors._BY_STATUS.values()}
    assert set(c_status.values()) == mapped
    assert {s.name for s in _errors.EngineStatus if s.value < 0} == set(c_status)


def test_reserved_constants_match_the_header() -> None:
    assert lib.PT_SYMBOL_NONE == _wire.SYMBOL_NONE and lib.PT_CLIENT_NONE == _wire.CLIENT_NONE


def test_public_api_list_is_complete_and_sorted() -> None:
    import c_engine

    import inspect

    public = {name for name, value in vars(c_engine).items() if not name.startswith("_") and not inspect.ismodule(value)}
    public |= {"Book", "Engine"}  # lazy: they need the compiled extension
    assert c_engine.__all__ == sorted(set(c_engine.__all__))
    assert set(c_engine.__all__) == public
