/*
 * book_features.c - the per-event update and the sample of the microstructure features (book_features.h).
 *
 * Every formula is docs/ML.md's, computed with the same operations in the same order as
 * ml/features/_batch.py (numpy), so that the two agree to rounding: integers stay int64 until their last
 * division, which converts both operands to double first (as numpy does), and the EWMAs take their weights
 * from the caller.
 *
 * Invariants:
 *  (1) A side's levels lie in lv[0 .. n) sorted by key ascending, key = price (bids) or -price (asks), so the
 *      best level is the LAST: the levels that change most sit at the end, where an insert or a removal moves
 *      few entries. No two levels share a key; every qty > 0.
 *  (2) Own orders are dense in own[0 .. own_n). ids maps each one's id to its index; at maps the key
 *      (price, side) of each level holding one to how many do, so a delta or trade elsewhere costs one probe.
 *  (3) An own order is resting from the first BOOK_DELTA of its level after its ACK (the engine emits a
 *      command's deltas last); its rank is (rest_no, add_no): the delta that rested it, then the order in which
 *      it was added, the same time priority as ml/features/_batch.py's segments.
 *  (4) ofi_sum[k] = the sum of the OFI ring's rows at level k; trade_signed and trade_total = the sums over
 *      the trade ring; the momentum ring holds every sample from min(mom_at[]) on.
 *  (5) Once an allocation fails, err stays PT_BF_ERR_NOMEM and every sample returns it.
 *
 * Costs: a delta is a binary search plus a memmove of the levels better than it; a trade an append; a sample
 * O(depth + horizons) plus the amortised pops of expired window entries, and O(own orders) only when an own
 * order rested or left since the last sample (the front order per side is cached).
 */
#include "book_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt_wire.h"

/* Indices of the two sides in the arrays below (the wire's sides are PT_SIDE_BUY and PT_SIDE_SELL). */
#define BID 0
#define ASK 1
/* An empty ask slot's price: above any real one (ml.features.ASK_EMPTY); an empty bid slot's is 0. */
#define ASK_EMPTY ((int64_t)1 << 62)
/* The empty slot of the two hash maps' keys: no order id or level key takes it. */
#define MAP_EMPTY UINT64_MAX

typedef struct {
    int64_t key; /* price (bid) or -price (ask) */
    int64_t qty;
} level_t;

typedef struct {
    level_t *lv;
    size_t n, cap;
} side_t;

/* Open addressing, linear probing, deletion by backward shift; load <= 1/2. */
typedef struct {
    uint64_t *keys;
    int64_t *vals;
    size_t cap, n; /* cap: a power of two */
} map_t;

typedef struct {
    uint64_t id;
    int64_t price, open, ahead;
    uint64_t rest_no, add_no;
    int side; /* BID or ASK */
    int resting;
} own_t;

typedef struct {
    int64_t ts, s;
    int defined;
} mid_t;

typedef struct {
    int64_t ts, signed_qty, qty;
} trade_t;

struct pt_bf {
    pt_bf_spec_t spec;
    int width;
    int err;
    double weights[PT_BF_MAX_DEPTH];
    side_t side[2];
    /* The previous sample's top levels (sentinel prices in empty slots). */
    int has_prev;
    int64_t prev_bp[PT_BF_MAX_DEPTH], prev_bq[PT_BF_MAX_DEPTH], prev_ap[PT_BF_MAX_DEPTH], prev_aq[PT_BF_MAX_DEPTH];
    /* OFI: the last ofi_window rows of depth values (a ring), and their sums. */
    int64_t *ofi;
    int32_t ofi_n, ofi_pos;
    int64_t ofi_sum[PT_BF_MAX_DEPTH];
    /* Twice the mid, carried forward; the last max(return_horizons) + 1 of it, by sample. */
    int64_t s;
    int s_defined;
    mid_t *ret_hist;
    int64_t ret_cap, ret_written;
    /* Every sample's (ts, s) from the oldest any momentum horizon still reads: a growable ring, absolute
     * indices [mom_head, mom_tail); mom_at[k] is horizon k's reference sample. */
    mid_t *mom;
    uint64_t mom_cap, mom_head, mom_tail;
    uint64_t mom_at[PT_BF_MAX_HORIZONS];
    double var;
    /* Trades in the window: a growable ring, absolute indices [tr_head, tr_tail). */
    trade_t *tr;
    uint64_t tr_cap, tr_head, tr_tail;
    int64_t trade_signed, trade_total, trades_since;
    double trade_rate, book_rate;
    int has_last;
    int64_t last_ts;
    /* Own orders (invariants 2, 3) and the cached front order per side (-1: none; valid unless own_dirty). */
    own_t *own;
    size_t own_n, own_cap;
    map_t ids, at;
    uint64_t deltas, adds;
    int own_dirty;
    int64_t front[2];
    uint64_t samples;
};

