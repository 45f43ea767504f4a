"""Recorded FleetWorkflow histories replay against today's code: a non-deterministic change fails here.

Regenerate after a deliberate, versioned change with
`GSF_RECORD_HISTORIES=1 pytest tests/fleets/test_fleets.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.fleets.helpers import HISTORIES
from workflows import WORKFLOWS

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_recorded() -> None:
    assert {"fleet_buffer", "fleet_replace", "fleet_rolling_update"} <= {p.stem for p in RECORDED}


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
