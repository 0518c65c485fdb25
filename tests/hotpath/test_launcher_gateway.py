"""The launcher's ``[gateway]`` table: parsed and checked before anything starts, handed to the gateway process
as JSON on stdin (never on its command line), and the gateway started as a process of its own that stops with
the run, leaving no process and no /dev/shm segment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway.config import GatewayConfig
from hotpath.launcher import DEFAULT_CONFIG, GatewaySpec, load_config
from hotpath.testing import processes_named, remove_leftovers

BASE = """
[[symbols]]
name = "SIM"
tick_size = 0.01

[[accounts]]
name = "mm_1"
client = 1

[[accounts]]
name = "user_1"
client = 20
api_key = "k1"
limits = { max_position = 50 }

[[accounts]]
name = "user_2"
client = 21
api_key = "k2"

[probe]
hz = 0

[[agents]]
name = "maker"
module = "strategies.agent"
args = ["--strategy", "inventory_skew", "--size", "5", "--half-spread", "0.02", "--max-position", "200"]
accounts = ["mm_1"]
symbol = "SIM"
"""


def test_no_gateway_table_means_no_gateway() -> None:
    assert load_config(BASE).gateway is None
    assert load_config(BASE + "[gateway]\nenabled = false\n").gateway is None


def test_the_gateway_takes_every_keyed_account_no_agent_uses_by_default() -> None:
    spec = load_config(BASE + "[gateway]\nport = 0\n").gateway
    assert spec == GatewaySpec(port=0, accounts=("user_1", "user_2"))
    assert spec.host == "127.0.0.1" and spec.auth


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('accounts = ["mm_1"]', "used by an agent"),
        ('accounts = ["nobody"]', "no account 'nobody'"),
        ('accounts = ["user_1", "user_1"]', "listed twice"),
        ("accounts = []", "has no accounts"),
        ("port = 70000", "port must be"),
        ("port = -1", "port must be an integer >= 0"),
        ('auth = "yes"', "auth must be true or false"),
        ("rate_per_s = nan", "rate_per_s must be a number"),
        ("ws_queue = 0", "ws_queue must be at least 1"),
        ("colour = 1", "unknown keys"),
    ],
)
def test_a_bad_gateway_table_is_refused_naming_the_key(table: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_config(BASE + "[gateway]\n" + table + "\n")


def test_with_auth_on_every_gateway_account_needs_a_key() -> None:
    text = BASE + '[[accounts]]\nname = "nokey"\nclient = 30\n[gateway]\naccounts = ["nokey"]\n'
    with pytest.raises(ValueError, match="no api_key"):
        load_config(text)
    assert load_config(text + "auth = false\n").gateway is not None


def test_the_payload_round_trips_into_the_same_gateway_config() -> None:
    platform = load_config(BASE + "[gateway]\nport = 0\nrate_per_s = 5\n", prefix="pt_x")
    payload: dict[str, Any] = json.loads(platform.gateway_payload())
    assert payload["prefix"] == "pt_x" and [a["name"] for a in payload["accounts"]] == ["user_1", "user_2"]
    assert GatewayConfig.from_launcher(platform.gateway_payload()) == GatewayConfig.from_platform(platform)
    config = GatewayConfig.from_platform(platform)
    assert config.keys == {"k1": "user_1", "k2": "user_2"} and config.rate_per_s == 5
    assert config.accounts[0].limits is not None and config.accounts[0].limits.max_position == 50


def test_the_embedded_config_still_parses() -> None:
    load_config(DEFAULT_CONFIG)


def test_up_starts_the_gateway_with_its_keys_off_the_command_line_and_stops_it(tmp_path: Path) -> None:
    prefix = f"pt_upgw_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    config = tmp_path / "gw.toml"
    config.write_text(BASE + "[gateway]\nport = 0\n")
    argv = [sys.executable, "-m", "hotpath.cli", "up", "--config", str(config), "--prefix", prefix, "--seconds", "4"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("gateway up:"):
            line = proc.stdout.readline()
            assert line, "the launcher ended before the gateway was up"
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:")
        gateways = [
            pid for pid in processes_named(prefix) if b"gateway.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(gateways) == 1
        assert b"k1" not in Path(f"/proc/{gateways[0]}/cmdline").read_bytes()
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            assert json.loads(response.read())["accounts"] == ["user_1", "user_2"]
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        leftovers = remove_leftovers(prefix)
    assert not leftovers, leftovers
    assert proc.returncode == 0 and "no shared-memory segment left" in out
