"""``proptrade``: the one command-line entry point, with subcommands.

::

    proptrade engine replay COMMANDS.jsonl --symbols SYMBOLS.toml [--limits LIMITS.toml] [--events EVENTS.jsonl]
                            [--l3 L3.json] [--engine c|reference]
    proptrade engine lobster MESSAGE.csv ORDERBOOK.csv [--tick 100] [--show 5] [--engine c|reference]
    proptrade journal dump JOURNAL [--symbols SYMBOLS.toml] [--out COMMANDS.jsonl]
    proptrade stats [PREFIX] [--interval S] [--count N]
    proptrade ctl [--prefix P | --endpoint E] OP [FIELD=VALUE ...]
    proptrade up [--config FILE.toml] [--seconds N] [--prefix P] [--print-config]
                 [--market lobster:MESSAGE[,ORDERBOOK] | binance:FILE] [--speed max|X] [--at-end stay|stop]
    proptrade demo [--seconds S] [--seed N]
    proptrade strategy|backtest ...    (the strategies package's own command line)
    proptrade ml|rl ...                (the ml package's)
    proptrade gateway ...              (the gateway package's)

The arguments of hotpath's subcommands are declared here; each subcommand's module is imported only when it runs
(its ``run(args)`` returns the exit code), so ``proptrade --help`` works before the C engine is built. The
packages above hotpath declare their own subcommands: ``proptrade NAME ARGS...`` calls ``main(ARGS)`` of the
module ``FORWARDED[NAME]`` names (by name, so hotpath imports nothing above it).

A usage error is one line on stderr and exit status 2, as every bad input of these commands is: ``proptrade
engine replay: error: argument --tick: ... (see proptrade engine replay --help)``, not argparse's usage block
first. Values are checked as they are parsed where a value alone can be wrong: a count is an integer >= 0, a
duration a finite number of seconds in its range (a NaN or negative timeout would wait forever, a huge one
overflows the clocks), a prefix a name that can be a shared-memory segment and an abstract socket, an
endpoint a ZeroMQ address a REQ socket can connect to, a ctl VALUE a JSON value nested at most
``MAX_FIELD_DEPTH`` deep. Ranges that depend on other inputs are the subcommand's to check.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from c_engine import EngineConfig  # pure Python: --help still works before the C build

__all__ = [
    "FORWARDED",
    "OneLineParser",
    "build_parser",
    "count_arg",
    "endpoint_arg",
    "int_arg",
    "main",
    "number_arg",
    "prefix_arg",
    "seconds_arg",
    "speed_arg",
    "timeout_arg",
]

#: a usage error's message is cut to this many characters (an unrecognized argument may be megabytes)
MAX_ERROR_CHARS = 400
#: the longest timeout, in seconds: a day
MAX_TIMEOUT_S = 86_400.0
#: the longest run or interval, in seconds: a year (Event.wait and sleep overflow far beyond it)
MAX_SECONDS = 365 * 86_400.0
#: a run's prefix: it names /dev/shm segments (NAME_MAX 255 with their suffixes) and is part of the control
#: socket's path (108 bytes at most), so short, and no "/" nor anything a shell would mangle
PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: ``proptrade ctl`` FIELD=VALUE: how deeply a JSON VALUE may nest (a control request is a flat object)
MAX_FIELD_DEPTH = 32
#: what a ZeroMQ REQ socket connects to: tcp://HOST:PORT, ipc://PATH (``@NAME``: abstract), inproc://NAME
_ENDPOINT = re.compile(
    r"tcp://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]):(?P<port>[0-9]{1,5})"
    r"|ipc://@?[^\x00]{1,100}|inproc://[^\x00]{1,256}"
)

#: subcommand -> (module whose ``main(argv) -> int`` runs it, help text)
FORWARDED = {
    "strategy": ("strategies.cli", "run a strategy against a running platform"),
    "backtest": ("strategies.backtest_cli", "backtest a strategy on recorded or synthetic data"),
    "ml": ("ml.cli", "train, evaluate and export short-term predictors"),
    "rl": ("ml.rl.cli", "train and export the reinforcement-learning market maker"),
    "gateway": ("gateway.cli", "run the REST/WebSocket gateway alone"),
}


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage error is one line on stderr, exit 2 (argparse prints its usage block
    first: many lines for a subcommand with many options). Subparsers are of the same class. The packages
    above hotpath build their command lines with it too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_cut(' '.join(message.split()), MAX_ERROR_CHARS)} (see {self.prog} "
                     "--help)\n")  # fmt: skip


def _cut(text: str, chars: int = 40) -> str:
    return text if len(text) <= chars else text[:chars] + "..."


def int_arg(low: int, high: int, what: str = "an integer") -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``low .. high``, else an error naming the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # not an integer, or more digits than int() takes
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{_cut(text)!r} is not {what} in {low}..{high}")
        return value

    return parse


def number_arg(low: float, high: float, *, low_open: bool = False, what: str = "a number") -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``low .. high`` (``low`` itself excluded with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > low if low_open else value >= low) and value <= high):
            bound = f"{'>' if low_open else '>='} {low:g}"
            raise argparse.ArgumentTypeError(f"{_cut(text)!r} is not {what} {bound} and <= {high:.15g}")
        return value

    return parse


#: an integer >= 0 (a number of lines, mismatches, messages)
count_arg = int_arg(0, (1 << 63) - 1, "a count")
#: a duration in seconds, 0 included (0 = no limit, or no interval), at most MAX_SECONDS
seconds_arg = number_arg(0.0, MAX_SECONDS, what="a number of seconds")
#: a timeout in seconds: > 0 and at most MAX_TIMEOUT_S
timeout_arg = number_arg(0.0, MAX_TIMEOUT_S, low_open=True, what="a number of seconds")
_seed = int_arg(0, (1 << 64) - 1, "a seed")


def speed_arg(text: str) -> str:
    """An argparse ``type``: a replay speed, ``max`` or a factor > 0 of the recorded speed (kept as text)."""
    if text.strip().lower() != "max":
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{_cut(text)!r} is not a speed: 'max' or a number > 0 (x recorded)")
    return text


def prefix_arg(text: str) -> str:
    """An argparse ``type``: a run's prefix (:data:`PREFIX`)."""
    if not PREFIX.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{_cut(text, 80)!r} is not a prefix (1-64 letters, digits, '_', '.' or "
                                         "'-', starting with a letter or digit)")  # fmt: skip
    return text


