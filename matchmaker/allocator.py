"""How the platform reaches a fleet's allocation state: the store itself, or the matchmaker over HTTP.

The API (allocations) and the control worker (fleet activities) call one `FleetRegistry`:

- with Redis (`GSF_REDIS_URL`), `StoreRegistry` on a `RedisStore` of their own: one round trip
  to Redis per call, the same Lua scripts the matchmaker replicas run, so it is atomic across
  every replica and every API process;
- with the embedded in-process store, which lives inside the matchmaker process, `HttpRegistry`
  calls the matchmaker's platform endpoints (`/allocations`, `/fleets/{id}/...`), authenticated
  with a token derived from the platform secret.

Going to Redis directly saves the HTTP hop through the matchmaker (a request parse, a JSON
encode and decode of the room on each side, and a uvicorn worker's turn): on this machine it
is what keeps an allocation's p99 low when the matchmaker is also busy with heartbeats.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from urllib.parse import quote, urlsplit

import httpx

from core.security import seat_secret, sign_seat_token
from core.settings import Settings
from matchmaker.errors import MatchmakerError, StoreUnavailable
from matchmaker.models import (
    Allocated,
    AllocateRequest,
    FleetMember,
    FleetMembers,
    FleetSlots,
    FleetSyncRequest,
    NoReadyServer,
    Released,
    ReleaseRequest,
    Retired,
    RetireRequest,
    RoomPublic,
    SeatPublic,
)
from matchmaker.store import RedisStore, Store


def platform_token(secret_key: str) -> str:
    """The bearer token of the matchmaker's platform endpoints (allocation and fleet state)."""
    return hmac.new(secret_key.encode(), b"platform:fleets", hashlib.sha256).hexdigest()


def seat_for(secret_key: str, room: RoomPublic, player_id: str, ttl: float, now: float,
             player_name: str | None = None) -> SeatPublic:
    """A signed seat in `room`: the token its runtime checks (`rid` the room; `new` with the
    room's options while the room is pending, so that whichever of its players connects first
    has the server create it), and the ws_url that carries it."""
    seat = sign_seat_token(seat_secret(secret_key, room.server_id), room.server_id, player_id, ttl, now=now,
                           room_id=room.room_id,
                           new_room={"opt": room.options} if room.status == "pending" else None)
    sep = "&" if "?" in room.ws_url else "?"
    # The runtime takes the player's display name from the address (`name`, cleaned there).
    name = f"&name={quote(player_name, safe='')}" if player_name else ""
    return SeatPublic(room_id=room.room_id, server_id=room.server_id,
                      ws_url=f"{room.ws_url}{sep}token={quote(seat.token)}{name}",
                      token=seat.token, player_id=player_id, expires_at=seat.expires_at)


class FleetRegistry(ABC):
    """A fleet's members and their allocation state, wherever the registry lives."""

    @abstractmethod
    async def allocate(self, req: AllocateRequest) -> Allocated:
        """Raises NoReadyServer when no member of the fleets is ready."""

    @abstractmethod
    async def release(self, req: ReleaseRequest) -> Released: ...

    @abstractmethod
    async def add(self, fleet_id: str, server_ids: Sequence[str]) -> None: ...

    @abstractmethod
    async def sync(self, fleet_id: str, members: Sequence[FleetMember], ready_when_empty: bool) -> FleetSlots: ...

    @abstractmethod
    async def retire(self, fleet_id: str, server_ids: Sequence[str]) -> Retired: ...

    @abstractmethod
    async def drop(self, fleet_id: str) -> None: ...

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""


