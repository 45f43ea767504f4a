"""The baseline for bench/pipelines: a bare workflow that runs N empty activities in sequence."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="raw_empty")
async def raw_empty() -> None:
    return None


@workflow.defn(name="RawSequence")
class RawSequence:
    @workflow.run
    async def run(self, args: list[str]) -> int:
        # The activities go to another worker's queue, as pipeline steps go to a node's agent.
        queue, steps = args[0], int(args[1])
        for _ in range(steps):
            await workflow.execute_activity("raw_empty", task_queue=queue,
                                            start_to_close_timeout=timedelta(seconds=30))
        return steps
