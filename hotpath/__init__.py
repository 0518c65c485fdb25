"""The hot path: the engine process, the shared-memory rings, the launcher and the ``proptrade`` command line.

Done so far: the SPSC ring (``include/pt_ring.h``, ``src/ring.c``; Python: ``Ring``, ``SharedMemoryRing``),
the broadcast market-data ring (``include/pt_bcast.h``, ``src/bcast.c``; Python: ``SharedMemoryBroadcast``,
``BroadcastReader``, ``Overrun``), the idle strategy (``BackoffIdle``) and the engine process's core
(``include/pt_loop.h``, ``src/loop.c``; Python: ``hotpath.engine_process``). docs/HOTPATH.md describes them.
"""

from typing import Any as _Any

from .idle import BackoffIdle

# The ring needs the compiled extension (hotpath._cring); importing it lazily keeps `proptrade --help`
# usable before `make build`.
_RING_NAMES = (
    "BadMagicError",
    "BadVersionError",
    "InvalidRingError",
    "Ring",
    "RingError",
    "RingFullError",
    "RingStatus",
    "SharedMemoryRing",
    "ring_bytes",
)
_BCAST_NAMES = (
    "Broadcast",
    "BroadcastBadMagicError",
    "BroadcastBadVersionError",
    "BroadcastError",
    "BroadcastReader",
    "BroadcastStatus",
    "InvalidBroadcastError",
    "Overrun",
    "SharedMemoryBroadcast",
    "broadcast_bytes",
)


def __getattr__(name: str) -> _Any:
    if name in _RING_NAMES:
        from . import ring

        return getattr(ring, name)
    if name in _BCAST_NAMES:
        from . import bcast

        return getattr(bcast, name)
    raise AttributeError(f"module 'hotpath' has no attribute {name!r}")


__all__ = sorted(("BackoffIdle", *_RING_NAMES, *_BCAST_NAMES))
