/*
 * ring.c - the SPSC ring of pt_ring.h: one producer, one consumer, possibly in
 * two processes mapping the same region.
 *
 * Memory ordering (C11 acquire/release, the only fences in this file):
 *   - The producer copies messages into slots [tail, tail + n), then
 *     release-stores tail + n. The consumer acquire-loads tail before it reads
 *     any slot below it, so every byte the producer wrote there is visible: a
 *     consumer never sees half a message.
 *   - The consumer reads (or copies out) slots [head, head + n), then
 *     release-stores head + n. The producer acquire-loads head before it reuses
 *     any slot below head + capacity, so the consumer's reads happen before the
 *     producer's overwrite: a slot is never rewritten while it is being read.
 *   - Each side reads its own index relaxed (it is its only writer) and keeps
 *     a plain cached copy of the peer's index on its own line; it pays for an
 *     acquire load of the peer's line only when the cache says full (producer)
 *     or empty (consumer), so in steady state the two cores exchange one line
 *     per batch, not per message.
 * Invariants: see pt_ring.h; pt_ring_release clamps so that head never passes
 * tail, and the producer never writes past head + capacity.
 */
#include "pt_ring.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "pt_wire.h"

/* The region's header; byte offsets are drawn in pt_ring.h and checked below. */
struct pt_ring_region {
    /* line 0: written once by pt_ring_init, read by pt_ring_attach. */
    _Atomic uint64_t magic;   /* release-stored last by init: publishes version/capacity and the zeroed indices;
                                 pairs with the acquire load in pt_ring_attach */
    uint32_t version;
    uint32_t capacity;
    uint32_t slot_bytes;
    unsigned char pad0[64 - 20];
    /* line 1 */
    _Atomic uint64_t tail;    /* producer release-stores after writing slots: publishes them;
                                 pairs with the consumer's acquire loads (refresh_tail, depth) */
    unsigned char pad1[56];
    /* line 2 */
    uint64_t head_cache;      /* producer only: head as last loaded, a lower bound of the real head */
    unsigned char pad2[56];
    /* line 3 */
    _Atomic uint64_t head;    /* consumer release-stores after reading slots: hands them back;
                                 pairs with the producer's acquire loads (refresh_head, depth) */
    unsigned char pad3[56];
    /* line 4 */
    uint64_t tail_cache;      /* consumer only: tail as last loaded, a lower bound of the real tail */
    unsigned char pad4[56];
};

_Static_assert(offsetof(struct pt_ring_region, magic) == PT_RING_OFF_META, "meta line");
_Static_assert(offsetof(struct pt_ring_region, tail) == PT_RING_OFF_TAIL, "tail on line 1");
_Static_assert(offsetof(struct pt_ring_region, head_cache) == PT_RING_OFF_HEAD_CACHE, "head_cache on line 2");
_Static_assert(offsetof(struct pt_ring_region, head) == PT_RING_OFF_HEAD, "head on line 3");
_Static_assert(offsetof(struct pt_ring_region, tail_cache) == PT_RING_OFF_TAIL_CACHE, "tail_cache on line 4");
_Static_assert(sizeof(struct pt_ring_region) == PT_RING_HEADER_BYTES, "slots start after the header");
_Static_assert(PT_RING_SLOT_BYTES == PT_MSG_SIZE, "a slot is one wire message");
/* Across processes the atomics must be lock-free (a lock would live in one process's memory). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "u64 is long long");

static bool ring_capacity_ok(uint32_t capacity)
{
    return capacity != 0 && capacity <= PT_RING_MAX_CAPACITY && (capacity & (capacity - 1)) == 0;
}

size_t pt_ring_bytes(uint32_t capacity)
{
    if (!ring_capacity_ok(capacity))
        return 0;
    return PT_RING_HEADER_BYTES + (size_t)capacity * PT_RING_SLOT_BYTES;
}

int pt_ring_init(void *mem, size_t bytes, uint32_t capacity)
{
    if (mem == NULL || ((uintptr_t)mem & 63) != 0 || !ring_capacity_ok(capacity) || bytes < pt_ring_bytes(capacity))
        return PT_RING_EINVAL;
    struct pt_ring_region *g = mem;
    atomic_store_explicit(&g->magic, 0, memory_order_relaxed);
    memset((unsigned char *)mem + sizeof g->magic, 0, PT_RING_HEADER_BYTES - sizeof g->magic);
    g->version = PT_RING_VERSION;
    g->capacity = capacity;
    g->slot_bytes = PT_RING_SLOT_BYTES;
    atomic_store_explicit(&g->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&g->head, 0, memory_order_relaxed);
    /* Publishes the header above; pairs with the acquire load of magic in pt_ring_attach. */
    atomic_store_explicit(&g->magic, PT_RING_MAGIC, memory_order_release);
    return PT_RING_OK;
}

