/*
 * test_journal.c - the command journal (hotpath/src/journal.c) over a real MAP_SHARED file mapping: append
 * and read back, the full-journal error, header validation, a SIGKILLed appender losing nothing, and the
 * checksums: CRC32C against published vectors (instruction and table alike), and pt_journal_check naming a
 * damaged record, a moved record, a count raised or lowered. Each
 * file is created with mkstemp in $TMPDIR (default /tmp) and unlinked at once, so nothing is left behind.
 * Built under ASan+UBSan (`make ctest`).
 */
#include "harness.h"

#include <string.h>
#include <sys/mman.h>

#include "pt_journal.h"
#include "pt_wire.h"

typedef struct mapped_file {
    int fd;
    void *mem;
    size_t bytes;
} mapped_file_t;

/* A new file of `bytes`, mapped MAP_SHARED and already unlinked (the fd and mapping keep it alive). */
static int map_file(mapped_file_t *m, size_t bytes)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/pt_journal_test_XXXXXX", dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    m->fd = mkstemp(path);
    EXPECT(m->fd >= 0);
    EXPECT(unlink(path) == 0);
    EXPECT(ftruncate(m->fd, (off_t)bytes) == 0);
    m->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    EXPECT(m->mem != MAP_FAILED);
    m->bytes = bytes;
    return 0;
}

static void unmap_file(mapped_file_t *m)
{
    munmap(m->mem, m->bytes);
    close(m->fd);
}

static pt_command_t command(uint64_t i)
{
    pt_command_t c;
    memset(&c, 0, sizeof c);
    c.op = PT_OP_NEW;
    c.side = (i & 1) ? PT_SIDE_SELL : PT_SIDE_BUY;
    c.client_id = (uint16_t)(1 + i % 5);
    c.order_type = PT_TYPE_LIMIT;
    c.tif = PT_TIF_GTC;
    c.flags = PT_FLAG_HAS_PRICE;
    c.ts_ns = 1000 + i;
    c.cloid = i;
    c.price = (int64_t)(100 + i % 7);
    c.qty = (int64_t)(1 + i % 3);
    return c;
}

static int test_appended_commands_read_back_exactly_in_order_after_a_reattach(void)
{
    mapped_file_t m;
    if (map_file(&m, pt_journal_bytes(16)))
        return 1;
    EXPECT(pt_journal_bytes(16) == PT_JOURNAL_HEADER_BYTES + 16 * 64 + 64); /* 16 checksums, one cache line */
    EXPECT(pt_journal_bytes(17) == PT_JOURNAL_HEADER_BYTES + 17 * 64 + 128);
    EXPECT(pt_journal_init(m.mem, m.bytes, 16, 0x1234567890ABCDEFull) == PT_JOURNAL_OK);
    pt_journal_t j;
    EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_OK);
    EXPECT(j.capacity == 16 && pt_journal_committed(&j) == 0 && pt_journal_free(&j) == 16);
    EXPECT(j.config_hash == 0x1234567890ABCDEFull); /* kept as given */
    for (uint64_t i = 0; i < 10; i++) {
        pt_command_t c = command(i);
        EXPECT(pt_journal_append(&j, &c) == PT_JOURNAL_OK);
        EXPECT(pt_journal_committed(&j) == i + 1);
    }
    /* A second handle (as a recovering engine or `journal dump` would have) sees the same records. */
    pt_journal_t k;
    EXPECT(pt_journal_attach(m.mem, m.bytes, &k) == PT_JOURNAL_OK);
    EXPECT(k.committed == 10 && pt_journal_free(&k) == 6);
    for (uint64_t i = 0; i < 10; i++) {
        pt_command_t got, want = command(i);
        EXPECT(pt_journal_read(&k, i, &got) == PT_JOURNAL_OK);
        EXPECT(memcmp(&got, &want, sizeof got) == 0);
    }
    pt_command_t got;
    EXPECT(pt_journal_read(&k, 10, &got) == PT_JOURNAL_EINVAL); /* not committed */
    /* Appending through the new handle continues after the old records. */
    pt_command_t c = command(10);
    EXPECT(pt_journal_append(&k, &c) == PT_JOURNAL_OK && pt_journal_committed(&j) == 11);
    /* The file layout is the documented one: count at byte 64, record i at 128 + 64 i. */
    uint64_t raw_count;
    memcpy(&raw_count, (unsigned char *)m.mem + PT_JOURNAL_OFF_COMMITTED, sizeof raw_count);
    EXPECT(raw_count == 11);
    EXPECT(memcmp((unsigned char *)m.mem + PT_JOURNAL_HEADER_BYTES + 10 * 64, &c, 64) == 0);
    /* Its checksum at 128 + 64 capacity + 4 i: CRC32C of the little-endian index, then the record. */
    unsigned char index[8] = {10};
    uint32_t raw_crc, want_crc = pt_journal_crc32c(pt_journal_crc32c(0, index, 8, 0), &c, 64, 0);
    memcpy(&raw_crc, (unsigned char *)m.mem + PT_JOURNAL_HEADER_BYTES + 16 * 64 + 10 * 4, sizeof raw_crc);
    EXPECT(raw_crc == want_crc);
    unmap_file(&m);
    return 0;
}

