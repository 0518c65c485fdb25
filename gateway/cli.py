"""``proptrade gateway``: the gateway alone, against an engine run that is already up.

::

    proptrade gateway --config PLATFORM.toml [--prefix P] [--host H] [--port N] [--no-auth]

The config is the platform's TOML (its ``[gateway]`` table and ``[[accounts]]``; ``proptrade up
--print-config`` shows the format). Without ``--prefix`` it attaches to the one engine run on this machine.
``--no-auth`` is for local play: no API key is asked, and any of the gateway's accounts may be used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hotpath.launcher import load_config
from hotpath.names import running_prefixes

from .config import GatewayConfig
from .server import serve

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Runs ``proptrade gateway ARGV``; returns the exit status (2: a bad config or no engine to attach to)."""
    parser = argparse.ArgumentParser(prog="proptrade gateway", description="run the REST/WebSocket gateway alone")
    parser.add_argument("--config", required=True, metavar="FILE.toml", help="the platform config")
    parser.add_argument("--prefix", help="the engine run's prefix (default: the one running here)")
    parser.add_argument("--host", help="bind address (default: the config's, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: the config's, else 8000; 0 = any free one)")
    parser.add_argument("--no-auth", action="store_true", help="no API keys: for local play only")
    args = parser.parse_args(argv)
    prefix = args.prefix
    if prefix is None:
        running = running_prefixes()
        if len(running) != 1:
            print(f"proptrade gateway: give --prefix: {len(running)} engine runs here {running}", file=sys.stderr)
            return 2
        prefix = running[0]
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.no_auth:
        overrides["auth"] = False
    try:
        config = GatewayConfig.from_platform(load_config(Path(args.config).read_text(), prefix=prefix), **overrides)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print(f"proptrade gateway: {args.config}: {e}", file=sys.stderr)
        return 2
    return serve(config, on_ready=lambda url: print(f"gateway: {url} (API docs at {url}/docs)", flush=True))
