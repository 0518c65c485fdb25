/*
 * test_bcast.c - the broadcast ring's C tests, run by `make ctest` twice: built
 * with -O2 (the throughput it prints is the one docs/HOTPATH.md quotes) and
 * under AddressSanitizer and UBSan.
 *
 * Single-process tests pin the semantics (order, wrap, independent readers,
 * OVERRUN with the exact lost count for single and batch reads, batches
 * larger than the ring, resync, bad regions). The transfer test forks one
 * producer and two readers over a MAP_SHARED region and publishes
 * PT_BCAST_TEST_MESSAGES (default 5,000,000) sequence-numbered messages:
 *   - the fast reader must get every message, in order and intact: the
 *     producer paces itself on the fast reader's cursor (a test-only counter;
 *     the ring itself never waits), keeping it within capacity / 2;
 *   - the slow reader sleeps after every batch, so it is lapped: it must see
 *     OVERRUN, each loss must equal the distance its cursor moved, every
 *     message it does get must be intact and the next position, and
 *     read + lost must add up to everything published.
 * Every wait is bounded: children arm alarm(), the parent kills them after a
 * deadline.
 */
#include "harness.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "pt_bcast.h"
#include "py_ring.h"

_Static_assert(sizeof(msg_t) == PT_BCAST_SLOT_BYTES, "a test message is one slot");

/* A fresh broadcast ring in an mmap'd (so page-aligned) region; *bytes_out for munmap. */
static void *new_region(uint32_t capacity, size_t *bytes_out, int shared)
{
    size_t bytes = pt_bcast_bytes(capacity);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || pt_bcast_init(mem, bytes, capacity) != PT_BCAST_OK)
        abort();
    *bytes_out = bytes;
    return mem;
}

static void publish_range(pt_bcast_t *b, uint64_t from, uint64_t to)
{
    for (uint64_t s = from; s < to; s++) {
        msg_t m = make_msg(s);
        pt_bcast_publish(b, &m);
    }
}

static int test_messages_come_out_in_publish_order(void)
{
    size_t bytes;
    void *mem = new_region(8, &bytes, 0);
    pt_bcast_t b;
    pt_bcast_reader_t rd;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&b, &rd) == PT_BCAST_OK && rd.next == 0);
    publish_range(&b, 0, 5);
    EXPECT(pt_bcast_tail(&b) == 5 && pt_bcast_reader_lag(&rd) == 5);
    msg_t m, out[8];
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_OK && msg_ok(&m, 0));
    size_t n = 99;
    EXPECT(pt_bcast_read_batch(&rd, out, 8, &n) == PT_BCAST_OK && n == 4);
    for (uint64_t i = 0; i < 4; i++)
        EXPECT(msg_ok(&out[i], 1 + i));
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_EMPTY);
    EXPECT(pt_bcast_read_batch(&rd, out, 8, &n) == PT_BCAST_EMPTY && n == 0);
    EXPECT(rd.lost_total == 0 && rd.overruns == 0 && rd.next == 5);
    munmap(mem, bytes);
    return 0;
}

/* Python's publish (hotpath/src/py_ring.c): a reader gets the same message. */
static int test_python_publish_is_publish_of_the_bytes(void)
{
    size_t bytes;
    void *mem = new_region(4, &bytes, 0);
    pt_bcast_t b;
    pt_bcast_reader_t rd;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&b, &rd) == PT_BCAST_OK);
    msg_t a = make_msg(41);
    EXPECT(py_bcast_publish(&b, (const char *)&a) == PT_BCAST_OK);
    msg_t m;
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_OK && msg_ok(&m, 41));
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_EMPTY);
    munmap(mem, bytes);
    return 0;
}

static int test_a_reader_opened_later_sees_only_newer_messages_and_readers_are_independent(void)
{
    size_t bytes;
    void *mem = new_region(8, &bytes, 0);
    pt_bcast_t b;
    pt_bcast_reader_t early, late;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&b, &early) == PT_BCAST_OK);
    publish_range(&b, 0, 3);
    EXPECT(pt_bcast_reader_open(&b, &late) == PT_BCAST_OK && late.next == 3);
    msg_t m;
    EXPECT(pt_bcast_read(&late, &m) == PT_BCAST_EMPTY);
    publish_range(&b, 3, 4);
    EXPECT(pt_bcast_read(&late, &m) == PT_BCAST_OK && msg_ok(&m, 3));
    for (uint64_t i = 0; i < 4; i++) /* the early reader is not affected by the late one */
        EXPECT(pt_bcast_read(&early, &m) == PT_BCAST_OK && msg_ok(&m, i));
    munmap(mem, bytes);
    return 0;
}

