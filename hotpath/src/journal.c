/*
 * journal.c - the append-only command journal (pt_journal.h has the layout and the guarantees).
 *
 * Invariants:
 *   (1) records 0 .. committed-1 are whole commands, in append order, never rewritten;
 *   (2) committed only grows, by one per append, and never passes capacity;
 *   (3) pt_journal_append makes no syscall and takes no lock (one writer).
 *
 * Memory ordering:
 *   - committed: the appender copies record i, then release-stores committed = i + 1; a reader acquire-loads
 *     committed and may then read records below it (pairs with that store). A reader in another process after
 *     a SIGKILL of the appender sees the same: the page cache holds both, in that order on x86-64 (TSO) and by
 *     the release store elsewhere.
 *   - the meta line is written by pt_journal_init before anyone attaches (the caller orders init before
 *     attach: same thread, or a file written and then mapped); magic is release-stored last regardless.
 */
#include "pt_journal.h"

#include <stdatomic.h>
#include <string.h>

struct pt_journal_region {
    _Atomic uint64_t magic;
    uint32_t version;
    uint32_t record_bytes;
    uint64_t capacity;
    uint64_t config_hash; /* the writer's configuration fingerprint (0 = not given); opaque to the journal */
    unsigned char pad0[64 - 32];
    _Atomic uint64_t committed;
    unsigned char pad1[56];
};

_Static_assert(sizeof(pt_journal_region_t) == PT_JOURNAL_HEADER_BYTES, "journal header layout");
_Static_assert(offsetof(pt_journal_region_t, committed) == PT_JOURNAL_OFF_COMMITTED, "count on its own line");
_Static_assert(sizeof(pt_command_t) == PT_JOURNAL_RECORD_BYTES, "a record is one wire command");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared across processes");

size_t pt_journal_bytes(uint64_t capacity)
{
    if (capacity == 0 || capacity > PT_JOURNAL_MAX_CAPACITY)
        return 0;
    return PT_JOURNAL_HEADER_BYTES + (size_t)capacity * PT_JOURNAL_RECORD_BYTES;
}

static int region_ok(const void *mem)
{
    return mem != NULL && ((uintptr_t)mem & 63) == 0;
}

int pt_journal_init(void *mem, size_t bytes, uint64_t capacity, uint64_t config_hash)
{
    size_t need = pt_journal_bytes(capacity);
    if (!region_ok(mem) || need == 0 || bytes < need)
        return PT_JOURNAL_EINVAL;
    pt_journal_region_t *r = mem;
    memset(r, 0, PT_JOURNAL_HEADER_BYTES); /* the records need no zeroing: only committed ones are read */
    r->version = PT_JOURNAL_VERSION;
    r->record_bytes = PT_JOURNAL_RECORD_BYTES;
    r->capacity = capacity;
    r->config_hash = config_hash;
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
    size_t need = pt_journal_bytes(r->capacity);
    if (need == 0 || bytes < need)
        return PT_JOURNAL_EINVAL; /* a truncated file, or a capacity no file could hold */
    /* Pairs with the appender's release store: the records below it are whole. */
    uint64_t committed = atomic_load_explicit(&r->committed, memory_order_acquire);
    if (committed > r->capacity)
        return PT_JOURNAL_ECORRUPT;
    out->region = r;
    out->records = (pt_command_t *)((unsigned char *)mem + PT_JOURNAL_HEADER_BYTES);
    out->capacity = r->capacity;
    out->config_hash = r->config_hash;
    out->committed = committed;
    return PT_JOURNAL_OK;
}

int pt_journal_append(pt_journal_t *j, const pt_command_t *cmd)
{
    uint64_t i = j->committed;
    if (i == j->capacity)
        return PT_JOURNAL_EFULL;
    memcpy(&j->records[i], cmd, sizeof *cmd);
    j->committed = i + 1;
    /* Publishes record i: pairs with the acquire load in pt_journal_committed / pt_journal_attach. */
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
