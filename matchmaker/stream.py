"""Live room-list updates over Server-Sent Events: a hub fanning store events out to listeners."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator

from core.sse import EventStream
from matchmaker.models import RoomEvent, RoomFilter

KEEPALIVE = b": keepalive\n\n"
CONNECTED = b"retry: 2000\n: connected\n\n"


def sse_frame(event: RoomEvent) -> bytes:
    return f"event: {event.type}\ndata: {event.data_json()}\n\n".encode()


class Listener:
    """One SSE client: a bounded backlog; a client that falls too far behind is cut off
    (EventSource reconnects and the client re-reads the list) instead of growing memory."""

    def __init__(self, flt: RoomFilter, max_backlog: int) -> None:
        self.filter = flt
        self.max_backlog = max_backlog
        self.backlog: deque[RoomEvent] = deque()
        self.closed = False
        self._wake = asyncio.Event()

    def push(self, event: RoomEvent) -> None:
        if self.closed or not self.filter.matches_static(event.game, event.labels):
            return
        if len(self.backlog) >= self.max_backlog:
            self.close()
            return
        self.backlog.append(event)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def frames(self, keepalive_seconds: float) -> AsyncGenerator[bytes, None]:
        yield CONNECTED
        # Ends when the hub closes the listener; the response cancels it on disconnect.
        while True:
            while self.backlog and not self.closed:
                yield sse_frame(self.backlog.popleft())
            if self.closed:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), keepalive_seconds)
            except TimeoutError:
                yield KEEPALIVE


class StreamHub:
    """Every SSE listener of one app. `close` ends all streams (app shutdown)."""

    def __init__(self, max_backlog: int = 1000) -> None:
        self.max_backlog = max_backlog
        self.closed = False
        self._listeners: set[Listener] = set()

    def __len__(self) -> int:
        return len(self._listeners)

    def listen(self, flt: RoomFilter) -> Listener:
        listener = Listener(flt, self.max_backlog)
        if self.closed:
            listener.close()
        else:
            self._listeners.add(listener)
        return listener

    def drop(self, listener: Listener) -> None:
        listener.close()
        self._listeners.discard(listener)

    def publish(self, event: RoomEvent) -> None:
        for listener in list(self._listeners):
            listener.push(event)
            if listener.closed:
                self._listeners.discard(listener)

    def close(self) -> None:
        self.closed = True
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()


class EventStreamResponse(EventStream):
    """The room-list stream of one listener; the listener leaves the hub when the stream ends."""

    def __init__(self, hub: StreamHub, listener: Listener, keepalive_seconds: float, status_code: int = 200) -> None:
        async def leave() -> None:
            hub.drop(listener)

        super().__init__(listener.frames(keepalive_seconds), on_close=leave, status_code=status_code)

