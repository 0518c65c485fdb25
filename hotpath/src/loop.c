/*
 * loop.c - the engine process's event loop (pt_loop.h has the per-pass steps, routing and stall rule).
 *
 * Invariants:
 *   (1) every command taken from a ring is run exactly once: from a one-account slot with client_id = its
 *       slot's client; from a link slot with the client_id it names, flagged PT_FLAG_NOT_GRANTED unless
 *       that client is granted to the link (the engine then rejects it, and the journal keeps the flag);
 *       an operator op (HALT, RESUME, KILL, SET_LIMIT) from any ring is flagged too: only the controller
 *       runs those, through pt_loop_execute;
 *   (2) every engine event is routed (client ring, market-data ring, or counted as unrouted) before
 *       pt_engine_clear_events, in engine order; a full client ring is waited on, never skipped;
 *   (3) the loop makes no syscall and takes no lock: rings and counters are atomics in shared memory; the
 *       one exception is a checkpoint (pt_journal_rotation.h), which allocates its snapshot's buffer;
 *   (4) with a journal: every command run (rejected ones too) is appended to the journal right after
 *       pt_engine_submit, before any event of it, or of a later command, is routed;
 *       a command is only run when the journal has room for it (a full journal stops the loop, it never
 *       runs a command it could not journal).
 *
 * Memory ordering of the control block:
 *   - stop: another process release-stores 1 (pt_loop_request_stop); the loop acquire-loads it once per pass
 *     and on every spin of a stall. Nothing is published through it beyond "stop", so acquire is for form:
 *     it orders the loop's exit after whatever the requester did before asking.
 *   - counters and running: the loop is the only writer and stores them relaxed (plain movs on x86-64);
 *     monitors load them relaxed. Each value is exact and monotonic; a snapshot of several is not atomic.
 *   - magic: release-stored last by pt_loop_control_init, acquire-loaded by everyone else, so a reader that
 *     sees the magic sees the zeroed counters.
 *
 * The pause handshake (pt_loop.h, "Controller") is between two threads of the engine process, on two words
 * of the loop struct that share a line of their own:
 *   - pause_req: the controller release-stores a fresh ticket (pause_begin) or 0 (resume); the loop
 *     acquire-loads it once per pass, and on every spin while parked.
 *   - paused: the loop release-stores the ticket it parks for, after it routed every event and published its
 *     counters; the controller's acquire load of it (pause_granted) therefore sees all the loop did before
 *     parking. The controller's resume (release) likewise publishes its own writes (slots, engine state) to
 *     the loop's acquire load of pause_req. Tickets never repeat, so a stale `paused` from an earlier pause
 *     never grants a later one.
 *   - gone (per slot): the controller release-stores 1; the loop acquire-loads it before serving the slot
 *     and while stalled on its event ring. Only the loop reads the slot's rings after that, and only to drop.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "pt_loop.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pt_bcast.h"
#include "pt_journal.h"
#include "pt_journal_rotation.h"
#include "pt_ring.h"
#include "pt_snapshot.h"
#include "pt_wire.h"

#define MD_BATCH 64 /* market-data events gathered before one publish_batch */

typedef struct pt_loop_control {
    _Atomic uint64_t magic;
    uint32_t version;
    unsigned char pad0[64 - 12];
    _Atomic uint64_t stop;
    unsigned char pad1[56];
    _Atomic uint64_t commands;
    _Atomic uint64_t events;
    _Atomic uint64_t iterations;
    _Atomic uint64_t idle_passes;
    _Atomic uint64_t stalls;
    _Atomic uint64_t unrouted;
    _Atomic uint64_t running;
    _Atomic uint64_t journal_full;
    _Atomic uint64_t dropped;
    _Atomic uint64_t clients;
    _Atomic uint64_t pauses;
    _Atomic uint64_t stalled_on; /* client id + 1 while the loop waits on that client's full event ring, else 0 */
    unsigned char pad2[32];
} pt_loop_control_t;

