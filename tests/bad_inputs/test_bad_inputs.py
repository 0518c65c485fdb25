"""The bad-input corpus: every command of ``proptrade`` refuses each of these inputs with one line and exit 2.

Each case is a command line and the files it names, written into an empty directory: command files, SYMBOLS
and LIMITS TOML, LOBSTER CSV, Binance captures, journals, launcher configs and command-line flags. Every one
must give exit status 2, exactly one non-empty line on stderr (naming the file, and the line and field where
the input has them: the case's ``expect``), nothing on stdout and no file created, changed or removed; no
traceback, whatever the input. The cases run in process through ``hotpath.cli.main`` (fast: the whole corpus
in a few seconds); a sample of every kind runs again as ``python -m hotpath.cli``, a real process, where a
traceback or a second line could only show there.

A launcher config that passed its checks would start the platform: in process the launcher is replaced by
one that fails the test, and as a process each run is bounded by ``--seconds 1`` on a prefix of its own.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

import hotpath.launcher
from hotpath.cli import main

ROOT = Path(__file__).resolve().parents[2]
#: the kinds of input, each with at least MIN_PER_KIND cases
KINDS = ("command file", "symbols TOML", "limits TOML", "LOBSTER CSV", "Binance capture", "journal file",
         "launcher config", "CLI flags")  # fmt: skip
MIN_PER_KIND, MIN_CASES = 20, 250
#: how many cases of each kind run again as a process
SAMPLE_PER_KIND = 1
DIGITS = "9" * 5000  # past int()'s 4,300-digit limit

Content = bytes | str | Callable[[], bytes]


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    argv: tuple[str, ...]
    #: files written into the case's directory first (name -> content)
    files: dict[str, Content] = field(default_factory=dict)
    #: what the error line must contain: the file, line and field it names
    expect: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.kind}: {self.name}"


CASES: list[Case] = []


def _case(kind: str, name: str, argv: list[str], files: dict[str, Content] | None = None, *expect: str) -> None:
    assert kind in KINDS, kind
    CASES.append(Case(kind, name, tuple(argv), files or {}, expect))


# --- command files: proptrade engine replay --------------------------------------------------------------------

SYMBOLS = """\
[symbols.AAA]
tick_size = 0.01
lot_size = 1
min_price_ticks = 1
max_price_ticks = 1000000
max_order_lots = 1000
band_ticks = 0
"""
NEW = {"op": "new", "ts": 1, "client": 1, "symbol": "AAA", "side": "buy", "type": "limit", "price": 100, "qty": 5}


def _line(**fields: object) -> str:
    return json.dumps({**NEW, **fields})


def _commands(name: str, bad: str | bytes, expect: str, before: int = 1) -> None:
    """A command file whose line ``before + 1`` is ``bad``; the L3 output must not appear."""
    good = "".join(_line(ts=i + 1, cloid=i + 1) + "\n" for i in range(before)).encode()
    text = good + (bad if isinstance(bad, bytes) else bad.encode()) + b"\n" + _line(ts=99).encode() + b"\n"
    _case("command file", name, ["engine", "replay", "c.jsonl", "--symbols", "S.toml", "--l3", "l3.json"],
          {"c.jsonl": text, "S.toml": SYMBOLS}, f"c.jsonl:{before + 1}:", expect)  # fmt: skip


_commands("not JSON", "{bad", "not JSON")
_commands("arrays nested 100,000 deep", "[" * 100_000, "nested too deeply")
_commands("objects nested 50,000 deep", '{"a":' * 50_000, "nested too deeply")
_commands("a ts of 5,000 digits", '{"op":"new","ts":' + DIGITS + ',"client":1}', "ts: a number of more than")
_commands("a price of 5,000 digits", _line()[:-1] + ',"cloid":' + DIGITS + "}", "cloid")
_commands("a number of 5,000 digits in an array", '{"op":"new","ts":1,"client":1,"x":[' + DIGITS + "]}", "digits")
_commands("bytes that are not UTF-8", b'{"op":"new","ts":1,"client":1,"symbol":"\xff\xfe"}', "not UTF-8")
_commands("an empty line", "", "empty line")
_commands("a line of blanks", "   \t ", "empty line")
_commands("an array", "[1, 2]", "not a JSON object")
_commands("a string", '"new"', "not a JSON object")
_commands("null", "null", "not a JSON object but null")
_commands("a number", "42", "not a JSON object")
_commands("no op", '{"ts":1,"client":1}', "no 'op'")
_commands("no ts", '{"op":"cancel","client":1,"order_id":1}', "no 'ts'")
_commands("no client", '{"op":"cancel","ts":1,"order_id":1}', "no 'client'")
_commands("a negative ts", _line(ts=-1), "ts -1 is outside")
_commands("a ts of 2^64", _line(ts=2**64), "ts 18446744073709551616 is outside")
_commands("a ts with a fraction", _line(ts=1.5), "ts must be an integer")
_commands("a ts that is true", _line(ts=True), "ts must be an integer")
_commands("a ts that is a string", _line(ts="1"), "ts must be an integer")
_commands("a client with a fraction", _line(client=1.0), "client must be an integer")
_commands("a price with a fraction", _line(price=100.5), "price must be an integer")
_commands("a qty with a fraction", _line(qty=2.5), "qty must be an integer")
_commands("a price of 2^63", _line(price=2**63), "price 9223372036854775808 is outside")
_commands("a qty below -2^63", _line(qty=-(2**63) - 1), "qty -9223372036854775809 is outside")
_commands("a negative order id", '{"op":"cancel","ts":2,"client":1,"order_id":-1}', "order_id -1 is outside")
_commands("a cloid of 2^64", _line(cloid=2**64), "cloid 18446744073709551616 is outside")
_commands("a side code of 256", _line(side=256), "side 256 is outside")
_commands("a symbol id of 65536", _line(symbol=65536), "symbol 65536 is outside")
_commands("a symbol that is a list", _line(symbol=["AAA"]), "symbol must be a name or a symbol id")
_commands("post_only that is a string", _line(post_only="yes"), "post_only must be true or false")
_commands("disconnect that is 1", '{"op":"mass_cancel","ts":2,"client":1,"disconnect":1}', "disconnect must be")
_commands("not_granted that is a string", _line(not_granted="true"), "not_granted must be true or false")
_commands("a key given twice", '{"op":"new","ts":1,"ts":2,"client":1}', "key 'ts' given twice")
_commands("NaN", '{"op":"new","ts":NaN,"client":1}', "NaN is not a JSON number")
_commands("Infinity", '{"op":"new","ts":1,"client":1,"price":-Infinity}', "-Infinity is not a JSON number")
_commands("an unknown field", _line(colour="red"), "unknown field 'colour'")
_commands("a field the op does not have", '{"op":"cancel","ts":2,"client":1,"order_id":1,"price":5}', "no field")
_commands("an op that is a list", '{"op":["new"],"ts":1,"client":1}', "op must be a name or a wire code")
_commands("a bad line far into the file", _line(qty="5"), "qty must be an integer", before=999)
_commands("a byte-order mark", "\ufeff" + _line(), "not JSON")
_commands("a NUL byte", "\x00", "not JSON")
_commands("text after the object", _line() + " x", "not JSON")
_commands("an unknown field that is a lone surrogate", '{"op":"new","ts":1,"client":1,"\\ud800":1}', "unknown field")
_case("command file", "the events output is the command file",
      ["engine", "replay", "c.jsonl", "--symbols", "S.toml", "--events", "c.jsonl"],
      {"c.jsonl": _line() + "\n", "S.toml": SYMBOLS}, "c.jsonl", "refusing to overwrite")  # fmt: skip
_case("command file", "the L3 output is the symbols file",
      ["engine", "replay", "c.jsonl", "--symbols", "S.toml", "--l3", "./S.toml"],
      {"c.jsonl": _line() + "\n", "S.toml": SYMBOLS}, "S.toml", "refusing to overwrite")  # fmt: skip
_case("command file", "no such command file", ["engine", "replay", "none.jsonl", "--symbols", "S.toml"],
      {"S.toml": SYMBOLS}, "none.jsonl: No such file")  # fmt: skip
_case("command file", "a directory as the command file", ["engine", "replay", ".", "--symbols", "S.toml"],
      {"S.toml": SYMBOLS}, "Is a directory")  # fmt: skip


# --- SYMBOLS.toml ----------------------------------------------------------------------------------------------


def _symbols(name: str, text: str | bytes, *expect: str) -> None:
    """A SYMBOLS.toml; neither output may appear."""
    _case("symbols TOML", name,
          ["engine", "replay", "c.jsonl", "--symbols", "S.toml", "--events", "ev.jsonl", "--l3", "l3.json"],
          {"c.jsonl": _line() + "\n", "S.toml": text}, "S.toml", *expect)  # fmt: skip


def _symbol_value(name: str, key: str, value: str, *expect: str) -> None:
    text = (
        SYMBOLS.replace(f"{key} = ", f"{key} = {value}\n#", 1)
        if f"{key} = " in SYMBOLS
        else SYMBOLS + f"{key} = {value}\n"
    )
    _symbols(name, text, *expect)


_symbols("bytes that are not UTF-8", SYMBOLS.encode().replace(b"0.01", b"0.0\xff"), "S.toml:2:", "not UTF-8")
_symbols("not TOML", SYMBOLS + "[symbols.BBB\n", "not TOML", "at line 8")
_symbols("arrays nested 10,000 deep", SYMBOLS + "x = " + "[" * 10_000 + "]" * 10_000 + "\n", "nested too deeply")
_symbols("an integer of 5,000 digits", SYMBOLS.replace("1000\n", DIGITS + "\n"), "S.toml:6:", "4300 digits")
_symbol_value("an infinite tick size", "tick_size", "inf", "S.toml:2:", "tick_size")
_symbol_value("a NaN tick size", "tick_size", "nan", "S.toml:2:", "tick_size")
_symbol_value("a tick size of -inf", "tick_size", "-inf", "S.toml:2:", "tick_size")
_symbol_value("a tick size of 0", "tick_size", "0", "S.toml:2:", "tick_size")
_symbol_value("a negative tick size", "tick_size", "-0.01", "S.toml:2:", "tick_size")
_symbol_value("a subnormal tick size", "tick_size", "1e-320", "S.toml:2:", "tick_size must be a finite number")
_symbol_value("a tick size that is a string", "tick_size", '"0.01"', "S.toml:2:", "tick_size")
_symbol_value("a tick size that is true", "tick_size", "true", "S.toml:2:", "tick_size")
_symbol_value("an infinite lot size", "lot_size", "inf", "S.toml:3:", "lot_size")
_symbol_value("a min price of 0 ticks", "min_price_ticks", "0", "S.toml:4:", "min_price_ticks 0 is outside")
_symbol_value("a max price below the min", "max_price_ticks", "0", "S.toml:5:", "max_price_ticks 0 is outside")
_symbol_value("max_order_lots of 2^64", "max_order_lots", str(2**64), "S.toml:6:", "max_order_lots 1844674407370")
_symbol_value("max_order_lots of 2^63", "max_order_lots", str(2**63), "S.toml:6:", "max_order_lots 922337203685")
_symbol_value("max_order_lots with a fraction", "max_order_lots", "10.5", "S.toml:6:", "must be an integer")
_symbol_value("a negative band", "band_ticks", "-1", "S.toml:7:", "band_ticks -1 is outside")
_symbol_value("band_bps of 2^64", "band_bps", str(2**64), "S.toml:8:", "band_bps")
_symbol_value("a reference price with a fraction", "reference_price", "1.5", "S.toml:8:", "reference_price")
_symbol_value("a market band that is a string", "market_band_ticks", '"5"', "S.toml:8:", "market_band_ticks")
_symbol_value("pnl_unit of 0", "pnl_unit", "0", "S.toml:8:", "pnl_unit 0 is outside")
_symbol_value("pnl_unit beyond 2^32", "pnl_unit", str(2**32 + 1), "S.toml:8:", "pnl_unit")
_symbol_value("a notional beyond 2^62", "max_price_ticks", str(2**62), "S.toml:5:", "notional")
_symbol_value("a date", "band_ticks", "1979-05-27", "S.toml:7:", "band_ticks must be an integer")
_symbol_value("an array", "lot_size", "[1]", "S.toml:3:", "lot_size")
_symbol_value("an inline table", "tick_size", "{ x = 1 }", "S.toml:2:", "tick_size")
_symbol_value("an unknown key", "band_pct", "3", "S.toml:8:", "unknown key 'band_pct'")
_symbols("a missing key", SYMBOLS.replace("band_ticks = 0\n", ""), "S.toml:1:", "missing key 'band_ticks'")
_symbols("an empty file", "", "no [symbols.NAME] table")
_symbols("symbols that is a number", "symbols = 5\n", "S.toml:1:", "[symbols] must be a table")
_symbols("a symbol that is a number", "[symbols]\nAAA = 5\n", "S.toml:2:", "[symbols.AAA] must be a table")
_symbols("a symbol name of 100 characters", SYMBOLS.replace("AAA", "A" * 100), "S.toml:1:", "1 to 64 printable")
_symbols("a symbol name with a control character", SYMBOLS.replace("AAA", '"A\\u0001"'), "1 to 64 printable")
_symbols("an unknown top-level key", "colour = 1\n" + SYMBOLS, "S.toml:1:", "unknown key 'colour'")
_case("symbols TOML", "no such symbols file", ["engine", "replay", "c.jsonl", "--symbols", "none.toml"],
      {"c.jsonl": _line() + "\n"}, "none.toml: No such file")  # fmt: skip
_case("symbols TOML", "a directory as the symbols file", ["engine", "replay", "c.jsonl", "--symbols", "."],
      {"c.jsonl": _line() + "\n"}, "Is a directory")  # fmt: skip


# --- LIMITS.toml -----------------------------------------------------------------------------------------------


def _limits(name: str, text: str | bytes, *expect: str) -> None:
    _case("limits TOML", name,
          ["engine", "replay", "c.jsonl", "--symbols", "S.toml", "--limits", "L.toml", "--l3", "l3.json"],
          {"c.jsonl": _line() + "\n", "S.toml": SYMBOLS, "L.toml": text}, "L.toml", *expect)  # fmt: skip


def _client_limit(name: str, key: str, value: str, *expect: str) -> None:
    _limits(name, f"[clients.1]\nmax_order_qty = 10\n{key} = {value}\n", "L.toml:3:", *expect)


_limits("bytes that are not UTF-8", b"[clients.1]\nmax_loss = 1\xff\n", "L.toml:2:", "not UTF-8")
_limits("not TOML", "[clients.1\n", "not TOML")
_limits("an integer of 5,000 digits", "[clients.1]\nmax_loss = " + DIGITS + "\n", "L.toml:2:", "4300 digits")
_limits("inline tables nested 10,000 deep", "x = " + "{a=" * 10_000 + "1" + "}" * 10_000 + "\n", "nested too deeply")
_client_limit("max_loss of 2^64", "max_loss", str(2**64), "max_loss 18446744073709551616 is outside")
_client_limit("a negative max_loss", "max_loss", "-1", "max_loss must be a non-negative integer")
_client_limit("an infinite max_loss", "max_loss", "inf", "max_loss must be a non-negative integer")
_client_limit("max_loss with a fraction", "max_loss", "1.5", "max_loss must be a non-negative integer")
_client_limit("max_loss that is true", "max_loss", "true", "max_loss")
_client_limit("max_loss that is a string", "max_loss", '"1"', "max_loss")
_client_limit("rate_per_s beyond 2^63 / 1e9", "rate_per_s", str(2**62), "rate_per_s 4611686018427387904 is outside")
_client_limit("rate_burst beyond 2^63 / 1e9", "rate_burst", str(10**10), "rate_burst 10000000000 is outside")
_client_limit("max_position of 2^63", "max_position", str(2**63), "max_position 9223372036854775808 is outside")
_client_limit("a date", "max_open_orders", "1979-05-27", "max_open_orders")
_client_limit("an unknown key", "max_orders", "3", "unknown key 'max_orders'")
_limits("a negative default", "[default]\nmax_loss = -1\n\n[clients.1]\n", "L.toml:2:", "[default]: max_loss")
_limits(
    "a default of 2^64 for a client", "[default]\nmax_loss = " + str(2**64) + "\n[clients.1]\n", "L.toml:2:", "max_loss"
)
_limits("an unknown default key", "[default]\nmax_los = 3\n", "L.toml:2:", "unknown key 'max_los'")
_limits("a client id of 65535", "[clients.65535]\nmax_loss = 1\n", "L.toml:1:", "a client id is an integer 0..65534")
_limits("a client id that is a word", "[clients.abc]\n", "L.toml:1:", "a client id is an integer")
_limits("a client id of 30 digits", "[clients." + "9" * 30 + "]\n", "L.toml:1:", "a client id is an integer")
_limits("a negative client id", "[clients.-1]\n", "L.toml:1:", "a client id is an integer")
_limits("a client id beyond --max-clients", "[clients.300]\nmax_loss = 1\n", "[clients.300]", "refuses it")
_limits("clients that is a number", "clients = 5\n", "L.toml:1:", "[clients] must be a table")
_limits("default that is a list", "default = [1]\n", "L.toml:1:", "[default] must be a table")
_limits("a client that is a number", "[clients]\n1 = 5\n", "L.toml:2:", "[clients.1] must be a table")
_limits("an unknown top-level key", "[client.1]\n", "L.toml:1:", "unknown key 'client'")
_limits("one client given twice", "[clients.1]\n[clients.01]\n", "L.toml:2:", "client 1 given twice")
_case("limits TOML", "no such limits file",
      ["engine", "replay", "c.jsonl", "--symbols", "S.toml", "--limits", "none.toml"],
      {"c.jsonl": _line() + "\n", "S.toml": SYMBOLS}, "none.toml: No such file")  # fmt: skip


# --- LOBSTER CSV: proptrade engine lobster ---------------------------------------------------------------------

MESSAGES = "34200.0,1,1,10,1000000,1\n34200.1,1,2,5,1000100,-1\n34200.2,3,1,10,1000000,1\n"
BOOK = "9999999999,0,1000000,10\n1000100,5,1000000,10\n1000100,5,-9999999999,0\n"
M, B = "AAA_message_1.csv", "AAA_orderbook_1.csv"


def _lobster(name: str, messages: Content, book: Content, *expect: str) -> None:
    _case("LOBSTER CSV", name, ["engine", "lobster", M, B], {M: messages, B: book}, *expect)


def _message(name: str, old: str, new: str, *expect: str) -> None:
    """Line 2 of the message file with ``old`` replaced by ``new``."""
    lines = MESSAGES.splitlines(keepends=True)
    assert old in lines[1], old
    lines[1] = lines[1].replace(old, new, 1)
    _lobster(name, "".join(lines), BOOK, f"{M}:2:", *expect)


def _row(name: str, old: str, new: str, *expect: str) -> None:
    """Line 2 of the order-book file with ``old`` replaced by ``new``."""
    lines = BOOK.splitlines(keepends=True)
    assert old in lines[1], old
    lines[1] = lines[1].replace(old, new, 1)
    _lobster(name, MESSAGES, "".join(lines), *expect)


_message("a time after the day", "34200.1,", "86401.0,", "time 86401 s is outside the day")
_message("a time of 5,000 digits", "34200.1,", DIGITS + ".1,", "is outside the day")
_message("a time that is nan", "34200.1,", "nan,", "time 'nan' is not seconds")
_message("a time with an exponent", "34200.1,", "3.42e4,", "is not seconds after midnight")
_message("a negative time", "34200.1,", "-1.0,", "is not seconds after midnight")
_message("an empty time", "34200.1,", ",", "is not seconds after midnight")
_message("a message type of 9", ",1,2,", ",9,2,", "unknown message type 9")
_message("a message type of 0", ",1,2,", ",0,2,", "unknown message type 0")
_message("a message type of 5,000 digits", ",1,2,", f",{DIGITS},2,", "type 9999", "beyond any int64")
_message("a negative order id", ",2,5,", ",-2,5,", "order id -2 is outside")
_message("an order id of 2^64", ",2,5,", f",{2**64},5,", "order id 18446744073709551616 is outside")
_message("an order id of 25 digits", ",2,5,", "," + "7" * 25 + ",5,", "order id 7777", "is outside 0..1844674")
_message("a size of 0", ",5,1000100,", ",0,1000100,", "size 0 is outside")
_message("a negative size", ",5,1000100,", ",-5,1000100,", "size -5 is outside")
_message("a size of 2^40", ",5,1000100,", f",{2**40},1000100,", "size 1099511627776 is outside")
_message("a negative price", ",1000100,", ",-1000100,", "price -1000100", "outside")
_message("a price of 0", ",1000100,", ",0,", "price 0", "outside")
_message("a price off the tick", ",1000100,", ",1000150,", "price 1000150 is not a multiple of the tick")
_message("a price beyond 10^7 ticks", ",1000100,", ",100000000000000,", "outside 1..10000000")
_message("a price that is a word", ",1000100,", ",abc,", "price 'abc' is not an integer")
_message("a direction of 2", ",-1\n", ",2\n", "direction 2 is neither")
_message("a direction of 0", ",-1\n", ",0\n", "direction 0 is neither")
_message("five columns", ",5,1000100,-1", ",5,1000100", "5 columns, a message has 6")
_message("seven columns", ",-1\n", ",-1,7\n", "7 columns, a message has 6")
_message("an underscore in a number", ",1000100,", ",1_000_100,", "an underscore at column")
_message("a character that is not ASCII", ",5,", ",\u0665,", "not ASCII text")
_lobster("bytes that are not UTF-8", MESSAGES.encode() + b"\xff\xfe,1\n", BOOK, f"{M}:4:", "not ASCII text")
_lobster("a blank line", MESSAGES.replace("\n", "\n\n", 1), BOOK, f"{M}:2:", "1 columns, a message has 6")
_lobster("a line of 200 KiB", MESSAGES + "1" * 200_000 + "\n", BOOK, f"{M}:4:", "more than 128 KiB")
_lobster("200 KiB without a newline", b"\x00\x01" * 100_000, BOOK, f"{M}:1:", "more than 128 KiB")
_lobster("damaged gzip data", b"\x1f\x8b" + b"not gzip at all", BOOK, M, "damaged gzip data")
_lobster("truncated gzip data", lambda: gzip.compress(MESSAGES.encode() * 50)[:-30], BOOK, M, "damaged gzip data")
_lobster("an empty message file", "", BOOK, M, "is empty")
_lobster("an empty order-book file", MESSAGES, "", B, "is empty")
_lobster("more messages than rows", MESSAGES + "34200.3,1,3,5,1000100,-1\n", BOOK, "4 messages but", "3 rows")
_lobster("more rows than messages", MESSAGES, BOOK + BOOK.splitlines(keepends=True)[-1], "3 messages but", "4 rows")
_lobster("a row of 3 columns", MESSAGES, "1,2,3\n" + BOOK, f"{B}:1:", "3 columns, not 4 per level")
_lobster("a row of 6 columns", MESSAGES, BOOK.replace("10\n", "10,1,1\n", 1), f"{B}:1:", "6 columns, not 4 per level")
_lobster("rows of different widths", MESSAGES, BOOK.replace("10\n", "10,1000200,1,999900,1\n", 1), f"{B}:2:",
         "4 columns, the first row has 8")  # fmt: skip
_row("a negative size in a row", "1000100,5,", "1000100,-5,", f"{B}:2 column 2", "ask size -5 is outside")
_row("a size of 2^40 in a row", "1000100,5,", f"1000100,{2**40},", f"{B}:2 column 2", "outside")
_row("a bid price of 10^20", ",1000000,10", f",{10**20},10", f"{B}:2 column 3", "bid price")
_row("a cell that is a word", ",1000000,10", ",abc,10", f"{B}:2", "column 3 'abc' is not an integer")
_row("a cell of 25 digits", ",1000000,10", "," + "3" * 25 + ",10", f"{B}:2 column 3", "bid price 3333", "outside")
_lobster("an ask off the tick in the first row", MESSAGES, BOOK.replace("9999999999,0", "1000150,3", 1), B,
         "price 1000150 is not a multiple of the tick")  # fmt: skip
_case("LOBSTER CSV", "no such message file", ["engine", "lobster", "none.csv", B], {B: BOOK}, "none.csv: No such file")
_case("LOBSTER CSV", "a directory as the order-book file", ["engine", "lobster", M, "."], {M: MESSAGES},
      "Is a directory")  # fmt: skip


# --- Binance captures: proptrade engine binance ----------------------------------------------------------------


def _snapshot(**fields: object) -> str:
    d = {"lastUpdateId": 100, "E": 1000, "T": 1000, "bids": [["100.0", "1.000"]], "asks": [["100.1", "2.000"]]}
    return "1000000 " + json.dumps({**d, **fields})


def _stream(stream: str, data: dict[str, object]) -> str:
    return "1000001 " + json.dumps({"stream": f"btcusdt@{stream}", "data": data})


def _diff(**fields: object) -> str:
    d = {"e": "depthUpdate", "E": 1001, "T": 1001, "s": "BTCUSDT", "U": 99, "u": 101, "pu": 98,
         "b": [["100.0", "1.5"]], "a": []}  # fmt: skip
    return _stream("depth@0ms", {**d, **fields})


def _ticker(**fields: object) -> str:
    d = {"e": "bookTicker", "u": 101, "s": "BTCUSDT", "b": "100.0", "B": "1.500", "a": "100.1", "A": "2.000",
         "T": 1001, "E": 1001}  # fmt: skip
    return _stream("bookTicker", {**d, **fields})


def _trade(**fields: object) -> str:
    d = {"e": "trade", "E": 1001, "T": 1001, "s": "BTCUSDT", "t": 5, "p": "100.1", "q": "0.006", "X": "MARKET",
         "m": False}  # fmt: skip
    return _stream("trade", {**d, **fields})


def _binance(name: str, lines: list[str] | bytes, line_no: int | None, *expect: str) -> None:
    """A capture whose line ``line_no`` is bad (None: the file as a whole)."""
    content: Content = lines if isinstance(lines, bytes) else "\n".join(lines) + "\n"
    where = "f.jsonl" if line_no is None else f"f.jsonl:{line_no}:"
    _case("Binance capture", name, ["engine", "binance", "f.jsonl"], {"f.jsonl": content}, where, *expect)


_binance("a snapshot time that is a string", [_snapshot(E="x"), _diff()], 1, "E must be an integer")
_binance("a snapshot time that is a list", [_snapshot(E=[1] * 10), _diff()], 1, "E must be an integer")
_binance("a snapshot time with a fraction", [_snapshot(T=1.5), _diff()], 1, "T must be an integer")
_binance("a snapshot time of 2^70", [_snapshot(E=2**70), _diff()], 1, "E must be an integer")
_binance("an update id that is a string", [_snapshot(lastUpdateId="x"), _diff()], 1, "lastUpdateId must be")
_binance("a negative update id", [_snapshot(lastUpdateId=-5), _diff()], 1, "lastUpdateId must be")
_binance("bids that are a number", [_snapshot(bids=5), _diff()], 1, "bids must be a list of [price, qty]")
_binance("a level of three strings", [_snapshot(bids=[["1", "2", "3"]]), _diff()], 1, "bids must be a list")
_binance("a price that is a number", [_snapshot(bids=[[100, "1"]]), _diff()], 1, "price 100 is not a decimal string")
_binance("a price of 1e400", [_snapshot(asks=[["1e400", "1"]]), _diff()], 1, "price 1e400 is outside", "(in asks)")
_binance("a price of 10^20", [_snapshot(bids=[["1" + "0" * 20, "1"]]), _diff()], 1, "is outside 1..1000000000")
_binance("a price of 0", [_snapshot(bids=[["0", "1"]]), _diff()], 1, "price 0 is outside")
_binance("a price off the tick", [_snapshot(bids=[["100.05", "1"]]), _diff()], 1, "not a multiple of the tick")
_binance("a price that is a word", [_snapshot(bids=[["abc", "1"]]), _diff()], 1, "'abc' is not a decimal number")
_binance("a price of 100 characters", [_snapshot(bids=[["1" * 100, "1"]]), _diff()], 1, "not a decimal string")
_binance("a quantity of 10^14", [_snapshot(bids=[["100.0", "1" + "0" * 14]]), _diff()], 1, "qty", "outside")
_binance("a negative quantity", [_snapshot(bids=[["100.0", "-1"]]), _diff()], 1, "qty '-1' is not a finite number")
_binance("a quantity that is NaN", [_snapshot(bids=[["100.0", "NaN"]]), _diff()], 1, "qty 'NaN' is not a finite")
_binance("a first id that is a string", [_snapshot(), _diff(U="x")], 2, "U must be an integer")
_binance("a final id that is null", [_snapshot(), _diff(u=None)], 2, "u must be an integer", "null")
_binance("a previous id with a fraction", [_snapshot(), _diff(pu=1.5)], 2, "pu must be an integer")
_binance("an event time of 2^64", [_snapshot(), _diff(T=2**64)], 2, "T must be an integer")
_binance("a negative event time", [_snapshot(), _diff(E=-5)], 2, "E must be an integer")
_binance("a level of one string", [_snapshot(), _diff(b=[["100.0"]])], 2, "b must be a list of [price, qty]")
_binance("levels that are an object", [_snapshot(), _diff(a={"x": 1})], 2, "a must be a list of [price, qty]")
_binance("a ticker id that is a string", [_snapshot(), _diff(), _ticker(u="x")], 3, "u must be an integer")
_binance("a ticker price that is a number", [_snapshot(), _diff(), _ticker(b=5)], 3, "price 5 is not a decimal")
_binance("a trade side that is a string", [_snapshot(), _diff(), _trade(m="x")], 3, 'm "x"', "true or false")
_binance("a trade id that is a string", [_snapshot(), _diff(), _trade(t="x")], 3, "t must be an integer")
_binance("a trade kind that is a number", [_snapshot(), _diff(), _trade(X=5)], 3, "X 5")
_binance("a missing field", [_snapshot(), _stream("depth", {"s": "BTCUSDT"})], 2, "no field 'E'")
_binance("a stream that is a number", [_snapshot(), "1 " + json.dumps({"stream": 5, "data": {}})], 2, "stream 5")
_binance("data that is a number", [_snapshot(), "1 " + json.dumps({"stream": "x", "data": 5})], 2, "data 5")
_binance("an array", [_snapshot(), "1 []"], 2, "not a JSON object but []")
_binance("arrays nested 100,000 deep", [_snapshot(), "1 " + "[" * 100_000], 2, "not JSON")
_binance("an integer of 5,000 digits", [_snapshot(), '1 {"a":' + DIGITS + "}"], 2, "not JSON")
_binance("a receive time that is a word", [_snapshot(), "abc {}"], 2, 'receive time "abc"')
_binance("a receive time of 25 digits", ["1" * 25 + " {}"], 1, "receive time", "not ns since the epoch")
_binance("a line without a receive time", ['{"lastUpdateId":1}'], 1, "receive time")
_binance("bytes that are not UTF-8", _snapshot()[:-1].encode() + b',"x":"\xff"}\n', 1, "not JSON")
_binance("binary bytes", b"\xff\xfe\x00\x01\n", 1, "receive time")
_binance("a line of 2 MiB", [_snapshot(), "1 " + "x" * (2 << 20)], 2, "a line of more than 1 MiB")
_binance("damaged gzip data", b"\x1f\x8bxx", 1, "damaged gzip data")
_binance("truncated gzip data", gzip.compress(("\n".join([_snapshot(), _diff()] * 200) + "\n").encode())[:-8], None,
         "damaged gzip data")  # fmt: skip
_binance("an empty file", b"", None, "no depth snapshot")
_binance("no snapshot", [_diff()], None, "no depth snapshot")
_binance("a snapshot and no diff", [_snapshot()], None, "no depth update of BTCUSDT")
_case("Binance capture", "no such capture", ["engine", "binance", "none.gz"], {}, "none.gz: No such file")


# --- journal files: proptrade journal dump|verify|salvage ------------------------------------------------------


@cache
def _journal() -> bytes:
    """A good journal of 16 records' capacity holding 2 commands."""
    import tempfile

    import numpy as np

    from c_engine import COMMAND_DTYPE, Command, Side
    from hotpath.journal import Journal

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j"
        with Journal.create(path, 16) as journal:
            for ts in (1, 2):
                cmd = Command.new(1, 0, Side.BUY, 5, 100, ts_ns=ts)
                journal.append(np.frombuffer(cmd.pack(), dtype=COMMAND_DTYPE))
        return path.read_bytes()


