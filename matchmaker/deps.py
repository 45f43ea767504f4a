"""What the routes share (kept on `app.state.matchmaker`) and the Annotated dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from api.errors import declares
from core.security import verify_node_token
from core.settings import Settings
from matchmaker.errors import Unauthorized
from matchmaker.metrics import Metrics
from matchmaker.store import Store
from matchmaker.stream import StreamHub


@dataclass
class Matchmaker:
    settings: Settings
    store: Store
    clock: Callable[[], float]
    owns_store: bool
    keepalive_seconds: float
    sweep_seconds: float
    hub: StreamHub = field(default_factory=StreamHub)
    metrics: Metrics = field(default_factory=Metrics)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Background loops check this as well as being cancelled: redis-py can swallow a
    # cancellation that lands mid-command, and a loop must still end.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ttl(self) -> float:
        return self.settings.room_ttl_seconds


# Dependencies are `async def` although they never await: FastAPI runs plain `def`
# dependencies in a worker thread, which costs more than the rest of a heartbeat.
async def get_matchmaker(request: Request) -> Matchmaker:
    mm: Matchmaker = request.app.state.matchmaker
    return mm


@dataclass(frozen=True, slots=True)
class NodeCaller:
    """A node endpoint's caller: the matchmaker and the node its token speaks for."""

    mm: Matchmaker
    node_id: str


_BEARER = "bearer "


@declares(401, security="nodeToken")
async def get_node_caller(request: Request) -> NodeCaller:
    """Authenticate a node by its token. One flat dependency: heartbeats are the hot path, and
    each nested dependency costs FastAPI more than verifying the token does."""
    header = request.headers.get("authorization", "")
    if header[: len(_BEARER)].lower() != _BEARER:
        raise Unauthorized("node endpoints need Authorization: Bearer <node token>")
    mm: Matchmaker = request.app.state.matchmaker
    node_id = verify_node_token(mm.settings.secret_key, header[len(_BEARER):].strip())
    if node_id is None:
        raise Unauthorized("the node token is not valid")
    return NodeCaller(mm, node_id)


MatchmakerDep = Annotated[Matchmaker, Depends(get_matchmaker)]
NodeDep = Annotated[NodeCaller, Depends(get_node_caller)]
