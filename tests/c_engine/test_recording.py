"""Recordings: every input parsed once into Parquet and read back record for record as its loader gives it."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from c_engine import COMMAND_DTYPE, Command, Engine, Side, SymbolConfig, binance, lobster
from c_engine import recording as rec
from c_engine.flow import SyntheticFlow
from c_engine.recording import (
    RecordingError,
    iter_recorded_binance,
    iter_recorded_commands,
    iter_recorded_lobster,
    open_recording,
    read_recorded_commands,
    record_binance,
    record_commands,
    record_lobster,
)
from hotpath.journal import Journal, read_commands

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
AAPL = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_{}_10.csv"
GOOG = DATA / "lobster" / "GOOG_2012-06-21_34200000_57600000_{}_10.csv.gz"
BINANCE = DATA / "binance" / "usdm_btcusdt_20240808.gz"

Json = dict[str, Any]


def lobster_pair(pattern: Path) -> tuple[Path, Path]:
    message, orderbook = (Path(str(pattern).format(kind)) for kind in ("message", "orderbook"))
    if not (message.is_file() and orderbook.is_file()):
        pytest.skip(f"{message.name} and its order book not found in {message.parent} (the shared data folder "
                    "beside the project)")  # fmt: skip
    return message, orderbook


def need_binance() -> Path:
    if not BINANCE.is_file():
        pytest.skip(f"Binance sample not found at {BINANCE} (the shared data folder beside the project)")
    return BINANCE


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same_stream(got: Iterator[Any], expected: Iterator[Any]) -> int:
    """Compares two streams record by record (type included) without holding them; returns the count."""
    n = 0
    for n, (a, b) in enumerate(zip_longest(got, expected), start=1):
        assert a == b and type(a) is type(b), f"record {n}: {a!r} != {b!r}"
    return n


@pytest.fixture(scope="module")
def aapl_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    message, orderbook = lobster_pair(AAPL)
    out = tmp_path_factory.mktemp("aapl") / "aapl.parquet"
    record_lobster(message, orderbook, out)
    return message, orderbook, out


@pytest.fixture(scope="module")
def binance_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("binance") / "btcusdt.parquet"
    record_binance(need_binance(), out)
    return out


# --- LOBSTER ---------------------------------------------------------------------------------------------------


def test_the_aapl_sample_reads_back_as_every_message_and_book_line_of_the_loader(
    aapl_recording: tuple[Path, Path, Path],
) -> None:
    message, orderbook, out = aapl_recording
    messages, lines = iter_recorded_lobster(out)
    assert assert_same_stream(messages, lobster.iter_messages(message)) == 999
    assert assert_same_stream(lines, lobster.iter_book_lines(orderbook)) == 999


def test_the_lobster_metadata_names_the_symbol_tick_levels_and_the_sources_by_hash(
    aapl_recording: tuple[Path, Path, Path],
) -> None:
    message, orderbook, out = aapl_recording
    info = open_recording(out)
    assert (info.kind, info.rows, info.format_version) == ("lobster", 999, rec.FORMAT_VERSION)
    assert dict(info.params) == {"tick": 100, "levels": 10}
    assert info.symbols == (lobster.symbol_config("AAPL", 100),)
    assert [(s.name, s.bytes, s.sha256) for s in info.sources] == [
        (message.name, message.stat().st_size, sha256(message)),
        (orderbook.name, orderbook.stat().st_size, sha256(orderbook)),
    ]


def test_the_same_input_gives_the_same_bytes(aapl_recording: tuple[Path, Path, Path], tmp_path: Path) -> None:
    message, orderbook, out = aapl_recording
    record_lobster(message, orderbook, tmp_path / "again.parquet")
    assert (tmp_path / "again.parquet").read_bytes() == out.read_bytes()


def test_a_lobster_day_spans_row_groups_and_reads_back_across_them(
    aapl_recording: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message, orderbook, _ = aapl_recording
    monkeypatch.setattr(rec, "ROW_GROUP_ROWS", 300)
    out = tmp_path / "groups.parquet"
    assert record_lobster(message, orderbook, out).rows == 999
    assert open_recording(out).row_groups == 4
    messages, lines = iter_recorded_lobster(out)
    assert assert_same_stream(messages, lobster.iter_messages(message)) == 999
    assert assert_same_stream(lines, lobster.iter_book_lines(orderbook)) == 999


def test_the_full_goog_day_reads_back_exactly_from_gzip(tmp_path: Path) -> None:
    message, orderbook = lobster_pair(GOOG)
    out = tmp_path / "goog.parquet"
    summary = record_lobster(message, orderbook, out)
    assert (summary.kind, summary.rows) == ("lobster", 147_916)
    assert summary.bytes == out.stat().st_size and summary.source_bytes == message.stat().st_size + orderbook.stat(
    ).st_size  # fmt: skip
    messages, lines = iter_recorded_lobster(out)
    assert assert_same_stream(messages, lobster.iter_messages(message)) == 147_916
    assert assert_same_stream(lines, lobster.iter_book_lines(orderbook)) == 147_916


def test_lobster_files_of_different_lengths_are_refused_and_leave_no_file(tmp_path: Path) -> None:
    message, orderbook = tmp_path / "X_message_1.csv", tmp_path / "X_orderbook_1.csv"
    message.write_text("34200.1,1,7,100,1000000,1\n34200.2,3,7,100,1000000,1\n")
    orderbook.write_text("1000100,5,1000000,100\n")
    with pytest.raises(RecordingError, match="different numbers of lines"):
        record_lobster(message, orderbook, tmp_path / "x.parquet")
    assert list(tmp_path.glob("x.parquet*")) == []


def test_a_bad_lobster_line_is_the_loaders_error_and_leaves_no_file(tmp_path: Path) -> None:
    message, orderbook = tmp_path / "X_message_1.csv", tmp_path / "X_orderbook_1.csv"
    message.write_text("34200.1,1,7,100,1000050,1\n")  # off the tick of 100
    orderbook.write_text("1000100,5,1000000,100\n")
    with pytest.raises(lobster.LobsterError, match="not a multiple of the tick"):
        record_lobster(message, orderbook, tmp_path / "x.parquet")
    assert list(tmp_path.glob("x.parquet*")) == []


# --- Binance ---------------------------------------------------------------------------------------------------


def test_the_binance_sample_reads_back_as_every_record_of_the_loader(binance_recording: Path) -> None:
    assert assert_same_stream(iter_recorded_binance(binance_recording), binance.iter_messages(BINANCE)) == 93_954


def test_the_binance_metadata_holds_the_symbol_and_the_source_hash(binance_recording: Path) -> None:
    info = open_recording(binance_recording)
    assert (info.kind, info.rows) == ("binance", 93_954)
    assert dict(info.params) == {"symbol": "BTCUSDT", "tick": 0.1, "lot": 0.001}
    assert info.symbols == (binance.symbol_config("BTCUSDT", 0.1, 0.001),)
    assert [(s.name, s.sha256) for s in info.sources] == [(BINANCE.name, sha256(BINANCE))]


def capture(tmp_path: Path) -> Path:
    """A hand-made capture with each of the five record types, an empty side and a trade without ``X``."""
    lines: list[Json] = [
        {"stream": "btcusdt@depth@0ms", "data": {"e": "depthUpdate", "E": 1001, "T": 1000, "s": "BTCUSDT",
                                                 "U": 95, "u": 99, "pu": 90, "b": [["100.0", "5.000"]], "a": []}},
        {"lastUpdateId": 100, "E": 1002, "T": 1001, "bids": [["100.0", "1.000"], ["99.9", "2.500"]],
         "asks": [["100.1", "3.000"]]},
        {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1003, "T": 1002, "s": "BTCUSDT", "t": 7,
                                             "p": "100.1", "q": "0.004", "m": False}},
        {"stream": "btcusdt@bookTicker", "data": {"e": "bookTicker", "u": 100, "s": "BTCUSDT", "b": "100.0",
                                                  "B": "1.000", "a": "100.1", "A": "3.000", "T": 1001, "E": 1004}},
        {"stream": "ethusdt@trade", "data": {"e": "trade", "s": "ETHUSDT"}},
        {"stream": "btcusdt@depth20", "data": {"e": "depthUpdate", "s": "BTCUSDT"}},
        {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1005, "T": 1005, "s": "BTCUSDT", "t": 8,
                                             "p": "100.0", "q": "1.000", "m": True, "X": "LIQUIDATION"}},
    ]  # fmt: skip
    path = tmp_path / "capture.gz"
    path.write_bytes(gzip.compress("".join(f"{10**18 + i} {json.dumps(m)}\n" for i, m in enumerate(lines)).encode()))
    return path


def test_each_binance_record_type_reads_back_as_the_loaders(tmp_path: Path) -> None:
    path = capture(tmp_path)
    record_binance(path, tmp_path / "c.parquet")
    got = list(iter_recorded_binance(tmp_path / "c.parquet"))
    assert got == list(binance.iter_messages(path))
    assert [type(m).__name__ for m in got] == ["DepthUpdate", "Snapshot", "Trade", "BookTicker", "OtherMessage",
                                               "OtherMessage", "Trade"]  # fmt: skip
    assert isinstance(got[0], binance.DepthUpdate) and got[0].asks == []
    assert isinstance(got[2], binance.Trade) and (got[2].buyer_maker, got[2].kind) == (False, "MARKET")


def test_binance_records_span_row_groups_and_read_back_across_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = capture(tmp_path)
    monkeypatch.setattr(rec, "ROW_GROUP_ROWS", 3)
    record_binance(path, tmp_path / "c.parquet")
    assert open_recording(tmp_path / "c.parquet").row_groups == 3
    assert list(iter_recorded_binance(tmp_path / "c.parquet")) == list(binance.iter_messages(path))


# --- commands --------------------------------------------------------------------------------------------------

SYMBOLS = [SymbolConfig("SYN", tick_size=0.01, lot_size=1, max_price_ticks=1_000_000), SymbolConfig("B", 0.5, 2)]


def synthetic_blocks(blocks: int, size: int) -> list[npt.NDArray[np.void]]:
    """Seeded synthetic flow run through the engine, so that its cancels target live orders."""
    engine = Engine()
    engine.add_symbol(SYMBOLS[0])
    flow = SyntheticFlow(0, seed=5)
    out = []
    for i in range(blocks):
        block = flow.next_batch(size, 1_000_000 * i)
        flow.observe(engine.execute_batch(block))
        out.append(block)
    return out


def test_a_synthetic_stream_reads_back_byte_for_byte_in_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = synthetic_blocks(5, 700)
    blocks[1]["reserved2"][3] = 2**64 - 1  # every byte of the record is kept, reserved fields included
    blocks[2]["price"][0] = -(2**63)
    monkeypatch.setattr(rec, "ROW_GROUP_COMMANDS", 1000)
    out = tmp_path / "syn.parquet"
    assert record_commands(iter(blocks), SYMBOLS, out, origin="synthetic seed=5").rows == 3500
    info = open_recording(out)
    assert (info.kind, info.row_groups, info.params["origin"], info.symbols) == ("commands", 4, "synthetic seed=5",
                                                                                tuple(SYMBOLS))  # fmt: skip
    assert [len(b) for b in iter_recorded_commands(out)] == [1000, 1000, 1000, 500]
    symbols, commands = read_recorded_commands(out)
    assert symbols == SYMBOLS and commands.dtype == COMMAND_DTYPE
    assert commands.tobytes() == np.concatenate(blocks).tobytes()


def test_a_journal_recording_replays_to_the_journals_engine_state(tmp_path: Path) -> None:
    commands = [Command.new(1 + i % 2, 0, Side.BUY if i % 3 else Side.SELL, 1 + i % 5, 95 + i % 11, cloid=i + 1,
                            ts_ns=1_000 + i) for i in range(200)]  # fmt: skip
    journal = tmp_path / "engine.journal"
    with Journal.create(journal, 256) as j:
        j.append(np.frombuffer(b"".join(c.pack() for c in commands), dtype=COMMAND_DTYPE))
        j.flush()
    records = read_commands(journal)
    out = tmp_path / "journal.parquet"
    record_commands(records, SYMBOLS[:1], out, sources=[journal], origin="journal")
    symbols, replayed = read_recorded_commands(out)
    assert replayed.tobytes() == records.tobytes()
    assert [(s.name, s.sha256) for s in open_recording(out).sources] == [(journal.name, sha256(journal))]

    def state(cmds: npt.NDArray[np.void], syms: list[SymbolConfig]) -> int:
        engine = Engine()
        for s in syms:
            engine.add_symbol(s)
        engine.execute_batch(cmds)
        return int(engine.state_hash())

    assert state(replayed, symbols) == state(records, SYMBOLS[:1])


def test_commands_of_another_dtype_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="COMMAND_DTYPE"):
        record_commands(np.zeros(4, dtype=np.int64), SYMBOLS, tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_command_stream_is_a_recording_of_zero_rows(tmp_path: Path) -> None:
    record_commands(np.zeros(0, dtype=COMMAND_DTYPE), SYMBOLS, tmp_path / "empty.parquet")
    symbols, commands = read_recorded_commands(tmp_path / "empty.parquet")
    assert (symbols, len(commands), open_recording(tmp_path / "empty.parquet").rows) == (SYMBOLS, 0, 0)


# --- refusals --------------------------------------------------------------------------------------------------


def small_recording(tmp_path: Path) -> Path:
    out = tmp_path / "small.parquet"
    record_commands(synthetic_blocks(1, 2000)[0], SYMBOLS, out)
    return out


def test_a_recording_of_another_kind_is_refused_by_each_reader(tmp_path: Path) -> None:
    out = small_recording(tmp_path)
    with pytest.raises(RecordingError, match="a commands recording, not a binance one"):
        iter_recorded_binance(out)
    with pytest.raises(RecordingError, match="a commands recording, not a lobster one"):
        iter_recorded_lobster(out)


def test_a_file_that_is_not_parquet_is_a_recording_error(tmp_path: Path) -> None:
    (tmp_path / "x.parquet").write_text("34200.1,1,7,100,1000000,1\n")
    with pytest.raises(RecordingError, match="not a readable Parquet file"):
        open_recording(tmp_path / "x.parquet")


def test_a_parquet_file_without_the_recording_metadata_is_refused(tmp_path: Path) -> None:
    pq.write_table(pa.table({"ts_ns": [1, 2]}), tmp_path / "plain.parquet")
    with pytest.raises(RecordingError, match="not a recording"):
        open_recording(tmp_path / "plain.parquet")


def test_a_recording_of_a_newer_format_version_is_refused(tmp_path: Path) -> None:
    table = pq.read_table(small_recording(tmp_path))
    meta = {**pq.read_metadata(tmp_path / "small.parquet").metadata, b"proptrade.format_version": b"2"}
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "new.parquet")
    with pytest.raises(RecordingError, match="format version 2; this reader knows up to 1"):
        open_recording(tmp_path / "new.parquet")


def test_a_recording_whose_columns_do_not_match_its_kind_is_refused(tmp_path: Path) -> None:
    table = pq.read_table(small_recording(tmp_path))
    meta = pq.read_metadata(tmp_path / "small.parquet").metadata
    pq.write_table(table.drop_columns(["qty"]).replace_schema_metadata(meta), tmp_path / "cut.parquet")
    with pytest.raises(RecordingError, match="first missing: qty: int64"):
        open_recording(tmp_path / "cut.parquet")


def test_a_truncated_recording_is_refused(tmp_path: Path) -> None:
    out = small_recording(tmp_path)
    out.write_bytes(out.read_bytes()[:-100])
    with pytest.raises(RecordingError, match="not a readable Parquet file"):
        open_recording(out)


def test_a_damaged_data_page_fails_its_checksum(tmp_path: Path) -> None:
    out = small_recording(tmp_path)
    chunk = pq.read_metadata(out).row_group(0).column(13)
    assert chunk.path_in_schema == "price"
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = bytearray(out.read_bytes())
    data[start + chunk.total_compressed_size - 2] ^= 0x01  # inside the chunk's last page, past its header
    out.write_bytes(bytes(data))
    blocks = iter_recorded_commands(out)  # the footer is intact: the file opens
    with pytest.raises(RecordingError, match="row group 0 is damaged .*checksum"):
        next(blocks)


def test_a_missing_file_is_an_os_error_not_a_recording_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_recording(tmp_path / "absent.parquet")
