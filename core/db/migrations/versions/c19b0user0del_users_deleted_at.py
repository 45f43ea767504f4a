"""Users can be deleted: `users.deleted_at` (the row stays for the audit log and the user's records)

Revision ID: c19b0user0del
Revises: c19a0n0detok
Create Date: 2026-11-30 12:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'c19b0user0del'
down_revision = 'c19a0n0detok'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: it rebuilds `users` (DROP TABLE, with foreign keys on), and that deletes every
        # row referencing a user (webhooks, keys, servers...). SQLite >= 3.35 drops a column in place.
        op.execute("ALTER TABLE users DROP COLUMN deleted_at")
    else:
        op.drop_column('users', 'deleted_at')
