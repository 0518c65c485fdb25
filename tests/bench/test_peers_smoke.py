"""bench/peers at a tiny size, so the comparison with other order books cannot rot: the generator writes a mix,
this engine's adapter reproduces the mix's own figures through the public C API (and deterministically), and
the round runner measures, checks and summarises interleaved rounds. The peers' sources are not part of the
project, so this engine's adapter stands in for a peer here; nothing asserts a speed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "bench" / "peers"

pytestmark = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("cc", "taskset")), reason="needs a C compiler and taskset"
)


def _run(*args: str | Path, timeout: float = 300) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mix_gen and this engine's adapter (at -O2: the flags do not matter here), and a 20 k-op mix under the
    name the runner expects."""
    out = tmp_path_factory.mktemp("peers")
    includes = [f"-I{ROOT / 'c_engine' / 'include'}", f"-I{ROOT / 'bench'}", f"-I{PEERS}"]
    _run("cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *includes, "-o", out / "mix_gen", PEERS / "mix_gen.c")
    engine_sources = sorted((ROOT / "c_engine" / "src").glob("*.c"))
    _run("cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *includes, "-o", out / "pt_adapter",
         PEERS / "pt_adapter.c", *engine_sources, "-lm")  # fmt: skip
    _run(out / "mix_gen", "20000", "7", out / "mix_2M_s42.bin")
    return out


def test_the_adapter_reproduces_the_mix_figures_and_its_events_deterministically(built: Path) -> None:
    mix = built / "mix_2M_s42.bin"
    verify = _run(built / "pt_adapter", mix, "--verify")
    assert re.search(r"\bok=1\b", verify), verify
    first, second = _run(built / "pt_adapter", mix, "--digest"), _run(built / "pt_adapter", mix, "--digest")
    assert first == second and first.strip(), first


def test_the_runner_interleaves_rounds_and_reports_each_ratio(built: Path) -> None:
    peer = built / "geseq_adapter"  # this engine again, in a peer's place
    shutil.copy(built / "pt_adapter", peer)
    try:
        out = _run(sys.executable, PEERS / "run_rounds.py", "--bin", built, "--rounds", "7", "--core", "0",
                   "--engines", "proptrade,geseq", "--out", built / "rounds.jsonl")  # fmt: skip
    finally:
        peer.unlink()
    assert len(re.findall(r"^round +\d+ proptrade ", out, re.M)) == 7, out
    assert len(re.findall(r"^round +\d+ geseq ", out, re.M)) == 7, out
    assert "ratio" in out, out
    assert len((built / "rounds.jsonl").read_text().splitlines()) == 14


def test_without_a_peer_build_the_runner_says_so_and_measures_nothing(built: Path) -> None:
    out = _run(sys.executable, PEERS / "run_rounds.py", "--bin", built, "--core", "0")
    assert "no peer adapter built" in out, out
    assert "round" not in out.split("no peer adapter built")[0]
