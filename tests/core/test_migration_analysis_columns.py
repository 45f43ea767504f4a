"""Revision c20a0column1: stored findings and rejection texts move from 0-based to 1-based columns
(issue #20, item 6), on SQLite and PostgreSQL, and back on downgrade."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from core.db.migrate import alembic_config, upgrade
from core.db.session import make_engine

REVISION = "c20a0column1"
AT = datetime(2026, 1, 2, tzinfo=UTC)
OLD_REPORT = {"ok": False, "sha256": "a" * 64, "size": 10, "findings": [
    {"rule": "eval", "severity": "block", "message": "eval() runs a string as code", "line": 2, "column": 30,
     "end_line": 2, "end_column": 34, "source_line": "x", "hint": "h"}]}
OLD_ERROR = "code rejected: eval at 2:30: eval() runs a string as code; process-env at 3:0: reads it"
NEW_ERROR = "code rejected: eval at 2:31: eval() runs a string as code; process-env at 3:1: reads it"


def _filler(column: sa.Column[Any]) -> Any:
    """A value for a NOT NULL column the test does not care about."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = str
    return {int: 0, float: 0.0, bool: False, dict: {}, list: [], datetime: AT}.get(kind, "x")


def _insert(conn: Connection, table_name: str, **values: Any) -> None:
    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
    row = {c.name: _filler(c) for c in table.columns
           if not c.nullable and c.server_default is None
           and not (c.primary_key and isinstance(c.type, sa.Integer))}
    row.update(values)
    conn.execute(table.insert().values(**row))


def _rows(conn: Connection) -> tuple[Any, ...]:
    server = conn.execute(sa.text("SELECT analysis, error FROM game_servers WHERE id = 's1'")).one()
    version = conn.execute(sa.text("SELECT analysis FROM game_versions WHERE id = 'v1'")).one()
    event = conn.execute(sa.text("SELECT message FROM server_events WHERE server_id = 's1'")).one()
    reports = [r if isinstance(r, dict) else json.loads(r) for r in (server[0], version[0])]
    return reports[0], server[1], reports[1], event[0]


async def test_stored_findings_become_1_based_and_back(database_url: str) -> None:
    from core.db.migrations.versions.c20a0column1_analysis_columns_1_based import down_revision

    engine = make_engine(database_url)
    try:
        await upgrade(engine, down_revision)
        async with engine.begin() as conn:
            def seed(sync: Connection) -> None:
                _insert(sync, "users", id="u1", email="old@example.com", name="old", created_at=AT)
                _insert(sync, "game_servers", id="s1", owner_id="u1", status="rejected", analysis=OLD_REPORT,
                        error=OLD_ERROR, created_at=AT, updated_at=AT)
                _insert(sync, "server_events", server_id="s1", seq=1, status="rejected", message=OLD_ERROR, at=AT)
                _insert(sync, "games", id="g1", owner_id="u1", name="g", created_at=AT, updated_at=AT)
                _insert(sync, "game_versions", id="v1", game_id="g1", version=1, analysis=OLD_REPORT,
                        created_at=AT)

            await conn.run_sync(seed)
        await upgrade(engine, REVISION)
        async with engine.begin() as conn:
            server_report, error, version_report, message = await conn.run_sync(_rows)
        for report in (server_report, version_report):
            (finding,) = report["findings"]
            assert (finding["line"], finding["column"], finding["end_column"]) == (2, 31, 35)
            assert report["sha256"] == "a" * 64
        assert error == NEW_ERROR
        assert message == NEW_ERROR

        def down(sync_conn: Connection) -> None:
            command.downgrade(alembic_config(sync_conn), down_revision)

        async with engine.begin() as conn:
            await conn.run_sync(down)
            server_report, error, version_report, message = await conn.run_sync(_rows)
        assert server_report == OLD_REPORT
        assert version_report == OLD_REPORT
        assert error == OLD_ERROR
        assert message == OLD_ERROR
        await upgrade(engine)
    finally:
        await engine.dispose()
