"""Backtests of every strategy on the LOBSTER samples, the Binance sample and a synthetic day: the results of
docs/STRATEGIES.md, written there with their plots.

::

    .venv/bin/python scripts/strategy_results.py [--quick] [--doc docs/STRATEGIES.md] [--img docs/img/strategies]

Each backtest is the command line shown beside its table (``proptrade backtest SOURCE ... --strategy NAME
...``), parsed by the CLI's own parser and run as :func:`strategies.backtest_cli.run_backtest` runs it, keeping
the result for the plots. The script rewrites two generated sections of the doc, between ``<!-- NAME:begin
-->`` and ``<!-- NAME:end -->`` markers: ``parameters`` (every strategy's parameters and defaults, from the
registry) and ``results`` (a metric table per data set, the commands, the replay's own check lines, and a
figure per data set under ``--img``). Backtests are deterministic, so the doc's rows are reproducible:
``tests/strategies/test_strategy_results.py`` runs ``--quick`` (the AAPL sample in full and a short synthetic
flow) and checks the AAPL section it renders is the doc's, byte for byte.

The real data are read from ``../shared/data`` beside the project (never copied into it); a data set whose
files are absent is left out with a line on stderr (``--quick`` needs only AAPL's).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from strategies.backtest import BacktestResult, BacktestVenue
from strategies.backtest_cli import backtest_config, build_parser, make_source
from strategies.metrics import MidSeries, PerformanceMetrics
from strategies.registry import STRATEGIES, build_strategy, flag_name, parameter_fields, parameter_values
from strategies.report import write_report

__all__ = [
    "DATA",
    "DATASETS",
    "DataSet",
    "DataSetResult",
    "StrategyRun",
    "main",
    "parameter_table",
    "render_dataset",
    "replace_section",
    "run_dataset",
    "run_strategy",
    "write_figure",
]

ROOT = Path(__file__).resolve().parents[1]
#: the shared real data, beside the project
DATA = ROOT.parent / "shared" / "data"
#: how the doc names that folder in the commands it shows
DATA_SHOWN = "../shared/data"
LOBSTER = "lobster"
AAPL = ("AAPL_2012-06-21_34200000_57600000_message_10.csv", "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv")
GOOG = (
    "GOOG_2012-06-21_34200000_57600000_message_10.csv.gz",
    "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz",
)
BINANCE = "binance/usdm_btcusdt_20240808.gz"
#: the five makers of ``strategies.makers``, by their registry names (plugins of other packages left out)
ORDER = ("symmetric", "inventory_skew", "adaptive", "avellaneda", "glft")
#: a synthetic "day": 6.5 h of data time (23,400 s) at a mean gap of 58.5 ms between messages
SYNTHETIC_DAY_MESSAGES = 400_000
SYNTHETIC_DAY_GAP_US = 58_500.0
#: the quick setting's synthetic flow (tests): 20 s at 1 ms
SYNTHETIC_QUICK_MESSAGES = 20_000
#: Binance USD-M's base-tier (VIP 0) maker fee, for the column that charges it after the fact
BINANCE_BASE_MAKER_FEE_BPS = 2.0

#: quoting parameters for US equities near $580 with a $0.22-0.28 median spread (AAPL, GOOG on 2012-06-21):
#: quotes $0.05 from fair value (inside the spread), 100 shares, at most 500 shares either way
EQUITY_BASE = {"half_spread": 0.05, "size": 100.0, "max_position": 500.0, "quote_interval": 0.05}
#: each model's own parameters, in the instrument's units (dollars, shares, seconds)
EQUITY_MODELS = {
    "symmetric": {},
    # $0.0002 a share held: 500 shares move both quotes $0.10
    "inventory_skew": {"skew": 0.0002},
    "adaptive": {"vol_halflife": 30.0, "vol_horizon": 1.0, "vol_multiplier": 2.0},
    # k = 20 per dollar: (2 / gamma) ln(1 + gamma / k) ~ $0.10 of spread; gamma per dollar per 100 shares held
    "avellaneda": {"gamma": 0.01, "k": 20.0, "horizon": 3600.0},
    "glft": {"gamma": 0.1, "k": 20.0, "a": 0.5},
}
#: BTCUSDT near 61,700 USDT with a one-tick (0.1) spread: quotes 0.5 USDT (5 ticks, 0.8 bps) from fair value,
#: 0.01 BTC, at most 0.1 BTC either way
CRYPTO_BASE = {"half_spread": 0.5, "size": 0.01, "max_position": 0.1, "quote_interval": 0.05}
CRYPTO_MODELS = {
    "symmetric": {},
    # 20 USDT a BTC held: 0.1 BTC moves both quotes 2 USDT
    "inventory_skew": {"skew": 20.0},
    "adaptive": {"vol_halflife": 30.0, "vol_horizon": 1.0, "vol_multiplier": 2.0},
    # k = 2 per USDT: (2 / gamma) ln(1 + gamma / k) ~ 1 USDT of spread; gamma per USDT per 0.01 BTC held
    "avellaneda": {"gamma": 0.05, "k": 2.0, "horizon": 3600.0},
    "glft": {"gamma": 0.05, "k": 2.0, "a": 1.0},
}
#: the synthetic flow's symbol: tick $0.01, mid $100, lot 1
SYNTHETIC_BASE = {"half_spread": 0.02, "size": 5.0, "max_position": 50.0, "quote_interval": 0.05}
SYNTHETIC_MODELS = {
    "symmetric": {},
    "inventory_skew": {"skew": 0.002},
    "adaptive": {"vol_halflife": 30.0, "vol_horizon": 1.0, "vol_multiplier": 2.0},
    # k = 100 per dollar: about $0.02 of spread; gamma per dollar per 5 lots held
    "avellaneda": {"gamma": 0.5, "k": 100.0, "horizon": 3600.0},
    "glft": {"gamma": 0.5, "k": 100.0, "a": 1.0},
}


@dataclass(frozen=True)
class DataSet:
    """One data set: the CLI's source arguments and fill assumptions, and each strategy's parameter flags."""

    key: str
    title: str
    #: the source's command-line arguments, with ``{data}`` for the shared data folder
    source_argv: tuple[str, ...]
    #: the fill assumptions (the CLI's common flags)
    common_argv: tuple[str, ...]
    base: dict[str, float]
    models: dict[str, dict[str, float]]
    #: files that must exist under the data folder
    needs: tuple[str, ...] = ()
    about: str = ""
    #: a maker fee charged after the fact in an extra column (fees are linear in notional), or None
    fee_column_bps: float | None = None

    def argv(self, strategy: str, data: str) -> list[str]:
        flags = []
        for name, value in {**self.base, **self.models[strategy]}.items():
            flags += [f"--{flag_name(name)}", f"{value:g}"]
        source = [a.replace("{data}", data) for a in self.source_argv]
        return [*source, *self.common_argv, "--strategy", strategy, *flags]


_LATENCY_100US = ("--entry-latency-us", "100", "--response-latency-us", "100", "--md-latency-us", "100")
_LATENCY_1MS = ("--entry-latency-us", "1000", "--response-latency-us", "1000", "--md-latency-us", "1000")
_NO_FEES = ("--maker-fee-bps", "0", "--taker-fee-bps", "0")


def _synthetic(messages: int, gap_us: float, title: str, key: str = "synthetic") -> DataSet:
    source = ("synthetic", "--messages", str(messages), "--seed", "1", "--mean-gap-us", f"{gap_us:g}")
    about = (
        f"{messages:,} messages of the seeded synthetic flow (seed 1), {gap_us / 1000:g} ms apart on average: "
        f"{messages * gap_us / 1e6:,.0f} s of data time. Tick $0.01, mid near $100, lot 1."
    )
    return DataSet(key, title, source, (*_LATENCY_100US, *_NO_FEES), SYNTHETIC_BASE, SYNTHETIC_MODELS, about=about)


#: the full setting
DATASETS = (
    DataSet(
        "aapl",
        "LOBSTER AAPL sample",
        ("lobster", "{data}/lobster/" + AAPL[0], "{data}/lobster/" + AAPL[1]),
        (*_LATENCY_100US, *_NO_FEES),
        EQUITY_BASE,
        EQUITY_MODELS,
        needs=(f"{LOBSTER}/{AAPL[0]}",),
        about="Nasdaq AAPL, 2012-06-21 from the 09:30 open: 999 messages, 49 s, 10 levels. Tick $0.01, lot 1 share.",
    ),
    DataSet(
        "goog",
        "LOBSTER GOOG full day",
        ("lobster", "{data}/lobster/" + GOOG[0], "{data}/lobster/" + GOOG[1]),
        (*_LATENCY_100US, *_NO_FEES),
        EQUITY_BASE,
        EQUITY_MODELS,
        needs=(f"{LOBSTER}/{GOOG[0]}",),
        about="Nasdaq GOOG, 2012-06-21, 09:30-16:00: 147,916 messages, 10 levels. Tick $0.01, lot 1 share.",
    ),
    DataSet(
        "binance",
        "Binance BTCUSDT sample",
        ("binance", "{data}/" + BINANCE, "--queue", "risk_averse"),
        (*_LATENCY_1MS, *_NO_FEES, "--currency", "USDT"),
        CRYPTO_BASE,
        CRYPTO_MODELS,
        needs=(BINANCE,),
        about="Binance USD-M BTCUSDT, 2024-08-08 23:54-24:00 UTC: 6,551 depth diffs and 21,313 trades from a "
        "1000-level snapshot. Tick 0.1 USDT, lot 0.001 BTC. Queue model risk_averse, market impact "
        "extend; latencies 1 ms (the collector's latency above its floor was 1.6 ms at p50).",
        fee_column_bps=BINANCE_BASE_MAKER_FEE_BPS,
    ),
    _synthetic(SYNTHETIC_DAY_MESSAGES, SYNTHETIC_DAY_GAP_US, "Synthetic day"),
)
#: the quick setting (tests): the AAPL sample (whole, as in the full setting) and a short synthetic flow
QUICK = (DATASETS[0], _synthetic(SYNTHETIC_QUICK_MESSAGES, 1000.0, "Synthetic flow (quick)"))


@dataclass
class StrategyRun:
    """One backtest: its command line, the metrics (``PerformanceMetrics.as_dict``) and the venue's result."""

    strategy: str
    argv: list[str]
    #: None when computing them failed (``error`` says how): the row says so rather than the script stopping
    metrics: dict[str, Any] | None
    replay: list[str]
    result: BacktestResult
    seconds: float
    error: str | None = None


