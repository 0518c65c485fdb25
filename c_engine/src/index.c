/*
 * index.c - order lookups by engine order id, by (client, client order id) and by client.
 *
 * By id. Ids are 1, 2, 3, ... so the index is a ring: slot id & mask. The
 * ring has at least 2 x max_orders slots, so a slot is only still taken when
 * the order one lap (>= 2 x max_orders ids) older still rests; that new id then
 * goes to a small open-addressing overflow table. Consecutive orders use
 * consecutive slots (16 to a cache line) and a lookup is one load plus a check
 * of the order's id. A scattering hash here cost a cache and TLB miss per
 * insert, and the identity hash in a linear-probing table made erasing scan
 * whole clusters of consecutive ids: both showed at the top of perf on the
 * benchmark (docs/BENCHMARKS.md).
 *
 * By client order id. Client-chosen keys, usually counting up per client.
 * The home slot keeps runs of 256 consecutive cloids of a client in one block
 * of 256 slots (one 4 KiB page of 16-byte slots) and scatters the blocks with
 * a secret hash: sequential cloids walk consecutive cache lines, which the
 * prefetcher follows (a fully scattering hash cost a cache miss on every new
 * order and every order leaving the book: 5.1 M ops/s fell to 2.7 M in the
 * benchmark; blocks of 16 got back only part of it). The key is kept in the
 * slot, so probing and deletion read only the table, never the orders; Robin
 * Hood probing (below) lets both stop early.
 *
 * Most clients count their cloids up, and then a new cloid above every
 * resting one of the client cannot be a duplicate: such a client's orders
 * stay out of by_cloid altogether (no hashing, no cache miss on the table when
 * an order leaves), and only a cloid at or below the client's highest resting
 * one is looked up. The first such cloid puts all the client's resting cloids
 * into by_cloid (once: the client stays indexed), and a client with nothing
 * resting starts over unindexed. A client that picks cloids at random is
 * indexed from its second order on, as every client was before; the switch
 * costs one insertion per resting order of that client, in that command.
 *
 * Both tables hold <= max_orders entries in >= 2 x max_orders slots (load
 * <= 0.5). Deletion shifts later entries back instead of leaving tombstones,
 * so lookups do not slow down over a long trading day.
 *
 * Invariant (pt_engine_check): an order is in by_id exactly while it rests;
 * a resting order with cloid != 0 is in by_cloid if its client is indexed,
 * and otherwise its cloid is at most the client's max_cloid.
 */
#include "internal.h"

