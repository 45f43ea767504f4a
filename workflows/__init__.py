"""Deterministic workflow classes; the control worker registers `WORKFLOWS`."""

from workflows.gameserver import GameServerWorkflow
from workflows.models import ModelGenerationWorkflow, TripoSlotsWorkflow
from workflows.pipeline import PipelineWorkflow

WORKFLOWS = [GameServerWorkflow, PipelineWorkflow, ModelGenerationWorkflow, TripoSlotsWorkflow]
