"""Alembic environment: runs on the connection `core.db.migrate` hands over (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib

from alembic import context
from sqlalchemy.exc import OperationalError

from core.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
if connection.dialect.name == "sqlite":
    # pysqlite opens a transaction only before DML, so a migration run that starts with DDL (a
    # downgrade dropping a table) would commit each statement at once and a failure further on
    # would leave the schema half-migrated; an explicit BEGIN makes the whole run one transaction.
    with contextlib.suppress(OperationalError):  # "within a transaction": one is open already
        connection.exec_driver_sql("BEGIN")
with context.begin_transaction():
    context.run_migrations()
