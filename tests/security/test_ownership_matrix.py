"""Who may touch what, route by route: two users, A and B, and an admin against every route of the
API, and keys holding each subset of the scopes against every route. The route list comes from the
app's OpenAPI document, so a new route fails `test_every_route_has_an_expectation` until it is given
a row in `EXPECT` and a scope in `NEEDS`."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from core import security
from core.db.models import (
    Allocation,
    ApiKey,
    Fleet,
    Game,
    GameServer,
    GameVersion,
    ModelJob,
    Node,
    PipelineRun,
    User,
    Webhook,
)
from core.settings import Settings
from tests.harness import Harness, platform
from tests.node_tokens import issue_node_token

pytestmark = [pytest.mark.temporal]


# ---- the expectations table -------------------------------------------------------------------

@dataclass(frozen=True)
class Open:
    """No API key: health probes and the token-guarded metrics scrape."""

    why: str


@dataclass(frozen=True)
class AgentOnly:
    """Node-token routes; `test_a_node_token_reaches_only_its_own_node` covers them."""


@dataclass(frozen=True)
class AdminOnly:
    """A and B get 403; the admin gets `admin_status` (None: not called, it would change state)."""

    admin_status: int | None = 200
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Caller:
    """Acts on the caller alone (creates their own resource, reads their config, or reads data that
    is shared on purpose): nobody else's resource can be named through it."""

    why: str


@dataclass(frozen=True)
class ListOf:
    """A list of `kind`: A's list shows A's resource, B's does not; the admin's does if `admin_sees`."""

    kind: str
    admin_sees: bool = True


@dataclass(frozen=True)
class StreamOf:
    """A Server-Sent Events stream of `kind` changes, filtered like `ListOf`."""

    kind: str


@dataclass(frozen=True)
class Owned:
    """The path names one `kind` resource: B gets 404 (as for a missing id), A gets `owner_status`,
    the admin too when `admin_sees` (reads only). `destructive` routes are called by A last."""

    kind: str
    owner_status: int = 200
    body: dict[str, Any] | None = None
    destructive: bool = False
    admin_sees: bool = True


Rule = Open | AgentOnly | AdminOnly | Caller | ListOf | StreamOf | Owned

