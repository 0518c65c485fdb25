/*
 * risk.c - pre-trade risk on integer state: price band, rate bucket,
 * position limit, PnL and the loss kill switch.
 *
 * Everything a check reads is exact integers; a check never changes state
 * (the rate bucket's refill is computed, and stored only when the command is
 * accepted), so a rejected command leaves the risk state as it was.
 *
 * Invariants (pt_engine_check):
 *   (1) client_symbol.open_qty[side] = the sum of that client's resting open
 *       qty on that symbol and side;
 *   (2) client.open_orders = the bits set in its row of client_slots (index.c);
 *   (3) sum over clients of position = 0 for every symbol (every trade has
 *       a buyer and a seller) and the same for cash.
 */
#include "emit.h"

#define TOKEN_UNITS 1000000000LL /* one token, in 1e-9 tokens: refill is rate_per_s units per ns */

bool risk_outside_band(const book_t *b, int64_t price)
{
    int64_t ref = risk_reference_price(b);
    if (ref <= 0)
        return false;
    int64_t band;
    if (b->cfg.band_ticks > 0)
        band = b->cfg.band_ticks;
    else if (b->cfg.band_bps > 0)
        band = (int64_t)((__int128)ref * b->cfg.band_bps / 10000);
    else
        return false;
    /* |price - ref| without a branch: whether an order is above or below the reference is its side, a coin flip
     * for the predictor. Both are >= 1, so the difference and its negation fit int64. */
    int64_t diff = price - ref, sign = diff >> 63;
    return (diff ^ sign) - sign > band;
}

/* The window of prices that are in the symbol's range and inside its band around the current reference price:
 * check_price's fast case (book_t). Empty windows are not cached. */
void risk_price_window(book_t *b)
{
    int64_t ref = risk_reference_price(b);
    int64_t lo = b->cfg.min_price_ticks, hi = b->cfg.max_price_ticks; /* min >= 1: add_symbol */
    bool banded = false;
    int64_t band = 0;
    if (ref > 0) { /* risk_outside_band's band */
        banded = b->cfg.band_ticks > 0 || b->cfg.band_bps > 0;
        band = b->cfg.band_ticks > 0 ? b->cfg.band_ticks : (int64_t)((__int128)ref * b->cfg.band_bps / 10000);
    }
    if (banded && band < 0) { /* every price is outside: nothing to cache */
        lo = 1;
        hi = 0;
    } else if (banded) { /* |price - ref| <= band, ref >= 1: ref - band cannot overflow, ref + band saturates */
        int64_t below = ref - band, above;
        if (__builtin_add_overflow(ref, band, &above))
            above = INT64_MAX;
        lo = below > lo ? below : lo;
        hi = above < hi ? above : hi;
    }
    b->price_window_ref = lo <= hi ? ref : -1;
    b->price_window_lo = lo;
    b->price_window_span = (uint64_t)hi - (uint64_t)lo;
}

/* The caps of the client's limits (client_t), after its limits change. */
void risk_limits_derive(client_t *c)
{
    c->order_qty_cap = c->limits.max_order_qty > 0 ? c->limits.max_order_qty : INT64_MAX;
    c->open_orders_cap = c->limits.max_open_orders > 0 ? c->limits.max_open_orders : INT64_MAX;
}

/* Tokens the client would hold at ts, after taking one; false if it has none. In int64: a full bucket
 * (burst x 10^9) fits (set_client_limits checks), and a refill that would overflow fills it anyway. */
bool risk_rate_available(const client_t *c, uint64_t ts, int64_t *tokens_after)
{
    int64_t rate = c->limits.rate_per_s;
    if (rate <= 0) {
        *tokens_after = 0;
        return true;
    }
    int64_t cap = c->rate_cap;
    int64_t tokens = c->tokens;
    if (ts > c->last_ts) {
        uint64_t elapsed = ts - c->last_ts;
        int64_t refill;
        if (elapsed > (uint64_t)INT64_MAX || __builtin_mul_overflow((int64_t)elapsed, rate, &refill) ||
            __builtin_add_overflow(tokens, refill, &tokens))
            tokens = cap;
    }
    if (tokens > cap)
        tokens = cap;
    if (tokens < TOKEN_UNITS)
        return false;
    *tokens_after = tokens - TOKEN_UNITS;
    return true;
}