_Static_assert(sizeof(pt_loop_control_t) == PT_LOOP_CONTROL_BYTES, "control block layout");
_Static_assert(offsetof(pt_loop_control_t, stop) == PT_LOOP_OFF_STOP, "stop on its own line");
_Static_assert(offsetof(pt_loop_control_t, commands) == PT_LOOP_OFF_COUNTERS, "counters on their own line");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared across processes");

typedef struct pt_loop_slot {
    pt_ring_t cmd; /* the client's commands: this loop is the consumer */
    pt_ring_t evt; /* the client's events: this loop is the producer */
    uint16_t client_id;
    uint8_t link;          /* 1 once accounts were granted to it: commands keep their client_id, checked */
    _Atomic uint32_t gone; /* set by the controller: run none of its commands, drop its events */
} pt_loop_slot_t;

/* owner[client id] = the client id of the slot whose ring that client's events go to, + 1; 0 = none. A
 * one-account slot owns its own id; a link slot owns its own id and every account granted to it. Changed
 * only by the controller while the loop is parked (or before it runs). */
#define OWNER_IDS 0x10000

/* Local copies of the counters: the loop owns them and stores them to the control block once per pass. */
typedef struct pt_loop_tally {
    uint64_t commands, events, iterations, idle_passes, stalls, unrouted, dropped, pauses;
} pt_loop_tally_t;

struct pt_loop {
    pt_engine_t *engine;
    pt_loop_control_t *control;
    pt_bcast_t md;
    int has_md;
    pt_journal_t journal;
    int has_journal;
    uint32_t nslots;
    pt_loop_tally_t tally;
    uint32_t md_count;
    pt_event_t md_buf[MD_BATCH];
    pt_loop_slot_t slots[PT_LOOP_MAX_CLIENTS];
    uint16_t owner[OWNER_IDS];
    /* The pause handshake, on a line of its own: the controller writes it, the loop reads it every pass. */
    _Alignas(64) _Atomic uint64_t pause_req;
    _Atomic uint64_t paused;
    uint64_t last_ticket; /* the controller's alone */
    /* Checkpoints (pt_journal_rotation.h), on a line of their own: the helper writes the state and the offer
     * rarely, the loop reads the state once per pass. */
    _Alignas(64) _Atomic uint32_t rot_state; /* ROT_IDLE, ROT_OFFERED, ROT_DONE */
    _Atomic uint32_t ckpt_req;               /* set by pt_loop_request_checkpoint, cleared by a checkpoint */
    int rotating;                            /* pt_loop_set_rotation was called */
    uint64_t rot_every;
    uint64_t rot_position;                   /* records of the segments before the current one */
    uint64_t rot_segment;                    /* the current segment */
    pt_journal_t offered;                    /* ROT_OFFERED: the next segment (the helper's until then) */
    pt_loop_checkpoint_t done;               /* ROT_DONE: the last checkpoint (the loop's until then) */
};

enum { ROT_IDLE = 0, ROT_OFFERED = 1, ROT_DONE = 2 };

static pt_loop_control_t *control_of(void *mem, size_t bytes)
{
    if (mem == NULL || ((uintptr_t)mem & 63) != 0 || bytes < PT_LOOP_CONTROL_BYTES)
        return NULL;
    return (pt_loop_control_t *)mem;
}

int pt_loop_control_init(void *mem, size_t bytes)
{
    pt_loop_control_t *c = control_of(mem, bytes);
    if (c == NULL)
        return PT_LOOP_EINVAL;
    memset(mem, 0, PT_LOOP_CONTROL_BYTES);
    c->version = PT_LOOP_VERSION;
    /* Publishes the zeroed block: pairs with the acquire load in checked(). */
    atomic_store_explicit(&c->magic, PT_LOOP_MAGIC, memory_order_release);
    return PT_LOOP_OK;
}

