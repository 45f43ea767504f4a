"""Crash detail on server events, richer stat samples (pids, network, uptime) and admin
capacity overrides on nodes. Existing rows get zeros and empty overrides.

Revision ID: fc36c20ad1f0
Revises: 4eae6799879a
Create Date: 2026-11-22 14:17:27.834758
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'fc36c20ad1f0'
down_revision = '4eae6799879a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capacity', sa.JSON(), nullable=False, server_default='{}'))

    with op.batch_alter_table('server_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detail', sa.JSON(), nullable=True))

    with op.batch_alter_table('server_stats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pids', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('net_rx_bytes', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('net_tx_bytes', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('uptime_seconds', sa.Float(), nullable=False, server_default='0'))
        batch_op.alter_column('memory_bytes',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)



def downgrade() -> None:
    with op.batch_alter_table('server_stats', schema=None) as batch_op:
        batch_op.alter_column('memory_bytes',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)
        batch_op.drop_column('uptime_seconds')
        batch_op.drop_column('net_tx_bytes')
        batch_op.drop_column('net_rx_bytes')
        batch_op.drop_column('pids')

    with op.batch_alter_table('server_events', schema=None) as batch_op:
        batch_op.drop_column('detail')

    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_column('capacity')

