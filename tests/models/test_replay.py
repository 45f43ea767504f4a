"""Recorded histories of the model workflows replay against today's code: a non-deterministic change fails.

Regenerate after a deliberate, versioned change with `GSF_RECORD_HISTORIES=1 pytest tests/models`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.models.conftest import HISTORIES
from workflows import WORKFLOWS

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in RECORDED}
    assert {"model_prompt_success", "model_image_success", "model_tripo_banned", "model_retries",
            "model_deadline", "model_cancelled_mid_poll", "model_cancelled_queued", "model_worker_restart",
            "model_not_configured", "tripo_slots"} <= names


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_no_tripo_key_in_history(path: Path) -> None:
    # Every recorded run used a `tsk_…` key; it must appear in no input, result, error or id.
    assert "tsk_" not in path.read_text()
