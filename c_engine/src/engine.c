/*
 * engine.c - commands in, events out.
 *
 * pt_engine_submit validates a command in the order docs/ENGINE.md lists,
 * rejecting with the first failing reason before anything changes; an
 * accepted command then runs to completion and ends in finish_command(),
 * which runs the kill switch after a trade and emits one BOOK_DELTA per
 * level the command touched. The two commonest commands touch one level and
 * trade nothing (a new limit that rests without crossing, a user cancel):
 * they emit that level's BOOK_DELTA themselves and skip finish_command.
 *
 * Order lifecycle (an order slot exists only while the order rests):
 *
 *   new GTC remainder --rest_order()--> RESTING --emit_remove_order()--> (off book)
 *        --emit_release_order()--> slot back in the pool
 *
 * (place_order() and emit_unplace_order() are the same moves without the
 * touched list, for the one-level commands.)
 *
 * A taker that never rests (IOC, FOK, market, a fully filled limit) lives only
 * in a taker_t on the stack. A modify that re-prices an order takes it off its
 * level, walks the book as a taker under its own id, and rests what is left.
 */
#include <stdlib.h>
#include <string.h>

#include "emit.h"

/* The most events a command can emit (4 per resting order: fill, fill, trade or
 * cancel, delta; plus the taker's own), checked before each command starts. */
static inline size_t worst_case_events(const pt_engine_t *e) { return 4 * e->live_orders + 16; }

/* ---- events (emit() is in internal.h, the CANCELED events in emit.c) ---------- */

/* event_head(type, c->side, c->symbol_id, c->client_id, aux): the three fields sit at the same byte offsets of
 * a command and an event (asserted below), so they come in one 8-byte load and a mask. */
static inline uint64_t command_event_head(const pt_command_t *c, uint8_t type, uint16_t aux)
{
    uint64_t word0;
    memcpy(&word0, c, sizeof word0);
    return (word0 & 0x0000FFFFFFFFFF00ull) | type | (uint64_t)aux << 48;
}
_Static_assert(offsetof(pt_command_t, side) == offsetof(pt_event_t, side) &&
                   offsetof(pt_command_t, symbol_id) == offsetof(pt_event_t, symbol_id) &&
                   offsetof(pt_command_t, client_id) == offsetof(pt_event_t, client_id) &&
                   offsetof(pt_event_t, client_id) == 4 && offsetof(pt_event_t, reason) == 6,
               "command_event_head: side, symbol_id and client_id at the same offsets, then the aux field");

/* A reject is its command's only event, so it is the last for the client and carries PT_EVF_LAST itself. */
static void emit_reject(pt_engine_t *e, const pt_command_t *c, uint16_t reason)
{
    emit(e, command_event_head(c, PT_EV_REJECT, reason) | EVENT_HEAD_LAST, c->ts_ns, c->order_id, c->cloid, c->price,
         c->qty, 0);
}

static void emit_ack(pt_engine_t *e, const pt_command_t *c, uint16_t op, uint64_t order_id, int64_t price,
                     int64_t qty, int64_t leaves)
{
    uint64_t head = op == PT_OP_NEW ? command_event_head(c, PT_EV_ACK, op)
                                    : event_head(PT_EV_ACK, 0, c->symbol_id, c->client_id, op);
    emit(e, head, c->ts_ns, order_id, c->cloid, price, qty, leaves);
}

/* ---- touched levels and the end of a command -------------------------------- */

/* The BOOK_DELTA of the level at price after the command, written at slot with sequence number seq: lv NULL (or
 * emptied) = the level is gone. Whether a level emptied is a coin flip for the predictor: the two fields are
 * masked instead of branched on. */
static inline void write_book_delta(pt_event_t *slot, uint64_t seq, uint64_t delta_head, int64_t price,
                                    const level_t *lv, uint64_t ts)
{
    uint64_t count = 0, qty = 0;
    if (lv != NULL) {
        uint64_t keep = -(uint64_t)(lv->order_count > 0);
        count = (uint64_t)lv->order_count & keep;
        qty = (uint64_t)lv->qty & keep;
    }
    write_event(slot, delta_head, seq, ts, 0, count, price, (int64_t)qty, 0);
}

/* A level created in this command at a price it already touched (and emptied):
 * keep one delta for that price. */
static void touch_new_level(pt_engine_t *e, uint16_t symbol, int si, level_t *lv)
{
    uint64_t delta_head = emit_delta_head(symbol, si);
    for (size_t i = 0; i < e->ntouched; i++) {
        touched_t *t = &e->touched[i];
        if (t->price == lv->price && t->delta_head == delta_head) {
            lv->touch_stamp = e->cmd_stamp;
            t->lv = lv;
            return;
        }
    }
    emit_touch_level(e, symbol, si, lv);
}

