/*
 * internal.h - the engine's private state, shared by the files of c_engine/src.
 *
 * Memory: everything is allocated by pt_engine_create (orders, indexes, events,
 * client state) or pt_engine_add_symbol (that symbol's price levels); the
 * order path never allocates. Resting objects (orders, levels, index entries)
 * refer to each other by 32-bit index into their pool, never by pointer, so
 * pools could be moved or mapped; the only pointers kept are engine-local
 * shortcuts into those allocations, which never move (the kill switch's
 * loss_client_t, a command's touched_t).
 *
 * Who does what:
 *   index.c  order id -> order and (client, cloid) -> order, open addressing
 *   book.c   price levels: sorted per side, each a FIFO of orders
 *   risk.c   per-client limits, positions, cash, rate bucket, kill switch
 *   emit.c   the CANCELED events, touched levels, an order off its level and
 *            back to the pool, a client's orders cancelled (emit.h)
 *   match.c  the taker walk (trades, self-trade prevention) and the FOK dry run
 *   engine.c commands: validation order, events, per-command bookkeeping
 *   inspect.c snapshots, state hash, invariant checks
 */
#ifndef PT_INTERNAL_H
#define PT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pt_engine.h"

typedef uint32_t pt_idx_t;
#define PT_NIL UINT32_MAX

/* side index: 0 = buy (bids), 1 = sell (asks) */
static inline int side_index(uint8_t side) { return side == PT_SIDE_SELL; }
/* +1 for a buy, -1 for a sell. Whether an order buys or sells is a coin flip for the branch predictor, so
 * side-dependent arithmetic multiplies by this instead of branching (mispredictions, callgrind --branch-sim). */
static inline int64_t side_sign(uint8_t side) { return 1 - 2 * (int64_t)side_index(side); }

/*
 * A resting order, split by what touches it. The hot part is what matching and the order path read: 32
 * bytes, two orders to a cache line. The benchmark's book (33 k orders) sits at the edge of what this class
 * of machine caches: a miss costs ~20 ns up to ~2 MiB and ~185 ns beyond (docs/BENCHMARKS.md, `make
 * bench-memory`). Its price and side are its level's; the rest is cold, in parallel arrays indexed like the
 * orders.
 */
typedef struct order {
    uint64_t id;           /* 0 while the slot is free */
    int64_t open_qty;
    pt_idx_t prev, next;   /* FIFO at the level, PT_NIL at the ends; next links the free slots */
    uint32_t level : 24;   /* index in the symbol's level pool while resting: its price and side */
    uint32_t terms : 8;    /* stp | post_only << 3: read by a modify, the snapshots, the state hash and checks */
    uint16_t client;
    uint16_t symbol;
} order_t;
/* The level field's width bounds the pool of 2 x max_levels_per_side levels: PT_MAX_LEVELS_PER_SIDE. */
_Static_assert(2ull * PT_MAX_LEVELS_PER_SIDE <= (1ull << 24), "a level index fits order_t.level");
_Static_assert(sizeof(order_t) == 32, "two hot orders to a cache line");

/* The cloid is cold, 8 bytes a slot apart from the orders (e->order_cloid): the events that echo it (ACK,
 * CANCELED, MODIFIED), the cloid index, L3 and the state hash read it; matching and a fill do not. The terms
 * stay hot: a field written at every new order and read on no path keeps missing the cache (a byte array of
 * them cost 0.6 L1 misses per new order, callgrind). */

/* order_t.terms */
#define ORDER_TERMS(stp, post_only) ((uint8_t)((stp) | ((post_only) ? 8 : 0)))
static inline uint8_t terms_stp(uint8_t terms) { return terms & 7; }
static inline bool terms_post_only(uint8_t terms) { return (terms & 8) != 0; }

