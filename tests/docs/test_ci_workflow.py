"""docs/ci/gsf-game.yml: valid YAML, only gsf commands and options that exist, and its check job's
commands really pass on a game repository (and fail on a game the platform would reject).
Its deploy command runs against a real platform in test_platform_samples.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WORKFLOW = REPO / "docs" / "ci" / "gsf-game.yml"
SAMPLES = REPO / "docs" / "samples"
VENV_BIN = Path(sys.executable).parent


def workflow() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def runs(job: str) -> list[str]:
    return [step["run"] for step in workflow()["jobs"][job]["steps"] if "run" in step]


def gsf_help(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args, "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_triggers_jobs_and_secrets() -> None:
    doc = workflow()
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers is not None, doc
    assert triggers["push"]["tags"] == ["v*"]
    assert "pull_request" in triggers
    check, deploy = doc["jobs"]["check"], doc["jobs"]["deploy"]
    assert deploy["needs"] == "check"
    assert deploy["if"] == "startsWith(github.ref, 'refs/tags/v')"
    env = next(step["env"] for step in deploy["steps"] if "env" in step)
    assert env["GSF_API_KEY"] == "${{ secrets.GSF_API_KEY }}", "the key comes from the repository's secrets"
    assert any("gsf check" in r for r in runs("check"))
    assert any(r.strip() == "node --test" for r in runs("check"))
    assert not any("GSF_API_KEY" in str(step) for step in check["steps"]), "checks need no key"


def test_every_gsf_command_and_option_it_uses_exists() -> None:
    commands = gsf_help()
    used = []
    for job in workflow()["jobs"]:
        for run in runs(job):
            for match in re.finditer(r"\bgsf ([a-z][a-z-]*)([^|&;\n]*)", run):
                command, rest = match.group(1), match.group(2)
                used.append(command)
                assert re.search(rf"│ {command} ", commands), f"`gsf {command}` is not a gsf command"
                options = gsf_help(command)
                for option in re.findall(r"(--[a-z][a-z-]*)", rest):
                    assert option in options, f"`gsf {command} {option}` is not an option"
    assert sorted(set(used)) == ["check", "deploy"]


def game_repo(tmp_path: Path, source: str) -> Path:
    """A game repository as the workflow expects it: game.js and its node:test tests at the top."""
    repo = tmp_path / "game-repo"
    repo.mkdir()
    (repo / "game.js").write_text(source)
    tests = (SAMPLES / "rps.test.js").read_text()
    tests = tests.replace("require('../../gameserver/runtime/testing.js')", "require('./gsf-testing.js')")
    tests = tests.replace("require('./rps.js')", "require('./game.js')")
    assert "gsf-testing.js" in tests
    assert "./game.js" in tests
    (repo / "game.test.js").write_text(tests)
    return repo


def run_check_job(repo: Path) -> list[subprocess.CompletedProcess[str]]:
    """The check job's `run` steps as GitHub runs them (bash -eo pipefail), but for `pip install`:
    gsf is already installed in this virtualenv, which comes first on PATH."""
    env = {**os.environ, **{k: str(v) for k, v in workflow()["env"].items()},
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "GITHUB_WORKSPACE": str(repo)}
    done = []
    for run in runs("check"):
        if run.startswith("pip install"):
            continue
        step = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", run], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        done.append(step)
        if step.returncode != 0:
            break
    return done


def test_the_check_job_passes_on_a_good_game(tmp_path: Path) -> None:
    repo = game_repo(tmp_path, (SAMPLES / "rps.js").read_text())
    steps = run_check_job(repo)
    assert [s.returncode for s in steps] == [0, 0, 0], [s.stdout[-2000:] + s.stderr[-2000:] for s in steps]
    assert (repo / "gsf-testing.js").read_text() == (REPO / "gameserver" / "runtime" / "testing.js").read_text()
    assert "# pass 6" in steps[-1].stdout or "pass 6" in steps[-1].stdout, steps[-1].stdout[-2000:]


@pytest.mark.parametrize(("extra", "passes"), [
    ("\nmodule.exports.helper = () => eval('1 + 1');\n", False),  # blocking: eval
    ("\nconst BLOB = '" + "\\x41" * 40 + "';\n", True),  # a warning (encoded-blob) does not fail CI
], ids=["blocked", "warning"])
def test_the_check_job_fails_only_on_blocking_findings(tmp_path: Path, extra: str, passes: bool) -> None:
    repo = game_repo(tmp_path, (SAMPLES / "rps.js").read_text() + extra)
    steps = run_check_job(repo)
    analysis = steps[0]
    assert "gsf check" in runs("check")[1], analysis.stdout
    assert analysis.returncode == (0 if passes else 1), analysis.stdout
    assert ("encoded-blob" if passes else "eval") in analysis.stdout
    assert (len(steps) == 3 and steps[-1].returncode == 0) if passes else len(steps) == 1

