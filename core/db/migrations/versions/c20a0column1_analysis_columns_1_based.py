"""Stored analysis findings count columns from 1, as the analyzer now reports them (issue #20)

Before this revision the analyzer reported 0-based columns (`eval at 2:30`); it now reports them
1-based, as editors show them (`eval at 2:31`, docs/analysis.md "Positions"). Reports stored
with game servers and game versions, and the rejection text kept in a server's `error` and its
`rejected` events, are shifted so old and new records read the same way. Data only; downgrade
shifts back.

Revision ID: c20a0column1
Revises: c19b0user0del
Create Date: 2026-12-01 12:00:00.000000
"""
from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = 'c20a0column1'
down_revision = 'c19b0user0del'
branch_labels = None
depends_on = None

# "code rejected: eval at 2:30: message; process-env at 3:4: message" (workflows/gameserver.py)
_REJECTION = re.compile(r"\b([a-z][a-z0-9]*(?:-[a-z0-9]+)*) at (\d+):(\d+):")
_J, _S = sa.JSON(), sa.String()
SERVERS = sa.table("game_servers", sa.column("id", _S), sa.column("analysis", _J), sa.column("error", sa.Text()))
VERSIONS = sa.table("game_versions", sa.column("id", _S), sa.column("analysis", _J))
EVENTS = sa.table("server_events", sa.column("id", sa.Integer()), sa.column("status", _S),
                  sa.column("message", sa.Text()))


def shift_report(report: Any, by: int) -> Any:
    """The report with every finding's column and end_column moved by `by` (never below 0)."""
    if not isinstance(report, dict) or not isinstance(report.get("findings"), list):
        return report
    findings = []
    for finding in report["findings"]:
        if isinstance(finding, dict):
            finding = dict(finding)
            for key in ("column", "end_column"):
                if isinstance(finding.get(key), int):
                    finding[key] = max(0, finding[key] + by)
        findings.append(finding)
    return {**report, "findings": findings}


def shift_text(text: str | None, by: int) -> str | None:
    if not text or "code rejected:" not in text:
        return text
    return _REJECTION.sub(lambda m: f"{m[1]} at {m[2]}:{max(0, int(m[3]) + by)}:", text)


def _shift(by: int) -> None:
    conn = op.get_bind()
    for table in (SERVERS, VERSIONS):
        has_error = table is SERVERS
        columns = [table.c.id, table.c.analysis] + ([table.c.error] if has_error else [])
        for row in conn.execute(sa.select(*columns)).all():
            values: dict[str, Any] = {}
            if row.analysis is not None:
                shifted = shift_report(row.analysis, by)
                if shifted != row.analysis:
                    values["analysis"] = shifted
            if has_error and shift_text(row.error, by) != row.error:
                values["error"] = shift_text(row.error, by)
            if values:
                conn.execute(table.update().where(table.c.id == row.id).values(**values))
    rejected = sa.select(EVENTS.c.id, EVENTS.c.message).where(EVENTS.c.status == "rejected")
    for row in conn.execute(rejected).all():
        text = shift_text(row.message, by)
        if text != row.message:
            conn.execute(EVENTS.update().where(EVENTS.c.id == row.id).values(message=text))


def upgrade() -> None:
    _shift(+1)


def downgrade() -> None:
    _shift(-1)
