"""``proptrade up`` with a recorded market (``[market]``, ``--market``): the LOBSTER sample and a prefix of the
Binance sample replayed live leave the engine's book the in-process replay of the same file leaves; a maker
trades against the replay while the replay still reproduces every recorded row; the platform stops leaving no
process or /dev/shm entry (``launched_platform`` fails the test otherwise). The config checks run without data."""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from c_engine import Engine, EngineConfig
from c_engine.lobster_synth import write_synthetic_day
from hotpath.agents.market_replay import open_market, parse_market
from hotpath.cli import build_parser
from hotpath.control_client import ControlClient, load_operator_key
from hotpath.launcher import DEFAULT_CONFIG, load_config
from hotpath.launcher import run as up
from hotpath.names import control_endpoint
from hotpath.testing import LaunchedPlatform, finish_platform, launched_platform, start_platform

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
AAPL = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
BINANCE = DATA / "binance" / "usdm_btcusdt_20240808.gz"
#: the lines of the Binance sample replayed live (of 93,954; the snapshot is line 55): a book that moved and traded
BINANCE_LINES = 8000

PLATFORM = """
[engine]
ring_capacity = 1024
md_capacity = 65536
heartbeat_timeout_s = 2.0
max_orders = 65536

[[symbols]]
name = "SIM"
tick_size = 0.01

[bridge]
enabled = false            # no fixed TCP ports: tests run side by side

[[accounts]]
name = "mm_1"
client = 1
limits = {{ max_position = 2000, max_order_qty = 1000 }}

[[accounts]]
name = "probe"
client = 63

[probe]
hz = 0                     # nothing but the market and the maker trades

[market]
source = "{source}"
{market}
{agents}
"""

MAKER = """
[[agents]]
name = "maker"
module = "strategies.agent"
accounts = ["mm_1"]
symbol = "AAPL"
args = ["--strategy", "inventory_skew", "--size", "100", "--half-spread", "0.01", "--max-position", "1000",
        "--quote-interval", "0.001"]
maker = true
"""


def need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path.name} not found in {path.parent} (the shared data folder beside the project)")


def summary_of(run: LaunchedPlatform, timeout_s: float = 60.0) -> dict[str, Any]:
    """The market agent's JSON line (the end of its replay), read from the launcher's output."""
    assert run.proc.stdout is not None
    for line in run.said:  # it may have come before the launcher's first live line
        if line.startswith('{"market"'):
            early: dict[str, Any] = json.loads(line)
            return early
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = run.proc.stdout.readline()
        if not line:
            break
        run.said.append(line)
        if line.startswith('{"market"'):
            summary: dict[str, Any] = json.loads(line)
            return summary
    raise AssertionError(f"no end of the replay: {''.join(run.said[-20:])}")


def said_until(run: LaunchedPlatform, text: str, timeout_s: float = 60.0) -> None:
    """Reads the launcher's output (into ``run.said``) up to a line with ``text``: a platform is live before its
    agents have opened their data, and a loaded machine can take seconds more."""
    assert run.proc.stdout is not None
    if any(text in line for line in run.said):
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = run.proc.stdout.readline()
        assert line, f"the launcher ended before saying {text!r}: {''.join(run.said)}"
        run.said.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} in {timeout_s} s: {''.join(run.said)}")


def live_book(run: LaunchedPlatform, symbol: str) -> dict[str, list[list[int]]]:
    with ControlClient(control_endpoint(run.prefix), timeout_s=5.0) as ctl:
        reply = ctl.request("snapshot", symbol=symbol, depth=1 << 16)
    return {"bids": reply["bids"], "asks": reply["asks"]}


def replayed_here(source: str) -> dict[str, list[list[int]]]:
    """The book the same market leaves in an in-process engine (the same replay code, a plain engine)."""
    market = open_market(parse_market(source))
    engine = Engine(EngineConfig(max_orders=1 << 18, max_levels_per_side=1 << 16))
    engine.add_symbol(market.symbol)
    market.open(engine, 2)
    while market.next_ns() is not None:
        market.step()
    book = engine.l2(market.symbol.name)
    return {side: [list(level) for level in book[side]] for side in ("bids", "asks")}


