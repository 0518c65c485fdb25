/*
 * py_glue.h - the C side of c_engine.Engine's fast path (c_engine/_engine.py): calls shaped so that a Python
 * caller crosses into C once per command, with as few cffi arguments as it can (every extra cffi call costs
 * about 0.1 us here, every argument ~10 ns).
 *
 * A command is packed by struct.pack_into into a buffer Python owns and run by py_submit_one, except the two
 * most frequent: py_new_limit / py_new_order convert a new order's human price and size and pack it with the
 * rest of its py_shape_t, py_cancel packs a cancel, in the same crossing (the Python conversion and packing
 * cost more than the engine). Each clears the previous events first; Python then copies the events out.
 *
 * The part that needs Python.h (the GIL) is the end of this file, compiled only where Python.h came first:
 * in the cffi extension c_engine._cengine, whose source is the one line `#include "py_glue.h"`
 * (c_engine/_build.py). py_glue.c and the C tests see only the plain C above it.
 */
#ifndef PY_GLUE_H
#define PY_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include "pt_engine.h"

/* _Units of one symbol (c_engine/_types.py): human price/size -> ticks/lots, with the same float arithmetic as
 * _Units.ticks/lots. */
typedef struct py_units {
    double tick, per_tick, tick_tol;
    double lot, per_lot, lot_tol;
} py_units_t;

/* Not a pt_status: the conversion needs Python (off the grid, not finite, or too large to be exact in a
 * double), which also raises the error; nothing was run. */
#define PY_CONVERT_IN_PYTHON (-1000)

/* Everything about a new order that a caller names rather than computes: its engine, symbol (with its units),
 * side, type, tif, self-trade prevention and post-only flag. Engine.submit keeps one per combination it has
 * seen, so a call passes one pointer where it passed eight converted arguments (each cffi argument costs tens
 * of ns; the shape is the same for most of a caller's orders). */
typedef struct py_shape {
    pt_engine_t *engine;
    py_units_t units;
    uint16_t symbol_id;
    uint8_t side, order_type, tif, stp, flags; /* flags: PT_FLAG_POST_ONLY or 0, never HAS_PRICE */
} py_shape_t;

/* round(v * per_step) into *out when it is within tol of a whole number of steps of size step: 1, else 0
 * (*out untouched). */
int py_to_steps(double v, double step, double per_step, double tol, int64_t *out);

/* Clears the previous events and runs one command: its event count, or its status if it failed. */
int py_submit_one(pt_engine_t *e, const pt_command_t *c);

/* A new order in human units in one crossing: converts, packs and runs it (py_submit_one's result), or
 * PY_CONVERT_IN_PYTHON. has_price: price is one. */
int py_new_order(const py_shape_t *s, int has_price, uint16_t client_id, uint64_t cloid, uint64_t ts_ns,
                 double price, double qty);

/* A new limit order (it has a price): py_new_order without the has_price argument (another ~15 ns). */
int py_new_limit(const py_shape_t *s, uint16_t client_id, uint64_t cloid, uint64_t ts_ns, double price, double qty);

/* A user cancel of order_id, packed and run: py_submit_one's result. */
int py_cancel(pt_engine_t *e, uint16_t client_id, uint64_t order_id, uint64_t ts_ns);

/* A batch: clears the previous events, runs as many commands as the event buffer can take (*done of them)
 * and says how many events they left to read (*nevents); pt_engine_submit_batch's status. */
int py_run_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t *done, size_t *nevents);

/* py_run_batch that stops after the first command that concerns a watcher (a backtest's strategy): one that
 * gives watch_client an event of its own (ACK .. MODIFIED), prints a TRADE on watch_symbol, or changes
 * watch_symbol's top of book (a BOOK_DELTA at or better than that side's best before the command, or on a side
 * that was empty). *done says how many ran (the watched one included); *watched is 1 if it stopped there.
 * Commands that concern nobody run back to back, in C: the backtester calls Python only for the others. */
int py_run_until_watched(pt_engine_t *e, const pt_command_t *cmds, size_t n, uint16_t watch_symbol,
                         uint16_t watch_client, size_t *done, size_t *nevents, int *watched);

#ifdef Py_PYTHON_H
/* py_run_batch with the GIL released, so other Python threads run meanwhile (a batch can take milliseconds),
 * as cffi's wrapper no longer does (below). Inline here, not in py_glue.c: it is the only code that needs
 * Python, and the library (c_engine/_cffi_support.py) is built without Python's headers. */
static inline int py_submit_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t *done,
                                  size_t *nevents)
{
    PyThreadState *ts = PyEval_SaveThread();
    int rc = py_run_batch(e, cmds, n, done, nevents);
    PyEval_RestoreThread(ts);
    return rc;
}

/* cffi's wrappers, generated after this header in c_engine._cengine, release the GIL around every call: ~80 ns
 * (the GIL's mutex and condition variable, twice) of a ~1.5 us submit, for calls that mostly take well under a
 * microsecond and must not run concurrently on one engine anyway. They keep it: these two macros are theirs
 * alone there, nothing of Python's own is compiled after this header. py_submit_batch releases it itself; the
 * rare calls that walk a whole book (pt_engine_check, state_hash, l3) hold it while they run. */
#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#define Py_END_ALLOW_THREADS }
#endif

#endif
