"""Settings: defaults, environment overrides, the production guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import core.settings
from core.settings import Settings, default_database_url


def test_embedded_defaults(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "d")
    assert default_database_url(tmp_path / "d") == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'gsf.db'}"
    # The default (a PostgreSQL database of its own when the suite runs with GSF_TEST_DATABASE=postgresql).
    assert s.database_url == core.settings.default_database_url(s.data_dir)
    assert s.matchmaker_url == "http://127.0.0.1:8100"
    assert s.public_api_url == "http://127.0.0.1:8000"
    assert s.control_queue == "gsf-control"
    assert len(s.secret_key) >= 32


def test_local_secret_is_shared_by_every_process(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).secret_key
    assert Settings(data_dir=tmp_path).secret_key == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GSF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GSF_API_PORT", "9001")
    monkeypatch.setenv("GSF_DATABASE_URL", "postgresql+asyncpg://u@db/gsf")
    monkeypatch.setenv("GSF_NODE_LABELS", '{"region": "eu"}')
    s = Settings()
    assert s.api_port == 9001
    assert s.public_api_url == "http://127.0.0.1:9001"
    assert s.database_url == "postgresql+asyncpg://u@db/gsf"
    assert s.node_labels == {"region": "eu"}


@pytest.mark.parametrize("secret", ["", "change-me"])
def test_production_refuses_a_missing_or_placeholder_secret(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ValidationError, match="GSF_SECRET_KEY"):
        Settings(env="production", data_dir=tmp_path, secret_key=secret)


def test_production_accepts_a_real_secret(tmp_path: Path) -> None:
    assert Settings(env="production", data_dir=tmp_path, secret_key="x" * 40).secret_key == "x" * 40