static int test_wrap_around_many_times_keeps_order(void)
{
    size_t bytes;
    void *mem = new_region(4, &bytes, 0);
    pt_bcast_t b;
    pt_bcast_reader_t rd;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&b, &rd) == PT_BCAST_OK);
    uint64_t published = 0, seen = 0;
    msg_t batch[4], out[4];
    for (int round = 0; round < 10000; round++) {
        size_t k = 1 + (size_t)(round % 4);
        for (size_t i = 0; i < k; i++)
            batch[i] = make_msg(published + i);
        EXPECT(pt_bcast_publish_batch(&b, batch, k) == k);
        published += k;
        size_t n;
        while (pt_bcast_read_batch(&rd, out, 1 + (size_t)(round % 3), &n) == PT_BCAST_OK)
            for (size_t i = 0; i < n; i++)
                EXPECT(msg_ok(&out[i], seen++));
    }
    EXPECT(seen == published && published > 10000 && rd.lost_total == 0);
    munmap(mem, bytes);
    return 0;
}

static int test_lapped_reader_gets_overrun_with_the_exact_lost_count(void)
{
    size_t bytes;
    void *mem = new_region(8, &bytes, 0);
    pt_bcast_t b;
    pt_bcast_reader_t rd;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&b, &rd) == PT_BCAST_OK);
    publish_range(&b, 0, 8); /* exactly full: nothing lost yet */
    EXPECT(pt_bcast_reader_lag(&rd) == 8);
    msg_t m;
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_OK && msg_ok(&m, 0));
    publish_range(&b, 8, 20); /* the reader wants 1; the ring holds 12..19 */
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_OVERRUN);
    EXPECT(rd.lost_last == 11 && rd.lost_total == 11 && rd.overruns == 1 && rd.next == 12);
    for (uint64_t i = 12; i < 20; i++) /* the oldest held message onwards, intact */
        EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_OK && msg_ok(&m, i));
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_EMPTY);
    /* The same through the batch call. */
    publish_range(&b, 20, 45);
    msg_t out[16];
    size_t n = 7;
    EXPECT(pt_bcast_read_batch(&rd, out, 16, &n) == PT_BCAST_OVERRUN && n == 0);
    EXPECT(rd.lost_last == 17 && rd.lost_total == 28 && rd.overruns == 2 && rd.next == 37);
    EXPECT(pt_bcast_read_batch(&rd, out, 16, &n) == PT_BCAST_OK && n == 8);
    for (uint64_t i = 0; i < 8; i++)
        EXPECT(msg_ok(&out[i], 37 + i));
    EXPECT(rd.next == pt_bcast_tail(&b) && rd.next - rd.lost_total == 17); /* read 1 + 8 + 8, lost 11 + 17 */
    munmap(mem, bytes);
    return 0;
}

static int test_a_batch_larger_than_the_ring_keeps_the_newest_capacity_messages(void)
{
    size_t bytes;
    void *mem = new_region(8, &bytes, 0);
    pt_bcast_t b;
    pt_bcast_reader_t rd;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&b, &rd) == PT_BCAST_OK);
    msg_t batch[20], out[20];
    for (uint64_t i = 0; i < 20; i++)
        batch[i] = make_msg(i);
    EXPECT(pt_bcast_publish_batch(&b, batch, 20) == 20 && pt_bcast_tail(&b) == 20);
    size_t n;
    EXPECT(pt_bcast_read_batch(&rd, out, 20, &n) == PT_BCAST_OVERRUN && rd.lost_last == 12);
    EXPECT(pt_bcast_read_batch(&rd, out, 20, &n) == PT_BCAST_OK && n == 8);
    for (uint64_t i = 0; i < 8; i++)
        EXPECT(msg_ok(&out[i], 12 + i));
    munmap(mem, bytes);
    return 0;
}