typedef struct level {
    int64_t price;
    int64_t qty;           /* = sum of its orders' open_qty (book_check) */
    int64_t order_count;
    pt_idx_t head, tail;   /* head = oldest = next to trade; free list link when unused */
    uint64_t touch_stamp;  /* == engine cmd_stamp when already in this command's touched list */
    uint32_t pos;          /* index in its side's sorted arrays while it exists */
    uint8_t side;          /* side index, so a reused slot is not mistaken for the level it was */
} level_t;

/*
 * One side of a book: its levels sorted so that the best is LAST, keyed by
 * price for bids and -price for asks, so one ascending order serves both and
 * the activity near the touch only moves the tail of the arrays.
 */
typedef struct book_side {
    int64_t *keys;
    pt_idx_t *levels;
    uint32_t count;
    /* price -> level: Robin Hood open addressing on price & mask (prices near the touch are consecutive
     * integers, so each sits in its own slot), holding the level index; book.c */
    pt_idx_t *by_price;
    uint64_t price_mask;
} book_side_t;

typedef struct book {
    pt_symbol_config_t cfg;
    book_side_t sides[2];
    level_t *levels;       /* pool of 2*max_levels_per_side */
    pt_idx_t free_level;
    int64_t last_price;    /* 0 until the first trade */
    int64_t mark_price;    /* the price the loss clients' pnl is marked at: last_price after every command */
    bool halted;           /* PT_OP_HALT: new orders and modifies are rejected until PT_OP_RESUME */
    /* From cfg.max_price_ticks, for risk_position_check's common case without multiplying (book_init): the most
     * lots whose value at the max price is at most RISK_EDGE, and the most whose value is below it. */
    uint64_t risk_lots_edge;
    uint64_t risk_position_edge;
    /* The prices check_price accepts (in range, inside the band) while the reference price is price_window_ref:
     * price - price_window_lo <= price_window_span, unsigned, one compare. Set after each command that traded and
     * when a book is made or loaded (risk_price_window); a reference it was not set for (-1: none) takes the
     * ordered checks, which give the same answer. */
    int64_t price_window_ref;
    int64_t price_window_lo;
    uint64_t price_window_span;
} book_t;

typedef struct client_symbol {
    int64_t position;
    int64_t cash;
    int64_t open_qty[2];   /* resting lots, by side index */
} client_symbol_t;

typedef struct client {
    /* max_loss + realised + unrealised PnL at the books' mark prices, money units: the kill switch fires
     * when it is below 0. Kept up to date for clients with a loss limit (risk.c), so the kill switch reads
     * one sign instead of summing every symbol after each trade. */
    __int128 loss_headroom;
    pt_client_limits_t limits;
    /* max_order_qty and max_open_orders as caps, INT64_MAX where the limit is off (0): each check is one compare
     * instead of two (risk_limits_derive, whenever limits change). */
    int64_t order_qty_cap;
    int64_t open_orders_cap;
    int64_t tokens;        /* rate bucket, in 1e-9 tokens */
    int64_t rate_cap;      /* a full bucket: burst x 10^9 */
    uint64_t last_ts;
    int64_t open_orders;   /* = the bits set in its row of client_slots */
    uint64_t max_cloid;    /* not cloids_indexed: every resting cloid of the client is <= this (index.c) */
    bool cloids_indexed;   /* its resting cloids are in by_cloid: it once sent a cloid not above max_cloid */
    bool killed;
} client_t;

/* A client with a loss limit, as the kill-switch sweep walks them: where its state is, found once. */
typedef struct loss_client {
    client_t *client;
    const client_symbol_t *row; /* its client_symbols, indexed by symbol */
    uint16_t id;
} loss_client_t;

typedef struct touched {
    const level_t *lv;     /* the level at that price when last touched; see finish_command (levels never move) */
    int64_t price;
    uint64_t delta_head;   /* the BOOK_DELTA's word 0 (event_head): its side and symbol */
    uint8_t side;          /* side index */
} touched_t;

/* by_id: a ring indexed by id & mask, plus an overflow table for the rare id whose
 * slot is still held by an order one lap older (index.c). */
