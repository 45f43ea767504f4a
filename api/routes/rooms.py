"""Rooms: a same-origin proxy to the matchmaker, so the web console needs no CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response

from api.deps import CurrentUser
from core.errors import Unavailable
from core.problems import declares, problems
from core.sse import EventStream
from matchmaker.models import CreateRoom, JoinById, QuickJoin

router = APIRouter(prefix="/api/v1/rooms", tags=["rooms"])

TIMEOUT = httpx.Timeout(10.0)
# The room stream is long-lived: the matchmaker's keepalives, not a read timeout, tell it is alive.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=None)
# What may travel back from the matchmaker besides the body.
PASSED_HEADERS = ("content-type", "retry-after")


@declares(503)
async def matchmaker_http(request: Request) -> httpx.AsyncClient:
    """The one client to the matchmaker, created on first use (tests may put their own on app.state).
    `async def` although it never awaits: FastAPI runs a plain `def` dependency in a worker
    thread, and two requests at once would each make a client (one of them never closed)."""
    state = request.app.state
    client: httpx.AsyncClient | None = getattr(state, "matchmaker_http", None)
    if client is None:
        client = httpx.AsyncClient(base_url=state.settings.matchmaker_url, timeout=TIMEOUT)
        state.matchmaker_http = client
    return client


async def close_matchmaker_http(app: FastAPI) -> None:
    """Close the proxy's client on shutdown, if it was ever made."""
    client: httpx.AsyncClient | None = getattr(app.state, "matchmaker_http", None)
    if client is not None:
        app.state.matchmaker_http = None
        await client.aclose()


MatchmakerHttp = Annotated[httpx.AsyncClient, Depends(matchmaker_http)]


def _unavailable(exc: httpx.HTTPError) -> Unavailable:
    return Unavailable(f"the matchmaker does not answer ({type(exc).__name__})")


def _relay(resp: httpx.Response) -> Response:
    """The matchmaker's answer as it is: its problem+json errors already say what went wrong."""
    headers = {k: v for k, v in resp.headers.items() if k.lower() in PASSED_HEADERS}
    return Response(resp.content, status_code=resp.status_code, headers=headers)


@router.get("", response_class=Response)
async def list_rooms(request: Request, user: CurrentUser, mm: MatchmakerHttp) -> Response:
    """The matchmaker's room list, with the same filters (game, free, sort, label.<k>, ...)."""
    try:
        resp = await mm.get("/rooms", params=list(request.query_params.multi_items()))
    except httpx.HTTPError as exc:
        raise _unavailable(exc) from None
    return _relay(resp)


@router.get("/stream", response_class=EventStream, status_code=200,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "the matchmaker's room events: added, updated, removed"}})
async def stream_rooms(request: Request, user: CurrentUser, mm: MatchmakerHttp) -> Response:
    """Live room-list changes: the matchmaker's Server-Sent Events, passed through."""
    req = mm.build_request("GET", "/rooms/stream", params=list(request.query_params.multi_items()),
                           timeout=STREAM_TIMEOUT)
    try:
        upstream = await mm.send(req, stream=True)
    except httpx.HTTPError as exc:
        raise _unavailable(exc) from None
    if upstream.status_code != 200:
        await upstream.aread()
        await upstream.aclose()
        return _relay(upstream)

    async def frames() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            return  # the matchmaker went away: end the stream, the browser reconnects

    return EventStream(frames(), on_close=upstream.aclose)


@router.get("/{room_id}", response_class=Response)
async def get_room(room_id: str, user: CurrentUser, mm: MatchmakerHttp) -> Response:
    """One listed room (a server id names its first room), with the state of its last heartbeat."""
    try:
        resp = await mm.get(f"/rooms/{quote(room_id, safe='')}")
    except httpx.HTTPError as exc:
        raise _unavailable(exc) from None
    return _relay(resp)


# The body is relayed as it came, and the matchmaker checks it: the schema (in the OpenAPI document
# only) is the matchmaker's.
SeatBody = Annotated[dict[str, Any], Body()]


def _seat_body(schema: dict[str, Any]) -> dict[str, Any]:
    """The `openapi_extra` that documents a relayed body with the matchmaker's schema."""
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


JOIN_BODY = _seat_body({"oneOf": [JoinById.model_json_schema(), QuickJoin.model_json_schema()],
                        "description": "the matchmaker's join request"})


@router.post("/join", response_class=Response, openapi_extra=JOIN_BODY, responses=problems(404, 409))
async def join_room(user: CurrentUser, mm: MatchmakerHttp, body: SeatBody) -> Response:
    """Reserve a seat by room id, or joinOrCreate by game; the answer carries the seat token."""
    return await _seat(mm, "/join", body, user.id)


CREATE_BODY = _seat_body(CreateRoom.model_json_schema())


@router.post("/create", response_class=Response, openapi_extra=CREATE_BODY, responses=problems(404, 409))
async def create_room(user: CurrentUser, mm: MatchmakerHttp, body: SeatBody) -> Response:
    """Reserve a seat in a new room of a game (with room options) and return the seat."""
    return await _seat(mm, "/create", body, user.id)


async def _seat(mm: httpx.AsyncClient, path: str, body: dict[str, Any], user_id: object) -> Response:
    try:
        # Per player, not per IP: every console join reaches the matchmaker from the API's address.
        resp = await mm.post(path, json=body, headers={"X-Player-Id": f"user-{user_id}"})
    except httpx.HTTPError as exc:
        raise _unavailable(exc) from None
    return _relay(resp)