static void finish_command(pt_engine_t *e, uint64_t ts)
{
    if (e->cmd_traded)
        risk_kill_switch_sweep(e, ts);
    for (size_t i = 0; i < e->ntouched; i++) {
        const touched_t *t = &e->touched[i];
        /* t->lv is the level now at that price, if there is one: a level created at a touched
         * price re-points the entry (touch_new_level). A slot freed since then has count 0 and,
         * if reused, another price or side. */
        const level_t *lv = t->lv;
        uint64_t keep = -(uint64_t)((lv->price == t->price) & (lv->side == t->side) & (lv->order_count > 0));
        uint64_t seq;
        pt_event_t *slot = reserve_events(e, 1, &seq);
        write_event(slot, t->delta_head, seq + 1, ts, 0, (uint64_t)lv->order_count & keep, t->price,
                    (int64_t)((uint64_t)lv->qty & keep), 0); /* write_book_delta, masked here as there */
    }
    e->ntouched = 0;
    e->cmd_stamp++;
    e->cmd_traded = false;
}

/* ---- order lifecycle ------------------------------------------------------- */

/* Puts t's open qty at the back of its level (a new order gets its slot, indexes and its client's bit;
 * a modified one keeps them) and returns that level, untouched (see rest_order). Always inlined, as is
 * emit_unplace_order: a call of its own cost the one-level commands ~15 instructions (callgrind). */
static inline __attribute__((always_inline)) level_t *place_order(pt_engine_t *e, book_t *b, const taker_t *t,
                                                                  bool post_only, bool *created)
{
    int si = side_index(t->side);
    pt_idx_t li = book_level_at_home(b, si, t->limit);
    if (li != PT_NIL)
        *created = false;
    else
        li = book_level_for_insert(b, si, t->limit, created);
    level_t *lv = &b->levels[li];
    pt_idx_t oi = t->resting;
    order_t *o;
    if (oi == PT_NIL) {
        /* A freed slot first, else the next never used one: slots are handed out 0, 1, 2, ... and reused last
         * freed first, and the pool is only touched as far as it is used (a fresh engine writes none of it). */
        oi = e->free_order;
        if (oi != PT_NIL)
            e->free_order = e->orders[oi].next;
        else
            oi = e->slot_top++;
        o = &e->orders[oi];
        /* li fits the 24-bit field: pt_engine_create caps the pool at 2 x PT_MAX_LEVELS_PER_SIDE levels */
        *o = (order_t){.id = t->id, .open_qty = t->open_qty, .level = li, .terms = ORDER_TERMS(t->stp, post_only),
                       .client = t->client, .symbol = t->symbol};
        e->order_cloid[oi] = t->cloid;
        index_insert_id(e, oi);
        if (t->cloid != 0)
            index_add_cloid(e, oi);
        index_add_client_order(e, t->client, oi);
        e->clients[t->client].open_orders++;
        e->live_orders++;
    } else {
        o = &e->orders[oi];
        o->open_qty = t->open_qty;
        o->level = li;
    }
    level_append(e, lv, oi);
    risk_cs(e, t->client, t->symbol)->open_qty[si] += t->open_qty;
    return lv;
}

/* place_order, and the level goes on the command's touched list. */
static void rest_order(pt_engine_t *e, book_t *b, const taker_t *t, bool post_only)
{
    bool created;
    level_t *lv = place_order(e, b, t, post_only, &created);
    if (created)
        touch_new_level(e, t->symbol, lv->side, lv);
    else
        emit_touch_level(e, t->symbol, lv->side, lv);
}

/* ---- commands -------------------------------------------------------------- */

/* From the opposite side's best key (book.c: -ask for a buy's opposite side, bid for a sell's), one load, where
 * its level's price is two dependent loads further (callgrind: ~8 instructions a new order). Prices are validated,
 * at most 2^62: the sum cannot overflow. */
static bool would_cross(const book_t *b, uint8_t side, int64_t price)
{
    const book_side_t *opp = &b->sides[!side_index(side)];
    if (opp->count == 0)
        return false;
    return opp->keys[opp->count - 1] + side_sign(side) * price >= 0; /* buy: price - ask >= 0; sell: bid - price >= 0 */
}

static uint16_t check_price_ordered(const book_t *b, int64_t price)
{
    if (price <= 0)
        return PT_REJ_INVALID_PRICE;
    if (price < b->cfg.min_price_ticks || price > b->cfg.max_price_ticks)
        return PT_REJ_PRICE_OUT_OF_RANGE;
    if (risk_outside_band(b, price))
        return PT_REJ_PRICE_BAND;
    return 0;
}

/* A limit price's checks: one compare against the book's window of good prices when it was set for the current
 * reference price (book_t), else each check in order; only a price that fails needs the ordered checks' reason. */
static inline uint16_t check_price(const book_t *b, int64_t price)
{
    if (__builtin_expect(risk_reference_price(b) == b->price_window_ref, 1) &&
        (uint64_t)price - (uint64_t)b->price_window_lo <= b->price_window_span)
        return 0;
    return check_price_ordered(b, price);
}

/* Whether a new order has the commonest shape: a LIMIT with a price, GTC or IOC, not post-only, a valid side and
 * STP mode. Such an order passes every check of its fields (side to MARKET_WITH_PRICE) but the quantity's, so
 * validate_new skips them: order_type, tif and flags come in one load (bytes 6, 7 and 9 of the command), compared
 * against the two shapes, where the ordered checks cost a new order ~40 instructions (callgrind). Any other
 * shape takes the ordered checks, which give the same answer. */
