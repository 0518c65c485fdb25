/*
 * test_run_split.c - pt_run_split (hotpath/src/run_split.c) on hand-built runs: the watched command's rows
 * found by time, the quiet deltas of the symbol before them, the kept rows after them by kind, an unwatched
 * run and an empty one. Built under ASan+UBSan (`make ctest`), with outputs sized exactly to the run, so a
 * write past them is caught.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "pt_run_split.h"
#include "pt_wire.h"

static pt_event_t ev(uint8_t type, uint16_t symbol, uint16_t client, uint64_t ts, int64_t price)
{
    return (pt_event_t){.type = type, .side = 1, .symbol_id = symbol, .client_id = client, .seq = ts * 10,
                        .ts_ns = ts, .order_count = 3, .price = price, .qty = 7};
}

/* Two quiet commands (t 1, 2), then the watched one (t 3): a delta of another symbol and another client's
 * ACK are passed over, the symbol's deltas before t 3 are quiet, its delta and trade and our ACK at t 3 kept. */
static int test_a_watched_run_splits_at_its_last_time(void)
{
    const pt_event_t run[] = {
        ev(PT_EV_ACK, 0, 5, 1, 0),        ev(PT_EV_BOOK_DELTA, 0, 5, 1, 100), ev(PT_EV_BOOK_DELTA, 1, 5, 2, 90),
        ev(PT_EV_BOOK_DELTA, 0, 5, 2, 99), ev(PT_EV_ACK, 0, 7, 3, 0),          ev(PT_EV_ACK, 0, 5, 3, 0),
        ev(PT_EV_BOOK_DELTA, 0, 5, 3, 101), ev(PT_EV_TRADE, 0, 5, 3, 101),    ev(PT_EV_TRADE, 1, 5, 3, 88),
    };
    size_t n = sizeof run / sizeof run[0];
    pt_quiet_delta_t *quiet = malloc(n * sizeof *quiet);
    uint32_t *kept = malloc(n * sizeof *kept);
    pt_run_split_t out;
    pt_run_split(run, n, 1, 0, 7, quiet, kept, &out);
    EXPECT(out.split == 4 && out.last_ts == 3);
    EXPECT(out.nquiet == 2 && quiet[0].price == 100 && quiet[1].price == 99 && out.quiet_ts == 2);
    EXPECT(quiet[1].seq == 20 && quiet[1].order_count == 3 && quiet[1].qty == 7 && quiet[1].side == 1);
    EXPECT(out.nkept == 3);
    EXPECT(kept[0] == 4 * 4 + PT_KEPT_OWN && kept[1] == 6 * 4 + PT_KEPT_DELTA && kept[2] == 7 * 4 + PT_KEPT_TRADE);
    free(quiet);
    free(kept);
    return 0;
}

/* Not watched (the run ended with the block or a full buffer): every delta of the symbol is quiet. */
static int test_an_unwatched_run_is_quiet_throughout(void)
{
    const pt_event_t run[] = {ev(PT_EV_BOOK_DELTA, 0, 5, 1, 100), ev(PT_EV_BOOK_DELTA, 0, 5, 2, 98)};
    pt_quiet_delta_t quiet[2];
    uint32_t kept[2];
    pt_run_split_t out;
    pt_run_split(run, 2, 0, 0, 7, quiet, kept, &out);
    EXPECT(out.split == 2 && out.nquiet == 2 && out.nkept == 0 && out.quiet_ts == 2 && out.last_ts == 2);
    return 0;
}

static int test_an_empty_run_writes_nothing(void)
{
    pt_run_split_t out;
    memset(&out, 0xFF, sizeof out);
    pt_run_split(NULL, 0, 1, 0, 7, NULL, NULL, &out);
    EXPECT(out.split == 0 && out.nquiet == 0 && out.nkept == 0 && out.quiet_ts == 0 && out.last_ts == 0);
    return 0;
}

int main(void)
{
    static const test_case_t tests[] = {
        {"a watched run splits at its last time", test_a_watched_run_splits_at_its_last_time},
        {"an unwatched run is quiet throughout", test_an_unwatched_run_is_quiet_throughout},
        {"an empty run writes nothing", test_an_empty_run_writes_nothing},
    };
    return run_tests("run split tests", tests, sizeof tests / sizeof tests[0]);
}
