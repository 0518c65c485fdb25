"""A backtest's report: ``summary.json`` with every metric, and PNG plots, written to one directory.

``write_report(result, directory, title=..., quotes_sent=...)`` is what ``proptrade backtest ... --report DIR``
calls. It reads only the :class:`~strategies.backtest.BacktestResult` (fills, records, config, instruments), so
a report is a pure function of the run: the same run gives the same files.

- **summary.json**: the title, the source, the config's description lines (every fill assumption: latencies,
  fees, queue rule), the instrument, counts (messages replayed, commands and quotes sent, fills, records), the
  metrics of :class:`~strategies.metrics.PerformanceMetrics` (field order) and the plot files. Keys are in that
  fixed order; floats are JSON numbers and a NaN or infinite one (a metric that could not be measured) is
  ``null``, since JSON has no NaN.
- **Plots** (matplotlib's Agg renderer through ``Figure`` directly: no pyplot, no display, no global state), one
  file each, time on the x axis in seconds from the first record: ``mid_quotes_fills.png`` (the mid with the
  strategy's best bid and ask quotes as the records sampled them, and its fills at their prices and engine
  times, buys and sells marked), ``inventory.png`` (the engine's position from the fills, exact at each fill),
  ``pnl.png`` (net PnL from the records) and ``drawdown.png`` (the fall below the running PnL peak).
  Prices are in the instrument's price units (ticks x tick size). PNG metadata carries no library version, so
  the files stay the same across matplotlib updates of the same rendering.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from c_engine import Side

from .accounting import Fill
from .backtest import BacktestResult
from .metrics import (
    CRYPTO,
    DEFAULT_HORIZONS_NS,
    Annualisation,
    MidSeries,
    PerformanceMetrics,
    drawdown_series,
    inventory_path,
)

__all__ = ["ReportFiles", "write_report"]

_BUY = int(Side.BUY)
_S = 1e9
#: inches at 100 dpi: 1200 x 450 pixels, wide enough for a day of seconds
_FIGSIZE = (12.0, 4.5)
_DPI = 100


class ReportFiles(NamedTuple):
    """The paths ``write_report`` wrote."""

    summary: Path
    mid_quotes_fills: Path
    inventory: Path
    pnl: Path
    drawdown: Path


def write_report(
    result: BacktestResult,
    directory: str | Path,
    *,
    title: str,
    quotes_sent: int | None,
    symbol_id: int | None = None,
    mid_series: MidSeries | Sequence[tuple[int, float]] | None = None,
    horizons_ns: Sequence[int] = DEFAULT_HORIZONS_NS,
    annualisation: Annualisation = CRYPTO,
    capital: float = 0.0,
) -> ReportFiles:
    """Writes the report of ``result`` into ``directory`` (created if needed); returns the paths.

    ``quotes_sent`` (new quotes and modifies, e.g. ``QuotingStrategy.quotes_sent``; None if unknown) gives
    the fill rate; ``symbol_id`` the records' symbol when the run had several (else the only one); the rest
    goes to :meth:`PerformanceMetrics.compute_metrics`.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    sid = _symbol(result, symbol_id)
    instrument = result.instruments.get(sid) if sid is not None else None
    fills = [f for f in result.fills if sid is None or f.symbol_id == sid]
    metrics = PerformanceMetrics.compute_metrics(
        fills,
        result.records,
        quotes_sent=quotes_sent,
        symbol_id=sid,
        instrument=instrument,
        mid_series=mid_series,
        horizons_ns=horizons_ns,
        annualisation=annualisation,
        capital=capital,
    )
    files = ReportFiles(
        out / "summary.json",
        out / "mid_quotes_fills.png",
        out / "inventory.png",
        out / "pnl.png",
        out / "drawdown.png",
    )
    summary = {
        "title": title,
        "source": result.source,
        "config": result.config.describe(),
        "instrument": dataclasses.asdict(instrument) if instrument is not None else None,
        "counts": {
            "messages": result.messages,
            "commands_sent": result.commands_sent,
            "quotes_sent": quotes_sent,
            "fills": len(fills),
            "records": len(result.records),
        },
        "metrics": metrics.as_dict(),
        "plots": [p.name for p in files[1:]],
    }
    text = json.dumps(_json_ready(summary), indent=2, allow_nan=False)
    files.summary.write_text(text + "\n", encoding="utf-8")
    records = result.records
    t0 = int(records["ts_ns"][0]) if len(records) else (fills[0].ts_ns if fills else 0)
    t_end = int(records["ts_ns"][-1]) if len(records) else (max(f.ts_ns for f in fills) if fills else t0)
    tick = instrument.tick_size if instrument is not None else 1.0
    price_label = "price" if instrument is not None else "price (ticks)"
    currency = instrument.currency if instrument is not None else "currency"
    _plot_mid(files.mid_quotes_fills, title, records, fills, t0, tick, price_label)
    _plot_inventory(files.inventory, title, fills, t0, t_end, int(records["position"][0]) if len(records) else 0)
    _plot_pnl(files.pnl, title, records, t0, currency)
    _plot_drawdown(files.drawdown, title, records, t0, capital, currency)
    return files


