"""``RlMaker``: an exported RL policy (``ml.rl.export``) quoting as a strategy, live and in backtests alike.

Every decision builds the observation ``EngineMarketEnv`` gives its agent, runs the ONNX policy on it (one
onnxruntime session, one thread: ``ml.rl.policy``) and quotes the action's bid and ask offsets and size through
``QuotingStrategy``. Choices, and why:

- **The env's observation, from the env's code.** The features are ``ml.features.IncrementalFeatures`` of the
  env's ``FeatureSpec``; the entries after them come from ``engine_env.observation_extras`` and the row is
  assembled by ``engine_env.fill_observation``, the functions the env itself calls. The env config those read
  (position and size scaling, offset range, horizon, feature spec) travels in the model's metadata
  (``env_config``); a model without it is read with the defaults, and a feature-spec hash that disagrees with
  the metadata's is refused. A test holds the strategy's observation equal to the env's on the same market.
- **Decisions at the env's step.** The env samples its features and asks its agent once per step
  (``flow_commands_per_step`` x ``flow_ts_step_ns``, 8 ms by default; the recorded env's ``step_ns``: the
  model's ``step_ns`` metadata); features that count samples (return
  horizons, OFI window, volatility half-life) mean what they meant in training only at that cadence. So the
  policy runs on a timer every ``decision_interval_s`` (0: the model's step), not on each book change; market
  data between decisions only updates the features and the mid.
- **Time left cycles over a horizon of decisions.** The env's ``time_left_frac`` is ``(H - t) / H`` after ``t``
  of ``H = horizon_steps`` steps. Live there is no episode end, so decision ``k`` sees ``t = k mod H``: a run is
  a sequence of horizons, each observation one the policy saw in training (``horizon_steps`` 0: the model's).
- **Features from what the interface shows.** The trading interface gives the book, not the engine's
  BOOK_DELTAs: each ``on_book`` diffs the whole book against the previous call's and feeds the changed levels as
  deltas (``book_updates = "all"``: every change, as the env's features see every delta). Trades are timed with
  ``trading.now_ns()``; own ACK / FILL / MODIFIED / CANCELED feed the queue proxy and the own-quote state, kept
  per side exactly as the env keeps it (the order acknowledged last, its price and open size).
- **The mid is the book's, own quotes included** (best bid + best ask over 2, the last defined one when a side
  is empty), as in the env the policy was trained in; quotes are ``floor(mid - bid offset)`` and ``ceil(mid +
  ask offset)`` (``QuotingStrategy`` rounds bids down, asks up), post-only GTC.
- **Sizes are cut to the strategy's own ``max_position``** (the env cuts to its ``max_position_lots``), so the
  maker's limit check never drops a quote the policy asked for; ``size`` (a ``MakerParams`` field) is unused:
  the policy sizes. Between decisions a fill requotes to the last decision's targets (``QuotingStrategy``'s
  rule); the env tops a filled quote up at its next step instead. After ``on_stop`` nothing is quoted, so a fill
  that arrives while the implementation cancels everything places no new order behind the mass cancel.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from c_engine import EventType, Side
from ml.features import IncrementalFeatures
from strategies.interface import OrderUpdate, PublicTrade, Trading
from strategies.makers import MakerParams, Quotes, QuotingStrategy
from strategies.registry import StrategyError, register_strategy

from .engine_env import EngineEnvConfig, fill_observation, observation_extras
from .policy import OnnxPolicy, env_config_from_json

__all__ = ["RlMaker", "RlMakerParams", "register"]

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_ACK, _FILL, _CANCELED, _MODIFIED = (int(EventType.ACK), int(EventType.FILL), int(EventType.CANCELED),
                                     int(EventType.MODIFIED))  # fmt: skip


@dataclass(frozen=True)
class RlMakerParams(MakerParams):
    #: requote at once on each decision (the decision timer paces the quotes)
    quote_interval_s: float = 0.0
    #: seconds between two decisions; 0: the env's step the model was trained at
    decision_interval_s: float = 0.0
    #: decisions per horizon for the observation's time left; 0: the model's ``horizon_steps``
    horizon_steps: float = 0.0


class RlMaker(QuotingStrategy):
    """See the module docstring. ``policy`` must be an engine-env export."""

    name = "rl"
    #: every book change updates the features, as every BOOK_DELTA does in the env
    book_updates = "all"

    def __init__(self, params: RlMakerParams, policy: OnnxPolicy, config: EngineEnvConfig | None = None) -> None:
        super().__init__(params)
        meta = policy.metadata
        if meta.get("env", "engine") != "engine":
            raise ValueError(
                f"the policy was trained on the {meta.get('env')!r} env; this strategy runs engine-env ones"
            )
        if config is None:
            text = meta.get("env_config")
            config = env_config_from_json(text) if text else EngineEnvConfig()
        spec = config.feature_spec
        if "feature_spec_hash" in meta and meta["feature_spec_hash"] != spec.spec_hash():
            raise ValueError(f"the policy's features ({meta['feature_spec_hash']}) are not {spec.spec_hash()}")
        n_obs = spec.width + 6
        if policy.n_obs != n_obs:
            raise ValueError(f"the policy takes {policy.n_obs} inputs, the observation has {n_obs}")
        self.p = params
        self.policy = policy
        self.config = config
        self.horizon = int(params.horizon_steps) or config.horizon_steps
        # the env step's data time (a model exported before the key existed: the engine env's flow step)
        step_ns = int(meta.get("step_ns", config.flow_commands_per_step * config.flow_ts_step_ns))
        step_s = step_ns / 1e9
        self.decision_interval_ns = int(round((params.decision_interval_s or step_s) * 1e9))
        self.features = IncrementalFeatures(spec)
        self._window: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._obs = np.zeros(n_obs, dtype=np.float32)
        #: best bid + best ask (ticks) of the book, own quotes included; the last defined (0: never)
        self.mid2 = 0
        # own quote per side (0: bid, 1: ask), as the env keeps it: engine order id (0: none), price, open qty
        self._oid = [0, 0]
        self._price = [0, 0]
        self._open = [0, 0]
        self._target = Quotes(None, None, 0, 0)
        self._next_ns = 0
        #: decisions taken; the latest observation and quote (offsets in ticks, size in lots)
        self.decisions = 0
        self.last_obs: np.ndarray | None = None
        self.last_quote: tuple[float, float, int] | None = None
        #: when set to a list, each decision's duration (features + observation + inference + quote), ns
        self.decision_ns: list[int] | None = None

    # --- what the interface shows -> the features, the mid, the own-quote state ------------------------------

    def on_start(self, trading: Trading) -> None:
        super().on_start(trading)
        self._next_ns = trading.now_ns()
        trading.set_timer(self._next_ns)

    def on_book(self, trading: Trading, symbol_id: int) -> None:
        if symbol_id == self.sid:
            self.feed_book(trading)

    def on_trade(self, trading: Trading, trade: PublicTrade) -> None:
        if trade.symbol_id == self.sid:
            self.features.on_trade(trade.aggressor, trade.price, trade.qty, trading.now_ns())

    def on_order(self, trading: Trading, update: OrderUpdate) -> None:
        if update.symbol_id == self.sid and update.order_id:
            self.on_own_event(update.type, update.order_id, update.side, update.price, update.leaves)
        super().on_order(trading, update)

    def on_own_event(self, typ: int, order_id: int, side: int, price: int, leaves: int) -> None:
        """One own order event: the features' queue proxy and the own-quote state (the env's rules)."""
        f = self.features
        s = 0 if side == _BUY else 1
        if typ == _ACK:
            if price:
                self._oid[s], self._price[s], self._open[s] = order_id, price, leaves
                f.on_own_ack(order_id, side, price, leaves)
        elif typ == _FILL or typ == _CANCELED:
            if order_id == self._oid[s]:
                self._open[s] = leaves
                if leaves == 0:
                    self._oid[s] = 0
            f.on_own_fill(order_id, leaves)
        elif typ == _MODIFIED:
            if order_id == self._oid[s]:
                self._price[s], self._open[s] = price, leaves
                if leaves == 0:
                    self._oid[s] = 0
            f.on_own_modified(order_id, price, leaves)

    def feed_book(self, trading: Trading) -> None:
        """Feeds the levels that changed since the last call to the features; updates the mid."""
        book = trading.book(self.sid)
        f = self.features
        for side, levels, old in ((_BUY, book.bids, self._window[0]), (_SELL, book.asks, self._window[1])):
            for p in [p for p in old if p not in levels]:
                f.on_book_delta(side, p, 0)
                del old[p]
            for p, level in levels.items():
                q = level[0]
                if old.get(p) != q:
                    f.on_book_delta(side, p, q)
                    old[p] = q
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            self.mid2 = bid + ask

    # --- decisions -------------------------------------------------------------------------------------------

    def on_timer(self, trading: Trading, now_ns: int) -> None:
        if now_ns >= self._next_ns:
            self.decide(trading, now_ns)
            self._next_ns += self.decision_interval_ns
            if self._next_ns <= now_ns:  # late (a slow timer): the next one a whole interval on
                self._next_ns = now_ns + self.decision_interval_ns
        else:
            self.requote(trading)
        trading.set_timer(self._next_ns)

    def observe(self, trading: Trading, now_ns: int) -> np.ndarray:
        """The env's observation for this market state: features sampled at ``now_ns``, then inventory, time
        left and the own quotes (``engine_env.observation_extras``)."""
        row = self.features.sample(now_ns)
        bid = self._price[0] if self._oid[0] else 0
        ask = self._price[1] if self._oid[1] else 0
        extras = observation_extras(self.config, self.position(trading), self.decisions % self.horizon,
                                    self.mid2 / 2.0, bid, self._open[0], ask, self._open[1])  # fmt: skip
        return fill_observation(self._obs, row, extras)

    def decide(self, trading: Trading, now_ns: int) -> None:
        """One decision: observe, run the policy, set the targets, requote (nothing before the book has a mid)."""
        if not self.mid2:
            return
        started = time.perf_counter_ns() if self.decision_ns is not None else 0
        obs = self.observe(trading, now_ns)
        quote = self.policy.quote(obs)
        bid_off, ask_off, size = float(quote[0]), float(quote[1]), int(round(float(quote[2])))
        self.decisions += 1
        self.last_obs, self.last_quote = obs, (bid_off, ask_off, size)
        position = self.position(trading)
        mid = self.mid2 / 2.0
        bid_size = min(size, self.max_position_lots - position)
        ask_size = min(size, self.max_position_lots + position)
        if not (math.isfinite(bid_off) and math.isfinite(ask_off)):
            bid_size = ask_size = 0  # a broken model quotes nothing rather than anything
        self._target = Quotes(mid - bid_off, mid + ask_off, bid_size, ask_size)
        self.requote(trading)
        if self.decision_ns is not None:
            self.decision_ns.append(time.perf_counter_ns() - started)

    def quotes(self, trading: Trading, fair: float, position: int) -> Quotes:
        return self._target


def _build(params: MakerParams, model: str | None = None) -> RlMaker:
    """``proptrade strategy run|backtest --strategy rl --model M``."""
    assert isinstance(params, RlMakerParams)
    if not model:
        raise StrategyError("strategy 'rl' needs --model (an ONNX policy: proptrade rl train|export)")
    return RlMaker(params, OnnxPolicy(model))


def register() -> None:
    """The ``proptrade.strategies`` entry point: the RL policy joins the strategies by name."""
    register_strategy("rl", _build, RlMakerParams, {"model": "the policy (ONNX, proptrade rl train|export)"})
