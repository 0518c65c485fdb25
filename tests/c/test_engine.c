/*
 * test_engine.c - the engine's own C tests, run under AddressSanitizer and
 * UBSan by `make ctest` (part of `make test`).
 *
 * Scenario tests pin single rules through the plain C API; the stress test
 * feeds a long seeded random stream (every op, bad values, several symbols
 * and clients, risk limits) and walks pt_engine_check after every command,
 * then replays the same stream into a second engine and requires the same
 * events byte for byte and the same state hash.
 */
#include "harness.h"

#include <string.h>

#include "pt_engine.h"
#include "pt_crc32c.h"
#include "pt_snapshot.h"

static int g_failed, g_passed;

static pt_engine_t *make_engine_for(uint32_t max_orders, uint32_t max_levels, uint32_t max_clients)
{
    pt_engine_config_t cfg = {.max_orders = max_orders, .max_levels_per_side = max_levels,
                              .max_symbols = 4, .max_clients = max_clients};
    pt_engine_t *e;
    if (pt_engine_create(&cfg, &e) != PT_OK)
        abort();
    pt_symbol_config_t sym = {.min_price_ticks = 1, .max_price_ticks = 1000000, .max_order_lots = 100000,
                              .pnl_unit = 1};
    uint16_t id;
    if (pt_engine_add_symbol(e, &sym, &id) != PT_OK || id != 0)
        abort();
    return e;
}

static pt_engine_t *make_engine(uint32_t max_orders, uint32_t max_levels)
{
    return make_engine_for(max_orders, max_levels, 16);
}

static uint64_t g_ts;

static pt_command_t limit_order(uint16_t client, uint8_t side, int64_t price, int64_t qty, uint8_t tif, uint8_t stp)
{
    return (pt_command_t){.op = PT_OP_NEW, .side = side, .symbol_id = 0, .client_id = client,
                          .order_type = PT_TYPE_LIMIT, .tif = tif, .stp = stp, .flags = PT_FLAG_HAS_PRICE,
                          .ts_ns = ++g_ts, .price = price, .qty = qty};
}

/* Submits and returns the events of this command only (the buffer is cleared first). */
static pt_event_t *run(pt_engine_t *e, pt_command_t c, size_t *n)
{
    pt_engine_clear_events(e);
    if (pt_engine_submit(e, &c) != PT_OK || pt_engine_check(e) != PT_OK)
        abort();
    return pt_engine_events(e, n);
}

static size_t count_type(const pt_event_t *ev, size_t n, uint8_t type)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ev[i].type == type;
    return k;
}

static int test_same_price_makers_fill_in_arrival_order(void)
{
    pt_engine_t *e = make_engine(1024, 64);
    size_t n;
    run(e, limit_order(1, PT_SIDE_SELL, 100, 2, PT_TIF_GTC, 0), &n);
    run(e, limit_order(2, PT_SIDE_SELL, 100, 2, PT_TIF_GTC, 0), &n);
    pt_event_t *ev = run(e, limit_order(3, PT_SIDE_BUY, 100, 3, PT_TIF_GTC, 0), &n);
    EXPECT(count_type(ev, n, PT_EV_TRADE) == 2);
    EXPECT(ev[3].type == PT_EV_TRADE && ev[3].maker_order_id == 1 && ev[3].qty == 2);
    EXPECT(ev[6].type == PT_EV_TRADE && ev[6].maker_order_id == 2 && ev[6].qty == 1);
    pt_l3_order_t l3[4];
    EXPECT(pt_engine_l3(e, 0, PT_SIDE_SELL, l3, 4, &n) == PT_OK && n == 1 && l3[0].order_id == 2 && l3[0].open_qty == 1);
    pt_engine_destroy(e);
    return 0;
}

static pt_command_t with_cloid(pt_command_t c, uint64_t cloid)
{
    c.cloid = cloid;
    return c;
}

/* A client counting its cloids up is checked against its highest resting cloid only; the first cloid not
 * above it indexes the client's resting cloids, and going flat starts it over (index.c). Duplicates must be
 * rejected the same in every phase. */
static int test_duplicate_cloids_are_rejected_before_and_after_the_client_is_indexed(void)
{
    pt_engine_t *e = make_engine(64, 64);
    size_t n;
    for (uint64_t cloid = 1; cloid <= 3; cloid++) /* counting up: never looked up */
        EXPECT(run(e, with_cloid(limit_order(1, PT_SIDE_BUY, 90 + (int64_t)cloid, 1, PT_TIF_GTC, 0), cloid), &n)[0]
                   .type == PT_EV_ACK);
    pt_event_t *ev = run(e, with_cloid(limit_order(1, PT_SIDE_BUY, 80, 1, PT_TIF_GTC, 0), 2), &n);
    EXPECT(ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_DUPLICATE_CLIENT_ORDER_ID); /* now indexed */
    ev = run(e, with_cloid(limit_order(2, PT_SIDE_BUY, 80, 1, PT_TIF_GTC, 0), 2), &n);
    EXPECT(ev[0].type == PT_EV_ACK); /* another client's cloids are its own */
    ev = run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 1, .order_id = 2, .ts_ns = ++g_ts}, &n);
    EXPECT(ev[0].type == PT_EV_CANCELED);
    ev = run(e, with_cloid(limit_order(1, PT_SIDE_BUY, 80, 1, PT_TIF_GTC, 0), 2), &n);
    EXPECT(ev[0].type == PT_EV_ACK); /* free again once its order left */
    ev = run(e, with_cloid(limit_order(1, PT_SIDE_SELL, 200, 1, PT_TIF_IOC, 0), 3), &n);
    EXPECT(ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_DUPLICATE_CLIENT_ORDER_ID); /* IOCs too */
    ev = run(e, (pt_command_t){.op = PT_OP_MASS_CANCEL, .client_id = 1, .ts_ns = ++g_ts}, &n);
    EXPECT(n >= 4 && ev[3].type == PT_EV_ACK && ev[3].qty == 3); /* its orders with cloids 1, 3 and 2 */
    ev = run(e, with_cloid(limit_order(1, PT_SIDE_BUY, 80, 1, PT_TIF_GTC, 0), 1), &n);
    EXPECT(ev[0].type == PT_EV_ACK); /* flat: starts over unindexed, and 1 rests nowhere */
    ev = run(e, with_cloid(limit_order(1, PT_SIDE_BUY, 81, 1, PT_TIF_GTC, 0), 1), &n);
    EXPECT(ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_DUPLICATE_CLIENT_ORDER_ID);
    pt_engine_destroy(e);
    return 0;
}

static int test_rejected_order_changes_nothing_and_takes_no_id(void)
{
    pt_engine_t *e = make_engine(1024, 64);
    size_t n;
    run(e, limit_order(1, PT_SIDE_SELL, 100, 2, PT_TIF_GTC, 0), &n);
    uint64_t before = pt_engine_state_hash(e);
    pt_event_t *ev = run(e, limit_order(1, PT_SIDE_BUY, 100, 0, PT_TIF_GTC, 0), &n);
    EXPECT(n == 1 && ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_INVALID_QTY);
    EXPECT(pt_engine_state_hash(e) == before);
    ev = run(e, limit_order(2, PT_SIDE_BUY, 99, 1, PT_TIF_GTC, 0), &n);
    EXPECT(ev[0].type == PT_EV_ACK && ev[0].order_id == 2);
    pt_engine_destroy(e);
    return 0;
}

