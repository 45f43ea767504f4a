"""The recorded histories of the model workflows (replayed by tests/workflows/test_replay.py) hold no
Tripo key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models.conftest import HISTORIES

RECORDED = sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_no_tripo_key_in_history(path: Path) -> None:
    # Every recorded run used a `tsk_…` key; it must appear in no input, result, error or id.
    assert "tsk_" not in path.read_text()
