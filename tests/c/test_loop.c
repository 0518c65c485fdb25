/*
 * test_loop.c - the engine loop (hotpath/src/loop.c) in one process: the loop runs in a thread, the test's
 * main thread plays both clients and the market-data reader. Every wait has a deadline (wait_ring/wait_for),
 * and alarm(DEADLINE_S) ends a hung run. Built with the engine and the rings, -O2 and under ASan+UBSan.
 */
#include "harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pt_bcast.h"
#include "pt_engine.h"
#include "pt_journal.h"
#include "pt_loop.h"
#include "pt_ring.h"
#include "pt_wire.h"

#define WAIT_S 10.0

typedef struct client_mem {
    void *cmd_mem, *evt_mem;
    size_t cmd_bytes, evt_bytes;
    pt_ring_t cmd, evt; /* the client's handles: producer of cmd, consumer of evt */
} client_mem_t;

typedef struct fixture {
    pt_engine_t *engine;
    void *control;
    void *md_mem;
    size_t md_bytes;
    pt_bcast_reader_t md;
    client_mem_t clients[2]; /* client ids 1 and 2 */
    pt_loop_t *loop;
    pthread_t thread;
    int loop_rc;
    int expected_rc; /* what pt_loop_run must have returned (stop_and_teardown checks) */
} fixture_t;

static void *aligned(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (p != NULL)
        memset(p, 0, bytes);
    return p;
}

static int setup(fixture_t *f, uint32_t evt_capacity)
{
    memset(f, 0, sizeof *f);
    pt_engine_config_t cfg = {.max_orders = 1024, .max_levels_per_side = 64, .max_symbols = 2, .max_clients = 8};
    EXPECT(pt_engine_create(&cfg, &f->engine) == PT_OK);
    pt_symbol_config_t sym = {.min_price_ticks = 1, .max_price_ticks = 100000, .max_order_lots = 1000, .pnl_unit = 1};
    uint16_t sid;
    EXPECT(pt_engine_add_symbol(f->engine, &sym, &sid) == PT_OK && sid == 0);
    f->control = aligned(PT_LOOP_CONTROL_BYTES);
    EXPECT(pt_loop_control_init(f->control, PT_LOOP_CONTROL_BYTES) == PT_LOOP_OK);
    EXPECT(pt_loop_create(f->engine, f->control, PT_LOOP_CONTROL_BYTES, &f->loop) == PT_LOOP_OK);
    for (int i = 0; i < 2; i++) {
        client_mem_t *c = &f->clients[i];
        c->cmd_bytes = pt_ring_bytes(64);
        c->evt_bytes = pt_ring_bytes(evt_capacity);
        c->cmd_mem = aligned(c->cmd_bytes);
        c->evt_mem = aligned(c->evt_bytes);
        EXPECT(pt_ring_init(c->cmd_mem, c->cmd_bytes, 64) == PT_RING_OK);
        EXPECT(pt_ring_init(c->evt_mem, c->evt_bytes, evt_capacity) == PT_RING_OK);
        EXPECT(pt_ring_attach(c->cmd_mem, c->cmd_bytes, &c->cmd) == PT_RING_OK);
        EXPECT(pt_ring_attach(c->evt_mem, c->evt_bytes, &c->evt) == PT_RING_OK);
        EXPECT(pt_loop_add_client(f->loop, (uint16_t)(i + 1), c->cmd_mem, c->cmd_bytes, c->evt_mem, c->evt_bytes) ==
               PT_LOOP_OK);
    }
    f->md_bytes = pt_bcast_bytes(256);
    f->md_mem = aligned(f->md_bytes);
    EXPECT(pt_bcast_init(f->md_mem, f->md_bytes, 256) == PT_BCAST_OK);
    pt_bcast_t md;
    EXPECT(pt_bcast_attach(f->md_mem, f->md_bytes, &md) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&md, &f->md) == PT_BCAST_OK);
    EXPECT(pt_loop_set_market_data(f->loop, f->md_mem, f->md_bytes) == PT_LOOP_OK);
    return 0;
}

static void *run_loop(void *arg)
{
    fixture_t *f = arg;
    f->loop_rc = pt_loop_run(f->loop);
    return NULL;
}

static int start(fixture_t *f)
{
    EXPECT(pthread_create(&f->thread, NULL, run_loop, f) == 0);
    return 0;
}

