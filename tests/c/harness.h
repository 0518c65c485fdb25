/*
 * harness.h - the small test harness shared by the C tests (test_engine.c,
 * test_ring.c, test_bcast.c). Header-only: macros and static inline functions,
 * so a test that does not use one gets no unused-function warning under
 * -Werror. Include it FIRST (it defines _GNU_SOURCE for fork, kill, alarm,
 * nanosleep and clock_gettime under -std=c11).
 *
 * What it offers:
 *   - EXPECT(cond): in a test function returning int, prints file:line,
 *     function and the failed condition to stderr and returns 1;
 *   - test_case_t and run_tests(): run a table of named tests, print
 *     "FAILED name" to stderr for each failure and the closing line
 *     "<suite>: N passed, M failed"; the return value is main's exit status;
 *   - msg_t (one 64-byte slot: a sequence number and 7 words derived from it),
 *     make_msg() and msg_ok() to write and check a sequence-numbered message;
 *   - now_s() (CLOCK_MONOTONIC seconds), idle() (yield the CPU after 64 empty
 *     polls: two spinners on one core collapse);
 *   - the bounded multi-process helpers: fork_bounded() forks a child that
 *     arms alarm(DEADLINE_S), wait_until() waits for a child until a deadline
 *     and SIGKILLs it after.
 *
 * Why every wait has a timeout: the transfer tests run producers and readers
 * in separate processes (or threads) that spin on each other. A bug in the
 * ring (a lost message, a cursor never published) would otherwise hang
 * `make ctest` forever instead of failing it. So each child arms alarm() and
 * dies on its own if its peer hangs, and the parent never waits past its
 * deadline: it kills the child and reports the test as failed.
 */
#ifndef PT_TEST_HARNESS_H
#define PT_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXPECT(cond)                                                                                  \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            fprintf(stderr, "%s:%d: %s: expected %s\n", __FILE__, __LINE__, __func__, #cond);         \
            return 1;                                                                                 \
        }                                                                                             \
    } while (0)

/* Seconds any multi-process or multi-thread test may take before it is killed. */
#define DEADLINE_S 90

typedef struct test_case {
    const char *name;
    int (*fn)(void);
} test_case_t;

/* Runs every test in order; prints "<suite>: N passed, M failed". Returns main's exit status. */
static inline int run_tests(const char *suite, const test_case_t *tests, size_t n)
{
    int failed = 0, passed = 0;
    for (size_t i = 0; i < n; i++) {
        if (tests[i].fn() == 0) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "FAILED %s\n", tests[i].name);
        }
    }
    printf("%s: %d passed, %d failed\n", suite, passed, failed);
    return failed ? 1 : 0;
}

/* One 64-byte slot; each test asserts it matches its ring's slot size. */
typedef struct msg {
    uint64_t w[8];
} msg_t;

static inline msg_t make_msg(uint64_t seq)
{
    msg_t m;
    m.w[0] = seq;
    for (int i = 1; i < 8; i++)
        m.w[i] = seq * 0x9E3779B97F4A7C15ull ^ (uint64_t)i;
    return m;
}

static inline int msg_ok(const msg_t *m, uint64_t seq)
{
    if (m->w[0] != seq)
        return 0;
    for (int i = 1; i < 8; i++)
        if (m->w[i] != (seq * 0x9E3779B97F4A7C15ull ^ (uint64_t)i))
            return 0;
    return 1;
}

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Called on each empty poll: after 64 in a row, give the CPU away (the peer may share our core). */
static inline void idle(unsigned *misses)
{
    if (++*misses > 64)
        sched_yield();
}

/* fork(); the child arms alarm(DEADLINE_S) so that it never outlives a hung peer. */
static inline pid_t fork_bounded(void)
{
    pid_t pid = fork();
    if (pid == 0)
        alarm(DEADLINE_S);
    return pid;
}

/* Waits for pid until deadline (monotonic seconds); kills it after. Returns its exit status or -1. */
static inline int wait_until(pid_t pid, double deadline)
{
    int status;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (got < 0 && errno != EINTR)
            return -1;
        if (now_s() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "child %d killed after the deadline\n", (int)pid);
            return -1;
        }
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
    }
}

#endif