V1 = "/api/v1"
EXPECT: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): Open("liveness probe"),
    ("GET", "/ready"): Open("readiness probe"),
    ("GET", "/metrics"): Open("Prometheus scrape; its own bearer token when GSF_METRICS_TOKEN is set"),
    # servers
    ("POST", f"{V1}/servers"): Caller("creates the caller's server"),
    ("GET", f"{V1}/servers"): ListOf("server"),
    ("GET", f"{V1}/servers/{{server_id}}"): Owned("server"),
    ("GET", f"{V1}/servers/{{server_id}}/analysis"): Owned("server"),
    ("GET", f"{V1}/servers/{{server_id}}/stats"): Owned("server"),
    ("GET", f"{V1}/servers/{{server_id}}/logs"): Owned("server"),
    ("POST", f"{V1}/servers/{{server_id}}/stop"): Owned("server"),
    ("DELETE", f"{V1}/servers/{{server_id}}"): Owned("server", destructive=True),
    ("GET", f"{V1}/events/servers"): StreamOf("server"),
    ("POST", f"{V1}/analysis"): Caller("analyses the uploaded bytes; stores nothing"),
    # rooms: the matchmaker's public room list, which every player sees to join a game
    ("GET", f"{V1}/rooms"): Caller("the public room list, shared by design"),
    ("GET", f"{V1}/rooms/stream"): Caller("the public room list, shared by design"),
    ("GET", f"{V1}/rooms/{{room_id}}"): Caller("one public room, shared by design"),
    ("POST", f"{V1}/rooms/join"): Caller("any player may join any listed room"),
    ("POST", f"{V1}/rooms/create"): Caller("any player may open a room of a listed game"),
    ("GET", f"{V1}/config"): Caller("the console's settings for the caller"),
    # pipelines
    ("POST", f"{V1}/pipelines"): Caller("creates the caller's run"),
    ("GET", f"{V1}/pipelines"): ListOf("pipeline"),
    ("GET", f"{V1}/pipelines/{{run_id}}"): Owned("pipeline"),
    ("GET", f"{V1}/pipelines/{{run_id}}/logs"): Owned("pipeline"),
    ("POST", f"{V1}/pipelines/{{run_id}}/cancel"): Owned("pipeline"),
    # The run's workflow is gone (the row was written by the test): the owner gets the 409 of an ended run.
    ("POST", f"{V1}/pipelines/{{run_id}}/resume"): Owned("pipeline", 409, body={"variables": {}}),
    # model jobs; an admin's list shows their own jobs only, by design (the console's view)
    ("POST", f"{V1}/models"): Caller("creates the caller's job"),
    ("GET", f"{V1}/models"): ListOf("model", admin_sees=False),
    ("GET", f"{V1}/models/{{job_id}}"): Owned("model"),
    ("GET", f"{V1}/models/{{job_id}}/status"): Owned("model"),
    ("GET", f"{V1}/models/{{job_id}}/result"): Owned("model", 409),  # the job failed: no model
    ("DELETE", f"{V1}/models/{{job_id}}"): Owned("model", 204, destructive=True),
    # webhooks (the test's hook is disabled, so its test delivery is a 409 and nothing is sent)
    ("POST", f"{V1}/webhooks"): Caller("creates the caller's webhook"),
    ("GET", f"{V1}/webhooks"): ListOf("webhook"),
    ("GET", f"{V1}/webhooks/{{webhook_id}}"): Owned("webhook"),
    ("PATCH", f"{V1}/webhooks/{{webhook_id}}"): Owned("webhook", body={"description": "renamed"}),
    ("DELETE", f"{V1}/webhooks/{{webhook_id}}"): Owned("webhook", 204, destructive=True),
    ("POST", f"{V1}/webhooks/{{webhook_id}}/test"): Owned("webhook", 409),
    ("GET", f"{V1}/webhooks/{{webhook_id}}/deliveries"): Owned("webhook"),
    # /keys are the caller's own keys: an admin reaches another user's through /users/{user_id}/keys
    ("GET", f"{V1}/keys"): ListOf("key", admin_sees=False),
    ("POST", f"{V1}/keys"): Caller("creates a key for the caller"),
    ("DELETE", f"{V1}/keys/{{key_id}}"): Owned("key", 204, destructive=True, admin_sees=False),
    # admin only
    ("GET", f"{V1}/users"): AdminOnly(),
    ("POST", f"{V1}/users"): AdminOnly(None, body={"email": "new@example.com"}),
    ("GET", f"{V1}/users/{{user_id}}/keys"): AdminOnly(),
    ("DELETE", f"{V1}/users/{{user_id}}/keys/{{key_id}}"): AdminOnly(None),
    ("DELETE", f"{V1}/users/{{user_id}}"): AdminOnly(None),
    ("GET", f"{V1}/audit"): AdminOnly(),
    ("GET", f"{V1}/nodes"): AdminOnly(),
    ("POST", f"{V1}/nodes"): AdminOnly(None, body={"id": "matrix-node"}),
    ("GET", f"{V1}/nodes/{{node_id}}"): AdminOnly(),
    ("PUT", f"{V1}/nodes/{{node_id}}"): AdminOnly(None, body={"labels": {"a": "b"}}),
    ("DELETE", f"{V1}/nodes/{{node_id}}"): AdminOnly(None),
    ("POST", f"{V1}/nodes/{{node_id}}/token"): AdminOnly(None),
    ("PUT", f"{V1}/nodes/{{node_id}}/status"): AdminOnly(None, body={"status": "maintenance"}),
    ("POST", f"{V1}/nodes/{{node_id}}/drain"): AdminOnly(None),
    # node agents
    ("PUT", f"{V1}/agent/heartbeat"): AgentOnly(),
    ("POST", f"{V1}/agent/logs"): AgentOnly(),
    ("GET", f"{V1}/agent/logs/{{server_id}}/cursor"): AgentOnly(),
    ("GET", f"{V1}/agent/sources/{{sha}}"): AgentOnly(),
    ("POST", f"{V1}/agent/reconcile"): AgentOnly(),
    ("POST", f"{V1}/agent/snapshots"): AgentOnly(),
    ("GET", f"{V1}/agent/snapshots/{{server_id}}"): AgentOnly(),
    ("POST", f"{V1}/agent/stats"): AgentOnly(),
    ("POST", f"{V1}/agent/rooms/events"): AgentOnly(),
    ("GET", f"{V1}/agent/identity"): AgentOnly(),
    ("POST", f"{V1}/agent/admit"): AgentOnly(),
    ("POST", f"{V1}/agent/enroll"): AgentOnly(),  # the node's join proof, not a node token
    # games, their versions and fleets: named per owner, so B naming A's game or fleet finds none
    ("POST", f"{V1}/games"): Caller("uploads a version of the caller's game"),
    ("GET", f"{V1}/games"): ListOf("game"),
    ("GET", f"{V1}/games/{{name}}/versions"): Owned("game"),
    ("GET", f"{V1}/games/{{name}}/versions/{{version}}"): Owned("game"),
    ("POST", f"{V1}/games/{{name}}/versions/{{version}}/servers"): Owned("game", 202, body={"name": "from-v1"}),
    ("POST", f"{V1}/fleets"): Caller("creates the caller's fleet of one of the caller's games"),
    ("GET", f"{V1}/fleets"): ListOf("fleet"),
    ("GET", f"{V1}/fleets/{{fleet_ref}}"): Owned("fleet"),
    # The fleet's workflow is gone (the row was written by the test): the owner gets the 409 of an ended fleet.
    ("PATCH", f"{V1}/fleets/{{fleet_ref}}"): Owned("fleet", 409, body={"replicas": 1}),
    ("DELETE", f"{V1}/fleets/{{fleet_ref}}"): Owned("fleet", 202, destructive=True),
    ("POST", f"{V1}/allocations"): Caller("allocates from the caller's own fleets"),
    ("GET", f"{V1}/allocations"): ListOf("allocation"),
    ("GET", f"{V1}/allocations/{{allocation_id}}"): Owned("allocation"),
    ("DELETE", f"{V1}/allocations/{{allocation_id}}"): Owned("allocation", destructive=True),
}

