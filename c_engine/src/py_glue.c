/*
 * py_glue.c - c_engine.Engine's one-crossing calls (py_glue.h): pack a command, run it, count its events.
 *
 * The conversion must give what Python's _Units.ticks/lots give for every input it accepts, so that a caller
 * cannot tell which side converted: only inputs where the double arithmetic is exact enough are taken here,
 * the rest go back to Python (PY_CONVERT_IN_PYTHON), which converts or raises.
 */
#include "py_glue.h"

#include <stdbool.h>

#include <math.h>
#include <string.h>

int py_submit_one(pt_engine_t *e, const pt_command_t *c)
{
    pt_engine_clear_events(e);
    int rc = pt_engine_submit(e, c);
    if (rc != PT_OK)
        return rc;
    size_t n;
    pt_engine_events(e, &n);
    return (int)n;
}

/* Only |v| < 2^53 is taken (an int argument that large was rounded on its way to a double) and only
 * |v * per_step| < 2^62 (the int64 field). Without -ffast-math and with -std=c11 (no FMA contraction) every
 * operation rounds as Python's does; nearbyint rounds halves to even, as Python's round(). NaN fails every
 * comparison, so it goes back to Python too. */
int py_to_steps(double v, double step, double per_step, double tol, int64_t *out)
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

/* py_new_order's body, inlined into both entry points so that py_new_limit's has_price is a constant. */
static inline __attribute__((always_inline)) int new_order(const py_shape_t *s, int has_price, uint16_t client_id,
                                                           uint64_t cloid, uint64_t ts_ns, double price, double qty)
{
    const py_units_t *u = &s->units;
    pt_command_t c;
    memset(&c, 0, sizeof c);
    if (has_price && !py_to_steps(price, u->tick, u->per_tick, u->tick_tol, &c.price))
        return PY_CONVERT_IN_PYTHON;
    if (!py_to_steps(qty, u->lot, u->per_lot, u->lot_tol, &c.qty))
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

int py_new_order(const py_shape_t *s, int has_price, uint16_t client_id, uint64_t cloid, uint64_t ts_ns,
                 double price, double qty)
{
    return new_order(s, has_price, client_id, cloid, ts_ns, price, qty);
}

int py_new_limit(const py_shape_t *s, uint16_t client_id, uint64_t cloid, uint64_t ts_ns, double price, double qty)
{
    return new_order(s, 1, client_id, cloid, ts_ns, price, qty);
}

int py_cancel(pt_engine_t *e, uint16_t client_id, uint64_t order_id, uint64_t ts_ns)
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

int py_run_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t *done, size_t *nevents)
{
    pt_engine_clear_events(e);
    int rc = pt_engine_submit_batch(e, cmds, n, done);
    pt_engine_events(e, nevents);
    return rc;
}

/* Does an event of the command just run concern the watcher? bid/ask: the symbol's top before the command
 * (price 0: that side was empty). */
static bool concerns(const pt_event_t *x, uint16_t watch_symbol, uint16_t watch_client, const pt_level_t *bid,
                     const pt_level_t *ask)
{
    if (x->type < PT_EV_BOOK_DELTA)
        return x->client_id == watch_client;
    if (x->symbol_id != watch_symbol)
        return false;
    if (x->type == PT_EV_TRADE)
        return true;
    if (x->type != PT_EV_BOOK_DELTA)
        return false;
    if (x->side == PT_SIDE_BUY)
        return bid->price == 0 || x->price >= bid->price;
    return ask->price == 0 || x->price <= ask->price;
}

int py_run_until_watched(pt_engine_t *e, const pt_command_t *cmds, size_t n, uint16_t watch_symbol,
                         uint16_t watch_client, size_t *done, size_t *nevents, int *watched)
{
    pt_engine_clear_events(e);
    *watched = 0;
    pt_level_t bid, ask;
    if (pt_engine_l1(e, watch_symbol, &bid, &ask) != PT_OK)
        return PT_E_RANGE;
    size_t i = 0, count = 0;
    int rc = PT_OK;
    for (; i < n; i++) {
        size_t before = count;
        pt_engine_run_ahead(e, cmds, i, n);
        rc = pt_engine_submit(e, &cmds[i]);
        if (rc != PT_OK)
            break;
        const pt_event_t *ev = pt_engine_events(e, &count);
        for (size_t k = before; k < count; k++) {
            if (concerns(&ev[k], watch_symbol, watch_client, &bid, &ask)) {
                *watched = 1;
                break;
            }
        }
        if (*watched) {
            i++;
            break;
        }
        /* Nothing at or inside the top changed, so the top is still bid/ask: no need to read it again. */
    }
    *done = i;
    pt_engine_events(e, nevents);
    return rc;
}
