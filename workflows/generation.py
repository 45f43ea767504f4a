"""ModelGenerationWorkflow (one per 3D-model job) and TripoSlotsWorkflow (one per Tripo key), DESIGN §6."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    # Failures retrying cannot fix; everything else (429 after its Retry-After, 5xx, network) is retried.
    from activities.tripo import NON_RETRYABLE_TYPES as NON_RETRYABLE
    from activities.tripo import TripoActivities
    from core.contracts import (
        CheckSlotHoldersInput,
        CreateTripoTaskInput,
        CreateTripoTaskResult,
        FetchTripoModelInput,
        GenerateModelInput,
        GenerateModelResult,
        ModelInputKind,
        ModelJobState,
        ModelJobStatus,
        PollTripoTaskInput,
        PollTripoTaskResult,
        RecordModelStatusInput,
        RequestTripoSlotInput,
        SlotGrant,
        SlotRequest,
        TripoSlotsInput,
        TripoSlotsState,
        UploadTripoImageInput,
        UploadTripoImageResult,
    )
    from core.queues import TRIPO_SLOTS_ACQUIRE, TRIPO_SLOTS_WORKFLOW
    from core.temporal import SA_STATUS

TRIPO_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=30), non_retryable_error_types=NON_RETRYABLE)
FETCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=20), maximum_attempts=6,
                          non_retryable_error_types=NON_RETRYABLE)
CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10),
                            non_retryable_error_types=["TripoNotConfigured"])
# A create or upload that Tripo keeps refusing with 429/5xx gives up after this long.
TRIPO_CALL_BUDGET = timedelta(minutes=15)
POLL_BACKOFF = 1.5

# Tripo's end states other than success, as the job's error code and reason.
TRIPO_END_STATES = {
    "failed": ("TripoTaskFailed", "Tripo could not generate the model"),
    "banned": ("TripoTaskBanned", "Tripo refused the input: it breaks Tripo's content policy"),
    "expired": ("TripoTaskExpired", "the Tripo task expired before it finished"),
    "cancelled": ("TripoTaskCancelled", "the task was cancelled at Tripo"),
}


class JobFailed(Exception):
    """Ends the job as failed with a stable code; already recorded when raised."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@workflow.defn(name="ModelGenerationWorkflow")