def _damaged(offset: int, mask: int) -> Callable[[], bytes]:
    """The good journal with byte ``offset`` XORed with ``mask``."""

    def make() -> bytes:
        data = bytearray(_journal())
        data[offset] ^= mask
        return bytes(data)

    return make


def _journal_case(
    name: str, sub: str, content: Content | None, *expect: str, extra: tuple[str, ...] = (),
    more: dict[str, Content] | None = None,
) -> None:  # fmt: skip
    files = ({} if content is None else {"J": content}) | (more or {})
    _case("journal file", name, ["journal", sub, "J", *extra], files, *expect)


for _sub, _extra in (("dump", ()), ("verify", ()), ("salvage", ("--out", "NEW"))):
    _journal_case(f"{_sub}: an empty file", _sub, b"", "J: not a journal of a usable size", extra=_extra)
    _journal_case(f"{_sub}: 100 bytes", _sub, b"x" * 100, "J: not a journal of a usable size", extra=_extra)
    _journal_case(f"{_sub}: text", _sub, b"x" * 5000, "J: not a journal (bad magic)", extra=_extra)
    _journal_case(f"{_sub}: cut short", _sub, lambda: _journal()[:200], "J: not a journal of a usable size",
                  extra=_extra)  # fmt: skip
    _journal_case(f"{_sub}: another layout version", _sub, _damaged(8, 0x60), "J: a journal of another version",
                  extra=_extra)  # fmt: skip
    _journal_case(f"{_sub}: a damaged header", _sub, _damaged(20, 0x01), "J: a damaged journal header",
                  extra=_extra)  # fmt: skip
    _journal_case(f"{_sub}: no such file", _sub, None, "J: No such file", extra=_extra)
