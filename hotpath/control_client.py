"""The client side of the control plane: a REQ socket to an engine's ``ControlServer`` and its error.

Protocol: one JSON object per request and per reply. Every reply has ``"ok"``; a failed request gets
``"ok": false, "code": ..., "error": ...`` and changes nothing. docs/HOTPATH.md lists the ops. This module
imports nothing of the server (``control.py``), so a trading process that only talks to the engine loads
only ZeroMQ.
"""

from __future__ import annotations

from typing import Any

import zmq

__all__ = ["AsyncControlClient", "ControlClient", "ControlError"]


class ControlError(Exception):
    """A control request that failed: ``code`` is the reply's code (``BAD_REQUEST``, ``ALREADY_ATTACHED``...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _result(reply: dict[str, Any]) -> dict[str, Any]:
    """A reply as a result: the reply itself, or its ControlError."""
    if not reply.get("ok"):
        raise ControlError(str(reply.get("code")), str(reply.get("error")))
    return reply


class _ReqSocket:
    """The REQ socket both clients share the handling of: made on first use, dropped (linger 0) after a request
    that got no reply, since a REQ socket cannot send again before it receives: the "lazy pirate" pattern of the
    ZeroMQ guide."""

    def __init__(self, endpoint: str, timeout_s: float, ctx: Any) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._ctx = ctx
        self._sock: Any = None

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
    socket, so the next request works)."""

    def __init__(self, endpoint: str, timeout_s: float = 5.0) -> None:
        super().__init__(endpoint, timeout_s, zmq.Context.instance())

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Sends one request; the reply, or ControlError (its code), or TimeoutError if none came."""
        sock = self._socket()
        sock.send_json({"op": op, **fields})
        if not sock.poll(int(self.timeout_s * 1000)):
            raise self._no_reply(op)
        return _result(sock.recv_json())

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncControlClient(_ReqSocket):
    """The asyncio form of :class:`ControlClient` (``zmq.asyncio``): a request awaits its reply without blocking
    the event loop; a request with no reply within ``timeout_s`` replaces the socket, as there."""

    def __init__(self, endpoint: str, timeout_s: float = 5.0) -> None:
        import zmq.asyncio  # only an asyncio process pays for it

        super().__init__(endpoint, timeout_s, zmq.asyncio.Context.instance())

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Sends one request; the reply, or ControlError (its code), or TimeoutError if none came."""
        sock = self._socket()
        await sock.send_json({"op": op, **fields})
        if not await sock.poll(int(self.timeout_s * 1000)):
            raise self._no_reply(op)
        return _result(await sock.recv_json())
