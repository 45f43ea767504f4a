"""Webhook signing secrets sealed at rest (Fernet, key derived from GSF_SECRET_KEY); existing rows are sealed

Revision ID: a35a74138564
Revises: 2161bb5e75bb
Create Date: 2026-11-22 20:40:00.000000

The key is the platform's `secret_key`: the process's settings (GSF_SECRET_KEY, or the development
secret in the data folder), which every process of one platform shares, unless a caller hands one
over in the Alembic config's attributes (`secret_key`; the tests do). It is read only when there
are rows to convert, so a fresh database needs none.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from functools import cache

import sqlalchemy as sa
from alembic import context, op
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

revision = 'a35a74138564'
down_revision = '2161bb5e75bb'
branch_labels = None
depends_on = None

# A frozen copy of version 1 of `core.webhooks.seal_secret`: this migration must keep producing
# exactly this format whatever later code does (a later scheme gets a migration of its own).
SEALED_PREFIX = "fernet1:"
SEALING_LABEL = b"gsf/webhook-secrets/v1"

WEBHOOKS = sa.table("webhooks", sa.column("id", sa.String()), sa.column("secret", sa.Text()))


@cache
def _fernet() -> Fernet:
    secret_key = context.config.attributes.get("secret_key")
    if not secret_key:
        from core.settings import get_settings

        secret_key = get_settings().secret_key
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEALING_LABEL).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _rewrite(convert: Callable[[str], str | None]) -> None:
    """Apply `convert` to every stored secret; None leaves a row as it is."""
    conn = op.get_bind()
    for row_id, secret in conn.execute(sa.select(WEBHOOKS.c.id, WEBHOOKS.c.secret)).all():
        new = convert(secret)
        if new is not None:
            conn.execute(WEBHOOKS.update().where(WEBHOOKS.c.id == row_id).values(secret=new))


def _seal(secret: str) -> str | None:
    if secret.startswith(SEALED_PREFIX):
        return None  # already sealed (a partial earlier run, or a row written by new code)
    return SEALED_PREFIX + _fernet().encrypt(secret.encode()).decode()


def _open(secret: str) -> str | None:
    if not secret.startswith(SEALED_PREFIX):
        return None
    # InvalidToken here (another secret_key) aborts the downgrade: its transaction rolls back.
    return _fernet().decrypt(secret[len(SEALED_PREFIX):].encode()).decode()


def upgrade() -> None:
    # Sealed secrets are longer than the 200 characters a plain one may have.
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.String(length=200), type_=sa.Text(),
                              existing_nullable=False)
    _rewrite(_seal)
    _fernet.cache_clear()


def downgrade() -> None:
    _rewrite(_open)
    _fernet.cache_clear()
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.Text(), type_=sa.String(length=200),
                              existing_nullable=False)
