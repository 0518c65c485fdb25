"""docs/GATEWAY.md's examples, run as they are (curl, httpx, websockets) against a platform that
``proptrade up`` launches: one symbol, a maker and a flow agent for market data, the gateway on a free port.
The examples read the gateway's address from ``GW`` and the key from ``KEY``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotpath.testing import remove_leftovers

DOC = Path(__file__).resolve().parents[2] / "docs" / "GATEWAY.md"
CONFIG = """
[engine]
ring_capacity = 1024
md_capacity = 4096

[[symbols]]
name = "SIM"
tick_size = 0.01
band_ticks = 5000
reference_price = 10000

[bridge]
enabled = false

[[accounts]]
name = "mm_1"
client = 1

[[accounts]]
name = "flow_1"
client = 10

[[accounts]]
name = "user_1"
client = 20
api_key = "doc-key"

[probe]
hz = 0

[gateway]
port = 0
heartbeat_s = 1.0

[[agents]]
name = "maker"
module = "strategies.agent"
args = ["--strategy", "inventory_skew", "--size", "5", "--half-spread", "0.02", "--max-position", "200"]
accounts = ["mm_1"]
symbol = "SIM"

[[agents]]
name = "flow"
module = "hotpath.agents.flow"
accounts = ["flow_1"]
symbol = "SIM"
args = ["--rate", "50", "--mid", "100"]
"""


def examples(language: str) -> list[str]:
    text = DOC.read_text().split("## Examples", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    prefix = f"pt_gwdoc_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    path = tmp_path_factory.mktemp("gateway_docs") / "platform.toml"
    path.write_text(CONFIG)
    proc = subprocess.Popen([sys.executable, "-m", "hotpath.cli", "up", "--config", str(path), "--prefix", prefix],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    urls: list[str] = []
    up = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.match(r"gateway up: (http://\S+)", line)
            if match:
                urls.append(match.group(1))
                up.set()
        up.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert up.wait(60) and urls, "the platform did not start"
        yield {**os.environ, "GW": urls[0], "KEY": "doc-key"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
        leftovers = remove_leftovers(prefix)
        assert not leftovers, leftovers


def test_the_doc_has_its_examples() -> None:
    assert len(examples("bash")) == 1 and len(examples("python")) == 3


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_example_runs(env: dict[str, str]) -> None:
    (script,) = examples("bash")
    out = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert '"status":"accepted"' in out.stdout and '"bids":' in out.stdout and '"code"' not in out.stdout


def test_the_python_examples_run(env: dict[str, str]) -> None:
    rest, market_data, fills = examples("python")
    listener = subprocess.Popen([sys.executable, "-c", fills], env=env, stdout=subprocess.PIPE, text=True)
    out = subprocess.run([sys.executable, "-c", rest], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "accepted" and lines[2] == "open" and lines[3] == "1.0" and lines[4] == "cancelled"
    md = subprocess.run([sys.executable, "-c", market_data], env=env, capture_output=True, text=True, timeout=60)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("snapshot") and len(md.stdout.splitlines()) >= 2
    stdout, _ = listener.communicate(timeout=30)
    assert listener.returncode == 0 and stdout.strip() in ("ack", "heartbeat", "modified", "cancel")
