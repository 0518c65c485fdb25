"""``proptrade backtest``: a strategy against recorded or synthetic market data, with a report.

::

    proptrade backtest synthetic [--messages 200000] [--seed 1] [--mean-gap-us 1000]  --strategy NAME [...]
    proptrade backtest lobster MESSAGE.csv[.gz] ORDERBOOK.csv[.gz] [--tick 100]       --strategy NAME [...]
    proptrade backtest binance CAPTURE.gz [--symbol BTCUSDT --tick 0.1 --lot 0.001]   --strategy NAME [...]
    proptrade backtest journal JOURNAL --symbols SYMBOLS.toml                         --strategy NAME [...]
    proptrade backtest sweep --grid GRID.toml [--workers N] [--ray ADDRESS|local] [--out TABLE.csv]

    common: [--entry-latency-us 100] [--response-latency-us 100] [--md-latency-us 100]
            [--maker-fee-bps 0] [--taker-fee-bps 0] [--multiplier 1] [--currency USD]
            [--record-interval 1.0] [--report DIR] [--config PARAMS.toml] [strategy parameters...]

It runs :class:`strategies.backtest.BacktestVenue`, shows a progress bar on long runs (on a terminal), prints
the fill assumptions and a metric table, and with ``--report DIR`` writes ``summary.json`` and the plots
(:mod:`strategies.report`). The strategy's parameters are ``proptrade strategy run``'s (``proptrade strategy
list``). Exit 2 with one line for bad input.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from typing import TYPE_CHECKING, Any

from c_engine.lobster import MAX_TICK
from hotpath.cli import OneLineParser, int_arg, number_arg

from .registry import (
    STRATEGIES,
    StrategyError,
    build_strategy,
    flag_name,
    load_plugins,
    needs_plugins,
    option_flags,
    options_of,
    parameter_fields,
    parameter_values,
)

if TYPE_CHECKING:  # the backtester is imported when a backtest runs, not for --help
    from .backtest import BacktestConfig

__all__ = ["backtest_config", "build_parser", "main", "make_source", "run_backtest"]


#: latencies: 0 .. a day, in microseconds
_MICROSECONDS = number_arg(0.0, 86_400e6, what="microseconds")
_BPS = number_arg(-10_000.0, 10_000.0, what="basis points")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", required=True, choices=sorted(STRATEGIES))
    parser.add_argument("--config", metavar="PARAMS.toml", help="a [strategy] table of parameters (flags win)")
    parser.add_argument("--report", metavar="DIR", help="write summary.json and PNG plots here")
    lat = parser.add_argument_group("fill assumptions (printed with every result)")
    lat.add_argument("--entry-latency-us", type=_MICROSECONDS, default=100.0, help="strategy -> engine (default 100)")
    lat.add_argument("--response-latency-us", type=_MICROSECONDS, default=100.0,
                     help="engine -> strategy, own events (default 100)")  # fmt: skip
    lat.add_argument("--md-latency-us", type=_MICROSECONDS, default=100.0, help="engine -> strategy, market data (100)")
    lat.add_argument("--maker-fee-bps", type=_BPS, default=0.0, help="negative: a rebate (default 0)")
    lat.add_argument("--taker-fee-bps", type=_BPS, default=0.0, help="(default 0)")
    lat.add_argument("--multiplier", type=number_arg(0.0, 1e12, low_open=True), default=1.0,
                     help="currency per price unit per size unit")  # fmt: skip
    lat.add_argument("--currency", default="USD")
    lat.add_argument("--record-interval", type=number_arg(0.0, 365 * 86_400.0, low_open=True, what="seconds"),
                     default=1.0, metavar="S",
                     help="seconds of data time between PnL records (default 1)")  # fmt: skip
    params = parser.add_argument_group("strategy parameters (human units; seconds for intervals)")
    seen: set[str] = set()
    for name in list(STRATEGIES):
        for field in parameter_fields(name):
            if field.name not in seen:
                seen.add(field.name)
                params.add_argument(f"--{flag_name(field.name)}", dest=f"param_{field.name}", type=float,
                                    metavar="X", help=f"(default {field.default})")  # fmt: skip
    for option, text in option_flags().items():
        params.add_argument(f"--{flag_name(option)}", dest=f"opt_{option}", metavar="PATH", help=text)


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    if plugins:
        load_plugins()  # strategies of other packages (entry points), so --strategy knows them
    parser = OneLineParser(prog="proptrade backtest", description=__doc__.split("\n\n")[0])
    kinds = parser.add_subparsers(dest="kind", metavar="SOURCE", required=True)
    syn = kinds.add_parser("synthetic", help="the seeded synthetic order flow")
    syn.add_argument("--messages", type=int_arg(1, 1 << 40, "a number of messages"), default=200_000)
    syn.add_argument("--seed", type=int_arg(0, (1 << 64) - 1, "a seed"), default=1)
    syn.add_argument("--mean-gap-us", type=number_arg(0.0, 86_400e6, low_open=True, what="microseconds"),
                     default=1000.0, help="mean time between messages (default 1000)")  # fmt: skip
    lob = kinds.add_parser("lobster", help="a LOBSTER day, order by order")
    lob.add_argument("message", metavar="MESSAGE.csv")
    lob.add_argument("orderbook", metavar="ORDERBOOK.csv")
    lob.add_argument("--tick", type=int_arg(1, MAX_TICK, "a tick"), default=100,
                     help="tick in LOBSTER price units (default 100 = $0.01)")  # fmt: skip
    bn = kinds.add_parser("binance", help="a Binance USD-M capture (depth diffs, trades, bookTicker)")
    bn.add_argument("capture", metavar="CAPTURE")
    bn.add_argument("--symbol", default="BTCUSDT")
    step = number_arg(1e-12, 1e9, what="a step")
    bn.add_argument("--tick", type=step, default=0.1)
    bn.add_argument("--lot", type=step, default=0.001)
    bn.add_argument("--queue", default="risk_averse",
                    help="how a shrinking level moves the strategy's queue place: risk_averse (cancels behind "
                         "it), optimistic (cancels ahead), power:N (a share N-th power of the quantity "
                         "ahead); default risk_averse")  # fmt: skip
    jr = kinds.add_parser("journal", help="the platform's own journal, its commands replayed as recorded")
    jr.add_argument("journal", metavar="JOURNAL")
    jr.add_argument("--symbols", required=True, metavar="SYMBOLS.toml", help="the engine's [symbols.NAME] tables")
    for sub in (syn, lob, bn, jr):
        _common(sub)
    sw = kinds.add_parser("sweep", help="a grid of backtests on a process pool or a Ray cluster (strategies.sweep)")
    sw.add_argument("--grid", required=True, metavar="GRID.toml", help="source, strategy and the values to sweep")
    sw.add_argument("--workers", type=int, default=None, metavar="N",
                    help="processes (or Ray CPUs with --ray local); default: all CPUs; 0: in this process")  # fmt: skip
    sw.add_argument("--ray", metavar="ADDRESS", help="run on this Ray cluster ('local': start one here)")
    sw.add_argument("--out", metavar="TABLE.csv", help="write the whole table here")
    return parser


def make_source(args: argparse.Namespace) -> Any:
    """The market source the arguments name."""
    from .backtest import CommandSource, SyntheticSource

    if args.kind == "synthetic":
        return SyntheticSource(args.messages, seed=args.seed, mean_gap_ns=int(args.mean_gap_us * 1000))
    if args.kind == "lobster":
        from .backtest.lobster_source import LobsterSource

        return LobsterSource(args.message, args.orderbook, tick=args.tick)
    if args.kind == "binance":
        from .backtest.binance_source import BinanceSource

        return BinanceSource(args.capture, symbol=args.symbol, tick=args.tick, lot=args.lot, queue=args.queue)
    from c_engine.commandfile import load_symbols
    from hotpath.journal import read_commands

    symbols = load_symbols(args.symbols)
    return CommandSource(symbols, read_commands(args.journal))


def backtest_config(args: argparse.Namespace) -> BacktestConfig:
    """The fill assumptions a command line names: constant latencies, fees, contract terms, recording step."""
    from .backtest import BacktestConfig, ConstantLatency

    for name in ("entry_latency_us", "response_latency_us", "md_latency_us"):
        if not getattr(args, name) >= 0:
            raise StrategyError(f"--{name.replace('_', '-')} must be >= 0")
    return BacktestConfig(
        ConstantLatency(int(args.entry_latency_us * 1000)),
        ConstantLatency(int(args.response_latency_us * 1000)),
        ConstantLatency(int(args.md_latency_us * 1000)),
        maker_fee_bps=args.maker_fee_bps,
        taker_fee_bps=args.taker_fee_bps,
        multiplier=args.multiplier,
        currency=args.currency,
        record_interval_ns=max(1, int(args.record_interval * 1e9)),
    )


def run_backtest(args: argparse.Namespace, *, show_progress: bool = False) -> dict[str, Any]:
    """Runs the backtest the arguments describe; returns the metrics (and writes the report if asked)."""
    from .backtest import BacktestVenue
    from .metrics import MidSeries, PerformanceMetrics
    from .report import write_report

    values = parameter_values(args)
    source = make_source(args)
    symbol = source.symbols()[0].name
    strategy = build_strategy(args.strategy, symbol, values, options_of(args))
    config = backtest_config(args)
    venue = BacktestVenue(strategy, source, config)
    bar = None
    if show_progress:
        from tqdm import tqdm

        total = getattr(source, "remaining", None) or getattr(source, "total", None)
        bar = tqdm(total=total, unit="msg", unit_scale=True, desc=f"{args.kind} {args.strategy}", file=sys.stderr)

    def progress(done: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    result = venue.run(progress if bar is not None else None)
    if bar is not None:
        progress(result.messages)
        bar.close()
    title = f"{args.strategy} on {source.name} {symbol}"
    mids = MidSeries(result.mids["ts_ns"], result.mids["mid"])
    if args.report:
        write_report(result, args.report, title=title, quotes_sent=result.quotes_sent, mid_series=mids)
    metrics = PerformanceMetrics.compute_metrics(result.fills, result.records, quotes_sent=result.quotes_sent,
                                                 symbol_id=result.symbol_id,
                                                 instrument=result.instruments.get(result.symbol_id),
                                                 mid_series=mids).as_dict()  # fmt: skip
    out = {"title": title, "assumptions": config.describe() + list(getattr(source, "assumptions", [])),
           "messages": result.messages, "fills": len(result.fills), "quotes_sent": result.quotes_sent,
           "metrics": metrics}  # fmt: skip
    report = getattr(source, "report", None) or source  # LOBSTER's replay report, or the source's own lines
    if hasattr(report, "lines"):
        out["replay"] = report.lines()
    return out


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """Nested metrics as (dotted name, value) rows; a list of per-horizon dicts is keyed by its horizon."""
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flat(f"{prefix}.{k}" if prefix else k, v)]
    if isinstance(value, list):
        rows = []
        for i, item in enumerate(value):
            key = f"{item['horizon_s']:g}s" if isinstance(item, dict) and "horizon_s" in item else str(i)
            rows += _flat(f"{prefix}[{key}]", item)
        return rows
    return [(prefix, value)]


def _print(summary: dict[str, Any]) -> None:
    print(summary["title"])
    for line in summary["assumptions"]:
        print(f"  {line}")
    for line in summary.get("replay", []):
        print(f"  {line}")
    print(f"  messages {summary['messages']}, fills {summary['fills']}, quotes sent {summary['quotes_sent']}")
    for key, value in _flat("", summary["metrics"]):
        if key.endswith(("horizon_s", ".fills", ".lots")) and "[" in key:
            continue
        shown = f"{value:.6g}" if isinstance(value, float) else value
        print(f"  {key:40s} {shown}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(plugins=needs_plugins(argv)).parse_args(argv)
    if args.kind == "sweep":
        from .sweep import main as sweep_main

        return sweep_main(args)
    try:
        summary = run_backtest(args, show_progress=sys.stderr.isatty())
    except (StrategyError, OSError, ValueError, tomllib.TOMLDecodeError) as e:
        print(f"proptrade backtest: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    _print(summary)
    return 0
