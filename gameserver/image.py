"""Game-server images: the offline Node.js base, the runtime layer, and one image per game source.

Three layers, each tagged by what it is made of so the same inputs never build twice:

    gsf-node-base:20            the host's `node` + its shared libraries (`docker import`), or a
                                pulled `node:20-slim` where a registry is reachable
    gsf-runtime:<hash16>        + gameserver/runtime (server.js, package*.json, node_modules)
    gsf-game:<hash24>           + one game module at /app/game/game.js (or game.mjs)

A project (issue #24) is `gsf-deps:<hash24>` (+ its npm dependencies, per lockfile) and its game
layer on top, each made by one commit of a created, never started container (`_commit_layer`).
Every build runs with `network_mode="none"`, and no commit starts a process: nothing is downloaded
while building.
Run `python -m gameserver.image ensure-base` to make the first two ahead of time.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound
from docker.utils import parse_repository_tag

from core.archives import project_limits, read_archive
from core.settings import Settings, get_settings
from gameserver.project import BUNDLE_DIR, DependencyLayer, ProjectBuilder

log = logging.getLogger(__name__)

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
NODE_PATH_IN_IMAGE = "/usr/local/bin/node"
GAME_UID = 1000
GAME_DIR = "/app/game"
MODULE_KINDS = {"commonjs": "game.js", "module": "game.mjs"}

_RUNTIME_DOCKERFILE = """\
FROM {base}
ENV PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production
COPY runtime/ /app/runtime/
USER {uid}:{uid}
WORKDIR /app
EXPOSE 8080
CMD ["node", "/app/runtime/server.js"]
"""

# Labels go in the Dockerfile as one instruction: `labels=` on the build API adds a step per label.
_GAME_DOCKERFILE = """\
FROM {runtime}
COPY {name} {game_dir}/{name}
ENV GSF_GAME_FILE={game_dir}/{name}
LABEL {labels}
"""

_NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"


@dataclass(frozen=True)
class ImageUser:
    """The one user of an imported image besides root: its processes run as this user."""

    name: str
    uid: int
    home: str


GAME_USER = ImageUser("game", GAME_UID, "/nonexistent")


class ImageError(RuntimeError):
    """An image cannot be made. The message says why and, where it can, what to run."""


# --- helpers -------------------------------------------------------------------------------------


def image_exists(client: docker.DockerClient, name: str) -> bool:
    """Whether the engine has an image by this name (tag or id)."""
    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    return True


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644,
               uid: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.uid = info.gid = uid
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755, uid: int = 0) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid = info.gid = uid
    info.mtime = 0
    tar.addfile(info)


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Root-owned, world-readable, no host user names or times: the game user can read, not write."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    if info.isdir() or info.mode & 0o111:
        info.mode = 0o755
    else:
        info.mode = 0o644
    return info


def _build(client: docker.DockerClient, context: bytes, tag: str,
           labels: dict[str, str] | None = None) -> None:
    """`docker build` of an in-memory context with no network; raises ImageError with the log."""
    tail: list[str] = []
    try:
        stream: Iterator[dict[str, Any]] = client.api.build(
            fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True, forcerm=True,
            network_mode="none", labels=labels, pull=False, decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                log_tail = "".join(tail[-10:]).strip()
                raise ImageError(f"building {tag} failed: {detail}\n{log_tail}".strip())
            if "stream" in chunk:
                tail.append(str(chunk["stream"]))
    except APIError as exc:
        raise ImageError(f"building {tag} failed: {exc.explanation or exc}") from exc
    if not image_exists(client, tag):
        raise ImageError(f"building {tag} reported success but the image is missing:\n"
                         + "".join(tail[-10:]))


# --- base image ------------------------------------------------------------------------------------


def host_node() -> Path:
    found = shutil.which("node")
    if not found:
        raise ImageError("no `node` on this host's PATH: install Node.js 20 (apt-get install nodejs)")
    return Path(os.path.realpath(found))


def shared_libraries(binary: Path) -> list[Path]:
    """The libraries (and the dynamic loader) `ldd` says the binary needs, as ldd names them."""
    try:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60,
                             check=False)
    except FileNotFoundError as exc:
        raise ImageError("`ldd` is missing on this host (apt-get install libc-bin)") from exc
    if "not a dynamic executable" in out.stdout + out.stderr:
        return []
    if out.returncode != 0:
        raise ImageError(f"ldd {binary} failed: {out.stderr.strip() or out.stdout.strip()}")
    libraries: list[Path] = []
    for raw in out.stdout.splitlines():
        line = raw.strip()
        if "=>" in line:
            name, _, rest = line.partition("=>")
            target = rest.split("(")[0].strip()
            if target == "not found":
                raise ImageError(f"{binary} needs {name.strip()}, which this host does not have")
            if target:
                libraries.append(Path(target))
        elif line.startswith("/"):
            libraries.append(Path(line.split("(")[0].strip()))
    return libraries


def _node_version(node: Path) -> str:
    out = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30,
                         check=False)
    return out.stdout.strip() or "unknown"


# --- hand-written file systems ----------------------------------------------------------------------
# Two images are made from this host's files with `docker import`, no registry and no build: the game
# servers' Node.js base (below) and the platform's base (cli/platform_image.py).


def write_rootfs(tar: tarfile.TarFile, files: Mapping[str, Path], user: ImageUser, *, dirs: Iterable[str] = (),
                 owned: Iterable[str] = (), generated: Mapping[str, tuple[bytes, int]] | None = None) -> None:
    """A whole file system into `tar`: every directory above `files` and `dirs` (`/tmp` sticky, `owned`
    ones the user's), /etc's passwd, group and nsswitch.conf naming root and `user`, `generated`
    (path in the image -> content and mode), then `files` (path in the image -> file on this host),
    root-owned and world-readable: the user can read and run them, not change them."""
    users_dirs = set(owned)
    all_dirs = {"etc", "tmp", *dirs, *users_dirs}
    for name in files:
        parent = Path(name).parent
        while str(parent) != ".":
            all_dirs.add(str(parent))
            parent = parent.parent
    for name in sorted(all_dirs):
        if name in users_dirs:
            _add_dir(tar, name, 0o755, uid=user.uid)
        else:
            _add_dir(tar, name, 0o1777 if name == "tmp" else 0o755)
    passwd = (f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
              f"{user.name}:x:{user.uid}:{user.uid}:{user.name}:{user.home}:/usr/sbin/nologin\n")
    _add_bytes(tar, "etc/passwd", passwd.encode())
    _add_bytes(tar, "etc/group", f"root:x:0:\n{user.name}:x:{user.uid}:\n".encode())
    _add_bytes(tar, "etc/nsswitch.conf", _NSSWITCH.encode())
    for name, (data, mode) in sorted((generated or {}).items()):
        _add_bytes(tar, name, data, mode=mode)
    for name, source in sorted(files.items()):
        info = _normalize(tar.gettarinfo(str(source), arcname=name))
        with source.open("rb") as fh:
            tar.addfile(info, fh)


def import_rootfs(client: docker.DockerClient, name: str, changes: Sequence[str],
                  write: Callable[[tarfile.TarFile], None]) -> None:
    """`docker import` as `name` of the file system `write` puts into a tar (`changes`: Dockerfile
    instructions such as ENV, CMD and LABEL)."""
    repository, tag = parse_repository_tag(name)
    with tempfile.TemporaryDirectory(prefix="gsf-rootfs-") as tmp:
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
            write(tar)
        try:
            client.api.import_image_from_file(str(archive), repository=repository,
                                              tag=tag or "latest", changes=list(changes))
        except APIError as exc:
            raise ImageError(f"docker import of {name} failed: {exc.explanation or exc}") from exc
    if not image_exists(client, name):
        raise ImageError(f"docker import of {name} reported success but the image is missing")


def build_base_image(client: docker.DockerClient, name: str) -> None:
    """Make `name` from the host's Node.js: its binary, shared libraries, and a `game` user."""
    node = host_node()
    libraries = shared_libraries(node)
    version = _node_version(node)
    files: dict[str, Path] = {NODE_PATH_IN_IMAGE.lstrip("/"): node}
    for library in libraries:
        # Copy the file behind each symlink to the path the loader will look for.
        files[str(library).lstrip("/")] = Path(os.path.realpath(library))
    changes = ["ENV PATH=/usr/local/bin:/usr/bin:/bin", 'CMD ["node"]', "LABEL gsf.kind=base",
               f"LABEL gsf.node_version={version}"]
    import_rootfs(client, name, changes, lambda tar: write_rootfs(tar, files, GAME_USER, dirs=["app"]))
    log.info("imported base image %s (node %s, %d libraries)", name, version, len(libraries))


def ensure_base_image(client: docker.DockerClient, settings: Settings) -> str:
    """The Node.js base image, imported from the host's node or pulled, if it is missing."""
    name = settings.base_image
    if image_exists(client, name):
        return name
    if settings.build_base_image_locally:
        build_base_image(client, name)
        return name
    repository, tag = parse_repository_tag(name)
    try:
        client.images.pull(repository, tag=tag or "latest")
    except APIError as exc:
        raise ImageError(
            f"cannot pull {name}: {exc.explanation or exc}. Where no registry is reachable, set "
            "GSF_BUILD_BASE_IMAGE_LOCALLY=true to build it from this host's node."
        ) from exc
    return name


# --- runtime image ---------------------------------------------------------------------------------


def _runtime_files() -> list[Path]:
    """The runtime's own sources: top-level .js files and the npm manifest and lock, sorted.
    `testing.js` (the unit-test helper for game modules, run outside any server) is not shipped."""
    files = sorted(p for p in RUNTIME_DIR.glob("*.js") if p.name != "testing.js")
    files += [RUNTIME_DIR / "package.json", RUNTIME_DIR / "package-lock.json"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ImageError(f"the game runtime is incomplete, missing: {', '.join(missing)}")
    return files


@functools.lru_cache(maxsize=8)
def _runtime_hash(base_image: str) -> str:
    digest = hashlib.sha256()
    digest.update(_RUNTIME_DOCKERFILE.format(base=base_image, uid=GAME_UID).encode())
    for path in _runtime_files():
        digest.update(b"\0" + path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def runtime_hash(base_image: str | None = None) -> str:
    """sha256 of what the runtime image is made of: its sources, lock and base image name. Cached."""
    return _runtime_hash(base_image or get_settings().base_image)


def runtime_image_tag(base_image: str | None = None) -> str:
    return f"gsf-runtime:{runtime_hash(base_image)[:16]}"


def _runtime_context(base_image: str) -> bytes:
    modules = RUNTIME_DIR / "node_modules"
    if not (modules / "express").is_dir() or not (modules / "ws").is_dir():
        raise ImageError(
            f"{modules} is missing or incomplete: run `npm ci --omit=dev` in {RUNTIME_DIR} "
            "(scripts/bootstrap.sh does it)"
        )
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_bytes(tar, "Dockerfile",
                   _RUNTIME_DOCKERFILE.format(base=base_image, uid=GAME_UID).encode())
        for path in _runtime_files():
            tar.add(str(path), arcname=f"runtime/{path.name}", filter=_normalize)
        tar.add(str(modules), arcname="runtime/node_modules", filter=_normalize)
    return buf.getvalue()


def ensure_runtime_image(client: docker.DockerClient, settings: Settings) -> str:
    """The runtime image on top of the base, built from gameserver/runtime if it is missing."""
    tag = runtime_image_tag(settings.base_image)
    if image_exists(client, tag):
        return tag
    base = ensure_base_image(client, settings)
    started = time.monotonic()
    _build(client, _runtime_context(base), tag,
           {"gsf.kind": "runtime", "gsf.runtime_hash": runtime_hash(base)})
    log.info("built %s in %.2f s", tag, time.monotonic() - started)
    return tag


# --- game images -----------------------------------------------------------------------------------


def game_image_tag(source_sha256: str, base_image: str | None = None) -> str:
    """The tag of a game's image: same source + same runtime = same tag, built once."""
    key = runtime_hash(base_image) + source_sha256.lower()
    return f"gsf-game:{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def ensure_game_image(client: docker.DockerClient, settings: Settings, source: bytes,
                      source_sha256: str, module_kind: str = "commonjs") -> tuple[str, bool]:
    """(tag, built): the image running this game source, built only if the tag is missing."""
    if hashlib.sha256(source).hexdigest() != source_sha256.lower():
        raise ValueError("source_sha256 does not match the source")
    if module_kind not in MODULE_KINDS:
        raise ValueError(f"module_kind must be one of {sorted(MODULE_KINDS)}, got {module_kind!r}")
    tag = game_image_tag(source_sha256, settings.base_image)
    if image_exists(client, tag):
        return tag, False
    runtime = ensure_runtime_image(client, settings)
    name = MODULE_KINDS[module_kind]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        labels = {"gsf.kind": "game", "gsf.source_sha256": source_sha256.lower(),
                  "gsf.runtime": runtime}
        dockerfile = _GAME_DOCKERFILE.format(
            runtime=runtime, name=name, game_dir=GAME_DIR,
            labels=" ".join(f"{key}={json.dumps(value)}" for key, value in labels.items()))
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        _add_bytes(tar, name, source)
    started = time.monotonic()
    _build(client, buf.getvalue(), tag)
    log.info("built %s in %.2f s", tag, time.monotonic() - started)
    return tag, True


# --- project images (issue #24) ----------------------------------------------------------------------
# A project's image is two layers on the runtime: its npm dependencies (`gsf-deps:<hash>`, keyed by
# the lockfile's hash, so every version of a game with the same lockfile shares that image and its
# layer) and its bundle (`.gsf/game.js` + source map, built by gameserver/project.py).
#
# Each layer is one commit, not a `docker build`: a container is created from the parent image (never
# started: no process runs in it, so nothing can reach a network or run a package's script), the
# layer's files are put in with one archive upload, and the container is committed with the image's
# ENV and LABEL in the same commit. The engine's classic builder makes a container and a commit per
# Dockerfile instruction (COPY, ENV, LABEL: three for a game layer, each costing about as much as the
# copy); this is one of each per layer (bench/results/projects.md).

PROJECT_BUNDLE_DIR = f"{GAME_DIR}/.gsf"
PROJECT_ENV = f"ENV GSF_GAME_FILE={PROJECT_BUNDLE_DIR}/game.js NODE_OPTIONS=--enable-source-maps"


@dataclass(frozen=True)
class ProjectImage:
    """A project's image: `built` when this call built the game layer, `deps_built` when it built
    the dependency image (False: reused, or no dependencies), `bundle_built` when it bundled."""

    tag: str
    built: bool
    deps_image: str | None
    deps_built: bool
    bundle_built: bool


def _label_line(labels: Mapping[str, str]) -> str:
    return " ".join(f"{key}={json.dumps(value)}" for key, value in labels.items())


_removals: list[threading.Thread] = []
_removals_lock = threading.Lock()


def _remove_container(client: docker.DockerClient, container: str, tag: str) -> None:
    try:
        client.api.remove_container(container, force=True)
    except (APIError, DockerException) as exc:
        log.warning("could not remove the build container %s of %s: %s", container[:12], tag, exc)


def _remove_later(client: docker.DockerClient, container: str, tag: str) -> None:
    """Remove a committed build container in a thread: the image is usable as soon as it is
    committed, and dropping the container's file system costs about as much as the commit. The
    thread is not a daemon, so a process that exits still removes it first."""
    thread = threading.Thread(target=_remove_container, args=(client, container, tag), name="gsf-build-cleanup")
    with _removals_lock:
        _removals[:] = [t for t in _removals if t.is_alive()]
        _removals.append(thread)
    thread.start()


def settle(timeout: float = 60.0) -> None:
    """Wait until the build containers whose removal is under way are gone."""
    with _removals_lock:
        pending = list(_removals)
    for thread in pending:
        thread.join(timeout)


COMMIT_PREFIX = "gsf-commit-"  # the build containers' names (never started: a name is all they carry)
COMMIT_LEFTOVER_SECONDS = 600
_swept = False


def _sweep_leftovers(client: docker.DockerClient) -> None:
    """Once per process: remove the build containers that a killed builder left (created, never
    started, older than COMMIT_LEFTOVER_SECONDS: no build takes that long)."""
    global _swept
    if _swept:
        return
    _swept = True
    try:
        stale = [c for c in client.api.containers(all=True, filters={"name": COMMIT_PREFIX, "status": "created"})
                 if time.time() - int(c.get("Created") or 0) > COMMIT_LEFTOVER_SECONDS]
    except APIError as exc:
        log.warning("could not list leftover build containers: %s", exc)
        return
    for c in stale:
        _remove_container(client, str(c["Id"]), "a killed build")


def _commit_layer(client: docker.DockerClient, parent: str, files: bytes, changes: Sequence[str], tag: str) -> None:
    """`tag`: `parent` plus one layer holding the tar `files` (paths from the root, owners and modes as
    in the tar), and `changes` (ENV, LABEL: Dockerfile instructions) in its config. The container this
    goes through is created, never started, and removed (`_remove_later`); the image keeps the
    parent's CMD, USER, WORKDIR and the rest of its config. Raises ImageError when the engine refuses."""
    repository, version = parse_repository_tag(tag)
    container: str | None = None
    committed = False
    try:
        _sweep_leftovers(client)
        container = str(client.api.create_container(parent, name=COMMIT_PREFIX + uuid.uuid4().hex[:16])["Id"])
        client.api.put_archive(container, "/", files)
        client.api.commit(container, repository=repository, tag=version or "latest", changes=list(changes),
                          pause=False)
        committed = True
    except APIError as exc:
        raise ImageError(f"building {tag} failed: {exc.explanation or exc}") from exc
    finally:
        if container is not None:
            (_remove_later if committed else _remove_container)(client, container, tag)


def deps_image_tag(lockfile_sha256: str, base_image: str | None = None) -> str:
    """The dependency image of a lockfile on this runtime: one per (runtime, lockfile)."""
    key = runtime_hash(base_image) + "deps" + lockfile_sha256.lower()
    return f"gsf-deps:{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def ensure_deps_image(client: docker.DockerClient, settings: Settings, runtime: str,
                      layer: DependencyLayer) -> tuple[str, bool]:
    """(tag, built): the runtime plus the layer's node_modules at /app/game/node_modules."""
    tag = deps_image_tag(layer.key, settings.base_image)
    if image_exists(client, tag):
        return tag, False
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_dir(tar, GAME_DIR.lstrip("/"))
        # The layer's own symlinks (node_modules/.bin) stay links; they point inside the layer.
        tar.add(str(layer.node_modules), arcname=f"{GAME_DIR.lstrip('/')}/node_modules", filter=_normalize)
    labels = {"gsf.kind": "deps", "gsf.lockfile_sha256": layer.key, "gsf.runtime": runtime}
    started = time.monotonic()
    _commit_layer(client, runtime, buf.getvalue(), [f"LABEL {_label_line(labels)}"], tag)
    log.info("built %s in %.2f s", tag, time.monotonic() - started)
    return tag, True


def ensure_project_image(client: docker.DockerClient, settings: Settings, archive: bytes, archive_sha256: str,
                         builder: ProjectBuilder) -> ProjectImage:
    """The image running a project stored as `archive` (core/archives.py `canonical_archive`), built
    only if missing: dependencies (cached layer and image), bundle (cached by project hash), game layer.
    Raises ImageError when the project does not bundle (its errors name file and line)."""
    if hashlib.sha256(archive).hexdigest() != archive_sha256.lower():
        raise ValueError("archive_sha256 does not match the archive")
    tag = game_image_tag(archive_sha256, settings.base_image)
    if image_exists(client, tag):
        return ProjectImage(tag, False, None, False, False)
    project = read_archive(archive, "project.tar.gz", project_limits(settings))
    build = builder.build(project)
    if not build.ok:
        where = "; ".join(f"{e.get('file') or '?'}:{e.get('line')}:{e.get('column')}: {e.get('text')}"
                          for e in build.errors[:5])
        raise ImageError(f"the project does not build: {where}")
    runtime = ensure_runtime_image(client, settings)
    parent, deps_built = (ensure_deps_image(client, settings, runtime, build.layer) if build.layer is not None
                          else (runtime, False))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_dir(tar, GAME_DIR.lstrip("/"))
        _add_dir(tar, PROJECT_BUNDLE_DIR.lstrip("/"))
        for path in sorted((build.path / BUNDLE_DIR).iterdir()):
            if path.is_file() and not path.is_symlink():
                _add_bytes(tar, f"{PROJECT_BUNDLE_DIR.lstrip('/')}/{path.name}", path.read_bytes())
    labels = {"gsf.kind": "game", "gsf.source_sha256": archive_sha256.lower(),
              "gsf.project_sha256": project.sha256, "gsf.runtime": runtime, "gsf.parent": parent}
    started = time.monotonic()
    _commit_layer(client, parent, buf.getvalue(), [PROJECT_ENV, f"LABEL {_label_line(labels)}"], tag)
    log.info("built %s in %.2f s", tag, time.monotonic() - started)
    return ProjectImage(tag, True, parent if build.layer is not None else None, deps_built, build.built)


# --- command line ------------------------------------------------------------------------------------


def _connect() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise ImageError(f"no Docker engine: run scripts/ensure-docker.sh ({exc})") from exc
    return client


def _ensure_base(client: docker.DockerClient, settings: Settings) -> None:
    had_base = image_exists(client, settings.base_image)
    started = time.monotonic()
    base = ensure_base_image(client, settings)
    how = "present" if had_base else (
        "built from this host's node" if settings.build_base_image_locally else "pulled")
    print(f"base image {base}: {how} ({time.monotonic() - started:.1f} s)")
    tag = runtime_image_tag(base)
    had_runtime = image_exists(client, tag)
    started = time.monotonic()
    ensure_runtime_image(client, settings)
    how = "present" if had_runtime else "built"
    print(f"runtime image {tag}: {how} ({time.monotonic() - started:.1f} s)")


def _build_game(client: docker.DockerClient, settings: Settings, path: Path) -> None:
    source = path.read_bytes()
    kind = "module" if path.suffix == ".mjs" else "commonjs"
    started = time.monotonic()
    tag, built = ensure_game_image(client, settings, source, hashlib.sha256(source).hexdigest(),
                                   kind)
    print(f"game image {tag}: {'built' if built else 'present'} "
          f"({time.monotonic() - started:.2f} s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gameserver.image", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ensure-base", help="make sure the base and runtime images exist")
    game = commands.add_parser("build-game", help="build (or find) the image of one game file")
    game.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        settings = get_settings()
        client = _connect()
        try:
            if args.command == "ensure-base":
                _ensure_base(client, settings)
            else:
                _build_game(client, settings, args.file)
        finally:
            client.close()
    except (ImageError, ValueError, OSError) as exc:
        print(f"gsf: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
