/*
 * ring_pingpong.c - round-trip latency over two pt_ring SPSC rings (ping and
 * pong) between two busy-polling processes pinned to different cores: the
 * physical floor of the hot path's rings on this machine ((a) in
 * docs/BENCHMARKS.md). As Aeron's cping.c: print the parameters, warm up and report how
 * long it took, reset, then measure and print percentiles.
 *
 * Default mode: the region (two rings) is a MAP_SHARED anonymous mapping made
 * before fork(), so nothing appears in /dev/shm. The parent (the initiator) is
 * pinned to the first core, the child (the echo) to the second. Per round
 * trip the initiator writes a 64-byte message carrying a sequence number, reads
 * the TSC, pushes it on ping, spins on pong until the echo comes back, reads
 * the TSC again, checks the sequence number and records the difference in a
 * log-linear histogram (bench/bench_util.h, <= 1.6% bucket error). The TSC is
 * calibrated against CLOCK_MONOTONIC over the whole run. The timer's own cost
 * (two TSC reads and a recording around nothing) is measured after the run and
 * printed; the round trips include it. Both sides spin without pause or yield.
 *
 * --echo-only NAME: attach to the rings /dev/shm/NAME-ping and /dev/shm/NAME-pong
 * that another process (bench/ring_pingpong.py, the Python initiator of (a'))
 * created, pin to --core, and echo every message from ping to pong until a
 * stop message (echoed too), the parent's death (PR_SET_PDEATHSIG) or
 * --idle-timeout seconds without a message.
 *
 * Safety: this needs two cores (two spinners on one core collapse to ~8 ms
 * round trips, ../../shared/ARCHITECTURE.md) and refuses with exit status 2
 * otherwise. The child dies with the parent (PR_SET_PDEATHSIG), the parent
 * exits if the child dies (SIGCHLD), and an alarm bounds the whole run.
 *
 * Usage: ring_pingpong [--round-trips N] [--warmup N] [--cores A,B]
 *                      [--capacity N] [--commit STR] [--json FILE] [--timeout S]
 *        ring_pingpong --echo-only NAME [--core C] [--idle-timeout S]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pt_ring.h"
#include "bench_util.h"

#define STOP_MAGIC 0x504F54535050544Eull   /* word 1 of the stop message */
#define PING_MAGIC 0x474E495050505450ull   /* word 1 of every other message */

typedef struct msg {
    alignas(64) uint64_t seq;
    uint64_t kind;                          /* PING_MAGIC or STOP_MAGIC */
    uint64_t pad[6];
} msg_t;
_Static_assert(sizeof(msg_t) == PT_RING_SLOT_BYTES, "one slot");

/* The percentile curve written to --json (for the plot): x = percentile. */
static const double CURVE[] = {0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97, 98, 99, 99.5, 99.7, 99.8, 99.9,
                               99.95, 99.97, 99.99, 99.995, 99.999, 99.9995, 99.9999, 100};
#define NCURVE (sizeof CURVE / sizeof CURVE[0])

static _Noreturn void die(const char *what, int rc) {
    fprintf(stderr, "ring_pingpong: %s (%d)\n", what, rc);
    exit(1);
}

