"""Test support: a gateway app served by uvicorn in a thread of the calling process, on 127.0.0.1.

For tests that need a real HTTP server (a browser, a schema fuzzer) over an in-process venue, without the
launcher's processes. The server runs as ``gateway.server`` runs it (uvloop, httptools, the app's lifespan) on a
free port; :meth:`AppInThread.stop` asks it to exit and waits for the thread.
"""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from .server import bind

__all__ = ["AppInThread"]


class AppInThread:
    """``app`` served on ``url`` until :meth:`stop`; ``RuntimeError`` if it does not start in ``timeout_s``."""

    def __init__(self, app: FastAPI, *, log_level: str = "warning", timeout_s: float = 30.0) -> None:
        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = uvicorn.Config(app, loop="uvloop", http="httptools", lifespan="on", access_log=False,
                                  log_level=log_level)  # fmt: skip
        self.server = uvicorn.Server(settings)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.stop()
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