def endpoint_arg(text: str) -> str:
    """An argparse ``type``: an endpoint a ZeroMQ REQ socket connects to (tcp, ipc or inproc)."""
    found = _ENDPOINT.fullmatch(text)
    if not found or (found.group("port") is not None and not 0 < int(found.group("port")) < 65536):
        raise argparse.ArgumentTypeError(f"{_cut(text, 80)!r} is not an endpoint (tcp://HOST:PORT, ipc://PATH or "
                                         "ipc://@NAME, inproc://NAME)")  # fmt: skip
    return text


def _depth(value: Any) -> int:
    """How deeply a decoded JSON value nests (a scalar: 0), without recursing."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _field(text: str) -> str:
    """``proptrade ctl``'s FIELD=VALUE, checked; the text is passed on as it is (``hotpath.ctl`` parses it)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{_cut(text, 80)!r} is not FIELD=VALUE")
    try:
        decoded = json.loads(value)
    except RecursionError:
        raise argparse.ArgumentTypeError(f"{key}: VALUE nested deeper than {MAX_FIELD_DEPTH}") from None
    except ValueError:  # not JSON: a string, as hotpath.ctl takes it
        return text
    if _depth(decoded) > MAX_FIELD_DEPTH:
        raise argparse.ArgumentTypeError(f"{key}: VALUE nested deeper than {MAX_FIELD_DEPTH}")
    return text


def _lazy(module: str, function: str = "run") -> Callable[[argparse.Namespace], int]:
    def call(args: argparse.Namespace) -> int:
        code = getattr(importlib.import_module(module), function)(args)
        return int(code or 0)

    return call