/* --- the maps ------------------------------------------------------------------------------------------- */

static size_t map_hash(uint64_t k, size_t mask) {
    k ^= k >> 33; /* the finaliser of MurmurHash3: order ids and prices are sequential */
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return (size_t)k & mask;
}

static int map_init(map_t *m, size_t cap) {
    m->keys = malloc(cap * sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    if (!m->keys || !m->vals) return PT_BF_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) m->keys[i] = MAP_EMPTY;
    m->cap = cap;
    m->n = 0;
    return PT_BF_OK;
}

static void map_free(map_t *m) {
    free(m->keys);
    free(m->vals);
}

static int64_t *map_get(const map_t *m, uint64_t key) {
    size_t mask = m->cap - 1;
    for (size_t i = map_hash(key, mask);; i = (i + 1) & mask) {
        if (m->keys[i] == key) return &m->vals[i];
        if (m->keys[i] == MAP_EMPTY) return NULL;
    }
}

static int map_put(map_t *m, uint64_t key, int64_t val);

static int map_grow(map_t *m) {
    map_t bigger;
    if (map_init(&bigger, m->cap * 2) != PT_BF_OK) {
        map_free(&bigger);
        return PT_BF_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] != MAP_EMPTY) map_put(&bigger, m->keys[i], m->vals[i]);
    map_free(m);
    *m = bigger;
    return PT_BF_OK;
}

static int map_put(map_t *m, uint64_t key, int64_t val) {
    if (2 * (m->n + 1) > m->cap && map_grow(m) != PT_BF_OK) return PT_BF_ERR_NOMEM;
    size_t mask = m->cap - 1;
    size_t i = map_hash(key, mask);
    while (m->keys[i] != MAP_EMPTY && m->keys[i] != key) i = (i + 1) & mask;
    if (m->keys[i] == MAP_EMPTY) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return PT_BF_OK;
}

