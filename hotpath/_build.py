"""Builds the cffi extension ``hotpath._cring`` (API mode): the SPSC ring of ``include/pt_ring.h`` and the
broadcast ring of ``include/pt_bcast.h``.

Used by ``pip install -e .`` (setup.py's ``cffi_modules``) and by ``make build``
(``python hotpath/_build.py`` compiles in place), the same pattern as ``c_engine/_build.py``.
The cdef is the public headers themselves, minus preprocessor lines, so the C API is declared once.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INCLUDE = HERE / "include"
WIRE_INCLUDE = ROOT / "c_engine" / "include"  # pt_wire.h: a slot is one wire message
SOURCES = [HERE / "src" / "ring.c", HERE / "src" / "bcast.c"]  # src/loop.c needs the engine: _build_loop.py
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]


# Loaded by path, not imported: setuptools runs this script before the package can be imported.
_SUPPORT_FILE = Path(__file__).resolve().parents[1] / "c_engine" / "_cffi_support.py"
_support = SimpleNamespace(**runpy.run_path(str(_SUPPORT_FILE)))
header_cdef = _support.header_cdef
_STANDALONE = __name__ == "__main__"


def _path(p: Path) -> str:
    return _support.source_path(p, _STANDALONE)


# Python's per-message path: `const char *` lets cffi pass a bytes object without a copy or a
# from_buffer call (about 0.1 us each); the ring itself takes `const void *`.
GLUE = r"""
#include "pt_ring.h"
#include "pt_bcast.h"

static int py_ring_push(pt_ring_t *r, const char *msg64)
{
    return pt_ring_try_push(r, msg64);
}

static int py_bcast_publish(pt_bcast_t *b, const char *msg64)
{
    return pt_bcast_publish(b, msg64);
}
"""

GLUE_CDEF = """
int py_ring_push(pt_ring_t *r, const char *msg64);
int py_bcast_publish(pt_bcast_t *b, const char *msg64);
"""

ffi = FFI()
ffi.cdef(header_cdef(INCLUDE / "pt_ring.h"))
ffi.cdef(header_cdef(INCLUDE / "pt_bcast.h"))
ffi.cdef(GLUE_CDEF)
ffi.set_source(
    "hotpath._cring",
    GLUE,
    sources=[_path(p) for p in SOURCES],
    include_dirs=[_path(INCLUDE), _path(WIRE_INCLUDE)],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    # Compile in place: the .so lands next to this file, as an editable install expects.
    built = _support.compile_in_place(ffi, HERE, "_cring", verbose="-v" in sys.argv)
    print(f"built {built.relative_to(_support.ROOT)}")
