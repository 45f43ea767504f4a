"""The build side (gameserver/project.py): the dependency layer cached by lockfile hash, the
bundle with source maps (.ts lines in stack traces), and the TypeScript sample built, unit-tested
and played over WebSocket under the real runtime."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import docker
import pytest
from websockets.asyncio.client import connect

from core.archives import build_project, canonical_archive, read_project
from core.settings import Settings
from gameserver import image as images
from gameserver.project import ProjectBuilder
from tests.gameserver.gameserver_testkit import RUNTIME, Runtime, node_binary, recv_type, send, wait_ready
from tests.projects.registry import Registry, cached_tarball, pack

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "projects" / "dice-duel"


def lock_for(name: str, dep: dict[str, str]) -> bytes:
    return json.dumps({
        "name": name, "version": "1.0.0", "lockfileVersion": 3, "requires": True,
        "packages": {
            "": {"name": name, "version": "1.0.0", "dependencies": {dep["name"]: dep["version"]}},
            f"node_modules/{dep['name']}": {"version": dep["version"], "resolved": dep["tarball"],
                                            "integrity": dep["integrity"]},
        },
    }, indent=2).encode()


def tiny_package(tmp_path: Path, registry: Registry) -> dict[str, str]:
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "package.json").write_text(json.dumps({"name": "tiny-score", "version": "1.2.0", "main": "index.js"}))
    (folder / "index.js").write_text("module.exports = (dice) => dice.reduce((a, b) => a + b, 0);\n")
    return registry.add(pack(folder, tmp_path))


def game_files(dep: dict[str, str], lock: bytes, body: str) -> dict[str, bytes]:
    manifest = {"name": "g", "version": "1.0.0", "gsf": {"entry": "src/index.ts"},
                "dependencies": {dep["name"]: dep["version"]}}
    return {"package.json": json.dumps(manifest).encode(), "package-lock.json": lock,
            "src/index.ts": (
                b"import total from 'tiny-score';\n"
                b"import { check } from './check';\n"
                b"export default {\n"
                b"  onJoin(room: { state: number }): void { room.state = total(check([1, 2, 3])); },\n"
                b"};\n"),
            "src/check.ts": body.encode()}


CHECK = ("// validation lives in its own file\n"
         "export function check(dice: number[]): number[] {\n"
         "  if (dice.length > 2) {\n"
         "    throw new RangeError(`too many dice: ${dice.length}`);\n"
         "  }\n"
         "  return dice;\n"
         "}\n")


def test_the_dependency_layer_is_reused_for_the_same_lockfile(tmp_path: Path, registry: Registry,
                                                                npm_cache: Path) -> None:
    dep = tiny_package(tmp_path, registry)
    lock = lock_for("g", dep)
    builder = ProjectBuilder(tmp_path / "data" / "projects", registry=registry.url, npm_cache=npm_cache)
    first = builder.build(build_project(game_files(dep, lock, CHECK)))
    # A new version of the game: other code, the same lockfile.
    second = builder.build(build_project(game_files(dep, lock, CHECK.replace("> 2", "> 3"))))
    again = builder.build(build_project(game_files(dep, lock, CHECK)))
    assert first.ok
    assert second.ok
    assert first.layer is not None
    assert second.layer is not None
    assert (first.layer.reused, second.layer.reused) == (False, True)
    assert first.layer.path == second.layer.path
    assert builder.dependencies.installs == 1
    assert registry.hits == {"tiny-score-1.2.0.tgz": 1}
    assert (first.built, second.built, again.built, builder.builds) == (True, True, False, 2)
    assert (second.layer.node_modules / "tiny-score" / "index.js").is_file()

    # The built bundle runs with the layer's package, and its stack trace names the .ts line.
    run = subprocess.run([node_binary(), "--enable-source-maps", "-e",
                          "const g = require(process.argv[1]).default; const room = {}; g.onJoin(room);",
                          str(first.entry_file)], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode != 0
    assert "RangeError: too many dice: 3" in run.stderr
    assert f"{first.path}/src/check.ts:4:" in run.stderr, run.stderr
    ok = subprocess.run([node_binary(), "--enable-source-maps", "-e",
                         "const g = require(process.argv[1]).default; const room = {}; g.onJoin(room);"
                         " console.log(room.state);", str(second.entry_file)],
                        capture_output=True, text=True, timeout=60, check=True)
    assert ok.stdout.strip() == "6"


def test_an_unresolvable_import_fails_the_bundle_with_its_file(tmp_path: Path, registry: Registry) -> None:
    project = build_project({"index.ts": b"import { x } from './missing';\nexport default { onJoin() { x(); } };\n"})
    result = ProjectBuilder(tmp_path / "projects", registry=registry.url).build(project)
    assert not result.ok
    (error,) = result.errors
    assert (error["file"], error["line"]) == ("index.ts", 1)


def test_the_typescript_sample_builds_passes_its_tests_and_plays(tmp_path: Path, registry: Registry,
                                                                   npm_cache: Path) -> None:
    registry.add(cached_tarball("seedrandom@3.0.5", tmp_path))
    project = read_project(SAMPLE)
    assert (project.entry, project.dependencies) == ("src/index.ts", ("seedrandom@3.0.5",))
    builder = ProjectBuilder(tmp_path / "projects", registry=registry.url, npm_cache=npm_cache)
    build = builder.build(project)
    assert build.ok, build.errors
    assert registry.hits == {"seedrandom-3.0.5.tgz": 1}

    tests = subprocess.run([node_binary(), "--enable-source-maps", "--test", str(SAMPLE / "test")],
                           env={**os.environ, "DICE_DUEL_BUILD": str(build.entry_file)},
                           capture_output=True, text=True, timeout=120, check=False)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "# pass 4" in tests.stdout

    asyncio.run(_play(build.runtime_env(), tmp_path))


async def _play(build_env: dict[str, str], tmp_path: Path) -> None:
    out, err = tmp_path / "rt.out", tmp_path / "rt.err"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "0", "GSF_BIND_HOST": "127.0.0.1",
           "GSF_REQUIRE_TOKEN": "0", "GSF_SERVER_ID": f"srv-{uuid.uuid4().hex[:8]}", **build_env}
    with out.open("wb") as fout, err.open("wb") as ferr:
        proc = subprocess.Popen([node_binary(), str(RUNTIME)], env=env, stdout=fout, stderr=ferr,
                                stdin=subprocess.DEVNULL)
    rt = Runtime(proc, out, err, env["GSF_SERVER_ID"], "", "")
    try:
        await asyncio.to_thread(wait_ready, rt)
        async with connect(rt.ws_url(name="ann"), open_timeout=5) as ann, \
                connect(rt.ws_url(name="bob"), open_timeout=5) as bob:
            ids = {(await recv_type(ws, "welcome"))["data"]["playerId"]: ws for ws in (ann, bob)}
            state = (await recv_type(bob, "state"))["data"]
            assert state["status"] == "playing"
            first = state["turn"]
            mover = ids[first]
            await send(mover, "roll")
            rolled = (await recv_type(mover, "rolled"))["data"]
            assert len(rolled["dice"]) == 5
            assert all(1 <= d <= 6 for d in rolled["dice"])
            assert rolled["state"]["turn"] != first
            # A bad die throws in src/rules.ts: an error frame, and the .ts line in the log.
            other = bob if mover is ann else ann
            await send(other, "claim", {"dice": [1, 2, 3, 4, 9]})
            error = (await recv_type(other, "error"))["data"]
            assert "a die shows 1 to 6, got 9" in error["message"]
        logs = rt.stdout() + rt.stderr()
        assert "src/rules.ts:13:" in logs, logs[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.docker
def test_a_project_without_dependencies_is_one_layer_on_the_runtime(tmp_path: Path, registry: Registry,
                                                                     docker_client: docker.DockerClient,
                                                                     runtime_images: str) -> None:
    """The game layer is committed onto the runtime image (no dependency image): one layer more, the
    runtime's config kept, the bundle readable by the game user and loaded by GSF_GAME_FILE."""
    files = {"index.js": b"const { score } = require('./score');\n"
                         b"module.exports = { onJoin(room) { room.state = score(); } };\n",
             "score.js": f"exports.score = () => '{uuid.uuid4().hex}';\n".encode()}
    archive = canonical_archive(build_project(files))
    settings = Settings(data_dir=tmp_path / "data")
    builder = ProjectBuilder(tmp_path / "projects", registry=registry.url)
    made = images.ensure_project_image(docker_client, settings, archive, hashlib.sha256(archive).hexdigest(), builder)
    try:
        assert (made.built, made.deps_image, made.deps_built) == (True, None, False)
        game = docker_client.images.get(made.tag).attrs
        runtime = docker_client.images.get(runtime_images).attrs
        assert game["RootFS"]["Layers"][:-1] == runtime["RootFS"]["Layers"]
        assert (game["Config"]["Cmd"], game["Config"]["User"]) == (runtime["Config"]["Cmd"], runtime["Config"]["User"])
        assert game["Config"]["Labels"]["gsf.parent"] == runtime_images
        loaded = docker_client.containers.run(
            made.tag, ["node", "-e", "const g = require(process.env.GSF_GAME_FILE); const room = {};"
                       " g.onJoin(room); console.log(process.getuid(), room.state.length)"],
            network_disabled=True, remove=True)
        assert loaded.decode().split() == ["1000", "32"]
    finally:
        images.settle()
        docker_client.images.remove(made.tag, force=True)
