"""The container image and the compose pair end to end, with podman, as CI runs them in ``make test``.

The image is built from the Dockerfile on the local base image (``scripts/podman_build.sh``: debootstrap and
``podman import`` on a cold store, then the build), and run twice, each run observed once by a module fixture
that records what it saw and removes what it made before the tests judge the record:

- a plain ``podman run`` as the docs show it (``--shm-size=1g``, ``--cpuset-cpus`` of one CPU, the gateway
  published on a loopback port podman picks, so it is always a free one), healthy by its own HEALTHCHECK, an
  order placed and filled through the gateway from outside, a strategy in a second container beside it
  (``--ipc``/``--pid`` of the first), then ``podman stop``;
- ``deploy/compose.yaml`` under podman-compose (``up``, the strategy service trading, ``stop``, ``down -v``),
  with an override file for what must be this run's own: the image, the platform's container name, the port.

The CPU given with ``--cpuset-cpus`` is the first of this process's affinity, not the last: an engine that
assumed CPUs 0..N-1 and took the last would then pin outside the set (EINVAL), where one that reads
``os.sched_getaffinity`` pins inside it. The IPC namespace of the compose pair is held by its pod's infra
container, which outlives the two services' ``stop``: its ``/dev/shm`` (a tmpfs that podman mounts on the host)
is where a segment left by a stopped process would still be, so that is where the test looks.

They run wherever podman can run containers: as root, with podman, and debootstrap when the base image is
not built yet; otherwise each test is skipped with one line saying what is missing, and
``PROPTRADE_CONTAINER_TESTS=0`` turns them off. The two runs are one after the other in one xdist group
(``pytest -n 2 --dist loadgroup``), so they never build or run side by side. What they create (containers,
volumes, the pod and its network, podman's infra image, ``/dev/shm/libpod_lock``) is removed at the end; the
images ``scripts/podman_build.sh`` tags (the base, the image, its builder stage) stay as the next run's cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.xdist_group("containers")

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/proptrade:test"
BASE_IMAGE = "localhost/proptrade-base:bookworm"
CONF = ROOT / "deploy" / "containers.conf"
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
#: the run's prefix in the image's CMD and in the compose file's strategy command
PREFIX = "pt_ct"
#: a cold build downloads every pinned wheel on a loaded machine; a warm one takes about a minute
BUILD_TIMEOUT_S = 1500.0
#: from `podman run` to the gateway's /health: the engine, the gateway and the agents started
HEALTHY_TIMEOUT_S = 90.0
#: from `compose up` to the strategy's first fill (it restarts until the engine is up: see compose.yaml)
TRADE_TIMEOUT_S = 90.0
USER_KEY = {"X-API-Key": "user1-key"}
#: podman's shared-memory lock table: made by the first podman command on the machine, kept by podman after
LIBPOD_LOCK = Path("/dev/shm/libpod_lock")
#: the image podman builds for a pod's infra container on first use
PAUSE_REPOSITORY = "localhost/podman-pause"


def _env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONF)}


def _podman(*args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, env=_env(), timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def _lines(*args: str) -> list[str]:
    return _podman(*args, check=False).stdout.split()


def _why_not() -> str | None:
    """Why podman cannot run the image here, in one line; None when it can."""
    if os.environ.get("PROPTRADE_CONTAINER_TESTS") == "0":
        return "container tests turned off (PROPTRADE_CONTAINER_TESTS=0)"
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc debootstrap; docs/DEPLOY.md, Testing)"
    if os.geteuid() != 0:
        return "podman runs containers here as root only (docs/DEPLOY.md, Testing)"
    if _podman("image", "exists", BASE_IMAGE, check=False).returncode != 0 and shutil.which("debootstrap") is None:
        return f"no {BASE_IMAGE} and no debootstrap to build it (apt-get install debootstrap)"
    return None


def _cannot_run(image: str) -> str | None:
    """podman's error, in one line, when it cannot start a container of ``image`` here (no cgroups, no runtime)."""
    done = _podman("run", "--rm", image, "true", check=False)
    if done.returncode == 0:
        return None
    error = next((line for line in done.stderr.splitlines() if line.startswith("Error")), done.stderr.strip())
    return f"podman cannot run a container here: {error[:200]}"


