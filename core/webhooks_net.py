"""Where webhooks may go (SSRF protection): URL rules, the address policy, and DNS answers pinned to a checked IP.

A target is checked when the webhook is created and again before every attempt, after resolving its
name; the attempt then connects to the very address that passed (the name only travels in `Host` and
as the TLS server name), so a DNS answer that changes in between (rebinding) cannot steer it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from core.errors import BadRequest
from core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2000
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookTargetRefused(BadRequest):
    """A webhook URL that is not http(s), or whose host is (or resolves to) an address webhooks may not reach."""

    slug, status, title = "webhook-target-refused", 422, "Webhook target refused"


class WebhookTargetUnresolvable(WebhookTargetRefused):
    """The webhook's host name does not resolve (now): at delivery time this is retried, not final."""

    slug, status, title = "webhook-target-unresolvable", 422, "Webhook target does not resolve"


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses only, unless the admin allows private ones (all, or some networks)."""

    allow_private: bool = False
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        return cls(settings.webhook_allow_private, tuple(settings.webhook_allowed_cidrs))

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why webhooks may not reach `address`, or None when they may."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        # An IPv4 address wrapped in IPv6 (::ffff:a.b.c.d, 6to4, NAT64) is judged as the IPv4 address.
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return self.refusal(inner)
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return None
        if ip.is_unspecified or ip.is_multicast:
            return f"{ip} is not a unicast address"
        kind = ("loopback" if ip.is_loopback else "link-local" if ip.is_link_local
                else "private" if ip.is_private else "non-public" if not ip.is_global else None)
        if kind is None or self.allow_private:
            return None
        return (f"{ip} is a {kind} address "
                "(an admin may allow it: GSF_WEBHOOK_ALLOW_PRIVATE or GSF_WEBHOOK_ALLOWED_CIDRS)")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def parse_url(url: str) -> httpx.URL:
    """The URL if its form is acceptable: http(s), a host, no credentials."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookTargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise WebhookTargetRefused(f"not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise WebhookTargetRefused(f"only http and https URLs are allowed, not {parsed.scheme or 'none'!r}")
    if not parsed.host:
        raise WebhookTargetRefused("the URL has no host")
    if parsed.userinfo:
        raise WebhookTargetRefused("credentials in the URL are not allowed; receivers verify the signature")
    return parsed


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host`, in its order of preference."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(5):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL with its host replaced by the checked address."""

    url: httpx.URL  # the pinned URL (host = address)
    host_header: str
    server_name: str | None  # TLS server name (SNI and certificate check); None for http
    address: str


async def resolve_target(url: str, policy: AddressPolicy, resolver: Resolver = system_resolver) -> Target:
    """Check the URL, resolve its host and check every address; refuse if any of them is not allowed."""
    parsed = parse_url(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = await resolver(host, port)
        except (OSError, TimeoutError) as exc:
            raise WebhookTargetUnresolvable(f"{host} does not resolve: {exc}") from None
    if not addresses:
        raise WebhookTargetUnresolvable(f"{host} does not resolve")
    refusals = _refusals(policy, addresses)
    if refusals:
        raise WebhookTargetRefused(f"{host} resolves to a refused address: {refusals[0]}")
    address = addresses[0]
    return Target(url=parsed.copy_with(host=address), host_header=parsed.netloc.decode("ascii"),
                  server_name=host if parsed.scheme == "https" else None, address=address)


def _refusals(policy: AddressPolicy, addresses: Iterable[str]) -> list[str]:
    return [reason for reason in (policy.refusal(a) for a in addresses) if reason is not None]


async def post(http: httpx.AsyncClient, target: Target, body: bytes, headers: dict[str, str],
               timeout: float) -> int:
    """POST `body` to the pinned address; the answer's status code (its body is not read)."""
    extensions = {"sni_hostname": target.server_name} if target.server_name else {}
    request = http.build_request("POST", target.url, content=body, timeout=timeout, extensions=extensions,
                                 headers={**headers, "Host": target.host_header})
    response = await http.send(request, stream=True, follow_redirects=False)
    await response.aclose()
    return response.status_code
