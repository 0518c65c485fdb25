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
 *        | meta_crc u32: CRC32C of the fields above (attach checks it)  |
 *    64  +--------------------------------------------------------------+
 *        | committed (_Atomic u64): records 0 .. committed-1 are whole  | the appender release-stores it;
 *        |                                                              | readers acquire-load it
 *   128  +--------------------------------------------------------------+
 *        | record 0: pt_command_t (64 bytes) | record 1 | ...           | capacity records
 *    C   +--------------------------------------------------------------+  C = 128 + 64 * capacity
 *        | crc 0 (u32) | crc 1 | ... | crc capacity-1 | zeros to a 64-byte multiple
 *        +--------------------------------------------------------------+
 *
 * Checksums (version 3): crc i is the CRC32C (Castagnoli, reflected, init and final xor ~0: the iSCSI/ext4
 * CRC) of the 8-byte little-endian index i followed by record i's 64 bytes. The index makes a record copied
 * to another place fail as surely as a flipped bit. One checksum per record, not per block: a block checksum
 * hashes the same bytes, so it saves only the 4-byte store, and a torn block would cost every record in it
 * (bench/journal_bench.py measures the per-record cost; docs/HOTPATH.md has the figures). The records stay one
 * contiguous array of wire commands (readers map them as numpy COMMAND_DTYPE); the checksums sit after them.
 * Computed with the SSE4.2 crc32 instruction when the CPU has it (checked at attach: the library is built
 * for any x86-64), else with a 256-entry table; both give the same values (tests/c/test_journal.c).
 *
 * A fresh file is zeros, and a zero slot never matches a record, so past the end of the appended records the
 * checks fail: a `committed` raised by damage names its first unwritten record as bad. A `committed` lowered
 * by damage leaves whole records after it, which pt_journal_check counts (past_committed): more than one is
 * a contradiction (PT_JOURNAL_ECOUNT). Exactly one is what a crash between an append's copy and its publishing
 * store leaves: that record was never published, its events never went out, and recovery leaves it out.
 *
 * One appender (the engine loop); any number of readers (in any process) that trust only the first
 * `committed` records. pt_journal_append makes no syscall: a memcpy into the mapping, a checksum store and one
 * release store. Because the mapping is MAP_SHARED on a file, whatever was appended is in the page cache the
 * moment the store retires, so SIGKILL of the process loses nothing; only msync (the engine process's flusher
 * thread) makes it survive a power loss, and the kernel writes pages back in no particular order, so after a
 * power loss the checksums are what tells whole records from stale ones.
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
#define PT_JOURNAL_OFF_META_CRC 32
#define PT_JOURNAL_OFF_COMMITTED 64
#define PT_JOURNAL_RECORD_BYTES 64
#define PT_JOURNAL_MAGIC 0x4C4E524A54505450 /* "PTPTJRNL" little-endian */
#define PT_JOURNAL_VERSION 3 /* 2: config_hash in the header; 3: a CRC32C per record and of the header */
#define PT_JOURNAL_CRC_BYTES 4 /* one u32 checksum per record */
#define PT_JOURNAL_MAX_CAPACITY 1099511627776ULL /* 2^40 records (64 TiB): keeps the byte size in 64 bits */

enum pt_journal_rc {
    PT_JOURNAL_OK = 0,
    PT_JOURNAL_EINVAL = -1,      /* NULL, misaligned, region smaller than the capacity needs, capacity 0 */
    PT_JOURNAL_EBADMAGIC = -2,   /* the region is not a journal (never initialised, or another file) */
    PT_JOURNAL_EBADVERSION = -3, /* a journal of another layout version or record size */
    PT_JOURNAL_ECORRUPT = -4,    /* the header was damaged: its checksum fails, or committed > capacity */
    PT_JOURNAL_EFULL = -5,       /* capacity records already appended: nothing was written */
    PT_JOURNAL_EBADCRC = -6,     /* pt_journal_check: a committed record does not match its checksum */
    PT_JOURNAL_ECOUNT = -7,      /* pt_journal_check: whole records follow `committed`: the count was lowered */
};