class StoreRegistry(FleetRegistry):
    """Straight to a store (Redis for a platform; any store in tests)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time, owns_store: bool = False) -> None:
        self.store = store
        self.clock = clock
        self._owns_store = owns_store

    async def allocate(self, req: AllocateRequest) -> Allocated:
        return await self.store.allocate(req, self.clock())

    async def release(self, req: ReleaseRequest) -> Released:
        return await self.store.release(req, self.clock())

    async def add(self, fleet_id: str, server_ids: Sequence[str]) -> None:
        await self.store.fleet_add(fleet_id, server_ids)

    async def sync(self, fleet_id: str, members: Sequence[FleetMember], ready_when_empty: bool) -> FleetSlots:
        return await self.store.fleet_sync(
            fleet_id, FleetSyncRequest(members=list(members), ready_when_empty=ready_when_empty), self.clock())

    async def retire(self, fleet_id: str, server_ids: Sequence[str]) -> Retired:
        return await self.store.retire(fleet_id, server_ids, self.clock())

    async def drop(self, fleet_id: str) -> None:
        await self.store.fleet_drop(fleet_id)

    async def aclose(self) -> None:
        if self._owns_store:
            await self.store.close()


class LeanHttp:
    """A keep-alive HTTP/1.1 client for the one hot call, allocate. httpx costs the API more CPU
    per request than everything else the allocation does (a third of it, measured with py-spy),
    so this call speaks plain HTTP/1.1 to the matchmaker itself. Connections idle for longer than
    IDLE_SECONDS are closed instead of reused: uvicorn drops them after 5 s, and a request must
    never go out on one the server already closed (an allocation is not safe to send twice)."""

    IDLE_SECONDS = 3.0
    MAX_IDLE = 64

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"LeanHttp speaks plain http to a host, not {base_url!r}")
        self.host, self.port = url.hostname, url.port or 80
        self.timeout = timeout
        self.idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []

    def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        now = time.monotonic()
        while self.idle:
            at, reader, writer = self.idle.pop()
            if now - at < self.IDLE_SECONDS and not reader.at_eof():
                return reader, writer
            writer.close()
        return None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """(status, content type, body) of one POST; StoreUnavailable when the matchmaker does not answer."""
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{lines}Content-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        conn = self._take()
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = conn if conn is not None else await asyncio.open_connection(self.host, self.port)
                writer.write(request)
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                status = int(head[9:12])
                fields = {k.strip().lower(): v.strip() for k, _, v in
                          (line.partition(":") for line in head.split("\r\n")[1:] if line)}
                content = await reader.readexactly(int(fields.get("content-length", "0")))
        except BaseException as exc:
            if writer is not None:
                writer.close()  # its state is unknown: never reuse it
            if isinstance(exc, (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                                TimeoutError, ValueError)):
                raise StoreUnavailable(f"the matchmaker does not answer ({type(exc).__name__})") from None
            raise
        if fields.get("connection", "").lower() == "close" or len(self.idle) >= self.MAX_IDLE:
            writer.close()
        else:
            self.idle.append((time.monotonic(), reader, writer))
        return status, fields.get("content-type", ""), content

    async def aclose(self) -> None:
        for _, _, writer in self.idle:
            writer.close()
        self.idle = []


class HttpRegistry(FleetRegistry):
    """Through the matchmaker's platform endpoints (the embedded, in-process store)."""

    def __init__(self, http: httpx.AsyncClient, secret_key: str, owns_client: bool = False,
                 lean: bool = False) -> None:
        # `http` has the matchmaker's base URL; injected so tests can hand in a transport. With
        # `lean`, allocate goes through LeanHttp to the same base URL (a real server only).
        self.http = http
        self.headers = {"Authorization": f"Bearer {platform_token(secret_key)}"}
        self._owns_client = owns_client
        self.lean = LeanHttp(str(http.base_url).rstrip("/")) if lean else None

    async def _post(self, path: str, body: str) -> httpx.Response:
        try:
            resp = await self.http.post(path, content=body, headers={**self.headers,
                                                                     "content-type": "application/json"})
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"the matchmaker does not answer ({type(exc).__name__})") from None
        if resp.status_code == 409 and str(resp.json().get("type", "")).endswith("/no-ready-server"):
            raise NoReadyServer(str(resp.json().get("detail", "")))
        if resp.status_code >= 400:
            err = StoreUnavailable if resp.status_code >= 500 else MatchmakerError
            raise err(f"the matchmaker answered {resp.status_code}: {resp.text[:200]}")
        return resp

    async def allocate(self, req: AllocateRequest) -> Allocated:
        if self.lean is None:
            resp = await self._post("/allocations", req.model_dump_json())
            return Allocated.model_validate_json(resp.content)
        status, kind, content = await self.lean.post("/allocations", req.model_dump_json().encode(), self.headers)
        if status == 200:
            return Allocated.model_validate_json(content)
        problem = json.loads(content) if kind.startswith("application/") and content else {}
        if status == 409 and str(problem.get("type", "")).endswith("/no-ready-server"):
            raise NoReadyServer(str(problem.get("detail", "")))
        err = StoreUnavailable if status >= 500 else MatchmakerError
        raise err(f"the matchmaker answered {status}: {content[:200]!r}")

    async def release(self, req: ReleaseRequest) -> Released:
        resp = await self._post("/allocations/release", req.model_dump_json())
        return Released.model_validate_json(resp.content)

    async def add(self, fleet_id: str, server_ids: Sequence[str]) -> None:
        await self._post(f"/fleets/{quote(fleet_id, safe='')}/members",
                         FleetMembers(server_ids=list(server_ids)).model_dump_json())

    async def sync(self, fleet_id: str, members: Sequence[FleetMember], ready_when_empty: bool) -> FleetSlots:
        body = FleetSyncRequest(members=list(members), ready_when_empty=ready_when_empty)
        resp = await self._post(f"/fleets/{quote(fleet_id, safe='')}/sync", body.model_dump_json())
        return FleetSlots.model_validate_json(resp.content)

    async def retire(self, fleet_id: str, server_ids: Sequence[str]) -> Retired:
        resp = await self._post(f"/fleets/{quote(fleet_id, safe='')}/retire",
                                RetireRequest(server_ids=list(server_ids)).model_dump_json())
        return Retired.model_validate_json(resp.content)

    async def drop(self, fleet_id: str) -> None:
        try:
            resp = await self.http.delete(f"/fleets/{quote(fleet_id, safe='')}", headers=self.headers)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"the matchmaker does not answer ({type(exc).__name__})") from None
        if resp.status_code >= 400:
            raise StoreUnavailable(f"the matchmaker answered {resp.status_code}: {resp.text[:200]}")

    async def aclose(self) -> None:
        if self.lean is not None:
            await self.lean.aclose()
        if self._owns_client:
            await self.http.aclose()


def registry_for(settings: Settings) -> FleetRegistry:
    """Redis directly when the platform has one, else the matchmaker's in-process store over HTTP."""
    if settings.redis_url:
        return StoreRegistry(RedisStore.from_url(settings.redis_url, settings.matchmaker_redis_prefix), owns_store=True)
    # Allocations come in bursts: keep enough connections open that a burst does not queue on them.
    http = httpx.AsyncClient(base_url=settings.matchmaker_url, timeout=httpx.Timeout(10.0),
                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    return HttpRegistry(http, settings.secret_key, owns_client=True, lean=True)