static int test_resync_jumps_to_the_newest_position_without_counting_a_loss(void)
{
    size_t bytes;
    void *mem = new_region(8, &bytes, 0);
    pt_bcast_t b;
    pt_bcast_reader_t rd;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&b, &rd) == PT_BCAST_OK);
    publish_range(&b, 0, 30);
    EXPECT(pt_bcast_resync(&rd) == 30 && rd.next == 30 && rd.lost_total == 0);
    msg_t m;
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_EMPTY);
    publish_range(&b, 30, 31);
    EXPECT(pt_bcast_read(&rd, &m) == PT_BCAST_OK && msg_ok(&m, 30));
    EXPECT(pt_bcast_resync(&rd) == 0);
    munmap(mem, bytes);
    return 0;
}

static int test_seq_array_names_each_slots_position(void)
{
    size_t bytes;
    void *mem = new_region(4, &bytes, 0);
    pt_bcast_t b;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    publish_range(&b, 0, 6);
    const uint64_t *seq = (const uint64_t *)((const char *)mem + PT_BCAST_OFF_SEQ);
    EXPECT(seq[0] == 5 && seq[1] == 6 && seq[2] == 3 && seq[3] == 4); /* position + 1 */
    EXPECT(*(const uint64_t *)((const char *)mem + PT_BCAST_OFF_TAIL) == 6);
    EXPECT(msg_ok((const msg_t *)((const char *)mem + pt_bcast_slots_offset(4)) + 1, 5));
    munmap(mem, bytes);
    return 0;
}

static int test_bad_regions_and_arguments_are_errors(void)
{
    size_t bytes = pt_bcast_bytes(8);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT(mem != MAP_FAILED);
    pt_bcast_t b;
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_EBADMAGIC);
    EXPECT(pt_bcast_init(mem, bytes, 8) == PT_BCAST_OK);
    ((uint32_t *)mem)[2] = PT_BCAST_VERSION + 1; /* version field */
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_EBADVERSION);
    EXPECT(pt_bcast_init(mem, bytes, 8) == PT_BCAST_OK);
    EXPECT(pt_bcast_attach(mem, bytes - 1, &b) == PT_BCAST_EINVAL);
    EXPECT(pt_bcast_attach((char *)mem + 8, bytes - 8, &b) == PT_BCAST_EINVAL);
    EXPECT(pt_bcast_attach(NULL, bytes, &b) == PT_BCAST_EINVAL);
    EXPECT(pt_bcast_init(mem, bytes, 12) == PT_BCAST_EINVAL);
    EXPECT(pt_bcast_init(mem, bytes, 16) == PT_BCAST_EINVAL); /* too big for the region */
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    pt_bcast_reader_t rd;
    EXPECT(pt_bcast_reader_open(&b, &rd) == PT_BCAST_OK);
    msg_t out;
    size_t n = 5;
    EXPECT(pt_bcast_read_batch(&rd, &out, 0, &n) == PT_BCAST_EINVAL && n == 0);
    EXPECT(pt_bcast_bytes(0) == 0 && pt_bcast_bytes(3) == 0 && pt_bcast_bytes(PT_BCAST_MAX_CAPACITY * 2u) == 0);
    EXPECT(pt_bcast_bytes(1) == PT_BCAST_HEADER_BYTES + 64 + 64);
    EXPECT(pt_bcast_bytes(1024) == PT_BCAST_HEADER_BYTES + 8192 + 65536);
    EXPECT(pt_bcast_slots_offset(8) == PT_BCAST_HEADER_BYTES + 64);
    munmap(mem, bytes);
    return 0;
}

/* ---- one producer, two reader processes ---- */

/* Test-only state beside the ring (its own MAP_SHARED page), not part of the ring. */
typedef struct xfer {
    /* The fast reader release-stores its cursor after checking messages; the producer acquire-loads it to pace. */
    _Atomic uint64_t fast_next;
    uint64_t count;
    uint64_t fast_read, fast_lost;
    uint64_t slow_read, slow_lost, slow_overruns, slow_max_lost;
} xfer_t;

