"""Parameter sweeps: one backtest per point of a grid, on a local process pool or a Ray cluster, one table.

::

    proptrade backtest sweep --grid grid.toml [--workers N] [--ray ADDRESS|local] [--out table.csv]

The grid file names a source with the fields of ``proptrade backtest``'s subcommands, the fill assumptions
(the subcommands' common flags), a strategy with fixed parameters, and lists of values to sweep::

    [source]                  # kind: synthetic | lobster | binance | journal; then that subcommand's fields
    kind = "synthetic"
    messages = 20000
    seed = 1

    [backtest]                # optional: entry_latency_us, response_latency_us, md_latency_us, maker_fee_bps,
    maker_fee_bps = -0.2      # taker_fee_bps, multiplier, currency, record_interval (seconds)

    [strategy]
    name = "inventory_skew"
    size = 5                  # fixed parameters (``proptrade strategy list`` names them)

    [sweep]                   # each a list; every combination is one backtest (a Cartesian product)
    half_spread = [0.01, 0.02, 0.05]
    skew = [0.0, 0.002]
    "source.seed" = [1, 2]

Choices, and why:

- **The CLI's own backtest.** A point is the ``argparse.Namespace`` that the matching ``proptrade backtest
  SOURCE ...`` command line would give, run by :func:`strategies.backtest_cli.run_backtest`: a row of the table
  is exactly what that command prints, and a grid accepts exactly the CLI's fields (their names are the flags'
  ``dest``: ``mean_gap_us``, ``entry_latency_us``; positionals by name: ``message``, ``orderbook``,
  ``capture``, ``journal``), each value parsed by the CLI's own parser as its flag would be (the same ranges
  and messages). Relative file paths are relative to the grid file.
- **Sweep keys** are a field's plain name, resolved in the strategy's parameters, then the source's fields,
  then the fill assumptions (a name found in two is an error: write it ``strategy.NAME``, ``source.NAME`` or
  ``backtest.NAME``). Keys vary in the order written, the last fastest, so point ``i`` is the same point for
  the same file.
- **Everything is checked before anything runs**: an unknown field, a value of the wrong type, a parameter the
  strategy does not have or cannot take (the registry's checks) fail the whole sweep with one line, so a long
  sweep does not stop at its 400th point on a typo.
- **Process pool by default**, ``concurrent.futures`` with the *spawn* context: a worker is a fresh
  interpreter, never a fork of a parent that may hold threads (Ray's, tqdm's) or a loaded engine, so a point
  runs in the same state on a pool, on Ray, or in the parent (``workers=0``, for debugging). ``--ray ADDRESS``
  sends each point to a Ray cluster as a task of one CPU (``--ray local`` starts a local instance with
  ``workers`` CPUs, or all); Ray is an optional extra (``pip install .[ray]``), imported only then. On a
  cluster, every node needs proptrade installed and the data files at the same path.
- **One table, deterministic.** Rows are in point order whatever order they finish in; columns are ``point``,
  the swept keys, the run's counts and every numeric metric of :class:`strategies.metrics.PerformanceMetrics`
  flattened (``realised_spread[5s].ticks``). The CSV writes floats with ``repr`` (they read back exactly; NaN
  is ``nan``, a missing value empty), so two runs of a grid give the same bytes wherever they ran.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import itertools
import os
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .registry import STRATEGIES, StrategyError, flag_name, strategy_params

__all__ = [
    "BACKTEST_FIELDS",
    "GridError",
    "SweepError",
    "SOURCE_KINDS",
    "SOURCE_POSITIONALS",
    "SUMMARY_COLUMNS",
    "SweepGrid",
    "SweepPoint",
    "SweepTable",
    "load_grid",
    "main",
    "parse_grid",
    "run_point",
    "run_sweep",
]

#: the positional arguments of each ``proptrade backtest`` source subcommand, by ``dest`` (file paths)
SOURCE_POSITIONALS: dict[str, tuple[str, ...]] = {
    "synthetic": (),
    "lobster": ("message", "orderbook"),
    "binance": ("capture",),
    "journal": ("journal",),
}
SOURCE_KINDS = tuple(SOURCE_POSITIONALS)
#: each subcommand's fields that are file paths (resolved against the grid file's directory): its
#: positionals, and the journal's required ``--symbols``
_PATHS = {**SOURCE_POSITIONALS, "journal": ("journal", "symbols")}
#: the subcommands' common flags that are fill assumptions (``[backtest]``), by ``dest``
BACKTEST_FIELDS = (
    "entry_latency_us",
    "response_latency_us",
    "md_latency_us",
    "maker_fee_bps",
    "taker_fee_bps",
    "multiplier",
    "currency",
    "record_interval",
)
#: the CLI's own fields that a grid does not set (the strategy is ``[strategy] name``; no per-point reports)
_NOT_GRID = {"kind", "strategy", "config", "report"}
#: the run's count of messages replayed, before the metrics (which count fills and quotes themselves)
SUMMARY_COLUMNS = ("messages",)
#: metrics left out of the table: text, and the per-horizon counts (the table's fills column says enough)
_SKIPPED_METRICS = ("symbol_id", "mid_source", "sharpe_convention")
#: the columns the printed table shows after the swept keys (the CSV has them all)
_SHOWN = ("fills", "quotes_sent", "final_pnl", "final_position", "time_weighted_abs_inventory",
          "effective_spread.ticks", "sharpe", "drawdown.max_currency")  # fmt: skip
_PLACEHOLDER = "\0path"


class GridError(ValueError):
    """A grid file that cannot be run: what is wrong, naming the file and the field."""


class SweepError(RuntimeError):
    """A point whose backtest failed (bad data, a strategy error): the point and the error, in one line."""


@dataclass(frozen=True)
class SweepPoint:
    """One backtest of a sweep: its index, its swept values (key -> value) and the CLI namespace it runs."""

    index: int
    values: tuple[tuple[str, Any], ...]
    args: argparse.Namespace


@dataclass(frozen=True)
class SweepGrid:
    """A parsed grid: the fixed namespace and the swept keys, each resolved to the namespace's ``dest``."""

    path: str
    kind: str
    strategy: str
    base: argparse.Namespace
    #: (key as written, namespace dest, values)
    axes: tuple[tuple[str, str, tuple[Any, ...]], ...]

    def points(self) -> list[SweepPoint]:
        """Every combination, the last key varying fastest."""
        out = []
        keys = [key for key, _, _ in self.axes]
        for index, combo in enumerate(itertools.product(*(values for _, _, values in self.axes))):
            args = argparse.Namespace(**vars(self.base))
            for (_, dest, _), value in zip(self.axes, combo, strict=True):
                setattr(args, dest, value)
            out.append(SweepPoint(index, tuple(zip(keys, combo, strict=True)), args))
        return out


