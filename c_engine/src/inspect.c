/*
 * inspect.c - read-only views of the engine: snapshots (L1, L2, L3),
 * positions, the state hash and the invariant walk. None of this is on the
 * order path.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool valid_symbol(const pt_engine_t *e, uint16_t symbol_id) { return symbol_id < e->nsymbols; }

static void level_view(const level_t *lv, pt_level_t *out)
{
    if (lv == NULL) {
        *out = (pt_level_t){0, 0, 0};
        return;
    }
    *out = (pt_level_t){.price = lv->price, .qty = lv->qty, .order_count = lv->order_count};
}

int pt_engine_l1(const pt_engine_t *e, uint16_t symbol_id, pt_level_t *bid, pt_level_t *ask)
{
    if (!valid_symbol(e, symbol_id))
        return PT_E_RANGE;
    const book_t *b = &e->books[symbol_id];
    level_view(book_best(b, 0), bid);
    level_view(book_best(b, 1), ask);
    return PT_OK;
}

int pt_engine_l2(const pt_engine_t *e, uint16_t symbol_id, uint8_t side, pt_level_t *out, size_t depth, size_t *count)
{
    if (!valid_symbol(e, symbol_id) || (side != PT_SIDE_BUY && side != PT_SIDE_SELL))
        return PT_E_RANGE;
    const book_t *b = &e->books[symbol_id];
    const book_side_t *s = &b->sides[side_index(side)];
    size_t n = 0;
    for (uint32_t i = s->count; i-- > 0 && n < depth;)
        level_view(&b->levels[s->levels[i]], &out[n++]);
    *count = n;
    return PT_OK;
}

int pt_engine_order_count(const pt_engine_t *e, uint16_t symbol_id, uint8_t side, size_t *count)
{
    if (!valid_symbol(e, symbol_id) || (side != PT_SIDE_BUY && side != PT_SIDE_SELL))
        return PT_E_RANGE;
    const book_t *b = &e->books[symbol_id];
    const book_side_t *s = &b->sides[side_index(side)];
    size_t n = 0;
    for (uint32_t i = 0; i < s->count; i++)
        n += (size_t)b->levels[s->levels[i]].order_count;
    *count = n;
    return PT_OK;
}

int pt_engine_l3(const pt_engine_t *e, uint16_t symbol_id, uint8_t side, pt_l3_order_t *out, size_t max, size_t *count)
{
    if (!valid_symbol(e, symbol_id) || (side != PT_SIDE_BUY && side != PT_SIDE_SELL))
        return PT_E_RANGE;
    const book_t *b = &e->books[symbol_id];
    const book_side_t *s = &b->sides[side_index(side)];
    size_t n = 0;
    for (uint32_t i = s->count; i-- > 0;) {
        for (pt_idx_t oi = b->levels[s->levels[i]].head; oi != PT_NIL && n < max; oi = e->orders[oi].next) {
            const order_t *o = &e->orders[oi];
            out[n++] = (pt_l3_order_t){.order_id = o->id, .cloid = e->order_cloid[oi],
                                       .price = order_price(e, o), .open_qty = o->open_qty, .client_id = o->client,
                                       .side = side_of_index(order_side_index(e, o)), .stp = terms_stp(o->terms),
                                       .post_only = terms_post_only(o->terms)};
        }
    }
    *count = n;
    return PT_OK;
}

int pt_engine_position(const pt_engine_t *e, uint16_t client_id, uint16_t symbol_id, pt_position_t *out)
{
    if (client_id >= e->cfg.max_clients || !valid_symbol(e, symbol_id))
        return PT_E_RANGE;
    const client_symbol_t *cs = risk_cs(e, client_id, symbol_id);
    const client_t *c = &e->clients[client_id];
    bool overflow;
    *out = (pt_position_t){.position = cs->position, .cash = cs->cash, .open_buy_qty = cs->open_qty[0],
                           .open_sell_qty = cs->open_qty[1], .open_orders = c->open_orders,
                           .killed = c->killed, .pnl = risk_pnl(e, client_id, &overflow)};
    return PT_OK;
}

int pt_engine_last_price(const pt_engine_t *e, uint16_t symbol_id, int64_t *price)
{
    if (!valid_symbol(e, symbol_id))
        return PT_E_RANGE;
    *price = e->books[symbol_id].last_price;
    return PT_OK;
}

void pt_engine_stats(const pt_engine_t *e, pt_engine_stats_t *out)
{
    *out = (pt_engine_stats_t){.commands = e->commands, .events = e->seq, .next_order_id = e->order_seq + 1,
                               .next_trade_id = e->trade_seq + 1, .live_orders = e->live_orders,
                               .pending_events = e->nevents, .event_capacity = e->event_capacity};
}

/* ---- state hash ------------------------------------------------------------ */

