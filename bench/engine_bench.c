/*
 * engine_bench.c - throughput and per-op latency of the C matching engine on a
 * fixed, seeded market-making op mix (docs/BENCHMARKS.md has the results log).
 *
 * The mix (the acceptance benchmark of the engine issue):
 *   - one symbol; a mid of 10,000 ticks that moves 1 tick (up or down, 50/50)
 *     with probability 0.01 before each op;
 *   - 5,000 resting orders pre-filled at mid +/- 1..50 ticks (untimed);
 *   - then N ops (default 2,000,000):
 *       55% passive GTC limits 1..20 ticks from the mid, never crossing,
 *       35% cancels of a uniformly random live order (by its owner),
 *       10% IOC limits 2 ticks through the opposite touch, sized 50..150;
 *     other sizes 1..100 lots; sides 50/50; 8 clients (uniform), each new
 *     order with a nonzero cloid unique per client; STP mode NONE.
 *   - risk on: every client limit is enabled (max order qty, max open orders,
 *     max position, rate limit, max loss) but generous, and the symbol has a
 *     1,000-tick price band, so nothing is rejected (the generator checks).
 *   - every event is consumed: after each command the bench folds all 8 words
 *     of every event into a checksum (--sink checksum, the default) or copies
 *     the events into a 1 MiB output ring (--sink copy), then clears the buffer.
 *
 * How the op stream is generated. Cancels need "a uniformly random live
 * order" and IOCs need "the opposite touch", so the generator must know the
 * book. It runs the stream once through a generator engine (untimed), one
 * command at a time: it reads the touch with pt_engine_l1() before building
 * each command and keeps a model of the live orders (id -> index into a dense
 * array, for O(1) uniform picks and removal) from the events: an ACK of a
 * passive order adds it, a FILL or CANCELED with leaves 0 removes it. Order ids
 * are engine-assigned and deterministic (1, 2, 3... per accepted NEW), so the
 * recorded command array is valid for any fresh engine. The timed runs replay
 * that array on fresh engines, and must reproduce the generator run's event
 * checksum and pt_engine_state_hash() (checked, printed as "replay matches").
 * "Never crossing": a passive buy is priced k ticks below min(mid, best ask),
 * a sell k ticks above max(mid, best bid), k in 1..20: k ticks from the mid
 * unless the book has drifted through the mid, and then k ticks off the touch.
 * The IOC buy is priced at best ask + 2 (sell: best bid - 2). With seed 42
 * the book grows from 5,000 to 33,459 live orders (the issue expected about
 * 20k: the growth is the small difference between 0.55 adds and ~0.54
 * removals per op, so details of the mix move it a lot).
 *
 * Phases, in order (all on one core, pinned with sched_setaffinity: --core,
 * default the last; every timing uses CLOCK_MONOTONIC or the TSC calibrated
 * against it):
 *   1. generate (untimed) and optionally --dump-commands FILE: the raw 64-byte
 *      pt_command_t array, prefill first (numpy reads it with COMMAND_DTYPE);
 *   2. warm-up: a throwaway engine runs the prefill and the first --warmup ops;
 *   3. throughput: a fresh engine, prefill untimed, then the ops with no
 *      per-op timing: ops/s from two clock reads around the loop (plus the
 *      CPU time, page faults and involuntary context switches of the pass);
 *      an untimed replay of the whole stream that must match the generator's
 *      events; and the same ops through pt_engine_submit_batch() in chunks
 *      of --chunk;
 *   4. latency: a fresh engine, the same ops, each pt_engine_submit() between
 *      two rdtsc reads, recorded in a log-linear histogram per op type;
 *   5. timer overhead: the same two rdtsc reads and recording around nothing.
 * --callgrind runs one untimed pass of the per-op loop only, through one
 * noinline function per op kind, so that `valgrind --tool=callgrind
 * --toggle-collect=bench_run_ops_by_kind` counts exactly that loop, per kind
 * too (bench/run_engine_bench.py --callgrind does this).
 *
 * Usage: engine_bench [--ops N] [--prefill N] [--seed S] [--clients N]
 *        [--core C] [--warmup N] [--chunk N] [--sink checksum|copy]
 *        [--commit STR] [--dump-commands FILE] [--json FILE] [--callgrind] [--no-risk]
 *        [--max-orders N] [--max-levels N] [--event-capacity N]   (engine shape;
 *        defaults: those of c_engine.EngineConfig)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "engine_mix.h"
#include "pointer_chase.h"
#include "pt_engine.h"

/* ---- parameters ------------------------------------------------------- */

#define MID_MOVE_PER_MILLE 10        /* 0.01 per op */
#define PREFILL_MAX_TICKS 50
#define PASSIVE_MAX_TICKS 20
#define IOC_THROUGH_TICKS 2
#define PASSIVE_PCT 55
#define CANCEL_PCT 35                /* IOC: the remaining 10 */
#define QTY_MIN 1
#define QTY_MAX 100
#define IOC_QTY_MIN 50
#define IOC_QTY_MAX 150
#define TS0_NS 1000000000ull         /* command time of the first command */
#define TS_STEP_NS 100ull            /* 10 M commands per second of command time */
#define OUT_RING_EVENTS (1u << 14)   /* --sink copy: 1 MiB */
#define PROBE_BYTES (4u << 20)       /* the memory probe: past the ~2 MiB this VM caches in its slow mode */
#define PROBE_LOADS 200000
#define CORE_PASSES 5000             /* the core probe: 20 M elements, ~10 ms */

