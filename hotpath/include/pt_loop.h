/*
 * pt_loop.h - the engine process's event loop: client command rings in, engine, event rings and the
 * market-data ring out. No syscall and no Python inside pt_loop_run; it spins until the stop flag in the
 * shared control block is set.
 *
 * Per pass (hotpath/src/loop.c has the details):
 *   1. acquire-load the stop flag; set: leave.
 *   2. for each attached client slot, in slot order: take up to PT_LOOP_CLIENT_BATCH commands from its
 *      command ring (zero copy), overwrite each command's client_id with the slot's (a client cannot act
 *      as another) or, for a link slot (pt_loop_grant), check it against the link's grant, run it through
 *      pt_engine_submit, then route the engine's events and clear them.
 *   3. publish the live counters (relaxed stores; the loop is their only writer).
 *
 * Journal (optional, pt_loop_set_journal; pt_journal.h): every command the loop runs, rejected or not,
 * is appended to the journal right after it ran, before any of its events is routed to a client ring or the
 * market-data ring. So a client that has an ACK (or a FILL) knows its command is in the journal. Before each
 * command the loop checks that the journal has room; if not, it leaves that command (and the rest) in the
 * ring unrun, routes the events of those before it, sets `journal_full` and returns PT_LOOP_EJOURNALFULL.
 * It stops rather than run a command it could not journal.
 *
 * Routing: ACK, REJECT, CANCELED, MODIFIED, FILL (and HEARTBEAT) go to the event ring of the slot that owns
 * the client the event names (event client_id: its own slot, or the link it is granted to); a trade gives
 * each side its own FILL, the maker's included. A NOT_GRANTED REJECT goes back to the link that sent it. BOOK_DELTA and
 * TRADE go to the market-data (broadcast) ring only; TRADE is public data, and each party already has its
 * FILL. An event for a client id with no slot is dropped and counted (unrouted).
 *
 * Stall rule: a client event ring that is full is waited on (spinning, re-checking the stop flag and the
 * slot's gone flag), never overwritten, and counted once per waiting event in `stalls`. A live client that
 * stops reading stalls the engine until it reads or is declared gone; the controller declares a client gone
 * when its process exits, its heartbeats stop, or the loop has been stalled on its ring (`stalled_on`) for
 * longer than the slow-consumer timeout (hotpath/control.py), so no client stalls the others for long.
 *
 * Controller (one thread of the engine process other than the loop's; hotpath/control.py):
 *   - pt_loop_set_client_gone(client): any time. From then on the loop runs none of that client's commands
 *     and drops (counts in `dropped`) the events addressed to it, a stalled push included.
 *   - pause handshake: t = pt_loop_pause_begin(); poll pt_loop_pause_granted(t) until 1; ... ; pt_loop_resume().
 *     The loop checks for a request once per pass, between commands, when every event so far is routed; it
 *     then parks (spinning) until resumed. While granted, the controller alone may call pt_loop_add_client,
 *     pt_loop_remove_client, pt_loop_execute and any pt_engine_* function (snapshots, limits, symbols).
 *     A pause request is never broken by the stop flag: the controller must resume (its work is bounded).
 * Before pt_loop_run starts and after it returns, the thread that owns the loop may make those calls.
 *
 * Control block (one shared region, PT_LOOP_CONTROL_BYTES, 64-byte aligned):
 *
 *     0  +--------------------------------------------------------------+
 *        | magic u64 | version u32 | pad                                 | init writes, readers check
 *    64  +--------------------------------------------------------------+
 *        | stop (_Atomic u64)   anyone release-stores 1; loop acquires   |
 *   128  +--------------------------------------------------------------+
 *        | commands | events | iterations | idle_passes | stalls |       | _Atomic u64 each; only the loop
 *        | unrouted | running | journal_full |                           | writes (relaxed), monitors read
 *   192  +--------------------------------------------------------------+
 *        | dropped | clients | pauses | stalled_on | pad                 | the same, second line
 *   256  +--------------------------------------------------------------+
 *
 * The counters share one line: they have one writer, which writes them all once per pass, so splitting them
 * would only cost the monitor more line transfers. The stop flag is written by other processes and sits alone.
 *
 * Return codes: 0 OK, negative enum pt_loop_rc. No global state: everything is in the pt_loop_t.
 */
#ifndef PT_LOOP_H
#define PT_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "pt_engine.h"

#define PT_LOOP_CONTROL_BYTES 256
#define PT_LOOP_OFF_META 0
#define PT_LOOP_OFF_STOP 64
#define PT_LOOP_OFF_COUNTERS 128
#define PT_LOOP_MAGIC 0x4C4F4F4C54505450
#define PT_LOOP_VERSION 2
#define PT_LOOP_MAX_CLIENTS 64   /* client slots per loop */
#define PT_LOOP_CLIENT_BATCH 32  /* commands taken from one client per pass: no client starves the others */