static inline uint64_t hash_word(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x100000001b3ULL; /* FNV-1a prime over 64-bit words, then a final avalanche */
    return h ^ (h >> 29);
}

/* Covers what determines future behaviour: books in priority order, every resting order,
 * risk state and the id counters. The event sequence number is left out on purpose: a
 * journal replays accepted commands only, and rejected commands change nothing else. */
uint64_t pt_engine_state_hash(const pt_engine_t *e)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = hash_word(h, e->order_seq);
    h = hash_word(h, e->trade_seq);
    for (uint16_t s = 0; s < e->nsymbols; s++) {
        const book_t *b = &e->books[s];
        h = hash_word(h, (uint64_t)b->last_price);
        if (b->halted) /* only then: the hashes of states that were never halted stay as they were */
            h = hash_word(h, PT_OP_HALT);
        for (int si = 0; si < 2; si++) {
            const book_side_t *side = &b->sides[si];
            h = hash_word(h, side->count);
            for (uint32_t i = side->count; i-- > 0;) {
                const level_t *lv = &b->levels[side->levels[i]];
                h = hash_word(h, (uint64_t)lv->price);
                h = hash_word(h, (uint64_t)lv->order_count);
                for (pt_idx_t oi = lv->head; oi != PT_NIL; oi = e->orders[oi].next) {
                    const order_t *o = &e->orders[oi];
                    h = hash_word(h, o->id);
                    h = hash_word(h, e->order_cloid[oi]);
                    h = hash_word(h, (uint64_t)o->open_qty);
                    h = hash_word(h, ((uint64_t)o->client << 24) | ((uint64_t)terms_stp(o->terms) << 8) |
                                         terms_post_only(o->terms));
                }
            }
        }
    }
    for (uint16_t c = 0; c < e->cfg.max_clients; c++) {
        const client_t *cl = &e->clients[c];
        h = hash_word(h, (uint64_t)cl->tokens);
        h = hash_word(h, cl->last_ts);
        h = hash_word(h, cl->killed);
        for (uint16_t s = 0; s < e->nsymbols; s++) {
            const client_symbol_t *cs = risk_cs(e, c, s);
            h = hash_word(h, (uint64_t)cs->position);
            h = hash_word(h, (uint64_t)cs->cash);
        }
    }
    return h ^ (h >> 32);
}

/* ---- invariants ------------------------------------------------------------ */

#define REQUIRE(cond)              \
    do {                           \
        if (!(cond))               \
            return PT_E_CORRUPT;   \
    } while (0)