# The scopes a key must hold, any one of them, for the routes under each prefix (the longest
# prefix wins); an empty set: any key. `admin` routes also need an admin user. The `admin` scope
# carries every other scope. Written out here on its own, not read from api/deps.py.
NEEDS: dict[str, frozenset[str]] = {
    f"{V1}/servers": frozenset({"servers"}),
    f"{V1}/events/servers": frozenset({"servers"}),
    f"{V1}/analysis": frozenset({"servers"}),
    f"{V1}/rooms": frozenset({"servers"}),
    f"{V1}/pipelines": frozenset({"servers"}),
    f"{V1}/games": frozenset({"servers"}),
    f"{V1}/fleets": frozenset({"servers"}),
    f"{V1}/allocations": frozenset({"servers"}),
    f"{V1}/webhooks": frozenset({"servers", "models"}),  # each event is checked against its own scope
    f"{V1}/models": frozenset({"models"}),
    f"{V1}/nodes": frozenset({"admin"}),
    f"{V1}/users": frozenset({"admin"}),
    f"{V1}/audit": frozenset({"admin"}),
    f"{V1}/keys": frozenset(),
    f"{V1}/config": frozenset(),
}
ALL_SCOPES = ("servers", "models", "admin")


def needs(path: str) -> frozenset[str] | None:
    covering = [p for p in NEEDS if path == p or path.startswith(p + "/")]
    return NEEDS[max(covering, key=len)] if covering else None


def allowed(scopes: frozenset[str], is_admin: bool, path: str) -> bool:
    need = needs(path)
    assert need is not None, path
    held = frozenset(ALL_SCOPES) if "admin" in scopes else scopes
    if "admin" in need and not is_admin:
        return False
    return not need or bool(held & need)


def subsets(scopes: tuple[str, ...]) -> list[frozenset[str]]:
    return [frozenset(c) for n in range(len(scopes) + 1) for c in itertools.combinations(scopes, n)]


def api_routes(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(Settings(env="test", data_dir=tmp_path))
    return {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}


def fill(path: str, values: dict[str, str]) -> str:
    """The path with each `{param}` replaced: by its own value if given, else by the resource's id."""
    return re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), values["id"]), path)


