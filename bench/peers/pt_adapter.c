/*
 * pt_adapter.c - this project's engine replaying the mix file through its public C API (pt_engine.h), beside
 * the open-source books' adapters (peers.h has the phases and the result line).
 *
 * The engine is set up as bench/engine_mix.h sets up the project's own benchmark: max_orders 2^20, 2^14 levels
 * a side, one symbol with a 1,000-tick price band around 10,000, and 8 clients with every risk limit on
 * (generous: nothing in the mix comes near them). Each mix op becomes one pt_command_t inside the timed loop,
 * as the C++ adapters turn each op into a call: client = id & 7 (a cancel goes to the order's owner), cloid = id
 * (rising per client), ts_ns = 1 s + 100 ns a command; ADD -> NEW LIMIT GTC, IOC -> NEW LIMIT IOC, CANCEL ->
 * CANCEL. The engine numbers accepted new orders 1, 2, 3... as the mix does (--verify checks every ACK).
 *
 * Events: after every command all of them are read before the next command: every word of every event is
 * added into eight running sums (engine_mix.h's mix_sink_fold, the checksum), then TRADEs (their qty) and
 * REJECTs are counted. Both are the cheapest forms measured: the command built as words composed in registers,
 * or the counts taken without branching on the type, were 2-5% slower on this mix.
 *
 * usage: pt_adapter MIX.bin [--verify | --digest]
 *   --verify  one untimed pass: every ACK carries the mix id, the three figures, pt_engine_check
 *   --digest  one untimed pass: an order-sensitive hash of every event's 64 bytes, to compare two builds
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>

#include "engine_mix.h"
#include "peers.h"
#include "pt_engine.h"

#define NCLIENTS 8           /* client = mix id & (NCLIENTS - 1) */
#define TS0_NS 1000000000ull /* the first command's ts_ns */
#define TS_STEP_NS 100ull    /* ts_ns between commands: 10 M commands/s, as bench/engine_bench.c */

static _Noreturn void die(const char *what, int rc) {
    fprintf(stderr, "pt_adapter: %s failed (%d)\n", what, rc);
    exit(1);
}

static pt_engine_t *engine_new(void) {
    pt_engine_config_t cfg = mix_engine_config();
    pt_engine_t *e;
    int rc = pt_engine_create(&cfg, &e);
    if (rc) die("pt_engine_create", rc);
    pt_symbol_config_t sc = mix_symbol_config(false);
    uint16_t sym;
    if ((rc = pt_engine_add_symbol(e, &sc, &sym))) die("pt_engine_add_symbol", rc);
    pt_client_limits_t lim = mix_client_limits();
    for (uint16_t c = 0; c < NCLIENTS; c++)
        if ((rc = pt_engine_set_client_limits(e, c, &lim))) die("pt_engine_set_client_limits", rc);
    return e;
}

/* The command of mix op o, the i-th of the stream. */
static inline void to_command(pt_command_t *c, const mix_op_t *o, uint64_t i) {
    uint16_t client = (uint16_t)(o->id & (NCLIENTS - 1));
    uint64_t ts_ns = TS0_NS + i * TS_STEP_NS;
    if (o->type == MIX_CANCEL) {
        *c = (pt_command_t){.op = PT_OP_CANCEL, .client_id = client, .ts_ns = ts_ns, .order_id = o->id};
        return;
    }
    *c = (pt_command_t){.op = PT_OP_NEW, .side = o->side ? PT_SIDE_SELL : PT_SIDE_BUY, .client_id = client,
                        .order_type = PT_TYPE_LIMIT, .tif = o->type == MIX_ADD ? PT_TIF_GTC : PT_TIF_IOC,
                        .stp = PT_STP_NONE, .flags = PT_FLAG_HAS_PRICE, .ts_ns = ts_ns, .cloid = o->id,
                        .price = o->price, .qty = o->qty};
}

/* The consumer: eight running sums of every event's words, and the counts. */
typedef struct sink {
    uint64_t acc[8];
    peers_counts_t k;
} sink_t;

static inline void drain(pt_engine_t *e, sink_t *s) {
    size_t n;
    const pt_event_t *ev = pt_engine_events(e, &n);
    mix_sink_fold(s->acc, ev, n);
    for (size_t j = 0; j < n; j++) {
        if (ev[j].type == PT_EV_TRADE) {
            s->k.trades++;
            s->k.lots += (uint64_t)ev[j].qty;
        } else if (__builtin_expect(ev[j].type == PT_EV_REJECT, 0)) {
            s->k.rejects++;
        }
    }
    s->k.events += n;
    pt_engine_clear_events(e);
}

static uint64_t live_orders(const pt_engine_t *e) {
    pt_engine_stats_t st;
    pt_engine_stats(e, &st);
    return st.live_orders;
}

__attribute__((noinline)) void pt_run_ops(pt_engine_t *e, const mix_op_t *ops, size_t from, size_t to, sink_t *s) {
    for (size_t i = from; i < to; i++) {
        pt_command_t c;
        to_command(&c, &ops[i], i);
        int rc = pt_engine_submit(e, &c);
        if (__builtin_expect(rc != 0, 0)) die("pt_engine_submit", rc);
        drain(e, s);
    }
}

