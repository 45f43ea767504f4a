"""The control worker (`gsf control-worker`): every workflow and the activities no node owns."""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.analysis import AnalysisActivities
from activities.placement import PlacementActivities
from activities.records import RecordActivities
from activities.tripo import TripoActivities
from core.artifacts import LocalArtifactStore
from core.db.session import create_schema, make_engine, make_session_factory
from core.settings import Settings
from core.temporal import connect
from workflows import WORKFLOWS

log = logging.getLogger("gsf.control")


async def run_control_worker(settings: Settings, client: Client | None = None) -> None:
    client = client or await connect(settings)
    task_queue = settings.control_queue
    engine = make_engine(settings.database_url)
    await create_schema(engine)
    sessions = make_session_factory(engine)
    analysis = AnalysisActivities(LocalArtifactStore(settings.artifact_dir), settings)
    placement = PlacementActivities(sessions)
    records = RecordActivities(sessions)
    models = TripoActivities.create(settings, sessions, client)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[analysis.analyze_code, placement.select_node, records.record_status,
                    records.record_pipeline, *models.activities()],
        identity="control",
        graceful_shutdown_timeout=timedelta(seconds=5),
    )
    log.info("control worker polling %s", task_queue)
    try:
        await worker.run()
    finally:
        await models.close()
        await engine.dispose()
