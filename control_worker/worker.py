"""The control worker's entry point (`gsf control-worker`): every workflow, and the activities
no node owns."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.analysis import AnalysisActivities
from activities.fleet import FleetActivities
from activities.placement import PlacementActivities
from activities.records import RecordActivities
from activities.tripo import TripoActivities
from activities.webhooks import WebhookActivities
from core.artifacts import LocalArtifactStore
from core.db.session import create_schema, make_engine, make_session_factory
from core.events import EventEmitter
from core.platform_metrics import control_metrics_runtime
from core.settings import Settings
from core.temporal import connect
from core.webhooks import PlatformSweepInput, platform_sweep_workflow_id
from gameserver import esbuild_service
from matchmaker.allocator import registry_for
from workflows import WORKFLOWS
from workflows.deployments import Deployments
from workflows.webhooks import PlatformSweepWorkflow

log = logging.getLogger("gsf.control")


async def run_control_worker(settings: Settings, client: Client | None = None) -> None:
    if client is None and settings.control_metrics_port:
        # Issue #12: the SDK's own /metrics (workflow task failures, ...), which alerts.yml reads.
        Runtime.set_default(control_metrics_runtime(settings), error_if_already_set=False)
    client = client or await connect(settings)
    task_queue = settings.control_queue
    engine = make_engine(settings.database_url)
    await create_schema(engine)
    sessions = make_session_factory(engine)
    analysis = AnalysisActivities(LocalArtifactStore(settings.artifact_dir), settings)
    placement = PlacementActivities.from_settings(sessions, settings)
    # --- webhooks (issue #12): records and model jobs raise events; deliveries and node sweeps run here.
    events = EventEmitter(sessions, client, settings)
    webhooks = WebhookActivities.create(settings, sessions, events)
    records = RecordActivities(sessions, events)
    models = TripoActivities.create(settings, sessions, client, events=events)
    fleets = FleetActivities(sessions, Deployments(client, settings), settings, registry_for(settings))  # issue #10
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[analysis.analyze_code, placement.select_node, records.record_status,
                    records.record_pipeline, *models.activities(), *webhooks.activities(),
                    *fleets.activities()],
        identity="control",
        graceful_shutdown_timeout=timedelta(seconds=5),
    )
    # One sweep (node events, webhook log pruning every ~10 min) per platform, whoever starts it first.
    await client.start_workflow(
        PlatformSweepWorkflow.run,
        PlatformSweepInput(control_queue=task_queue, interval_seconds=settings.node_liveness_seconds,
                           prune_every_sweeps=max(1, round(600 / settings.node_liveness_seconds))),
        id=platform_sweep_workflow_id(task_queue), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    log.info("control worker polling %s", task_queue)
    try:
        # The analysis of a project compiles it; a warm esbuild service keeps the next deploy fast.
        with esbuild_service.kept_warm():
            await worker.run()
    finally:
        await fleets.registry.aclose()
        await webhooks.close()
        await models.close()
        await engine.dispose()
