"""What the Python benchmark runners share: labelling a run with its commit and machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["ROOT", "cpu_model", "git_commit"]

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