static int test_sweep_of_five_thousand_makers_trades_each_once(void)
{
    pt_engine_t *e = make_engine(8192, 64);
    size_t n;
    for (int i = 0; i < 5000; i++)
        run(e, limit_order((uint16_t)(1 + i % 8), PT_SIDE_SELL, 100 + i % 7, 1, PT_TIF_GTC, 0), &n);
    pt_event_t *ev = run(e, limit_order(9, PT_SIDE_BUY, 106, 5000, PT_TIF_IOC, 0), &n);
    EXPECT(count_type(ev, n, PT_EV_TRADE) == 5000);
    EXPECT(count_type(ev, n, PT_EV_BOOK_DELTA) == 7);
    int64_t last = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == PT_EV_TRADE) {
            EXPECT(ev[i].price >= last);
            last = ev[i].price;
        }
    pt_level_t bid, ask;
    EXPECT(pt_engine_l1(e, 0, &bid, &ask) == PT_OK && ask.order_count == 0 && bid.order_count == 0);
    pt_engine_destroy(e);
    return 0;
}

/* touch + market_band_ticks past int64 (UBSan flags the overflow) is no bound at all: the market buy takes every
 * level, as the reference does with unbounded integers. */
static int test_protection_band_past_int64_is_no_bound(void)
{
    pt_engine_config_t cfg = {.max_orders = 64, .max_levels_per_side = 16, .max_symbols = 1, .max_clients = 4};
    pt_engine_t *e;
    pt_symbol_config_t sym = {.min_price_ticks = 1, .max_price_ticks = 1000000, .max_order_lots = 100,
                              .market_band_ticks = INT64_MAX, .pnl_unit = 1};
    uint16_t id;
    if (pt_engine_create(&cfg, &e) != PT_OK || pt_engine_add_symbol(e, &sym, &id) != PT_OK)
        abort();
    size_t n;
    for (int64_t price = 100; price <= 102; price++)
        run(e, limit_order(1, PT_SIDE_SELL, price, 1, PT_TIF_GTC, 0), &n);
    pt_command_t buy = {.op = PT_OP_NEW, .side = PT_SIDE_BUY, .client_id = 2, .order_type = PT_TYPE_MARKET,
                        .tif = PT_TIF_IOC, .ts_ns = ++g_ts, .qty = 5};
    pt_event_t *ev = run(e, buy, &n);
    EXPECT(count_type(ev, n, PT_EV_TRADE) == 3 && ev[n - 4].type == PT_EV_CANCELED &&
           ev[n - 4].reason == PT_CXL_NO_LIQUIDITY);
    pt_engine_destroy(e);
    return 0;
}

static int test_full_order_pool_rejects_cleanly(void)
{
    pt_engine_t *e = make_engine(2, 64);
    size_t n;
    run(e, limit_order(1, PT_SIDE_SELL, 100, 1, PT_TIF_GTC, 0), &n);
    run(e, limit_order(1, PT_SIDE_SELL, 101, 1, PT_TIF_GTC, 0), &n);
    pt_event_t *ev = run(e, limit_order(1, PT_SIDE_SELL, 102, 1, PT_TIF_GTC, 0), &n);
    EXPECT(n == 1 && ev[0].reason == PT_REJ_ORDER_POOL_EXHAUSTED);
    ev = run(e, limit_order(2, PT_SIDE_BUY, 100, 1, PT_TIF_IOC, 0), &n);
    EXPECT(ev[0].type == PT_EV_ACK && count_type(ev, n, PT_EV_TRADE) == 1);
    ev = run(e, limit_order(1, PT_SIDE_SELL, 102, 1, PT_TIF_GTC, 0), &n);
    EXPECT(ev[0].type == PT_EV_ACK);
    pt_engine_destroy(e);
    return 0;
}

static int test_full_side_rejects_a_new_level_but_joins_an_existing_one(void)
{
    pt_engine_t *e = make_engine(64, 2);
    size_t n;
    run(e, limit_order(1, PT_SIDE_BUY, 100, 1, PT_TIF_GTC, 0), &n);
    run(e, limit_order(1, PT_SIDE_BUY, 99, 1, PT_TIF_GTC, 0), &n);
    pt_event_t *ev = run(e, limit_order(1, PT_SIDE_BUY, 98, 1, PT_TIF_GTC, 0), &n);
    EXPECT(n == 1 && ev[0].reason == PT_REJ_BOOK_LEVELS_EXHAUSTED);
    ev = run(e, limit_order(1, PT_SIDE_BUY, 99, 1, PT_TIF_GTC, 0), &n);
    EXPECT(ev[0].type == PT_EV_ACK);
    pt_engine_destroy(e);
    return 0;
}

static int test_event_buffer_never_overflows_mid_command(void)
{
    pt_engine_config_t cfg = {.max_orders = 100, .max_levels_per_side = 64, .max_symbols = 1, .max_clients = 4};
    pt_engine_t *e;
    EXPECT(pt_engine_create(&cfg, &e) == PT_OK);
    pt_symbol_config_t sym = {.min_price_ticks = 1, .max_price_ticks = 1000, .max_order_lots = 1000, .pnl_unit = 1};
    uint16_t id;
    EXPECT(pt_engine_add_symbol(e, &sym, &id) == PT_OK);
    size_t done = 0, total = 0;
    pt_command_t cmds[400];
    for (int i = 0; i < 400; i++)
        cmds[i] = limit_order((uint16_t)(i % 2), i % 2 ? PT_SIDE_BUY : PT_SIDE_SELL, 100, 1, PT_TIF_GTC, 0);
    while (total < 400) {
        pt_engine_submit_batch(e, cmds + total, 400 - total, &done);
        total += done;
        size_t n;
        pt_engine_events(e, &n);
        EXPECT(n <= 4 * 100 + 1024);
        pt_engine_clear_events(e);
    }
    EXPECT(pt_engine_check(e) == PT_OK);
    pt_engine_destroy(e);
    return 0;
}

/* How many CANCELED events ev[0..n) holds. *ordered stays true only if each is client's, has reason and comes
 * after the one before in order id; *last is the order id of the last one. */
static size_t count_canceled_in_id_order(const pt_event_t *ev, size_t n, uint16_t client, uint16_t reason,
                                         int *ordered, uint64_t *last)
{
    size_t count = 0;
    *ordered = 1;
    *last = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type != PT_EV_CANCELED)
            continue;
        if (ev[i].client_id != client || ev[i].reason != reason || ev[i].order_id <= *last)
            *ordered = 0;
        *last = ev[i].order_id;
        count++;
    }
    return count;
}

/* A client's orders are a bitmap over order slots, and slots are reused last-freed-first, so slot order is not
 * id order: mass cancel must still cancel in ascending id, and only the client's (and symbol's) orders. */
