"""Builds the cffi extension ``c_engine._cengine`` (API mode) from the C sources.

Used by ``pip install -e .`` (setup.py's ``cffi_modules``) and by ``make build``
(``python c_engine/_build.py`` compiles in place). The cdef is the public
headers themselves, minus preprocessor lines, so the C API is declared once.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

from cffi import FFI

HERE = Path(__file__).resolve().parent
INCLUDE = HERE / "include"
SOURCES = sorted((HERE / "src").glob("*.c"))
# -flto lets the compiler inline across the engine's files (about 10% fewer instructions per op, callgrind).
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-flto"]


# Loaded by path, not imported: setuptools runs this script before the package can be imported.
_SUPPORT_FILE = Path(__file__).resolve().parents[1] / "c_engine" / "_cffi_support.py"
_support = SimpleNamespace(**runpy.run_path(str(_SUPPORT_FILE)))
header_cdef = _support.header_cdef
_STANDALONE = __name__ == "__main__"


def _path(p: Path) -> str:
    return _support.source_path(p, _STANDALONE)


# Python's fast path: one C call clears the previous events and runs the command; Python then copies the
# events out. A command is packed by struct.pack_into into a buffer Python owns (py_submit_one), except the
# two most frequent: py_new_limit/py_new_order convert a new order's human price and size and pack it with
# the rest of its py_shape_t, py_cancel packs a cancel, in the same crossing (the Python conversion and
# packing cost more than the engine). Every extra cffi call costs about 0.1 us here, every argument ~10 ns.
GLUE = r"""
#include <math.h>
#include <string.h>
#include "pt_engine.h"

/* Runs one command: its event count, or its status if it failed. */
static int py_submit_one(pt_engine_t *e, const pt_command_t *c)
{
    pt_engine_clear_events(e);
    int rc = pt_engine_submit(e, c);
    if (rc != PT_OK)
        return rc;
    size_t n;
    pt_engine_events(e, &n);
    return (int)n;
}

/* _Units of one symbol: human price/size -> ticks/lots, the same float arithmetic as _Units.ticks/lots. */
typedef struct py_units {
    double tick, per_tick, tick_tol;
    double lot, per_lot, lot_tol;
} py_units_t;

/* Not a pt_status: the conversion needs Python (off the grid, not finite, or too large to be exact in
 * a double), which also raises the error; nothing was run. */
#define PY_CONVERT_IN_PYTHON (-1000)

/* round(v * per_step) when it is within tol of a whole number of steps. Only |v| < 2^53 is taken
 * (an int argument that large was rounded on its way to a double) and only |v * per_step| < 2^62
 * (the int64 field). Without -ffast-math and with -std=c11 (no FMA contraction) every operation
 * rounds as Python's does; nearbyint rounds halves to even, as Python's round(). */
static int to_steps(double v, double step, double per_step, double tol, int64_t *out)
{
    double x = v * per_step;
    if (!(fabs(v) < 0x1p53 && fabs(x) < 0x1p62))
        return 0;
    double n = nearbyint(x);
    if (!(fabs(n * step - v) <= tol))
        return 0;
    *out = (int64_t)n;
    return 1;
}

/* Everything about a new order that a caller names rather than computes: its engine, symbol (with its
 * units), side, type, tif, self-trade prevention and post-only flag. Engine.submit keeps one per
 * combination it has seen, so a call passes one pointer where it passed eight converted arguments
 * (each cffi argument costs tens of ns; the shape is the same for most of a caller's orders). */
typedef struct py_shape {
    pt_engine_t *engine;
    py_units_t units;
    uint16_t symbol_id;
    uint8_t side, order_type, tif, stp, flags; /* flags: PT_FLAG_POST_ONLY or 0, never HAS_PRICE */
} py_shape_t;

