"""Durable rooms: the last snapshot of each durable room (`room_snapshots`, issue #25)

Revision ID: d25a0snapshot
Revises: c20a0column1
Create Date: 2026-12-02 12:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'd25a0snapshot'
down_revision = 'c20a0column1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('room_snapshots',
    sa.Column('room_id', sa.String(length=128), nullable=False),
    sa.Column('server_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('instance', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('snapshot', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['server_id'], ['game_servers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('room_id')
    )
    with op.batch_alter_table('room_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_room_snapshots_server_id'), ['server_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('room_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_room_snapshots_server_id'))
    op.drop_table('room_snapshots')