static int test_mass_cancel_goes_in_id_order_whatever_the_slots(void)
{
    pt_engine_t *e = make_engine(1024, 64);
    size_t n;
    for (int i = 0; i < 40; i++) /* ids 1..40: clients 1 and 2 alternating */
        run(e, limit_order((uint16_t)(1 + i % 2), PT_SIDE_BUY, 50 + i % 7, 1, PT_TIF_GTC, 0), &n);
    for (uint64_t id = 1; id <= 40; id += 3) /* free slots all over the pool */
        run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = (uint16_t)(1 + (id - 1) % 2), .order_id = id,
                              .ts_ns = ++g_ts}, &n);
    for (int i = 0; i < 10; i++) /* ids 41..50 take the freed slots, latest freed first */
        run(e, limit_order(1, PT_SIDE_BUY, 60 + i % 3, 1, PT_TIF_GTC, 0), &n);
    pt_event_t *ev = run(e, (pt_command_t){.op = PT_OP_MASS_CANCEL, .client_id = 1, .ts_ns = ++g_ts}, &n);
    int ordered;
    uint64_t last;
    size_t cancels = count_canceled_in_id_order(ev, n, 1, PT_CXL_MASS_CANCEL, &ordered, &last);
    EXPECT(ordered);
    /* client 1 had the odd ids 1..39 (20) less the cancelled ones among them (1, 7, 13, 19, 25, 31, 37), plus 10 */
    EXPECT(cancels == 20 - 7 + 10 && last == 50);
    pt_engine_stats_t st;
    pt_engine_stats(e, &st);
    EXPECT(st.live_orders == 20 - 7); /* client 2's: the even ids less 4, 10, 16, 22, 28, 34, 40 */
    pt_engine_destroy(e);
    return 0;
}

/* An engine whose client 1 has a loss limit of 10 (the kill-switch tests). */
static pt_engine_t *engine_with_loss_limit_on_client_1(void)
{
    pt_engine_t *e = make_engine(1024, 64);
    pt_client_limits_t lim = {.max_loss = 10};
    if (pt_engine_set_client_limits(e, 1, &lim) != PT_OK)
        abort();
    return e;
}

/* A trade of qty at price: seller rests a sell, then buyer's buy takes it. Returns the buy's events. */
static pt_event_t *trade_between(pt_engine_t *e, uint16_t seller, uint16_t buyer, int64_t price, int64_t qty,
                                 size_t *n)
{
    run(e, limit_order(seller, PT_SIDE_SELL, price, qty, PT_TIF_GTC, 0), n);
    return run(e, limit_order(buyer, PT_SIDE_BUY, price, qty, PT_TIF_GTC, 0), n);
}

/* Kill-switch events of client in ev. */
static size_t count_kill_switch_cancels(const pt_event_t *ev, size_t n, uint16_t client)
{
    size_t kills = 0;
    for (size_t i = 0; i < n; i++)
        kills += ev[i].type == PT_EV_CANCELED && ev[i].reason == PT_CXL_KILL_SWITCH && ev[i].client_id == client;
    return kills;
}

/* Exactly one event of each command carries PT_EVF_LAST: the last one addressed to the command's client, however
 * the maker's fill, the trade and the book deltas fall around it; a TRADE's byte 7 is its maker's client id. */
static int test_the_last_event_of_a_command_for_its_client_is_flagged(void)
{
    pt_engine_t *e = make_engine_for(1024, 64, 300); /* a maker id above 255: TRADE's maker_client spans byte 7 */
    size_t n;
    pt_event_t *ev = run(e, limit_order(258, PT_SIDE_SELL, 100, 2, PT_TIF_GTC, 0), &n); /* ACK, BOOK_DELTA */
    EXPECT(n == 2 && ev[0].type == PT_EV_ACK && ev[0].flags == PT_EVF_LAST && ev[1].flags == 0);
    ev = run(e, limit_order(3, PT_SIDE_BUY, 100, 3, PT_TIF_GTC, 0), &n); /* takes 2, rests 1 */
    int flagged = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type == PT_EV_TRADE) {
            EXPECT(ev[i].maker_client == 258); /* both bytes: not a flag */
            continue;
        }
        flagged += (ev[i].flags & PT_EVF_LAST) != 0;
        if (ev[i].flags & PT_EVF_LAST)
            EXPECT(ev[i].type == PT_EV_FILL && ev[i].client_id == 3 && ev[i].liquidity == PT_LIQ_TAKER &&
                   ev[i].leaves == 1);
    }
    EXPECT(flagged == 1);
    ev = run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 3, .order_id = 99, .ts_ns = ++g_ts}, &n);
    EXPECT(n == 1 && ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_UNKNOWN_ORDER && ev[0].flags == PT_EVF_LAST);
    pt_engine_destroy(e);
    return 0;
}

/* The kill switch lists the client's orders like mass cancel: ascending id, whatever slots they took. */
static int test_kill_switch_cancels_in_id_order_across_reused_slots(void)
{
    pt_engine_t *e = engine_with_loss_limit_on_client_1();
    size_t n;
    trade_between(e, 2, 1, 120, 10, &n);                                                  /* ids 1, 2: long 10 at 120 */
    for (int i = 0; i < 20; i++)                                                           /* ids 3..22 */
        run(e, limit_order(1, PT_SIDE_BUY, 50 + i % 5, 1, PT_TIF_GTC, 0), &n);
    for (uint64_t id = 3; id <= 22; id += 4)                                               /* 3, 7, 11, 15, 19 */
        run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 1, .order_id = id, .ts_ns = ++g_ts}, &n);
    for (int i = 0; i < 5; i++)                                                            /* ids 23..27, reused slots */
        run(e, limit_order(1, PT_SIDE_BUY, 60, 1, PT_TIF_GTC, 0), &n);
    run(e, limit_order(3, PT_SIDE_BUY, 118, 1, PT_TIF_GTC, 0), &n);
    pt_event_t *ev = run(e, limit_order(4, PT_SIDE_SELL, 118, 1, PT_TIF_GTC, 0), &n);   /* marks at 118: -20 */
    int ordered;
    uint64_t last;
    size_t kills = count_canceled_in_id_order(ev, n, 1, PT_CXL_KILL_SWITCH, &ordered, &last);
    EXPECT(ordered && kills == 20 - 5 + 5 && last == 27);
    pt_engine_destroy(e);
    return 0;
}

/* A client that counts its cloids up is not indexed; once it sends one at or below its highest resting cloid
 * it is, and every cloid still resting must then be found, however its orders left and its slots were reused. */
static int test_cloid_index_built_late_finds_every_resting_cloid(void)
{
    pt_engine_t *e = make_engine(1024, 64);
    size_t n;
    for (uint64_t k = 1; k <= 12; k++) /* ids 1..12, cloids 1..12, 1 lot each at 100 */
        run(e, with_cloid(limit_order(1, PT_SIDE_SELL, 100, 1, PT_TIF_GTC, 0), k), &n);
    run(e, limit_order(2, PT_SIDE_BUY, 100, 4, PT_TIF_IOC, 0), &n); /* fills cloids 1..4 */
    run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 1, .order_id = 6, .ts_ns = ++g_ts}, &n);
    for (uint64_t k = 13; k <= 16; k++) /* the freed slots again */
        run(e, with_cloid(limit_order(1, PT_SIDE_SELL, 101, 1, PT_TIF_GTC, 0), k), &n);
    for (uint64_t k = 1; k <= 16; k++) {
        pt_event_t *ev = run(e, with_cloid(limit_order(1, PT_SIDE_SELL, 102, 1, PT_TIF_GTC, 0), k), &n);
        int resting = k >= 5 && k != 6;
        EXPECT(resting ? ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_DUPLICATE_CLIENT_ORDER_ID
                       : ev[0].type == PT_EV_ACK);
    }
    pt_engine_destroy(e);
    return 0;
}