def _prefix(kind: str, strategy: str) -> list[str]:
    """The shortest ``proptrade backtest KIND ...`` command line: placeholders for the files it requires."""
    positionals = [_PLACEHOLDER] * len(SOURCE_POSITIONALS[kind])
    required = ["--symbols", _PLACEHOLDER] if kind == "journal" else []
    return [kind, *positionals, *required, "--strategy", strategy]


class _Fields:
    """The namespace dests a grid may set, by section, for one source kind and strategy; values are parsed by
    the CLI's own parser, so a grid takes what the command line takes, with its ranges and messages."""

    def __init__(self, kind: str, strategy: str) -> None:
        from .backtest_cli import build_parser
        from .registry import parameter_fields

        self.parser = build_parser()
        self.prefix = _prefix(kind, strategy)
        self.template = self.parser.parse_args(self.prefix)
        names = set(vars(self.template)) - _NOT_GRID
        self.paths = set(_PATHS[kind])
        self.strategy = {f.name for f in parameter_fields(strategy)}
        self.backtest = set(BACKTEST_FIELDS)
        self.source = {n for n in names if not n.startswith(("param_", "opt_"))} - self.backtest

    def dest(self, section: str, name: str) -> str:
        if section == "strategy":
            return f"param_{name}"
        return name

    def sections_of(self, name: str) -> list[str]:
        return [s for s in ("strategy", "source", "backtest") if name in getattr(self, s)]

    def check(self, where: str, section: str, name: str) -> None:
        if name not in getattr(self, section):
            known = ", ".join(sorted(getattr(self, section))) or "none"
            raise GridError(f"{where}: no {section} field {name!r} here; the fields are: {known}")

    def convert(self, where: str, section: str, name: str, value: Any, base_dir: Path) -> Any:
        """``value`` as the command line would have parsed it (its flag given ``str(value)``)."""
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise GridError(f"{where}: a number or text, not {value!r}")
        if section == "source" and name in self.paths:
            if not isinstance(value, str) or not value:
                raise GridError(f"{where}: a file path, not {value!r}")
            return value if os.path.isabs(value) else str(base_dir / value)
        flag = f"--{flag_name(name)}" if section == "strategy" else f"--{name.replace('_', '-')}"
        text = repr(value) if isinstance(value, float) else str(value)  # repr: the float, read back exactly
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parsed = self.parser.parse_args([*self.prefix, f"{flag}={text}"])
        except SystemExit:
            message = err.getvalue().strip().partition("error: ")[2].split(" (see ")[0]
            raise GridError(f"{where}: {message or 'refused by the command line'}") from None
        return getattr(parsed, self.dest(section, name))


