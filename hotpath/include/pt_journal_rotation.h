/*
 * pt_journal_rotation.h - checkpoints of the engine loop: a snapshot of the engine (pt_snapshot.h) and a new
 * journal segment, taken together between two commands, so that recovery is the newest snapshot plus the
 * journal after it instead of the whole history.
 *
 * Segments: the journal is a chain of files (pt_journal.h each), segment 0, 1, 2, ... The snapshot taken when
 * the loop leaves segment k for segment k+1 is the state after every record of segments 0..k, and says so
 * (its segment = k+1, journal_position = the records of segments 0..k). So the state after segment n is the
 * newest snapshot S (segment j) followed by the records of segments j..n, and when S is lost or damaged, the
 * one before it with one more segment to replay. Segment 0 starts from the empty engine.
 *
 * Who does what:
 *   - a helper thread of the engine process (hotpath/engine_process.py) creates and formats the next
 *     segment's file (the syscalls, the disk reservation), and offers it: pt_loop_offer_segment;
 *   - the loop takes a checkpoint at a pass boundary once the current segment holds `every` records, or when
 *     asked (pt_loop_request_checkpoint), or at once when the segment is full, but only if a segment is
 *     offered: it encodes the snapshot into memory it allocates (pt_snapshot_encode_alloc: the one allocation
 *     the loop makes, and the length of the pause), switches its journal to the offered segment, and hands
 *     both back; without an offered segment a full journal stops the loop as before (pt_loop.h);
 *   - the helper takes the checkpoint (pt_loop_take_checkpoint), writes the snapshot file atomically
 *     (pt_snapshot_write_file), msyncs and unmaps the old segment, removes what is past the retention, and
 *     offers the next segment.
 * If the snapshot could not be encoded (no memory), the loop still rotates: recovery then goes through the
 * older snapshot and one more segment, which is as correct and only slower.
 *
 * Handshake: one atomic state word. IDLE (0) -> the helper fills the offer, then release-stores OFFERED (1);
 * the loop acquire-loads it, rotates, fills the checkpoint, release-stores DONE (2); the helper acquire-loads
 * DONE, copies the checkpoint out, release-stores IDLE. Each side writes the fields only in its own states,
 * so no field is ever written by both at once.
 */
#ifndef PT_JOURNAL_ROTATION_H
#define PT_JOURNAL_ROTATION_H

#include <stddef.h>
#include <stdint.h>

#include "pt_loop.h"

/* What a checkpoint hands back to the helper. */
typedef struct pt_loop_checkpoint {
    void *snapshot;            /* the encoded snapshot (pt_snapshot_free it), NULL if it could not be encoded */
    size_t snapshot_bytes;
    int snapshot_rc;           /* 0, or the pt_snapshot_rc that left snapshot NULL */
    uint64_t segment;          /* the segment the loop appends to from now on */
    uint64_t journal_position; /* records of every segment before it: what the snapshot includes */
    void *old_journal;         /* the region of the segment left behind: no longer touched by the loop */
    uint64_t old_committed;    /* its records */
    uint64_t pause_ns;         /* the loop's time on the checkpoint: the snapshot's encoding and the switch */
    uint64_t commands;         /* the engine's command count at the checkpoint */
    uint64_t live_orders;      /* resting orders then */
} pt_loop_checkpoint_t;

/* Before pt_loop_run (or paused), after pt_loop_set_journal: the journal attached is segment `segment`, after
 * `journal_position` records of the segments before it; a checkpoint is due every `every` records of a
 * segment (0 = only when asked or full). PT_LOOP_EINVAL without a journal. */
int pt_loop_set_rotation(pt_loop_t *loop, uint64_t every, uint64_t journal_position, uint64_t segment);
/* The helper: the next segment, a pt_journal_init'ed empty region that outlives its use by the loop.
 * PT_LOOP_EDUPLICATE while one is offered already or a checkpoint waits to be taken; PT_LOOP_EINVAL if it is
 * not a usable, empty journal or rotation is not set. */
int pt_loop_offer_segment(pt_loop_t *loop, void *journal_mem, size_t journal_bytes);
/* Anyone: a checkpoint at the next pass boundary (once a segment is offered), however few records. */
void pt_loop_request_checkpoint(pt_loop_t *loop);
/* The helper: 1 and *out filled if a checkpoint was taken since the last call, else 0. */
int pt_loop_take_checkpoint(pt_loop_t *loop, pt_loop_checkpoint_t *out);

#endif
