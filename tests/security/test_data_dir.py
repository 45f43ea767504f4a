"""The data folder `gsf up` works in is the owner's alone: folders 0700, files 0600 (core/datadir.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import docker
import httpx
import pytest

from cli.up import launch_background, stop_background
from core.artifacts import LocalArtifactStore
from core.datadir import make_private_dirs, secure_data_dir
from tests.conftest import GAMES, REPO, local_url, unique, up_env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_entries(root: Path) -> list[str]:
    """Every folder or file under root (itself included) that anyone but the owner may use."""
    found = [] if mode(root) == 0o700 else [f"{root} {oct(mode(root))}"]
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if not path.is_symlink() and mode(path) & 0o077:
                found.append(f"{path} {oct(mode(path))}")
    return found


def test_the_artifact_store_makes_private_folders_and_files(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a process not started by `gsf up` (the API on its own, a worker)
    try:
        store = LocalArtifactStore(tmp_path / "data" / "artifacts")
        sha = store.put("sources", b"module.exports = {};")
    finally:
        os.umask(old)
    stored = tmp_path / "data" / "artifacts" / "sources" / sha[:2] / sha
    assert mode(stored) == 0o600
    for folder in (stored.parent, stored.parent.parent, tmp_path / "data" / "artifacts", tmp_path / "data"):
        assert mode(folder) == 0o700, folder


def test_an_open_data_folder_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True, mode=0o755)
    data.chmod(0o755)
    (data / "logs").chmod(0o777)
    (data / "gsf.db").write_text("")
    (data / "gsf.db").chmod(0o644)
    (data / "run.sh").write_text("")
    (data / "run.sh").chmod(0o755)
    (data / "link").symlink_to("/etc/hostname")
    target_mode = mode(Path("/etc/hostname"))
    secure_data_dir(data)
    assert open_entries(data) == []
    assert mode(data / "run.sh") == 0o700
    assert mode(data / "gsf.db") == 0o600
    assert mode(Path("/etc/hostname")) == target_mode  # links are not followed
    make_private_dirs(data / "a" / "b")
    assert mode(data / "a") == mode(data / "a" / "b") == 0o700


@pytest.mark.e2e
@pytest.mark.docker
@pytest.mark.temporal
def test_gsf_up_keeps_its_data_folder_private(tmp_path: Path, docker_client: docker.DockerClient) -> None:
    data = tmp_path / "data"
    node, network = unique("perm-node"), unique("gsf-perm-net")
    env = up_env(data, node, network)
    # A folder an earlier version made world-readable, with a file in it.
    (data / "logs").mkdir(parents=True)
    data.chmod(0o755)
    (data / "logs").chmod(0o755)
    (data / "logs" / "old.log").write_text("from before\n")
    (data / "logs" / "old.log").chmod(0o644)
    log = tmp_path / "up.log"
    try:
        proc = launch_background(env, log, REPO)  # writes the ports it got back into env
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        key = (data / "admin.key").read_text().strip()
        upload = httpx.post(f"{local_url(env, 'GSF_API_PORT')}/api/v1/games", timeout=30,
                            headers={"Authorization": f"Bearer {key}"}, data={"name": "perm-check"},
                            files={"file": ("chat.js", (GAMES / "chat.js").read_bytes())})
        assert upload.status_code == 201, upload.text
        sha = upload.json()["source_sha256"]
        # The real files, made by gsf up itself and by its children (Temporal, the API, SQLite).
        real = [data / "gsf.db", data / "temporal.db", data / "admin.key", data / "secret.key",
                data / "logs" / "api.log", data / "artifacts" / "sources" / sha[:2] / sha]
        if os.environ.get("GSF_TEST_DATABASE", "sqlite") != "sqlite":
            real.remove(data / "gsf.db")  # the records are in PostgreSQL then
        for path in real:
            assert path.exists(), path
        assert open_entries(data) == []
    finally:
        stop_background(proc)
        for c in docker_client.containers.list(all=True, filters={"label": f"gsf.node_id={node}"}):
            c.remove(force=True)
        for n in docker_client.networks.list(names=[network]):
            n.remove()
    assert open_entries(data) == []