int pt_ring_attach(void *mem, size_t bytes, pt_ring_t *out)
{
    if (mem == NULL || out == NULL || ((uintptr_t)mem & 63) != 0 || bytes < PT_RING_HEADER_BYTES)
        return PT_RING_EINVAL;
    struct pt_ring_region *g = mem;
    /* Pairs with the release store in pt_ring_init: the fields below are the initialised ones. */
    if (atomic_load_explicit(&g->magic, memory_order_acquire) != PT_RING_MAGIC)
        return PT_RING_EBADMAGIC;
    if (g->version != PT_RING_VERSION)
        return PT_RING_EBADVERSION;
    if (g->slot_bytes != PT_RING_SLOT_BYTES || !ring_capacity_ok(g->capacity) || bytes < pt_ring_bytes(g->capacity))
        return PT_RING_EINVAL;
    out->region = g;
    out->slots = (unsigned char *)mem + PT_RING_HEADER_BYTES;
    out->capacity = g->capacity;
    out->mask = (uint64_t)g->capacity - 1;
    return PT_RING_OK;
}

/* Producer: free slots, reloading head only when the cached copy says fewer than `want` are free. */
static uint64_t ring_free(pt_ring_t *r, uint64_t tail, uint64_t want)
{
    struct pt_ring_region *g = r->region;
    uint64_t free_slots = r->capacity - (tail - g->head_cache);
    if (free_slots < want) {
        /* Pairs with the consumer's release store of head: its reads of the freed slots are done. */
        g->head_cache = atomic_load_explicit(&g->head, memory_order_acquire);
        free_slots = r->capacity - (tail - g->head_cache);
    }
    return free_slots;
}

/* Consumer: published messages, reloading tail only when the cached copy says fewer than `want`. */
static uint64_t ring_avail(pt_ring_t *r, uint64_t head, uint64_t want)
{
    struct pt_ring_region *g = r->region;
    uint64_t avail = g->tail_cache - head;
    if (avail < want) {
        /* Pairs with the producer's release store of tail: the slots below it are fully written. */
        g->tail_cache = atomic_load_explicit(&g->tail, memory_order_acquire);
        avail = g->tail_cache - head;
    }
    return avail;
}

int pt_ring_try_push(pt_ring_t *r, const void *msg64)
{
    struct pt_ring_region *g = r->region;
    uint64_t tail = atomic_load_explicit(&g->tail, memory_order_relaxed); /* our own index */
    if (ring_free(r, tail, 1) == 0)
        return PT_RING_FULL;
    memcpy(r->slots + (tail & r->mask) * PT_RING_SLOT_BYTES, msg64, PT_RING_SLOT_BYTES);
    /* Publishes the slot just written; pairs with the consumer's acquire load of tail. */
    atomic_store_explicit(&g->tail, tail + 1, memory_order_release);
    return PT_RING_OK;
}

