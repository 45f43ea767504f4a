"""Fixtures of the project tests: a local npm registry, a builder on a fresh data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gameserver.project import BUILD_TOOLS
from tests.projects.registry import Registry, serve_registry


@pytest.fixture
def registry() -> Iterator[Registry]:
    if not (BUILD_TOOLS / "node_modules" / "esbuild").is_dir():
        pytest.fail("gameserver/tooling/node_modules is missing: run scripts/bootstrap.sh", pytrace=False)
    with serve_registry() as served:
        yield served


@pytest.fixture
def npm_cache(tmp_path: Path) -> Path:
    """An empty npm cache per test: every package comes from the test's registry, none from ~/.npm."""
    return tmp_path / "npm-cache"
