"""A minimal npm registry on 127.0.0.1 for the build tests: packuments and tarballs from `.tgz`
files, which is all `npm ci` asks a registry for. Tests hand its URL to the build as `--registry`
(what an operator does with a mirror), so no test reaches the internet."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest


def integrity(tgz: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()


def pack(folder: Path, dest: Path) -> Path:
    """`npm pack` of a local package folder (no network), the tarball's path."""
    done = subprocess.run(["npm", "pack", str(folder), "--pack-destination", str(dest), "--json",
                           "--loglevel=error"], capture_output=True, text=True, timeout=120, check=True)
    return dest / str(json.loads(done.stdout)[0]["filename"])


def cached_tarball(spec: str, dest: Path) -> Path:
    """A registry package's tarball from npm's local cache (`npm pack --offline`): the bytes the
    registry served, so the lockfile's integrity matches."""
    done = subprocess.run(["npm", "pack", spec, "--offline", "--pack-destination", str(dest), "--json",
                           "--loglevel=error"], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        pytest.fail(f"{spec} is not in npm's cache: run scripts/bootstrap.sh test (it caches the sample "
                    f"projects' dependencies)\n{done.stderr[-800:]}", pytrace=False)
    return dest / str(json.loads(done.stdout)[0]["filename"])


class Registry:
    """Serves the packages added with `add`; `hits` counts tarball downloads by file name."""

    def __init__(self) -> None:
        self.tarballs: dict[str, bytes] = {}
        self.versions: dict[str, dict[str, dict[str, object]]] = {}
        self.hits: dict[str, int] = {}
        self.url = ""

    def add(self, tgz_path: Path) -> dict[str, str]:
        data = tgz_path.read_bytes()
        with tarfile.open(tgz_path) as tar:
            member = tar.extractfile("package/package.json")
            assert member is not None
            manifest = json.loads(member.read())
        name, version = manifest["name"], manifest["version"]
        file = f"{name.split('/')[-1]}-{version}.tgz"
        self.tarballs[file] = data
        dist = {"tarball": f"{self.url}/{name}/-/{file}", "integrity": integrity(data)}
        self.versions.setdefault(name, {})[version] = {**manifest, "dist": dist}
        return {"name": name, "version": version, **dist}

    def handle(self, path: str) -> tuple[int, bytes, str]:
        path = unquote(path.split("?", 1)[0]).lstrip("/")
        if "/-/" in path:
            file = path.rsplit("/", 1)[-1]
            if file in self.tarballs:
                self.hits[file] = self.hits.get(file, 0) + 1
                return 200, self.tarballs[file], "application/octet-stream"
            return 404, b"{}", "application/json"
        versions = self.versions.get(path)
        if versions is None:
            return 404, b'{"error":"not found"}', "application/json"
        latest = sorted(versions)[-1]
        doc = {"name": path, "dist-tags": {"latest": latest}, "versions": versions}
        return 200, json.dumps(doc).encode(), "application/json"


@contextmanager
def serve_registry() -> Iterator[Registry]:
    registry = Registry()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            status, body, kind = registry.handle(self.path)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server API
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # port 0: the kernel picks, no race
    registry.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