enum op_kind { K_PASSIVE = 0, K_CANCEL = 1, K_IOC = 2, K_COUNT = 3 };
static const char *const KIND_NAME[K_COUNT] = {"passive", "cancel", "ioc"};

typedef struct params {
    uint64_t ops, prefill, seed, warmup;
    uint32_t clients, chunk;
    int core;
    bool sink_copy, callgrind;
    bool no_risk; /* --no-risk: no client limits and no price band (what the risk layer costs) */
    const char *commit, *dump_path, *json_path;
    pt_engine_config_t cfg;
} params_t;

/* ---- small helpers ------------------------------------------------------ */

static _Noreturn void die(const char *what, int rc) {
    fprintf(stderr, "engine_bench: %s failed (%d)\n", what, rc);
    exit(1);
}

/* What the machine did to a timed pass: page faults, involuntary context
 * switches (another process took the core), and the CPU time the pass got. */
typedef struct disturb {
    long faults, preempted;
    uint64_t cpu_ns;
} disturb_t;

static disturb_t disturb_now(void) {
    struct rusage ru;
    struct timespec ts;
    getrusage(RUSAGE_SELF, &ru);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (disturb_t){.faults = ru.ru_minflt + ru.ru_majflt, .preempted = ru.ru_nivcsw,
                       .cpu_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec};
}

static disturb_t disturb_since(disturb_t d0) {
    disturb_t d1 = disturb_now();
    return (disturb_t){.faults = d1.faults - d0.faults, .preempted = d1.preempted - d0.preempted,
                       .cpu_ns = d1.cpu_ns - d0.cpu_ns};
}

