"""What the routes share (kept on `app.state.matchmaker`) and the Annotated dependencies."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any, get_type_hints

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from core.problems import declares
from core.settings import Settings
from matchmaker.errors import Unauthorized
from matchmaker.metrics import Metrics
from matchmaker.nodes import NodeAuthority
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
    # Who vouches for node tokens (the API; matchmaker/nodes.py). Made from the settings on
    # first use unless one is handed in (tests, benchmarks).
    nodes: NodeAuthority | None = None

    @property
    def ttl(self) -> float:
        return self.settings.room_ttl_seconds

    @property
    def authority(self) -> NodeAuthority:
        if self.nodes is None:
            self.nodes = NodeAuthority(self.settings.public_api_url)
        return self.nodes


# Dependencies are `async def` although they never await: FastAPI runs plain `def`
# dependencies in a worker thread, which costs more than the rest of a heartbeat.
async def get_matchmaker(request: Request) -> Matchmaker:
    mm: Matchmaker = request.app.state.matchmaker
    return mm


@dataclass(frozen=True, slots=True)
class NodeCaller:
    """A node endpoint's caller: the matchmaker, the node its token speaks for, the token."""

    mm: Matchmaker
    node_id: str
    token: str


_BEARER = "bearer "


@declares(401, security="nodeToken")
async def get_node_caller(request: Request) -> NodeCaller:
    """Authenticate a node by its token. One flat dependency: heartbeats are the hot path, and
    each nested dependency costs FastAPI more than verifying the token does."""
    mm: Matchmaker = request.app.state.matchmaker
    token = bearer_token(request.headers.get("authorization", ""))
    return NodeCaller(mm, await mm.authority.identify(token), token)


def bearer_token(header: str) -> str:
    if header[: len(_BEARER)].lower() != _BEARER or not header[len(_BEARER):].strip():
        raise Unauthorized("node endpoints need Authorization: Bearer <node token>")
    return header[len(_BEARER):].strip()


async def authenticate_node(mm: Matchmaker, header: str) -> str:
    """The node id an `Authorization` header's node token speaks for; Unauthorized if none.

    Shared by the routes (through `get_node_caller`) and the heartbeat fast path. The API
    vouches for tokens; its answers are cached a few seconds (matchmaker/nodes.py)."""
    return await mm.authority.identify(bearer_token(header))


MatchmakerDep = Annotated[Matchmaker, Depends(get_matchmaker)]
NodeDep = Annotated[NodeCaller, Depends(get_node_caller)]


class NodeRoute(APIRoute):
    """A node endpoint on the heartbeat hot path: `(path params..., body: Model, caller: NodeDep)`.

    The app normally answers these routes before FastAPI does (matchmaker.fastpath, with the
    same steps); this route class serves them when that is off.

    Declared and documented like any route, but its arguments are resolved here: the node
    token by `get_node_caller`, the body validated by pydantic straight from the request bytes
    (any content type is read as JSON), path parameters as the strings they are. FastAPI's
    generic resolution (dependency solving, decoding with `json`, then validating the objects)
    costs more than applying a heartbeat. Errors reach the app's handlers as from any route;
    an invalid body is a RequestValidationError with locations under "body", as FastAPI's.
    `app.dependency_overrides` do not reach these routes.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        path_names = {p.name for p in self.dependant.path_params}
        if set(inspect.signature(endpoint).parameters) != path_names | {"body", "caller"}:
            raise TypeError(f"{endpoint.__name__}: a NodeRoute endpoint takes its path "
                            "parameters, `body` and `caller` only")
        body_type: TypeAdapter[Any] = TypeAdapter(get_type_hints(endpoint)["body"])

        async def handler(request: Request) -> Response:
            caller = await get_node_caller(request)
            try:
                body = body_type.validate_json(await request.body())
            except ValidationError as exc:
                raise RequestValidationError(
                    [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
                ) from None
            response: Response = await endpoint(**request.path_params, body=body, caller=caller)
            return response

        return handler
