"""What a recording (``c_engine/recording.py``) saves: parsing the original files against reading the recording.

Three data sets, each three ways, every way run ``--runs`` times, the ways of a data set taking turns (one run
of each per round), medians reported:

- **LOBSTER** (default: the full GOOG 2012-06-21 day, gzip): *parse* streams ``iter_messages`` and
  ``iter_book_lines`` side by side, as the replay reads them; *convert* is ``record_lobster``; *read* streams
  both iterators of ``iter_recorded_lobster`` side by side.
- **Binance** (default: the BTCUSDT sample, gzip): *parse* streams ``c_engine.binance.iter_messages``; *convert*
  ``record_binance``; *read* streams ``iter_recorded_binance``.
- **commands** (``--commands`` N synthetic commands, ``c_engine.flow.SyntheticFlow``, seed 1): *parse* is
  ``hotpath.journal.read_commands`` of a journal holding them (checksums verified: what a replay of a journal
  does); *convert* ``record_commands`` of the journal's array; *read* ``read_recorded_commands`` (one array) and
  *stream* ``iter_recorded_commands`` (a block at a time).

Every read is checked once, before timing, to give back exactly what the parse gives (the benchmark stops
otherwise); the timed runs only consume. Sizes: the input files as stored (gzip for the samples), their text
uncompressed, and the recording. Records are consumed and dropped, as a replay does: nothing is kept alive
between runs. Writes ``build/bench/recording.json``.

Usage: .venv/bin/python bench/recording_bench.py [--lobster MESSAGE ORDERBOOK] [--binance FILE] [--commands N]
[--runs 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit  # noqa: E402
from c_engine import COMMAND_DTYPE, SymbolConfig, binance, lobster  # noqa: E402
from c_engine.flow import SyntheticFlow  # noqa: E402
from c_engine.recording import (  # noqa: E402
    iter_recorded_binance,
    iter_recorded_commands,
    iter_recorded_lobster,
    read_recorded_commands,
    record_binance,
    record_commands,
    record_lobster,
)
from hotpath.journal import Journal, read_commands  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
GOOG = [DATA / "lobster" / f"GOOG_2012-06-21_34200000_57600000_{kind}_10.csv.gz" for kind in ("message", "orderbook")]
BINANCE = DATA / "binance" / "usdm_btcusdt_20240808.gz"
_now = time.perf_counter_ns
_MB = 1e6


def text_bytes(path: Path) -> int:
    """The file's size as text (decompressed when gzip)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if not gzipped:
        return path.stat().st_size
    size = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
    return size


def interleaved(runs: int, ways: dict[str, Callable[[], object]]) -> dict[str, tuple[float, list[float]]]:
    """Each way run ``runs`` times, one run of each per round (so a slow period of a shared machine falls on
    all of them alike); per way, the median and every run in seconds."""
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, once in ways.items():
            start = _now()
            once()
            times[name].append((_now() - start) / 1e9)
    return {name: (statistics.median(every), every) for name, every in times.items()}


def drain(*streams: Iterator[Any]) -> None:
    """Consumes the streams side by side, as a replay does."""
    for _ in zip(*streams, strict=True):
        pass


def check_equal(name: str, got: Iterator[Any], expected: Iterator[Any]) -> int:
    n = 0
    for n, (a, b) in enumerate(zip_longest(got, expected), start=1):
        if a != b or type(a) is not type(b):
            raise SystemExit(f"{name}: record {n} differs: {a!r} != {b!r}")
    return n


def row(data: str, way: str, median: float, every: list[float], records: int, mb: float) -> dict[str, Any]:
    return {"data": data, "way": way, "median_s": median, "runs_s": every, "records": records,
            "records_per_s": records / median if median else 0.0, "input_mb": mb}  # fmt: skip


