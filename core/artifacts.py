"""Content-addressed artifact store (game sources, later GLB models): local folder by default."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalArtifactStore:
    """Files under `root/<kind>/<sha[:2]>/<sha>`; writes are atomic, so a crash never leaves half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, kind: str, sha: str) -> Path:
        if not _SHA.match(sha) or not kind.isidentifier():
            raise ValueError(f"invalid artifact key {kind}/{sha}")
        return self.root / kind / sha[:2] / sha

    def put(self, kind: str, data: bytes) -> str:
        sha = sha256_hex(data)
        path = self._path(kind, sha)
        if path.exists():
            return sha
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def get(self, kind: str, sha: str) -> bytes:
        try:
            return self._path(kind, sha).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"{kind}/{sha}") from None

    def exists(self, kind: str, sha: str) -> bool:
        return self._path(kind, sha).exists()

    def delete(self, kind: str, sha: str) -> None:
        self._path(kind, sha).unlink(missing_ok=True)
