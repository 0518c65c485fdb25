/*
 * mem.c - the engine's large allocations: order pool, indexes, event buffer.
 *
 * Anonymous mmap, zero-filled by the kernel and only backed by memory as far
 * as it is touched, with MADV_HUGEPAGE so the hot tables sit in a few 2 MiB
 * TLB entries instead of hundreds of 4 KiB ones (a TLB miss per lookup was a
 * visible part of a cancel, measured with perf). Falls back to a zeroed,
 * 64-byte-aligned aligned_alloc where mmap is not available.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

void *mem_alloc(size_t bytes)
{
#if defined(MAP_ANONYMOUS)
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#if defined(MADV_HUGEPAGE)
    if (bytes >= (2u << 20))
        (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: fine if refused */
#endif
    return p;
#else
    /* 64-byte aligned, as mmap's pages are: the event writer stores 32-byte aligned halves (internal.h). */
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded);
    if (p != NULL)
        memset(p, 0, rounded);
    return p;
#endif
}

void mem_free(void *p, size_t bytes)
{
    if (p == NULL)
        return;
#if defined(MAP_ANONYMOUS)
    munmap(p, bytes);
#else
    (void)bytes;
    free(p);
#endif
}