/* A REJECT echoes the command's side, symbol and client as sent, valid or not. */
static int test_reject_echoes_the_fields_as_sent(void)
{
    pt_engine_t *e = make_engine(1024, 64);
    size_t n;
    pt_command_t c = limit_order(1, PT_SIDE_BUY, 100, 1, PT_TIF_GTC, 0);
    c.side = 0xAB;
    c.symbol_id = 0xFFFE;
    pt_event_t *ev = run(e, c, &n);
    EXPECT(n == 1 && ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_UNKNOWN_SYMBOL);
    EXPECT(ev[0].side == 0xAB && ev[0].symbol_id == 0xFFFE && ev[0].client_id == 1);
    c.client_id = 0xFFFF;
    ev = run(e, c, &n);
    EXPECT(n == 1 && ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_UNKNOWN_CLIENT);
    EXPECT(ev[0].side == 0xAB && ev[0].symbol_id == 0xFFFE && ev[0].client_id == 0xFFFF);
    pt_engine_destroy(e);
    return 0;
}

/* Every client reserves a bit per order slot: 65,534 clients x 4 M slots is 32 GiB of address space, more than
 * this kind of machine commits, and must still be created (only the rows that clients use are ever backed). */
static int test_many_clients_times_many_slots_is_created(void)
{
    pt_engine_config_t cfg = {.max_orders = 1u << 22, .max_levels_per_side = 64, .max_symbols = 1,
                              .max_clients = 65534};
    pt_engine_t *e;
    EXPECT(pt_engine_create(&cfg, &e) == PT_OK);
    pt_symbol_config_t sym = {.min_price_ticks = 1, .max_price_ticks = 1000, .max_order_lots = 1000, .pnl_unit = 1};
    uint16_t id;
    EXPECT(pt_engine_add_symbol(e, &sym, &id) == PT_OK);
    size_t n;
    run(e, limit_order(65533, PT_SIDE_BUY, 10, 1, PT_TIF_GTC, 0), &n);
    run(e, limit_order(0, PT_SIDE_BUY, 11, 1, PT_TIF_GTC, 0), &n);
    pt_event_t *ev = run(e, (pt_command_t){.op = PT_OP_MASS_CANCEL, .client_id = 65533, .ts_ns = ++g_ts}, &n);
    EXPECT(n == 3 && ev[0].type == PT_EV_CANCELED && ev[0].order_id == 1);
    pt_engine_destroy(e);
    return 0;
}

/* pt_engine_run_ahead is a hint: any commands, any position, and nothing changes. */
static int test_run_ahead_changes_nothing(void)
{
    pt_engine_t *e = make_engine(1024, 64);
    size_t n;
    run(e, limit_order(1, PT_SIDE_BUY, 50, 1, PT_TIF_GTC, 0), &n);
    run(e, limit_order(2, PT_SIDE_SELL, 60, 3, PT_TIF_GTC, 0), &n);
    pt_engine_clear_events(e);
    uint64_t before = pt_engine_state_hash(e);
    pt_command_t cmds[16];
    memset(cmds, 0xA5, sizeof cmds); /* garbage: unknown ops, ids past every order */
    for (int k = 0; k < 16; k++) {
        cmds[k].op = k % 3 == 0 ? PT_OP_CANCEL : k % 3 == 1 ? PT_OP_MODIFY : cmds[k].op;
        cmds[k].order_id = k < 8 ? (uint64_t)k : UINT64_MAX - (uint64_t)k; /* 1 and 2 exist */
    }
    for (size_t i = 0; i < 20; i++)
        pt_engine_run_ahead(e, cmds, i, 16);
    pt_engine_events(e, &n);
    EXPECT(n == 0);
    EXPECT(pt_engine_state_hash(e) == before);
    EXPECT(pt_engine_check(e) == PT_OK);
    pt_engine_destroy(e);
    return 0;
}

static int test_kill_switch_cancels_and_blocks_until_reset(void)
{
    pt_engine_t *e = engine_with_loss_limit_on_client_1();
    size_t n;
    run(e, limit_order(1, PT_SIDE_BUY, 50, 1, PT_TIF_GTC, 0), &n);
    trade_between(e, 2, 1, 120, 10, &n);                        /* long 10 at 120 */
    pt_event_t *ev = trade_between(e, 4, 3, 118, 1, &n);        /* marks at 118: -20 */
    EXPECT(count_kill_switch_cancels(ev, n, 1) == 1);
    ev = run(e, limit_order(1, PT_SIDE_BUY, 60, 1, PT_TIF_GTC, 0), &n);
    EXPECT(ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_KILL_SWITCH);
    run(e, (pt_command_t){.op = PT_OP_KILL_RESET, .client_id = 1, .ts_ns = ++g_ts}, &n);
    ev = run(e, limit_order(1, PT_SIDE_BUY, 60, 1, PT_TIF_GTC, 0), &n);
    EXPECT(ev[0].type == PT_EV_ACK);
    pt_engine_destroy(e);
    return 0;
}

/* A trade that leaves the last price where it was skips the re-mark of every loss client (risk.c), but not the
 * kill of one that fell below its limit: through its own fills in that command, or before a KILL_RESET. */
static int test_kill_switch_fires_when_the_mark_does_not_move(void)
{
    pt_engine_t *e = engine_with_loss_limit_on_client_1();
    size_t n;
    trade_between(e, 3, 4, 100, 1, &n); /* last price 100 */
    run(e, limit_order(1, PT_SIDE_BUY, 50, 1, PT_TIF_GTC, 0), &n);
    run(e, limit_order(1, PT_SIDE_SELL, 95, 20, PT_TIF_GTC, 0), &n);
    run(e, limit_order(5, PT_SIDE_SELL, 100, 1, PT_TIF_GTC, 0), &n);
    /* sells 20 at 95 against a mark of 100 (-100), and the walk ends at 100: the mark does not move */
    pt_event_t *ev = run(e, limit_order(6, PT_SIDE_BUY, 100, 21, PT_TIF_IOC, 0), &n);
    EXPECT(count_type(ev, n, PT_EV_TRADE) == 2 && count_kill_switch_cancels(ev, n, 1) == 1);
    run(e, (pt_command_t){.op = PT_OP_KILL_RESET, .client_id = 1, .ts_ns = ++g_ts}, &n);
    ev = run(e, limit_order(1, PT_SIDE_BUY, 60, 1, PT_TIF_GTC, 0), &n);
    EXPECT(ev[0].type == PT_EV_ACK);
    /* still 100 below: the next trade kills it again, though it neither trades nor moves the mark */
    ev = trade_between(e, 7, 8, 100, 1, &n);
    EXPECT(count_type(ev, n, PT_EV_TRADE) == 1 && count_kill_switch_cancels(ev, n, 1) == 1);
    ev = run(e, limit_order(1, PT_SIDE_BUY, 60, 1, PT_TIF_GTC, 0), &n);
    EXPECT(ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_KILL_SWITCH);
    pt_engine_destroy(e);
    return 0;
}

/* New limits can leave a client below its loss limit at once: the next trade kills it, even one at the last price,
 * which skips the re-mark of every client (risk.c). */
static int test_kill_switch_fires_after_new_limits_put_a_client_below(void)
{
    pt_engine_t *e = make_engine(1024, 64);
    size_t n;
    trade_between(e, 2, 1, 120, 10, &n); /* long 10 at 120 */
    trade_between(e, 3, 4, 100, 1, &n);  /* last price 100: client 1 at -200 */
    run(e, limit_order(1, PT_SIDE_BUY, 50, 1, PT_TIF_GTC, 0), &n);
    pt_client_limits_t lim = {.max_loss = 10};
    EXPECT(pt_engine_set_client_limits(e, 1, &lim) == PT_OK);
    pt_event_t *ev = trade_between(e, 3, 4, 100, 1, &n); /* the mark stays at 100 */
    EXPECT(count_type(ev, n, PT_EV_TRADE) == 1 && count_kill_switch_cancels(ev, n, 1) == 1);
    pt_engine_destroy(e);
    return 0;
}

