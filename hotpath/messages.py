"""The two shapes a ring producer accepts, checked once for both rings (``ring.py``, ``bcast.py``).

A single message is 64 wire bytes: ``bytes``, a buffer, or anything with ``pack()`` (``Command``, ``Event``).
A batch is a numpy array whose rows are 64 bytes (``COMMAND_DTYPE``, ``EVENT_DTYPE``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from c_engine import MSG_SIZE

__all__ = ["Message", "message_bytes", "message_rows"]


class _Packable(Protocol):
    def pack(self) -> bytes: ...


Message = bytes | bytearray | memoryview | _Packable


def message_bytes(msg: Message) -> bytes:
    """The message's 64 bytes; ValueError for any other size."""
    if not isinstance(msg, bytes):
        msg = msg.pack() if hasattr(msg, "pack") else bytes(msg)
    if len(msg) != MSG_SIZE:
        raise ValueError(f"a message is {MSG_SIZE} bytes, not {len(msg)}")
    return msg


def message_rows(msgs: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The batch as a contiguous array of 64-byte rows (a copy only if it was not contiguous)."""
    arr = np.ascontiguousarray(msgs)
    if arr.dtype.itemsize != MSG_SIZE:
        raise ValueError(f"rows must be {MSG_SIZE} bytes, not {arr.dtype.itemsize}")
    return arr
