"""Node credentials: agent tokens issued, stored hashed, rotated and revoked (`node_credentials`)

Revision ID: c19a0n0detok
Revises: a35a74138564
Create Date: 2026-11-30 12:00:00.000000

Until this revision a node token was an HMAC of the node id, which nothing could revoke. Those
tokens stop authenticating; agents enroll again (see docs/operating.md, "Node credentials").
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'c19a0n0detok'
down_revision = 'a35a74138564'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('node_credentials',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('node_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_node_credentials_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_node_credentials_prefix'), ['prefix'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('node_credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_node_credentials_prefix'))
        batch_op.drop_index(batch_op.f('ix_node_credentials_node_id'))
    op.drop_table('node_credentials')