_journal_case("dump: a record that fails its checksum", "dump", _damaged(130, 0xFF), "J: record 0",
              "fails its checksum")  # fmt: skip
_journal_case("dump: a symbols file that is not UTF-8", "dump", _journal, "S:1:", "not UTF-8", extra=("--symbols", "S"),
              more={"S": b"\xff\n"})  # fmt: skip
_journal_case("dump: a symbols file that is not TOML", "dump", _journal, "S:", "not TOML", extra=("--symbols", "S"),
              more={"S": "[symbols.A\n"})  # fmt: skip
_journal_case("dump: no such symbols file", "dump", _journal, "nope.toml: No such file",
              extra=("--symbols", "nope.toml"))  # fmt: skip
_journal_case("salvage: a new journal that exists", "salvage", _journal, "K: exists", extra=("--out", "K"),
              more={"K": "not a journal"})  # fmt: skip
_journal_case("salvage: over the journal itself", "salvage", _journal, "J: exists", extra=("--out", "J"))
_journal_case("salvage: into a missing directory", "salvage", _journal, "d/NEW", "No such file",
              extra=("--out", "d/NEW"))  # fmt: skip


# --- launcher configs: proptrade up ----------------------------------------------------------------------------

BASE = hotpath.launcher.DEFAULT_CONFIG


