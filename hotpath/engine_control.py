"""``EngineControl``: a running engine's control block (``{prefix}_ctl``), mapped from any process.

It reads the loop's live counters and sets its stop flag. The block's layout belongs to the loop
(``include/pt_loop.h``), so this module loads the loop's extension to read it: operators' tools (the launcher,
``proptrade stats``, tests) use it, a trading process does not need it.
"""

from __future__ import annotations

import time
from typing import Any

from ._cloop import ffi, lib
from .idle import BackoffIdle
from .names import control_name
from .shm import ShmSegment

__all__ = ["EngineControl", "LoopError", "check_loop_rc"]


class LoopError(Exception):
    """A ``pt_loop_*`` call returned a negative ``enum pt_loop_rc``."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(f"{what}: pt_loop rc {code}")
        self.code = code


def check_loop_rc(rc: int, what: str) -> None:
    """Raises LoopError unless ``rc`` is PT_LOOP_OK."""
    if rc != lib.PT_LOOP_OK:
        raise LoopError(what, rc)


class EngineControl:
    """The control block of a running engine, mapped read-write from any process (never unlinked here)."""

    def __init__(self, prefix: str, timeout_s: float = 10.0) -> None:
        """Attaches once the engine has created it and its loop is running; TimeoutError otherwise."""
        self.prefix = prefix
        self._out = ffi.new("pt_loop_counters_t *")
        deadline = time.monotonic() + timeout_s
        idle = BackoffIdle()
        while True:
            try:
                self._segment = ShmSegment.attach(control_name(prefix))
                self._ptr: Any = ffi.from_buffer(self._segment.mmap, require_writable=True)
                if lib.pt_loop_control_read(self._ptr, self._segment.size, self._out) == lib.PT_LOOP_OK:
                    if self._out.running:
                        return
                ffi.release(self._ptr)
                self._segment.close()
            except (FileNotFoundError, ValueError):  # not created yet, or not sized yet (mmap of 0 bytes)
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError(f"engine {prefix!r} not running after {timeout_s} s")
            idle.idle(0)

    def counters(self) -> dict[str, int]:
        """A snapshot of the live counters (``pt_loop_counters_t``; each exact, the set not atomic)."""
        check_loop_rc(lib.pt_loop_control_read(self._ptr, self._segment.size, self._out), "control_read")
        return {name: int(getattr(self._out, name)) for name, _ in ffi.typeof("pt_loop_counters_t").fields}

    def request_stop(self) -> None:
        """Sets the stop flag: the loop returns within one pass (or one stalled push)."""
        check_loop_rc(lib.pt_loop_request_stop(self._ptr, self._segment.size), "request_stop")

    def close(self) -> None:
        ffi.release(self._ptr)
        self._segment.close()

    def __enter__(self) -> EngineControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
