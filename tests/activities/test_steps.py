"""The pipeline step activities (activities/steps.py) that decide without Docker: the marker and
sleep steps, and the refusals a node makes before it touches Docker (no client here: any Docker call
would fail). What the steps make on Docker, for whom and within which quotas:
tests/workflows/test_pipeline_tenancy.py; pipelines end to end: tests/workflows/test_pipeline.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.steps import StepActivities
from core.contracts import ExecInput, NoopInput, SleepInput, StepCaller, StepResult, WriteConfigInput
from core.settings import Settings


@pytest.fixture
def steps(tmp_path: Path) -> StepActivities:
    return StepActivities(None, Settings(env="test", data_dir=tmp_path / "data"), None)  # type: ignore[arg-type]


async def test_noop_and_sleep(steps: StepActivities) -> None:
    env = ActivityEnvironment()
    assert await env.run(steps.noop, NoopInput(message="marker")) == StepResult(logs=["marker"])
    assert await env.run(steps.noop, NoopInput()) == StepResult(logs=["noop"])
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    assert await env.run(steps.sleep, SleepInput(seconds=0.05)) == StepResult(logs=["slept 0.05 s"])
    assert beats, "a sleep heartbeats, so a cancel stops it"


def test_refusals_come_before_docker(steps: StepActivities) -> None:
    env = ActivityEnvironment()
    owner = StepCaller(owner_id="u1")
    for path in ("/etc/passwd", "a/../../b"):
        with pytest.raises(ApplicationError) as outside:
            env.run(steps.write_config, WriteConfigInput(volume="cfg", files={path: "x"}, caller=owner))
        assert (outside.value.type, outside.value.non_retryable) == ("StepRefused", True)
    over = "x" * (steps.settings.pipeline_max_config_bytes + 1)  # a user's config volume holds at most the cap
    with pytest.raises(ApplicationError) as too_big:
        env.run(steps.write_config, WriteConfigInput(volume="cfg", files={"a.txt": over}, caller=owner))
    assert (too_big.value.type, too_big.value.non_retryable) == ("StepQuotaExceeded", True)
    with pytest.raises(ApplicationError) as not_allowed:
        env.run(steps.exec_in_container, ExecInput(server_id="s1", command=["sh", "-c", "id"]))
    assert (not_allowed.value.type, not_allowed.value.non_retryable) == ("StepRefused", True)
