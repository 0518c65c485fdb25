"""What the Python benchmark runners share: labelling a run with its commit and machine; starting and stopping
the engine process they measure against."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotpath.engine_process import EngineProcessConfig

__all__ = ["ROOT", "cpu_model", "git_commit", "start_engine_process", "stop_engine_process"]

ROOT = Path(__file__).resolve().parents[1]


def git_commit(*paths: str) -> str:
    """HEAD, with +dirty when any of ``paths`` (untracked files there included) differ from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        if rev.returncode != 0:
            return "uncommitted"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def cpu_model() -> str:
    """The model name, family and model of the first CPU in /proc/cpuinfo."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return f"{info.get('model name', 'unknown')} (family {info.get('cpu family', '?')} model {info.get('model', '?')})"


def start_engine_process(config: EngineProcessConfig, timeout_s: float = 30.0) -> subprocess.Popen[bytes]:
    """``python -m hotpath.engine_process`` with ``config``, once its loop runs (the process is killed if it
    does not come up)."""
    from hotpath.engine_control import EngineControl

    proc = subprocess.Popen([sys.executable, "-m", "hotpath.engine_process", config.to_json()])
    try:
        EngineControl(config.prefix, timeout_s).close()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop_engine_process(proc: subprocess.Popen[bytes], prefix: str) -> None:
    """SIGTERM, a bounded wait, SIGKILL if need be; then removes any segment of the run still there (only if the
    engine could not remove them itself)."""
    from hotpath.names import SHM_DIR, run_segments

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for name in run_segments(prefix):
        (SHM_DIR / name).unlink(missing_ok=True)