typedef struct id_index {
    pt_idx_t *ring;
    uint64_t ring_mask;
    pt_idx_t *overflow;   /* open addressing, scattered hash */
    uint64_t overflow_mask;
    uint64_t overflow_count;
} id_index_t;

typedef struct cloid_slot {
    uint64_t cloid;
    pt_idx_t order;       /* PT_NIL = empty */
    uint16_t client;
    uint16_t dist;        /* slots from its home (Robin Hood probing) */
} cloid_slot_t;

/* by_cloid: open addressing over (client, cloid), the key kept in the slot. Its probe runs stay far below
 * 65,535 slots (dist is 16 bits): a run that long needs that many live entries hashing to one place. */
typedef struct cloid_index {
    cloid_slot_t *slots;
    uint64_t mask;
    uint64_t multiplier;  /* secret and odd: the hash of cloid blocks (index.c) */
    unsigned block_shift; /* 64 - the bits that number a block */
} cloid_index_t;

struct pt_engine {
    pt_engine_config_t cfg;

    order_t *orders;
    uint64_t *order_cloid;     /* [order slot] */
    pt_idx_t free_order;
    pt_idx_t slot_top;         /* slots below this have been used; new orders take it when none was freed */
    /* Each client's resting orders, as a bitmap over order slots: bit (slot % 64) of word [client * row_words
     * + slot / 64] (index.c, "by client"). Listing them (mass cancel, kill switch) scans the client's words
     * below slot_top and sorts by id into scratch. A row is one cache line longer than the whole lines that
     * max_orders bits need: with rows a power of two apart, the clients' words for the same slots fell in one
     * cache set, and eight clients' rows missed L1 on most inserts and releases (callgrind). */
    uint64_t *client_slots;
    uint64_t row_words;
    pt_idx_t *scratch;         /* [max_orders]: working memory for listing a client's orders, never state */
    uint64_t live_orders;

    id_index_t by_id;
    cloid_index_t by_cloid;

    book_t *books;
    uint16_t nsymbols;

    client_t *clients;
    client_symbol_t *client_symbols;  /* [client * max_symbols + symbol] */
    loss_client_t *loss_clients;      /* clients with max_loss > 0, ascending id */
    uint16_t nloss_clients;
    /* false: no loss client is below its limit (loss_headroom < 0) and not killed, so a sweep whose mark did
     * not move has nothing to do (risk.c). Set by whatever may break that: a fill that leaves a loss client
     * below, a KILL_RESET, new limits; cleared by a sweep of every loss client. */
    bool kill_check_due;

    pt_event_t *events;
    size_t nevents, event_capacity;

    touched_t *touched;
    size_t ntouched;
    uint64_t cmd_stamp;
    bool cmd_traded;
    uint16_t cmd_trade_symbol;      /* a command trades on one symbol: the taker's */

    uint64_t seq;          /* last event sequence number */
    uint64_t order_seq;    /* last order id */
    uint64_t trade_seq;    /* last trade id */
    uint64_t commands;
};

/* A resting order's level, price and side (its level's). */
static inline level_t *order_level(const pt_engine_t *e, const order_t *o)
{
    return &e->books[o->symbol].levels[o->level];
}
static inline int64_t order_price(const pt_engine_t *e, const order_t *o) { return order_level(e, o)->price; }
static inline int order_side_index(const pt_engine_t *e, const order_t *o) { return order_level(e, o)->side; }
/* enum pt_side of a side index */
static inline uint8_t side_of_index(int si) { return (uint8_t)(PT_SIDE_BUY + si); }

/* mem.c */
void *mem_alloc(size_t bytes);
void *mem_alloc_sparse(size_t bytes);
void mem_free(void *p, size_t bytes);

/* index.c */
int index_init(pt_engine_t *e);
void index_free(pt_engine_t *e);
pt_idx_t index_find_id(const pt_engine_t *e, uint64_t id);
void index_insert_id_overflow(pt_engine_t *e, pt_idx_t oi);
void index_erase_id_overflow(pt_engine_t *e, pt_idx_t oi);
/* An order (its id set) into by_id, and out of it: its ring slot inline, the overflow table in index.c (a call
 * for the ring slot cost a cancel and a filled maker ~8 instructions, callgrind). */
