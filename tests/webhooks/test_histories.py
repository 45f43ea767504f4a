"""The recorded histories of the webhook workflows (replayed by tests/workflows/test_replay.py) hold
no signing secret and no signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.webhooks.conftest import HISTORIES

RECORDED = sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_no_secret_in_history(path: Path) -> None:
    # Signing secrets are read by the attempt activity from the database, never passed through Temporal.
    text = path.read_text()
    assert "whsec_" not in text
    assert "x-gsf-signature" not in text.lower()
