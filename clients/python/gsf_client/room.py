"""One seat in one room: the WebSocket, frames in and out, the synced state, and the automatic
reconnection of protocol v1 (a dropped player keeps its seat for `reconnectSeconds`; the client
presents the reconnection token of its last `welcome`). Against a runtime that sends no token the
room simply ends when the connection does. When the room's address is gone (its server restarted
elsewhere, a durable room restored), the room asks the matchmaker where it is now (`POST /reconnect`)
and goes on reconnecting there, with the same token and player id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from gsf_client.compact import PathTable, apply_compact
from gsf_client.errors import (
    FINAL_CLOSE_CODES,
    ConnectError,
    GSFError,
    JoinRefusedError,
    ProtocolVersionError,
    ReconnectError,
    ReconnectExpiredError,
    ReconnectTokenError,
    SeatRefusedError,
    ServerError,
    close_error,
)
from gsf_client.patch import MISSING, PatchError, apply_patch, get_at, parse_pointer

PROTOCOL_VERSION = 1
#: State patches a client may ask for (`enc=`): compact c1 (the SDK's default) or RFC 6902.
STATE_ENCODINGS = ("c1", "json-patch")
MAX_OUTBOX = 256  # frames `send` keeps while reconnecting
MAX_INBOX = 1024  # frames `receive` keeps for a caller that reads them late (the oldest go first)
log = logging.getLogger("gsf_client")
Unsubscribe = Callable[[], None]
# (room id, reconnection token) -> (the room's ws_url now, the token to present there: another one
# when the room moved to another server); None: unknown for now (ask again later).
# Raises ReconnectTokenError when the matchmaker refuses the token.
Resolver = Callable[[str, str], Awaitable[tuple[str, str] | None]]


@dataclass(frozen=True)
class ReconnectPolicy:
    """Backoff of reconnection attempts: full jitter under a ceiling growing by `factor`."""

    enabled: bool = True
    min_delay: float = 0.05
    max_delay: float = 2.0
    factor: float = 2.0


@dataclass(frozen=True)
class Reconnection:
    """What to keep to come back to a seat later: `client.reconnect(it)`."""

    url: str
    token: str


def _with_query(url: str, drop: tuple[str, ...] = (), **add: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop and k not in add]
    query += list(add.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


_UPGRADE_SLUGS = {401: "seat-token", 404: "room-not-found", 409: None, 410: "room-gone", 426: "protocol-version"}


def _refusal_slug(exc: InvalidStatus) -> str | None:
    try:
        body = json.loads(exc.response.body or b"{}")
        kind = body.get("type", "") if isinstance(body, dict) else ""
        return str(kind).rsplit("/", 1)[-1] or None
    except ValueError:
        return _UPGRADE_SLUGS.get(exc.response.status_code)


def _unchanged(before: Any, after: Any, full: bool) -> bool:
    """After a patch the state is copy-on-write: a container that kept its identity is unchanged;
    after a full `$state` (a resync) values are compared deeply."""
    if before is after:
        return True
    if full or not isinstance(after, dict | list):
        return bool(before == after) and type(before) is type(after)
    return False


class _Handlers:
    def __init__(self, room: Room) -> None:
        self._room = room
        self._cbs: list[Callable[..., Any]] = []

    def add(self, cb: Callable[..., Any]) -> Unsubscribe:
        self._cbs.append(cb)
        return lambda: self._cbs.remove(cb) if cb in self._cbs else None

    def emit(self, *args: Any) -> None:
        for cb in list(self._cbs):
            try:
                cb(*args)
            except Exception as exc:  # a handler's bug must not stop the room's reader
                self._room._report(exc)


class Room:
    """A joined room; get one from Client.join_or_create, create, join_by_id, consume_seat, reconnect."""

    def __init__(self, url: str, room_id: str, server_id: str, *, reconnect: ReconnectPolicy,
                 join_timeout: float, resolver: Resolver | None = None, encoding: str = "c1") -> None:
        self.id = room_id
        self.server_id = server_id
        self.player_id = ""
        self.name = ""
        self.welcome: dict[str, Any] = {}
        self.state: Any = None
        self.connected = False
        self._base_url = _with_query(url, drop=("token", "reconnect", "v", "enc"))
        self._encoding = encoding
        self._path_table = PathTable()  # c1 path numbers of this connection's state stream
        self._policy = reconnect
        self._join_timeout = join_timeout
        self._resolver = resolver
        self._ws: ClientConnection | None = None
        self._token: str | None = None
        self._reconnect_seconds = 0.0
        self._reader: asyncio.Task[None] | None = None
        self._outbox: list[str] = []
        self._inbox: deque[tuple[str, Any]] = deque(maxlen=MAX_INBOX)
        self._arrived = asyncio.Event()
        self._leaving = False
        self._ended = asyncio.Event()
        self._reconnecting = False
        self._messages: dict[str, _Handlers] = {}
        self._state_changes = _Handlers(self)
        self._paths: list[tuple[list[str], Callable[[Any, Any], Any]]] = []
        self._drops = _Handlers(self)
        self._reconnects = _Handlers(self)
        self._leaves = _Handlers(self)
        self._errors = _Handlers(self)
        self.close_code: int | None = None
        self.close_error: GSFError | None = None

    # --- public API -------------------------------------------------------------------------------

    async def send(self, type: str, data: Any = None) -> None:
        """Send a frame; while reconnecting it waits (at most MAX_OUTBOX frames)."""
        if not isinstance(type, str) or not type or type.startswith("$"):
            raise ValueError("a frame type is a non-empty string not starting with '$'")
        text = json.dumps({"type": type, "data": data})
        if self.connected and self._ws is not None:
            try:
                await self._ws.send(text)
                return
            except ConnectionClosed:
                if not self._reconnect_possible():
                    raise GSFError("the room is not connected") from None
        if self._reconnecting or (self._reconnect_possible() and not self._ended.is_set()):
            if len(self._outbox) >= MAX_OUTBOX:
                raise GSFError(f"more than {MAX_OUTBOX} frames waiting for the reconnection")
            self._outbox.append(text)
            return
        raise GSFError("the room is not connected")

    def on_message(self, type: str, cb: Callable[[Any, str], Any]) -> Unsubscribe:
        """Frames of one type (`'*'`: every frame); `cb(data, type)`."""
        return self._messages.setdefault(type, _Handlers(self)).add(cb)

    async def receive(self, type: str | None = None, timeout: float = 5.0) -> tuple[str, Any]:
        """The next frame (of `type`, dropping others before it) as (type, data); TimeoutError."""
        async with asyncio.timeout(timeout):
            while True:
                while self._inbox:
                    got = self._inbox.popleft()
                    if type is None or got[0] == type:
                        return got
                if self._ended.is_set():
                    raise self.close_error or GSFError("the room ended")
                self._arrived.clear()
                await self._arrived.wait()

    def on_state_change(self, cb: Callable[[Any, Any], Any]) -> Unsubscribe:
        """`cb(state, previous)` after every `$state` and `$patch`."""
        return self._state_changes.add(cb)

    def listen(self, path: str, cb: Callable[[Any, Any], Any]) -> Unsubscribe:
        """`cb(value, previous)` when the value at `path` (JSON Pointer or dotted) changes."""
        parts = parse_pointer(path) if path == "" or path.startswith("/") else path.split(".")
        entry = (parts, cb)
        self._paths.append(entry)
        return lambda: self._paths.remove(entry) if entry in self._paths else None

    def on_drop(self, cb: Callable[[int, str], Any]) -> Unsubscribe:
        return self._drops.add(cb)

    def on_reconnect(self, cb: Callable[[], Any]) -> Unsubscribe:
        return self._reconnects.add(cb)

    def on_leave(self, cb: Callable[[int, GSFError | None], Any]) -> Unsubscribe:
        return self._leaves.add(cb)

    def on_error(self, cb: Callable[[BaseException], Any]) -> Unsubscribe:
        return self._errors.add(cb)

    @property
    def reconnection(self) -> Reconnection | None:
        return Reconnection(self._base_url, self._token) if self._token else None

    async def leave(self) -> None:
        """Leave on purpose (close 1000): the seat is given up and the room runs onLeave."""
        if self._ended.is_set():
            return
        self._leaving = True
        if self._ws is not None:
            with contextlib.suppress(WebSocketException, OSError):
                await asyncio.wait_for(self._ws.close(1000, "leave"), 2)
        if self._reader is not None and self._reader is not asyncio.current_task():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2)
            self._reader.cancel()
        self._end(1000, None)

    async def wait_closed(self) -> None:
        await self._ended.wait()

    # --- connection -------------------------------------------------------------------------------

    async def _connect(self, url: str, *, reconnect: bool, timeout: float | None = None) -> None:
        """Open a socket and read up to `welcome`; then the reader task takes the socket over."""
        refusal: str | None = None
        try:
            async with asyncio.timeout(timeout or self._join_timeout):
                ws = await connect(url, max_size=None, open_timeout=None)
                try:
                    while True:
                        frame = self._parse(await ws.recv())
                        if frame is None:
                            continue
                        if frame[0] == "welcome":
                            break
                        kind, data = frame
                        if kind == "error" and isinstance(data, dict) and data.get("code") == "join_refused":
                            refusal = str(data.get("message") or "join refused")
                except BaseException:
                    await ws.close()
                    raise
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 426:
                raise ProtocolVersionError("the runtime does not speak this protocol version", 426,
                                           "protocol-version") from None
            if reconnect and status == 401:
                raise ReconnectTokenError("the reconnection token was refused", 401) from None
            if reconnect and status in (404, 410):
                raise ReconnectExpiredError("the seat is gone: the reconnection window ended", status) from None
            raise SeatRefusedError(f"the runtime refused the connection ({status})", status,
                                   _refusal_slug(exc)) from None
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            if code == 4003:
                raise JoinRefusedError(refusal or "the game refused the player", code) from None
            raise close_error(code, exc.rcvd.reason if exc.rcvd else "") or ConnectError(
                "the connection closed before welcome", code) from None
        except TimeoutError:
            raise ConnectError("no welcome in time") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect: {exc}") from None
        except WebSocketException as exc:  # no HTTP answer: a process going away at that address
            raise ConnectError(f"cannot connect: {exc}") from None
        self._ws = ws
        assert frame is not None
        self._on_welcome(frame[1] if isinstance(frame[1], dict) else {})
        self._reader = asyncio.create_task(self._read(ws), name=f"gsf-room-{self.id}")

    def _parse(self, raw: str | bytes) -> tuple[str, Any] | None:
        try:
            frame = json.loads(raw)
        except ValueError:
            self._report(GSFError("the room sent a frame that is not JSON"))
            return None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return None
        return frame["type"], frame.get("data")

    def _on_welcome(self, welcome: dict[str, Any]) -> None:
        self.welcome = welcome
        self.player_id = str(welcome.get("playerId", ""))
        self.name = str(welcome.get("name") or self.player_id)
        self.server_id = str(welcome.get("serverId") or self.server_id)
        self.id = str(welcome.get("roomId") or self.id or self.server_id)
        token = welcome.get("reconnect")
        self._token = token if isinstance(token, str) and token else None
        seconds = welcome.get("reconnectSeconds")
        self._reconnect_seconds = float(seconds) if isinstance(seconds, int | float) else 0.0
        self.connected = True

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = self._parse(raw)
                if frame is not None:
                    self._dispatch(*frame)
        except ConnectionClosed:
            pass
        if self._ws is not ws:
            return
        self.connected = False
        code = ws.close_code if ws.close_code is not None else 1006
        reason = ws.close_reason or ""
        if self._leaving or self._ended.is_set():
            self._end(code, None)
        elif code == 1000 or code in FINAL_CLOSE_CODES or not self._reconnect_possible():
            self._end(code, close_error(code, reason))
        else:
            self._drops.emit(code, reason)
            await self._reconnect_loop(time.monotonic() + self._reconnect_seconds)

    def _reconnect_possible(self) -> bool:
        return self._policy.enabled and self._token is not None and self._reconnect_seconds > 0

    async def _reconnect_loop(self, deadline: float) -> None:
        self._reconnecting = True
        ceiling = self._policy.min_delay
        last: BaseException | None = None
        while not self._leaving and not self._ended.is_set():
            # Full jitter: clients dropped by one network blip do not come back in lockstep.
            await asyncio.sleep(random.random() * ceiling)
            ceiling = min(self._policy.max_delay, ceiling * self._policy.factor)
            left = deadline - time.monotonic()
            if self._leaving or self._ended.is_set():
                return
            if left <= 0:
                break
            assert self._token is not None
            url = _with_query(self._base_url, reconnect=self._token, v=str(PROTOCOL_VERSION),
                              enc=self._encoding)
            try:
                await self._connect(url, reconnect=True, timeout=min(self._join_timeout, left))
            except (ReconnectError, JoinRefusedError, ProtocolVersionError) as exc:
                # Another process at the old address may not know the room: it may be elsewhere now.
                # A room not found (404) where the matchmaker still places it is being restored
                # there (a restart, a migration the next version refused): keep trying meanwhile.
                if isinstance(exc, ReconnectError) and await self._relocate(here_hopeful=exc.status == 404):
                    last = exc
                    continue
                self._end(1006, exc)
                return
            except GSFError as exc:
                last = exc
                if isinstance(exc, ConnectError) and await self._relocate(moved_only=True):
                    ceiling = self._policy.min_delay  # a new address: try it at once
                continue
            self._reconnecting = False
            queued, self._outbox = self._outbox, []
            assert self._ws is not None
            for text in queued:
                with contextlib.suppress(ConnectionClosed):
                    await self._ws.send(text)
            self._reconnects.emit()
            return
        if not self._leaving:
            self._end(1006, ReconnectExpiredError(
                f"could not reconnect within {self._reconnect_seconds:g} s" + (f": {last}" if last else "")))

    async def _relocate(self, moved_only: bool = False, here_hopeful: bool = False) -> bool:
        """Ask the matchmaker where the room is now: True when reconnecting should go on (a new
        address, or the room unknown for now: its server restarting), False when there is no more
        to hope for (no matchmaker to ask, the token refused, or the room still where it was,
        unless `here_hopeful`). `moved_only`: True only for a new address."""
        if self._resolver is None or self._token is None:
            return False
        try:
            where = await self._resolver(self.id, self._token)
        except ReconnectError:
            return False
        except GSFError as exc:  # the matchmaker unreachable or busy: keep trying the old address
            log.info("room %s: cannot ask where it is now: %s", self.id, exc)
            return not moved_only
        except RuntimeError:  # its Client was closed: nobody left to ask
            return False
        if where is None:
            return not moved_only
        url, token = where
        base = _with_query(url, drop=("token", "reconnect", "v", "enc"))
        if base == self._base_url:
            return here_hopeful
        log.info("room %s moved to %s", self.id, base)
        self._base_url, self._token = base, token
        return True

    def _dispatch(self, type: str, data: Any) -> None:
        if type == "$state":
            self._path_table.reset()
            self._set_state(data, full=True)
            return
        if type == "$paths":
            self._path_table.reset(data if isinstance(data, list) else [])
            return
        if type == "$p":
            try:
                self._set_state(apply_compact(self.state, data, self._path_table), full=False)
            except PatchError as exc:
                self._report(exc)
            return
        if type == "$patch":
            try:
                self._set_state(apply_patch(self.state, data), full=False)
            except PatchError as exc:
                self._report(exc)
            return
        if type == "error" and isinstance(data, dict):
            self._report(ServerError(str(data.get("code", "error")), str(data.get("message") or ""),
                                     data.get("hook")))
        self._inbox.append((type, data))
        self._arrived.set()
        for key in (type, "*"):
            handlers = self._messages.get(key)
            if handlers is not None:
                handlers.emit(data, type)

    def _set_state(self, new: Any, *, full: bool) -> None:
        previous, self.state = self.state, new
        for parts, cb in list(self._paths):
            before, after = get_at(previous, parts), get_at(new, parts)
            if _unchanged(before, after, full):
                continue
            try:
                cb(None if after is MISSING else after, None if before is MISSING else before)
            except Exception as exc:
                self._report(exc)
        self._state_changes.emit(new, previous)

    def _report(self, exc: BaseException) -> None:
        if self._errors._cbs:
            self._errors.emit(exc)
        elif not isinstance(exc, ServerError):
            log.warning("gsf_client room %s: %s", self.id, exc)

    def _end(self, code: int, error: GSFError | None) -> None:
        if self._ended.is_set():
            return
        self.connected = False
        self._reconnecting = False
        self._outbox.clear()
        self.close_code, self.close_error = code, error
        self._ended.set()
        self._arrived.set()
        self._leaves.emit(code, error)
