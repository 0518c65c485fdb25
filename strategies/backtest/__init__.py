"""The backtester: a strategy against recorded or synthetic market flow in the C engine, in-process.

``BacktestVenue`` implements the trading interface over ``c_engine.Engine`` (queue position and matching are
the engine's; latencies are explicit); sources replay market data into it; ``BacktestConfig`` names every fill
assumption. docs/STRATEGIES.md describes the models.
"""

from .latency import ConstantLatency, EmpiricalLatency, LatencyModel
from .sources import FIRST_STRATEGY_CLIENT, CommandSource, MarketSource, SyntheticSource
from .venue import MID_DTYPE, RECORD_DTYPE, BacktestConfig, BacktestError, BacktestResult, BacktestVenue

__all__ = [
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "BacktestVenue",
    "CommandSource",
    "ConstantLatency",
    "EmpiricalLatency",
    "FIRST_STRATEGY_CLIENT",
    "LatencyModel",
    "MID_DTYPE",
    "MarketSource",
    "RECORD_DTYPE",
    "SyntheticSource",
]
