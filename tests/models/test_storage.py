"""Both object stores keep the same content-addressed contract: a local folder, and S3 on moto's server."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from core.artifacts import LocalArtifactStore
from core.settings import Settings
from core.storage import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    object_key,
    open_object_store,
)
from tests.models.conftest import S3Server, s3_settings


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        opened: ObjectStore = LocalObjectStore(tmp_path / "artifacts")
    else:
        s3: S3Server = request.getfixturevalue("s3_bucket")
        opened = open_object_store(Settings(env="test", data_dir=tmp_path, **s3_settings(s3)))
        assert isinstance(opened, S3ObjectStore)
    try:
        yield opened
    finally:
        await opened.close()


async def test_put_get_stream_delete(store: ObjectStore, tmp_path: Path) -> None:
    data = b"glTF" + bytes(range(256)) * 3000
    sha = hashlib.sha256(data).hexdigest()
    assert await store.size("models", sha) is None
    stored = await store.put_bytes("models", data, "model/gltf-binary")
    assert (stored.key, stored.sha256, stored.size) == (f"models/{sha[:2]}/{sha}", sha, len(data))
    again = await store.put_bytes("models", data, "model/gltf-binary")
    assert again == stored, "content-addressed: the same bytes, the same key"
    assert await store.get_bytes("models", sha) == data
    chunks = [c async for c in store.stream("models", sha)]
    assert len(chunks) > 1
    assert b"".join(chunks) == data
    assert await store.size("models", sha) == len(data)
    await store.delete("models", sha)
    assert await store.size("models", sha) is None
    with pytest.raises(KeyError):
        await store.get_bytes("models", sha)
    with pytest.raises(KeyError):
        [c async for c in store.stream("models", sha)]
    await store.delete("models", sha)  # idempotent


async def test_put_file_streams_from_disk(store: ObjectStore, tmp_path: Path) -> None:
    data = b"x" * (6 * 1024 * 1024 + 7)  # over boto3's multipart threshold
    path = tmp_path / "model.glb"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    stored = await store.put_file("models", path, sha, "model/gltf-binary")
    assert stored.size == len(data)
    assert await store.get_bytes("models", sha) == data


async def test_keys_are_checked(store: ObjectStore) -> None:
    for kind, sha in [("models", "../../etc/passwd"), ("../x", "a" * 64), ("models", "A" * 64)]:
        with pytest.raises(ValueError, match="invalid object key"):
            await store.size(kind, sha)
    with pytest.raises(ValueError, match="invalid object key"):
        object_key("models", "abc")


async def test_presigned_urls(store: ObjectStore) -> None:
    data = b"glTF-presigned"
    stored = await store.put_bytes("models", data, "model/gltf-binary")
    url = await store.presigned_url("models", stored.sha256, "m.glb", "model/gltf-binary")
    if isinstance(store, LocalObjectStore):
        assert url is None
        return
    assert url is not None
    assert "X-Amz-Signature" in url
    assert "X-Amz-Expires=600" in url
    async with httpx.AsyncClient() as http:
        resp = await http.get(url)
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["content-type"] == "model/gltf-binary"
    assert 'filename="m.glb"' in resp.headers["content-disposition"]


async def test_check(store: ObjectStore) -> None:
    await store.check()


async def test_missing_bucket_fails_the_check(tmp_path: Path, moto_endpoint: str) -> None:
    store = open_object_store(Settings(env="test", data_dir=tmp_path, **s3_settings(
        S3Server(moto_endpoint, "no-such-bucket-1250000000"))))
    try:
        with pytest.raises(ClientError):  # a 404 or a 403, whatever the store answers for a missing bucket
            await store.check()
    finally:
        await store.close()


def test_s3_needs_a_bucket(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="GSF_S3_BUCKET"):
        open_object_store(Settings(env="test", data_dir=tmp_path, object_store="s3"))


async def test_local_layout_is_the_artifact_stores(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    stored = await store.put_bytes("models", b"same layout", "model/gltf-binary")
    assert LocalArtifactStore(tmp_path).get("models", stored.sha256) == b"same layout"
    assert (tmp_path / stored.key).is_file()
