"""The deployment's node steps are one list: GameServerWorkflow runs it, and the `gameserver-start`
pipeline in config/pipeline/ is generated from it (workflows/deployment_steps.py)."""

from __future__ import annotations

from core import pipeline as defs
from workflows import deployment_steps as steps


def test_the_gameserver_start_pipeline_is_generated_from_the_workflows_steps() -> None:
    # Regenerate with `python -m workflows.deployment_steps > config/pipeline/gameserver-start.yaml`.
    assert defs.load_named(steps.PIPELINE_NAME) == steps.pipeline_yaml()


def test_the_generated_pipeline_is_valid_and_runs_the_same_step_types() -> None:
    definition = defs.parse(steps.pipeline_yaml())
    assert [s.type for s in definition.steps] == [s.type for s in steps.START_STEPS] \
        == ["build_image", "start_container", "wait_ready", "register"]
    assert [s.type for s in definition.cleanup] == [s.type for s in steps.CLEANUP_STEPS]
    # Every step's parameters are its input's fields, and a whole run resolves with the variables.
    values = defs.with_variables(definition, {"server_id": "s1", "owner_id": "u1", "name": "n",
                                              "source_sha256": "0" * 64, "node_id": "n1"})
    first = defs.step_input(definition.steps[0], values, {})
    assert first.model_dump()["server_id"] == "s1"
    for step in (*steps.START_STEPS, *steps.CLEANUP_STEPS):
        assert set(step.params) <= set(defs.STEP_TYPES[step.type].input.model_fields), step
