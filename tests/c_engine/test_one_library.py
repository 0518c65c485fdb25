"""The C code is compiled once, into libptcore.so, and every cffi extension runs that one copy: a
``pt_engine_t *`` made through ``c_engine._cengine`` is run by ``hotpath._cloop``'s loop with the code that made
it, not with a second build of the same sources (``c_engine/_cffi_support.py``).

hotpath's extensions are looked at as what is under test here, shared objects: loaded by path with ctypes
(the same mapping Python's import makes), not imported as modules (they are hotpath's private names).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import c_engine._cengine
import hotpath
from c_engine import Engine, EngineConfig

CORE = "libptcore.so"


def extension(package_dir: Path, stem: str) -> str:
    """The file ``import`` would load for the extension: the first suffix of the import system's order that
    exists (an editable install may leave an ``.abi3.so`` beside the ``.cpython-311-...so`` make builds)."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = package_dir / f"{stem}{suffix}"
        if path.exists():
            return str(path)
    raise FileNotFoundError(f"no {stem} extension in {package_dir}")


HOTPATH = Path(hotpath.__file__).resolve().parent
EXTENSIONS = {
    "c_engine._cengine": str(c_engine._cengine.__file__),
    "hotpath._cring": extension(HOTPATH, "_cring"),
    "hotpath._cloop": extension(HOTPATH, "_cloop"),
}


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


_libc = ctypes.CDLL(None)
_libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
_libc.dladdr.restype = ctypes.c_int


def resolve(path: str, symbol: str) -> tuple[int, str]:
    """(address, file) of the function that ``symbol`` is for the extension at path: dlsym on its own handle,
    which searches the extension and the libraries it links, as its calls are resolved."""
    handle = ctypes.CDLL(path, mode=os.RTLD_LAZY)  # the loaded object when it is loaded already
    address = ctypes.cast(getattr(handle, symbol), ctypes.c_void_p).value
    assert address is not None
    info = _DlInfo()
    assert _libc.dladdr(address, ctypes.byref(info)) != 0
    assert info.dli_fname is not None
    return address, os.path.realpath(info.dli_fname.decode())


def mapped_cores() -> set[str]:
    """The files named libptcore.so mapped into this process."""
    paths = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and os.path.basename(fields[5]) == CORE:
            paths.add(os.path.realpath(fields[5]))
    return paths


def test_every_extension_maps_the_same_one_library() -> None:
    for path in EXTENSIONS.values():
        resolve(path, "pt_engine_create")
    assert len(mapped_cores()) == 1


@pytest.mark.parametrize("symbol", ["pt_engine_create", "pt_engine_submit", "pt_loop_create", "pt_ring_try_push"])
def test_engine_and_loop_extensions_resolve_a_function_to_the_same_address_in_the_library(symbol: str) -> None:
    (core,) = mapped_cores()
    found = {name: resolve(path, symbol) for name, path in EXTENSIONS.items()}
    assert len(set(found.values())) == 1, found
    (_, path), *_ = found.values()
    assert path == core


def test_the_library_exports_only_the_c_api_and_the_python_glue() -> None:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not installed")
    (core,) = mapped_cores()
    out = subprocess.run([nm, "-D", "--defined-only", core], check=True, capture_output=True, text=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert "pt_engine_submit" in names and "pt_loop_run" in names and "py_new_limit" in names
    assert [n for n in names if not n.startswith(("pt_", "py_"))] == []


def test_an_engine_made_through_c_engine_gets_a_loop_from_the_loop_extension() -> None:
    cloop = ctypes.CDLL(EXTENSIONS["hotpath._cloop"], mode=os.RTLD_LAZY)
    control_bytes = 256  # PT_LOOP_CONTROL_BYTES
    raw = ctypes.create_string_buffer(control_bytes + 64)
    control = ctypes.addressof(raw) + (-ctypes.addressof(raw) % 64)  # the control block is cache-line aligned
    cloop.pt_loop_control_init.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    cloop.pt_loop_create.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    cloop.pt_loop_destroy.argtypes = [ctypes.c_void_p]
    assert cloop.pt_loop_control_init(control, control_bytes) == 0
    engine = Engine(EngineConfig(max_orders=64))
    loop = ctypes.c_void_p()
    # The raw pointer crosses from one extension to the other as is: both call the same library.
    assert cloop.pt_loop_create(engine._handle, control, control_bytes, ctypes.byref(loop)) == 0
    assert loop.value
    cloop.pt_loop_destroy(loop)
