"""Binance's request signing: who calls (``X-MBX-APIKEY``), whether they signed what arrived, and whether it is
fresh.

Choices:

- **Keys and secrets are the gateway's accounts'.** An account's ``api_key`` is its ``X-MBX-APIKEY``; its HMAC
  secret is the one ``hotpath.accounts`` reads from ``secret_env`` or ``secret_file`` (never the config itself),
  read once at start. An account without one can call the public routes and nothing signed (-2015).
- **The signature covers the bytes as received.** Binance signs ``totalParams`` = the query string followed
  directly by the body, less the ``signature`` parameter. Verifying over the raw bytes, never a re-serialised
  parameter map, serves every client: ccxt signs its parameters in the order it sends them, python-binance
  sorts them first and sends a DELETE's in a form body.
- **Fresh:** ``timestamp`` (ms) must be less than 1 s ahead of the server and at most ``recvWindow`` (default
  5000, at most 60000) behind it (-1021); a missing one is -1102.
- Keys are compared in constant time, every key each time (no timing oracle), as ``gateway.access`` does.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .errors import BinanceError, Code, illegal_chars, mandatory

__all__ = ["API_KEY_HEADER", "Credential", "Keyring", "RECV_WINDOW_MS", "parse_params", "sign", "verify"]

#: the header that carries the API key
API_KEY_HEADER = "X-MBX-APIKEY"
#: recvWindow when a request gives none, and the largest it may give (Binance's values)
RECV_WINDOW_MS, MAX_RECV_WINDOW_MS = 5000, 60000
#: how far ahead of the server a timestamp may be
AHEAD_MS = 1000


@dataclass(frozen=True)
class Credential:
    """One account's Binance credentials: its name, engine client id and HMAC secret (None: none configured)."""

    account: str
    client_id: int
    secret: bytes | None


class Keyring:
    """API key -> :class:`Credential`."""

    def __init__(self, entries: Mapping[str, Credential]) -> None:
        self._entries = [(key.encode(), cred) for key, cred in entries.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: str | None) -> Credential:
        """The key's credential; -2014 without a key, -2015 for one no account has (both 401)."""
        if not key:
            raise BinanceError(401, Code.BAD_API_KEY_FMT, "API-key format invalid.")
        given = key.encode()
        found = None
        for known, cred in self._entries:
            if hmac.compare_digest(given, known):
                found = cred
        if found is None:
            raise BinanceError(401, Code.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.")
        return found


def sign(secret: bytes, payload: bytes) -> str:
    """Binance's HMAC-SHA256 signature of ``payload``, in lower-case hex."""
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def _split_signature(raw: bytes) -> tuple[bytes, bytes | None]:
    """``raw`` less its ``signature=`` parameter, and that parameter's value (None if it has none)."""
    if not raw:
        return raw, None
    parts = raw.split(b"&")
    kept, signature = [], None
    for part in parts:
        if part.startswith(b"signature=") and signature is None:
            signature = part[len(b"signature=") :]
        else:
            kept.append(part)
    return b"&".join(kept), signature


def parse_params(chunks: Iterable[bytes]) -> dict[str, str]:
    """The parameters of a query string and a form body together (in that order). As Binance: a name given in
    both takes the query string's value; a name given twice in one of them is -1101."""
    out: dict[str, str] = {}
    for raw in chunks:
        if not raw:
            continue
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise BinanceError(400, Code.ILLEGAL_CHARS, "Illegal characters found in a parameter.") from None
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise BinanceError(400, Code.TOO_MANY_PARAMETERS, "Duplicate values for a parameter detected.")
        for name, value in pairs:
            out.setdefault(name, value)
    return out


def verify(cred: Credential, query: bytes, body: bytes, now_ms: int) -> dict[str, str]:
    """The parameters of a signed request once its signature and timestamp check out (see the module
    docstring); ``signature`` is not among them."""
    if cred.secret is None:
        raise BinanceError(401, Code.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.")
    query_rest, in_query = _split_signature(query)
    body_rest, in_body = _split_signature(body)
    given = in_query if in_query is not None else in_body
    if not given:
        raise mandatory("signature")
    params = parse_params((query_rest, body_rest))
    expected = sign(cred.secret, query_rest + body_rest).encode()
    if not hmac.compare_digest(given.lower(), expected):
        raise BinanceError(400, Code.INVALID_SIGNATURE, "Signature for this request is not valid.")
    check_fresh(params, now_ms)
    return params


def check_fresh(params: Mapping[str, str], now_ms: int) -> None:
    """-1021 unless ``timestamp`` is inside ``recvWindow`` of ``now_ms`` (see the module docstring)."""
    text = params.get("timestamp")
    if not text:
        raise mandatory("timestamp")
    if not text.isdigit():
        raise illegal_chars("timestamp", "^[0-9]{1,20}$")
    window = params.get("recvWindow", str(RECV_WINDOW_MS))
    if not window.isdigit():
        raise illegal_chars("recvWindow", "^[0-9]{1,20}$")
    if int(window) > MAX_RECV_WINDOW_MS:
        raise BinanceError(400, Code.BAD_RECV_WINDOW, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}")
    stamp = int(text)
    if stamp >= now_ms + AHEAD_MS:
        raise BinanceError(400, Code.INVALID_TIMESTAMP,
                           f"Timestamp for this request was {AHEAD_MS}ms ahead of the server's time.")  # fmt: skip
    if now_ms - stamp > int(window):
        raise BinanceError(400, Code.INVALID_TIMESTAMP, "Timestamp for this request is outside of the recvWindow.")
