"""Builds the cffi extension ``hotpath._cloop`` (API mode): the engine process's event loop of
``include/pt_loop.h`` and the journal of ``include/pt_journal.h``, linked with its own copy of the engine (``c_engine/src``) and of the rings.

Used by ``pip install -e .`` (setup.py's ``cffi_modules``) and by ``make build`` (``python
hotpath/_build_loop.py`` compiles in place), the same pattern as ``hotpath/_build.py``.

The engine process creates its engine with ``c_engine.Engine`` (module ``c_engine._cengine``) and hands the
raw ``pt_engine_t *`` (``Engine._handle``) to this module's loop. That is sound because both modules compile
the same engine sources with the same flags (``make build`` rebuilds both when one changes), so both agree on
the struct layout; each keeps its functions hidden (``-fvisibility=hidden``), so the two copies never clash.
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
ENGINE = ROOT / "c_engine"
SOURCES = [
    *sorted((ENGINE / "src").glob("*.c")),
    HERE / "src" / "ring.c",
    HERE / "src" / "bcast.c",
    HERE / "src" / "journal.c",
    HERE / "src" / "loop.c",
]
# The engine's flags (c_engine/_build.py): -flto inlines across its files.
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-flto"]

# Loaded by path, not imported: setuptools runs this script before the package can be imported.
_SUPPORT_FILE = ROOT / "c_engine" / "_cffi_support.py"
_support = SimpleNamespace(**runpy.run_path(str(_SUPPORT_FILE)))
_STANDALONE = __name__ == "__main__"


def _path(p: Path) -> str:
    return _support.source_path(p, _STANDALONE)


ffi = FFI()
ffi.cdef("typedef struct pt_engine pt_engine_t;")  # opaque here: the loop only passes it to the engine
ffi.cdef("typedef struct pt_command pt_command_t;")  # opaque too: Python reads records with numpy (COMMAND_DTYPE)
ffi.cdef(_support.header_cdef(INCLUDE / "pt_journal.h"))
ffi.cdef(_support.header_cdef(INCLUDE / "pt_loop.h"))
ffi.set_source(
    "hotpath._cloop",
    '#include "pt_journal.h"\n#include "pt_loop.h"\n',
    sources=[_path(p) for p in SOURCES],
    include_dirs=[_path(INCLUDE), _path(ENGINE / "include")],
    extra_compile_args=CFLAGS,
    extra_link_args=["-flto", "-O2"],
)

if __name__ == "__main__":
    # Compile in place: the .so lands next to this file, as an editable install expects.
    built = _support.compile_in_place(ffi, HERE, "_cloop", verbose="-v" in sys.argv)
    print(f"built {built.relative_to(_support.ROOT)}")
