"""Fixtures of the 3D-model tests: the fake Tripo on a free port, Redis under a unique prefix, moto's S3."""

from __future__ import annotations

import asyncio
import inspect
import io
import os
import struct
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from fakes.tripo import FakeTripo, create_fake_tripo_app
from tests import leaks
from tests.conftest import reserve_port, unique
from tests.harness import Harness, platform, serve

REDIS_URL = "redis://127.0.0.1:6379/0"
PROBLEM = "application/problem+json"
HISTORIES = Path(__file__).parent / "histories"


async def record_history(h: Harness, workflow_id: str, name: str) -> None:
    """With GSF_RECORD_HISTORIES=1, keep this run's history for the replay test (after a deliberate change)."""
    if os.environ.get("GSF_RECORD_HISTORIES") != "1":
        return
    history = await h.client.get_workflow_handle(workflow_id).fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())


@dataclass
class FakeServer:
    fake: FakeTripo
    url: str
    key: str


@pytest.fixture
async def fake_tripo() -> AsyncIterator[FakeServer]:
    """A fresh fake Tripo per test, with its own key (so each test has its own slot semaphore too)."""
    key = f"tsk_{uuid.uuid4().hex}"
    fake = FakeTripo(api_keys={key}, generation_seconds=0.5)
    port = reserve_port()
    server, task = await serve(create_fake_tripo_app(fake), port)
    try:
        yield FakeServer(fake, f"http://127.0.0.1:{port}", key)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of our own in the real Redis, emptied afterwards."""
    prefix = f"gsf-test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def model_settings(base: Settings, fake: FakeServer, **extra: Any) -> Settings:
    """`base` pointed at the fake Tripo, polling fast."""
    values: dict[str, Any] = {"tripo_api_key": fake.key, "tripo_base_url": fake.url,
                              "tripo_poll_initial_seconds": 0.1, "tripo_poll_max_seconds": 0.3,
                              "tripo_deadline_seconds": 60.0}
    values.update(extra)
    return base.model_copy(update=values)


@pytest.fixture
async def h(settings: Settings, temporal_env: WorkflowEnvironment, fake_tripo: FakeServer,
            redis_prefix: str) -> AsyncIterator[Harness]:
    """API + control worker (no agent) on the local object store, with the Redis status cache."""
    s = model_settings(settings, fake_tripo, redis_url=REDIS_URL, model_status_cache_prefix=redis_prefix)
    async with platform(s, temporal_env.client, agent=False) as harness:
        yield harness


# --- S3 (moto's server mode on 127.0.0.1) -----------------------------------------------------


@dataclass
class S3Server:
    endpoint: str
    bucket: str


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # binds a free port itself
    server.start()
    host, port = server.get_host_and_port()
    leaks.keep_for_session(port=port)
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> Iterator[S3Server]:
    """A fresh bucket named like a Tencent COS one (<name>-<appid>)."""
    import boto3

    bucket = f"gsf-models-{uuid.uuid4().hex[:8]}-1250000000"
    client = boto3.session.Session().client("s3", endpoint_url=moto_endpoint, region_name="ap-guangzhou",
                                            aws_access_key_id="AKIDtest", aws_secret_access_key="secret")
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-guangzhou"})
    try:
        yield S3Server(moto_endpoint, bucket)
    finally:
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        for obj in listed:
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
        client.close()


def s3_settings(s3: S3Server) -> dict[str, Any]:
    return {"object_store": "s3", "s3_endpoint_url": s3.endpoint, "s3_bucket": s3.bucket,
            "s3_region": "ap-guangzhou", "s3_access_key": "AKIDtest", "s3_secret_key": "secret"}


# --- inputs and helpers ---------------------------------------------------------------------------


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48),
                color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def image_upload(data: bytes, filename: str = "photo.png", **fields: str) -> dict[str, Any]:
    return {"files": {"file": (filename, data, "application/octet-stream")}, "data": fields}


def parse_glb(data: bytes) -> dict[str, Any]:
    """Check a glTF 2.0 binary the way a loader would and answer its JSON chunk."""
    import json

    magic, version, length = struct.unpack("<4sII", data[:12])
    assert magic == b"glTF"
    assert version == 2
    assert length == len(data)
    json_len, json_type = struct.unpack("<II", data[12:20])
    assert json_type == 0x4E4F534A
    assert json_len % 4 == 0
    doc = json.loads(data[20:20 + json_len])
    offset = 20 + json_len
    bin_len, bin_type = struct.unpack("<II", data[offset:offset + 8])
    assert bin_type == 0x004E4942
    assert offset + 8 + bin_len == len(data)
    assert doc["asset"]["version"] == "2.0"
    assert doc["buffers"][0]["byteLength"] <= bin_len
    for view in doc["bufferViews"]:
        assert view["byteOffset"] + view["byteLength"] <= doc["buffers"][0]["byteLength"]
    return dict(doc)


async def wait_job(api: httpx.AsyncClient, job_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(int(timeout / 0.05)):
        resp = await api.get(f"/api/v1/models/{job_id}/status")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {statuses}: {body}")


async def wait_for(predicate: Any, timeout: float = 20, what: str = "condition") -> None:
    """Until `predicate()` (plain or async) is true."""
    for _ in range(int(timeout / 0.05)):
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


__all__ = ["FakeServer", "Path", "S3Server", "unique"]