static inline void index_insert_id(pt_engine_t *e, pt_idx_t oi)
{
    pt_idx_t *slot = &e->by_id.ring[e->orders[oi].id & e->by_id.ring_mask];
    if (__builtin_expect(*slot == PT_NIL, 1))
        *slot = oi;
    else
        index_insert_id_overflow(e, oi);
}
static inline void index_erase_id(pt_engine_t *e, pt_idx_t oi)
{
    pt_idx_t *slot = &e->by_id.ring[e->orders[oi].id & e->by_id.ring_mask];
    if (__builtin_expect(*slot == oi, 1))
        *slot = PT_NIL;
    else
        index_erase_id_overflow(e, oi);
}
pt_idx_t index_find_cloid(const pt_engine_t *e, uint16_t client, uint64_t cloid);
void index_prepare_cloid_check(pt_engine_t *e, uint16_t client, uint64_t cloid);
bool index_cloid_in_use(const pt_engine_t *e, uint16_t client, uint64_t cloid);
void index_add_cloid(pt_engine_t *e, pt_idx_t oi);
void index_remove_cloid(pt_engine_t *e, pt_idx_t oi);
void index_client_flat(pt_engine_t *e, uint16_t client);
size_t index_client_slots(const pt_engine_t *e, uint16_t client, pt_idx_t *out);
size_t index_client_orders(pt_engine_t *e, uint16_t client, uint16_t symbol, bool by_id);

/* The bit of order slot oi in its client's row of client_slots. */
static inline uint64_t *client_slot_word(const pt_engine_t *e, uint16_t client, pt_idx_t oi)
{
    return &e->client_slots[client * e->row_words + oi / 64];
}
static inline void index_add_client_order(pt_engine_t *e, uint16_t client, pt_idx_t oi)
{
    *client_slot_word(e, client, oi) |= 1ull << (oi % 64);
}
static inline void index_remove_client_order(pt_engine_t *e, uint16_t client, pt_idx_t oi)
{
    *client_slot_word(e, client, oi) &= ~(1ull << (oi % 64));
}

/* book.c */
int book_init(book_t *b, const pt_symbol_config_t *cfg, uint32_t max_levels_per_side);
void book_free(book_t *b);
level_t *book_best(const book_t *b, int si);
pt_idx_t book_find_level(const book_t *b, int si, int64_t price);
pt_idx_t book_level_for_insert(book_t *b, int si, int64_t price, bool *created);
void book_remove_level(book_t *b, int si, pt_idx_t li);
void book_pop_best(book_t *b, int si);
bool book_can_add_level(const book_t *b, int si, uint32_t max_levels_per_side);
void level_append(pt_engine_t *e, level_t *lv, pt_idx_t oi);
void level_unlink(pt_engine_t *e, level_t *lv, pt_idx_t oi);

/* index_find_id with its common case inline: the order in the ring slot of its id (index.c). */
static inline pt_idx_t order_by_id(const pt_engine_t *e, uint64_t id)
{
    pt_idx_t oi = e->by_id.ring[id & e->by_id.ring_mask];
    return oi != PT_NIL && e->orders[oi].id == id ? oi : index_find_id(e, id);
}

/* The level at price on side si when it sits in its home slot of the price table, which is where prices near
 * the touch are (consecutive integers); otherwise PT_NIL, and book_find_level or book_level_for_insert
 * probe on. Inline: a call to book.c for the commonest case cost a new order ~15 instructions. */
static inline pt_idx_t book_level_at_home(const book_t *b, int si, int64_t price)
{
    const book_side_t *s = &b->sides[si];
    pt_idx_t li = s->by_price[(uint64_t)price & s->price_mask];
    return li != PT_NIL && b->levels[li].price == price ? li : PT_NIL;
}