static int test_a_full_journal_refuses_the_append_and_writes_nothing(void)
{
    mapped_file_t m;
    if (map_file(&m, pt_journal_bytes(4)))
        return 1;
    EXPECT(pt_journal_init(m.mem, m.bytes, 4, 0) == PT_JOURNAL_OK);
    pt_journal_t j;
    EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_OK);
    for (uint64_t i = 0; i < 4; i++) {
        pt_command_t c = command(i);
        EXPECT(pt_journal_append(&j, &c) == PT_JOURNAL_OK);
    }
    EXPECT(pt_journal_free(&j) == 0);
    pt_command_t extra = command(99);
    EXPECT(pt_journal_append(&j, &extra) == PT_JOURNAL_EFULL);
    EXPECT(pt_journal_append(&j, &extra) == PT_JOURNAL_EFULL);
    EXPECT(pt_journal_committed(&j) == 4);
    pt_command_t got, want = command(3);
    EXPECT(pt_journal_read(&j, 3, &got) == PT_JOURNAL_OK && memcmp(&got, &want, sizeof got) == 0);
    unmap_file(&m);
    return 0;
}

static int test_attach_refuses_a_bad_header_truncated_file_or_damaged_count(void)
{
    mapped_file_t m;
    if (map_file(&m, pt_journal_bytes(8)))
        return 1;
    pt_journal_t j;
    EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_EBADMAGIC); /* zeroed file: never formatted */
    EXPECT(pt_journal_init(m.mem, m.bytes, 9, 0) == PT_JOURNAL_EINVAL);      /* too small for 9 records */
    EXPECT(pt_journal_init(m.mem, m.bytes, 0, 0) == PT_JOURNAL_EINVAL);
    EXPECT(pt_journal_init((unsigned char *)m.mem + 8, m.bytes - 8, 1, 0) == PT_JOURNAL_EINVAL); /* misaligned */
    EXPECT(pt_journal_init(NULL, m.bytes, 8, 0) == PT_JOURNAL_EINVAL);
    EXPECT(pt_journal_bytes(0) == 0 && pt_journal_bytes(PT_JOURNAL_MAX_CAPACITY + 1) == 0);
    EXPECT(pt_journal_init(m.mem, m.bytes, 8, 0) == PT_JOURNAL_OK);
    EXPECT(pt_journal_attach(m.mem, m.bytes - 64, &j) == PT_JOURNAL_EINVAL); /* a truncated file */
    EXPECT(pt_journal_attach(m.mem, 64, &j) == PT_JOURNAL_EINVAL);
    EXPECT(pt_journal_attach(m.mem, m.bytes, NULL) == PT_JOURNAL_EINVAL);
    unsigned char *bytes = m.mem;
    uint32_t version;
    memcpy(&version, bytes + 8, 4);
    uint32_t other = version + 1;
    memcpy(bytes + 8, &other, 4);
    EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_EBADVERSION);
    memcpy(bytes + 8, &version, 4);
    uint32_t record = 32;
    memcpy(bytes + 12, &record, 4);
    EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_EBADVERSION);
    record = 64;
    memcpy(bytes + 12, &record, 4);
    uint64_t count = 9; /* more than the capacity */
    memcpy(bytes + PT_JOURNAL_OFF_COMMITTED, &count, 8);
    EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_ECORRUPT);
    count = 8;
    memcpy(bytes + PT_JOURNAL_OFF_COMMITTED, &count, 8);
    EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_OK && pt_journal_free(&j) == 0);
    memset(bytes, 0xAB, 8); /* another file's magic */
    EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_EBADMAGIC);
    unmap_file(&m);
    return 0;
}

