/*
 * journal.c - the append-only command journal (pt_journal.h has the layout and the guarantees).
 *
 * Invariants:
 *   (1) records 0 .. committed-1 are whole commands, in append order, never rewritten;
 *   (2) committed only grows, by one per append, and never passes capacity;
 *   (3) pt_journal_append makes no syscall and takes no lock (one writer);
 *   (4) crcs[i] = record_crc(i, record i) for every i < committed, written before committed passes i; no
 *       other slot is written, so a slot at or past committed is zero or the one unpublished append's.
 *
 * Memory ordering:
 *   - committed: the appender copies record i, then release-stores committed = i + 1; a reader acquire-loads
 *     committed and may then read records below it (pairs with that store). A reader in another process after
 *     a SIGKILL of the appender sees the same: the page cache holds both, in that order on x86-64 (TSO) and by
 *     the release store elsewhere.
 *   - crcs[i] is a plain store before that release store, so the same acquire load covers it.
 *   - the meta line is written by pt_journal_init before anyone attaches (the caller orders init before
 *     attach: same thread, or a file written and then mapped); magic is release-stored last regardless.
 *
 * CRC32C: the crc32 instruction (SSE4.2) processes 8 bytes in about 3 cycles; the library is built for any
 * x86-64 (no -msse4.2), so only the functions marked target("sse4.2") use it, and only after
 * __builtin_cpu_supports says the CPU has it (pt_journal_crc_hw, cached in the handle at attach). Elsewhere a
 * byte-at-a-time table (the reflected Castagnoli polynomial 0x82F63B78) gives the same values, about 25 times
 * slower (bench/journal_bench.py: some 115 ns an append against 4.5): a fallback, still well below the cost of
 * the engine command it journals.
 */
#include "pt_journal.h"

#include <stdatomic.h>
#include <string.h>

#include "pt_crc32c.h" /* c_engine/include: the one CRC32C, shared with the engine's snapshots */

#define PT_JOURNAL_HAVE_SSE42 PT_CRC32C_HAVE_SSE42

struct pt_journal_region {
    _Atomic uint64_t magic;
    uint32_t version;
    uint32_t record_bytes;
    uint64_t capacity;
    uint64_t config_hash; /* the writer's configuration fingerprint (0 = not given); opaque to the journal */
    uint32_t meta_crc;    /* CRC32C of the five fields above (meta_crc()): a damaged capacity or stamp is named */
    unsigned char pad0[64 - 36];
    _Atomic uint64_t committed;
    unsigned char pad1[56];
};

_Static_assert(sizeof(pt_journal_region_t) == PT_JOURNAL_HEADER_BYTES, "journal header layout");
_Static_assert(offsetof(pt_journal_region_t, meta_crc) == PT_JOURNAL_OFF_META_CRC, "meta checksum after the stamp");
_Static_assert(offsetof(pt_journal_region_t, committed) == PT_JOURNAL_OFF_COMMITTED, "count on its own line");
_Static_assert(sizeof(pt_command_t) == PT_JOURNAL_RECORD_BYTES, "a record is one wire command");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared across processes");

#if PT_JOURNAL_HAVE_SSE42
/* record_crc with the instruction: nine dependent crc32s (index, then the record's eight words). */
__attribute__((target("sse4.2"))) static uint32_t record_crc_hw(uint64_t i, const pt_command_t *cmd)
{
    const unsigned char *p = (const unsigned char *)cmd;
    uint64_t c = _mm_crc32_u64(0xFFFFFFFFu, i); /* x86-64 is little-endian: i's bytes in file order */
    for (int k = 0; k < PT_JOURNAL_RECORD_BYTES; k += 8) {
        uint64_t word;
        memcpy(&word, p + k, 8);
        c = _mm_crc32_u64(c, word);
    }
    return ~(uint32_t)c;
}
#endif

int pt_journal_crc_hw(void) { return pt_crc32c_hw_available(); }

uint32_t pt_journal_crc32c(uint32_t crc, const void *data, size_t n, int hw) { return pt_crc32c(crc, data, n, hw); }

/* Record i's checksum (pt_journal.h, "Checksums"): CRC32C of i as 8 little-endian bytes, then the record. */
static uint32_t record_crc(int hw, uint64_t i, const pt_command_t *cmd)
{
#if PT_JOURNAL_HAVE_SSE42
    if (hw)
        return record_crc_hw(i, cmd);
#else
    (void)hw;
#endif
    unsigned char index[8];
    for (int k = 0; k < 8; k++)
        index[k] = (unsigned char)(i >> (8 * k));
    return pt_crc32c_sw(pt_crc32c_sw(0, index, sizeof index), (const unsigned char *)cmd, sizeof *cmd);
}

/* Bytes of the checksum area: one u32 a record, rounded up to whole cache lines. */
static size_t crc_area_bytes(uint64_t capacity)
{
    return ((size_t)capacity * PT_JOURNAL_CRC_BYTES + 63) & ~(size_t)63;
}

size_t pt_journal_bytes(uint64_t capacity)
{
    if (capacity == 0 || capacity > PT_JOURNAL_MAX_CAPACITY)
        return 0;
    return PT_JOURNAL_HEADER_BYTES + (size_t)capacity * PT_JOURNAL_RECORD_BYTES + crc_area_bytes(capacity);
}

static int region_ok(const void *mem)
{
    return mem != NULL && ((uintptr_t)mem & 63) == 0;
}

/* The header's checksum: CRC32C of magic, version | record_bytes << 32, capacity, config_hash as 4 u64s. */
static uint32_t meta_crc(uint32_t version, uint32_t record_bytes, uint64_t capacity, uint64_t config_hash)
{
    uint64_t meta[4] = {PT_JOURNAL_MAGIC, version | (uint64_t)record_bytes << 32, capacity, config_hash};
    return pt_journal_crc32c(0, meta, sizeof meta, 1);
}

