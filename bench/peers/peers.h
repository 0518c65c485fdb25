/*
 * peers.h - what every adapter of bench/peers shares: the op-stream file (mix_gen.c writes it), the run's
 * phases and the one result line the runner (run_rounds.py) parses. C11 and C++20 alike: this project's
 * adapter is C, the open-source books' adapters are C++. Header-only, static inline.
 *
 * The file: a 56-byte header (magic "MIX1", the prefill count, the op count, the seed, the highest id + 1 and
 * the three figures every engine must reproduce: trades, lots traded, orders left resting), then one 16-byte
 * op per command, prefill first. Ids are 1, 2, 3... in the order of the adds and IOCs, so a book that numbers
 * its own orders (this engine) gives each the mix's id; a cancel names the id of an order that rests at that
 * point in the reference book.
 *
 * Each adapter runs, in one process: load the file (untimed); a warm-up on a throwaway book (prefill and the
 * first PEERS_WARMUP_OPS ops); a throughput pass on a fresh book (prefill untimed, then every op between two
 * CLOCK_MONOTONIC reads, each op's events consumed before the next op); a latency pass on another fresh book
 * (lfence; rdtsc before and after each op and its events, into bench_util.h's log-linear histogram). The result
 * counts only if both passes reproduce the file's three figures with no reject (ok=1).
 */
#ifndef PEERS_H
#define PEERS_H

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"

enum { MIX_ADD = 0, MIX_CANCEL = 1, MIX_IOC = 2 };

/* One command of the stream, 16 bytes. side: 0 buy, 1 sell. ADD: a GTC limit that never crosses; IOC: a limit
 * two ticks through the opposite touch, its remainder cancelled; CANCEL: price and side of the order it names,
 * qty 0. */
typedef struct mix_op {
    uint8_t type;
    uint8_t side;
    uint16_t reserved;
    uint32_t id;
    int32_t price;
    uint32_t qty;
} mix_op_t;

typedef struct mix_header {
    char magic[4];
    uint32_t n_prefill;
    uint64_t n_ops;          /* after the prefill */
    uint64_t seed;
    uint64_t id_end;         /* every id is below this */
    uint64_t trades;         /* the figures every engine must reproduce */
    uint64_t lots;
    uint64_t live_orders;
} mix_header_t;

#ifdef __cplusplus
static_assert(sizeof(mix_op_t) == 16 && sizeof(mix_header_t) == 56, "the file's layout");
#else
_Static_assert(sizeof(mix_op_t) == 16 && sizeof(mix_header_t) == 56, "the file's layout");
#endif

typedef struct mix {
    mix_header_t h;
    mix_op_t *ops;  /* h.n_prefill + h.n_ops */
    size_t n;
} mix_t;

static inline mix_t mix_load(const char *path) {
    mix_t m;
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (fread(&m.h, sizeof m.h, 1, f) != 1 || memcmp(m.h.magic, "MIX1", 4) != 0) {
        fprintf(stderr, "%s: not a mix file\n", path);
        exit(1);
    }
    m.n = m.h.n_prefill + m.h.n_ops;
    m.ops = (mix_op_t *)aligned_alloc(64, (m.n * sizeof(mix_op_t) + 63) / 64 * 64);
    if (!m.ops || fread(m.ops, sizeof(mix_op_t), m.n, f) != m.n) {
        fprintf(stderr, "%s: short file\n", path);
        exit(1);
    }
    fclose(f);
    return m;
}

#define PEERS_WARMUP_OPS 500000u /* ops of the warm-up pass, after its prefill */

/* Where the warm-up pass ends: PEERS_WARMUP_OPS after the prefill, or the end of a shorter stream. */
static inline size_t peers_warmup_end(const mix_t *m) {
    size_t end = m->h.n_prefill + (size_t)PEERS_WARMUP_OPS;
    return end < m->n ? end : m->n;
}

/* lfence; rdtsc: the op before has finished its instructions (not its stores) when the TSC is read. */
static inline uint64_t peers_tsc(void) {
    unsigned lo, hi;
    __asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

/* What an adapter counts from its book's own events or callbacks. */
typedef struct peers_counts {
    uint64_t trades, lots, rejects, events;
    uint64_t checksum; /* of what the consumer read; the throughput and latency passes must agree */
} peers_counts_t;

/* CPU time and involuntary context switches, around the throughput pass. */
typedef struct peers_usage {
    uint64_t cpu_ns;
    long invol_cs;
} peers_usage_t;

static inline peers_usage_t peers_usage_now(void) {
    struct rusage ru;
    struct timespec ts;
    getrusage(RUSAGE_SELF, &ru);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    peers_usage_t u = {(uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, ru.ru_nivcsw};
    return u;
}

static inline int peers_ok(const mix_t *m, const peers_counts_t *c, uint64_t live) {
    return c->trades == m->h.trades && c->lots == m->h.lots && live == m->h.live_orders && c->rejects == 0;
}

/* The throughput pass: its wall time, CPU use and counts. */
typedef struct peers_pass {
    uint64_t ns;
    peers_usage_t used;
    peers_counts_t k;
    uint64_t live;
} peers_pass_t;

/* The latency histogram is in TSC ticks; ns_per_tick converts (calibrated over the whole run). */
static inline void peers_print(const char *engine, const mix_t *m, const peers_pass_t *tp, const peers_pass_t *lat,
                               const hist_t *h, double ns_per_tick) {
    int cpu = sched_getcpu();
    int ok = peers_ok(m, &tp->k, tp->live) && peers_ok(m, &lat->k, lat->live);
    double s = (double)tp->ns / 1e9;
    printf("RESULT engine=%s cpu=%d ok=%d ops=%llu tp_ops_s=%.0f tp_cpu_ops_s=%.0f invol_cs=%ld lat_ops_s=%.0f",
           engine, cpu, ok, (unsigned long long)m->h.n_ops, (double)m->h.n_ops / s,
           (double)m->h.n_ops / ((double)tp->used.cpu_ns / 1e9), tp->used.invol_cs,
           (double)m->h.n_ops / ((double)lat->ns / 1e9));
    const char *names[NPCTS] = {"p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns"};
    for (int i = 0; i < NPCTS; i++) printf(" %s=%.1f", names[i], (double)hist_percentile(h, PCTS[i]) * ns_per_tick);
    printf(" trades=%llu lots=%llu live=%llu rejects=%llu events=%llu checksum=%016llx same_checksum=%d\n",
           (unsigned long long)tp->k.trades, (unsigned long long)tp->k.lots, (unsigned long long)tp->live,
           (unsigned long long)(tp->k.rejects + lat->k.rejects), (unsigned long long)tp->k.events,
           (unsigned long long)tp->k.checksum, tp->k.checksum == lat->k.checksum);
    fflush(stdout);
}

#endif