static inline bool common_limit_shape(const pt_command_t *c)
{
    uint32_t word;
    memcpy(&word, &c->order_type, sizeof word);
    uint32_t shape = word & 0x0300FFFFu; /* order_type, tif, and flags' POST_ONLY and HAS_PRICE bits */
    uint32_t gtc = PT_TYPE_LIMIT | PT_TIF_GTC << 8 | (uint32_t)PT_FLAG_HAS_PRICE << 24;
    uint32_t ioc = PT_TYPE_LIMIT | PT_TIF_IOC << 8 | (uint32_t)PT_FLAG_HAS_PRICE << 24;
    return (shape == gtc || shape == ioc) && c->stp <= PT_STP_DECREMENT && (uint8_t)(c->side - PT_SIDE_BUY) < 2;
}
_Static_assert(offsetof(pt_command_t, tif) == offsetof(pt_command_t, order_type) + 1 &&
                   offsetof(pt_command_t, flags) == offsetof(pt_command_t, order_type) + 3,
               "common_limit_shape: order_type, tif, stp, flags in one 4-byte word");
_Static_assert(PT_FLAG_POST_ONLY == 1 && PT_FLAG_HAS_PRICE == 2, "common_limit_shape: the mask's flag bits");

static uint16_t validate_new(const pt_engine_t *e, const pt_command_t *c, int64_t *tokens_after)
{
    if (c->symbol_id >= e->nsymbols)
        return PT_REJ_UNKNOWN_SYMBOL;
    if (e->books[c->symbol_id].halted)
        return PT_REJ_SYMBOL_HALTED;
    const book_t *b = &e->books[c->symbol_id];
    bool market, gtc_limit;
    if (__builtin_expect(common_limit_shape(c), 1)) {
        market = false;
        gtc_limit = c->tif == PT_TIF_GTC;
        if (c->qty <= 0)
            return PT_REJ_INVALID_QTY;
        if (c->qty > b->cfg.max_order_lots)
            return PT_REJ_QTY_ABOVE_SYMBOL_MAX;
    } else {
        if (c->side != PT_SIDE_BUY && c->side != PT_SIDE_SELL)
            return PT_REJ_UNKNOWN_SIDE;
        if (c->order_type != PT_TYPE_LIMIT && c->order_type != PT_TYPE_MARKET)
            return PT_REJ_UNKNOWN_ORDER_TYPE;
        if (c->tif < PT_TIF_GTC || c->tif > PT_TIF_FOK)
            return PT_REJ_UNKNOWN_TIF;
        if (c->stp > PT_STP_DECREMENT)
            return PT_REJ_UNKNOWN_STP;
        market = c->order_type == PT_TYPE_MARKET;
        gtc_limit = !market && c->tif == PT_TIF_GTC;
        if (market && c->tif == PT_TIF_GTC)
            return PT_REJ_MARKET_NOT_IOC_FOK;
        if ((c->flags & PT_FLAG_POST_ONLY) && !gtc_limit)
            return PT_REJ_POST_ONLY_NOT_GTC_LIMIT;
        if (c->qty <= 0)
            return PT_REJ_INVALID_QTY;
        if (c->qty > b->cfg.max_order_lots)
            return PT_REJ_QTY_ABOVE_SYMBOL_MAX;
        bool has_price = c->flags & PT_FLAG_HAS_PRICE;
        if (!market && !has_price)
            return PT_REJ_MISSING_PRICE;
        if (market && has_price)
            return PT_REJ_MARKET_WITH_PRICE;
    }
    if (!market) {
        uint16_t r = check_price(b, c->price);
        if (r)
            return r;
    }
    if (c->cloid != 0 && index_cloid_in_use(e, c->client_id, c->cloid))
        return PT_REJ_DUPLICATE_CLIENT_ORDER_ID;
    const client_t *cl = &e->clients[c->client_id];
    if (cl->killed)
        return PT_REJ_KILL_SWITCH;
    if (!risk_rate_available(cl, c->ts_ns, tokens_after))
        return PT_REJ_RATE_LIMIT;
    if (c->qty > cl->order_qty_cap)
        return PT_REJ_RISK_MAX_ORDER_QTY;
    if (gtc_limit && cl->open_orders >= cl->open_orders_cap)
        return PT_REJ_RISK_MAX_OPEN_ORDERS;
    uint16_t r = risk_position_check(e, c->client_id, c->symbol_id, c->side, c->qty);
    if (r)
        return r;
    if ((c->flags & PT_FLAG_POST_ONLY) && would_cross(b, c->side, c->price))
        return PT_REJ_POST_ONLY_WOULD_TAKE;
    if (gtc_limit) {
        if (e->free_order == PT_NIL && e->slot_top == e->cfg.max_orders)
            return PT_REJ_ORDER_POOL_EXHAUSTED;
        int si = side_index(c->side);
        if (!book_can_add_level(b, si, e->cfg.max_levels_per_side) && book_find_level(b, si, c->price) == PT_NIL)
            return PT_REJ_BOOK_LEVELS_EXHAUSTED;
    }
    return 0;
}