__attribute__((noinline)) void pt_run_timed(pt_engine_t *e, const mix_op_t *ops, size_t from, size_t to, sink_t *s,
                                            hist_t *h) {
    for (size_t i = from; i < to; i++) {
        uint64_t t0 = peers_tsc();
        pt_command_t c;
        to_command(&c, &ops[i], i);
        int rc = pt_engine_submit(e, &c);
        if (__builtin_expect(rc != 0, 0)) die("pt_engine_submit", rc);
        drain(e, s);
        hist_record(h, peers_tsc() - t0);
    }
}

/* --verify and --digest: one untimed pass over the whole stream. */
static int check_pass(const mix_t *m, bool digest) {
    pt_engine_t *e = engine_new();
    sink_t s;
    memset(&s, 0, sizeof s);
    uint64_t bad_ids = 0, hash = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < m->n; i++) {
        pt_command_t c;
        to_command(&c, &m->ops[i], i);
        int rc = pt_engine_submit(e, &c);
        if (rc) die("pt_engine_submit", rc);
        size_t n;
        const pt_event_t *ev = pt_engine_events(e, &n);
        for (size_t j = 0; j < n; j++) {
            if (ev[j].type == PT_EV_ACK && ev[j].acked_op == PT_OP_NEW && ev[j].order_id != m->ops[i].id) bad_ids++;
            uint64_t w[8];
            memcpy(w, &ev[j], sizeof w);
            for (int k = 0; k < 8; k++) hash = (hash ^ w[k]) * 0x100000001b3ull;
        }
        drain(e, &s);
    }
    uint64_t live = live_orders(e);
    int check = pt_engine_check(e);
    uint64_t state = pt_engine_state_hash(e);
    pt_engine_destroy(e);
    int ok = bad_ids == 0 && check == 0 && peers_ok(m, &s.k, live);
    if (digest)
        printf("DIGEST engine=proptrade events=%" PRIu64 " event_digest=%016" PRIx64 " state_hash=%016" PRIx64 "\n",
               s.k.events, hash, state);
    else
        printf("VERIFY engine=proptrade ok=%d id_mismatches=%" PRIu64 " trades=%" PRIu64 " lots=%" PRIu64
               " live=%" PRIu64 " rejects=%" PRIu64 " events=%" PRIu64 " pt_engine_check=%d\n",
               ok, bad_ids, s.k.trades, s.k.lots, live, s.k.rejects, s.k.events, check);
    return ok ? 0 : 1;
}

/* A fresh engine with the prefill in, untimed. */
static pt_engine_t *prefilled(const mix_t *m, sink_t *s) {
    pt_engine_t *e = engine_new();
    memset(s, 0, sizeof *s);
    pt_run_ops(e, m->ops, 0, m->h.n_prefill, s);
    return e;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--verify") && strcmp(argv[2], "--digest"))) {
        fprintf(stderr, "usage: pt_adapter MIX.bin [--verify | --digest]\n");
        return 2;
    }
    mix_t m = mix_load(argv[1]);
    if (argc == 3) return check_pass(&m, !strcmp(argv[2], "--digest"));
    size_t pre = m.h.n_prefill;
    uint64_t ns0 = mono_ns(), tsc0 = peers_tsc();
    sink_t s;

    pt_engine_t *e = prefilled(&m, &s); /* warm-up */
    pt_run_ops(e, m.ops, pre, peers_warmup_end(&m), &s);
    pt_engine_destroy(e);

    peers_pass_t tp, lat;
    e = prefilled(&m, &s);
    peers_usage_t u0 = peers_usage_now();
    uint64_t t0 = mono_ns();
    pt_run_ops(e, m.ops, pre, m.n, &s);
    uint64_t t1 = mono_ns();
    peers_usage_t u1 = peers_usage_now();
    tp.ns = t1 - t0;
    tp.used = (peers_usage_t){u1.cpu_ns - u0.cpu_ns, u1.invol_cs - u0.invol_cs};
    tp.live = live_orders(e);
    tp.k = s.k;
    tp.k.checksum = mix_sink_checksum(s.acc);
    pt_engine_destroy(e);

    hist_t *h = calloc(1, sizeof *h);
    if (!h) die("calloc", -1);
    e = prefilled(&m, &s);
    t0 = mono_ns();
    pt_run_timed(e, m.ops, pre, m.n, &s, h);
    lat.ns = mono_ns() - t0;
    lat.live = live_orders(e);
    lat.k = s.k;
    lat.k.checksum = mix_sink_checksum(s.acc);
    pt_engine_destroy(e);

    double ns_per_tick = (double)(mono_ns() - ns0) / (double)(peers_tsc() - tsc0);
    peers_print("proptrade", &m, &tp, &lat, h, ns_per_tick);
    free(h);
    free(m.ops);
    return 0;
}