/* The appender is SIGKILLed (no exit handlers, no msync): the records it committed are in the file. */
static int test_records_of_a_sigkilled_appender_are_in_the_file(void)
{
    enum { N = 1000 };
    mapped_file_t m;
    if (map_file(&m, pt_journal_bytes(N)))
        return 1;
    EXPECT(pt_journal_init(m.mem, m.bytes, N, 0) == PT_JOURNAL_OK);
    pid_t pid = fork_bounded();
    EXPECT(pid >= 0);
    if (pid == 0) {
        /* A private mapping of its own, as the engine process has: only the file is shared. */
        void *mem = mmap(NULL, m.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
        pt_journal_t j;
        if (mem == MAP_FAILED || pt_journal_attach(mem, m.bytes, &j) != PT_JOURNAL_OK)
            _exit(1);
        for (uint64_t i = 0; i < N / 2; i++) {
            pt_command_t c = command(i);
            if (pt_journal_append(&j, &c) != PT_JOURNAL_OK)
                _exit(1);
        }
        kill(getpid(), SIGKILL);
        _exit(2);
    }
    int status;
    double deadline = now_s() + 30;
    pid_t got;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && now_s() < deadline) {
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    EXPECT(got == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    /* Read through the file descriptor, not the parent's mapping: what is on the file is what a restart sees. */
    unsigned char *copy = aligned_alloc(64, (m.bytes + 63) & ~(size_t)63);
    EXPECT(copy != NULL);
    EXPECT(pread(m.fd, copy, m.bytes, 0) == (ssize_t)m.bytes);
    pt_journal_t j;
    int rc = pt_journal_attach(copy, m.bytes, &j);
    int ok = rc == PT_JOURNAL_OK && pt_journal_committed(&j) == N / 2;
    for (uint64_t i = 0; ok && i < N / 2; i++) {
        pt_command_t rec, want = command(i);
        ok = pt_journal_read(&j, i, &rec) == PT_JOURNAL_OK && memcmp(&rec, &want, sizeof rec) == 0;
    }
    pt_journal_check_t check;
    ok = ok && pt_journal_check(&j, &check) == PT_JOURNAL_OK && check.intact == N / 2 && check.past_committed == 0;
    free(copy);
    EXPECT(ok);
    unmap_file(&m);
    return 0;
}

/* Published CRC32C check values (RFC 3720 B.4, and the "123456789" check of the CRC catalogue). */
static int test_crc32c_gives_the_published_values_by_instruction_and_by_table(void)
{
    unsigned char zeros[32], ones[32], up[32], down[32];
    for (int i = 0; i < 32; i++) {
        zeros[i] = 0;
        ones[i] = 0xFF;
        up[i] = (unsigned char)i;
        down[i] = (unsigned char)(31 - i);
    }
    for (int hw = 0; hw <= 1; hw++) { /* hw = 1 falls back to the table on a CPU without the instruction */
        EXPECT(pt_journal_crc32c(0, "123456789", 9, hw) == 0xE3069283u);
        EXPECT(pt_journal_crc32c(0, zeros, 32, hw) == 0x8A9136AAu);
        EXPECT(pt_journal_crc32c(0, ones, 32, hw) == 0x62A8AB43u);
        EXPECT(pt_journal_crc32c(0, up, 32, hw) == 0x46DD794Eu);
        EXPECT(pt_journal_crc32c(0, down, 32, hw) == 0x113FDB5Cu);
        EXPECT(pt_journal_crc32c(0, "", 0, hw) == 0);
        /* Continuing a CRC is hashing the concatenation, at every split (words, then the odd tail bytes). */
        for (size_t cut = 0; cut <= 9; cut++)
            EXPECT(pt_journal_crc32c(pt_journal_crc32c(0, "123456789", cut, hw), "123456789" + cut, 9 - cut, hw) ==
                   0xE3069283u);
    }
    printf("  (crc32 instruction %s)\n", pt_journal_crc_hw() ? "available: both paths tested" : "absent");
    /* Instruction and table agree on every length and alignment of pseudo-random bytes. */
    unsigned char buf[256 + 8];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n <= 256; n++)
            EXPECT(pt_journal_crc32c(7, buf + off, n, 1) == pt_journal_crc32c(7, buf + off, n, 0));
    return 0;
}

/* A formatted, attached journal of `capacity` records with `n` appended. */
static int journal_with(mapped_file_t *m, pt_journal_t *j, uint64_t capacity, uint64_t n)
{
    if (map_file(m, pt_journal_bytes(capacity)))
        return 1;
    EXPECT(pt_journal_init(m->mem, m->bytes, capacity, 0) == PT_JOURNAL_OK);
    EXPECT(pt_journal_attach(m->mem, m->bytes, j) == PT_JOURNAL_OK);
    for (uint64_t i = 0; i < n; i++) {
        pt_command_t c = command(i);
        EXPECT(pt_journal_append(j, &c) == PT_JOURNAL_OK);
    }
    return 0;
}

static void set_count(mapped_file_t *m, uint64_t count)
{
    memcpy((unsigned char *)m->mem + PT_JOURNAL_OFF_COMMITTED, &count, sizeof count);
}

static int test_a_clean_journal_checks_whole_by_either_crc_path(void)
{
    mapped_file_t m;
    pt_journal_t j;
    if (journal_with(&m, &j, 64, 0))
        return 1;
    pt_journal_check_t c;
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_OK && c.committed == 0 && c.intact == 0);
    EXPECT(c.past_committed == 0); /* zeroed checksum slots match nothing */
    for (uint64_t i = 0; i < 40; i++) {
        pt_command_t cmd = command(i);
        EXPECT(pt_journal_append(&j, &cmd) == PT_JOURNAL_OK);
    }
    for (int hw = 0; hw <= 1; hw++) { /* written by one path, checked by the other */
        pt_journal_t k;
        EXPECT(pt_journal_attach(m.mem, m.bytes, &k) == PT_JOURNAL_OK);
        k.crc_hw = hw && pt_journal_crc_hw();
        EXPECT(pt_journal_check(&k, &c) == PT_JOURNAL_OK);
        EXPECT(c.committed == 40 && c.intact == 40 && c.past_committed == 0 && c.bad_offset == 0);
    }
    EXPECT(pt_journal_check(NULL, &c) == PT_JOURNAL_EINVAL && pt_journal_check(&j, NULL) == PT_JOURNAL_EINVAL);
    unmap_file(&m);
    return 0;
}

