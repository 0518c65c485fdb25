"""docs/GATEWAY.md's examples, run as they are (curl, httpx, websockets) against a platform that
``proptrade up`` launches: one symbol, a maker and a flow agent for market data, the gateway on a free port.
The examples read the gateway's address from ``GW`` and the key from ``KEY``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotpath.testing import ServedPlatform

DOC = Path(__file__).resolve().parents[2] / "docs" / "GATEWAY.md"
#: the platform the docs' examples run on: SIM with a maker quoting it, the gateway on a free port (the tests
#: add their accounts and agents: TOML takes ``[[accounts]]`` and ``[[agents]]`` entries in any place)
DOC_PLATFORM = """
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
"""
CONFIG = (
    DOC_PLATFORM
    + """
[[accounts]]
name = "flow_1"
client = 10

[[accounts]]
name = "user_1"
client = 20
api_key = "doc-key"

[[agents]]
name = "flow"
module = "hotpath.agents.flow"
accounts = ["flow_1"]
symbol = "SIM"
args = ["--rate", "50", "--mid", "100"]
"""
)


def doc_examples(doc: Path, heading: str, language: str) -> list[str]:
    """The ``language`` code blocks of ``doc``'s section ``heading`` (a level-2 title), in order."""
    text = doc.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def examples(language: str) -> list[str]:
    return doc_examples(DOC, "Examples", language)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with ServedPlatform(CONFIG, tmp_path_factory.mktemp("gateway_docs"), "gwdoc") as platform:
        yield {**os.environ, "GW": platform.url, "KEY": "doc-key"}


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
