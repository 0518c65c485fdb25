/*
 * bcast.c - the broadcast ring of pt_bcast.h: one producer that never waits,
 * any number of readers (in any processes) that never write to the region.
 *
 * Publishing position p into slot i = p & mask (pt_bcast_publish; a batch does
 * each step for all its slots before the next step):
 *   P1  seq[i] = 0                  relaxed: "slot i is being overwritten"
 *   P2  release fence               orders P1 before every payload store below
 *   P3  slot i = message            eight relaxed 64-bit atomic stores
 *   P4  seq[i] = p + 1              release: slot i now holds position p
 *   P5  tail = p + 1                release: position p is published
 * Reading position `next` (pt_bcast_read; a batch reads next .. next+n-1):
 *   R1  t = tail                    acquire, pairs with P5
 *       t == next: EMPTY; t - next > capacity: lapped, OVERRUN
 *   R2  seq[next & mask] == next+1? acquire, pairs with P4; else OVERRUN
 *   R3  copy the slot(s)            relaxed 64-bit atomic loads
 *   R4  acquire fence               pairs with P2 of whichever publish R3 saw
 *   R5  seq[next & mask] == next+1? relaxed; else OVERRUN (the copy is discarded)
 *
 * Why a message that passes R5 is exactly what was published at `next`:
 *   - Not older: P3 of position j (next <= j < t) is sequenced before P5 of
 *     position j, which R1 read (or a later tail, same release sequence), so
 *     P3 happens-before R3: by coherence R3 reads position j's words or later
 *     ones, never position j - capacity's.
 *   - Not newer, not torn: suppose R3 read any word stored by a later publish
 *     into slot j & mask (position j + k*capacity, k >= 1). That store comes
 *     after that publish's P2 fence, so the fences synchronize (P2 -> R4), and
 *     everything sequenced before P2 happens-before R5. The producer writes
 *     positions in order, so P1 of position next + capacity (slot next & mask)
 *     is sequenced before that P2. R5 therefore reads 0 or a later seq value,
 *     never next + 1, and the copy is thrown away. So checking the FIRST slot
 *     of a batch validates the whole batch: the producer overwrites a batch's
 *     slots oldest first.
 *   - The payload is accessed through relaxed atomics (plain movs on x86-64)
 *     rather than memcpy, so a copy that races with an overwrite is a detected
 *     stale read, not a C11 data race (and ThreadSanitizer sees no race).
 * seq[i] is the ring position plus one, not the event's engine seq: 0 means
 * "never written or being rewritten", and positions never repeat (2^64).
 *
 * Overrun: the reader's cursor moves to the oldest position the ring still
 * holds when it looks, max(next + 1, tail - capacity), and lost_last is the
 * distance moved. While a producer is writing, that oldest slot can be taken
 * before the reader gets to it: the reader then overruns again (by a few
 * messages) and every loss is still counted. A reader that would rather have
 * headroom calls pt_bcast_resync (newest position) and takes a snapshot.
 * Readers keep everything in their process-local pt_bcast_reader_t: any
 * number of them cost the producer nothing.
 */
#include "pt_bcast.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "pt_wire.h"

/* The region's header; byte offsets are drawn in pt_bcast.h and checked below. */
struct pt_bcast_region {
    /* line 0: written once by pt_bcast_init, read by pt_bcast_attach. */
    _Atomic uint64_t magic;   /* release-stored last by init: publishes version/capacity and the zeroed tail/seq;
                                 pairs with the acquire load in pt_bcast_attach */
    uint32_t version;
    uint32_t capacity;
    uint32_t slot_bytes;
    unsigned char pad0[64 - 20];
    /* line 1: the producer's published position, alone on its line. */
    _Atomic uint64_t tail;    /* producer release-stores after a message's slot and seq (P5): publishes them;
                                 pairs with the readers' acquire loads (R1, overrun, resync, open, tail) */
    unsigned char pad1[56];
    /* then: _Atomic uint64_t seq[capacity] (padded to 64 bytes), then the slots. */
};

