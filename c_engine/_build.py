"""Builds the cffi extension ``c_engine._cengine`` (API mode) from the C sources.

Used by ``pip install -e .`` (setup.py's ``cffi_modules``) and by ``make build``
(``python c_engine/_build.py`` compiles in place). The cdef is the public
headers themselves, minus preprocessor lines, so the C API is declared once.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
INCLUDE = HERE / "include"
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


# Python's fast paths: one C call per command with plain integers, no struct built in Python.
GLUE = r"""
#include "pt_engine.h"

static int py_submit(pt_engine_t *e, uint8_t op, uint8_t side, uint16_t symbol_id, uint16_t client_id,
                     uint8_t order_type, uint8_t tif, uint8_t stp, uint8_t flags, uint64_t ts_ns,
                     uint64_t order_id, uint64_t cloid, int64_t price, int64_t qty)
{
    pt_command_t c = {.op = op, .side = side, .symbol_id = symbol_id, .client_id = client_id,
                      .order_type = order_type, .tif = tif, .stp = stp, .flags = flags, .ts_ns = ts_ns,
                      .order_id = order_id, .cloid = cloid, .price = price, .qty = qty};
    int rc = pt_engine_submit(e, &c);
    if (rc != PT_OK)
        return rc;
    size_t n;
    pt_engine_events(e, &n);
    return (int)n; /* events now pending, for the caller to read and clear */
}
"""

GLUE_CDEF = """
int py_submit(pt_engine_t *e, uint8_t op, uint8_t side, uint16_t symbol_id, uint16_t client_id,
              uint8_t order_type, uint8_t tif, uint8_t stp, uint8_t flags, uint64_t ts_ns,
              uint64_t order_id, uint64_t cloid, int64_t price, int64_t qty);
"""

ffi = FFI()
ffi.cdef(header_cdef(INCLUDE / "pt_wire.h"))
ffi.cdef(header_cdef(INCLUDE / "pt_engine.h"))
ffi.cdef(GLUE_CDEF)
ffi.set_source(
    "c_engine._cengine",
    GLUE,
    sources=[str(p) for p in SOURCES],
    include_dirs=[str(INCLUDE)],
    extra_compile_args=CFLAGS,
)

if __name__ == "__main__":
    # Compile in place: the .so lands next to this file, as an editable install expects.
    import os

    os.chdir(HERE.parent)
    build_dir = HERE.parent / "build" / "cffi"
    build_dir.mkdir(parents=True, exist_ok=True)
    so = ffi.compile(tmpdir=str(build_dir), verbose="-v" in sys.argv)
    target = HERE / Path(so).name
    Path(so).replace(target)
    print(f"built {target.relative_to(HERE.parent)}")