/* Returns whether its events carry PT_EVF_LAST already (a reject, a quote that rests without trading). */
static bool cmd_new(pt_engine_t *e, const pt_command_t *c)
{
    if (c->cloid != 0)
        index_prepare_cloid_check(e, c->client_id, c->cloid);
    int64_t tokens_after;
    uint16_t reason = validate_new(e, c, &tokens_after);
    if (reason) {
        emit_reject(e, c, reason);
        return true;
    }
    client_t *cl = &e->clients[c->client_id];
    risk_rate_consume(cl, c->ts_ns, tokens_after);
    book_t *b = &e->books[c->symbol_id];
    bool market = c->order_type == PT_TYPE_MARKET;
    bool crossing = market || would_cross(b, c->side, c->price);
    if (!crossing && c->tif == PT_TIF_GTC) {
        /* Most new orders are quotes that rest without trading: one level touched, nothing else to finish, so
         * the ACK and the level's BOOK_DELTA go out at once (finish_command's touched list and stamps cost ~40
         * instructions), with one update of the event count and sequence. Its own taker_t: one whose address
         * never leaves this branch lives in registers, where the walk's must be built in memory. */
        taker_t q = {.id = ++e->order_seq, .cloid = c->cloid, .limit = c->price, .open_qty = c->qty,
                     .resting = PT_NIL, .client = c->client_id, .symbol = c->symbol_id, .side = c->side,
                     .stp = c->stp, .has_limit = true};
        bool created;
        const level_t *lv = place_order(e, b, &q, c->flags & PT_FLAG_POST_ONLY, &created);
        uint64_t seq;
        pt_event_t *ev = reserve_events(e, 2, &seq);
        write_event(&ev[0], command_event_head(c, PT_EV_ACK, PT_OP_NEW) | EVENT_HEAD_LAST, seq + 1, c->ts_ns, q.id,
                    c->cloid, q.limit, c->qty, c->qty);
        write_event(&ev[1], emit_delta_head(c->symbol_id, lv->side), seq + 2, c->ts_ns, 0,
                    (uint64_t)lv->order_count, lv->price, lv->qty, 0); /* write_book_delta, of a level that exists */
        return true;
    }
    taker_t t = {.id = ++e->order_seq, .cloid = c->cloid, .limit = market ? 0 : c->price, .open_qty = c->qty,
                 .resting = PT_NIL, .client = c->client_id, .symbol = c->symbol_id, .side = c->side,
                 .stp = c->stp, .has_limit = !market};
    emit_ack(e, c, PT_OP_NEW, t.id, t.limit, c->qty, c->qty);

    if (c->tif == PT_TIF_FOK && !match_fok_fillable(e, b, &t)) {
        emit_taker_canceled(e, &t, PT_CXL_FOK, t.open_qty, c->ts_ns);
        finish_command(e, c->ts_ns);
        return false;
    }
    int stop = crossing ? match_taker(e, b, &t, c->ts_ns) : MATCH_DONE;
    if (t.open_qty > 0) {
        if (!market && c->tif == PT_TIF_GTC) {
            rest_order(e, b, &t, c->flags & PT_FLAG_POST_ONLY);
        } else {
            uint8_t why = !market ? PT_CXL_IOC : stop == MATCH_BANDED ? PT_CXL_PRICE_BAND : PT_CXL_NO_LIQUIDITY;
            emit_taker_canceled(e, &t, why, t.open_qty, c->ts_ns);
        }
    }
    finish_command(e, c->ts_ns);
    return false;
}

/* The order a cancel or modify targets, or a reject reason. */
static uint16_t find_own_order(const pt_engine_t *e, const pt_command_t *c, pt_idx_t *oi)
{
    *oi = c->order_id ? order_by_id(e, c->order_id) : PT_NIL;
    if (*oi == PT_NIL)
        return PT_REJ_UNKNOWN_ORDER;
    if (e->orders[*oi].client != c->client_id)
        return PT_REJ_NOT_OWNER;
    return 0;
}

/* Its events always carry PT_EVF_LAST already: returns true. */
static bool cmd_cancel(pt_engine_t *e, const pt_command_t *c)
{
    pt_idx_t oi;
    uint16_t reason = find_own_order(e, c, &oi);
    if (reason) {
        emit_reject(e, c, reason);
        return true;
    }
    /* One level touched, no trade: the CANCELED (the client's last event) and the BOOK_DELTA go out directly, as
     * for a resting quote (cmd_new), with one update of the event count and sequence. They are written last,
     * from locals: a store through an event may alias anything, and the order, level and engine fields were
     * reloaded after each one. */
    const order_t *o = &e->orders[oi];
    /* Its cloid and the two neighbours it is unlinked from; an end of the queue (PT_NIL) prefetches the order
     * itself instead of branching (whether an order is at an end of its level is a coin flip for the predictor). */
    __builtin_prefetch(&e->order_cloid[oi]);
    __builtin_prefetch(&e->orders[o->prev != PT_NIL ? o->prev : oi], 1);
    __builtin_prefetch(&e->orders[o->next != PT_NIL ? o->next : oi], 1);
    const level_t *lv = order_level(e, o);
    int si = lv->side;
    uint64_t canceled_head =
        event_head(PT_EV_CANCELED, side_of_index(si), o->symbol, o->client, PT_CXL_USER) | EVENT_HEAD_LAST;
    uint64_t delta_head = emit_delta_head(o->symbol, si);
    int64_t price = lv->price, qty = o->open_qty;
    uint64_t id = o->id, cloid = e->order_cloid[oi];
    emit_unplace_order(e, oi); /* lv is free when it emptied: order_count 0 */
    emit_release_order(e, oi);
    uint64_t seq;
    pt_event_t *ev = reserve_events(e, 2, &seq);
    write_event(&ev[0], canceled_head, seq + 1, c->ts_ns, id, cloid, price, qty, 0); /* emit_write_canceled's */
    write_book_delta(&ev[1], seq + 2, delta_head, price, lv, c->ts_ns);
    return true;
}