def _up(name: str, text: Content, *expect: str) -> None:
    prefix = f"pt_bad_{uuid.uuid4().hex[:10]}"
    _case("launcher config", name, ["up", "--config", "p.toml", "--seconds", "1", "--prefix", prefix],
          {"p.toml": text}, "proptrade up: p.toml: ", *expect)  # fmt: skip


def _edit(name: str, old: str, new: str, *expect: str) -> None:
    assert old in BASE, old
    _up(name, BASE.replace(old, new, 1), *expect)


_up("arrays nested 5,000 deep", BASE + "x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply")
#: where the config's max_orders line is: the two cases below break that line
MAX_ORDERS_LINE = f"line {BASE.splitlines().index('max_orders = 262144') + 1}"
_up("an integer of 5,000 digits", BASE.replace("max_orders = 262144", "max_orders = " + DIGITS), MAX_ORDERS_LINE)
_up("bytes that are not UTF-8", BASE.encode().replace(b"max_orders", b"max_\xffrders"), MAX_ORDERS_LINE, "not UTF-8")
_up("snapshots without a journal", BASE.replace("snapshot_every = 0", "snapshot_every = 1000"), "needs a journal")
_up("no snapshot kept", BASE.replace("snapshot_keep = 2", "snapshot_keep = 0"), "snapshot_keep")
_up("not TOML", "[engine\n", "not valid TOML")
_up("an empty file", "", "no [[symbols]]")
_edit("max_orders of 2^64", "max_orders = 262144", f"max_orders = {2**64}", "[engine] max_orders")
_edit("max_orders of 2^32", "max_orders = 262144", f"max_orders = {2**32}", "[engine] max_orders 4294967296")
_edit("max_orders of 0", "max_orders = 262144", "max_orders = 0", "[engine] max_orders")
_edit("max_clients of 70,000", "max_clients = 64", "max_clients = 70000", "[engine] max_clients 70000")
_edit("max_clients that is a string", "max_clients = 64", 'max_clients = "64"', "[engine] max_clients")
_edit("a ring of 3 slots", "ring_capacity = 4096", "ring_capacity = 3", "power of two")
_edit("a ring of 2^62 slots", "ring_capacity = 4096", f"ring_capacity = {2**62}", "ring_capacity must be at most")
_edit("a market-data ring of 1.5 slots", "md_capacity = 65536", "md_capacity = 1.5", "md_capacity must be an integer")
_edit("core 99", 'core = "last"', "core = 99", "core must be")
_edit("core true", 'core = "last"', "core = true", "core must be")
_edit("a journal that is a directory", 'journal = ""', 'journal = "."', "is a directory")
_edit("a journal in no directory", 'journal = ""', 'journal = "/nonexistent/dir/j"', "its directory does not exist")
_edit("a journal that is a number", 'journal = ""', "journal = 5", "journal must be a path")
_edit("a negative heartbeat", "heartbeat_timeout_s = 5.0", "heartbeat_timeout_s = -1.0", "heartbeat_timeout_s")
_edit("an infinite heartbeat", "heartbeat_timeout_s = 5.0", "heartbeat_timeout_s = inf", "finite")
_edit("a heartbeat of 1e300 s", "heartbeat_timeout_s = 5.0", "heartbeat_timeout_s = 1e300", "at most 86400")
_edit("a flush period of nan", "journal_flush_ms = 5.0", "journal_flush_ms = nan", "journal_flush_ms")
_edit("an infinite tick size", "tick_size = 0.01", "tick_size = inf", "tick_size must be a finite number")
_edit("a tick size that is a string", "tick_size = 0.01", 'tick_size = "x"', "tick_size")
_edit("max_order_lots of 2^64", "max_order_lots = 10000", f"max_order_lots = {2**64}", "max_order_lots 1844674")
_edit("max_order_lots that is a string", "max_order_lots = 10000", 'max_order_lots = "x"', "max_order_lots")
_edit("a notional beyond 2^62", "max_order_lots = 10000", f"max_order_lots = {2**61}", "notional")
_edit("a symbol name that is a number", 'name = "SIM"', "name = 5", "[[symbols]] name")
_edit("an unknown symbol key", "lot_size = 1", "lot_size = 1\ncolour = 3", "unknown keys ['colour']")
_edit("an account limit of -5", "limits = {", "limits = {max_loss = -5, ", "'mm_1': limits: max_loss -5")
_edit("an account limit of 2^64", "limits = {", f"limits = {{max_loss = {2**64}, ", "limits: max_loss")
_edit("an account limit that is a string", "limits = {", 'limits = {max_loss = "x", ', "limits: max_loss")
_edit("two accounts on one client", "client = 10\n", "client = 1\n", "both use client 1")
_edit("an account on client 64 of 64", "client = 1\n", "client = 64\n", "0..63")
_edit("probe hz that is a string", "hz = 50 ", 'hz = "x" ', "[probe] hz")
_edit("an infinite probe hz", "hz = 50 ", "hz = inf ", "[probe] hz")
_edit("agent accounts that are a number", 'accounts = ["mm_1"]', "accounts = 5", "accounts must be a list")
_edit("agent accounts that are numbers", 'accounts = ["mm_1"]', "accounts = [5]", "accounts must be a list")
_edit("max_restarts that is a list", "restart = true\nmaker", "restart = true\nmax_restarts = [1]\nmaker",
      "max_restarts must be an integer")  # fmt: skip