class ModelGenerationWorkflow:
    """Generates one 3D model through Tripo and stores it; id `model-<job_id>`.

    Steps: a slot from the key's `TripoSlotsWorkflow` → upload the image → create the task → poll on
    durable timers with backoff until an end state or the deadline → give the slot back → download and
    store the GLB → `success`. Every transition is recorded (DB row and status cache) off the critical path.

    Signals: `slot_granted(SlotGrant)` — from `TripoSlotsWorkflow`: this job may now run a Tripo task.
    Queries: `state() -> ModelJobState`.
    Updates: none.
    Cancellation (`DELETE /api/v1/models/{id}` cancels the workflow): the wait or poll in progress stops,
    the slot is given back and the job is recorded `cancelled`; the workflow ends cancelled.
    A failure ends the workflow with `ApplicationError(type=<error code>)`, the code also on the job.
    """

    @workflow.init
    def __init__(self, input: GenerateModelInput) -> None:
        self.input = input
        self.s = ModelJobState()
        self.records: list[asyncio.Task[Any]] = []
        self.granted = False
        self.released = False

    @workflow.query
    def state(self) -> ModelJobState:
        return self.s

    @workflow.signal
    def slot_granted(self, grant: SlotGrant) -> None:
        self.s.slots_workflow_id = grant.slots_workflow_id
        self.granted = True

    @workflow.run
    async def run(self, input: GenerateModelInput) -> GenerateModelResult:
        try:
            result = await self._generate()
        except asyncio.CancelledError:
            self._transition(ModelJobStatus.CANCELLED, error_code="Cancelled",
                             error_message="the job was cancelled")
            await self._release_slot()
            await self._flush_records()
            raise
        except JobFailed as failed:
            await self._release_slot()
            await self._flush_records()
            raise ApplicationError(failed.message, type=failed.code, non_retryable=True) from None
        await self._flush_records()
        return result

    async def _generate(self) -> GenerateModelResult:
        i = self.input
        await self._acquire_slot()
        self._transition(ModelJobStatus.RUNNING)
        file_token = None
        if i.kind == ModelInputKind.IMAGE:
            assert i.image_sha256 is not None
            assert i.image_type is not None
            upload = UploadTripoImageInput(job_id=i.job_id, image_sha256=i.image_sha256, image_type=i.image_type)
            uploaded: UploadTripoImageResult = await self._tripo(
                TripoActivities.upload_tripo_image, upload, timedelta(minutes=2))
            file_token = uploaded.file_token
        created: CreateTripoTaskResult = await self._tripo(TripoActivities.create_tripo_task, CreateTripoTaskInput(
            job_id=i.job_id, kind=i.kind, file_token=file_token, image_type=i.image_type, prompt=i.prompt,
            negative_prompt=i.negative_prompt, options=i.options), timedelta(seconds=60))
        self.s.tripo_task_id = created.task_id
        self._transition(ModelJobStatus.RUNNING, tripo_task_id=created.task_id)
        final = await self._poll(created.task_id)
        # Tripo counts running tasks; the download does not need the slot.
        await self._release_slot()
        if final.status != "success":
            code, reason = TRIPO_END_STATES[final.status]
            detail = f": {final.error_message}" if final.error_message else ""
            self._fail(code, f"{reason} (Tripo task {created.task_id}, status {final.status}){detail}")
        try:
            stored = await workflow.execute_activity_method(
                TripoActivities.fetch_tripo_model, FetchTripoModelInput(job_id=i.job_id, task_id=created.task_id),
                task_queue=i.control_queue,
                start_to_close_timeout=timedelta(minutes=10), heartbeat_timeout=timedelta(seconds=30),
                retry_policy=FETCH_RETRY)
        except ActivityError as err:
            self._fail(*_reason(err, "the model could not be downloaded"))
        self.s.model_sha256 = stored.sha256
        self._transition(ModelJobStatus.SUCCESS, progress=100, model_sha256=stored.sha256, model_key=stored.key,
                         model_size=stored.size, model_source=stored.source)
        return GenerateModelResult(job_id=i.job_id, status=ModelJobStatus.SUCCESS, tripo_task_id=created.task_id,
                                   model_sha256=stored.sha256, model_key=stored.key, model_size=stored.size,
                                   source=stored.source)

    async def _acquire_slot(self) -> None:
        """Queue at the key's semaphore; Tripo's concurrency limit is kept here, not by failed requests."""
        try:
            slot = await workflow.execute_activity_method(
                TripoActivities.request_tripo_slot, RequestTripoSlotInput(holder=workflow.info().workflow_id),
                task_queue=self.input.control_queue,
                start_to_close_timeout=timedelta(seconds=30), schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=CONTROL_RETRY)
        except ActivityError as err:
            self._fail(*_reason(err, "no Tripo slot could be requested"))
        self.s.slots_workflow_id = slot.slots_workflow_id
        await workflow.wait_condition(lambda: self.granted)

    async def _release_slot(self) -> None:
        if self.released or self.s.slots_workflow_id is None:
            return
        self.released = True
        try:
            await workflow.get_external_workflow_handle_for(TripoSlotsWorkflow.run, self.s.slots_workflow_id).signal(
                TripoSlotsWorkflow.release, SlotRequest(holder=workflow.info().workflow_id))
        except Exception as err:  # noqa: BLE001 - the semaphore's sweep frees the slot of a closed job anyway
            workflow.logger.warning("could not give the Tripo slot back: %s", err)

    async def _tripo(self, activity: Callable[[Any, Any], Awaitable[Any]], arg: Any,
                     start_to_close: timedelta) -> Any:
        try:
            return await workflow.execute_activity_method(
                activity, arg, task_queue=self.input.control_queue,
                start_to_close_timeout=start_to_close, schedule_to_close_timeout=TRIPO_CALL_BUDGET,
                retry_policy=TRIPO_RETRY)
        except ActivityError as err:
            self._fail(*_reason(err, f"{activity.__name__} failed"))

    async def _poll(self, task_id: str) -> PollTripoTaskResult:
        """Look at the task on durable timers, backing off, until an end state or the deadline."""
        i = self.input
        deadline = workflow.now() + timedelta(seconds=i.deadline_seconds)
        delay = i.poll_initial_seconds
        while True:
            await workflow.sleep(timedelta(seconds=delay))
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                self._fail("TripoDeadlineExceeded", f"Tripo task {task_id} did not finish within "
                           f"{i.deadline_seconds:.0f} s (last status {self.s.tripo_status or 'none'})")
            try:
                # 429 (after its Retry-After) and 5xx are retried by the activity's policy until the deadline.
                look: PollTripoTaskResult = await workflow.execute_activity_method(
                    TripoActivities.poll_tripo_task, PollTripoTaskInput(job_id=i.job_id, task_id=task_id),
                    task_queue=i.control_queue,
                    start_to_close_timeout=timedelta(seconds=60),
                    schedule_to_close_timeout=max(remaining, timedelta(seconds=5)), retry_policy=TRIPO_RETRY)
            except ActivityError as err:
                if isinstance(err.cause, ActivityTimeout):
                    self._fail("TripoDeadlineExceeded", f"Tripo task {task_id} could not be looked at before the "
                               f"deadline: {_cause(err)}")
                self._fail(*_reason(err, "polling the Tripo task failed"))
            self.s.tripo_status = look.status
            if look.status == "success" or look.status in TRIPO_END_STATES:
                return look
            # queued, running, unknown or a status this code does not know yet: look again later.
            progress = min(look.progress, 99)
            if progress != self.s.progress:
                self._transition(ModelJobStatus.RUNNING, progress=progress)
            delay = min(delay * POLL_BACKOFF, i.poll_max_seconds)

    # --- records ------------------------------------------------------------------

    def _transition(self, status: ModelJobStatus, progress: int | None = None, **facts: Any) -> None:
        if status != self.s.status:
            workflow.upsert_search_attributes([SA_STATUS.value_set(status.value)])
        self.s.status = status
        if progress is not None:
            self.s.progress = progress
        self.s.seq += 1
        if "error_code" in facts:
            self.s.error_code, self.s.error_message = facts["error_code"], facts["error_message"]
        record = RecordModelStatusInput(job_id=self.input.job_id, seq=self.s.seq, status=status,
                                        progress=self.s.progress, at=workflow.now(), **facts)
        # Records are written off the critical path; `seq` lets the DB apply them in order.
        self.records = [r for r in self.records if not r.done()]
        self.records.append(workflow.start_activity_method(
            TripoActivities.record_model_status, record, task_queue=self.input.control_queue,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                     maximum_interval=timedelta(seconds=10))))

    def _fail(self, code: str, message: str) -> NoReturn:
        self._transition(ModelJobStatus.FAILED, error_code=code, error_message=message)
        raise JobFailed(code, message)

    async def _flush_records(self) -> None:
        if self.records:
            await asyncio.gather(*self.records, return_exceptions=True)
            self.records = []


