/*
 * snapshot.c - the engine's state to bytes and back (pt_snapshot.h has the file and the guarantees).
 *
 * The body, after the 128-byte header, in little-endian u64 words:
 *
 *   symbols    each symbol's pt_symbol_config_t (8 words), in id order: checked before anything is loaded
 *   counters   seq, order_seq, trade_seq, commands, kill_check_due
 *   clients    n; then n records of 14 words, ascending id, for each client whose state is not all zeros:
 *              id, limits (6), tokens, rate_cap, last_ts, max_cloid, cloids_indexed | killed << 1,
 *              loss_headroom (low word, high word)
 *   positions  n; then n records (client | symbol << 16, position, cash) for each nonzero pair
 *   books      per symbol: last_price, mark_price, halted; then per side (bids,
 *              asks) the level count and each level in ascending key (bids low to high, asks high to low,
 *              as book.c keeps them): price, order count, the slot of the head of its queue | its index
 *              in the level pool << 32
 *   orders     n; then n records of 5 words, in slot order: slot | next slot in its queue << 32, id,
 *              cloid, open_qty, client | terms << 16 | symbol << 24 | its level's pool index << 40
 *
 * Left out because they follow from the rest: each client's open orders and resting lots per side (the
 * orders), the loss-client list (the limits), the indexes (rebuilt as each order is placed). A client that is
 * not indexed by cloid keeps its max_cloid as it was, so duplicate checks answer as before.
 *
 * Choices: the orders are written in one front-to-back pass over the order pool, each with the slot of the
 * next order of its queue, because encoding is the engine loop's pause (hotpath/src/loop.c): a walk of every
 * queue in priority order took a cache miss per order, some 0.5 s for 1 M orders, against tens of ms for
 * the pass (docs/BENCHMARKS.md). Loading is a pass too: each order goes back into the slot it had, with
 * its links, and each level gets its head, so no queue is followed (following them cost a cache miss per
 * order as well); the slots left free become the free list in ascending order, since which slot a new order
 * gets is never seen. Encoding reads the engine only; the one allocation is
 * the output buffer, so the loop can take a snapshot between two commands and leave the writing to disk to
 * another thread. The state hash is another walk of every queue, so the loop's snapshots leave it out
 * (no_hash); a load then checks every invariant but not the hash.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "pt_crc32c.h"
#include "pt_snapshot.h"

#define HEADER_WORDS (PT_SNAPSHOT_HEADER_BYTES / 8)
#define CLIENT_WORDS 14
#define POSITION_WORDS 3
#define ORDER_WORDS 5
#define LEVEL_WORDS 3
#define BOOK_WORDS 3 /* last price, mark price, halted */
#define COUNTER_WORDS 5

/* ---- writing ------------------------------------------------------------------------------------------ */

typedef struct writer {
    unsigned char *p;
} writer_t;

static inline void put(writer_t *w, uint64_t v)
{
    memcpy(w->p, &v, 8); /* little-endian: internal.h refuses other byte orders */
    w->p += 8;
}

/* A symbol's configuration as the 8 words the file holds. */
static void symbol_words(const pt_symbol_config_t *c, int64_t out[8])
{
    int64_t words[8] = {c->min_price_ticks, c->max_price_ticks, c->max_order_lots, c->band_ticks, c->band_bps,
                        c->reference_price, c->market_band_ticks, c->pnl_unit};
    memcpy(out, words, sizeof words);
}

static bool client_is_default(const pt_engine_t *e, uint16_t c)
{
    const client_t *cl = &e->clients[c];
    const pt_client_limits_t *l = &cl->limits;
    return l->max_order_qty == 0 && l->max_open_orders == 0 && l->max_position == 0 && l->rate_per_s == 0 &&
           l->rate_burst == 0 && l->max_loss == 0 && cl->tokens == 0 && cl->rate_cap == 0 && cl->last_ts == 0 &&
           cl->max_cloid == 0 && !cl->cloids_indexed && !cl->killed && cl->loss_headroom == 0;
}

static uint64_t count_clients(const pt_engine_t *e)
{
    uint64_t n = 0;
    for (uint16_t c = 0; c < e->cfg.max_clients; c++)
        n += !client_is_default(e, c);
    return n;
}

static uint64_t count_positions(const pt_engine_t *e)
{
    uint64_t n = 0;
    for (uint16_t c = 0; c < e->cfg.max_clients; c++)
        for (uint16_t s = 0; s < e->nsymbols; s++) {
            const client_symbol_t *cs = risk_cs(e, c, s);
            n += cs->position != 0 || cs->cash != 0;
        }
    return n;
}