static int test_a_flipped_byte_names_its_record_offset_and_checksums(void)
{
    mapped_file_t m;
    pt_journal_t j;
    if (journal_with(&m, &j, 64, 50))
        return 1;
    unsigned char *rec = (unsigned char *)m.mem + PT_JOURNAL_HEADER_BYTES + 17 * 64;
    uint32_t stored = j.crcs[17];
    rec[40] ^= 0x04; /* one bit of the price */
    pt_journal_check_t c;
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_EBADCRC);
    EXPECT(c.committed == 50 && c.intact == 17 && c.bad_offset == PT_JOURNAL_HEADER_BYTES + 17 * 64);
    EXPECT(c.stored_crc == stored && c.computed_crc != stored);
    rec[40] ^= 0x04;
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_OK && c.intact == 50);
    /* A damaged checksum slot is as bad as a damaged record. */
    j.crcs[3] ^= 0x100;
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_EBADCRC && c.intact == 3 && c.computed_crc == (j.crcs[3] ^ 0x100));
    unmap_file(&m);
    return 0;
}

static int test_a_record_moved_with_its_checksum_fails_at_its_new_place(void)
{
    mapped_file_t m;
    pt_journal_t j;
    if (journal_with(&m, &j, 16, 10))
        return 1;
    /* Swap records 4 and 5, checksums too: each pair is self-consistent but for the index it hashes. */
    pt_command_t tmp = j.records[4];
    j.records[4] = j.records[5];
    j.records[5] = tmp;
    uint32_t t = j.crcs[4];
    j.crcs[4] = j.crcs[5];
    j.crcs[5] = t;
    pt_journal_check_t c;
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_EBADCRC && c.intact == 4);
    unmap_file(&m);
    return 0;
}