/* xoshiro256** seeded by splitmix64: fast, and the same stream everywhere. */
typedef struct rng { uint64_t s[4]; } rng_t;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng_t *r) {
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n) (Lemire's multiply-shift; the bias at n << 2^32 is nil). */
static uint64_t rng_below(rng_t *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static int64_t rng_range(rng_t *r, int64_t lo, int64_t hi) { return lo + (int64_t)rng_below(r, (uint64_t)(hi - lo + 1)); }

/* ---- event sink: every field of every event is read --------------------- */

typedef struct sink {
    uint64_t acc[8];        /* per-word sums over all events */
    uint64_t events;
    uint64_t by_kind[3];    /* --callgrind: commands per op kind (also keeps the per-kind functions distinct) */
    pt_event_t *ring;       /* --sink copy */
    uint32_t ring_pos;
} sink_t;

static inline void sink_drain(pt_engine_t *e, sink_t *s) {
    size_t n;
    pt_event_t *ev = pt_engine_events(e, &n);
    if (s->ring) {
        for (size_t i = 0; i < n; i++) {
            s->ring[s->ring_pos] = ev[i];
            s->ring_pos = (s->ring_pos + 1) & (OUT_RING_EVENTS - 1);
        }
    } else {
        mix_sink_fold(s->acc, ev, n);
    }
    s->events += n;
    pt_engine_clear_events(e);
}

static uint64_t sink_checksum(const sink_t *s) { return mix_sink_checksum(s->acc); }

/* ---- engine setup ------------------------------------------------------- */

static pt_engine_t *bench_engine(const params_t *p) {
    pt_engine_t *e;
    int rc = pt_engine_create(&p->cfg, &e);
    if (rc) die("pt_engine_create", rc);
    pt_symbol_config_t sc = mix_symbol_config(p->no_risk);
    uint16_t sym;
    if ((rc = pt_engine_add_symbol(e, &sc, &sym))) die("pt_engine_add_symbol", rc);
    pt_client_limits_t lim = mix_client_limits();
    for (uint16_t c = 0; c < p->clients && !p->no_risk; c++)
        if ((rc = pt_engine_set_client_limits(e, c, &lim))) die("pt_engine_set_client_limits", rc);
    return e;
}

/* Runs commands untimed, draining events (setup: the prefill). */
static void run_untimed(pt_engine_t *e, const pt_command_t *cmds, size_t n, sink_t *s) {
    for (size_t i = 0; i < n; i++) {
        int rc = pt_engine_submit(e, &cmds[i]);
        if (rc) die("pt_engine_submit", rc);
        sink_drain(e, s);
    }
}

/* ---- generation --------------------------------------------------------- */

typedef struct live_model {
    uint64_t *ids;     /* dense array of live order ids */
    uint16_t *owner;   /* by order id */
    uint32_t *pos;     /* by order id: index in ids, UINT32_MAX if not live */
    size_t n, max_id;
} live_model_t;

static void live_add(live_model_t *m, uint64_t id, uint16_t owner) {
    if (id >= m->max_id) die("live_add: order id beyond the expected range", (int)id);
    m->pos[id] = (uint32_t)m->n;
    m->owner[id] = owner;
    m->ids[m->n++] = id;
}

static void live_remove(live_model_t *m, uint64_t id) {
    if (id >= m->max_id || m->pos[id] == UINT32_MAX) return;  /* an IOC taker, never live */
    uint32_t i = m->pos[id];
    uint64_t last = m->ids[--m->n];
    m->ids[i] = last;
    m->pos[last] = i;
    m->pos[id] = UINT32_MAX;
}

typedef struct gen_result {
    uint64_t checksum, state_hash, live_end, events, by_type[9], rejects, max_live;
} gen_result_t;

static bool side_empty(const pt_level_t *l) { return l->order_count == 0 || l->qty == 0; }

static pt_command_t new_cmd(uint16_t client, uint8_t side, uint8_t tif, int64_t price, int64_t qty,
                            uint64_t cloid, uint64_t ts) {
    pt_command_t c;
    memset(&c, 0, sizeof c);
    c.op = PT_OP_NEW; c.side = side; c.symbol_id = 0; c.client_id = client;
    c.order_type = PT_TYPE_LIMIT; c.tif = tif; c.stp = PT_STP_NONE; c.flags = PT_FLAG_HAS_PRICE;
    c.ts_ns = ts; c.cloid = cloid; c.price = price; c.qty = qty;
    return c;
}

/*
 * Builds cmds[0 .. prefill+ops) and kinds[0 .. ops) by running the stream
 * through its own engine, one command at a time (see the file header).
 */
static void generate(const params_t *p, pt_command_t *cmds, uint8_t *kinds, gen_result_t *g) {
    rng_t r;
    rng_seed(&r, p->seed);
    pt_engine_t *e = bench_engine(p);
    sink_t s;
    memset(&s, 0, sizeof s);
    memset(g, 0, sizeof *g);
    live_model_t m = {0};
    m.max_id = p->prefill + p->ops + 2;
    m.ids = malloc(m.max_id * sizeof *m.ids);
    m.owner = malloc(m.max_id * sizeof *m.owner);
    m.pos = malloc(m.max_id * sizeof *m.pos);
    uint64_t *next_cloid = calloc(p->clients, sizeof *next_cloid);
    if (!m.ids || !m.owner || !m.pos || !next_cloid) die("malloc", -1);
    memset(m.pos, 0xff, m.max_id * sizeof *m.pos);

    int64_t mid = MID0_TICKS;
    size_t total = p->prefill + p->ops;
    for (size_t i = 0; i < total; i++) {
        bool in_ops = i >= p->prefill;
        uint64_t ts = TS0_NS + i * TS_STEP_NS;
        uint16_t client = (uint16_t)rng_below(&r, p->clients);
        uint8_t side = rng_below(&r, 2) ? PT_SIDE_SELL : PT_SIDE_BUY;
        int kind = K_PASSIVE;
        pt_command_t c;
        if (in_ops) {
            if (rng_below(&r, 1000) < MID_MOVE_PER_MILLE) mid += rng_below(&r, 2) ? 1 : -1;
            uint64_t u = rng_below(&r, 100);
            kind = u < PASSIVE_PCT ? K_PASSIVE : u < PASSIVE_PCT + CANCEL_PCT ? K_CANCEL : K_IOC;
            if (kind == K_CANCEL && m.n == 0) kind = K_PASSIVE;  /* never happens with a 5k prefill */
        }
        if (!in_ops) {
            int64_t k = rng_range(&r, 1, PREFILL_MAX_TICKS);
            int64_t price = side == PT_SIDE_BUY ? mid - k : mid + k;
            c = new_cmd(client, side, PT_TIF_GTC, price, rng_range(&r, QTY_MIN, QTY_MAX), ++next_cloid[client], ts);
        } else {
            pt_level_t bid, ask;
            int rc = pt_engine_l1(e, 0, &bid, &ask);
            if (rc) die("pt_engine_l1", rc);
            if (kind == K_PASSIVE) {
                int64_t k = rng_range(&r, 1, PASSIVE_MAX_TICKS), price;
                if (side == PT_SIDE_BUY) price = (!side_empty(&ask) && ask.price < mid ? ask.price : mid) - k;
                else price = (!side_empty(&bid) && bid.price > mid ? bid.price : mid) + k;
                c = new_cmd(client, side, PT_TIF_GTC, price, rng_range(&r, QTY_MIN, QTY_MAX), ++next_cloid[client], ts);
            } else if (kind == K_CANCEL) {
                uint64_t id = m.ids[rng_below(&r, m.n)];
                memset(&c, 0, sizeof c);
                c.op = PT_OP_CANCEL; c.client_id = m.owner[id]; c.symbol_id = 0; c.ts_ns = ts; c.order_id = id;
            } else {
                int64_t price;
                if (side == PT_SIDE_BUY) price = (side_empty(&ask) ? mid : ask.price) + IOC_THROUGH_TICKS;
                else price = (side_empty(&bid) ? mid : bid.price) - IOC_THROUGH_TICKS;
                c = new_cmd(client, side, PT_TIF_IOC, price, rng_range(&r, IOC_QTY_MIN, IOC_QTY_MAX),
                            ++next_cloid[client], ts);
            }
            kinds[i - p->prefill] = (uint8_t)kind;
        }
        cmds[i] = c;

        int rc = pt_engine_submit(e, &c);
        if (rc) die("pt_engine_submit (generator)", rc);
        size_t n;
        pt_event_t *ev = pt_engine_events(e, &n);
        for (size_t j = 0; j < n; j++) {
            const pt_event_t *x = &ev[j];
            if (x->type < 9) g->by_type[x->type]++;
            if (x->type == PT_EV_REJECT) {
                if (g->rejects++ < 5)
                    fprintf(stderr, "engine_bench: command %zu rejected, reason %u\n", i, (unsigned)x->reason);
            } else if (x->type == PT_EV_ACK && x->acked_op == PT_OP_NEW && c.tif == PT_TIF_GTC) {
                live_add(&m, x->order_id, x->client_id);  /* passive: never crosses, rests whole */
            } else if ((x->type == PT_EV_FILL || x->type == PT_EV_CANCELED) && x->leaves == 0) {
                live_remove(&m, x->order_id);
            }
        }
        sink_drain(e, &s);
        if (m.n > g->max_live) g->max_live = m.n;
    }
    pt_engine_stats_t st;
    pt_engine_stats(e, &st);
    if (st.live_orders != m.n) {
        fprintf(stderr, "engine_bench: live order model (%zu) != engine (%" PRIu64 ")\n", m.n, st.live_orders);
        exit(1);
    }
    if (g->rejects) {
        fprintf(stderr, "engine_bench: %" PRIu64 " commands rejected; the mix must run reject-free\n", g->rejects);
        exit(1);
    }
    g->checksum = sink_checksum(&s);
    g->state_hash = pt_engine_state_hash(e);
    g->live_end = m.n;
    g->events = s.events;
    pt_engine_destroy(e);
    free(m.ids); free(m.owner); free(m.pos); free(next_cloid);
}

/* ---- timed loops (noinline: callgrind --toggle-collect names them) -------- */

__attribute__((noinline)) void bench_run_ops(pt_engine_t *e, const pt_command_t *cmds, size_t n, sink_t *s) {
    for (size_t i = 0; i < n; i++) {
        int rc = pt_engine_submit(e, &cmds[i]);
        if (__builtin_expect(rc != 0, 0)) die("pt_engine_submit", rc);
        sink_drain(e, s);
    }
}

__attribute__((noinline)) void bench_run_batch(pt_engine_t *e, const pt_command_t *cmds, size_t n, size_t chunk,
                                               sink_t *s) {
    size_t i = 0;
    while (i < n) {
        size_t want = n - i < chunk ? n - i : chunk, done = 0;
        int rc = pt_engine_submit_batch(e, &cmds[i], want, &done);
        if (rc && rc != PT_E_FULL) die("pt_engine_submit_batch", rc);
        if (done == 0) die("pt_engine_submit_batch made no progress on an empty event buffer", rc);
        i += done;
        sink_drain(e, s);
    }
}

__attribute__((noinline)) void bench_run_latency(pt_engine_t *e, const pt_command_t *cmds, const uint8_t *kinds,
                                                 size_t n, sink_t *s, hist_t *h) {
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = ticks_now();
        int rc = pt_engine_submit(e, &cmds[i]);
        uint64_t t1 = ticks_now();
        if (__builtin_expect(rc != 0, 0)) die("pt_engine_submit", rc);
        hist_record(&h[kinds[i]], t1 - t0);
        sink_drain(e, s);
    }
}

/*
 * --callgrind: the per-op loop with one noinline function per op kind, so that
 * callgrind's inclusive counts give instructions per op for each kind too
 * (the dispatch adds a few instructions per op; the timed loops never use it).
 * Their bodies differ (by_kind) so that -flto's identical code folding keeps
 * three functions.
 */
__attribute__((noinline)) void bench_op_passive(pt_engine_t *e, const pt_command_t *c, sink_t *s) {
    s->by_kind[K_PASSIVE]++;
    int rc = pt_engine_submit(e, c);
    if (__builtin_expect(rc != 0, 0)) die("pt_engine_submit", rc);
    sink_drain(e, s);
}

__attribute__((noinline)) void bench_op_cancel(pt_engine_t *e, const pt_command_t *c, sink_t *s) {
    s->by_kind[K_CANCEL]++;
    int rc = pt_engine_submit(e, c);
    if (__builtin_expect(rc != 0, 0)) die("pt_engine_submit", rc);
    sink_drain(e, s);
}

__attribute__((noinline)) void bench_op_ioc(pt_engine_t *e, const pt_command_t *c, sink_t *s) {
    s->by_kind[K_IOC]++;
    int rc = pt_engine_submit(e, c);
    if (__builtin_expect(rc != 0, 0)) die("pt_engine_submit", rc);
    sink_drain(e, s);
}

__attribute__((noinline)) void bench_run_ops_by_kind(pt_engine_t *e, const pt_command_t *cmds, const uint8_t *kinds,
                                                     size_t n, sink_t *s) {
    for (size_t i = 0; i < n; i++) {
        if (kinds[i] == K_PASSIVE) bench_op_passive(e, &cmds[i], s);
        else if (kinds[i] == K_CANCEL) bench_op_cancel(e, &cmds[i], s);
        else bench_op_ioc(e, &cmds[i], s);
    }
}

/* The same two clock reads and recording around no work: the timer's own cost. */
__attribute__((noinline)) void bench_run_overhead(size_t n, hist_t *h) {
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = ticks_now();
        __asm__ volatile("" ::: "memory");
        uint64_t t1 = ticks_now();
        hist_record(h, t1 - t0);
    }
}

