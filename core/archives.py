"""Project intake: a folder, a .zip, a .tar.gz or one module file in, a checked `Project` out.

An upload is untrusted, so nothing is extracted to disk here: entries are read into memory after
their names, kinds and sizes were judged (zip-slip paths, links, devices and over-limit sizes are
refused before a byte of them is read), and a `Project` only ever holds regular files under
relative, normalized POSIX paths. `Project.write_to` is the one way onto disk, into a folder the
caller chose. docs/projects.md describes the rules for developers.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.errors import InvalidProject, ProjectTooLarge, UnsafeArchive
from core.settings import Settings

SOURCE_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts")
TYPESCRIPT_SUFFIXES = (".ts", ".mts", ".cts")
# Never part of a project upload: dependencies come from the lockfile, history is not code, the
# build output (.gsf/) is made by the platform.
SKIPPED_DIRS = frozenset({"node_modules", ".git", "__MACOSX", ".gsf"})
INDEX_FILES = ("index.js", "index.ts", "index.mjs", "index.mts", "index.cjs", "index.cts")
_EXPORT_CONDITIONS = ("default", "import", "require")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class ProjectLimits:
    """What one project may hold; dependencies are the non-dev packages its lockfile installs."""

    max_total_bytes: int = 32 * 1024 * 1024
    max_files: int = 2_000
    max_file_bytes: int = 4 * 1024 * 1024
    max_dependencies: int = 300

    @property
    def max_entries(self) -> int:
        """Archive entries looked at (skipped and folder entries too), so no archive loops forever."""
        return self.max_files * 8 + 64


@dataclass(frozen=True)
class Project:
    """A game project: its files by relative POSIX path, its entry file and its module kind.

    `module_type` is what the entry's sources are written as ("module" for `type: module` or an
    .mjs/.mts entry, else "commonjs"). `manifest` and `lockfile` are the parsed package.json and
    package-lock.json (None when absent).
    """

    files: Mapping[str, bytes]
    entry: str
    module_type: str
    manifest: dict[str, Any] | None = None
    lockfile: dict[str, Any] | None = None
    dependencies: tuple[str, ...] = field(default=())

    @property
    def sha256(self) -> str:
        """Content hash of the whole project (paths and bytes): same project, same hash."""
        digest = hashlib.sha256()
        for path in sorted(self.files):
            data = self.files[path]
            digest.update(f"{path}\0{len(data)}\0".encode())
            digest.update(data)
        return digest.hexdigest()

    @property
    def lockfile_sha256(self) -> str | None:
        raw = self.files.get("package-lock.json")
        return hashlib.sha256(raw).hexdigest() if raw is not None else None

    @property
    def is_typescript(self) -> bool:
        return any(p.endswith(TYPESCRIPT_SUFFIXES) for p in self.files)

    @property
    def sources(self) -> list[str]:
        """The JavaScript and TypeScript files of the project, sorted."""
        return sorted(p for p in self.files if p.endswith(SOURCE_SUFFIXES) and not p.endswith(".d.ts"))

    def write_to(self, dest: Path) -> None:
        """Write every file under `dest` (created if missing); paths were checked on the way in."""
        root = Path(dest)
        for rel, data in self.files.items():
            target = root.joinpath(*rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def project_limits(settings: Settings) -> ProjectLimits:
    """The limits an installation sets (GSF_PROJECT_MAX_*)."""
    return ProjectLimits(max_total_bytes=settings.project_max_bytes, max_files=settings.project_max_files,
                         max_file_bytes=settings.project_max_file_bytes,
                         max_dependencies=settings.project_max_dependencies)


def is_archive(data: bytes) -> bool:
    """Whether bytes are a zip or a gzip'd tar (by content, never by name). No UTF-8 text starts so:
    a stored single-file source and a stored project archive cannot be mistaken for each other."""
    return _archive_kind(data[:4]) is not None


def canonical_archive(project: Project) -> bytes:
    """The project as a reproducible .tar.gz: sorted regular files under their relative paths, no
    owners, no times, gzip without a time stamp. The same project always gives the same bytes, so
    the artifact store's content key (the sha256 of these bytes) names the project as its own
    `sha256` does, and `read_archive` gives the same project back."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(project.files):
            data = project.files[path]
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


# --- reading -----------------------------------------------------------------------------------