def missing_ids() -> dict[str, str]:
    return {"id": uuid.uuid4().hex, "name": "no-such-game", "version": "1"}


def test_every_route_has_an_expectation(tmp_path: Path) -> None:
    routes = api_routes(tmp_path)
    missing = sorted(routes - set(EXPECT))
    assert not missing, f"routes without a row in EXPECT (say who may call them): {missing}"
    stale = sorted(set(EXPECT) - routes)
    assert not stale, f"rows in EXPECT for routes the API no longer has: {stale}"
    for (_, path), rule in EXPECT.items():
        if isinstance(rule, Owned):
            assert "{" in path, f"{path} names no resource"
        if not isinstance(rule, Open | AgentOnly):
            assert needs(path) is not None, f"{path} has no row in NEEDS (say which scope a key needs)"


# ---- the platform and its users ----------------------------------------------------------------

@pytest.fixture
async def h(settings: Settings, temporal_env: Any) -> Any:
    # Hundreds of calls from one address and a few keys: the rate limits are tested elsewhere.
    async with platform(settings.model_copy(update={"rate_limit_enabled": False}), temporal_env.client,
                        agent=False) as harness:
        yield harness


async def _user_id(h: Harness, email: str) -> str:
    from sqlalchemy import select

    async with h.sessions() as s:
        uid = await s.scalar(select(User.id).where(User.email == email))
    assert uid is not None
    return uid


async def _rows(h: Harness, owner: str) -> dict[str, dict[str, str]]:
    """A's resources, written straight to the database (the routes read them from there)."""
    tag = uuid.uuid4().hex[:8]
    server = GameServer(owner_id=owner, name=f"s-{tag}", game="g", source_sha256="0" * 64, max_players=2,
                        workflow_id=f"matrix-server-{tag}", status="stopped", analysis={"findings": []})
    run = PipelineRun(owner_id=owner, name=f"p-{tag}", node_id="nowhere", status="succeeded",
                      workflow_id=f"matrix-pipeline-{tag}")
    job = ModelJob(owner_id=owner, request_sha256="0" * 64, input_kind="text", prompt="a cube", status="failed",
                   error_code="TripoFailed", error_message="no", workflow_id=f"matrix-model-{tag}")
    hook = Webhook(owner_id=owner, url="https://hooks.example.com/gsf", events=["server.running"],
                   secret="s" * 32, enabled=False)
    game = Game(owner_id=owner, name=f"game-{tag}")
    async with h.sessions() as s:
        s.add_all([server, run, job, hook, game, Node(id="matrix-node")])
        await s.flush()
        version = GameVersion(game_id=game.id, version=1, source_sha256=server.source_sha256, max_players=2)
        s.add(version)
        await s.flush()
        fleet = Fleet(owner_id=owner, name=f"fleet-{tag}", game_id=game.id, game=game.name, version_id=version.id,
                      version=1, replicas=0, workflow_id=f"matrix-fleet-{tag}")
        s.add(fleet)
        await s.flush()
        allocation = Allocation(owner_id=owner, fleet_id=fleet.id, server_id=server.id, status="released")
        s.add(allocation)
        await s.commit()
        return {"server": {"id": server.id}, "pipeline": {"id": run.id}, "model": {"id": job.id},
                "webhook": {"id": hook.id}, "game": {"id": game.id, "name": game.name, "version": "1"},
                "fleet": {"id": fleet.id}, "allocation": {"id": allocation.id}}


async def _ids_in(resp: httpx.Response) -> set[str]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    items = body if isinstance(body, list) else body["items"]
    return {item.get("id") or item["job_id"] for item in items}


async def _first_frames(client: httpx.AsyncClient, path: str, seconds: float = 2.0) -> str:
    """What an SSE stream says within `seconds` (its snapshot comes as the first changes)."""
    text = ""
    async with client.stream("GET", path) as resp:
        assert resp.status_code == 200
        try:
            async with asyncio.timeout(seconds):
                async for chunk in resp.aiter_text():
                    text += chunk
        except TimeoutError:
            pass
    return text


