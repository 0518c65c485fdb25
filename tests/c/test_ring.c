/*
 * test_ring.c - the SPSC ring's C tests, run by `make ctest` twice: built with
 * -O2 (the throughput it prints is the one docs/HOTPATH.md quotes) and under
 * AddressSanitizer and UBSan.
 *
 * Single-process tests pin the semantics (FIFO, wrap, FULL never overwrites,
 * EMPTY, partial batches, peek across the wrap, bad regions). The transfer test
 * forks a producer and a consumer over a MAP_SHARED region and moves
 * PT_RING_TEST_MESSAGES (default 10,000,000) sequence-numbered messages through
 * every push and pop flavour, checking each message's sequence number and
 * payload (no loss, duplication, reordering or torn message). Both sides yield
 * when they must wait (two spinners on one core collapse), and every wait is
 * bounded: the children arm alarm(), the parent kills them after a deadline.
 * The same transfer also runs between two threads of one process (1 M
 * messages), which is what `make tsan` checks: ThreadSanitizer sees races
 * between threads, not between processes.
 */
#include "harness.h"

#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "pt_ring.h"
#include "py_ring.h"

_Static_assert(sizeof(msg_t) == PT_RING_SLOT_BYTES, "a test message is one slot");

/* A fresh ring in an mmap'd (so page-aligned) private region; *bytes_out for munmap. */
static void *new_region(uint32_t capacity, size_t *bytes_out, int shared)
{
    size_t bytes = pt_ring_bytes(capacity);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || pt_ring_init(mem, bytes, capacity) != PT_RING_OK)
        abort();
    *bytes_out = bytes;
    return mem;
}

static int test_fifo_order_is_kept(void)
{
    size_t bytes;
    void *mem = new_region(8, &bytes, 0);
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_OK);
    for (uint64_t i = 0; i < 5; i++) {
        msg_t m = make_msg(i);
        EXPECT(pt_ring_try_push(&r, &m) == PT_RING_OK);
    }
    EXPECT(pt_ring_depth(&r) == 5);
    for (uint64_t i = 0; i < 5; i++) {
        msg_t m;
        EXPECT(pt_ring_try_pop(&r, &m) == PT_RING_OK);
        EXPECT(msg_ok(&m, i));
    }
    munmap(mem, bytes);
    return 0;
}

static int test_wrap_around_many_times_keeps_order(void)
{
    size_t bytes;
    void *mem = new_region(4, &bytes, 0);
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_OK);
    uint64_t pushed = 0, popped = 0;
    for (int round = 0; round < 10000; round++) {
        for (int k = 0; k < 1 + round % 4; k++) {
            msg_t m = make_msg(pushed);
            if (pt_ring_try_push(&r, &m) == PT_RING_OK)
                pushed++;
        }
        for (int k = 0; k < 1 + (round * 7) % 4; k++) {
            msg_t m;
            if (pt_ring_try_pop(&r, &m) == PT_RING_OK)
                EXPECT(msg_ok(&m, popped++));
        }
    }
    EXPECT(pushed > 10000);
    EXPECT(pt_ring_tail(&r) == pushed && pt_ring_head(&r) == popped);
    munmap(mem, bytes);
    return 0;
}

static int test_full_ring_returns_full_and_never_overwrites(void)
{
    size_t bytes;
    void *mem = new_region(4, &bytes, 0);
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_OK);
    for (uint64_t i = 0; i < 4; i++) {
        msg_t m = make_msg(i);
        EXPECT(pt_ring_try_push(&r, &m) == PT_RING_OK);
    }
    msg_t extra = make_msg(99);
    EXPECT(pt_ring_try_push(&r, &extra) == PT_RING_FULL);
    EXPECT(pt_ring_push_batch(&r, &extra, 1) == 0);
    EXPECT(pt_ring_depth(&r) == 4);
    for (uint64_t i = 0; i < 4; i++) {
        msg_t m;
        EXPECT(pt_ring_try_pop(&r, &m) == PT_RING_OK);
        EXPECT(msg_ok(&m, i));
    }
    munmap(mem, bytes);
    return 0;
}

