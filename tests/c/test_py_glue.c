/*
 * test_py_glue.c - c_engine.Engine's one-crossing calls (c_engine/src/py_glue.c), run under AddressSanitizer
 * and UBSan by `make ctest`: the human-units conversion against Python's rounding rules, and a new order and
 * its cancel through py_new_limit / py_new_order / py_cancel, as Engine.submit and Engine.cancel make them.
 */
#include "harness.h"

#include <math.h>
#include <string.h>

#include "py_glue.h"

/* py_units_t of a symbol as c_engine/_units.py fills it: per_* = 1 / size, tol = size x 1e-6. */
static py_units_t units(double tick, double lot)
{
    return (py_units_t){.tick = tick, .per_tick = 1.0 / tick, .tick_tol = tick * 1e-6,
                        .lot = lot, .per_lot = 1.0 / lot, .lot_tol = lot * 1e-6};
}

static int steps(double v, double step, int64_t *out)
{
    return py_to_steps(v, step, 1.0 / step, step * 1e-6, out);
}

static pt_engine_t *make_engine(void)
{
    pt_engine_config_t cfg = {.max_orders = 256, .max_levels_per_side = 64, .max_symbols = 2, .max_clients = 4};
    pt_engine_t *e;
    if (pt_engine_create(&cfg, &e) != PT_OK)
        abort();
    pt_symbol_config_t sym = {.min_price_ticks = 1, .max_price_ticks = 1000000, .max_order_lots = 100000,
                              .pnl_unit = 1};
    uint16_t id;
    if (pt_engine_add_symbol(e, &sym, &id) != PT_OK || id != 0)
        abort();
    return e;
}

static int test_prices_on_the_grid_convert_to_whole_ticks(void)
{
    int64_t n = -1;
    EXPECT(steps(101.25, 0.01, &n) && n == 10125);
    EXPECT(steps(0.3, 0.1, &n) && n == 3); /* 0.3 / 0.1 is 2.9999999999999996 in doubles */
    EXPECT(steps(-7.5, 0.5, &n) && n == -15);
    EXPECT(steps(0.0, 0.01, &n) && n == 0);
    EXPECT(steps(5.0, 1.0, &n) && n == 5);
    return 0;
}

static int test_a_price_off_the_grid_goes_back_to_python_untouched(void)
{
    int64_t n = 42;
    EXPECT(!steps(101.255, 0.01, &n) && n == 42);
    EXPECT(!steps(0.15, 0.1, &n) && n == 42);
    return 0;
}

static int test_halves_round_to_even_as_python_round_does(void)
{
    /* a tolerance that takes half a step: only the rounding decides */
    int64_t n = 0;
    EXPECT(py_to_steps(2.5, 1.0, 1.0, 0.5, &n) && n == 2);
    EXPECT(py_to_steps(3.5, 1.0, 1.0, 0.5, &n) && n == 4);
    EXPECT(py_to_steps(-2.5, 1.0, 1.0, 0.5, &n) && n == -2);
    return 0;
}

static int test_values_a_double_cannot_hold_exactly_go_back_to_python(void)
{
    int64_t n = 42;
    EXPECT(!steps(0x1p53, 1.0, &n));            /* an int that large was rounded on its way to a double */
    EXPECT(!steps(0x1p52 * 1.5, 0.001, &n));    /* past the int64 field */
    EXPECT(!steps(NAN, 0.01, &n));
    EXPECT(!steps(INFINITY, 0.01, &n));
    EXPECT(!steps(-INFINITY, 0.01, &n));
    EXPECT(n == 42);
    EXPECT(steps(0x1p53 - 1, 1.0, &n) && n == (int64_t)0x1p53 - 1);
    return 0;
}

static int test_new_limit_packs_converts_and_runs_the_order(void)
{
    pt_engine_t *e = make_engine();
    py_shape_t s = {.engine = e, .units = units(0.01, 1.0), .symbol_id = 0, .side = PT_SIDE_BUY,
                    .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_GTC, .stp = PT_STP_NONE, .flags = 0};
    EXPECT(py_new_limit(&s, 1, 77, 1000, 99.5, 3.0) == 2); /* ACK and BOOK_DELTA */
    size_t n;
    const pt_event_t *ev = pt_engine_events(e, &n);
    EXPECT(n == 2 && ev[0].type == PT_EV_ACK && ev[1].type == PT_EV_BOOK_DELTA);
    EXPECT(ev[0].client_id == 1 && ev[0].cloid == 77 && ev[0].ts_ns == 1000 && ev[0].side == PT_SIDE_BUY);
    EXPECT(ev[0].price == 9950 && ev[0].qty == 3 && ev[0].order_id == 1);
    pt_level_t bid, ask;
    EXPECT(pt_engine_l1(e, 0, &bid, &ask) == PT_OK && bid.price == 9950 && bid.qty == 3);
    EXPECT(pt_engine_check(e) == PT_OK);
    pt_engine_destroy(e);
    return 0;
}

