"""The records layer on SQLite and PostgreSQL: ordered status transitions, idempotent events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from activities.records import RecordActivities
from core.bootstrap import create_user_key, ensure_admin
from core.contracts import RecordStatusInput, ServerStatus
from core.db.models import GameServer, ServerEvent
from core.db.session import create_schema, make_engine, make_session_factory


async def make_server(database_url: str):
    engine = make_engine(database_url)
    await create_schema(engine)
    sessions = make_session_factory(engine)
    user, _ = await create_user_key(sessions, "dev@example.com")
    async with sessions() as s:
        s.add(GameServer(id="srv1", owner_id=user.id, name="n", game="g", source_sha256="0" * 64, max_players=2,
                         workflow_id="gameserver-srv1"))
        await s.commit()
    return engine, sessions


def rec(seq: int, status: ServerStatus, **kw: object) -> RecordStatusInput:
    return RecordStatusInput(server_id="srv1", seq=seq, status=status,
                             at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seq), **kw)  # type: ignore[arg-type]


async def test_out_of_order_records_keep_the_latest_status(database_url: str) -> None:
    engine, sessions = await make_server(database_url)
    acts = RecordActivities(sessions)
    assert (await acts.record_status(rec(3, ServerStatus.RUNNING, ws_url="ws://h:1/ws"))).applied
    assert not (await acts.record_status(rec(2, ServerStatus.STARTING, image="gsf-game:x"))).applied
    async with sessions() as s:
        server = await s.get(GameServer, "srv1")
        assert server is not None
        assert server.status == "running"
        assert server.status_seq == 3
        assert server.image == "gsf-game:x"
        assert server.ws_url == "ws://h:1/ws"
        seqs = (await s.scalars(select(ServerEvent.seq).where(ServerEvent.server_id == "srv1")
                                .order_by(ServerEvent.seq))).all()
        assert list(seqs) == [2, 3]
    await engine.dispose()


async def test_retried_record_is_idempotent(database_url: str) -> None:
    engine, sessions = await make_server(database_url)
    acts = RecordActivities(sessions)
    await acts.record_status(rec(1, ServerStatus.ANALYZING))
    await acts.record_status(rec(1, ServerStatus.ANALYZING))
    await acts.record_status(rec(2, ServerStatus.FAILED, message="boom"))
    async with sessions() as s:
        events = (await s.scalars(select(ServerEvent).where(ServerEvent.server_id == "srv1"))).all()
        assert [e.seq for e in events] == [1, 2]
        server = await s.get(GameServer, "srv1")
        assert server is not None
        assert server.status == "failed"
        assert server.error == "boom"
    await engine.dispose()


async def test_unknown_server_is_not_applied(database_url: str) -> None:
    engine, sessions = await make_server(database_url)
    result = await RecordActivities(sessions).record_status(
        RecordStatusInput(server_id="nope", seq=1, status=ServerStatus.RUNNING, at=datetime.now(UTC)))
    assert not result.applied
    await engine.dispose()


async def test_admin_is_created_once(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    await create_schema(engine)
    sessions = make_session_factory(engine)
    key = await ensure_admin(sessions, "admin@localhost", tmp_path / "admin.key")
    assert key
    assert (tmp_path / "admin.key").read_text().strip() == key
    assert (tmp_path / "admin.key").stat().st_mode & 0o777 == 0o600
    assert await ensure_admin(sessions, "admin@localhost", tmp_path / "admin.key") is None
    await engine.dispose()
