"""The names of one engine run, built in one place: every process of the run derives them from its ``prefix``.

An engine run is identified by its prefix (``proptrade up`` makes ``pt_{pid}_{random}``). Its shared-memory
segments live in :data:`SHM_DIR` (each 0600: the platform's user alone opens them); its control socket and
operator key live in the run's own directory, which only that user may enter (0700)::

    /dev/shm/{prefix}_ctl               the control block: live counters and the stop flag (created last)
    /dev/shm/{prefix}_md                the market-data broadcast ring
    /dev/shm/{prefix}_c{id}_cmd         static client ``id``'s command ring (the client writes, the engine reads)
    /dev/shm/{prefix}_c{id}_evt         static client ``id``'s event ring (the engine writes, the client reads)
    /dev/shm/{prefix}_c{id}_{nonce}_*   an attached client's pair: a random name, unlinked once it is mapped
    {run_dir}/control                   the control plane (ZeroMQ REQ/REP): ``ipc://{run_dir}/control``
    {run_dir}/operator.key              the operator key (0600): operator ops must carry it

``run_dir`` is ``{base}/{prefix}``, ``base`` being ``$PROPTRADE_RUN_DIR`` or ``/tmp/proptrade-{euid}`` (as tmux
keeps ``/tmp/tmux-{uid}``): a fixed place every process of the user derives from the prefix alone.
:func:`private_dir` makes or checks each directory: a directory of another user, a symlink, or one that others
may enter is refused, so nobody can plant the socket's directory in ``/tmp`` ahead of the engine.

The engine process creates them, the launcher and ``proptrade stats`` find them, clients attach to them.
Pure Python, no dependency: a process that only reads names loads nothing else.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

__all__ = [
    "OPERATOR_KEY_FILE",
    "RUN_DIR_ENV",
    "SHM_DIR",
    "client_ids",
    "command_ring_name",
    "control_endpoint",
    "control_name",
    "event_ring_name",
    "market_data_name",
    "operator_key_path",
    "private_dir",
    "run_dir",
    "run_segments",
    "running_prefixes",
]

#: Where Linux keeps POSIX shared-memory segments (shm_open names map to files here).
SHM_DIR = Path("/dev/shm")

_CONTROL_SUFFIX = "_ctl"
#: The environment variable that moves every run directory of this user (default ``/tmp/proptrade-{euid}``).
RUN_DIR_ENV = "PROPTRADE_RUN_DIR"
#: The control socket's file name in the run directory.
CONTROL_SOCKET_FILE = "control"
#: The operator key's file name in the run directory (0600; hotpath/control.py says what it allows).
OPERATOR_KEY_FILE = "operator.key"
#: The longest path of a unix socket (``sun_path`` holds 108 bytes, the last a NUL).
_SUN_PATH_MAX = 107


def control_name(prefix: str) -> str:
    """The control block's segment name."""
    return f"{prefix}{_CONTROL_SUFFIX}"


def market_data_name(prefix: str) -> str:
    """The market-data broadcast ring's segment name."""
    return f"{prefix}_md"


def command_ring_name(prefix: str, client_id: int, nonce: str = "") -> str:
    """Client ``client_id``'s command ring's segment name; an attached client's carries the random ``nonce``."""
    return f"{prefix}_c{client_id}_{nonce}_cmd" if nonce else f"{prefix}_c{client_id}_cmd"


def event_ring_name(prefix: str, client_id: int, nonce: str = "") -> str:
    """Client ``client_id``'s event ring's segment name; an attached client's carries the random ``nonce``."""
    return f"{prefix}_c{client_id}_{nonce}_evt" if nonce else f"{prefix}_c{client_id}_evt"


def run_dir(prefix: str) -> Path:
    """The run's private directory (see the module docstring); nothing is created here."""
    base = os.environ.get(RUN_DIR_ENV) or f"/tmp/proptrade-{os.geteuid()}"
    return Path(base) / prefix


def control_endpoint(prefix: str) -> str:
    """The default control endpoint of the run: a socket file in its private run directory, so the kernel lets
    no other user connect (an abstract ``ipc://@`` socket has no permissions at all). ValueError if the path
    is too long for a unix socket."""
    path = run_dir(prefix) / CONTROL_SOCKET_FILE
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise ValueError(f"the control socket {path} is longer than a unix socket path may be ({_SUN_PATH_MAX} "
                         f"bytes): use a shorter prefix or {RUN_DIR_ENV}")  # fmt: skip
    return f"ipc://{path}"


def operator_key_path(prefix: str) -> Path:
    """Where the run's operator key is (readable by the platform's user alone)."""
    return run_dir(prefix) / OPERATOR_KEY_FILE


def private_dir(path: Path) -> Path:
    """Makes ``path`` (and a missing parent) a directory only this user may enter (0700), or checks that the
    existing one is: a real directory (not a symlink), owned by this effective user, with no group or other
    permission. PermissionError, naming the path, if not. Returns ``path``."""
    if not path.parent.exists():
        private_dir(path.parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionError(f"{path} is not a directory (a symlink or a file): refusing to use it")
    if st.st_uid != os.geteuid():
        raise PermissionError(f"{path} belongs to uid {st.st_uid}, not to this user ({os.geteuid()})")
    if st.st_mode & 0o077:
        raise PermissionError(f"{path} is open to other users (mode {stat.S_IMODE(st.st_mode):o}): make it 700")
    return path


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
    own = re.compile(re.escape(prefix) + r"_(ctl|md|c[0-9]+(_[0-9a-f]{32})?_(cmd|evt))")
    return sorted(p.name for p in SHM_DIR.glob(f"{prefix}_*") if own.fullmatch(p.name))
