/*
 * pt_ring.h - single-producer/single-consumer ring of 64-byte messages
 * (the pt_wire.h commands and events) in a caller-provided memory region,
 * typically a named shared-memory segment mapped by two processes.
 *
 * Region layout (byte offsets; every line is one 64-byte cache line, so the
 * index one side writes never shares a line with what the other side writes):
 *
 *     0  +--------------------------------------------------------------+
 *        | magic u64 | version u32 | capacity u32 | slot_bytes u32 | pad | init writes, attach checks
 *    64  +--------------------------------------------------------------+
 *        | tail  (_Atomic u64)  producer writes (release), consumer reads  |
 *   128  +--------------------------------------------------------------+
 *        | head_cache (u64)     producer only: last head it loaded         |
 *   192  +--------------------------------------------------------------+
 *        | head  (_Atomic u64)  consumer writes (release), producer reads  |
 *   256  +--------------------------------------------------------------+
 *        | tail_cache (u64)     consumer only: last tail it loaded         |
 *   320  +--------------------------------------------------------------+
 *        | slot 0 | slot 1 | ... | slot capacity-1      64 bytes each      |
 *        +--------------------------------------------------------------+
 *   PT_RING_HEADER_BYTES + capacity * PT_RING_SLOT_BYTES = pt_ring_bytes(capacity)
 *
 * head and tail are free-running 64-bit message counts (they never wrap in
 * practice: 2^64 messages); a message's slot is its position & (capacity - 1).
 * Invariants: (1) 0 <= tail - head <= capacity; (2) slots [head, tail) hold
 * published, unconsumed messages; (3) only the producer writes tail and
 * head_cache, only the consumer writes head and tail_cache.
 *
 * Return codes: 0 is OK; PT_RING_FULL / PT_RING_EMPTY mean "try again" and are
 * not errors; the PT_RING_E* codes are errors (bad arguments or region).
 * Functions take the handle first and keep no global state; one handle per
 * side per process (a handle is not shared between threads).
 */
#ifndef PT_RING_H
#define PT_RING_H

#include <stddef.h>
#include <stdint.h>

#define PT_RING_SLOT_BYTES 64
#define PT_RING_HEADER_BYTES 320
#define PT_RING_OFF_META 0
#define PT_RING_OFF_TAIL 64
#define PT_RING_OFF_HEAD_CACHE 128
#define PT_RING_OFF_HEAD 192
#define PT_RING_OFF_TAIL_CACHE 256
#define PT_RING_MAGIC 0x474E495254505450
#define PT_RING_VERSION 1
#define PT_RING_MAX_CAPACITY 1073741824

enum pt_ring_rc {
    PT_RING_OK = 0,
    PT_RING_FULL = 1,         /* try again: no free slot (the producer never overwrites) */
    PT_RING_EMPTY = 2,        /* try again: nothing published */
    PT_RING_EINVAL = -1,      /* error: NULL, misaligned, too small, capacity not a power of two */
    PT_RING_EBADMAGIC = -2,   /* error: the region was never initialised as a ring */
    PT_RING_EBADVERSION = -3, /* error: a ring of another layout version */
};

/* The shared region; its layout is the diagram above (defined in ring.c). */
typedef struct pt_ring_region pt_ring_region_t;

/* Process-local handle: where this process mapped the region. */
typedef struct pt_ring {
    pt_ring_region_t *region;
    unsigned char *slots;     /* region + PT_RING_HEADER_BYTES */
    uint64_t mask;            /* capacity - 1 */
    uint32_t capacity;
} pt_ring_t;

/* Bytes a ring of this capacity needs; 0 if capacity is not a power of two in [1, PT_RING_MAX_CAPACITY]. */
size_t pt_ring_bytes(uint32_t capacity);
/* Formats mem (64-byte aligned, >= pt_ring_bytes(capacity)) as an empty ring. Not safe while attached. */
int pt_ring_init(void *mem, size_t bytes, uint32_t capacity);
/* Checks the header of an initialised region and fills *out. */
int pt_ring_attach(void *mem, size_t bytes, pt_ring_t *out);

/* Producer side. */
int pt_ring_try_push(pt_ring_t *r, const void *msg64);
/* Copies as many of n messages as fit and publishes them with one release store; returns how many. */
size_t pt_ring_push_batch(pt_ring_t *r, const void *msgs, size_t n);

/* Consumer side. */
int pt_ring_try_pop(pt_ring_t *r, void *out64);
/* Copies up to max messages out and frees their slots; returns how many. */
size_t pt_ring_pop_batch(pt_ring_t *r, void *out, size_t max);
/* Zero copy: points *first at the oldest message and returns how many (<= max) follow contiguously,
 * up to the end of the slot array; the slots stay owned by the consumer until pt_ring_release. */
size_t pt_ring_peek(pt_ring_t *r, const void **first, size_t max);
/* Frees the n oldest messages (at most what is published) for the producer. */
void pt_ring_release(pt_ring_t *r, size_t n);

/* Either side: messages published and not yet consumed (a snapshot). */
size_t pt_ring_depth(pt_ring_t *r);
/* Either side: the free-running counts, for monitoring and tests. */
uint64_t pt_ring_head(pt_ring_t *r);
uint64_t pt_ring_tail(pt_ring_t *r);

#endif