int pt_journal_init(void *mem, size_t bytes, uint64_t capacity, uint64_t config_hash)
{
    size_t need = pt_journal_bytes(capacity);
    if (!region_ok(mem) || need == 0 || bytes < need)
        return PT_JOURNAL_EINVAL;
    pt_journal_region_t *r = mem;
    memset(r, 0, PT_JOURNAL_HEADER_BYTES);
    /* The checksums are zeroed (a zero slot never matches: invariant (4)); the records need not be. */
    memset((unsigned char *)mem + PT_JOURNAL_HEADER_BYTES + (size_t)capacity * PT_JOURNAL_RECORD_BYTES, 0,
           crc_area_bytes(capacity));
    r->version = PT_JOURNAL_VERSION;
    r->record_bytes = PT_JOURNAL_RECORD_BYTES;
    r->capacity = capacity;
    r->config_hash = config_hash;
    r->meta_crc = meta_crc(r->version, r->record_bytes, capacity, config_hash);
    /* Publishes the header: pairs with the acquire load in pt_journal_attach. */
    atomic_store_explicit(&r->magic, PT_JOURNAL_MAGIC, memory_order_release);
    return PT_JOURNAL_OK;
}

int pt_journal_attach(void *mem, size_t bytes, pt_journal_t *out)
{
    if (!region_ok(mem) || out == NULL || bytes < PT_JOURNAL_HEADER_BYTES)
        return PT_JOURNAL_EINVAL;
    pt_journal_region_t *r = mem;
    /* Pairs with the release store in pt_journal_init. */
    if (atomic_load_explicit(&r->magic, memory_order_acquire) != PT_JOURNAL_MAGIC)
        return PT_JOURNAL_EBADMAGIC;
    if (r->version != PT_JOURNAL_VERSION || r->record_bytes != PT_JOURNAL_RECORD_BYTES)
        return PT_JOURNAL_EBADVERSION;
    if (r->meta_crc != meta_crc(r->version, r->record_bytes, r->capacity, r->config_hash))
        return PT_JOURNAL_ECORRUPT; /* a damaged capacity would misplace every checksum; a damaged stamp misleads */
    size_t need = pt_journal_bytes(r->capacity);
    if (need == 0 || bytes < need)
        return PT_JOURNAL_EINVAL; /* a truncated file, or a capacity no file could hold */
    /* Pairs with the appender's release store: the records below it are whole. */
    uint64_t committed = atomic_load_explicit(&r->committed, memory_order_acquire);
    if (committed > r->capacity)
        return PT_JOURNAL_ECORRUPT;
    out->region = r;
    out->records = (pt_command_t *)((unsigned char *)mem + PT_JOURNAL_HEADER_BYTES);
    out->crcs = (uint32_t *)(out->records + r->capacity);
    out->capacity = r->capacity;
    out->config_hash = r->config_hash;
    out->committed = committed;
    out->crc_hw = pt_journal_crc_hw();
    return PT_JOURNAL_OK;
}

int pt_journal_append(pt_journal_t *j, const pt_command_t *cmd)
{
    uint64_t i = j->committed;
    if (i == j->capacity)
        return PT_JOURNAL_EFULL;
    memcpy(&j->records[i], cmd, sizeof *cmd);
    j->crcs[i] = record_crc(j->crc_hw, i, cmd); /* from the caller's copy: no read back of the mapping */
    j->committed = i + 1;
    /* Publishes record i and its checksum: pairs with the acquire load in pt_journal_committed / pt_journal_attach. */
    atomic_store_explicit(&j->region->committed, i + 1, memory_order_release);
    return PT_JOURNAL_OK;
}

uint64_t pt_journal_free(const pt_journal_t *j)
{
    return j->capacity - j->committed;
}

uint64_t pt_journal_committed(const pt_journal_t *j)
{
    /* Pairs with the appender's release store of committed. */
    return atomic_load_explicit(&j->region->committed, memory_order_acquire);
}

int pt_journal_read(const pt_journal_t *j, uint64_t i, pt_command_t *out)
{
    if (j == NULL || out == NULL || i >= pt_journal_committed(j))
        return PT_JOURNAL_EINVAL;
    memcpy(out, &j->records[i], sizeof *out);
    return PT_JOURNAL_OK;
}

int pt_journal_check(const pt_journal_t *j, pt_journal_check_t *out)
{
    if (j == NULL || out == NULL)
        return PT_JOURNAL_EINVAL;
    memset(out, 0, sizeof *out);
    /* Pairs with the appender's release store: records and checksums below n are whole. */
    uint64_t n = pt_journal_committed(j);
    if (n > j->capacity)
        return PT_JOURNAL_ECORRUPT;
    out->committed = n;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t got = record_crc(j->crc_hw, i, &j->records[i]);
        if (got != j->crcs[i]) {
            out->intact = i;
            out->bad_offset = PT_JOURNAL_HEADER_BYTES + i * PT_JOURNAL_RECORD_BYTES;
            out->stored_crc = j->crcs[i];
            out->computed_crc = got;
            return PT_JOURNAL_EBADCRC;
        }
    }
    out->intact = n;
    uint64_t past = 0;
    while (n + past < j->capacity && record_crc(j->crc_hw, n + past, &j->records[n + past]) == j->crcs[n + past])
        past++;
    /* A count that moved while we looked belongs to a live appender: what we saw past n were its appends. */
    if (pt_journal_committed(j) != n)
        past = 0;
    out->past_committed = past;
    return past > 1 ? PT_JOURNAL_ECOUNT : PT_JOURNAL_OK;
}
