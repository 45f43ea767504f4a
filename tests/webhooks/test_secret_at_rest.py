"""Webhook signing secrets are sealed in the database: the migration seals old rows (and unseals on
downgrade), new ones are stored sealed, and deliveries still verify with the secret the owner was shown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from cryptography.fernet import InvalidToken
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.migrate import alembic_config, upgrade
from core.db.models import Webhook
from core.db.session import make_engine
from core.settings import get_settings
from core.webhooks import SEALED_PREFIX, SecretUnreadable, open_secret, seal_secret
from tests.harness import Harness
from tests.webhooks.conftest import Receiver, create_webhook, load_sample

sample = load_sample()
BEFORE = "2161bb5e75bb"  # the revision before secrets were sealed
SEALED = "a35a74138564"
KEY = "a-platform-secret-key-for-this-test"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
USERS = sa.table("users", sa.column("id", sa.String()), sa.column("email", sa.String()),
                 sa.column("name", sa.String()), sa.column("is_admin", sa.Boolean()),
                 sa.column("created_at", sa.DateTime(timezone=True)))
HOOKS = sa.table("webhooks", *(sa.column(c, sa.String()) for c in ("id", "owner_id", "url", "description", "secret")),
                 sa.column("events", sa.JSON()), sa.column("enabled", sa.Boolean()),
                 sa.column("created_at", sa.DateTime(timezone=True)),
                 sa.column("updated_at", sa.DateTime(timezone=True)))
PLAIN = {"h1": "whsec_" + "a" * 40, "h2": "s" * 200, "h3": "ünïcode-secret-✓-of-length"}


async def alembic(engine: AsyncEngine, run: Callable[[Config, str], None], revision: str,
                  secret_key: str | None = KEY) -> None:
    def go(conn: Connection) -> None:
        cfg = alembic_config(conn)
        if secret_key is not None:
            cfg.attributes["secret_key"] = secret_key
        run(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(go)


async def stored(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        return {row[0]: row[1] for row in (await conn.execute(sa.select(HOOKS.c.id, HOOKS.c.secret))).all()}


async def schema_before_with_a_user(engine: AsyncEngine) -> None:
    """The schema as it was before sealing, and the user u1 who owns the webhooks."""
    await alembic(engine, command.upgrade, BEFORE)
    async with engine.begin() as conn:
        await conn.execute(USERS.insert().values(id="u1", email="old@example.com", name="old", is_admin=False,
                                                 created_at=AT))


async def test_the_migration_seals_existing_secrets_and_the_downgrade_unseals_them(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await schema_before_with_a_user(engine)
        async with engine.begin() as conn:
            await conn.execute(HOOKS.insert(), [
                {"id": hid, "owner_id": "u1", "url": "https://hooks.example.com/" + hid, "description": "",
                 "secret": secret, "events": ["server.running"], "enabled": True, "created_at": AT,
                 "updated_at": AT} for hid, secret in PLAIN.items()])

        await alembic(engine, command.upgrade, "head")
        sealed = await stored(engine)
        for hid, secret in PLAIN.items():
            assert sealed[hid].startswith(SEALED_PREFIX)
            assert secret not in sealed[hid]
            assert open_secret(KEY, sealed[hid]) == secret
        with pytest.raises(SecretUnreadable):
            open_secret("another-platform-secret-key", sealed["h1"])
        await alembic(engine, command.upgrade, "head")  # a second run is a no-op
        assert await stored(engine) == sealed

        # Downgrading under another key must not write garbage: it fails and changes nothing.
        with pytest.raises(InvalidToken):
            await alembic(engine, command.downgrade, BEFORE, secret_key="another-platform-secret-key")
        assert await stored(engine) == sealed

        await alembic(engine, command.downgrade, BEFORE)
        assert await stored(engine) == PLAIN
        await alembic(engine, command.upgrade, SEALED)
        assert {hid: open_secret(KEY, value) for hid, value in (await stored(engine)).items()} == PLAIN
    finally:
        await engine.dispose()


async def test_without_a_key_handed_over_the_migration_uses_the_settings(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What every process does at start: `create_schema` hands no key over; GSF_SECRET_KEY is the key."""
    monkeypatch.setenv("GSF_SECRET_KEY", KEY)
    get_settings.cache_clear()
    engine = make_engine(database_url)
    try:
        await schema_before_with_a_user(engine)
        async with engine.begin() as conn:
            await conn.execute(HOOKS.insert().values(
                id="h1", owner_id="u1", url="https://hooks.example.com/", description="", secret=PLAIN["h1"],
                events=["server.running"], enabled=True, created_at=AT, updated_at=AT))
        await upgrade(engine)
        assert open_secret(KEY, (await stored(engine))["h1"]) == PLAIN["h1"]
    finally:
        await engine.dispose()
        get_settings.cache_clear()


