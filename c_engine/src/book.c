/*
 * book.c - one symbol's price levels.
 *
 * Each side keeps its levels in two parallel arrays sorted by key, best LAST
 * (key = price for bids, -price for asks). Almost all activity is near the
 * touch, so inserting or removing a level moves only the short tail after it,
 * and the best level is arrays[count-1]. Levels themselves live in a pool and
 * are named by index, so an order finds its level in O(1) when it is cancelled;
 * a level knows its position in the arrays, and a small hash table finds the
 * level at a price, so only creating a level searches the arrays (joining an
 * existing level was a binary search, 7% of all instructions, callgrind).
 *
 * Invariants (pt_engine_check walks them after every command in the tests):
 *   (1) keys are strictly ascending on each side: one level per price;
 *   (2) a level's qty = the sum of its orders' open_qty, order_count = their
 *       number, and both are > 0 (empty levels are removed at once);
 *   (3) every order's price is its level's price, open_qty > 0;
 *   (4) after every command, best bid < best ask: the book is never crossed
 *       or locked.
 */
#include <stdlib.h>

#include "internal.h"

static inline int64_t key_of(int si, int64_t price) { return si == 0 ? price : -price; }

int book_init(book_t *b, const pt_symbol_config_t *cfg, uint32_t max_levels_per_side)
{
    b->cfg = *cfg;
    /* max_price >= 1: lots x max_price <= RISK_EDGE iff lots <= RISK_EDGE / max_price, and |position| x max_price
     * < RISK_EDGE iff |position| <= (RISK_EDGE - 1) / max_price (risk_position_check) */
    b->risk_lots_edge = (uint64_t)(RISK_EDGE / cfg->max_price_ticks);
    b->risk_position_edge = (uint64_t)((RISK_EDGE - 1) / cfg->max_price_ticks);
    b->last_price = 0;
    b->mark_price = 0;
    uint32_t pool = 2 * max_levels_per_side;
    b->levels = calloc(pool, sizeof *b->levels);
    if (b->levels == NULL)
        return PT_E_NOMEM;
    for (uint32_t i = 0; i < pool; i++)
        b->levels[i].head = (i + 1 < pool) ? i + 1 : PT_NIL;
    b->free_level = 0;
    uint64_t slots = 16;
    while (slots < 2ULL * max_levels_per_side)
        slots <<= 1;
    for (int si = 0; si < 2; si++) {
        book_side_t *s = &b->sides[si];
        s->keys = malloc(max_levels_per_side * sizeof(int64_t));
        s->levels = malloc(max_levels_per_side * sizeof(pt_idx_t));
        s->by_price = malloc(slots * sizeof(pt_idx_t));
        s->price_mask = slots - 1;
        s->count = 0;
        if (s->keys == NULL || s->levels == NULL || s->by_price == NULL)
            return PT_E_NOMEM;
        for (uint64_t i = 0; i < slots; i++)
            s->by_price[i] = PT_NIL;
    }
    return PT_OK;
}

void book_free(book_t *b)
{
    free(b->levels);
    for (int si = 0; si < 2; si++) {
        free(b->sides[si].keys);
        free(b->sides[si].levels);
        free(b->sides[si].by_price);
    }
}

level_t *book_best(const book_t *b, int si)
{
    const book_side_t *s = &b->sides[si];
    return s->count ? &b->levels[s->levels[s->count - 1]] : NULL;
}

/* Position of the first key >= key, for a new level. The best level is checked first (a new touch is
 * the commonest); otherwise a branchless binary search: the comparisons compile to
 * conditional moves, since a price a few levels off the touch is a coin flip for the branch
 * predictor at every step. */
static uint32_t lower_bound(const book_side_t *s, int64_t key)
{
    uint32_t n = s->count;
    if (n == 0 || s->keys[n - 1] < key)
        return n;
    const int64_t *base = s->keys;
    while (n > 1) {
        uint32_t half = n / 2;
        base = base[half - 1] < key ? base + half : base;
        n -= half;
    }
    return (uint32_t)(base - s->keys) + (*base < key);
}

/* ---- price -> level (Robin Hood: a run is ordered by distance from home, so a search stops at the
 * first entry nearer its home than the probe, and a deletion shifts back only entries away from home) */

static inline uint64_t price_dist(const book_t *b, const book_side_t *s, pt_idx_t li, uint64_t slot)
{
    return (slot - (uint64_t)b->levels[li].price) & s->price_mask;
}