_edit("a negative max_restarts", "restart = true\nmaker", "restart = true\nmax_restarts = -1\nmaker", "max_restarts")
_edit("restart that is a string", "restart = true\nmaker", 'restart = "yes"\nmaker', "restart must be true or false")
_edit("a module that is a number", 'module = "hotpath.agents.flow"', "module = 5", "module must be")
_edit("a module that is no module name", 'module = "hotpath.agents.flow"', 'module = "../x"', "dotted module name")
_edit("an agent on no symbol", 'symbol = "SIM"\nargs = ["--rate"', 'symbol = "XXX"\nargs = ["--rate"',
      "no symbol 'XXX'")  # fmt: skip
_edit("an unknown table", "[engine]", "[engines]", "unknown table [engines]")
_edit("a gateway port of 70,000", "port = 8000", "port = 70000", "port must be 0..65535")
_edit("a bridge that is enabled = 5", "[bridge]\nenabled = true", "[bridge]\nenabled = 5", "[bridge]: enabled must be")
_edit("a bridge endpoint that is a number", 'pub = "tcp://127.0.0.1:5560"', "pub = 5", "[bridge]: pub must be")
_case("launcher config", "no such config", ["up", "--config", "none.toml", "--seconds", "1"], {},
      "proptrade up: none.toml: ", "No such file")  # fmt: skip


