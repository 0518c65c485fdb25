"""Binance's error model: a JSON body ``{"code": -NNNN, "msg": TEXT}`` with Binance's codes and, where a stock
client matches on it, Binance's exact text.

ccxt matches the message before the code (only "Order would immediately match and take." becomes
``OrderImmediatelyFillable``), so each text below is Binance's own, word for word, and ``msg`` parameters are
filled the way Binance fills them (``Mandatory parameter 'symbol' was not sent, was empty/null, or
malformed.``). HTTP statuses follow Binance: 400 for a bad request, 401 for a key refused, 404 for a path
that is not served, 429 over the request weight (with ``Retry-After``), 503 while the engine is gone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import orjson
from starlette.responses import Response

__all__ = ["BinanceError", "Code", "error_response", "mandatory", "illegal_chars"]


class Code(enum.IntEnum):
    """The Binance error codes the gateway answers."""

    UNKNOWN = -1000  #: an internal error (logged)
    DISCONNECTED = -1001  #: the engine is gone or did not answer in time
    UNAUTHORIZED = -1002
    TOO_MANY_REQUESTS = -1003  #: over the request weight of the minute
    UNEXPECTED_RESP = -1006
    FILTER_FAILURE = -1013  #: PRICE_FILTER, LOT_SIZE, NOTIONAL
    UNKNOWN_ORDER_COMPOSITION = -1014
    TOO_MANY_ORDERS = -1015  #: the engine's own order rate limit
    INVALID_TIMESTAMP = -1021
    INVALID_SIGNATURE = -1022
    ILLEGAL_CHARS = -1100
    TOO_MANY_PARAMETERS = -1101
    MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
    UNKNOWN_PARAM = -1103
    PARAM_EMPTY = -1105
    PARAM_NOT_REQUIRED = -1106
    BAD_PRECISION = -1111
    INVALID_TIF = -1115
    INVALID_ORDER_TYPE = -1116
    INVALID_SIDE = -1117
    INVALID_SYMBOL = -1121
    INVALID_LISTEN_KEY = -1125
    MORE_THAN_XX_HOURS = -1127
    OPTIONAL_PARAMS_BAD_COMBO = -1128
    INVALID_PARAMETER = -1130
    BAD_RECV_WINDOW = -1131
    NEW_ORDER_REJECTED = -2010
    CANCEL_REJECTED = -2011
    NO_SUCH_ORDER = -2013
    BAD_API_KEY_FMT = -2014
    REJECTED_MBX_KEY = -2015
    SUBSCRIPTION_ACTIVE = -2035  #: a second user-data subscription of one account on one WebSocket API session


class BinanceError(Exception):
    """An error the Binance API answers with ``status`` and ``{"code", "msg"}``."""

    def __init__(self, status: int, code: Code, msg: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{int(code)} {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return error_response(self.status, self.code, self.msg, self.headers)


def error_response(status: int, code: Code, msg: str, headers: Mapping[str, str] | None = None) -> Response:
    body = orjson.dumps({"code": int(code), "msg": msg})
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


def mandatory(name: str) -> BinanceError:
    """-1102 for a parameter that is missing, empty or malformed (Binance's text)."""
    return BinanceError(400, Code.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")  # fmt: skip


def illegal_chars(name: str, legal: str) -> BinanceError:
    """-1100 for a parameter with characters outside its legal pattern (Binance's text)."""
    return BinanceError(400, Code.ILLEGAL_CHARS,
                        f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")  # fmt: skip