static size_t body_words(const pt_engine_t *e, uint64_t nclients, uint64_t npositions)
{
    size_t words = (size_t)e->nsymbols * 8 + COUNTER_WORDS + 1 + nclients * CLIENT_WORDS + 1 + npositions * POSITION_WORDS;
    for (uint16_t s = 0; s < e->nsymbols; s++) {
        words += BOOK_WORDS + 2;
        for (int si = 0; si < 2; si++)
            words += (size_t)e->books[s].sides[si].count * LEVEL_WORDS;
    }
    return words + 1 + (size_t)e->live_orders * ORDER_WORDS;
}

size_t pt_snapshot_bytes(const pt_engine_t *e)
{
    return PT_SNAPSHOT_HEADER_BYTES + body_words(e, count_clients(e), count_positions(e)) * 8 +
           PT_SNAPSHOT_TRAILER_BYTES;
}

static void put_header(writer_t *w, const pt_engine_t *e, const pt_snapshot_info_t *info)
{
    put(w, PT_SNAPSHOT_MAGIC);
    put(w, PT_SNAPSHOT_VERSION | (uint64_t)PT_SNAPSHOT_HEADER_BYTES << 32);
    put(w, info->bytes);
    put(w, info->journal_position);
    put(w, info->segment);
    put(w, info->config_hash);
    put(w, info->state_hash);
    put(w, info->commands);
    put(w, info->live_orders);
    put(w, e->cfg.max_orders | (uint64_t)e->cfg.max_levels_per_side << 32);
    put(w, e->cfg.max_symbols | (uint64_t)e->cfg.max_clients << 16 | (uint64_t)e->nsymbols << 32);
    for (int i = 11; i < HEADER_WORDS; i++)
        put(w, 0);
}

static void put_book(writer_t *w, const book_t *b)
{
    put(w, (uint64_t)b->last_price);
    put(w, (uint64_t)b->mark_price);
    put(w, b->halted);
    for (int si = 0; si < 2; si++) {
        const book_side_t *side = &b->sides[si];
        put(w, side->count);
        for (uint32_t i = 0; i < side->count; i++) {
            const level_t *lv = &b->levels[side->levels[i]];
            put(w, (uint64_t)lv->price);
            put(w, (uint64_t)lv->order_count);
            put(w, lv->head | (uint64_t)side->levels[i] << 32);
        }
    }
}

/* Every resting order, in slot order: one pass over the pools front to back, which the hardware prefetches,
 * where a walk of each level's queue takes a cache miss per order (1 M orders: some 0.5 s on the benchmark's
 * machine, against a few ms). Returns how many were written. */
static uint64_t put_orders(writer_t *w, const pt_engine_t *e)
{
    uint64_t n = 0;
    for (pt_idx_t oi = 0; oi < e->slot_top; oi++) {
        const order_t *o = &e->orders[oi];
        if (o->id == 0)
            continue; /* a free slot */
        put(w, oi | (uint64_t)o->next << 32);
        put(w, o->id);
        put(w, e->order_cloid[oi]);
        put(w, (uint64_t)o->open_qty);
        put(w, o->client | (uint64_t)o->terms << 16 | (uint64_t)o->symbol << 24 | (uint64_t)o->level << 40);
        n++;
    }
    return n;
}