static uint16_t validate_modify(const pt_engine_t *e, const pt_command_t *c, pt_idx_t *oi, int64_t *tokens_after)
{
    bool has_qty = c->flags & PT_FLAG_HAS_QTY, has_price = c->flags & PT_FLAG_HAS_PRICE;
    if (!has_qty && !has_price)
        return PT_REJ_MODIFY_NOTHING;
    if (has_qty && c->qty <= 0)
        return PT_REJ_INVALID_QTY;
    if (has_price && c->price <= 0)
        return PT_REJ_INVALID_PRICE;
    uint16_t reason = find_own_order(e, c, oi);
    if (reason)
        return reason;
    const order_t *o = &e->orders[*oi];
    const book_t *b = &e->books[o->symbol];
    if (b->halted)
        return PT_REJ_SYMBOL_HALTED;
    const client_t *cl = &e->clients[c->client_id];
    const level_t *lv = order_level(e, o);
    uint8_t side = side_of_index(lv->side);
    int64_t new_qty = has_qty ? c->qty : o->open_qty;
    int64_t new_price = has_price ? c->price : lv->price;
    if (has_qty && c->qty > b->cfg.max_order_lots)
        return PT_REJ_QTY_ABOVE_SYMBOL_MAX;
    if (has_price && (reason = check_price(b, c->price)))
        return reason;
    if (!risk_rate_available(cl, c->ts_ns, tokens_after))
        return PT_REJ_RATE_LIMIT;
    if (has_qty && c->qty > cl->order_qty_cap)
        return PT_REJ_RISK_MAX_ORDER_QTY;
    if (new_qty > o->open_qty && (reason = risk_position_check(e, o->client, o->symbol, side, new_qty - o->open_qty)))
        return reason;
    if (new_price != lv->price) {
        if (terms_post_only(o->terms) && would_cross(b, side, new_price))
            return PT_REJ_POST_ONLY_WOULD_TAKE;
        int si = lv->side;
        if (!book_can_add_level(b, si, e->cfg.max_levels_per_side) && book_find_level(b, si, new_price) == PT_NIL &&
            lv->order_count > 1)
            return PT_REJ_BOOK_LEVELS_EXHAUSTED;
    }
    return 0;
}

static void cmd_modify(pt_engine_t *e, const pt_command_t *c)
{
    pt_idx_t oi;
    int64_t tokens_after;
    uint16_t reason = validate_modify(e, c, &oi, &tokens_after);
    if (reason) {
        emit_reject(e, c, reason);
        return;
    }
    risk_rate_consume(&e->clients[c->client_id], c->ts_ns, tokens_after);
    order_t *o = &e->orders[oi];
    book_t *b = &e->books[o->symbol];
    level_t *lv = &b->levels[o->level];
    int si = lv->side;
    uint64_t cloid = e->order_cloid[oi];
    int64_t new_qty = (c->flags & PT_FLAG_HAS_QTY) ? c->qty : o->open_qty;
    int64_t new_price = (c->flags & PT_FLAG_HAS_PRICE) ? c->price : lv->price;

    emit(e, event_head(PT_EV_MODIFIED, side_of_index(si), o->symbol, o->client, 0), c->ts_ns, o->id, cloid,
         new_price, new_qty, new_qty);

    if (new_price == lv->price && new_qty <= o->open_qty) {
        if (new_qty < o->open_qty) { /* reduced in place: keeps its time priority */
            int64_t d = o->open_qty - new_qty;
            emit_touch_level(e, o->symbol, si, lv);
            o->open_qty = new_qty;
            lv->qty -= d;
            risk_cs(e, o->client, o->symbol)->open_qty[si] -= d;
        }
        finish_command(e, c->ts_ns);
        return;
    }
    emit_remove_order(e, oi); /* lv may be gone from here on */
    uint8_t terms = o->terms;
    taker_t t = {.id = o->id, .cloid = cloid, .limit = new_price, .open_qty = new_qty, .resting = oi,
                 .client = o->client, .symbol = o->symbol, .side = side_of_index(si), .stp = terms_stp(terms),
                 .has_limit = true};
    match_taker(e, b, &t, c->ts_ns);
    if (t.open_qty > 0)
        rest_order(e, b, &t, terms_post_only(terms));
    else
        emit_release_order(e, oi);
    finish_command(e, c->ts_ns);
}

static void cmd_mass_cancel(pt_engine_t *e, const pt_command_t *c)
{
    bool by_symbol = c->flags & PT_FLAG_HAS_SYMBOL;
    uint8_t reason = (c->flags & PT_FLAG_DISCONNECT) ? PT_CXL_DISCONNECT : PT_CXL_MASS_CANCEL;
    if (by_symbol && c->symbol_id >= e->nsymbols) {
        emit_reject(e, c, PT_REJ_UNKNOWN_SYMBOL);
        return;
    }
    size_t n = emit_cancel_client_orders(e, c->client_id, by_symbol ? c->symbol_id : PT_SYMBOL_NONE, reason, c->ts_ns);
    emit_ack(e, c, PT_OP_MASS_CANCEL, 0, 0, (int64_t)n, 0);
    finish_command(e, c->ts_ns);
}

