"""``RecordedMarketEnv``: the market-making env over recorded data, replayed through the backtest's sources.

The agent quotes into the C engine while a recorded day (LOBSTER), a Binance capture or a recording of engine
commands is replayed into the same engine by ``strategies.backtest``'s sources (``ml.rl.recorded`` hands out one
per episode), so queue position and fills follow the backtest venue's models: the engine's price-time priority,
LOBSTER's order-by-order replay with market impact "extend", Binance's named queue model. Observation, action,
reward and episode end are ``EngineMarketEnv``'s (docs/RL.md); what differs, and why:

- **Steps are data time.** A step is ``step_ns`` of data: the agent's commands reach the engine at the step's
  start plus ``entry_latency_ns`` (the source's messages before that run first), then the source runs to the
  step's end, and the features are sampled at that time. The env's own code handles the events
  (``EngineMarketEnv._apply_events``); the engine is tapped, so the replay's events come to it in order.
- **Episodes are windows.** ``reset`` draws the window's start uniformly (in ns, from ``np_random``) among the
  times that leave ``warmup_ns`` of data before it and, where the data allows, the whole horizon after it.
  The source is brought to ``start - warmup_ns`` (a LOBSTER window is seeded there; a source without a seek is
  replayed from its beginning, the agent absent), the features start from the engine's book there, and the
  warm-up runs with the features fed. The episode is truncated at ``horizon_steps`` or when the data ends.
- **Units are the data's.** The instrument (tick and lot size) is the source's symbol, so rewards and PnL are
  in its currency (LOBSTER: dollars; Binance: USDT); ``tick_size`` and ``lot_size`` of the config are unused.
  Offsets and sizes stay in ticks and lots. The agent trades the source's first symbol (a recording of
  commands on several symbols: the others' events are not the agent's market and are dropped).
- **Seeds** give exact reproducibility: the window's start is the only draw, and the replay is deterministic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from c_engine import COMMAND_DTYPE, ClientLimits, Command, Engine, EngineConfig, Event, Op
from ml.features import IncrementalFeatures
from strategies.accounting import Instrument
from strategies.backtest import MarketSource

from .engine_env import (
    _BUY,
    _LIMIT_GTC,
    _OP_NEW,
    _PACK_COMMAND,
    _SELL,
    F32,
    EngineEnvConfig,
    EngineMarketEnv,
)
from .recorded import MarketData, load_market_data

__all__ = ["RecordedEnvConfig", "RecordedMarketEnv"]


@dataclass(frozen=True)
class RecordedEnvConfig(EngineEnvConfig):
    """``EngineEnvConfig`` (the flow's fields unused) plus the data and the replay's timing."""

    #: the data file: a LOBSTER message file, a Binance capture, or a recording (``ml.rl.recorded``)
    data: str = ""
    #: data time per step (ns)
    step_ns: int = 100_000_000
    #: data replayed before the first step, the agent absent (ns)
    warmup_ns: int = 5_000_000_000
    #: delay of the agent's commands after the step's start (ns)
    entry_latency_ns: int = 0
    #: LOBSTER: LOBSTER price units per tick
    lobster_tick: int = 100
    #: Binance: the capture's symbol, queue model and market impact policy (strategies.backtest.BinanceSource)
    binance_symbol: str = "BTCUSDT"
    queue: str = "risk_averse"
    impact: str = "extend"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.data:
            raise ValueError("the recorded env needs a data file (data=...)")
        if self.step_ns < 1 or self.warmup_ns < 0 or not 0 <= self.entry_latency_ns < self.step_ns:
            raise ValueError("need step_ns >= 1, warmup_ns >= 0 and 0 <= entry_latency_ns < step_ns")

    def market_data(self) -> MarketData:
        return load_market_data(self.data, tick=self.lobster_tick, symbol=self.binance_symbol, queue=self.queue,
                                impact=self.impact)  # fmt: skip


class _Tap:
    """The engine as the source sees it: every call's events are kept, in order, as rows of eight words."""

    def __init__(self, engine: Engine, symbol_id: int, single_symbol: bool) -> None:
        self._engine = engine
        self._sid = symbol_id
        self._single = single_symbol
        self.keep = True
        self.chunks: list[npt.NDArray[np.int64]] = []

    def _keep(self, words: npt.NDArray[np.int64]) -> None:
        if self.keep and len(words):
            if not self._single:
                words = words[(words[:, 0] >> 16) & 0xFFFF == self._sid]
            self.chunks.append(words)

    def execute(self, cmd: Command) -> list[Event]:
        events = self._engine.execute(cmd)
        if events and self.keep:
            self._keep(np.frombuffer(b"".join(e.pack() for e in events), dtype=np.int64).reshape(-1, 8))
        return events

    def execute_batch(self, commands: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
        rows = self._engine.execute_batch(commands)
        self._keep(rows.view(np.int64).reshape(-1, 8))
        return rows

    def take(self) -> list[list[int]]:
        """The events kept since the last call, as lists of eight ints."""
        chunks, self.chunks = self.chunks, []
        if not chunks:
            return []
        joined: list[list[int]] = (chunks[0] if len(chunks) == 1 else np.concatenate(chunks)).tolist()
        return joined

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class RecordedMarketEnv(EngineMarketEnv):
    """A market maker on recorded data (see the module docstring; docs/RL.md has the contract)."""

    def __init__(self, config: RecordedEnvConfig, data: MarketData | None = None) -> None:
        """``data``: the data set, when not the one ``config.data`` names (loaded once per process)."""
        if not isinstance(config, RecordedEnvConfig):
            raise TypeError("RecordedMarketEnv takes a RecordedEnvConfig")
        super().__init__(config)
        self.rconfig = config
        self.data = data if data is not None else config.market_data()
        probe = self.data.source(self.data.start_ns)
        self.symbol = probe.symbols()[0]
        self._engine_config: EngineConfig = getattr(probe, "engine_config", EngineConfig)()
        self.instrument = Instrument(self.symbol.name, self.symbol.tick_size, self.symbol.lot_size,
                                     maker_fee_bps=config.maker_fee_bps)  # fmt: skip
        self._tlv = self.instrument.tick_lot_value
        self._half_tlv = self._tlv / 2.0
        self._pnl_unit = self.symbol.pnl_unit
        self.source: MarketSource | None = None
        self._tap: _Tap | None = None
        self._now = 0
        self._reset_state()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[F32, dict[str, Any]]:
        super(EngineMarketEnv, self).reset(seed=seed)  # gymnasium's: seeds np_random
        cfg, data = self.rconfig, self.data
        self._reset_state()
        horizon_ns = cfg.horizon_steps * cfg.step_ns
        lo = data.start_ns + cfg.warmup_ns
        hi = max(lo, data.end_ns - horizon_ns)
        start = lo + int(self.np_random.integers(0, hi - lo + 1))
        source = data.source(start - cfg.warmup_ns)
        wanted = self._engine_config
        engine = Engine(dataclasses.replace(wanted, max_clients=max(wanted.max_clients, cfg.agent_client_id + 1)))
        symbols = source.symbols()
        for sym in symbols:
            engine.add_symbol(sym)
        sid = engine.symbol_id(self.symbol.name)
        engine.set_client_limits(cfg.agent_client_id, ClientLimits(max_position=cfg.max_position_lots,
                                                                   max_loss=cfg.max_loss))  # fmt: skip
        self._engine, self._sid, self.source = engine, sid, source
        agent = cfg.agent_client_id
        self._head = [_OP_NEW | _BUY << 8 | sid << 16 | agent << 32 | _LIMIT_GTC,
                      _OP_NEW | _SELL << 8 | sid << 16 | agent << 32 | _LIMIT_GTC]  # fmt: skip
        self._modify_head = [int(Op.MODIFY) | sid << 16 | agent << 32] * 2
        self._cancel_head = int(Op.CANCEL) | sid << 16 | agent << 32
        tap = self._tap = _Tap(engine, sid, len(symbols) == 1)
        source.open(tap)  # type: ignore[arg-type]  # the tap stands in for the engine
        # to the warm-up's start without the features (a source without a seek replays from its beginning)
        tap.keep = False
        self._run_source(start - cfg.warmup_ns)
        tap.keep = True
        tap.chunks = []
        feats = self.features = IncrementalFeatures(cfg.feature_spec, own_client=agent)
        for name, side in (("bids", _BUY), ("asks", _SELL)):
            for level in engine.l2(sid)[name]:
                feats.on_book_delta(side, level.price, level.qty)
        self._best_bid = self._best_ask = -1
        self._set_mid()
        self._run_source(start)
        self._apply_events(tap.take())
        self._kill_due = False
        self._set_mid()
        self._now = start
        row = feats.sample(start)
        return self._observe(row), {"mid_ticks": self.mid_ticks, "start_ns": start}

    def _run_source(self, limit_ns: int) -> None:
        source = self.source
        assert source is not None and self._tap is not None
        t = source.peek_ns()
        while t is not None and t <= limit_ns:
            source.run_until(self._tap, limit_ns)  # type: ignore[arg-type]
            t = source.peek_ns()

    def step(self, action: Any) -> tuple[F32, float, bool, bool, dict[str, Any]]:
        engine, feats, source, tap = self._engine, self.features, self.source, self._tap
        if engine is None or feats is None or source is None or tap is None:
            raise RuntimeError("call reset() first")
        cfg = self.rconfig
        bid_off, ask_off, size = self.decode_action(action)
        mid2_before = self.mid2
        start, end = self._now, self._now + cfg.step_ns
        if cfg.entry_latency_ns:
            self._run_source(start + cfg.entry_latency_ns)
        rows = self._quote_rows(bid_off, ask_off, size, start + cfg.entry_latency_ns)
        if rows:
            buf = bytearray(64 * len(rows))
            for i, r in enumerate(rows):
                _PACK_COMMAND(buf, 64 * i, *r)
            events = tap.execute_batch(np.frombuffer(buf, dtype=COMMAND_DTYPE))
            observe = getattr(source, "observe", None)
            if observe is not None:  # the replay's view of the engine and of the agent's orders
                observe(Event.unpack_all(events.tobytes()))
        self._run_source(end)
        self._now = end
        account = self.account
        fees_before = account.fees
        spread_capture = self._apply_events(tap.take())
        self._set_mid()
        self.t += 1
        reward, terminated, info = self._settle(spread_capture, fees_before, mid2_before)
        truncated = (self.t >= cfg.horizon_steps or source.peek_ns() is None) and not terminated
        row = feats.sample(end)
        return self._observe(row), reward, terminated, bool(truncated), info