pt_idx_t book_find_level(const book_t *b, int si, int64_t price)
{
    const book_side_t *s = &b->sides[si];
    uint64_t i = (uint64_t)price & s->price_mask;
    for (uint64_t dist = 0;; dist++, i = (i + 1) & s->price_mask) {
        pt_idx_t li = s->by_price[i];
        if (li == PT_NIL)
            return PT_NIL;
        if (b->levels[li].price == price)
            return li;
        if (price_dist(b, s, li, i) < dist)
            return PT_NIL;
    }
}

static void price_insert(book_t *b, book_side_t *s, pt_idx_t li)
{
    uint64_t i = (uint64_t)b->levels[li].price & s->price_mask;
    for (uint64_t dist = 0;; dist++, i = (i + 1) & s->price_mask) {
        pt_idx_t there = s->by_price[i];
        if (there == PT_NIL) {
            s->by_price[i] = li;
            return;
        }
        uint64_t there_dist = price_dist(b, s, there, i);
        if (there_dist < dist) { /* the resident is nearer home: it moves on instead */
            s->by_price[i] = li;
            li = there;
            dist = there_dist;
        }
    }
}

static void price_erase(book_t *b, book_side_t *s, pt_idx_t li)
{
    uint64_t hole = (uint64_t)b->levels[li].price & s->price_mask;
    while (s->by_price[hole] != li)
        hole = (hole + 1) & s->price_mask;
    for (;;) {
        uint64_t next = (hole + 1) & s->price_mask;
        pt_idx_t there = s->by_price[next];
        if (there == PT_NIL || price_dist(b, s, there, next) == 0)
            break;
        s->by_price[hole] = there;
        hole = next;
    }
    s->by_price[hole] = PT_NIL;
}

/* ---- the sorted arrays -------------------------------------------------------------------------- */

bool book_can_add_level(const book_t *b, int si, uint32_t max_levels_per_side)
{
    return b->sides[si].count < max_levels_per_side;
}

/* The level at price, created empty if absent (the caller checked capacity). */
pt_idx_t book_level_for_insert(book_t *b, int si, int64_t price, bool *created)
{
    book_side_t *s = &b->sides[si];
    pt_idx_t found = book_find_level(b, si, price);
    if (found != PT_NIL) {
        *created = false;
        return found;
    }
    int64_t key = key_of(si, price);
    uint32_t pos = lower_bound(s, key);
    pt_idx_t li = b->free_level;
    level_t *lv = &b->levels[li];
    b->free_level = lv->head;
    *lv = (level_t){.price = price, .qty = 0, .order_count = 0, .head = PT_NIL, .tail = PT_NIL, .touch_stamp = 0,
                    .pos = pos, .side = (uint8_t)si};
    for (uint32_t i = s->count; i > pos; i--) {
        s->keys[i] = s->keys[i - 1];
        s->levels[i] = s->levels[i - 1];
        b->levels[s->levels[i]].pos = i;
    }
    s->keys[pos] = key;
    s->levels[pos] = li;
    s->count++;
    price_insert(b, s, li);
    *created = true;
    return li;
}

static void free_level(book_t *b, pt_idx_t li)
{
    b->levels[li].head = b->free_level;
    b->free_level = li;
}

void book_remove_level(book_t *b, int si, pt_idx_t li)
{
    book_side_t *s = &b->sides[si];
    price_erase(b, s, li);
    for (uint32_t i = b->levels[li].pos; i + 1 < s->count; i++) {
        s->keys[i] = s->keys[i + 1];
        s->levels[i] = s->levels[i + 1];
        b->levels[s->levels[i]].pos = i;
    }
    s->count--;
    free_level(b, li);
}

void book_pop_best(book_t *b, int si)
{
    book_side_t *s = &b->sides[si];
    pt_idx_t li = s->levels[--s->count];
    price_erase(b, s, li);
    free_level(b, li);
}

void level_append(pt_engine_t *e, level_t *lv, pt_idx_t oi)
{
    order_t *o = &e->orders[oi];
    o->next = PT_NIL;
    o->prev = lv->tail;
    if (lv->tail != PT_NIL)
        e->orders[lv->tail].next = oi;
    else
        lv->head = oi;
    lv->tail = oi;
    lv->qty += o->open_qty;
    lv->order_count++;
}

void level_unlink(pt_engine_t *e, level_t *lv, pt_idx_t oi)
{
    order_t *o = &e->orders[oi];
    if (o->prev != PT_NIL)
        e->orders[o->prev].next = o->next;
    else
        lv->head = o->next;
    if (o->next != PT_NIL)
        e->orders[o->next].prev = o->prev;
    else
        lv->tail = o->prev;
    lv->qty -= o->open_qty;
    lv->order_count--;
}
