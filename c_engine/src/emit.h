/*
 * emit.h - the events and order moves that engine.c, match.c and risk.c all need: a resting order's CANCELED,
 * a taker's CANCELED, a level on the command's touched list, an order taken off its level, its slot returned to
 * the pool, and a client's orders cancelled (mass cancel, kill switch).
 *
 * emit.c sits below the three files that use it and calls only downwards (index.c, book.c and the state in
 * internal.h), so the engine's files call each other in one direction: engine.c -> match.c -> risk.c ->
 * emit.c -> book.c, index.c. The event writer itself (write_event, reserve_events, emit) is in internal.h.
 *
 * The helpers below are inline because the two commonest commands (a resting quote, a user cancel) inline them
 * into engine.c: a call of their own cost those commands ~15 instructions each (callgrind).
 */
#ifndef PT_EMIT_H
#define PT_EMIT_H

#include "internal.h"

/* The CANCELED of a resting order (still on its level), written at slot with sequence number seq. */
static inline void emit_write_canceled(const pt_engine_t *e, pt_event_t *slot, uint64_t seq, pt_idx_t oi,
                                       uint8_t reason, int64_t qty, int64_t leaves, uint64_t ts)
{
    const order_t *o = &e->orders[oi];
    const level_t *lv = order_level(e, o);
    write_event(slot, event_head(PT_EV_CANCELED, side_of_index(lv->side), o->symbol, o->client, reason), seq, ts,
                o->id, e->order_cloid[oi], lv->price, qty, leaves);
}

/* The head word of a BOOK_DELTA of symbol's side si. */
static inline uint64_t emit_delta_head(uint16_t symbol, int si)
{
    return event_head(PT_EV_BOOK_DELTA, side_of_index(si), symbol, 0, 0);
}

/* Takes a resting order off its level, untouched (it keeps its id, indexes and client bit); the level goes
 * too if it empties. Always inlined (see the top of this file). */
static inline __attribute__((always_inline)) void emit_unplace_order(pt_engine_t *e, pt_idx_t oi)
{
    order_t *o = &e->orders[oi];
    book_t *b = &e->books[o->symbol];
    level_t *lv = &b->levels[o->level];
    int si = lv->side;
    level_unlink(e, lv, oi);
    risk_cs(e, o->client, o->symbol)->open_qty[si] -= o->open_qty;
    if (lv->order_count == 0)
        book_remove_level(b, si, o->level);
}

/* Forgets an order that is off the book and returns its slot to the pool. Always inlined: a user cancel and a
 * filled maker end here, and a call of its own cost each ~10 instructions (callgrind). */
static inline __attribute__((always_inline)) void emit_release_order(pt_engine_t *e, pt_idx_t oi)
{
    order_t *o = &e->orders[oi];
    index_erase_id(e, oi);
    client_t *c = &e->clients[o->client];
    if (c->cloids_indexed && e->order_cloid[oi] != 0) /* only an indexed client's cloid needs its (cold) line */
        index_remove_cloid(e, oi);
    index_remove_client_order(e, o->client, oi);
    if (--c->open_orders == 0)
        index_client_flat(e, o->client);
    e->live_orders--;
    o->id = 0;
    o->next = e->free_order;
    e->free_order = oi;
}

/* Appends the CANCELED of resting order oi: qty cancelled, leaves still open. */
void emit_canceled(pt_engine_t *e, pt_idx_t oi, uint8_t reason, int64_t qty, int64_t leaves, uint64_t ts);
/* Cancels qty of a taker that is not resting (its order slot, if any, is off the book). */
void emit_taker_canceled(pt_engine_t *e, taker_t *t, uint8_t reason, int64_t qty, uint64_t ts);
/* Puts level lv (symbol's side si) on the command's touched list, once: it gets a BOOK_DELTA at the end. */
void emit_touch_level(pt_engine_t *e, uint16_t symbol, int si, level_t *lv);
/* emit_unplace_order, the level on the command's touched list first. */
void emit_remove_order(pt_engine_t *e, pt_idx_t oi);
/* Cancels all the client's resting orders (on symbol, or all when symbol is PT_SYMBOL_NONE), in ascending id,
 * for a mass cancel or the kill switch; returns how many. */
size_t emit_cancel_client_orders(pt_engine_t *e, uint16_t client, uint16_t symbol, uint8_t reason, uint64_t ts);

#endif
