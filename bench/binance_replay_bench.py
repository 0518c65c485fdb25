"""What a Binance USD-M collector file costs to replay (``c_engine/binance.py``), stage by stage.

Four variants, each run ``--runs`` times, medians reported:

- **parse**: the file (gzip) to typed records, ``iter_messages`` (JSON, exact ticks and lots), streamed;
- **rebuild**: the records (parsed once, before) through ``BinanceCheck`` without the engine (book by update ids, every
  bookTicker matched and compared, the clock offset at the end);
- **rebuild + engine**: the same with ``BinanceReplay`` keeping the book in a fresh ``c_engine.Engine`` (one
  ``execute_batch`` per diff, the engine's top checked after each); the engine is built outside the timing;
- **whole command**: file to report, ``replay_binance`` with the engine (what ``proptrade engine binance``
  runs).

Rates are messages (every line of the file) per second; the engine variant also gives diffs and engine commands
per second. The streamed variants run first, with nothing else alive; the records of the other two are parsed
once and frozen out of the cyclic GC's walks (``gc.freeze``), as they are input, not work. Every run must find
0 gaps and 0 mismatches, or the benchmark stops. Writes ``build/bench/binance_replay.json``.

Usage: .venv/bin/python bench/binance_replay_bench.py [FILE] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit  # noqa: E402
from c_engine import Engine  # noqa: E402
from c_engine.binance import (  # noqa: E402
    ENGINE_CONFIG,
    BinanceCheck,
    BinanceReplay,
    BinanceReport,
    Message,
    iter_messages,
    replay_binance,
    symbol_config,
)

#: the sample the project's tests use, beside the repository
SAMPLE = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"
_now = time.perf_counter_ns


def _checked(report: BinanceReport) -> BinanceReport:
    if report.failed:
        raise SystemExit("the replay found gaps or mismatches:\n" + "\n".join(report.lines()))
    return report


def time_parse(path: Path) -> int:
    """Streamed, as the command reads it: no record is kept."""
    start = _now()
    for _ in iter_messages(path):
        pass
    return _now() - start


def time_rebuild(messages: list[Message], path: Path) -> tuple[int, BinanceReport]:
    check = BinanceCheck(BinanceReport(path.name, "BTCUSDT"))
    start = _now()
    for msg in messages:
        check.feed(msg)
    report = check.finish()
    return _now() - start, _checked(report)


def time_engine(messages: list[Message], path: Path) -> tuple[int, BinanceReport]:
    engine = Engine(ENGINE_CONFIG)
    engine.add_symbol(symbol_config())
    check = BinanceCheck(BinanceReport(path.name, "BTCUSDT", engine=True), BinanceReplay(engine))
    start = _now()
    for msg in messages:
        check.feed(msg)
    report = check.finish()
    return _now() - start, _checked(report)


def time_whole(path: Path) -> tuple[int, BinanceReport]:
    start = _now()
    report = replay_binance(path)
    return _now() - start, _checked(report)


def median_ns(runs: int, once: Callable[[], int]) -> tuple[int, list[int]]:
    times = [once() for _ in range(runs)]
    return int(statistics.median(times)), times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("file", nargs="?", type=Path, default=SAMPLE, help=f"collector file (default {SAMPLE})")
    parser.add_argument("--runs", type=int, default=5, help="runs of each variant (default 5)")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"{args.file}: no such file (the Binance sample lives in the shared data folder)", file=sys.stderr)
        return 2
    path: Path = args.file
    print(f"binance replay bench: {path.name}, {args.runs} runs a variant, medians")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cpus; commit {git_commit('c_engine', 'bench')}")

    # Warm-up: the file cache, the engine library, first allocations.
    time_whole(path)
    # The streamed variants first, while nothing else is alive: Python's cyclic GC walks every live container,
    # so the records kept for the next two would slow them (by a second, for the whole command).
    parse_ns, parse_all = median_ns(args.runs, lambda: time_parse(path))
    whole_ns, whole_all = median_ns(args.runs, lambda: time_whole(path)[0])
    # The records the next two start from, parsed once and frozen out of the GC's walks (they are input).
    messages: list[Message] = list(iter_messages(path))
    count = len(messages)
    gc.freeze()
    rebuild_ns, rebuild_all = median_ns(args.runs, lambda: time_rebuild(messages, path)[0])
    reports: list[BinanceReport] = []

    def engine_once() -> int:
        ns, report = time_engine(messages, path)
        reports.append(report)
        return ns

    engine_ns, engine_all = median_ns(args.runs, engine_once)
    report = reports[-1]

    rows: list[dict[str, Any]] = []
    for name, ns, every in (("parse", parse_ns, parse_all), ("rebuild", rebuild_ns, rebuild_all),
                            ("rebuild + engine", engine_ns, engine_all),
                            ("whole command", whole_ns, whole_all)):  # fmt: skip
        rows.append({"variant": name, "median_s": ns / 1e9, "runs_s": [t / 1e9 for t in every],
                     "messages_per_s": count / (ns / 1e9)})  # fmt: skip
    print(f"messages {count}: {report.diffs} diffs ({report.applied} applied), {report.tickers} book tickers, "
          f"{report.trades} trades; engine commands {report.engine_commands}")  # fmt: skip
    print(f"{'variant':<18} {'median s':>9} {'messages/s':>12}")
    for row in rows:
        print(f"{row['variant']:<18} {row['median_s']:>9.3f} {row['messages_per_s']:>12,.0f}")
    print(f"rebuild + engine: {report.applied / (engine_ns / 1e9):,.0f} diffs/s, "
          f"{report.engine_commands / (engine_ns / 1e9):,.0f} engine commands/s")  # fmt: skip

    out = ROOT / "build" / "bench" / "binance_replay.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"file": path.name, "messages": count, "diffs_applied": report.applied,
                               "engine_commands": report.engine_commands, "runs": args.runs,
                               "cpu": cpu_model(), "commit": git_commit("c_engine", "bench"),
                               "variants": rows}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
