"""Projects through the API (issue #24): archives that escape their folder or hold links are a 422
`unsafe-archive`, oversize ones a 413 `project-too-large`, both leaving nothing behind; a good
project is stored as its canonical archive, analyzed by the workflow's `analyze_code` file by file
(a host module two files deep rejects it, naming the file), and a game version takes one too."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
import zipfile
from typing import Any

import httpx
import pytest

from core.archives import is_archive, read_archive
from core.artifacts import LocalArtifactStore
from core.settings import Settings
from tests.harness import Harness
from tests.problems import assert_problem

pytestmark = [pytest.mark.temporal]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Small limits, so oversize uploads stay small.
    return settings.model_copy(update={"project_max_bytes": 64 * 1024, "project_max_file_bytes": 16 * 1024})


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def tgz_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buf.getvalue()


MANIFEST = json.dumps({"name": "@acme/hidden-exec", "version": "1.0.0", "gsf": {"entry": "src/index.ts"}}).encode()
HIDDEN = {  # a host module two files deep, through a re-export
    "package.json": MANIFEST,
    "src/index.ts": b"import { go } from './relay';\nexport default { onJoin(): void { go(); } };\n",
    "src/relay.ts": b"export { go } from './deep';\n",
    "src/deep.ts": b"import { execSync } from 'child_process';\nexport function go(): void { execSync('id'); }\n",
}
GOOD = {
    "package.json": json.dumps({"name": "duo", "version": "1.0.0", "main": "index.js"}).encode(),
    "index.js": b"const { greet } = require('./lib/greet');\n"
                b"module.exports = { maxPlayers: 3,\n"
                b"  onJoin(room, player) { room.broadcast('hi', greet(player.id)); } };\n",
    "lib/greet.js": b"exports.greet = (id) => `hello ${id}`;\n",
}


def form(data: bytes, filename: str, name: str = "proj") -> dict[str, Any]:
    return {"data": {"name": name}, "files": {"file": (filename, data, "application/octet-stream")}}


async def no_servers(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/servers")).json()["count"] == 0, "a refused upload leaves no record"


async def test_unsafe_archives_are_a_422_and_leave_nothing(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        slip = zip_of({"package.json": MANIFEST, "src/index.ts": b"export default {};\n",
                       "../../outside.js": b"pwned\n"})
        resp = await api.post("/api/v1/servers", **form(slip, "game.zip"))
        assert_problem(resp, 422, "unsafe-archive")
        assert "../../outside.js" in resp.json()["detail"]
        linked = tgz_of({"package.json": GOOD["package.json"], "index.js": GOOD["index.js"]},
                        links={"lib/greet.js": "/etc/passwd"})
        resp = await api.post("/api/v1/servers", **form(linked, "game.tar.gz"))
        assert_problem(resp, 422, "unsafe-archive")
        assert "symbolic link" in resp.json()["detail"]
        no_entry = zip_of({"package.json": json.dumps({"main": "nowhere.js"}).encode(), "a.js": b"x\n"})
        assert_problem(await api.post("/api/v1/servers", **form(no_entry, "g.zip")), 422, "invalid-project")
        await no_servers(api)
    assert not (h.settings.artifact_dir / "sources").exists()


async def test_oversize_projects_are_a_413(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        # The archive itself over the project limit (incompressible bytes).
        big = tgz_of({**GOOD, "assets/noise.js": os.urandom(70 * 1024)})
        assert len(big) > 64 * 1024
        resp = await api.post("/api/v1/servers", **form(big, "big.tar.gz"))
        assert_problem(resp, 413, "project-too-large")
        # A small archive of a file over the per-file limit once unpacked.
        bomb = zip_of({**GOOD, "data.js": b"0" * (20 * 1024)})
        assert len(bomb) < 4 * 1024
        resp = await api.post("/api/v1/servers", **form(bomb, "bomb.zip"))
        assert_problem(resp, 413, "project-too-large")
        assert "data.js" in resp.json()["detail"]
        await no_servers(api)


async def test_a_project_is_stored_canonically_and_analyzed_file_by_file(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/servers", **form(zip_of(HIDDEN), "hidden.zip", name="hidden"))
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["id"]
        server: Any = None
        for _ in range(300):
            server = (await api.get(f"/api/v1/servers/{server_id}")).json()
            if server["status"] == "rejected":
                break
            await asyncio.sleep(0.2)
        assert server["status"] == "rejected", server
        assert server["game"] == "hidden-exec"  # package.json's name, without its scope
        (finding,) = [f for f in server["analysis"]["findings"] if f["severity"] == "block"]
        assert (finding["rule"], finding["file"], finding["line"]) == ("host-module", "src/deep.ts", 1)
        assert "src/index.ts → src/relay.ts → src/deep.ts" in finding["message"]
        assert server["analysis"]["files"] == ["src/index.ts", "src/relay.ts", "src/deep.ts"]

        # The stored source is the canonical archive of the same project: zip in, tar.gz stored.
        sha = server["source_sha256"]
        stored = LocalArtifactStore(h.settings.artifact_dir).get("sources", sha)
        assert is_archive(stored)
        assert read_archive(stored, "x").files == HIDDEN

        # The same project as a .tar.gz is the same stored source.
        again = await api.post("/api/v1/servers", **form(tgz_of(HIDDEN), "hidden.tar.gz", name="hidden2"))
        assert again.status_code == 202
        detail = (await api.get(f"/api/v1/servers/{again.json()['id']}")).json()
        assert detail["source_sha256"] == sha


async def test_a_game_version_can_be_a_project(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/games", **form(zip_of(GOOD), "duo.zip", name="duo"))
        assert resp.status_code == 201, resp.text
        version = resp.json()
        assert (version["filename"], version["max_players"]) == ("project.tar.gz", 3)
        assert version["analysis"]["entry"] == "index.js"
        assert version["analysis"]["files"] == ["index.js", "lib/greet.js"]
        resp = await api.post("/api/v1/games", **form(tgz_of(HIDDEN), "hidden.tar.gz", name="duo"))
        assert_problem(resp, 422, "code-rejected")
        assert "host-module at src/deep.ts:1:" in resp.json()["detail"]
        # One module file keeps today's path: a version of the same game.
        single = await api.post("/api/v1/games", data={"name": "duo"},
                                files={"file": ("duo.js", b"module.exports = { onJoin() {} };\n")})
        assert single.status_code == 201, single.text
        assert (single.json()["filename"], single.json()["version"]) == ("game.js", 2)