static int run_producer(pt_bcast_t *b, xfer_t *x)
{
    msg_t batch[64];
    uint64_t seq = 0;
    unsigned misses = 0;
    uint64_t window = b->capacity / 2;
    while (seq < x->count) {
        /* Pacing for the fast reader's sake only: the ring itself would just overwrite. */
        if (seq - atomic_load_explicit(&x->fast_next, memory_order_acquire) > window) {
            idle(&misses);
            continue;
        }
        misses = 0;
        if ((seq & 1023) < 256) {
            msg_t m = make_msg(seq);
            pt_bcast_publish(b, &m);
            seq++;
        } else {
            size_t want = 1 + (size_t)(seq % 64);
            if (want > x->count - seq)
                want = (size_t)(x->count - seq);
            for (size_t i = 0; i < want; i++)
                batch[i] = make_msg(seq + i);
            seq += pt_bcast_publish_batch(b, batch, want);
        }
    }
    return 0;
}

static int run_fast_reader(pt_bcast_reader_t *rd, xfer_t *x)
{
    msg_t out[256];
    unsigned misses = 0;
    while (rd->next < x->count) {
        uint64_t at = rd->next;
        size_t n = 0;
        int rc;
        if ((at >> 12) & 1) {
            rc = pt_bcast_read(rd, out);
            n = rc == PT_BCAST_OK;
        } else {
            rc = pt_bcast_read_batch(rd, out, 256, &n);
        }
        if (rc == PT_BCAST_OVERRUN) {
            fprintf(stderr, "fast reader: overrun at %" PRIu64 ", lost %" PRIu64 "\n", at, rd->lost_last);
            return 1;
        }
        if (rc != PT_BCAST_OK && rc != PT_BCAST_EMPTY)
            return 2;
        for (size_t i = 0; i < n; i++)
            if (!msg_ok(&out[i], at + i)) {
                fprintf(stderr, "fast reader: expected %" PRIu64 ", got %" PRIu64 "\n", at + i, out[i].w[0]);
                return 1;
            }
        if (n) {
            misses = 0;
            /* Tells the producer how far it may run ahead; pairs with its acquire load. */
            atomic_store_explicit(&x->fast_next, rd->next, memory_order_release);
        } else {
            idle(&misses);
        }
        x->fast_read += n;
    }
    x->fast_lost = rd->lost_total;
    return 0;
}

static int run_slow_reader(pt_bcast_reader_t *rd, xfer_t *x)
{
    msg_t out[64];
    unsigned misses = 0;
    uint64_t batches = 0;
    while (rd->next < x->count) {
        uint64_t at = rd->next, lost_before = rd->lost_total;
        size_t n = 0;
        int rc = pt_bcast_read_batch(rd, out, 64, &n);
        if (rc == PT_BCAST_OVERRUN) {
            if (rd->lost_last == 0 || rd->next - at != rd->lost_last || rd->lost_total - lost_before != rd->lost_last) {
                fprintf(stderr, "slow reader: overrun at %" PRIu64 " moved to %" PRIu64 " but says lost %" PRIu64 "\n",
                        at, rd->next, rd->lost_last);
                return 1;
            }
            if (rd->lost_last > x->slow_max_lost)
                x->slow_max_lost = rd->lost_last;
            continue; /* read on from the oldest held message at once */
        }
        if (rc != PT_BCAST_OK && rc != PT_BCAST_EMPTY)
            return 2;
        for (size_t i = 0; i < n; i++)
            if (!msg_ok(&out[i], at + i)) { /* intact, and exactly the next position */
                fprintf(stderr, "slow reader: expected %" PRIu64 ", got %" PRIu64 "\n", at + i, out[i].w[0]);
                return 1;
            }
        x->slow_read += n;
        if (n == 0) {
            idle(&misses);
        } else {
            misses = 0;
            if (++batches % 4 == 0) {
                struct timespec nap = {0, 200000}; /* deliberately slow: 200 us every 256 messages */
                nanosleep(&nap, NULL);
            }
        }
    }
    x->slow_lost = rd->lost_total;
    x->slow_overruns = rd->overruns;
    if (x->slow_read + x->slow_lost != x->count) {
        fprintf(stderr, "slow reader: read %" PRIu64 " + lost %" PRIu64 " != %" PRIu64 "\n", x->slow_read,
                x->slow_lost, x->count);
        return 1;
    }
    return 0;
}

enum role { ROLE_PRODUCER, ROLE_FAST, ROLE_SLOW };

