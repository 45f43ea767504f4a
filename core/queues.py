"""Task-queue names and workflow-id formats, in one place."""

from __future__ import annotations

CONTROL_QUEUE = "gsf-control"


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