int pt_snapshot_encode(const pt_engine_t *e, pt_snapshot_info_t *info, void *buf, size_t cap, size_t *len)
{
    if (e == NULL || info == NULL || buf == NULL || len == NULL)
        return PT_SNAPSHOT_EINVAL;
    uint64_t nclients = count_clients(e), npositions = count_positions(e);
    size_t bytes = PT_SNAPSHOT_HEADER_BYTES + body_words(e, nclients, npositions) * 8 + PT_SNAPSHOT_TRAILER_BYTES;
    if (cap < bytes)
        return PT_SNAPSHOT_EINVAL;
    info->state_hash = info->no_hash ? 0 : pt_engine_state_hash(e);
    info->commands = e->commands;
    info->live_orders = e->live_orders;
    info->bytes = bytes;
    writer_t w = {.p = buf};
    put_header(&w, e, info);
    for (uint16_t s = 0; s < e->nsymbols; s++) {
        int64_t cfg[8];
        symbol_words(&e->books[s].cfg, cfg);
        for (int i = 0; i < 8; i++)
            put(&w, (uint64_t)cfg[i]);
    }
    put(&w, e->seq);
    put(&w, e->order_seq);
    put(&w, e->trade_seq);
    put(&w, e->commands);
    put(&w, e->kill_check_due);
    put(&w, nclients);
    for (uint16_t c = 0; c < e->cfg.max_clients; c++) {
        if (client_is_default(e, c))
            continue;
        const client_t *cl = &e->clients[c];
        const pt_client_limits_t *l = &cl->limits;
        put(&w, c);
        int64_t limits[6] = {l->max_order_qty, l->max_open_orders, l->max_position, l->rate_per_s, l->rate_burst,
                             l->max_loss};
        for (int i = 0; i < 6; i++)
            put(&w, (uint64_t)limits[i]);
        put(&w, (uint64_t)cl->tokens);
        put(&w, (uint64_t)cl->rate_cap);
        put(&w, cl->last_ts);
        put(&w, cl->max_cloid);
        put(&w, (uint64_t)cl->cloids_indexed | (uint64_t)cl->killed << 1);
        unsigned __int128 headroom = (unsigned __int128)cl->loss_headroom;
        put(&w, (uint64_t)headroom);
        put(&w, (uint64_t)(headroom >> 64));
    }
    put(&w, npositions);
    for (uint16_t c = 0; c < e->cfg.max_clients; c++)
        for (uint16_t s = 0; s < e->nsymbols; s++) {
            const client_symbol_t *cs = risk_cs(e, c, s);
            if (cs->position == 0 && cs->cash == 0)
                continue;
            put(&w, c | (uint64_t)s << 16);
            put(&w, (uint64_t)cs->position);
            put(&w, (uint64_t)cs->cash);
        }
    for (uint16_t s = 0; s < e->nsymbols; s++)
        put_book(&w, &e->books[s]);
    put(&w, e->live_orders);
    if (put_orders(&w, e) != e->live_orders)
        return PT_SNAPSHOT_ECORRUPT;
    size_t body_end = (size_t)(w.p - (unsigned char *)buf);
    uint32_t crc = pt_crc32c(0, buf, body_end, 1);
    uint64_t trailer = crc;
    memcpy(w.p, &trailer, 8);
    *len = body_end + PT_SNAPSHOT_TRAILER_BYTES;
    return *len == bytes ? PT_SNAPSHOT_OK : PT_SNAPSHOT_ECORRUPT; /* the walk disagreed with the counts */
}

int pt_snapshot_encode_alloc(const pt_engine_t *e, pt_snapshot_info_t *info, void **out, size_t *len)
{
    if (e == NULL || out == NULL)
        return PT_SNAPSHOT_EINVAL;
    *out = NULL;
    size_t cap = pt_snapshot_bytes(e);
    void *buf = malloc(cap);
    if (buf == NULL)
        return PT_SNAPSHOT_ENOMEM;
    int rc = pt_snapshot_encode(e, info, buf, cap, len);
    if (rc != PT_SNAPSHOT_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    return PT_SNAPSHOT_OK;
}

void pt_snapshot_free(void *buf) { free(buf); }

/* ---- files --------------------------------------------------------------------------------------------- */

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync of the directory that holds path, so the rename itself survives a power loss. */
static int sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    char *dir = malloc(n + 1);
    if (dir == NULL)
        return -1;
    if (slash == NULL)
        dir[0] = '.';
    else
        memcpy(dir, slash == path ? "/" : path, n);
    dir[n] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int pt_snapshot_write_file(const char *path, const void *buf, size_t len)
{
    if (path == NULL || buf == NULL)
        return PT_SNAPSHOT_EINVAL;
    size_t n = strlen(path);
    char *tmp = malloc(n + 5);
    if (tmp == NULL)
        return PT_SNAPSHOT_ENOMEM;
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(tmp);
        return PT_SNAPSHOT_EIO;
    }
    int bad = write_all(fd, buf, len) != 0 || fsync(fd) != 0;
    int saved = errno;
    bad |= close(fd) != 0;
    if (!bad)
        bad = rename(tmp, path) != 0 || sync_parent(path) != 0;
    else
        errno = saved;
    if (bad) {
        saved = errno;
        unlink(tmp); /* nothing half-written stays behind; the target is untouched */
        errno = saved;
    }
    free(tmp);
    return bad ? PT_SNAPSHOT_EIO : PT_SNAPSHOT_OK;
}

int pt_snapshot_save(const pt_engine_t *e, pt_snapshot_info_t *info, const char *path)
{
    void *buf;
    size_t len;
    int rc = pt_snapshot_encode_alloc(e, info, &buf, &len);
    if (rc != PT_SNAPSHOT_OK)
        return rc;
    rc = pt_snapshot_write_file(path, buf, len);
    free(buf);
    return rc;
}

