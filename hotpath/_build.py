"""Builds the cffi extension ``hotpath._cring`` (API mode): the SPSC ring of ``include/pt_ring.h`` and the
broadcast ring of ``include/pt_bcast.h``.

Used by ``pip install -e .`` (setup.py's ``cffi_modules``) and by ``make build``
(``python hotpath/_build.py`` compiles in place), the same pattern as ``c_engine/_build.py``.
The cdef is the public headers themselves, minus preprocessor lines, so the C API is declared once.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
INCLUDE = HERE / "include"
WIRE_INCLUDE = ROOT / "c_engine" / "include"  # pt_wire.h: a slot is one wire message
SOURCES = sorted((HERE / "src").glob("*.c"))
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]


def header_cdef(path: Path) -> str:
    """The header as cffi's cdef accepts it: no includes, guards or static asserts."""
    out = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith(("#include", "#ifndef", "#endif", "_Static_assert")):
            continue
        if re.match(r"#define\s+\w+_H\s*$", stripped):
            continue
        out.append(line)
    return "\n".join(out)


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

# setuptools (pip install -e .) runs from the project root and insists on relative paths;
# `python hotpath/_build.py` compiles inside a scratch folder and needs absolute ones.
_STANDALONE = __name__ == "__main__"


def _path(p: Path) -> str:
    return str(p if _STANDALONE else p.relative_to(ROOT))


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
    import os

    os.chdir(ROOT)
    build_dir = ROOT / "build" / "cffi-hotpath"
    build_dir.mkdir(parents=True, exist_ok=True)
    so = ffi.compile(tmpdir=str(build_dir), verbose="-v" in sys.argv)
    for stale in HERE.glob("_cring*.so"):
        stale.unlink()
    target = HERE / Path(so).name
    Path(so).replace(target)
    print(f"built {target.relative_to(ROOT)}")
