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
#include "pointer_chase.h"

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
        double ns = chase_probe(kib * 1024, huge, loads);
        if (ns < 0) {
            perror("memory_latency: mmap/malloc");
            return 1;
        }
        printf("%7zu KiB %12.1f\n", kib, ns);
        fflush(stdout);
    }
    return 0;
}