void risk_rate_consume(client_t *c, uint64_t ts, int64_t tokens_after)
{
    if (c->limits.rate_per_s <= 0)
        return;
    c->tokens = tokens_after;
    if (ts > c->last_ts)
        c->last_ts = ts;
}

/*
 * risk_position_check (internal.h) beyond its common case, exactly, in 128 bits.
 *
 * Why RISK_INT64_OVERFLOW takes the worst case: position and cash are exact int64 integers and a fill cannot be
 * refused half-way through a walk, so the bound is taken before an order is accepted. It stays true as fills
 * come: a buy fill at p <= max_price moves position + open_buy by 0 and cash - max_price x open_buy up by
 * (max_price - p) x qty (the mirror for sells), and only fills move them. The position's value at the max
 * price is bounded too, so that a client's PnL (cash + position x last price, x pnl_unit <= 2^32, summed over
 * symbols) stays far inside the 128 bits the kill switch keeps it in.
 */
uint16_t risk_position_check_exact(const pt_engine_t *e, uint16_t client, uint16_t symbol, uint8_t side,
                                   int64_t add_qty)
{
    const client_symbol_t *cs = risk_cs(e, client, symbol);
    int64_t limit = e->clients[client].limits.max_position, sign = side_sign(side);
    int64_t max_price = e->books[symbol].cfg.max_price_ticks;
    __int128 lots = (__int128)cs->open_qty[side_index(side)] + add_qty; /* < 2^64 */
    __int128 position = cs->position + lots * sign;
    if (limit > 0 && position * sign > limit)
        return PT_REJ_RISK_MAX_POSITION;
    __int128 value = position * max_price;              /* < 2^65 x 2^63 */
    __int128 cash = cs->cash - lots * sign * max_price; /* the same */
    if (lots != (int64_t)lots || value != (int64_t)value || cash != (int64_t)cash)
        return PT_REJ_RISK_INT64_OVERFLOW; /* position fits when its value does: max_price >= 1 */
    return 0;
}

/* Fills of one client, qty lots in all for notional = the sum of price x qty, move its cash and position; at
 * the unchanged mark price they move its pnl by mark x qty - notional (bought; the mirror for sold). The mark
 * itself moves in the sweep. A taker's fills in one walk are applied at once (match_taker): the same sums. */
void risk_on_fills(pt_engine_t *e, uint16_t client, uint16_t symbol, uint8_t side, int64_t qty, int64_t notional)
{
    client_symbol_t *cs = risk_cs(e, client, symbol);
    const book_t *b = &e->books[symbol];
    /* mark, every price <= max_price_ticks and qty <= max_order_lots (one order's), whose product add_symbol
     * keeps <= 2^62: mark x qty and notional are in [0, 2^62], so their difference fits int64 */
    int64_t sign = side_sign(side);
    client_t *c = &e->clients[client];
    c->loss_headroom += (__int128)(sign * (b->mark_price * qty - notional)) * b->cfg.pnl_unit;
    if (c->loss_headroom < 0 && c->limits.max_loss > 0)
        e->kill_check_due = true;
    cs->position += sign * qty;
    cs->cash -= sign * notional;
}

/* Realised + unrealised PnL at the last trade prices, in money units, summed over symbols, exactly. */
__int128 risk_pnl_exact(const pt_engine_t *e, uint16_t client)
{
    __int128 pnl = 0;
    for (uint16_t s = 0; s < e->nsymbols; s++) {
        const client_symbol_t *cs = risk_cs(e, client, s);
        const book_t *b = &e->books[s];
        pnl += ((__int128)cs->cash + (__int128)cs->position * b->last_price) * b->cfg.pnl_unit;
    }
    return pnl;
}

