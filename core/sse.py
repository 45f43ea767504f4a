"""One Server-Sent Events response for the API and the matchmaker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStream(StreamingResponse):
    """text/event-stream that ends as soon as the client goes away, whatever the ASGI spec
    version of the server, instead of at its next write (which may be a keepalive away).
    `on_close` runs once the stream ends, however it ends."""

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncIterator[bytes], on_close: Callable[[], Awaitable[None]] | None = None,
                 status_code: int = 200) -> None:
        # `status_code` with a default is also what lets FastAPI document routes returning this class.
        self._on_close = on_close
        super().__init__(frames, status_code=status_code, headers=SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tg:

                async def stream() -> None:
                    with contextlib.suppress(OSError):  # the client is gone; the disconnect watcher ends the group
                        await self.stream_response(send)
                    tg.cancel_scope.cancel()

                tg.start_soon(stream)
                await self.listen_for_disconnect(receive)
                tg.cancel_scope.cancel()
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            if self._on_close is not None:
                await self._on_close()