# --- command-line flags ----------------------------------------------------------------------------------------


def _flags(name: str, argv: list[str], *expect: str, files: dict[str, Content] | None = None) -> None:
    _case("CLI flags", name, argv, files or {}, *expect)


REPLAY = ["engine", "replay", "c.jsonl", "--symbols", "S.toml", "--events", "ev.jsonl"]
REPLAY_FILES: dict[str, Content] = {"c.jsonl": _line() + "\n", "S.toml": SYMBOLS}
for _flag, _value, _expect in (
    ("--max-orders", "0", "--max-orders: max_orders 0 is outside 1..2147483646"),
    ("--max-orders", str(2**64), "max_orders 18446744073709551616 is outside"),
    ("--max-orders", "-1", "max_orders -1 is outside"),
    ("--max-orders", "x", "argument --max-orders: invalid int value: 'x'"),
    ("--max-orders", DIGITS, "argument --max-orders: invalid int value"),
    ("--max-clients", "65535", "--max-clients: max_clients 65535 is outside 1..65534"),
    ("--max-clients", "0", "max_clients 0 is outside"),
    ("--max-levels-per-side", str(2**23 + 1), "max_levels_per_side 8388609 is outside 1..8388608"),
    ("--max-levels-per-side", "1.5", "invalid int value: '1.5'"),
    ("--engine", "rust", "argument --engine: invalid choice: 'rust'"),
):
    _flags(f"replay {_flag} {_value[:12]}", [*REPLAY, _flag, _value], _expect, files=REPLAY_FILES)
