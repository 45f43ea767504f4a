"""`gsf rooms`, `gsf rooms <id>` and `gsf deploy --max-rooms` (issue #22), over httpx.MockTransport
answering as the API's room proxy does (the matchmaker's pages: `items` and `next_cursor`).
tests/workflows/test_rooms_e2e.py runs `gsf rooms` against the real platform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import cli.client as client_mod
import cli.rooms as rooms_mod
from tests.cli.standin import Recorder, answer_with, gsf

SERVER = "74575f4b6c9e0000aaaa"
OTHER = "abcdef0123456789abcd"
R1 = "rm-00aa11bb22cc33dd"
R2 = "rm-00aa11bb99999999"


def room(room_id: str, server_id: str, players: int, **over: Any) -> dict[str, Any]:
    return {"room_id": room_id, "server_id": server_id, "name": f"srv-{server_id[:4]}", "game": "duel",
            "node_id": "local", "ws_url": "ws://127.0.0.1:40000/ws", "labels": {"mode": "ranked"},
            "metadata": {"map": "dust"}, "players": players, "max_players": 2, "reserved": 0,
            "free_seats": 2 - players, "locked": False, "ready": True, "generation": 1, "created_at": 1.0e9,
            "heartbeat_at": 1.0e9, "options": {}, "status": "open", **over}


ROOMS = [room(SERVER, SERVER, 2), room(R1, SERVER, 1, metadata={"map": "x" * 200}), room(R2, SERVER, 0),
         room(OTHER, OTHER, 0, game="chess")]


class Api(Recorder):
    """The API's rooms routes, in pages of two, and the server upload."""

    def answer(self, request: httpx.Request) -> httpx.Response:
        path, q = request.url.path, request.url.params
        if path == "/api/v1/rooms":
            items = [r for r in ROOMS if not q.get("game") or r["game"] == q["game"]]
            start = int(q.get("cursor", 0))
            nxt = start + 2 if start + 2 < len(items) else None
            return httpx.Response(200, json={"items": items[start:start + 2],
                                             "next_cursor": None if nxt is None else str(nxt)})
        for r in ROOMS:
            if path == f"/api/v1/rooms/{r['room_id']}":
                return httpx.Response(200, json={**r, "state": {"turn": 3}})
        if path == "/api/v1/servers" and request.method == "POST":
            return httpx.Response(202, json={"id": OTHER, "name": "duel", "status": "pending", "status_url": "u",
                                             "workflow_id": "w", "workflow_url": "w"})
        return httpx.Response(404, json={"type": "https://gsf.dev/problems/room-not-found", "detail": f"no {path}"})


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Api:
    stand_in = Api()
    answer_with(monkeypatch, stand_in, client_mod, rooms_mod)
    return stand_in


def test_gsf_rooms_lists_every_page_with_server_players_and_free_seats(api: Api) -> None:
    listed = gsf("rooms")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, listed.stdout
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    # Short ids unique among the rooms: the two `rm-00aa11bb…` rooms need more than eight characters.
    assert set(rows) == {SERVER[:8], R1[:12], R2[:12], OTHER[:8]}, listed.stdout
    assert rows[SERVER[:8]][1:5] == [SERVER[:8], "duel", "2/2", "0"]
    assert rows[R1[:12]][1:5] == [SERVER[:8], "duel", "1/2", "1"]
    assert rows[OTHER[:8]][1:5] == [OTHER[:8], "chess", "0/2", "2"]
    assert "…" in " ".join(rows[R1[:12]]), "long metadata is cut in the table, on one line"
    assert lines[-1] == "4 rooms on 2 servers"
    assert [r.url.params.get("cursor") for r in api.seen] == [None, "2"]

    only = gsf("rooms", "--server", OTHER[:6], "--json")
    assert only.exit_code == 0, only.output
    assert [r["room_id"] for r in json.loads(only.stdout)["items"]] == [OTHER]
    chess = gsf("rooms", "--game", "chess")
    assert chess.exit_code == 0
    assert "1 room on 1 server" in chess.stdout


def test_gsf_rooms_shows_one_room_by_a_unique_prefix(api: Api) -> None:
    shown = gsf("rooms", R1[:12])
    assert shown.exit_code == 0, shown.output
    assert f"room_id    {R1}" in shown.stdout
    assert f"server_id  {SERVER}" in shown.stdout
    assert "players    1/2 (0 reserved, 1 free)" in shown.stdout
    assert '"turn": 3' in shown.stdout
    ambiguous = gsf("rooms", "rm-00aa")
    assert ambiguous.exit_code == 1
    assert R1 in ambiguous.output
    assert R2 in ambiguous.output
    missing = gsf("rooms", "rm-ffff")
    assert missing.exit_code == 1
    assert "no /api/v1/rooms/rm-ffff" in missing.output


def test_deploy_max_rooms_is_checked_then_sent(api: Api, tmp_path: Path) -> None:
    game = tmp_path / "duel.js"
    game.write_text("module.exports = { maxRooms: 8, onJoin() {} };\n")
    for rooms in ("0", "10001"):
        refused = gsf("deploy", str(game), "--max-rooms", rooms, "--no-wait")
        assert refused.exit_code == 2, refused.output
    assert api.seen == [], "nothing was sent"
    sent = gsf("deploy", str(game), "--max-rooms", "4", "--no-wait")
    assert sent.exit_code == 0, sent.output
    assert "max rooms 4" in sent.stderr
    body = api.seen[-1].content.decode()
    assert 'name="max_rooms"\r\n\r\n4\r\n' in body