def bench_lobster(message: Path, orderbook: Path, out: Path, runs: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    record_lobster(message, orderbook, out)  # warm-up, and the recording checked below
    got_messages, got_lines = iter_recorded_lobster(out)
    count = check_equal("lobster messages", got_messages, lobster.iter_messages(message))
    check_equal("lobster book lines", got_lines, lobster.iter_book_lines(orderbook))
    stored = message.stat().st_size + orderbook.stat().st_size
    recorded = out.stat().st_size
    t = interleaved(runs, {
        "parse": lambda: drain(lobster.iter_messages(message), lobster.iter_book_lines(orderbook)),
        "convert": lambda: record_lobster(message, orderbook, out),
        "read": lambda: drain(*iter_recorded_lobster(out)),
    })  # fmt: skip
    sizes = {"stored_mb": stored / _MB, "uncompressed_mb": (text_bytes(message) + text_bytes(orderbook)) / _MB,
             "recording_mb": recorded / _MB}  # fmt: skip
    name = f"lobster {message.name.split('_')[0]}"
    return [row(name, "parse", *t["parse"], count, stored / _MB), row(name, "convert", *t["convert"], count,
            stored / _MB), row(name, "read", *t["read"], count, recorded / _MB)], sizes  # fmt: skip


def bench_binance(path: Path, out: Path, runs: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    record_binance(path, out)
    count = check_equal("binance", iter_recorded_binance(out), binance.iter_messages(path))
    stored, recorded = path.stat().st_size, out.stat().st_size
    t = interleaved(runs, {
        "parse": lambda: drain(binance.iter_messages(path)),
        "convert": lambda: record_binance(path, out),
        "read": lambda: drain(iter_recorded_binance(out)),
    })  # fmt: skip
    sizes = {"stored_mb": stored / _MB, "uncompressed_mb": text_bytes(path) / _MB, "recording_mb": recorded / _MB}
    return [row("binance", "parse", *t["parse"], count, stored / _MB), row("binance", "convert", *t["convert"],
            count, stored / _MB), row("binance", "read", *t["read"], count, recorded / _MB)], sizes  # fmt: skip


def bench_commands(n: int, workdir: Path, runs: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    symbols = [SymbolConfig("SYN", tick_size=0.01, lot_size=1, max_price_ticks=1_000_000)]
    flow = SyntheticFlow(0, seed=1)
    journal, out = workdir / "syn.journal", workdir / "syn.parquet"
    with Journal.create(journal, n) as j:
        for start in range(0, n, 1 << 16):
            j.append(flow.next_batch(min(1 << 16, n - start), start * 1_000))
        j.flush()
    records = read_commands(journal)
    record_commands(records, symbols, out, sources=[journal], origin="synthetic seed=1")
    if read_recorded_commands(out)[1].tobytes() != records.tobytes():
        raise SystemExit("commands: the recording does not read back as the journal's records")
    stored, recorded = journal.stat().st_size, out.stat().st_size
    t = interleaved(runs, {
        "parse (journal)": lambda: read_commands(journal),
        "convert": lambda: record_commands(records, symbols, out),
        "read": lambda: read_recorded_commands(out),
        "stream": lambda: drain(iter_recorded_commands(out)),
    })  # fmt: skip
    sizes = {
        "stored_mb": stored / _MB,
        "uncompressed_mb": n * COMMAND_DTYPE.itemsize / _MB,
        "recording_mb": recorded / _MB,
    }
    return [row("commands", way, *t[way], n, (stored if way in ("parse (journal)", "convert") else recorded) / _MB)
            for way in t], sizes  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lobster", nargs=2, type=Path, default=GOOG, metavar=("MESSAGE", "ORDERBOOK"))
    parser.add_argument("--binance", type=Path, default=BINANCE, metavar="FILE")
    parser.add_argument("--commands", type=int, default=1_000_000, help="synthetic commands (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each way (default 5)")
    args = parser.parse_args(argv)
    for path in (*args.lobster, args.binance):
        if not path.is_file():
            print(f"{path}: no such file (the samples live in the shared data folder)", file=sys.stderr)
            return 2
    commit = git_commit("c_engine", "bench")
    print(f"recording bench: {args.runs} runs a way, medians; {args.commands:,} synthetic commands")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cpus; commit {commit}")
    rows: list[dict[str, Any]] = []
    sizes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="recording_bench_") as tmp:
        workdir = Path(tmp)
        for name, (part, size) in (
            ("lobster", bench_lobster(args.lobster[0], args.lobster[1], workdir / "lobster.parquet", args.runs)),
            ("binance", bench_binance(args.binance, workdir / "binance.parquet", args.runs)),
            ("commands", bench_commands(args.commands, workdir, args.runs)),
        ):
            rows += part
            sizes[name] = size

    print(f"{'data':<14} {'way':<16} {'median s':>9} {'records/s':>12}")
    for r in rows:
        print(f"{r['data']:<14} {r['way']:<16} {r['median_s']:>9.3f} {r['records_per_s']:>12,.0f}")
    print(f"{'data':<14} {'stored MB':>10} {'uncompressed MB':>16} {'recording MB':>13}")
    for name, s in sizes.items():
        print(f"{name:<14} {s['stored_mb']:>10.2f} {s['uncompressed_mb']:>10.2f} {s['recording_mb']:>13.2f}")

    out = ROOT / "build" / "bench" / "recording.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": args.runs, "commands": args.commands, "cpu": cpu_model(), "commit": commit,
                               "rows": rows, "sizes": sizes}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
