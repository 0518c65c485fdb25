/*
 * memory_latency.c - what one dependent cache miss costs on this machine, by working-set size.
 *
 * A pointer chase: one 64-byte line per element, linked in a random cyclic order, so each load depends on
 * the one before it and the prefetchers cannot guess the next address. The time per load at each size shows
 * where the caches end (docs/BENCHMARKS.md, "Machine"): on the shared VM these benchmarks run on, a load stays
 * ~20 ns up to 2 MiB and costs 80-200 ns from 4 MiB on, so the engine's speed follows the size of its working
 * set (orders, indexes) more than its instruction count once it passes ~2 MiB.
 *
 * Usage: memory_latency [--core C] [--huge] [--loads N]
 *   --huge: ask for transparent huge pages (MADV_HUGEPAGE), as the engine's large tables do.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench_util.h"

#define HUGE_PAGE (2u << 20)

typedef struct chase_line {
    uint32_t next; /* index of the next line in the chase */
    char pad[60];
} chase_line_t;

/* Links m[0..lines) into one random cycle (Fisher-Yates, fixed xorshift: the same cycle every run), so each
 * load depends on the one before and no prefetcher can guess the next. order: scratch of `lines` entries. */
static void chase_link(chase_line_t *m, uint32_t *order, size_t lines) {
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
static double chase_ns(const chase_line_t *m, size_t lines, long loads) {
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

/* ns per dependent load over `lines` lines, on 2 MiB-aligned memory. */
static double chase(size_t lines, bool huge, long loads)
{
    size_t bytes = lines * sizeof(chase_line_t);
    size_t mapped = bytes + HUGE_PAGE;
    char *raw = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint32_t *order = malloc(lines * sizeof *order);
    if (raw == MAP_FAILED || order == NULL) {
        perror("memory_latency: mmap/malloc");
        exit(1);
    }
    chase_line_t *m = (chase_line_t *)(void *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (huge)
        (void)madvise(m, bytes, MADV_HUGEPAGE);
    chase_link(m, order, lines);
    double ns = chase_ns(m, lines, loads);
    free(order);
    munmap(raw, mapped);
    return ns;
}

int main(int argc, char **argv)
{
    int core = -1;
    bool huge = false;
    long loads = 2000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--core") && i + 1 < argc)
            core = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--huge"))
            huge = true;
        else if (!strcmp(argv[i], "--loads") && i + 1 < argc)
            loads = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: memory_latency [--core C] [--huge] [--loads N]\n");
            return 2;
        }
    }
    if (core >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(core, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            perror("sched_setaffinity");
    }
    printf("dependent loads, one 64-byte line each, random cycle; %s pages; %ld loads per size\n",
           huge ? "huge (MADV_HUGEPAGE)" : "4 KiB", loads);
    printf("%10s %12s\n", "working set", "ns per load");
    for (size_t kib = 16; kib <= 128 * 1024; kib *= 2) {
        double ns = chase(kib * 1024 / sizeof(chase_line_t), huge, loads);
        printf("%7zu KiB %12.1f\n", kib, ns);
        fflush(stdout);
    }
    return 0;
}
