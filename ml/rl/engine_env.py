"""``EngineMarketEnv``: a market-making gymnasium environment whose market is the in-process C engine.

The agent quotes a bid and an ask into ``c_engine.Engine`` against the seeded synthetic order flow of
``c_engine.flow.SyntheticFlow``; docs/RL.md states the contract (observation table, action scaling, reward,
episode end) and the figures. Choices, and why:

- **One engine call per step.** The flow is drawn in blocks of ``flow_block_steps`` steps (one
  ``SyntheticFlow.next_batch`` costs ~200 us whatever its length, so one per step would cap the env near 4 k
  steps/s). Each step copies the agent's commands (at most one per side) and the step's slice of the block into
  one preallocated command buffer and runs it with a single ``Engine.execute_batch``: the agent's quotes go in
  first, against the book it observed, then ``flow_commands_per_step`` flow commands trade against them.
- **Commands and events as int64 words.** A command or event is 64 bytes, eight little-endian int64 words;
  writing and reading words (a packed header word, then order id, price, qty, ...) is a few list operations,
  where numpy's structured field access costs about a microsecond per field on arrays this small.
- **The flow learns what rests once per block.** ``SyntheticFlow.observe`` (which orders its cancels may target)
  is fed the block's events when the next block is drawn, without the agent's events: the flow can never cancel
  the agent's orders. Cancels drawn for a block therefore target orders that rested when it was drawn; those
  filled or cancelled since are rejected (UNKNOWN_ORDER) and change nothing. The same seed gives the same stream.
- **Client ids.** The flow's clients are 1..``flow_clients``; the agent's id must lie outside that range and
  below ``max_clients`` (checked), so no flow command can ever act for the agent.
- **Quotes are post-only limits at most half a tick from the mid inwards.** Offsets are measured from the mid
  of the book the agent saw (``(best bid + best ask) / 2``; the last one when a side is empty) and are at least
  ``min_offset_ticks`` = 0.5, so the bid is at most ``best ask - 1`` tick and never takes; post-only makes the
  engine refuse any quote that would. A side whose quote is unchanged keeps its order (and its queue place);
  a changed one is modified in place (a price change or a size increase loses the place, as the engine rules).
- **Sizes are cut so the engine's position limit never rejects.** A bid's size is at most ``max_position_lots -
  inventory`` (the engine counts resting orders against the limit), an ask's at most ``max_position_lots +
  inventory``; a side with no room is cancelled.
- **Accounting is ``strategies.accounting``.** Every own FILL is applied to a ``PositionState``; its cash and
  position equal the engine's ``position()`` for the agent exactly (tested). The reward is the step's change of
  the mark-to-mid PnL, split into spread capture and inventory PnL, less fees and an inventory penalty; the
  sum of an episode's rewards is the documented decomposition (tested).
- **Features at steps.** ``ml.features.IncrementalFeatures`` sees every BOOK_DELTA and TRADE and the agent's own
  order events, and is sampled once per step (after the step's batch): horizons counted in samples count steps.
  An undefined feature (NaN) is 0 in the observation. The entries after the features come from
  ``observation_extras`` and the row from ``fill_observation``, which the RL strategy (``ml.rl.strategy``)
  calls too, so live and backtest decisions see the observation the agent was trained on.
- **Episode end.** ``truncated`` at ``horizon_steps``; ``terminated`` when the engine's loss kill switch has
  fired for the agent (``max_loss``) or the inventory reaches ``max_position_lots``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from c_engine import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    CancelReason,
    ClientLimits,
    Engine,
    EngineConfig,
    EventType,
    Flag,
    Liquidity,
    Op,
    OrderType,
    RejectReason,
    Side,
    SymbolConfig,
    Tif,
)
from c_engine.flow import SyntheticFlow
from ml.features import FeatureSpec, IncrementalFeatures
from strategies.accounting import Instrument, PositionState

__all__ = ["OBS_EXTRA_NAMES", "EngineEnvConfig", "EngineMarketEnv", "fill_observation", "observation_extras"]

F32 = npt.NDArray[np.float32]

#: the observation bounds: any finite float32 (features are unbounded; non-finite values never occur)
_F32_MAX = float(np.finfo(np.float32).max)

#: the observation's entries after the features, in order (docs/RL.md, "Observation")
OBS_EXTRA_NAMES = (
    "inventory_frac",
    "time_left_frac",
    "bid_offset_frac",
    "ask_offset_frac",
    "bid_open_frac",
    "ask_open_frac",
)

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_ACK, _REJECT, _FILL = int(EventType.ACK), int(EventType.REJECT), int(EventType.FILL)
_CANCELED, _MODIFIED = int(EventType.CANCELED), int(EventType.MODIFIED)
_CXL_KILL, _REJ_KILL = int(CancelReason.KILL_SWITCH), int(RejectReason.KILL_SWITCH)
#: the engine is asked whether its loss kill switch fired once the agent's PnL at the last trade price is below
#: this fraction of -max_loss after a step, or the agent saw a kill-switch cancel or reject
KILL_WATCH_FRACTION = 0.5
_BOOK_DELTA, _TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)
_MAKER = int(Liquidity.MAKER)
_OP_NEW = int(Op.NEW)
# Packed first words of the agent's commands: op | side << 8 | symbol << 16 | client << 32 | type << 48 |
# tif << 56; the second word is stp | flags << 8 (see c_engine/include/pt_wire.h).
_NEW_FLAGS = (int(Flag.POST_ONLY) | int(Flag.HAS_PRICE)) << 8
_MODIFY_FLAGS = (int(Flag.HAS_PRICE) | int(Flag.HAS_QTY)) << 8
_LIMIT_GTC = int(OrderType.LIMIT) << 48 | int(Tif.GTC) << 56
#: writes one command's eight words into a buffer at a byte offset
_PACK_COMMAND = struct.Struct("<8q").pack_into


@dataclass(frozen=True)
class EngineEnvConfig:
    """Everything that shapes an episode. Units are in the names; docs/RL.md explains each choice."""

    #: steps per episode (truncated after the last)
    horizon_steps: int = 1000
    #: flow commands executed per step, after the agent's
    flow_commands_per_step: int = 8
    #: steps of flow drawn at once (one next_batch per block)
    flow_block_steps: int = 256
    #: flow commands run before the first step, so the book has depth
    warmup_commands: int = 2000
    #: time between two flow commands (ns); sets the features' time horizons against steps
    flow_ts_step_ns: int = 1_000_000
    #: the flow's clients are 1..flow_clients
    flow_clients: int = 8
    #: the flow's starting mid, ticks
    start_mid_ticks: int = 10_000
    #: the agent's client id: outside 1..flow_clients, below engine_max_clients
    agent_client_id: int = 100
    #: quote offsets from the mid, ticks: the action's range (fills fall off steeply with the offset, about
    #: e^-5 a tick on the default flow: a wider range is mostly quotes that never fill)
    min_offset_ticks: float = 0.5
    max_offset_ticks: float = 4.5
    #: quote size range, lots
    min_size_lots: int = 1
    max_size_lots: int = 20
    #: the engine's max_position for the agent; reaching it ends the episode
    max_position_lots: int = 200
    #: the engine's loss kill switch (ticks x lots at pnl_unit 1); its firing ends the episode
    max_loss: int = 100_000
    #: running penalty per step: inventory_penalty x inventory^2 (currency per lot^2)
    inventory_penalty: float = 0.0
    #: every reward term is multiplied by this
    reward_scale: float = 1.0
    #: the instrument: a tick on a lot is tick_size x lot_size currency; fees in bps of notional
    tick_size: float = 1.0
    lot_size: float = 1.0
    maker_fee_bps: float = 0.0
    #: "box": a continuous Box in [-1, 1]^3; "discrete": MultiDiscrete of the same ranges on a grid
    action_kind: Literal["box", "discrete"] = "box"
    #: grid sizes of the discrete variant: offsets per side, sizes
    discrete_offsets: int = 9
    discrete_sizes: int = 5
    #: the features (sampled once per step; time horizons suit flow_ts_step_ns x flow_commands_per_step)
    feature_spec: FeatureSpec = field(
        default_factory=lambda: FeatureSpec(
            momentum_horizons_ns=(100_000_000, 1_000_000_000, 4_000_000_000),
            trade_window_ns=1_000_000_000,
            rate_tau_ns=100_000_000,
        )
    )
    #: engine capacities (a fresh engine per episode: small ones start fast); max_orders 0: the episode's
    #: command count rounded up to a power of two, which no episode can exhaust
    engine_max_orders: int = 0
    engine_max_levels_per_side: int = 1 << 10
    engine_max_clients: int = 256

    def __post_init__(self) -> None:
        for name in ("horizon_steps", "flow_commands_per_step", "flow_block_steps", "flow_ts_step_ns",
                     "flow_clients", "start_mid_ticks", "min_size_lots", "max_position_lots",
                     "discrete_offsets", "discrete_sizes"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.warmup_commands < 0 or self.max_loss < 0 or self.inventory_penalty < 0:
            raise ValueError("warmup_commands, max_loss and inventory_penalty must be >= 0")
        if not self.flow_clients < self.agent_client_id < self.engine_max_clients:
            raise ValueError(
                f"agent_client_id {self.agent_client_id} must be above the flow's clients 1..{self.flow_clients}"
                f" and below engine_max_clients {self.engine_max_clients}"
            )
        if not 0.5 <= self.min_offset_ticks < self.max_offset_ticks:
            raise ValueError("need 0.5 <= min_offset_ticks < max_offset_ticks (a quote never reaches the far side)")
        if self.max_size_lots < self.min_size_lots:
            raise ValueError("max_size_lots must be >= min_size_lots")
        if self.action_kind not in ("box", "discrete"):
            raise ValueError(f"action_kind must be 'box' or 'discrete', got {self.action_kind!r}")


class EngineMarketEnv(gym.Env[F32, Any]):
    """A market maker on the C engine against synthetic flow (docs/RL.md has the full contract).

    ``reset(seed=...)`` builds a fresh engine, flow and feature state from ``np_random``; ``step(action)``
    requotes, runs one batch and returns (observation, reward, terminated, truncated, info).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, config: EngineEnvConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or EngineEnvConfig()
        self.n_features = cfg.feature_spec.width
        n_obs = self.n_features + len(OBS_EXTRA_NAMES)
        self.observation_space = gym.spaces.Box(-_F32_MAX, _F32_MAX, shape=(n_obs,), dtype=np.float32)
        self.action_space: gym.spaces.Space[Any]
        if cfg.action_kind == "box":
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
        else:
            self.action_space = gym.spaces.MultiDiscrete([cfg.discrete_offsets, cfg.discrete_offsets,
                                                          cfg.discrete_sizes])  # fmt: skip
        self._offset_grid = np.linspace(cfg.min_offset_ticks, cfg.max_offset_ticks, cfg.discrete_offsets).tolist()
        self._size_grid = [
            round(x) for x in np.linspace(cfg.min_size_lots, cfg.max_size_lots, cfg.discrete_sizes).tolist()
        ]
        self.instrument = Instrument("SYN", cfg.tick_size, cfg.lot_size, maker_fee_bps=cfg.maker_fee_bps)
        self._tlv = self.instrument.tick_lot_value
        self._half_tlv = self._tlv / 2.0
        # the Box action's scaling, precomputed (x 0.5 is exact: the same values as decode_action's)
        self._box = cfg.action_kind == "box"
        self._off_lo = cfg.min_offset_ticks
        self._off_half = 0.5 * (cfg.max_offset_ticks - cfg.min_offset_ticks)
        self._size_lo = cfg.min_size_lots
        self._size_half = 0.5 * (cfg.max_size_lots - cfg.min_size_lots)
        #: a step's rows in a block: two for the agent's commands, then the flow's
        self._n_flow = cfg.flow_commands_per_step
        self._stride = self._n_flow + 2
        self._kill_watch = KILL_WATCH_FRACTION * cfg.max_loss
        self._pnl_unit = 1  # the symbol's pnl_unit: the engine's PnL is in these units of ticks x lots
        self._obs = np.zeros(n_obs, dtype=np.float32)
        self._engine: Engine | None = None
        self._flow: SyntheticFlow | None = None
        self.features: IncrementalFeatures | None = None
        self.account = PositionState(self.instrument)
        self._reset_state()

    # --- episode state --------------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self.t = 0
        self.mid2 = 2 * self.config.start_mid_ticks  #: best bid + best ask (ticks), the last defined
        self._killed = False
        self._cloid = 0
        # own orders per side (index 0: bid, 1: ask): engine order id (0: none), price, open qty
        self._oid = [0, 0]
        self._price = [0, 0]
        self._open = [0, 0]
        self._block_cmds: npt.NDArray[np.void] = np.zeros(0, dtype=COMMAND_DTYPE)
        self._block_buf = memoryview(bytearray())
        self._first_ts: list[int] = []  # per step of the block: its first and last flow command's time
        self._last_ts: list[int] = []
        self._block_steps = 0
        self._block_pos = 0
        self._block_events: list[npt.NDArray[np.int64]] = []
        self._kill_due = False  # the engine is asked whether the kill switch fired after this step
        self._ts = 1
        # the touch (ticks): 0 a side known to be empty, -1 not known (the engine is asked)
        self._best_bid = -1
        self._best_ask = -1
        self.account = PositionState(self.instrument)

    @property
    def engine(self) -> Engine:
        """The episode's engine (after ``reset``)."""
        if self._engine is None:
            raise RuntimeError("call reset() first")
        return self._engine

    @property
    def inventory(self) -> int:
        """The agent's position, lots."""
        return self.account.position

    @property
    def mid_ticks(self) -> float:
        """The mid the next quotes are set from, ticks."""
        return self.mid2 / 2.0

    @property
    def steps_left(self) -> int:
        return self.config.horizon_steps - self.t

    def pnl(self) -> float:
        """The agent's net PnL marked at the mid (currency): realised + unrealised - fees."""
        return self.account.net(self.mid_ticks)

    # --- gymnasium --------------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[F32, dict[str, Any]]:
        super().reset(seed=seed)
        cfg = self.config
        self._reset_state()
        # every command adds at most one resting order: a pool of the episode's command count never runs out,
        # and a small pool starts fast (pt_engine_create touches all of it)
        commands = cfg.warmup_commands + (cfg.horizon_steps + cfg.flow_block_steps) * cfg.flow_commands_per_step
        max_orders = cfg.engine_max_orders or max(4096, 1 << (commands - 1).bit_length())
        engine = Engine(EngineConfig(max_orders=max_orders, max_levels_per_side=cfg.engine_max_levels_per_side,
                                     max_symbols=1, max_clients=cfg.engine_max_clients))  # fmt: skip
        sid = engine.add_symbol(SymbolConfig("SYN", tick_size=cfg.tick_size, lot_size=cfg.lot_size))
        engine.set_client_limits(cfg.agent_client_id, ClientLimits(max_position=cfg.max_position_lots,
                                                                   max_loss=cfg.max_loss))  # fmt: skip
        self._engine = engine
        self._sid = sid
        self._head = [_OP_NEW | _BUY << 8 | sid << 16 | cfg.agent_client_id << 32 | _LIMIT_GTC,
                      _OP_NEW | _SELL << 8 | sid << 16 | cfg.agent_client_id << 32 | _LIMIT_GTC]  # fmt: skip
        self._modify_head = [int(Op.MODIFY) | sid << 16 | cfg.agent_client_id << 32] * 2
        self._cancel_head = int(Op.CANCEL) | sid << 16 | cfg.agent_client_id << 32
        flow_seed = int(self.np_random.integers(0, 2**63 - 1))
        self._flow = SyntheticFlow(sid, seed=flow_seed, mid=cfg.start_mid_ticks, n_clients=cfg.flow_clients)
        self.features = IncrementalFeatures(cfg.feature_spec, own_client=cfg.agent_client_id)
        if cfg.warmup_commands:
            warm = self._flow.next_batch(cfg.warmup_commands, self._ts, cfg.flow_ts_step_ns)
            self._ts += cfg.warmup_commands * cfg.flow_ts_step_ns
            self._flow.observe(engine.execute_batch(warm))
            # the features start from the warmed book, level by level (feeding them the warm-up's events one
            # by one cost two thirds of a reset)
            for name, side in (("bids", _BUY), ("asks", _SELL)):
                for level in engine.l2(sid)[name]:
                    self.features.on_book_delta(side, level.price, level.qty)
        self._set_mid()
        row = self.features.sample(self._ts - cfg.flow_ts_step_ns)
        return self._observe(row), {"mid_ticks": self.mid_ticks}

    def step(self, action: Any) -> tuple[F32, float, bool, bool, dict[str, Any]]:
        engine, feats = self._engine, self.features
        if engine is None or feats is None:
            raise RuntimeError("call reset() first")
        cfg = self.config
        if self._box:  # the Box scaling inline, its constants computed once (docs/RL.md, "Action")
            if type(action) is np.ndarray and action.shape == (3,):
                a0, a1, a2 = action.tolist()
            else:
                a0, a1, a2 = np.asarray(action, dtype=np.float64).reshape(3).tolist()
            if a0 != a0 or a1 != a1 or a2 != a2:  # NaN (an infinity clips to the range's end)
                raise ValueError(f"action must be finite, got {action!r}")
            a0 = -1.0 if a0 < -1.0 else 1.0 if a0 > 1.0 else a0
            a1 = -1.0 if a1 < -1.0 else 1.0 if a1 > 1.0 else a1
            a2 = -1.0 if a2 < -1.0 else 1.0 if a2 > 1.0 else a2
            lo, half = self._off_lo, self._off_half
            bid_off, ask_off = lo + (a0 + 1.0) * half, lo + (a1 + 1.0) * half
            size = round(self._size_lo + (a2 + 1.0) * self._size_half)
        else:
            bid_off, ask_off, size = self.decode_action(action)
        mid2_before = self.mid2
        if self._block_pos >= self._block_steps:
            self._next_block()
        pos = self._block_pos
        self._block_pos = pos + 1
        base = pos * self._stride + 2  # the step's first flow row; the agent's rows go just before it
        k = self._quote(bid_off, ask_off, size, self._first_ts[pos], base)
        events = engine.execute_batch(self._block_cmds[base - k : base + self._n_flow])
        ev_words = np.frombuffer(events, dtype=np.int64).reshape(-1, 8)  # cheaper than a structured view
        self._block_events.append(ev_words)
        account = self.account
        fees_before = account.fees
        spread_capture = self._apply_events(ev_words.tolist())
        if self._best_bid < 0 or self._best_ask < 0:
            self._set_mid()
        elif self._best_bid and self._best_ask:
            self.mid2 = self._best_bid + self._best_ask
        self.t = t = self.t + 1
        reward, terminated, info = self._settle(spread_capture, fees_before, mid2_before)
        truncated = t >= cfg.horizon_steps and not terminated
        row = feats.sample(self._last_ts[pos])
        return self._observe(row), reward, terminated, truncated, info

    def _settle(
        self, spread_capture: float, fees_before: float, mid2_before: int
    ) -> tuple[float, bool, dict[str, Any]]:
        """A step's reward (docs/RL.md: spread capture + inventory PnL - fees - inventory penalty, scaled), whether
        the episode ended at the position or loss limit, and its info; after the step's events were applied."""
        cfg, account = self.config, self.account
        q = account.position
        inventory_pnl = q * (self.mid2 - mid2_before) * self._half_tlv
        fees = account.fees - fees_before
        penalty = cfg.inventory_penalty * q * q
        reward = cfg.reward_scale * (spread_capture + inventory_pnl - fees - penalty)
        if self._kill_due and not self._killed:
            self._check_kill()
        terminated = self._killed or abs(q) >= cfg.max_position_lots
        info = {
            "spread_capture": spread_capture,
            "inventory_pnl": inventory_pnl,
            "fees": fees,
            "penalty": penalty,
            "inventory": q,
            "mid_ticks": self.mid2 / 2.0,
        }
        return float(reward), bool(terminated), info

    def _check_kill(self) -> None:
        """Asks the engine whether its loss kill switch has fired for the agent."""
        self._kill_due = False
        self._killed = self.engine.position(self.config.agent_client_id, self._sid).killed

    # --- actions ------------------------------------------------------------------------------------------------

    def decode_action(self, action: Any) -> tuple[float, float, int]:
        """The quote an action asks for: offsets in ticks, size in lots (docs/RL.md, "Action")."""
        cfg = self.config
        if cfg.action_kind == "box":
            a = action.tolist() if isinstance(action, np.ndarray) and action.shape == (3,) else None
            if a is None:
                a = np.asarray(action, dtype=np.float64).reshape(3).tolist()
            a0, a1, a2 = (-1.0 if x < -1.0 else 1.0 if x > 1.0 else x for x in a)
            if not (math.isfinite(a0) and math.isfinite(a1) and math.isfinite(a2)):
                raise ValueError(f"action must be finite, got {action!r}")
            lo, span = cfg.min_offset_ticks, cfg.max_offset_ticks - cfg.min_offset_ticks
            size = round(cfg.min_size_lots + (a2 + 1.0) * 0.5 * (cfg.max_size_lots - cfg.min_size_lots))
            return lo + (a0 + 1.0) * 0.5 * span, lo + (a1 + 1.0) * 0.5 * span, size
        i, j, s = (int(x) for x in np.asarray(action).reshape(3).tolist())
        return self._offset_grid[i], self._offset_grid[j], self._size_grid[s]

    def encode_quote(self, bid_offset_ticks: float, ask_offset_ticks: float, size_lots: float) -> Any:
        """The action closest to a quote (clipped to the action's range): what the analytic baselines send."""
        cfg = self.config
        if cfg.action_kind == "box":
            lo, span = cfg.min_offset_ticks, cfg.max_offset_ticks - cfg.min_offset_ticks
            size_span = max(cfg.max_size_lots - cfg.min_size_lots, 1)
            a = [2.0 * (bid_offset_ticks - lo) / span - 1.0, 2.0 * (ask_offset_ticks - lo) / span - 1.0,
                 2.0 * (size_lots - cfg.min_size_lots) / size_span - 1.0]  # fmt: skip
            return np.clip(np.array(a, dtype=np.float32), -1.0, 1.0)
        grid = np.array(self._offset_grid)
        sizes = np.array(self._size_grid)
        return np.array([int(np.abs(grid - bid_offset_ticks).argmin()), int(np.abs(grid - ask_offset_ticks).argmin()),
                         int(np.abs(sizes - size_lots).argmin())], dtype=np.int64)  # fmt: skip

    def _quote(self, bid_off: float, ask_off: float, size: int, ts_ns: int, base: int) -> int:
        """Writes the agent's commands for this step into the block rows just before row ``base`` and returns
        how many."""
        rows = self._quote_rows(bid_off, ask_off, size, ts_ns)
        k = len(rows)
        if k:
            pack, buf = _PACK_COMMAND, self._block_buf
            at = (base - k) * 64
            for r in rows:
                pack(buf, at, *r)
                at += 64
        return k

    def _quote_rows(self, bid_off: float, ask_off: float, size: int, ts_ns: int) -> list[tuple[int, ...]]:
        """The agent's commands for a quote, as rows of eight int64 words (at most one per side): a side whose
        quote is unchanged sends nothing, a side without room under the position limit is cancelled."""
        if self._killed:
            return []
        q = self.account.position
        mid2 = self.mid2
        limit = self.config.max_position_lots
        # floor((mid2 - 2 off) / 2) and ceil((mid2 + 2 off) / 2): off >= 0.5 keeps them off the far side
        bid = math.floor((mid2 - 2.0 * bid_off) / 2.0)
        ask = math.ceil((mid2 + 2.0 * ask_off) / 2.0)
        bid_qty = size if size < limit - q else limit - q
        ask_qty = size if size < limit + q else limit + q
        if bid < 1:
            bid_qty = 0
        if ask < 1:
            ask_qty = 0
        rows: list[tuple[int, ...]] = []
        for s, price, qty in ((0, bid, bid_qty), (1, ask, ask_qty)):
            oid = self._oid[s]
            if oid:
                if qty <= 0:
                    rows.append((self._cancel_head, 0, ts_ns, oid, 0, 0, 0, 0))
                elif price != self._price[s] or qty != self._open[s]:
                    rows.append((self._modify_head[s], _MODIFY_FLAGS, ts_ns, oid, 0, price, qty, 0))
            elif qty > 0:
                self._cloid += 1
                rows.append((self._head[s], _NEW_FLAGS, ts_ns, 0, self._cloid, price, qty, 0))
        return rows

    # --- the market -------------------------------------------------------------------------------------------------

    def _next_block(self) -> None:
        """Draws the next block of flow, after telling the flow what rests (without the agent's orders).

        The block is laid out step by step, each step's flow commands after two free rows where the step's
        agent commands are written: a step runs one contiguous slice of the block, nothing copied."""
        assert self._flow is not None
        cfg = self.config
        if self._block_events:
            # only what observe reads (ACKs, FILLs and CANCELs), and none of the agent's: a mask on the first
            # word is far cheaper than on the structured array's fields
            w = np.concatenate(self._block_events)
            head = w[:, 0]
            typ = head & 0xFF
            keep = ((typ == _ACK) | (typ == _FILL) | (typ == _CANCELED)) & (
                (head >> 32) & 0xFFFF != cfg.agent_client_id
            )
            self._flow.observe(w[keep].reshape(-1).view(EVENT_DTYPE))
            self._block_events = []
        steps, n = cfg.flow_block_steps, self._n_flow
        block = self._flow.next_batch(steps * n, self._ts, cfg.flow_ts_step_ns)
        self._ts += steps * n * cfg.flow_ts_step_ns
        words = np.zeros((steps, n + 2, 8), dtype=np.int64)
        words[:, 2:] = block.view(np.int64).reshape(steps, n, 8)
        self._block_cmds = words.reshape(-1).view(COMMAND_DTYPE)
        self._block_buf = words.reshape(-1).data.cast("B")
        ts = block["ts_ns"].reshape(steps, n)
        self._first_ts = ts[:, 0].tolist()  # read per step: a list index is cheaper than a numpy one
        self._last_ts = ts[:, -1].tolist()
        self._block_steps = steps
        self._block_pos = 0

    def _apply_events(self, rows: list[list[int]]) -> float:
        """Feeds a batch's events (rows of eight words) to the features, the own-order state and the
        accounting; returns the spread capture of the agent's fills against the mid the quotes were set from
        (currency). Also says whether the engine must be asked about the kill switch (``_kill_due``)."""
        feats = self.features
        assert feats is not None
        agent = self.config.agent_client_id
        on_delta, on_trade = feats.on_book_delta, feats.on_trade
        mid = self.mid2 / 2.0
        capture = 0.0
        last_trade = 0
        kill_seen = False
        best_bid, best_ask = self._best_bid, self._best_ask
        # one tolist of the whole batch and a type test per event: cheaper than numpy masks on ~20 rows
        for w, _seq, ts, oid, _ref, price, qty, leaves in rows:
            typ = w & 0xFF
            side = (w >> 8) & 0xFF
            if typ == _BOOK_DELTA:
                on_delta(side, price, qty)
                # the touch, kept here so the mid costs no engine call: a level that appears inside a known
                # touch moves it; the touch level emptying makes that side unknown (-1) until the engine is asked
                if side == _BUY:
                    if qty:
                        if best_bid >= 0 and price > best_bid:
                            best_bid = price
                    elif price == best_bid:
                        best_bid = -1
                elif qty:
                    if best_ask >= 0 and (best_ask == 0 or price < best_ask):
                        best_ask = price
                elif price == best_ask:
                    best_ask = -1
            elif typ == _TRADE:
                on_trade(side, price, qty, ts)
                last_trade = price
            elif (w >> 32) & 0xFFFF != agent:
                continue
            elif typ == _FILL:
                s = 0 if side == _BUY else 1
                self.account.apply(side, price, qty, (w >> 48) & 0xFF == _MAKER)
                capture += (mid - price if side == _BUY else price - mid) * qty
                feats.on_own_fill(oid, leaves)
                if oid == self._oid[s]:
                    self._open[s] = leaves
                    if leaves == 0:
                        self._oid[s] = 0
            elif typ == _ACK:
                if (w >> 48) & 0xFF == _OP_NEW and price:
                    s = 0 if side == _BUY else 1
                    self._oid[s], self._price[s], self._open[s] = oid, price, leaves
                    feats.on_own_ack(oid, side, price, leaves)
            elif typ == _MODIFIED:
                s = 0 if side == _BUY else 1
                if oid == self._oid[s]:
                    self._price[s], self._open[s] = price, leaves
                    if leaves == 0:
                        self._oid[s] = 0
                feats.on_own_modified(oid, price, leaves)
            elif typ == _CANCELED:
                s = 0 if side == _BUY else 1
                if oid == self._oid[s] and leaves == 0:
                    self._oid[s] = 0
                    self._open[s] = 0
                feats.on_own_canceled(oid, leaves)
                kill_seen = kill_seen or (w >> 48) & 0xFF == _CXL_KILL
            elif typ == _REJECT:
                kill_seen = kill_seen or (w >> 48) & 0xFF == _REJ_KILL
        self._best_bid, self._best_ask = best_bid, best_ask
        if last_trade:
            # the engine's PnL ((cash + position x last price) x pnl_unit) after the batch: past a fraction of
            # the limit, the engine is asked (it may have dipped below the limit inside the batch)
            account = self.account
            pnl = (account.cash_ticks + account.position * last_trade) * self._pnl_unit
            if pnl < -self._kill_watch:
                kill_seen = True
        if kill_seen and self.config.max_loss:
            self._kill_due = True
        return capture * self._tlv

    def _set_mid(self) -> None:
        """The mid from the touch; the engine is asked only when a side of the touch emptied."""
        if self._best_bid < 0 or self._best_ask < 0:
            bid, ask = self.engine.l1(self._sid)
            self._best_bid = bid.price if bid is not None else 0
            self._best_ask = ask.price if ask is not None else 0
        if self._best_bid > 0 and self._best_ask > 0:
            self.mid2 = self._best_bid + self._best_ask

    def _observe(self, row: npt.NDArray[np.float64]) -> F32:
        bid = self._price[0] if self._oid[0] else 0
        ask = self._price[1] if self._oid[1] else 0
        extras = observation_extras(self.config, self.account.position, self.t, self.mid2 / 2.0,
                                    bid, self._open[0], ask, self._open[1])  # fmt: skip
        return fill_observation(self._obs, row, extras)


