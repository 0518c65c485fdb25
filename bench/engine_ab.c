/*
 * engine_ab.c - two builds of the matching engine in one process, timed on
 * the same op stream in alternating blocks.
 *
 * Why: this VM switches between a fast and a slow mode every few seconds (2x
 * apart), so two binaries run one after the other compare the machine's modes
 * as much as the code. Here engine a and engine b each replay the stream on
 * their own engine, block by block: round k runs block k on both, back to
 * back (a first in even rounds, b first in odd ones), so the two blocks of a
 * round share the machine's mode and the ratio of their times is the code's.
 *
 * The builds: `make bench-ab BASE=<git rev>` compiles the engine sources at
 * BASE and those of the working tree into two relocatable objects (LTO across
 * each build's own files), renames every symbol each defines with a prefix,
 * a_ and b_ (bench/build_ab.sh), and links both with this driver. The stream
 * is engine_bench's mix (`engine_bench --dump-commands FILE`): prefill first,
 * then the ops; the engines are set up as engine_bench sets its own
 * (engine_mix.h). After each command the events are folded into a checksum,
 * as engine_bench's default sink does.
 *
 * Blocks: 250,000 ops by default (8 rounds of the 2 M-op stream, ~50 ms a
 * block). Each engine starts its block with caches the other one just
 * filled, and that cost is the same on both sides, so it pulls the ratio
 * towards 1: with blocks of 100,000 ops an earlier engine and one with
 * 15% fewer instructions and 40% fewer mispredictions came out equal (b/a
 * 0.96-1.05 in three runs), with 250,000 and 1,000,000 ops at 0.79-0.88. Run
 * it with the same code on both sides (BASE=HEAD, clean tree) to see its own
 * spread: b/a medians of 0.96, 0.96, 1.11 and 0.98 in four runs, so a single
 * run cannot tell 10% apart; compare the medians of several.
 *
 * Both engines must end with the same event checksum and state hash: a change
 * that alters behaviour is not a speed comparison (exit status 1).
 *
 * Usage: engine_ab --commands FILE [--prefill N] [--clients N] [--block N]
 *        [--core C] [--batch N] [--latency] [--label-a S] [--label-b S]
 * --batch N times pt_engine_submit_batch, up to N commands a call (events
 * drained after each call), instead of one pt_engine_submit per command.
 * --latency also reads the TSC around each pt_engine_submit (as engine_bench's
 * latency pass does) and prints both builds' percentiles per op kind, over
 * the same interleaved rounds, and the median over rounds of b's p99 / a's:
 * a change to the tail shows there even when the machine's mode moves the
 * absolute figures.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "engine_mix.h"

/* The part of the engine's C API this driver calls, once per build. */
typedef struct engine_api {
    int (*create)(const pt_engine_config_t *, pt_engine_t **);
    void (*destroy)(pt_engine_t *);
    int (*add_symbol)(pt_engine_t *, const pt_symbol_config_t *, uint16_t *);
    int (*set_client_limits)(pt_engine_t *, uint16_t, const pt_client_limits_t *);
    int (*submit)(pt_engine_t *, const pt_command_t *);
    int (*submit_batch)(pt_engine_t *, const pt_command_t *, size_t, size_t *);
    pt_event_t *(*events)(pt_engine_t *, size_t *);
    void (*clear_events)(pt_engine_t *);
    uint64_t (*state_hash)(const pt_engine_t *);
} engine_api_t;

#define DECLARE_BUILD(P)                                                                      \
    int P##pt_engine_create(const pt_engine_config_t *, pt_engine_t **);                      \
    void P##pt_engine_destroy(pt_engine_t *);                                                 \
    int P##pt_engine_add_symbol(pt_engine_t *, const pt_symbol_config_t *, uint16_t *);       \
    int P##pt_engine_set_client_limits(pt_engine_t *, uint16_t, const pt_client_limits_t *);  \
    int P##pt_engine_submit(pt_engine_t *, const pt_command_t *);                             \
    int P##pt_engine_submit_batch(pt_engine_t *, const pt_command_t *, size_t, size_t *);     \
    pt_event_t *P##pt_engine_events(pt_engine_t *, size_t *);                                 \
    void P##pt_engine_clear_events(pt_engine_t *);                                            \
    uint64_t P##pt_engine_state_hash(const pt_engine_t *);
