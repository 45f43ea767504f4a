"""What the API's and the matchmaker's ASGI edges share: a request body read against a size limit,
and a `send` that knows whether an answer has begun."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Send


class BodyTooLarge(HTTPException):
    """Raised while a body is read past its limit. An HTTPException, so that FastAPI's body
    reading lets it through (it turns any other error into a 400) to the app's handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def limited_receive(receive: Receive, limit: int) -> Receive:
    """`receive`, raising BodyTooLarge once the body read so far is longer than `limit` bytes."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return limited


class TrackedSend:
    """`send`, noting whether the response has begun: after that, an error can only be logged."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)