async def test_the_ownership_matrix(h: Harness, tmp_path: Path) -> None:
    keys = {who: await h.user_key(f"{who}@example.com", admin=(who == "root")) for who in ("alice", "bob", "root")}
    a_id = await _user_id(h, "alice@example.com")
    async with h.api(keys["alice"]) as a, h.api(keys["bob"]) as b, h.api(keys["root"]) as admin:
        ids = await _rows(h, a_id)
        extra = await a.post(f"{V1}/keys", json={"name": "spare"})
        assert extra.status_code == 201, extra.text
        ids["key"] = {"id": extra.json()["id"]}
        routes = api_routes(tmp_path)
        failures: list[str] = []

        def expect(who: str, method: str, path: str, resp: httpx.Response, want: int | set[int]) -> None:
            wanted = want if isinstance(want, set) else {want}
            if resp.status_code not in wanted:
                failures.append(f"{who} {method} {path}: {resp.status_code} (want {sorted(wanted)}) {resp.text[:200]}")

        owned = [(m, p, r) for (m, p), r in EXPECT.items() if (m, p) in routes and isinstance(r, Owned)]
        # B first, mutations included: none may land, and every answer is the one a missing id gets.
        for method, path, rule in owned:
            url = fill(path, ids[rule.kind])
            expect("B", method, url, await b.request(method, url, json=rule.body), 404)
            missing = fill(path, missing_ids())
            expect("A (missing id)", method, missing, await a.request(method, missing, json=rule.body), 404)
        for method, path, rule in owned:
            if method == "GET":
                url = fill(path, ids[rule.kind])
                expect("A", method, url, await a.get(url), rule.owner_status)
                expect("admin", method, url, await admin.get(url), rule.owner_status if rule.admin_sees else 404)
        for (method, path), entry in EXPECT.items():
            if (method, path) not in routes:
                continue
            if isinstance(entry, ListOf):
                mine = ids[entry.kind]["id"]
                if mine not in await _ids_in(await a.get(path)):
                    failures.append(f"A {path}: A's {entry.kind} is not listed")
                if mine in await _ids_in(await b.get(path)):
                    failures.append(f"B {path}: A's {entry.kind} is listed")
                if (mine in await _ids_in(await admin.get(path))) != entry.admin_sees:
                    failures.append(f"admin {path}: A's {entry.kind} listed is not {entry.admin_sees}")
            elif isinstance(entry, StreamOf):
                mine = ids[entry.kind]["id"]
                if mine in await _first_frames(b, path):
                    failures.append(f"B {path}: A's {entry.kind} is in the stream")
            elif isinstance(entry, AdminOnly):
                url = fill(path, {"id": "matrix-node", "user_id": a_id})
                for who, client in (("A", a), ("B", b)):
                    expect(who, method, url, await client.request(method, url, json=entry.body), 403)
                if entry.admin_status is not None:
                    expect("admin", method, url, await admin.request(method, url, json=entry.body),
                           entry.admin_status)
        # The owner's own mutations, the destructive ones last.
        for method, path, rule in sorted((o for o in owned if o[0] != "GET"), key=lambda o: o[2].destructive):
            url = fill(path, ids[rule.kind])
            expect("A", method, url, await a.request(method, url, json=rule.body), rule.owner_status)
        assert not failures, "\n".join(failures)


# ---- the scope dimension ----------------------------------------------------------------------

STREAMS = {f"{V1}/events/servers", f"{V1}/rooms/stream"}
BOGUS = {"matrix-bogus-field": 1}  # no body model takes it: a call that gets past the scope check changes nothing


async def _key_with(h: Harness, user_id: str, scopes: frozenset[str]) -> str:
    """A key holding exactly `scopes`, written straight to the database (the API mints subsets only)."""
    return (await _key_row(h, user_id, scopes))[0]


async def _key_row(h: Harness, user_id: str, scopes: frozenset[str]) -> tuple[str, str]:
    key, prefix, digest = security.new_api_key()
    row = ApiKey(user_id=user_id, name="scopes-" + "-".join(sorted(scopes)), prefix=prefix, key_hash=digest,
                 scopes=sorted(scopes))
    async with h.sessions() as s:
        s.add(row)
        await s.commit()
    return key, row.id


