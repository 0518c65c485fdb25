/*
 * match.c - the taker walk: price-time priority, trades at the maker's price,
 * self-trade prevention, and the FOK dry run.
 *
 * The walk is a loop over (best level, front order), never a recursion, and
 * allocates nothing: a filled maker's order slot goes back to the pool at once.
 * It leaves the opposite side with no empty level, and since it stops at the
 * first level that does not cross the taker's limit, a taker that then rests
 * cannot lock or cross the book.
 */
#include "emit.h"

static inline bool crosses(uint8_t side, bool bounded, int64_t bound, int64_t level_price)
{
    /* buy: level <= bound; sell: level >= bound. Branch-free in the side (side_sign). */
    return !bounded || side_sign(side) * (bound - level_price) >= 0;
}

/* The price the walk may not go beyond: the taker's limit, or for a market order
 * its protection band around the touch it found; has_limit false = no bound. */
static bool walk_bound(const book_t *b, const taker_t *t, int64_t *bound)
{
    if (t->has_limit) {
        *bound = t->limit;
        return true;
    }
    int64_t band = b->cfg.market_band_ticks;
    const level_t *touch = book_best(b, !side_index(t->side));
    if (band <= 0 || touch == NULL)
        return false;
    /* A bound past int64 is past every price: no bound (a sell's touch - band cannot overflow: touch >= 1). */
    return !__builtin_add_overflow(touch->price, side_sign(t->side) * band, bound);
}

/* The head words of a walk's events, fixed for the walk but for the maker's client (ORed in per trade). */
typedef struct walk_heads {
    uint64_t maker_fill; /* | maker client << 32 */
    uint64_t taker_fill;
    uint64_t trade;      /* | maker client << 48 */
} walk_heads_t;

/* A walk's fills for the taker, applied to its risk state at the end (match_taker). */
typedef struct fill_totals {
    int64_t qty;
    int64_t notional; /* sum of price x qty */
} fill_totals_t;

/* The maker mi rests at lv, on the taker's opposite side. */
static void trade(pt_engine_t *e, book_t *b, level_t *lv, pt_idx_t mi, taker_t *t, const walk_heads_t *h,
                  fill_totals_t *filled, uint64_t ts)
{
    order_t *m = &e->orders[mi];
    int msi = lv->side;
    uint8_t maker_side = side_of_index(msi);
    emit_touch_level(e, t->symbol, msi, lv);
    int64_t q = m->open_qty < t->open_qty ? m->open_qty : t->open_qty;
    int64_t price = lv->price;
    uint64_t trade_id = ++e->trade_seq;

    m->open_qty -= q;
    lv->qty -= q;
    t->open_qty -= q;
    risk_cs(e, m->client, m->symbol)->open_qty[msi] -= q;
    risk_on_fills(e, m->client, m->symbol, maker_side, q, price * q);
    filled->qty += q;
    filled->notional += price * q;
    e->cmd_traded = true;
    e->cmd_trade_symbol = t->symbol;
    b->last_price = price;

    /* The maker's FILL, the taker's FILL and the TRADE, with one update of the event count and sequence. */
    uint64_t seq;
    pt_event_t *ev = reserve_events(e, 3, &seq);
    write_event(&ev[0], h->maker_fill | (uint64_t)m->client << 32, seq + 1, ts, m->id, trade_id, price, q,
                m->open_qty);
    write_event(&ev[1], h->taker_fill, seq + 2, ts, t->id, trade_id, price, q, t->open_qty);
    write_event(&ev[2], h->trade | (uint64_t)m->client << 48, seq + 3, ts, t->id, trade_id, price, q,
                (int64_t)m->id);
}

/* Cancels qty of a resting maker (all of it, or a DECREMENT part); it leaves the book at 0. */
static void cancel_maker(pt_engine_t *e, level_t *lv, pt_idx_t mi, int64_t qty, uint64_t ts)
{
    order_t *m = &e->orders[mi];
    emit_touch_level(e, m->symbol, lv->side, lv);
    m->open_qty -= qty;
    lv->qty -= qty;
    risk_cs(e, m->client, m->symbol)->open_qty[lv->side] -= qty;
    emit_canceled(e, mi, PT_CXL_STP, qty, m->open_qty, ts);
}