def observation_extras(
    config: EngineEnvConfig,
    position: int,
    steps_taken: int,
    mid_ticks: float,
    bid_price: int,
    bid_open: int,
    ask_price: int,
    ask_open: int,
) -> tuple[float, float, float, float, float, float]:
    """The observation's entries after the features (``OBS_EXTRA_NAMES``, docs/RL.md): inventory, time left and
    the resting quotes (price 0: none on that side; prices in ticks, sizes in lots). The env and the RL strategy
    (``ml.rl.strategy``) both build their observation with it."""
    max_off = config.max_offset_ticks
    return (
        position / config.max_position_lots,
        (config.horizon_steps - steps_taken) / config.horizon_steps,
        (mid_ticks - bid_price) / max_off if bid_price else 0.0,
        (ask_price - mid_ticks) / max_off if ask_price else 0.0,
        bid_open / config.max_size_lots,
        ask_open / config.max_size_lots,
    )


def fill_observation(out: F32, row: npt.NDArray[np.float64], extras: tuple[float, ...]) -> F32:
    """The observation: the feature ``row`` then ``extras``, written into ``out`` (reused: one buffer per
    caller) with every undefined (non-finite) entry 0; returns a copy."""
    nf = len(out) - len(extras)
    out[:nf] = row
    out[nf:] = extras
    np.copyto(out, 0.0, where=~np.isfinite(out))  # an undefined feature is 0 (np.nan_to_num costs 10 us)
    return out.copy()