@dataclass
class DataSetResult:
    dataset: DataSet
    runs: list[StrategyRun] = field(default_factory=list)


def run_strategy(dataset: DataSet, strategy: str, data: Path = DATA) -> StrategyRun:
    """The backtest ``proptrade backtest`` runs for this command line (as ``run_backtest`` does), kept whole."""
    argv = dataset.argv(strategy, str(data))
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    source = make_source(args)
    symbol = source.symbols()[0].name
    values = parameter_values(args)
    result = BacktestVenue(build_strategy(strategy, symbol, values), source, backtest_config(args)).run()
    mids = MidSeries(result.mids["ts_ns"], result.mids["mid"])
    metrics: dict[str, Any] | None = None
    error = None
    try:
        metrics = PerformanceMetrics.compute_metrics(result.fills, result.records, quotes_sent=result.quotes_sent,
                                                     symbol_id=result.symbol_id,
                                                     instrument=result.instruments.get(result.symbol_id),
                                                     mid_series=mids).as_dict()  # fmt: skip
    except Exception as e:  # a failure is reported in its row, as the CLI would report it, and the rest goes on
        error = f"{type(e).__name__} in PerformanceMetrics.compute_metrics: {e}"
    report = getattr(source, "report", None) or source
    replay = report.lines() if hasattr(report, "lines") else []
    return StrategyRun(strategy, argv, metrics, replay, result, time.perf_counter() - started, error)