_Static_assert(offsetof(struct pt_bcast_region, magic) == PT_BCAST_OFF_META, "meta line");
_Static_assert(offsetof(struct pt_bcast_region, tail) == PT_BCAST_OFF_TAIL, "tail on line 1");
_Static_assert(sizeof(struct pt_bcast_region) == PT_BCAST_HEADER_BYTES, "seq array starts after the header");
_Static_assert(PT_BCAST_OFF_SEQ == PT_BCAST_HEADER_BYTES, "seq array on line 2");
_Static_assert(PT_BCAST_SLOT_BYTES == PT_MSG_SIZE, "a slot is one wire message");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "seq entries and payload words are 8 bytes");
/* Across processes the atomics must be lock-free (a lock would live in one process's memory). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "u64 is long long");

#define BCAST_WORDS (PT_BCAST_SLOT_BYTES / 8)

static bool bcast_capacity_ok(uint32_t capacity)
{
    return capacity != 0 && capacity <= PT_BCAST_MAX_CAPACITY && (capacity & (capacity - 1)) == 0;
}

size_t pt_bcast_seq_bytes(uint32_t capacity)
{
    if (!bcast_capacity_ok(capacity))
        return 0;
    return ((size_t)capacity * 8 + 63) & ~(size_t)63;
}

size_t pt_bcast_slots_offset(uint32_t capacity)
{
    if (!bcast_capacity_ok(capacity))
        return 0;
    return PT_BCAST_HEADER_BYTES + pt_bcast_seq_bytes(capacity);
}

size_t pt_bcast_bytes(uint32_t capacity)
{
    if (!bcast_capacity_ok(capacity))
        return 0;
    return pt_bcast_slots_offset(capacity) + (size_t)capacity * PT_BCAST_SLOT_BYTES;
}

int pt_bcast_init(void *mem, size_t bytes, uint32_t capacity)
{
    if (mem == NULL || ((uintptr_t)mem & 63) != 0 || !bcast_capacity_ok(capacity) || bytes < pt_bcast_bytes(capacity))
        return PT_BCAST_EINVAL;
    struct pt_bcast_region *g = mem;
    atomic_store_explicit(&g->magic, 0, memory_order_relaxed);
    /* Header after magic, the seq array (0 = no message) and the slots. */
    memset((unsigned char *)mem + sizeof g->magic, 0, pt_bcast_bytes(capacity) - sizeof g->magic);
    g->version = PT_BCAST_VERSION;
    g->capacity = capacity;
    g->slot_bytes = PT_BCAST_SLOT_BYTES;
    atomic_store_explicit(&g->tail, 0, memory_order_relaxed);
    /* Publishes the header and zeroed seq array above; pairs with the acquire load of magic in pt_bcast_attach. */
    atomic_store_explicit(&g->magic, PT_BCAST_MAGIC, memory_order_release);
    return PT_BCAST_OK;
}

int pt_bcast_attach(void *mem, size_t bytes, pt_bcast_t *out)
{
    if (mem == NULL || out == NULL || ((uintptr_t)mem & 63) != 0 || bytes < PT_BCAST_HEADER_BYTES)
        return PT_BCAST_EINVAL;
    struct pt_bcast_region *g = mem;
    /* Pairs with the release store in pt_bcast_init: the fields below are the initialised ones. */
    if (atomic_load_explicit(&g->magic, memory_order_acquire) != PT_BCAST_MAGIC)
        return PT_BCAST_EBADMAGIC;
    if (g->version != PT_BCAST_VERSION)
        return PT_BCAST_EBADVERSION;
    if (g->slot_bytes != PT_BCAST_SLOT_BYTES || !bcast_capacity_ok(g->capacity) || bytes < pt_bcast_bytes(g->capacity))
        return PT_BCAST_EINVAL;
    out->region = g;
    out->seq = (unsigned char *)mem + PT_BCAST_OFF_SEQ;
    out->slots = (unsigned char *)mem + pt_bcast_slots_offset(g->capacity);
    out->capacity = g->capacity;
    out->mask = (uint64_t)g->capacity - 1;
    return PT_BCAST_OK;
}

static _Atomic uint64_t *bcast_seq(pt_bcast_t *b, uint64_t pos)
{
    return (_Atomic uint64_t *)b->seq + (pos & b->mask);
}

static _Atomic uint64_t *bcast_slot(pt_bcast_t *b, uint64_t pos)
{
    return (_Atomic uint64_t *)b->slots + (pos & b->mask) * BCAST_WORDS;
}

