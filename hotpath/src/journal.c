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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define PT_JOURNAL_HAVE_SSE42 1
#else
#define PT_JOURNAL_HAVE_SSE42 0
#endif

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

/* crc32c_table[b]: the CRC of byte b alone (reflected polynomial 0x82F63B78, no inversion). */
static const uint32_t crc32c_table[256] = {
    0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c, 0x26a1e7e8, 0xd4ca64eb,
    0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b, 0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24,
    0x105ec76f, 0xe235446c, 0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
    0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc, 0xbc267848, 0x4e4dfb4b,
    0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a, 0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35,
    0xaa64d611, 0x580f5512, 0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
    0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad, 0x1642ae59, 0xe4292d5a,
    0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a, 0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595,
    0x417b1dbc, 0xb3109ebf, 0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
    0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f, 0xed03a29b, 0x1f682198,
    0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927, 0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38,
    0xdbfc821c, 0x2997011f, 0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
    0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e, 0x4767748a, 0xb50cf789,
    0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859, 0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46,
    0x7198540d, 0x83f3d70e, 0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
    0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de, 0xdde0eb2a, 0x2f8b6829,
    0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c, 0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93,
    0x082f63b7, 0xfa44e0b4, 0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
    0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b, 0xb4091bff, 0x466298fc,
    0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c, 0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033,
    0xa24bb5a6, 0x502036a5, 0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
    0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975, 0x0e330a81, 0xfc588982,
    0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d, 0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622,
    0x38cc2a06, 0xcaa7a905, 0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
    0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8, 0xe52cc12c, 0x1747422f,
    0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff, 0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0,
    0xd3d3e1ab, 0x21b862a8, 0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
    0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78, 0x7fab5e8c, 0x8dc0dd8f,
    0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee, 0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1,
    0x69e9f0d5, 0x9b8273d6, 0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
    0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69, 0xd5cf889d, 0x27a40b9e,
    0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e, 0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t n)
{
    uint32_t c = ~crc;
    while (n--)
        c = crc32c_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

#if PT_JOURNAL_HAVE_SSE42
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t n)
{
    uint64_t c = (uint32_t)~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t word;
        memcpy(&word, p, 8); /* the instruction reads the word's bytes low to high: the byte order of the data */
        c = _mm_crc32_u64(c, word);
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

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

int pt_journal_crc_hw(void)
{
#if PT_JOURNAL_HAVE_SSE42
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    return 0;
#endif
}

uint32_t pt_journal_crc32c(uint32_t crc, const void *data, size_t n, int hw)
{
#if PT_JOURNAL_HAVE_SSE42
    if (hw && pt_journal_crc_hw())
        return crc32c_hw(crc, data, n);
#else
    (void)hw;
#endif
    return crc32c_sw(crc, data, n);
}

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
    return crc32c_sw(crc32c_sw(0, index, sizeof index), (const unsigned char *)cmd, sizeof *cmd);
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
