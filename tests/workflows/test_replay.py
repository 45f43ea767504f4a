"""Recorded histories replay against today's workflow code: a non-deterministic change fails here.

Regenerate after a deliberate, versioned change with
`GSF_RECORD_HISTORIES=1 pytest tests/workflows/test_gameserver.py tests/workflows/test_pipeline.py`.
`pipeline_pause_resume_before_timeouts` was recorded by the code before `pause_timeout_seconds`
existed: a run started then must still replay (its input has no timeout, so it waits for ever).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES}
    assert {"deploy_play_stop_delete", "rejected", "crash_restart_delete", "pipeline_pause_resume",
            "pipeline_pause_timeout", "pipeline_pause_resume_before_timeouts"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