static int test_new_order_off_the_grid_runs_nothing(void)
{
    pt_engine_t *e = make_engine();
    py_shape_t s = {.engine = e, .units = units(0.01, 1.0), .side = PT_SIDE_SELL, .order_type = PT_TYPE_LIMIT,
                    .tif = PT_TIF_GTC};
    EXPECT(py_new_limit(&s, 1, 0, 1, 99.505, 1.0) == PY_CONVERT_IN_PYTHON);
    EXPECT(py_new_limit(&s, 1, 0, 1, 99.5, 1.5) == PY_CONVERT_IN_PYTHON);
    pt_engine_stats_t st;
    pt_engine_stats(e, &st);
    EXPECT(st.commands == 0 && st.live_orders == 0);
    pt_engine_destroy(e);
    return 0;
}

static int test_market_order_is_packed_without_a_price_and_clears_old_events(void)
{
    pt_engine_t *e = make_engine();
    py_shape_t rest = {.engine = e, .units = units(0.01, 1.0), .side = PT_SIDE_SELL,
                       .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_GTC, .flags = PT_FLAG_POST_ONLY};
    EXPECT(py_new_limit(&rest, 2, 0, 1, 100.0, 5.0) == 2);
    py_shape_t mkt = {.engine = e, .units = units(0.01, 1.0), .side = PT_SIDE_BUY,
                      .order_type = PT_TYPE_MARKET, .tif = PT_TIF_IOC};
    /* has_price 0: the price argument is ignored, even one off the grid */
    int k = py_new_order(&mkt, 0, 1, 9, 2, 123.456, 2.0);
    size_t n;
    const pt_event_t *ev = pt_engine_events(e, &n);
    EXPECT(k > 0 && (size_t)k == n && ev[0].type == PT_EV_ACK); /* only this command's events */
    EXPECT(ev[1].type == PT_EV_FILL && ev[1].price == 10000 && ev[1].qty == 2);
    pt_l3_order_t l3[2];
    EXPECT(pt_engine_l3(e, 0, PT_SIDE_SELL, l3, 2, &n) == PT_OK && n == 1 && l3[0].open_qty == 3);
    EXPECT(l3[0].post_only == 1);
    pt_engine_destroy(e);
    return 0;
}

static int test_cancel_packs_a_cancel_of_the_order(void)
{
    pt_engine_t *e = make_engine();
    py_shape_t s = {.engine = e, .units = units(0.5, 1.0), .side = PT_SIDE_BUY, .order_type = PT_TYPE_LIMIT,
                    .tif = PT_TIF_GTC};
    EXPECT(py_new_limit(&s, 3, 5, 1, 10.0, 4.0) == 2);
    size_t n;
    uint64_t id = pt_engine_events(e, &n)[0].order_id;
    EXPECT(py_cancel(e, 2, id, 2) == 1); /* another client's order: one REJECT */
    const pt_event_t *ev = pt_engine_events(e, &n);
    EXPECT(ev[0].type == PT_EV_REJECT && ev[0].reason == PT_REJ_NOT_OWNER);
    EXPECT(py_cancel(e, 3, id, 3) == 2); /* CANCELED and BOOK_DELTA */
    ev = pt_engine_events(e, &n);
    EXPECT(ev[0].type == PT_EV_CANCELED && ev[0].order_id == id && ev[0].cloid == 5 && ev[0].qty == 4);
    EXPECT(ev[0].reason == PT_CXL_USER && ev[0].ts_ns == 3 && ev[1].type == PT_EV_BOOK_DELTA && ev[1].qty == 0);
    EXPECT(py_cancel(e, 3, id, 4) == 1 && pt_engine_events(e, &n)[0].reason == PT_REJ_UNKNOWN_ORDER);
    EXPECT(pt_engine_check(e) == PT_OK);
    pt_engine_destroy(e);
    return 0;
}

static int test_a_full_event_buffer_returns_its_status(void)
{
    pt_engine_t *e = make_engine();
    pt_command_t c = {.op = PT_OP_CANCEL, .symbol_id = PT_SYMBOL_NONE, .client_id = 1, .order_id = 1};
    EXPECT(py_submit_one(e, &c) == 1);
    /* a batch that fills the buffer stops with PT_E_FULL and says how far it got */
    enum { N = 4096 };
    pt_command_t *cmds = calloc(N, sizeof *cmds);
    EXPECT(cmds != NULL);
    for (size_t i = 0; i < N; i++)
        cmds[i] = c;
    size_t done = 0, nevents = 0;
    int rc = py_run_batch(e, cmds, N, &done, &nevents);
    pt_engine_stats_t st;
    pt_engine_stats(e, &st);
    EXPECT(rc == PT_E_FULL && done > 0 && done < N && nevents == done && st.pending_events == nevents);
    free(cmds);
    pt_engine_destroy(e);
    return 0;
}

