/*
 * pt_wire.h - every message that crosses a process or language boundary.
 *
 * One header, fixed-width fields, 64 bytes per message (one cache line), so the
 * same bytes are a C struct, a cffi cdata, a numpy structured array row and a
 * journal record. Python mirrors its enums and field lists in c_engine/_wire.py;
 * tests/c_engine/test_wire_layout.py parses this file and checks the mirror.
 *
 * Units: prices are int64 ticks, quantities int64 lots, times uint64 ns.
 * Field names that several event types share are anonymous unions: the bytes
 * are the same, the name says what they mean for that type (see the table
 * above pt_event_t).
 *
 * The header is parsed by a small script: keep one declaration per line,
 * enum values as literal integers, no preprocessor logic inside structs, and
 * nest only anonymous unions in structs and anonymous structs in unions.
 */
#ifndef PT_WIRE_H
#define PT_WIRE_H

#include <stdint.h>

#define PT_MSG_SIZE 64

/* Commands a client sends. */
enum pt_op {
    PT_OP_NEW = 1,
    PT_OP_CANCEL = 2,
    PT_OP_MODIFY = 3,
    PT_OP_MASS_CANCEL = 4,
    PT_OP_KILL_RESET = 5,
    /* Operator ops: the engine loop runs them only from its control plane (pt_loop_execute); from a client's
     * ring they are rejected NOT_GRANTED. */
    PT_OP_HALT = 6,      /* symbol_id: new orders and modifies on it are rejected (SYMBOL_HALTED); cancels work */
    PT_OP_RESUME = 7,    /* symbol_id: trading again */
    PT_OP_KILL = 8,      /* client_id: its kill switch goes on, its resting orders are cancelled (KILL_SWITCH) */
    PT_OP_SET_LIMIT = 9, /* client_id: the limit named by side (enum pt_limit) becomes qty (0 = off) */
};

/* Which limit a SET_LIMIT command sets (its side byte): the fields of pt_client_limits_t, in order. */
enum pt_limit {
    PT_LIMIT_MAX_ORDER_QTY = 1,
    PT_LIMIT_MAX_OPEN_ORDERS = 2,
    PT_LIMIT_MAX_POSITION = 3,
    PT_LIMIT_RATE_PER_S = 4,
    PT_LIMIT_RATE_BURST = 5,
    PT_LIMIT_MAX_LOSS = 6,
};

/* 0 is never a valid side, type or time in force: a zeroed command is rejected. */
enum pt_side {
    PT_SIDE_BUY = 1,
    PT_SIDE_SELL = 2,
};

enum pt_order_type {
    PT_TYPE_LIMIT = 1,
    PT_TYPE_MARKET = 2,
};

enum pt_tif {
    PT_TIF_GTC = 1,
    PT_TIF_IOC = 2,
    PT_TIF_FOK = 3,
};

/* Self-trade prevention, decided by the taker's mode (ARCHITECTURE.md). */
enum pt_stp {
    PT_STP_NONE = 0,
    PT_STP_EXPIRE_TAKER = 1,
    PT_STP_EXPIRE_MAKER = 2,
    PT_STP_EXPIRE_BOTH = 3,
    PT_STP_DECREMENT = 4,
};

/* pt_command_t.flags */
enum pt_command_flag {
    PT_FLAG_POST_ONLY = 1,
    PT_FLAG_HAS_PRICE = 2,  /* new: a limit price is given; modify: change the price */
    PT_FLAG_HAS_QTY = 4,    /* modify: change the open quantity */
    PT_FLAG_HAS_SYMBOL = 8, /* mass cancel: only this symbol */
    PT_FLAG_DISCONNECT = 16, /* mass cancel: sent by the engine process for a client that is gone (reason DISCONNECT) */
    PT_FLAG_NOT_GRANTED = 32, /* any op: set by the engine loop on a command whose client_id its link may not act
                               * for; the engine rejects it (NOT_GRANTED) before anything else, so the journal
                               * replays the same reject */
};

