"""The container image end to end, with podman: built from the Dockerfile on the local base image
(``scripts/podman_build.sh``), started as a user would (``--shm-size=1g``, pinned to one CPU with
``--cpuset-cpus``, the gateway published on loopback), healthy by its own HEALTHCHECK, trading through the
gateway from outside, and a second container trading over the first one's shared memory, as
``deploy/compose.yaml`` pairs them.

A cold run (base image, build, start) takes minutes, so these tests run only when asked:
``PROPTRADE_CONTAINER_TESTS=1``, as root, on a host where podman can run containers (docs/DEPLOY.md,
"Testing"); otherwise each is skipped saying which of those is missing. Everything they create (containers,
volumes) is removed at the end; the images are kept, so a second run only rebuilds what changed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/proptrade:test"
CONF = ROOT / "deploy" / "containers.conf"
#: a cold build installs every pinned wheel; the start waits for the engine, the gateway and the agents
BUILD_TIMEOUT_S = 1200.0
HEALTHY_TIMEOUT_S = 90.0
USER_KEY = {"X-API-Key": "user1-key"}


def _why_not() -> str | None:
    if os.environ.get("PROPTRADE_CONTAINER_TESTS") != "1":
        return "container tests run only with PROPTRADE_CONTAINER_TESTS=1 (they build an image: minutes)"
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc)"
    if os.geteuid() != 0:
        return "podman runs containers here as root only (docs/DEPLOY.md, Testing)"
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed: it builds the local base image"
    return None


def _podman(*args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTAINERS_CONF": str(CONF)}
    done = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: podman's shared-memory lock table: made by the first podman command on the machine, kept by podman after
LIBPOD_LOCK = Path("/dev/shm/libpod_lock")


@pytest.fixture(scope="module", autouse=True)
def no_lock_left() -> Iterator[None]:
    """Removes podman's lock table after the tests if they made it and podman holds nothing that needs it (no
    container, no volume): the tests leave no /dev/shm entry."""
    existed = LIBPOD_LOCK.exists()
    yield
    if existed or not LIBPOD_LOCK.exists() or shutil.which("podman") is None:
        return
    held = [_podman(*args, check=False).stdout.strip() for args in (("ps", "-aq"), ("volume", "ls", "-q"))]
    if not any(held):
        LIBPOD_LOCK.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def image() -> str:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    env = {**os.environ, "CONTAINERS_CONF": str(CONF)}
    done = subprocess.run([str(ROOT / "scripts" / "podman_build.sh"), IMAGE], capture_output=True, text=True,
                          env=env, timeout=BUILD_TIMEOUT_S)  # fmt: skip
    assert done.returncode == 0, f"the image did not build:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return IMAGE


@pytest.fixture(scope="module")
def platform(image: str) -> Iterator[tuple[str, str, int]]:
    """A running platform container: (its name, its run-directory volume, the CPU it is confined to)."""
    name = f"pt-test-{uuid.uuid4().hex[:8]}"
    volume = f"{name}-run"
    cpu = max(os.sched_getaffinity(0))
    port = _free_port()
    _podman("volume", "create", volume)
    try:
        _podman("run", "-d", "--name", name, "--shm-size=1g", "--ipc=shareable", f"--cpuset-cpus={cpu}",
                "-p", f"127.0.0.1:{port}:8000", "-v", f"{volume}:/run/proptrade", image)  # fmt: skip
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        # podman 4.3 runs HEALTHCHECKs from systemd timers; without systemd `healthcheck run` runs it now
        while _podman("healthcheck", "run", name, check=False).returncode != 0:
            state = _podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
            if state != "running" or time.monotonic() > deadline:
                logs = _podman("logs", name, check=False)
                raise AssertionError(f"the container is {state}, not healthy:\n{logs.stdout[-3000:]}{logs.stderr}")
            time.sleep(1.0)
        yield name, volume, cpu
    finally:
        _podman("rm", "-f", "-v", "-t", "20", name, check=False)  # -v: its anonymous volumes too
        _podman("volume", "rm", "-f", volume, check=False)


def _gateway(name: str) -> str:
    port = _podman("port", name, "8000/tcp").stdout.strip().rsplit(":", 1)[1]
    return f"http://127.0.0.1:{port}"


def test_the_image_runs_its_processes_as_a_user_that_is_not_root(platform: tuple[str, str, int]) -> None:
    uid = _podman("exec", platform[0], "id", "-u").stdout.strip()
    assert uid != "0"


def test_the_engine_is_pinned_to_the_cpu_of_the_containers_cpuset(platform: tuple[str, str, int]) -> None:
    logs = _podman("logs", platform[0]).stdout + _podman("logs", platform[0]).stderr
    assert f"pinned to core {platform[2]}," in logs


def test_an_order_placed_through_the_published_port_fills(platform: tuple[str, str, int]) -> None:
    with httpx.Client(base_url=_gateway(platform[0]), headers=USER_KEY, timeout=5.0) as gw:
        deadline = time.monotonic() + 20.0
        while not gw.get("/book", params={"depth": 1}).json().get("asks"):  # the flow agents' first quotes
            assert time.monotonic() < deadline, "no ask in the book 20 s after the container was healthy"
            time.sleep(0.5)
        reply = gw.post("/order", json={"client_id": "user_1", "side": "buy", "type": "market", "size": 1})
        assert reply.status_code == 200, reply.text
        assert reply.json()["state"] == "filled", reply.json()


def test_a_strategy_in_a_second_container_trades_over_the_first_ones_shared_memory(
    image: str, platform: tuple[str, str, int]
) -> None:
    name, volume, _ = platform
    done = _podman("run", "--rm", f"--ipc=container:{name}", f"--pid=container:{name}", "-v",
                   f"{volume}:/run/proptrade", image,
                   "strategy", "run", "--strategy", "inventory_skew", "--account", "mm_2", "--prefix", "pt_ct",
                   "--size", "2", "--half-spread", "0.01", "--quote-interval", "0.05", "--seconds", "8",
                   timeout=60.0)  # fmt: skip
    out = done.stdout + done.stderr
    assert "fills" in out, out
    assert " 0 fills" not in out, out
