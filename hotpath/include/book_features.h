/*
 * book_features.h - the microstructure features of one symbol, updated per market event in C.
 *
 * The formulas are docs/ML.md's ("Features"); ml/features/_incremental.py is the Python face
 * (IncrementalFeatures) and ml/features/_batch.py the numpy twin the tests hold it to. Python reaches this
 * through hotpath._cring (hotpath/_build.py) and hotpath/book_features.py.
 *
 * Use: fill a pt_bf_spec_t, pt_bf_create, then per engine event pt_bf_book_delta / pt_bf_trade (market data)
 * and pt_bf_own_* (one's own order events), and pt_bf_sample at each sample point (after the last event of a
 * command): it writes pt_bf_width(spec) doubles, NaN for an undefined feature. pt_bf_destroy frees it all.
 *
 * Errors: the per-event calls return PT_BF_OK or PT_BF_ERR_NOMEM (a table could not grow: the state is then
 * wrong and stays flagged, so the next pt_bf_sample returns PT_BF_ERR_NOMEM too; a caller that checks only
 * the sample still learns of it). pt_bf_create returns PT_BF_ERR_SPEC for a spec outside the limits below.
 */
#ifndef PT_BOOK_FEATURES_H
#define PT_BOOK_FEATURES_H

#include <stdint.h>

/* The most price levels a side the depth features read, and the most horizons of each kind. */
#define PT_BF_MAX_DEPTH 64
#define PT_BF_MAX_HORIZONS 16

enum pt_bf_status {
    PT_BF_OK = 0,
    PT_BF_ERR_SPEC = -1,  /* a parameter is not positive or past a limit */
    PT_BF_ERR_NOMEM = -2, /* an allocation failed; the state is lost */
};

/* The feature set's parameters (ml.features.FeatureSpec). The three doubles are passed rather than derived
 * here so that C rounds nothing differently from the Python that computes them once. */
typedef struct pt_bf_spec {
    int32_t depth;                                    /* levels a side: imbalance depth, OFI levels */
    int32_t ofi_window;                               /* samples in the OFI's sum */
    int32_t n_return_horizons;                        /* used entries of return_horizons */
    int32_t n_momentum_horizons;                      /* used entries of momentum_horizons_ns */
    int64_t return_horizons[PT_BF_MAX_HORIZONS];      /* samples back */
    int64_t momentum_horizons_ns[PT_BF_MAX_HORIZONS]; /* ns back */
    int64_t trade_window_ns;                          /* trade-flow imbalance window */
    int64_t rate_tau_ns;                              /* arrival rates' time constant */
    double vol_alpha;                                 /* EWMA weight of the newest squared return */
    double vol_beta;                                  /* 1 - vol_alpha */
    double per_event_hz;                              /* 1e9 / rate_tau_ns: one event's mass in the rates */
} pt_bf_spec_t;

/* Opaque: the book (every level, both sides), the windows, the own orders. */
typedef struct pt_bf pt_bf_t;

/* Feature values a row has for this spec (10 + depth + both horizon counts). */
int pt_bf_width(const pt_bf_spec_t *spec);
/* A new state in *out (PT_BF_OK), or PT_BF_ERR_SPEC / PT_BF_ERR_NOMEM and *out untouched. */
int pt_bf_create(const pt_bf_spec_t *spec, pt_bf_t **out);
void pt_bf_destroy(pt_bf_t *bf);

/* A BOOK_DELTA: the level's new total qty (0: gone). side: 1 buy (bid), anything else the ask. */
int pt_bf_book_delta(pt_bf_t *bf, int side, int64_t price, int64_t qty);
/* A TRADE: the taker's side, the price, the qty, the time. */
int pt_bf_trade(pt_bf_t *bf, int side, int64_t price, int64_t qty, int64_t ts_ns);

/* One's own order events. An ACK with price 0 (a market order, which never rests) is not kept. */
int pt_bf_own_ack(pt_bf_t *bf, uint64_t order_id, int side, int64_t price, int64_t open_qty);
/* A FILL or CANCELED: leaves > 0 keeps the order with that open qty, else it is gone. */
int pt_bf_own_fill(pt_bf_t *bf, uint64_t order_id, int64_t leaves);
/* A MODIFIED: a size cut at the same price keeps the queue place; anything else rests afresh. */
int pt_bf_own_modified(pt_bf_t *bf, uint64_t order_id, int64_t price, int64_t leaves);
/* 1 and *ahead = the queue-position proxy of a resting own order; 0 if unknown or not resting yet. */
int pt_bf_queue_ahead(const pt_bf_t *bf, uint64_t order_id, int64_t *ahead);

/* The feature row at a sample point at time ts_ns into row[0 .. width). */
int pt_bf_sample(pt_bf_t *bf, int64_t ts_ns, double *row);
/* pt_bf_sample, then out[i] = (float)row[columns[i]] for i < n (columns within the row): a model's input
 * columns as float32, written where a model reads them. */
int pt_bf_sample_columns(pt_bf_t *bf, int64_t ts_ns, double *row, float *out, const int32_t *columns, int n);
/* Sample points taken so far. */
uint64_t pt_bf_samples(const pt_bf_t *bf);

#endif
