"""The Redis status cache on the real Redis: newer entries win, entries expire, failures fall through."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from core.model_cache import ModelStatusCache, ModelStatusDoc
from core.settings import Settings
from tests.models.conftest import REDIS_URL


@pytest.fixture
async def cache(redis_prefix: str) -> AsyncIterator[ModelStatusCache]:
    c = ModelStatusCache(Redis.from_url(REDIS_URL), redis_prefix, ttl_seconds=5)
    try:
        yield c
    finally:
        await c.close()


def doc(seq: int, status: str = "running", progress: int = 0) -> ModelStatusDoc:
    now = datetime.now(UTC)
    return ModelStatusDoc(job_id="job1", owner_id="u1", seq=seq, status=status, progress=progress,
                          created_at=now, updated_at=now)


async def test_put_get_and_newer_wins(cache: ModelStatusCache) -> None:
    assert await cache.get("job1") is None
    second = doc(2, progress=40)
    assert await cache.put(second)
    assert await cache.get("job1") == second
    # A reader that loaded an older row (seq 1) must not put it back over seq 2.
    assert not await cache.put(doc(1, status="queued"))
    assert (await cache.get("job1")).seq == 2  # type: ignore[union-attr]
    assert await cache.put(doc(3, status="success", progress=100))
    got = await cache.get("job1")
    assert got is not None
    assert (got.seq, got.status, got.progress) == (3, "success", 100)
    await cache.forget("job1")
    assert await cache.get("job1") is None


async def test_entries_expire(redis_prefix: str) -> None:
    short = ModelStatusCache(Redis.from_url(REDIS_URL), redis_prefix, ttl_seconds=0.2)
    try:
        await short.put(doc(1))
        ttl = await short.redis.pttl(short.key("job1"))
        assert 0 < ttl <= 200
        await asyncio.sleep(0.3)
        assert await short.get("job1") is None
    finally:
        await short.close()


async def test_garbage_entries_are_misses(cache: ModelStatusCache) -> None:
    await cache.redis.set(cache.key("job1"), b"not json")
    assert await cache.get("job1") is None
    assert await cache.put(doc(1)), "a garbage entry is replaced"


async def test_redis_down_falls_through() -> None:
    down = ModelStatusCache(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5), "x:", 5)
    try:
        assert await down.get("job1") is None
        assert not await down.put(doc(1))
        await down.forget("job1")
    finally:
        await down.close()


def test_no_redis_url_no_cache() -> None:
    assert ModelStatusCache.from_settings(Settings(env="test", redis_url="")) is None
