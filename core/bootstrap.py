"""First start: the admin user and its API key, created once."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from core import security
from core.datadir import make_private_dirs
from core.db.models import ApiKey, User
from core.db.session import SessionFactory


async def create_user_key(sessions: SessionFactory, email: str, *, admin: bool = False,
                          name: str = "") -> tuple[User, str]:
    """A user (created if missing) and a fresh API key for it; the key is returned once."""
    key, prefix, digest = security.new_api_key()
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, name=name or email.split("@")[0], is_admin=admin)
            session.add(user)
            await session.flush()
        scopes = ["servers", "models"] + (["admin"] if admin else [])
        session.add(ApiKey(user_id=user.id, name="bootstrap" if admin else "default", prefix=prefix,
                           key_hash=digest, scopes=scopes))
        await session.commit()
    return user, key


async def ensure_admin(sessions: SessionFactory, email: str, key_file: Path) -> str | None:
    """Create the admin and its key on first start; later starts return None (the key is never shown again)."""
    async with sessions() as session:
        exists = await session.scalar(select(User.id).where(User.is_admin.is_(True)).limit(1))
    if exists is not None:
        return None
    _, key = await create_user_key(sessions, email, admin=True, name="admin")
    make_private_dirs(key_file.parent)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an earlier start keeps its mode through O_TRUNC
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