/* A snapshot file's bytes, mapped read-only and faulted in at once: the file is in the page cache after a
 * restart, so mapping it spares copying it into a buffer and faulting that buffer's pages in (a tenth of a
 * load of 1 M orders with read()). Snapshots are written beside and renamed over, never rewritten in place,
 * so the mapped file does not shrink under the reader. An empty file maps nothing: its length is 0. */
typedef struct file_view {
    const unsigned char *p;
    size_t len;
} file_view_t;

static const unsigned char empty_file[8];

static int map_file(const char *path, file_view_t *view)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return PT_SNAPSHOT_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return PT_SNAPSHOT_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return PT_SNAPSHOT_EIO;
    }
    view->len = (size_t)st.st_size;
    view->p = empty_file;
    if (view->len > 0) {
        void *p = mmap(NULL, view->len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            close(fd);
            errno = err;
            return err == ENOMEM ? PT_SNAPSHOT_ENOMEM : PT_SNAPSHOT_EIO;
        }
        view->p = p;
    }
    close(fd);
    return PT_SNAPSHOT_OK;
}

static void unmap_file(file_view_t *view)
{
    if (view->len > 0)
        munmap((void *)view->p, view->len);
}

/* ---- reading ------------------------------------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *p, *end;
    bool bad; /* read past the end: the contents contradict their own counts */
} reader_t;

static inline uint64_t get(reader_t *r)
{
    if (r->end - r->p < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v;
    memcpy(&v, r->p, 8);
    r->p += 8;
    return v;
}

static inline uint64_t word_at(const void *buf, int i)
{
    uint64_t v;
    memcpy(&v, (const unsigned char *)buf + 8 * i, 8);
    return v;
}

int pt_snapshot_verify(const void *buf, size_t len, pt_snapshot_info_t *info)
{
    if (buf == NULL || info == NULL)
        return PT_SNAPSHOT_EINVAL;
    memset(info, 0, sizeof *info);
    if (len < 8 || word_at(buf, 0) != PT_SNAPSHOT_MAGIC)
        return PT_SNAPSHOT_EBADMAGIC;
    if (len < PT_SNAPSHOT_HEADER_BYTES + PT_SNAPSHOT_TRAILER_BYTES)
        return PT_SNAPSHOT_ETRUNCATED;
    uint64_t version = word_at(buf, 1);
    if ((uint32_t)version != PT_SNAPSHOT_VERSION || version >> 32 != PT_SNAPSHOT_HEADER_BYTES)
        return PT_SNAPSHOT_EBADVERSION;
    info->bytes = word_at(buf, 2);
    info->journal_position = word_at(buf, 3);
    info->segment = word_at(buf, 4);
    info->config_hash = word_at(buf, 5);
    info->state_hash = word_at(buf, 6);
    info->commands = word_at(buf, 7);
    info->live_orders = word_at(buf, 8);
    if (info->bytes != len || len % 8 != 0)
        return PT_SNAPSHOT_ETRUNCATED;
    uint64_t trailer;
    memcpy(&trailer, (const unsigned char *)buf + len - 8, 8);
    info->stored_crc = (uint32_t)trailer;
    info->computed_crc = pt_crc32c(0, buf, len - 8, 1);
    if (info->stored_crc != info->computed_crc || trailer >> 32 != 0)
        return PT_SNAPSHOT_EBADCRC;
    return PT_SNAPSHOT_OK;
}

static bool engine_is_fresh(const pt_engine_t *e)
{
    if (e->commands != 0 || e->live_orders != 0 || e->seq != 0 || e->order_seq != 0 || e->trade_seq != 0 ||
        e->nevents != 0)
        return false;
    for (uint16_t s = 0; s < e->nsymbols; s++)
        if (e->books[s].last_price != 0 || e->books[s].halted)
            return false;
    return true;
}

/* The snapshot's capacities and symbols are e's (the symbols section comes first in the body: read here
 * without changing anything). */
static bool same_config(const pt_engine_t *e, const void *buf, reader_t *r)
{
    uint64_t caps = word_at(buf, 9), counts = word_at(buf, 10);
    if ((uint32_t)caps != e->cfg.max_orders || caps >> 32 != e->cfg.max_levels_per_side ||
        (uint16_t)counts != e->cfg.max_symbols || (uint16_t)(counts >> 16) != e->cfg.max_clients ||
        counts >> 32 != e->nsymbols)
        return false;
    for (uint16_t s = 0; s < e->nsymbols; s++) {
        int64_t cfg[8];
        symbol_words(&e->books[s].cfg, cfg);
        for (int i = 0; i < 8; i++)
            if (get(r) != (uint64_t)cfg[i])
                return false;
    }
    return !r->bad;
}

#define BAD_IF(cond)                     \
    do {                                 \
        if (cond)                        \
            return PT_SNAPSHOT_ECORRUPT; \
    } while (0)

static int load_clients(pt_engine_t *e, reader_t *r)
{
    memset(e->clients, 0, (size_t)e->cfg.max_clients * sizeof *e->clients);
    for (uint32_t i = 0; i < e->cfg.max_clients; i++)
        risk_limits_derive(&e->clients[i]); /* the clients the file does not list have no limits */
    memset(e->client_symbols, 0, (size_t)e->cfg.max_clients * e->cfg.max_symbols * sizeof *e->client_symbols);
    uint64_t n = get(r);
    BAD_IF(n > e->cfg.max_clients);
    int64_t last = -1;
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        uint64_t id = get(r);
        BAD_IF(id >= e->cfg.max_clients || (int64_t)id <= last);
        last = (int64_t)id;
        client_t *c = &e->clients[id];
        int64_t v[6];
        for (int k = 0; k < 6; k++)
            v[k] = (int64_t)get(r);
        c->limits = (pt_client_limits_t){.max_order_qty = v[0], .max_open_orders = v[1], .max_position = v[2],
                                         .rate_per_s = v[3], .rate_burst = v[4], .max_loss = v[5]};
        risk_limits_derive(c);
        for (int k = 0; k < 6; k++)
            BAD_IF(v[k] < 0);
        BAD_IF(v[3] > INT64_MAX / 1000000000LL || v[4] > INT64_MAX / 1000000000LL);
        c->tokens = (int64_t)get(r);
        c->rate_cap = (int64_t)get(r);
        c->last_ts = get(r);
        c->max_cloid = get(r);
        uint64_t flags = get(r);
        BAD_IF(flags > 3);
        c->cloids_indexed = flags & 1;
        c->killed = (flags & 2) != 0;
        uint64_t lo = get(r), hi = get(r);
        c->loss_headroom = (__int128)(((unsigned __int128)hi << 64) | lo);
    }
    e->nloss_clients = 0;
    for (uint16_t i = 0; i < e->cfg.max_clients; i++)
        if (e->clients[i].limits.max_loss > 0)
            e->loss_clients[e->nloss_clients++] = (loss_client_t){.client = &e->clients[i], .row = risk_cs(e, i, 0),
                                                                  .id = i};
    return r->bad ? PT_SNAPSHOT_ECORRUPT : PT_SNAPSHOT_OK;
}

