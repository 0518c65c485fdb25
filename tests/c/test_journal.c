/*
 * test_journal.c - the command journal (hotpath/src/journal.c) over a real MAP_SHARED file mapping: append
 * and read back, the full-journal error, header validation, and a SIGKILLed appender losing nothing. Each
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
    EXPECT(pt_journal_bytes(16) == PT_JOURNAL_HEADER_BYTES + 16 * 64);
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
    free(copy);
    EXPECT(ok);
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
    };
    return run_tests("journal tests", tests, sizeof tests / sizeof tests[0]);
}
