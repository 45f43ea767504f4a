"""`make up` installs what running the platform needs, `make test` what the tests need on top
(issue #20, item 13): Chromium, docker-compose and the Python dev extras only for the tests.

scripts/bootstrap.sh runs here in a scratch copy of the repository's layout, with every installer it
calls replaced by a stub that writes down how it was called."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

LOGGING_STUB = '#!/bin/sh\necho "{name} $*" >> "$GSF_STUB_LOG"\n'


def stub(path: Path, name: str) -> None:
    path.write_text(LOGGING_STUB.format(name=name))
    path.chmod(0o755)


@pytest.fixture
def scratch(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """A copy of the layout bootstrap.sh works on, and a PATH holding only what it may run."""
    work = tmp_path / "repo"
    (work / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "bootstrap.sh", work / "scripts" / "bootstrap.sh")
    stub(work / "scripts" / "ensure-docker.sh", "ensure-docker")
    stub(work / "scripts" / "ensure-chromium.sh", "ensure-chromium")
    (work / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    runtime = work / "gameserver" / "runtime"
    (runtime / "node_modules").mkdir(parents=True)
    (runtime / "package-lock.json").write_text("{}")
    (runtime / "node_modules" / ".package-lock.json").write_text("{}")
    tooling = work / "gameserver" / "tooling"  # esbuild for game projects, installed like the runtime
    (tooling / "node_modules" / "esbuild").mkdir(parents=True)
    (tooling / "package-lock.json").write_text("{}")
    (tooling / "node_modules" / ".package-lock.json").write_text("{}")
    os.utime(tooling / "package-lock.json", (1, 1))
    venv = work / ".venv" / "bin"
    venv.mkdir(parents=True)
    stub(venv / "python", "python")
    stub(venv / "pip", "pip")
    os.utime(runtime / "package-lock.json", (1, 1))  # older than the installed packages: npm ci is not needed
    os.utime(work / "pyproject.toml", (1, 1))  # older than any stamp bootstrap.sh writes

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("node", "npm", "apt-get"):
        stub(bin_dir / name, name)
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")  # as root, where it would install with apt-get
    (bin_dir / "id").chmod(0o755)
    os.symlink(sys.executable, bin_dir / "python3.11")
    for tool in ("dirname", "touch", "sh", "bash"):
        found = shutil.which(tool)
        assert found is not None, tool
        os.symlink(found, bin_dir / tool)
    log = tmp_path / "calls.log"
    env = {"PATH": str(bin_dir), "GSF_STUB_LOG": str(log), "HOME": str(tmp_path)}
    return work, env, log


def bootstrap(work: Path, env: dict[str, str], log: Path, part: str) -> list[str]:
    log.write_text("")
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, str(work / "scripts" / "bootstrap.sh"), part], env=env, check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


def test_the_platform_part_installs_no_test_tools(scratch: tuple[Path, dict[str, str], Path]) -> None:
    work, env, log = scratch
    calls = bootstrap(work, env, log, "platform")
    assert "pip install -q -e ." in calls
    assert "ensure-docker " in calls
    assert "python -m gameserver.image ensure-base" in calls
    assert not [c for c in calls if "chromium" in c or "apt-get" in c or "[dev]" in c], calls

    # `make test` after `make up`: the dev extras, Chromium and docker-compose on top.
    calls = bootstrap(work, env, log, "test")
    assert "pip install -q -e .[dev]" in calls
    assert "ensure-chromium " in calls
    assert any(c.startswith("apt-get install") and "docker-compose" in c for c in calls), calls
    assert "pip install -q -e ." not in calls, "the platform's packages are installed already"

    calls = bootstrap(work, env, log, "test")
    assert not [c for c in calls if c.startswith("pip")], "installed once, then stamped"


def test_a_fresh_make_test_installs_everything_in_one_pip_run(scratch: tuple[Path, dict[str, str], Path]) -> None:
    work, env, log = scratch
    calls = bootstrap(work, env, log, "test")
    assert [c for c in calls if c.startswith("pip install -q -e")] == ["pip install -q -e .[dev]"]
    assert "ensure-chromium " in calls
    assert "ensure-docker " in calls


def test_make_up_runs_the_platform_part_and_make_test_the_test_part() -> None:
    def dry(target: str) -> list[str]:
        return subprocess.run(["make", "-n", "-C", str(REPO), target], capture_output=True, text=True,
                              check=True, timeout=30).stdout.splitlines()

    assert "bash scripts/bootstrap.sh platform" in dry("up")
    test = dry("test")
    assert "bash scripts/bootstrap.sh test" in test
    assert test.index("bash scripts/bootstrap.sh test") < next(i for i, c in enumerate(test) if "pytest" in c)
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci, "CI runs `make test`, which installs everything on a fresh machine"
