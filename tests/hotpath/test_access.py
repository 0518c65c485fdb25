"""Access control of a running engine: a second process of the platform's user, and a process of another user,
can neither read a client's position, detach it, attach as its id, run an operator op, nor write into its rings;
the client itself, a link for its granted accounts and the operator (the run's key) can do what is theirs.

"Another user" is ``nobody``: the test forks (the interpreter lives under /root, which nobody may not exec
from), the child drops to uid 65534 with os.setuid and reports what it could do on a pipe. It needs root, and
is skipped with a message otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from c_engine import EventType
from hotpath.client import Client
from hotpath.control_client import ControlClient, ControlError, load_operator_key
from hotpath.names import operator_key_path, private_dir, run_dir

from conftest import SHM, WAIT_S, EngineRun

NOBODY = 65534


def _code(run: EngineRun, fields: dict[str, Any], **kwargs: Any) -> str:
    """The reply's code ("ok" for a success) of one request from this process."""
    with ControlClient(run.config.endpoint, timeout_s=WAIT_S, **kwargs) as ctl:
        try:
            ctl.request(**fields)
        except ControlError as e:
            return e.code
    return "ok"


def _second_process(run: EngineRun, victim: int, token_of_another: str = "") -> dict[str, Any]:
    """What a second process of this user gets when it tries to act for ``victim`` (a JSON dict of codes)."""
    code = textwrap.dedent(f"""
        import json, os
        from hotpath.control_client import ControlClient, ControlError
        ctl = ControlClient({run.config.endpoint!r}, timeout_s=5.0)
        def code(op, **fields):
            try:
                ctl.request(op, **fields)
                return "ok"
            except ControlError as e:
                return e.code
        shm = sorted(n for n in os.listdir("/dev/shm") if n.startswith("{run.prefix}_c{victim}_"))
        print(json.dumps({{
            "position": code("position", client={victim}, symbol="TEST"),
            "position_with_another_token": code("position", client={victim}, symbol="TEST",
                                                token={token_of_another!r}),
            "detach": code("detach", client={victim}),
            "detach_with_a_made_up_token": code("detach", client={victim}, token="ab" * 16),
            "attach": code("attach", client={victim}, pid=os.getpid()),
            "kill": code("kill", client={victim}),
            "halt": code("halt", symbol="TEST"),
            "halt_with_a_made_up_key": code("halt", symbol="TEST", operator_key="00" * 32),
            "rings_by_name": shm,
        }}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.mark.engine_config(clients=())
def test_a_second_process_can_neither_read_detach_take_over_nor_write_into_an_attached_client(
    engine_run: EngineRun,
) -> None:
    with (
        Client(7, endpoint=engine_run.config.endpoint) as victim,
        Client(8, endpoint=engine_run.config.endpoint) as other,
    ):
        victim.submit("TEST", "buy", 1, 90)
        assert victim.wait_events(1)[0].type == EventType.ACK
        assert other.token is not None
        got = _second_process(engine_run, 7, token_of_another=other.token)
        assert got == {
            "position": "FORBIDDEN",
            "position_with_another_token": "FORBIDDEN",  # client 8's token acts for 8 only
            "detach": "FORBIDDEN",
            "detach_with_a_made_up_token": "NOT_ATTACHED",
            "attach": "ALREADY_ATTACHED",
            "kill": "FORBIDDEN",
            "halt": "FORBIDDEN",
            "halt_with_a_made_up_key": "FORBIDDEN",
            "rings_by_name": [],  # unlinked once the client mapped them: nothing to open
        }
        assert victim.request("position", client=7, symbol="TEST")["open_orders"] == 1  # still there, untouched
        victim.submit("TEST", "buy", 1, 89)
        assert victim.wait_events(1)[0].type == EventType.ACK


@pytest.mark.engine_config(clients=())
def test_a_client_reads_its_own_position_and_the_operator_reads_anyones(engine_run: EngineRun) -> None:
    with Client(7, endpoint=engine_run.config.endpoint) as client:
        assert client.request("position", client=7, symbol="TEST")["client"] == 7
        with pytest.raises(ControlError) as err:
            client.request("position", client=8, symbol="TEST")
        assert err.value.code == "FORBIDDEN"
        key = load_operator_key(prefix=engine_run.prefix)
        assert _code(engine_run, {"op": "position", "client": 8, "symbol": "TEST"}, operator_key=key) == "ok"
        assert _code(engine_run, {"op": "detach", "client": 7}, operator_key=key) == "ok"  # an operator cuts it


@pytest.mark.engine_config(clients=(), accounts=(("a", 20), ("b", 21)))
def test_a_link_acts_for_its_granted_accounts_and_no_other(engine_run: EngineRun) -> None:
    with Client(1, endpoint=engine_run.config.endpoint, accounts=["a"]) as link:
        assert link.request("position", client="a", symbol="TEST")["client"] == 20
        with pytest.raises(ControlError) as err:
            link.request("position", client="b", symbol="TEST")
        assert err.value.code == "FORBIDDEN"


@pytest.mark.engine_config(clients=())
def test_an_attach_that_names_another_process_is_forbidden(engine_run: EngineRun) -> None:
    assert _code(engine_run, {"op": "attach", "client": 7, "pid": os.getppid()}) == "FORBIDDEN"
    assert _code(engine_run, {"op": "stats"}) == "ok"


@pytest.mark.engine_config(journal=True)
def test_the_run_directory_key_journal_and_rings_are_the_platform_users_alone(engine_run: EngineRun) -> None:
    directory = run_dir(engine_run.prefix)
    assert engine_run.config.endpoint == f"ipc://{directory}/control"
    modes = {
        "run directory": stat.S_IMODE(directory.stat().st_mode),
        "operator key": stat.S_IMODE(operator_key_path(engine_run.prefix).stat().st_mode),
        "journal": stat.S_IMODE(Path(engine_run.config.journal_path or "").stat().st_mode),
        **{name: stat.S_IMODE((SHM / name).stat().st_mode) for name in engine_run.segments()},
    }
    assert modes == {name: 0o700 if name == "run directory" else 0o600 for name in modes}
    assert engine_run.terminate() == 0
    assert not directory.exists()  # a clean stop leaves no socket, no key, no directory


def test_a_run_directory_open_to_others_or_a_symlink_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    with pytest.raises(PermissionError, match="open to other users"):
        private_dir(open_dir)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    with pytest.raises(PermissionError, match="not a directory"):
        private_dir(link)
    assert private_dir(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert stat.S_IMODE((tmp_path / "new" / "run").stat().st_mode) == 0o700


def _as_nobody(attempt: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Runs ``attempt`` in a forked child that has dropped to uid ``nobody``; its JSON result."""
    if os.geteuid() != 0:
        pytest.skip("the other-user tests switch to uid nobody with os.setuid: run them as root")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here, only os._exit
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            found = attempt()
        except BaseException as e:
            found, status = {"error": repr(e)}, 1
        os.write(write_end, json.dumps(found).encode())
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(data)
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def _errno_name(action: Callable[[], object]) -> str:
    try:
        action()
    except OSError as e:
        return type(e).__name__
    return "allowed"


@pytest.mark.engine_config(journal=True)
def test_a_process_of_another_user_reaches_no_socket_key_ring_or_journal(engine_run: EngineRun) -> None:
    path = engine_run.config.endpoint.removeprefix("ipc://")
    ring = next(SHM / name for name in engine_run.segments() if name.endswith("_cmd"))  # a static slot's
    key = operator_key_path(engine_run.prefix)  # here: the path names this user's run directory

    def attempt() -> dict[str, Any]:
        def connect() -> None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)

        return {
            "connect": _errno_name(connect),
            "operator key": _errno_name(key.read_text),
            "ring": _errno_name(lambda: os.open(ring, os.O_RDWR)),
            "journal": _errno_name(lambda: os.open(engine_run.config.journal_path or "", os.O_RDONLY)),
        }

    assert _as_nobody(attempt) == {name: "PermissionError" for name in ("connect", "operator key", "ring", "journal")}


