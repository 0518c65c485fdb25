"""This engine against open-source order books on one op stream, in interleaved rounds on one core.

Each round runs every engine's adapter once, in a fixed order, each pinned with ``taskset -c CORE`` (default the
last core), so that engines measured in the same round share the machine's state: on a shared VM whose speed
changes every few seconds, a ratio taken within a round is steadier than either side's ops/s. An adapter
(``bench/peers/*_adapter*``, built by ``bench/peers/build.sh``) replays ``mix_2M_s42.bin`` and prints one
``RESULT`` line (``bench/peers/peers.h``): throughput over the 2 M ops, then per-op latency percentiles from a
second pass. A result counts only with ``ok=1``: the engine reproduced the file's trades, lots traded and live
orders, with no reject.

The summary gives, per engine, the median and range of ops/s and the medians of p50/p99/p99.9, then for every
peer the ratio proptrade / peer of each round (median, range, every round), with the CPU, the core, the commit
and the load average before and after. Every result also goes to ``--out`` as one JSON line (appended).

Without a peer adapter (``PEERS_SRC`` unset when building) it says so and exits 0: the peers' sources are not
part of the project.

``--also NAME=BINARY`` (repeatable) adds another adapter binary to every round under NAME, such as this engine's
adapter built from an older commit: its ratio is taken like a peer's, so a change to the engine is measured in
the same rounds as the peers.

Usage: .venv/bin/python bench/peers/run_rounds.py [--rounds N] [--core C] [--bin build/peers]
       [--engines proptrade,geseq,liquibook] [--also NAME=BINARY ...] [--out build/peers/rounds.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit  # noqa: E402

__all__ = ["ADAPTERS", "BASELINE", "MIN_ROUNDS", "main", "parse_result", "summarize"]

#: Each engine's adapter binary in the build folder.
ADAPTERS = {"proptrade": "pt_adapter", "geseq": "geseq_adapter", "liquibook": "liquibook_adapter"}
MIX_FILE = "mix_2M_s42.bin"  #: what build.sh generates: 2 M ops, seed 42
MIN_ROUNDS = 7  #: fewer rounds give a median that one slow period can move
BASELINE = "proptrade"  #: the engine every ratio is taken of


def parse_result(line: str) -> dict[str, str | float]:
    """The key=value fields of a ``RESULT`` line; numbers as floats, the rest (engine, checksum) as strings."""
    fields: dict[str, str | float] = {}
    for token in line.split()[1:]:
        key, _, value = token.partition("=")
        try:
            fields[key] = float(value) if key not in ("engine", "checksum") else value
        except ValueError:
            fields[key] = value
    return fields


def loadavg() -> str:
    """The first three fields of /proc/loadavg."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run_adapter(binary: Path, mix: Path, core: int) -> dict[str, str | float] | None:
    """One run of an adapter pinned to core; None (and the reason printed) when it failed or did not count."""
    proc = subprocess.run(["taskset", "-c", str(core), str(binary), str(mix)], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"  {binary.name} failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}", flush=True)
        return None
    result = parse_result(lines[0])
    if result.get("ok") != 1.0:
        print(f"  {binary.name} did not reproduce the mix's figures: {lines[0]}", flush=True)
        return None
    return result


def _median(rows: list[dict[str, str | float]], key: str) -> float:
    return statistics.median(float(r[key]) for r in rows)