static pid_t spawn(enum role role, void *mem, size_t bytes, pt_bcast_reader_t *rd, xfer_t *x)
{
    pid_t pid = fork_bounded();
    if (pid == 0) {
        pt_bcast_t b;
        if (pt_bcast_attach(mem, bytes, &b) != PT_BCAST_OK)
            _exit(2);
        switch (role) {
        case ROLE_PRODUCER:
            _exit(run_producer(&b, x));
        case ROLE_FAST:
            _exit(run_fast_reader(rd, x));
        default:
            _exit(run_slow_reader(rd, x));
        }
    }
    return pid;
}

static int test_one_producer_and_a_fast_and_a_slow_reader_process(void)
{
    const char *env = getenv("PT_BCAST_TEST_MESSAGES");
    uint64_t count = env ? strtoull(env, NULL, 10) : 5000000ull;
    uint32_t capacity = 65536;
    size_t bytes;
    void *mem = new_region(capacity, &bytes, 1);
    xfer_t *x = mmap(NULL, sizeof *x, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT(x != MAP_FAILED);
    memset(x, 0, sizeof *x);
    x->count = count;
    pt_bcast_t b;
    pt_bcast_reader_t fast, slow; /* opened before anything is published: both start at 0 */
    EXPECT(pt_bcast_attach(mem, bytes, &b) == PT_BCAST_OK);
    EXPECT(pt_bcast_reader_open(&b, &fast) == PT_BCAST_OK && pt_bcast_reader_open(&b, &slow) == PT_BCAST_OK);
    double t0 = now_s();
    pid_t pf = spawn(ROLE_FAST, mem, bytes, &fast, x);
    pid_t ps = spawn(ROLE_SLOW, mem, bytes, &slow, x);
    pid_t pp = spawn(ROLE_PRODUCER, mem, bytes, NULL, x);
    EXPECT(pf > 0 && ps > 0 && pp > 0);
    int prc = wait_until(pp, t0 + DEADLINE_S);
    int frc = wait_until(pf, t0 + DEADLINE_S);
    double secs = now_s() - t0;
    int src = wait_until(ps, t0 + DEADLINE_S);
    uint64_t tail = pt_bcast_tail(&b);
    xfer_t r = *x;
    munmap(x, sizeof *x);
    munmap(mem, bytes);
    EXPECT(prc == 0 && frc == 0 && src == 0);
    EXPECT(tail == count);
    EXPECT(r.fast_read == count && r.fast_lost == 0);
    EXPECT(r.slow_overruns > 0 && r.slow_read > 0 && r.slow_read + r.slow_lost == count);
    printf("bcast transfer: %" PRIu64 " messages of 64 B, capacity %u, producer + 2 reader processes: %.3f s, "
           "%.1f M msg/s to the fast reader (no loss); slow reader read %" PRIu64 ", lost %" PRIu64
           " in %" PRIu64 " overruns (max %" PRIu64 ")\n",
           count, capacity, secs, (double)count / secs / 1e6, r.slow_read, r.slow_lost, r.slow_overruns,
           r.slow_max_lost);
    return 0;
}

int main(void)
{
    static const test_case_t tests[] = {
        {"messages_come_out_in_publish_order", test_messages_come_out_in_publish_order},
        {"python_publish_is_publish_of_the_bytes", test_python_publish_is_publish_of_the_bytes},
        {"a_reader_opened_later_sees_only_newer_messages_and_readers_are_independent",
         test_a_reader_opened_later_sees_only_newer_messages_and_readers_are_independent},
        {"wrap_around_many_times_keeps_order", test_wrap_around_many_times_keeps_order},
        {"lapped_reader_gets_overrun_with_the_exact_lost_count",
         test_lapped_reader_gets_overrun_with_the_exact_lost_count},
        {"a_batch_larger_than_the_ring_keeps_the_newest_capacity_messages",
         test_a_batch_larger_than_the_ring_keeps_the_newest_capacity_messages},
        {"resync_jumps_to_the_newest_position_without_counting_a_loss",
         test_resync_jumps_to_the_newest_position_without_counting_a_loss},
        {"seq_array_names_each_slots_position", test_seq_array_names_each_slots_position},
        {"bad_regions_and_arguments_are_errors", test_bad_regions_and_arguments_are_errors},
        {"one_producer_and_a_fast_and_a_slow_reader_process", test_one_producer_and_a_fast_and_a_slow_reader_process},
    };
    return run_tests("bcast tests", tests, sizeof tests / sizeof tests[0]);
}
