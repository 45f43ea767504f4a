"""A migrated platform database made once a session and copied for each test (issue #26, time).

Bringing a new database to the newest schema runs every Alembic migration: about 0.12 s on SQLite
and 0.3–0.6 s on PostgreSQL here, for each of the hundreds of databases a run makes. The template is
made by those same migrations (`core.db.session.create_schema`) once, then copied: a SQLite file
(`VACUUM INTO` makes a standalone copy of the WAL-mode database), a PostgreSQL database by
`CREATE DATABASE ... TEMPLATE`. The platform's own `create_schema` still runs on every copy, as on
any start, and finds it at the newest revision.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.db.session import create_schema, make_engine

SQLITE_PREFIX = "sqlite+aiosqlite:///"
_lock = threading.Lock()
_sqlite_template: Path | None = None


def _migrate(url: str) -> None:
    """Run the migrations on `url` on a loop of its own in a thread (callers may be inside a loop)."""

    async def run() -> None:
        engine = make_engine(url)
        try:
            await create_schema(engine)
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def seed_sqlite(url: str) -> None:
    """A SQLite database that does not exist yet starts as a copy of the migrated template."""
    global _sqlite_template
    if not url.startswith(SQLITE_PREFIX):
        return
    target = Path(url.removeprefix(SQLITE_PREFIX))
    if target.exists():
        return
    with _lock:
        if _sqlite_template is None:
            folder = Path(tempfile.mkdtemp(prefix="gsf-schema-"))
            atexit.register(shutil.rmtree, folder, True)
            built = folder / "built.db"
            _migrate(SQLITE_PREFIX + str(built))
            template = folder / "template.db"
            with sqlite3.connect(built) as db:
                db.execute("VACUUM INTO ?", (str(template),))
            _sqlite_template = template
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template, target)


class PostgresTemplate:
    """One migrated PostgreSQL database that new test databases are created from."""

    def __init__(self) -> None:
        self.name = ""

    def clause(self, admin: Callable[[str], None]) -> str:
        """` TEMPLATE "<name>"` for a CREATE DATABASE, the template made on first use with `admin`
        (a callable running one admin statement)."""
        with _lock:
            if not self.name:
                name = "gsf_test_template_" + uuid.uuid4().hex[:8]
                admin(f'CREATE DATABASE "{name}"')
                _migrate(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
                self.name = name
        return f' TEMPLATE "{self.name}"'

    def drop(self, admin: Callable[[str], None]) -> None:
        if self.name:
            admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.name = ""