static void map_del(map_t *m, uint64_t key) {
    size_t mask = m->cap - 1;
    size_t i = map_hash(key, mask);
    while (m->keys[i] != key) {
        if (m->keys[i] == MAP_EMPTY) return;
        i = (i + 1) & mask;
    }
    /* Backward shift: move up every later entry of the run that may sit in the freed slot. */
    for (size_t j = (i + 1) & mask; m->keys[j] != MAP_EMPTY; j = (j + 1) & mask) {
        size_t home = map_hash(m->keys[j], mask);
        int stays = (j > i) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = MAP_EMPTY;
    m->n--;
}

/* --- create / destroy ----------------------------------------------------------------------------------- */

int pt_bf_width(const pt_bf_spec_t *spec) {
    return 10 + spec->depth + spec->n_return_horizons + spec->n_momentum_horizons;
}

static int spec_ok(const pt_bf_spec_t *p) {
    if (p->depth <= 0 || p->depth > PT_BF_MAX_DEPTH || p->ofi_window <= 0) return 0;
    if (p->n_return_horizons <= 0 || p->n_return_horizons > PT_BF_MAX_HORIZONS) return 0;
    if (p->n_momentum_horizons <= 0 || p->n_momentum_horizons > PT_BF_MAX_HORIZONS) return 0;
    for (int k = 0; k < p->n_return_horizons; k++)
        if (p->return_horizons[k] <= 0 || p->return_horizons[k] > (1 << 24)) return 0;
    for (int k = 0; k < p->n_momentum_horizons; k++)
        if (p->momentum_horizons_ns[k] <= 0) return 0;
    if (p->ofi_window > (1 << 24)) return 0;
    return p->trade_window_ns > 0 && p->rate_tau_ns > 0;
}

int pt_bf_create(const pt_bf_spec_t *spec, pt_bf_t **out) {
    if (!spec_ok(spec)) return PT_BF_ERR_SPEC;
    pt_bf_t *bf = calloc(1, sizeof *bf);
    if (!bf) return PT_BF_ERR_NOMEM;
    bf->spec = *spec;
    bf->width = pt_bf_width(spec);
    for (int k = 0; k < spec->depth; k++) bf->weights[k] = 1.0 / (double)(k + 1);
    int64_t longest = 0;
    for (int k = 0; k < spec->n_return_horizons; k++)
        if (spec->return_horizons[k] > longest) longest = spec->return_horizons[k];
    bf->ret_cap = longest + 1;
    bf->side[BID].cap = bf->side[ASK].cap = 256;
    bf->mom_cap = bf->tr_cap = 1024;
    bf->own_cap = 16;
    bf->side[BID].lv = malloc(256 * sizeof(level_t));
    bf->side[ASK].lv = malloc(256 * sizeof(level_t));
    bf->ofi = calloc((size_t)spec->ofi_window * (size_t)spec->depth, sizeof(int64_t));
    bf->ret_hist = malloc((size_t)bf->ret_cap * sizeof(mid_t));
    bf->mom = malloc(bf->mom_cap * sizeof(mid_t));
    bf->tr = malloc(bf->tr_cap * sizeof(trade_t));
    bf->own = malloc(bf->own_cap * sizeof(own_t));
    int maps = map_init(&bf->ids, 32) | map_init(&bf->at, 32);
    bf->front[BID] = bf->front[ASK] = -1;
    if (!bf->side[BID].lv || !bf->side[ASK].lv || !bf->ofi || !bf->ret_hist || !bf->mom || !bf->tr || !bf->own ||
        maps != PT_BF_OK) {
        pt_bf_destroy(bf);
        return PT_BF_ERR_NOMEM;
    }
    *out = bf;
    return PT_BF_OK;
}

void pt_bf_destroy(pt_bf_t *bf) {
    if (!bf) return;
    free(bf->side[BID].lv);
    free(bf->side[ASK].lv);
    free(bf->ofi);
    free(bf->ret_hist);
    free(bf->mom);
    free(bf->tr);
    free(bf->own);
    map_free(&bf->ids);
    map_free(&bf->at);
    free(bf);
}

/* --- rings that grow ------------------------------------------------------------------------------------ */

/* A ring of `size`-byte records holding absolute indices [head, tail), each at index % cap, copied into one of
 * twice the capacity (*cap doubles); the old one is freed. NULL (and the old one kept) if malloc fails. */
static void *ring_grow(void *buf, uint64_t *cap, uint64_t head, uint64_t tail, size_t size) {
    uint64_t old = *cap, cap2 = old * 2;
    char *fresh = malloc(cap2 * size);
    if (!fresh) return NULL;
    for (uint64_t i = head; i < tail; i++) memcpy(fresh + (i % cap2) * size, (char *)buf + (i % old) * size, size);
    free(buf);
    *cap = cap2;
    return fresh;
}

static int fail(pt_bf_t *bf) {
    bf->err = PT_BF_ERR_NOMEM;
    return PT_BF_ERR_NOMEM;
}

/* --- own orders ----------------------------------------------------------------------------------------- */

static uint64_t at_key(int s, int64_t price) { return ((uint64_t)price << 1) | (uint64_t)s; }

static int own_add(pt_bf_t *bf, uint64_t id, int s, int64_t price, int64_t open) {
    if (bf->own_n == bf->own_cap) {
        own_t *bigger = realloc(bf->own, 2 * bf->own_cap * sizeof(own_t));
        if (!bigger) return fail(bf);
        bf->own = bigger;
        bf->own_cap *= 2;
    }
    int64_t *count = map_get(&bf->at, at_key(s, price));
    if (map_put(&bf->ids, id, (int64_t)bf->own_n) != PT_BF_OK ||
        map_put(&bf->at, at_key(s, price), count ? *count + 1 : 1) != PT_BF_OK)
        return fail(bf);
    own_t *o = &bf->own[bf->own_n++];
    *o = (own_t){.id = id, .price = price, .open = open, .ahead = 0, .rest_no = 0, .add_no = ++bf->adds,
                 .side = s, .resting = 0};
    return PT_BF_OK;
}

static void own_drop(pt_bf_t *bf, size_t i) {
    own_t *o = &bf->own[i];
    uint64_t key = at_key(o->side, o->price);
    int64_t *count = map_get(&bf->at, key);
    if (count && --*count == 0) map_del(&bf->at, key);
    map_del(&bf->ids, o->id);
    size_t last = --bf->own_n;
    if (i != last) {
        bf->own[i] = bf->own[last];
        *map_get(&bf->ids, bf->own[i].id) = (int64_t)i;
    }
    bf->own_dirty = 1;
}

static own_t *own_find(const pt_bf_t *bf, uint64_t id, size_t *index) {
    int64_t *i = map_get(&bf->ids, id);
    if (!i) return NULL;
    *index = (size_t)*i;
    return &bf->own[*i];
}

static int side_of(int side) { return side == PT_SIDE_BUY ? BID : ASK; }

int pt_bf_own_ack(pt_bf_t *bf, uint64_t order_id, int side, int64_t price, int64_t open_qty) {
    if (!price || order_id == MAP_EMPTY || price < 0) return PT_BF_OK;
    size_t i;
    if (own_find(bf, order_id, &i)) own_drop(bf, i);
    return own_add(bf, order_id, side_of(side), price, open_qty);
}

int pt_bf_own_fill(pt_bf_t *bf, uint64_t order_id, int64_t leaves) {
    size_t i;
    own_t *o = own_find(bf, order_id, &i);
    if (o) {
        if (leaves > 0)
            o->open = leaves;
        else
            own_drop(bf, i);
    }
    return PT_BF_OK;
}

int pt_bf_own_modified(pt_bf_t *bf, uint64_t order_id, int64_t price, int64_t leaves) {
    size_t i;
    own_t *o = own_find(bf, order_id, &i);
    if (!o) return PT_BF_OK;
    if (price == o->price && leaves <= o->open) {
        o->open = leaves;
        return PT_BF_OK;
    }
    int s = o->side;
    own_drop(bf, i);
    if (price <= 0) return PT_BF_OK;
    return own_add(bf, order_id, s, price, leaves);
}

int pt_bf_queue_ahead(const pt_bf_t *bf, uint64_t order_id, int64_t *ahead) {
    size_t i;
    const own_t *o = own_find(bf, order_id, &i);
    if (!o || !o->resting) return 0;
    *ahead = o->ahead;
    return 1;
}

/* --- market data ---------------------------------------------------------------------------------------- */

/* The first index whose key is >= key. */
static size_t lower_bound(const side_t *sd, int64_t key) {
    size_t lo = 0, hi = sd->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sd->lv[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int pt_bf_book_delta(pt_bf_t *bf, int side, int64_t price, int64_t qty) {
    int s = side_of(side);
    side_t *sd = &bf->side[s];
    int64_t key = s == BID ? price : -price;
    size_t i = lower_bound(sd, key);
    int found = i < sd->n && sd->lv[i].key == key;
    if (qty > 0) {
        if (found) {
            sd->lv[i].qty = qty;
        } else {
            if (sd->n == sd->cap) {
                level_t *bigger = realloc(sd->lv, 2 * sd->cap * sizeof(level_t));
                if (!bigger) return fail(bf);
                sd->lv = bigger;
                sd->cap *= 2;
            }
            memmove(&sd->lv[i + 1], &sd->lv[i], (sd->n - i) * sizeof(level_t));
            sd->lv[i] = (level_t){key, qty};
            sd->n++;
        }
    } else if (found) {
        memmove(&sd->lv[i], &sd->lv[i + 1], (sd->n - i - 1) * sizeof(level_t));
        sd->n--;
    }
    bf->deltas++;
    if (bf->own_n && map_get(&bf->at, at_key(s, price))) {
        for (size_t j = 0; j < bf->own_n; j++) {
            own_t *o = &bf->own[j];
            if (o->side != s || o->price != price) continue;
            int64_t others = qty - o->open;
            if (others < 0) others = 0; /* the batch side's max(0, .): nobody is ahead of nobody */
            if (!o->resting) {
                o->resting = 1;
                o->rest_no = bf->deltas;
                o->ahead = others;
                bf->own_dirty = 1;
            } else if (others < o->ahead) {
                o->ahead = others;
            }
        }
    }
    return PT_BF_OK;
}

int pt_bf_trade(pt_bf_t *bf, int side, int64_t price, int64_t qty, int64_t ts_ns) {
    if (bf->tr_tail - bf->tr_head == bf->tr_cap) {
        trade_t *bigger = ring_grow(bf->tr, &bf->tr_cap, bf->tr_head, bf->tr_tail, sizeof(trade_t));
        if (!bigger) return fail(bf);
        bf->tr = bigger;
    }
    int64_t signed_qty = side == PT_SIDE_BUY ? qty : -qty;
    bf->tr[bf->tr_tail++ % bf->tr_cap] = (trade_t){ts_ns, signed_qty, qty};
    bf->trade_signed += signed_qty;
    bf->trade_total += qty;
    bf->trades_since++;
    int maker = side == PT_SIDE_BUY ? ASK : BID; /* the makers rest on the other side */
    if (bf->own_n && map_get(&bf->at, at_key(maker, price))) {
        for (size_t j = 0; j < bf->own_n; j++) {
            own_t *o = &bf->own[j];
            if (o->side == maker && o->price == price && o->resting && o->ahead > 0)
                o->ahead = o->ahead > qty ? o->ahead - qty : 0;
        }
    }
    return PT_BF_OK;
}

/* --- the sample ----------------------------------------------------------------------------------------- */

static void top(const pt_bf_t *bf, int64_t *bp, int64_t *bq, int64_t *ap, int64_t *aq) {
    int d = bf->spec.depth;
    const side_t *b = &bf->side[BID], *a = &bf->side[ASK];
    for (int k = 0; k < d; k++) {
        if ((size_t)k < b->n) {
            bp[k] = b->lv[b->n - 1 - (size_t)k].key;
            bq[k] = b->lv[b->n - 1 - (size_t)k].qty;
        } else {
            bp[k] = 0;
            bq[k] = 0;
        }
        if ((size_t)k < a->n) {
            ap[k] = -a->lv[a->n - 1 - (size_t)k].key;
            aq[k] = a->lv[a->n - 1 - (size_t)k].qty;
        } else {
            ap[k] = ASK_EMPTY;
            aq[k] = 0;
        }
    }
}

static double ret_bps(int64_t s, int s_def, int64_t ref, int ref_def) {
    if (!s_def || !ref_def) return NAN;
    return 1e4 * (double)(s - ref) / (double)ref;
}

/* The front own order of side s: the best price, then the earliest rank (invariant 3); -1 if none rests. */
static int64_t front_of(const pt_bf_t *bf, int s) {
    int64_t best = -1;
    for (size_t j = 0; j < bf->own_n; j++) {
        const own_t *o = &bf->own[j];
        if (o->side != s || !o->resting) continue;
        if (best < 0) {
            best = (int64_t)j;
            continue;
        }
        const own_t *b = &bf->own[best];
        int better = s == BID ? o->price > b->price : o->price < b->price;
        if (better || (o->price == b->price &&
                       (o->rest_no < b->rest_no || (o->rest_no == b->rest_no && o->add_no < b->add_no))))
            best = (int64_t)j;
    }
    return best;
}

int pt_bf_sample(pt_bf_t *bf, int64_t ts_ns, double *row) {
    if (bf->err) return bf->err;
    const pt_bf_spec_t *p = &bf->spec;
    int d = p->depth;
    int64_t bp[PT_BF_MAX_DEPTH], bq[PT_BF_MAX_DEPTH], ap[PT_BF_MAX_DEPTH], aq[PT_BF_MAX_DEPTH];
    top(bf, bp, bq, ap, aq);
    int64_t qb = bq[0], qa = aq[0];
    int both = qb > 0 && qa > 0;
    int c = 0;

    /* Book shape. */
    row[c++] = both ? (double)(ap[0] - bp[0]) : NAN;
    row[c++] = qb + qa ? (double)(qb - qa) / (double)(qb + qa) : NAN;
    double num = 0.0, den = 0.0;
    for (int k = 0; k < d; k++) {
        num = num + bf->weights[k] * (double)(bq[k] - aq[k]);
        den = den + bf->weights[k] * (double)(bq[k] + aq[k]);
    }
    row[c++] = den != 0.0 ? num / den : NAN;
    row[c++] = both ? (double)((ap[0] - bp[0]) * (qb - qa)) / (double)(2 * (qb + qa)) : NAN;

    /* OFI between this sample and the previous one, summed over the window. */
    int changed = 0;
    int64_t *slot = &bf->ofi[(size_t)bf->ofi_pos * (size_t)d];
    int full = bf->ofi_n == p->ofi_window;
    for (int k = 0; k < d; k++) {
        int64_t e = 0;
        if (bf->has_prev) {
            e = (bp[k] >= bf->prev_bp[k] ? bq[k] : 0) - (bp[k] <= bf->prev_bp[k] ? bf->prev_bq[k] : 0) -
                (ap[k] <= bf->prev_ap[k] ? aq[k] : 0) + (ap[k] >= bf->prev_ap[k] ? bf->prev_aq[k] : 0);
            changed |= bp[k] != bf->prev_bp[k] || bq[k] != bf->prev_bq[k] || ap[k] != bf->prev_ap[k] ||
                       aq[k] != bf->prev_aq[k];
        }
        bf->ofi_sum[k] += full ? e - slot[k] : e; /* full: the slot holds the row leaving the window */
        slot[k] = e;
        row[c++] = (double)bf->ofi_sum[k];
    }
    if (!full) bf->ofi_n++;
    bf->ofi_pos = (bf->ofi_pos + 1) % p->ofi_window;
    memcpy(bf->prev_bp, bp, (size_t)d * sizeof(int64_t));
    memcpy(bf->prev_bq, bq, (size_t)d * sizeof(int64_t));
    memcpy(bf->prev_ap, ap, (size_t)d * sizeof(int64_t));
    memcpy(bf->prev_aq, aq, (size_t)d * sizeof(int64_t));
    bf->has_prev = 1;

    /* Mid returns over samples, then over time. */
    int64_t prev_s = bf->s;
    int prev_def = bf->s_defined;
    if (both) {
        bf->s = bp[0] + ap[0];
        bf->s_defined = 1;
    }
    int64_t s = bf->s;
    int s_def = bf->s_defined;
    bf->ret_hist[bf->ret_written % bf->ret_cap] = (mid_t){ts_ns, s, s_def};
    bf->ret_written++;
    int64_t kept = bf->ret_written < bf->ret_cap ? bf->ret_written : bf->ret_cap;
    for (int k = 0; k < p->n_return_horizons; k++) {
        int64_t h = p->return_horizons[k];
        if (h < kept) {
            const mid_t *ref = &bf->ret_hist[(bf->ret_written - 1 - h) % bf->ret_cap];
            row[c++] = ret_bps(s, s_def, ref->s, ref->defined);
        } else {
            row[c++] = NAN;
        }
    }
    if (bf->mom_tail - bf->mom_head == bf->mom_cap) {
        mid_t *bigger = ring_grow(bf->mom, &bf->mom_cap, bf->mom_head, bf->mom_tail, sizeof(mid_t));
        if (!bigger) return fail(bf);
        bf->mom = bigger;
    }
    bf->mom[bf->mom_tail++ % bf->mom_cap] = (mid_t){ts_ns, s, s_def};
    uint64_t oldest = bf->mom_tail - 1;
    for (int k = 0; k < p->n_momentum_horizons; k++) {
        int64_t cutoff = ts_ns - p->momentum_horizons_ns[k];
        uint64_t at = bf->mom_at[k];
        while (at + 1 < bf->mom_tail && bf->mom[(at + 1) % bf->mom_cap].ts <= cutoff) at++;
        bf->mom_at[k] = at;
        const mid_t *ref = &bf->mom[at % bf->mom_cap];
        row[c++] = ref->ts <= cutoff ? ret_bps(s, s_def, ref->s, ref->defined) : NAN;
        if (at < oldest) oldest = at;
    }
    bf->mom_head = oldest;

    /* Realised volatility: EWMA of the squared one-sample return (0 where undefined). */
    double r1 = prev_def && s_def && bf->samples ? 1e4 * (double)(s - prev_s) / (double)prev_s : 0.0;
    bf->var = p->vol_alpha * (r1 * r1) + p->vol_beta * bf->var;
    row[c++] = sqrt(bf->var);

    /* Trade-flow imbalance over the time window. */
    int64_t cutoff = ts_ns - p->trade_window_ns;
    while (bf->tr_head < bf->tr_tail) {
        const trade_t *t = &bf->tr[bf->tr_head % bf->tr_cap];
        if (t->ts > cutoff) break;
        bf->trade_signed -= t->signed_qty;
        bf->trade_total -= t->qty;
        bf->tr_head++;
    }
    row[c++] = bf->trade_total ? (double)bf->trade_signed / (double)bf->trade_total : 0.0;

    /* Arrival rates. */
    double decay = bf->has_last ? exp(-((double)(ts_ns - bf->last_ts) / (double)p->rate_tau_ns)) : 0.0;
    bf->trade_rate = decay * bf->trade_rate + (double)bf->trades_since * p->per_event_hz;
    bf->book_rate = decay * bf->book_rate + (double)changed * p->per_event_hz;
    row[c++] = bf->trade_rate;
    row[c++] = bf->book_rate;
    bf->trades_since = 0;
    bf->last_ts = ts_ns;
    bf->has_last = 1;

    /* Queue ahead of the front own order each side. */
    if (bf->own_dirty) {
        bf->front[BID] = front_of(bf, BID);
        bf->front[ASK] = front_of(bf, ASK);
        bf->own_dirty = 0;
    }
    for (int s2 = BID; s2 <= ASK; s2++)
        row[c++] = bf->own_n && bf->front[s2] >= 0 ? (double)bf->own[bf->front[s2]].ahead : NAN;
    bf->samples++;
    return PT_BF_OK;
}

int pt_bf_sample_columns(pt_bf_t *bf, int64_t ts_ns, double *row, float *out, const int32_t *columns, int n) {
    int rc = pt_bf_sample(bf, ts_ns, row);
    if (rc != PT_BF_OK) return rc;
    /* A C conversion rounds to nearest, as numpy's astype(float32) and ONNX Cast do. */
    for (int i = 0; i < n; i++) out[i] = (float)row[columns[i]];
    return PT_BF_OK;
}

uint64_t pt_bf_samples(const pt_bf_t *bf) { return bf->samples; }