enum pt_loop_rc {
    PT_LOOP_OK = 0,
    PT_LOOP_EINVAL = -1,     /* NULL, misaligned or too small region, bad ring */
    PT_LOOP_EBADMAGIC = -2,  /* the control region was never initialised */
    PT_LOOP_ESLOTS = -3,     /* PT_LOOP_MAX_CLIENTS slots already attached */
    PT_LOOP_EDUPLICATE = -4, /* that client id already has a slot */
    PT_LOOP_ENOMEM = -5,     /* pt_loop_create could not allocate */
    PT_LOOP_EENGINE = -6,    /* pt_engine_submit failed with an empty event buffer (cannot happen) */
    PT_LOOP_EJOURNALFULL = -7, /* the journal had no room for the next command: the loop stopped (pt_loop.h) */
    PT_LOOP_ENOCLIENT = -8,  /* no slot has that client id */
};

/* A snapshot of the control block, read with relaxed loads (each value is exact, the set is not atomic). */
typedef struct pt_loop_counters {
    uint64_t commands;    /* commands taken from client rings and run */
    uint64_t events;      /* engine events routed (client rings and market data) */
    uint64_t iterations;  /* passes over all slots */
    uint64_t idle_passes; /* passes that found no command */
    uint64_t stalls;      /* events that had to wait for a full client event ring */
    uint64_t unrouted;    /* events for a client id with no slot, dropped */
    uint64_t running;     /* 1 while pt_loop_run is inside its loop */
    uint64_t journal_full; /* 1 once the loop stopped because the journal had no room (PT_LOOP_EJOURNALFULL) */
    uint64_t stop;        /* the stop flag */
    uint64_t dropped;     /* events addressed to a client declared gone, dropped */
    uint64_t clients;     /* client slots attached now */
    uint64_t pauses;      /* pauses granted to the controller */
    uint64_t stalled_on;  /* client id + 1 while the loop waits on that client's full event ring, else 0 */
} pt_loop_counters_t;

typedef struct pt_loop pt_loop_t;

/* Control block: format (before the loop starts), request stop (any process), read counters (any process). */
int pt_loop_control_init(void *mem, size_t bytes);
int pt_loop_control_read(void *mem, size_t bytes, pt_loop_counters_t *out);
int pt_loop_request_stop(void *mem, size_t bytes);

/* Setup (allocates; not on the hot path). The engine and every region must outlive the loop. */
int pt_loop_create(pt_engine_t *engine, void *control_mem, size_t control_bytes, pt_loop_t **out);
void pt_loop_destroy(pt_loop_t *loop);
/* Attaches client_id's ring pair: the loop consumes cmd_mem's ring and produces into evt_mem's. */
int pt_loop_add_client(pt_loop_t *loop, uint16_t client_id, void *cmd_mem, size_t cmd_bytes, void *evt_mem,
                       size_t evt_bytes);
/* Attaches the market-data broadcast ring (optional: without one, BOOK_DELTA and TRADE are dropped, counted). */
int pt_loop_set_market_data(pt_loop_t *loop, void *md_mem, size_t md_bytes);

/* Attaches the journal (optional: without one nothing is journaled). journal_mem is a pt_journal_init'ed
 * region (a MAP_SHARED file mapping); appending continues after the records already committed there. */
int pt_loop_set_journal(pt_loop_t *loop, void *journal_mem, size_t journal_bytes);

/* Paused (or before run): lets the slot of link_id act for account too. From then on the slot is a link: each of
 * its commands keeps the client_id it names, and one naming a client not granted to it is flagged
 * PT_FLAG_NOT_GRANTED (the engine rejects it; the REJECT comes back to the link); every event of a granted
 * account goes to the link's event ring. PT_LOOP_EDUPLICATE if account is attached or granted elsewhere. */
int pt_loop_grant(pt_loop_t *loop, uint16_t link_id, uint16_t account);

/* The controller's calls (see "Controller" above). */
int pt_loop_set_client_gone(pt_loop_t *loop, uint16_t client_id);
/* Asks the loop to park at its next pass boundary; returns the ticket to poll with (never 0). */
uint64_t pt_loop_pause_begin(pt_loop_t *loop);
/* 1 once the loop is parked for this ticket, 0 not yet, -1 if the loop is not running (then nothing is
 * granted: before pt_loop_run the owner thread does the work itself; after it, the loop is gone). */
int pt_loop_pause_granted(pt_loop_t *loop, uint64_t ticket);
/* Ends the pause (or withdraws a request not yet granted). */
void pt_loop_resume(pt_loop_t *loop);
/* Paused only: detaches client_id's slot (its rings are the caller's to unmap afterwards). */
int pt_loop_remove_client(pt_loop_t *loop, uint16_t client_id);
/* Paused only: runs one command exactly as if the loop had taken it from a ring (journal first, then its
 * events routed; client_id is taken as given). PT_LOOP_OK, PT_LOOP_EJOURNALFULL (not run) or PT_LOOP_EENGINE. */
int pt_loop_execute(pt_loop_t *loop, const pt_command_t *cmd);

/* Runs until the stop flag is set; PT_LOOP_OK, PT_LOOP_EJOURNALFULL, or PT_LOOP_EENGINE. Clears running on the way out. */
int pt_loop_run(pt_loop_t *loop);

#endif
