"""Node authority: who a node token speaks for, and whether its node may list a server.

The API holds node credentials, placements and node addresses, so the matchmaker asks it:
`GET /api/v1/agent/identity` (with the node's own token) and, before a registration,
`POST /api/v1/agent/admit` (the server is placed on the caller's node, and the `ws_url` host is
that node's address). Identities are cached for `ttl` seconds, so heartbeats cost no request:
a revoked or rotated token is refused here at most `ttl` seconds after the API revoked it.

If the API does not answer, a token it confirmed within the last `grace` seconds is still
taken: rooms must not drop off the list because the control plane restarts (nothing can be
revoked while no API answers, either). Registrations are never admitted without an answer.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx

from matchmaker.errors import Forbidden, MatchmakerError, Unauthorized

log = logging.getLogger("gsf.matchmaker")
IDENTITY_PATH = "/api/v1/agent/identity"
ADMIT_PATH = "/api/v1/agent/admit"


class NodeAuthorityUnavailable(MatchmakerError):
    """The API, which vouches for node tokens, does not answer."""

    status = 503
    slug = "node-authority-unavailable"
    title = "Node authority unavailable"


class NodeAuthority:
    def __init__(self, api_url: str, transport: httpx.AsyncBaseTransport | None = None, *,
                 ttl: float = 5.0, grace: float = 300.0, timeout: float = 5.0,
                 max_entries: int = 10_000) -> None:
        self.api_url = api_url
        self.transport = transport  # tests and benchmarks hand one in
        self.ttl = ttl
        self.grace = grace
        self.timeout = timeout
        self.max_entries = max_entries
        self._known: dict[str, tuple[float, str]] = {}  # token -> (confirmed at, node id)
        self._refused: dict[str, float] = {}  # token -> refused at (asked again after a second)
        self._pending: dict[str, asyncio.Future[str]] = {}

    def _client(self) -> httpx.AsyncClient:
        # A client per question: questions are rare (one per token per `ttl`, one per
        # registration), and nothing is left open when the app stops.
        return httpx.AsyncClient(base_url=self.api_url, transport=self.transport, timeout=self.timeout)

    async def identify(self, token: str) -> str:
        """The node id `token` speaks for; Unauthorized if none, NodeAuthorityUnavailable if
        the API does not answer and the token was not confirmed lately."""
        now = time.monotonic()
        hit = self._known.get(token)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        refused = self._refused.get(token)
        if refused is not None and now - refused < 1.0:
            raise Unauthorized("the node token is not valid")
        pending = self._pending.get(token)
        if pending is None:
            pending = asyncio.ensure_future(self._ask(token))
            self._pending[token] = pending
            pending.add_done_callback(lambda _: self._pending.pop(token, None))
        return await asyncio.shield(pending)

    async def _ask(self, token: str) -> str:
        try:
            async with self._client() as http:
                resp = await http.get(IDENTITY_PATH, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            return self._unanswered(token, str(exc))
        now = time.monotonic()
        if resp.status_code == 200:
            node_id = str(resp.json()["node_id"])
            if len(self._known) >= self.max_entries:
                self._known.clear()
            self._known[token] = (now, node_id)
            self._refused.pop(token, None)
            return node_id
        if resp.status_code in (401, 403):
            self._known.pop(token, None)
            if len(self._refused) >= self.max_entries:
                self._refused.clear()
            self._refused[token] = now
            raise Unauthorized("the node token is not valid")
        return self._unanswered(token, f"HTTP {resp.status_code}")

    def _unanswered(self, token: str, why: str) -> str:
        hit = self._known.get(token)
        if hit is not None and time.monotonic() - hit[0] < self.grace:
            log.warning("the API does not vouch for node tokens (%s); node %s was confirmed lately", why, hit[1])
            return hit[1]
        raise NodeAuthorityUnavailable(f"the API does not answer ({why}); node tokens cannot be checked")

    async def admit(self, token: str, server_id: str, ws_url: str) -> None:
        """Whether the token's node may register `server_id` at `ws_url`: Forbidden if not."""
        try:
            async with self._client() as http:
                resp = await http.post(ADMIT_PATH, json={"server_id": server_id, "ws_url": ws_url},
                                       headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise NodeAuthorityUnavailable(f"the API does not answer ({exc}); registrations wait") from None
        if resp.status_code == 204:
            return
        if resp.status_code == 401:
            self._known.pop(token, None)
            raise Unauthorized("the node token is not valid")
        if resp.status_code in (403, 404, 422):
            raise Forbidden(_detail(resp) or f"node may not register server {server_id!r} at {ws_url!r}")
        raise NodeAuthorityUnavailable(f"the API answered {resp.status_code}; registrations wait")

    def forget(self) -> None:
        """Drop every cached answer (tests; an operator's revocation that must bite at once)."""
        self._known.clear()
        self._refused.clear()


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    return str(body.get("detail", "")) if isinstance(body, dict) else ""
