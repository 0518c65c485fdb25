/*
 * pt_engine.h - the matching engine's C API: no Python in it, so C programs,
 * benchmarks and the engine process use it directly.
 *
 * Every function returns 0 (PT_OK) or a negative enum pt_status; results go to
 * out-pointers. The engine owns no global state: everything lives in the
 * pt_engine_t the caller created, and nothing on the order path allocates.
 *
 * Events: each command appends its events to the engine's event buffer;
 * read them with pt_engine_events() and release them with
 * pt_engine_clear_events(). A command is only started when the buffer has
 * room for the most events it could produce (4 per resting order + 16), so
 * the buffer can never overflow part-way through a command.
 */
#ifndef PT_ENGINE_H
#define PT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "pt_wire.h"

enum pt_status {
    PT_OK = 0,
    PT_E_NOMEM = -1,         /* allocation failed at create time */
    PT_E_INVALID = -2,       /* a configuration value is out of its domain */
    PT_E_FULL = -3,          /* try again: drain the event buffer first */
    PT_E_RANGE = -4,         /* symbol or client id out of range */
    PT_E_CORRUPT = -5,       /* pt_engine_check found a broken invariant */
};

typedef struct pt_engine pt_engine_t;

/* Capacity limits of pt_engine_config_t (pt_engine_create refuses more): order slots and levels are named by
 * 32- and 24-bit indexes inside the engine. */
#define PT_MAX_ORDERS 2147483646          /* 2^31 - 2 */
#define PT_MAX_LEVELS_PER_SIDE 8388608    /* 2^23 */
/* The most pt_symbol_config_t.pnl_unit may be (add_symbol refuses more): it keeps PnL exact in 128 bits. */
#define PT_MAX_PNL_UNIT 4294967296        /* 2^32 */

typedef struct pt_engine_config {
    uint32_t max_orders;          /* resting orders across all symbols (the order pool) */
    uint32_t max_levels_per_side; /* price levels per symbol and side, at most 2^23 */
    uint16_t max_symbols;
    uint16_t max_clients;         /* client ids are 0 .. max_clients-1; each reserves a bit per order slot:
                                     max_orders / 8 bytes of address space (and one cache line more), backed
                                     in 4 KiB pages as far as that client's orders reach into the pool */
    uint32_t event_capacity;      /* events held between clears; 0 = 4*max_orders+1024 */
} pt_engine_config_t;

/* add_symbol also requires max_price_ticks x max_order_lots <= 2^62 (a trade's notional) and max_order_lots x
 * max_orders <= INT64_MAX (a price level's qty, a client's open qty on a side). */
typedef struct pt_symbol_config {
    int64_t min_price_ticks;
    int64_t max_price_ticks;
    int64_t max_order_lots;
    int64_t band_ticks;        /* limit price band around the reference, 0 = off */
    int64_t band_bps;          /* the same in basis points of the reference, used when band_ticks is 0 */
    int64_t reference_price;   /* ticks; the band's reference before the first trade, 0 = none */
    int64_t market_band_ticks; /* a market order trades at most this far through the touch it found, 0 = off */
    int64_t pnl_unit;          /* money units per tick per lot, for the loss kill switch; 1 .. PT_MAX_PNL_UNIT */
} pt_symbol_config_t;

/* 0 switches a limit off. */
typedef struct pt_client_limits {
    int64_t max_order_qty;   /* lots, per order */
    int64_t max_open_orders; /* resting orders, all symbols */
    int64_t max_position;    /* lots per symbol, counting open orders on the same side */
    int64_t rate_per_s;      /* new orders and modifies per second (token bucket on ts_ns) */
    int64_t rate_burst;      /* bucket size; 0 = rate_per_s */
    int64_t max_loss;        /* kill switch when realised+unrealised PnL < -max_loss (money units) */
} pt_client_limits_t;

typedef struct pt_level {
    int64_t price;
    int64_t qty;         /* aggregate open qty */
    int64_t order_count;
} pt_level_t;

