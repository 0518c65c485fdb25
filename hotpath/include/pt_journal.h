/*
 * pt_journal.h - the engine's append-only command journal in a memory-mapped regular file.
 *
 * The journal holds the command stream: every command the loop ran, as the engine ran it (client_id already
 * overwritten with the sender's slot, ts_ns as received), in engine order. Replaying its records through a
 * fresh engine with the same symbols and limits gives the same events byte for byte and the same
 * pt_engine_state_hash. Rejected commands are kept: they change no book or risk state, but each REJECT
 * takes an event seq, so a journal without them would replay to other seq numbers than the clients saw. docs/HOTPATH.md, "Journal", has the crash and power-loss guarantees and the recovery procedure.
 *
 * Layout (the whole file; the caller maps it MAP_SHARED, 64-byte aligned, >= pt_journal_bytes(capacity)):
 *
 *     0  +--------------------------------------------------------------+
 *        | magic u64 | version u32 | record_bytes u32 (64) | capacity u64 | written once by pt_journal_init
 *        | config_hash u64 (the writer's configuration, 0 = none)         |
 *    64  +--------------------------------------------------------------+
 *        | committed (_Atomic u64): records 0 .. committed-1 are whole  | the appender release-stores it;
 *        |                                                              | readers acquire-load it
 *   128  +--------------------------------------------------------------+
 *        | record 0: pt_command_t (64 bytes) | record 1 | ...           | capacity records
 *        +--------------------------------------------------------------+
 *
 * One appender (the engine loop); any number of readers (in any process) that trust only the first
 * `committed` records. pt_journal_append makes no syscall: a memcpy into the mapping and one release store.
 * Because the mapping is MAP_SHARED on a file, whatever was appended is in the page cache the moment the
 * store retires, so SIGKILL of the process loses nothing; only msync (the engine process's flusher thread)
 * makes it survive a power loss.
 *
 * Return codes: 0 OK, negative enum pt_journal_rc. PT_JOURNAL_EFULL is not "try again": the journal never
 * grows, so its owner must stop taking commands (pt_loop does) and start a new journal.
 */
#ifndef PT_JOURNAL_H
#define PT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "pt_wire.h"

#define PT_JOURNAL_HEADER_BYTES 128
#define PT_JOURNAL_OFF_META 0
#define PT_JOURNAL_OFF_COMMITTED 64
#define PT_JOURNAL_RECORD_BYTES 64
#define PT_JOURNAL_MAGIC 0x4C4E524A54505450 /* "PTPTJRNL" little-endian */
#define PT_JOURNAL_VERSION 2 /* 2: config_hash in the header */
#define PT_JOURNAL_MAX_CAPACITY 1099511627776ULL /* 2^40 records (64 TiB): keeps the byte size in 64 bits */

enum pt_journal_rc {
    PT_JOURNAL_OK = 0,
    PT_JOURNAL_EINVAL = -1,      /* NULL, misaligned, region smaller than the capacity needs, capacity 0 */
    PT_JOURNAL_EBADMAGIC = -2,   /* the region is not a journal (never initialised, or another file) */
    PT_JOURNAL_EBADVERSION = -3, /* a journal of another layout version or record size */
    PT_JOURNAL_ECORRUPT = -4,    /* committed > capacity: the header was damaged */
    PT_JOURNAL_EFULL = -5,       /* capacity records already appended: nothing was written */
};

/* The shared region; its layout is the diagram above (defined in journal.c). */
typedef struct pt_journal_region pt_journal_region_t;

/* Process-local handle: where this process mapped the region. */
typedef struct pt_journal {
    pt_journal_region_t *region;
    pt_command_t *records;  /* region + PT_JOURNAL_HEADER_BYTES */
    uint64_t capacity;      /* records */
    uint64_t config_hash;   /* as given to pt_journal_init */
    uint64_t committed;     /* the appender's copy of the committed count (it is the only writer) */
} pt_journal_t;

/* Bytes a journal of this capacity needs; 0 if capacity is 0 or above PT_JOURNAL_MAX_CAPACITY. */
size_t pt_journal_bytes(uint64_t capacity);
/* Formats mem as an empty journal of `capacity` records. Not safe while anyone is attached. config_hash is
 * the writer's fingerprint of the configuration the records need to replay (symbols, limits, capacities): the
 * journal only keeps it; the engine process refuses to recover from a journal whose fingerprint differs. */
int pt_journal_init(void *mem, size_t bytes, uint64_t capacity, uint64_t config_hash);
/* Checks the header of a formatted region (magic, version, record size, capacity fits, committed <= capacity)
 * and fills *out. A recovering engine attaches the journal it was running on and appends after its records. */
int pt_journal_attach(void *mem, size_t bytes, pt_journal_t *out);

/* Appender side (one thread). Copies *cmd into the next record, then publishes it; PT_JOURNAL_EFULL if full. */
int pt_journal_append(pt_journal_t *j, const pt_command_t *cmd);
/* Records the appender may still write. */
uint64_t pt_journal_free(const pt_journal_t *j);

/* Reader side (any process): the committed count (acquire), and a copy of record i < that count. */
uint64_t pt_journal_committed(const pt_journal_t *j);
int pt_journal_read(const pt_journal_t *j, uint64_t i, pt_command_t *out);

#endif