def _podman_at_work() -> list[str]:
    """The command lines of conmon processes and podman's container clean-ups running now: a container's conmon
    starts ``podman container cleanup`` when the container exits, and it may run after ``podman rm`` returned."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = proc.joinpath("cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        command = [a.decode(errors="replace") for a in args if a]
        if command and (Path(command[0]).name == "conmon" or ("podman" in command[0] and "cleanup" in command)):
            found.append(" ".join(command))
    return found


@pytest.fixture(scope="module", autouse=True)
def no_lock_left() -> Iterator[None]:
    """Removes podman's lock table after the tests if they made it and podman holds nothing that needs it (no
    container, no pod, no volume), once podman's clean-ups have ended (one would make it again): the tests
    leave no /dev/shm entry."""
    existed = LIBPOD_LOCK.exists()
    yield
    if existed or not LIBPOD_LOCK.exists() or shutil.which("podman") is None:
        return
    deadline = time.monotonic() + 20.0
    while _podman_at_work() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not any(_lines(*args) for args in (("ps", "-aq"), ("pod", "ls", "-q"), ("volume", "ls", "-q"))):
        LIBPOD_LOCK.unlink(missing_ok=True)


def _script(name: str, *args: str) -> None:
    done = subprocess.run([str(ROOT / "scripts" / name), *args], capture_output=True, text=True, env=_env(),
                          timeout=BUILD_TIMEOUT_S)  # fmt: skip
    assert done.returncode == 0, f"{name}: exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def image() -> str:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    _script("podman_base_image.sh", BASE_IMAGE)
    why = _cannot_run(BASE_IMAGE)  # before the build, whose RUN steps need the same runtime
    if why is not None:
        pytest.skip(why)
    _script("podman_build.sh", IMAGE)
    return IMAGE


def _published_port(container: str) -> int:
    return int(_podman("port", container, "8000/tcp").stdout.strip().rsplit(":", 1)[1])


def _logs(container: str) -> str:
    done = _podman("logs", container, check=False)
    return done.stdout + done.stderr


def _summary(output: str) -> dict[str, Any]:
    """The JSON line ``proptrade strategy run`` prints when it stops; {} when there is none."""
    found: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("{"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
    return found


@dataclass
class PlatformRun:
    """What one ``podman run`` of the image showed."""

    cpu: int
    start_s: float = float("nan")  # from `podman run` to /health answering through the published port
    healthcheck_rc: int = -1
    users: list[str] = field(default_factory=list)  # every process's user, as the container sees it
    order: tuple[int, dict[str, Any]] = (0, {})
    second: str = ""  # the output of a strategy in a second container
    stop_rc: int = -1
    logs: str = ""


@pytest.fixture(scope="module")
def platform(image: str) -> PlatformRun:
    """The image run as docs/DEPLOY.md shows, observed, stopped and removed."""
    name = f"pt-test-{uuid.uuid4().hex[:8]}"
    volume = f"{name}-run"
    seen = PlatformRun(cpu=min(os.sched_getaffinity(0)))
    _podman("volume", "create", volume)
    try:
        t0 = time.monotonic()
        _podman("run", "-d", "--init", "--name", name, "--shm-size=1g", "--ipc=shareable", f"--cpuset-cpus={seen.cpu}",
                "-p", "127.0.0.1::8000", "-v", f"{volume}:/run/proptrade", image)  # fmt: skip
        url = f"http://127.0.0.1:{_published_port(name)}"
        with httpx.Client(base_url=url, headers=USER_KEY, timeout=5.0) as gw:
            while True:
                try:
                    if gw.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                state = _podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
                if state != "running" or time.monotonic() - t0 > HEALTHY_TIMEOUT_S:
                    raise AssertionError(f"no /health from a container {state}:\n{_logs(name)[-3000:]}")
                time.sleep(0.1)
            seen.start_s = time.monotonic() - t0
            # podman 4.3 runs HEALTHCHECKs from systemd timers; without systemd `healthcheck run` runs it now
            seen.healthcheck_rc = _podman("healthcheck", "run", name, check=False).returncode
            seen.users = _podman("top", name, "user").stdout.split()[1:]
            deadline = time.monotonic() + 20.0
            while not gw.get("/book", params={"depth": 1}).json().get("asks") and time.monotonic() < deadline:
                time.sleep(0.2)  # the flow agents' first quotes
            reply = gw.post("/order", json={"client_id": "user_1", "side": "buy", "type": "market", "size": 1})
            seen.order = (reply.status_code, reply.json())
        second = _podman("run", "--rm", f"--ipc=container:{name}", f"--pid=container:{name}", "-v",
                         f"{volume}:/run/proptrade", image,
                         "strategy", "run", "--strategy", "inventory_skew", "--account", "mm_2", "--prefix", PREFIX,
                         "--size", "2", "--half-spread", "0.01", "--quote-interval", "0.05", "--seconds", "5",
                         check=False, timeout=60.0)  # fmt: skip
        seen.second = second.stdout + second.stderr
        _podman("stop", "-t", "30", name, timeout=60.0)
        seen.stop_rc = int(_podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())
        seen.logs = _logs(name)
    finally:
        _podman("rm", "-f", "-t", "10", name, check=False)
        _podman("volume", "rm", "-f", volume, check=False)
    return seen


@dataclass
class ComposeRun:
    """What ``deploy/compose.yaml`` under podman-compose showed, before and after ``stop`` and ``down``."""

    position: dict[str, Any] = field(default_factory=dict)  # the engine's view of the strategy's account
    summary: dict[str, Any] = field(default_factory=dict)  # the strategy's own, printed when it stopped
    shm_up: list[str] = field(default_factory=list)  # the IPC namespace's /dev/shm while both ran
    shm_stopped: list[str] | None = None  # the same after `stop`; None if it was no longer mounted
    mounted_after_down: bool = True
    host_shm: list[str] = field(default_factory=list)  # the run's names in the host's /dev/shm after `down`
    leftovers: list[str] = field(default_factory=list)  # containers, pods, volumes, networks after `down`
    logs: str = ""


def _compose(project: str, override: Path, *args: str, check: bool = True) -> None:
    command = [sys.executable, "-m", "podman_compose", "-p", project, "-f", str(COMPOSE_FILE), "-f", str(override)]
    done = subprocess.run([*command, *args], capture_output=True, text=True, env=_env(), timeout=180.0, cwd=ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"podman-compose {' '.join(args)}: exit {done.returncode}\n{done.stderr[-3000:]}")


def _shm_of(pod: str) -> Path:
    """The host directory where podman mounts the /dev/shm of ``pod``'s IPC namespace (its infra container's)."""
    infra = _podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod).stdout.strip()
    return Path(_podman("inspect", "--format", "{{.StaticDir}}", infra).stdout.strip()) / "shm"


def _ours(names: list[str]) -> list[str]:
    return sorted(n for n in names if n.startswith(f"{PREFIX}_"))


@pytest.fixture(scope="module")
def compose(image: str, tmp_path_factory: pytest.TempPathFactory) -> ComposeRun:
    """deploy/compose.yaml up, trading, stopped, down (its tests come after the plain run's, whose fixture has
    removed its container by then: the two platforms never run side by side)."""
    if importlib.util.find_spec("podman_compose") is None:
        pytest.skip("podman-compose is not installed (pyproject.toml's dev extra: podman-compose==1.6.0)")
    project = f"pt-test-{uuid.uuid4().hex[:8]}"
    container = f"{project}-platform"
    label = f"label=io.podman.compose.project={project}"
    override = tmp_path_factory.mktemp("compose") / "override.yaml"
    override.write_text(f"""services:
  platform:
    image: {image}
    container_name: {container}
    ports: !override
      - "127.0.0.1::8000"
  strategy:
    image: {image}
    pid: container:{container}
