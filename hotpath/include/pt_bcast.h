/*
 * pt_bcast.h - one-producer, many-reader broadcast ring of 64-byte messages
 * (the pt_wire.h events: market data) in a caller-provided memory region,
 * typically a named shared-memory segment mapped by the engine and by any
 * number of reader processes.
 *
 * The producer never waits for readers: it overwrites the oldest slot. Readers
 * write nothing to the region; each keeps its cursor (the position of the next
 * message it wants) in its own process-local pt_bcast_reader_t. A reader that
 * falls more than `capacity` messages behind is lapped: pt_bcast_read says
 * PT_BCAST_OVERRUN, tells it how many messages it lost and moves its cursor to
 * the oldest message still in the ring (or the caller resyncs from a snapshot
 * with pt_bcast_resync). A reader never returns a torn or overwritten message:
 * every slot carries the position of the message it holds (a per-slot
 * sequence number, seqlock style; bcast.c argues the ordering).
 *
 * Region layout (byte offsets; capacity is a power of two):
 *
 *     0  +--------------------------------------------------------------+
 *        | magic u64 | version u32 | capacity u32 | slot_bytes u32 | pad | init writes, attach checks
 *    64  +--------------------------------------------------------------+
 *        | tail  (_Atomic u64)  producer writes (release), readers read    | the published position
 *   128  +--------------------------------------------------------------+
 *        | seq[0] | seq[1] | ... | seq[capacity-1]   _Atomic u64 each    | producer writes, readers
 *        | (8 per cache line; padded to a multiple of 64 bytes)          | read: position + 1 of the
 *        |                                                               | message in slot i, 0 while
 *        |                                                               | it is being (over)written
 *   128 + pt_bcast_seq_bytes(capacity) = pt_bcast_slots_offset(capacity)
 *        +--------------------------------------------------------------+
 *        | slot 0 | slot 1 | ... | slot capacity-1      64 bytes each      |
 *        +--------------------------------------------------------------+
 *   pt_bcast_slots_offset(capacity) + capacity * PT_BCAST_SLOT_BYTES = pt_bcast_bytes(capacity)
 *
 * Positions are free-running 64-bit message counts (tail = messages published
 * so far); the message at position p lives in slot p & (capacity - 1) until
 * the producer writes position p + capacity there.
 * Invariants: (1) only the producer writes the region after init; (2) slot i
 * holds position p (seq[i] == p + 1) only if p < tail and p + capacity >= tail;
 * (3) a reader's cursor only moves forward, by exactly the messages it was
 * handed plus the ones it reports lost (lost_total) or skips (pt_bcast_resync).
 *
 * Return codes: 0 is OK; PT_BCAST_EMPTY means "try again" and PT_BCAST_OVERRUN
 * means "you lost messages" (neither is an error: the region is fine); the
 * PT_BCAST_E* codes are errors (bad arguments or region). Functions take the
 * handle first and keep no global state; a handle or reader is used by one
 * thread at a time, and there is exactly one producer.
 */
#ifndef PT_BCAST_H
#define PT_BCAST_H

#include <stddef.h>
#include <stdint.h>

#define PT_BCAST_SLOT_BYTES 64
#define PT_BCAST_HEADER_BYTES 128
#define PT_BCAST_OFF_META 0
#define PT_BCAST_OFF_TAIL 64
#define PT_BCAST_OFF_SEQ 128
#define PT_BCAST_MAGIC 0x5453414342505450
#define PT_BCAST_VERSION 1
#define PT_BCAST_MAX_CAPACITY 1073741824

enum pt_bcast_rc {
    PT_BCAST_OK = 0,
    PT_BCAST_EMPTY = 1,         /* try again: nothing published beyond the reader's cursor */
    PT_BCAST_OVERRUN = 2,       /* the reader was lapped: reader->lost_last messages skipped, cursor moved on */
    PT_BCAST_EINVAL = -1,       /* error: NULL, misaligned, too small, capacity not a power of two */
    PT_BCAST_EBADMAGIC = -2,    /* error: the region was never initialised as a broadcast ring */
    PT_BCAST_EBADVERSION = -3,  /* error: a broadcast ring of another layout version */
};

