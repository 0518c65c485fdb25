"""Builds the cffi extension ``hotpath._cloop`` (API mode): Python's view of the engine process's event loop
of ``include/pt_loop.h``, the journal of ``include/pt_journal.h``, and the loop's checkpoints (a snapshot and a
new journal segment, ``include/pt_journal_rotation.h``; the snapshot files of ``c_engine/include/pt_snapshot.h``).

The loop, the journal, the rings and the engine are compiled once, into libptcore.so
(``c_engine/_cffi_support.py``); this extension only wraps the loop and the journal, and links that library
with rpath ``$ORIGIN/../c_engine``. Used by ``pip install -e .`` (setup.py's ``cffi_modules``) and by ``make
build`` (``python hotpath/_build_loop.py`` compiles in place), the same pattern as ``hotpath/_build.py``.

The engine process creates its engine with ``c_engine.Engine`` (module ``c_engine._cengine``) and hands the
raw ``pt_engine_t *`` (``Engine._handle``) to this module's loop. Both modules call into the same loaded
library, so the loop runs that engine with the very code that made it (tests/c_engine/test_one_library.py).
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
ENGINE = ROOT / "c_engine"
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]

# Loaded by path, not imported: setuptools runs this script before the package can be imported.
_SUPPORT_FILE = ROOT / "c_engine" / "_cffi_support.py"
_support = SimpleNamespace(**runpy.run_path(str(_SUPPORT_FILE)))
# The helpers used here, typed as _cffi_support.py declares them (run_path returns a dict of Any).
header_cdef: Callable[[Path], str] = _support.header_cdef
source_path: Callable[[Path, bool], str] = _support.source_path
_STANDALONE = __name__ == "__main__"


def _path(p: Path) -> str:
    return source_path(p, _STANDALONE)


ffi = FFI()
ffi.cdef("typedef struct pt_engine pt_engine_t;")  # opaque here: the loop only passes it to the engine
ffi.cdef("typedef struct pt_command pt_command_t;")  # opaque too: Python reads records with numpy (COMMAND_DTYPE)
ffi.cdef(header_cdef(INCLUDE / "pt_journal.h"))
ffi.cdef(header_cdef(INCLUDE / "pt_loop.h"))
ffi.cdef(header_cdef(ENGINE / "include" / "pt_snapshot.h"))  # the loop's checkpoints hand back encoded snapshots
ffi.cdef(header_cdef(INCLUDE / "pt_journal_rotation.h"))
ffi.set_source(
    "hotpath._cloop",
    '#include "pt_journal.h"\n#include "pt_loop.h"\n#include "pt_snapshot.h"\n#include "pt_journal_rotation.h"\n',
    include_dirs=[_path(INCLUDE), _path(ENGINE / "include")],
    extra_compile_args=CFLAGS,
    **_support.core_link_kwargs(HERE, _STANDALONE),
)

if __name__ == "__main__":
    # Compile in place: the .so lands next to this file, as an editable install expects.
    built = _support.compile_in_place(ffi, HERE, "_cloop", verbose="-v" in sys.argv)
    print(f"built {built.relative_to(_support.ROOT)}")