_flags("replay without --symbols", ["engine", "replay", "c.jsonl"], "required: --symbols")
_flags("replay with an unknown flag", [*REPLAY, "--colour", "red"], "unrecognized arguments: --colour red",
       files=REPLAY_FILES)  # fmt: skip
_flags("lobster --tick 0", ["engine", "lobster", M, B, "--tick", "0"], "--tick 0: a tick is 1..922337203685",
       files={M: MESSAGES, B: BOOK})  # fmt: skip
_flags("lobster --tick 10^400", ["engine", "lobster", M, B, "--tick", "1" + "0" * 400], "--tick 1000",
       files={M: MESSAGES, B: BOOK})  # fmt: skip
_flags("lobster --show -1", ["engine", "lobster", M, B, "--show", "-1"], "argument --show: '-1' is not a count")
_flags("binance --tick nan", ["engine", "binance", "f.jsonl", "--tick", "nan"], "--tick nan: must be a finite number")
_flags("binance --tick 1e-320", ["engine", "binance", "f.jsonl", "--tick", "1e-320"], "tick_size must be a finite")
_flags("binance --lot -1", ["engine", "binance", "f.jsonl", "--lot", "-1"], "--lot -1.0: must be a finite number")
_flags("binance --symbol with a slash", ["engine", "binance", "f.jsonl", "--symbol", "BTC/USDT"], "--symbol 'BTC/USDT'")
_flags("binance --show x", ["engine", "binance", "f.jsonl", "--show", "x"], "argument --show: 'x' is not a count")
_flags("no command", [], "required: COMMAND")
_flags("an unknown command", ["trade"], "invalid choice: 'trade'")
_flags("engine without a subcommand", ["engine"], "required: SUBCOMMAND")
_flags("journal salvage without --out", ["journal", "salvage", "J"], "required: --out")
_flags("ctl --timeout nan", ["ctl", "stats", "--prefix", "x", "--timeout", "nan"], "argument --timeout: 'nan'")
_flags("ctl --timeout -1", ["ctl", "stats", "--prefix", "x", "--timeout", "-1"], "argument --timeout: '-1'")
_flags("ctl --timeout 1e300", ["ctl", "stats", "--prefix", "x", "--timeout", "1e300"], "argument --timeout")
_flags("ctl --endpoint garbage", ["ctl", "stats", "--endpoint", "garbage"], "'garbage' is not an endpoint")
_flags("ctl --endpoint with port 99999", ["ctl", "stats", "--endpoint", "tcp://h:99999"], "is not an endpoint")
_flags("ctl --prefix with a slash", ["ctl", "stats", "--prefix", "a/b"], "'a/b' is not a prefix")
_flags("ctl --prefix and --endpoint", ["ctl", "--prefix", "a", "--endpoint", "tcp://h:1", "stats"], "not allowed")
_flags("ctl a VALUE nested 100,000 deep", ["ctl", "stats", "a=" + "[" * 100_000, "--prefix", "x"], "a: VALUE nested")
_flags("ctl a VALUE nested 50 deep", ["ctl", "stats", "a=" + "[" * 50 + "]" * 50, "--prefix", "x"], "nested deeper")
_flags("ctl a field without =", ["ctl", "stats", "depth", "--prefix", "x"], "'depth' is not FIELD=VALUE")
_flags("stats a prefix with ..", ["stats", "../../etc/passwd"], "is not a prefix")
_flags("stats a NUL prefix", ["stats", "\x00"], "is not a prefix")
_flags("stats --interval -1", ["stats", "--interval", "-1"], "argument --interval: '-1'")
_flags("stats --count -1", ["stats", "--count", "-1"], "argument --count: '-1' is not a count")
_flags("stats --timeout inf", ["stats", "--timeout", "inf"], "argument --timeout: 'inf'")
_flags("up --seconds -5", ["up", "--seconds", "-5"], "argument --seconds: '-5'")
_flags("up --seconds nan", ["up", "--seconds", "nan"], "argument --seconds: 'nan'")
_flags("up --prefix of 65 characters", ["up", "--prefix", "a" * 65], "is not a prefix")
_flags("up --prefix that is empty", ["up", "--prefix", ""], "'' is not a prefix")
_flags("demo --seed -1", ["demo", "--seed", "-1"], "argument --seed: '-1' is not a seed")
_flags("demo --seed 2^64", ["demo", "--seed", str(2**64)], "is not a seed")
_flags("demo --seconds inf", ["demo", "--seconds", "inf"], "argument --seconds: 'inf'")
STRATEGY = ["strategy", "run", "--strategy", "symmetric", "--account", "mm_1", "--prefix", "x"]
_flags("strategy run without --strategy", ["strategy", "run", "--account", "mm_1"], "required: --strategy")
_flags("strategy run an unknown strategy", [*STRATEGY[:3], "magic", *STRATEGY[4:]], "invalid choice: 'magic'")
_flags("strategy run --seconds -1", [*STRATEGY, "--seconds", "-1"], "argument --seconds: '-1'")
_flags("strategy run --maker-fee-bps nan", [*STRATEGY, "--maker-fee-bps", "nan"], "argument --maker-fee-bps")
_flags("strategy run --endpoint garbage", [*STRATEGY[:6], "--endpoint", "garbage"], "is not an endpoint")
_flags("strategy run --half-spread -1", [*STRATEGY, "--half-spread", "-1"], "'half_spread' cannot be negative")
_flags("strategy run --half-spread inf", [*STRATEGY, "--half-spread", "inf"], "'half_spread' must be finite")
_flags("strategy run --size 0", [*STRATEGY, "--size", "0"], "size and max_position must be positive")
_flags("strategy run a parameter file that is not UTF-8", [*STRATEGY, "--config", "p.toml"], "p.toml:2:",
       "not UTF-8", files={"p.toml": b"[strategy]\nsize = \xff\n"})  # fmt: skip
