"""The matchmaker side of a player: the room list (and its live changes), and seats by
joinOrCreate, create or room id, each turned into a connected Room."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from gsf_client import regions as _regions
from gsf_client.errors import GSFError, MatchmakerError, ReconnectTokenError, RoomNotFoundError, matchmaker_error
from gsf_client.regions import RegionLatency
from gsf_client.room import PROTOCOL_VERSION, STATE_ENCODINGS, Reconnection, ReconnectPolicy, Room, _with_query

RoomsUpdate = tuple[dict[str, dict[str, Any]], dict[str, Any] | None]
MEASURE_MAX_AGE = 60.0  # seconds a measure_regions() serves join_or_create(region="auto")


class Client:
    """`Client("http://127.0.0.1:8100")`; pass `http=` to share an httpx.AsyncClient (closed by its owner)."""

    def __init__(self, url: str, *, http: httpx.AsyncClient | None = None,
                 reconnect: ReconnectPolicy | bool = True, join_timeout: float = 10.0,
                 player_id: str | None = None, state_encoding: str = "c1") -> None:
        if state_encoding not in STATE_ENCODINGS:
            raise ValueError(f"state_encoding is one of {', '.join(STATE_ENCODINGS)}, got {state_encoding!r}")
        self._encoding = state_encoding
        self.url = url.rstrip("/")
        self._http = http or httpx.AsyncClient(timeout=10)
        self._owns_http = http is None
        self._policy = reconnect if isinstance(reconnect, ReconnectPolicy) else ReconnectPolicy(enabled=reconnect)
        self._join_timeout = join_timeout
        self._player_id = player_id
        # The last measure_regions(): region -> median round trip in ms (None: unreachable), for a UI.
        self.latencies: dict[str, float | None] = {}
        self.measured: list[RegionLatency] = []
        self._measured_at = 0.0
        self.last_region: str | None = None  # the region the last join_or_create(region=...) landed in

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- the room list ----------------------------------------------------------------------------

    async def get_available_rooms(self, game: str | None = None, filters: dict[str, str] | None = None, *,
                                  free: bool = True, sort: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Rooms of `game` matching `filters` (`label.<k>`, `metadata.<k>`); with a free seat by default."""
        params: dict[str, Any] = {"limit": limit, **(filters or {})}
        if game:
            params["game"] = game
        if free:
            params["free"] = "true"
        if sort:
            params["sort"] = sort
        body = await self._request("GET", "/rooms", params=params)
        return list(body["items"])

    async def watch_rooms(self, game: str | None = None, filters: dict[str, str] | None = None, *,
                          retry: float = 2.0) -> AsyncGenerator[RoomsUpdate, None]:
        """Yields (rooms by id, event) after every change; first (rooms, None) with the list as read.
        A broken stream is opened again and the list read afresh. Label filters only (the stream's)."""
        params: dict[str, Any] = dict(filters or {})
        if game:
            params["game"] = game
        rooms: dict[str, dict[str, Any]] = {}
        while True:
            try:
                async with self._http.stream("GET", f"{self.url}/rooms/stream", params=params,
                                             headers={"accept": "text/event-stream"}, timeout=None) as resp:
                    if resp.status_code != 200:
                        await resp.aread()
                        raise self._failure(resp)
                    listing = await self._request("GET", "/rooms", params={**params, "limit": 200})
                    rooms = {r["room_id"]: r for r in listing["items"]}
                    yield rooms, None
                    event, data = "", list[str]()
                    async for line in resp.aiter_lines():
                        if line == "":
                            if data and event:
                                change = self._apply(rooms, event, "\n".join(data))
                                if change is not None:
                                    yield rooms, change
                            event, data = "", []
                        elif line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:"):
                            data.append(line[5:].strip())
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.sleep(retry)

    @staticmethod
    def _apply(rooms: dict[str, dict[str, Any]], kind: str, raw: str) -> dict[str, Any] | None:
        data = json.loads(raw)
        room_id = data.get("room_id") or data.get("server_id")
        change: dict[str, Any] = {"type": kind, "room_id": room_id, "server_id": data.get("server_id")}
        if kind in ("added", "updated"):
            rooms[room_id] = change["room"] = data
        elif kind in ("removed", "failed"):
            rooms.pop(room_id, None)
            change["reason"] = data.get("reason", "")
        else:
            return None
        return change

    # --- seats ------------------------------------------------------------------------------------

    async def join_or_create(self, game: str, *, filters: dict[str, str] | None = None,
                             options: dict[str, Any] | None = None, name: str | None = None,
                             region: str | None = None) -> Room:
        """A seat in the fullest matching room of `game` with one free, else in a new room; connected.
        `region`: a region name (`label.region`), or "auto": the nearest region that can take the
        player (measure_regions, at most a minute old), else any region."""
        flt = dict(filters or {})
        body: dict[str, Any] = {"game": game, "filters": flt, "options": options or {}, "player_name": name}
        if region is None:
            return await self.consume_seat(await self._reserve("/join", body))
        self.last_region = None
        order = [region] if region != "auto" else _regions.join_order(await self._fresh_measure(game))
        for candidate in order:
            try:
                seat = await self._reserve("/join", {**body, "filters": {**flt, "label.region": candidate}})
            except MatchmakerError as exc:
                if exc.status in (409, 503) and region == "auto":  # full there (or its fleet busy): next region
                    continue
                raise
            self.last_region = candidate
            return await self.consume_seat(seat)
        seat = await self._reserve("/join", body)  # no region could: any server of the game
        return await self.consume_seat(seat)

    async def create(self, game: str, *, filters: dict[str, str] | None = None,
                     options: dict[str, Any] | None = None, name: str | None = None) -> Room:
        """A seat in a new room of `game` created with `options`; connected."""
        return await self.consume_seat(await self._reserve("/create", {
            "game": game, "filters": filters or {}, "options": options or {}, "player_name": name}))

    async def join_by_id(self, room_id: str, *, name: str | None = None) -> Room:
        """A seat in room `room_id` (a server id: its first room); connected."""
        return await self.consume_seat(await self._reserve("/join", {"room_id": room_id, "player_name": name}))

    async def consume_seat(self, seat: dict[str, Any]) -> Room:
        """Connect with a seat reserved elsewhere (the API's /api/v1/rooms/join, an allocation)."""
        room = Room(seat["ws_url"], seat["room_id"], seat["server_id"], reconnect=self._policy,
                    join_timeout=self._join_timeout, resolver=self._where, encoding=self._encoding)
        await room._connect(_with_query(seat["ws_url"], v=str(PROTOCOL_VERSION), enc=self._encoding), reconnect=False)
        return room

    async def reconnect(self, reconnection: Reconnection) -> Room:
        """Back to a seat kept by a reconnection token (a new process, within the window)."""
        room = Room(reconnection.url, "", "", reconnect=self._policy, join_timeout=self._join_timeout,
                    resolver=self._where, encoding=self._encoding)
        room._token = reconnection.token
        await room._connect(_with_query(reconnection.url, reconnect=reconnection.token, v=str(PROTOCOL_VERSION),
                                        enc=self._encoding),
                            reconnect=True)
        return room

    async def _where(self, room_id: str, token: str) -> tuple[str, str] | None:
        """The room's address now and the token to present there (`POST /reconnect`: re-signed when
        the room moved to another server); None while it is not listed (restarting)."""
        try:
            answer = await self._request("POST", "/reconnect", json={"room_id": room_id, "token": token})
        except RoomNotFoundError:
            return None
        except MatchmakerError as exc:
            if exc.status == 401:
                raise ReconnectTokenError("the matchmaker refused the reconnection token", 401) from exc
            raise
        except httpx.HTTPError as exc:
            raise GSFError(f"the matchmaker is unreachable: {exc}") from exc
        if not answer.get("ready"):
            return None
        return str(answer["ws_url"]), str(answer.get("token") or token)

    # --- regions ----------------------------------------------------------------------------------

    async def get_regions(self, game: str | None = None) -> list[dict[str, Any]]:
        """The matchmaker's regions (`GET /regions`): ping URLs, and free seats of `game`."""
        body = await self._request("GET", "/regions", params={"game": game} if game else {})
        return list(body["regions"])

    async def measure_regions(self, game: str | None = None, *, samples: int = _regions.DEFAULT_SAMPLES,
                              timeout: float = _regions.PING_TIMEOUT) -> list[RegionLatency]:
        """Time every region (`samples` pings each, the median), nearest first; kept in `latencies`."""
        measured = await _regions.measure(self._http, await self.get_regions(game), samples, timeout)
        self.measured = measured
        self.latencies = {r.region: r.latency_ms for r in measured}
        self._measured_at = time.monotonic()
        return measured

    async def _fresh_measure(self, game: str) -> list[RegionLatency]:
        """Latencies change slowly, the regions' seats do not: the seats are read again, the
        latencies of the last minute are kept."""
        if not self.measured or time.monotonic() - self._measured_at > MEASURE_MAX_AGE:
            return await self.measure_regions(game)
        listed = [RegionLatency.listed(entry) for entry in await self.get_regions(game)]
        for region in listed:
            region.latency_ms = self.latencies.get(region.region)
        return listed

    # --- plumbing ---------------------------------------------------------------------------------

    async def _reserve(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("player_name") is None:
            body.pop("player_name", None)
        return await self._request("POST", path, json=body)

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"accept": "application/json"}
        if self._player_id and method == "POST":
            headers["x-player-id"] = self._player_id
        resp = await self._http.request(method, f"{self.url}{path}", headers=headers, **kwargs)
        if resp.status_code >= 300:
            raise self._failure(resp)
        body: dict[str, Any] = resp.json()
        return body

    @staticmethod
    def _failure(resp: httpx.Response) -> MatchmakerError:
        try:
            problem = resp.json()
        except ValueError:
            problem = {"title": resp.reason_phrase}
        return matchmaker_error(resp.status_code, problem if isinstance(problem, dict) else {},
                                resp.headers.get("retry-after"))