def _symbol(result: BacktestResult, symbol_id: int | None) -> int | None:
    if symbol_id is not None:
        return symbol_id
    if len(result.instruments) == 1:
        return next(iter(result.instruments))
    symbols = sorted({f.symbol_id for f in result.fills})
    if len(symbols) > 1:
        raise ValueError(f"the run traded several symbols {symbols}: say which the records are of with symbol_id")
    return symbols[0] if symbols else None


def _json_ready(value: Any) -> Any:
    """Plain data with every non-finite float replaced by None (JSON's null)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- plots --------------------------------------------------------------------------------------------------


def _seconds(ts_ns: npt.NDArray[Any] | Sequence[int], t0: int) -> npt.NDArray[np.float64]:
    return (np.asarray(ts_ns, dtype=np.int64) - t0) / _S


def _figure(title: str, ylabel: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=_FIGSIZE, dpi=_DPI)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel("time (s from start)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.ticklabel_format(axis="y", useOffset=False)  # prices read as prices, not as offsets from 1e2
    return fig, ax


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})


def _plot_mid(
    path: Path,
    title: str,
    records: npt.NDArray[Any],
    fills: Sequence[Fill],
    t0: int,
    tick: float,
    price_label: str,
) -> None:
    fig, ax = _figure(f"{title}: mid, quotes and fills", price_label)
    t = _seconds(records["ts_ns"], t0)
    ax.step(t, records["mid"] * tick, where="post", color="black", linewidth=0.8, label="mid")
    for name, color in (("bid", "tab:green"), ("ask", "tab:red")):
        quote = np.where(records[name] > 0, records[name] * tick, np.nan)  # 0: no quote on that side
        ax.step(t, quote, where="post", color=color, linewidth=0.6, alpha=0.7, label=f"own {name}")
    buys = [f for f in fills if f.side == _BUY]
    sells = [f for f in fills if f.side != _BUY]
    for group, marker, color, label in ((buys, "^", "tab:green", "buy fill"), (sells, "v", "tab:red", "sell fill")):
        if group:
            ax.scatter(_seconds([f.ts_ns for f in group], t0), [f.price * tick for f in group], marker=marker,
                       color=color, s=18, zorder=3, label=label)  # fmt: skip
    ax.legend(loc="best", fontsize="small")
    _save(fig, path)


def _plot_inventory(path: Path, title: str, fills: Sequence[Fill], t0: int, t_end: int, start_position: int) -> None:
    fig, ax = _figure(f"{title}: inventory", "position (lots)")
    ts, pos = inventory_path(fills, t0, start_position)
    ts = np.append(ts, max(t_end, int(ts[-1])))  # hold the last position to the end
    pos = np.append(pos, pos[-1])
    ax.step(_seconds(ts, t0), pos, where="post", color="tab:blue", linewidth=0.8)
    ax.axhline(0, color="grey", linewidth=0.5)
    _save(fig, path)


def _plot_pnl(path: Path, title: str, records: npt.NDArray[Any], t0: int, currency: str) -> None:
    fig, ax = _figure(f"{title}: PnL, net of fees", currency)
    ax.step(_seconds(records["ts_ns"], t0), records["pnl"], where="post", color="tab:blue", linewidth=0.8)
    ax.axhline(0, color="grey", linewidth=0.5)
    _save(fig, path)


def _plot_drawdown(path: Path, title: str, records: npt.NDArray[Any], t0: int, capital: float, currency: str) -> None:
    fig, ax = _figure(f"{title}: drawdown from the running PnL peak", currency)
    ts, _, dd = drawdown_series(records, capital)
    t = _seconds(ts, t0)
    ax.fill_between(t, -dd, 0, step="post", color="tab:red", alpha=0.4, linewidth=0)
    ax.step(t, -dd, where="post", color="tab:red", linewidth=0.8)
    _save(fig, path)
