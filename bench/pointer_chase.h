/*
 * pointer_chase.h - what one dependent cache miss costs, over a working set of a given size: the probe of
 * memory_latency.c (every size) and engine_bench.c (4 MiB, before each run, to say which mode this shared VM
 * was in). Header-only, static inline.
 *
 * A pointer chase: one 64-byte line per element, linked in one random cycle, so each load depends on the one
 * before it and no prefetcher can guess the next address.
 */
#ifndef POINTER_CHASE_H
#define POINTER_CHASE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bench_util.h"

#define CHASE_HUGE_PAGE (2u << 20)

typedef struct chase_line {
    uint32_t next; /* index of the next line in the chase */
    char pad[60];
} chase_line_t;

/* Links m[0..lines) into one random cycle (Fisher-Yates, fixed xorshift: the same cycle every run).
 * order: scratch of `lines` entries. */
static inline void chase_link(chase_line_t *m, uint32_t *order, size_t lines) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < lines; i++) order[i] = (uint32_t)i;
    for (size_t i = lines - 1; i > 0; i--) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        size_t j = (size_t)((x * 0x2545F4914F6CDD1Dull) % (i + 1));
        uint32_t t = order[i]; order[i] = order[j]; order[j] = t;
    }
    for (size_t i = 0; i < lines; i++) m[order[i]].next = order[(i + 1) % lines];
}

/* ns per load over `loads` dependent loads, after one untimed lap that brings the lines in as far as they fit. */
static inline double chase_ns(const chase_line_t *m, size_t lines, long loads) {
    volatile uint32_t sink;
    uint32_t p = 0;
    for (size_t i = 0; i < lines; i++) p = m[p].next;
    uint64_t t0 = mono_ns();
    for (long i = 0; i < loads; i++) p = m[p].next;
    uint64_t dt = mono_ns() - t0;
    sink = p; /* keeps the chase */
    (void)sink;
    return (double)dt / (double)loads;
}

/* ns per dependent load over `bytes` of 2 MiB-aligned memory (huge: MADV_HUGEPAGE, as the engine's tables);
 * a negative value if the memory could not be had. */
static inline double chase_probe(size_t bytes, bool huge, long loads) {
    size_t lines = bytes / sizeof(chase_line_t), mapped = bytes + CHASE_HUGE_PAGE;
    char *raw = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint32_t *order = malloc(lines * sizeof *order);
    if (raw == MAP_FAILED || order == NULL) {
        if (raw != MAP_FAILED) munmap(raw, mapped);
        free(order);
        return -1.0;
    }
    chase_line_t *m = (chase_line_t *)(void *)(((uintptr_t)raw + CHASE_HUGE_PAGE - 1) & ~(uintptr_t)(CHASE_HUGE_PAGE - 1));
    if (huge) (void)madvise(m, bytes, MADV_HUGEPAGE);
    chase_link(m, order, lines);
    double ns = chase_ns(m, lines, loads);
    free(order);
    munmap(raw, mapped);
    return ns;
}

/*
 * The other half of the machine's mode: how fast this core runs work that needs no memory. Sums a 16 KiB
 * array that stays in L1, with no dependence between iterations beyond the adds, so the time per element
 * tracks the core's throughput (clock, and whatever shares the physical core: a hyperthread sibling of another
 * guest takes execution ports and L1/L2) where the pointer chase tracks the last-level cache. ns per element.
 */
static inline double core_probe(long passes) {
    enum { N = 4096 };
    static uint32_t a[N];
    for (uint32_t i = 0; i < N; i++) a[i] = i * 2654435761u;
    volatile uint64_t sink;
    uint64_t acc = 0, t0 = mono_ns();
    for (long pass = 0; pass < passes; pass++) {
        for (uint32_t i = 0; i < N; i++) acc += a[i] ^ (uint32_t)pass;
        __asm__ volatile("" : "+r"(acc)); /* one pass may not be folded into the next */
    }
    uint64_t dt = mono_ns() - t0;
    sink = acc;
    (void)sink;
    return (double)dt / ((double)passes * N);
}

#endif