typedef struct pt_l3_order {
    uint64_t order_id;
    uint64_t cloid;
    int64_t price;
    int64_t open_qty;
    uint16_t client_id;
    uint8_t side;
    uint8_t stp;
    uint8_t post_only;
    uint8_t reserved[3];
} pt_l3_order_t;

typedef struct pt_position {
    int64_t position;      /* lots, + long */
    int64_t cash;          /* ticks*lots: - for buys, + for sells */
    int64_t open_buy_qty;  /* resting buy lots */
    int64_t open_sell_qty;
    int64_t open_orders;   /* the client's resting orders, all symbols */
    int64_t killed;        /* 1 while the kill switch holds */
    int64_t pnl;           /* realised + unrealised at the last trade prices, money units, all symbols */
} pt_position_t;

typedef struct pt_engine_stats {
    uint64_t commands;
    uint64_t events;
    uint64_t next_order_id;
    uint64_t next_trade_id;
    uint64_t live_orders;
    uint64_t pending_events;
    uint64_t event_capacity;
} pt_engine_stats_t;

int pt_engine_create(const pt_engine_config_t *cfg, pt_engine_t **out);
void pt_engine_destroy(pt_engine_t *e);
int pt_engine_add_symbol(pt_engine_t *e, const pt_symbol_config_t *cfg, uint16_t *symbol_id);
int pt_engine_set_client_limits(pt_engine_t *e, uint16_t client_id, const pt_client_limits_t *limits);
/* The client's limits now (as set by pt_engine_set_client_limits or SET_LIMIT commands). */
int pt_engine_client_limits(const pt_engine_t *e, uint16_t client_id, pt_client_limits_t *out);

/* Runs one command; its events are appended to the buffer. PT_E_FULL: nothing was done. */
int pt_engine_submit(pt_engine_t *e, const pt_command_t *cmd);
/* Runs commands in order until all are done or the buffer could overflow; *done says how many ran. */
int pt_engine_submit_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t *done);
/* A hint for a caller that holds a run of commands cmds[0..n) and is about to submit cmds[i] (an engine loop
 * draining a ring; pt_engine_submit_batch does it itself): starts the cache misses that later commands of the
 * run will take (a cancel's order), so that they overlap the work in between. It changes no state and no
 * result; cmds need not be valid. */
void pt_engine_run_ahead(const pt_engine_t *e, const pt_command_t *cmds, size_t i, size_t n);

pt_event_t *pt_engine_events(pt_engine_t *e, size_t *count);
void pt_engine_clear_events(pt_engine_t *e);

/* Snapshots. side is PT_SIDE_BUY or PT_SIDE_SELL; *count gets how many were written. */
int pt_engine_l1(const pt_engine_t *e, uint16_t symbol_id, pt_level_t *bid, pt_level_t *ask);
int pt_engine_l2(const pt_engine_t *e, uint16_t symbol_id, uint8_t side, pt_level_t *out, size_t depth, size_t *count);
int pt_engine_l3(const pt_engine_t *e, uint16_t symbol_id, uint8_t side, pt_l3_order_t *out, size_t max, size_t *count);
int pt_engine_order_count(const pt_engine_t *e, uint16_t symbol_id, uint8_t side, size_t *count);
int pt_engine_position(const pt_engine_t *e, uint16_t client_id, uint16_t symbol_id, pt_position_t *out);
int pt_engine_last_price(const pt_engine_t *e, uint16_t symbol_id, int64_t *price);
void pt_engine_stats(const pt_engine_t *e, pt_engine_stats_t *out);

/* 64-bit hash of books, orders and risk state, independent of memory layout. */
uint64_t pt_engine_state_hash(const pt_engine_t *e);
/* Walks every invariant (book.c, risk.c); PT_E_CORRUPT if one is broken. */
int pt_engine_check(const pt_engine_t *e);

#endif
