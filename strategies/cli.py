"""``proptrade strategy``: run a market maker against a running platform, or list the makers.

::

    proptrade strategy list
    proptrade strategy run --strategy symmetric|inventory_skew|adaptive|avellaneda|glft --account mm_1
                           [--symbol SIM] [--prefix P | --endpoint E] [--config PARAMS.toml] [--seconds N]
                           [--half-spread 0.06] [--quote-interval 0.3] [--size 5] [--max-position 200] ...

``run`` attaches as the account (a name of the platform's ``[[accounts]]`` table, or a client id), keeps the
symbol's book from the market-data ring, and runs the strategy through :class:`strategies.live.LiveTrading`
until Ctrl-C, SIGTERM or ``--seconds``; then it cancels what is open and prints its books as one JSON line
(position and cash in the engine's integers, so they can be compared with ``proptrade ctl position``).
Parameters: see :mod:`strategies.registry` (``--config`` reads a TOML ``[strategy]`` table; flags win). The
launcher starts it as an agent (``python -m strategies.agent``), which passes ``--endpoint``, ``--client``,
``--symbol`` and ``--seed`` (the makers are deterministic and do not use a seed).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import tomllib

from hotpath import ControlError
from hotpath.cli import OneLineParser, endpoint_arg, number_arg, prefix_arg, seconds_arg

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
    strategy_module,
    strategy_params,
)

__all__ = ["build_parser", "main"]

log = logging.getLogger("proptrade.strategy")


def _account(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _all_parameter_flags() -> dict[str, str]:
    """flag -> help, over every strategy's fields."""
    flags: dict[str, str] = {}
    for name in list(STRATEGIES):
        for field in parameter_fields(name):
            flags.setdefault(field.name, f"{field.name} (default {field.default})")
    return flags


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    if plugins:
        load_plugins()  # strategies of other packages (entry points), so --strategy knows them
    parser = OneLineParser(prog="proptrade strategy", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser("list", help="the strategies and their parameters with defaults")
    run = commands.add_parser("run", help="run a strategy against a running platform")
    run.add_argument("--strategy", required=True, choices=sorted(STRATEGIES))
    who = run.add_mutually_exclusive_group(required=True)
    who.add_argument("--account", type=_account, help="the account: a name of [[accounts]] or a client id")
    who.add_argument("--client", type=_account, dest="account_alias", help=argparse.SUPPRESS)  # the launcher's
    run.add_argument("--symbol", help="the symbol to quote (default: the platform's only symbol)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--prefix", type=prefix_arg, help="the platform run's prefix (default: the one running here)")
    where.add_argument("--endpoint", type=endpoint_arg, help="the engine's control endpoint")
    run.add_argument("--config", metavar="PARAMS.toml", help="a [strategy] table of parameters")
    run.add_argument("--seconds", type=seconds_arg, default=0.0, help="stop after this long (0: until signalled)")
    run.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    bps = number_arg(-10_000.0, 10_000.0, what="basis points")
    run.add_argument("--maker-fee-bps", type=bps, default=0.0, help="for the strategy's own books")
    run.add_argument("--taker-fee-bps", type=bps, default=0.0, help="for the strategy's own books")
    params = run.add_argument_group("strategy parameters (human units; seconds for intervals)")
    for field, text in _all_parameter_flags().items():
        params.add_argument(f"--{flag_name(field)}", dest=f"param_{field}", type=float, metavar="X", help=text)
    for option, text in option_flags().items():
        params.add_argument(f"--{flag_name(option)}", dest=f"opt_{option}", metavar="PATH", help=text)
    return parser


def _list() -> int:
    for name in STRATEGIES:
        module = strategy_module(name)
        doc = (sys.modules[module].__doc__ or "").strip().split("\n")[0]
        print(f"{name}: {doc}")
        for field in parameter_fields(name):
            print(f"    --{flag_name(field.name)} {field.default}")
    return 0


def _percentiles_us(samples_ns: list[int]) -> dict[str, float | int | None]:
    """p50/p99/max of a strategy's measured delays, in us (None without samples)."""
    from .metrics import latency_percentiles

    p = latency_percentiles(samples_ns)

    def us(ns: float) -> float | None:
        return None if ns != ns else round(ns / 1e3, 1)  # NaN (no sample) -> null in the JSON line

    return {"n": p.count, "p50": us(p.p50_ns), "p99": us(p.p99_ns), "max": us(p.max_ns)}


def _run(args: argparse.Namespace) -> int:
    from hotpath import BookView, Client, EngineGoneError
    from hotpath.md_view import control_snapshot

    from .accounting import Instrument
    from .live import LiveTrading, run_live

    account = args.account if args.account is not None else args.account_alias
    values = parameter_values(args)
    strategy_params(args.strategy, "", values)  # a bad parameter is an error before anything is attached
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    prefix = args.prefix
    if prefix is None and args.endpoint is None:  # the one platform running here
        from hotpath.names import running_prefixes

        prefixes = running_prefixes()
        if len(prefixes) != 1:
            raise StrategyError(f"give --prefix: {len(prefixes)} engines are running ({', '.join(prefixes) or 'none'})")
        prefix = prefixes[0]
    try:
        client = Client(account, prefix=prefix, endpoint=args.endpoint)
    except ValueError as e:  # neither a prefix nor an endpoint, or a prefix whose socket path is too long
        raise StrategyError(str(e)) from None
    with client:
        names = client.symbol_names
        symbol = args.symbol or (next(iter(names.values())) if len(names) == 1 else None)
        if symbol is None:
            raise StrategyError(f"the platform has several symbols ({', '.join(names.values())}): name one")
        sid = client.symbol_id(symbol)
        strategy = build_strategy(args.strategy, names[sid], values, options_of(args))
        instruments = {s: Instrument(n, client.units(s).tick, client.units(s).lot, maker_fee_bps=args.maker_fee_bps,
                                     taker_fee_bps=args.taker_fee_bps) for s, n in names.items()}  # fmt: skip
        view = BookView(client.market_data(), [sid], control_snapshot(client.request, names))
        view.resync()
        trading = LiveTrading(strategy, client, view, instruments=instruments)
        log.info("%s on %s as client %d", args.strategy, names[sid], client.client_id)
        try:
            run_live(trading, stop, args.seconds)
        except EngineGoneError as e:
            log.error("%s: stopping", e)
            return 1
        state = trading.accounting.state(client.client_id, sid)
        mid = None
        best_bid, best_ask = view.best(sid)
        if best_bid is not None and best_ask is not None:
            mid = (best_bid[0] + best_ask[0]) / 2
        summary = {"account": str(account), "client": client.client_id, "symbol": names[sid],
                   "position": state.position, "cash_ticks": state.cash_ticks, "fills": state.fills,
                   "volume": state.volume, "fees": state.fees, "quotes_sent": strategy.quotes_sent,
                   "net_pnl": None if mid is None else state.net(mid),
                   "latency_us": {stage: _percentiles_us(samples)
                                  for stage, samples in trading.orders.latencies.items()}}  # fmt: skip
        print(json.dumps(summary), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(plugins=needs_plugins(argv)).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s strategy %(levelname)s %(message)s")
    try:
        if args.command == "list":
            return _list()
        return _run(args)
    except (StrategyError, OSError, tomllib.TOMLDecodeError, KeyError, TimeoutError, ControlError) as e:
        print(f"proptrade strategy: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