/* P3: relaxed word stores (the source may be unaligned: memcpy into a register first). */
static void bcast_store_msg(_Atomic uint64_t *dst, const unsigned char *src)
{
    for (int w = 0; w < BCAST_WORDS; w++) {
        uint64_t v;
        memcpy(&v, src + 8 * w, 8);
        atomic_store_explicit(&dst[w], v, memory_order_relaxed); /* ordered by P2 before, P4 after */
    }
}

/* R3: relaxed word loads; validated afterwards by R4 + R5. */
static void bcast_load_msg(unsigned char *dst, _Atomic uint64_t *src)
{
    for (int w = 0; w < BCAST_WORDS; w++) {
        uint64_t v = atomic_load_explicit(&src[w], memory_order_relaxed); /* checked by R5 after the R4 fence */
        memcpy(dst + 8 * w, &v, 8);
    }
}

/* Publishes positions [pos, pos + n) from msgs, n <= capacity (so no slot is written twice). */
static void bcast_publish_run(pt_bcast_t *b, uint64_t pos, const unsigned char *msgs, size_t n)
{
    struct pt_bcast_region *g = b->region;
    for (size_t k = 0; k < n; k++)
        /* P1: invalidates position pos + k - capacity; made visible before any P3 below by the P2 fence. */
        atomic_store_explicit(bcast_seq(b, pos + k), 0, memory_order_relaxed);
    /* P2: orders the P1 marks before the payload stores; pairs with the reader's R4 acquire fence
     * (a reader whose copy saw any of the new words then sees its slot's mark at R5). */
    atomic_thread_fence(memory_order_release);
    for (size_t k = 0; k < n; k++)
        bcast_store_msg(bcast_slot(b, pos + k), msgs + k * PT_BCAST_SLOT_BYTES);
    for (size_t k = 0; k < n; k++)
        /* P4: names the slot's new position after its payload; pairs with the reader's R2 acquire load. */
        atomic_store_explicit(bcast_seq(b, pos + k), pos + k + 1, memory_order_release);
    /* P5: publishes the n messages; pairs with the readers' acquire loads of tail (R1). */
    atomic_store_explicit(&g->tail, pos + n, memory_order_release);
}

int pt_bcast_publish(pt_bcast_t *b, const void *msg64)
{
    uint64_t pos = atomic_load_explicit(&b->region->tail, memory_order_relaxed); /* our own index */
    bcast_publish_run(b, pos, msg64, 1);
    return PT_BCAST_OK;
}

size_t pt_bcast_publish_batch(pt_bcast_t *b, const void *msgs, size_t n)
{
    const unsigned char *src = msgs;
    size_t done = 0;
    while (done < n) {
        size_t run = n - done;
        if (run > b->capacity)
            run = b->capacity;
        uint64_t pos = atomic_load_explicit(&b->region->tail, memory_order_relaxed); /* our own index */
        bcast_publish_run(b, pos, src + done * PT_BCAST_SLOT_BYTES, run);
        done += run;
    }
    return n;
}

uint64_t pt_bcast_tail(pt_bcast_t *b)
{
    return atomic_load_explicit(&b->region->tail, memory_order_acquire); /* monitoring snapshot */
}

int pt_bcast_reader_open(pt_bcast_t *b, pt_bcast_reader_t *out)
{
    if (b == NULL || out == NULL || b->region == NULL)
        return PT_BCAST_EINVAL;
    memset(out, 0, sizeof *out);
    out->bcast = *b;
    /* Pairs with P5: the reader starts after everything already published. */
    out->next = atomic_load_explicit(&b->region->tail, memory_order_acquire);
    return PT_BCAST_OK;
}

/* The message at the cursor is gone (or going): move to the oldest position the ring holds now. */
static int bcast_overrun(pt_bcast_reader_t *rd)
{
    pt_bcast_t *b = &rd->bcast;
    /* Pairs with P5; tail only grows, so this is >= the tail the caller saw (> rd->next). */
    uint64_t tail = atomic_load_explicit(&b->region->tail, memory_order_acquire);
    uint64_t oldest = tail > b->capacity ? tail - b->capacity : 0;
    if (oldest <= rd->next)
        oldest = rd->next + 1; /* the cursor's own message failed its check: it is lost for sure */
    rd->lost_last = oldest - rd->next;
    rd->lost_total += rd->lost_last;
    rd->overruns++;
    rd->next = oldest;
    return PT_BCAST_OVERRUN;
}