static pt_loop_control_t *checked(void *mem, size_t bytes, int *rc)
{
    pt_loop_control_t *c = control_of(mem, bytes);
    if (c == NULL) {
        *rc = PT_LOOP_EINVAL;
        return NULL;
    }
    /* Pairs with the release store in pt_loop_control_init. */
    if (atomic_load_explicit(&c->magic, memory_order_acquire) != PT_LOOP_MAGIC || c->version != PT_LOOP_VERSION) {
        *rc = PT_LOOP_EBADMAGIC;
        return NULL;
    }
    *rc = PT_LOOP_OK;
    return c;
}

int pt_loop_control_read(void *mem, size_t bytes, pt_loop_counters_t *out)
{
    int rc;
    pt_loop_control_t *c = checked(mem, bytes, &rc);
    if (c == NULL || out == NULL)
        return c == NULL ? rc : PT_LOOP_EINVAL;
    /* Relaxed: monitoring values, each written by the loop alone (see the top comment). */
    out->commands = atomic_load_explicit(&c->commands, memory_order_relaxed);
    out->events = atomic_load_explicit(&c->events, memory_order_relaxed);
    out->iterations = atomic_load_explicit(&c->iterations, memory_order_relaxed);
    out->idle_passes = atomic_load_explicit(&c->idle_passes, memory_order_relaxed);
    out->stalls = atomic_load_explicit(&c->stalls, memory_order_relaxed);
    out->unrouted = atomic_load_explicit(&c->unrouted, memory_order_relaxed);
    out->running = atomic_load_explicit(&c->running, memory_order_relaxed);
    out->journal_full = atomic_load_explicit(&c->journal_full, memory_order_relaxed);
    out->stop = atomic_load_explicit(&c->stop, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&c->dropped, memory_order_relaxed);
    out->clients = atomic_load_explicit(&c->clients, memory_order_relaxed);
    out->pauses = atomic_load_explicit(&c->pauses, memory_order_relaxed);
    out->stalled_on = atomic_load_explicit(&c->stalled_on, memory_order_relaxed);
    return PT_LOOP_OK;
}

int pt_loop_request_stop(void *mem, size_t bytes)
{
    int rc;
    pt_loop_control_t *c = checked(mem, bytes, &rc);
    if (c == NULL)
        return rc;
    /* Pairs with the loop's acquire load of stop. */
    atomic_store_explicit(&c->stop, 1, memory_order_release);
    return PT_LOOP_OK;
}

