"""``ASMarketEnv``: the Avellaneda-Stoikov (2008) market model of ``strategies.as_model`` as a gymnasium env.

The paper's own market, so an agent's results compare with the literature and with the closed-form AS quotes
(``strategies.as_model.InventoryPolicy``) on the very same paths. Choices, and why:

- **The simulator is ``ASMarket``, unchanged.** A step quotes offsets from the mid for one ``dt``; each quote
  is hit with probability ``min(1, A exp(-k delta) dt)``, one unit per fill; then the mid moves by
  ``+-sigma sqrt(dt)``. The episode is the paper's horizon ``T / dt`` steps, then ``truncated``; nothing
  terminates it (the model has no limit), unless ``max_inventory`` is set.
- **Seeds.** ``reset(seed=s)`` seeds ``np_random`` and draws the path's PCG64 seed from it, so one seed gives one
  path, fill for fill; ``ml.rl.vec.ASVecEnv`` draws its paths the same way and reproduces this env exactly.
- **Action.** A Box in [-1, 1]^2, rescaled inside to bid and ask offsets in ``[min_offset, max_offset]`` price
  units (linearly). The default range [0, 3] holds the AS quotes of the paper's gamma 0.1 up to an inventory
  of about 2 either way (beyond, the quote nearer the mid is clipped at the mid); quoting through the mid (a
  sure fill at a loss), which the model allows, takes a config with a negative ``min_offset``. Exploring
  there taught PPO only to quote wide.
- **Accounting is the model's.** Its prices are not on a tick grid, so the PnL is ``ASMarket``'s own cash +
  inventory x mid (``ASMarket.profit``), the figure the paper reports. The reward is its change per step, split
  as in the engine env: spread capture (the offset of each fill) + inventory PnL (inventory after the fills x
  the mid's move) - ``inventory_penalty`` x inventory^2; the episode's sum is the terminal profit less the
  penalties (tested).
- **Observation.** ``(q / inventory_scale, (T - t) / T, (s - s0) / (sigma sqrt(T)))`` as float32: what the AS
  quotes depend on (inventory, time left) and where the mid is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from strategies.as_model import PAPER_MODEL, ASMarket, ModelParams

__all__ = ["AS_OBS_NAMES", "ASEnvConfig", "ASMarketEnv"]

F32 = npt.NDArray[np.float32]

#: the observation bounds: any finite float32 (features are unbounded; non-finite values never occur)
_F32_MAX = float(np.finfo(np.float32).max)

#: the observation's entries, in order (docs/RL.md)
AS_OBS_NAMES = ("inventory_scaled", "time_left_frac", "mid_move_scaled")


@dataclass(frozen=True)
class ASEnvConfig:
    """The model and the env's scaling. Units are the model's price and time units."""

    model: ModelParams = field(default_factory=lambda: PAPER_MODEL)
    #: the action's offset range, price units
    min_offset: float = 0.0
    max_offset: float = 3.0
    #: inventory is divided by this in the observation
    inventory_scale: float = 10.0
    #: running penalty per step: inventory_penalty x inventory^2
    inventory_penalty: float = 0.0
    #: every reward term is multiplied by this
    reward_scale: float = 1.0
    #: |inventory| reaching this terminates the episode; None: never
    max_inventory: int | None = None

    def __post_init__(self) -> None:
        if not (
            math.isfinite(self.min_offset) and math.isfinite(self.max_offset) and self.min_offset < self.max_offset
        ):
            raise ValueError("need finite min_offset < max_offset")
        if not self.inventory_scale > 0 or self.inventory_penalty < 0:
            raise ValueError("inventory_scale must be > 0 and inventory_penalty >= 0")
        if self.max_inventory is not None and self.max_inventory < 1:
            raise ValueError("max_inventory must be >= 1 or None")


class ASMarketEnv(gym.Env[F32, npt.NDArray[np.float32]]):
    """One path of the Avellaneda-Stoikov model per episode; the agent sets both offsets each step."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, config: ASEnvConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ASEnvConfig()
        self.market = ASMarket(cfg.model)
        self.observation_space = gym.spaces.Box(-_F32_MAX, _F32_MAX, shape=(len(AS_OBS_NAMES),), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._mid_scale = cfg.model.sigma_price_per_sqrt_time * math.sqrt(cfg.model.horizon_time)
        self._half_span = (cfg.max_offset - cfg.min_offset) / 2.0
        self._reset_done = False

    @property
    def inventory(self) -> int:
        return self.market.state.inventory

    @property
    def time_left(self) -> float:
        """T - t, the model's time units."""
        return self.market.time_left

    def pnl(self) -> float:
        """cash + inventory x mid: the path's profit so far (price units)."""
        return self.market.profit

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[F32, dict[str, Any]]:
        super().reset(seed=seed)
        self.market.reset(seed=int(self.np_random.integers(0, 2**63 - 1)))
        self._reset_done = True
        return self._observe(), {}

    def decode_action(self, action: Any) -> tuple[float, float]:
        """(bid offset, ask offset) in price units for an action in [-1, 1]^2 (clipped)."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        lo, h = self.config.min_offset, self._half_span
        return lo + (float(a[0]) + 1.0) * h, lo + (float(a[1]) + 1.0) * h

    def encode_quote(self, bid_offset: float, ask_offset: float) -> F32:
        """The action nearest to these offsets (clipped to the range)."""
        lo, h = self.config.min_offset, self._half_span
        return np.clip(np.array([(bid_offset - lo) / h - 1.0, (ask_offset - lo) / h - 1.0], dtype=np.float32), -1, 1)

    def step(self, action: Any) -> tuple[F32, float, bool, bool, dict[str, Any]]:
        if not self._reset_done:
            raise RuntimeError("call reset() first")
        cfg = self.config
        bid_off, ask_off = self.decode_action(action)
        mid_before = self.market.state.mid
        res = self.market.step(bid_off, ask_off)
        spread_capture = (bid_off if res.bid_filled else 0.0) + (ask_off if res.ask_filled else 0.0)
        q = res.inventory
        inventory_pnl = q * (res.mid - mid_before)
        penalty = cfg.inventory_penalty * q * q
        reward = cfg.reward_scale * (spread_capture + inventory_pnl - penalty)
        terminated = cfg.max_inventory is not None and abs(q) >= cfg.max_inventory
        truncated = res.done and not terminated
        if terminated or truncated:
            self._reset_done = False
        info = {"spread_capture": spread_capture, "inventory_pnl": inventory_pnl, "penalty": penalty, "inventory": q}
        return self._observe(), float(reward), terminated, truncated, info

    def _observe(self) -> F32:
        cfg = self.config
        s = self.market.state
        return np.array(
            [s.inventory / cfg.inventory_scale, self.market.time_left / cfg.model.horizon_time,
             (s.mid - cfg.model.start_mid_price) / self._mid_scale],
            dtype=np.float32,
        )  # fmt: skip
