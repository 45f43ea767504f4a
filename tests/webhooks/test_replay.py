"""Recorded histories of the webhook workflows replay against today's code: a non-deterministic change fails.

Regenerate after a deliberate, versioned change with `GSF_RECORD_HISTORIES=1 pytest tests/webhooks`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.webhooks.conftest import HISTORIES
from workflows import WORKFLOWS

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in RECORDED}
    assert {"delivery_first_try", "delivery_retries", "delivery_worker_restart", "delivery_refused",
            "delivery_gave_up", "platform_sweep"} <= names


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_no_secret_in_history(path: Path) -> None:
    # Signing secrets are read by the attempt activity from the database, never passed through Temporal.
    text = path.read_text()
    assert "whsec_" not in text and "x-gsf-signature" not in text.lower()
