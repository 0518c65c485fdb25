"""docs/API.md's ccxt example, run as it is against a platform that ``proptrade up`` launches (a maker on SIM
for a book, the gateway on a free port, an account whose secret is in a file). The example reads the
gateway's address from ``GW``, the key from ``KEY`` and the secret from ``SECRET``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotpath.testing import ServedPlatform
from tests.gateway.test_docs import DOC_PLATFORM, doc_examples

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"
SECRET = "doc-secret-" + "d" * 53
CONFIG = (
    DOC_PLATFORM
    + """
[[accounts]]
name = "user_1"
client = 20
api_key = "doc-key"
secret_file = "{dir}/user_1.secret"
"""
)


def examples() -> list[str]:
    return doc_examples(DOC, "Example", "python")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("binance_docs")
    (tmp / "user_1.secret").write_text(SECRET)
    with ServedPlatform(CONFIG.replace("{dir}", str(tmp)), tmp, "bndoc") as platform:
        yield {**os.environ, "GW": platform.url, "KEY": "doc-key", "SECRET": SECRET}


def test_the_doc_has_one_example() -> None:
    assert len(examples()) == 1


def test_the_ccxt_example_runs(env: dict[str, str]) -> None:
    (script,) = examples()
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("best bid ") and lines[1] == "open 1.0" and lines[2] == "canceled"
    assert "'free': 0.0" in lines[3] and "'used': 0.0" in lines[3]
