"""Strategies: the trading interface a strategy is written against, its live and backtest implementations,
the market makers, the accounting every package shares, performance metrics and the backtester.

docs/STRATEGIES.md describes them.
"""
