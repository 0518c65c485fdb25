// liquibook_adapter.cpp - enewhuis/liquibook (header-only book::OrderBook<OrderPtr>) replaying the mix file beside
// this project's engine (peers.h has the phases and the result line).
//
// The caller owns the orders: one Order per mix id in a flat array, allocated and zeroed before the passes (the
// timed loop only fills the fields of the order an ADD or IOC places); the book is an OrderBook<Order*>.
// ADD -> add(order, oc_no_conditions) (a limit: price > 0); IOC -> add(order, oc_immediate_or_cancel);
// CANCEL -> cancel(order).
//
// Events: the book's own virtual on_* callbacks, overridden by a consumer that counts fills (one per trade) and
// their qty, rejects and cancel rejects, and folds ids and quantities into a checksum, as geseq_adapter.cpp's
// does. Orders left at the end: the sizes of bids() and asks().
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "book/order.h"
#include "book/order_book.h"
#include "peers.h"

namespace {

using liquibook::book::OrderConditions;
using liquibook::book::Price;
using liquibook::book::Quantity;

struct Order final : public liquibook::book::Order {
    uint64_t id = 0;
    Price limit = 0;
    Quantity qty = 0;
    bool buy = false;
    bool ioc = false;
    bool is_buy() const override { return buy; }
    Price price() const override { return limit; }
    Quantity order_qty() const override { return qty; }
    bool immediate_or_cancel() const override { return ioc; }
};

class Book final : public liquibook::book::OrderBook<Order*> {
   public:
    peers_counts_t k{};
    void on_accept(Order* const& o, Quantity q) override { fold(o->id ^ q); }
    void on_reject(Order* const&, const char*) override {
        k.rejects++;
        k.events++;
    }
    void on_fill(Order* const& o, Order* const& m, Quantity q, Price p, bool, bool) override {
        k.trades++;
        k.lots += q;
        fold(m->id ^ p ^ o->id);
    }
    void on_cancel(Order* const& o, Quantity q) override { fold(o->id ^ q); }
    void on_cancel_reject(Order* const&, const char*) override {
        k.rejects++;
        k.events++;
    }

   private:
    void fold(uint64_t v) {
        k.checksum += v;
        k.events++;
    }
};

Order* g_orders = nullptr;  // by mix id

inline __attribute__((always_inline)) void run_op(Book* b, const mix_op_t& o) {
    Order* x = &g_orders[o.id];
    if (o.type == MIX_CANCEL) {
        b->cancel(x);
        return;
    }
    x->id = o.id;
    x->buy = o.side == 0;
    x->limit = Price(o.price);
    x->qty = o.qty;
    x->ioc = o.type == MIX_IOC;
    b->add(x, x->ioc ? liquibook::book::oc_immediate_or_cancel : liquibook::book::oc_no_conditions);
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

uint64_t live_orders(Book* b) { return b->bids().size() + b->asks().size(); }

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: liquibook_adapter MIX.bin\n");
        return 2;
    }
    mix_t m = mix_load(argv[1]);
    const size_t pre = m.h.n_prefill;
    g_orders = new Order[m.h.id_end];
    uint64_t ns0 = mono_ns(), tsc0 = peers_tsc();
    {
        Book* b = new Book();
        run_ops(b, m.ops, 0, peers_warmup_end(&m));
        delete b;
    }
    peers_pass_t tp{}, lat{};
    {
        Book* b = new Book();
        run_ops(b, m.ops, 0, pre);
        peers_usage_t u0 = peers_usage_now();
        uint64_t t0 = mono_ns();
        run_ops(b, m.ops, pre, m.n);
        tp.ns = mono_ns() - t0;
        peers_usage_t u1 = peers_usage_now();
        tp.used = peers_usage_t{u1.cpu_ns - u0.cpu_ns, u1.invol_cs - u0.invol_cs};
        tp.live = live_orders(b);
        tp.k = b->k;
        delete b;
    }
    hist_t* h = static_cast<hist_t*>(calloc(1, sizeof(hist_t)));
    {
        Book* b = new Book();
        run_ops(b, m.ops, 0, pre);
        uint64_t t0 = mono_ns();
        run_timed(b, m.ops, pre, m.n, h);
        lat.ns = mono_ns() - t0;
        lat.live = live_orders(b);
        lat.k = b->k;
        delete b;
    }
    double ns_per_tick = double(mono_ns() - ns0) / double(peers_tsc() - tsc0);
    peers_print("liquibook", &m, &tp, &lat, h, ns_per_tick);
    free(h);
    delete[] g_orders;
    free(m.ops);
    return 0;
}
