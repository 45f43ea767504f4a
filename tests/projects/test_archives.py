"""Project intake (core/archives.py): zip-slip, links and devices refused, limits, the entry."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from core.archives import ProjectLimits, read_archive, read_project
from core.errors import InvalidProject, ProjectTooLarge, UnsafeArchive

GAME = b"module.exports = { onJoin(room, player) {} };\n"


def make_zip(entries: dict[str, bytes], *, link: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, link[1])
    return buf.getvalue()


def make_tgz(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for member in members:
            body = data.get(member.name)
            if body is not None:
                member.size = len(body)
            archive.addfile(member, io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def regular(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


@pytest.mark.parametrize("name", ["../evil.js", "src/../../evil.js", "/etc/cron.d/evil", "C:/evil.js",
                                  "..\\evil.js"])
def test_zip_slip_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeArchive) as caught:
        read_archive(make_zip({"index.js": GAME, name: b"x"}), "game.zip")
    assert caught.value.slug == "unsafe-archive"
    assert caught.value.status == 422


def test_a_symlink_in_a_zip_is_refused() -> None:
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        read_archive(make_zip({"index.js": GAME}, link=("secrets.js", "/etc/passwd")), "game.zip")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_links_and_devices_in_a_tar_are_refused(kind: bytes) -> None:
    special = tarfile.TarInfo("trap.js")
    special.type = kind
    special.linkname = "/etc/passwd"
    archive = make_tgz([regular("index.js"), special], {"index.js": GAME})
    with pytest.raises(UnsafeArchive):
        read_archive(archive, "game.tar.gz")


def test_tar_slip_is_refused_before_anything_is_read() -> None:
    archive = make_tgz([regular("index.js"), regular("../../outside.js")], {"index.js": GAME,
                                                                              "../../outside.js": b"x"})
    with pytest.raises(UnsafeArchive, match="leaves the project"):
        read_archive(archive, "game.tgz")


def test_a_symlink_in_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_bytes(GAME)
    (tmp_path / "leak.js").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        read_project(tmp_path)


def test_garbage_that_looks_like_a_zip_is_refused() -> None:
    with pytest.raises(UnsafeArchive):
        read_archive(b"PK\x03\x04 not really a zip", "game.zip")


@pytest.mark.parametrize(("limits", "files"), [
    (ProjectLimits(max_files=3), {f"f{i}.js": b"1" for i in range(4)} | {"index.js": GAME}),
    (ProjectLimits(max_file_bytes=100), {"index.js": GAME + b"//" + b"x" * 200}),
    (ProjectLimits(max_total_bytes=150), {"index.js": GAME, "a.js": b"x" * 60, "b.js": b"x" * 60}),
])
def test_over_limit_projects_are_refused(limits: ProjectLimits, files: dict[str, bytes]) -> None:
    for data, name in ((make_zip(files), "p.zip"),
                       (make_tgz([regular(n) for n in files], files), "p.tar.gz")):
        with pytest.raises(ProjectTooLarge) as caught:
            read_archive(data, name, limits)
        assert (caught.value.slug, caught.value.status) == ("project-too-large", 413)


def test_too_many_dependencies_are_refused() -> None:
    lock = {"lockfileVersion": 3, "packages": {"": {}, **{f"node_modules/p{i}": {"version": "1.0.0"}
                                                          for i in range(5)},
                                               "node_modules/dev-only": {"version": "1.0.0", "dev": True}}}
    files = {"index.js": GAME, "package.json": b'{"dependencies": {}}', "package-lock.json": json.dumps(lock).encode()}
    assert read_archive(make_zip(files), "p.zip", ProjectLimits(max_dependencies=5)).dependencies[0] == "p0@1.0.0"
    with pytest.raises(ProjectTooLarge, match="6 packages|5 packages"):
        read_archive(make_zip(files), "p.zip", ProjectLimits(max_dependencies=4))


@pytest.mark.parametrize(("manifest", "entry", "module_type"), [
    ({"gsf": {"entry": "src/game.ts"}, "main": "dist/x.js"}, "src/game.ts", "commonjs"),
    ({"exports": "./src/game.ts", "type": "module"}, "src/game.ts", "module"),
    ({"exports": {".": {"import": "./lib/esm.mjs", "require": "./lib/cjs.cjs"}}}, "lib/esm.mjs", "module"),
    ({"exports": {"require": "./lib/cjs.cjs"}}, "lib/cjs.cjs", "commonjs"),
    ({"main": "lib/cjs"}, "lib/cjs.cjs", "commonjs"),
    ({}, "index.ts", "commonjs"),
])
def test_the_entry_is_found(manifest: dict[str, object], entry: str, module_type: str) -> None:
    files = {"package.json": json.dumps(manifest).encode(), "src/game.ts": b"", "lib/esm.mjs": b"",
             "lib/cjs.cjs": b"", "index.ts": b"", "dist/y.js": b""}
    # Zipped as a folder (`zip -r game.zip game/`): the common top folder is dropped.
    project = read_archive(make_zip({f"game/{k}": v for k, v in files.items()}), "game.zip")
    assert (project.entry, project.module_type) == (entry, module_type)


def test_a_missing_entry_and_a_lockless_dependency_are_invalid_projects() -> None:
    with pytest.raises(InvalidProject, match="main"):
        read_archive(make_zip({"package.json": b'{"main": "nope.js"}', "a.js": GAME}), "p.zip")
    with pytest.raises(InvalidProject, match="package-lock.json"):
        read_archive(make_zip({"package.json": b'{"dependencies": {"x": "1"}}', "index.js": GAME}), "p.zip")


def test_one_module_file_is_a_project_and_node_modules_is_skipped(tmp_path: Path) -> None:
    single = read_archive(GAME, "tictactoe.js")
    assert (single.entry, dict(single.files)) == ("tictactoe.js", {"tictactoe.js": GAME})
    (tmp_path / "index.js").write_bytes(GAME)
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "index.js").write_bytes(b"huge" * 10)
    assert sorted(read_project(tmp_path).files) == ["index.js"]