@workflow.defn(name=TRIPO_SLOTS_WORKFLOW)
class TripoSlotsWorkflow:
    """A counting semaphore for the Tripo tasks of one API key; id `tripo-slots-<key fingerprint>`.

    Jobs queue first come, first served; at most `limit` hold a slot at once (Tripo's own limit, so
    requests wait here instead of failing there). A holder whose workflow closed without giving its
    slot back is found by a periodic sweep while others wait.

    Signals: `acquire(SlotRequest)` — queue for a slot (sent with signal-with-start by the
             `request_tripo_slot` activity; a repeated request is answered again, not queued twice);
             `release(SlotRequest)` — give the slot back, or leave the queue.
    Queries: `state() -> TripoSlotsState`.
    Grants are sent to the job as its `slot_granted(SlotGrant)` signal. Continues as new when suggested.
    """

    SWEEP_INTERVAL = timedelta(seconds=60)

    @workflow.init
    def __init__(self, input: TripoSlotsInput) -> None:
        self.input = input
        self.s = input.state.model_copy(deep=True) if input.state else TripoSlotsState(limit=input.limit)
        self.regrant: list[str] = []

    @workflow.query
    def state(self) -> TripoSlotsState:
        return self.s

    @workflow.signal(name=TRIPO_SLOTS_ACQUIRE)
    def acquire(self, request: SlotRequest) -> None:
        if request.limit > 0:
            self.s.limit = request.limit
        if request.holder in self.s.holders:
            self.regrant.append(request.holder)
        elif request.holder not in self.s.waiters:
            self.s.waiters.append(request.holder)

    @workflow.signal
    def release(self, request: SlotRequest) -> None:
        for queue in (self.s.holders, self.s.waiters, self.regrant):
            while request.holder in queue:
                queue.remove(request.holder)

    def _can_grant(self) -> bool:
        return bool(self.s.waiters) and len(self.s.holders) < self.s.limit

    @workflow.run
    async def run(self, input: TripoSlotsInput) -> None:
        while True:
            starved = bool(self.s.waiters) and not self._can_grant()
            try:
                await workflow.wait_condition(
                    lambda: bool(self.regrant) or self._can_grant()
                    or workflow.info().is_continue_as_new_suggested(),
                    timeout=self.SWEEP_INTERVAL if starved else None)
            except TimeoutError:  # the builtin: wait_condition's timeout
                await self._sweep()
            while self._can_grant():
                holder = self.s.waiters.pop(0)
                self.s.holders.append(holder)
                self.s.granted_total += 1
                await self._grant(holder)
            while self.regrant:
                await self._grant(self.regrant.pop(0))
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(TripoSlotsInput(limit=self.s.limit, control_queue=input.control_queue,
                                                         state=self.s))

    async def _grant(self, holder: str) -> None:
        try:
            await workflow.get_external_workflow_handle_for(ModelGenerationWorkflow.run, holder).signal(
                ModelGenerationWorkflow.slot_granted, SlotGrant(slots_workflow_id=workflow.info().workflow_id))
        except Exception as err:  # noqa: BLE001 - the job has closed: its slot is free again
            workflow.logger.info("slot holder %s is gone (%s)", holder, err)
            if holder in self.s.holders:
                self.s.holders.remove(holder)

    async def _sweep(self) -> None:
        try:
            result = await workflow.execute_activity_method(
                TripoActivities.check_slot_holders, CheckSlotHoldersInput(holders=list(self.s.holders)),
                task_queue=self.input.control_queue,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3))
        except ActivityError as err:
            workflow.logger.warning("slot sweep failed: %s", err)
            return
        for holder in result.closed:
            if holder in self.s.holders:
                self.s.holders.remove(holder)


def _cause(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)


def _reason(err: ActivityError, fallback: str) -> tuple[str, str]:
    """The job's error code and message for a failed activity: the ApplicationError type when there is one."""
    cause = err.cause
    while cause is not None and not isinstance(cause, ApplicationError) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type, cause.message or fallback
    if isinstance(err.cause, ActivityTimeout):
        return "Timeout", f"{fallback}: {_cause(err)}"
    return "ActivityFailed", f"{fallback}: {_cause(err)}"