def test_the_lobster_sample_replayed_live_leaves_the_book_of_the_in_process_replay(tmp_path: Path) -> None:
    need(AAPL)
    source = f"lobster:{AAPL}"
    with launched_platform(PLATFORM.format(source=source, market='speed = "max"', agents=""), tmp_path) as run:
        summary = summary_of(run)
        assert summary["finished"] and summary["messages"] == 999, summary
        assert (summary["rows_compared"], summary["mismatches"], summary["anomalies"]) == (998, 0, 0), summary
        assert live_book(run, "AAPL") == replayed_here(source)
    assert "market[market] exited" not in run.output  # it stayed with its book until the platform stopped


def test_a_prefix_of_the_binance_sample_replayed_live_leaves_the_book_of_the_in_process_replay(tmp_path: Path) -> None:
    need(BINANCE)
    prefix = tmp_path / "btcusdt_prefix.gz"
    with gzip.open(BINANCE, "rt") as whole, gzip.open(prefix, "wt") as part:
        part.writelines(itertools.islice(whole, BINANCE_LINES))
    source = f"binance:{prefix}"
    with launched_platform(PLATFORM.format(source=source, market='speed = "max"', agents=""), tmp_path) as run:
        summary = summary_of(run)
        assert summary["finished"] and summary["messages"] > 1500, summary
        assert summary["anomalies"] == 0 and summary["gaps"] == 0 and summary["trades"] > 1000, summary
        book = live_book(run, "BTCUSDT")
        assert len(book["bids"]) > 1000 and book == replayed_here(source)


def test_a_maker_trades_against_the_lobster_replay_which_still_reproduces_every_row(tmp_path: Path) -> None:
    need(AAPL)
    market = "speed = 20\ndelay_s = 2.0"  # 49 recorded seconds in ~2.5 s, once the maker quotes the opening book
    config = PLATFORM.format(source=f"lobster:{AAPL}", market=market, agents=MAKER)
    with launched_platform(config, tmp_path) as run:
        summary = summary_of(run)
        with ControlClient(control_endpoint(run.prefix), timeout_s=5.0,
                           operator_key=load_operator_key(prefix=run.prefix)) as ctl:  # fmt: skip
            positions = {a: ctl.request("position", client=a, symbol="AAPL") for a in ("market", "mm_1")}
    assert summary["finished"] and (summary["mismatches"], summary["anomalies"]) == (0, 0), summary
    assert summary["displaced"] + summary["crossed_others"] > 0, summary  # the recorded flow met the maker's quotes
    # Only the maker trades with the market: what one bought the other sold, at the same prices.
    market_pos, maker_pos = positions["market"], positions["mm_1"]
    assert (market_pos["position"], market_pos["cash"]) == (-maker_pos["position"], -maker_pos["cash"])
    books = [json.loads(line) for line in run.output.splitlines() if line.startswith('{"account"')]
    assert books and books[0]["fills"] > 0 and books[0]["position"] == maker_pos["position"], books


def test_a_signal_stops_the_replay_between_two_messages_and_the_platform_cleanly(tmp_path: Path) -> None:
    message, _ = write_synthetic_day(tmp_path, seed=3, events=400)
    config = PLATFORM.format(source=f"lobster:{message}", market="speed = 0.001", agents="")  # days, not seconds
    with launched_platform(config, tmp_path) as run:
        said_until(run, "replaying")  # the agent has begun; the block's end sends SIGINT to the launcher
    summary = json.loads(next(line for line in run.output.splitlines() if line.startswith('{"market"')))
    assert not summary["finished"] and 1 <= summary["messages"] < 400 and summary["mismatches"] == 0, summary
    assert "stopped after" in run.output and run.proc.returncode == 0


def test_a_replay_that_ends_with_at_end_stop_stops_the_platform_cleanly(tmp_path: Path) -> None:
    message, _ = write_synthetic_day(tmp_path, seed=2, events=400)
    config = PLATFORM.format(source=f"lobster:{message}", market='at_end = "stop"', agents="")
    run = start_platform(config, tmp_path, seconds=60)
    leftovers = finish_platform(run, timeout_s=60)
    assert run.proc.returncode == 0, run.output
    assert not leftovers, leftovers
    summary = json.loads(next(line for line in run.output.splitlines() if line.startswith('{"market"')))
    assert summary["finished"] and summary["messages"] == 400 and summary["mismatches"] == 0, summary
    assert "market[market] exited (rc 0): stopping the run" in run.output
    assert "stopped: every process exited, no shared-memory segment left" in run.output


# --- the config --------------------------------------------------------------------------------------------