/* A new order in human units in one crossing: converts, packs and runs it. has_price: price is one. */
static int py_new_order(const py_shape_t *s, int has_price, uint16_t client_id, uint64_t cloid,
                        uint64_t ts_ns, double price, double qty)
{
    const py_units_t *u = &s->units;
    pt_command_t c;
    memset(&c, 0, sizeof c);
    if (has_price && !to_steps(price, u->tick, u->per_tick, u->tick_tol, &c.price))
        return PY_CONVERT_IN_PYTHON;
    if (!to_steps(qty, u->lot, u->per_lot, u->lot_tol, &c.qty))
        return PY_CONVERT_IN_PYTHON;
    c.op = PT_OP_NEW;
    c.side = s->side;
    c.symbol_id = s->symbol_id;
    c.client_id = client_id;
    c.order_type = s->order_type;
    c.tif = s->tif;
    c.stp = s->stp;
    c.flags = (uint8_t)(s->flags | (has_price ? PT_FLAG_HAS_PRICE : 0));
    c.ts_ns = ts_ns;
    c.cloid = cloid;
    return py_submit_one(s->engine, &c);
}

/* A new limit order (it has a price): py_new_order without the has_price argument (another ~15 ns). */
static int py_new_limit(const py_shape_t *s, uint16_t client_id, uint64_t cloid, uint64_t ts_ns, double price,
                        double qty)
{
    return py_new_order(s, 1, client_id, cloid, ts_ns, price, qty);
}

static int py_cancel(pt_engine_t *e, uint16_t client_id, uint64_t order_id, uint64_t ts_ns)
{
    pt_command_t c;
    memset(&c, 0, sizeof c);
    c.op = PT_OP_CANCEL;
    c.symbol_id = PT_SYMBOL_NONE;
    c.client_id = client_id;
    c.ts_ns = ts_ns;
    c.order_id = order_id;
    return py_submit_one(e, &c);
}

/* A batch in one crossing: clears the previous events, runs as many commands as the event buffer
 * can take, and says how many ran and how many events they left to read. It lets other Python
 * threads run meanwhile (a batch can take milliseconds), as cffi's wrapper no longer does (below). */
static int py_submit_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t *done, size_t *nevents)
{
    PyThreadState *ts = PyEval_SaveThread();
    pt_engine_clear_events(e);
    int rc = pt_engine_submit_batch(e, cmds, n, done);
    pt_engine_events(e, nevents);
    PyEval_RestoreThread(ts);
    return rc;
}

/* cffi's wrappers, generated after this text, release the GIL around every call: ~80 ns (the GIL's
 * mutex and condition variable, twice) of a ~1.5 us submit, for calls that mostly take well under a
 * microsecond and must not run concurrently on one engine anyway. They keep it: these two macros are
 * theirs alone here, nothing of Python's own is compiled below. py_submit_batch releases it itself;
 * the rare calls that walk a whole book (pt_engine_check, state_hash, l3) hold it while they run. */
#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#define Py_END_ALLOW_THREADS }
"""

GLUE_CDEF = """
typedef struct py_units {
    double tick, per_tick, tick_tol;
    double lot, per_lot, lot_tol;
} py_units_t;
#define PY_CONVERT_IN_PYTHON ...
int py_submit_one(pt_engine_t *e, const pt_command_t *c);
typedef struct py_shape {
    pt_engine_t *engine;
    py_units_t units;
    uint16_t symbol_id;
    uint8_t side, order_type, tif, stp, flags;
} py_shape_t;
int py_new_order(const py_shape_t *s, int has_price, uint16_t client_id, uint64_t cloid, uint64_t ts_ns, double price,
                 double qty);
int py_new_limit(const py_shape_t *s, uint16_t client_id, uint64_t cloid, uint64_t ts_ns, double price, double qty);
int py_cancel(pt_engine_t *e, uint16_t client_id, uint64_t order_id, uint64_t ts_ns);
int py_submit_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t *done, size_t *nevents);
"""

ffi = FFI()
ffi.cdef(header_cdef(INCLUDE / "pt_wire.h"))
ffi.cdef(header_cdef(INCLUDE / "pt_engine.h"))
ffi.cdef(GLUE_CDEF)
ffi.set_source(
    "c_engine._cengine",
    GLUE,
    sources=[_path(p) for p in SOURCES],
    include_dirs=[_path(INCLUDE)],
    extra_compile_args=CFLAGS,
    extra_link_args=["-flto", "-O2"],
    libraries=["m"],  # nearbyint
)

if __name__ == "__main__":
    # Compile in place: the .so lands next to this file, as an editable install expects.
    built = _support.compile_in_place(ffi, HERE, "_cengine", verbose="-v" in sys.argv)
    print(f"built {built.relative_to(_support.ROOT)}")