def read_project(path: Path, limits: ProjectLimits | None = None) -> Project:
    """A project from a folder, a .zip, a .tar.gz/.tgz, or one .js/.ts module file on disk."""
    limits = limits or ProjectLimits()
    path = Path(path)
    if path.is_symlink() and path.is_dir():
        raise UnsafeArchive(f"{path.name} is a symbolic link to a folder; give the folder itself")
    if path.is_dir():
        return build_project(_folder_files(path, limits), limits)
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InvalidProject(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if _archive_kind(head):
        if path.stat().st_size > limits.max_total_bytes:
            raise ProjectTooLarge(f"the archive is {path.stat().st_size:,} bytes; the limit is "
                                  f"{limits.max_total_bytes:,} bytes")
        return read_archive(path.read_bytes(), path.name, limits)
    return read_archive(_read_capped(path, limits), path.name, limits)


def read_archive(data: bytes, filename: str, limits: ProjectLimits | None = None) -> Project:
    """A project from uploaded bytes: a zip or gzip'd tar by content, else one module file."""
    limits = limits or ProjectLimits()
    kind = _archive_kind(data[:4])
    if kind == "zip":
        return build_project(_zip_files(data, limits), limits)
    if kind == "tar.gz":
        return build_project(_tar_files(data, limits), limits)
    name = posixpath.basename(filename.replace("\\", "/")) or "game.js"
    if not name.endswith(SOURCE_SUFFIXES):
        raise InvalidProject(f"{name} is neither a .zip/.tar.gz archive nor a .js/.mjs/.cjs/.ts module")
    if len(data) > limits.max_file_bytes:
        raise ProjectTooLarge(f"{name} is {len(data):,} bytes; the limit is {limits.max_file_bytes:,} bytes")
    return build_project({name: data}, limits)


def _archive_kind(head: bytes) -> str | None:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    return None


def _read_capped(path: Path, limits: ProjectLimits) -> bytes:
    with path.open("rb") as fh:
        data = fh.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise ProjectTooLarge(f"{path.name} is larger than the per-file limit of {limits.max_file_bytes:,} bytes")
    return data


def safe_name(raw: str) -> str | None:
    """The normalized relative POSIX path of an archive entry, None for a folder entry or `.`.

    Raises UnsafeArchive for a name that would land outside the project: absolute, a drive
    letter, a `..` component (before or after normalizing), a NUL byte.
    """
    name = raw.replace("\\", "/")
    if "\0" in name or name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchive(f"the archive entry {raw!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"the archive entry {raw!r} leaves the project folder (`..`)")
    return "/".join(parts) or None


def _skipped(name: str) -> bool:
    return any(part in SKIPPED_DIRS for part in name.split("/")[:-1])


class _Budget:
    """Counts files and bytes as they are read, raising ProjectTooLarge at the first breach."""

    def __init__(self, limits: ProjectLimits) -> None:
        self.limits = limits
        self.files = 0
        self.bytes = 0
        self.entries = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise ProjectTooLarge(f"the archive has more than {self.limits.max_entries:,} entries")

    def admit(self, name: str, size: int) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise ProjectTooLarge(f"the project has more than {self.limits.max_files:,} files")
        if size > self.limits.max_file_bytes:
            raise ProjectTooLarge(f"{name} is {size:,} bytes; the per-file limit is "
                                  f"{self.limits.max_file_bytes:,} bytes")
        self.bytes += size
        if self.bytes > self.limits.max_total_bytes:
            raise ProjectTooLarge(f"the project is over its total size limit of "
                                  f"{self.limits.max_total_bytes:,} bytes")


def _read_member(fh: IO[bytes], name: str, declared: int, budget: _Budget) -> bytes:
    """The bytes of one entry, never more than its limit even when the declared size lies."""
    budget.admit(name, declared)
    data = fh.read(budget.limits.max_file_bytes + 1)
    if len(data) > budget.limits.max_file_bytes:
        raise ProjectTooLarge(f"{name} is larger than the per-file limit of "
                              f"{budget.limits.max_file_bytes:,} bytes")
    budget.bytes += len(data) - declared  # what it really holds is what counts
    if budget.bytes > budget.limits.max_total_bytes:
        raise ProjectTooLarge(f"the project is over its total size limit of "
                              f"{budget.limits.max_total_bytes:,} bytes")
    return data


def _zip_files(data: bytes, limits: ProjectLimits) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UnsafeArchive(f"the zip archive cannot be read ({exc})") from None
    budget = _Budget(limits)
    wanted: list[tuple[zipfile.ZipInfo, str]] = []
    for info in infos:  # every name and kind is judged before anything is read
        budget.entry()
        name = safe_name(info.filename)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise UnsafeArchive(f"the archive entry {info.filename!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchive(f"the archive entry {info.filename!r} is not a regular file")
        if name is None or info.is_dir() or kind == stat.S_IFDIR or _skipped(name):
            continue
        wanted.append((info, name))
    files: dict[str, bytes] = {}
    with archive:
        for info, name in wanted:
            try:
                with archive.open(info) as fh:
                    files[name] = _read_member(fh, name, info.file_size, budget)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
                raise UnsafeArchive(f"the archive entry {info.filename!r} cannot be read ({exc})") from None
    return files


def _tar_files(data: bytes, limits: ProjectLimits) -> dict[str, bytes]:
    budget = _Budget(limits)
    files: dict[str, bytes] = {}
    try:
        # Stream mode: members are judged one by one as the gzip stream is read, never all in memory.
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            for member in archive:
                budget.entry()
                name = safe_name(member.name)
                if member.issym() or member.islnk():
                    kind = "symbolic" if member.issym() else "hard"
                    raise UnsafeArchive(f"the archive entry {member.name!r} is a {kind} link")
                if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
                    raise UnsafeArchive(f"the archive entry {member.name!r} is a device or FIFO")
                if member.isdir() or name is None or _skipped(name):
                    continue
                if not member.isreg():
                    raise UnsafeArchive(f"the archive entry {member.name!r} is not a regular file")
                fh = archive.extractfile(member)
                if fh is None:
                    raise UnsafeArchive(f"the archive entry {member.name!r} cannot be read")
                files[name] = _read_member(fh, name, member.size, budget)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise UnsafeArchive(f"the tar.gz archive cannot be read ({exc})") from None
    return files


def _folder_files(root: Path, limits: ProjectLimits) -> dict[str, bytes]:
    budget = _Budget(limits)
    files: dict[str, bytes] = {}
    for rel, entry in _walk(root, "", budget):
        size = entry.stat(follow_symlinks=False).st_size
        budget.admit(rel, size)
        with open(entry.path, "rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)
        if len(data) > limits.max_file_bytes:
            raise ProjectTooLarge(f"{rel} is larger than the per-file limit of {limits.max_file_bytes:,} bytes")
        files[rel] = data
    return files


def _walk(folder: Path, prefix: str, budget: _Budget) -> Iterator[tuple[str, os.DirEntry[str]]]:
    with os.scandir(folder) as entries:
        ordered = sorted(entries, key=lambda e: e.name)
    for entry in ordered:
        budget.entry()
        rel = prefix + entry.name
        if entry.is_symlink():
            raise UnsafeArchive(f"{rel} is a symbolic link; a project holds files only")
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in SKIPPED_DIRS:
                yield from _walk(Path(entry.path), rel + "/", budget)
        elif entry.is_file(follow_symlinks=False):
            yield rel, entry
        else:
            raise UnsafeArchive(f"{rel} is a device, socket or FIFO; a project holds files only")


# --- the project -------------------------------------------------------------------------------


def build_project(files: dict[str, bytes], limits: ProjectLimits | None = None) -> Project:
    """A checked Project from (already safe) relative paths: one common top folder is dropped,
    package.json and the lockfile are parsed, the entry found, dependencies counted."""
    limits = limits or ProjectLimits()
    files = _without_common_folder(files)
    if not files:
        raise InvalidProject("the project holds no files")
    manifest = _json_object(files, "package.json")
    lockfile = _json_object(files, "package-lock.json")
    entry = find_entry(files, manifest)
    dependencies = tuple(installed_packages(lockfile)) if lockfile is not None else ()
    if manifest is not None and lockfile is None and (manifest.get("dependencies") or {}):
        raise InvalidProject("package.json has dependencies but the project has no package-lock.json: "
                             "run `npm install --package-lock-only` and upload the lockfile")
    if len(dependencies) > limits.max_dependencies:
        raise ProjectTooLarge(f"the lockfile installs {len(dependencies)} packages; the limit is "
                              f"{limits.max_dependencies}")
    return Project(files=files, entry=entry, module_type=entry_module_type(entry, manifest),
                   manifest=manifest, lockfile=lockfile, dependencies=dependencies)


def _without_common_folder(files: dict[str, bytes]) -> dict[str, bytes]:
    """`mygame/package.json, mygame/src/...` (an archive of the folder, not of its contents) →
    `package.json, src/...`."""
    tops = {p.split("/", 1)[0] for p in files}
    if len(tops) == 1 and all("/" in p for p in files):
        top = tops.pop() + "/"
        return {p[len(top):]: data for p, data in files.items()}
    return files


def _json_object(files: Mapping[str, bytes], name: str) -> dict[str, Any] | None:
    raw = files.get(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidProject(f"{name} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidProject(f"{name} must hold a JSON object")
    return value


def find_entry(files: Mapping[str, bytes], manifest: Mapping[str, Any] | None) -> str:
    """The entry file: package.json `gsf.entry`, else `exports` ("." or the root, a string or its
    default/import/require condition), else `main`, else index.js/index.ts; a project of one
    module file is its own entry."""
    if manifest is not None:
        for field_name, spec in _entry_specs(manifest):
            found = _resolve_file(files, spec)
            if found is None:
                raise InvalidProject(f"package.json {field_name} names {spec!r}, which is not in the project")
            return found
    for name in INDEX_FILES:
        if name in files:
            return name
    sources = [p for p in files if p.endswith(SOURCE_SUFFIXES)]
    if len(sources) == 1 and len(files) == 1:
        return sources[0]
    raise InvalidProject("no entry file: set `gsf.entry` or `main` in package.json, or add index.js / index.ts")


def _entry_specs(manifest: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    gsf = manifest.get("gsf")
    if isinstance(gsf, dict) and isinstance(gsf.get("entry"), str):
        yield "gsf.entry", gsf["entry"]
        return
    exported = _exports_entry(manifest.get("exports"))
    if exported is not None:
        yield "exports", exported
        return
    if isinstance(manifest.get("main"), str) and manifest["main"].strip():
        yield "main", manifest["main"]


def _exports_entry(exports: Any) -> str | None:
    if isinstance(exports, str):
        return exports
    if not isinstance(exports, dict):
        return None
    if "." in exports:
        return _exports_entry(exports["."])
    if any(str(key).startswith(".") for key in exports):
        return None  # subpaths only: no root export
    for condition in _EXPORT_CONDITIONS:
        found = _exports_entry(exports.get(condition))
        if found is not None:
            return found
    return None


def _resolve_file(files: Mapping[str, bytes], spec: str) -> str | None:
    """A package.json path (`./src/index.ts`, `lib/main`) as a project file, Node's way: as is,
    with an extension added, or as a folder's index."""
    try:
        base = safe_name(spec)
    except UnsafeArchive:
        return None
    if base is None:
        base = ""
    candidates = [base] if base else []
    candidates += [base + ext for ext in SOURCE_SUFFIXES] if base else []
    prefix = base + "/" if base else ""
    candidates += [prefix + name for name in INDEX_FILES]
    return next((c for c in candidates if c in files), None)


def entry_module_type(entry: str, manifest: Mapping[str, Any] | None) -> str:
    """"module" for an .mjs/.mts entry or `type: module`, "commonjs" for .cjs/.cts or otherwise."""
    if entry.endswith((".mjs", ".mts")):
        return "module"
    if entry.endswith((".cjs", ".cts")):
        return "commonjs"
    return "module" if manifest is not None and manifest.get("type") == "module" else "commonjs"


def installed_packages(lockfile: Mapping[str, Any], *, include_dev: bool = False) -> list[str]:
    """`name@version` of every package `npm ci --omit=dev` installs from this lockfile
    (lockfileVersion 2/3 `packages`, or version 1 `dependencies`)."""
    out: list[str] = []
    packages = lockfile.get("packages")
    if isinstance(packages, dict):
        for key, meta in packages.items():
            if not key or not isinstance(meta, dict) or (meta.get("dev") and not include_dev):
                continue
            if meta.get("link"):
                continue
            name = meta.get("name") or key.rsplit("node_modules/", 1)[-1]
            out.append(f"{name}@{meta.get('version', '?')}")
        return sorted(set(out))
    stack: list[Any] = [lockfile.get("dependencies")]
    while stack:
        deps = stack.pop()
        if not isinstance(deps, dict):
            continue
        for name, meta in deps.items():
            if isinstance(meta, dict) and (include_dev or not meta.get("dev")):
                out.append(f"{name}@{meta.get('version', '?')}")
                stack.append(meta.get("dependencies"))
    return sorted(set(out))