/* Stops the loop and checks how it ended; the engine is the test's again afterwards. */
static int stop_loop(fixture_t *f)
{
    EXPECT(pt_loop_request_stop(f->control, PT_LOOP_CONTROL_BYTES) == PT_LOOP_OK);
    pthread_join(f->thread, NULL);
    pt_loop_counters_t k;
    EXPECT(pt_loop_control_read(f->control, PT_LOOP_CONTROL_BYTES, &k) == PT_LOOP_OK);
    EXPECT(f->loop_rc == f->expected_rc && k.running == 0 && k.stop == 1);
    EXPECT(pt_engine_check(f->engine) == PT_OK);
    return 0;
}

static int teardown(fixture_t *f)
{
    pt_loop_destroy(f->loop);
    pt_engine_destroy(f->engine);
    for (int i = 0; i < 2; i++) {
        free(f->clients[i].cmd_mem);
        free(f->clients[i].evt_mem);
    }
    free(f->md_mem);
    free(f->control);
    return 0;
}

static int stop_and_teardown(fixture_t *f)
{
    return stop_loop(f) || teardown(f);
}

static pt_command_t new_order(uint16_t client, uint8_t side, int64_t qty, int64_t price, uint64_t cloid)
{
    pt_command_t c;
    memset(&c, 0, sizeof c);
    c.op = PT_OP_NEW;
    c.side = side;
    c.symbol_id = 0;
    c.client_id = client;
    c.order_type = PT_TYPE_LIMIT;
    c.tif = PT_TIF_GTC;
    c.flags = PT_FLAG_HAS_PRICE;
    c.price = price;
    c.qty = qty;
    c.cloid = cloid;
    c.ts_ns = cloid;
    return c;
}

/* Pops n events from a client's ring within WAIT_S; 0 on success. */
static int wait_ring(pt_ring_t *r, pt_event_t *out, size_t n)
{
    double deadline = now_s() + WAIT_S;
    unsigned misses = 0;
    for (size_t got = 0; got < n;) {
        if (pt_ring_try_pop(r, &out[got]) == PT_RING_OK) {
            got++;
            misses = 0;
        } else {
            EXPECT(now_s() < deadline);
            idle(&misses);
        }
    }
    return 0;
}

static int wait_md(pt_bcast_reader_t *rd, pt_event_t *out, size_t n)
{
    double deadline = now_s() + WAIT_S;
    unsigned misses = 0;
    for (size_t got = 0; got < n;) {
        int rc = pt_bcast_read(rd, &out[got]);
        EXPECT(rc == PT_BCAST_OK || rc == PT_BCAST_EMPTY);
        if (rc == PT_BCAST_OK) {
            got++;
            misses = 0;
        } else {
            EXPECT(now_s() < deadline);
            idle(&misses);
        }
    }
    return 0;
}

static int test_events_go_to_their_owners_and_book_and_trades_to_market_data(void)
{
    fixture_t f;
    if (setup(&f, 64))
        return 1;
    if (start(&f))
        return 1;
    pt_command_t sell = new_order(1, PT_SIDE_SELL, 5, 100, 1);
    EXPECT(pt_ring_try_push(&f.clients[0].cmd, &sell) == PT_RING_OK);
    pt_event_t ev[4];
    if (wait_ring(&f.clients[0].evt, ev, 1))
        return 1;
    EXPECT(ev[0].type == PT_EV_ACK && ev[0].client_id == 1 && ev[0].cloid == 1);
    /* Client 2 claims to be client 1: the loop runs it as client 2. */
    pt_command_t buy = new_order(1, PT_SIDE_BUY, 3, 100, 2);
    EXPECT(pt_ring_try_push(&f.clients[1].cmd, &buy) == PT_RING_OK);
    if (wait_ring(&f.clients[1].evt, ev, 2))
        return 1;
    EXPECT(ev[0].type == PT_EV_ACK && ev[0].client_id == 2);
    EXPECT(ev[1].type == PT_EV_FILL && ev[1].client_id == 2 && ev[1].liquidity == PT_LIQ_TAKER && ev[1].qty == 3);
    if (wait_ring(&f.clients[0].evt, ev, 1))
        return 1;
    EXPECT(ev[0].type == PT_EV_FILL && ev[0].client_id == 1 && ev[0].liquidity == PT_LIQ_MAKER && ev[0].leaves == 2);
    /* Market data: the ask level appears, then the trade and the level's new size. */
    pt_event_t md[3];
    if (wait_md(&f.md, md, 3))
        return 1;
    EXPECT(md[0].type == PT_EV_BOOK_DELTA && md[0].qty == 5);
    int trades = 0;
    for (int i = 1; i < 3; i++)
        trades += md[i].type == PT_EV_TRADE && md[i].client_id == 2 && md[i].maker_client == 1;
    EXPECT(trades == 1);
    /* The counters are published at the end of the pass, which may come after the events were read. */
    pt_loop_counters_t k = {0};
    double deadline = now_s() + WAIT_S;
    while (k.commands != 2) {
        EXPECT(now_s() < deadline);
        EXPECT(pt_loop_control_read(f.control, PT_LOOP_CONTROL_BYTES, &k) == PT_LOOP_OK);
        sched_yield();
    }
    EXPECT(k.running == 1 && k.stalls == 0 && k.unrouted == 0);
    return stop_and_teardown(&f);
}

