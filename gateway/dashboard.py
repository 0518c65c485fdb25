"""The live web dashboard: ``GET /`` is one page, ``/static/*`` its files, all inside this package.

No build step and nothing from elsewhere: ``static/index.html``, ``dashboard.css`` and ``dashboard.js`` (plain
JavaScript, the chart drawn on a canvas by hand) are served as they are. The page lives off ``/ws/md`` (the
book ladder, the trade tape, the mid-price chart) and, once an API key is entered, ``/ws/fills/{account}``
plus the REST reads (open orders, fills, position and PnL), with an order ticket and cancel buttons over the
REST commands. So it needs no route of its own beyond these files and ``GET /whoami`` (``rest.py``), which
names the key's account.

The page and its files are public (the key is entered in the page and sent by its script); every response
carries a Content-Security-Policy that lets the page load and connect to this origin only.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "STATIC_PREFIX", "routes"]

#: the page's files, shipped in the package
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: where they are served
STATIC_PREFIX = "/static"
#: this origin only: scripts, styles, images and connections (WebSocket included); nothing inline, no frames
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache"}  # fmt: skip
_RAW_HEADERS = [(k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]


async def index(request: Request) -> Response:
    """The dashboard page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


class _Static(StaticFiles):
    """Starlette's static files with the page's headers on every answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), *_RAW_HEADERS]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, with_headers)


def routes() -> list[BaseRoute]:
    """``GET /`` and ``/static/*`` (left out of the OpenAPI schema: they are not the API)."""
    return [
        Route("/", index, methods=["GET"], include_in_schema=False),
        Mount(STATIC_PREFIX, app=_Static(directory=STATIC_DIR), name="static"),
    ]
