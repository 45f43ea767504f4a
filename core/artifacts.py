"""Content-addressed artifact store (game sources, later GLB models): local folder by default.

Folders are 0700 and files 0600 (core/datadir.py): uploaded sources are their owners' code.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from core.datadir import make_private_dirs

_SHA = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalArtifactStore:
    """Files under `root/<kind>/<sha[:2]>/<sha>`; writes are atomic, so a crash never leaves half a file.
    Folders it makes are 0700, files 0600, whatever the process's umask."""

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
        make_private_dirs(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # 0600
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