/* Queues n resting buys of client 1 before the loop starts, with an event ring of event_capacity slots
 * too small for their ACKs, starts the loop and waits until it reports a stall. */
static int start_stalled(fixture_t *f, uint32_t event_capacity, uint64_t n)
{
    if (setup(f, event_capacity))
        return 1;
    for (uint64_t i = 0; i < n; i++) {
        pt_command_t c = new_order(1, PT_SIDE_BUY, 1, (int64_t)(100 + i), i + 1);
        EXPECT(pt_ring_try_push(&f->clients[0].cmd, &c) == PT_RING_OK);
    }
    if (start(f))
        return 1;
    pt_loop_counters_t k = {0};
    double deadline = now_s() + WAIT_S;
    while (k.stalls == 0 || k.stalled_on == 0) {
        EXPECT(now_s() < deadline);
        EXPECT(pt_loop_control_read(f->control, PT_LOOP_CONTROL_BYTES, &k) == PT_LOOP_OK);
        sched_yield();
    }
    EXPECT(k.stalled_on == 1 + 1); /* client 1's ring, published while the loop waits on it */
    return 0;
}

static int test_a_full_event_ring_stalls_the_loop_and_loses_nothing(void)
{
    fixture_t f;
    if (start_stalled(&f, 2, 6))
        return 1;
    pt_event_t ev[6];
    if (wait_ring(&f.clients[0].evt, ev, 6))
        return 1;
    for (int i = 0; i < 6; i++)
        EXPECT(ev[i].type == PT_EV_ACK && ev[i].cloid == (uint64_t)i + 1);
    pt_loop_counters_t k = {.stalled_on = 1};
    double deadline = now_s() + WAIT_S;
    while (k.stalled_on != 0) { /* cleared once the last ACK went out */
        EXPECT(now_s() < deadline);
        EXPECT(pt_loop_control_read(f.control, PT_LOOP_CONTROL_BYTES, &k) == PT_LOOP_OK);
        sched_yield();
    }
    return stop_and_teardown(&f);
}

static int test_a_stop_during_a_stall_ends_the_loop(void)
{
    fixture_t f;
    if (start_stalled(&f, 1, 3))
        return 1;
    return stop_and_teardown(&f); /* joins: the stalled loop must see the flag */
}

/* Every command run is journaled before its events go out, a rejected one too (its REJECT takes a seq); a
 * full journal stops the loop before the command it has no room for, which stays unrun. */