/* Names that do not map to anything (unknown symbol, client...) use these. */
#define PT_SYMBOL_NONE 0xFFFF
#define PT_CLIENT_NONE 0xFFFF

/*
 * Command, 64 bytes.
 *
 *  0 op  1 side  2 symbol_id  4 client_id  6 order_type  7 tif  8 stp  9 flags  10 reserved
 * 16 ts_ns  24 order_id  32 cloid  40 price  48 qty  56 reserved
 */
typedef struct pt_command {
    uint8_t op;           /* enum pt_op */
    uint8_t side;         /* enum pt_side */
    uint16_t symbol_id;   /* index given by add_symbol; PT_SYMBOL_NONE if unknown */
    uint16_t client_id;   /* the sender; every limit and position is per client */
    uint8_t order_type;   /* enum pt_order_type */
    uint8_t tif;          /* enum pt_tif */
    uint8_t stp;          /* enum pt_stp */
    uint8_t flags;        /* enum pt_command_flag */
    uint16_t reserved0;
    uint32_t reserved1;
    uint64_t ts_ns;       /* ingress time; events echo it, the rate limiter uses it */
    uint64_t order_id;    /* cancel, modify: the engine-assigned id of the target */
    uint64_t cloid;       /* new: client order id, 0 = none (not checked for duplicates) */
    int64_t price;        /* ticks: new limit price, or modify's new price */
    int64_t qty;          /* lots: new order quantity, or modify's new open quantity */
    uint64_t reserved2;
} pt_command_t;

enum pt_event_type {
    PT_EV_ACK = 1,
    PT_EV_REJECT = 2,
    PT_EV_FILL = 3,
    PT_EV_CANCELED = 4,
    PT_EV_MODIFIED = 5,
    PT_EV_BOOK_DELTA = 6,
    PT_EV_TRADE = 7,
    PT_EV_HEARTBEAT = 8,
};

/* REJECT reasons, in the order the engine checks them (docs/ENGINE.md), but for RISK_INT64_OVERFLOW: added
 * last, so no number moved; it is checked right after RISK_MAX_POSITION. */
enum pt_reject_reason {
    PT_REJ_UNKNOWN_CLIENT = 1,
    PT_REJ_UNKNOWN_OP = 2,
    PT_REJ_UNKNOWN_SYMBOL = 3,
    PT_REJ_UNKNOWN_SIDE = 4,
    PT_REJ_UNKNOWN_ORDER_TYPE = 5,
    PT_REJ_UNKNOWN_TIF = 6,
    PT_REJ_UNKNOWN_STP = 7,
    PT_REJ_MARKET_NOT_IOC_FOK = 8,
    PT_REJ_POST_ONLY_NOT_GTC_LIMIT = 9,
    PT_REJ_INVALID_QTY = 10,
    PT_REJ_QTY_ABOVE_SYMBOL_MAX = 11,
    PT_REJ_MISSING_PRICE = 12,
    PT_REJ_MARKET_WITH_PRICE = 13,
    PT_REJ_INVALID_PRICE = 14,
    PT_REJ_PRICE_OUT_OF_RANGE = 15,
    PT_REJ_PRICE_BAND = 16,
    PT_REJ_MODIFY_NOTHING = 17,
    PT_REJ_UNKNOWN_ORDER = 18,
    PT_REJ_NOT_OWNER = 19,
    PT_REJ_DUPLICATE_CLIENT_ORDER_ID = 20,
    PT_REJ_KILL_SWITCH = 21,
    PT_REJ_RATE_LIMIT = 22,
    PT_REJ_RISK_MAX_ORDER_QTY = 23,
    PT_REJ_RISK_MAX_OPEN_ORDERS = 24,
    PT_REJ_RISK_MAX_POSITION = 25,
    PT_REJ_POST_ONLY_WOULD_TAKE = 26,
    PT_REJ_ORDER_POOL_EXHAUSTED = 27,
    PT_REJ_BOOK_LEVELS_EXHAUSTED = 28,
    PT_REJ_RISK_INT64_OVERFLOW = 29,
    PT_REJ_NOT_GRANTED = 30, /* the command's link may not act for its client_id (PT_FLAG_NOT_GRANTED) */
    PT_REJ_SYMBOL_HALTED = 31, /* a new order or a modify on a halted symbol */
    PT_REJ_INVALID_LIMIT = 32, /* SET_LIMIT: no such limit, or a value pt_engine_set_client_limits refuses */
};

