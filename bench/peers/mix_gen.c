/*
 * mix_gen.c - writes the op stream that every adapter of bench/peers replays (peers.h has the file's layout),
 * and the figures a correct book must reproduce on it, from a reference book of its own.
 *
 * The stream, seeded (a 64-bit Mersenne Twister, so that a seed names the same stream wherever it is built):
 * 5,000 prefill GTC limits at mid +- 1..50 ticks, sizes 1..100; then per op the mid moves one tick with
 * probability 0.01 and: 35% cancel a live order chosen uniformly, 10% an IOC sized 50..150 two ticks through the
 * opposite touch, 55% a passive GTC limit 1..20 ticks from the mid (never crossing), sized 1..100. Seed 42 and
 * 2,000,000 ops give 567,858 trades, 19,374,290 lots traded and 21,605 orders resting at the end.
 *
 * The reference book is the simplest that is obviously right: per price a FIFO of order ids, in arrays indexed
 * by price; a cancelled order stays in its FIFO, marked dead, until it reaches the front or its level empties
 * (a level is gone as soon as it holds no live order). The live orders are kept in an array with swap-removal,
 * because which order a cancel picks is an index into that array: the order of removals is part of the stream.
 *
 * usage: mix_gen N_OPS SEED OUT.bin
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"

#define N_PREFILL 5000
#define MID0_TICKS 10000
#define PRICE_SPAN (1 << 20) /* prices must stay in [1, PRICE_SPAN): the mid's walk keeps them near MID0 */
#define NIL UINT32_MAX

/* ---- MT19937-64 (Matsumoto and Nishimura), seeded as std::mt19937_64(seed) ---- */
#define MT_N 312
#define MT_M 156
typedef struct mt64 {
    uint64_t s[MT_N];
    int i;
} mt64_t;

static void mt_seed(mt64_t *r, uint64_t seed) {
    r->s[0] = seed;
    for (int i = 1; i < MT_N; i++) r->s[i] = 6364136223846793005ull * (r->s[i - 1] ^ (r->s[i - 1] >> 62)) + (uint64_t)i;
    r->i = MT_N;
}

static uint64_t mt_next(mt64_t *r) {
    static const uint64_t mag[2] = {0, 0xB5026F5AA96619E9ull};
    const uint64_t hi = 0xFFFFFFFF80000000ull, lo = 0x7FFFFFFFull;
    if (r->i >= MT_N) {
        for (int k = 0; k < MT_N; k++) {
            uint64_t x = (r->s[k] & hi) | (r->s[(k + 1) % MT_N] & lo);
            r->s[k] = r->s[(k + MT_M) % MT_N] ^ (x >> 1) ^ mag[x & 1];
        }
        r->i = 0;
    }
    uint64_t x = r->s[r->i++];
    x ^= (x >> 29) & 0x5555555555555555ull;
    x ^= (x << 17) & 0x71D67FFFEDA60000ull;
    x ^= (x << 37) & 0xFFF7EEE000000000ull;
    x ^= x >> 43;
    return x;
}

