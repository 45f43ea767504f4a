"""PipelineWorkflow: a YAML pipeline's typed steps, run one by one on a node (DESIGN §5)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from activities.records import RecordActivities
    from core.contracts import (
        PipelineInput,
        PipelineState,
        PipelineStatus,
        RecordPipelineInput,
        ResumePipelineInput,
        StepDef,
        StepResult,
        StepState,
        StepStatus,
    )
    from core.pipeline import step_input

from workflows.steps import NON_RETRYABLE, NodeLost, execute_step


@workflow.defn(name="PipelineWorkflow")
class PipelineWorkflow:
    """Runs each step as an activity on the node's queue; a failed step pauses the run. A pause
    that lasts longer than `pause_timeout_seconds` (0: none at all) fails the run: its cleanup
    steps run and it ends `failed`.

    Updates: `resume(ResumePipelineInput) -> PipelineState` — retry the failed step, optionally with
             changed variables; refused unless the run is paused.
    Cancellation: a workflow cancel request stops the running step (through its heartbeat),
             marks the rest skipped and runs the `cleanup` steps.
    Queries: `state() -> PipelineState`.
    """

    @workflow.init
    def __init__(self, input: PipelineInput) -> None:
        self.input = input
        self.s = PipelineState(variables=dict(input.variables), steps=[
            StepState(index=i, name=step.name, type=step.type, cleanup=i >= len(input.steps))
            for i, step in enumerate([*input.steps, *input.cleanup])])
        self.resume_requested = False
        self.giving_up = False  # the run failed for good; its cleanup runs
        self.records: list[asyncio.Task[Any]] = []

    @workflow.query
    def state(self) -> PipelineState:
        return self.s

    @workflow.update
    async def resume(self, input: ResumePipelineInput) -> PipelineState:
        self.s.variables.update(input.variables)
        self.resume_requested = True
        await workflow.wait_condition(lambda: self.s.status != PipelineStatus.PAUSED)
        return self.s

    @resume.validator
    def _validate_resume(self, input: ResumePipelineInput) -> None:
        if self.s.status != PipelineStatus.PAUSED:
            raise ValueError(f"the pipeline is {self.s.status.value}, not paused")
        if self.resume_requested:  # two resumes in one task: the first one counts
            raise ValueError("the pipeline is being resumed already")

    @workflow.run
    async def run(self, input: PipelineInput) -> PipelineState:
        self.s.status = PipelineStatus.RUNNING
        self._record()
        outputs: dict[str, dict[str, Any]] = {}
        index = 0
        # Not `finally`: a worker that stops evicts a paused run by closing its coroutine
        # (GeneratorExit), and an await in a `finally` would then run outside the workflow's loop.
        try:
            while index < len(input.steps):
                if await self._run_step(index, input.steps[index], outputs):
                    index += 1
                    continue
                if not await self._paused():
                    await self._failed(outputs)
                    break
                self.resume_requested = False
                self.s.status = PipelineStatus.RUNNING
                self.s.error = None
            else:
                self.s.status = PipelineStatus.SUCCEEDED
        except asyncio.CancelledError:
            await self._cancelled(outputs)
            await self._settle()
            raise
        except Exception:
            await self._settle()
            raise
        await self._settle()
        return self.s

    async def _settle(self) -> None:
        """Before the run ends: every update handler done, the last state recorded."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._record()
        await asyncio.gather(*self.records, return_exceptions=True)

    async def _paused(self) -> bool:
        """Wait for `resume`: True when it came, False when the pause outlived the definition's
        `pause_timeout_seconds` (a run started before that setting existed waits for ever)."""
        timeout = self.input.pause_timeout_seconds
        if timeout is not None and timeout <= 0:
            return False
        self.s.status = PipelineStatus.PAUSED
        self._record()
        try:
            await workflow.wait_condition(lambda: self.resume_requested,
                                          timeout=None if timeout is None else timedelta(seconds=timeout),
                                          timeout_summary="pause timeout: the run fails unless resumed")
        except TimeoutError:
            return self.resume_requested  # a resume accepted in the same task as the timer wins
        return True

    async def _failed(self, outputs: dict[str, dict[str, Any]]) -> None:
        """Give up the run: the steps after the failed one are skipped, the cleanup steps run."""
        self.giving_up = True
        if self.input.pause_timeout_seconds:
            self.s.error = f"{self.s.error}; not resumed within {self.input.pause_timeout_seconds:g} s"
        for st in self.s.steps:
            if st.status == StepStatus.PENDING and not st.cleanup:
                st.status = StepStatus.SKIPPED
        self.s.status = PipelineStatus.RUNNING  # its cleanup: ended only when that has run
        offset = len(self.input.steps)
        for i, step in enumerate(self.input.cleanup):
            await self._run_step(offset + i, step, outputs)  # best effort, as on cancel
        self.s.status = PipelineStatus.FAILED

    async def _run_step(self, index: int, step: StepDef, outputs: dict[str, dict[str, Any]]) -> bool:
        st = self.s.steps[index]
        self.s.current = index
        st.status, st.started_at, st.ended_at, st.error = StepStatus.RUNNING, workflow.now(), None, None
        st.attempts += 1
        try:
            arg = step_input(step, self.s.variables, outputs)
            result = await execute_step(
                step.type, self.input.node_id, arg,
                start_to_close=timedelta(seconds=step.timeout_seconds),
                schedule_to_start=timedelta(seconds=self.input.node_schedule_to_start_seconds),
                retry=RetryPolicy(initial_interval=timedelta(seconds=step.retry.initial_interval_seconds),
                                  maximum_interval=timedelta(seconds=step.retry.maximum_interval_seconds),
                                  maximum_attempts=step.retry.maximum_attempts,
                                  non_retryable_error_types=NON_RETRYABLE))
        except KeyError as err:
            return self._step_failed(st, f"undefined reference ${{{err.args[0]}}}")
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
            return self._step_failed(st, f"invalid params: {problems}")
        except NodeLost:
            return self._step_failed(st, f"node {self.input.node_id} did not pick the step up (is its agent up?)")
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise asyncio.CancelledError() from err  # the run was cancelled while this step ran
            return self._step_failed(st, _cause(err))
        st.status, st.ended_at, st.progress = StepStatus.SUCCEEDED, workflow.now(), 1.0
        if isinstance(result, StepResult):
            st.output, st.logs = result.output, result.logs
        elif isinstance(result, BaseModel):
            st.output = result.model_dump(mode="json")
        outputs[step.name] = st.output
        # No DB record per step: while the run is live the API queries the workflow itself, and every
        # record costs a workflow task on the critical path. Records mark start, pause and end.
        return True

    def _step_failed(self, st: StepState, error: str) -> bool:
        st.status, st.ended_at, st.error = StepStatus.FAILED, workflow.now(), error
        self.s.error = f"step {st.index} ({st.name}) failed: {error}"
        return False

    async def _cancelled(self, outputs: dict[str, dict[str, Any]]) -> None:
        for st in self.s.steps:
            if st.status == StepStatus.RUNNING or (st.status == StepStatus.FAILED and not self.giving_up):
                st.status, st.ended_at = StepStatus.CANCELLED, workflow.now()  # (a cleanup step of a failed run)
            elif st.status == StepStatus.PENDING and not st.cleanup:
                st.status = StepStatus.SKIPPED
        self.s.status = PipelineStatus.CANCELLING
        self._record()
        offset = len(self.input.steps)
        for i, step in enumerate(self.input.cleanup):
            # Cleanup is best effort: one failing step does not stop the others. A failed run's
            # cleanup may have begun already: what ran is not run again.
            if self.s.steps[offset + i].status == StepStatus.PENDING:
                await self._run_step(offset + i, step, outputs)
        self.s.status = PipelineStatus.CANCELLED

    def _record(self) -> None:
        self.s.seq += 1
        self.records = [r for r in self.records if not r.done()]
        self.records.append(workflow.start_activity_method(
            RecordActivities.record_pipeline,
            RecordPipelineInput(run_id=self.input.run_id, seq=self.s.seq, at=workflow.now(),
                                state=self.s.model_copy(deep=True)),
            task_queue=self.input.control_queue,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10))))


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, ApplicationError) and err.type:
        return f"{err.type}: {err}"
    return str(err)