/* The shared region's header; its layout is the diagram above (defined in bcast.c). */
typedef struct pt_bcast_region pt_bcast_region_t;

/* Process-local handle: where this process mapped the region. */
typedef struct pt_bcast {
    pt_bcast_region_t *region;
    void *seq;                  /* region + PT_BCAST_OFF_SEQ: capacity _Atomic uint64_t */
    void *slots;                /* region + pt_bcast_slots_offset(capacity) */
    uint64_t mask;              /* capacity - 1 */
    uint32_t capacity;
} pt_bcast_t;

/* A reader: process-local, never written to the region. */
typedef struct pt_bcast_reader {
    pt_bcast_t bcast;
    uint64_t next;              /* position of the next message this reader wants */
    uint64_t lost_last;         /* messages lost by the latest PT_BCAST_OVERRUN */
    uint64_t lost_total;        /* messages lost by every overrun since the reader was opened */
    uint64_t overruns;          /* PT_BCAST_OVERRUN results since the reader was opened */
} pt_bcast_reader_t;

/* Bytes of the seq array for this capacity (a multiple of 64); 0 if capacity is invalid. */
size_t pt_bcast_seq_bytes(uint32_t capacity);
/* Byte offset of slot 0; 0 if capacity is invalid. */
size_t pt_bcast_slots_offset(uint32_t capacity);
/* Bytes a broadcast ring of this capacity needs; 0 if capacity is not a power of two in [1, PT_BCAST_MAX_CAPACITY]. */
size_t pt_bcast_bytes(uint32_t capacity);
/* Formats mem (64-byte aligned, >= pt_bcast_bytes(capacity)) as an empty ring. Not safe while attached. */
int pt_bcast_init(void *mem, size_t bytes, uint32_t capacity);
/* Checks the header of an initialised region and fills *out. */
int pt_bcast_attach(void *mem, size_t bytes, pt_bcast_t *out);

/* Producer side (one producer). Never waits: overwrites the oldest slot. Returns PT_BCAST_OK. */
int pt_bcast_publish(pt_bcast_t *b, const void *msg64);
/* Publishes n messages in order (one release store of tail per up to capacity of them); returns n. */
size_t pt_bcast_publish_batch(pt_bcast_t *b, const void *msgs, size_t n);

/* Either side: messages published so far (the position the next one gets). */
uint64_t pt_bcast_tail(pt_bcast_t *b);

/* Reader side. Opens a reader at the newest position: it sees what is published from now on. */
int pt_bcast_reader_open(pt_bcast_t *b, pt_bcast_reader_t *out);
/* Copies the message at the cursor to out64 and advances: PT_BCAST_OK, PT_BCAST_EMPTY, or
 * PT_BCAST_OVERRUN (nothing handed out, out64 may hold garbage; lost_last set; the cursor moved to the
 * oldest message still held). PT_BCAST_EINVAL if the cursor is ahead of tail (the region was re-initialised). */
int pt_bcast_read(pt_bcast_reader_t *rd, void *out64);
/* Copies up to max messages from the cursor; *n_read says how many. PT_BCAST_OK with *n_read >= 1,
 * PT_BCAST_EMPTY with 0, or PT_BCAST_OVERRUN with 0 (as pt_bcast_read; the whole batch counts as lost).
 * PT_BCAST_EINVAL for max == 0 or NULL pointers. */
int pt_bcast_read_batch(pt_bcast_reader_t *rd, void *out, size_t max, size_t *n_read);
/* Gives up on everything unread: moves the cursor to the newest position (the caller then asks the
 * engine for a snapshot). Returns how many messages were skipped (not counted in lost_total). */
uint64_t pt_bcast_resync(pt_bcast_reader_t *rd);
/* Messages published beyond the cursor (may exceed capacity: then the next read overruns). */
uint64_t pt_bcast_reader_lag(pt_bcast_reader_t *rd);

#endif