static uint64_t table_size(uint32_t max_entries)
{
    uint64_t cap = 16;
    while (cap < 2ULL * max_entries)
        cap <<= 1;
    return cap;
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Backward-shift deletion over a linear-probing run: the entry at slot j, whose home slot is k, stays
 * where it is unless the hole lies cyclically between its home and it, i.e. k is not in (hole, j]. */
static inline bool stays_put(uint64_t hole, uint64_t k, uint64_t j)
{
    return (hole <= j) ? (hole < k && k <= j) : (hole < k || k <= j);
}

int index_init(pt_engine_t *e)
{
    uint64_t cap = table_size(e->cfg.max_orders);
    id_index_t *ix = &e->by_id;
    ix->ring_mask = ix->overflow_mask = cap - 1;
    ix->ring = mem_alloc(cap * sizeof *ix->ring);
    ix->overflow = mem_alloc(cap * sizeof *ix->overflow);
    e->by_cloid.mask = cap - 1;
    /* Placement never shows in events or the state hash, so the multiplier may differ per run: from ASLR'd
     * addresses. It must be odd for multiply-shift hashing. */
    e->by_cloid.multiplier = mix64((uint64_t)(uintptr_t)e ^ ((uint64_t)(uintptr_t)&cap << 17)) | 1;
    unsigned table_bits = (unsigned)__builtin_ctzll(cap);
    e->by_cloid.block_shift = table_bits > 8 ? 64 - (table_bits - 8) : 63;
    e->by_cloid.slots = mem_alloc(cap * sizeof *e->by_cloid.slots);
    if (ix->ring == NULL || ix->overflow == NULL || e->by_cloid.slots == NULL)
        return PT_E_NOMEM;
    for (uint64_t i = 0; i < cap; i++) {
        ix->ring[i] = PT_NIL;
        ix->overflow[i] = PT_NIL;
        e->by_cloid.slots[i].order = PT_NIL;
    }
    return PT_OK;
}

void index_free(pt_engine_t *e)
{
    uint64_t cap = e->by_id.ring_mask + 1;
    mem_free(e->by_id.ring, cap * sizeof *e->by_id.ring);
    mem_free(e->by_id.overflow, cap * sizeof *e->by_id.overflow);
    mem_free(e->by_cloid.slots, cap * sizeof *e->by_cloid.slots);
}

/* ---- by id ------------------------------------------------------------------ */

static inline uint64_t overflow_home(const id_index_t *ix, uint64_t id) { return mix64(id) & ix->overflow_mask; }

pt_idx_t index_find_id(const pt_engine_t *e, uint64_t id)
{
    const id_index_t *ix = &e->by_id;
    pt_idx_t oi = ix->ring[id & ix->ring_mask];
    if (oi != PT_NIL && e->orders[oi].id == id)
        return oi;
    if (ix->overflow_count == 0)
        return PT_NIL;
    for (uint64_t i = overflow_home(ix, id);; i = (i + 1) & ix->overflow_mask) {
        oi = ix->overflow[i];
        if (oi == PT_NIL || e->orders[oi].id == id)
            return oi;
    }
}

/* index_insert_id (internal.h) when the order's ring slot is taken. */
void index_insert_id_overflow(pt_engine_t *e, pt_idx_t oi)
{
    id_index_t *ix = &e->by_id;
    uint64_t id = e->orders[oi].id;
    uint64_t i = overflow_home(ix, id);
    while (ix->overflow[i] != PT_NIL)
        i = (i + 1) & ix->overflow_mask;
    ix->overflow[i] = oi;
    ix->overflow_count++;
}

/* index_erase_id (internal.h) when the order is not in its ring slot. */
void index_erase_id_overflow(pt_engine_t *e, pt_idx_t oi)
{
    id_index_t *ix = &e->by_id;
    uint64_t id = e->orders[oi].id;
    uint64_t hole = overflow_home(ix, id);
    while (ix->overflow[hole] != oi)
        hole = (hole + 1) & ix->overflow_mask;
    for (uint64_t j = hole;;) {
        j = (j + 1) & ix->overflow_mask;
        pt_idx_t oj = ix->overflow[j];
        if (oj == PT_NIL)
            break;
        if (!stays_put(hole, overflow_home(ix, e->orders[oj].id), j)) {
            ix->overflow[hole] = oj;
            hole = j;
        }
    }
    ix->overflow[hole] = PT_NIL;
    ix->overflow_count--;
}

/* ---- by (client, cloid) --------------------------------------------------------- */

/* The block number and the client, hashed by multiply-shift with the engine's secret odd multiplier (a
 * universal family: Dietzfelbinger et al. 1997): two keys share a block with probability about 2^-block_bits
 * whatever cloids a client picks, so it cannot aim them at one run. The top bits of the product are the block. */
static inline uint64_t cloid_home(const cloid_index_t *ix, uint16_t client, uint64_t cloid)
{
    uint64_t block = (((cloid >> 8) ^ ((uint64_t)client << 48)) * ix->multiplier) >> ix->block_shift;
    return ((block << 8) | (cloid & 255)) & ix->mask;
}

static void index_insert_cloid(pt_engine_t *e, pt_idx_t oi);
static void index_erase_cloid(pt_engine_t *e, pt_idx_t oi);

/* Before the duplicate check of a new order's cloid (nonzero): a client not indexed so far is indexed now
 * if the cloid is not above all its resting ones (the index only changes form: nothing observable). */
void index_prepare_cloid_check(pt_engine_t *e, uint16_t client, uint64_t cloid)
{
    client_t *c = &e->clients[client];
    if (c->cloids_indexed || cloid > c->max_cloid)
        return;
    c->cloids_indexed = true;
    size_t n = index_client_orders(e, client, PT_SYMBOL_NONE, false);
    for (size_t i = 0; i < n; i++)
        if (e->order_cloid[e->scratch[i]] != 0)
            index_insert_cloid(e, e->scratch[i]);
}

/* Whether a resting order of the client has this cloid (nonzero; index_prepare_cloid_check ran). */
bool index_cloid_in_use(const pt_engine_t *e, uint16_t client, uint64_t cloid)
{
    return e->clients[client].cloids_indexed && index_find_cloid(e, client, cloid) != PT_NIL;
}

/* A new resting order with a cloid (nonzero). */
void index_add_cloid(pt_engine_t *e, pt_idx_t oi)
{
    client_t *c = &e->clients[e->orders[oi].client];
    uint64_t cloid = e->order_cloid[oi];
    if (c->cloids_indexed)
        index_insert_cloid(e, oi);
    else if (cloid > c->max_cloid)
        c->max_cloid = cloid;
}

/* A resting order with a cloid (nonzero) leaves for good. */
void index_remove_cloid(pt_engine_t *e, pt_idx_t oi)
{
    if (e->clients[e->orders[oi].client].cloids_indexed)
        index_erase_cloid(e, oi);
}

/* The client has nothing resting: by_cloid holds none of its entries, so it starts over unindexed. */
void index_client_flat(pt_engine_t *e, uint16_t client)
{
    e->clients[client].cloids_indexed = false;
    e->clients[client].max_cloid = 0;
}

/*
 * Robin Hood linear probing: each slot keeps its distance from home, and the run is kept sorted so that an
 * entry never sits behind one that is nearer its own home. So a lookup stops at the first slot nearer home
 * than the probe, and a deletion stops shifting at the first entry that is at home: with sequential cloids
 * nearly every entry is at home, where plain linear probing rehashed every entry to the end of the cluster
 * (a quarter of a cancel's instructions, callgrind).
 */
pt_idx_t index_find_cloid(const pt_engine_t *e, uint16_t client, uint64_t cloid)
{
    const cloid_index_t *ix = &e->by_cloid;
    uint64_t i = cloid_home(ix, client, cloid);
    for (uint32_t dist = 0;; dist++, i = (i + 1) & ix->mask) {
        const cloid_slot_t *s = &ix->slots[i];
        if (s->order == PT_NIL || s->dist < dist)
            return PT_NIL;
        if (s->cloid == cloid && s->client == client)
            return s->order;
    }
}

static void index_insert_cloid(pt_engine_t *e, pt_idx_t oi)
{
    cloid_index_t *ix = &e->by_cloid;
    uint16_t client = e->orders[oi].client;
    uint64_t cloid = e->order_cloid[oi];
    cloid_slot_t in = {.cloid = cloid, .order = oi, .client = client, .dist = 0};
    for (uint64_t i = cloid_home(ix, client, cloid);; i = (i + 1) & ix->mask, in.dist++) {
        cloid_slot_t *s = &ix->slots[i];
        if (s->order == PT_NIL) {
            *s = in;
            return;
        }
        if (s->dist < in.dist) { /* the resident is nearer home: it moves on instead */
            cloid_slot_t out = *s;
            *s = in;
            in = out;
        }
    }
}

static void index_erase_cloid(pt_engine_t *e, pt_idx_t oi)
{
    cloid_index_t *ix = &e->by_cloid;
    uint64_t hole = cloid_home(ix, e->orders[oi].client, e->order_cloid[oi]);
    while (ix->slots[hole].order != oi)
        hole = (hole + 1) & ix->mask;
    for (;;) {
        uint64_t next = (hole + 1) & ix->mask;
        cloid_slot_t *s = &ix->slots[next];
        if (s->order == PT_NIL || s->dist == 0)
            break;
        ix->slots[hole] = *s;
        ix->slots[hole].dist--;
        hole = next;
    }
    ix->slots[hole].order = PT_NIL;
}

/* ---- by client ----------------------------------------------------------------
 *
 * A client's resting orders are the bits of its row of client_slots (internal.h): placing or releasing an
 * order sets or clears one bit of a row that stays in the cache (slot_top / 8 bytes per active client), where
 * a list through the orders wrote two random cold lines per order leaving the book and kept 8 bytes a slot
 * (docs/BENCHMARKS.md). Listing them costs a scan of slot_top / 64 words and a sort, on the rare commands
 * that need them (mass cancel, the kill switch, a client's first out-of-order cloid).
 */

static inline bool id_before(const pt_engine_t *e, pt_idx_t a, pt_idx_t b) { return e->orders[a].id < e->orders[b].id; }

static void sift_down(const pt_engine_t *e, pt_idx_t *v, size_t root, size_t end)
{
    for (size_t child; (child = 2 * root + 1) < end; root = child) {
        if (child + 1 < end && id_before(e, v[child], v[child + 1]))
            child++;
        if (!id_before(e, v[root], v[child]))
            return;
        pt_idx_t t = v[root];
        v[root] = v[child];
        v[child] = t;
    }
}

/* Heapsort of slots by their orders' ids: in place and without allocating (the order path never calls malloc). */
static void sort_by_id(const pt_engine_t *e, pt_idx_t *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(e, v, i, n);
    for (size_t end = n; end-- > 1;) {
        pt_idx_t top = v[0];
        v[0] = v[end];
        v[end] = top;
        sift_down(e, v, 0, end);
    }
}

/* The slots whose bits are set in the client's row, ascending, into out (room for max_orders); returns how many.
 * Only the words below slot_top's are read: place_order raises slot_top before it sets a slot's bit. */
size_t index_client_slots(const pt_engine_t *e, uint16_t client, pt_idx_t *out)
{
    const uint64_t *row = &e->client_slots[client * e->row_words];
    size_t n = 0;
    for (uint64_t w = 0; w < ((uint64_t)e->slot_top + 63) / 64; w++)
        for (uint64_t bits = row[w]; bits != 0; bits &= bits - 1)
            out[n++] = (pt_idx_t)(w * 64 + (uint64_t)__builtin_ctzll(bits));
    return n;
}

/* The client's resting orders (on symbol, or all when symbol is PT_SYMBOL_NONE) into e->scratch, in ascending
 * id when by_id; returns how many. */
size_t index_client_orders(pt_engine_t *e, uint16_t client, uint16_t symbol, bool by_id)
{
    size_t n = index_client_slots(e, client, e->scratch), kept = 0;
    for (size_t i = 0; i < n; i++)
        if (symbol == PT_SYMBOL_NONE || e->orders[e->scratch[i]].symbol == symbol)
            e->scratch[kept++] = e->scratch[i];
    if (by_id)
        sort_by_id(e, e->scratch, kept);
    return kept;
}
