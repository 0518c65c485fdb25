/*
 * pt_snapshot.h - the engine's whole state as one checksummed file, and back.
 *
 * A snapshot holds what decides every later event: each symbol's book (levels in price order, each level's
 * orders in time priority: id, cloid, open qty, owner, STP and post-only terms), last and mark prices and the
 * halt flag; each client's limits, rate bucket, kill switch, loss headroom and cloid-index state; positions
 * and cash; the event, order and trade sequence counters and the command count. Loaded into a fresh engine
 * of the same configuration and symbols, it gives the same pt_engine_state_hash, and every later command the
 * same events byte for byte as in the engine it was taken from (tests/c/test_engine.c). What it leaves out is
 * placement, which no event shows: order slots, index layout, the cloid hash's secret multiplier.
 *
 * The file (little-endian u64 words; snapshot.c has the body's layout):
 *
 *     0  +------------------------------------------------------------------------+
 *        | magic | version u32, header bytes u32 | total bytes | journal position     |
 *        | segment | config hash | state hash | commands | live orders              |
 *        | the engine's capacities | symbol count | zeros to 128 bytes               |
 *   128  +------------------------------------------------------------------------+
 *        | body: counters, clients, positions, books                               |
 *        +------------------------------------------------------------------------+
 *        | CRC32C of every byte before it (u32) | 0 (u32)                           |
 *        +------------------------------------------------------------------------+
 *
 * The checksum is the journal's (pt_crc32c.h); a torn or truncated file fails it or the size check, and is
 * never loaded. journal_position, segment and config_hash are the caller's (the engine process: how many
 * journal records the state includes, which journal segment continues after it, the configuration
 * fingerprint); the engine only keeps them.
 *
 * Files are written whole or not at all: a temporary file beside the target, written, fsynced, renamed over
 * the target, and the directory fsynced (pt_snapshot_write_file).
 *
 * Return codes: 0, or a negative enum pt_snapshot_rc (apart from enum pt_status's values).
 */
#ifndef PT_SNAPSHOT_H
#define PT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "pt_engine.h"

#define PT_SNAPSHOT_MAGIC 0x50414E5354505450 /* "PTPTSNAP" little-endian */
#define PT_SNAPSHOT_VERSION 1
#define PT_SNAPSHOT_HEADER_BYTES 128
#define PT_SNAPSHOT_TRAILER_BYTES 8

enum pt_snapshot_rc {
    PT_SNAPSHOT_OK = 0,
    PT_SNAPSHOT_EIO = -20,         /* open, read, write, fsync or rename failed: errno says why */
    PT_SNAPSHOT_ENOMEM = -21,      /* no memory for the buffer */
    PT_SNAPSHOT_EBADMAGIC = -22,   /* not a snapshot */
    PT_SNAPSHOT_EBADVERSION = -23, /* a snapshot of another format version */
    PT_SNAPSHOT_ETRUNCATED = -24,  /* not the size its header says: a torn or cut write */
    PT_SNAPSHOT_EBADCRC = -25,     /* its bytes do not give its checksum */
    PT_SNAPSHOT_ECONFIG = -26,     /* taken from an engine of other capacities or symbols than the target's */
    PT_SNAPSHOT_ENOTFRESH = -27,   /* the target engine has run commands or holds orders */
    PT_SNAPSHOT_ECORRUPT = -28,    /* the checksum holds but the contents contradict themselves or the hash */
    PT_SNAPSHOT_EINVAL = -29,      /* NULL or a buffer too small */
};

/* What a snapshot says about itself. The caller sets the first three before encoding; the rest are filled. */
typedef struct pt_snapshot_info {
    uint64_t journal_position; /* journal records whose effect the state includes */
    uint64_t segment;          /* the journal segment that continues after it */
    uint64_t config_hash;      /* the writer's configuration fingerprint (0 = none) */
    uint64_t state_hash;       /* pt_engine_state_hash of the state, checked again after a load (0: not taken) */
    uint64_t commands;         /* the engine's command count */
    uint64_t live_orders;      /* resting orders */
    uint64_t bytes;            /* the file's size */
    uint32_t stored_crc;       /* the checksum it carries (PT_SNAPSHOT_EBADCRC: ...) */
    uint32_t computed_crc;     /* ... and what its bytes give */
    uint32_t no_hash;          /* set by the caller: state_hash is left 0 (it costs a walk of every queue), and a
                                  load checks the invariants alone; the engine loop's checkpoints set it */
} pt_snapshot_info_t;

/* The size of the snapshot of e now. */
size_t pt_snapshot_bytes(const pt_engine_t *e);
/* Encodes e into buf (at least pt_snapshot_bytes(e) bytes); fills info's counts and *len. Reads e only. */
int pt_snapshot_encode(const pt_engine_t *e, pt_snapshot_info_t *info, void *buf, size_t cap, size_t *len);
/* The same into a buffer it allocates (release with pt_snapshot_free). */
int pt_snapshot_encode_alloc(const pt_engine_t *e, pt_snapshot_info_t *info, void **out, size_t *len);
void pt_snapshot_free(void *buf);
/* Writes len bytes to path atomically (path.tmp, fsync, rename, fsync of the directory). */
int pt_snapshot_write_file(const char *path, const void *buf, size_t len);
/* pt_snapshot_encode_alloc, then pt_snapshot_write_file. */
int pt_snapshot_save(const pt_engine_t *e, pt_snapshot_info_t *info, const char *path);

/* Checks a snapshot's header, size and checksum, and fills *info. */
int pt_snapshot_verify(const void *buf, size_t len, pt_snapshot_info_t *info);
/* Loads a verified snapshot into e, which must be fresh (no command run, no order) and have the snapshot's
 * capacities and the same symbols, in order (PT_SNAPSHOT_ECONFIG otherwise; e unchanged). Any other failure
 * leaves e unusable: destroy it. */
int pt_snapshot_decode(pt_engine_t *e, const void *buf, size_t len, pt_snapshot_info_t *info);
/* Reads the file at path, verifies it and decodes it into e. */
int pt_snapshot_load(pt_engine_t *e, const char *path, pt_snapshot_info_t *info);
/* Reads the file at path and verifies it: its info, without loading it. */
int pt_snapshot_read_info(const char *path, pt_snapshot_info_t *info);

#endif
