/*
 * mem.c - the engine's large allocations: order pool, indexes, event buffer.
 *
 * Anonymous mmap, zero-filled by the kernel and only backed by memory as far
 * as it is touched, with MADV_HUGEPAGE so the hot tables sit in a few 2 MiB
 * TLB entries instead of hundreds of 4 KiB ones (a TLB miss per lookup was a
 * visible part of a cancel, measured with perf). Falls back to a zeroed,
 * 64-byte-aligned aligned_alloc where mmap is not available. mem_alloc_sparse
 * is the exception, below.
 */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

static void *mem_map(size_t bytes, bool huge, bool reserve)
{
#if defined(MAP_ANONYMOUS)
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
#if defined(MAP_NORESERVE)
    if (!reserve)
        flags |= MAP_NORESERVE;
#endif
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#if defined(MADV_HUGEPAGE)
    if (huge && bytes >= (2u << 20))
        (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: fine if refused */
#endif
    (void)huge;
    return p;
#else
    (void)huge;
    (void)reserve;
    /* 64-byte aligned, as mmap's pages are: the event writer stores 32-byte aligned halves (internal.h). */
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded);
    if (p != NULL)
        memset(p, 0, rounded);
    return p;
#endif
}

void *mem_alloc(size_t bytes) { return mem_map(bytes, true, true); }

/* For a table touched sparsely and at random: each client's row of client_slots, of which a client uses as much
 * as its orders reach into the pool. 4 KiB pages, so a touch backs 4 KiB and not 2 MiB (2,000 clients with one
 * order each backed 1 GiB with huge pages); not counted against the commit limit, since max_clients x
 * max_orders / 8 bytes can exceed it while the part ever touched stays small. */
void *mem_alloc_sparse(size_t bytes) { return mem_map(bytes, false, false); }

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