/* ---- reporting ---------------------------------------------------------- */

typedef struct lat_report {
    double pct_ns[NPCTS], max_ns, mean_ns;
    uint64_t n;
} lat_report_t;

static lat_report_t lat_report(const hist_t *h, double ns_per_tick) {
    lat_report_t r;
    for (int i = 0; i < NPCTS; i++) r.pct_ns[i] = (double)hist_percentile(h, PCTS[i]) * ns_per_tick;
    r.max_ns = (double)h->max * ns_per_tick;
    r.mean_ns = h->n ? (double)h->sum / (double)h->n * ns_per_tick : 0;
    r.n = h->n;
    return r;
}

static void print_lat(const char *name, const lat_report_t *r) {
    printf("  %-9s %9" PRIu64 " %7.0f %7.0f %7.0f %7.0f %8.0f %8.0f %9.0f\n", name, r->n, r->mean_ns, r->pct_ns[0],
           r->pct_ns[1], r->pct_ns[2], r->pct_ns[3], r->pct_ns[4], r->max_ns);
}

static void json_lat(FILE *f, const char *name, const lat_report_t *r, bool comma) {
    fprintf(f, "    \"%s\": {\"n\": %" PRIu64 ", \"mean_ns\": %.1f, \"p50_ns\": %.1f, \"p90_ns\": %.1f, \"p99_ns\": %.1f, "
               "\"p99_9_ns\": %.1f, \"p99_99_ns\": %.1f, \"max_ns\": %.1f}%s\n",
            name, r->n, r->mean_ns, r->pct_ns[0], r->pct_ns[1], r->pct_ns[2], r->pct_ns[3], r->pct_ns[4], r->max_ns,
            comma ? "," : "");
}

