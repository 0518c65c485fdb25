"""The hot path: the engine process, the shared-memory rings, the client layer, the launcher and ``proptrade``.

Client side (a trading process imports only these; they load no engine loop and no server module):
``Client`` (one client id over its ring pair, ``client.py``), ``EngineGoneError``, ``BookView`` (L2 books kept
from the market-data ring, ``md_view.py``), ``L2Book`` (the book model, ``book.py``), ``MarketDataSubscriber``
(market data from the ZeroMQ bridge), ``ControlClient``/``ControlError`` (the control plane), the rings
(``Ring``, ``SharedMemoryRing``, ``SharedMemoryBroadcast``, ``BroadcastReader``, ``Overrun``) and the idle
strategy ``BackoffIdle``. The run's names (segments, endpoints) are built in ``names.py``.

Server side (``engine_process.py``, ``control.py``, ``bridge.py``, ``launcher.py``) is imported by module, by
the processes that run it. docs/HOTPATH.md describes both.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .idle import BackoffIdle as BackoffIdle  # the one eager name: pure Python

if _TYPE_CHECKING:  # what the lazy names are, for type checkers (imported for real on first use, below)
    from .async_client import AsyncClient as AsyncClient
    from .bcast import Broadcast as Broadcast
    from .bcast import BroadcastBadMagicError as BroadcastBadMagicError
    from .bcast import BroadcastBadVersionError as BroadcastBadVersionError
    from .bcast import BroadcastError as BroadcastError
    from .bcast import BroadcastReader as BroadcastReader
    from .bcast import BroadcastStatus as BroadcastStatus
    from .bcast import InvalidBroadcastError as InvalidBroadcastError
    from .bcast import Overrun as Overrun
    from .bcast import SharedMemoryBroadcast as SharedMemoryBroadcast
    from .bcast import broadcast_bytes as broadcast_bytes
    from .book import L2Book as L2Book
    from .client import Client as Client
    from .client import DetachedError as DetachedError
    from .client import EngineGoneError as EngineGoneError
    from .control_client import ControlClient as ControlClient
    from .control_client import ControlError as ControlError
    from .md_subscriber import BridgeRequestError as BridgeRequestError
    from .md_subscriber import MarketDataSubscriber as MarketDataSubscriber
    from .md_view import BookView as BookView
    from .ring import BadMagicError as BadMagicError
    from .ring import BadVersionError as BadVersionError
    from .ring import InvalidRingError as InvalidRingError
    from .ring import Ring as Ring
    from .ring import RingError as RingError
    from .ring import RingFullError as RingFullError
    from .ring import RingStatus as RingStatus
    from .ring import SharedMemoryRing as SharedMemoryRing
    from .ring import ring_bytes as ring_bytes

# Every other name needs a compiled extension (hotpath._cring) or ZeroMQ; importing lazily keeps
# `proptrade --help` usable before `make build` and `import hotpath` cheap.
_LAZY = {
    "BadMagicError": "ring",
    "BadVersionError": "ring",
    "InvalidRingError": "ring",
    "Ring": "ring",
    "RingError": "ring",
    "RingFullError": "ring",
    "RingStatus": "ring",
    "SharedMemoryRing": "ring",
    "ring_bytes": "ring",
    "Broadcast": "bcast",
    "BroadcastBadMagicError": "bcast",
    "BroadcastBadVersionError": "bcast",
    "BroadcastError": "bcast",
    "BroadcastReader": "bcast",
    "BroadcastStatus": "bcast",
    "InvalidBroadcastError": "bcast",
    "Overrun": "bcast",
    "SharedMemoryBroadcast": "bcast",
    "broadcast_bytes": "bcast",
    "AsyncClient": "async_client",
    "Client": "client",
    "EngineGoneError": "client",
    "DetachedError": "client",
    "BookView": "md_view",
    "L2Book": "book",
    "MarketDataSubscriber": "md_subscriber",
    "BridgeRequestError": "md_subscriber",
    "ControlClient": "control_client",
    "ControlError": "control_client",
}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hotpath' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)


__all__ = sorted(("BackoffIdle", *_LAZY))