#define BUILD_API(P)                                                                                         \
    {P##pt_engine_create, P##pt_engine_destroy, P##pt_engine_add_symbol, P##pt_engine_set_client_limits, \
     P##pt_engine_submit, P##pt_engine_submit_batch, P##pt_engine_events, P##pt_engine_clear_events,   \
     P##pt_engine_state_hash}

DECLARE_BUILD(a_)
DECLARE_BUILD(b_)
static const engine_api_t BUILDS[2] = {BUILD_API(a_), BUILD_API(b_)};

enum { K_PASSIVE, K_CANCEL, K_IOC, K_ALL, K_COUNT };
static const char *const KIND_NAME[K_COUNT] = {"passive", "cancel", "ioc", "all"};

typedef struct side {
    const engine_api_t *api;
    pt_engine_t *engine;
    uint64_t acc[8];   /* the event sink */
    uint64_t ns;       /* time in timed blocks */
    hist_t *lat;       /* --latency: TSC ticks per submit, by kind, over all rounds */
    hist_t *round_all; /* --latency: the current round's, all kinds */
} side_t;

/* The mix's op kinds: a cancel, an IOC, and every other new order (a passive quote). */
static int op_kind(const pt_command_t *c) {
    if (c->op == PT_OP_CANCEL) return K_CANCEL;
    return c->tif == PT_TIF_IOC ? K_IOC : K_PASSIVE;
}

static _Noreturn void die(const char *what, long rc) {
    fprintf(stderr, "engine_ab: %s failed (%ld)\n", what, rc);
    exit(2);
}

static void setup(side_t *s, const engine_api_t *api, uint32_t clients) {
    memset(s, 0, sizeof *s);
    s->api = api;
    pt_engine_config_t cfg = mix_engine_config();
    int rc = api->create(&cfg, &s->engine);
    if (rc) die("pt_engine_create", rc);
    pt_symbol_config_t sym = mix_symbol_config(false);
    uint16_t id;
    if ((rc = api->add_symbol(s->engine, &sym, &id))) die("pt_engine_add_symbol", rc);
    pt_client_limits_t lim = mix_client_limits();
    for (uint16_t c = 0; c < clients; c++)
        if ((rc = api->set_client_limits(s->engine, c, &lim))) die("pt_engine_set_client_limits", rc);
}

static size_t g_batch; /* --batch N: pt_engine_submit_batch with up to N commands a call; 0: one call each */
static bool g_latency; /* --latency */

/* Folds the side's events into its sink and clears them. Inline: it runs after every call in the timed loops. */
static inline void drain(side_t *s) {
    size_t count;
    const pt_event_t *ev = s->api->events(s->engine, &count);
    mix_sink_fold(s->acc, ev, count);
    s->api->clear_events(s->engine);
}

/* Runs cmds[0..n) on one side, the events drained into its sink after each call. With --latency (once the
 * side has histograms) each submit is timed with the TSC; otherwise the loop has no timer in it. */
static void run(side_t *s, const pt_command_t *cmds, size_t n) {
    const engine_api_t *api = s->api;
    bool per_op_latency = g_batch == 0 && g_latency && s->lat;
    for (size_t i = 0; g_batch > 0 && i < n;) {
        size_t want = n - i < g_batch ? n - i : g_batch, done;
        int rc = api->submit_batch(s->engine, &cmds[i], want, &done);
        if (rc && rc != PT_E_FULL) die("pt_engine_submit_batch", rc);
        drain(s);
        i += done;
    }
    for (size_t i = 0; per_op_latency && i < n; i++) {
        uint64_t t0 = ticks_now();
        int rc = api->submit(s->engine, &cmds[i]);
        uint64_t dt = ticks_now() - t0;
        if (rc) die("pt_engine_submit", rc);
        hist_record(&s->lat[op_kind(&cmds[i])], dt);
        hist_record(&s->lat[K_ALL], dt);
        hist_record(s->round_all, dt);
        drain(s);
    }
    for (size_t i = 0; g_batch == 0 && !per_op_latency && i < n; i++) {
        int rc = api->submit(s->engine, &cmds[i]);
        if (rc) die("pt_engine_submit", rc);
        drain(s);
    }
}

static uint64_t run_timed(side_t *s, const pt_command_t *cmds, size_t n) {
    uint64_t t0 = mono_ns();
    run(s, cmds, n);
    uint64_t dt = mono_ns() - t0;
    s->ns += dt;
    return dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static pt_command_t *read_commands(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) die("fopen --commands", errno);
    if (fseek(f, 0, SEEK_END)) die("fseek", errno);
    long bytes = ftell(f);
    rewind(f);
    if (bytes <= 0 || bytes % (long)sizeof(pt_command_t)) die("--commands: not a whole number of commands", bytes);
    *n = (size_t)bytes / sizeof(pt_command_t);
    pt_command_t *cmds = malloc((size_t)bytes);
    if (!cmds || fread(cmds, sizeof *cmds, *n, f) != *n) die("reading --commands", errno);
    fclose(f);
    return cmds;
}

static _Noreturn void usage(void) {
    fprintf(stderr, "usage: engine_ab --commands FILE [--prefill N] [--clients N] [--block N] [--core C]\n"
                    "                 [--batch N] [--latency] [--label-a S] [--label-b S]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *path = NULL, *label[2] = {"a", "b"};
    size_t prefill = 5000, block = 250000;
    uint32_t clients = 8;
    int core = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--latency")) {
            g_latency = true;
            continue;
        }
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--commands")) path = v;
        else if (!strcmp(a, "--prefill")) prefill = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--clients")) clients = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--block")) block = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--core")) core = atoi(v);
        else if (!strcmp(a, "--batch")) g_batch = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--label-a")) label[0] = v;
        else if (!strcmp(a, "--label-b")) label[1] = v;
        else usage();
    }
    if (!path || block == 0 || clients == 0) usage();
    if (core >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(core, &set);
        if (sched_setaffinity(0, sizeof set, &set)) die("sched_setaffinity", errno);
    }
    size_t total;
    pt_command_t *cmds = read_commands(path, &total);
    if (prefill >= total) die("--prefill: the file holds no ops after it", (long)total);
    size_t ops = total - prefill, rounds = (ops + block - 1) / block;

    side_t sides[2];
    for (int k = 0; k < 2; k++) {
        setup(&sides[k], &BUILDS[k], clients);
        run(&sides[k], cmds, prefill); /* untimed */
    }
    double *ratio = malloc(rounds * sizeof *ratio), *p99_ratio = malloc(rounds * sizeof *p99_ratio);
    if (!ratio || !p99_ratio) die("malloc", 0);
    for (int k = 0; g_latency && k < 2; k++) {
        sides[k].lat = calloc(K_COUNT, sizeof(hist_t));
        sides[k].round_all = calloc(1, sizeof(hist_t));
        if (!sides[k].lat || !sides[k].round_all) die("calloc", 0);
    }
    uint64_t cal_ns0 = mono_ns(), cal_tsc0 = ticks_now();
    size_t b_faster = 0;
    for (size_t r = 0; r < rounds; r++) {
        const pt_command_t *blk = cmds + prefill + r * block;
        size_t n = r + 1 < rounds ? block : ops - r * block;
        int first = (int)(r & 1);
        uint64_t dt[2];
        dt[first] = run_timed(&sides[first], blk, n);
        dt[!first] = run_timed(&sides[!first], blk, n);
        ratio[r] = (double)dt[1] / (double)dt[0];
        b_faster += dt[1] < dt[0];
        if (g_latency) {
            p99_ratio[r] = (double)hist_percentile(sides[1].round_all, 99) /
                           (double)hist_percentile(sides[0].round_all, 99);
            for (int k = 0; k < 2; k++)
                memset(sides[k].round_all, 0, sizeof(hist_t));
        }
    }
    double ns_per_tick = (double)(mono_ns() - cal_ns0) / (double)(ticks_now() - cal_tsc0);
    qsort(ratio, rounds, sizeof *ratio, cmp_double);
    if (g_latency) {
        qsort(p99_ratio, rounds, sizeof *p99_ratio, cmp_double);
        printf("latency (ns, TSC around each submit)   p50     p90     p99   p99.9\n");
        for (int kind = 0; kind < K_COUNT; kind++)
            for (int k = 0; k < 2; k++) {
                const hist_t *h = &sides[k].lat[kind];
                printf("  %-8s %s %-18s %7.0f %7.0f %7.0f %7.0f\n", KIND_NAME[kind], k ? "b" : "a", label[k],
                       hist_percentile(h, 50) * ns_per_tick, hist_percentile(h, 90) * ns_per_tick,
                       hist_percentile(h, 99) * ns_per_tick, hist_percentile(h, 99.9) * ns_per_tick);
            }
        printf("b/a p99 per round: median %.3f (range %.3f-%.3f)\n", p99_ratio[rounds / 2], p99_ratio[0],
               p99_ratio[rounds - 1]);
        for (int k = 0; k < 2; k++)
            free(sides[k].lat), free(sides[k].round_all);
    }

    uint64_t hash[2], sum[2];
    for (int k = 0; k < 2; k++) {
        hash[k] = sides[k].api->state_hash(sides[k].engine);
        sum[k] = mix_sink_checksum(sides[k].acc);
        printf("%-3s %-24s %6.2f M ops/s over all rounds (%zu ops in %.3f s)\n", k ? "b" : "a", label[k],
               (double)ops / (double)sides[k].ns * 1e3, ops, (double)sides[k].ns / 1e9);
        sides[k].api->destroy(sides[k].engine);
    }
    printf("b/a time per round: median %.3f (quartiles %.3f-%.3f, range %.3f-%.3f) over %zu rounds of %zu ops;"
           " b faster in %zu\n",
           ratio[rounds / 2], ratio[rounds / 4], ratio[(3 * rounds) / 4], ratio[0], ratio[rounds - 1], rounds, block,
           b_faster);
    bool same = hash[0] == hash[1] && sum[0] == sum[1];
    printf("end state     %s (state hash %016llx / %016llx, event checksum %016llx / %016llx)\n",
           same ? "identical" : "DIFFERENT: not a like-for-like comparison", (unsigned long long)hash[0],
           (unsigned long long)hash[1], (unsigned long long)sum[0], (unsigned long long)sum[1]);
    free(ratio);
    free(p99_ratio);
    free(cmds);
    return same ? 0 : 1;
}