async def _call(client: httpx.AsyncClient, method: str, url: str, path: str) -> tuple[int, str]:
    """The status and problem type of one call with missing ids and a body every route refuses."""
    body = BOGUS if method in ("POST", "PUT", "PATCH") else None
    if path in STREAMS:
        async with asyncio.timeout(10), client.stream(method, url) as resp:
            if resp.status_code != 200:
                await resp.aread()
                return resp.status_code, resp.json().get("type", "")
            return 200, ""
    resp = await client.request(method, url, json=body)
    problem = resp.json().get("type", "") if resp.headers.get("content-type", "").startswith(
        "application/problem+json") else ""
    return resp.status_code, problem


async def test_every_route_checks_the_keys_scopes(h: Harness, tmp_path: Path) -> None:
    """Keys holding each subset of the scopes, of an admin and of an ordinary user, against every
    route: a key reaches a route only with a scope the route needs (admin routes: and an admin
    user); any other key gets the 403 `forbidden`, whatever its user may do."""
    await h.user_key("root@example.com", admin=True)
    await h.user_key("alice@example.com")
    users = [(await _user_id(h, "root@example.com"), True, ALL_SCOPES),
             (await _user_id(h, "alice@example.com"), False, ("servers", "models"))]
    routes = api_routes(tmp_path)
    checked = [(m, p) for (m, p), rule in EXPECT.items() if (m, p) in routes and not isinstance(rule, Open | AgentOnly)]

    async def one_key(user_id: str, is_admin: bool, scopes: frozenset[str]) -> list[str]:
        failures: list[str] = []
        who = f"{'admin' if is_admin else 'user'}'s key {sorted(scopes)}"
        async with h.api(await _key_with(h, user_id, scopes)) as client:
            for method, path in checked:
                status, problem = await _call(client, method, fill(path, missing_ids()), path)
                if allowed(scopes, is_admin, path):
                    if status in (401, 403) or status >= 500:
                        failures.append(f"{who} {method} {path}: {status} {problem}, want it let through")
                elif status != 403 or not problem.endswith("/forbidden"):
                    failures.append(f"{who} {method} {path}: {status} {problem}, want 403 forbidden")
        return failures

    # `admin` with other scopes adds nothing to `admin` alone (it carries them all): not called.
    keys = [(user_id, is_admin, scopes) for user_id, is_admin, pool in users for scopes in subsets(pool)
            if scopes == {"admin"} or "admin" not in scopes]
    found = await asyncio.gather(*(one_key(*k) for k in keys))
    failures = [f for per_key in found for f in per_key]
    assert not failures, "\n".join(failures)


async def test_a_key_mints_and_revokes_only_keys_within_its_scopes(h: Harness) -> None:
    await h.user_key("root@example.com", admin=True)
    await h.user_key("alice@example.com")
    users = [(await _user_id(h, "root@example.com"), True, ALL_SCOPES),
             (await _user_id(h, "alice@example.com"), False, ("servers", "models"))]
    failures: list[str] = []
    for user_id, is_admin, pool in users:
        for scopes in subsets(pool):
            held = frozenset(ALL_SCOPES) if "admin" in scopes else scopes
            async with h.api(await _key_with(h, user_id, scopes)) as client:
                for wanted in subsets(ALL_SCOPES):
                    resp = await client.post(f"{V1}/keys", json={"name": "minted", "scopes": sorted(wanted)})
                    ok = wanted <= held and (is_admin or "admin" not in wanted)
                    if ok and resp.status_code != 201:
                        failures.append(f"{sorted(scopes)} minting {sorted(wanted)}: {resp.status_code}, want 201")
                    if not ok and (resp.status_code != 403 or not resp.json()["type"].endswith("/forbidden")):
                        failures.append(f"{sorted(scopes)} minting {sorted(wanted)}: {resp.status_code}, want 403")
    assert not failures, "\n".join(failures)
    # Revoking: a key may end the user's keys within its own scopes, not a wider one.
    alice = users[1][0]
    (narrow_key, _), (wide_key, wide_id), (peer_key, peer_id) = [
        await _key_row(h, alice, frozenset(s)) for s in ({"models"}, {"servers"}, {"models"})]
    async with h.api(narrow_key) as narrow, h.api(wide_key) as wide, h.api(peer_key) as peer:
        resp = await narrow.delete(f"{V1}/keys/{wide_id}")
        assert resp.status_code == 403, resp.text
        assert resp.json()["type"].endswith("/forbidden"), resp.text
        assert (await wide.get(f"{V1}/servers")).status_code == 200, "the refused revoke revoked the key"
        assert (await narrow.delete(f"{V1}/keys/{peer_id}")).status_code == 204
        assert (await peer.get(f"{V1}/keys")).status_code == 401


