// geseq_adapter.cpp - geseq/cpp-orderbook (its default price-level store, a tick array with an occupancy bitmap)
// replaying the mix file beside this project's engine (peers.h has the phases and the result line).
//
// The book is sized as its own benchmark sizes it: 2^16 price levels, 2^21 orders in the pool, an index reserve
// of 16,384, prices as Decimal with one tick = 1.0 over 2^16 ticks. Each mix op is one call inside the timed loop:
// ADD -> addOrder(id, Limit, side, qty, price, None); IOC -> the same with Flag::IoC (a limit two ticks through
// the touch: Type::Market would ignore the limit); CANCEL -> cancelOrder(id). The book takes the caller's ids.
//
// Events: the book calls onExecutionReport (CRTP, inlined) once per event: New, Canceled, Rejected, Trade. The
// consumer counts trades, traded qty (fixed point) and rejects, and folds ids and quantities into a checksum.
// Orders left at the end: hasOrder(id) for every id, after the pass. The consumer and the op dispatch are the
// fastest forms measured for this book (a branch-free count, or one addOrder call site with the flag as a
// variable, were 2-4% slower), as pt_adapter.c's are for this engine: neither side is handicapped.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "orderbook.hpp"
#include "peers.h"

namespace {

using orderbook::Decimal;
using orderbook::ExecType;
using orderbook::ExecutionReport;
using orderbook::Flag;
using orderbook::Side;
using orderbook::Type;

constexpr uint64_t kTickFp = 100000000ull;  // Decimal's fixed point: 10^8 a unit; one tick = 1.0

class Consumer : public orderbook::NotificationInterface<Consumer> {
   public:
    peers_counts_t k{};
    uint64_t lots_fp = 0;

    inline __attribute__((always_inline)) void onExecutionReport(const ExecutionReport& r) {
        switch (r.exec_type) {
            case ExecType::Trade:
                k.trades++;
                lots_fp += r.last_qty.fp;
                k.checksum += r.maker_order_id ^ r.last_price.fp;
                break;
            case ExecType::Rejected:
                k.rejects++;
                break;
            default:
                k.checksum += r.order_id ^ r.qty.fp;
                break;
        }
        k.events++;
    }
    peers_counts_t counts() const {
        peers_counts_t c = k;
        c.lots = lots_fp / kTickFp;
        return c;
    }
};

using Book = orderbook::OrderBook<Consumer>;

Book* book_new(Consumer& c) { return new Book(c, 1 << 16, 1 << 21, 16384, 0, kTickFp, 1 << 16); }

inline __attribute__((always_inline)) void run_op(Book* b, const mix_op_t& o) {
    const Side side = o.side ? Side::Sell : Side::Buy;
    switch (o.type) {  // a call site per kind: one with the flag as a variable was 2-4% slower
        case MIX_ADD:
            b->addOrder(o.id, Type::Limit, side, Decimal(uint64_t(o.qty), 0), Decimal(uint64_t(o.price), 0),
                        Flag::None);
            break;
        case MIX_CANCEL:
            b->cancelOrder(o.id);
            break;
        default:
            b->addOrder(o.id, Type::Limit, side, Decimal(uint64_t(o.qty), 0), Decimal(uint64_t(o.price), 0),
                        Flag::IoC);
            break;
    }
}

__attribute__((noinline)) void run_ops(Book* b, const mix_op_t* ops, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) run_op(b, ops[i]);
}

__attribute__((noinline)) void run_timed(Book* b, const mix_op_t* ops, size_t from, size_t to, hist_t* h) {
    for (size_t i = from; i < to; i++) {
        uint64_t t0 = peers_tsc();
        run_op(b, ops[i]);
        hist_record(h, peers_tsc() - t0);
    }
}

uint64_t live_orders(Book* b, const mix_t& m) {
    uint64_t n = 0;
    for (uint64_t id = 1; id < m.h.id_end; id++) n += b->hasOrder(id);
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: geseq_adapter MIX.bin\n");
        return 2;
    }
    mix_t m = mix_load(argv[1]);
    const size_t pre = m.h.n_prefill;
    uint64_t ns0 = mono_ns(), tsc0 = peers_tsc();
    {
        Consumer c;
        Book* b = book_new(c);
        run_ops(b, m.ops, 0, peers_warmup_end(&m));
        delete b;
    }
    peers_pass_t tp{}, lat{};
    {
        Consumer c;
        Book* b = book_new(c);
        run_ops(b, m.ops, 0, pre);
        peers_usage_t u0 = peers_usage_now();
        uint64_t t0 = mono_ns();
        run_ops(b, m.ops, pre, m.n);
        tp.ns = mono_ns() - t0;
        peers_usage_t u1 = peers_usage_now();
        tp.used = peers_usage_t{u1.cpu_ns - u0.cpu_ns, u1.invol_cs - u0.invol_cs};
        tp.live = live_orders(b, m);
        tp.k = c.counts();
        delete b;
    }
    hist_t* h = static_cast<hist_t*>(calloc(1, sizeof(hist_t)));
    {
        Consumer c;
        Book* b = book_new(c);
        run_ops(b, m.ops, 0, pre);
        uint64_t t0 = mono_ns();
        run_timed(b, m.ops, pre, m.n, h);
        lat.ns = mono_ns() - t0;
        lat.live = live_orders(b, m);
        lat.k = c.counts();
        delete b;
    }
    double ns_per_tick = double(mono_ns() - ns0) / double(peers_tsc() - tsc0);
    peers_print("geseq", &m, &tp, &lat, h, ns_per_tick);
    free(h);
    free(m.ops);
    return 0;
}