_flags("strategy run a parameter of 400 digits", [*STRATEGY, "--config", "p.toml"], "p.toml", "401 digits",
       files={"p.toml": "[strategy]\nsize = 1" + "0" * 400 + "\n"})  # fmt: skip
_flags("strategy run a parameter nested 5,000 deep", [*STRATEGY, "--config", "p.toml"], "nested too deeply",
       files={"p.toml": "x = " + "[" * 5000 + "]" * 5000 + "\n"})  # fmt: skip
_flags("strategy run an unknown parameter", [*STRATEGY, "--config", "p.toml"], "has no parameter 'colour'",
       files={"p.toml": "[strategy]\ncolour = 1\n"})  # fmt: skip
BACKTEST = ["backtest", "synthetic", "--strategy", "symmetric", "--messages", "10"]
_flags("backtest --messages -5", [*BACKTEST, "--messages", "-5"], "argument --messages: '-5'")
_flags("backtest --seed -1", [*BACKTEST, "--seed", "-1"], "argument --seed: '-1' is not a seed")
_flags("backtest --mean-gap-us nan", [*BACKTEST, "--mean-gap-us", "nan"], "argument --mean-gap-us: 'nan'")
_flags("backtest --entry-latency-us 1e300", [*BACKTEST, "--entry-latency-us", "1e300"], "--entry-latency-us")
_flags("backtest --record-interval -1", [*BACKTEST, "--record-interval", "-1"], "argument --record-interval")
_flags("backtest --taker-fee-bps inf", [*BACKTEST, "--taker-fee-bps", "inf"], "argument --taker-fee-bps: 'inf'")
_flags("backtest --multiplier 0", [*BACKTEST, "--multiplier", "0"], "argument --multiplier: '0'")
_flags("backtest lobster --tick 10^400", ["backtest", "lobster", M, B, "--strategy", "symmetric", "--tick",
                                          "1" + "0" * 400], "argument --tick")  # fmt: skip
_flags("backtest binance --tick nan", ["backtest", "binance", "f.gz", "--strategy", "symmetric", "--tick", "nan"],
       "argument --tick: 'nan'")  # fmt: skip
_flags("backtest a parameter file that is not UTF-8", [*BACKTEST, "--config", "p.toml"], "p.toml:1:", "not UTF-8",
       files={"p.toml": b"\xff"})  # fmt: skip


# --- running them ----------------------------------------------------------------------------------------------


def _write(directory: Path, files: dict[str, Content]) -> None:
    for name, content in files.items():
        data = content() if callable(content) else content
        (directory / name).write_bytes(data.encode() if isinstance(data, str) else data)


def _snapshot_of(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under ``directory``: (size, mtime ns, bytes)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        stat = path.stat()
        out[str(path.relative_to(directory))] = (stat.st_size, stat.st_mtime_ns, path.read_bytes()
                                                 if path.is_file() else b"")  # fmt: skip
    return out


class _NeverStarted:
    """Stands in for the launcher: a config that passed its checks would start the platform."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pytest.fail("the config passed the launcher's checks: the platform would have started")


def _check(case: Case, code: object, out: str, err: str) -> None:
    lines = err.splitlines()
    assert code == 2, f"exit {code}; stderr: {err[:2000]}"
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].strip(), f"stderr is not one line: {err[:2000]!r}"
    assert out == "", f"stdout: {out[:2000]!r}"
    for text in case.expect:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"


def _by_id() -> Iterator[tuple[str, Case]]:
    seen: set[str] = set()
    for case in CASES:
        assert case.id not in seen, f"two cases are named {case.id!r}"
        seen.add(case.id)
        yield case.id, case


CASE_IDS = dict(_by_id())


def test_the_corpus_has_250_cases_and_20_of_every_kind() -> None:
    counts = {kind: sum(case.kind == kind for case in CASES) for kind in KINDS}
    assert len(CASES) >= MIN_CASES and min(counts.values()) >= MIN_PER_KIND, counts


@pytest.mark.parametrize("case_id", list(CASE_IDS))
def test_a_bad_input_is_one_line_exit_2_and_writes_nothing(
    case_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASE_IDS[case_id]
    _write(tmp_path, case.files)
    before = _snapshot_of(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hotpath.launcher, "Launcher", _NeverStarted)
    try:
        code: object = main(list(case.argv))
    except SystemExit as exc:  # the packages above hotpath exit from their own parsers
        code = exc.code
    captured = capsys.readouterr()
    _check(case, code, captured.out, captured.err)
    assert _snapshot_of(tmp_path) == before, "a file was created, changed or removed"


def _sample() -> list[str]:
    """The first SAMPLE_PER_KIND cases of every kind, and the last of each (often the file-level ones)."""
    chosen = []
    for kind in KINDS:
        ids = [case_id for case_id, case in CASE_IDS.items() if case.kind == kind]
        chosen += ids[:SAMPLE_PER_KIND] + ids[-1:]
    return chosen


@pytest.mark.parametrize("case_id", _sample())
def test_as_a_process_a_bad_input_is_one_line_exit_2_and_writes_nothing(case_id: str, tmp_path: Path) -> None:
    case = CASE_IDS[case_id]
    _write(tmp_path, case.files)
    before = _snapshot_of(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "hotpath.cli", *case.argv], cwd=tmp_path, env=env,
                         capture_output=True, text=True, errors="replace", timeout=60)  # fmt: skip
    _check(case, run.returncode, run.stdout, run.stderr)
    assert _snapshot_of(tmp_path) == before, "a file was created, changed or removed"