static void cmd_halt(pt_engine_t *e, const pt_command_t *c, bool halted)
{
    if (c->symbol_id >= e->nsymbols) {
        emit_reject(e, c, PT_REJ_UNKNOWN_SYMBOL);
        return;
    }
    e->books[c->symbol_id].halted = halted;
    emit_ack(e, c, c->op, 0, 0, 0, 0);
    finish_command(e, c->ts_ns);
}

static void cmd_kill(pt_engine_t *e, const pt_command_t *c)
{
    e->clients[c->client_id].killed = true; /* as the loss switch does: rejects until KILL_RESET */
    size_t n = emit_cancel_client_orders(e, c->client_id, PT_SYMBOL_NONE, PT_CXL_KILL_SWITCH, c->ts_ns);
    emit_ack(e, c, PT_OP_KILL, 0, 0, (int64_t)n, 0);
    finish_command(e, c->ts_ns);
}

static void cmd_set_limit(pt_engine_t *e, const pt_command_t *c)
{
    pt_client_limits_t limits = e->clients[c->client_id].limits;
    int64_t *fields[] = {&limits.max_order_qty, &limits.max_open_orders, &limits.max_position,
                         &limits.rate_per_s, &limits.rate_burst, &limits.max_loss};
    if (c->side < PT_LIMIT_MAX_ORDER_QTY || c->side > PT_LIMIT_MAX_LOSS) {
        emit_reject(e, c, PT_REJ_INVALID_LIMIT);
        return;
    }
    *fields[c->side - 1] = c->qty;
    /* The same as pt_engine_set_client_limits from the API: the bucket refills, the loss switch re-arms. */
    if (pt_engine_set_client_limits(e, c->client_id, &limits) != PT_OK) {
        emit_reject(e, c, PT_REJ_INVALID_LIMIT);
        return;
    }
    emit_ack(e, c, PT_OP_SET_LIMIT, 0, 0, c->qty, 0);
    finish_command(e, c->ts_ns);
}

static void cmd_kill_reset(pt_engine_t *e, const pt_command_t *c)
{
    e->clients[c->client_id].killed = false; /* the next trade's sweep looks at it again */
    e->kill_check_due = true;
    emit_ack(e, c, PT_OP_KILL_RESET, 0, 0, 0, 0);
    finish_command(e, c->ts_ns);
}

/* Flags the command's last event for its client (PT_EVF_LAST, pt_wire.h): the events after it are market data
 * (book deltas, the trade) or other clients' (a maker's fill, a kill switch's cancels). Every command gives its
 * client at least its response, so one is always found, a few events back at most. The commonest commands set the
 * flag as they write (run_command): this scan is for the rest. The flagged event's first half is loaded and
 * stored back whole: a byte stored into it would leave whoever reads the event next (the journal's copy, a
 * checksum) a wide load that no single store covers, which waits for both stores to reach the cache. */
static inline void mark_last_event(pt_engine_t *e, size_t first, uint16_t client_id)
{
    for (size_t i = e->nevents; i-- > first;) {
        pt_event_t *ev = &e->events[i];
        if (ev->client_id == client_id && ev->type != PT_EV_BOOK_DELTA && ev->type != PT_EV_TRADE) {
            event_half_t *lo = (event_half_t *)(void *)ev;
            event_half_t v = *lo;
            v[0] |= EVENT_HEAD_LAST;
            *lo = v;
            return;
        }
    }
}

/* Runs one command; returns whether its events carry PT_EVF_LAST already (rejects, a quote that rests, a cancel),
 * else mark_last_event finds the event to flag. The checks before the command's own are, in order: NOT_GRANTED,
 * then HALT and RESUME (a symbol's state: no client, any id is echoed), then the client id; the switch comes
 * first and each case makes the checks that concern it, so the commonest commands branch once on the op. */
static bool run_command(pt_engine_t *e, const pt_command_t *cmd)
{
    if (cmd->flags & PT_FLAG_NOT_GRANTED) { /* the loop's verdict on the link, journaled with the command */
        emit_reject(e, cmd, PT_REJ_NOT_GRANTED);
        return true;
    }
    bool known_client = cmd->client_id < e->cfg.max_clients;
    switch (cmd->op) {
    case PT_OP_NEW:
        if (!known_client)
            break;
        return cmd_new(e, cmd);
    case PT_OP_CANCEL:
        if (!known_client)
            break;
        return cmd_cancel(e, cmd);
    case PT_OP_HALT:
    case PT_OP_RESUME:
        cmd_halt(e, cmd, cmd->op == PT_OP_HALT);
        return false;
    default:
        if (!known_client)
            break;
        switch (cmd->op) {
        case PT_OP_MODIFY:
            cmd_modify(e, cmd);
            return false;
        case PT_OP_MASS_CANCEL:
            cmd_mass_cancel(e, cmd);
            return false;
        case PT_OP_KILL_RESET:
            cmd_kill_reset(e, cmd);
            return false;
        case PT_OP_KILL:
            cmd_kill(e, cmd);
            return false;
        case PT_OP_SET_LIMIT:
            cmd_set_limit(e, cmd);
            return false;
        default:
            emit_reject(e, cmd, PT_REJ_UNKNOWN_OP);
            return true;
        }
    }
    emit_reject(e, cmd, PT_REJ_UNKNOWN_CLIENT);
    return true;
}