/* Python's push (hotpath/src/py_ring.c): the same message in, FULL without overwriting. */
static int test_python_push_is_try_push_of_the_bytes(void)
{
    size_t bytes;
    void *mem = new_region(2, &bytes, 0);
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_OK);
    msg_t a = make_msg(7), b = make_msg(8), c = make_msg(9);
    EXPECT(py_ring_push(&r, (const char *)&a) == PT_RING_OK);
    EXPECT(py_ring_push(&r, (const char *)&b) == PT_RING_OK);
    EXPECT(py_ring_push(&r, (const char *)&c) == PT_RING_FULL);
    msg_t m;
    EXPECT(pt_ring_try_pop(&r, &m) == PT_RING_OK && msg_ok(&m, 7));
    EXPECT(pt_ring_try_pop(&r, &m) == PT_RING_OK && msg_ok(&m, 8));
    EXPECT(pt_ring_try_pop(&r, &m) == PT_RING_EMPTY);
    munmap(mem, bytes);
    return 0;
}

static int test_empty_ring_returns_empty(void)
{
    size_t bytes;
    void *mem = new_region(4, &bytes, 0);
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_OK);
    msg_t m;
    const void *first = NULL;
    EXPECT(pt_ring_try_pop(&r, &m) == PT_RING_EMPTY);
    EXPECT(pt_ring_pop_batch(&r, &m, 1) == 0);
    EXPECT(pt_ring_peek(&r, &first, 4) == 0);
    pt_ring_release(&r, 3); /* nothing published: a no-op */
    EXPECT(pt_ring_head(&r) == 0 && pt_ring_depth(&r) == 0);
    munmap(mem, bytes);
    return 0;
}

static int test_batch_push_is_partial_when_nearly_full(void)
{
    size_t bytes;
    void *mem = new_region(8, &bytes, 0);
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_OK);
    msg_t batch[8];
    for (uint64_t i = 0; i < 8; i++)
        batch[i] = make_msg(i);
    EXPECT(pt_ring_push_batch(&r, batch, 5) == 5);
    EXPECT(pt_ring_push_batch(&r, batch + 5, 3) == 3);
    msg_t out[8];
    EXPECT(pt_ring_pop_batch(&r, out, 2) == 2); /* 2 free, 6 queued */
    for (uint64_t i = 0; i < 8; i++)
        batch[i] = make_msg(8 + i);
    EXPECT(pt_ring_push_batch(&r, batch, 5) == 2); /* only 2 fit: wraps */
    EXPECT(pt_ring_pop_batch(&r, out, 8) == 8);
    for (uint64_t i = 0; i < 8; i++)
        EXPECT(msg_ok(&out[i], 2 + i));
    munmap(mem, bytes);
    return 0;
}

static int test_peek_stops_at_the_wrap_and_release_frees_slots(void)
{
    size_t bytes;
    void *mem = new_region(8, &bytes, 0);
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_OK);
    msg_t batch[8];
    for (uint64_t i = 0; i < 8; i++)
        batch[i] = make_msg(i);
    EXPECT(pt_ring_push_batch(&r, batch, 6) == 6);
    msg_t out[8];
    EXPECT(pt_ring_pop_batch(&r, out, 6) == 6);
    for (uint64_t i = 0; i < 5; i++)
        batch[i] = make_msg(6 + i);
    EXPECT(pt_ring_push_batch(&r, batch, 5) == 5); /* slots 6,7,0,1,2 */
    const void *first;
    size_t n = pt_ring_peek(&r, &first, 100);
    EXPECT(n == 2); /* up to the end of the slot array */
    EXPECT(msg_ok((const msg_t *)first, 6) && msg_ok((const msg_t *)first + 1, 7));
    EXPECT(pt_ring_peek(&r, &first, 1) == 1); /* max is honoured */
    pt_ring_release(&r, n);
    n = pt_ring_peek(&r, &first, 100);
    EXPECT(n == 3);
    for (uint64_t i = 0; i < 3; i++)
        EXPECT(msg_ok((const msg_t *)first + i, 8 + i));
    pt_ring_release(&r, 1000); /* clamped to what was published */
    EXPECT(pt_ring_depth(&r) == 0 && pt_ring_head(&r) == 11);
    munmap(mem, bytes);
    return 0;
}

