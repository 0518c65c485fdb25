"""The names of one engine run, built in one place: every process of the run derives them from its ``prefix``.

An engine run is identified by its prefix (``proptrade up`` makes ``pt_{pid}_{random}``). Its shared-memory
segments live in :data:`SHM_DIR`; its control plane listens on an ipc socket in Linux's abstract namespace::

    /dev/shm/{prefix}_ctl            the control block: live counters and the stop flag (created last)
    /dev/shm/{prefix}_md             the market-data broadcast ring
    /dev/shm/{prefix}_c{id}_cmd      client ``id``'s command ring (the client writes, the engine reads)
    /dev/shm/{prefix}_c{id}_evt      client ``id``'s event ring (the engine writes, the client reads)
    ipc://@proptrade-{prefix}.ctl    the control plane (ZeroMQ REQ/REP)

The engine process creates them, the launcher and ``proptrade stats`` find them, clients attach to them.
Pure Python, no dependency: a process that only reads names loads nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "SHM_DIR",
    "client_ids",
    "command_ring_name",
    "control_endpoint",
    "control_name",
    "event_ring_name",
    "market_data_name",
    "run_segments",
    "running_prefixes",
]

#: Where Linux keeps POSIX shared-memory segments (shm_open names map to files here).
SHM_DIR = Path("/dev/shm")

_CONTROL_SUFFIX = "_ctl"


def control_name(prefix: str) -> str:
    """The control block's segment name."""
    return f"{prefix}{_CONTROL_SUFFIX}"


def market_data_name(prefix: str) -> str:
    """The market-data broadcast ring's segment name."""
    return f"{prefix}_md"


def command_ring_name(prefix: str, client_id: int) -> str:
    """Client ``client_id``'s command ring's segment name."""
    return f"{prefix}_c{client_id}_cmd"


def event_ring_name(prefix: str, client_id: int) -> str:
    """Client ``client_id``'s event ring's segment name."""
    return f"{prefix}_c{client_id}_evt"


def control_endpoint(prefix: str) -> str:
    """The default control endpoint of the run: an ipc socket in Linux's abstract namespace (the ``@``), which
    has no file to leave behind when the engine is killed."""
    return f"ipc://@proptrade-{prefix}.ctl"


def running_prefixes() -> list[str]:
    """Prefixes of the engine runs whose control block exists now."""
    return sorted(p.name[: -len(_CONTROL_SUFFIX)] for p in SHM_DIR.glob(f"*{_CONTROL_SUFFIX}"))


def client_ids(prefix: str) -> list[int]:
    """Ids of the clients of run ``prefix`` that have a command ring now, ascending."""
    ids = []
    head = f"{prefix}_c"
    for path in SHM_DIR.glob(f"{head}*_cmd"):
        digits = path.name[len(head) : -len("_cmd")]
        if digits.isdigit():
            ids.append(int(digits))
    return sorted(ids)


def run_segments(prefix: str) -> list[str]:
    """Every shared-memory segment of run ``prefix`` that exists now (what a clean stop must leave none of): the
    names above exactly, not those of a run whose prefix only starts with ``{prefix}_``."""
    own = re.compile(re.escape(prefix) + r"_(ctl|md|c[0-9]+_(cmd|evt))")
    return sorted(p.name for p in SHM_DIR.glob(f"{prefix}_*") if own.fullmatch(p.name))