static int test_commands_are_journaled_before_their_events_and_a_full_journal_stops_the_loop(void)
{
    fixture_t f;
    if (setup(&f, 64))
        return 1;
    size_t jbytes = pt_journal_bytes(3);
    void *jmem = aligned(jbytes);
    EXPECT(pt_journal_init(jmem, jbytes, 3, 0) == PT_JOURNAL_OK);
    EXPECT(pt_loop_set_journal(f.loop, jmem, jbytes) == PT_LOOP_OK);
    EXPECT(pt_loop_set_journal(f.loop, f.control, PT_LOOP_CONTROL_BYTES) == PT_LOOP_EINVAL); /* not a journal */
    pt_journal_t j;
    EXPECT(pt_journal_attach(jmem, jbytes, &j) == PT_JOURNAL_OK);
    int64_t qty[4] = {1, 0, 1, 1}; /* the second is rejected (qty 0) */
    for (uint64_t i = 0; i < 4; i++) {
        pt_command_t c = new_order(2, PT_SIDE_BUY, qty[i], (int64_t)(100 + i), i + 1); /* claims client 2 */
        EXPECT(pt_ring_try_push(&f.clients[0].cmd, &c) == PT_RING_OK);
    }
    if (start(&f))
        return 1;
    pt_event_t ev[3];
    uint64_t want_type[3] = {PT_EV_ACK, PT_EV_REJECT, PT_EV_ACK};
    for (int i = 0; i < 3; i++) {
        if (wait_ring(&f.clients[0].evt, &ev[i], 1))
            return 1;
        EXPECT(ev[i].type == want_type[i] && ev[i].cloid == (uint64_t)i + 1);
        EXPECT(pt_journal_committed(&j) >= (uint64_t)i + 1); /* the record was there before its event */
    }
    /* Until the loop has stopped on the full journal with 3 commands run: the counters are read one by one
     * (see the gone-client test), so the final count may show a read after running and journal_full do. */
    pt_loop_counters_t k = {0};
    double deadline = now_s() + WAIT_S;
    do {
        EXPECT(now_s() < deadline);
        EXPECT(pt_loop_control_read(f.control, PT_LOOP_CONTROL_BYTES, &k) == PT_LOOP_OK);
        sched_yield();
    } while (k.running == 1 || k.journal_full == 0 || k.commands != 3);
    EXPECT(pt_journal_committed(&j) == 3);
    for (uint64_t i = 0; i < 3; i++) {
        pt_command_t rec;
        EXPECT(pt_journal_read(&j, i, &rec) == PT_JOURNAL_OK);
        EXPECT(rec.cloid == i + 1 && rec.client_id == 1 && rec.ts_ns == i + 1 && rec.qty == qty[i]);
    }
    pt_event_t extra;
    EXPECT(pt_ring_try_pop(&f.clients[0].evt, &extra) == PT_RING_EMPTY); /* command 4 never ran */
    f.expected_rc = PT_LOOP_EJOURNALFULL;
    int rc = stop_and_teardown(&f);
    free(jmem);
    return rc;
}

static int test_bad_control_blocks_and_duplicate_clients_are_errors(void)
{
    void *mem = aligned(PT_LOOP_CONTROL_BYTES);
    pt_loop_counters_t k;
    EXPECT(pt_loop_control_read(mem, PT_LOOP_CONTROL_BYTES, &k) == PT_LOOP_EBADMAGIC);
    EXPECT(pt_loop_request_stop(mem, PT_LOOP_CONTROL_BYTES) == PT_LOOP_EBADMAGIC);
    EXPECT(pt_loop_control_init(mem, PT_LOOP_CONTROL_BYTES - 1) == PT_LOOP_EINVAL);
    EXPECT(pt_loop_control_init((char *)mem + 8, PT_LOOP_CONTROL_BYTES) == PT_LOOP_EINVAL);
    free(mem);
    fixture_t f;
    if (setup(&f, 8))
        return 1;
    client_mem_t *c = &f.clients[0];
    EXPECT(pt_loop_add_client(f.loop, 1, c->cmd_mem, c->cmd_bytes, c->evt_mem, c->evt_bytes) == PT_LOOP_EDUPLICATE);
    void *junk = aligned(4096);
    EXPECT(pt_loop_add_client(f.loop, 3, junk, 4096, c->evt_mem, c->evt_bytes) == PT_LOOP_EINVAL);
    free(junk);
    if (start(&f))
        return 1;
    return stop_and_teardown(&f);
}

/* A link (client 1's slot, granted accounts 3 and 4) acts for its grant: a command keeps the account it names
 * and that account's events, a maker's FILL included, come back on the link; a command naming an account
 * outside the grant is rejected NOT_GRANTED, back to the link. One slot or link holds an account at a time. */