static int test_attach_to_an_uninitialised_region_fails_with_ebadmagic(void)
{
    size_t bytes = pt_ring_bytes(8);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT(mem != MAP_FAILED);
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_EBADMAGIC);
    EXPECT(pt_ring_init(mem, bytes, 8) == PT_RING_OK);
    ((uint32_t *)mem)[2] = PT_RING_VERSION + 1; /* version field */
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_EBADVERSION);
    EXPECT(pt_ring_init(mem, bytes, 8) == PT_RING_OK);
    EXPECT(pt_ring_attach(mem, bytes - 1, &r) == PT_RING_EINVAL); /* region shorter than the ring */
    EXPECT(pt_ring_attach((char *)mem + 8, bytes - 8, &r) == PT_RING_EINVAL); /* misaligned */
    EXPECT(pt_ring_attach(NULL, bytes, &r) == PT_RING_EINVAL);
    munmap(mem, bytes);
    return 0;
}

static int test_capacity_not_a_power_of_two_is_rejected(void)
{
    EXPECT(pt_ring_bytes(0) == 0 && pt_ring_bytes(3) == 0 && pt_ring_bytes(1000) == 0);
    EXPECT(pt_ring_bytes(PT_RING_MAX_CAPACITY * 2u) == 0);
    EXPECT(pt_ring_bytes(1) == PT_RING_HEADER_BYTES + 64 && pt_ring_bytes(1024) == PT_RING_HEADER_BYTES + 65536);
    size_t bytes = pt_ring_bytes(16);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT(mem != MAP_FAILED);
    EXPECT(pt_ring_init(mem, bytes, 12) == PT_RING_EINVAL);
    EXPECT(pt_ring_init(mem, bytes, 0) == PT_RING_EINVAL);
    EXPECT(pt_ring_init(mem, bytes, 32) == PT_RING_EINVAL); /* too big for the region */
    EXPECT(pt_ring_init(mem, bytes, 16) == PT_RING_OK);
    munmap(mem, bytes);
    return 0;
}

/* ---- two processes ---- */

/* Producer: cycles through try_push and push_batch of 1..64 messages. */
static int run_producer(pt_ring_t *r, uint64_t count)
{
    msg_t batch[64];
    uint64_t seq = 0;
    unsigned misses = 0;
    while (seq < count) {
        if ((seq & 1023) < 256) {
            msg_t m = make_msg(seq);
            if (pt_ring_try_push(r, &m) == PT_RING_OK) {
                seq++;
                misses = 0;
            } else {
                idle(&misses);
            }
        } else {
            size_t want = 1 + (size_t)(seq % 64);
            if (want > count - seq)
                want = (size_t)(count - seq);
            for (size_t i = 0; i < want; i++)
                batch[i] = make_msg(seq + i);
            size_t n = pt_ring_push_batch(r, batch, want);
            seq += n;
            if (n)
                misses = 0;
            else
                idle(&misses);
        }
    }
    return 0;
}

/* Consumer: cycles through try_pop, pop_batch and peek/release; checks every message. */
static int run_consumer(pt_ring_t *r, uint64_t count)
{
    msg_t out[64];
    uint64_t seq = 0;
    unsigned misses = 0;
    while (seq < count) {
        size_t n = 0;
        switch ((seq >> 10) % 3) {
        case 0:
            if (pt_ring_try_pop(r, out) == PT_RING_OK) {
                n = 1;
                if (!msg_ok(out, seq)) {
                    fprintf(stderr, "consumer: expected seq %" PRIu64 ", got %" PRIu64 "\n", seq, out[0].w[0]);
                    return 1;
                }
            }
            break;
        case 1:
            n = pt_ring_pop_batch(r, out, 64);
            for (size_t i = 0; i < n; i++)
                if (!msg_ok(&out[i], seq + i)) {
                    fprintf(stderr, "consumer: batch expected seq %" PRIu64 ", got %" PRIu64 "\n", seq + i,
                            out[i].w[0]);
                    return 1;
                }
            break;
        default: {
            const void *first;
            n = pt_ring_peek(r, &first, 256);
            for (size_t i = 0; i < n; i++)
                if (!msg_ok((const msg_t *)first + i, seq + i)) {
                    fprintf(stderr, "consumer: peek expected seq %" PRIu64 "\n", seq + i);
                    return 1;
                }
            pt_ring_release(r, n);
        }
        }
        seq += n;
        if (n)
            misses = 0;
        else
            idle(&misses);
    }
    msg_t m;
    if (pt_ring_try_pop(r, &m) != PT_RING_EMPTY) {
        fprintf(stderr, "consumer: a message beyond the last one\n");
        return 1;
    }
    return 0;
}

