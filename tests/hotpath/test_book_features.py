"""The C features kernel (``hotpath.book_features``): its limits, and its book and own-order tables against a
plain Python model over a random stream long enough to grow every table and delete from the middle of each."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hotpath.book_features import MAX_DEPTH, MAX_HORIZONS, BookFeatures

BUY, SELL = 1, 2
PARAMS = {"depth": 3, "ofi_window": 4, "return_horizons": (1, 5), "momentum_horizons_ns": (10,),
          "trade_window_ns": 50, "rate_tau_ns": 1_000, "vol_alpha": 0.25}  # fmt: skip
#: row columns of PARAMS: spread, imbalance_l1, imbalance_depth3, wmid, 3 OFI, 2 returns, 1 momentum, vol, tfi,
#: two rates, queue bid, queue ask
SPREAD, IMBALANCE, TFI, QUEUE_BID, QUEUE_ASK = 0, 1, 11, 14, 15


def kernel(**changes: object) -> BookFeatures:
    return BookFeatures(**{**PARAMS, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [{"depth": MAX_DEPTH + 1}, {"depth": 0}, {"ofi_window": 0},
                                     {"return_horizons": tuple(range(1, MAX_HORIZONS + 2))},
                                     {"momentum_horizons_ns": ()}, {"rate_tau_ns": 0}])  # fmt: skip
def test_a_spec_outside_the_kernels_limits_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        kernel(**changes)


def test_an_empty_book_gives_undefined_shape_zero_flow_and_no_queue() -> None:
    k = kernel()
    row = k.sample(5)
    assert len(row) == k.width == 16 and k.samples == 1
    assert math.isnan(row[SPREAD]) and math.isnan(row[IMBALANCE]) and math.isnan(row[QUEUE_BID])
    assert row[4:7].tolist() == [0.0, 0.0, 0.0]


def test_each_sample_is_a_new_array_and_sample_into_fills_the_callers() -> None:
    k = kernel()
    k.book_delta(BUY, 100, 4)
    k.book_delta(SELL, 102, 1)
    first = k.sample(1)
    k.book_delta(SELL, 102, 3)
    second = k.sample(2)
    assert first[IMBALANCE] == (4 - 1) / 5 and second[IMBALANCE] == (4 - 3) / 7
    out = np.zeros(k.width)
    k.sample_into(3, out)
    assert out[SPREAD] == 2.0


def test_a_sampler_writes_each_row_into_the_array_it_was_bound_to() -> None:
    twin, k = kernel(), kernel()
    inputs = np.zeros((1, k.width))  # a model input of one row, as onnxruntime binds it
    sample = k.sampler(inputs[0])
    for ts, (side, price, qty) in enumerate([(BUY, 100, 4), (SELL, 102, 1), (SELL, 102, 3), (BUY, 101, 2)]):
        twin.book_delta(side, price, qty)
        k.book_delta(side, price, qty)
        sample(ts)
        np.testing.assert_array_equal(inputs[0], twin.sample(ts))
    assert k.samples == twin.samples == 4


def test_a_sampler_with_a_model_input_writes_its_columns_as_float32_rounded_as_numpy_rounds() -> None:
    k = kernel()
    row, model_input = np.zeros(k.width), np.zeros(3, dtype=np.float32)
    sample = k.sampler(row, model_input, [IMBALANCE, SPREAD, TFI])
    k.book_delta(BUY, 100, 4)
    k.book_delta(SELL, 103, 3)  # imbalance 1/7: not a float32, so the cast must round as astype does
    k.trade(SELL, 100, 1, 0)
    sample(1)
    assert row[IMBALANCE] == 1 / 7 and row[SPREAD] == 3.0 and row[TFI] == -1.0
    np.testing.assert_array_equal(model_input, row[[IMBALANCE, SPREAD, TFI]].astype(np.float32))


def test_a_sampler_refuses_a_model_input_that_does_not_match_its_columns() -> None:
    k = kernel()
    with pytest.raises(ValueError, match="one per column"):
        k.sampler(np.zeros(k.width), np.zeros(2, dtype=np.float32), [SPREAD, TFI, IMBALANCE])
    with pytest.raises(ValueError, match="within the row"):
        k.sampler(np.zeros(k.width), np.zeros(1, dtype=np.float32), [k.width])


@pytest.mark.parametrize("bad", [np.zeros(16, dtype=np.float32), np.zeros(15), np.zeros((16, 2))[:, 0]])
def test_a_sampler_refuses_an_array_the_kernel_cannot_write_a_row_into(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="contiguous"):
        kernel().sampler(bad)


class Model:
    """The book and the queue proxy by their definitions (docs/ML.md), in plain Python."""

    def __init__(self) -> None:
        self.levels: dict[int, dict[int, int]] = {BUY: {}, SELL: {}}
        self.own: dict[int, dict[str, int]] = {}
        self.adds = 0
        self.deltas = 0

    def delta(self, side: int, price: int, qty: int) -> None:
        if qty:
            self.levels[side][price] = qty
        else:
            self.levels[side].pop(price, None)
        self.deltas += 1
        for o in self.own.values():
            if o["side"] == side and o["price"] == price:
                others = max(0, qty - o["open"])
                if o["rest"] == 0:
                    o["rest"], o["ahead"] = self.deltas, others
                else:
                    o["ahead"] = min(o["ahead"], others)

    def trade(self, side: int, price: int, qty: int) -> None:
        maker = SELL if side == BUY else BUY
        for o in self.own.values():
            if o["side"] == maker and o["price"] == price and o["rest"]:
                o["ahead"] = max(0, o["ahead"] - qty)

    def ack(self, oid: int, side: int, price: int, qty: int) -> None:
        self.adds += 1
        self.own.pop(oid, None)
        self.own[oid] = {"side": side, "price": price, "open": qty, "ahead": 0, "rest": 0, "add": self.adds}

    def fill(self, oid: int, leaves: int) -> None:
        if oid in self.own:
            if leaves > 0:
                self.own[oid]["open"] = leaves
            else:
                del self.own[oid]

    def modified(self, oid: int, price: int, leaves: int) -> None:
        o = self.own.get(oid)
        if o is None:
            return
        if price == o["price"] and leaves <= o["open"]:
            o["open"] = leaves
        else:
            del self.own[oid]
            self.ack(oid, o["side"], price, leaves)

    def front(self, side: int) -> float:
        resting = [o for o in self.own.values() if o["side"] == side and o["rest"]]
        if not resting:
            return math.nan
        sign = -1 if side == BUY else 1
        return float(min(resting, key=lambda o: (sign * o["price"], o["rest"], o["add"]))["ahead"])

    def touch(self) -> tuple[float, float]:
        bids, asks = self.levels[BUY], self.levels[SELL]
        if not bids and not asks:
            return math.nan, math.nan
        qb = bids[max(bids)] if bids else 0
        qa = asks[min(asks)] if asks else 0
        spread = float(min(asks) - max(bids)) if bids and asks else math.nan
        return spread, (qb - qa) / (qb + qa)


def test_the_book_and_the_queue_proxy_follow_the_definitions_over_a_long_random_stream() -> None:
    rng = np.random.default_rng(7)
    window = 11_000  # about 1,100 trades in the window at the end: the trade ring grows past 1024, then expires
    k, m = kernel(trade_window_ns=window), Model()
    trades: list[tuple[int, int]] = []
    next_id = 1
    for step in range(12_000):
        r = rng.random()
        side = BUY if rng.random() < 0.5 else SELL
        # Thousands of prices a side (the level table grows past its 256), clustered near the touch.
        base = 5_000 if side == BUY else 5_001
        price = int(base - rng.geometric(0.002)) if side == BUY else int(base + rng.geometric(0.002))
        own = list(m.own)
        if r < 0.55:
            qty = 0 if rng.random() < 0.3 else int(rng.integers(1, 50))
            k.book_delta(side, price, qty)
            m.delta(side, price, qty)
        elif r < 0.65:
            qty = int(rng.integers(1, 20))
            k.trade(side, price, qty, step)
            m.trade(side, price, qty)
            trades.append((step, qty if side == BUY else -qty))
        elif r < 0.8 or not own:
            # Own orders near the touch, hundreds at once (the id and level maps grow, rehash and delete).
            price = int(base - rng.integers(0, 30)) if side == BUY else int(base + rng.integers(0, 30))
            qty = int(rng.integers(1, 10))
            k.own_ack(next_id, side, price, qty)
            m.ack(next_id, side, price, qty)
            next_id += 1
        else:
            oid = own[int(rng.integers(0, len(own)))]
            if rng.random() < 0.6:
                leaves = int(rng.integers(0, 3))
                k.own_fill(oid, leaves)
                m.fill(oid, leaves)
            else:
                o = m.own[oid]
                new_price = o["price"] + int(rng.integers(-1, 2))
                leaves = max(1, o["open"] + int(rng.integers(-2, 2)))
                k.own_modified(oid, new_price, leaves)
                m.modified(oid, new_price, leaves)
        if step % 7 == 0:
            row = k.sample(step)
            spread, imbalance = m.touch()
            assert np.array_equal([row[SPREAD], row[IMBALANCE]], [spread, imbalance], equal_nan=True), step
            assert np.array_equal(row[QUEUE_BID:], [m.front(BUY), m.front(SELL)], equal_nan=True), step
            live = [q for t, q in trades if t > step - window]
            total = sum(abs(q) for q in live)
            assert row[TFI] == (sum(live) / total if total else 0.0), step
    assert len(m.levels[BUY]) > 300 and len(m.own) > 100  # the tables grew
    assert len([t for t, _ in trades if t > 12_000 - window]) > 1024 and trades[0][0] <= 12_000 - window
    for oid, o in m.own.items():
        assert k.queue_ahead(oid) == (o["ahead"] if o["rest"] else None)
    assert k.queue_ahead(next_id) is None