static int test_long_lived_orders_stay_findable_when_ids_lap_the_index_ring(void)
{
    /* 4 orders: a 16-slot id ring. Order 1 rests while 200 newer ids pass its slot, so ids 17, 33, ...
     * go to the overflow table; every order must stay cancellable by id all along. */
    pt_engine_t *e = make_engine(4, 64);
    size_t n;
    run(e, limit_order(1, PT_SIDE_BUY, 50, 1, PT_TIF_GTC, 0), &n);
    run(e, limit_order(1, PT_SIDE_BUY, 51, 1, PT_TIF_GTC, 0), &n);
    for (uint64_t id = 3; id < 200; id++) {
        pt_event_t *ev = run(e, limit_order(2, PT_SIDE_SELL, 100 + (int64_t)(id % 5), 1, PT_TIF_GTC, 0), &n);
        EXPECT(ev[0].type == PT_EV_ACK && ev[0].order_id == id);
        if (id % 3 == 0)
            continue; /* keep some alive across laps too */
        ev = run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 2, .order_id = id, .ts_ns = ++g_ts}, &n);
        EXPECT(ev[0].type == PT_EV_CANCELED && ev[0].order_id == id);
        if (id % 3 == 1) { /* and cancel the oldest survivor of client 2 now and then */
            pt_l3_order_t l3[8];
            EXPECT(pt_engine_l3(e, 0, PT_SIDE_SELL, l3, 8, &n) == PT_OK);
            if (n > 0) {
                ev = run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 2, .order_id = l3[0].order_id,
                                           .ts_ns = ++g_ts}, &n);
                EXPECT(ev[0].type == PT_EV_CANCELED);
            }
        }
    }
    pt_event_t *ev = run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 1, .order_id = 1, .ts_ns = ++g_ts}, &n);
    EXPECT(ev[0].type == PT_EV_CANCELED && ev[0].order_id == 1);
    ev = run(e, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 1, .order_id = 2, .ts_ns = ++g_ts}, &n);
    EXPECT(ev[0].type == PT_EV_CANCELED && ev[0].order_id == 2);
    pt_engine_destroy(e);
    return 0;
}

/* ---- random stress ------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_in(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

static pt_command_t random_command(uint64_t next_id_hint)
{
    pt_command_t c = {.ts_ns = ++g_ts, .client_id = (uint16_t)rnd_in(0, 6)};
    if (rnd() % 200 == 0)
        c.client_id = (uint16_t)rnd_in(16, 70000 % 65536);
    uint64_t kind = rnd() % 100;
    if (kind < 55) {
        c.op = PT_OP_NEW;
        c.symbol_id = (uint16_t)(rnd() % 50 == 0 ? 9 : rnd_in(0, 2));
        c.side = (uint8_t)(rnd() % 60 == 0 ? 3 : rnd_in(1, 2));
        c.order_type = (uint8_t)(rnd() % 10 == 0 ? PT_TYPE_MARKET : PT_TYPE_LIMIT);
        c.tif = (uint8_t)(rnd() % 4 == 0 ? rnd_in(2, 3) : PT_TIF_GTC);
        if (c.order_type == PT_TYPE_MARKET)
            c.tif = (uint8_t)rnd_in(2, 3);
        c.stp = (uint8_t)(rnd() % 3 == 0 ? rnd_in(0, 5) : 0);
        c.flags = (uint8_t)((rnd() % 8 == 0 ? PT_FLAG_POST_ONLY : 0) |
                            (c.order_type == PT_TYPE_LIMIT && rnd() % 50 ? PT_FLAG_HAS_PRICE : 0));
        c.price = rnd_in(990, 1010) * (rnd() % 100 == 0 ? -1 : 1);
        c.qty = rnd_in(rnd() % 100 == 0 ? -1 : 1, 20);
        c.cloid = rnd() % 3 ? (uint64_t)rnd_in(1, 40) : 0;
    } else if (kind < 80) {
        c.op = PT_OP_CANCEL;
        c.order_id = next_id_hint > 1 ? (uint64_t)rnd_in(1, (int64_t)next_id_hint) : 1;
    } else if (kind < 97) {
        c.op = PT_OP_MODIFY;
        c.order_id = next_id_hint > 1 ? (uint64_t)rnd_in(1, (int64_t)next_id_hint) : 1;
        c.flags = (uint8_t)rnd_in(0, 6) & (PT_FLAG_HAS_PRICE | PT_FLAG_HAS_QTY);
        c.price = rnd_in(990, 1010);
        c.qty = rnd_in(0, 25);
    } else if (kind < 99) {
        c.op = PT_OP_MASS_CANCEL;
        c.flags = rnd() % 2 ? PT_FLAG_HAS_SYMBOL : 0;
        c.symbol_id = (uint16_t)rnd_in(0, 3);
    } else {
        c.op = (uint8_t)(rnd() % 2 ? PT_OP_KILL_RESET : 9);
    }
    return c;
}

static pt_engine_t *make_stress_engine(void)
{
    pt_engine_config_t cfg = {.max_orders = 4096, .max_levels_per_side = 32, .max_symbols = 4, .max_clients = 16};
    pt_engine_t *e;
    if (pt_engine_create(&cfg, &e) != PT_OK)
        abort();
    for (int s = 0; s < 3; s++) {
        pt_symbol_config_t sym = {.min_price_ticks = 1, .max_price_ticks = s == 2 ? 1005 : 100000,
                                  .max_order_lots = s == 2 ? 15 : 1000, .band_ticks = s == 1 ? 8 : 0,
                                  .reference_price = s == 1 ? 1000 : 0, .market_band_ticks = s == 0 ? 3 : 0,
                                  .pnl_unit = 1 + s};
        uint16_t id;
        if (pt_engine_add_symbol(e, &sym, &id) != PT_OK)
            abort();
    }
    pt_client_limits_t risky = {.max_order_qty = 15, .max_open_orders = 30, .max_position = 60, .rate_per_s = 3,
                                .rate_burst = 20, .max_loss = 200};
    pt_client_limits_t rate_only = {.rate_per_s = 1000000000, .rate_burst = 5};
    if (pt_engine_set_client_limits(e, 2, &risky) != PT_OK || pt_engine_set_client_limits(e, 4, &rate_only) != PT_OK)
        abort();
    return e;
}

static int test_random_stream_keeps_invariants_and_replays_identically(void)
{
    const size_t n_cmds = 300000;
    pt_command_t *cmds = malloc(n_cmds * sizeof *cmds);
    EXPECT(cmds != NULL);
    pt_engine_t *a = make_stress_engine(), *b = make_stress_engine();
    rng_state = 0x9E3779B97F4A7C15ULL;
    g_ts = 0;
    uint64_t checksum_a = 0, checksum_b = 0;
    for (size_t i = 0; i < n_cmds; i++) {
        pt_engine_stats_t st;
        pt_engine_stats(a, &st);
        cmds[i] = random_command(st.next_order_id);
        EXPECT(pt_engine_submit(a, &cmds[i]) == PT_OK);
        if (i % 7 == 0 || i < 20000)
            EXPECT(pt_engine_check(a) == PT_OK);
        size_t n;
        pt_event_t *ev = pt_engine_events(a, &n);
        for (size_t k = 0; k < n; k++) {
            const uint64_t *w = (const uint64_t *)&ev[k];
            for (int j = 0; j < 8; j++)
                checksum_a = (checksum_a ^ w[j]) * 0x100000001b3ULL;
        }
        pt_engine_clear_events(a);
    }
    EXPECT(pt_engine_check(a) == PT_OK);
    for (size_t done_total = 0; done_total < n_cmds;) {
        size_t done, n;
        pt_engine_submit_batch(b, cmds + done_total, n_cmds - done_total, &done);
        done_total += done;
        pt_event_t *ev = pt_engine_events(b, &n);
        for (size_t k = 0; k < n; k++) {
            const uint64_t *w = (const uint64_t *)&ev[k];
            for (int j = 0; j < 8; j++)
                checksum_b = (checksum_b ^ w[j]) * 0x100000001b3ULL;
        }
        pt_engine_clear_events(b);
    }
    EXPECT(checksum_a == checksum_b);
    EXPECT(pt_engine_state_hash(a) == pt_engine_state_hash(b));
    pt_engine_stats_t st;
    pt_engine_stats(a, &st);
    printf("stress: %zu commands, %llu events, %llu trades, %llu resting\n", n_cmds,
           (unsigned long long)st.events, (unsigned long long)(st.next_trade_id - 1),
           (unsigned long long)st.live_orders);
    EXPECT(st.next_trade_id > 1000);
    pt_engine_destroy(a);
    pt_engine_destroy(b);
    free(cmds);
    return 0;
}

/* ---- snapshots (pt_snapshot.h) -------------------------------------------- */