static pid_t spawn(int (*fn)(pt_ring_t *, uint64_t), void *mem, size_t bytes, uint64_t count)
{
    pid_t pid = fork_bounded();
    if (pid == 0) {
        pt_ring_t r;
        if (pt_ring_attach(mem, bytes, &r) != PT_RING_OK)
            _exit(2);
        _exit(fn(&r, count));
    }
    return pid;
}

static int test_two_processes_transfer_every_message_in_order(void)
{
    const char *env = getenv("PT_RING_TEST_MESSAGES");
    uint64_t count = env ? strtoull(env, NULL, 10) : 10000000ull;
    uint32_t capacity = 4096;
    size_t bytes;
    void *mem = new_region(capacity, &bytes, 1);
    double t0 = now_s();
    pid_t consumer = spawn(run_consumer, mem, bytes, count);
    pid_t producer = spawn(run_producer, mem, bytes, count);
    EXPECT(consumer > 0 && producer > 0);
    int prc = wait_until(producer, t0 + DEADLINE_S);
    int crc = wait_until(consumer, t0 + DEADLINE_S);
    double secs = now_s() - t0;
    pt_ring_t r;
    EXPECT(pt_ring_attach(mem, bytes, &r) == PT_RING_OK);
    uint64_t head = pt_ring_head(&r), tail = pt_ring_tail(&r);
    munmap(mem, bytes);
    EXPECT(prc == 0 && crc == 0);
    EXPECT(head == count && tail == count);
    printf("ring transfer: %" PRIu64 " messages of 64 B, capacity %u, 2 processes: %.3f s, %.1f M msg/s, %.2f GB/s\n",
           count, capacity, secs, (double)count / secs / 1e6, (double)count * 64 / secs / 1e9);
    return 0;
}

typedef struct side_arg {
    pt_ring_t ring;
    uint64_t count;
    int (*fn)(pt_ring_t *, uint64_t);
    int rc;
} side_arg_t;

static void *run_side(void *p)
{
    side_arg_t *a = p;
    a->rc = a->fn(&a->ring, a->count);
    return NULL;
}

static int test_two_threads_transfer_every_message_in_order(void)
{
    uint64_t count = 1000000;
    size_t bytes;
    void *mem = new_region(256, &bytes, 0);
    side_arg_t prod = {.count = count, .fn = run_producer, .rc = -1};
    side_arg_t cons = {.count = count, .fn = run_consumer, .rc = -1};
    EXPECT(pt_ring_attach(mem, bytes, &prod.ring) == PT_RING_OK);
    EXPECT(pt_ring_attach(mem, bytes, &cons.ring) == PT_RING_OK);
    alarm(DEADLINE_S); /* a hang kills the test instead of the machine's patience */
    pthread_t tp, tc;
    EXPECT(pthread_create(&tc, NULL, run_side, &cons) == 0);
    EXPECT(pthread_create(&tp, NULL, run_side, &prod) == 0);
    pthread_join(tp, NULL);
    pthread_join(tc, NULL);
    alarm(0);
    EXPECT(prod.rc == 0 && cons.rc == 0);
    EXPECT(pt_ring_head(&cons.ring) == count);
    munmap(mem, bytes);
    return 0;
}

int main(void)
{
    static const test_case_t tests[] = {
        {"fifo_order_is_kept", test_fifo_order_is_kept},
        {"wrap_around_many_times_keeps_order", test_wrap_around_many_times_keeps_order},
        {"full_ring_returns_full_and_never_overwrites", test_full_ring_returns_full_and_never_overwrites},
        {"python_push_is_try_push_of_the_bytes", test_python_push_is_try_push_of_the_bytes},
        {"empty_ring_returns_empty", test_empty_ring_returns_empty},
        {"batch_push_is_partial_when_nearly_full", test_batch_push_is_partial_when_nearly_full},
        {"peek_stops_at_the_wrap_and_release_frees_slots", test_peek_stops_at_the_wrap_and_release_frees_slots},
        {"attach_to_an_uninitialised_region_fails_with_ebadmagic",
         test_attach_to_an_uninitialised_region_fails_with_ebadmagic},
        {"capacity_not_a_power_of_two_is_rejected", test_capacity_not_a_power_of_two_is_rejected},
        {"two_threads_transfer_every_message_in_order", test_two_threads_transfer_every_message_in_order},
        {"two_processes_transfer_every_message_in_order", test_two_processes_transfer_every_message_in_order},
    };
    return run_tests("ring tests", tests, sizeof tests / sizeof tests[0]);
}
