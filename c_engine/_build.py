"""Builds the cffi extension ``c_engine._cengine`` (API mode): Python's view of the engine in libptcore.so.

The engine and its Python glue (``src/py_glue.c``: one crossing per command) are compiled into the one C
library, libptcore.so (``c_engine/_cffi_support.py``); this extension only wraps them, and links that library
with rpath ``$ORIGIN`` (it sits beside it). Used by ``pip install -e .`` (setup.py's ``cffi_modules``, after
setup.py has built the library) and by ``make build`` (``python c_engine/_build.py`` compiles in place). The
cdef is the headers themselves, minus preprocessor lines, so the C API is declared once.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from cffi import FFI

HERE = Path(__file__).resolve().parent
INCLUDE = HERE / "include"
# The wrappers' own flags; the library's are in _cffi_support.py.
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


# The glue's prototypes, declared once in its header; py_submit_batch is defined there (inline, it needs
# Python.h), inside the block that header_cdef leaves out, so it is declared here.
GLUE_HEADER = HERE / "src" / "py_glue.h"
SUBMIT_BATCH_CDEF = """
int py_submit_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t *done, size_t *nevents);
"""

ffi = FFI()
ffi.cdef(header_cdef(INCLUDE / "pt_wire.h"))
ffi.cdef(header_cdef(INCLUDE / "pt_engine.h"))
ffi.cdef(header_cdef(INCLUDE / "pt_snapshot.h"))
ffi.cdef(header_cdef(GLUE_HEADER))
ffi.cdef(SUBMIT_BATCH_CDEF)
ffi.set_source(
    "c_engine._cengine",
    # The only C here: the headers. cffi puts them after Python.h and before its wrappers, which is what
    # py_glue.h needs: its Python part (py_submit_batch, the GIL macros the wrappers use) is compiled only there.
    '#include "py_glue.h"\n#include "pt_snapshot.h"\n',
    include_dirs=[_path(INCLUDE), _path(HERE / "src")],
    extra_compile_args=CFLAGS,
    **_support.core_link_kwargs(HERE, _STANDALONE),
)

if __name__ == "__main__":
    # Compile in place: the .so lands next to this file, as an editable install expects.
    built = _support.compile_in_place(ffi, HERE, "_cengine", verbose="-v" in sys.argv)
    print(f"built {built.relative_to(_support.ROOT)}")
