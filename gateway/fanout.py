"""Fan-out to WebSocket clients: each message is serialised once, and no client can hold up another.

A :class:`Subscriber` is one connection's bounded queue of ready-made text frames and the one writer task that
sends them. :meth:`Topic.publish` offers a frame to every subscriber without awaiting anything (as websockets'
``broadcast()`` does); a subscriber whose queue is full is *dropped*: its queue is emptied, its writer is
cancelled even if it sits in a send the client never reads, and its connection is closed with
:data:`CLOSE_SLOW_CONSUMER`. The client resyncs by subscribing again (a fresh snapshot), as ring readers do
after an overrun. So the drain that publishes never waits on a client, and a slow client costs the others
nothing but the frames it was offered.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

__all__ = ["CLOSE_SLOW_CONSUMER", "Subscriber", "Topic"]

#: The close code of a client dropped for not keeping up (4000-4999: application codes).
CLOSE_SLOW_CONSUMER = 4008


class Subscriber:
    """One connection's queue and writer (see the module docstring)."""

    def __init__(self, send: Callable[[str], Awaitable[None]], max_queue: int) -> None:
        self._send = send
        self.max_queue = max_queue
        self._queue: collections.deque[str] = collections.deque()
        self._ready = asyncio.Event()
        self.dropped = False  #: True once it fell max_queue frames behind
        self.closed = False
        self.sent = 0
        self._writer: asyncio.Task[None] | None = None

    def offer(self, frame: str) -> bool:
        """Queues a frame; False (and the subscriber is dropped) if its queue is full, or if it is closed."""
        if self.closed:
            return False
        if len(self._queue) >= self.max_queue:
            self.drop()
            return False
        self._queue.append(frame)
        self._ready.set()
        return True

    def drop(self) -> None:
        """Gives up on this client: nothing more is sent, its writer stops at once."""
        self.dropped = True
        self.close()

    def close(self) -> None:
        self.closed = True
        self._queue.clear()
        self._ready.set()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()

    async def write(self) -> None:
        """The writer: sends queued frames in order until the subscriber is closed. Run it as a task."""
        self._writer = asyncio.current_task()
        while not self.closed:
            while self._queue and not self.closed:
                await self._send(self._queue.popleft())
                self.sent += 1
            if self.closed:
                return
            self._ready.clear()
            await self._ready.wait()


class Topic:
    """The subscribers of one stream (a symbol's market data, an account's events)."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.dropped = 0  #: subscribers dropped as slow, ever

    def __len__(self) -> int:
        return len(self.subscribers)

    def add(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)

    def discard(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def publish(self, frame: str) -> int:
        """Offers ``frame`` to every subscriber; returns how many were dropped as slow by it."""
        dropped = 0
        for subscriber in list(self.subscribers):
            if not subscriber.offer(frame):
                self.subscribers.discard(subscriber)
                dropped += subscriber.dropped
        self.dropped += dropped
        return dropped
