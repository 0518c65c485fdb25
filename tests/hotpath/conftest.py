"""Fixtures shared by the hot-path tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SHM = Path("/dev/shm")


@pytest.fixture
def shm_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh segment name; fails the test if the segment is still in /dev/shm afterwards (and removes it)."""
    name = f"pt_test_{request.module.__name__.rsplit('_', 1)[-1]}_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    assert not (SHM / name).exists()
    yield name
    leaked = (SHM / name).exists()
    if leaked:
        os.unlink(SHM / name)
    assert not leaked, f"/dev/shm/{name} left behind"
