/*
 * bench_util.h - the timing helpers shared by the benchmarks (engine_bench.c
 * and ring_pingpong.c): the monotonic clock, the TSC, the CPU model line, the
 * percentiles every latency table prints and a log-linear (HDR-style)
 * histogram. Header-only, every function static inline (a benchmark that does
 * not use one gets no unused-function warning under -Werror).
 *
 * Histogram: values below 128 are exact, then 64 buckets per octave, so a
 * reported percentile (the bucket's highest value, as HdrHistogram's "highest
 * equivalent value") is at most 1.6% above the true one; values up to 2^47
 * ticks are recorded exactly, larger ones saturate (max stays exact).
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

static inline uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Per-op timestamps: the TSC where there is one (constant on these machines, ~12 ns a read, calibrated against
 * CLOCK_MONOTONIC), else the monotonic clock itself. */
static inline uint64_t ticks_now(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return mono_ns();
#endif
}

#define H_SUB_BITS 7                          /* values below 128 exact, then 64 buckets per octave: <= 1.6% error */
#define H_HALF (1u << (H_SUB_BITS - 1))
#define H_MAX_SHIFT 40
#define H_BUCKETS ((H_MAX_SHIFT + 2) * H_HALF)

typedef struct hist {
    uint32_t count[H_BUCKETS];
    uint64_t n, max, sum;
} hist_t;

static inline void hist_record(hist_t *h, uint64_t v) {
    uint32_t idx;
    if (v < (1u << H_SUB_BITS)) {
        idx = (uint32_t)v;
    } else {
        int shift = 63 - __builtin_clzll(v) - (H_SUB_BITS - 1);
        uint64_t w = v;
        if (shift > H_MAX_SHIFT) shift = H_MAX_SHIFT, w = ((uint64_t)(2 * H_HALF) << H_MAX_SHIFT) - 1;
        idx = (uint32_t)shift * H_HALF + (uint32_t)(w >> shift);
    }
    h->count[idx]++;
    h->n++;
    h->sum += v;
    if (v > h->max) h->max = v;
}

/* The highest value that lands in bucket idx (HDR's "highest equivalent value"). */
static inline uint64_t hist_bucket_high(uint32_t idx) {
    if (idx < (1u << H_SUB_BITS)) return idx;
    uint32_t shift = idx / H_HALF - 1, m = idx - shift * H_HALF;
    return (((uint64_t)m + 1) << shift) - 1;
}

static inline void hist_add(hist_t *into, const hist_t *h) {
    for (uint32_t i = 0; i < H_BUCKETS; i++) into->count[i] += h->count[i];
    into->n += h->n;
    into->sum += h->sum;
    if (h->max > into->max) into->max = h->max;
}

static inline uint64_t hist_percentile(const hist_t *h, double pct) {
    if (h->n == 0) return 0;
    uint64_t rank = (uint64_t)((pct / 100.0) * (double)h->n + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t cum = 0;
    for (uint32_t i = 0; i < H_BUCKETS; i++) {
        cum += h->count[i];
        if (cum >= rank) {
            uint64_t v = hist_bucket_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* The percentiles of every latency table and JSON record. */
static const double PCTS[] = {50, 90, 99, 99.9, 99.99};
#define NPCTS 5

/* "model name" of /proc/cpuinfo, with family and model (a VM may print only "AMD EPYC"). */
static inline void cpu_model(char *out, size_t cap) {
    char name[160] = "unknown", family[16] = "?", model[16] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char *v = strchr(line, ':');
            if (!v) continue;
            v += 1 + (v[1] == ' ');
            v[strcspn(v, "\n")] = 0;
            if (!strncmp(line, "model name", 10)) snprintf(name, sizeof name, "%s", v);
            else if (!strncmp(line, "cpu family", 10)) snprintf(family, sizeof family, "%s", v);
            else if (!strncmp(line, "model\t", 6)) snprintf(model, sizeof model, "%s", v);
            else if (line[0] == '\n' || !strncmp(line, "processor", 9)) {
                if (strcmp(name, "unknown")) break;  /* the first processor is enough */
            }
        }
        fclose(f);
    }
    snprintf(out, cap, "%s (family %s model %s)", name, family, model);
}

#endif