static int load_positions(pt_engine_t *e, reader_t *r)
{
    uint64_t n = get(r);
    BAD_IF(n > (uint64_t)e->cfg.max_clients * e->nsymbols);
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        uint64_t key = get(r);
        uint16_t c = (uint16_t)key, s = (uint16_t)(key >> 16);
        BAD_IF(key >> 32 != 0 || c >= e->cfg.max_clients || s >= e->nsymbols);
        client_symbol_t *cs = risk_cs(e, c, s);
        cs->position = (int64_t)get(r);
        cs->cash = (int64_t)get(r);
    }
    return r->bad ? PT_SNAPSHOT_ECORRUPT : PT_SNAPSHOT_OK;
}

/* The levels read from the file: for each symbol, the file's level pool index -> the level made here. */
typedef struct level_map {
    pt_idx_t *of;      /* [nsymbols * 2 * max_levels_per_side], PT_NIL = no such level in the file */
    uint32_t per_symbol;
} level_map_t;

static int load_book(pt_engine_t *e, uint16_t s, reader_t *r, level_map_t *map)
{
    book_t *b = &e->books[s];
    b->last_price = (int64_t)get(r);
    b->mark_price = (int64_t)get(r);
    uint64_t halted = get(r);
    BAD_IF(halted > 1 || b->last_price < 0 || b->last_price > b->cfg.max_price_ticks);
    b->halted = halted;
    risk_price_window(b);
    for (int si = 0; si < 2; si++) {
        uint64_t count = get(r);
        BAD_IF(count > e->cfg.max_levels_per_side);
        for (uint64_t i = 0; i < count && !r->bad; i++) {
            int64_t price = (int64_t)get(r);
            uint64_t orders = get(r), links = get(r);
            uint32_t head = (uint32_t)links, pool_index = (uint32_t)(links >> 32);
            BAD_IF(price < b->cfg.min_price_ticks || price > b->cfg.max_price_ticks || orders == 0);
            BAD_IF(orders > e->cfg.max_orders || head >= e->cfg.max_orders || pool_index >= map->per_symbol);
            pt_idx_t *slot = &map->of[(size_t)s * map->per_symbol + pool_index];
            BAD_IF(*slot != PT_NIL);
            const level_t *best = book_best(b, si);
            BAD_IF(best != NULL && (si == 0 ? best->price >= price : best->price <= price)); /* ascending keys */
            bool created;
            pt_idx_t li = book_level_for_insert(b, si, price, &created);
            BAD_IF(!created);
            *slot = li;
            /* its queue is the file's: head and count now, the orders and their sums as they are read */
            level_t *lv = &b->levels[li];
            lv->head = head;
            lv->tail = PT_NIL;
            lv->touch_stamp = orders; /* the count the file gives, until its orders are counted (load_orders) */
        }
    }
    return r->bad ? PT_SNAPSHOT_ECORRUPT : PT_SNAPSHOT_OK;
}