static int walk_book(pt_engine_t *e, book_t *b, taker_t *t, fill_totals_t *filled, uint64_t ts)
{
    int osi = !side_index(t->side);
    book_side_t *opp = &b->sides[osi];
    int64_t bound = 0;
    bool bounded = walk_bound(b, t, &bound);
    walk_heads_t heads = {
        .maker_fill = event_head(PT_EV_FILL, side_of_index(osi), t->symbol, 0, PT_LIQ_MAKER),
        .taker_fill = event_head(PT_EV_FILL, t->side, t->symbol, t->client, PT_LIQ_TAKER),
        .trade = event_head(PT_EV_TRADE, t->side, t->symbol, t->client, 0),
    };

    while (t->open_qty > 0 && opp->count > 0) {
        level_t *lv = &b->levels[opp->levels[opp->count - 1]];
        if (!crosses(t->side, bounded, bound, lv->price))
            return t->has_limit ? MATCH_DONE : MATCH_BANDED;
        pt_idx_t mi = lv->head;
        order_t *m = &e->orders[mi];
        /* The next maker in line, and what releasing this one reads: their misses overlap this fill's work
         * instead of following it. */
        __builtin_prefetch(&e->orders[m->next != PT_NIL ? m->next : mi]); /* a select, not a branch */
        __builtin_prefetch(&e->by_id.ring[m->id & e->by_id.ring_mask]);

        /* the taker's mode first: it is fixed for the walk, where the maker's client changes at every fill */
        if (t->stp != PT_STP_NONE && m->client == t->client) {
            switch (t->stp) {
            case PT_STP_EXPIRE_TAKER:
                emit_taker_canceled(e, t, PT_CXL_STP, t->open_qty, ts);
                return MATCH_DONE;
            case PT_STP_EXPIRE_MAKER:
                cancel_maker(e, lv, mi, m->open_qty, ts);
                break;
            case PT_STP_EXPIRE_BOTH:
                cancel_maker(e, lv, mi, m->open_qty, ts);
                emit_taker_canceled(e, t, PT_CXL_STP, t->open_qty, ts);
                break;
            default: { /* PT_STP_DECREMENT */
                int64_t d = m->open_qty < t->open_qty ? m->open_qty : t->open_qty;
                cancel_maker(e, lv, mi, d, ts);
                emit_taker_canceled(e, t, PT_CXL_STP, d, ts);
                break;
            }
            }
        } else {
            trade(e, b, lv, mi, t, &heads, filled, ts);
        }

        if (m->open_qty == 0) {
            level_unlink(e, lv, mi);
            emit_release_order(e, mi);
            if (lv->order_count == 0)
                book_pop_best(b, osi);
        }
    }
    return MATCH_DONE;
}

int match_taker(pt_engine_t *e, book_t *b, taker_t *t, uint64_t ts)
{
    fill_totals_t filled = {0, 0};
    int stop = walk_book(e, b, t, &filled, ts);
    if (filled.qty > 0) /* the taker's fills, at once: one update of its risk state instead of one a fill */
        risk_on_fills(e, t->client, t->symbol, t->side, filled.qty, filled.notional);
    return stop;
}

/* Would the FOK fill completely? The same walk, read-only (docs/ENGINE.md, "FOK"). */
bool match_fok_fillable(const pt_engine_t *e, const book_t *b, const taker_t *t)
{
    int osi = !side_index(t->side);
    const book_side_t *opp = &b->sides[osi];
    int64_t bound = 0;
    bool bounded = walk_bound(b, t, &bound);
    int64_t need = t->open_qty;

    for (uint32_t i = opp->count; i-- > 0;) {
        const level_t *lv = &b->levels[opp->levels[i]];
        if (!crosses(t->side, bounded, bound, lv->price))
            return false;
        for (pt_idx_t mi = lv->head; mi != PT_NIL; mi = e->orders[mi].next) {
            const order_t *m = &e->orders[mi];
            if (m->client == t->client && t->stp != PT_STP_NONE) {
                if (t->stp == PT_STP_EXPIRE_MAKER)
                    continue;
                return false;
            }
            need -= m->open_qty;
            if (need <= 0)
                return true;
        }
    }
    return false;
}
