"""The API's one error model and the handlers that put every failure into it.

Every error is a 4xx (or 503 while the engine is gone) JSON body ``{"code": CODE, "message": TEXT, "details":
[...]}`` where ``code`` is one of :class:`ErrorCode`, for programs to branch on, and ``message`` is for people.
Nothing else ever reaches a client: FastAPI's 422 validation errors become ``INVALID_REQUEST`` (or
``BAD_JSON`` for a body that is not JSON), Starlette's 404/405 become ``NOT_FOUND``/``METHOD_NOT_ALLOWED``, and
an unexpected exception (a bug) is logged with its traceback and answered ``INTERNAL`` without one.

::

    HTTPException (Starlette)
     +-- ApiError (status, code, message, details)    raised by the gateway's own code
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["ApiError", "ErrorBody", "ErrorCode", "ErrorDetail", "EXCEPTION_HANDLERS", "error_response"]

log = logging.getLogger("proptrade.gateway")


class ErrorCode(enum.StrEnum):
    """Machine-readable error codes."""

    BAD_JSON = "BAD_JSON"  #: the body is not JSON
    INVALID_REQUEST = "INVALID_REQUEST"  #: a field is missing, of the wrong type or out of range
    BODY_TOO_LARGE = "BODY_TOO_LARGE"
    UNAUTHORIZED = "UNAUTHORIZED"  #: no API key, or an unknown one
    FORBIDDEN = "FORBIDDEN"  #: the key's account is not the one the request names
    NOT_FOUND = "NOT_FOUND"  #: no such route
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    RATE_LIMITED = "RATE_LIMITED"  #: see the Retry-After header
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    SYMBOL_REQUIRED = "SYMBOL_REQUIRED"  #: the platform has several symbols: name one
    UNKNOWN_ORDER = "UNKNOWN_ORDER"  #: not an open order of the gateway's accounts
    OFF_TICK = "OFF_TICK"  #: a price that is not a whole number of ticks (never rounded)
    OFF_LOT = "OFF_LOT"  #: a size that is not a whole number of lots (never rounded)
    OUT_OF_RANGE = "OUT_OF_RANGE"  #: a price or size beyond what the engine's integers hold
    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"  #: among the account's open or in-flight orders
    ENGINE_UNAVAILABLE = "ENGINE_UNAVAILABLE"  #: the engine is gone or did not answer in time
    INTERNAL = "INTERNAL"  #: a bug, logged


class ErrorDetail(BaseModel):
    """One validation failure: where (``loc``), what (``type``) and a sentence (``msg``)."""

    loc: list[str | int]
    type: str
    msg: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    code: ErrorCode
    message: str
    details: list[ErrorDetail] = []


class ApiError(HTTPException):
    """An error the gateway answers with ``status`` and an :class:`ErrorBody`."""

    def __init__(self, status: int, code: ErrorCode, message: str, *, details: Sequence[ErrorDetail] = (),
                 headers: Mapping[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(status, message, dict(headers) if headers else None)
        self.code = code
        self.message = message
        self.details = list(details)


def error_response(status: int, code: ErrorCode, message: str, *, details: Sequence[ErrorDetail] = (),
                   headers: Mapping[str, str] | None = None) -> JSONResponse:  # fmt: skip
    body = ErrorBody(code=code, message=message, details=list(details))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.message, details=exc.details, headers=exc.headers)
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED, 413: ErrorCode.BODY_TOO_LARGE}.get(
        exc.status_code, ErrorCode.INVALID_REQUEST
    )
    status = exc.status_code if 400 <= exc.status_code < 500 else 400
    return error_response(status, code, str(exc.detail), headers=exc.headers)


def _detail(error: Mapping[str, Any]) -> ErrorDetail:
    loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
    return ErrorDetail(loc=loc, type=str(error.get("type", "invalid")), msg=str(error.get("msg", "")))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    details = [_detail(e) for e in errors]
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, ErrorCode.BAD_JSON, "the request body is not valid JSON", details=details)
    first = details[0] if details else None
    where = ".".join(str(p) for p in first.loc) if first else "request"
    message = f"{where}: {first.msg}" if first else "invalid request"
    return error_response(422, ErrorCode.INVALID_REQUEST, message, details=details)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, ErrorCode.INTERNAL, "internal error (logged)")


#: What ``create_app`` installs: every failure becomes an :class:`ErrorBody`.
EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: _api_error,
    RequestValidationError: _validation_error,
    Exception: _unexpected,
}
