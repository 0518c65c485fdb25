"""The client side of the control plane: a REQ socket to an engine's ``ControlServer`` and its error.

Protocol: one JSON object per request and per reply. Every reply has ``"ok"``; a failed request gets
``"ok": false, "code": ..., "error": ...`` and changes nothing. docs/HOTPATH.md lists the ops. This module
imports nothing of the server (``control.py``), so a trading process that only talks to the engine loads
only ZeroMQ.

Credentials (docs/OPERATIONS.md, "Who may call what"): an attached client's requests carry the ``token`` its
attach handed out (``Client.request`` adds it); an operator's carry the run's operator key, which
:func:`load_operator_key` reads from the run directory (only the platform's user can) and a client given
``operator_key`` adds to each request. A ``RATE_LIMITED`` refusal says when to come back (``retry_after_s``):
by default a client waits that long and sends again, within its timeout, so a caller that asks too often is
slowed down rather than failed; ``wait_rate_limited=False`` raises it at once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import zmq

from .names import OPERATOR_KEY_FILE, operator_key_path

__all__ = ["AsyncControlClient", "ControlClient", "ControlError", "load_operator_key"]


class ControlError(Exception):
    """A control request that failed: ``code`` is the reply's code (``BAD_REQUEST``, ``ALREADY_ATTACHED``,
    ``FORBIDDEN``...); ``retry_after_s`` is set for ``RATE_LIMITED``: when the caller may ask again."""

    def __init__(self, code: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


def _result(reply: dict[str, Any]) -> dict[str, Any]:
    """A reply as a result: the reply itself, or its ControlError."""
    if not reply.get("ok"):
        retry = reply.get("retry_after_s")
        raise ControlError(str(reply.get("code")), str(reply.get("error")),
                           float(retry) if isinstance(retry, (int, float)) else None)  # fmt: skip
    return reply


def load_operator_key(*, prefix: str | None = None, endpoint: str | None = None) -> str | None:
    """The operator key of the engine run ``prefix``, or of the one whose control socket is the file ``endpoint``
    (the key lies beside it); None if there is none or this process may not read it (another user)."""
    if prefix is not None:
        path = operator_key_path(prefix)
    elif endpoint is not None and endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):
        path = Path(endpoint[len("ipc://") :]).parent / OPERATOR_KEY_FILE
    else:
        return None
    try:
        return path.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


class _ReqSocket:
    """The REQ socket both clients share the handling of: made on first use, dropped (linger 0) after a request
    that got no reply, since a REQ socket cannot send again before it receives: the "lazy pirate" pattern of the
    ZeroMQ guide."""

    def __init__(self, endpoint: str, timeout_s: float, ctx: Any, operator_key: str | None,
                 wait_rate_limited: bool) -> None:  # fmt: skip
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.operator_key = operator_key
        self.wait_rate_limited = wait_rate_limited
        self._ctx = ctx
        self._sock: Any = None

    def _message(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        message = {"op": op, **fields}
        if self.operator_key is not None:
            message.setdefault("operator_key", self.operator_key)
        return message

    def _retry_in(self, error: ControlError, deadline: float) -> float | None:
        """How long to wait before sending a rate-limited request again; None: raise it."""
        if not self.wait_rate_limited or error.code != "RATE_LIMITED" or error.retry_after_s is None:
            return None
        wait = max(error.retry_after_s, 0.001)
        return wait if time.monotonic() + wait < deadline else None

    def _socket(self) -> Any:
        if self._sock is None:
            self._sock = self._ctx.socket(zmq.REQ)
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.connect(self.endpoint)
        return self._sock

    def _no_reply(self, op: str) -> TimeoutError:
        self.close()
        return TimeoutError(f"no reply to {op!r} from {self.endpoint} within {self.timeout_s} s")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None


class ControlClient(_ReqSocket):
    """A REQ socket to an engine's control plane, with a timeout (a request with no reply in time replaces the
    socket, so the next request works). ``operator_key`` goes into every request that does not name its own."""

    def __init__(self, endpoint: str, timeout_s: float = 5.0, *, operator_key: str | None = None,
                 wait_rate_limited: bool = True) -> None:  # fmt: skip
        super().__init__(endpoint, timeout_s, zmq.Context.instance(), operator_key, wait_rate_limited)

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Sends one request; the reply, or ControlError (its code), or TimeoutError if none came. RATE_LIMITED
        is waited out and sent again while the timeout allows (unless ``wait_rate_limited`` is False)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            sock = self._socket()
            sock.send_json(self._message(op, fields))
            if not sock.poll(int(self.timeout_s * 1000)):
                raise self._no_reply(op)
            try:
                return _result(sock.recv_json())
            except ControlError as e:
                wait = self._retry_in(e, deadline)
                if wait is None:
                    raise
                time.sleep(wait)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncControlClient(_ReqSocket):
    """The asyncio form of :class:`ControlClient` (``zmq.asyncio``): a request awaits its reply without blocking
    the event loop; a request with no reply within ``timeout_s`` replaces the socket, as there."""

    def __init__(self, endpoint: str, timeout_s: float = 5.0, *, operator_key: str | None = None,
                 wait_rate_limited: bool = True) -> None:  # fmt: skip
        import zmq.asyncio  # only an asyncio process pays for it

        super().__init__(endpoint, timeout_s, zmq.asyncio.Context.instance(), operator_key, wait_rate_limited)

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Sends one request; the reply, or ControlError (its code), or TimeoutError if none came; RATE_LIMITED
        as :meth:`ControlClient.request` handles it, awaiting without blocking the event loop."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            sock = self._socket()
            await sock.send_json(self._message(op, fields))
            if not await sock.poll(int(self.timeout_s * 1000)):
                raise self._no_reply(op)
            try:
                return _result(await sock.recv_json())
            except ControlError as e:
                wait = self._retry_in(e, deadline)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