/* An integer in [a, b], as (rng() % (b - a + 1)) + a. */
static int uniform_int(mt64_t *r, int a, int b) { return a + (int)(mt_next(r) % (uint64_t)(b - a + 1)); }
/* A double in [0, 1) from the top 53 bits. */
static double uniform_unit(mt64_t *r) { return (double)(mt_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* ---- the reference book ---- */
typedef struct ref_order {
    int32_t price;
    uint32_t qty;
    uint32_t next;      /* the next id in its level's FIFO */
    uint32_t live_pos;  /* its index in live[] while live */
    uint8_t side;
    bool live;
} ref_order_t;

typedef struct ref_level {
    uint32_t head, tail; /* FIFO of ids, dead ones included; NIL when the level is gone */
    uint32_t nlive;
} ref_level_t;

typedef struct ref_book {
    ref_order_t *orders;     /* by id */
    ref_level_t *levels[2];  /* by price, per side */
    int32_t best[2];         /* best bid, best ask; -1 when the side is empty */
    uint32_t nlevels[2];
    uint32_t *live;          /* live ids, swap-removed */
    size_t nlive;
    uint64_t trades, lots;
} ref_book_t;

static void live_add(ref_book_t *b, uint32_t id) {
    b->orders[id].live_pos = (uint32_t)b->nlive;
    b->live[b->nlive++] = id;
}

static void live_remove(ref_book_t *b, uint32_t id) {
    uint32_t pos = b->orders[id].live_pos, last = b->live[--b->nlive];
    b->live[pos] = last;
    b->orders[last].live_pos = pos;
}

static void check_price(int32_t price) {
    if (price < 1 || price >= PRICE_SPAN) {
        fprintf(stderr, "mix_gen: price %d outside [1, %d): another seed or fewer ops\n", price, PRICE_SPAN);
        exit(1);
    }
}

/* The best price of a side after its level at price emptied. */
static void level_gone(ref_book_t *b, int side, int32_t price) {
    ref_level_t *lv = &b->levels[side][price];
    lv->head = lv->tail = NIL;
    if (--b->nlevels[side] == 0) {
        b->best[side] = -1;
        return;
    }
    if (price != b->best[side]) return;
    int32_t step = side == 0 ? -1 : 1, p = price;
    do p += step;
    while (b->levels[side][p].nlive == 0);
    b->best[side] = p;
}

static void rest(ref_book_t *b, uint32_t id) {
    ref_order_t *o = &b->orders[id];
    check_price(o->price);
    ref_level_t *lv = &b->levels[o->side][o->price];
    o->next = NIL;
    o->live = true;
    if (lv->nlive++ == 0) {
        lv->head = lv->tail = id;
        b->nlevels[o->side]++;
        int32_t best = b->best[o->side];
        if (best < 0 || (o->side == 0 ? o->price > best : o->price < best)) b->best[o->side] = o->price;
    } else {
        b->orders[lv->tail].next = id;
        lv->tail = id;
    }
    live_add(b, id);
}

static void cancel(ref_book_t *b, uint32_t id) {
    ref_order_t *o = &b->orders[id];
    o->live = false;
    live_remove(b, id);
    if (--b->levels[o->side][o->price].nlive == 0) level_gone(b, o->side, o->price);
}

/* A taker of side (0 buy) up to limit: trades with the opposite side best first, FIFO within a level; returns
 * what is left. */
static uint32_t match(ref_book_t *b, int side, int32_t limit, uint32_t qty) {
    int opp = !side;
    while (qty > 0 && b->best[opp] >= 0) {
        int32_t price = b->best[opp];
        if (side == 0 ? price > limit : price < limit) break;
        ref_level_t *lv = &b->levels[opp][price];
        while (qty > 0 && lv->nlive > 0) {
            uint32_t mid = lv->head;
            ref_order_t *m = &b->orders[mid];
            if (!m->live) {
                lv->head = m->next;
                continue;
            }
            uint32_t fill = m->qty < qty ? m->qty : qty;
            m->qty -= fill;
            qty -= fill;
            b->trades++;
            b->lots += fill;
            if (m->qty == 0) {
                m->live = false;
                live_remove(b, mid);
                lv->head = m->next;
                lv->nlive--;
            }
        }
        if (lv->nlive == 0) level_gone(b, opp, price);
    }
    return qty;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: mix_gen N_OPS SEED OUT.bin\n");
        return 2;
    }
    uint64_t n_ops = strtoull(argv[1], NULL, 10), seed = strtoull(argv[2], NULL, 10);
    size_t total = N_PREFILL + n_ops;
    ref_book_t b = {0};
    b.orders = calloc(total + 1, sizeof *b.orders);
    b.live = calloc(total + 1, sizeof *b.live);
    mix_op_t *ops = calloc(total, sizeof *ops);
    for (int s = 0; s < 2; s++) {
        b.levels[s] = calloc(PRICE_SPAN, sizeof *b.levels[s]);
        b.best[s] = -1;
    }
    if (!b.orders || !b.live || !ops || !b.levels[0] || !b.levels[1]) {
        fprintf(stderr, "mix_gen: out of memory\n");
        return 1;
    }
    mt64_t r;
    mt_seed(&r, seed);
    uint32_t next_id = 1;
    size_t n = 0;
    int32_t mid = MID0_TICKS;
    uint64_t n_add = 0, n_cancel = 0, n_ioc = 0;
    for (int i = 0; i < N_PREFILL; i++) {
        uint8_t side = (uint8_t)uniform_int(&r, 0, 1);
        int32_t price = side == 0 ? mid - uniform_int(&r, 1, 50) : mid + uniform_int(&r, 1, 50);
        uint32_t qty = (uint32_t)uniform_int(&r, 1, 100), id = next_id++;
        b.orders[id] = (ref_order_t){.price = price, .qty = qty, .side = side};
        rest(&b, id);
        ops[n++] = (mix_op_t){MIX_ADD, side, 0, id, price, qty};
    }
    for (uint64_t k = 0; k < n_ops; k++) {
        if (uniform_unit(&r) < 0.01) mid += (mt_next(&r) & 1) ? 1 : -1;
        double u = uniform_unit(&r);
        int32_t best_bid = b.best[0] >= 0 ? b.best[0] : mid - 1, best_ask = b.best[1] >= 0 ? b.best[1] : mid + 1;
        if (u < 0.35 && b.nlive > 0) {
            uint32_t id = b.live[mt_next(&r) % b.nlive];
            ops[n++] = (mix_op_t){MIX_CANCEL, b.orders[id].side, 0, id, b.orders[id].price, 0};
            cancel(&b, id);
            n_cancel++;
        } else if (u < 0.45) {
            uint8_t side = (uint8_t)uniform_int(&r, 0, 1);
            uint32_t qty = (uint32_t)uniform_int(&r, 50, 150), id = next_id++;
            int32_t price = side == 0 ? best_ask + 2 : best_bid - 2;
            b.orders[id] = (ref_order_t){.price = price, .qty = qty, .side = side};
            match(&b, side, price, qty); /* the remainder is cancelled: it never rests */
            ops[n++] = (mix_op_t){MIX_IOC, side, 0, id, price, qty};
            n_ioc++;
        } else {
            uint8_t side = (uint8_t)uniform_int(&r, 0, 1);
            uint32_t qty = (uint32_t)uniform_int(&r, 1, 100), id = next_id++;
            int d = uniform_int(&r, 1, 20);
            int32_t price = side == 0 ? (mid - d < best_ask - 1 ? mid - d : best_ask - 1)
                                      : (mid + d > best_bid + 1 ? mid + d : best_bid + 1);
            b.orders[id] = (ref_order_t){.price = price, .qty = qty, .side = side};
            rest(&b, id);
            ops[n++] = (mix_op_t){MIX_ADD, side, 0, id, price, qty};
            n_add++;
        }
    }
    mix_header_t h = {.magic = {'M', 'I', 'X', '1'}, .n_prefill = N_PREFILL, .n_ops = n_ops, .seed = seed,
                      .id_end = next_id, .trades = b.trades, .lots = b.lots, .live_orders = b.nlive};
    FILE *f = fopen(argv[3], "wb");
    if (!f || fwrite(&h, sizeof h, 1, f) != 1 || fwrite(ops, sizeof *ops, n, f) != n || fclose(f) != 0) {
        perror(argv[3]);
        return 1;
    }
    printf("wrote %s: prefill %d, ops %llu (adds %llu, cancels %llu, IOCs %llu): trades %llu, lots %llu, "
           "live orders at the end %zu\n",
           argv[3], N_PREFILL, (unsigned long long)n_ops, (unsigned long long)n_add, (unsigned long long)n_cancel,
           (unsigned long long)n_ioc, (unsigned long long)b.trades, (unsigned long long)b.lots, b.nlive);
    return 0;
}