/* Runs cmd on a and on b and requires the same events, byte for byte. */
static int same_future(pt_engine_t *a, pt_engine_t *b, const pt_command_t *cmd)
{
    EXPECT(pt_engine_submit(a, cmd) == PT_OK && pt_engine_submit(b, cmd) == PT_OK);
    size_t na, nb;
    pt_event_t *ea = pt_engine_events(a, &na), *eb = pt_engine_events(b, &nb);
    EXPECT(na == nb && memcmp(ea, eb, na * sizeof *ea) == 0);
    pt_engine_clear_events(a);
    pt_engine_clear_events(b);
    return 0;
}

static pt_engine_t *restored(const void *buf, size_t len, pt_snapshot_info_t *info)
{
    pt_engine_t *e = make_stress_engine();
    if (pt_snapshot_decode(e, buf, len, info) != PT_SNAPSHOT_OK)
        abort();
    return e;
}

static int test_snapshots_of_a_random_run_load_to_the_same_hash_and_the_same_events(void)
{
    pt_engine_t *a = make_stress_engine(), *b = NULL;
    rng_state = 0x2545F4914F6CDD1DULL;
    g_ts = 0;
    int loaded = 0;
    for (size_t i = 0; i < 120000; i++) {
        if (i % 20000 == 10000) { /* a snapshot of a now, loaded into a fresh engine, must go on as a does */
            pt_engine_destroy(b);
            pt_snapshot_info_t info = {.journal_position = i, .segment = i / 20000, .config_hash = 77};
            void *buf;
            size_t len;
            EXPECT(pt_snapshot_encode_alloc(a, &info, &buf, &len) == PT_SNAPSHOT_OK && len == info.bytes);
            pt_snapshot_info_t got;
            b = restored(buf, len, &got);
            pt_snapshot_free(buf);
            EXPECT(got.journal_position == i && got.segment == i / 20000 && got.config_hash == 77);
            EXPECT(pt_engine_state_hash(b) == pt_engine_state_hash(a) && pt_engine_check(b) == PT_OK);
            pt_engine_stats_t sa, sb;
            pt_engine_stats(a, &sa);
            pt_engine_stats(b, &sb);
            EXPECT(sa.commands == sb.commands && sa.events == sb.events && sa.live_orders == sb.live_orders &&
                   sa.next_order_id == sb.next_order_id && sa.next_trade_id == sb.next_trade_id);
            loaded++;
        }
        pt_engine_stats_t st;
        pt_engine_stats(a, &st);
        pt_command_t c = random_command(st.next_order_id);
        if (b != NULL) {
            if (same_future(a, b, &c))
                return 1;
        } else {
            EXPECT(pt_engine_submit(a, &c) == PT_OK);
            pt_engine_clear_events(a);
        }
    }
    EXPECT(loaded == 6 && pt_engine_state_hash(a) == pt_engine_state_hash(b) && pt_engine_check(b) == PT_OK);
    pt_engine_destroy(a);
    pt_engine_destroy(b);
    return 0;
}

/* Killed, halted, indexed-by-cloid and loss-limited clients: state the random stream reaches only sometimes. */
static int test_snapshot_keeps_kill_switches_halts_and_cloid_duplicates(void)
{
    pt_engine_t *a = make_stress_engine();
    g_ts = 0;
    pt_command_t cmds[] = {
        {.op = PT_OP_NEW, .side = PT_SIDE_SELL, .client_id = 1, .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_GTC,
         .flags = PT_FLAG_HAS_PRICE, .ts_ns = 1, .price = 1000, .qty = 5, .cloid = 9},
        {.op = PT_OP_NEW, .side = PT_SIDE_SELL, .client_id = 1, .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_GTC,
         .flags = PT_FLAG_HAS_PRICE, .ts_ns = 2, .price = 1001, .qty = 5, .cloid = 3}, /* indexes client 1 */
        {.op = PT_OP_NEW, .side = PT_SIDE_BUY, .client_id = 2, .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_GTC,
         .flags = PT_FLAG_HAS_PRICE, .ts_ns = 3, .price = 1000, .qty = 2},
        {.op = PT_OP_KILL, .client_id = 3, .ts_ns = 4},
        {.op = PT_OP_HALT, .symbol_id = 1, .ts_ns = 5},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        EXPECT(pt_engine_submit(a, &cmds[i]) == PT_OK);
        pt_engine_clear_events(a);
    }
    pt_snapshot_info_t info = {0};
    void *buf;
    size_t len;
    EXPECT(pt_snapshot_encode_alloc(a, &info, &buf, &len) == PT_SNAPSHOT_OK);
    pt_engine_t *b = restored(buf, len, &info);
    pt_snapshot_free(buf);
    EXPECT(pt_engine_state_hash(a) == pt_engine_state_hash(b));
    pt_position_t pa, pb;
    EXPECT(pt_engine_position(b, 3, 0, &pb) == PT_OK && pb.killed == 1);
    EXPECT(pt_engine_position(a, 2, 0, &pa) == PT_OK && pt_engine_position(b, 2, 0, &pb) == PT_OK);
    EXPECT(pa.position == 2 && pb.position == 2 && pa.cash == pb.cash && pa.pnl == pb.pnl);
    pt_client_limits_t la, lb;
    EXPECT(pt_engine_client_limits(a, 2, &la) == PT_OK && pt_engine_client_limits(b, 2, &lb) == PT_OK);
    EXPECT(memcmp(&la, &lb, sizeof la) == 0 && lb.max_loss == 200);
    pt_command_t next[] = {
        {.op = PT_OP_NEW, .side = PT_SIDE_SELL, .client_id = 1, .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_GTC,
         .flags = PT_FLAG_HAS_PRICE, .ts_ns = 6, .price = 1002, .qty = 1, .cloid = 9}, /* duplicate: rejected */
        {.op = PT_OP_NEW, .side = PT_SIDE_BUY, .client_id = 3, .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_GTC,
         .flags = PT_FLAG_HAS_PRICE, .ts_ns = 7, .price = 990, .qty = 1}, /* killed: rejected */
        {.op = PT_OP_NEW, .side = PT_SIDE_BUY, .symbol_id = 1, .client_id = 4, .order_type = PT_TYPE_LIMIT,
         .tif = PT_TIF_GTC, .flags = PT_FLAG_HAS_PRICE, .ts_ns = 8, .price = 1000, .qty = 1}, /* halted */
        {.op = PT_OP_NEW, .side = PT_SIDE_BUY, .client_id = 2, .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_IOC,
         .flags = PT_FLAG_HAS_PRICE, .ts_ns = 9, .price = 1001, .qty = 9}, /* trades through both levels */
        {.op = PT_OP_MASS_CANCEL, .client_id = 1, .ts_ns = 10},
    };
    for (size_t i = 0; i < sizeof next / sizeof next[0]; i++)
        if (same_future(a, b, &next[i]))
            return 1;
    EXPECT(pt_engine_state_hash(a) == pt_engine_state_hash(b));
    pt_engine_destroy(a);
    pt_engine_destroy(b);
    return 0;
}