static pt_command_t limit(uint16_t client, uint8_t side, int64_t price, int64_t qty)
{
    return (pt_command_t){.op = PT_OP_NEW, .side = side, .symbol_id = 0, .client_id = client,
                          .order_type = PT_TYPE_LIMIT, .tif = PT_TIF_GTC, .stp = PT_STP_NONE,
                          .flags = PT_FLAG_HAS_PRICE, .price = price, .qty = qty};
}

static int test_run_until_watched_stops_after_the_first_command_that_moves_the_top(void)
{
    pt_engine_t *e = make_engine();
    pt_command_t cmds[] = {
        limit(1, PT_SIDE_BUY, 100, 5),  /* an empty side: the top changes */
        limit(1, PT_SIDE_BUY, 98, 5),   /* deeper: nobody cares */
        limit(1, PT_SIDE_SELL, 110, 5), /* the ask side was empty */
        limit(1, PT_SIDE_SELL, 112, 5), /* deeper */
        limit(1, PT_SIDE_BUY, 97, 5),   /* deeper */
        limit(1, PT_SIDE_BUY, 100, 1),  /* at the best bid: its qty changes */
        limit(1, PT_SIDE_BUY, 90, 1),
    };
    size_t done = 0, nevents = 0;
    int watched = 0;
    EXPECT(py_run_until_watched(e, cmds, 7, 0, 3, &done, &nevents, &watched) == PT_OK);
    EXPECT(done == 1 && watched == 1 && nevents == 2);
    EXPECT(py_run_until_watched(e, cmds + 1, 6, 0, 3, &done, &nevents, &watched) == PT_OK);
    EXPECT(done == 2 && watched == 1); /* the 98 bid ran, then the first ask */
    EXPECT(py_run_until_watched(e, cmds + 3, 4, 0, 3, &done, &nevents, &watched) == PT_OK);
    EXPECT(done == 3 && watched == 1 && nevents == 6); /* 112, 97, then the 100 bid again */
    EXPECT(py_run_until_watched(e, cmds + 6, 1, 0, 3, &done, &nevents, &watched) == PT_OK);
    EXPECT(done == 1 && watched == 0); /* nothing watched: the batch ran to its end */
    pt_engine_destroy(e);
    return 0;
}

static int test_run_until_watched_stops_at_an_event_of_the_watched_client(void)
{
    pt_engine_t *e = make_engine();
    pt_command_t cmds[] = {limit(1, PT_SIDE_BUY, 100, 5), limit(1, PT_SIDE_BUY, 99, 5),
                           limit(3, PT_SIDE_BUY, 90, 5), limit(1, PT_SIDE_BUY, 95, 5)};
    size_t done = 0, nevents = 0;
    int watched = 0;
    EXPECT(py_run_until_watched(e, cmds, 4, 0, 3, &done, &nevents, &watched) == PT_OK);
    EXPECT(done == 1 && watched == 1); /* the first bid made the top */
    EXPECT(py_run_until_watched(e, cmds + 1, 3, 0, 3, &done, &nevents, &watched) == PT_OK);
    EXPECT(done == 2 && watched == 1); /* client 3's own ACK, though its bid is deep */
    EXPECT(py_run_until_watched(e, cmds, 1, 1, 3, &done, &nevents, &watched) == PT_E_RANGE); /* no symbol 1 */
    pt_engine_destroy(e);
    return 0;
}

int main(void)
{
    static const test_case_t tests[] = {
        {"prices_on_the_grid_convert_to_whole_ticks", test_prices_on_the_grid_convert_to_whole_ticks},
        {"a_price_off_the_grid_goes_back_to_python_untouched", test_a_price_off_the_grid_goes_back_to_python_untouched},
        {"halves_round_to_even_as_python_round_does", test_halves_round_to_even_as_python_round_does},
        {"values_a_double_cannot_hold_exactly_go_back_to_python",
         test_values_a_double_cannot_hold_exactly_go_back_to_python},
        {"new_limit_packs_converts_and_runs_the_order", test_new_limit_packs_converts_and_runs_the_order},
        {"new_order_off_the_grid_runs_nothing", test_new_order_off_the_grid_runs_nothing},
        {"market_order_is_packed_without_a_price_and_clears_old_events",
         test_market_order_is_packed_without_a_price_and_clears_old_events},
        {"cancel_packs_a_cancel_of_the_order", test_cancel_packs_a_cancel_of_the_order},
        {"a_full_event_buffer_returns_its_status", test_a_full_event_buffer_returns_its_status},
        {"run_until_watched_stops_after_the_first_command_that_moves_the_top",
         test_run_until_watched_stops_after_the_first_command_that_moves_the_top},
        {"run_until_watched_stops_at_an_event_of_the_watched_client",
         test_run_until_watched_stops_at_an_event_of_the_watched_client},
    };
    return run_tests("py_glue tests", tests, sizeof tests / sizeof tests[0]);
}
