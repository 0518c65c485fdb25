"""``PredictorMaker``: the inventory-skew maker, its quotes moved by a predicted return and widened on predicted
adverse selection.

At each book change it brings its ``IncrementalFeatures`` up to date, takes a feature row (a sample point),
runs its models on it (``ml.predictor.JointPredictor``: both models in one onnxruntime call) and requotes:

    centre = fair - skew x position + shift,   shift = clip(signal_weight x m, +-max_shift)
    half spread = half_spread + adverse_widen x P(adverse)

``m`` is the signal model's move in ticks: for a return model its predicted return applied to fair value
(``1e-4 x r_bps x fair``), for a direction model ``P(up) - P(down)`` (ticks per unit of that difference). Sizes
follow the inventory-skew maker's rule. With ``signal_weight = 0`` and ``adverse_widen = 0`` it quotes exactly
as ``InventorySkewMaker`` (a test holds them to identical fills), so a backtest of the two isolates what the
predictions add. Fills and timers requote with the latest predictions.

Where its features come from: the trading interface gives a strategy the book (``trading.book(sid)``, an
``L2Book``), its trades and its own order events, not the engine's BOOK_DELTAs. So each ``on_book`` diffs the
book's top ``spec.depth`` levels a side against the previous call's and feeds the changed levels (a level that
left the window as qty 0) to the features as deltas. A side's window is found by walking ticks from the book's
cached best price, one dict probe a tick, until ``spec.depth`` levels (or all the side has) are found: near the
touch levels lie a tick or a few apart, so that is a few probes (1 us a side on the synthetic book, where
``heapq`` over its 30 levels took 3.5 us, and over a Binance side's 2,000 levels 84 us); a side sparser than
``_WALK_TICKS`` ticks from its best is searched whole. A window is kept as its (price, qty) pairs, so a call
whose change lies deeper than the window (two in three on the synthetic flow) compares two short lists and
feeds nothing. Every feature but the queue proxy reads only those levels, so the row is the one the engine's
deltas would give at the same sample points; the queue proxy sees only own orders within the window. The
sample points are the ``on_book`` calls (one per command whose market data changed the book, as the venue
batches it); trades and samples are timed with ``trading.now_ns()``, the strategy's clock, which a constant
market-data delay shifts as a whole. The book the strategy sees includes its own quotes, as the live
BOOK_DELTA stream does.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np

from c_engine import EventType, Side
from strategies.interface import OrderUpdate, PublicTrade, Trading
from strategies.makers import InventorySkewParams, MakerParams, Quotes, QuotingStrategy
from strategies.registry import register_strategy

from .features import FeatureSpec, IncrementalFeatures
from .predictor import JointPredictor, Predictor, load_predictor

__all__ = ["PredictorMaker", "PredictorMakerParams", "register"]

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_ACK, _FILL, _CANCELED, _MODIFIED = (int(EventType.ACK), int(EventType.FILL), int(EventType.CANCELED),
                                     int(EventType.MODIFIED))  # fmt: skip


@dataclass(frozen=True)
class PredictorMakerParams(InventorySkewParams):
    #: how far the signal moves the quotes' centre: a fraction of the predicted move (return model) or ticks per
    #: unit of P(up) - P(down) (direction model)
    signal_weight: float = 1.0
    #: the most the signal may move the centre, in price units
    max_shift: float = 0.02
    #: price units added to each half spread at P(adverse) = 1
    adverse_widen: float = 0.02


#: the most ticks a window walk probes from the best price before it searches the side whole
_WALK_TICKS = 64
#: a side's window: (price, qty) of its best levels, best first
_Window = list[tuple[int, int]]


def _book_window(levels: dict[int, tuple[int, int]], best: int | None, depth: int, step: int) -> _Window:
    """The best ``depth`` levels of a side as (price, qty), best first (``step``: -1 for bids, +1 for asks;
    ``best``: the side's best price, None when it is empty). Every tick from ``best`` is probed until the
    window is full, so the levels found are the best ones; a side sparser than that is searched whole."""
    out: _Window = []
    if best is None:
        return out
    want = min(depth, len(levels))
    get = levels.get
    price = best
    for _ in range(_WALK_TICKS):
        level = get(price)
        if level is not None:
            out.append((price, level[0]))
            if len(out) == want:
                return out
        price += step
    prices = heapq.nlargest(depth, levels) if step < 0 else heapq.nsmallest(depth, levels)
    return [(p, levels[p][0]) for p in prices]


class PredictorMaker(QuotingStrategy):
    """See the module docstring. ``signal`` (return or direction model) and ``adverse`` are optional."""

    name = "predictor"
    #: its features are sampled per market event, as in training: every book change, not only the top's
    book_updates = "all"

    def __init__(
        self,
        params: PredictorMakerParams,
        signal: Predictor | None = None,
        adverse: Predictor | None = None,
        spec: FeatureSpec | None = None,
    ) -> None:
        super().__init__(params)
        self.p = params
        self.signal = signal
        self.adverse = adverse
        for model, allowed in ((signal, ("return", "direction")), (adverse, ("adverse",))):
            if model is not None and model.target not in allowed:
                raise ValueError(f"{model.path} predicts {model.target}; this slot takes {' or '.join(allowed)}")
        self.spec = spec or (signal.spec if signal else adverse.spec if adverse else FeatureSpec())
        self.features = IncrementalFeatures(self.spec)
        models = [m for m in (signal, adverse) if m is not None]
        #: both models in one session (``None`` without models); its scores come in the order signal, adverse
        self.joint = JointPredictor(models) if models else None
        #: the latest decision's feature row (``spec.names()`` order)
        self.row = np.full(self.spec.width, np.nan)
        #: ``sample(ts_ns)``: the C features write the row into ``row`` and its model columns, as float32, into
        #: the models' bound input, so a decision makes and copies no row
        self._sample_to = (self.features.sampler(self.row, self.joint.input, self.joint.columns.tolist())
                           if self.joint is not None else self.features.sampler(self.row))  # fmt: skip
        self._bids: _Window = []
        self._asks: _Window = []
        self._tick = self._lot = 0.0
        #: the latest signal score and adverse probability (0 before the first prediction)
        self.score = 0.0
        self.p_adverse = 0.0
        self.decisions = 0
        #: when set to a list, each book decision's duration (features + inference + quote), ns
        self.decision_ns: list[int] | None = None
        #: when set to a list (with ``decision_ns``), each decision's CPU time on this thread, ns: on a shared
        #: machine the wall time also counts the time other processes held the core
        self.decision_cpu_ns: list[int] | None = None

    # --- features from what the interface shows ------------------------------------------------------------

    def on_trade(self, trading: Trading, trade: PublicTrade) -> None:
        if trade.symbol_id == self.sid:
            self.features.on_trade(trade.aggressor, trade.price, trade.qty, trading.now_ns())

    def on_order(self, trading: Trading, update: OrderUpdate) -> None:
        if update.symbol_id == self.sid and update.order_id:
            f, t = self.features, update.type
            if t == _ACK:
                f.on_own_ack(update.order_id, update.side, update.price, update.leaves)
            elif t == _FILL or t == _CANCELED:
                f.on_own_fill(update.order_id, update.leaves)
            elif t == _MODIFIED:
                f.on_own_modified(update.order_id, update.price, update.leaves)
        super().on_order(trading, update)

    def _feed_book(self, trading: Trading) -> None:
        book = trading.book(self.sid)
        depth = self.spec.depth
        bids = _book_window(book.bids, book.best_bid(), depth, -1)
        if bids != self._bids:
            self._feed_side(_BUY, self._bids, bids)
            self._bids = bids
        asks = _book_window(book.asks, book.best_ask(), depth, 1)
        if asks != self._asks:
            self._feed_side(_SELL, self._asks, asks)
            self._asks = asks

    def _feed_side(self, side: int, old: _Window, new: _Window) -> None:
        """The deltas from one window of a side to the next: levels that left it as qty 0, then changed ones."""
        delta = self.features.on_book_delta
        now = dict(new)
        for p, _ in old:
            if p not in now:
                delta(side, p, 0)
        before = dict(old)
        for p, q in new:
            if before.get(p) != q:
                delta(side, p, q)

    def on_book(self, trading: Trading, symbol_id: int) -> None:
        if symbol_id != self.sid:
            return
        if self.decision_ns is not None:
            self._timed_decide(trading)
        else:
            self._decide(trading)

    def _decide(self, trading: Trading) -> None:
        """The decision: the window's deltas into the features, the row sampled into the models' bound input,
        one run of both, the requote."""
        self._feed_book(trading)
        self._sample_to(trading.now_ns())
        joint = self.joint
        if joint is not None:
            scores = joint.run()
            if self.signal is not None:
                self.score = scores[0]
            if self.adverse is not None:
                self.p_adverse = scores[-1]
        self.decisions += 1
        self.requote(trading)

    def _timed_decide(self, trading: Trading) -> None:
        """``_decide``, its wall time into ``decision_ns`` and its CPU time into ``decision_cpu_ns`` (if set)."""
        assert self.decision_ns is not None
        cpu = self.decision_cpu_ns
        cpu_started = time.thread_time_ns() if cpu is not None else 0
        started = time.perf_counter_ns()
        self._decide(trading)
        self.decision_ns.append(time.perf_counter_ns() - started)
        if cpu is not None:
            cpu.append(time.thread_time_ns() - cpu_started)

    # --- the quotes ---------------------------------------------------------------------------------------

    def on_start(self, trading: Trading) -> None:
        super().on_start(trading)
        units = trading.units(self.sid)
        self._tick, self._lot = units.tick, units.lot

    def shift_ticks(self, trading: Trading, fair: float) -> float:
        """The signal's move of the centre (ticks), clipped."""
        if self.signal is None:
            return 0.0
        move = 1e-4 * self.score * fair if self.signal.target == "return" else self.score
        cap = self.p.max_shift / self._tick
        return max(-cap, min(cap, self.p.signal_weight * move))

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        tick = self._tick
        skew_ticks_per_lot = self.p.skew * self._lot / tick
        centre = fair - skew_ticks_per_lot * position + self.shift_ticks(trading, fair)
        h = self.half_spread_ticks + self.p.adverse_widen / tick * self.p_adverse
        use = min(1.0, abs(position) / self.max_position_lots) if self.max_position_lots else 1.0
        shrunk = max(1, int(self.size_lots * (1.0 - use))) if use < 1.0 else 0
        bid_size = shrunk if position > 0 else self.size_lots
        ask_size = shrunk if position < 0 else self.size_lots
        return Quotes(centre - h, centre + h, bid_size, ask_size)


def _build(params: MakerParams, model: str | None = None, adverse_model: str | None = None) -> PredictorMaker:
    """``proptrade strategy run|backtest --strategy predictor --model M [--adverse-model A]``."""

    assert isinstance(params, PredictorMakerParams)
    return PredictorMaker(params, load_predictor(model) if model else None,
                          load_predictor(adverse_model) if adverse_model else None)  # fmt: skip


def register() -> None:
    """The ``proptrade.strategies`` entry point: the predictor maker joins the strategies by name."""
    register_strategy("predictor", _build, PredictorMakerParams,
                      {"model": "the signal model (ONNX, proptrade ml train)",
                       "adverse_model": "the adverse-selection model (ONNX)"})  # fmt: skip
