"""Every recorded workflow history replays against today's code: a non-deterministic change fails here.

The tests of each part record them with `GSF_RECORD_HISTORIES=1`; regenerate after a deliberate,
versioned change with
- `tests/workflows/histories`: `pytest tests/workflows/test_gameserver.py tests/workflows/test_pipeline.py`;
  `pipeline_pause_resume_before_timeouts` was recorded by the code before `pause_timeout_seconds`
  existed: a run started then must still replay (its input has no timeout, so it waits for ever);
- `tests/fleets/histories`: `pytest tests/fleets/test_fleets.py`;
- `tests/models/histories`: `pytest tests/models`;
- `tests/webhooks/histories`: `pytest tests/webhooks`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows import WORKFLOWS

TESTS = Path(__file__).resolve().parents[1]
# Per test folder, the histories that must be there: a recording that stopped being kept fails here.
EXPECTED = {
    "workflows": {"deploy_play_stop_delete", "rejected", "crash_restart_delete", "pipeline_pause_resume",
                  "pipeline_pause_timeout", "pipeline_pause_resume_before_timeouts", "durable_crash_restore",
                  "durable_crash_restore_before_register", "durable_drain"},
    "fleets": {"fleet_buffer", "fleet_replace", "fleet_rolling_update"},
    "models": {"model_prompt_success", "model_image_success", "model_tripo_banned", "model_retries",
               "model_deadline", "model_cancelled_mid_poll", "model_cancelled_queued", "model_worker_restart",
               "model_not_configured", "tripo_slots"},
    "webhooks": {"delivery_first_try", "delivery_retries", "delivery_worker_restart", "delivery_refused",
                 "delivery_gave_up", "platform_sweep"},
}
RECORDED = sorted(TESTS.glob("*/histories/*.json"))


def test_every_histories_folder_is_replayed() -> None:
    assert {p.parent.name for p in TESTS.glob("*/histories")} == set(EXPECTED)


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_histories_are_recorded(folder: str) -> None:
    assert EXPECTED[folder] <= {p.stem for p in RECORDED if p.parent.parent.name == folder}


@pytest.mark.parametrize("path", RECORDED, ids=[f"{p.parent.parent.name}/{p.stem}" for p in RECORDED])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
