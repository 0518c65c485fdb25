/*
 * run_split.c - pt_run_split (include/pt_run_split.h): one pass over a watched run's events.
 */
#include "pt_run_split.h"

#include "pt_wire.h"

void pt_run_split(const void *events, size_t n, int watched, uint16_t symbol, uint16_t client,
                  pt_quiet_delta_t *quiet, uint32_t *kept, pt_run_split_t *out)
{
    const pt_event_t *ev = events;
    *out = (pt_run_split_t){0};
    if (n == 0)
        return;
    uint64_t last = ev[n - 1].ts_ns;
    size_t split = n;
    if (watched) /* the watched command's events: the run's last time (earlier commands of that time too) */
        while (split > 0 && ev[split - 1].ts_ns == last)
            split--;
    size_t nq = 0;
    for (size_t k = 0; k < split; k++) {
        const pt_event_t *e = &ev[k];
        if (e->type != PT_EV_BOOK_DELTA || e->symbol_id != symbol)
            continue;
        quiet[nq++] = (pt_quiet_delta_t){.side = e->side, .seq = e->seq,
                                         .order_count = e->order_count, .price = e->price,
                                         .qty = e->qty};
        out->quiet_ts = e->ts_ns;
    }
    size_t nk = 0;
    for (size_t k = split; k < n; k++) {
        const pt_event_t *e = &ev[k];
        if (e->type >= PT_EV_BOOK_DELTA) {
            if (e->symbol_id == symbol && e->type == PT_EV_BOOK_DELTA)
                kept[nk++] = (uint32_t)(k * 4 + PT_KEPT_DELTA);
            else if (e->symbol_id == symbol && e->type == PT_EV_TRADE)
                kept[nk++] = (uint32_t)(k * 4 + PT_KEPT_TRADE);
        } else if (e->client_id == client) {
            kept[nk++] = (uint32_t)(k * 4 + PT_KEPT_OWN);
        }
    }
    *out = (pt_run_split_t){.split = split, .nquiet = nq, .quiet_ts = out->quiet_ts, .nkept = nk, .last_ts = last};
}
