"""The conformance scenarios of ``../shared/conformance`` through ``proptrade engine replay``.

Each scenario's trades, rejected lines and final L3 book must equal its ``.expected.json`` exactly (the rules of
the folder's README). On top of that, every scenario's events must show a book that is never crossed or locked
after a command, and conserve every order's quantity: ACK qty + modify changes = fills + cancels + final open.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from c_engine import EventType, Side
from c_engine.commandfile import iter_commands, load_symbols
from c_engine.replay import engine_class
from hotpath.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO.parent / "shared" / "conformance"

if not (CONFORMANCE / "SYMBOLS.toml").is_file():
    pytest.skip(
        f"conformance scenarios not found at {CONFORMANCE} (the shared folder beside the project is absent)",
        allow_module_level=True,
    )

SYMBOLS = CONFORMANCE / "SYMBOLS.toml"
SCENARIOS = sorted(CONFORMANCE.glob("*.jsonl"))
#: the reference engine is held to the scenarios too, once it exists
ENGINES = ["c"] + (["reference"] if importlib.util.find_spec("c_engine.reference") else [])


Outputs = tuple[list[dict[str, Any]], dict[str, Any]]
_replayed: dict[tuple[Path, str], Outputs] = {}


@pytest.fixture
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``replayed(scenario, engine)``: the scenario's events and L3, replayed once per test session."""

    def get(scenario: Path, engine: str = "c") -> Outputs:
        key = (scenario, engine)
        if key not in _replayed:
            _replayed[key] = replay(scenario, tmp_path_factory.mktemp(scenario.stem), engine)
        return _replayed[key]

    return get


def replay(scenario: Path, out: Path, engine: str = "c") -> Outputs:
    events_path, l3_path = out / f"{scenario.stem}.events.jsonl", out / f"{scenario.stem}.l3.json"
    argv = ["engine", "replay", str(scenario), "--symbols", str(SYMBOLS), "--events", str(events_path),
            "--l3", str(l3_path), "--engine", engine]  # fmt: skip
    assert main(argv) == 0, f"{scenario.stem}: replay failed"
    return read_outputs(events_path, l3_path)


def read_outputs(events_path: Path, l3_path: Path) -> Outputs:
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    return events, json.loads(l3_path.read_text())


def observed(events: list[dict[str, Any]], l3: dict[str, Any]) -> dict[str, Any]:
    """The three values the README compares, built from the replay's outputs."""
    return {
        "trades": [
            [e["symbol"], e["price"], e["qty"], e["maker_order_id"], e["taker_order_id"]]
            for e in events
            if e["type"] == "TRADE"
        ],
        "rejected_lines": sorted({e["ts"] for e in events if e["type"] == "REJECT"}),
        "l3": {
            symbol: {
                side: [[o["order_id"], o["client"], o["price"], o["open_qty"]] for o in book[side]]
                for side in ("buy", "sell")
            }
            for symbol, book in l3.items()
            if book["buy"] or book["sell"]
        },
    }


def crossed_books(events: list[dict[str, Any]], l3: dict[str, Any]) -> list[str]:
    """Rebuild every book from the BOOK_DELTA events; report any command after which a book is crossed or
    locked, and any final level that disagrees with the L3 file. (ts is the line number in these files.)"""
    problems = []
    levels: dict[str, dict[str, dict[int, int]]] = defaultdict(lambda: {"buy": {}, "sell": {}})
    by_line: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_line[e["ts"]].append(e)
    for line in sorted(by_line):
        for e in by_line[line]:
            if e["type"] == "BOOK_DELTA":
                level_qty = levels[e["symbol"]][e["side"]]
                if e["qty"]:
                    level_qty[e["price"]] = e["qty"]
                else:
                    level_qty.pop(e["price"], None)
        for symbol, book in levels.items():
            if book["buy"] and book["sell"] and max(book["buy"]) >= min(book["sell"]):
                problems.append(f"line {line}: {symbol} bid {max(book['buy'])} >= ask {min(book['sell'])}")
    for symbol, book in l3.items():
        for side in ("buy", "sell"):
            from_l3: dict[int, int] = defaultdict(int)
            for o in book[side]:
                from_l3[o["price"]] += o["open_qty"]
            if dict(from_l3) != levels[symbol][side]:
                problems.append(f"{symbol} {side}: BOOK_DELTA levels {levels[symbol][side]} != L3 {dict(from_l3)}")
    return problems