""")
    pause_before = _lines("images", "-q", PAUSE_REPOSITORY)
    volumes_before = set(_lines("volume", "ls", "-q"))
    seen = ComposeRun()
    shm: Path | None = None
    try:
        _compose(project, override, "up", "-d", "--no-build")
        shm = _shm_of(f"pod_{project}")
        deadline = time.monotonic() + TRADE_TIMEOUT_S
        while not seen.position.get("cash") and time.monotonic() < deadline:
            time.sleep(1.0)
            done = _podman("exec", container, "proptrade", "ctl", "--prefix", PREFIX, "position", "client=mm_2",
                           "symbol=SIM", check=False)  # fmt: skip
            if done.returncode == 0:
                seen.position = json.loads(done.stdout)
        seen.shm_up = sorted(os.listdir(shm))
        _compose(project, override, "stop")
        seen.shm_stopped = sorted(os.listdir(shm)) if os.path.ismount(shm) else None
        strategy = _lines("ps", "-aq", "--filter", label, "--filter", "label=io.podman.compose.service=strategy")
        seen.summary = _summary(_logs(strategy[0])) if strategy else {}
        seen.logs = "".join(_logs(c) for c in _lines("ps", "-aq", "--filter", label))
    finally:
        _compose(project, override, "down", "-v", check=False)
        seen.mounted_after_down = shm is not None and os.path.ismount(shm)
        seen.host_shm = _ours(os.listdir("/dev/shm"))
        found = {
            "container": _lines("ps", "-aq", "--filter", label),
            "pod": _lines("pod", "ls", "-q", "--filter", f"name=^pod_{project}$"),
            "volume": sorted(set(_lines("volume", "ls", "-q")) - volumes_before),
            "network": _lines("network", "ls", "-q", "--filter", label),
        }
        seen.leftovers = [f"{kind} {name}" for kind, names in found.items() for name in names]
        # a failed run leaves nothing either: the record above keeps what there was for the tests to report
        for remove, kind in ((("pod", "rm", "-f", "-t", "0"), "pod"), (("rm", "-f", "-t", "0"), "container"),
                             (("volume", "rm", "-f"), "volume"), (("network", "rm", "-f"), "network")):  # fmt: skip
            if found[kind]:
                _podman(*remove, *found[kind], check=False)
        if not pause_before:
            for pause in _lines("images", "-q", PAUSE_REPOSITORY):
                _podman("rmi", pause, check=False)
    return seen


def test_the_image_runs_every_process_as_a_user_that_is_not_root(platform: PlatformRun) -> None:
    assert platform.users, "podman top listed no process"
    assert set(platform.users) == {"proptrade"}, platform.users  # the image's user, uid 10001


def test_the_containers_healthcheck_passes_once_the_gateway_answers(platform: PlatformRun) -> None:
    assert platform.healthcheck_rc == 0, f"podman healthcheck run: exit {platform.healthcheck_rc}"


def test_the_engine_is_pinned_to_a_cpu_of_the_containers_cpuset(platform: PlatformRun) -> None:
    assert f"pinned to core {platform.cpu}," in platform.logs, platform.logs[-3000:]


def test_an_order_placed_through_the_published_port_from_outside_fills(platform: PlatformRun) -> None:
    status, body = platform.order
    assert status == 200, body
    assert body["state"] == "filled", body


def test_a_strategy_in_a_second_container_trades_over_the_first_ones_shared_memory(platform: PlatformRun) -> None:
    assert _summary(platform.second).get("fills", 0) > 0, platform.second[-3000:]


def test_the_platform_container_stops_cleanly_on_sigterm(platform: PlatformRun) -> None:
    assert platform.stop_rc == 0, platform.logs[-3000:]
    assert "no shared-memory segment left" in platform.logs, platform.logs[-3000:]


def test_the_compose_strategy_trades_with_the_platform_over_their_shared_ipc_namespace(compose: ComposeRun) -> None:
    assert {f"{PREFIX}_ctl", f"{PREFIX}_md"} <= set(compose.shm_up), compose.shm_up  # the engine's, seen there
    assert compose.position.get("cash"), f"the engine saw no fill of mm_2: {compose.position}\n{compose.logs[-3000:]}"
    assert compose.summary.get("fills", 0) > 0, compose.logs[-3000:]


def test_stopping_the_compose_leaves_no_segment_in_the_containers_ipc_namespace(compose: ComposeRun) -> None:
    assert compose.shm_stopped is not None, "the pod's /dev/shm was gone before it could be looked at"
    assert _ours(compose.shm_stopped) == [], compose.shm_stopped


def test_compose_down_leaves_no_segment_on_the_host(compose: ComposeRun) -> None:
    assert not compose.mounted_after_down, "the pod's /dev/shm is still mounted on the host"
    assert compose.host_shm == []


def test_compose_down_leaves_no_container_pod_volume_or_network(compose: ComposeRun) -> None:
    assert compose.leftovers == []