static int test_a_link_acts_for_its_granted_accounts_only(void)
{
    fixture_t f;
    if (setup(&f, 64))
        return 1;
    EXPECT(pt_loop_grant(f.loop, 1, 3) == PT_LOOP_OK && pt_loop_grant(f.loop, 1, 4) == PT_LOOP_OK);
    EXPECT(pt_loop_grant(f.loop, 1, 3) == PT_LOOP_OK);             /* again: nothing changes */
    EXPECT(pt_loop_grant(f.loop, 1, 2) == PT_LOOP_EDUPLICATE);     /* attached itself */
    EXPECT(pt_loop_grant(f.loop, 2, 4) == PT_LOOP_EDUPLICATE);     /* another link's */
    EXPECT(pt_loop_grant(f.loop, 7, 5) == PT_LOOP_ENOCLIENT);      /* no such link */
    EXPECT(pt_loop_grant(f.loop, 1, PT_CLIENT_NONE) == PT_LOOP_EINVAL);
    client_mem_t *c = &f.clients[0];
    EXPECT(pt_loop_add_client(f.loop, 3, c->cmd_mem, c->cmd_bytes, c->evt_mem, c->evt_bytes) == PT_LOOP_EDUPLICATE);
    if (start(&f))
        return 1;
    pt_command_t sell = new_order(3, PT_SIDE_SELL, 5, 100, 1);
    pt_command_t outside = new_order(5, PT_SIDE_BUY, 1, 90, 2);
    EXPECT(pt_ring_try_push(&c->cmd, &sell) == PT_RING_OK && pt_ring_try_push(&c->cmd, &outside) == PT_RING_OK);
    pt_event_t ev[3];
    if (wait_ring(&c->evt, ev, 2))
        return 1;
    EXPECT(ev[0].type == PT_EV_ACK && ev[0].client_id == 3 && ev[0].cloid == 1);
    EXPECT(ev[1].type == PT_EV_REJECT && ev[1].client_id == 5 && ev[1].reason == PT_REJ_NOT_GRANTED);
    pt_command_t buy = new_order(3, PT_SIDE_BUY, 2, 100, 3); /* client 2 is no link: it trades as itself */
    EXPECT(pt_ring_try_push(&f.clients[1].cmd, &buy) == PT_RING_OK);
    if (wait_ring(&f.clients[1].evt, ev, 2))
        return 1;
    EXPECT(ev[0].type == PT_EV_ACK && ev[0].client_id == 2 && ev[1].type == PT_EV_FILL && ev[1].client_id == 2);
    if (wait_ring(&c->evt, ev, 1))
        return 1;
    EXPECT(ev[0].type == PT_EV_FILL && ev[0].client_id == 3 && ev[0].liquidity == PT_LIQ_MAKER && ev[0].leaves == 3);
    pt_position_t pos;
    if (stop_loop(&f))
        return 1;
    EXPECT(pt_engine_position(f.engine, 3, 0, &pos) == PT_OK && pos.position == -2);
    EXPECT(pt_engine_position(f.engine, 5, 0, &pos) == PT_OK && pos.open_orders == 0);
    /* Detaching the link frees its grant: account 3 may attach on its own. */
    EXPECT(pt_loop_remove_client(f.loop, 1) == PT_LOOP_OK);
    EXPECT(pt_loop_add_client(f.loop, 3, c->cmd_mem, c->cmd_bytes, c->evt_mem, c->evt_bytes) == PT_LOOP_OK);
    EXPECT(pt_loop_grant(f.loop, 2, 4) == PT_LOOP_OK);
    return teardown(&f);
}

/* A client declared gone unblocks a loop stalled on its full event ring: the rest of its events are dropped
 * (counted), the commands it left in its ring are not run, and the other client is served. */