/* R1: messages available at the cursor, or a return code (EMPTY, OVERRUN, EINVAL) in *rc. */
static uint64_t bcast_avail(pt_bcast_reader_t *rd, int *rc)
{
    /* R1: pairs with P5: every slot below tail was fully written (P3, P4) before it. */
    uint64_t tail = atomic_load_explicit(&rd->bcast.region->tail, memory_order_acquire);
    uint64_t avail = tail - rd->next;
    if (avail == 0) {
        *rc = PT_BCAST_EMPTY;
    } else if ((int64_t)avail < 0) {
        *rc = PT_BCAST_EINVAL; /* cursor ahead of the producer: the region was re-initialised */
    } else if (avail > rd->bcast.capacity) {
        *rc = bcast_overrun(rd);
    } else {
        *rc = PT_BCAST_OK;
    }
    return avail;
}

int pt_bcast_read(pt_bcast_reader_t *rd, void *out64)
{
    int rc;
    bcast_avail(rd, &rc);
    if (rc != PT_BCAST_OK)
        return rc;
    pt_bcast_t *b = &rd->bcast;
    uint64_t next = rd->next;
    _Atomic uint64_t *seq = bcast_seq(b, next);
    /* R2: pairs with P4; fails early if the slot was already taken for a later position. */
    if (atomic_load_explicit(seq, memory_order_acquire) != next + 1)
        return bcast_overrun(rd);
    bcast_load_msg(out64, bcast_slot(b, next));
    /* R4: pairs with P2 of any publish whose words R3 saw: its P1 mark is then visible to R5. */
    atomic_thread_fence(memory_order_acquire);
    /* R5: still position `next`? (relaxed: the R4 fence does the ordering) */
    if (atomic_load_explicit(seq, memory_order_relaxed) != next + 1)
        return bcast_overrun(rd);
    rd->next = next + 1;
    return PT_BCAST_OK;
}

int pt_bcast_read_batch(pt_bcast_reader_t *rd, void *out, size_t max, size_t *n_read)
{
    if (n_read == NULL)
        return PT_BCAST_EINVAL;
    *n_read = 0;
    if (out == NULL || max == 0)
        return PT_BCAST_EINVAL;
    int rc;
    uint64_t avail = bcast_avail(rd, &rc);
    if (rc != PT_BCAST_OK)
        return rc;
    pt_bcast_t *b = &rd->bcast;
    uint64_t next = rd->next;
    size_t n = avail < max ? (size_t)avail : max;
    _Atomic uint64_t *first_seq = bcast_seq(b, next);
    /* R2 on the batch's oldest slot (the first one the producer overwrites); pairs with P4. */
    if (atomic_load_explicit(first_seq, memory_order_acquire) != next + 1)
        return bcast_overrun(rd);
    unsigned char *dst = out;
    for (size_t k = 0; k < n; k++)
        bcast_load_msg(dst + k * PT_BCAST_SLOT_BYTES, bcast_slot(b, next + k));
    /* R4: pairs with P2 of any publish whose words the copies saw. */
    atomic_thread_fence(memory_order_acquire);
    /* R5 on the oldest slot validates them all (see the top of this file). */
    if (atomic_load_explicit(first_seq, memory_order_relaxed) != next + 1)
        return bcast_overrun(rd);
    rd->next = next + n;
    *n_read = n;
    return PT_BCAST_OK;
}

uint64_t pt_bcast_resync(pt_bcast_reader_t *rd)
{
    /* Pairs with P5: the reader continues after everything published so far. */
    uint64_t tail = atomic_load_explicit(&rd->bcast.region->tail, memory_order_acquire);
    uint64_t skipped = tail - rd->next;
    if ((int64_t)skipped < 0)
        skipped = 0;
    rd->next = tail;
    return skipped;
}

uint64_t pt_bcast_reader_lag(pt_bcast_reader_t *rd)
{
    /* Pairs with P5 (a monitoring snapshot). */
    return atomic_load_explicit(&rd->bcast.region->tail, memory_order_acquire) - rd->next;
}
