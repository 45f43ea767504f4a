"""The CLI against the real API (issue #20, items 8, 9 and 11): id prefixes and 80-column tables on
the real list route, `--max-players 0` refused by both alike, and a 429 of the real rate limiter
waited out (it answers before the route runs, so a refused upload left nothing behind). Here, not in
tests/cli/: that folder is held to opening no platform database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import Result

from cli.client import short_ids
from core.db.models import GameServer, User
from core.errors import PROBLEM_BASE
from core.settings import Settings
from tests.harness import Harness, platform

pytestmark = [pytest.mark.temporal]

A = "74575f4b6c9e0000aaaa"
B = "74575f4b6c9e1111bbbb"
C = "abcdef0123456789abcd"


async def gsf(h: Harness, key: str, *args: str) -> Result:
    return await h.cli(key, *args, columns=80)


async def test_prefixes_and_tables_at_80_columns(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.sessions() as s:
        owner = await s.scalar(select(User).where(User.email == "dev@example.com"))
        assert owner is not None
        for sid, status, url in ((A, "running", "ws://127.0.0.1:40001/ws"),
                                 (B, "running", "ws://play.example.com:40002/ws"),
                                 (C, "stopped", None)):
            s.add(GameServer(id=sid, owner_id=owner.id, name=f"game {sid[:4]}", game="tictactoe",
                             source_sha256="0" * 64, max_players=2, workflow_id=f"gameserver-{sid}", status=status,
                             node_id="local", ws_url=url))
        await s.commit()

    listed = await gsf(h, key, "servers")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert max(map(len, lines)) <= 80, listed.stdout
    assert "…" not in listed.stdout, listed.stdout
    short = short_ids([A, B, C])
    assert short == {A: A[:13], B: B[:13], C: C[:8]}
    for sid, url in ((A, "ws://127.0.0.1:40001/ws"), (B, "ws://play.example.com:40002/ws")):
        assert any(line.startswith(short[sid] + " ") and url in line for line in lines), listed.stdout

    for sid in (A, B, C):  # every id the table prints is taken back
        shown = await gsf(h, key, "server", short[sid])
        assert shown.exit_code == 0, shown.output
        assert sid in shown.stdout, shown.output
    ambiguous = await gsf(h, key, "server", A[:8])
    assert ambiguous.exit_code == 1
    assert A in ambiguous.output
    assert B in ambiguous.output
    assert (await gsf(h, key, "logs", C[:8])).exit_code == 0
    stopped = await gsf(h, key, "stop", C[:8])
    assert stopped.exit_code == 0, stopped.output
    assert f"{C}: stopped" in stopped.stdout, stopped.output
    missing = await gsf(h, key, "server", "f00dcafe")
    assert missing.exit_code == 1, "a prefix of no id goes to the API, which answers 404"


async def test_max_players_zero_is_refused_by_the_cli_as_by_the_api(h: Harness, tmp_path: Path) -> None:
    key = await h.user_key("dev@example.com")
    game = tmp_path / "g.js"
    game.write_text("module.exports = { maxPlayers: 32, onJoin() {} };\n")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/servers", data={"name": "g", "max_players": "0"},
                              files={"file": ("g.js", game.read_bytes())})
        assert resp.status_code == 422
        assert resp.json()["type"] == PROBLEM_BASE + "validation-error"
        refused = await gsf(h, key, "deploy", str(game), "--max-players", "0", "--no-wait")
        assert refused.exit_code == 2, refused.output
        assert (await api.get("/api/v1/servers")).json()["count"] == 0, "the CLI sent nothing"


@pytest.fixture
async def limited(settings: Settings, temporal_env: Any) -> Any:
    # One request per key at once, refilled in 2 s: the next one is answered 429, Retry-After 2.
    tight = settings.model_copy(update={"api_rate_per_key": 0.5, "api_burst_per_key": 1})
    async with platform(tight, temporal_env.client, agent=False) as harness:
        yield harness


async def test_a_429_is_waited_out(limited: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = limited
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        assert (await api.get("/api/v1/servers")).status_code == 200
        refused = await api.post("/api/v1/servers", data={"name": "g"},
                                 files={"file": ("g.js", b"module.exports = { onJoin() {} };\n")})
    assert refused.status_code == 429
    assert refused.json()["type"] == PROBLEM_BASE + "rate-limited"
    assert int(refused.headers["retry-after"]) >= 1
    # Refused before the route ran: no server, no stored upload. So the CLI may send a POST again.
    async with h.sessions() as s:
        assert (await s.scalars(select(GameServer))).all() == []
    sources = h.settings.artifact_dir / "sources"
    assert not sources.exists() or not any(sources.iterdir())

    # The bucket is still empty: the CLI's first try is refused, and it tries again after Retry-After.
    import cli.client

    waits: list[float] = []

    def pause(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(cli.client, "pause", pause)
    listed = await gsf(h, key, "servers", "--json")
    assert listed.exit_code == 0, listed.output
    assert waits, waits
    assert all(1 <= w <= 2 for w in waits), waits