int pt_engine_submit(pt_engine_t *e, const pt_command_t *cmd)
{
    if (e->event_capacity - e->nevents < worst_case_events(e))
        return PT_E_FULL;
    e->commands++;
    size_t first = e->nevents;
    if (!run_command(e, cmd))
        mark_last_event(e, first, cmd->client_id);
    return PT_OK;
}

/*
 * Run-ahead for a caller that holds a run of commands. A cancel (or modify) of an old order costs two
 * dependent cache misses before any work can start: its id's ring slot, then the order. Over a run of
 * commands both can be started early, in two stages so that neither waits in line: the ring slot of the
 * command RUN_AHEAD_SLOT ahead, and the order and cold line of the one RUN_AHEAD_ORDER ahead, whose slot
 * was fetched four commands earlier (reading it then is a cache hit, so nothing stalls on it). It pays
 * little, because the core already overlaps the next command's first loads with the end of this one: on the
 * benchmark's mix through pt_engine_submit_batch, the build without it took 1.01-1.07x the time (bench-ab,
 * six runs, batches of 64 and 4096). Prefetching a cancel's neighbours too, or a taker's first maker, did not
 * pay (docs/BENCHMARKS.md).
 */
#define RUN_AHEAD_SLOT 8
#define RUN_AHEAD_ORDER 4

static inline bool targets_order(const pt_command_t *c) { return c->op == PT_OP_CANCEL || c->op == PT_OP_MODIFY; }

static inline void run_ahead(const pt_engine_t *e, const pt_command_t *cmds, size_t i, size_t n)
{
    const id_index_t *ix = &e->by_id;
    if (i + RUN_AHEAD_SLOT < n && targets_order(&cmds[i + RUN_AHEAD_SLOT]))
        __builtin_prefetch(&ix->ring[cmds[i + RUN_AHEAD_SLOT].order_id & ix->ring_mask]);
    if (i + RUN_AHEAD_ORDER < n && targets_order(&cmds[i + RUN_AHEAD_ORDER])) {
        pt_idx_t oi = ix->ring[cmds[i + RUN_AHEAD_ORDER].order_id & ix->ring_mask];
        if (oi != PT_NIL) {
            __builtin_prefetch(&e->orders[oi], 1);
            __builtin_prefetch(&e->order_cloid[oi], 1);
        }
    }
}

void pt_engine_run_ahead(const pt_engine_t *e, const pt_command_t *cmds, size_t i, size_t n)
{
    run_ahead(e, cmds, i, n);
}

int pt_engine_submit_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t *done)
{
    size_t i = 0;
    int rc = PT_OK;
    for (; i < n; i++) {
        run_ahead(e, cmds, i, n);
        rc = pt_engine_submit(e, &cmds[i]);
        if (rc != PT_OK)
            break;
    }
    *done = i;
    return rc;
}

pt_event_t *pt_engine_events(pt_engine_t *e, size_t *count)
{
    *count = e->nevents;
    return e->events;
}

void pt_engine_clear_events(pt_engine_t *e) { e->nevents = 0; }

/* ---- life cycle and configuration ------------------------------------------ */

int pt_engine_create(const pt_engine_config_t *cfg, pt_engine_t **out)
{
    *out = NULL;
    if (cfg->max_orders == 0 || cfg->max_orders > PT_MAX_ORDERS || cfg->max_levels_per_side == 0 ||
        cfg->max_levels_per_side > PT_MAX_LEVELS_PER_SIDE || cfg->max_symbols == 0 ||
        cfg->max_symbols == PT_SYMBOL_NONE || cfg->max_clients == 0 || cfg->max_clients == PT_CLIENT_NONE)
        return PT_E_INVALID;
    pt_engine_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return PT_E_NOMEM;
    e->cfg = *cfg;
    size_t min_events = 4 * (size_t)cfg->max_orders + 1024;
    e->event_capacity = cfg->event_capacity > min_events ? cfg->event_capacity : min_events;
    e->cfg.event_capacity = (uint32_t)(e->event_capacity > UINT32_MAX ? UINT32_MAX : e->event_capacity);
    e->orders = mem_alloc(cfg->max_orders * sizeof *e->orders);
    e->order_cloid = mem_alloc(cfg->max_orders * sizeof *e->order_cloid);
    e->row_words = ((cfg->max_orders + 63) / 64 + 7) / 8 * 8 + 8; /* whole lines and one more: internal.h */
    e->client_slots = mem_alloc_sparse(cfg->max_clients * e->row_words * sizeof *e->client_slots);
    e->scratch = mem_alloc(cfg->max_orders * sizeof *e->scratch);
    e->books = calloc(cfg->max_symbols, sizeof *e->books);
    e->clients = calloc(cfg->max_clients, sizeof *e->clients);
    e->client_symbols = calloc((size_t)cfg->max_clients * cfg->max_symbols, sizeof *e->client_symbols);
    e->loss_clients = calloc(cfg->max_clients, sizeof *e->loss_clients);
    /* Reserved, not touched: pages are only backed as far as the buffer is ever filled. */
    e->events = mem_alloc(e->event_capacity * sizeof *e->events);
    e->touched = mem_alloc(e->event_capacity * sizeof *e->touched);
    if (!e->orders || !e->order_cloid || !e->client_slots || !e->scratch || !e->books || !e->clients ||
        !e->client_symbols || !e->loss_clients || !e->events || !e->touched || index_init(e) != PT_OK) {
        pt_engine_destroy(e);
        return PT_E_NOMEM;
    }
    for (uint32_t i = 0; i < cfg->max_clients; i++)
        risk_limits_derive(&e->clients[i]); /* no limits: no caps */
    e->free_order = PT_NIL; /* nothing freed yet: new orders take slot_top, 0 upwards */
    e->cmd_stamp = 1;
    *out = e;
    return PT_OK;
}

