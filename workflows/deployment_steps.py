"""The deployment's node steps, in one list: `GameServerWorkflow` runs them, and the `gameserver-start`
pipeline (config/pipeline/gameserver-start.yaml) is generated from them (DESIGN §3, §5).

Each step is a step type of the pipeline table (`core/pipeline.py`, `STEP_TYPES`), so a deployment
and a pipeline run the same activities on the node's queue (`workflows/steps.py`). The workflow
builds each step's input from its own `GameServerInput`; the pipeline names the same fields as
templates (`params`). After changing this list, regenerate the definition (a test checks it):

    .venv/bin/python -m workflows.deployment_steps > config/pipeline/gameserver-start.yaml
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

PIPELINE_NAME = "gameserver-start"


@dataclass(frozen=True)
class DeployStep:
    """One node step: its type (`STEP_TYPES`), its name in the pipeline, its parameters there, and
    the time the workflow gives it (None: decided per server, as `wait_ready`'s ready timeout)."""

    type: str
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    timeout: timedelta | None = None


IMAGE = DeployStep("build_image", "image", {"server_id": "${server_id}", "source_sha256": "${source_sha256}"},
                   timedelta(minutes=10))
CONTAINER = DeployStep("start_container", "container", {
    "server_id": "${server_id}", "owner_id": "${owner_id}", "name": "${name}", "game": "${game}",
    "image": "${steps.image.image}", "max_players": "${max_players}", "max_rooms": "${max_rooms}"},
    timedelta(minutes=2))
READY = DeployStep("wait_ready", "ready", {
    "server_id": "${server_id}", "container_id": "${steps.container.container_id}",
    "host": "${steps.container.host}", "port": "${steps.container.port}"})
REGISTER = DeployStep("register", "register", {
    "server_id": "${server_id}", "owner_id": "${owner_id}", "name": "${name}", "game": "${game}",
    "node_id": "${node_id}", "ws_url": "${steps.container.ws_url}", "max_players": "${max_players}",
    "max_rooms": "${max_rooms}"}, timedelta(seconds=30))
# Cleanup, also the workflow's stop and delete: leave the matchmaker, then stop (and remove) the container.
DEREGISTER = DeployStep("deregister", "deregister", {"server_id": "${server_id}"}, timedelta(seconds=30))
STOP = DeployStep("stop_container", "stop", {"server_id": "${server_id}", "remove": True}, timedelta(minutes=1))

START_STEPS = (IMAGE, CONTAINER, READY, REGISTER)
CLEANUP_STEPS = (DEREGISTER, STOP)
VARIABLES: dict[str, Any] = {"server_id": None, "owner_id": None, "name": None, "game": "game",
                             "source_sha256": None, "max_players": 8, "max_rooms": 1, "node_id": None}


def pipeline_definition() -> dict[str, Any]:
    """The `gameserver-start` pipeline: the steps above, as a definition anyone can rerun."""

    def step(s: DeployStep, *, named: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"type": s.type}
        if named:
            out["name"] = s.name
        if s.params:
            out["params"] = dict(s.params)
        if named and s.timeout is not None:
            out["timeout_seconds"] = int(s.timeout.total_seconds())
        return out

    return {"name": PIPELINE_NAME, "description": "Build, start, probe and register one game server.",
            "variables": dict(VARIABLES), "steps": [step(s) for s in START_STEPS],
            "cleanup": [step(s, named=False) for s in CLEANUP_STEPS]}


def pipeline_yaml() -> str:
    """The text of config/pipeline/gameserver-start.yaml."""
    import yaml  # not at import time: the workflow sandbox needs only the list

    body: str = yaml.safe_dump(pipeline_definition(), sort_keys=False, width=120)
    return ("# Generated from workflows/deployment_steps.py, the steps GameServerWorkflow runs on the chosen\n"
            "# node (DESIGN §3): `python -m workflows.deployment_steps > config/pipeline/gameserver-start.yaml`.\n"
            + body)


if __name__ == "__main__":
    print(pipeline_yaml(), end="")