int pt_loop_create(pt_engine_t *engine, void *control_mem, size_t control_bytes, pt_loop_t **out)
{
    int rc;
    if (engine == NULL || out == NULL)
        return PT_LOOP_EINVAL;
    pt_loop_control_t *c = checked(control_mem, control_bytes, &rc);
    if (c == NULL)
        return rc;
    size_t size = (sizeof(pt_loop_t) + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    pt_loop_t *loop = aligned_alloc(64, size);
    if (loop == NULL)
        return PT_LOOP_ENOMEM;
    memset(loop, 0, size);
    loop->engine = engine;
    loop->control = c;
    *out = loop;
    return PT_LOOP_OK;
}

void pt_loop_destroy(pt_loop_t *loop)
{
    free(loop);
}

int pt_loop_add_client(pt_loop_t *loop, uint16_t client_id, void *cmd_mem, size_t cmd_bytes, void *evt_mem,
                       size_t evt_bytes)
{
    if (loop == NULL)
        return PT_LOOP_EINVAL;
    if (loop->nslots == PT_LOOP_MAX_CLIENTS)
        return PT_LOOP_ESLOTS;
    if (client_id == PT_CLIENT_NONE || loop->owner[client_id] != 0)
        return PT_LOOP_EDUPLICATE; /* attached, or granted to a link */
    pt_loop_slot_t *s = &loop->slots[loop->nslots];
    if (pt_ring_attach(cmd_mem, cmd_bytes, &s->cmd) != PT_RING_OK ||
        pt_ring_attach(evt_mem, evt_bytes, &s->evt) != PT_RING_OK)
        return PT_LOOP_EINVAL;
    s->client_id = client_id;
    s->link = 0;
    loop->owner[client_id] = (uint16_t)(client_id + 1);
    atomic_store_explicit(&s->gone, 0, memory_order_relaxed); /* published by resume (or before run) */
    loop->nslots++;
    atomic_store_explicit(&loop->control->clients, loop->nslots, memory_order_relaxed);
    return PT_LOOP_OK;
}

static pt_loop_slot_t *find_slot(pt_loop_t *loop, uint16_t client_id)
{
    for (uint32_t i = 0; i < loop->nslots; i++)
        if (loop->slots[i].client_id == client_id)
            return &loop->slots[i];
    return NULL;
}

int pt_loop_remove_client(pt_loop_t *loop, uint16_t client_id)
{
    if (loop == NULL)
        return PT_LOOP_EINVAL;
    pt_loop_slot_t *s = find_slot(loop, client_id);
    if (s == NULL)
        return PT_LOOP_ENOCLIENT;
    uint16_t mark = (uint16_t)(client_id + 1);
    if (s->link) {
        for (uint32_t id = 0; id < OWNER_IDS; id++) /* its grants: rare (a link detaching), ~64 K compares */
            if (loop->owner[id] == mark)
                loop->owner[id] = 0;
    }
    loop->owner[client_id] = 0;
    /* Keeps the others in slot order: polling stays round-robin in attach order. */
    uint32_t i = (uint32_t)(s - loop->slots);
    for (; i + 1 < loop->nslots; i++) {
        loop->slots[i].cmd = loop->slots[i + 1].cmd;
        loop->slots[i].evt = loop->slots[i + 1].evt;
        loop->slots[i].client_id = loop->slots[i + 1].client_id;
        loop->slots[i].link = loop->slots[i + 1].link;
        atomic_store_explicit(&loop->slots[i].gone,
                              atomic_load_explicit(&loop->slots[i + 1].gone, memory_order_relaxed),
                              memory_order_relaxed);
    }
    loop->nslots--;
    atomic_store_explicit(&loop->control->clients, loop->nslots, memory_order_relaxed);
    return PT_LOOP_OK;
}

int pt_loop_grant(pt_loop_t *loop, uint16_t link_id, uint16_t account)
{
    if (loop == NULL || account == PT_CLIENT_NONE)
        return PT_LOOP_EINVAL;
    pt_loop_slot_t *s = find_slot(loop, link_id);
    if (s == NULL)
        return PT_LOOP_ENOCLIENT;
    uint16_t mark = (uint16_t)(link_id + 1);
    if (loop->owner[account] == mark)
        return PT_LOOP_OK; /* granted already (the link's own id included) */
    if (loop->owner[account] != 0)
        return PT_LOOP_EDUPLICATE; /* attached itself, or granted to another link */
    loop->owner[account] = mark;
    s->link = 1;
    return PT_LOOP_OK;
}

int pt_loop_set_client_gone(pt_loop_t *loop, uint16_t client_id)
{
    if (loop == NULL)
        return PT_LOOP_EINVAL;
    /* The slot array only changes while paused, by this same controller thread: reading it here is safe. */
    pt_loop_slot_t *s = find_slot(loop, client_id);
    if (s == NULL)
        return PT_LOOP_ENOCLIENT;
    atomic_store_explicit(&s->gone, 1, memory_order_release); /* pairs with the loop's acquire loads */
    return PT_LOOP_OK;
}

uint64_t pt_loop_pause_begin(pt_loop_t *loop)
{
    uint64_t ticket = ++loop->last_ticket;
    atomic_store_explicit(&loop->pause_req, ticket, memory_order_release);
    return ticket;
}

int pt_loop_pause_granted(pt_loop_t *loop, uint64_t ticket)
{
    /* Acquire: pairs with the loop's release store of paused (it routed everything before parking). */
    if (atomic_load_explicit(&loop->paused, memory_order_acquire) == ticket)
        return 1;
    return atomic_load_explicit(&loop->control->running, memory_order_acquire) ? 0 : -1;
}

void pt_loop_resume(pt_loop_t *loop)
{
    /* Release: the loop's acquire load of pause_req sees every change made while it was parked. */
    atomic_store_explicit(&loop->pause_req, 0, memory_order_release);
}

int pt_loop_set_market_data(pt_loop_t *loop, void *md_mem, size_t md_bytes)
{
    if (loop == NULL || pt_bcast_attach(md_mem, md_bytes, &loop->md) != PT_BCAST_OK)
        return PT_LOOP_EINVAL;
    loop->has_md = 1;
    return PT_LOOP_OK;
}

int pt_loop_set_journal(pt_loop_t *loop, void *journal_mem, size_t journal_bytes)
{
    if (loop == NULL || pt_journal_attach(journal_mem, journal_bytes, &loop->journal) != PT_JOURNAL_OK)
        return PT_LOOP_EINVAL;
    loop->has_journal = 1;
    return PT_LOOP_OK;
}

static inline int stop_requested(const pt_loop_t *loop)
{
    /* Pairs with the release store in pt_loop_request_stop. */
    return atomic_load_explicit(&loop->control->stop, memory_order_acquire) != 0;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause(); /* not a syscall: eases the spin on the core (and its SMT sibling) */
#endif
}

static void publish_counters(pt_loop_t *loop)
{
    pt_loop_control_t *c = loop->control;
    const pt_loop_tally_t *t = &loop->tally;
    /* Relaxed: the loop is the only writer; monitors read relaxed (top comment). */
    atomic_store_explicit(&c->commands, t->commands, memory_order_relaxed);
    atomic_store_explicit(&c->events, t->events, memory_order_relaxed);
    atomic_store_explicit(&c->iterations, t->iterations, memory_order_relaxed);
    atomic_store_explicit(&c->idle_passes, t->idle_passes, memory_order_relaxed);
    atomic_store_explicit(&c->stalls, t->stalls, memory_order_relaxed);
    atomic_store_explicit(&c->unrouted, t->unrouted, memory_order_relaxed);
    atomic_store_explicit(&c->dropped, t->dropped, memory_order_relaxed);
    atomic_store_explicit(&c->pauses, t->pauses, memory_order_relaxed);
}

static void flush_md(pt_loop_t *loop)
{
    if (loop->md_count > 0) {
        pt_bcast_publish_batch(&loop->md, loop->md_buf, loop->md_count); /* never waits */
        loop->md_count = 0;
    }
}

static pt_loop_slot_t *slot_of(pt_loop_t *loop, pt_loop_slot_t *hint, uint16_t client_id)
{
    if (hint != NULL && hint->client_id == client_id)
        return hint; /* ACK/REJECT and the taker's events belong to the sender */
    return find_slot(loop, client_id);
}

static inline int is_gone(const pt_loop_slot_t *s)
{
    return atomic_load_explicit(&s->gone, memory_order_acquire) != 0; /* pairs with set_client_gone */
}

/* Pushes one event to a client's ring, waiting while it is full. 0, or -1 if stop was requested meanwhile.
 * The events of a client declared gone are dropped, even in the middle of a stall. */
static int deliver(pt_loop_t *loop, pt_loop_slot_t *s, const pt_event_t *ev)
{
    if (is_gone(s)) {
        loop->tally.dropped++;
        return 0;
    }
    if (pt_ring_try_push(&s->evt, ev) == PT_RING_OK)
        return 0;
    loop->tally.stalls++;
    publish_counters(loop); /* a monitor sees the stall while it lasts, and whose ring it is (the controller
                             * disconnects a client that stays too slow: hotpath/control.py) */
    atomic_store_explicit(&loop->control->stalled_on, (uint64_t)s->client_id + 1, memory_order_relaxed);
    int rc = 0;
    while (pt_ring_try_push(&s->evt, ev) != PT_RING_OK) {
        if (stop_requested(loop)) {
            rc = -1;
            break;
        }
        if (is_gone(s)) {
            loop->tally.dropped++;
            break;
        }
        cpu_relax();
    }
    atomic_store_explicit(&loop->control->stalled_on, 0, memory_order_relaxed);
    return rc;
}

/* Routes every pending engine event (pt_loop.h: routing), then clears them. -1 if stop interrupted a stall. */
static int route_events(pt_loop_t *loop, pt_loop_slot_t *sender)
{
    size_t n;
    pt_event_t *evs = pt_engine_events(loop->engine, &n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const pt_event_t *ev = &evs[i];
        if (ev->type == PT_EV_BOOK_DELTA || ev->type == PT_EV_TRADE) {
            if (!loop->has_md) {
                loop->tally.unrouted++;
                continue;
            }
            loop->md_buf[loop->md_count++] = *ev;
            if (loop->md_count == MD_BATCH)
                flush_md(loop);
            continue;
        }
        pt_loop_slot_t *s;
        if (ev->type == PT_EV_REJECT && ev->reason == PT_REJ_NOT_GRANTED)
            s = sender; /* back to the link that sent it: the client it named may be another link's */
        else {
            uint16_t owner = loop->owner[ev->client_id];
            s = owner != 0 ? slot_of(loop, sender, (uint16_t)(owner - 1)) : NULL;
        }
        if (s == NULL) {
            loop->tally.unrouted++;
            continue;
        }
        if (deliver(loop, s, ev) != 0)
            rc = -1;
    }
    flush_md(loop);
    loop->tally.events += n;
    pt_engine_clear_events(loop->engine);
    return rc;
}

/* ---- checkpoints (pt_journal_rotation.h) ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* the vDSO: no syscall */
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Whether a checkpoint can be taken now: a segment is offered. Acquire: pairs with the helper's release store
 * of ROT_OFFERED, so the offer's fields are whole. */
static inline int segment_offered(pt_loop_t *loop)
{
    return loop->rotating && atomic_load_explicit(&loop->rot_state, memory_order_acquire) == ROT_OFFERED;
}

/* The snapshot of the engine as it is (between two commands), then the journal switched to the offered
 * segment, and the checkpoint handed to the helper. Called with a segment offered. */
static void checkpoint(pt_loop_t *loop)
{
    uint64_t start = now_ns();
    pt_loop_checkpoint_t *d = &loop->done;
    uint64_t position = loop->rot_position + loop->journal.committed;
    pt_snapshot_info_t info = {.no_hash = 1, .journal_position = position, .segment = loop->rot_segment + 1,
                               .config_hash = loop->journal.config_hash};
    void *buf = NULL;
    size_t len = 0;
    int rc = pt_snapshot_encode_alloc(loop->engine, &info, &buf, &len);
    *d = (pt_loop_checkpoint_t){.snapshot = rc == PT_SNAPSHOT_OK ? buf : NULL, .snapshot_bytes = len,
                                .snapshot_rc = rc, .segment = loop->rot_segment + 1, .journal_position = position,
                                .old_journal = loop->journal.region, .old_committed = loop->journal.committed,
                                .commands = info.commands, .live_orders = info.live_orders};
    loop->journal = loop->offered;
    loop->rot_position = position;
    loop->rot_segment++;
    atomic_store_explicit(&loop->ckpt_req, 0, memory_order_relaxed);
    d->pause_ns = now_ns() - start;
    /* Publishes the checkpoint: pairs with the acquire load in pt_loop_take_checkpoint. */
    atomic_store_explicit(&loop->rot_state, ROT_DONE, memory_order_release);
}

/* At a pass boundary: a checkpoint if one is due (the segment holds `every` records, or one was asked for). */
static inline void checkpoint_if_due(pt_loop_t *loop)
{
    if (!segment_offered(loop))
        return;
    int due = (loop->rot_every > 0 && loop->journal.committed >= loop->rot_every) ||
              atomic_load_explicit(&loop->ckpt_req, memory_order_relaxed) != 0;
    if (due)
        checkpoint(loop);
}

int pt_loop_set_rotation(pt_loop_t *loop, uint64_t every, uint64_t journal_position, uint64_t segment)
{
    if (loop == NULL || !loop->has_journal)
        return PT_LOOP_EINVAL;
    loop->rotating = 1;
    loop->rot_every = every;
    loop->rot_position = journal_position;
    loop->rot_segment = segment;
    return PT_LOOP_OK;
}

int pt_loop_offer_segment(pt_loop_t *loop, void *journal_mem, size_t journal_bytes)
{
    if (loop == NULL || !loop->rotating)
        return PT_LOOP_EINVAL;
    if (atomic_load_explicit(&loop->rot_state, memory_order_acquire) != ROT_IDLE)
        return PT_LOOP_EDUPLICATE;
    pt_journal_t j;
    if (pt_journal_attach(journal_mem, journal_bytes, &j) != PT_JOURNAL_OK || j.committed != 0)
        return PT_LOOP_EINVAL;
    loop->offered = j;
    /* Publishes the offer: pairs with the loop's acquire load in segment_offered. */
    atomic_store_explicit(&loop->rot_state, ROT_OFFERED, memory_order_release);
    return PT_LOOP_OK;
}

void pt_loop_request_checkpoint(pt_loop_t *loop)
{
    if (loop != NULL)
        atomic_store_explicit(&loop->ckpt_req, 1, memory_order_relaxed);
}

int pt_loop_take_checkpoint(pt_loop_t *loop, pt_loop_checkpoint_t *out)
{
    if (loop == NULL || out == NULL)
        return PT_LOOP_EINVAL;
    /* Pairs with the loop's release store of ROT_DONE: the checkpoint's fields are whole. */
    if (atomic_load_explicit(&loop->rot_state, memory_order_acquire) != ROT_DONE)
        return 0;
    *out = loop->done;
    atomic_store_explicit(&loop->rot_state, ROT_IDLE, memory_order_release);
    return 1;
}

/* Invariant (4): journals cmd, just run (accepted or rejected: see pt_journal.h for why rejects are kept).
 * The caller checked that the journal has room, so the append cannot fail. */
static void journal_command(pt_loop_t *loop, const pt_command_t *cmd)
{
    (void)pt_journal_append(&loop->journal, cmd);
}

/* Runs up to PT_LOOP_CLIENT_BATCH of one client's commands. Returns how many, or < 0 (stop / engine error). */
static int serve_client(pt_loop_t *loop, pt_loop_slot_t *s, int *rc)
{
    if (is_gone(s))
        return 0; /* commands it left behind were never acknowledged: not run */
    const void *first;
    size_t n = pt_ring_peek(&s->cmd, &first, PT_LOOP_CLIENT_BATCH);
    if (n == 0)
        return 0;
    const pt_command_t *cmds = first;
    for (size_t i = 0; i < n; i++) {
        pt_engine_run_ahead(loop->engine, cmds, i, n); /* a later cancel's order, fetched while this one runs */
        pt_command_t cmd = cmds[i]; /* a copy: the slot is the client's memory, client_id is ours to set */
        if (!s->link)
            cmd.client_id = s->client_id; /* a one-account slot acts for its own client, whatever it wrote */
        else if (loop->owner[cmd.client_id] != (uint16_t)(s->client_id + 1))
            cmd.flags |= PT_FLAG_NOT_GRANTED; /* a link acts only for its grant: rejected, journaled as such */
        if (cmd.op >= PT_OP_HALT && cmd.op <= PT_OP_SET_LIMIT)
            cmd.flags |= PT_FLAG_NOT_GRANTED; /* operator ops come only from the controller (pt_loop_execute) */
        if (loop->has_journal && pt_journal_free(&loop->journal) == 0 && segment_offered(loop))
            checkpoint(loop); /* the segment is full and the next one is there: carry on in it */
        if (loop->has_journal && pt_journal_free(&loop->journal) == 0) {
            /* Cannot journal it, so do not run it: it stays in the ring; the commands before it are journaled
             * and their events still go out. The loop stops (pt_loop_run returns PT_LOOP_EJOURNALFULL). */
            pt_ring_release(&s->cmd, i);
            loop->tally.commands += i;
            atomic_store_explicit(&loop->control->journal_full, 1, memory_order_relaxed);
            *rc = PT_LOOP_EJOURNALFULL;
            (void)route_events(loop, s);
            return -1;
        }
        int erc = pt_engine_submit(loop->engine, &cmd);
        if (erc == PT_E_FULL) { /* the event buffer could overflow: drain it and run the command again */
            if (route_events(loop, s) != 0) {
                pt_ring_release(&s->cmd, i);
                return -1;
            }
            erc = pt_engine_submit(loop->engine, &cmd);
        }
        if (erc != PT_OK) {
            pt_ring_release(&s->cmd, i);
            *rc = PT_LOOP_EENGINE;
            return -1;
        }
        if (loop->has_journal)
            journal_command(loop, &cmd); /* before route_events: invariant (4) */
    }
    pt_ring_release(&s->cmd, n); /* the slots go back to the client before its events do */
    loop->tally.commands += n;
    if (route_events(loop, s) != 0)
        return -1;
    return (int)n;
}

int pt_loop_execute(pt_loop_t *loop, const pt_command_t *cmd)
{
    if (loop == NULL || cmd == NULL)
        return PT_LOOP_EINVAL;
    if (loop->has_journal && pt_journal_free(&loop->journal) == 0 && segment_offered(loop))
        checkpoint(loop);
    if (loop->has_journal && pt_journal_free(&loop->journal) == 0)
        return PT_LOOP_EJOURNALFULL;
    if (pt_engine_submit(loop->engine, cmd) != PT_OK) /* the buffer is empty at a pass boundary: fits */
        return PT_LOOP_EENGINE;
    if (loop->has_journal)
        journal_command(loop, cmd);
    loop->tally.commands++;
    int rc = route_events(loop, slot_of(loop, NULL, cmd->client_id)) == 0 ? PT_LOOP_OK : PT_LOOP_EENGINE;
    publish_counters(loop);
    return rc;
}

/* The pause handshake, loop side (top comment): parks until the controller resumes. */
static void park_if_asked(pt_loop_t *loop)
{
    uint64_t ticket = atomic_load_explicit(&loop->pause_req, memory_order_acquire);
    if (ticket == 0)
        return;
    loop->tally.pauses++;
    publish_counters(loop);
    atomic_store_explicit(&loop->paused, ticket, memory_order_release);
    while (atomic_load_explicit(&loop->pause_req, memory_order_acquire) == ticket)
        cpu_relax();
}

int pt_loop_run(pt_loop_t *loop)
{
    if (loop == NULL)
        return PT_LOOP_EINVAL;
    int rc = PT_LOOP_OK;
    atomic_store_explicit(&loop->control->running, 1, memory_order_relaxed);
    while (!stop_requested(loop)) {
        uint64_t work = 0;
        int stopped = 0;
        for (uint32_t i = 0; i < loop->nslots; i++) {
            int n = serve_client(loop, &loop->slots[i], &rc);
            if (n < 0) {
                stopped = 1;
                break;
            }
            work += (uint64_t)n;
        }
        loop->tally.iterations++;
        if (work == 0) {
            loop->tally.idle_passes++;
            cpu_relax();
        }
        publish_counters(loop);
        if (stopped)
            break;
        checkpoint_if_due(loop);
        park_if_asked(loop);
    }
    publish_counters(loop);
    atomic_store_explicit(&loop->control->running, 0, memory_order_release);
    return rc;
}