def _engine_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("c", "reference"), default="c",
                        help="the C engine (default) or the pure-Python reference engine")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="proptrade", description="proptrade: matching engine and trading platform")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    engine = commands.add_parser("engine", help="run the matching engine on files")
    engine_commands = engine.add_subparsers(dest="engine_command", metavar="SUBCOMMAND", required=True)

    text = "feed a JSONL command file through the engine; write its events and final L3 book"
    replay = engine_commands.add_parser("replay", help=text, description=text)
    replay.add_argument("commands", metavar="COMMANDS.jsonl", help="the command file, one JSON object per line")
    replay.add_argument("--symbols", required=True, metavar="SYMBOLS.toml", help="the [symbols.NAME] tables")
    replay.add_argument("--limits", metavar="LIMITS.toml", help="client risk limits: [default] and [clients.N]")
    replay.add_argument("--events", metavar="EVENTS.jsonl", help="write every event here, one JSON object a line")
    replay.add_argument("--l3", metavar="L3.json", help="write the final order-by-order book here")
    defaults = EngineConfig()
    for field, text in (("max_orders", "resting orders the engine holds, at most 2^31 - 2"),
                        ("max_levels_per_side", "price levels per symbol and side, at most 2^23"),
                        ("max_clients", "client ids are 0 .. N-1")):  # fmt: skip
        replay.add_argument(f"--{field.replace('_', '-')}", type=int, default=getattr(defaults, field), metavar="N",
                            help=f"engine capacity: {text} (default {getattr(defaults, field)})")  # fmt: skip
    _engine_choice(replay)
    replay.set_defaults(func=_lazy("c_engine.replay"))

    text = "replay a LOBSTER day through the engine's matching and compare its book with every order-book row"
    lobster = engine_commands.add_parser("lobster", help=text, description=text)
    lobster.add_argument("message", metavar="MESSAGE.csv", help="LOBSTER message file")
    lobster.add_argument("orderbook", metavar="ORDERBOOK.csv", help="LOBSTER order-book file of the same day")
    lobster.add_argument("--tick", type=int, default=100,
                         help="tick size in LOBSTER price units (dollars x 10000); default 100 = $0.01")  # fmt: skip
    lobster.add_argument(
        "--show", type=count_arg, default=5, metavar="N", help="print the first N mismatches (default 5)"
    )
    _engine_choice(lobster)
    lobster.set_defaults(func=_lazy("c_engine.lobster"))

    text = "rebuild a Binance USD-M book from its diffs; check it against its book tickers and in the engine"
    binance = engine_commands.add_parser("binance", help=text, description=text)
    binance.add_argument("file", metavar="FILE", help="collector file: '<receive ns> <json>' lines, plain or gzip")
    binance.add_argument("--symbol", default="BTCUSDT", help="the contract (default BTCUSDT)")
    binance.add_argument("--tick", type=float, default=0.1, help="price tick (default 0.1)")
    binance.add_argument("--lot", type=float, default=0.001, help="quantity lot (default 0.001)")
    binance.add_argument(
        "--show", type=count_arg, default=5, metavar="N", help="print the first N mismatches (default 5)"
    )
    binance.set_defaults(func=_lazy("c_engine.binance"))

    journal = commands.add_parser("journal", help="read the engine process's command journal")
    journal_commands = journal.add_subparsers(dest="journal_command", metavar="SUBCOMMAND", required=True)
    text = "write a journal's commands as the command-file JSONL that `proptrade engine replay` accepts"
    jdump = journal_commands.add_parser("dump", help=text, description=text)
    jdump.add_argument("journal", metavar="JOURNAL", help="the journal file (EngineProcessConfig.journal_path)")
    jdump.add_argument("--symbols", metavar="SYMBOLS.toml",
                       help="the engine's symbols, to write names (ids in file order); without it symbol ids are "
                            "written as integers, which the command-file parser takes as wire codes")  # fmt: skip
    jdump.add_argument("--out", metavar="COMMANDS.jsonl", help="write here instead of stdout")
    jdump.set_defaults(func=_lazy("hotpath.journal", "run_dump"))
    text = "check every record's checksum and the header's count; exit 0 intact, 1 damaged, 2 not a journal"
    jverify = journal_commands.add_parser("verify", help=text, description=text)
    jverify.add_argument("journal", metavar="JOURNAL", help="the journal file (EngineProcessConfig.journal_path)")
    jverify.set_defaults(func=_lazy("hotpath.journal", "run_verify"))
    text = "copy a damaged journal's intact records, those before the first bad one, into a new journal"
    jsalvage = journal_commands.add_parser("salvage", help=text, description=text)
    jsalvage.add_argument("journal", metavar="JOURNAL", help="the damaged journal (left as it is)")
    jsalvage.add_argument("--out", required=True, metavar="NEW", help="the new journal (must not exist)")
    jsalvage.add_argument("--past-committed", action="store_true",
                          help="also copy the whole records after the header's count (a count known to be "
                               "stale, as after a power loss)")  # fmt: skip
    jsalvage.set_defaults(func=_lazy("hotpath.journal", "run_salvage"))

    text = "print the live counters of running engines from their shared-memory control blocks"
    stats = commands.add_parser("stats", help=text, description=text)
    stats.add_argument(
        "prefix", nargs="?", type=prefix_arg, help="the engine's segment prefix (default: every running engine)"
    )
    stats.add_argument("--interval", type=seconds_arg, default=0.0, metavar="S",
                       help="print again every S seconds, with rates (default: once)")  # fmt: skip
    stats.add_argument("--count", type=count_arg, default=0, metavar="N", help="with --interval: stop after N lines")
    stats.add_argument("--timeout", type=timeout_arg, default=2.0, metavar="S",
                       help="how long to wait for an engine's loop to show as running (default 2)")  # fmt: skip
    stats.set_defaults(func=_lazy("hotpath.stats"))

    text = "send one control-plane request to a running engine and print its JSON reply"
    ctl = commands.add_parser("ctl", help=text, description=text)
    ctl.add_argument("op", metavar="OP", help="the op: stats, position, snapshot, state_hash, kill_reset, ...")
    ctl.add_argument(
        "fields", nargs="*", type=_field, metavar="FIELD=VALUE", help="request fields; a VALUE in JSON is parsed"
    )
    where = ctl.add_mutually_exclusive_group()
    where.add_argument(
        "--prefix", type=prefix_arg, help="the engine run's prefix (default: the one engine running here)"
    )
    where.add_argument("--endpoint", type=endpoint_arg, help="the engine's control endpoint")
    ctl.add_argument("--timeout", type=timeout_arg, default=5.0, metavar="S", help="seconds to wait for the reply")
    ctl.set_defaults(func=_lazy("hotpath.ctl"))

    text = "start the platform (engine, bridge, agents) from a TOML config, show it live, stop it on Ctrl-C"
    up = commands.add_parser("up", help=text, description=text)
    up.add_argument("--config", metavar="FILE.toml", help="the platform config (default: the embedded one)")
    up.add_argument("--seconds", type=seconds_arg, default=0.0, help="stop after this many seconds; 0 = until Ctrl-C")
    up.add_argument("--prefix", type=prefix_arg, help="shared-memory prefix of the run (default: pt_PID_RANDOM)")
    up.add_argument("--print-config", action="store_true", help="print the embedded default config and exit")
    text = ("replay a recording as the market instead of the synthetic flow: lobster:MESSAGE[,ORDERBOOK] (the "
            "order-book file beside the message file by default) or binance:FILE; the agents of the config's first "
            "symbol trade the recording's (a [market] table of the config does the same)")  # fmt: skip
    up.add_argument("--market", metavar="SOURCE", help=text)
    text = "the replay's pace: max (default) or X times the recorded speed"
    up.add_argument("--speed", type=speed_arg, metavar="max|X", help=text)
    text = "at the end of the recording: keep its book until Ctrl-C (stay, default) or stop the run"
    up.add_argument("--at-end", choices=("stay", "stop"), help=text)
    up.set_defaults(func=_lazy("hotpath.launcher"))

    demo = commands.add_parser("demo", help="the in-process engine demo (no processes)")
    demo.add_argument("--seconds", type=seconds_arg, default=0.0, help="stop after this many seconds; 0 = until Ctrl-C")
    demo.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    demo.set_defaults(func=_lazy("c_engine.demo", "main"))
    for name, (_, text) in FORWARDED.items():
        # Listed for --help only: main() hands these to their package before argparse sees them.
        commands.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``proptrade`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in FORWARDED:
        module = importlib.import_module(FORWARDED[argv[0]][0])
        try:
            return int(module.main(argv[1:]) or 0)
        except KeyboardInterrupt:
            return 130
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a usage error (its one line printed) or --help: returned like any other status
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