def run_dataset(dataset: DataSet, data: Path = DATA, *, log: bool = True) -> DataSetResult:
    out = DataSetResult(dataset)
    for strategy in ORDER:
        run = run_strategy(dataset, strategy, data)
        if log:
            pnl = run.result.records["pnl"][-1]
            print(f"  {dataset.key} {strategy}: {len(run.result.fills)} fills, PnL {pnl:.2f} ({run.seconds:.1f} s)"
                  + (f"; {run.error}" if run.error else ""), file=sys.stderr)  # fmt: skip
        out.runs.append(run)
    return out


# --- rendering ----------------------------------------------------------------------------------------------


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, fmt)


def _horizon(metrics: dict[str, Any], name: str, horizon_s: float) -> Any:
    for item in metrics[name]:
        if item["horizon_s"] == horizon_s:
            return item["ticks"]
    return None


def render_dataset(result: DataSetResult, img_dir: str = "img/strategies") -> str:
    """The doc's section for one data set: about, commands, table, replay lines, figure."""
    ds = result.dataset
    lines = [f"### {ds.title}", "", ds.about, ""]
    first = result.runs[0]
    command = " ".join(_shown(first.argv))
    lines += ["Each row is, with the strategy's flags below:", "", "```", f"proptrade backtest {command}", "```", ""]
    for run in result.runs:
        flags = " ".join(_shown(run.argv[run.argv.index("--strategy") :]))
        lines.append(f"- `{flags}`")
    fee = ds.fee_column_bps
    header = ["strategy", "fills", "quotes", "fill rate", "volume (lots)", "final PnL", "final pos.", "TW abs inv.",
              "max abs inv.", "eff. spread", "realised 5 s", "adverse 5 s", "Sharpe (1 s)", "max DD"]  # fmt: skip
    if fee is not None:
        header.insert(6, f"PnL at {fee:g} bps maker fee")
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    failed = []
    for run in result.runs:
        m = run.metrics
        if m is None:
            failed.append(f"{run.strategy}: {run.error}")
            lines.append("| " + " | ".join([run.strategy] + ["failed"] * (len(header) - 1)) + " |")
            continue
        cells = [
            run.strategy,
            str(m["fills"]),
            str(m["quotes_sent"]),
            _num(m["fill_rate"], ".3f"),
            str(m["volume_lots"]),
            _num(m["final_pnl"], ",.2f"),
            str(m["final_position"]),
            _num(m["time_weighted_abs_inventory"], ",.1f"),
            str(m["max_abs_inventory"]),
            _num(m["effective_spread"]["ticks"], ".2f"),
            _num(_horizon(m, "realised_spread", 5.0), ".2f"),
            _num(_horizon(m, "adverse_selection", 5.0), ".2f"),
            _num(m["sharpe"], ",.1f"),
            _num(m["drawdown"]["max_currency"], ",.2f"),
        ]
        if fee is not None:
            cells.insert(6, _num(m["final_pnl"] - m["volume_notional"] * fee / 1e4, ",.2f"))
        lines.append("| " + " | ".join(cells) + " |")
    instrument = first.result.instruments[first.result.symbol_id]
    if failed:
        lines += ["", "The backtest ran but its metrics could not be computed:", "", *(f"- {f}" for f in failed)]
    lines += ["", f"PnL in {instrument.currency}, marked to the mid, net of fees; positions in lots of "
              f"{instrument.lot_size:g}; spreads and adverse selection in ticks of {instrument.tick_size:g} per lot "
              "filled (n/a: no fill had a mid that far ahead in the data).", ""]  # fmt: skip
    if first.replay:
        lines += ["The replay's own check, on the symmetric run:", "", "```", *first.replay, "```", ""]
    lines += [f"![{ds.title}: mid, PnL and position of each strategy]({img_dir}/{ds.key}.png)", ""]
    return "\n".join(lines)