/* One order record (5 words at rec) goes into the slot the file names, in the level it names: the queue links
 * are the file's, so no queue is followed (that took a cache miss per order). */
static int load_order(pt_engine_t *e, const level_map_t *map, const unsigned char *rec)
{
    uint64_t w[ORDER_WORDS];
    memcpy(w, rec, sizeof w);
    uint32_t oi = (uint32_t)w[0], next = (uint32_t)(w[0] >> 32);
    uint64_t id = w[1], cloid = w[2];
    int64_t qty = (int64_t)w[3];
    uint16_t client = (uint16_t)w[4], s = (uint16_t)(w[4] >> 24);
    uint64_t terms = (w[4] >> 16) & 0xFF, pool_index = w[4] >> 40;
    BAD_IF(oi >= e->cfg.max_orders || e->orders[oi].id != 0 || (next != PT_NIL && next >= e->cfg.max_orders));
    BAD_IF(s >= e->nsymbols || pool_index >= map->per_symbol);
    pt_idx_t li = map->of[(size_t)s * map->per_symbol + pool_index];
    book_t *b = &e->books[s];
    BAD_IF(li == PT_NIL || id == 0 || id > e->order_seq || qty <= 0 || qty > b->cfg.max_order_lots);
    BAD_IF(client >= e->cfg.max_clients || terms >= 16 || terms_stp((uint8_t)terms) > PT_STP_DECREMENT);
    /* A duplicate id: nothing leaves the index during a load, so an id whose ring slot is still empty was
     * never inserted, and the overflow table need not be probed (with entries in it, index_find_id would
     * probe it for every id, a cache miss each) */
    BAD_IF(e->by_id.ring[id & e->by_id.ring_mask] != PT_NIL && index_find_id(e, id) != PT_NIL);
    client_t *c = &e->clients[client];
    if (cloid != 0)
        BAD_IF(c->cloids_indexed ? index_find_cloid(e, client, cloid) != PT_NIL : cloid > c->max_cloid);
    order_t *o = &e->orders[oi];
    *o = (order_t){.id = id, .open_qty = qty, .prev = PT_NIL, .next = next, .level = li, .terms = (uint8_t)terms,
                   .client = client, .symbol = s};
    if (oi >= e->slot_top)
        e->slot_top = oi + 1;
    e->order_cloid[oi] = cloid;
    index_insert_id(e, oi);
    if (cloid != 0 && c->cloids_indexed)
        index_add_cloid(e, oi);
    index_add_client_order(e, client, oi);
    c->open_orders++;
    e->live_orders++;
    level_t *lv = &b->levels[li];
    lv->qty += qty;
    lv->order_count++;
    if (next == PT_NIL) {
        BAD_IF(lv->tail != PT_NIL); /* two ends to one queue */
        lv->tail = oi;
    }
    risk_cs(e, client, s)->open_qty[lv->side] += qty;
    return PT_SNAPSHOT_OK;
}

/* Queues followed at once: each step advances every queue of a group by one order, so that a group's cache
 * misses overlap (one queue at a time waited on each miss in turn). 128 loaded 1 M orders 15% faster than 16
 * on the benchmark's machine: more misses in flight than a core's line-fill buffers hold keeps them full. */
#define WALK_GROUP 128

/* Follows every queue of symbol s from its head for its count of orders, setting each order's prev: it must
 * end at its tail, and meet only orders of its own level. That proves each queue a simple path through all of
 * its level's orders (a level's records number its count: load_orders), so no order has two predecessors and
 * no cycle lies beside a queue. */
