"""Task-queue names, workflow-id formats and the names of the workflows started by name, in one place."""

from __future__ import annotations

CONTROL_QUEUE = "gsf-control"

# Two workflows are started from below `workflows/` (docs/architecture.md: neither `activities/` nor
# `core/` may import a workflow class): TripoSlotsWorkflow by the `request_tripo_slot` activity
# (activities/tripo.py, signal-with-start, whose signal the SDK takes only by name) and
# WebhookDeliveryWorkflow by the event emitter (core/events.py). Their `@workflow.defn` and
# `@workflow.signal` take their names from here, so the starter and the workflow cannot drift apart.
TRIPO_SLOTS_WORKFLOW = "TripoSlotsWorkflow"
TRIPO_SLOTS_ACQUIRE = "acquire"
WEBHOOK_DELIVERY_WORKFLOW = "WebhookDeliveryWorkflow"


def node_queue(node_id: str) -> str:
    return f"gsf-node-{node_id}"


def gameserver_workflow_id(server_id: str) -> str:
    return f"gameserver-{server_id}"


def workflow_ui_url(ui_url: str, namespace: str, workflow_id: str, run_id: str | None = None) -> str:
    base = f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"
    return f"{base}/{run_id}/history" if run_id else base


def pipeline_workflow_id(run_id: str) -> str:
    return f"pipeline-{run_id}"


def model_workflow_id(job_id: str) -> str:
    return f"model-{job_id}"