def test_a_market_table_adds_the_recordings_symbol_account_and_agent_in_place_of_the_flow(tmp_path: Path) -> None:
    message, _ = write_synthetic_day(tmp_path, seed=1, events=50)
    config = load_config(DEFAULT_CONFIG + f'\n[market]\nsource = "lobster:{message}"\nspeed = 2\n', prefix="x")
    assert [s.name for s in config.engine.symbols] == ["SIM", "SYNTH"]
    assert [(a.name, a.symbol) for a in config.agents] == [("maker", "SIM"), ("market", "SYNTH")]  # no flow
    agent = config.agents[-1]
    assert agent.module == "hotpath.agents.market" and agent.ends_run and agent.accounts == ("market",)
    assert agent.args[:6] == ("--source", config.market.spec.text() if config.market else "", "--speed", "2.0",
                              "--at-end", "stay")  # fmt: skip
    assert config.accounts["market"].client_id not in {a.client_id for n, a in config.accounts.items() if n != "market"}


def test_market_on_the_command_line_moves_the_default_maker_to_the_recording(tmp_path: Path) -> None:
    message, _ = write_synthetic_day(tmp_path, seed=1, events=50)
    config = load_config(DEFAULT_CONFIG, prefix="x", market={"source": f"lobster:{message}", "move_agents": True})
    assert [(a.name, a.symbol) for a in config.agents] == [("maker", "SYNTH"), ("market", "SYNTH")]


def test_a_binance_market_gets_an_engine_with_room_for_its_levels(tmp_path: Path) -> None:
    capture = tmp_path / "capture.gz"
    capture.write_bytes(b"")
    config = load_config(DEFAULT_CONFIG, prefix="x", market={"source": f"binance:{capture}"})
    assert config.engine.engine.max_levels_per_side >= 1 << 16 and config.engine.symbols[-1].name == "BTCUSDT"


@pytest.mark.parametrize(
    ("table", "error"),
    [('source = "lobster:/no/such_message_10.csv"', "no file"), ('source = "csv:x"', "give lobster"),
     ("speed = 2", "source is missing"), ('source = "{m}"\nspeed = "fast"', "speed must be"),
     ('source = "{m}"\nat_end = "loop"', "at_end must be"), ('source = "{m}"\nbogus = 1', "unknown keys")],
)  # fmt: skip
def test_a_bad_market_table_is_refused_before_anything_starts(tmp_path: Path, table: str, error: str) -> None:
    message, _ = write_synthetic_day(tmp_path, seed=1, events=50)
    with pytest.raises(ValueError, match=error):
        load_config(DEFAULT_CONFIG + "\n[market]\n" + table.replace("{m}", f"lobster:{message}"), prefix="x")


def test_a_symbol_of_the_config_with_the_recordings_name_is_refused(tmp_path: Path) -> None:
    message, _ = write_synthetic_day(tmp_path, seed=1, events=50)
    text = DEFAULT_CONFIG.replace('name = "SIM"', 'name = "SYNTH"').replace('symbol = "SIM"', 'symbol = "SYNTH"')
    with pytest.raises(ValueError, match="made from its data"):
        load_config(text, prefix="x", market={"source": f"lobster:{message}"})


def test_speed_without_a_market_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(print_config=False, config=None, prefix="x", seconds=0.0, market=None, speed="2",
                              at_end=None)  # fmt: skip
    assert up(args) == 2
    assert "give --market SOURCE" in capsys.readouterr().err


def test_the_up_command_line_takes_a_market_a_speed_and_what_to_do_at_the_end() -> None:
    args = build_parser().parse_args(["up", "--market", "lobster:m.csv", "--speed", "max", "--at-end", "stop"])
    assert (args.market, args.speed, args.at_end) == ("lobster:m.csv", "max", "stop")
    assert build_parser().parse_args(["up", "--speed", "12.5"]).speed == "12.5"
    for bad in (["--speed", "0"], ["--speed", "fast"], ["--at-end", "loop"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["up", *bad])


def test_a_config_of_a_market_alone_needs_no_symbols_of_its_own(tmp_path: Path) -> None:
    message, _ = write_synthetic_day(tmp_path, seed=1, events=50)
    config = load_config(f'[market]\nsource = "lobster:{message}"\n\n[probe]\nhz = 0\n', prefix="x")
    assert [s.name for s in config.engine.symbols] == ["SYNTH"] and dict(config.engine.accounts) == {"market": 1}
    with pytest.raises(ValueError, match="no \\[\\[symbols\\]\\]"):
        load_config("[probe]\nhz = 0\n", prefix="x")