static int test_damaged_snapshots_are_refused_before_anything_is_loaded(void)
{
    pt_engine_t *a = make_stress_engine();
    rng_state = 0x123456789ULL;
    for (int i = 0; i < 3000; i++) {
        pt_engine_stats_t st;
        pt_engine_stats(a, &st);
        pt_command_t c = random_command(st.next_order_id);
        EXPECT(pt_engine_submit(a, &c) == PT_OK);
        pt_engine_clear_events(a);
    }
    pt_snapshot_info_t info = {0}, got;
    void *buf;
    size_t len;
    EXPECT(pt_snapshot_encode_alloc(a, &info, &buf, &len) == PT_SNAPSHOT_OK && info.live_orders > 0);
    unsigned char *bytes = buf;
    pt_engine_t *b = make_stress_engine();
    for (size_t off = 0; off < len; off += len / 97 + 1) { /* a flipped bit anywhere fails a check */
        bytes[off] ^= 0x10;
        int rc = pt_snapshot_decode(b, buf, len, &got);
        EXPECT(rc == PT_SNAPSHOT_EBADCRC || rc == PT_SNAPSHOT_EBADMAGIC || rc == PT_SNAPSHOT_EBADVERSION ||
               rc == PT_SNAPSHOT_ETRUNCATED);
        bytes[off] ^= 0x10;
    }
    EXPECT(pt_snapshot_decode(b, buf, len - 8, &got) == PT_SNAPSHOT_ETRUNCATED); /* a torn write */
    bytes[len - 8] ^= 1;
    EXPECT(pt_snapshot_decode(b, buf, len, &got) == PT_SNAPSHOT_EBADCRC && got.stored_crc != got.computed_crc);
    bytes[len - 8] ^= 1;
    pt_engine_stats_t st;
    pt_engine_stats(b, &st);
    EXPECT(st.commands == 0 && st.live_orders == 0); /* nothing was loaded */
    /* another configuration, and an engine that has run commands, are refused too */
    pt_engine_t *other = make_engine_for(4096, 32, 16);
    EXPECT(pt_snapshot_decode(other, buf, len, &got) == PT_SNAPSHOT_ECONFIG);
    pt_command_t c = random_command(1);
    EXPECT(pt_engine_submit(b, &c) == PT_OK);
    EXPECT(pt_snapshot_decode(b, buf, len, &got) == PT_SNAPSHOT_ENOTFRESH);
    pt_snapshot_free(buf);
    pt_engine_destroy(a);
    pt_engine_destroy(b);
    pt_engine_destroy(other);
    return 0;
}