static int pin(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    if (sched_setaffinity(0, sizeof set, &set)) {
        fprintf(stderr, "ring_pingpong: sched_setaffinity(core %d): %s\n", core, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- echo side ------------------------------------------------------------ */

/* Echoes ping -> pong until the stop message, the parent's death or idle_timeout_s without a message. */
static int echo_loop(pt_ring_t *in, pt_ring_t *out, pid_t parent, double idle_timeout_s) {
    msg_t m;
    uint64_t n = 0, last_n = 0, empty = 0, last_t = mono_ns();
    for (;;) {
        if (pt_ring_try_pop(in, &m) == PT_RING_OK) {
            while (pt_ring_try_push(out, &m) != PT_RING_OK) {
            }
            n++;
            if (m.kind == STOP_MAGIC) return 0;
        } else if ((++empty & 0xFFFFF) == 0) {  /* every ~1 M empty polls: still wanted? */
            uint64_t now = mono_ns();
            if (n != last_n) {
                last_n = n, last_t = now;
            } else if ((double)(now - last_t) / 1e9 > idle_timeout_s) {
                fprintf(stderr, "ring_pingpong echo: no message for %.0f s, exiting\n", idle_timeout_s);
                return 3;
            }
            if (getppid() != parent) return 4;
        }
    }
}

static int map_ring(const char *name, const char *suffix, pt_ring_t *r) {
    char path[256];
    snprintf(path, sizeof path, "/dev/shm/%s-%s", name, suffix);
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "ring_pingpong echo: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return -1;
    }
    void *mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mem == MAP_FAILED) {
        fprintf(stderr, "ring_pingpong echo: mmap %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = pt_ring_attach(mem, (size_t)st.st_size, r);
    if (rc != PT_RING_OK) {
        fprintf(stderr, "ring_pingpong echo: pt_ring_attach %s: %d\n", path, rc);
        return -1;
    }
    return 0;
}

static int echo_only(const char *name, int core, double idle_timeout_s) {
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) return 4;
    if (core >= 0 && pin(core)) return 1;
    pt_ring_t ping, pong;
    if (map_ring(name, "ping", &ping) || map_ring(name, "pong", &pong)) return 1;
    return echo_loop(&ping, &pong, parent, idle_timeout_s);
}

/* ---- initiator ------------------------------------------------------------ */

/* n round trips; noinline so that a profile names the loop. */
__attribute__((noinline)) static void run_round_trips(pt_ring_t *ping, pt_ring_t *pong, uint64_t seq0, uint64_t n,
                                                      hist_t *h) {
    msg_t m, back;
    memset(&m, 0, sizeof m);
    m.kind = PING_MAGIC;
    for (uint64_t i = 0; i < n; i++) {
        m.seq = seq0 + i;
        uint64_t t0 = ticks_now();
        while (pt_ring_try_push(ping, &m) != PT_RING_OK) {
        }
        while (pt_ring_try_pop(pong, &back) != PT_RING_OK) {
        }
        uint64_t t1 = ticks_now();
        if (__builtin_expect(back.seq != m.seq || back.kind != PING_MAGIC, 0)) die("echo out of sequence", (int)i);
        hist_record(h, t1 - t0);
    }
}

__attribute__((noinline)) static void run_overhead(size_t n, hist_t *h) {
    for (size_t i = 0; i < n; i++) {
        uint64_t t0 = ticks_now();
        __asm__ volatile("" ::: "memory");
        uint64_t t1 = ticks_now();
        hist_record(h, t1 - t0);
    }
}

static void on_sigchld(int sig) {
    (void)sig;
    static const char m[] = "ring_pingpong: the echo process exited during the run\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(1);
}

static void print_lat(const char *name, const hist_t *h, double ns_per_tick) {
    printf("  %-11s %9" PRIu64 " %8.1f", name, h->n, h->n ? (double)h->sum / (double)h->n * ns_per_tick : 0.0);
    for (int i = 0; i < NPCTS; i++) printf(" %8.1f", (double)hist_percentile(h, PCTS[i]) * ns_per_tick);
    printf(" %10.1f\n", (double)h->max * ns_per_tick);
}

static void json_lat(FILE *f, const hist_t *h, double ns_per_tick, bool curve) {
    fprintf(f, "{\"n\": %" PRIu64 ", \"mean_ns\": %.2f, \"p50_ns\": %.2f, \"p90_ns\": %.2f, \"p99_ns\": %.2f, "
               "\"p99.9_ns\": %.2f, \"p99.99_ns\": %.2f, \"max_ns\": %.2f",
            h->n, h->n ? (double)h->sum / (double)h->n * ns_per_tick : 0.0,
            (double)hist_percentile(h, 50) * ns_per_tick, (double)hist_percentile(h, 90) * ns_per_tick,
            (double)hist_percentile(h, 99) * ns_per_tick, (double)hist_percentile(h, 99.9) * ns_per_tick,
            (double)hist_percentile(h, 99.99) * ns_per_tick, (double)h->max * ns_per_tick);
    if (curve) {
        fprintf(f, ", \"curve\": [");
        for (size_t i = 0; i < NCURVE; i++)
            fprintf(f, "%s[%g, %.2f]", i ? ", " : "", CURVE[i],
                    (CURVE[i] >= 100 ? (double)h->max : (double)hist_percentile(h, CURVE[i])) * ns_per_tick);
        fprintf(f, "]");
    }
    fprintf(f, "}");
}

static int usage(void) {
    fprintf(stderr,
            "usage: ring_pingpong [--round-trips N] [--warmup N] [--cores A,B] [--capacity N] [--commit STR]\n"
            "                     [--json FILE] [--timeout S]\n"
            "       ring_pingpong --echo-only NAME [--core C] [--idle-timeout S]\n");
    return 2;
}

int main(int argc, char **argv) {
    uint64_t round_trips = 1000000, warmup = 100000;
    int core_a = 0, core_b = 1, echo_core = -1;
    unsigned capacity = 1024, timeout_s = 300;
    double idle_timeout_s = 30;
    const char *commit = "unknown", *json_path = NULL, *echo_name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--round-trips")) round_trips = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--warmup")) warmup = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--cores")) {
            if (sscanf(v, "%d,%d", &core_a, &core_b) != 2) return usage();
        } else if (!strcmp(a, "--capacity")) capacity = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--commit")) commit = v;
        else if (!strcmp(a, "--json")) json_path = v;
        else if (!strcmp(a, "--timeout")) timeout_s = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--echo-only")) echo_name = v;
        else if (!strcmp(a, "--core")) echo_core = atoi(v);
        else if (!strcmp(a, "--idle-timeout")) idle_timeout_s = atof(v);
        else return usage();
    }
    if (echo_name) return echo_only(echo_name, echo_core, idle_timeout_s);

    /* Two spinners need two cores of their own. */
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed)) die("sched_getaffinity", errno);
    int ncores = CPU_COUNT(&allowed);
    if (ncores < 2) {
        fprintf(stderr, "ring_pingpong: refusing: only %d core available; the two busy-polling sides need a core "
                        "each (on one core they collapse to ~8 ms round trips)\n", ncores);
        return 2;
    }
    if (core_a == core_b || core_a < 0 || core_b < 0 || core_a >= CPU_SETSIZE || core_b >= CPU_SETSIZE ||
        !CPU_ISSET(core_a, &allowed) || !CPU_ISSET(core_b, &allowed)) {
        fprintf(stderr, "ring_pingpong: refusing: cores %d,%d must be two different cores of the %d allowed\n",
                core_a, core_b, ncores);
        return 2;
    }
    size_t rb = pt_ring_bytes(capacity);
    if (rb == 0 || round_trips == 0) return usage();

    /* Both rings in one anonymous shared mapping, touched before fork. */
    unsigned char *region = mmap(NULL, 2 * rb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) die("mmap", errno);
    memset(region, 0, 2 * rb);
    if (pt_ring_init(region, rb, capacity) || pt_ring_init(region + rb, rb, capacity)) die("pt_ring_init", -1);

    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    printf("ring_pingpong  commit %s\n", commit);
    printf("cpu            %s (%ld online, %d allowed); initiator pinned to core %d, echo to core %d\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), ncores, core_a, core_b);
    printf("compiler       %s\n", __VERSION__);
    printf("parameters     %" PRIu64 " round trips after %" PRIu64 " warm-up; 64-byte messages; two SPSC rings of %u "
           "slots in a MAP_SHARED anonymous region; both sides busy-poll\n",
           round_trips, warmup, capacity);
    fflush(stdout);

    signal(SIGCHLD, on_sigchld);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) die("fork", errno);
    if (child == 0) {
        signal(SIGCHLD, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(4);
        if (pin(core_b)) _exit(1);
        pt_ring_t in, out;
        if (pt_ring_attach(region, rb, &in) || pt_ring_attach(region + rb, rb, &out)) _exit(1);
        _exit(echo_loop(&in, &out, parent, idle_timeout_s));
    }
    alarm(timeout_s);  /* backstop: SIGALRM ends the parent, PDEATHSIG the child */
    if (pin(core_a)) {
        kill(child, SIGKILL);
        return 1;
    }
    pt_ring_t ping, pong;
    if (pt_ring_attach(region, rb, &ping) || pt_ring_attach(region + rb, rb, &pong)) die("pt_ring_attach", -1);

    hist_t *h = calloc(3, sizeof *h);  /* warm-up, run, timer overhead */
    if (!h) die("calloc", errno);
    uint64_t cal_ns0 = mono_ns(), cal_tsc0 = ticks_now();
    uint64_t w0 = mono_ns();
    run_round_trips(&ping, &pong, 0, warmup, &h[0]);
    uint64_t w1 = mono_ns();

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t t0 = mono_ns();
    run_round_trips(&ping, &pong, warmup, round_trips, &h[1]);
    uint64_t t1 = mono_ns();
    getrusage(RUSAGE_SELF, &ru1);

    /* Stop the echo (it echoes the stop message) and reap it. */
    signal(SIGCHLD, SIG_DFL);
    msg_t stop;
    memset(&stop, 0, sizeof stop);
    stop.kind = STOP_MAGIC;
    while (pt_ring_try_push(&ping, &stop) != PT_RING_OK) {
    }
    msg_t back;
    while (pt_ring_try_pop(&pong, &back) != PT_RING_OK) {
    }
    int status = 0;
    if (waitpid(child, &status, 0) < 0) die("waitpid", errno);
    struct rusage ruc;
    getrusage(RUSAGE_CHILDREN, &ruc);
    run_overhead(1000000, &h[2]);
    uint64_t cal_ns1 = mono_ns(), cal_tsc1 = ticks_now();
    alarm(0);
    double ns_per_tick = (double)(cal_ns1 - cal_ns0) / (double)(cal_tsc1 - cal_tsc0);
    double run_s = (double)(t1 - t0) / 1e9;
    long preempt = ru1.ru_nivcsw - ru0.ru_nivcsw;

    printf("warm-up        %" PRIu64 " round trips in %.3f s (then reset)\n", warmup, (double)(w1 - w0) / 1e9);
    printf("run            %" PRIu64 " round trips in %.3f s (%.2f M round trips/s); %ld involuntary context "
           "switches of the initiator during the run, %ld of the echo over its life; echo exit status %d\n",
           round_trips, run_s, (double)round_trips / run_s / 1e6, preempt, ruc.ru_nivcsw,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("\nround trip (ns, rdtsc at %.4f GHz calibrated against CLOCK_MONOTONIC, <= 1.6%% bucket error; "
           "includes the timer overhead)\n", 1.0 / ns_per_tick);
    printf("  %-11s %9s %8s %8s %8s %8s %8s %8s %10s\n", "", "count", "mean", "p50", "p90", "p99", "p99.9", "p99.99",
           "max");
    print_lat("C<->C (a)", &h[1], ns_per_tick);
    print_lat("overhead", &h[2], ns_per_tick);

    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) die("fopen --json", errno);
        fprintf(f, "{\"bench\": \"ring_pingpong (a) C<->C\", \"commit\": \"%s\", \"cpu\": \"%s\", \"cores\": [%d, %d], "
                   "\"round_trips\": %" PRIu64 ", \"warmup\": %" PRIu64 ", \"warmup_s\": %.6f, \"run_s\": %.6f, "
                   "\"capacity\": %u, \"tsc_ghz\": %.6f, \"preempted\": %ld, \"echo_preempted\": %ld,\n \"latency\": ",
                commit, cpu, core_a, core_b, round_trips, warmup, (double)(w1 - w0) / 1e9, run_s, capacity,
                1.0 / ns_per_tick, preempt, ruc.ru_nivcsw);
        json_lat(f, &h[1], ns_per_tick, true);
        fprintf(f, ",\n \"timer_overhead\": ");
        json_lat(f, &h[2], ns_per_tick, false);
        fprintf(f, "}\n");
        fclose(f);
    }
    free(h);
    munmap(region, 2 * rb);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