/* risk.c */
/* The price band's reference: the last trade's price, the configured one before the first trade. */
static inline int64_t risk_reference_price(const book_t *b)
{
    return b->last_price ? b->last_price : b->cfg.reference_price;
}
bool risk_outside_band(const book_t *b, int64_t price);
void risk_price_window(book_t *b);
void risk_limits_derive(client_t *c);
bool risk_rate_available(const client_t *c, uint64_t ts, int64_t *tokens_after);
void risk_rate_consume(client_t *c, uint64_t ts, int64_t tokens_after);
/* A client's risk state on a symbol. */
static inline client_symbol_t *risk_cs(const pt_engine_t *e, uint16_t client, uint16_t symbol)
{
    return &e->client_symbols[(size_t)client * e->cfg.max_symbols + symbol];
}
uint16_t risk_position_check_exact(const pt_engine_t *e, uint16_t client, uint16_t symbol, uint8_t side,
                                   int64_t add_qty);
void risk_on_fills(pt_engine_t *e, uint16_t client, uint16_t symbol, uint8_t side, int64_t qty, int64_t notional);
__int128 risk_pnl_exact(const pt_engine_t *e, uint16_t client);
int64_t risk_pnl(const pt_engine_t *e, uint16_t client, bool *overflow);
void risk_kill_switch_sweep(pt_engine_t *e, uint64_t ts);

/* Two values below this in magnitude (or at most it: a worst-case notional) add up inside int64
 * (risk_position_check). */
#define RISK_EDGE ((int64_t)1 << 62)
/* |v| < RISK_EDGE, in one compare: v + RISK_EDGE - 1 in [0, 2 x RISK_EDGE - 1), unsigned. */
static inline bool below_risk_edge(int64_t v)
{
    return (uint64_t)v + (uint64_t)(RISK_EDGE - 1) < 2 * (uint64_t)RISK_EDGE - 1;
}

/* The position checks of an order that adds add_qty lots on side (a new order, or a modify's increase), in
 * docs/ENGINE.md's order; 0 if it passes. RISK_MAX_POSITION: position + resting buys + add <= max_position (the
 * mirror for sells). RISK_INT64_OVERFLOW: if the client's open orders on the side and add_qty more all filled at
 * the symbol's max price, its cash, or its position's value at that price, would leave int64 (risk.c says why
 * that bound).
 * Inline, the common case: position x max_price and cash below RISK_EDGE in magnitude, and lots x max_price at
 * most RISK_EDGE. Then nothing can leave int64 (each result is a sum of two such terms) and the limit is one
 * compare (|position| and lots are at most those products). Anything else goes to the exact 128-bit checks (a
 * call that did both, in int64 with overflow flags, cost a new order 60 instructions). */
static inline uint16_t risk_position_check(const pt_engine_t *e, uint16_t client, uint16_t symbol, uint8_t side,
                                           int64_t add_qty)
{
    const client_symbol_t *cs = risk_cs(e, client, symbol);
    const book_t *b = &e->books[symbol];
    int64_t lots;
    /* lots x max_price <= RISK_EDGE and |position x max_price| < RISK_EDGE, by the book's edges: lots in
     * [0, risk_lots_edge] and position in [-risk_position_edge, risk_position_edge], each one unsigned compare */
    if (__builtin_add_overflow(cs->open_qty[side_index(side)], add_qty, &lots) || (uint64_t)lots > b->risk_lots_edge ||
        (uint64_t)cs->position + b->risk_position_edge > 2 * b->risk_position_edge || !below_risk_edge(cs->cash))
        return risk_position_check_exact(e, client, symbol, side, add_qty);
    int64_t limit = e->clients[client].limits.max_position;
    return limit > 0 && cs->position * side_sign(side) + lots > limit ? PT_REJ_RISK_MAX_POSITION : 0;
}