/* CANCELED reasons. */
enum pt_cancel_reason {
    PT_CXL_USER = 1,
    PT_CXL_IOC = 2,
    PT_CXL_FOK = 3,
    PT_CXL_NO_LIQUIDITY = 4,
    PT_CXL_STP = 5,
    PT_CXL_MASS_CANCEL = 6,
    PT_CXL_KILL_SWITCH = 7,
    PT_CXL_PRICE_BAND = 8,
    PT_CXL_DISCONNECT = 9,
};

/* pt_event_t.flags (every event but TRADE, whose byte 7 is the high byte of maker_client). */
enum pt_event_flag {
    PT_EVF_LAST = 1, /* the last event of its command for the command's client: nothing more of it comes now
                      * (a partly filled order that rested, say); set by the engine, so replays repeat it */
};

/* FILL liquidity flag. */
enum pt_liquidity {
    PT_LIQ_MAKER = 1,
    PT_LIQ_TAKER = 2,
};

/*
 * Event, 64 bytes.
 *
 *  0 type  1 side  2 symbol_id  4 client_id  6 reason|liquidity|acked_op  7 flags (6-7: TRADE's maker_client)
 *  8 seq  16 ts_ns  24 order_id  32 cloid|trade_id|order_count  40 price  48 qty
 * 56 leaves|maker_order_id
 *
 * type        client_id  order_id      cloid/trade_id/count  price        qty                leaves/maker_order_id
 * ACK         owner      new order id  cloid                 limit (0 mkt) order qty          order qty
 *   (ACK of a mass cancel or kill reset: acked_op says which, order_id 0, qty = orders cancelled)
 * REJECT      sender     target or 0   cloid                 cmd price    cmd qty            0
 * FILL        owner      order id      trade_id              trade price  filled qty         open qty left
 * CANCELED    owner      order id      cloid                 order price  qty cancelled      open qty left
 * MODIFIED    owner      order id      cloid                 new price    new open qty       new open qty
 * BOOK_DELTA  0          0             order_count           level price  level qty          0
 * TRADE       taker      taker order   trade_id              trade price  qty                maker_order_id
 */
typedef struct pt_event {
    uint8_t type;         /* enum pt_event_type */
    uint8_t side;         /* the order's side; TRADE: the taker's; BOOK_DELTA: the level's */
    uint16_t symbol_id;
    uint16_t client_id;
    union {
        uint16_t maker_client; /* TRADE: both bytes */
        struct {
            union {
                uint8_t reason;    /* REJECT: enum pt_reject_reason; CANCELED: enum pt_cancel_reason */
                uint8_t liquidity; /* FILL: enum pt_liquidity */
                uint8_t acked_op;  /* ACK: enum pt_op of the command acknowledged */
            };
            uint8_t flags; /* every other event: enum pt_event_flag */
        };
    };
    uint64_t seq;         /* engine sequence number, +1 per event, from 1 */
    uint64_t ts_ns;       /* the ts_ns of the command that caused the event */
    uint64_t order_id;
    union {
        uint64_t cloid;
        uint64_t trade_id;     /* FILL, TRADE: engine-wide, from 1 */
        uint64_t order_count;  /* BOOK_DELTA: orders resting at the level */
    };
    int64_t price;
    int64_t qty;
    union {
        int64_t leaves;          /* open quantity after the event */
        uint64_t maker_order_id; /* TRADE */
    };
} pt_event_t;

_Static_assert(sizeof(pt_command_t) == PT_MSG_SIZE, "command is one cache line");
_Static_assert(sizeof(pt_event_t) == PT_MSG_SIZE, "event is one cache line");

#endif
