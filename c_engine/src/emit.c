/*
 * emit.c - events and order moves shared by engine.c, match.c and risk.c (emit.h says why this file is
 * below them). Nothing here validates: the callers have decided that the order goes.
 */
#include "emit.h"

void emit_canceled(pt_engine_t *e, pt_idx_t oi, uint8_t reason, int64_t qty, int64_t leaves, uint64_t ts)
{
    uint64_t seq;
    pt_event_t *slot = reserve_events(e, 1, &seq);
    emit_write_canceled(e, slot, seq + 1, oi, reason, qty, leaves, ts);
}

void emit_taker_canceled(pt_engine_t *e, taker_t *t, uint8_t reason, int64_t qty, uint64_t ts)
{
    t->open_qty -= qty;
    emit(e, event_head(PT_EV_CANCELED, t->side, t->symbol, t->client, reason), ts, t->id, t->cloid,
         t->has_limit ? t->limit : 0, qty, t->open_qty);
}

void emit_touch_level(pt_engine_t *e, uint16_t symbol, int si, level_t *lv)
{
    if (lv->touch_stamp == e->cmd_stamp)
        return;
    lv->touch_stamp = e->cmd_stamp;
    e->touched[e->ntouched++] = (touched_t){
        .lv = lv, .price = lv->price, .delta_head = emit_delta_head(symbol, si), .side = (uint8_t)si};
}

void emit_remove_order(pt_engine_t *e, pt_idx_t oi)
{
    const order_t *o = &e->orders[oi];
    level_t *lv = order_level(e, o);
    emit_touch_level(e, o->symbol, lv->side, lv);
    emit_unplace_order(e, oi);
}

size_t emit_cancel_client_orders(pt_engine_t *e, uint16_t client, uint16_t symbol, uint8_t reason, uint64_t ts)
{
    size_t n = index_client_orders(e, client, symbol, true);
    for (size_t i = 0; i < n; i++) {
        pt_idx_t oi = e->scratch[i];
        emit_canceled(e, oi, reason, e->orders[oi].open_qty, 0, ts);
        emit_remove_order(e, oi);
        emit_release_order(e, oi);
    }
    return n;
}
