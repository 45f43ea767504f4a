"""The one step runner: every node step, of a pipeline or of a game-server deployment, runs here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from core.pipeline import STEP_TYPES
    from core.queues import node_queue

# Failures that no retry fixes; the activities raise them as non-retryable too.
NON_RETRYABLE = ["BuildFailed", "ContainerExited", "ReadyTimeout", "StepRefused", "RegistrationRefused"]
DEFAULT_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5),
                            maximum_attempts=5, non_retryable_error_types=NON_RETRYABLE)


class NodeLost(Exception):
    """The node's agent did not pick the step up in time: the node is dead or gone."""


async def execute_step(step_type: str, node_id: str, arg: BaseModel, *, start_to_close: timedelta,
                       schedule_to_start: timedelta, retry: RetryPolicy | None = None) -> Any:
    """Run one step as an activity on the node's queue; `NodeLost` when no agent takes it."""
    spec = STEP_TYPES[step_type]
    try:
        return await workflow.execute_activity(
            spec.activity, arg, result_type=spec.result, task_queue=node_queue(node_id),
            schedule_to_start_timeout=schedule_to_start, start_to_close_timeout=start_to_close,
            heartbeat_timeout=spec.heartbeat, retry_policy=retry or DEFAULT_RETRY)
    except ActivityError as err:
        if isinstance(err.cause, TimeoutError) and err.cause.type == TimeoutType.SCHEDULE_TO_START:
            raise NodeLost(node_id) from err
        raise