/* The shared region; its layout is the diagram above (defined in journal.c). */
typedef struct pt_journal_region pt_journal_region_t;

/* Process-local handle: where this process mapped the region. */
typedef struct pt_journal {
    pt_journal_region_t *region;
    pt_command_t *records;  /* region + PT_JOURNAL_HEADER_BYTES */
    uint32_t *crcs;         /* records + capacity: crcs[i] is record i's checksum */
    uint64_t capacity;      /* records */
    uint64_t config_hash;   /* as given to pt_journal_init */
    uint64_t committed;     /* the appender's copy of the committed count (it is the only writer) */
    int crc_hw;             /* 1: checksums by the SSE4.2 crc32 instruction (the CPU has it), 0: by the table */
} pt_journal_t;

/* What pt_journal_check found. */
typedef struct pt_journal_check {
    uint64_t committed;      /* the header's count, as loaded when the check began */
    uint64_t intact;         /* records 0 .. intact-1 match their checksums; intact <= committed */
    uint64_t bad_offset;     /* intact < committed: file offset of record `intact`, the first bad one */
    uint32_t stored_crc;     /* its checksum slot: the value its bytes should give */
    uint32_t computed_crc;   /* what its bytes give */
    uint64_t past_committed; /* whole records right after `committed` (0 when an appender moved the count) */
} pt_journal_check_t;

/* Bytes a journal of this capacity needs (header, records, checksums); 0 if capacity is 0 or above PT_JOURNAL_MAX_CAPACITY. */
size_t pt_journal_bytes(uint64_t capacity);
/* Formats mem as an empty journal of `capacity` records. Not safe while anyone is attached. config_hash is
 * the writer's fingerprint of the configuration the records need to replay (symbols, limits, capacities): the
 * journal only keeps it; the engine process refuses to recover from a journal whose fingerprint differs. */
int pt_journal_init(void *mem, size_t bytes, uint64_t capacity, uint64_t config_hash);
/* Checks the header of a formatted region (magic, version, record size, meta_crc, capacity fits, committed <=
 * capacity) and fills *out. A recovering engine attaches the journal it was running on and appends after its records. */
int pt_journal_attach(void *mem, size_t bytes, pt_journal_t *out);
/* Checks every committed record against its checksum, and the records after `committed` (see the top comment),
 * and fills *out. PT_JOURNAL_OK: the records 0 .. committed-1 are the ones appended (at most one unpublished
 * record follows). PT_JOURNAL_EBADCRC: record out->intact is damaged (out->bad_offset, stored_crc,
 * computed_crc say how). PT_JOURNAL_ECOUNT: out->past_committed > 1 whole records follow the count. Reads the
 * whole journal (3-5 ns a record with the crc32 instruction): for recovery and tools, never the hot path.
 * Safe while an appender runs: records past the count are then its new ones, and not judged. */
int pt_journal_check(const pt_journal_t *j, pt_journal_check_t *out);

/* Appender side (one thread). Copies *cmd into the next record, then publishes it; PT_JOURNAL_EFULL if full. */
int pt_journal_append(pt_journal_t *j, const pt_command_t *cmd);
/* Records the appender may still write. */
uint64_t pt_journal_free(const pt_journal_t *j);

/* Reader side (any process): the committed count (acquire), and a copy of record i < that count. */
uint64_t pt_journal_committed(const pt_journal_t *j);
int pt_journal_read(const pt_journal_t *j, uint64_t i, pt_command_t *out);

/* CRC32C of n bytes at data, continuing from crc (0 to start; crc32c(crc32c(0, a), b) = crc32c(0, a || b)).
 * hw = 1 asks for the crc32 instruction, used only where pt_journal_crc_hw() says the CPU has it; hw = 0 forces
 * the table (tests compare the two). */
uint32_t pt_journal_crc32c(uint32_t crc, const void *data, size_t n, int hw);
/* 1 if this CPU has the SSE4.2 crc32 instruction (x86-64, checked at run time), else 0. */
int pt_journal_crc_hw(void);

#endif