def summarize(rounds: list[dict[str, dict[str, str | float]]], engines: list[str]) -> list[str]:
    """The summary lines: per engine ops/s and latency medians, then per peer the per-round ratio."""
    out = [
        f"{'engine':10s} {'runs':>4s} {'M ops/s median':>14s} {'[min - max]':>15s} {'per CPU-s':>9s} "
        f"{'p50 ns':>7s} {'p99 ns':>7s} {'p99.9 ns':>8s}"
    ]
    for engine in engines:
        rows = [r[engine] for r in rounds if engine in r]
        if not rows:
            continue
        ops = [float(r["tp_ops_s"]) / 1e6 for r in rows]
        out.append(
            f"{engine:10s} {len(rows):4d} {statistics.median(ops):14.2f} [{min(ops):6.2f} - {max(ops):6.2f}] "
            f"{_median(rows, 'tp_cpu_ops_s') / 1e6:9.2f} {_median(rows, 'p50_ns'):7.0f} "
            f"{_median(rows, 'p99_ns'):7.0f} {_median(rows, 'p999_ns'):8.0f}"
        )
    for peer in (e for e in engines if e != BASELINE):
        pairs = [(i + 1, r) for i, r in enumerate(rounds) if BASELINE in r and peer in r]
        if not pairs:
            continue
        ratios = [float(r[BASELINE]["tp_ops_s"]) / float(r[peer]["tp_ops_s"]) for _, r in pairs]
        out.append(
            f"ratio {BASELINE}/{peer} per round (ops/s): median {statistics.median(ratios):.3f}, "
            f"range {min(ratios):.3f} - {max(ratios):.3f} over {len(ratios)} rounds"
        )
        out.append("  rounds: " + " ".join(f"{i}:{x:.3f}" for (i, _), x in zip(pairs, ratios, strict=True)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--core", type=int, default=(os.cpu_count() or 1) - 1)
    parser.add_argument("--bin", type=Path, default=ROOT / "build" / "peers")
    parser.add_argument("--engines", default=",".join(ADAPTERS))
    parser.add_argument("--out", type=Path, default=None, help="JSON lines, appended (default BIN/rounds.jsonl)")
    parser.add_argument(
        "--also", action="append", default=[], metavar="NAME=BINARY", help="another adapter binary in every round"
    )
    args = parser.parse_args(argv)
    if args.rounds < MIN_ROUNDS:
        parser.error(f"--rounds: at least {MIN_ROUNDS}")
    engines = [e for e in args.engines.split(",") if e]
    unknown = [e for e in engines if e not in ADAPTERS]
    if unknown:
        parser.error(f"unknown engines {unknown}: {sorted(ADAPTERS)}")
    also: dict[str, Path] = {}
    for spec in args.also:
        name, sep, binary = spec.partition("=")
        if not sep or not name or name in ADAPTERS or name in also or not Path(binary).is_file():
            parser.error(f"--also {spec}: NAME=BINARY, a new name and an existing file")
        also[name] = Path(binary)
    mix = args.bin / MIX_FILE
    built = [e for e in engines if (args.bin / ADAPTERS[e]).is_file()]
    if BASELINE not in built or not mix.is_file():
        print(f"bench-peers: {args.bin} has no {ADAPTERS[BASELINE]} or {MIX_FILE}: run bench/peers/build.sh first")
        return 1
    if len(built) == 1 and not also:
        print("bench-peers: skipped, no peer adapter built: set PEERS_SRC to the peers' sources (bench/peers/build.sh)")
        return 0
    missing = sorted(set(engines) - set(built))
    binaries = {e: args.bin / ADAPTERS[e] for e in built} | also
    commit = git_commit("c_engine", "bench/peers")
    load_start = loadavg()
    print(f"bench-peers  {time.strftime('%Y-%m-%d %H:%M:%S')}  commit {commit}  {cpu_model()}")
    print(f"{args.rounds} interleaved rounds of {', '.join(binaries)} pinned to core {args.core}; mix {mix}")
    if missing:
        print(f"not built, left out: {', '.join(missing)}")
    print(f"load average at start {load_start}", flush=True)
    out_path = args.out or args.bin / "rounds.jsonl"
    rounds: list[dict[str, dict[str, str | float]]] = []
    with out_path.open("a") as log:
        for n in range(1, args.rounds + 1):
            this_round: dict[str, dict[str, str | float]] = {}
            for engine, binary in binaries.items():
                load = loadavg()
                result = run_adapter(binary, mix, args.core)
                if result is None:
                    continue
                this_round[engine] = result
                log.write(
                    json.dumps({**result, "engine": engine, "round": n, "commit": commit, "loadavg": load}) + "\n"
                )
                print(
                    f"round {n:2d} {engine:10s} {float(result['tp_ops_s']) / 1e6:7.2f} M ops/s  "
                    f"p50 {float(result['p50_ns']):5.0f}  p99 {float(result['p99_ns']):5.0f}  "
                    f"p99.9 {float(result['p999_ns']):5.0f} ns  load {load.split()[0]}",
                    flush=True,
                )
            rounds.append(this_round)
    print(f"load average at end {loadavg()}\n")
    print("\n".join(summarize(rounds, list(binaries))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
