"""The command-file format (c_engine/commandfile.py) and ``proptrade engine replay`` on good and bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from c_engine import ClientLimits, Command, Flag, Op, OrderType, Side, Stp, SymbolConfig, Tif
from c_engine._wire import CLIENT_NONE, SYMBOL_NONE
from c_engine.commandfile import (
    ConfigFileError,
    MalformedLineError,
    command_to_json,
    dump_commands,
    iter_commands,
    load_limits,
    load_symbols,
    parse_command,
)
from hotpath.cli import main

SYMBOLS_TOML = """
[symbols.AAA]
tick_size = 0.01
lot_size = 1
min_price_ticks = 1
max_price_ticks = 1000000
max_order_lots = 1000
band_ticks = 0

[symbols.BBB]
tick_size = 1
lot_size = 1
min_price_ticks = 1
max_price_ticks = 2000
max_order_lots = 50
band_ticks = 10
reference_price = 1000
"""
IDS = {"AAA": 0, "BBB": 1}
NAMES = {0: "AAA", 1: "BBB"}
NEW_AAA = {"op": "new", "ts": 1, "client": 1, "symbol": "AAA", "side": "buy", "type": "limit", "price": 100,
           "qty": 5, "tif": "GTC", "post_only": False, "stp": "NONE", "cloid": 7}  # fmt: skip


def line(**fields: object) -> str:
    return json.dumps({**NEW_AAA, **fields})


@pytest.fixture
def symbols(tmp_path: Path) -> Path:
    path = tmp_path / "SYMBOLS.toml"
    path.write_text(SYMBOLS_TOML)
    return path


def run_replay(tmp_path: Path, symbols: Path, lines: list[str], *extra: str) -> tuple[int, list[dict[str, Any]]]:
    commands, events = tmp_path / "commands.jsonl", tmp_path / "events.jsonl"
    commands.write_text("".join(text + "\n" for text in lines))
    code = main(["engine", "replay", str(commands), "--symbols", str(symbols), "--events", str(events),
                 "--l3", str(tmp_path / "l3.json"), *extra])  # fmt: skip
    if not events.exists():
        return code, []
    return code, [json.loads(text) for text in events.read_text().splitlines()]


# --- parsing ---------------------------------------------------------------------------------------------------


def test_a_full_new_order_line_parses_to_its_wire_command() -> None:
    cmd = parse_command(json.dumps(NEW_AAA), 1, IDS)
    assert cmd == Command.new(1, 0, Side.BUY, 5, 100, cloid=7, ts_ns=1)


def test_absent_fields_of_a_new_order_take_their_defaults() -> None:
    fields = {"op": "new", "ts": 3, "client": 2, "symbol": "BBB", "side": "sell", "qty": 1, "price": 9}
    cmd = parse_command(fields, 1, IDS)
    assert (cmd.order_type, cmd.tif, cmd.stp, cmd.cloid) == (OrderType.LIMIT, Tif.GTC, Stp.NONE, 0)
    assert cmd.flags == Flag.HAS_PRICE


def test_a_market_order_without_price_has_no_price_flag() -> None:
    fields = {k: v for k, v in NEW_AAA.items() if k != "price"}
    cmd = parse_command({**fields, "type": "market", "tif": "IOC"}, 1, IDS)
    assert cmd.order_type == OrderType.MARKET and not cmd.flags & Flag.HAS_PRICE


def test_a_modify_flags_only_the_fields_it_gives() -> None:
    both = parse_command({"op": "modify", "ts": 3, "client": 1, "order_id": 3, "qty": 4, "price": 999}, 1, IDS)
    qty_only = parse_command({"op": "modify", "ts": 3, "client": 1, "order_id": 3, "qty": 4}, 1, IDS)
    assert both == Command.modify(1, 3, qty=4, price=999, ts_ns=3)
    assert qty_only == Command.modify(1, 3, qty=4, ts_ns=3)


def test_cancel_mass_cancel_and_kill_reset_parse_to_their_commands() -> None:
    assert parse_command({"op": "cancel", "ts": 2, "client": 1, "order_id": 3}, 1, IDS) == Command.cancel(1, 3, ts_ns=2)
    assert parse_command({"op": "mass_cancel", "ts": 4, "client": 1}, 1, IDS) == Command.mass_cancel(1, ts_ns=4)
    assert parse_command({"op": "mass_cancel", "ts": 4, "client": 1, "symbol": "BBB"}, 1, IDS) == Command.mass_cancel(
        1, 1, ts_ns=4
    )
    assert parse_command({"op": "kill_reset", "ts": 5, "client": 1}, 1, IDS) == Command.kill_reset(1, ts_ns=5)


def test_unknown_names_become_codes_the_engine_rejects() -> None:
    cmd = parse_command(line(symbol="ZZZ", side="hold", type="stop", tif="DAY", stp="EXPIRE_ALL"), 1, IDS)
    assert (cmd.symbol_id, cmd.side, cmd.order_type, cmd.tif, cmd.stp) == (SYMBOL_NONE, 0, 0, 0, 255)
    assert parse_command({"op": "teleport", "ts": 1, "client": 1}, 1, IDS).op == 0


@pytest.mark.parametrize("client", [-1, 65535, 70000], ids=["negative", "65535", "70000"])
def test_a_client_id_outside_0_to_65534_becomes_client_none(client: int) -> None:
    assert parse_command(line(client=client), 1, IDS).client_id == CLIENT_NONE


def test_missing_side_symbol_and_qty_become_zero_or_none() -> None:
    cmd = parse_command({"op": "new", "ts": 1, "client": 1}, 1, IDS)
    assert (cmd.side, cmd.symbol_id, cmd.qty, cmd.flags) == (0, SYMBOL_NONE, 0, 0)


MALFORMED = {
    "not JSON": ("{op: new}", "not JSON"),
    "empty line": ("", "empty line"),
    "not an object": ("[1, 2]", "not a JSON object"),
    "no op": ('{"ts": 1, "client": 1}', "no 'op'"),
    "no ts": ('{"op": "cancel", "client": 1, "order_id": 1}', "no 'ts'"),
    "no client": ('{"op": "cancel", "ts": 1, "order_id": 1}', "no 'client'"),
    "float ts": (line(ts=1.5), "ts must be an integer"),
    "string qty": (line(qty="5"), "qty must be an integer"),
    "float price": (line(price=100.0), "price must be an integer"),
    "bool client": (line(client=True), "client must be an integer"),
    "negative ts": (line(ts=-1), "outside the uint64 range"),
    "price above int64": (line(price=2**63), "outside the int64 range"),
    "cloid above uint64": (line(cloid=2**64), "outside the uint64 range"),
    "negative order id": ('{"op": "cancel", "ts": 1, "client": 1, "order_id": -3}', "outside the uint64 range"),
    "post_only not a bool": (line(post_only=1), "post_only must be true or false"),
    "side a list": (line(side=["buy"]), "side must be a name"),
    "unknown field": (line(colour="red"), "unknown field 'colour'"),
    "field of another op": ('{"op": "cancel", "ts": 1, "client": 1, "order_id": 1, "qty": 2}', "has no field 'qty'"),
    "key twice": ('{"op": "cancel", "ts": 1, "ts": 2, "client": 1, "order_id": 1}', "given twice"),
    "NaN": (line().replace('"qty": 5', '"qty": NaN'), "NaN"),
}


@pytest.mark.parametrize("text, reason", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_line_raises_with_its_line_number_and_reason(text: str, reason: str) -> None:
    with pytest.raises(MalformedLineError) as err:
        parse_command(text, 12, IDS, "f.jsonl")
    assert err.value.line_no == 12
    assert reason in err.value.reason
    assert str(err.value).startswith("f.jsonl:12: ")


# --- replay: malformed lines stop the run, bad values are rejects ----------------------------------------------


def test_a_malformed_line_stops_the_replay_with_path_line_and_exit_code_2(
    tmp_path: Path, symbols: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [line(ts=1, side="sell", cloid=1), line(ts=2, qty=1, cloid=2), "{not json", line(ts=4, qty=2)]
    code, events = run_replay(tmp_path, symbols, lines)
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tmp_path / 'commands.jsonl'}:3: not JSON" in err
    assert {e["ts"] for e in events} == {1, 2}  # the lines before it ran; nothing after it did
    assert not (tmp_path / "l3.json").exists()


def test_a_malformed_line_far_into_a_file_names_its_line(
    tmp_path: Path, symbols: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [line(ts=i, cloid=i, side="buy" if i % 2 else "sell") for i in range(1, 1001)]
    lines[776] = line(ts=777, qty=1.5)
    code, events = run_replay(tmp_path, symbols, lines)
    assert code == 2
    assert ":777: qty must be an integer" in capsys.readouterr().err
    assert max(e["ts"] for e in events) == 776


def test_bad_values_become_reject_events_and_the_replay_goes_on(tmp_path: Path, symbols: Path) -> None:
    lines = [
        line(ts=1, qty=0),
        line(ts=2, symbol="ZZZ"),
        line(ts=3, side="hold"),
        line(ts=4, tif="DAY"),
        line(ts=5, stp="EXPIRE_ALL"),
        line(ts=6, client=70000),
        '{"op":"teleport","ts":7,"client":1}',
        '{"op":"new","ts":8,"client":1,"symbol":"AAA","side":"buy","qty":1}',
        '{"op":"modify","ts":9,"client":1,"order_id":1}',
        line(ts=10, qty=3),
    ]
    code, events = run_replay(tmp_path, symbols, lines)
    assert code == 0
    rejects = {e["ts"]: e["reason"] for e in events if e["type"] == "REJECT"}
    assert rejects == {1: "INVALID_QTY", 2: "UNKNOWN_SYMBOL", 3: "UNKNOWN_SIDE", 4: "UNKNOWN_TIF", 5: "UNKNOWN_STP",
                       6: "UNKNOWN_CLIENT", 7: "UNKNOWN_OP", 8: "MISSING_PRICE", 9: "MODIFY_NOTHING"}  # fmt: skip
    assert [e["order_id"] for e in events if e["type"] == "ACK"] == [1]  # line 10, the only accepted order


def test_replay_prints_a_one_line_summary(tmp_path: Path, symbols: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_replay(tmp_path, symbols, [line(ts=1, side="sell", cloid=1), line(ts=2, qty=2), line(ts=3, qty=0)])
    out = capsys.readouterr().out.strip()
    assert code == 0
    assert out.startswith("replayed 3 commands: ") and "1 trades, 1 rejects, state hash 0x" in out


def test_replay_writes_the_l3_book_in_priority_order(tmp_path: Path, symbols: Path) -> None:
    lines = [line(ts=1, price=100, cloid=1), line(ts=2, price=101, cloid=2), line(ts=3, price=101, client=2, cloid=3)]
    code, _ = run_replay(tmp_path, symbols, lines)
    l3 = json.loads((tmp_path / "l3.json").read_text())
    assert code == 0
    assert l3 == {
        "AAA": {
            "buy": [
                {"order_id": 2, "client": 1, "side": "buy", "price": 101, "open_qty": 5},
                {"order_id": 3, "client": 2, "side": "buy", "price": 101, "open_qty": 5},
                {"order_id": 1, "client": 1, "side": "buy", "price": 100, "open_qty": 5},
            ],
            "sell": [],
        },
        "BBB": {"buy": [], "sell": []},
    }


def test_a_trade_event_names_both_orders_and_clients(tmp_path: Path, symbols: Path) -> None:
    code, events = run_replay(tmp_path, symbols, [line(ts=1, side="sell", client=4), line(ts=2, qty=2, client=5)])
    trade = next(e for e in events if e["type"] == "TRADE")
    assert code == 0
    want = {"symbol": "AAA", "price": 100, "qty": 2, "maker_order_id": 1, "taker_order_id": 2, "maker_client": 4,
            "taker_client": 5}  # fmt: skip
    assert {k: trade[k] for k in want} == want


def test_limits_file_limits_are_enforced_in_a_replay(tmp_path: Path, symbols: Path) -> None:
    limits = tmp_path / "LIMITS.toml"
    limits.write_text("[default]\nmax_order_qty = 10\n\n[clients.1]\n\n[clients.2]\nmax_order_qty = 100\n")
    lines = [line(ts=1, qty=11, client=1), line(ts=2, qty=11, client=2), line(ts=3, qty=11, client=3, cloid=8)]
    code, events = run_replay(tmp_path, symbols, lines, "--limits", str(limits))
    assert code == 0
    assert {e["ts"]: e["reason"] for e in events if e["type"] == "REJECT"} == {1: "RISK_MAX_ORDER_QTY"}


def test_an_unusable_symbols_file_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "SYMBOLS.toml"
    bad.write_text(SYMBOLS_TOML + "tick_sise = 1\n")
    code = main(["engine", "replay", str(tmp_path / "c.jsonl"), "--symbols", str(bad)])
    assert code == 2
    assert "unknown key 'tick_sise'" in capsys.readouterr().err


def test_a_limits_client_the_engine_cannot_hold_exits_2_naming_it(
    tmp_path: Path, symbols: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limits = tmp_path / "LIMITS.toml"
    limits.write_text("[clients.300]\nmax_order_qty = 5\n")  # the default engine has clients 0..255
    code, _ = run_replay(tmp_path, symbols, [line()], "--limits", str(limits))
    assert code == 2
    assert "[clients.300]: the engine refuses it" in capsys.readouterr().err


def test_a_failed_replay_leaves_no_l3_file_of_an_earlier_run(tmp_path: Path, symbols: Path) -> None:
    assert run_replay(tmp_path, symbols, [line()])[0] == 0
    assert (tmp_path / "l3.json").exists()
    assert run_replay(tmp_path, symbols, [line(), "oops"])[0] == 2
    assert not (tmp_path / "l3.json").exists()


def test_an_output_that_is_an_input_is_refused_and_the_input_is_left_whole(
    tmp_path: Path, symbols: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = tmp_path / "commands.jsonl"
    commands.write_text(line() + "\n")
    alias = tmp_path / "alias.jsonl"
    alias.symlink_to(commands)
    for extra in (["--events", str(commands)], ["--l3", str(alias)], ["--events", str(symbols)],
                  ["--events", str(tmp_path / "out"), "--l3", str(tmp_path / "out")]):  # fmt: skip
        assert main(["engine", "replay", str(commands), "--symbols", str(symbols), *extra]) == 2
        assert "is an input or another output of this replay" in capsys.readouterr().err
    assert commands.read_text() == line() + "\n" and symbols.read_text() == SYMBOLS_TOML
    assert not (tmp_path / "out").exists()


def test_an_output_that_cannot_be_written_whole_leaves_the_earlier_one_as_it_was(
    tmp_path: Path, symbols: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_replay(tmp_path, symbols, [line(ts=1)])[0] == 0
    before, l3_before = (tmp_path / "events.jsonl").read_text(), (tmp_path / "l3.json").read_text()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "l3.json"))

    monkeypatch.setattr("c_engine.replay.format_l3", fail)
    assert run_replay(tmp_path, symbols, [line(ts=1), line(ts=2, qty=2)])[0] == 2
    assert (tmp_path / "events.jsonl").read_text() != before  # the events were written whole, then l3 failed
    assert (tmp_path / "l3.json").read_text() == l3_before  # not a half file: the earlier one, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SYMBOLS.toml", "commands.jsonl", "events.jsonl", "l3.json"]


# --- SYMBOLS.toml and LIMITS.toml --------------------------------------------------------------------------------


def test_symbols_load_in_file_order_with_their_optional_keys(symbols: Path) -> None:
    loaded = load_symbols(symbols)
    assert [s.name for s in loaded] == ["AAA", "BBB"]
    assert loaded[1] == SymbolConfig("BBB", 1, 1, 1, 2000, 50, band_ticks=10, reference_price=1000)


def test_an_unknown_symbol_key_is_an_error_that_names_it(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SYMBOLS_TOML.replace("band_ticks = 10", "band_ticks = 10\nband_pct = 3"))
    with pytest.raises(ConfigFileError, match=r"\[symbols.BBB\]: unknown key 'band_pct'"):
        load_symbols(path)


def test_a_missing_required_symbol_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SYMBOLS_TOML.replace("max_order_lots = 50\n", ""))
    with pytest.raises(ConfigFileError, match="missing key 'max_order_lots'"):
        load_symbols(path)


def test_limits_defaults_apply_to_listed_clients_and_their_own_keys_win(tmp_path: Path) -> None:
    path = tmp_path / "LIMITS.toml"
    path.write_text(
        "[default]\nmax_order_qty = 100\nrate_per_s = 50\n\n[clients.7]\nmax_position = 300\n\n"
        "[clients.2]\nmax_order_qty = 5\n"
    )
    assert load_limits(path) == {
        2: ClientLimits(max_order_qty=5, rate_per_s=50),
        7: ClientLimits(max_order_qty=100, max_position=300, rate_per_s=50),
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("[clients.1]\nmax_orders = 3\n", "unknown key 'max_orders'"),
        ("[default]\nmax_los = 3\n", "unknown key 'max_los'"),
        ("[clients.abc]\n", "a client id is an integer"),
        ("[clients.1]\nmax_loss = -1\n", "non-negative integer"),
        ("[client.1]\n", "unknown key 'client'"),
    ],
    ids=["unknown client key", "unknown default key", "client id not a number", "negative", "misspelt table"],
)
def test_a_bad_limits_file_is_an_error_that_says_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "LIMITS.toml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=message):
        load_limits(path)


# --- writing: dump and parse are inverses ----------------------------------------------------------------------

ODD_COMMANDS = [
    Command.new(1, 0, Side.BUY, 5, 100, post_only=True, cloid=2**64 - 1, ts_ns=2**64 - 1),
    Command.new(2, 1, Side.SELL, 3, order_type=OrderType.MARKET, tif=Tif.FOK, stp=Stp.DECREMENT),
    Command.new(CLIENT_NONE, SYMBOL_NONE, 0, 0, order_type=0, tif=0, stp=255),
    Command.new(3, 9, 7, -4, -(2**63), order_type=9, tif=8, stp=6),  # raw codes a fuzzer might send
    Command.cancel(1, 2**64 - 1, ts_ns=5),
    Command.modify(1, 3, qty=4, ts_ns=6),
    Command.modify(1, 3, price=-2, ts_ns=6),
    Command.modify(1, 3, ts_ns=6),
    Command.mass_cancel(1, ts_ns=7),
    Command.mass_cancel(1, 1, ts_ns=7),
    Command.mass_cancel(1, SYMBOL_NONE, ts_ns=7),
    Command.mass_cancel(1, 1, ts_ns=7, disconnect=True),
    Command.kill_reset(4, ts_ns=8),
    Command(0, side=1, client_id=5, flags=Flag.HAS_QTY, qty=3, ts_ns=9),
    Command(200, client_id=5, ts_ns=9),
]


def test_dump_then_parse_gives_back_every_command(tmp_path: Path) -> None:
    path = tmp_path / "dumped.jsonl"
    dump_commands(ODD_COMMANDS, path, NAMES)
    assert list(iter_commands(path, IDS)) == ODD_COMMANDS


def test_a_dumped_new_order_is_in_the_conformance_format() -> None:
    cmd = Command.new(1, 0, Side.BUY, 5, 100, cloid=7, ts_ns=1)
    assert command_to_json(cmd, NAMES) == NEW_AAA
    assert list(command_to_json(cmd, NAMES)) == list(NEW_AAA)


def test_a_parsed_file_dumps_to_the_same_commands(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [
        line(ts=1),
        line(ts=2, side="SELL", tif="ioc"),
        '{"op":"modify","ts":3,"client":1,"order_id":1,"price":5}',
        '{"op":"mass_cancel","ts":4,"client":1,"symbol":"BBB"}',
    ]
    source.write_text("\n".join(lines) + "\n")
    commands = list(iter_commands(source, IDS))
    dump_commands(commands, tmp_path / "out.jsonl", NAMES)
    assert list(iter_commands(tmp_path / "out.jsonl", IDS)) == commands


@pytest.mark.parametrize(
    "cmd",
    [Command(Op.CANCEL, client_id=1, order_id=2, price=5), Command(Op.NEW, side=1, flags=Flag.HAS_SYMBOL)],
    ids=["cancel with a price", "new with a stray flag"],
)
def test_a_command_the_json_form_cannot_carry_is_refused(cmd: Command) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        command_to_json(cmd, NAMES)