static int check_book(const pt_engine_t *e, uint16_t s, int64_t *open_by_client_side, uint64_t *resting)
{
    const book_t *b = &e->books[s];
    for (int si = 0; si < 2; si++) {
        const book_side_t *side = &b->sides[si];
        for (uint32_t i = 0; i < side->count; i++) {
            REQUIRE(i == 0 || side->keys[i - 1] < side->keys[i]);
            const level_t *lv = &b->levels[side->levels[i]];
            REQUIRE(side->keys[i] == (si == 0 ? lv->price : -lv->price));
            REQUIRE(lv->pos == i && book_find_level(b, si, lv->price) == side->levels[i]);
            int64_t qty = 0, count = 0;
            pt_idx_t prev = PT_NIL;
            for (pt_idx_t oi = lv->head; oi != PT_NIL; oi = e->orders[oi].next) {
                const order_t *o = &e->orders[oi];
                REQUIRE(o->prev == prev && o->open_qty > 0 && o->symbol == s && o->level == side->levels[i]);
                REQUIRE(lv->side == si && o->terms < 16 && terms_stp(o->terms) <= PT_STP_DECREMENT);
                REQUIRE(index_find_id(e, o->id) == oi && oi < e->slot_top);
                REQUIRE((*client_slot_word(e, o->client, oi) >> (oi % 64)) & 1);
                const client_t *owner = &e->clients[o->client];
                uint64_t cloid = e->order_cloid[oi];
                REQUIRE(cloid == 0 || (owner->cloids_indexed ? index_find_cloid(e, o->client, cloid) == oi
                                                             : cloid <= owner->max_cloid));
                open_by_client_side[o->client * 2 + si] += o->open_qty;
                qty += o->open_qty;
                count++;
                prev = oi;
            }
            REQUIRE(lv->tail == prev && lv->qty == qty && lv->order_count == count && count > 0);
            *resting += (uint64_t)count;
        }
    }
    const level_t *bid = book_best(b, 0), *ask = book_best(b, 1);
    REQUIRE(bid == NULL || ask == NULL || bid->price < ask->price);
    return PT_OK;
}

/* Not on the order path: allocates its scratch sums. */
int pt_engine_check(const pt_engine_t *e)
{
    int64_t *open = calloc((size_t)e->cfg.max_clients * 2, sizeof *open);
    if (open == NULL)
        return PT_E_NOMEM;
    uint64_t resting = 0;
    int rc = PT_OK;
    for (uint16_t s = 0; s < e->nsymbols && rc == PT_OK; s++) {
        memset(open, 0, (size_t)e->cfg.max_clients * 2 * sizeof *open);
        rc = check_book(e, s, open, &resting);
        __int128 position = 0, cash = 0; /* each client's fits int64; their sum need not */
        for (uint16_t c = 0; c < e->cfg.max_clients && rc == PT_OK; c++) {
            const client_symbol_t *cs = risk_cs(e, c, s);
            if (cs->open_qty[0] != open[2 * c] || cs->open_qty[1] != open[2 * c + 1])
                rc = PT_E_CORRUPT;
            position += cs->position;
            cash += cs->cash;
        }
        if (rc == PT_OK && (position != 0 || cash != 0))
            rc = PT_E_CORRUPT;
    }
    /* each client's row of client_slots: exactly its resting orders (each of those has its bit: check_book) */
    uint64_t listed = 0;
    for (uint16_t c = 0; c < e->cfg.max_clients && rc == PT_OK; c++) {
        /* (scanning every row whole instead would cost max_clients x max_orders / 64 words a check) */
        size_t n = index_client_slots(e, c, e->scratch);
        for (size_t i = 0; i < n; i++) {
            pt_idx_t oi = e->scratch[i];
            if (oi >= e->slot_top || e->orders[oi].id == 0 || e->orders[oi].client != c)
                rc = PT_E_CORRUPT;
        }
        if (e->clients[c].open_orders != (int64_t)n)
            rc = PT_E_CORRUPT;
        listed += (uint64_t)n;
    }
    if (rc == PT_OK && (resting != e->live_orders || listed != e->live_orders || e->ntouched != 0))
        rc = PT_E_CORRUPT;
    /* the kill switch's running PnL: marks are the last prices, and each loss client's headroom is
     * max_loss + its exact PnL */
    for (uint16_t s = 0; s < e->nsymbols && rc == PT_OK; s++)
        if (e->books[s].mark_price != e->books[s].last_price)
            rc = PT_E_CORRUPT;
    for (uint16_t i = 0; i < e->nloss_clients && rc == PT_OK; i++) {
        const loss_client_t *l = &e->loss_clients[i];
        if (l->client != &e->clients[l->id] || l->row != risk_cs(e, l->id, 0) ||
            l->client->loss_headroom != l->client->limits.max_loss + risk_pnl_exact(e, l->id))
            rc = PT_E_CORRUPT;
        /* a sweep may skip clients only while none is below its limit and still trading */
        if (!e->kill_check_due && l->client->loss_headroom < 0 && !l->client->killed)
            rc = PT_E_CORRUPT;
    }
    free(open);
    return rc;
}