static int test_a_lowered_count_is_a_contradiction_but_one_unpublished_record_is_not(void)
{
    mapped_file_t m;
    pt_journal_t j;
    if (journal_with(&m, &j, 2048, 1500))
        return 1;
    pt_journal_check_t c;
    set_count(&m, 500); /* lowered by 1000: a thousand whole records follow it */
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_ECOUNT);
    EXPECT(c.committed == 500 && c.intact == 500 && c.past_committed == 1000);
    /* One whole record past the count is what a crash between an append's copy and its publishing store
     * leaves: not an error, and not one of the records (recovery replays 1499). */
    set_count(&m, 1499);
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_OK && c.intact == 1499 && c.past_committed == 1);
    set_count(&m, 1498);
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_ECOUNT && c.past_committed == 2);
    unmap_file(&m);
    return 0;
}

/* A damaged capacity would misplace every checksum, a damaged stamp would read as another configuration: the
 * header's own checksum names either as damage. */
static int test_a_damaged_capacity_or_stamp_fails_the_header_checksum(void)
{
    mapped_file_t m;
    pt_journal_t j;
    if (journal_with(&m, &j, 64, 10))
        return 1;
    unsigned char *bytes = m.mem;
    for (size_t off = 16; off < 36; off += 9) { /* a byte of the capacity, of the stamp, of meta_crc */
        bytes[off] ^= 0x01;
        EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_ECORRUPT);
        bytes[off] ^= 0x01;
        EXPECT(pt_journal_attach(m.mem, m.bytes, &j) == PT_JOURNAL_OK);
    }
    unmap_file(&m);
    return 0;
}

static int test_a_raised_count_names_the_first_record_never_written(void)
{
    mapped_file_t m;
    pt_journal_t j;
    if (journal_with(&m, &j, 64, 20))
        return 1;
    set_count(&m, 21);
    pt_journal_check_t c;
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_EBADCRC);
    EXPECT(c.committed == 21 && c.intact == 20 && c.stored_crc == 0 && c.bad_offset == PT_JOURNAL_HEADER_BYTES + 20 * 64);
    set_count(&m, 65); /* past the capacity: the header is damaged, whatever the records say */
    EXPECT(pt_journal_check(&j, &c) == PT_JOURNAL_ECORRUPT);
    unmap_file(&m);
    return 0;
}

int main(void)
{
    static const test_case_t tests[] = {
        {"appended_commands_read_back_exactly_in_order_after_a_reattach",
         test_appended_commands_read_back_exactly_in_order_after_a_reattach},
        {"a_full_journal_refuses_the_append_and_writes_nothing", test_a_full_journal_refuses_the_append_and_writes_nothing},
        {"attach_refuses_a_bad_header_truncated_file_or_damaged_count",
         test_attach_refuses_a_bad_header_truncated_file_or_damaged_count},
        {"records_of_a_sigkilled_appender_are_in_the_file", test_records_of_a_sigkilled_appender_are_in_the_file},
        {"crc32c_gives_the_published_values_by_instruction_and_by_table",
         test_crc32c_gives_the_published_values_by_instruction_and_by_table},
        {"a_clean_journal_checks_whole_by_either_crc_path", test_a_clean_journal_checks_whole_by_either_crc_path},
        {"a_flipped_byte_names_its_record_offset_and_checksums", test_a_flipped_byte_names_its_record_offset_and_checksums},
        {"a_record_moved_with_its_checksum_fails_at_its_new_place",
         test_a_record_moved_with_its_checksum_fails_at_its_new_place},
        {"a_lowered_count_is_a_contradiction_but_one_unpublished_record_is_not",
         test_a_lowered_count_is_a_contradiction_but_one_unpublished_record_is_not},
        {"a_raised_count_names_the_first_record_never_written", test_a_raised_count_names_the_first_record_never_written},
        {"a_damaged_capacity_or_stamp_fails_the_header_checksum",
         test_a_damaged_capacity_or_stamp_fails_the_header_checksum},
    };
    return run_tests("journal tests", tests, sizeof tests / sizeof tests[0]);
}