static int test_a_gone_client_unstalls_the_loop_and_its_leftover_commands_do_not_run(void)
{
    fixture_t f;
    if (start_stalled(&f, 1, 6)) /* ACK 1 fits, ACK 2 stalls */
        return 1;
    EXPECT(pt_loop_set_client_gone(f.loop, 1) == PT_LOOP_OK);
    EXPECT(pt_loop_set_client_gone(f.loop, 9) == PT_LOOP_ENOCLIENT);
    pt_command_t c = new_order(2, PT_SIDE_SELL, 1, 500, 77);
    EXPECT(pt_ring_try_push(&f.clients[1].cmd, &c) == PT_RING_OK);
    pt_event_t ev;
    if (wait_ring(&f.clients[1].evt, &ev, 1)) /* client 2 is served again */
        return 1;
    EXPECT(ev.type == PT_EV_ACK && ev.cloid == 77);
    /* The first batch (up to PT_LOOP_CLIENT_BATCH = all 6) had run: ACK 1 delivered, ACKs 2-6 dropped. The
     * counters are published at the end of the pass, which may come just after client 2's ACK, and a read
     * is not one snapshot: each counter is read on its own while the loop may be storing them, so one read
     * can pair the new command count with the old dropped count (seen once in ~1,500 runs under load).
     * Wait until both have their final values; a wrong one never gets there and fails at the deadline. */
    pt_loop_counters_t k = {0};
    double deadline = now_s() + WAIT_S;
    while (k.commands != 7 || k.dropped != 5) {
        EXPECT(now_s() < deadline);
        EXPECT(pt_loop_control_read(f.control, PT_LOOP_CONTROL_BYTES, &k) == PT_LOOP_OK);
        sched_yield();
    }
    EXPECT(k.stalls == 1);
    return stop_and_teardown(&f);
}

/* Waits (bounded) until the loop grants the pause for ticket t. */
static int wait_granted(pt_loop_t *loop, uint64_t t)
{
    double deadline = now_s() + WAIT_S;
    int g;
    while ((g = pt_loop_pause_granted(loop, t)) == 0) {
        EXPECT(now_s() < deadline);
        sched_yield();
    }
    EXPECT(g == 1);
    return 0;
}

/* The controller's path for a client that is gone: pause, run the journaled DISCONNECT mass cancel through
 * pt_loop_execute (book deltas to market data, the gone client's own events dropped), detach its slot,
 * resume; the loop then serves the remaining client, and a new client can take the freed slot. */