size_t pt_ring_push_batch(pt_ring_t *r, const void *msgs, size_t n)
{
    struct pt_ring_region *g = r->region;
    uint64_t tail = atomic_load_explicit(&g->tail, memory_order_relaxed); /* our own index */
    uint64_t free_slots = ring_free(r, tail, n);
    if (n > free_slots)
        n = (size_t)free_slots;
    if (n == 0)
        return 0;
    size_t start = (size_t)(tail & r->mask);
    size_t first = r->capacity - start;  /* slots before the wrap */
    if (first > n)
        first = n;
    memcpy(r->slots + start * PT_RING_SLOT_BYTES, msgs, first * PT_RING_SLOT_BYTES);
    memcpy(r->slots, (const unsigned char *)msgs + first * PT_RING_SLOT_BYTES, (n - first) * PT_RING_SLOT_BYTES);
    /* Publishes all n slots at once; pairs with the consumer's acquire load of tail. */
    atomic_store_explicit(&g->tail, tail + n, memory_order_release);
    return n;
}

int pt_ring_try_pop(pt_ring_t *r, void *out64)
{
    struct pt_ring_region *g = r->region;
    uint64_t head = atomic_load_explicit(&g->head, memory_order_relaxed); /* our own index */
    if (ring_avail(r, head, 1) == 0)
        return PT_RING_EMPTY;
    memcpy(out64, r->slots + (head & r->mask) * PT_RING_SLOT_BYTES, PT_RING_SLOT_BYTES);
    /* Hands the slot back after the copy; pairs with the producer's acquire load of head. */
    atomic_store_explicit(&g->head, head + 1, memory_order_release);
    return PT_RING_OK;
}

size_t pt_ring_pop_batch(pt_ring_t *r, void *out, size_t max)
{
    struct pt_ring_region *g = r->region;
    uint64_t head = atomic_load_explicit(&g->head, memory_order_relaxed); /* our own index */
    uint64_t avail = ring_avail(r, head, max);
    size_t n = max < avail ? max : (size_t)avail;
    if (n == 0)
        return 0;
    size_t start = (size_t)(head & r->mask);
    size_t first = r->capacity - start;
    if (first > n)
        first = n;
    memcpy(out, r->slots + start * PT_RING_SLOT_BYTES, first * PT_RING_SLOT_BYTES);
    memcpy((unsigned char *)out + first * PT_RING_SLOT_BYTES, r->slots, (n - first) * PT_RING_SLOT_BYTES);
    /* Hands the n slots back after the copies; pairs with the producer's acquire load of head. */
    atomic_store_explicit(&g->head, head + n, memory_order_release);
    return n;
}

size_t pt_ring_peek(pt_ring_t *r, const void **first, size_t max)
{
    struct pt_ring_region *g = r->region;
    uint64_t head = atomic_load_explicit(&g->head, memory_order_relaxed); /* our own index */
    size_t start = (size_t)(head & r->mask);
    size_t run = r->capacity - start;   /* contiguous slots before the wrap */
    if (run > max)
        run = max;
    uint64_t avail = ring_avail(r, head, run);
    size_t n = run < avail ? run : (size_t)avail;
    *first = r->slots + start * PT_RING_SLOT_BYTES;
    return n;
}

void pt_ring_release(pt_ring_t *r, size_t n)
{
    struct pt_ring_region *g = r->region;
    uint64_t head = atomic_load_explicit(&g->head, memory_order_relaxed); /* our own index */
    uint64_t avail = g->tail_cache - head;  /* what this consumer has seen published (peek refreshed it) */
    if (n > avail)
        n = (size_t)avail;
    if (n == 0)
        return;
    /* Hands the peeked slots back once the caller is done reading them in place;
     * pairs with the producer's acquire load of head. */
    atomic_store_explicit(&g->head, head + n, memory_order_release);
}

size_t pt_ring_depth(pt_ring_t *r)
{
    struct pt_ring_region *g = r->region;
    /* head first: tail only grows and is always >= head, so a later tail load is >= this head.
     * Both acquire so a monitor's snapshot is ordered after the stores it reflects. */
    uint64_t head = atomic_load_explicit(&g->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&g->tail, memory_order_acquire);
    return (size_t)(tail - head);
}

uint64_t pt_ring_head(pt_ring_t *r)
{
    return atomic_load_explicit(&r->region->head, memory_order_acquire); /* monitoring snapshot */
}

uint64_t pt_ring_tail(pt_ring_t *r)
{
    return atomic_load_explicit(&r->region->tail, memory_order_acquire); /* monitoring snapshot */
}