def _shown(argv: Sequence[str]) -> list[str]:
    return [a.replace(str(DATA), DATA_SHOWN) for a in argv]


def render_results(results: Sequence[DataSetResult], skipped: Sequence[DataSet], img_dir: str) -> str:
    parts = [render_dataset(r, img_dir) for r in results]
    for ds in skipped:
        parts.append(f"### {ds.title}\n\nNot run: its data files were absent when this section was written.\n")
    return "\n".join(parts)


def _field_comments() -> dict[str, str]:
    """Each parameter field's ``#:`` comment, from the source of the parameter classes (first one found)."""
    import inspect

    comments: dict[str, str] = {}
    for params_class in (STRATEGIES[name][1] for name in ORDER):
        for cls in params_class.__mro__:
            if cls is object:
                continue
            pending: list[str] = []
            for line in inspect.getsource(cls).splitlines():
                stripped = line.strip()
                if stripped.startswith("#:"):
                    pending.append(stripped[2:].strip())
                    continue
                match = re.match(r"(\w+)\s*:", stripped)
                if match and pending:
                    comments.setdefault(match.group(1), " ".join(pending))
                pending = []
    return comments


def parameter_table() -> str:
    """Every strategy's parameters with their defaults (the registry's), one row per parameter."""
    names: list[str] = []
    defaults: dict[str, dict[str, Any]] = {}
    for strategy in ORDER:
        for f in parameter_fields(strategy):
            if f.name not in names:
                names.append(f.name)
            defaults.setdefault(f.name, {})[strategy] = f.default
    comments = _field_comments()
    lines = ["| parameter | flag | " + " | ".join(ORDER) + " | meaning |", "|" + "---|" * (len(ORDER) + 3)]
    for name in names:
        cells = [f"`{name}`", f"`--{flag_name(name)}`"]
        cells += [f"{defaults[name][s]:g}" if s in defaults[name] else "" for s in ORDER]
        cells.append(comments.get(name, ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with what lies between ``<!-- name:begin -->`` and ``<!-- name:end -->`` replaced by ``body``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"no {begin} ... {end} section")
    return text[: start + len(begin)] + "\n" + body.strip("\n") + "\n" + text[stop:]


def section(text: str, name: str) -> str:
    """What lies between the markers (as ``replace_section`` wrote it)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"no {begin} ... {end} section")
    return text[start + len(begin) : stop].strip("\n") + "\n"


# --- plots --------------------------------------------------------------------------------------------------

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def write_figure(result: DataSetResult, path: Path) -> None:
    """Mid, PnL and position of every strategy of a data set, one figure of three panels."""
    fig = Figure(figsize=(12.0, 9.0), dpi=100)
    ax_mid, ax_pnl, ax_pos = fig.subplots(3, 1, sharex=True)
    first = result.runs[0].result
    instrument = first.instruments[first.symbol_id]
    t0 = int(first.records["ts_ns"][0])
    t = (first.records["ts_ns"] - t0) / 1e9
    ax_mid.step(t, first.records["mid"] * instrument.tick_size, where="post", color="black", linewidth=0.7)
    ax_mid.set_ylabel(f"mid ({instrument.currency})")
    ax_mid.ticklabel_format(axis="y", useOffset=False)
    ax_mid.set_title(f"{result.dataset.title}: each strategy's PnL and position")
    for run, color in zip(result.runs, _COLORS, strict=False):
        rec = run.result.records
        ts = (rec["ts_ns"] - t0) / 1e9
        ax_pnl.step(ts, rec["pnl"], where="post", color=color, linewidth=0.8, label=run.strategy)
        ax_pos.step(ts, rec["position"] * instrument.lot_size, where="post", color=color, linewidth=0.8)
    ax_pnl.set_ylabel(f"PnL ({instrument.currency}, net)")
    ax_pnl.axhline(0, color="grey", linewidth=0.5)
    ax_pnl.legend(loc="upper left", fontsize="small", ncol=5)
    ax_pos.set_ylabel("position")
    ax_pos.axhline(0, color="grey", linewidth=0.5)
    ax_pos.set_xlabel("time (s from start)")
    for ax in (ax_mid, ax_pnl, ax_pos):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})


def write_plots(result: DataSetResult, img: Path) -> list[Path]:
    """The data set's figure; for AAPL also the standard report's plots of the inventory-skew run."""
    img.mkdir(parents=True, exist_ok=True)
    path = img / f"{result.dataset.key}.png"
    write_figure(result, path)
    written = [path]
    if result.dataset.key == "aapl":
        run = next(r for r in result.runs if r.strategy == "inventory_skew")
        mids = MidSeries(run.result.mids["ts_ns"], run.result.mids["mid"])
        report = img / "report_aapl_inventory_skew"
        files = write_report(run.result, report, title="inventory_skew on LOBSTER AAPL",
                             quotes_sent=run.result.quotes_sent, mid_series=mids)  # fmt: skip
        files.summary.unlink()  # the doc's table has the numbers; the plots are what it shows
        written += [files.mid_quotes_fills, files.inventory, files.pnl, files.drawdown]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="AAPL and a short synthetic flow only (tests)")
    parser.add_argument(
        "--doc", help="the doc to rewrite (default docs/STRATEGIES.md; with --quick: none, the sections are printed)"
    )
    parser.add_argument("--img", help="where the plots go (default docs/img/strategies; with --quick: a "
                        "temporary folder)")  # fmt: skip
    args = parser.parse_args(argv)
    doc = Path(args.doc) if args.doc else None if args.quick else ROOT / "docs" / "STRATEGIES.md"
    img = ROOT / "docs" / "img" / "strategies"
    if args.img or args.quick:
        img = Path(args.img) if args.img else Path(tempfile.mkdtemp())
    results: list[DataSetResult] = []
    skipped: list[DataSet] = []
    for ds in QUICK if args.quick else DATASETS:
        if any(not (DATA / need).exists() for need in ds.needs):
            print(f"{ds.title}: data absent under {DATA}, left out", file=sys.stderr)
            skipped.append(ds)
            continue
        print(f"{ds.title}:", file=sys.stderr)
        result = run_dataset(ds)
        write_plots(result, img)
        results.append(result)
    rel = Path(os.path.relpath(img, doc.parent if doc is not None else ROOT / "docs")).as_posix()
    parameters, rendered = parameter_table(), render_results(results, skipped, rel)
    if doc is None:
        print(parameters + "\n" + rendered)
        print(f"plots in {img}", file=sys.stderr)
        return 0
    text = replace_section(doc.read_text(), "parameters", parameters)
    doc.write_text(replace_section(text, "results", rendered))
    print(f"wrote {doc} and {img}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