/* match.c */
typedef struct taker {
    uint64_t id;
    uint64_t cloid;
    int64_t limit;         /* meaningful when has_limit */
    int64_t open_qty;
    pt_idx_t resting;      /* the order being modified, PT_NIL for a new order */
    uint16_t client;
    uint16_t symbol;
    uint8_t side;
    uint8_t stp;
    bool has_limit;
} taker_t;

/* Why the walk ended; either way the taker's open_qty is what is left (0 after an STP stop). */
enum match_stop {
    MATCH_DONE = 0,   /* filled, STP-stopped, or no more liquidity within the limit */
    MATCH_BANDED = 1, /* the market protection band stopped it with liquidity left */
};
int match_taker(pt_engine_t *e, book_t *b, taker_t *t, uint64_t ts);
bool match_fok_fillable(const pt_engine_t *e, const book_t *b, const taker_t *t);

/* ---- events ----------------------------------------------------------------------------------------------
 * An event's eight words are composed in registers and stored whole, never a field (or a zeroed slot and then
 * its fields): whoever reads the events next (the journal's copy, a checksum) loads them in wide words while
 * the stores may still be in flight, and a load is forwarded only from one store that covers it. Built with
 * AVX (-march=native, as the benchmarks are) that is two 32-byte stores; a portable -O2 build (the Python
 * extension) stores 8- and 16-byte words, which paid about as much (docs/BENCHMARKS.md, "the event
 * writer"). The words follow pt_wire.h's byte offsets, little-endian. The halves are 32-byte aligned because
 * the event buffer comes from mem_alloc (page- or 64-byte-aligned). */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the event writer composes pt_event_t words little-endian"
#endif
/* may_alias: the halves are stored into pt_event_t memory. */
typedef uint64_t event_half_t __attribute__((vector_size(32), aligned(32), may_alias));
_Static_assert(sizeof(event_half_t) * 2 == sizeof(pt_event_t), "an event is two halves");

/* Word 0: type, side, symbol_id, client_id, and the 16-bit field that depends on the type (reason...). */
static inline uint64_t event_head(uint8_t type, uint8_t side, uint16_t symbol, uint16_t client, uint16_t aux)
{
    return (uint64_t)type | (uint64_t)side << 8 | (uint64_t)symbol << 16 | (uint64_t)client << 32 |
           (uint64_t)aux << 48;
}

/* PT_EVF_LAST in word 0 (the flags byte, offset 7): a command whose last event for its client is known when it is
 * written sets it there, in the same store, instead of flagging it afterwards (engine.c, mark_last_event). */
#define EVENT_HEAD_LAST ((uint64_t)PT_EVF_LAST << 56)

/* Writes one event at slot: words 0..7 as pt_wire.h lays them out (head; seq; ts; order_id;
 * cloid | trade_id | order_count; price; qty; leaves | maker_order_id). */
static inline void write_event(pt_event_t *slot, uint64_t head, uint64_t seq, uint64_t ts, uint64_t order_id,
                               uint64_t word4, int64_t price, int64_t qty, int64_t word7)
{
    event_half_t lo = {head, seq, ts, order_id};
    event_half_t hi = {word4, (uint64_t)price, (uint64_t)qty, (uint64_t)word7};
    event_half_t *ev = (event_half_t *)(void *)slot;
    ev[0] = lo;
    ev[1] = hi;
}

/* Reserves n events at once (one update of the count and the sequence for all of them): returns the first
 * slot; *seq is the sequence number before them, so slot i gets *seq + 1 + i. */
static inline pt_event_t *reserve_events(pt_engine_t *e, size_t n, uint64_t *seq)
{
    pt_event_t *first = &e->events[e->nevents];
    *seq = e->seq;
    e->nevents += n;
    e->seq += n;
    return first;
}

/* Appends one event with the next sequence number. */
static inline void emit(pt_engine_t *e, uint64_t head, uint64_t ts, uint64_t order_id, uint64_t word4,
                        int64_t price, int64_t qty, int64_t word7)
{
    write_event(&e->events[e->nevents++], head, ++e->seq, ts, order_id, word4, price, qty, word7);
}

#endif