def _table(grid: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    table = grid.get(name, {})
    if not isinstance(table, dict):
        raise GridError(f"{where}: [{name}] must be a table")
    return table


def parse_grid(grid: dict[str, Any], *, path: str = "grid", base_dir: str | Path = ".") -> SweepGrid:
    """A grid from its TOML table (see the module); ``base_dir`` anchors relative file paths."""
    base = Path(base_dir)
    unknown = set(grid) - {"source", "backtest", "strategy", "sweep"}
    if unknown:
        raise GridError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; a grid has [source], [backtest], "
                        f"[strategy] and [sweep]")  # fmt: skip
    source = dict(_table(grid, "source", path))
    backtest = _table(grid, "backtest", path)
    strategy = dict(_table(grid, "strategy", path))
    sweep = _table(grid, "sweep", path)
    kind = source.pop("kind", None)
    if kind not in SOURCE_POSITIONALS:
        raise GridError(f"{path}: [source] kind must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
    name = strategy.pop("name", None)
    if name not in STRATEGIES:
        raise GridError(f"{path}: [strategy] name must be one of {', '.join(STRATEGIES)}, not {name!r}")
    fields = _Fields(kind, name)
    args = argparse.Namespace(**vars(fields.template))
    for section, table in (("source", source), ("backtest", backtest), ("strategy", strategy)):
        for key, value in table.items():
            where = f"{path}: [{section}] {key}"
            fields.check(where, section, key)
            setattr(args, fields.dest(section, key), fields.convert(where, section, key, value, base))
    axes = []
    for key, values in sweep.items():
        where = f"{path}: [sweep] {key}"
        if "." in key:
            section, _, field = key.partition(".")
            if section not in ("strategy", "source", "backtest"):
                raise GridError(f"{where}: the section must be strategy, source or backtest")
            fields.check(where, section, field)
        else:
            found = fields.sections_of(key)
            if not found:
                raise GridError(f"{where}: no field {key!r} in the strategy {name!r}, the {kind} source or the "
                                f"fill assumptions")  # fmt: skip
            if len(found) > 1:
                raise GridError(f"{where}: {key!r} is a field of {' and '.join(found)}: write "
                                f"{' or '.join(f'{s}.{key}' for s in found)}")  # fmt: skip
            section, field = found[0], key
        if not isinstance(values, list) or not values:
            raise GridError(f"{where}: a non-empty list of values")
        converted = tuple(fields.convert(f"{where}[{i}]", section, field, v, base) for i, v in enumerate(values))
        axes.append((key, fields.dest(section, field), converted))
    dests = [dest for _, dest, _ in axes]
    if len(set(dests)) != len(dests):
        raise GridError(f"{path}: [sweep] names one field twice")
    missing = [p for p in _PATHS[kind] if getattr(args, p) == _PLACEHOLDER and p not in dests]
    if missing:
        raise GridError(f"{path}: the {kind} source needs {', '.join(missing)} (a file path)")
    parsed = SweepGrid(path, kind, name, args, tuple(axes))
    for point in parsed.points():  # every point's parameters, checked before any runs
        try:
            strategy_params(name, "SYMBOL", _param_values(point.args))
        except StrategyError as e:
            raise GridError(f"{path}: point {point.index} ({_describe(point)}): {e}") from None
    return parsed


def load_grid(path: str | os.PathLike[str]) -> SweepGrid:
    """A grid file (TOML); relative paths in it are relative to its directory."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            table = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise GridError(f"{p}: {e}") from None
    return parse_grid(table, path=str(p), base_dir=p.parent)


def _param_values(args: argparse.Namespace) -> dict[str, Any]:
    return {k.removeprefix("param_"): v for k, v in vars(args).items() if k.startswith("param_") and v is not None}


def _describe(point: SweepPoint) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.values) or "the only point"


# --- running ----------------------------------------------------------------------------------------------


def run_point(point: SweepPoint) -> list[tuple[str, Any]]:
    """Runs one point's backtest (in whichever process this is); returns its (column, value) pairs."""
    from .backtest_cli import _flat, run_backtest

    summary = run_backtest(point.args)
    row: list[tuple[str, Any]] = [(name, summary[name]) for name in SUMMARY_COLUMNS]
    for key, value in _flat("", summary["metrics"]):
        if key in _SKIPPED_METRICS or ("[" in key and key.endswith(("horizon_s", ".fills", ".lots"))):
            continue
        row.append((key, value))
    return row


@dataclass(frozen=True)
class SweepTable:
    """The sweep's result: one row per point, in point order."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    #: how many leading columns (after ``point``) are swept keys
    keys: int

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([_csv_value(v) for v in row])
        return out.getvalue()

    def format(self) -> str:
        """A fixed-width text table of the keys and the main metrics (the CSV has every column)."""
        shown = list(range(1 + self.keys)) + [self.columns.index(c) for c in _SHOWN if c in self.columns]
        cells = [[self.columns[i] for i in shown]]
        cells += [[_short(row[i]) for i in shown] for row in self.rows]
        widths = [max(len(r[j]) for r in cells) for j in range(len(shown))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if value != value else repr(value)
    return str(value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _progress(total: int, show: bool) -> Callable[[int], None]:
    """A callback taking the number of points done: a tqdm bar on a terminal, else a line per point."""
    if not show:
        return lambda done: None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="point", desc="sweep", file=sys.stderr)

        def update(done: int) -> None:
            bar.update(done - bar.n)
            if done == total:
                bar.close()

        return update
    return lambda done: print(f"sweep: {done}/{total} points done", file=sys.stderr, flush=True)


def _failed(point: SweepPoint, error: BaseException) -> SweepError:
    return SweepError(f"point {point.index} ({_describe(point)}) failed: {type(error).__name__}: {error}")


def _in_process(points: Sequence[SweepPoint]) -> Iterator[tuple[int, list[tuple[str, Any]]]]:
    for point in points:
        try:
            row = run_point(point)
        except Exception as e:
            raise _failed(point, e) from e
        yield point.index, row


def _on_pool(points: Sequence[SweepPoint], workers: int) -> Iterator[tuple[int, list[tuple[str, Any]]]]:
    import concurrent.futures as cf
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_point, p): p for p in points}
        try:
            for future in cf.as_completed(futures):
                point = futures[future]
                error = future.exception()
                if error is not None:
                    raise _failed(point, error)
                yield point.index, future.result()
        finally:
            for future in futures:
                future.cancel()


def _on_ray(points: Sequence[SweepPoint], address: str, workers: int | None) -> Iterator[tuple[int, list[Any]]]:
    try:
        import ray
    except ImportError:
        raise GridError("--ray needs Ray: pip install 'proptrade[ray]'") from None
    started = not ray.is_initialized()
    if started:
        if address == "local":
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_point)
        pending = {task.remote(p): p for p in points}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                point = pending.pop(ref)
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    raise _failed(point, e.cause if isinstance(e.cause, BaseException) else e) from None
                yield point.index, row
    finally:
        if started:
            ray.shutdown()


def run_sweep(
    grid: SweepGrid,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = False,
) -> SweepTable:
    """Runs every point of ``grid`` and returns the table.

    ``workers``: pool size (default: the CPU count; 0 runs the points one after another in this process);
    ``ray_address``: a Ray cluster's address, or ``"local"`` to start one here, instead of the pool;
    ``progress``: show progress on stderr.
    """
    points = grid.points()
    if workers is not None and workers < 0:
        raise GridError("workers cannot be negative")
    results: dict[int, list[tuple[str, Any]]] = {}
    update = _progress(len(points), progress)
    source: Iterable[tuple[int, list[tuple[str, Any]]]]
    if ray_address is not None:
        source = _on_ray(points, ray_address, workers)
    elif workers == 0:
        source = _in_process(points)
    else:
        source = _on_pool(points, min(workers or os.cpu_count() or 1, len(points)))
    for index, row in source:
        results[index] = row
        update(len(results))
    columns = ["point", *(key for key, _, _ in grid.axes)]
    first = results[points[0].index] if points else []
    columns += [name for name, _ in first]
    rows = []
    for p in points:
        row = results[p.index]
        if [name for name, _ in row] != columns[1 + len(grid.axes) :]:
            raise RuntimeError(f"point {p.index} gave other columns than point 0")
        rows.append((p.index, *(v for _, v in p.values), *(v for _, v in row)))
    return SweepTable(tuple(columns), tuple(rows), len(grid.axes))


def main(args: argparse.Namespace) -> int:
    """``proptrade backtest sweep``: exit 0; 2 for a grid that cannot run, 1 for a point that failed (one line)."""
    try:
        grid = load_grid(args.grid)
        print(f"sweep: {len(grid.points())} points of {grid.strategy} on {grid.kind} ({args.grid})",
              file=sys.stderr)  # fmt: skip
        table = run_sweep(grid, workers=args.workers, ray_address=args.ray, progress=True)
    except (GridError, OSError) as e:
        print(f"proptrade backtest sweep: {e}", file=sys.stderr)
        return 2
    except SweepError as e:
        print(f"proptrade backtest sweep: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(table.format())
    if args.out:
        Path(args.out).write_text(table.to_csv())
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