void pt_engine_destroy(pt_engine_t *e)
{
    if (e == NULL)
        return;
    for (uint16_t s = 0; s < e->nsymbols; s++)
        book_free(&e->books[s]);
    index_free(e);
    mem_free(e->orders, e->cfg.max_orders * sizeof *e->orders);
    mem_free(e->order_cloid, e->cfg.max_orders * sizeof *e->order_cloid);
    mem_free(e->client_slots, e->cfg.max_clients * e->row_words * sizeof *e->client_slots);
    mem_free(e->scratch, e->cfg.max_orders * sizeof *e->scratch);
    free(e->books);
    free(e->clients);
    free(e->client_symbols);
    free(e->loss_clients);
    mem_free(e->events, e->event_capacity * sizeof *e->events);
    mem_free(e->touched, e->event_capacity * sizeof *e->touched);
    free(e);
}

int pt_engine_add_symbol(pt_engine_t *e, const pt_symbol_config_t *cfg, uint16_t *symbol_id)
{
    if (e->nsymbols >= e->cfg.max_symbols)
        return PT_E_RANGE;
    /* One trade's notional (price x qty) must fit int64 with room to spare; so must a price level's qty and a
     * client's open qty on a side (sums of at most max_orders orders); and pnl_unit keeps a client's PnL (at
     * most 2^64 a symbol, risk.c) far inside 128 bits. */
    if (cfg->min_price_ticks < 1 || cfg->max_price_ticks < cfg->min_price_ticks || cfg->max_order_lots < 1 ||
        cfg->band_ticks < 0 || cfg->band_bps < 0 || cfg->reference_price < 0 || cfg->market_band_ticks < 0 ||
        cfg->pnl_unit < 1 || cfg->pnl_unit > PT_MAX_PNL_UNIT ||
        (__int128)cfg->max_price_ticks * cfg->max_order_lots > ((__int128)1 << 62) ||
        (__int128)cfg->max_order_lots * e->cfg.max_orders > INT64_MAX)
        return PT_E_INVALID;
    book_t *b = &e->books[e->nsymbols];
    int rc = book_init(b, cfg, e->cfg.max_levels_per_side);
    if (rc != PT_OK) {
        book_free(b);
        memset(b, 0, sizeof *b);
        return rc;
    }
    risk_price_window(b);
    *symbol_id = e->nsymbols++;
    return PT_OK;
}

int pt_engine_client_limits(const pt_engine_t *e, uint16_t client_id, pt_client_limits_t *out)
{
    if (client_id >= e->cfg.max_clients)
        return PT_E_RANGE;
    *out = e->clients[client_id].limits;
    return PT_OK;
}

int pt_engine_set_client_limits(pt_engine_t *e, uint16_t client_id, const pt_client_limits_t *limits)
{
    if (client_id >= e->cfg.max_clients)
        return PT_E_RANGE;
    if (limits->max_order_qty < 0 || limits->max_open_orders < 0 || limits->max_position < 0 ||
        limits->rate_per_s < 0 || limits->rate_burst < 0 || limits->max_loss < 0 ||
        limits->rate_per_s > INT64_MAX / 1000000000LL || limits->rate_burst > INT64_MAX / 1000000000LL)
        return PT_E_INVALID;
    client_t *c = &e->clients[client_id];
    c->limits = *limits;
    risk_limits_derive(c);
    int64_t burst = limits->rate_burst > 0 ? limits->rate_burst : limits->rate_per_s;
    c->rate_cap = burst * 1000000000LL;
    c->tokens = c->rate_cap;
    c->last_ts = 0;
    c->loss_headroom = limits->max_loss + risk_pnl_exact(e, client_id); /* marks = last prices between commands */
    e->kill_check_due = true; /* the client may be below its new limit: the next trade's sweep looks */
    e->nloss_clients = 0;
    for (uint16_t i = 0; i < e->cfg.max_clients; i++)
        if (e->clients[i].limits.max_loss > 0)
            e->loss_clients[e->nloss_clients++] = (loss_client_t){
                .client = &e->clients[i], .row = risk_cs(e, i, 0), .id = i};
    return PT_OK;
}
