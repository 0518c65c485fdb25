"""Builds the cffi extension ``hotpath._cring`` (API mode): Python's view of the SPSC ring of
``include/pt_ring.h``, the broadcast ring of ``include/pt_bcast.h``, the incremental book features of
``include/book_features.h`` (``hotpath.book_features``) and a backtest's split of a watched engine run,
``include/pt_run_split.h`` (``hotpath.run_split``).

The rings and their Python glue (``src/py_ring.c``) are compiled into the one C library, libptcore.so
(``c_engine/_cffi_support.py``); this extension only wraps them, and links that library with rpath
``$ORIGIN/../c_engine``. Used by ``pip install -e .`` (setup.py's ``cffi_modules``) and by ``make build``
(``python hotpath/_build.py`` compiles in place), the same pattern as ``c_engine/_build.py``.
The cdef is the headers themselves, minus preprocessor lines, so the C API is declared once.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INCLUDE = HERE / "include"
WIRE_INCLUDE = ROOT / "c_engine" / "include"  # pt_wire.h: a slot is one wire message
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]


# Loaded by path, not imported: setuptools runs this script before the package can be imported.
_SUPPORT_FILE = Path(__file__).resolve().parents[1] / "c_engine" / "_cffi_support.py"
_support = SimpleNamespace(**runpy.run_path(str(_SUPPORT_FILE)))
# The helpers used here, typed as _cffi_support.py declares them (run_path returns a dict of Any).
header_cdef: Callable[[Path], str] = _support.header_cdef
source_path: Callable[[Path, bool], str] = _support.source_path
_STANDALONE = __name__ == "__main__"


def _path(p: Path) -> str:
    return source_path(p, _STANDALONE)


ffi = FFI()
ffi.cdef(header_cdef(INCLUDE / "pt_ring.h"))
ffi.cdef(header_cdef(INCLUDE / "pt_bcast.h"))
ffi.cdef(header_cdef(HERE / "src" / "py_ring.h"))
# The microstructure features' kernel (src/book_features.c): per-event calls from ml.features, through
# hotpath.book_features.
ffi.cdef(header_cdef(INCLUDE / "book_features.h"))
# A backtest's split of a watched engine run (src/run_split.c), through hotpath.run_split.
ffi.cdef(header_cdef(INCLUDE / "pt_run_split.h"))
ffi.set_source(
    "hotpath._cring",
    '#include "py_ring.h"\n#include "book_features.h"\n#include "pt_run_split.h"\n',
    include_dirs=[_path(INCLUDE), _path(HERE / "src"), _path(WIRE_INCLUDE)],
    extra_compile_args=CFLAGS,
    **_support.core_link_kwargs(HERE, _STANDALONE),
)

if __name__ == "__main__":
    # Compile in place: the .so lands next to this file, as an editable install expects.
    built = _support.compile_in_place(ffi, HERE, "_cring", verbose="-v" in sys.argv)
    print(f"built {built.relative_to(_support.ROOT)}")