@pytest.mark.engine_config(clients=(), control_endpoint=f"ipc://@pt-access-test-{os.getpid()}")
def test_another_user_who_reaches_an_abstract_control_socket_is_forbidden_every_op(engine_run: EngineRun) -> None:
    """An abstract socket has no permissions: anyone may connect. The server still refuses whoever is not its
    own user (or root), by the uid the kernel gives for the connection."""
    endpoint = engine_run.config.endpoint
    with Client(7, endpoint=endpoint) as victim:

        def attempt() -> dict[str, Any]:
            import zmq

            ctx = zmq.Context()  # a fresh one: the parent's threads did not survive the fork
            codes = {}
            for op, fields in (("stats", {}), ("position", {"client": 7, "symbol": "TEST"}),
                               ("detach", {"client": 7, "token": victim.token}), ("attach", {"client": 9}),
                               ("halt", {"symbol": "TEST"})):  # fmt: skip
                sock = ctx.socket(zmq.REQ)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(endpoint)
                sock.send_json({"op": op, **fields})
                reply: Any = sock.recv_json() if sock.poll(5000) else {"code": "no reply"}
                codes[op] = reply["code"]
                sock.close(0)
            ctx.term()
            return codes

        assert _as_nobody(attempt) == dict.fromkeys(("stats", "position", "detach", "attach", "halt"), "FORBIDDEN")
        victim.submit("TEST", "buy", 1, 90)  # the victim's attachment is whole
        assert victim.wait_events(1)[0].type == EventType.ACK
