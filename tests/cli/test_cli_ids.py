"""Ids and options in the CLI (issue #20, items 8 and 9), over httpx.MockTransport: any unique id
prefix is taken, an ambiguous one names its candidates, tables print short unique ids and whole
URLs at 80 columns, and `gsf deploy` refuses what the API would refuse before it uploads.
tests/api/test_cli_api.py runs the same commands against the real API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import cli.client as client_mod
import cli.fleets as fleets_mod
from cli.client import AmbiguousId, resolve_id, resolve_server, short_ids
from core.request_bounds import MAX_PLAYERS, MIN_PLAYERS
from tests.cli.standin import Recorder, answer_with, client_for, gsf

A = "74575f4b6c9e0000aaaa"
B = "74575f4b6c9e1111bbbb"
C = "abcdef0123456789abcd"
GONE = "deadbeef000000000000"
LONG_URL = "ws://play.example.com:40124/ws"


def server(sid: str, **over: Any) -> dict[str, Any]:
    return {"id": sid, "name": f"game {sid[:4]}", "game": "tictactoe", "owner_id": "u1", "status": "running",
            "node_id": "local", "image": "gsf-game:x", "ws_url": f"ws://127.0.0.1:4{sid[-4:].replace('a', '1')[:4]}/ws",
            "max_players": 2, "labels": {}, "node_selector": {}, "limits": {}, "source_sha256": "0" * 64,
            "error": None, "workflow_id": f"gameserver-{sid}", "workflow_url": "", "events": [],
            "created_at": "2025-06-01T12:00:00+00:00", "updated_at": "2025-06-01T12:00:00+00:00", **over}


LIVE = [server(A), server(B, ws_url=LONG_URL, node_id="node-eu-west-1"), server(C)]
DELETED = [server(GONE, status="deleted")]


class Api(Recorder):
    """A stand-in for the servers routes: the list pages by limit/offset, deleted ones on request."""

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/servers" and request.method == "GET":
            q = request.url.params
            items = LIVE + (DELETED if q.get("include_deleted") == "true" else [])
            limit, offset = int(q.get("limit", 50)), int(q.get("offset", 0))
            return httpx.Response(200, json={"items": items[offset:offset + limit], "count": len(items),
                                             "next_offset": offset + limit if offset + limit < len(items) else None})
        for s in LIVE + DELETED:
            if path.startswith(f"/api/v1/servers/{s['id']}"):
                if path.endswith("/logs"):
                    return httpx.Response(200, json={"server_id": s["id"], "lines": []})
                return httpx.Response(200, json=s)
        if path == "/api/v1/fleets":
            return httpx.Response(200, json={"items": [{"id": A, "name": "blue"}, {"id": B, "name": "red"}],
                                             "count": 2})
        return httpx.Response(404, json={"type": "https://gsf.dev/problems/not-found", "detail": f"no {path}"})

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.seen]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    stand_in = Api()
    answer_with(monkeypatch, stand_in, client_mod, fleets_mod)
    return stand_in


def test_short_ids_are_the_shortest_unique_prefixes_of_at_least_8() -> None:
    assert short_ids([A, B, C]) == {A: A[:13], B: B[:13], C: C[:8]}
    assert short_ids([C]) == {C: C[:8]}
    assert short_ids(["abc"]) == {"abc": "abc"}


def test_a_unique_prefix_resolves_and_an_ambiguous_one_names_its_candidates(api: Api) -> None:
    with client_for(api) as client:
        assert resolve_server(client, C[:8]) == C
        assert resolve_server(client, B[:13]) == B
        with pytest.raises(AmbiguousId) as caught:
            resolve_server(client, A[:8])
        assert sorted(caught.value.candidates) == [A, B]
        assert A in str(caught.value.code)
        assert B in str(caught.value.code)
        assert resolve_server(client, GONE[:8]) == GONE, "a deleted server, when no live one matches"
        assert resolve_server(client, "f00d") == "f00d", "no match: the API answers for it (404)"
        seen = len(api.seen)
        assert resolve_server(client, C) == C, "a whole id needs no lookup"
        assert len(api.seen) == seen, "a whole id needs no lookup"
        # Fleets: a name goes to the API as it is (it looks names up), an id prefix is resolved.
        assert resolve_id(client, "fleet", "red", "/api/v1/fleets", names=("name",)) == "red"
        assert resolve_id(client, "fleet", B[:13], "/api/v1/fleets", names=("name",)) == B
        with pytest.raises(AmbiguousId):
            resolve_id(client, "fleet", "7457", "/api/v1/fleets", names=("name",))


def test_gsf_server_takes_a_prefix(api: Api) -> None:
    shown = gsf("server", B[:13])
    assert shown.exit_code == 0, shown.output
    assert f"GET /api/v1/servers/{B}" in api.paths()
    assert B in shown.stdout
    ambiguous = gsf("server", A[:8])
    assert ambiguous.exit_code == 1
    assert A in ambiguous.output
    assert B in ambiguous.output
    assert f"GET /api/v1/servers/{A}" not in api.paths(), "nothing is shown for an ambiguous prefix"
    for command in (["logs", C[:8]], ["stop", C[:8]], ["delete", C[:8]]):
        assert gsf(*command).exit_code == 0, command
    assert {f"GET /api/v1/servers/{C}/logs", f"POST /api/v1/servers/{C}/stop",
            f"DELETE /api/v1/servers/{C}"} <= set(api.paths())


def test_gsf_servers_at_80_columns_prints_short_ids_and_whole_urls(api: Api) -> None:
    listed = gsf("servers")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, listed.stdout
    short = short_ids(s["id"] for s in LIVE)
    for s in LIVE:
        row = next((line for line in lines if line.startswith(short[s["id"]] + " ")), None)
        assert row is not None, f"{short[s['id']]} heads a row:\n{listed.stdout}"
        assert s["ws_url"] in row, f"{s['ws_url']} on one line:\n{listed.stdout}"
    assert "…" not in listed.stdout
    # Every id printed is taken back.
    for s in LIVE:
        assert gsf("server", short[s["id"]]).exit_code == 0


def test_gsf_fleet_delete_takes_a_prefix(api: Api) -> None:
    gsf("fleet", "delete", C[:6])  # no fleet starts so: sent as it is, and the API answers 404
    assert "DELETE /api/v1/fleets/abcdef" in api.paths()
    done = gsf("fleet", "delete", A[:8])
    assert done.exit_code == 1
    assert A in done.output
    assert B in done.output


# --- gsf deploy ---------------------------------------------------------------------------------


@pytest.fixture
def game(tmp_path: Path) -> Path:
    path = tmp_path / "tictactoe.js"
    path.write_text("module.exports = { maxPlayers: 32, onJoin() {} };\n")
    return path


def test_deploy_refuses_what_the_api_refuses_before_uploading(api: Api, game: Path) -> None:
    for seats in (MIN_PLAYERS - 1, MAX_PLAYERS + 1, -3):
        refused = gsf("deploy", str(game), "--max-players", str(seats), "--no-wait")
        assert refused.exit_code == 2, refused.output
    for bad in (["--name", "no/slash"], ["--label", "novalue"]):
        refused = gsf("deploy", str(game), *bad, "--no-wait")
        assert refused.exit_code == 2, refused.output
    assert api.seen == [], "nothing was sent"


def uploads(api: Api) -> list[dict[str, str]]:
    forms = []
    for r in api.seen:
        if r.method == "POST" and r.url.path == "/api/v1/servers":
            body = r.content.decode(errors="replace")
            forms.append({name: body.split(f'name="{name}"\r\n\r\n', 1)[1].split("\r\n", 1)[0]
                          for name in ("name", "max_players", "labels") if f'name="{name}"' in body})
    return forms


def test_deploy_says_what_it_sends(monkeypatch: pytest.MonkeyPatch, api: Api, game: Path) -> None:
    created = {"id": C, "name": "demo", "status": "pending", "status_url": "http://127.0.0.1:9/x",
               "workflow_id": "w", "workflow_url": "http://127.0.0.1:8233/" + "w" * 90}
    real: Callable[[httpx.Request], httpx.Response] = api.__call__

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            request.read()
            api.seen.append(request)
            return httpx.Response(202, json=created)
        return real(request)

    answer_with(monkeypatch, answer, client_mod)
    one = gsf("deploy", str(game), "--max-players", "16", "--label", "mode=duel", "--no-wait")
    assert one.exit_code == 0, one.output
    assert "max players 16" in one.stderr
    assert "mode=duel" in one.stderr
    assert created["workflow_url"] in one.stdout.splitlines()[2], "the workflow URL on one line"
    other = gsf("deploy", str(game), "--name", "demo", "--no-wait", "--json")
    assert other.exit_code == 0, other.output
    assert "maxPlayers" in other.stderr
    assert json.loads(other.stdout)["id"] == C
    assert uploads(api) == [{"name": "tictactoe", "max_players": "16", "labels": "mode=duel"}, {"name": "demo"}]