/* The same, saturated to int64 for reports. */
int64_t risk_pnl(const pt_engine_t *e, uint16_t client, bool *overflow)
{
    __int128 pnl = risk_pnl_exact(e, client);
    *overflow = pnl > INT64_MAX || pnl < INT64_MIN;
    return *overflow ? (pnl > 0 ? INT64_MAX : INT64_MIN) : (int64_t)pnl;
}

static void kill_client(pt_engine_t *e, uint16_t client, uint64_t ts)
{
    e->clients[client].killed = true;
    emit_cancel_client_orders(e, client, PT_SYMBOL_NONE, PT_CXL_KILL_SWITCH, ts);
}

/* One loss client's re-mark by move, then its kill switch. */
static inline void remark_client(pt_engine_t *e, const loss_client_t *l, __int128 move, uint64_t ts)
{
    client_t *c = l->client;
    c->loss_headroom += move;
    if (c->loss_headroom < 0 && !c->killed)
        kill_client(e, l->id, ts);
}

/*
 * After a command that traded (on one symbol): re-marks every client with a loss limit to the symbol's
 * new last price, then kills, in ascending client id, each one not yet killed whose PnL is below
 * -max_loss (loss_headroom below 0). A client's PnL only moves through its fills (risk_on_fills, at the
 * old mark) and the mark's move (here), so one multiply-add per client keeps it exact; nothing is summed
 * over symbols. Killed clients are re-marked too, so their PnL is right when the switch is reset.
 *
 * noinline: it runs only after a trade, and inlined into finish_command it made every command's finish
 * save and restore the registers it needs (7 instructions per op, callgrind).
 */
__attribute__((noinline)) void risk_kill_switch_sweep(pt_engine_t *e, uint64_t ts)
{
    uint16_t s = e->cmd_trade_symbol;
    book_t *b = &e->books[s];
    /* The mark's move in money units a lot: the step. In practice it fits int64, and step x position is then one
     * widening multiply (64 x 64 -> 128 bits). step64 is computed in 64 bits, not narrowed from the 128-bit step:
     * a narrowed one the compiler knew equal to the wide one, and both loops used the general 128 x 64 product
     * (three multiplies and five more instructions per client, objdump). */
    int64_t move = b->last_price - b->mark_price, step64; /* prices are in [0, max_price_ticks] */
    bool step_fits = !__builtin_mul_overflow(move, b->cfg.pnl_unit, &step64);
    b->mark_price = b->last_price;
    if (b->price_window_ref != b->last_price)
        risk_price_window(b);
    /* The mark did not move (a trade at the last price, as 37% of the AAPL sample's executions are): the
     * re-mark adds 0 to everyone, and only a client that went below its limit since the last full sweep can
     * be killed; kill_check_due says whether there is one. A full sweep is a multiply-add per loss client. */
    if (step_fits && step64 == 0 && !e->kill_check_due)
        return;
    /* Locals, not e->...: killing a client (events, orders leaving the book) changes none of these, and the
     * compiler cannot know that, so it reloaded each one per client. Each loss client's state is one pointer
     * away (loss_client_t): the sweep was 17% of an IOC's instructions. */
    const loss_client_t *first = e->loss_clients, *end = first + e->nloss_clients;
    if (step_fits) {
        for (const loss_client_t *l = first; l < end; l++)
            remark_client(e, l, (__int128)step64 * l->row[s].position, ts);
    } else {
        __int128 step = (__int128)move * b->cfg.pnl_unit;
        for (const loss_client_t *l = first; l < end; l++)
            remark_client(e, l, step * l->row[s].position, ts);
    }
    e->kill_check_due = false; /* every loss client below its limit is killed now */
}
