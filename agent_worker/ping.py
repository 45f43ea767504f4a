"""The node agent's ping endpoint (issue #23): `GET /ping` answers 204 at once, from any origin, so
a player's SDK can time the round trip to this node's region and join the nearest one.

Plain asyncio rather than an ASGI app: the answer is the same few bytes every time, and a framework
would add its own time to what the player measures. Connections are kept alive (an SDK times
several pings over one connection, as a browser does: the figure is then the network's round trip,
not a TCP handshake plus it). What protects the agent: a token bucket per client address (429 over
it), a bound on open connections, on the request head's size and time, and on requests per
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

from core import listen
from core.ratelimit import TokenBuckets
from core.settings import Settings

log = logging.getLogger("gsf.agent")

HEAD_LIMIT = 8 * 1024  # bytes of one request head
HEAD_TIMEOUT = 10.0  # seconds a connection may sit idle or send its head slowly
MAX_CONNECTIONS = 512
MAX_REQUESTS = 1000  # per connection, then it is closed (the client opens another)
# Any origin, no credentials; `Timing-Allow-Origin` lets a page read the Resource Timing entry of a
# ping, which excludes the browser's own queueing from the figure.
CORS = ("Access-Control-Allow-Origin: *\r\nTiming-Allow-Origin: *\r\n"
        "Cache-Control: no-store\r\n")


def _answer(status: str, extra: str = "", body: bytes = b"", keep: bool = True) -> bytes:
    length = "" if status.startswith("204") else f"Content-Length: {len(body)}\r\n"
    connection = "keep-alive" if keep else "close"
    head = f"HTTP/1.1 {status}\r\n{CORS}{extra}{length}Connection: {connection}\r\n\r\n"
    return head.encode() + body


NO_CONTENT = _answer("204 No Content")
PREFLIGHT = _answer("204 No Content", "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n"
                    "Access-Control-Max-Age: 600\r\n")
NOT_FOUND = _answer("404 Not Found", "Content-Type: text/plain\r\n", b"only /ping is served here\n")
NOT_ALLOWED = _answer("405 Method Not Allowed", "Allow: GET, HEAD, OPTIONS\r\nContent-Type: text/plain\r\n",
                      b"GET /ping\n")
BAD_REQUEST = _answer("400 Bad Request", "Content-Type: text/plain\r\n", b"bad request\n", keep=False)


class PingServer:
    """`await PingServer(settings).serve()` until cancelled; nothing when `agent_ping_port` is 0.

    `sock`: a listening socket to serve on instead of binding (tests hand one in, for example
    bound in another network namespace)."""

    def __init__(self, settings: Settings, sock: socket.socket | None = None) -> None:
        self.host = settings.agent_ping_host or settings.publish_host
        self.port = settings.agent_ping_port
        self.sock = sock
        self.buckets = TokenBuckets(settings.agent_ping_rate, settings.agent_ping_burst, max_buckets=10_000)
        self.connections = 0
        self.started = asyncio.Event()
        self.answered = 0  # pings answered with 204 (tests; the agent's log at exit)

    async def serve(self) -> None:
        if self.sock is None and not self.port:
            return
        try:
            # The socket handed over for that port, if any (core/listen.py), else bound here.
            sock = self.sock or listen.listener(self.host, self.port)
            server = await asyncio.start_server(self._handle, sock=sock, limit=HEAD_LIMIT)
        except OSError as exc:
            # Another agent on this host may serve the port already: its answers time this host as well.
            log.warning("ping endpoint not served on %s:%s: %s", self.host, self.port, exc)
            return
        self.port = int(server.sockets[0].getsockname()[1])
        log.info("ping endpoint on http://%s:%s/ping", self.host, self.port)
        self.started.set()
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.connections <= MAX_CONNECTIONS:
                peer = writer.get_extra_info("peername")
                await self._serve_connection(reader, writer, str(peer[0]) if peer else "")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                client: str) -> None:
        for _ in range(MAX_REQUESTS):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            request_line, *lines = head.decode("latin-1").split("\r\n")
            parts = request_line.split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                writer.write(BAD_REQUEST)
                await writer.drain()
                return
            method, target, version = parts
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
            if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
                writer.write(BAD_REQUEST)  # a ping has no body; reading one is not worth it
                await writer.drain()
                return
            writer.write(self._response(method, target.partition("?")[0], client))
            await writer.drain()
            if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
                return

    def _response(self, method: str, path: str, client: str) -> bytes:
        if path != "/ping":
            return NOT_FOUND
        if method == "OPTIONS":
            return PREFLIGHT
        if method not in ("GET", "HEAD"):
            return NOT_ALLOWED
        now = time.monotonic()
        wait = self.buckets.wait(client, now)
        if wait > 0:
            return _answer("429 Too Many Requests", f"Retry-After: {max(1, int(wait + 0.999))}\r\n")
        self.buckets.take(client, now)
        self.answered += 1
        return NO_CONTENT
