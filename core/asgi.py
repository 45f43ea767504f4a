"""What the API's and the matchmaker's ASGI edges share: a request body read against a size limit,
a `send` that knows whether an answer has begun, the security headers of every answer, and the
client address as the platform trusts it (`X-Forwarded-For` only from `GSF_TRUSTED_PROXIES`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The console is plain ES modules from the API's origin; it talks to the API and to game servers
# (ws:). The matchmaker serves JSON and event streams only, so the same policy costs it nothing.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
]


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


def with_security_headers(send: Send) -> Send:
    """`send`, adding SECURITY_HEADERS to the answer (the API's EdgeMiddleware adds them itself,
    beside its request id)."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)

    return send_with_headers


def _forwarded_address(value: str) -> IPAddress | None:
    """One `X-Forwarded-For` element as an address: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
    `[2001:db8::1]:5678`; None for anything else (`unknown`, an obfuscated name, garbage)."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class TrustedProxies:
    """The peers whose `X-Forwarded-For` is believed, and what it then says the client is.

    A peer not listed is the client, whatever headers it sends: anyone can write the header, so
    believing it from an untrusted peer lets a caller choose its rate-limit bucket and its
    address in the audit log. From a listed peer the chain is read from the right (each proxy
    appends the address it saw) and the client is the right-most address that is not itself a
    trusted proxy; what lies left of it was written by the client and is ignored. An element
    that is not an address stops the walk at the last trusted hop, which is then the client."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: Sequence[bytes]) -> str:
        """The client's address, for a connection from `peer` with these X-Forwarded-For values."""
        try:
            hop = ipaddress.ip_address(peer)
        except ValueError:  # a unix socket or a test transport's name: not an address to trust
            return peer
        if not self.trusts(hop):
            return peer
        chain = [item for value in forwarded_for for item in value.decode("latin-1").split(",")]
        for item in reversed(chain):
            address = _forwarded_address(item)
            if address is None:
                break
            hop = address
            if not self.trusts(address):
                break
        return str(hop)


class ClientAddressMiddleware:
    """Pure ASGI, outermost: sets the scope's `client` to the address TrustedProxies settles on,
    so the rate limits, the audit log and the routes all see the one same client. The server must
    not rewrite `client` itself (uvicorn: `proxy_headers=False`, see api.server, matchmaker.server)."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settle_client(scope, self.proxies)
        await self.app(scope, receive, send)


def settle_client(scope: Scope, proxies: TrustedProxies) -> None:
    """The scope's `client` as `proxies` read it (left alone when no proxy is trusted)."""
    if not proxies or scope["type"] not in ("http", "websocket"):
        return
    peer = scope.get("client")
    if not peer:
        return
    forwarded = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
    if forwarded:
        host = proxies.client(str(peer[0]), forwarded)
        if host != peer[0]:
            scope["client"] = (host, 0)