def quantity_leaks(events: list[dict[str, Any]], l3: dict[str, Any]) -> list[str]:
    """Follow every order through its events: ACK qty + modify changes = fills + cancels + final open."""
    problems = []
    added: dict[int, int] = {}  # ACK qty + modify changes
    taken: dict[int, int] = defaultdict(int)  # fills + cancels
    open_qty: dict[int, int] = {}
    for e in events:
        t = e["type"]
        if t not in ("ACK", "FILL", "CANCELED", "MODIFIED") or (t == "ACK" and e["op"] != "new"):
            continue
        oid: int = e["order_id"]
        if t == "ACK":
            added[oid] = open_qty[oid] = e["qty"]
        elif t in ("FILL", "CANCELED"):
            taken[oid] += e["qty"]
            open_qty[oid] -= e["qty"]
        elif t == "MODIFIED":
            added[oid] += e["qty"] - open_qty[oid]
            open_qty[oid] = e["qty"]
        if e["leaves"] != open_qty[oid] or open_qty[oid] < 0:
            problems.append(f"seq {e['seq']}: {t} of order {oid} leaves {e['leaves']}, its open qty is {open_qty[oid]}")
    final = {o["order_id"]: o["open_qty"] for book in l3.values() for side in ("buy", "sell") for o in book[side]}
    for oid in added:
        if added[oid] != taken[oid] + final.get(oid, 0):
            problems.append(
                f"order {oid}: {added[oid]} added != {taken[oid]} filled or cancelled + {final.get(oid, 0)} open"
            )
    for e in events:
        if e["type"] == "TRADE":
            fills = [f for f in events if f["type"] == "FILL" and f["trade_id"] == e["trade_id"]]
            if sorted(f["order_id"] for f in fills) != sorted([e["maker_order_id"], e["taker_order_id"]]) or any(
                f["qty"] != e["qty"] for f in fills
            ):
                problems.append(f"trade {e['trade_id']}: its two FILLs do not match it")
    return problems


def expected(scenario: Path) -> dict[str, Any]:
    return json.loads(scenario.with_name(scenario.stem + ".expected.json").read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario_gives_its_expected_trades_rejects_and_book(scenario: Path, engine: str, replayed: Any) -> None:
    want = expected(scenario)
    got = observed(*replayed(scenario, engine))
    for key in ("trades", "rejected_lines", "l3"):
        if got[key] != want[key]:
            pytest.fail(
                f"{scenario.stem} ({engine} engine): {want['shows']}\n"
                f"  {key}: got {got[key]}\n  {' ' * len(key)}  expected {want[key]}",
                pytrace=False,
            )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario_never_leaves_a_book_crossed(scenario: Path, replayed: Any) -> None:
    problems = crossed_books(*replayed(scenario))
    assert not problems, f"{scenario.stem}: {expected(scenario)['shows']}\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario_conserves_every_orders_quantity(scenario: Path, replayed: Any) -> None:
    problems = quantity_leaks(*replayed(scenario))
    assert not problems, f"{scenario.stem}: {expected(scenario)['shows']}\n  " + "\n  ".join(problems)


def test_the_installed_console_script_replays_a_scenario(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("proptrade")
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e . creates it)")
    scenario = CONFORMANCE / "05-multi-level-sweep.jsonl"
    events_path, l3_path = tmp_path / "events.jsonl", tmp_path / "l3.json"
    result = subprocess.run(
        [str(script), "engine", "replay", str(scenario), "--symbols", str(SYMBOLS), "--events", str(events_path)]
        + ["--l3", str(l3_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("replayed ") and "state hash 0x" in result.stdout
    got = observed(*read_outputs(events_path, l3_path))
    want = expected(scenario)
    assert got == {k: want[k] for k in ("trades", "rejected_lines", "l3")}, want["shows"]


def snapshot_problems(engine: Any, deltas: dict[tuple[int, int, int], tuple[int, int]]) -> list[str]:
    """L1, L2, L3 and the levels rebuilt from BOOK_DELTA events must all tell the same book."""
    problems = []
    for sid, name in engine.symbol_names.items():
        l2, l3 = engine.l2(sid), engine.l3(sid)
        for side_name, side in (("bids", Side.BUY), ("asks", Side.SELL)):
            from_l3: dict[int, list[int]] = defaultdict(lambda: [0, 0])
            for order in l3[side_name]:
                from_l3[order.price][0] += order.open_qty
                from_l3[order.price][1] += 1
            as_l2 = [(lv.price, lv.qty, lv.order_count) for lv in l2[side_name]]
            if as_l2 != [(p, q, n) for p, (q, n) in from_l3.items()]:
                problems.append(f"{name} {side_name}: L2 {as_l2} disagrees with L3 {dict(from_l3)}")
            from_deltas = sorted((p, q, n) for (s, sd, p), (q, n) in deltas.items() if s == sid and sd == side and q)
            if sorted(as_l2) != from_deltas:
                problems.append(f"{name} {side_name}: L2 {as_l2} disagrees with the BOOK_DELTAs {from_deltas}")
        bid, ask = engine.l1(sid)
        best = (l2["bids"][:1] or [None])[0], (l2["asks"][:1] or [None])[0]
        if (bid, ask) != best:
            problems.append(f"{name}: L1 {bid, ask} is not the best of L2 {best}")
    return problems


@pytest.mark.parametrize("engine_kind", ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario_l1_l2_l3_and_deltas_agree_after_every_command(scenario: Path, engine_kind: str) -> None:
    engine = engine_class(engine_kind)()
    for cfg in load_symbols(SYMBOLS):
        engine.add_symbol(cfg)
    symbol_ids = {name: sid for sid, name in engine.symbol_names.items()}
    deltas: dict[tuple[int, int, int], tuple[int, int]] = {}
    for line_no, cmd in enumerate(iter_commands(scenario, symbol_ids), start=1):
        for event in engine.execute(cmd):
            if event.type == EventType.BOOK_DELTA:
                deltas[(event.symbol_id, event.side, event.price)] = (event.qty, event.order_count)
        problems = snapshot_problems(engine, deltas)
        assert not problems, f"{scenario.stem} line {line_no}: {problems}. Rule: {expected(scenario)['shows']}"
