"""The gateway process: uvicorn with uvloop and httptools serving :func:`gateway.app.create_app`.

``python -m gateway.server --prefix P --from-launcher`` is how ``proptrade up`` starts it: the config comes as
JSON on stdin (``GatewayConfig.from_launcher``). ``proptrade gateway --config F`` (``gateway/cli.py``) runs the
same :func:`serve` from a platform TOML.

The listening socket is bound here, before uvicorn starts, so a ``port = 0`` config gets a free port that the
``ready http://HOST:PORT`` line (stdout, flushed, printed once the lifespan has connected the engine and the
socket accepts) can name. After that line stdout is pointed at stderr: the launcher reads one line from a pipe
and nothing else may fill it. If the engine cannot be reached the lifespan fails, uvicorn never serves, and
the process exits 3 without a ready line.

Shutdown (SIGINT or SIGTERM; uvicorn only sets a flag in the handler, a second signal forces): the socket stops
accepting, WebSockets are closed with 1012, connections and tasks get ``shutdown_timeout_s`` to finish
(uvicorn's default is to wait forever; ours is bounded), then the lifespan's teardown waits for in-flight
commands, closes the streams and detaches the link (the engine cancels the accounts' resting orders).
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
from collections.abc import Callable

import uvicorn

from .app import create_app
from .config import GatewayConfig

__all__ = ["bind", "main", "serve"]

#: uvicorn's exit status when the lifespan's startup failed
EXIT_STARTUP_FAILED = 3


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling ``on_ready`` once it serves."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self.on_ready()


def serve(config: GatewayConfig, *, loop: str = "uvloop", http: str = "httptools",
          on_ready: Callable[[str], None] | None = None, log_level: str = "warning") -> int:  # fmt: skip
    """Serves the gateway until SIGINT/SIGTERM; returns the exit status. ``on_ready(url)`` once it serves."""
    sock = bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}"
    settings = uvicorn.Config(create_app(config), loop=loop, http=http, lifespan="on",
                              access_log=False, log_level=log_level,
                              timeout_graceful_shutdown=math.ceil(config.shutdown_timeout_s))  # fmt: skip
    server = _Server(settings, lambda: on_ready(url) if on_ready else None)
    try:
        server.run(sockets=[sock])
    except SystemExit as e:  # uvicorn exits 3 when the lifespan's startup failed
        return int(e.code) if isinstance(e.code, int) else EXIT_STARTUP_FAILED
    finally:
        sock.close()
    return 0 if server.started else EXIT_STARTUP_FAILED


def ready_line(url: str) -> None:
    """Prints ``ready URL`` and then points stdout at stderr (see the module docstring)."""
    print(f"ready {url}", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.server", description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="the engine run's prefix (also in the stdin config)")
    parser.add_argument("--from-launcher", action="store_true", required=True,
                        help="read the config as JSON from stdin, as proptrade up writes it")  # fmt: skip
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the event loop (asyncio: for comparison in bench/gateway_bench.py)")  # fmt: skip
    args = parser.parse_args(argv)
    config = GatewayConfig.from_launcher(sys.stdin.read())
    if config.prefix != args.prefix:
        parser.error(f"--prefix {args.prefix} but the config says {config.prefix}")
    return serve(config, loop=args.loop, on_ready=ready_line)


if __name__ == "__main__":
    sys.exit(main())
