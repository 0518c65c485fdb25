/*
 * engine_mix.h - the engine configuration of the benchmark mix and its event
 * sink, shared by engine_bench.c (which generates and times the mix) and
 * engine_ab.c (which times two builds of the engine on it). Header-only,
 * static inline. engine_bench.c's header describes the mix.
 */
#ifndef ENGINE_MIX_H
#define ENGINE_MIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pt_engine.h"

#define MID0_TICKS 10000

/* Generous but enabled limits (nothing in the mix comes near them). */
#define LIM_MAX_ORDER_QTY 1000000
#define LIM_MAX_OPEN_ORDERS 1000000
#define LIM_MAX_POSITION 1000000000000ll
#define LIM_RATE_PER_S 10000000      /* per client; the mix sends ~0.8 M/s each */
#define LIM_RATE_BURST 10000000
#define LIM_MAX_LOSS 1000000000000000ll
#define SYM_BAND_TICKS 1000
#define SYM_MAX_PRICE_TICKS 10000000
#define SYM_MAX_ORDER_LOTS 1000000

/* The defaults of c_engine.EngineConfig, so the Python tiers run the same engine shape. */
static inline pt_engine_config_t mix_engine_config(void) {
    return (pt_engine_config_t){.max_orders = 1u << 20, .max_levels_per_side = 1u << 14, .max_symbols = 64,
                                .max_clients = 256, .event_capacity = 0};
}

/* The one symbol; no_risk: no price band (engine_bench --no-risk). */
static inline pt_symbol_config_t mix_symbol_config(bool no_risk) {
    return (pt_symbol_config_t){
        .min_price_ticks = 1, .max_price_ticks = SYM_MAX_PRICE_TICKS, .max_order_lots = SYM_MAX_ORDER_LOTS,
        .band_ticks = no_risk ? 0 : SYM_BAND_TICKS, .band_bps = 0, .reference_price = MID0_TICKS,
        .market_band_ticks = 0, .pnl_unit = 1,
    };
}

/* Every client's limits (risk on). */
static inline pt_client_limits_t mix_client_limits(void) {
    return (pt_client_limits_t){
        .max_order_qty = LIM_MAX_ORDER_QTY, .max_open_orders = LIM_MAX_OPEN_ORDERS,
        .max_position = LIM_MAX_POSITION, .rate_per_s = LIM_RATE_PER_S, .rate_burst = LIM_RATE_BURST,
        .max_loss = LIM_MAX_LOSS,
    };
}

/* The checksum sink: adds all 8 words of every event into acc (two 4-lane adds per event), so every field
 * of every event is read; may_alias: the event's bytes read as words. */
static inline void mix_sink_fold(uint64_t acc[8], const pt_event_t *ev, size_t n) {
    typedef uint64_t v4u64 __attribute__((vector_size(32), aligned(8), may_alias));
    v4u64 a0, a1;
    memcpy(&a0, &acc[0], sizeof a0);
    memcpy(&a1, &acc[4], sizeof a1);
    for (size_t i = 0; i < n; i++) {
        const v4u64 *w = (const v4u64 *)(const void *)&ev[i];
        a0 += w[0];
        a1 += w[1];
    }
    memcpy(&acc[0], &a0, sizeof a0);
    memcpy(&acc[4], &a1, sizeof a1);
}

static inline uint64_t mix_sink_checksum(const uint64_t acc[8]) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int k = 0; k < 8; k++) h = (h ^ acc[k]) * 0x100000001b3ull;
    return h;
}

#endif