static int test_pause_execute_detach_and_resume(void)
{
    fixture_t f;
    if (setup(&f, 64))
        return 1;
    size_t jbytes = pt_journal_bytes(16);
    void *jmem = aligned(jbytes);
    EXPECT(pt_journal_init(jmem, jbytes, 16, 0) == PT_JOURNAL_OK);
    EXPECT(pt_loop_set_journal(f.loop, jmem, jbytes) == PT_LOOP_OK);
    pt_journal_t j;
    EXPECT(pt_journal_attach(jmem, jbytes, &j) == PT_JOURNAL_OK);
    EXPECT(pt_loop_pause_granted(f.loop, 1) == -1); /* not running: nothing to grant */
    if (start(&f))
        return 1;
    for (uint64_t i = 0; i < 3; i++) {
        pt_command_t c = new_order(1, PT_SIDE_BUY, 2, (int64_t)(100 + i), i + 1);
        EXPECT(pt_ring_try_push(&f.clients[0].cmd, &c) == PT_RING_OK);
    }
    pt_event_t ev[3];
    if (wait_ring(&f.clients[0].evt, ev, 3))
        return 1;
    pt_event_t md[3];
    if (wait_md(&f.md, md, 3))
        return 1;

    EXPECT(pt_loop_set_client_gone(f.loop, 1) == PT_LOOP_OK);
    uint64_t t = pt_loop_pause_begin(f.loop);
    if (wait_granted(f.loop, t))
        return 1;
    pt_command_t bye;
    memset(&bye, 0, sizeof bye);
    bye.op = PT_OP_MASS_CANCEL;
    bye.client_id = 1;
    bye.flags = PT_FLAG_DISCONNECT;
    bye.ts_ns = 99;
    EXPECT(pt_loop_execute(f.loop, &bye) == PT_LOOP_OK);
    EXPECT(pt_loop_remove_client(f.loop, 1) == PT_LOOP_OK);
    EXPECT(pt_loop_remove_client(f.loop, 1) == PT_LOOP_ENOCLIENT);
    pt_level_t bids[4];
    size_t nb = 99;
    EXPECT(pt_engine_l2(f.engine, 0, PT_SIDE_BUY, bids, 4, &nb) == PT_OK && nb == 0); /* the engine is ours */
    pt_loop_resume(f.loop);

    EXPECT(pt_journal_committed(&j) == 4); /* 3 orders + the disconnect */
    pt_command_t rec;
    EXPECT(pt_journal_read(&j, 3, &rec) == PT_JOURNAL_OK);
    EXPECT(rec.op == PT_OP_MASS_CANCEL && rec.flags == PT_FLAG_DISCONNECT && rec.client_id == 1);
    if (wait_md(&f.md, md, 3)) /* the three levels emptied */
        return 1;
    for (int i = 0; i < 3; i++)
        EXPECT(md[i].type == PT_EV_BOOK_DELTA && md[i].qty == 0);
    pt_event_t none;
    EXPECT(pt_ring_try_pop(&f.clients[0].evt, &none) == PT_RING_EMPTY); /* the gone client's events dropped */

    pt_command_t c = new_order(2, PT_SIDE_SELL, 1, 500, 5);
    EXPECT(pt_ring_try_push(&f.clients[1].cmd, &c) == PT_RING_OK);
    if (wait_ring(&f.clients[1].evt, ev, 1))
        return 1;
    EXPECT(ev[0].type == PT_EV_ACK && ev[0].cloid == 5);

    /* Client 3 attaches into the freed slot (fresh rings: the old client's memory is reused here). */
    client_mem_t *c1 = &f.clients[0];
    EXPECT(pt_ring_init(c1->cmd_mem, c1->cmd_bytes, 64) == PT_RING_OK);
    EXPECT(pt_ring_init(c1->evt_mem, c1->evt_bytes, 64) == PT_RING_OK);
    EXPECT(pt_ring_attach(c1->cmd_mem, c1->cmd_bytes, &c1->cmd) == PT_RING_OK);
    EXPECT(pt_ring_attach(c1->evt_mem, c1->evt_bytes, &c1->evt) == PT_RING_OK);
    t = pt_loop_pause_begin(f.loop);
    if (wait_granted(f.loop, t))
        return 1;
    EXPECT(pt_loop_add_client(f.loop, 3, c1->cmd_mem, c1->cmd_bytes, c1->evt_mem, c1->evt_bytes) == PT_LOOP_OK);
    pt_loop_resume(f.loop);
    c = new_order(1, PT_SIDE_BUY, 1, 500, 6); /* claims client 1: runs as 3 and trades with client 2 */
    EXPECT(pt_ring_try_push(&c1->cmd, &c) == PT_RING_OK);
    if (wait_ring(&c1->evt, ev, 2))
        return 1;
    EXPECT(ev[0].type == PT_EV_ACK && ev[0].client_id == 3 && ev[1].type == PT_EV_FILL);
    pt_loop_counters_t k = {0};
    double deadline = now_s() + WAIT_S;
    /* Published at the end of the pass that sent the FILL, and read counter by counter (see the gone-client
     * test): wait for all of them. 3 CANCELED + the ACK of the disconnect were dropped. */
    while (k.commands != 6 || k.pauses != 2 || k.clients != 2 || k.dropped != 4) {
        EXPECT(now_s() < deadline);
        EXPECT(pt_loop_control_read(f.control, PT_LOOP_CONTROL_BYTES, &k) == PT_LOOP_OK);
        sched_yield();
    }
    int rc = stop_and_teardown(&f);
    free(jmem);
    return rc;
}

int main(void)
{
    alarm(DEADLINE_S);
    static const test_case_t tests[] = {
        {"events_go_to_their_owners_and_book_and_trades_to_market_data",
         test_events_go_to_their_owners_and_book_and_trades_to_market_data},
        {"a_full_event_ring_stalls_the_loop_and_loses_nothing", test_a_full_event_ring_stalls_the_loop_and_loses_nothing},
        {"a_stop_during_a_stall_ends_the_loop", test_a_stop_during_a_stall_ends_the_loop},
        {"bad_control_blocks_and_duplicate_clients_are_errors", test_bad_control_blocks_and_duplicate_clients_are_errors},
        {"commands_are_journaled_before_their_events_and_a_full_journal_stops_the_loop",
         test_commands_are_journaled_before_their_events_and_a_full_journal_stops_the_loop},
        {"a_gone_client_unstalls_the_loop_and_its_leftover_commands_do_not_run",
         test_a_gone_client_unstalls_the_loop_and_its_leftover_commands_do_not_run},
        {"pause_execute_detach_and_resume", test_pause_execute_detach_and_resume},
        {"a_link_acts_for_its_granted_accounts_only", test_a_link_acts_for_its_granted_accounts_only},
    };
    return run_tests("loop tests", tests, sizeof tests / sizeof tests[0]);
}