static int link_queues(pt_engine_t *e, uint16_t s)
{
    book_t *b = &e->books[s];
    for (int si = 0; si < 2; si++) {
        const book_side_t *side = &b->sides[si];
        for (uint32_t first = 0; first < side->count; first += WALK_GROUP) {
            uint32_t n = side->count - first < WALK_GROUP ? side->count - first : WALK_GROUP;
            pt_idx_t cur[WALK_GROUP], prev[WALK_GROUP], li[WALK_GROUP];
            int64_t left[WALK_GROUP];
            for (uint32_t j = 0; j < n; j++) {
                li[j] = side->levels[first + j];
                cur[j] = b->levels[li[j]].head;
                prev[j] = PT_NIL;
                left[j] = b->levels[li[j]].order_count;
            }
            for (uint32_t active = n; active > 0;) {
                active = 0;
                for (uint32_t j = 0; j < n; j++) {
                    if (left[j] == 0)
                        continue;
                    pt_idx_t oi = cur[j];
                    BAD_IF(oi >= e->slot_top);
                    order_t *o = &e->orders[oi];
                    BAD_IF(o->id == 0 || o->level != li[j] || o->symbol != s);
                    o->prev = prev[j];
                    prev[j] = oi;
                    cur[j] = o->next;
                    if (--left[j] == 0)
                        BAD_IF(cur[j] != PT_NIL || oi != b->levels[li[j]].tail);
                    else {
                        BAD_IF(cur[j] == PT_NIL);
                        __builtin_prefetch(&e->orders[cur[j]], 1);
                        active++;
                    }
                }
            }
        }
    }
    return PT_SNAPSHOT_OK;
}

/* Records ahead whose id-index slot is fetched before their turn: records come in slot order, so their ids,
 * and the ring slots those name, are scattered; one order at a time waited a cache miss each (a third of a
 * load of 1 M orders in perf). */
#define ID_PREFETCH_AHEAD 16

/* The orders section, then what the records' links imply: each level's count and tail, each order's prev
 * (link_queues). A queue whose links contradict themselves is refused here. */
static int load_orders(pt_engine_t *e, reader_t *r, const level_map_t *map)
{
    uint64_t n = get(r);
    BAD_IF(r->bad || n > e->cfg.max_orders || n > (uint64_t)(r->end - r->p) / (ORDER_WORDS * 8));
    const unsigned char *records = r->p;
    r->p += n * ORDER_WORDS * 8;
    const id_index_t *ix = &e->by_id;
    for (uint64_t i = 0; i < n; i++) {
        if (i + ID_PREFETCH_AHEAD < n) {
            uint64_t ahead;
            memcpy(&ahead, records + (i + ID_PREFETCH_AHEAD) * ORDER_WORDS * 8 + 8, 8);
            __builtin_prefetch(&ix->ring[ahead & ix->ring_mask], 1);
        }
        int rc = load_order(e, map, records + i * ORDER_WORDS * 8);
        if (rc != PT_SNAPSHOT_OK)
            return rc;
    }
    for (uint16_t s = 0; s < e->nsymbols; s++) {
        book_t *b = &e->books[s];
        for (int si = 0; si < 2; si++)
            for (uint32_t i = 0; i < b->sides[si].count; i++) {
                level_t *lv = &b->levels[b->sides[si].levels[i]];
                BAD_IF(lv->order_count != (int64_t)lv->touch_stamp || lv->tail == PT_NIL);
                lv->touch_stamp = 0; /* as a level that no command has touched */
            }
        int rc = link_queues(e, s);
        if (rc != PT_SNAPSHOT_OK)
            return rc;
    }
    return PT_SNAPSHOT_OK;
}

/* What pt_engine_check would find wrong in a state loaded here, found at less cost: the indexes, the client rows,
 * each level's sums and each client's resting lots were built here from the orders themselves, so what is left
 * to check is what the file states beyond its queues (link_queues checked those): a book must not be crossed;
 * positions and cash must sum to zero per symbol; each loss client's headroom must be its max_loss and its PnL.
 * (The full check walks every queue with three lookups an order: it was most of a load of 1 M orders.) */
