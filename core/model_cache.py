"""Redis cache of 3D-model job status (DESIGN §6): reads go through it when GSF_REDIS_URL is set.

The database stays the source of truth. The control worker's `record_model_status` activity replaces
the cached entry right after it commits a transition; the API fills a missing entry from the row it
read. Every entry carries the row's `seq`, and one Lua script refuses to replace a newer entry with an
older one, so a slow reader can never put a stale status back after a transition. Entries expire after
`model_status_cache_ttl` seconds; a Redis failure is logged and the read falls through to the database.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, overload

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.db.models import ModelJob
from core.settings import Settings

log = logging.getLogger("gsf.models.cache")

# KEYS[1] entry; ARGV[1] JSON with a numeric `seq`, ARGV[2] that seq, ARGV[3] TTL in ms.
_PUT_IF_NEWER = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if ok and type(doc) == 'table' and tonumber(doc['seq']) and tonumber(doc['seq']) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""


class ModelStatusDoc(BaseModel):
    """What a status read needs, as cached: the row's status fields, its owner and its `seq`."""

    job_id: str
    owner_id: str
    seq: int
    status: str
    progress: int
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


def status_doc(job: ModelJob) -> ModelStatusDoc:
    return ModelStatusDoc(job_id=job.id, owner_id=job.owner_id, seq=job.status_seq, status=job.status,
                          progress=job.progress, error_code=job.error_code, error_message=job.error_message,
                          created_at=_utc(job.created_at), updated_at=_utc(job.updated_at),
                          started_at=_utc(job.started_at), finished_at=_utc(job.finished_at))


@overload
def _utc(value: datetime) -> datetime: ...


@overload
def _utc(value: None) -> None: ...


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time the platform stores is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ModelStatusCache:
    def __init__(self, redis: Redis, prefix: str, ttl_seconds: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self._put = redis.register_script(_PUT_IF_NEWER)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStatusCache | None:
        """None when no Redis is configured: reads then go straight to the database."""
        if not settings.redis_url:
            return None
        redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return cls(redis, settings.model_status_cache_prefix, settings.model_status_cache_ttl)

    def key(self, job_id: str) -> str:
        return f"{self.prefix}{job_id}"

    async def get(self, job_id: str) -> ModelStatusDoc | None:
        try:
            raw: Any = await self.redis.get(self.key(job_id))
        except RedisError as exc:
            log.warning("status cache read failed (%s); reading the database", exc)
            return None
        if raw is None:
            return None
        try:
            return ModelStatusDoc.model_validate_json(raw)
        except ValidationError:
            return None  # an entry from another version: treat as a miss, the next write replaces it

    async def put(self, doc: ModelStatusDoc) -> bool:
        """Store `doc` unless a newer one is cached; False when refused or when Redis fails."""
        try:
            stored = await self._put(keys=[self.key(doc.job_id)],
                                     args=[doc.model_dump_json(), doc.seq, self.ttl_ms])
        except RedisError as exc:
            log.warning("status cache write for %s failed: %s", doc.job_id, exc)
            return False
        return bool(stored)

    async def forget(self, job_id: str) -> None:
        try:
            await self.redis.delete(self.key(job_id))
        except RedisError as exc:
            log.warning("status cache delete for %s failed: %s", job_id, exc)

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()
