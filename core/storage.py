"""Object store for uploaded images and generated GLB models: a local folder or an S3-compatible bucket.

Keys are content-addressed, `<kind>/<sha[:2]>/<sha>`, the layout of `core.artifacts.LocalArtifactStore`, so
the same bytes are stored once and a retried write is harmless. The API and the control worker each open
one store from settings (`open_object_store`); every call is async (file and boto3 I/O run in threads).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.artifacts import LocalArtifactStore
from core.settings import Settings

CHUNK = 256 * 1024
_SHA = re.compile(r"^[0-9a-f]{64}$")


def object_key(kind: str, sha: str) -> str:
    """The key of content `sha` of `kind` (`models`, `images`); refuses anything that is not a sha256."""
    if not _SHA.match(sha) or not kind.isidentifier():
        raise ValueError(f"invalid object key {kind}/{sha}")
    return f"{kind}/{sha[:2]}/{sha}"


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


class ObjectStore(Protocol):
    """What the platform needs from a blob store; both implementations keep the same keys."""

    kind_name: str

    async def put_bytes(self, kind: str, data: bytes, content_type: str) -> StoredObject: ...

    async def put_file(self, kind: str, path: Path, sha: str, content_type: str) -> StoredObject:
        """Store a finished temporary file whose sha256 the caller computed while writing it."""
        ...

    async def get_bytes(self, kind: str, sha: str) -> bytes: ...

    def stream(self, kind: str, sha: str) -> AsyncIterator[bytes]: ...

    async def size(self, kind: str, sha: str) -> int | None:
        """The stored size, or None when the object is missing."""
        ...

    async def delete(self, kind: str, sha: str) -> None: ...

    async def presigned_url(self, kind: str, sha: str, filename: str, content_type: str) -> str | None:
        """A short-lived download URL, or None when the store cannot give one (the local folder)."""
        ...

    async def check(self) -> None:
        """Raise if the store does not answer (readiness)."""
        ...

    async def close(self) -> None: ...


class LocalObjectStore:
    """The embedded default: files under the artifact folder, written atomically."""

    kind_name = "local"

    def __init__(self, root: Path) -> None:
        self.artifacts = LocalArtifactStore(root)
        self.root = root

    async def put_bytes(self, kind: str, data: bytes, content_type: str) -> StoredObject:
        sha = await asyncio.to_thread(self.artifacts.put, kind, data)
        return StoredObject(object_key(kind, sha), sha, len(data))

    async def put_file(self, kind: str, path: Path, sha: str, content_type: str) -> StoredObject:
        return await asyncio.to_thread(self._put_file, kind, path, sha)

    def _put_file(self, kind: str, path: Path, sha: str) -> StoredObject:
        target = self.root / object_key(kind, sha)
        size = path.stat().st_size
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # A copy into the target folder first: `path` may live on another filesystem, and the
            # final rename must be atomic so a reader never sees half a model.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return StoredObject(object_key(kind, sha), sha, size)

    async def get_bytes(self, kind: str, sha: str) -> bytes:
        return await asyncio.to_thread(self.artifacts.get, kind, sha)

    async def stream(self, kind: str, sha: str) -> AsyncIterator[bytes]:
        path = self.root / object_key(kind, sha)
        try:
            f = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise KeyError(object_key(kind, sha)) from None
        try:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                yield chunk
        finally:
            f.close()

    async def size(self, kind: str, sha: str) -> int | None:
        path = self.root / object_key(kind, sha)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def delete(self, kind: str, sha: str) -> None:
        await asyncio.to_thread(self.artifacts.delete, kind, sha)

    async def presigned_url(self, kind: str, sha: str, filename: str, content_type: str) -> str | None:
        return None

    async def check(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise PermissionError(f"{self.root} is not writable")

        await asyncio.to_thread(probe)

    async def close(self) -> None:
        return None


class S3ObjectStore:
    """An S3-compatible bucket through boto3 (AWS S3, Tencent COS at https://cos.<region>.myqcloud.com, MinIO)."""

    kind_name = "s3"

    def __init__(self, client: Any, bucket: str, presign_seconds: int = 600) -> None:
        self.client = client
        self.bucket = bucket
        self.presign_seconds = presign_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        import boto3
        from botocore.config import Config

        if not settings.s3_bucket:
            raise ValueError("GSF_OBJECT_STORE=s3 needs GSF_S3_BUCKET (for Tencent COS: <name>-<appid>)")
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region or None,
            aws_access_key_id=settings.s3_access_key or None,
            aws_secret_access_key=settings.s3_secret_key or None,
            config=Config(signature_version="s3v4", s3={"addressing_style": settings.s3_addressing_style},
                          retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60),
        )
        return cls(client, settings.s3_bucket, settings.s3_presign_seconds)

    async def put_bytes(self, kind: str, data: bytes, content_type: str) -> StoredObject:
        sha = hashlib.sha256(data).hexdigest()
        key = object_key(kind, sha)
        if await self.size(kind, sha) is None:
            await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=data,
                                    ContentType=content_type)
        return StoredObject(key, sha, len(data))

    async def put_file(self, kind: str, path: Path, sha: str, content_type: str) -> StoredObject:
        key = object_key(kind, sha)
        size = path.stat().st_size
        if await self.size(kind, sha) is None:
            # upload_file streams from disk (multipart for large files): the model never sits in memory.
            await asyncio.to_thread(self.client.upload_file, str(path), self.bucket, key,
                                    ExtraArgs={"ContentType": content_type})
        return StoredObject(key, sha, size)

    async def get_bytes(self, kind: str, sha: str) -> bytes:
        key = object_key(kind, sha)
        try:
            resp = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            raise KeyError(key) from None
        body = resp["Body"]
        try:
            data: bytes = await asyncio.to_thread(body.read)
        finally:
            body.close()
        return data

    async def stream(self, kind: str, sha: str) -> AsyncIterator[bytes]:
        key = object_key(kind, sha)
        try:
            resp = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            raise KeyError(key) from None
        body = resp["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def size(self, kind: str, sha: str) -> int | None:
        from botocore.exceptions import ClientError

        key = object_key(kind, sha)
        try:
            head = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    async def delete(self, kind: str, sha: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=object_key(kind, sha))

    async def presigned_url(self, kind: str, sha: str, filename: str, content_type: str) -> str | None:
        url: str = await asyncio.to_thread(
            self.client.generate_presigned_url, "get_object",
            Params={"Bucket": self.bucket, "Key": object_key(kind, sha),
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"'},
            ExpiresIn=self.presign_seconds)
        return url

    async def check(self) -> None:
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


def open_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "s3":
        return S3ObjectStore.from_settings(settings)
    return LocalObjectStore(settings.artifact_dir)