# ---- node agents -------------------------------------------------------------------------------

async def test_a_node_token_reaches_only_its_own_node(h: Harness) -> None:
    from sqlalchemy import select

    from core.db.models import LogLine, StatSample

    token_a, token_b = await issue_node_token(h.sessions, "node-a"), await issue_node_token(h.sessions, "node-b")
    owner = await _user_id_or_create(h, "owner@example.com")
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as c:

        async def call(token: str, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
            return await c.request(method, f"{V1}/agent{path}", json=body, headers={"Authorization": f"Bearer {token}"})

        beat = {"metrics": {"cpu_percent": 7}, "labels": {"who": "b"}, "heartbeat_seconds": 30}
        assert (await call(token_b, "PUT", "/heartbeat", beat)).status_code == 204
        # A's token registers and beats for node-a only: node-b's record does not move.
        assert (await call(token_a, "PUT", "/heartbeat", {**beat, "metrics": {"cpu_percent": 99},
                                                          "labels": {"who": "a"}})).status_code == 204
        async with h.sessions() as s:
            node_b, node_a = await s.get(Node, "node-b"), await s.get(Node, "node-a")
            assert node_b is not None
            assert node_a is not None
            assert node_b.metrics == {"cpu_percent": 7}
            assert node_b.labels == {"who": "b"}
            assert node_a.labels == {"who": "a"}
            server = GameServer(owner_id=owner, name="on-b", game="g", source_sha256="0" * 64, max_players=2,
                                workflow_id=f"w-{uuid.uuid4().hex[:8]}", status="running", node_id="node-b")
            s.add(server)
            await s.commit()
            sid = server.id
        forged = {"lines": [{"server_id": sid, "ts": "2026-01-01T00:00:00Z", "line": "forged"}]}
        assert (await call(token_a, "POST", "/logs", forged)).status_code == 403
        room = {"server_id": sid, "room_id": "r1", "event": "created", "status": "open", "at": "2026-01-01T00:00:00Z"}
        assert (await call(token_a, "POST", "/rooms/events", {"events": [room]})).status_code == 403
        sample = {"server_id": sid, "ts": "2026-01-01T00:00:00Z", "cpu_percent": 1, "memory_bytes": 1}
        assert (await call(token_a, "POST", "/stats", {"samples": [sample]})).status_code == 204
        # Node-b's own server, seen by node-a's reconcile, is not node-a's to keep.
        orphans = (await call(token_a, "POST", "/reconcile", {"server_ids": [sid]})).json()["orphans"]
        assert orphans == [sid]
        async with h.sessions() as s:
            assert (await s.scalars(select(LogLine).where(LogLine.server_id == sid))).all() == []
            assert (await s.scalars(select(StatSample).where(StatSample.server_id == sid))).all() == [], \
                "node-a's token wrote a sample for node-b's server"
        # B's own token does land them.
        assert (await call(token_b, "POST", "/logs", forged)).status_code == 204
        assert (await call(token_b, "POST", "/stats", {"samples": [sample]})).status_code == 204
        async with h.sessions() as s:
            assert len((await s.scalars(select(StatSample).where(StatSample.server_id == sid))).all()) == 1
        # A user's API key, a token no one issued, a mangled token or a join proof is no node token.
        user_key = await h.user_key("someone@example.com")
        for bad in (user_key, security.new_node_token()[0], token_b[:-2] + "xx",
                    security.join_proof(h.settings.secret_key, "node-b")):
            assert (await call(bad, "PUT", "/heartbeat", beat)).status_code == 401


async def _user_id_or_create(h: Harness, email: str) -> str:
    await h.user_key(email)
    return await _user_id(h, email)
