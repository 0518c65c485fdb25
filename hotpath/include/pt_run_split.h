/*
 * pt_run_split.h - a backtest's first look at an engine run that stopped at a command its strategy watches.
 *
 * Engine.execute_until_watched_raw runs commands until one concerns the strategy (a trade on its symbol, a
 * change of its top of book, an event of its own) and returns the run's events as wire bytes. Everything
 * before that command's time changed only levels behind the top: those BOOK_DELTAs of the symbol reach the
 * strategy's book quietly, with no handler called. From the watched time on, the strategy gets its symbol's
 * BOOK_DELTAs and TRADEs and its own events. pt_run_split sorts a run's rows that way in one pass, so that
 * Python (strategies.backtest.venue, through hotpath.run_split) builds objects only for what it delivers:
 * doing this in Python cost a sixth of a reaction.
 *
 * Nothing is allocated: the caller passes room for n quiet deltas and n kept rows.
 */
#ifndef PT_RUN_SPLIT_H
#define PT_RUN_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* A quiet BOOK_DELTA: the level's new total, in the event's field order. */
typedef struct pt_quiet_delta {
    int64_t side;
    uint64_t seq;
    uint64_t order_count;
    int64_t price;
    int64_t qty;
} pt_quiet_delta_t;

/* What a kept row is: the row number times 4 plus one of these. */
enum pt_kept_kind {
    PT_KEPT_OWN = 0,   /* an event of the strategy's client (ACK, REJECT, FILL, CANCELED, MODIFIED) */
    PT_KEPT_DELTA = 1, /* a BOOK_DELTA of the symbol */
    PT_KEPT_TRADE = 2, /* a TRADE of the symbol */
};

typedef struct pt_run_split {
    uint64_t split;    /* rows before the watched time (all n when the run was not watched) */
    uint64_t nquiet;   /* quiet deltas written */
    uint64_t quiet_ts; /* ts_ns of the last quiet delta (0 with none) */
    uint64_t nkept;    /* kept rows written */
    uint64_t last_ts;  /* ts_ns of the run's last event (0 for an empty run) */
} pt_run_split_t;

/* Splits the n events (pt_event_t, wire layout) of a run: watched says whether its last command is a watched
 * one, whose events then start at the first row with the run's last ts_ns. Writes the quiet deltas of
 * symbol before that row to quiet[], the rows from it on that the strategy gets (its symbol's BOOK_DELTAs and
 * TRADEs, client's own events) to kept[] as row * 4 + enum pt_kept_kind, and the counts to *out. */
void pt_run_split(const void *events, size_t n, int watched, uint16_t symbol, uint16_t client,
                  pt_quiet_delta_t *quiet, uint32_t *kept, pt_run_split_t *out);

#endif