static void usage(void) {
    fprintf(stderr,
            "usage: engine_bench [--ops N] [--prefill N] [--seed S] [--clients N] [--core C] [--warmup N]\n"
            "                    [--chunk N] [--sink checksum|copy] [--commit STR] [--dump-commands FILE]\n"
            "                    [--json FILE] [--callgrind] [--no-risk] [--max-orders N] [--max-levels N]\n"
            "                    [--event-capacity N]\n");
    exit(2);
}

static uint64_t parse_u64(const char *s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || end == s) usage();
    return v;
}

int main(int argc, char **argv) {
    params_t p = {
        .ops = 2000000, .prefill = 5000, .seed = 42, .warmup = 500000, .clients = 8, .chunk = 4096, .core = -1,
        .commit = "unknown",
        .cfg = mix_engine_config(),
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--callgrind")) p.callgrind = true;
        else if (!strcmp(a, "--no-risk")) p.no_risk = true;
        else if (!more) usage();
        else if (!strcmp(a, "--ops")) p.ops = parse_u64(argv[++i]);
        else if (!strcmp(a, "--prefill")) p.prefill = parse_u64(argv[++i]);
        else if (!strcmp(a, "--seed")) p.seed = parse_u64(argv[++i]);
        else if (!strcmp(a, "--clients")) p.clients = (uint32_t)parse_u64(argv[++i]);
        else if (!strcmp(a, "--core")) p.core = (int)parse_u64(argv[++i]);
        else if (!strcmp(a, "--warmup")) p.warmup = parse_u64(argv[++i]);
        else if (!strcmp(a, "--chunk")) p.chunk = (uint32_t)parse_u64(argv[++i]);
        else if (!strcmp(a, "--commit")) p.commit = argv[++i];
        else if (!strcmp(a, "--max-orders")) p.cfg.max_orders = (uint32_t)parse_u64(argv[++i]);
        else if (!strcmp(a, "--max-levels")) p.cfg.max_levels_per_side = (uint32_t)parse_u64(argv[++i]);
        else if (!strcmp(a, "--event-capacity")) p.cfg.event_capacity = (uint32_t)parse_u64(argv[++i]);
        else if (!strcmp(a, "--dump-commands")) p.dump_path = argv[++i];
        else if (!strcmp(a, "--json")) p.json_path = argv[++i];
        else if (!strcmp(a, "--sink")) {
            const char *v = argv[++i];
            if (!strcmp(v, "copy")) p.sink_copy = true;
            else if (strcmp(v, "checksum")) usage();
        } else usage();
    }
    if (p.clients < 1 || p.clients > p.cfg.max_clients || p.chunk < 1) usage();
    if (p.warmup > p.ops) p.warmup = p.ops;

    /* Pin first, so generation and warm-up already run where the timed loops will. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (p.core < 0) p.core = (int)(ncpu > 0 ? ncpu - 1 : 0);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p.core, &set);
    if (sched_setaffinity(0, sizeof set, &set)) {
        perror("engine_bench: sched_setaffinity");
        return 1;
    }
    uint64_t cal_ns0 = mono_ns(), cal_tsc0 = ticks_now();

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    printf("engine_bench  commit %s\n", p.commit);
    printf("cpu           %s (%ld online), pinned to core %d\n", cpu, ncpu, p.core);
    printf("compiler      %s\n", __VERSION__);
    printf("mix           seed %" PRIu64 ", %" PRIu64 " ops after %" PRIu64 " prefill orders, %u clients; "
           "%d%% passive / %d%% cancel / %d%% IOC; mid %d moving 1 tick w.p. %.2f\n",
           p.seed, p.ops, p.prefill, p.clients, PASSIVE_PCT, CANCEL_PCT, 100 - PASSIVE_PCT - CANCEL_PCT, MID0_TICKS,
           MID_MOVE_PER_MILLE / 1000.0);
    printf("engine        max_orders %u, max_levels_per_side %u, max_symbols %u, max_clients %u, event_capacity %u "
           "(0 = default)\n",
           p.cfg.max_orders, p.cfg.max_levels_per_side, p.cfg.max_symbols, p.cfg.max_clients, p.cfg.event_capacity);
    if (p.no_risk)
        printf("risk          off (--no-risk): no client limits, no price band\n");
    else
        printf("risk          on: max_order_qty %d, max_open_orders %d, max_position %lld, rate %d/s burst %d, "
               "max_loss %lld; band %d ticks\n",
               LIM_MAX_ORDER_QTY, LIM_MAX_OPEN_ORDERS, (long long)LIM_MAX_POSITION, LIM_RATE_PER_S, LIM_RATE_BURST,
               (long long)LIM_MAX_LOSS, SYM_BAND_TICKS);
    printf("event sink    %s, after every command\n", p.sink_copy ? "copy to a 1 MiB ring" : "sum of all 8 words");

    size_t total = p.prefill + p.ops;
    pt_command_t *cmds = aligned_alloc(64, total * sizeof *cmds + 64);
    uint8_t *kinds = malloc(p.ops + 1);
    pt_event_t *ring = p.sink_copy ? aligned_alloc(64, OUT_RING_EVENTS * sizeof(pt_event_t)) : NULL;
    if (!cmds || !kinds || (p.sink_copy && !ring)) die("malloc", -1);
    if (ring) memset(ring, 0, OUT_RING_EVENTS * sizeof(pt_event_t));

    uint64_t t0 = mono_ns();
    gen_result_t g;
    generate(&p, cmds, kinds, &g);
    uint64_t kind_n[K_COUNT] = {0};
    for (size_t i = 0; i < p.ops; i++) kind_n[kinds[i]]++;
    printf("generated     %.3f s (untimed): %" PRIu64 " passive, %" PRIu64 " cancel, %" PRIu64 " IOC; %" PRIu64
           " events (%" PRIu64 " fills, %" PRIu64 " trades), 0 rejects; live orders at end %" PRIu64
           " (max %" PRIu64 ")\n",
           (double)(mono_ns() - t0) / 1e9, kind_n[K_PASSIVE], kind_n[K_CANCEL], kind_n[K_IOC], g.events,
           g.by_type[PT_EV_FILL], g.by_type[PT_EV_TRADE], g.live_end, g.max_live);

    if (p.dump_path) {
        FILE *f = fopen(p.dump_path, "wb");
        if (!f || fwrite(cmds, sizeof *cmds, total, f) != total || fclose(f)) {
            perror("engine_bench: --dump-commands");
            return 1;
        }
        printf("dumped        %zu commands (%zu prefill first) to %s\n", total, (size_t)p.prefill, p.dump_path);
    }

    const pt_command_t *ops = cmds + p.prefill;
    sink_t s;
    pt_engine_t *e;

    if (p.callgrind) {
        /* One pass: callgrind --toggle-collect=bench_run_ops_by_kind counts only it. */
        e = bench_engine(&p);
        memset(&s, 0, sizeof s);
        run_untimed(e, cmds, p.prefill, &s);
        memset(&s, 0, sizeof s);
        bench_run_ops_by_kind(e, ops, kinds, p.ops, &s);
        pt_engine_stats_t st;
        pt_engine_stats(e, &st);
        printf("callgrind     %" PRIu64 " ops through bench_run_ops_by_kind (%" PRIu64 " passive, %" PRIu64
               " cancel, %" PRIu64 " ioc); live orders at end %" PRIu64 "\n",
               p.ops, kind_n[K_PASSIVE], kind_n[K_CANCEL], kind_n[K_IOC], st.live_orders);
        pt_engine_destroy(e);
        return 0;
    }

    /* Warm-up: code, branch predictors, allocator; a throwaway engine. */
    t0 = mono_ns();
    e = bench_engine(&p);
    memset(&s, 0, sizeof s);
    s.ring = ring;
    run_untimed(e, cmds, p.prefill, &s);
    bench_run_ops(e, ops, p.warmup, &s);
    pt_engine_destroy(e);
    double warm_s = (double)(mono_ns() - t0) / 1e9;
    printf("warm-up       %.3f s: prefill + first %" PRIu64 " ops on a throwaway engine\n", warm_s, p.warmup);

    /* This shared VM's mode: what a dependent miss over 4 MiB costs, before and after the timed passes. */
    double probe_before = chase_probe(PROBE_BYTES, true, PROBE_LOADS), core_before = core_probe(CORE_PASSES);

    /* Throughput: no per-op timing. */
    e = bench_engine(&p);
    memset(&s, 0, sizeof s);
    s.ring = ring;
    run_untimed(e, cmds, p.prefill, &s);
    disturb_t d0 = disturb_now();
    t0 = mono_ns();
    bench_run_ops(e, ops, p.ops, &s);
    uint64_t t1 = mono_ns();
    disturb_t tp_d = disturb_since(d0);
    double tp_s = (double)(t1 - t0) / 1e9, tp_ops = (double)p.ops / tp_s;
    double tp_cpu_ops = (double)p.ops / ((double)tp_d.cpu_ns / 1e9);
    pt_engine_stats_t st;
    pt_engine_stats(e, &st);
    uint64_t live_end = st.live_orders;
    bool replay_ok = st.live_orders == g.live_end && pt_engine_state_hash(e) == g.state_hash;
    int check_rc = pt_engine_check(e);
    pt_engine_destroy(e);

    /* The event checksum of the whole stream (prefill included) must match the generator's (untimed). */
    {
        pt_engine_t *e2 = bench_engine(&p);
        sink_t s2;
        memset(&s2, 0, sizeof s2);
        run_untimed(e2, cmds, total, &s2);
        replay_ok = replay_ok && sink_checksum(&s2) == g.checksum && s2.events == g.events;
        pt_engine_destroy(e2);
    }

    /* Throughput through pt_engine_submit_batch, chunks of --chunk. */
    e = bench_engine(&p);
    memset(&s, 0, sizeof s);
    s.ring = ring;
    run_untimed(e, cmds, p.prefill, &s);
    t0 = mono_ns();
    bench_run_batch(e, ops, p.ops, p.chunk, &s);
    t1 = mono_ns();
    double batch_ops = (double)p.ops / ((double)(t1 - t0) / 1e9);
    pt_engine_destroy(e);

    /* Latency: rdtsc around each pt_engine_submit. */
    hist_t *h = calloc(K_COUNT + 2, sizeof *h);  /* per kind, all, overhead */
    if (!h) die("calloc", -1);
    e = bench_engine(&p);
    memset(&s, 0, sizeof s);
    s.ring = ring;
    run_untimed(e, cmds, p.prefill, &s);
    uint64_t cal_ns1 = mono_ns(), cal_tsc1 = ticks_now();
    double ns_per_tick = (double)(cal_ns1 - cal_ns0) / (double)(cal_tsc1 - cal_tsc0);
    d0 = disturb_now();
    t0 = mono_ns();
    bench_run_latency(e, ops, kinds, p.ops, &s, h);
    t1 = mono_ns();
    disturb_t lat_d = disturb_since(d0);
    double lat_run_ops = (double)p.ops / ((double)(t1 - t0) / 1e9);
    pt_engine_destroy(e);
    for (int k = 0; k < K_COUNT; k++) hist_add(&h[K_COUNT], &h[k]);
    bench_run_overhead(p.ops < 1000000 ? p.ops : 1000000, &h[K_COUNT + 1]);

    double probe_after = chase_probe(PROBE_BYTES, true, PROBE_LOADS), core_after = core_probe(CORE_PASSES);

    lat_report_t rk[K_COUNT], rall = lat_report(&h[K_COUNT], ns_per_tick), rover = lat_report(&h[K_COUNT + 1], ns_per_tick);
    for (int k = 0; k < K_COUNT; k++) rk[k] = lat_report(&h[k], ns_per_tick);

    printf("replay        %s (event checksum %016" PRIx64 ", state hash %016" PRIx64 ", pt_engine_check %d)\n",
           replay_ok ? "matches the generator run" : "DIFFERS from the generator run", g.checksum, g.state_hash,
           check_rc);
    printf("live orders   %" PRIu64 " at end\n", live_end);
    printf("memory        a dependent load over 4 MiB: %.0f ns before the passes, %.0f ns after (this VM: ~20-45 "
           "ns while it gets much of the L3, ~150-200 ns while it does not; docs/BENCHMARKS.md)\n",
           probe_before, probe_after);
    printf("core          an L1-resident sum: %.3f ns per element before the passes, %.3f after\n", core_before,
           core_after);
    printf("\nthroughput    %.2f M ops/s  (%.1f ns/op; %" PRIu64 " ops in %.3f s, untimed ops, %ld page faults)\n",
           tp_ops / 1e6, 1e9 / tp_ops, p.ops, tp_s, tp_d.faults);
    printf("cpu time      %.2f M ops per CPU-second: the pass got %.0f%% of the core, %ld involuntary context "
           "switches\n",
           tp_cpu_ops / 1e6, 100.0 * (double)tp_d.cpu_ns / (tp_s * 1e9), tp_d.preempted);
    printf("batch API     %.2f M ops/s  (pt_engine_submit_batch, chunks of %u)\n", batch_ops / 1e6, p.chunk);
    printf("timed run     %.2f M ops/s  (the latency run below, %ld page faults; difference to the untimed run "
           "= %.1f ns/op of timing)\n",
           lat_run_ops / 1e6, lat_d.faults, 1e9 / lat_run_ops - 1e9 / tp_ops);
    printf("\nlatency (ns, rdtsc at %.4f GHz, <= 1.6%% bucket error; includes the timer overhead below)\n",
           1.0 / ns_per_tick);
    printf("  %-9s %9s %7s %7s %7s %7s %8s %8s %9s\n", "op", "count", "mean", "p50", "p90", "p99", "p99.9",
           "p99.99", "max");
    print_lat("all", &rall);
    for (int k = 0; k < K_COUNT; k++) print_lat(KIND_NAME[k], &rk[k]);
    print_lat("overhead", &rover);

    bool tp_pass = tp_ops >= 12e6, p99_pass = rall.pct_ns[2] <= 400;
    printf("\ntargets       C >= 12 M ops/s: %s (%.2f M);  C p99 <= 400 ns: %s (%.0f ns)\n", tp_pass ? "PASS" : "FAIL",
           tp_ops / 1e6, p99_pass ? "PASS" : "FAIL", rall.pct_ns[2]);

    if (p.json_path) {
        FILE *f = fopen(p.json_path, "w");
        if (!f) {
            perror("engine_bench: --json");
            return 1;
        }
        fprintf(f, "{\n  \"commit\": \"%s\", \"cpu\": \"%s\", \"core\": %d, \"seed\": %" PRIu64 ", \"ops\": %" PRIu64
                   ", \"prefill\": %" PRIu64 ", \"clients\": %u,\n",
                p.commit, cpu, p.core, p.seed, p.ops, p.prefill, p.clients);
        fprintf(f, "  \"max_orders\": %u, \"max_levels_per_side\": %u, \"max_symbols\": %u, \"max_clients\": %u,\n",
                p.cfg.max_orders, p.cfg.max_levels_per_side, p.cfg.max_symbols, p.cfg.max_clients);
        /* the Python tiers of run_engine_bench.py build their engines from these */
        fprintf(f, "  \"symbol\": {\"min_price_ticks\": 1, \"max_price_ticks\": %d, \"max_order_lots\": %d, "
                   "\"band_ticks\": %d, \"band_bps\": 0, \"reference_price\": %d, \"market_band_ticks\": 0, "
                   "\"pnl_unit\": 1},\n",
                SYM_MAX_PRICE_TICKS, SYM_MAX_ORDER_LOTS, p.no_risk ? 0 : SYM_BAND_TICKS, MID0_TICKS);
        bool on = !p.no_risk; /* --no-risk: every limit 0 (off) */
        fprintf(f, "  \"limits\": {\"max_order_qty\": %d, \"max_open_orders\": %d, \"max_position\": %lld, "
                   "\"rate_per_s\": %d, \"rate_burst\": %d, \"max_loss\": %lld},\n",
                on ? LIM_MAX_ORDER_QTY : 0, on ? LIM_MAX_OPEN_ORDERS : 0, on ? (long long)LIM_MAX_POSITION : 0,
                on ? LIM_RATE_PER_S : 0, on ? LIM_RATE_BURST : 0, on ? (long long)LIM_MAX_LOSS : 0);
        fprintf(f, "  \"warmup_ops\": %" PRIu64 ", \"warmup_s\": %.4f, \"sink\": \"%s\",\n", p.warmup, warm_s,
                p.sink_copy ? "copy" : "checksum");
        fprintf(f, "  \"ops_per_s\": %.1f, \"batch_ops_per_s\": %.1f, \"timed_run_ops_per_s\": %.1f, \"chunk\": %u,\n",
                tp_ops, batch_ops, lat_run_ops, p.chunk);
        fprintf(f, "  \"page_faults_throughput\": %ld, \"page_faults_latency\": %ld,\n", tp_d.faults, lat_d.faults);
        fprintf(f, "  \"cpu_ops_per_s\": %.1f, \"preempted_throughput\": %ld, \"preempted_latency\": %ld,\n",
                tp_cpu_ops, tp_d.preempted, lat_d.preempted);
        fprintf(f, "  \"probe_4mib_ns_before\": %.1f, \"probe_4mib_ns_after\": %.1f, \"probe_core_ns_before\": %.4f, "
                   "\"probe_core_ns_after\": %.4f,\n",
                probe_before, probe_after, core_before, core_after);
        fprintf(f, "  \"live_orders_end\": %" PRIu64 ", \"max_live_orders\": %" PRIu64 ", \"events\": %" PRIu64
                   ", \"fills\": %" PRIu64 ", \"trades\": %" PRIu64 ",\n",
                live_end, g.max_live, g.events, g.by_type[PT_EV_FILL], g.by_type[PT_EV_TRADE]);
        fprintf(f, "  \"replay_ok\": %s, \"state_hash\": \"%016" PRIx64 "\", \"event_checksum\": \"%016" PRIx64
                   "\", \"tsc_ghz\": %.6f,\n",
                replay_ok ? "true" : "false", g.state_hash, g.checksum, 1.0 / ns_per_tick);
        fprintf(f, "  \"latency\": {\n");
        json_lat(f, "all", &rall, true);
        for (int k = 0; k < K_COUNT; k++) json_lat(f, KIND_NAME[k], &rk[k], true);
        json_lat(f, "overhead", &rover, false);
        fprintf(f, "  }\n}\n");
        fclose(f);
    }
    free(h); free(cmds); free(kinds); free(ring);
    return replay_ok && check_rc == 0 ? 0 : 1;
}