def test_sealing_is_randomised_and_bound_to_the_key() -> None:
    one, two = seal_secret(KEY, "whsec_x"), seal_secret(KEY, "whsec_x")
    assert one != two
    assert open_secret(KEY, one) == open_secret(KEY, two) == "whsec_x"
    for bad in ("whsec_x", SEALED_PREFIX + "not-a-token", SEALED_PREFIX):
        with pytest.raises(SecretUnreadable):
            open_secret(KEY, bad)


@pytest.mark.temporal
async def test_a_new_secret_is_stored_sealed_and_deliveries_verify_with_the_original(
        hp: Harness, receiver: Receiver) -> None:
    key = await hp.user_key("dev@example.com")
    secret = "whsec_the-one-the-owner-keeps-" + "x" * 10
    async with hp.api(key) as api:
        hook = await create_webhook(api, receiver.url + "/sealed", ["server.running"], secret=secret)
        assert hook["secret"] == secret, "shown once, as today"
        generated = await create_webhook(api, receiver.url + "/generated", ["server.running"])
        for got in [(await api.get(f"/api/v1/webhooks/{hook['id']}")).json(),
                    *(await api.get("/api/v1/webhooks")).json()["items"]]:
            assert "secret" not in got
            assert secret not in str(got)

        async with hp.sessions() as s:
            raw = {row[0]: row[1] for row in (await s.execute(sa.text("SELECT id, secret FROM webhooks"))).all()}
        assert set(raw) == {hook["id"], generated["id"]}
        assert secret not in raw[hook["id"]]
        assert generated["secret"] not in raw[generated["id"]]
        assert raw[hook["id"]].startswith(SEALED_PREFIX)
        async with hp.sessions() as s:
            row = await s.get(Webhook, hook["id"])
            assert row is not None
            assert row.secret == raw[hook["id"]]

        for created, path in ((hook, "/sealed"), (generated, "/generated")):
            assert (await api.post(f"/api/v1/webhooks/{created['id']}/test")).status_code == 202
            (got,) = await receiver.wait(path)
            event = sample.verify(created["secret"], got.headers["x-gsf-signature"], got.body)
            assert event["type"] == "webhook.test"


@pytest.mark.temporal
async def test_a_secret_sealed_under_another_key_fails_the_delivery_and_says_why(
        hp: Harness, receiver: Receiver) -> None:
    key = await hp.user_key("dev@example.com")
    async with hp.api(key) as api:
        hook = await create_webhook(api, receiver.url + "/rekeyed", ["server.running"])
        async with hp.sessions() as s:
            row = await s.get(Webhook, hook["id"])
            assert row is not None
            row.secret = seal_secret("the-platform-key-before-a-change", hook["secret"])
            await s.commit()
        queued = (await api.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
        for _ in range(300):
            delivery = (await api.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"][0]
            if delivery["status"] != "pending":
                break
            await asyncio.sleep(0.1)
        assert delivery["id"] == queued["id"], delivery
        assert delivery["status"] == "failed", delivery
        assert "GSF_SECRET_KEY" in (delivery["last_error"] or "")
        assert receiver.at("/rekeyed") == []