static int test_snapshot_file_is_written_whole_and_loads_back(void)
{
    pt_engine_t *a = make_stress_engine();
    rng_state = 0xDEADBEEFULL;
    for (int i = 0; i < 5000; i++) {
        pt_engine_stats_t st;
        pt_engine_stats(a, &st);
        pt_command_t c = random_command(st.next_order_id);
        EXPECT(pt_engine_submit(a, &c) == PT_OK);
        pt_engine_clear_events(a);
    }
    char dir[] = "/tmp/pt_snapshot_test_XXXXXX";
    EXPECT(mkdtemp(dir) != NULL);
    char path[64], tmp[80];
    snprintf(path, sizeof path, "%s/state.snap", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    pt_snapshot_info_t info = {.journal_position = 5000}, got;
    EXPECT(pt_snapshot_save(a, &info, path) == PT_SNAPSHOT_OK);
    EXPECT(access(tmp, F_OK) != 0); /* renamed into place: no temporary left */
    EXPECT(pt_snapshot_read_info(path, &got) == PT_SNAPSHOT_OK && got.journal_position == 5000 &&
           got.state_hash == pt_engine_state_hash(a) && got.bytes == info.bytes);
    pt_engine_t *b = make_stress_engine();
    EXPECT(pt_snapshot_load(b, path, &got) == PT_SNAPSHOT_OK && pt_engine_state_hash(b) == pt_engine_state_hash(a));
    char missing[80];
    snprintf(missing, sizeof missing, "%s/none.snap", dir);
    EXPECT(pt_snapshot_read_info(missing, &got) == PT_SNAPSHOT_EIO);
    EXPECT(pt_snapshot_read_info(dir, &got) == PT_SNAPSHOT_EIO); /* a directory */
    unlink(path);
    rmdir(dir);
    pt_engine_destroy(a);
    pt_engine_destroy(b);
    return 0;
}

/* The engine loop's snapshots skip the state hash; a file whose checksum holds but whose queues contradict
 * themselves (a written-wrong link) is refused as corrupt. */
static int test_snapshot_without_hash_loads_and_a_broken_queue_is_corrupt(void)
{
    pt_engine_t *a = make_stress_engine();
    rng_state = 0xFEEDULL;
    for (int i = 0; i < 4000; i++) {
        pt_engine_stats_t st;
        pt_engine_stats(a, &st);
        pt_command_t c = random_command(st.next_order_id);
        EXPECT(pt_engine_submit(a, &c) == PT_OK);
        pt_engine_clear_events(a);
    }
    pt_snapshot_info_t info = {.no_hash = 1}, got;
    void *buf;
    size_t len;
    EXPECT(pt_snapshot_encode_alloc(a, &info, &buf, &len) == PT_SNAPSHOT_OK && info.state_hash == 0);
    EXPECT(info.live_orders > 1);
    pt_engine_t *b = make_stress_engine();
    EXPECT(pt_snapshot_decode(b, buf, len, &got) == PT_SNAPSHOT_OK && pt_engine_state_hash(b) == pt_engine_state_hash(a));
    pt_engine_destroy(b);
    /* the last order record: its next link made to point at itself, the checksum made to match again */
    unsigned char *last = (unsigned char *)buf + len - PT_SNAPSHOT_TRAILER_BYTES - 5 * 8;
    uint64_t links;
    memcpy(&links, last, 8);
    links = (links & 0xFFFFFFFFull) | (links & 0xFFFFFFFFull) << 32;
    memcpy(last, &links, 8);
    uint64_t trailer = pt_crc32c(0, buf, len - PT_SNAPSHOT_TRAILER_BYTES, 0);
    memcpy((unsigned char *)buf + len - PT_SNAPSHOT_TRAILER_BYTES, &trailer, 8);
    b = make_stress_engine();
    EXPECT(pt_snapshot_decode(b, buf, len, &got) == PT_SNAPSHOT_ECORRUPT);
    pt_snapshot_free(buf);
    pt_engine_destroy(a);
    pt_engine_destroy(b);
    return 0;
}

/* Links that each look right (one predecessor each, one tail, the counts) but make a cycle beside the queue:
 * A alone as the queue, B and C pointing at each other. The load must refuse them, not loop. */
static int test_snapshot_with_a_cycle_beside_the_queue_is_corrupt(void)
{
    pt_engine_t *a = make_engine(64, 8);
    size_t n;
    for (int i = 0; i < 3; i++)
        run(a, limit_order(1, PT_SIDE_BUY, 100, 1 + i, PT_TIF_GTC, 0), &n);
    pt_snapshot_info_t info = {0}, got;
    void *buf;
    size_t len;
    EXPECT(pt_snapshot_encode_alloc(a, &info, &buf, &len) == PT_SNAPSHOT_OK && info.live_orders == 3);
    unsigned char *rec = (unsigned char *)buf + len - PT_SNAPSHOT_TRAILER_BYTES - 3 * 5 * 8; /* slots 0, 1, 2 */
    uint64_t links[3] = {0 | (uint64_t)UINT32_MAX << 32, 1 | (uint64_t)2 << 32, 2 | (uint64_t)1 << 32};
    for (int i = 0; i < 3; i++)
        memcpy(rec + i * 5 * 8, &links[i], 8);
    uint64_t trailer = pt_crc32c(0, buf, len - PT_SNAPSHOT_TRAILER_BYTES, 0);
    memcpy((unsigned char *)buf + len - PT_SNAPSHOT_TRAILER_BYTES, &trailer, 8);
    pt_engine_t *b = make_engine(64, 8);
    EXPECT(pt_snapshot_decode(b, buf, len, &got) == PT_SNAPSHOT_ECORRUPT);
    pt_snapshot_free(buf);
    pt_engine_destroy(a);
    pt_engine_destroy(b);
    return 0;
}

/* The file's record of order `from` given the id `to`, the checksum made to match again; returns whether that
 * record was found (1). */
static int rewrite_order_id(void *buf, size_t len, uint64_t live, uint64_t from, uint64_t to)
{
    unsigned char *rec = (unsigned char *)buf + len - PT_SNAPSHOT_TRAILER_BYTES - live * 5 * 8;
    for (uint64_t i = 0; i < live; i++, rec += 5 * 8) {
        uint64_t id;
        memcpy(&id, rec + 8, 8);
        if (id != from)
            continue;
        memcpy(rec + 8, &to, 8);
        uint64_t trailer = pt_crc32c(0, buf, len - PT_SNAPSHOT_TRAILER_BYTES, 0);
        memcpy((unsigned char *)buf + len - PT_SNAPSHOT_TRAILER_BYTES, &trailer, 8);
        return 1;
    }
    return 0;
}

/* Two records with one id are refused, whether the id's ring slot holds it or it went to the overflow table:
 * 64 orders give a ring of 128 slots, so ids 1 and 129 share a slot. Given an unused id instead, the same
 * record loads: the refusal is the duplicate's. */
static int test_snapshot_with_a_duplicate_order_id_is_corrupt(void)
{
    for (uint64_t dup = 1; dup <= 129; dup += 128) {
        pt_engine_t *a = make_engine(64, 8);
        size_t n;
        for (int i = 0; i < 130; i++) {
            run(a, limit_order(1, PT_SIDE_BUY, 100, 1, PT_TIF_GTC, 0), &n);
            if (i >= 1 && i <= 127) /* ids 2..128 leave: 1, 129 and 130 rest */
                run(a, (pt_command_t){.op = PT_OP_CANCEL, .client_id = 1, .order_id = (uint64_t)i + 1,
                                      .ts_ns = ++g_ts}, &n);
        }
        pt_snapshot_info_t info = {.no_hash = 1}, got;
        void *buf;
        size_t len;
        EXPECT(pt_snapshot_encode_alloc(a, &info, &buf, &len) == PT_SNAPSHOT_OK && info.live_orders == 3);
        EXPECT(rewrite_order_id(buf, len, 3, 130, 2));
        pt_engine_t *b = make_engine(64, 8);
        EXPECT(pt_snapshot_decode(b, buf, len, &got) == PT_SNAPSHOT_OK && pt_engine_check(b) == PT_OK);
        pt_engine_destroy(b);
        EXPECT(rewrite_order_id(buf, len, 3, 2, dup));
        b = make_engine(64, 8);
        EXPECT(pt_snapshot_decode(b, buf, len, &got) == PT_SNAPSHOT_ECORRUPT);
        pt_snapshot_free(buf);
        pt_engine_destroy(a);
        pt_engine_destroy(b);
    }
    return 0;
}

#define RUN(t)                         \
    do {                               \
        if (t()) {                     \
            g_failed++;                \
            printf("FAIL %s\n", #t);   \
        } else {                       \
            g_passed++;                \
            printf("ok   %s\n", #t);   \
        }                              \
    } while (0)

int main(void)
{
    RUN(test_same_price_makers_fill_in_arrival_order);
    RUN(test_rejected_order_changes_nothing_and_takes_no_id);
    RUN(test_duplicate_cloids_are_rejected_before_and_after_the_client_is_indexed);
    RUN(test_sweep_of_five_thousand_makers_trades_each_once);
    RUN(test_protection_band_past_int64_is_no_bound);
    RUN(test_full_order_pool_rejects_cleanly);
    RUN(test_full_side_rejects_a_new_level_but_joins_an_existing_one);
    RUN(test_event_buffer_never_overflows_mid_command);
    RUN(test_run_ahead_changes_nothing);
    RUN(test_mass_cancel_goes_in_id_order_whatever_the_slots);
    RUN(test_kill_switch_cancels_in_id_order_across_reused_slots);
    RUN(test_cloid_index_built_late_finds_every_resting_cloid);
    RUN(test_reject_echoes_the_fields_as_sent);
    RUN(test_the_last_event_of_a_command_for_its_client_is_flagged);
    RUN(test_many_clients_times_many_slots_is_created);
    RUN(test_kill_switch_cancels_and_blocks_until_reset);
    RUN(test_kill_switch_fires_when_the_mark_does_not_move);
    RUN(test_kill_switch_fires_after_new_limits_put_a_client_below);
    RUN(test_long_lived_orders_stay_findable_when_ids_lap_the_index_ring);
    RUN(test_random_stream_keeps_invariants_and_replays_identically);
    RUN(test_snapshots_of_a_random_run_load_to_the_same_hash_and_the_same_events);
    RUN(test_snapshot_keeps_kill_switches_halts_and_cloid_duplicates);
    RUN(test_damaged_snapshots_are_refused_before_anything_is_loaded);
    RUN(test_snapshot_file_is_written_whole_and_loads_back);
    RUN(test_snapshot_without_hash_loads_and_a_broken_queue_is_corrupt);
    RUN(test_snapshot_with_a_cycle_beside_the_queue_is_corrupt);
    RUN(test_snapshot_with_a_duplicate_order_id_is_corrupt);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