static bool loaded_state_holds(const pt_engine_t *e)
{
    for (uint16_t s = 0; s < e->nsymbols; s++) {
        const book_t *b = &e->books[s];
        const level_t *bid = book_best(b, 0), *ask = book_best(b, 1);
        if ((bid != NULL && ask != NULL && bid->price >= ask->price) || b->mark_price != b->last_price)
            return false;
        __int128 position = 0, cash = 0;
        for (uint16_t c = 0; c < e->cfg.max_clients; c++) {
            position += risk_cs(e, c, s)->position;
            cash += risk_cs(e, c, s)->cash;
        }
        if (position != 0 || cash != 0)
            return false;
    }
    for (uint16_t i = 0; i < e->nloss_clients; i++) {
        const loss_client_t *l = &e->loss_clients[i];
        if (l->client->loss_headroom != l->client->limits.max_loss + risk_pnl_exact(e, l->id))
            return false;
        if (!e->kill_check_due && l->client->loss_headroom < 0 && !l->client->killed)
            return false;
    }
    return true;
}

/* The slots left free below slot_top, in ascending order, as the free list; the slots from slot_top on are
 * handed out after them, as a fresh engine's are (which slot a new order gets is never seen). */
static void rebuild_free_list(pt_engine_t *e)
{
    pt_idx_t head = PT_NIL;
    for (uint32_t i = e->slot_top; i-- > 0;)
        if (e->orders[i].id == 0) {
            e->orders[i].next = head;
            head = i;
        }
    e->free_order = head;
}

int pt_snapshot_decode(pt_engine_t *e, const void *buf, size_t len, pt_snapshot_info_t *info)
{
    if (e == NULL)
        return PT_SNAPSHOT_EINVAL;
    int rc = pt_snapshot_verify(buf, len, info);
    if (rc != PT_SNAPSHOT_OK)
        return rc;
    reader_t r = {.p = (const unsigned char *)buf + PT_SNAPSHOT_HEADER_BYTES,
                  .end = (const unsigned char *)buf + len - PT_SNAPSHOT_TRAILER_BYTES};
    if (!same_config(e, buf, &r))
        return PT_SNAPSHOT_ECONFIG;
    if (!engine_is_fresh(e))
        return PT_SNAPSHOT_ENOTFRESH;
    e->seq = get(&r);
    e->order_seq = get(&r);
    e->trade_seq = get(&r);
    e->commands = get(&r);
    uint64_t due = get(&r);
    if (due > 1)
        return PT_SNAPSHOT_ECORRUPT;
    e->kill_check_due = due;
    if ((rc = load_clients(e, &r)) != PT_SNAPSHOT_OK || (rc = load_positions(e, &r)) != PT_SNAPSHOT_OK)
        return rc;
    level_map_t map = {.per_symbol = 2 * e->cfg.max_levels_per_side};
    map.of = malloc((size_t)e->nsymbols * map.per_symbol * sizeof *map.of);
    if (map.of == NULL)
        return PT_SNAPSHOT_ENOMEM;
    for (size_t i = 0; i < (size_t)e->nsymbols * map.per_symbol; i++)
        map.of[i] = PT_NIL;
    for (uint16_t s = 0; s < e->nsymbols && rc == PT_SNAPSHOT_OK; s++)
        rc = load_book(e, s, &r, &map);
    if (rc == PT_SNAPSHOT_OK)
        rc = load_orders(e, &r, &map);
    free(map.of);
    rebuild_free_list(e); /* also after a failure: the engine is unusable then, but destroyable */
    if (rc != PT_SNAPSHOT_OK)
        return rc;
    /* Whatever else the file claims must hold: every byte read, every invariant, the hash it was taken with. */
    if (r.p != r.end || e->live_orders != info->live_orders || e->commands != info->commands ||
        !loaded_state_holds(e) || (info->state_hash != 0 && pt_engine_state_hash(e) != info->state_hash))
        return PT_SNAPSHOT_ECORRUPT;
    return PT_SNAPSHOT_OK;
}

int pt_snapshot_load(pt_engine_t *e, const char *path, pt_snapshot_info_t *info)
{
    if (e == NULL || path == NULL || info == NULL)
        return PT_SNAPSHOT_EINVAL;
    file_view_t view;
    int rc = map_file(path, &view);
    if (rc != PT_SNAPSHOT_OK)
        return rc;
    rc = pt_snapshot_decode(e, view.p, view.len, info);
    unmap_file(&view);
    return rc;
}

int pt_snapshot_read_info(const char *path, pt_snapshot_info_t *info)
{
    if (path == NULL || info == NULL)
        return PT_SNAPSHOT_EINVAL;
    file_view_t view;
    int rc = map_file(path, &view);
    if (rc != PT_SNAPSHOT_OK)
        return rc;
    rc = pt_snapshot_verify(view.p, view.len, info);
    unmap_file(&view);
    return rc;
}
